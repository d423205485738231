//! Where things live in containerd's config for each config `version`, and how the version is read.
//!
//! | version | CRI plugin table | runtimes | CDI key parent |
//! |---|---|---|---|
//! | 1 | `plugins.cri` | `plugins.cri.containerd.runtimes` | `plugins.cri.containerd` |
//! | 2 | `plugins."io.containerd.grpc.v1.cri"` | `...containerd.runtimes` | the CRI plugin table |
//! | 3, 4, later | `plugins."io.containerd.cri.v1.runtime"` | `...containerd.runtimes` | the CRI plugin table |

use anyhow::{bail, Result};
use toml_edit::{DocumentMut, Item, Value};

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

    /// `plugins.<cri>.containerd`: where `default_runtime_name` lives.
    pub fn containerd(&self) -> Vec<&'static str> {
        vec![self.cri[0], self.cri[1], "containerd"]
    }

    /// `plugins.<cri>.containerd.runtimes`.
    pub fn runtimes(&self) -> Vec<&'static str> {
        vec![self.cri[0], self.cri[1], "containerd", "runtimes"]
    }

    /// The table that holds `enable_cdi` (version 1 puts it under `containerd`, as the reference does).
    pub fn cdi_parent(&self) -> Vec<&'static str> {
        if self.version <= 1 {
            self.containerd()
        } else {
            self.cri.to_vec()
        }
    }
}

/// A document with no key and no table: a new config (a missing, 0-byte or comments-only file).
pub fn is_blank(doc: &DocumentMut) -> bool {
    doc.as_table().is_empty()
}

/// The config version a document declares: `version` when it is an integer, 1 for a non-empty document
/// without one (containerd's own rule), `new_version` for a blank one. A `version` of another type, or one
/// below 1, fails.
pub fn detect_version(doc: &DocumentMut, new_version: i64) -> Result<i64> {
    match doc.get("version") {
        None if is_blank(doc) && new_version < 1 => bail!(
            "config_version must be a positive integer, got {}",
            new_version
        ),
        None => Ok(if is_blank(doc) { new_version } else { 1 }),
        Some(Item::Value(Value::Integer(i))) if *i.value() < 1 => bail!(
            "invalid config: `version` must be a positive integer (containerd knows 1, 2 and 3), found {}",
            i.value()
        ),
        Some(Item::Value(Value::Integer(i))) => Ok(*i.value()),
        Some(Item::Value(v)) => bail!(
            "invalid config: `version` must be an integer, found the {} {}",
            v.type_name(),
            v.to_string().trim()
        ),
        Some(other) => bail!(
            "invalid config: `version` must be an integer, found a {}",
            other.type_name()
        ),
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
        assert_eq!(detect_version(&doc("version = 3\n"), 2).unwrap(), 3);
        assert_eq!(detect_version(&doc("root = \"/x\"\n"), 2).unwrap(), 1);
        assert_eq!(detect_version(&doc("# only a comment\n"), 2).unwrap(), 2);
    }
}
