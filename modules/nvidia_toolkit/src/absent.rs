//! `state: absent` in three steps: the plan (which of the packages are installed, which of the repository
//! files exist, with their contents), the apply step (packages removed first, then the files) and the report.

use std::path::PathBuf;

use ansible_module::safe_file;
use ansible_module::{Diff, Response};
use anyhow::Result;
use serde_json::json;

use crate::backend::Backend;
use crate::package_plan;
use crate::params::{Params, State};

/// What an `absent` run removes.
#[derive(Debug, Clone)]
pub struct AbsentPlan {
    /// The installed ones among `packages`.
    pub packages: Vec<String>,
    /// The repository files that exist, with their contents and whether they are the binary keyring.
    pub files: Vec<ExistingFile>,
}

#[derive(Debug, Clone)]
pub struct ExistingFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub is_keyring: bool,
}

/// The whole `absent` run: plan, then (unless in check mode) apply, then report.
pub fn converge(p: &Params, b: &dyn Backend, check_mode: bool) -> Result<Response> {
    let plan = plan(p, b)?;
    if !check_mode {
        apply(p, b, &plan)?;
    }
    Ok(report(&plan, check_mode))
}

fn plan(p: &Params, b: &dyn Backend) -> Result<AbsentPlan> {
    let installed = b.installed(&p.packages)?;
    let packages = package_plan::plan(State::Absent, None, &p.packages, &installed, None).remove;
    let keyring = b.keyring_path(p);
    let mut files = Vec::new();
    for path in b.managed_paths(p) {
        if let Some(contents) = safe_file::read_optional(&path)? {
            files.push(ExistingFile {
                is_keyring: path == keyring,
                path,
                contents,
            });
        }
    }
    Ok(AbsentPlan { packages, files })
}

/// Packages first, so a removal that fails leaves the repository they came from in place for the next try.
fn apply(p: &Params, b: &dyn Backend, plan: &AbsentPlan) -> Result<()> {
    if !plan.packages.is_empty() {
        b.wait_for_lock(p.lock_timeout)?;
        b.remove(&plan.packages, p.lock_timeout)?;
    }
    for f in &plan.files {
        safe_file::remove(&f.path)?;
    }
    Ok(())
}

fn report(plan: &AbsentPlan, check_mode: bool) -> Response {
    let mut changes = Vec::new();
    if !plan.packages.is_empty() {
        changes.push(format!("removed packages {}", plan.packages.join(" ")));
    }
    for f in &plan.files {
        changes.push(format!("removed {}", f.path.display()));
    }
    let mut r = Response::new(!changes.is_empty())
        .msg(if changes.is_empty() {
            "already absent".to_string()
        } else {
            changes.join("; ")
        })
        .set("changes", json!(changes))
        .set("apt_called", !plan.packages.is_empty() && !check_mode);
    for f in &plan.files {
        let before = if f.is_keyring {
            format!("<binary keyring, {} bytes>\n", f.contents.len())
        } else {
            String::from_utf8_lossy(&f.contents).into_owned()
        };
        r = r.diff(Diff::file(&f.path.display().to_string(), before, ""));
    }
    r
}
