//! containerd's config as containerd itself reads it: where the CRI plugin and its runtimes live in each config
//! version ([`layout`]), which files an `imports` list loads and in what order ([`imports`]), and how an imported
//! file is merged into what was loaded before it ([`merge`]). The rules differ between containerd releases;
//! [`Rules`] says which apply.

pub mod imports;
pub mod layout;
pub mod merge;

use std::fmt;

/// Where containerd reads its config when not told otherwise (`containerd --config`): the default of both
/// modules' `path`.
pub const CONFIG: &str = "/etc/containerd/config.toml";

/// The runtime name NVIDIA's `nvidia-ctk runtime configure` gives the NVIDIA runtime, and the RuntimeClass
/// handler GPU pods name: the default of both modules' `name`.
pub const NVIDIA_RUNTIME: &str = "nvidia";

/// How a containerd release loads imported files. Read from containerd's `LoadConfig`, `resolveImports` and
/// `mergeConfig` (1.x: `services/server/config`, 2.x: `cmd/containerd/server/config`) and checked with
/// `containerd config dump` of Debian's containerd 1.6.20, 1.7.24 and 2.1.9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// 2.x merges an imported plugin table key by key into the loaded one; 1.x replaces the whole plugin
    /// table (so a minimal drop-in holding one CRI runtime drops every other CRI setting).
    pub plugins_merge_deeply: bool,
    /// 2.x adds only the entries of a top-level array (`imports`, `disabled_plugins`, `required_plugins`)
    /// that are not there yet; 1.x appends them all.
    pub arrays_append_unique: bool,
    /// A relative `imports` entry with a `*` is relative to the importing file's folder (1.7.24, 2.x); in
    /// 1.6.20 it is relative to containerd's working directory, `/` under systemd. containerd changed this in
    /// 2024 (2.0, and 1.7 by 1.7.24); every 1.6 is taken to glob the old way, as Debian's 1.6.20 does.
    pub relative_globs_from_file: bool,
}

impl Rules {
    /// The rules of containerd `major.minor`; `None` (no containerd to ask) gives 2.x's, the current ones.
    pub fn of(release: Option<(u32, u32)>) -> Rules {
        let (major, minor) = release.unwrap_or((2, 0));
        Rules {
            plugins_merge_deeply: major >= 2,
            arrays_append_unique: major >= 2,
            relative_globs_from_file: (major, minor) >= (1, 7),
        }
    }
}

/// A config that cannot be read as containerd would read it; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::Rules;

    #[test]
    fn each_release_gets_its_own_rules() {
        let old = Rules::of(Some((1, 6)));
        assert!(
            !old.plugins_merge_deeply && !old.arrays_append_unique && !old.relative_globs_from_file
        );
        let one_seven = Rules::of(Some((1, 7)));
        assert!(!one_seven.plugins_merge_deeply && one_seven.relative_globs_from_file);
        for two in [Rules::of(Some((2, 1))), Rules::of(None)] {
            assert!(
                two.plugins_merge_deeply
                    && two.arrays_append_unique
                    && two.relative_globs_from_file
            );
        }
    }
}
