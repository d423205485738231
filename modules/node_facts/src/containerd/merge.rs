//! How containerd merges an imported file into the config loaded so far (its `mergeConfig`), on parsed TOML.
//!
//! - `plugins`: each plugin table of the import is merged key by key in 2.x (tables into tables, any other
//!   value, `false`, `""` and arrays included, replacing), and replaces the whole plugin table in 1.x.
//! - `timeouts`, `stream_processors`, `proxy_plugins`: each entry of the import replaces the loaded one.
//! - Everything else is containerd's own typed settings (`version`, `root`, `grpc.address`...), merged with
//!   mergo's override rule: tables field by field; a value replaces the loaded one unless it is its type's zero
//!   (`""`, `0`, `false`, an empty array), which never overrides; top-level arrays (`imports`,
//!   `disabled_plugins`...) are appended to (2.x: only entries not there yet).
//!
//! Not modelled: containerd 2.x migrates an imported file of an older config version before merging it.

use toml_edit::{DocumentMut, Item, TableLike, Value};

use super::Rules;

/// Merges `over` (an imported file) into `base` (what was loaded before it).
pub fn merge(base: &mut DocumentMut, over: &DocumentMut, rules: Rules) {
    for (key, item) in over.iter() {
        match key {
            "plugins" if rules.plugins_merge_deeply => each_entry(base, key, item, deep),
            "plugins" | "timeouts" | "stream_processors" | "proxy_plugins" => {
                each_entry(base, key, item, |b, o| *b = o.clone())
            }
            _ => match base.get_mut(key) {
                Some(b) => typed(b, item, rules),
                None => insert_typed(base.as_table_mut(), key, item),
            },
        }
    }
}

/// Applies `rule` to each entry of the table `over` against the same entry of `base[key]`; entries that
/// `base` lacks are added as they are.
fn each_entry(base: &mut DocumentMut, key: &str, over: &Item, rule: fn(&mut Item, &Item)) {
    let (Some(into), Some(from)) = (
        base.get_mut(key).and_then(Item::as_table_like_mut),
        over.as_table_like(),
    ) else {
        base.insert(key, over.clone());
        return;
    };
    for (k, v) in from.iter() {
        match into.get_mut(k) {
            Some(existing) => rule(existing, v),
            None => {
                into.insert(k, v.clone());
            }
        }
    }
}

/// 2.x's plugin merge: tables key by key, anything else replaces.
fn deep(base: &mut Item, over: &Item) {
    let (Some(into), Some(from)) = (base.as_table_like_mut(), over.as_table_like()) else {
        *base = over.clone();
        return;
    };
    for (k, v) in from.iter() {
        match into.get_mut(k) {
            Some(existing) if existing.is_table_like() && v.is_table_like() => deep(existing, v),
            _ => {
                into.insert(k, v.clone());
            }
        }
    }
}

/// mergo's override rule for containerd's typed settings.
fn typed(base: &mut Item, over: &Item, rules: Rules) {
    if let (Some(into), Some(from)) = (base.as_table_like_mut(), over.as_table_like()) {
        for (k, v) in from.iter() {
            match into.get_mut(k) {
                Some(existing) => typed(existing, v, rules),
                None => insert_typed(into, k, v),
            }
        }
        return;
    }
    if is_zero(over) {
        return;
    }
    match (base.as_array_mut(), over.as_array()) {
        (Some(into), Some(from)) => {
            for v in from.iter() {
                if !(rules.arrays_append_unique && into.iter().any(|e| same(e, v))) {
                    into.push_formatted(v.clone());
                }
            }
        }
        _ => *base = over.clone(),
    }
}

/// Adds a typed setting `base` lacks; a zero value adds nothing (containerd's own default is that zero).
fn insert_typed(into: &mut dyn TableLike, key: &str, over: &Item) {
    if !is_zero(over) {
        into.insert(key, over.clone());
    }
}

/// The zero value of its type: mergo never lets it override.
fn is_zero(item: &Item) -> bool {
    match item.as_value() {
        Some(Value::String(s)) => s.value().is_empty(),
        Some(Value::Integer(i)) => *i.value() == 0,
        Some(Value::Float(f)) => *f.value() == 0.0,
        Some(Value::Boolean(b)) => !*b.value(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// The same TOML value, formatting ignored.
fn same(a: &Value, b: &Value) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.decor_mut().clear();
    b.decor_mut().clear();
    a.to_string() == b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::layout::get;

    fn doc(text: &str) -> DocumentMut {
        text.parse().unwrap()
    }

    fn at<'a>(d: &'a DocumentMut, path: &str) -> Option<&'a Item> {
        get(d.as_item(), &path.split('/').collect::<Vec<_>>())
    }

    const CRI: &str = "plugins/io.containerd.grpc.v1.cri";

    const ROOT: &str = r#"version = 2
root = "/var/lib/x"
imports = ["conf.d/*.toml"]
[grpc]
  address = "/run/k3s/containerd.sock"
[timeouts]
  "io.containerd.timeout.shim.cleanup" = "5s"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "pause:1"
  enable_cdi = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      container_annotations = ["a", "b"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
"#;

    // What containerd 2.1.9's `config dump` made of ROOT importing this (Debian's package, 2026-12-06):
    // enable_cdi, SystemdCgroup and container_annotations taken from the import, root kept.
    const DROP_IN: &str = r#"version = 2
root = ""
imports = ["conf.d/*.toml", "sub/b.toml"]
[grpc]
  address = ""
[timeouts]
  "io.containerd.timeout.shim.load" = "7s"
[plugins."io.containerd.grpc.v1.cri"]
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    container_annotations = ["c"]
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
    runtime_type = "io.containerd.runc.v2"
"#;

    #[test]
    fn containerd_2_merges_plugins_key_by_key_and_any_value_replaces() {
        let mut d = doc(ROOT);
        merge(&mut d, &doc(DROP_IN), Rules::of(Some((2, 1))));
        let runc = format!("{CRI}/containerd/runtimes/runc");
        assert_eq!(
            at(&d, &format!("{CRI}/enable_cdi")).and_then(Item::as_bool),
            Some(false)
        );
        assert_eq!(
            at(&d, &format!("{runc}/options/SystemdCgroup")).and_then(Item::as_bool),
            Some(false)
        );
        let annotations = at(&d, &format!("{runc}/container_annotations")).and_then(Item::as_array);
        assert_eq!(
            annotations.map(|a| a.len()),
            Some(1),
            "arrays in plugins are replaced"
        );
        assert_eq!(
            at(&d, &format!("{runc}/runtime_type")).and_then(Item::as_str),
            Some("io.containerd.runc.v2")
        );
        assert!(at(&d, &format!("{CRI}/containerd/runtimes/nvidia")).is_some());
        assert_eq!(
            at(&d, &format!("{CRI}/sandbox_image")).and_then(Item::as_str),
            Some("pause:1")
        );
        // containerd's typed settings: a zero value never overrides; arrays gain the new entries only.
        assert_eq!(at(&d, "root").and_then(Item::as_str), Some("/var/lib/x"));
        assert_eq!(
            at(&d, "grpc/address").and_then(Item::as_str),
            Some("/run/k3s/containerd.sock")
        );
        let imports: Vec<_> = at(&d, "imports")
            .and_then(Item::as_array)
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(imports, ["conf.d/*.toml", "sub/b.toml"]);
        // Each timeout is an entry of its own: both stay.
        assert_eq!(
            at(&d, "timeouts")
                .and_then(Item::as_table_like)
                .map(|t| t.len()),
            Some(2)
        );
    }

    #[test]
    fn containerd_1_replaces_a_whole_plugin_table() {
        let mut d = doc(ROOT);
        merge(&mut d, &doc(DROP_IN), Rules::of(Some((1, 7))));
        // The import's CRI table is all there is now: the base's sandbox_image and runtime_type are gone.
        assert!(at(&d, &format!("{CRI}/sandbox_image")).is_none());
        assert!(at(&d, &format!("{CRI}/containerd/runtimes/runc/runtime_type")).is_none());
        assert!(at(&d, &format!("{CRI}/containerd/runtimes/nvidia")).is_some());
        // 1.x appends every entry of a top-level array.
        assert_eq!(
            at(&d, "imports").and_then(Item::as_array).map(|a| a.len()),
            Some(3)
        );
        assert_eq!(at(&d, "root").and_then(Item::as_str), Some("/var/lib/x"));
    }

    #[test]
    fn a_new_setting_is_added_and_a_non_zero_one_overrides() {
        let mut d = doc("version = 2\n[grpc]\naddress = \"/a.sock\"\n");
        merge(
            &mut d,
            &doc("version = 3\noom_score = 0\n[grpc]\naddress = \"/b.sock\"\nuid = 5\n[plugins.x]\nk = 1\n"),
            Rules::of(None),
        );
        assert_eq!(
            at(&d, "grpc/address").and_then(Item::as_str),
            Some("/b.sock")
        );
        assert_eq!(at(&d, "grpc/uid").and_then(Item::as_integer), Some(5));
        assert_eq!(at(&d, "version").and_then(Item::as_integer), Some(3));
        assert!(at(&d, "oom_score").is_none(), "a zero adds nothing");
        assert_eq!(at(&d, "plugins/x/k").and_then(Item::as_integer), Some(1));
    }
}
