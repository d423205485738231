//! The edits themselves, on a parsed document: add (or update) the runtimes, set or clear the default
//! runtime, enable CDI, add an `imports` entry; or remove the runtimes and prune what they leave empty.
//! Each step touches only the keys it must, so everything else keeps its bytes.

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::layout::Layout;
use crate::tomlx;
use anyhow::Result;

/// The trailing comment that records the default runtime a `set_as_default` replaced, so that
/// `state: absent` can put it back (containerd ignores comments).
const WAS_MARK: &str = "# containerd_runtime: was ";

/// One runtime to register: its name and the binary containerd's shim runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSpec {
    pub name: String,
    pub binary_path: String,
}

/// The base runtime to copy: the default runtime (unless it is one of ours or an `nvidia*` one), else
/// `runc`, else `crun`. Returns its name and a copy of its table. When the default is one of ours (a
/// `set_as_default` run), the default it replaced (recorded beside it) is the base again, so a second run
/// copies what the first one did.
pub fn find_base(root: &Item, layout: &Layout, ours: &[String]) -> Option<(String, Item)> {
    find_base_with(
        root,
        layout,
        ours,
        recorded_default(root, layout).as_deref(),
    )
}

/// [`find_base`] with the default to fall back on when the document's default is one of ours (drop-in
/// mode: the default the drop-in replaced, recorded in the drop-in or still in the config).
pub fn find_base_with(
    root: &Item,
    layout: &Layout,
    ours: &[String],
    replaced: Option<&str>,
) -> Option<(String, Item)> {
    // A runtime of ours (or another NVIDIA one) is never a base: it would be copied onto itself.
    let usable = |d: &str| !d.starts_with("nvidia") && !ours.iter().any(|o| o == d);
    let default = default_of(root, layout);
    let default = match default.as_deref() {
        Some(d) if usable(d) => Some(d.to_string()),
        Some(_) => replaced.filter(|r| usable(r)).map(str::to_string),
        None => None,
    };
    let candidates = default
        .into_iter()
        .chain(["runc".to_string(), "crun".to_string()])
        .filter(|n| !ours.iter().any(|o| o == n));
    for name in candidates {
        let mut path = layout.runtimes();
        path.push(&name);
        if let Some(item) = tomlx::get(root, &path).filter(|i| i.is_table_like()) {
            return Some((name.clone(), item.clone()));
        }
    }
    None
}

/// `default_runtime_name`, if set to a string.
pub fn default_of(root: &Item, layout: &Layout) -> Option<String> {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    tomlx::get(root, &path)
        .and_then(Item::as_str)
        .map(str::to_string)
}

/// The default runtime a `set_as_default` replaced, as recorded in the comment after
/// `default_runtime_name`.
pub fn recorded_default(root: &Item, layout: &Layout) -> Option<String> {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    match tomlx::get(root, &path) {
        Some(Item::Value(v)) => recorded_in(v),
        _ => None,
    }
}

fn recorded_in(v: &Value) -> Option<String> {
    v.decor()
        .suffix()
        .and_then(|s| s.as_str())
        .and_then(|s| s.trim().strip_prefix(WAS_MARK.trim_end()))
        .and_then(|rest| rest.trim().parse::<Value>().ok())
        .and_then(|p| p.as_str().map(str::to_string))
}

/// The table a runtime should have: a copy of the base (every key, so `SystemdCgroup`, `sandboxer` and the
/// rest are inherited) or the reference's fallback, with `runtime_type` filled in and `BinaryName` set.
pub fn desired_runtime(
    base: Option<&Item>,
    rt: &RuntimeSpec,
    runtime_type: &str,
    annotations: &[String],
    layout: &Layout,
) -> Result<Item> {
    let mut item = match base {
        Some(b) => {
            let mut copy = b.clone();
            tidy_copy(&mut copy);
            copy
        }
        None => {
            let mut t = Table::new();
            t.insert("privileged_without_host_devices", toml_edit::value(false));
            t.insert("runtime_engine", toml_edit::value(""));
            t.insert("runtime_root", toml_edit::value(""));
            t.insert("runtime_type", toml_edit::value(runtime_type));
            Item::Table(t)
        }
    };
    let empty_type = item
        .get("runtime_type")
        .and_then(Item::as_str)
        .map_or(true, str::is_empty);
    if empty_type {
        tomlx::set_value(&mut item, "runtime_type", runtime_type.into())?;
    }
    if !annotations.is_empty() {
        let list: Array = annotations.iter().map(String::as_str).collect();
        tomlx::set_value(&mut item, "container_annotations", Value::Array(list))?;
    }
    let options = tomlx::ensure_table(&mut item, &["options"])?;
    if let Item::Table(t) = options {
        // A fresh options table prints its own header (an implicit one would vanish with its keys).
        t.set_implicit(false);
    }
    tomlx::set_value(options, "BinaryName", rt.binary_path.as_str().into())?;
    if layout.version <= 1 {
        tomlx::set_value(options, "Runtime", rt.binary_path.as_str().into())?;
    }
    Ok(item)
}

/// A copied table keeps its indentation but not the comments written above its headers and keys.
fn tidy_copy(item: &mut Item) {
    tomlx::clear_positions(item);
    if let Item::Table(t) = item {
        let indent = tomlx::indentation(t.decor().prefix().and_then(|p| p.as_str()));
        t.decor_mut().set_prefix(format!("\n{}", indent));
        t.decor_mut().set_suffix("");
        for (mut key, child) in t.iter_mut() {
            let kindent = tomlx::indentation(key.leaf_decor().prefix().and_then(|p| p.as_str()));
            key.leaf_decor_mut().set_prefix(kindent);
            tidy_copy(child);
        }
    }
}

/// Puts one runtime's table in place: updates an existing one key by key, or inserts the new table.
pub fn put_runtime(root: &mut Item, layout: &Layout, name: &str, desired: &Item) -> Result<()> {
    let runtimes = tomlx::ensure_table(root, &layout.runtimes())?;
    let t = runtimes
        .as_table_like_mut()
        .expect("ensure_table returns a table");
    match t.get_mut(name) {
        Some(existing) if existing.is_table_like() => tomlx::sync(existing, desired),
        Some(existing) => *existing = desired.clone(),
        None => {
            let item = if runtimes.is_inline_table() {
                match desired.clone().into_value() {
                    Ok(v) => Item::Value(v),
                    Err(i) => i,
                }
            } else {
                desired.clone()
            };
            runtimes
                .as_table_like_mut()
                .expect("a table")
                .insert(name, item);
        }
    }
    Ok(())
}

/// `default_runtime_name = name`, remembering the default it replaces in a trailing comment.
pub fn set_default(root: &mut Item, layout: &Layout, name: &str) -> Result<()> {
    let containerd = tomlx::ensure_table(root, &layout.containerd())?;
    let previous = containerd
        .get("default_runtime_name")
        .and_then(Item::as_str)
        .map(str::to_string);
    if previous.as_deref() == Some(name) {
        return Ok(());
    }
    tomlx::set_value(containerd, "default_runtime_name", name.into())?;
    if let Some(prev) = previous {
        if let Some(Item::Value(v)) = containerd
            .as_table_like_mut()
            .and_then(|t| t.get_mut("default_runtime_name"))
        {
            v.decor_mut()
                .set_suffix(format!(" {}{}", WAS_MARK, Value::from(prev.as_str())));
        }
    }
    Ok(())
}

/// Removes a `default_runtime_name` that names `name`: back to the default it replaced when that was
/// recorded, else deleted (containerd then uses `runc`). Returns whether anything changed.
pub fn clear_default(root: &mut Item, layout: &Layout, name: &str) -> bool {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    let Some(Item::Value(v)) = tomlx::get_mut(root, &path) else {
        return false;
    };
    if v.as_str() != Some(name) {
        return false;
    }
    let recorded = recorded_in(v);
    match recorded {
        Some(prev) => {
            let prefix = v.decor().prefix().cloned();
            *v = Value::from(prev.as_str());
            if let Some(p) = prefix {
                v.decor_mut().set_prefix(p);
            }
        }
        None => {
            tomlx::remove_and_prune(root, &path);
        }
    }
    true
}

/// `enable_cdi = true` where this version's CRI plugin reads it.
pub fn enable_cdi(root: &mut Item, layout: &Layout) -> Result<()> {
    let parent = tomlx::ensure_table(root, &layout.cdi_parent())?;
    tomlx::set_value(parent, "enable_cdi", true.into())
}

/// Writes `version = N` when the document has none (a new file, or a version 1 file without the key).
pub fn ensure_version(doc: &mut DocumentMut, version: i64) {
    if doc.get("version").is_none() {
        doc.as_table_mut()
            .insert("version", toml_edit::value(version));
    }
}

/// Appends `entry` to the top-level `imports` unless the exact string is there already.
pub fn ensure_import(doc: &mut DocumentMut, entry: &str) -> Result<()> {
    match doc.get_mut("imports") {
        Some(Item::Value(Value::Array(a))) => {
            if !a.iter().any(|v| v.as_str() == Some(entry)) {
                a.push(entry);
            }
            Ok(())
        }
        Some(other) => anyhow::bail!(
            "invalid config: `imports` must be an array of strings, found a {}",
            other.type_name()
        ),
        None => {
            let mut a = Array::new();
            a.push(entry);
            doc.as_table_mut()
                .insert("imports", Item::Value(Value::Array(a)));
            Ok(())
        }
    }
}

/// Takes `entries` out of the top-level `imports`; an emptied `imports` goes too.
pub fn remove_imports(doc: &mut DocumentMut, entries: &[String]) {
    if let Some(Item::Value(Value::Array(a))) = doc.get_mut("imports") {
        a.retain(|v| !v.as_str().is_some_and(|s| entries.iter().any(|e| e == s)));
        if a.is_empty() {
            doc.as_table_mut().remove("imports");
        }
    }
}

/// Removes one runtime's table and the tables it leaves empty. Returns whether it was there.
pub fn remove_runtime(root: &mut Item, layout: &Layout, name: &str) -> bool {
    let mut path = layout.runtimes();
    path.push(name);
    tomlx::remove_and_prune(root, &path)
}

/// A comments-only document keeps its comments at the top; new content goes below them.
pub fn lift_trailing_comments(doc: &mut DocumentMut) {
    let trailing = doc.trailing().as_str().unwrap_or("").to_string();
    if trailing.trim().is_empty() {
        return;
    }
    let mut prefix = trailing;
    if !prefix.ends_with('\n') {
        prefix.push('\n');
    }
    doc.set_trailing("");
    doc.decor_mut().set_prefix(prefix);
}
