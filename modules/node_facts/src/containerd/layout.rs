//! Where things live in containerd's config for each config `version`, and how the version is read.
//!
//! | version | CRI plugin table | runtimes | CDI key parent |
//! |---|---|---|---|
//! | 1 | `plugins.cri` | `plugins.cri.containerd.runtimes` | `plugins.cri.containerd` |
//! | 2 | `plugins."io.containerd.grpc.v1.cri"` | `...containerd.runtimes` | the CRI plugin table |
//! | 3, 4, later | `plugins."io.containerd.cri.v1.runtime"` | `...containerd.runtimes` | the CRI plugin table |

use toml_edit::{DocumentMut, Item, Value};

use super::Error;

/// The table paths of one config version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: i64,
    cri: [&'static str; 2],
}

impl Layout {
    pub fn for_version(version: i64) -> Layout {
        let plugin = match version {
            i64::MIN..=1 => "cri",
            2 => "io.containerd.grpc.v1.cri",
            _ => "io.containerd.cri.v1.runtime",
        };
        Layout {
            version,
            cri: ["plugins", plugin],
        }
    }

    /// `plugins.<cri>`: the CRI plugin's table.
    pub fn cri(&self) -> Vec<&'static str> {
        self.cri.to_vec()
    }

    /// `plugins.<cri>.containerd`: where `default_runtime_name` lives.
    pub fn containerd(&self) -> Vec<&'static str> {
        vec![self.cri[0], self.cri[1], "containerd"]
    }

    /// `plugins.<cri>.containerd.runtimes`.
    pub fn runtimes(&self) -> Vec<&'static str> {
        vec![self.cri[0], self.cri[1], "containerd", "runtimes"]
    }

    /// The table where a writer puts `enable_cdi` (version 1 under `containerd`, as NVIDIA's
    /// `nvidia-ctk runtime configure` does; containerd's dump, always version 2 or later, has it in the CRI table).
    pub fn cdi_parent(&self) -> Vec<&'static str> {
        if self.version <= 1 {
            self.containerd()
        } else {
            self.cri()
        }
    }
}

/// The item at `path` (table keys, from `root`), if every step is there.
pub fn get<'a>(root: &'a Item, path: &[&str]) -> Option<&'a Item> {
    path.iter()
        .try_fold(root, |item, key| item.as_table_like()?.get(key))
}

/// A document with no key and no table: a new config (a missing, 0-byte or comments-only file).
pub fn is_blank(doc: &DocumentMut) -> bool {
    doc.as_table().is_empty()
}

/// The config version a document declares: `version` when it is an integer, 1 for a non-empty document
/// without one (containerd's own rule), `new_version` for a blank one. A `version` of another type, or one
/// below 1, fails.
pub fn detect_version(doc: &DocumentMut, new_version: i64) -> Result<i64, Error> {
    let fail = |m: String| Err(Error(m));
    match doc.get("version") {
        None if is_blank(doc) && new_version < 1 => fail(format!(
            "config_version must be a positive integer, got {}",
            new_version
        )),
        None => Ok(if is_blank(doc) { new_version } else { 1 }),
        Some(Item::Value(Value::Integer(i))) if *i.value() < 1 => fail(format!(
            "invalid config: `version` must be a positive integer (containerd knows 1, 2 and 3), found {}",
            i.value()
        )),
        Some(Item::Value(Value::Integer(i))) => Ok(*i.value()),
        Some(Item::Value(v)) => fail(format!(
            "invalid config: `version` must be an integer, found the {} {}",
            v.type_name(),
            v.to_string().trim()
        )),
        Some(other) => fail(format!(
            "invalid config: `version` must be an integer, found a {}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> DocumentMut {
        text.parse().unwrap()
    }

    #[test]
    fn a_version_below_one_is_refused() {
        for text in ["version = -3\n", "version = 0\n"] {
            let e = detect_version(&doc(text), 2).unwrap_err();
            assert!(e.to_string().contains("positive"), "{}", e);
        }
        assert!(detect_version(&doc(""), 0).is_err());
        assert!(detect_version(&doc(""), -1).is_err());
        let e = detect_version(&doc("version = \"2\"\n"), 2).unwrap_err();
        assert!(e.to_string().contains("must be an integer"), "{}", e);
        assert_eq!(detect_version(&doc("version = 3\n"), 2).unwrap(), 3);
        assert_eq!(detect_version(&doc("root = \"/x\"\n"), 2).unwrap(), 1);
        assert_eq!(detect_version(&doc("# only a comment\n"), 2).unwrap(), 2);
    }

    #[test]
    fn the_cri_plugin_moved_in_versions_2_and_3() {
        let v1 = Layout::for_version(1);
        assert_eq!(v1.runtimes(), ["plugins", "cri", "containerd", "runtimes"]);
        assert_eq!(v1.cdi_parent(), ["plugins", "cri", "containerd"]);
        let v2 = Layout::for_version(2);
        assert_eq!(v2.cri(), ["plugins", "io.containerd.grpc.v1.cri"]);
        assert_eq!(v2.cdi_parent(), v2.cri());
        for v in [3, 4] {
            assert_eq!(
                Layout::for_version(v).containerd(),
                ["plugins", "io.containerd.cri.v1.runtime", "containerd"]
            );
        }
        let d = doc("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\nx = 1\n");
        let mut path = v2.runtimes();
        path.push("nvidia");
        assert!(get(d.as_item(), &path).is_some_and(Item::is_table_like));
        assert!(get(d.as_item(), &Layout::for_version(3).runtimes()).is_none());
    }
}
