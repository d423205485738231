//! The `nvidia_toolkit` Ansible module: NVIDIA's container toolkit from its repository, with a verified key,
//! pinned packages and a run that touches neither apt nor the network when the node is already right.
//!
//! A run has three steps, so that bad input fails before anything is written and check mode predicts from the
//! same decisions a real run acts on:
//! - plan (`plan.rs`): driver check, key check, repository files, clashing list files, the package plan from
//!   dpkg's status file; reads only;
//! - apply (`apply.rs`): only when something differs, the files are written and apt refreshes this one
//!   repository and installs the pinned set; a failure after a file was written puts the files back;
//! - report (`report.rs`): the answer, with diffs and the node's state.
//!
//! `state: absent` has its own three steps (`absent.rs`).

pub mod absent;
pub mod apply;
pub mod apt;
pub mod backend;
pub mod dpkg;
pub mod driver;
pub mod key;
pub mod package_plan;
pub mod params;
pub mod plan;
pub mod report;
pub mod rollback;
pub mod secrets;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ansible_module::safe_file::DirLock;
use ansible_module::{Module, ModuleSpec, Response};
use anyhow::Result;

use backend::Backend;
use params::{Params, State};

/// Where the loaded kernel module reports its version.
pub const DRIVER_VERSION_FILE: &str = "/proc/driver/nvidia/version";

/// The module's argument spec.
pub fn spec() -> ModuleSpec {
    params::spec()
}

/// Runs the module on this node with the apt backend (the only one so far: a dnf backend would be picked
/// here, by which package manager the node has).
pub fn run(m: &mut Module) -> Result<Response> {
    secrets::register(m);
    let p = Params::from_module(m)?;
    let apt = apt::Apt::system();
    converge(m, &p, &apt, Path::new(DRIVER_VERSION_FILE))
}

/// The whole run against any backend; `driver_file` is the kernel's version report.
pub fn converge(
    m: &mut Module,
    p: &Params,
    b: &dyn Backend,
    driver_file: &Path,
) -> Result<Response> {
    let started = Instant::now();
    // The keyring's and the list's directories stay locked from the first read to the last write, so two runs
    // never interleave their changes (the same lock containerd_runtime takes for containerd's config).
    let managed_paths = b.managed_paths(p);
    let managed_paths: Vec<&Path> = managed_paths.iter().map(PathBuf::as_path).collect();
    let _locks = DirLock::acquire_all(&managed_paths, p.lock_timeout)?;
    if p.state == State::Absent {
        return absent::converge(p, b, m.check_mode());
    }
    let mut warnings = Vec::new();
    let planned = plan::plan(p, b, driver_file, &mut warnings);
    // Warnings found before a refusal are still worth reporting with it.
    for w in warnings {
        m.warn(w);
    }
    let plan = planned?;
    let (outcome, after) = if m.check_mode() {
        (apply::predict(p, b, &plan), plan.installed.clone())
    } else {
        let outcome = apply::apply(p, b, &plan)?;
        (outcome, b.installed(&p.packages)?)
    };
    Ok(report::report(
        p,
        &plan,
        &outcome,
        &after,
        started.elapsed(),
    ))
}
