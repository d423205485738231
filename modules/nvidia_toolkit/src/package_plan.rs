//! The packages' part of a run's plan (`plan.rs`): what must happen to them, decided from what is installed and
//! what was asked, without touching anything. Pure, so every rule is tested on its own.

use std::collections::BTreeMap;

use crate::backend::Installed;
use crate::params::State;

/// Which version the packages must end up at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing to install.
    Keep,
    /// Install (or move) every package to this version.
    Version(String),
    /// The repository's newest version, known only after its index is fetched.
    Newest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePlan {
    pub target: Target,
    pub hold: Vec<String>,
    pub unhold: Vec<String>,
    pub remove: Vec<String>,
}

impl PackagePlan {
    pub fn is_noop(&self) -> bool {
        self.target == Target::Keep
            && self.hold.is_empty()
            && self.unhold.is_empty()
            && self.remove.is_empty()
    }
}

/// Whether every package is installed at exactly `version`.
pub fn all_at(packages: &[String], installed: &BTreeMap<String, Installed>, version: &str) -> bool {
    packages
        .iter()
        .all(|p| installed.get(p).is_some_and(|i| i.version == version))
}

/// Plans the packages. `present` without a version never upgrades: it completes the set at the version
/// already installed (the first package's), or installs the newest when none is installed.
pub fn plan(
    state: State,
    version: Option<&str>,
    packages: &[String],
    installed: &BTreeMap<String, Installed>,
    hold: Option<bool>,
) -> PackagePlan {
    let mut out = PackagePlan {
        target: Target::Keep,
        hold: Vec::new(),
        unhold: Vec::new(),
        remove: Vec::new(),
    };
    if state == State::Absent {
        out.remove = packages
            .iter()
            .filter(|p| installed.contains_key(*p))
            .cloned()
            .collect();
        return out;
    }
    out.target = match (state, version) {
        (State::Latest, _) => Target::Newest,
        (_, Some(v)) if all_at(packages, installed, v) => Target::Keep,
        (_, Some(v)) => Target::Version(v.to_string()),
        (_, None) => match packages.iter().find_map(|p| installed.get(p)) {
            Some(first) if all_at(packages, installed, &first.version) => Target::Keep,
            Some(first) => Target::Version(first.version.clone()),
            None => Target::Newest,
        },
    };
    match hold {
        Some(true) => {
            out.hold = packages
                .iter()
                .filter(|p| !installed.get(*p).is_some_and(|i| i.held))
                .cloned()
                .collect()
        }
        Some(false) => {
            out.unhold = packages
                .iter()
                .filter(|p| installed.get(*p).is_some_and(|i| i.held))
                .cloned()
                .collect()
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkgs() -> Vec<String> {
        ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect()
    }

    fn inst(list: &[(&str, &str, bool)]) -> BTreeMap<String, Installed> {
        list.iter()
            .map(|(n, v, h)| {
                (
                    n.to_string(),
                    Installed {
                        version: v.to_string(),
                        held: *h,
                    },
                )
            })
            .collect()
    }

    fn all(v: &str, held: bool) -> BTreeMap<String, Installed> {
        inst(&[
            ("a", v, held),
            ("b", v, held),
            ("c", v, held),
            ("d", v, held),
        ])
    }

    #[test]
    fn a_pinned_set_already_there_is_a_noop() {
        let p = plan(
            State::Present,
            Some("1.17.8-1"),
            &pkgs(),
            &all("1.17.8-1", false),
            None,
        );
        assert!(p.is_noop(), "{p:?}");
    }

    #[test]
    fn a_pin_change_or_a_missing_package_installs_the_pin() {
        let p = plan(
            State::Present,
            Some("1.18.0-1"),
            &pkgs(),
            &all("1.17.8-1", false),
            None,
        );
        assert_eq!(p.target, Target::Version("1.18.0-1".into()));
        let partial = inst(&[("a", "1.17.8-1", false), ("b", "1.17.8-1", false)]);
        let p = plan(State::Present, Some("1.17.8-1"), &pkgs(), &partial, None);
        assert_eq!(p.target, Target::Version("1.17.8-1".into()));
    }

    #[test]
    fn present_without_a_version_completes_the_set_without_upgrading() {
        let partial = inst(&[("a", "1.17.8-1", false), ("c", "1.17.7-1", false)]);
        let p = plan(State::Present, None, &pkgs(), &partial, None);
        assert_eq!(p.target, Target::Version("1.17.8-1".into()));
        assert!(plan(State::Present, None, &pkgs(), &all("1.17.8-1", false), None).is_noop());
        let p = plan(State::Present, None, &pkgs(), &BTreeMap::new(), None);
        assert_eq!(p.target, Target::Newest);
    }

    #[test]
    fn latest_always_asks_the_repository() {
        let p = plan(State::Latest, None, &pkgs(), &all("1.18.0-1", false), None);
        assert_eq!(p.target, Target::Newest);
    }

    #[test]
    fn holds_only_what_is_not_held_and_releases_only_what_is() {
        let mixed = inst(&[
            ("a", "1", true),
            ("b", "1", false),
            ("c", "1", true),
            ("d", "1", false),
        ]);
        let p = plan(State::Present, Some("1"), &pkgs(), &mixed, Some(true));
        assert_eq!(p.target, Target::Keep);
        assert_eq!(p.hold, vec!["b".to_string(), "d".to_string()]);
        let p = plan(State::Present, Some("1"), &pkgs(), &mixed, Some(false));
        assert_eq!(p.unhold, vec!["a".to_string(), "c".to_string()]);
        assert!(plan(
            State::Present,
            Some("1"),
            &pkgs(),
            &all("1", true),
            Some(true)
        )
        .is_noop());
        assert!(plan(State::Present, Some("1"), &pkgs(), &mixed, None).is_noop());
    }

    #[test]
    fn absent_removes_what_is_installed() {
        let partial = inst(&[("b", "1", true)]);
        let p = plan(State::Absent, None, &pkgs(), &partial, Some(true));
        assert_eq!(p.remove, vec!["b".to_string()]);
        assert_eq!(p.target, Target::Keep);
        assert!(plan(State::Absent, None, &pkgs(), &BTreeMap::new(), None).is_noop());
    }
}
