//! The apply step: carries a plan (`plan.rs`) out, or, in check mode, predicts what carrying it out would do
//! without changing anything. A real run writes the repository files atomically, removes clashing lists,
//! waits for the dpkg lock, refreshes this one repository's index, installs the pinned set and sets holds; when
//! any of it fails, the repository files are put back as they were and the error says so.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::backend::{Backend, Installed};
use crate::package_plan::{all_at, Target};
use crate::params::Params;
use crate::plan::Plan;
use crate::rollback::FileChanges;

/// Where the packages' version went (or, in check mode, would go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionChange {
    Unchanged,
    To(String),
    /// Check mode, `latest` or a first install, when the index on the node does not name the newest version.
    ToNewestUnknown,
}

/// What the apply step did (or would do), for the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub version: VersionChange,
    /// Whether a package tool was run.
    pub apt_called: bool,
    /// How long the dpkg lock kept the run waiting.
    pub lock_wait: Duration,
}

/// Check mode: what `apply` would do, from what is on the node. Only the repository's newest version needs a
/// look at the package manager, and it reads the index already there (check mode fetches nothing).
pub fn predict(p: &Params, b: &dyn Backend, plan: &Plan) -> Outcome {
    let (version, apt_called) = match &plan.packages.target {
        Target::Keep => (VersionChange::Unchanged, false),
        Target::Version(v) => (VersionChange::To(v.clone()), false),
        // A failure to read the index only leaves the version unknown: check mode predicts, it does not fail.
        Target::Newest => match b
            .offered(p, &p.packages)
            .ok()
            .and_then(|o| newest_of(p, &o))
        {
            Some(v) if all_at(&p.packages, &plan.installed, &v) => (VersionChange::Unchanged, true),
            Some(v) => (VersionChange::To(v), true),
            None => (VersionChange::ToNewestUnknown, true),
        },
    };
    Outcome {
        version,
        apt_called,
        lock_wait: Duration::ZERO,
    }
}

/// Carries the plan out. On failure every repository file written or removed is put back first.
pub fn apply(p: &Params, b: &dyn Backend, plan: &Plan) -> Result<Outcome> {
    let mut outcome = Outcome {
        version: VersionChange::Unchanged,
        apt_called: false,
        lock_wait: Duration::ZERO,
    };
    let mut changed_files = FileChanges::default();
    let result = apply_steps(p, b, plan, &mut changed_files, &mut outcome);
    if let Err(e) = result {
        let problems = changed_files.rollback();
        if problems.is_empty() {
            return Err(e.context("repository files were put back as they were"));
        }
        return Err(e.context(format!(
            "and some files could not be put back: {}",
            problems.join("; ")
        )));
    }
    Ok(outcome)
}

fn apply_steps(
    p: &Params,
    b: &dyn Backend,
    plan: &Plan,
    changed_files: &mut FileChanges,
    outcome: &mut Outcome,
) -> Result<()> {
    for w in &plan.writes {
        changed_files.write(&w.file.path, &w.file.contents, w.file.mode)?;
    }
    for r in &plan.removals {
        changed_files.remove(&r.conflict.path)?;
    }
    if plan.packages.is_noop() {
        return Ok(());
    }
    outcome.apt_called = true;
    outcome.lock_wait = b.wait_for_lock(p.lock_timeout)?;
    if plan.packages.target != Target::Keep {
        // The repository's index can only be read once its files are in place and it has been fetched.
        b.refresh(p)?;
        let offered = b.offered(p, &p.packages)?;
        let version = match &plan.packages.target {
            Target::Version(v) => v.clone(),
            _ => newest_of(p, &offered).with_context(|| {
                format!(
                    "{} has no version of {} (is repo_url right?)",
                    p.repo_url, p.packages[0]
                )
            })?,
        };
        if !all_at(&p.packages, &plan.installed, &version) {
            refuse_unoffered(p, &offered, &plan.installed, &version)?;
            b.install(&p.packages, &version, p.lock_timeout)?;
            outcome.version = VersionChange::To(version);
        }
    }
    if !plan.packages.hold.is_empty() {
        b.set_hold(&plan.packages.hold, true)?;
    }
    if !plan.packages.unhold.is_empty() {
        b.set_hold(&plan.packages.unhold, false)?;
    }
    Ok(())
}

/// The newest version of the first package this repository offers (the set moves together).
fn newest_of(p: &Params, offered: &BTreeMap<String, Vec<String>>) -> Option<String> {
    offered.get(&p.packages[0])?.first().cloned()
}

/// Refuses, before the package manager is asked to install anything, a version this repository does not
/// offer for some package (one already installed at that version needs nothing from the repository).
fn refuse_unoffered(
    p: &Params,
    offered: &BTreeMap<String, Vec<String>>,
    installed: &BTreeMap<String, Installed>,
    version: &str,
) -> Result<()> {
    let lacking: Vec<&str> = p
        .packages
        .iter()
        .filter(|name| {
            !offered
                .get(*name)
                .is_some_and(|vs| vs.iter().any(|v| v == version))
                && !installed.get(*name).is_some_and(|i| i.version == version)
        })
        .map(String::as_str)
        .collect();
    let Some(first) = lacking.first() else {
        return Ok(());
    };
    let has = offered
        .get(*first)
        .filter(|vs| !vs.is_empty())
        .map(|vs| vs.join(", "))
        .unwrap_or_else(|| "none".to_string());
    bail!(
        "{} has no version {} of {} (its versions of {}: {})",
        p.repo_url,
        version,
        lacking.join(" "),
        first,
        has
    )
}
