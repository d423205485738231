//! The edits themselves, on a parsed document: add (or update) the runtimes, set or clear the default
//! runtime, enable CDI, add an `imports` entry; or remove the runtimes and prune what they leave empty.
//! Each step touches only the keys it must, so everything else keeps its bytes.

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::toml_tree;
use anyhow::Result;
use node_facts::containerd::layout::Layout;

/// The trailing comment that records the default runtime a `set_as_default` replaced, so that
/// `state: absent` can put it back (containerd ignores comments).
const WAS_MARK: &str = "# containerd_runtime: was ";

/// One runtime to register: its name and the binary containerd's shim runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSpec {
    pub name: String,
    pub binary_path: String,
}

/// The base a new runtime is copied from: the config's default runtime, whatever its name (so an EKS-style
/// config whose default is `nvidia` with `SystemdCgroup` and `base_runtime_spec` passes them on), else `runc`.
/// Returns its name and a copy of its table.
pub fn find_base(root: &Item, layout: &Layout) -> Option<(String, Item)> {
    let default = default_of(root, layout);
    for name in default.into_iter().chain(["runc".to_string()]) {
        let mut path = layout.runtimes();
        path.push(&name);
        if let Some(item) = toml_tree::get(root, &path).filter(|i| i.is_table_like()) {
            return Some((name, item.clone()));
        }
    }
    None
}

/// `default_runtime_name`, if set to a string.
pub fn default_of(root: &Item, layout: &Layout) -> Option<String> {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    toml_tree::get(root, &path)
        .and_then(Item::as_str)
        .map(str::to_string)
}

/// What the marker after `default_runtime_name` says this module replaced.
#[derive(Debug, Clone)]
pub enum Replaced {
    /// The default it replaced, as written in the file (its quoting kept).
    Name(Value),
    /// There was no `default_runtime_name` (containerd then uses `runc`).
    Unset,
}

/// The marker's word for a default that was not set.
const UNSET: &str = "unset";

/// The default runtime a `set_as_default` replaced, as recorded in the comment after `default_runtime_name`;
/// `None` when there is no marker: the default was set by someone else.
pub fn recorded_default(root: &Item, layout: &Layout) -> Option<Replaced> {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    match toml_tree::get(root, &path) {
        Some(Item::Value(v)) => recorded_in(v),
        _ => None,
    }
}

fn recorded_in(v: &Value) -> Option<Replaced> {
    let rest = v
        .decor()
        .suffix()
        .and_then(|s| s.as_str())
        .and_then(|s| s.trim().strip_prefix(WAS_MARK.trim_end()))?
        .trim();
    if rest == UNSET {
        return Some(Replaced::Unset);
    }
    let parsed = rest.parse::<Value>().ok()?;
    parsed.as_str()?;
    Some(Replaced::Name(parsed.decorated("", "")))
}

/// The table a new runtime should have: a copy of the base (every key, so `SystemdCgroup`,
/// `base_runtime_spec`, `sandboxer` and the rest are inherited) or the reference's fallback, then the keys
/// this module owns ([`set_owned`]).
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
            Item::Table(t)
        }
    };
    set_owned(&mut item, rt, runtime_type, annotations, layout)?;
    Ok(item)
}

/// Sets the keys this module owns in a runtime's table, and nothing else: `runtime_type` where it is
/// missing or empty (a copied base's own type wins, as in the reference), `container_annotations` when the
/// task gives some, and `options.BinaryName` (plus `options.Runtime` in version 1 configs). An existing
/// runtime keeps every other key: its `SystemdCgroup`, `base_runtime_spec` and the like are someone's
/// working settings.
pub fn set_owned(
    item: &mut Item,
    rt: &RuntimeSpec,
    runtime_type: &str,
    annotations: &[String],
    layout: &Layout,
) -> Result<()> {
    let empty_type = item
        .get("runtime_type")
        .and_then(Item::as_str)
        .map_or(true, str::is_empty);
    if empty_type {
        toml_tree::set_value(item, "runtime_type", runtime_type.into())?;
    }
    if !annotations.is_empty() {
        let list: Array = annotations.iter().map(String::as_str).collect();
        toml_tree::set_value(item, "container_annotations", Value::Array(list))?;
    }
    let fresh = item.get("options").is_none();
    let options = toml_tree::ensure_table(item, &["options"])?;
    if let (true, Item::Table(t)) = (fresh, &mut *options) {
        // A fresh options table prints its own header (an implicit one would vanish with its keys).
        t.set_implicit(false);
    }
    toml_tree::set_value(options, "BinaryName", rt.binary_path.as_str().into())?;
    if layout.version <= 1 {
        toml_tree::set_value(options, "Runtime", rt.binary_path.as_str().into())?;
    }
    Ok(())
}

/// The one key an existing runtime takes from the base: `options.SystemdCgroup = true` when the runtime has
/// none and the base sets it (false is what a missing key means already). A missing key means the cgroupfs driver, which fails pods on a node whose kubelet
/// (like the base runtime) uses systemd: k3s writes its detected `nvidia` runtime so on systemd hosts.
fn inherit_missing_cgroup_driver(existing: &mut Item, base: Option<&Item>) -> Result<()> {
    let Some(wanted) = base
        .and_then(|b| b.get("options"))
        .and_then(|o| o.get("SystemdCgroup"))
        .and_then(Item::as_bool)
    else {
        return Ok(());
    };
    let runc_shim =
        existing.get("runtime_type").and_then(Item::as_str) == Some("io.containerd.runc.v2");
    let has_it = existing
        .get("options")
        .is_some_and(|o| o.get("SystemdCgroup").is_some());
    if wanted && runc_shim && !has_it {
        set_systemd_cgroup(existing, true)?;
    }
    Ok(())
}

/// Sets `options.SystemdCgroup` (a new runtime with no base in the file takes the kubelet's cgroup driver).
pub fn set_systemd_cgroup(item: &mut Item, systemd: bool) -> Result<()> {
    let options = toml_tree::ensure_table(item, &["options"])?;
    toml_tree::set_value(options, "SystemdCgroup", systemd.into())
}

/// A copied table keeps its indentation but not the comments written above its headers and keys.
fn tidy_copy(item: &mut Item) {
    toml_tree::clear_positions(item);
    if let Item::Table(t) = item {
        let indent = toml_tree::indentation(t.decor().prefix().and_then(|p| p.as_str()));
        t.decor_mut().set_prefix(format!("\n{}", indent));
        t.decor_mut().set_suffix("");
        for (mut key, child) in t.iter_mut() {
            let kindent =
                toml_tree::indentation(key.leaf_decor().prefix().and_then(|p| p.as_str()));
            key.leaf_decor_mut().set_prefix(kindent);
            tidy_copy(child);
        }
    }
}

/// Puts one runtime's table in place: an existing table gets only the keys this module owns (`desired` is
/// not used for it), a missing one is inserted as `desired()` builds it.
pub fn put_runtime(
    root: &mut Item,
    layout: &Layout,
    rt: &RuntimeSpec,
    runtime_type: &str,
    annotations: &[String],
    base: Option<&Item>,
    desired: impl FnOnce() -> Result<Item>,
) -> Result<()> {
    let runtimes = toml_tree::ensure_table(root, &layout.runtimes())?;
    let t = runtimes
        .as_table_like_mut()
        .expect("ensure_table returns a table");
    match t.get_mut(&rt.name) {
        Some(existing) if existing.is_table_like() => {
            set_owned(existing, rt, runtime_type, annotations, layout)?;
            inherit_missing_cgroup_driver(existing, base)
        }
        Some(existing) => {
            *existing = desired()?;
            Ok(())
        }
        None => {
            let desired = desired()?;
            let item = if runtimes.is_inline_table() {
                match desired.into_value() {
                    Ok(v) => Item::Value(v),
                    Err(i) => i,
                }
            } else {
                desired
            };
            runtimes
                .as_table_like_mut()
                .expect("a table")
                .insert(&rt.name, item);
            Ok(())
        }
    }
}

/// Writes a table as it is (the base runtime a new file needs beside ours), unless one is there already.
pub fn put_table(root: &mut Item, layout: &Layout, name: &str, table: &Item) -> Result<()> {
    let runtimes = toml_tree::ensure_table(root, &layout.runtimes())?;
    let t = runtimes.as_table_like_mut().expect("a table");
    if !t.contains_key(name) {
        t.insert(name, table.clone());
    }
    Ok(())
}

/// `default_runtime_name = name`, recording the default it replaces (or that there was none) in a trailing
/// comment: only a default with this marker is ever undone.
pub fn set_default(root: &mut Item, layout: &Layout, name: &str) -> Result<()> {
    let containerd = toml_tree::ensure_table(root, &layout.containerd())?;
    let previous = match containerd.get("default_runtime_name") {
        Some(Item::Value(v)) => Some(v.clone()),
        _ => None,
    };
    if previous.as_ref().and_then(Value::as_str) == Some(name) {
        return Ok(());
    }
    toml_tree::set_value(containerd, "default_runtime_name", name.into())?;
    let record = match &previous {
        Some(v) => v.clone().decorated("", "").to_string(),
        None => UNSET.to_string(),
    };
    if let Some(Item::Value(v)) = containerd
        .as_table_like_mut()
        .and_then(|t| t.get_mut("default_runtime_name"))
    {
        v.decor_mut().set_suffix(format!(" {}{}", WAS_MARK, record));
    }
    Ok(())
}

/// What [`undo_default`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultUndo {
    /// `default_runtime_name` does not name the runtime: nothing to do.
    NotThisRuntime,
    /// It named the runtime with this module's marker: put back as it was.
    Restored,
    /// It names the runtime without the marker: someone else made it the default; left as it is.
    SetElsewhere,
}

/// Undoes a `default_runtime_name = name` that this module set (its marker says what it replaced: that
/// default is put back, or the key removed when there was none). A default set by anyone else stays.
pub fn undo_default(root: &mut Item, layout: &Layout, name: &str) -> DefaultUndo {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    let Some(Item::Value(v)) = toml_tree::get_mut(root, &path) else {
        return DefaultUndo::NotThisRuntime;
    };
    if v.as_str() != Some(name) {
        return DefaultUndo::NotThisRuntime;
    }
    match recorded_in(v) {
        Some(Replaced::Name(prev)) => {
            let prefix = v.decor().prefix().cloned();
            *v = prev;
            if let Some(p) = prefix {
                v.decor_mut().set_prefix(p);
            }
        }
        Some(Replaced::Unset) => {
            toml_tree::remove_and_prune(root, &path);
        }
        None => return DefaultUndo::SetElsewhere,
    }
    DefaultUndo::Restored
}

/// `enable_cdi = true` where this version's CRI plugin reads it.
pub fn enable_cdi(root: &mut Item, layout: &Layout) -> Result<()> {
    let parent = toml_tree::ensure_table(root, &layout.cdi_parent())?;
    toml_tree::set_value(parent, "enable_cdi", true.into())
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
        let before = a.len();
        a.retain(|v| !v.as_str().is_some_and(|s| entries.iter().any(|e| e == s)));
        // A list that was empty before (`imports = []` in `containerd config default`) is not ours to drop.
        if a.is_empty() && a.len() < before {
            doc.as_table_mut().remove("imports");
        }
    }
}

/// Removes one runtime's table and the tables it leaves empty. Returns whether it was there.
pub fn remove_runtime(root: &mut Item, layout: &Layout, name: &str) -> bool {
    let mut path = layout.runtimes();
    path.push(name);
    toml_tree::remove_and_prune(root, &path)
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
