//! The plan step of a `present`/`latest` run: reads the node through the backend (the loaded driver, the key,
//! the repository files, clashing list files, dpkg's database) and decides everything the run will do, changing
//! nothing. Every refusal of bad input happens here, so it fails before anything is written. `apply.rs` carries
//! the plan out (or, in check mode, predicts it) and `report.rs` builds the answer from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ansible_module::safe_file;
use anyhow::{bail, Context as _, Result};

use crate::backend::{Backend, Conflict, Installed, RepoFile};
use crate::driver;
use crate::key::{self, VerifiedKey};
use crate::package_plan::{self, PackagePlan};
use crate::params::{DriverCheck, Params};

/// A repository file whose contents differ from what they must be, with what it holds now.
#[derive(Debug, Clone)]
pub struct FileWrite {
    pub file: RepoFile,
    /// `None`: the file does not exist yet.
    pub before: Option<Vec<u8>>,
}

/// A clashing list file the run removes, with what it holds now (for the diff).
#[derive(Debug, Clone)]
pub struct ListRemoval {
    pub conflict: Conflict,
    pub before: Vec<u8>,
}

/// Everything a run will do, decided before it does any of it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The loaded driver's version; `None` when not checked or not found (and allowed).
    pub driver_version: Option<String>,
    pub key: VerifiedKey,
    pub keyring_path: PathBuf,
    pub writes: Vec<FileWrite>,
    /// Only removable files: any other clash refuses the run in the plan step.
    pub removals: Vec<ListRemoval>,
    /// The packages among `packages` as dpkg has them before the run.
    pub installed: BTreeMap<String, Installed>,
    pub packages: PackagePlan,
}

/// Reads the node and decides. Warnings (an old driver under `warn`, expired subkeys) go to `warnings` as they
/// are found, so the caller can still report them when a later check refuses the run.
pub fn plan(
    p: &Params,
    b: &dyn Backend,
    driver_file: &Path,
    warnings: &mut Vec<String>,
) -> Result<Plan> {
    let driver_version = check_driver(p, driver_file, warnings)?;
    let key = load_key(p, b)?;
    warnings.extend(key.warnings.iter().cloned());
    let mut writes = Vec::new();
    for file in b.repo_files(p, &key) {
        let before = safe_file::read_optional(&file.path)?;
        if before.as_deref() != Some(&file.contents[..]) {
            writes.push(FileWrite { file, before });
        }
    }
    let conflicts = b.conflicts(p)?;
    refuse_conflicts(p, &conflicts)?;
    let installed = b.installed(&p.packages)?;
    let packages = package_plan::plan(
        p.state,
        p.version.as_deref(),
        &p.packages,
        &installed,
        p.hold,
    );
    let mut removals = Vec::new();
    for conflict in conflicts {
        let before = safe_file::read_optional(&conflict.path)?.unwrap_or_default();
        removals.push(ListRemoval { conflict, before });
    }
    Ok(Plan {
        driver_version,
        keyring_path: b.keyring_path(p),
        key,
        writes,
        removals,
        installed,
        packages,
    })
}

/// The driver check: a failure with `required`, a warning with `warn`. Returns the version found.
fn check_driver(
    p: &Params,
    driver_file: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<String>> {
    if p.driver_check == DriverCheck::Skip {
        return Ok(None);
    }
    let found = driver::detect(driver_file)?;
    let problem = match &found {
        None => Some(format!(
            "no NVIDIA driver is loaded (no {} and no nvidia-smi); the toolkit needs driver {} or newer",
            driver_file.display(),
            p.min_driver_version
        )),
        Some(d) if node_facts::version::compare(&d.version, &p.min_driver_version).is_lt() => Some(format!(
            "the loaded NVIDIA driver {} (from {}) is older than the {} the toolkit needs",
            d.version, d.source, p.min_driver_version
        )),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        if p.driver_check == DriverCheck::Required {
            bail!("{} (driver_check: required)", problem);
        }
        warnings.push(problem);
    }
    Ok(found.map(|d| d.version))
}

/// The key from the `key` option (text or a path on the node), else the keyring already installed.
fn load_key(p: &Params, b: &dyn Backend) -> Result<VerifiedKey> {
    let now = SystemTime::now();
    match &p.key {
        Some(text) if key::is_inline(text) => key::verify(
            text.as_bytes(),
            &p.fingerprint,
            "the key given as text",
            now,
        ),
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the key file {} (fetch it onto the node first, e.g. with get_url)",
                    path
                )
            })?;
            key::verify(
                &bytes,
                &p.fingerprint,
                &format!("the key file {}", path),
                now,
            )
        }
        None => {
            let keyring = b.keyring_path(p);
            let bytes = safe_file::read_optional(&keyring)?.with_context(|| {
                format!(
                    "key is required: there is no keyring at {} yet",
                    keyring.display()
                )
            })?;
            key::verify(
                &bytes,
                &p.fingerprint,
                &format!("the keyring {}", keyring.display()),
                now,
            )
        }
    }
}

/// Refuses clashing files the module may not (or was told not to) remove, naming every one.
fn refuse_conflicts(p: &Params, conflicts: &[Conflict]) -> Result<()> {
    let blocking: Vec<&Conflict> = conflicts
        .iter()
        .filter(|c| !p.remove_conflicts || !c.removable)
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    bail!(
        "other apt sources define the same repository, which makes apt fail with 'Conflicting values set \
         for option Signed-By': {}{}",
        blocking
            .iter()
            .map(|c| format!("{} ({})", c.path.display(), c.why))
            .collect::<Vec<_>>()
            .join(", "),
        if p.remove_conflicts {
            ""
        } else {
            "; remove them or set conflicts: remove"
        }
    )
}
