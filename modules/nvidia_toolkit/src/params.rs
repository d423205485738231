//! The module's options: the argument spec (the one place of their defaults; choices made from the enums below,
//! [`Choice`]), then read into one typed, checked struct.

use std::path::PathBuf;
use std::time::Duration;

use ansible_module::{Choice, Kind, Module, ModuleSpec, Opt};
use anyhow::{bail, Result};

use crate::key;

/// NVIDIA's repository signing key (primary key fingerprint).
pub const NVIDIA_FINGERPRINT: &str = "C95B321B61E88C1809C4F759DDCAE044F796ECB0";
/// The four packages that make up the toolkit; they must carry the same version.
pub const DEFAULT_PACKAGES: [&str; 4] = [
    "nvidia-container-toolkit",
    "nvidia-container-toolkit-base",
    "libnvidia-container-tools",
    "libnvidia-container1",
];

/// The module's argument spec.
pub fn spec() -> ModuleSpec {
    ModuleSpec::new(vec![
        Opt::str("state")
            .default(State::Present.as_str())
            .choices_of::<State>(),
        Opt::str("version"),
        Opt::list("packages", Kind::Str).default(DEFAULT_PACKAGES.to_vec()),
        Opt::str("repo_url"),
        Opt::str("channel")
            .default(Channel::Stable.as_str())
            .choices_of::<Channel>(),
        Opt::str("key"),
        Opt::str("fingerprint").default(NVIDIA_FINGERPRINT),
        Opt::path("keyring_path"),
        Opt::path("list_path"),
        Opt::str("conflicts")
            .default(Conflicts::Remove.as_str())
            .choices_of::<Conflicts>(),
        Opt::bool("hold"),
        Opt::int("lock_timeout").default(120),
        Opt::str("min_driver_version").default(node_facts::version::MIN_DRIVER),
        Opt::str("driver_check")
            .default(DriverCheck::Warn.as_str())
            .choices_of::<DriverCheck>(),
    ])
    .supports_check_mode()
}

/// `state`: the toolkit installed (the pinned `version`, else completed at the installed one), at the
/// repository's newest version, or removed with its list file and keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Latest,
    Absent,
}

impl Choice for State {
    const ALL: &'static [State] = &[State::Present, State::Latest, State::Absent];
    fn as_str(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Latest => "latest",
            State::Absent => "absent",
        }
    }
}

/// `channel`: which of NVIDIA's repositories the default `repo_url` points at (its path holds the word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stable,
    Experimental,
}

impl Choice for Channel {
    const ALL: &'static [Channel] = &[Channel::Stable, Channel::Experimental];
    fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Experimental => "experimental",
        }
    }
}

/// `conflicts`: what to do with other list files for the same repository (remove them, or fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflicts {
    Remove,
    Fail,
}

impl Choice for Conflicts {
    const ALL: &'static [Conflicts] = &[Conflicts::Remove, Conflicts::Fail];
    fn as_str(self) -> &'static str {
        match self {
            Conflicts::Remove => "remove",
            Conflicts::Fail => "fail",
        }
    }
}

/// `driver_check`: no loaded driver, or one older than `min_driver_version`, fails the run before anything
/// changes, warns, or is not looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverCheck {
    Required,
    Warn,
    Skip,
}

impl Choice for DriverCheck {
    const ALL: &'static [DriverCheck] =
        &[DriverCheck::Required, DriverCheck::Warn, DriverCheck::Skip];
    fn as_str(self) -> &'static str {
        match self {
            DriverCheck::Required => "required",
            DriverCheck::Warn => "warn",
            DriverCheck::Skip => "skip",
        }
    }
}

/// Every option, typed and checked.
#[derive(Debug, Clone)]
pub struct Params {
    pub state: State,
    pub version: Option<String>,
    pub packages: Vec<String>,
    /// The repository URL as written in the list line (may contain apt's `$(ARCH)`).
    pub repo_url: String,
    pub key: Option<String>,
    pub fingerprint: String,
    /// `None`: the backend's default place.
    pub keyring_path: Option<PathBuf>,
    pub list_path: Option<PathBuf>,
    pub remove_conflicts: bool,
    /// `Some(true)`: hold the packages; `Some(false)`: release a hold; `None`: leave holds alone.
    pub hold: Option<bool>,
    pub lock_timeout: Duration,
    pub min_driver_version: String,
    pub driver_check: DriverCheck,
}

impl Params {
    pub fn from_module(m: &Module) -> Result<Params> {
        let state: State = m.choice("state")?;
        let version = m.str("version").map(str::trim).filter(|v| !v.is_empty());
        if let Some(v) = version {
            if !is_package_version(v) {
                bail!(
                    "version '{}' is not a Debian package version such as 1.17.8-1",
                    v
                );
            }
            if state == State::Latest {
                bail!("version and state=latest contradict each other: pin a version or ask for the latest");
            }
        }
        let packages = m.str_list("packages");
        if packages.is_empty() {
            bail!("packages must name at least one package");
        }
        if let Some(bad) = packages.iter().find(|p| !is_package_name(p)) {
            bail!("'{}' is not a valid package name", bad);
        }
        let channel: Channel = m.choice("channel")?;
        let repo_url = match m.str("repo_url").map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!(
                "https://nvidia.github.io/libnvidia-container/{}/deb/$(ARCH)",
                channel.as_str()
            ),
        };
        if repo_url
            .chars()
            .any(|c| c.is_whitespace() || c == '[' || c == ']')
        {
            bail!(
                "repo_url '{}' cannot contain spaces or brackets (it goes into an apt list line)",
                repo_url
            );
        }
        if !repo_url.contains(':') {
            bail!(
                "repo_url '{}' needs a scheme (https:, http:, file:)",
                repo_url
            );
        }
        let timeout = m.given_int("lock_timeout")?;
        if timeout < 0 {
            bail!("lock_timeout must be 0 or more seconds, got {}", timeout);
        }
        let min_driver_version = m.given_str("min_driver_version")?.to_string();
        if !node_facts::version::is_minimum_version(&min_driver_version) {
            bail!(
                "min_driver_version '{}' must be a dotted number such as 470.82.01",
                min_driver_version
            );
        }
        Ok(Params {
            state,
            version: version.map(String::from),
            packages,
            repo_url,
            key: m
                .str("key")
                .filter(|k| !k.trim().is_empty())
                .map(String::from),
            fingerprint: key::normalize_fingerprint(m.given_str("fingerprint")?)?,
            keyring_path: checked_path(m, "keyring_path")?,
            list_path: checked_path(m, "list_path")?,
            remove_conflicts: m.choice::<Conflicts>("conflicts")? == Conflicts::Remove,
            hold: m.get("hold").and_then(serde_json::Value::as_bool),
            lock_timeout: Duration::from_secs(timeout as u64),
            min_driver_version,
            driver_check: m.choice("driver_check")?,
        })
    }
}

/// A file path option, refused unless it passes `node_facts::path::absolute` (absolute, no `..` step, no NUL
/// byte): the module runs as root from whatever directory Ansible left it in, and apt is handed these paths too.
fn checked_path(m: &Module, option: &str) -> Result<Option<PathBuf>> {
    m.str(option)
        .map(|text| node_facts::path::absolute(option, text).map_err(anyhow::Error::msg))
        .transpose()
}

/// Debian's package name rule: lower case letters, digits, `+ - .`, at least two characters.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Debian's version characters (epoch, upstream, revision); enough to keep `pkg=version` one safe argument.
pub fn is_package_version(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_and_versions() {
        assert!(is_package_name("libnvidia-container1"));
        assert!(!is_package_name("Bad_Name"));
        assert!(!is_package_name("-o"));
        assert!(is_package_version("1.17.8-1"));
        assert!(is_package_version("1:2.0~rc1-0ubuntu1"));
        assert!(!is_package_version("1.0 -o x"));
        assert!(!is_package_version("latest"));
    }

    fn module(args: serde_json::Value) -> Module {
        let serde_json::Value::Object(args) = args else {
            unreachable!()
        };
        Module::from_args("nvidia_toolkit", &spec(), args).unwrap()
    }

    #[test]
    fn choices_come_from_the_enums_and_read_back_as_them() {
        let spec = spec().argument_spec();
        for (option, words, default) in [
            ("state", State::names(), "present"),
            ("channel", Channel::names(), "stable"),
            ("conflicts", Conflicts::names(), "remove"),
            ("driver_check", DriverCheck::names(), "warn"),
        ] {
            assert_eq!(
                spec[option]["choices"],
                serde_json::json!(words),
                "{option}"
            );
            assert_eq!(spec[option]["default"], default, "{option}");
        }
        let p = Params::from_module(&module(serde_json::json!({}))).unwrap();
        assert_eq!(
            (p.state, p.remove_conflicts, p.driver_check),
            (State::Present, true, DriverCheck::Warn)
        );
        assert_eq!(p.min_driver_version, "470.82.01");
        assert_eq!(p.fingerprint, NVIDIA_FINGERPRINT);
        assert!(p.repo_url.contains("/stable/"), "{}", p.repo_url);
        let p = Params::from_module(&module(serde_json::json!({
            "state": "absent", "channel": "experimental", "conflicts": "fail", "driver_check": "skip",
        })))
        .unwrap();
        assert_eq!(
            (p.state, p.remove_conflicts, p.driver_check),
            (State::Absent, false, DriverCheck::Skip)
        );
        assert!(p.repo_url.contains("/experimental/"), "{}", p.repo_url);
        let p = Params::from_module(&module(
            serde_json::json!({"state": "latest", "driver_check": "required"}),
        ))
        .unwrap();
        assert_eq!(
            (p.state, p.driver_check),
            (State::Latest, DriverCheck::Required)
        );
    }

    #[test]
    fn path_options_follow_the_one_path_rule_and_name_the_option() {
        let p = Params::from_module(&module(serde_json::json!({
            "list_path": "/etc/apt/sources.list.d/nvidia.list",
        })))
        .unwrap();
        assert_eq!(
            p.list_path.as_deref(),
            Some(std::path::Path::new("/etc/apt/sources.list.d/nvidia.list"))
        );
        assert_eq!(p.keyring_path, None);
        for (option, bad, says) in [
            ("keyring_path", "keyring.gpg", "must be an absolute path"),
            ("list_path", "../nvidia.list", "must be an absolute path"),
            ("list_path", "/etc/apt/../../tmp/x", "without '..' steps"),
            ("keyring_path", "", "must be an absolute path"),
            ("list_path", "/etc/a\0b", "must not contain a NUL byte"),
        ] {
            let err = Params::from_module(&module(serde_json::json!({ option: bad })))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("{option} ")) && err.contains(says),
                "{bad:?}: {err}"
            );
        }
    }
}
