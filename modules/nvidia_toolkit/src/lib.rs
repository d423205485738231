//! The `nvidia_toolkit` Ansible module: NVIDIA's container toolkit from its repository, with a verified key,
//! pinned packages and a run that touches neither apt nor the network when the node is already right.
//!
//! The steps, in order, so that bad input fails before anything is written: driver check, key check,
//! conflicting repository files, package plan (from dpkg's status file); then, only when something differs,
//! the files are written and apt refreshes this one repository and installs the pinned set. A failure after
//! a file was written puts the files back.

pub mod apt;
pub mod backend;
pub mod dpkg;
pub mod driver;
pub mod key;
pub mod params;
pub mod plan;
pub mod rollback;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use ansible_module::safe_file::{self, DirLock};
use ansible_module::{Diff, Module, ModuleSpec, Response};
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Map, Value};

use backend::{Backend, Conflict, RepoFile};
use params::{DriverCheck, Params, State};
use plan::Target;

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
    let managed = b.managed_paths(p);
    let managed: Vec<&Path> = managed.iter().map(PathBuf::as_path).collect();
    let _locks = DirLock::acquire_all(&managed, p.lock_timeout)?;
    if p.state == State::Absent {
        return absent(m, p, b);
    }
    let driver = check_driver(m, p, driver_file)?;
    let key = load_key(p, b)?;
    for w in &key.warnings {
        m.warn(w.clone());
    }
    let files = b.repo_files(p, &key);
    let mut stale = Vec::new();
    for f in &files {
        if safe_file::read_optional(&f.path)?.as_deref() != Some(&f.contents[..]) {
            stale.push(f);
        }
    }
    let conflicts = b.conflicts(p)?;
    refuse_conflicts(p, &conflicts)?;
    let installed = b.installed(&p.packages)?;
    let mut plan = plan::plan(
        p.state,
        p.version.as_deref(),
        &p.packages,
        &installed,
        p.hold,
    );

    let mut changes: Vec<String> = Vec::new();
    let mut diffs = Vec::new();
    for f in &stale {
        changes.push(format!("wrote {}", f.path.display()));
        diffs.push(file_diff(f)?);
    }
    for c in &conflicts {
        changes.push(format!("removed {} ({})", c.path.display(), c.why));
        let before = safe_file::read_optional(&c.path)?.unwrap_or_default();
        diffs.push(Diff::file(
            &c.path.display().to_string(),
            String::from_utf8_lossy(&before),
            "",
        ));
    }

    let mut apt_called = false;
    let mut lock_wait = std::time::Duration::ZERO;
    let mut resolved: Option<String> = match &plan.target {
        Target::Version(v) => Some(v.clone()),
        _ => None,
    };
    if m.check_mode() {
        // Predict `latest` from the index already on the node (check mode fetches nothing).
        if plan.target == Target::Newest {
            apt_called = true;
            match b.candidate(p, &p.packages[0]).ok().flatten() {
                Some(v) if plan::all_at(&p.packages, &installed, &v) => plan.target = Target::Keep,
                Some(v) => resolved = Some(v),
                None => {}
            }
        }
        describe_packages(&plan, resolved.as_deref(), &mut changes);
    } else {
        let mut fc = rollback::FileChanges::default();
        let outcome = (|| -> Result<()> {
            for f in &stale {
                fc.write(&f.path, &f.contents, f.mode)?;
            }
            for c in &conflicts {
                fc.remove(&c.path)?;
            }
            if plan.is_noop() {
                return Ok(());
            }
            apt_called = true;
            lock_wait = b.wait_for_lock(p.lock_timeout)?;
            if plan.target != Target::Keep {
                b.refresh(p)?;
                if plan.target == Target::Newest {
                    let v = b.candidate(p, &p.packages[0])?.with_context(|| {
                        format!(
                            "{} has no version of {} (is repo_url right?)",
                            p.repo_url, p.packages[0]
                        )
                    })?;
                    if plan::all_at(&p.packages, &installed, &v) {
                        plan.target = Target::Keep;
                    }
                    resolved = Some(v);
                }
                if let (Target::Version(_) | Target::Newest, Some(v)) = (&plan.target, &resolved) {
                    b.install(&p.packages, v, p.lock_timeout)?;
                }
            }
            if !plan.hold.is_empty() {
                b.set_hold(&plan.hold, true)?;
            }
            if !plan.unhold.is_empty() {
                b.set_hold(&plan.unhold, false)?;
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            let problems = fc.rollback();
            if problems.is_empty() {
                return Err(e.context("repository files were put back as they were"));
            }
            return Err(e.context(format!(
                "and some files could not be put back: {}",
                problems.join("; ")
            )));
        }
        describe_packages(&plan, resolved.as_deref(), &mut changes);
    }

    let after = if m.check_mode() {
        installed
    } else {
        b.installed(&p.packages)?
    };
    let versions: Map<String, Value> = p
        .packages
        .iter()
        .map(|n| (n.clone(), json!(after.get(n).map(|i| i.version.clone()))))
        .collect();
    let changed = !changes.is_empty();
    let msg = if changed {
        changes.join("; ")
    } else {
        "already as requested".to_string()
    };
    let mut r = Response::new(changed)
        .msg(msg)
        .set("versions", Value::Object(versions))
        .set("fingerprint", key.fingerprint.clone())
        .set("key_expires", json!(key.expires))
        .set("keyring_path", b.keyring_path(p).display().to_string())
        .set("repo_url", p.repo_url.clone())
        .set(
            "removed_lists",
            json!(conflicts
                .iter()
                .map(|c| c.path.display().to_string())
                .collect::<Vec<_>>()),
        )
        .set("changes", json!(changes))
        .set("driver_version", json!(driver))
        .set("apt_called", apt_called)
        .set("lock_wait_ms", lock_wait.as_millis() as u64)
        .set("elapsed_ms", started.elapsed().as_millis() as u64);
    if changed {
        for d in diffs {
            r = r.diff(d);
        }
    }
    Ok(r)
}

/// `state: absent`: packages removed first, then the list and the keyring.
fn absent(m: &mut Module, p: &Params, b: &dyn Backend) -> Result<Response> {
    let installed = b.installed(&p.packages)?;
    let plan = plan::plan(State::Absent, None, &p.packages, &installed, None);
    let mut changes = Vec::new();
    let mut diffs = Vec::new();
    if !plan.remove.is_empty() {
        changes.push(format!("removed packages {}", plan.remove.join(" ")));
        if !m.check_mode() {
            b.wait_for_lock(p.lock_timeout)?;
            b.remove(&plan.remove, p.lock_timeout)?;
        }
    }
    for path in b.managed_paths(p) {
        if let Some(before) = safe_file::read_optional(&path)? {
            changes.push(format!("removed {}", path.display()));
            let text = if path == b.keyring_path(p) {
                format!("<binary keyring, {} bytes>\n", before.len())
            } else {
                String::from_utf8_lossy(&before).into_owned()
            };
            diffs.push(Diff::file(&path.display().to_string(), text, ""));
            if !m.check_mode() {
                safe_file::remove(&path)?;
            }
        }
    }
    let mut r = Response::new(!changes.is_empty())
        .msg(if changes.is_empty() {
            "already absent".to_string()
        } else {
            changes.join("; ")
        })
        .set("changes", json!(changes))
        .set("apt_called", !plan.remove.is_empty() && !m.check_mode());
    for d in diffs {
        r = r.diff(d);
    }
    Ok(r)
}

/// The driver check: a failure with `required`, a warning with `warn`. Returns the version found.
fn check_driver(m: &mut Module, p: &Params, driver_file: &Path) -> Result<Option<String>> {
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
        m.warn(problem);
    }
    Ok(found.map(|d| d.version))
}

/// The key from the `key` option (text or a path on the node), else the keyring already installed.
fn load_key(p: &Params, b: &dyn Backend) -> Result<key::VerifiedKey> {
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

/// Refuses conflicting files the module may not (or was told not to) remove, naming every one.
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

fn file_diff(f: &RepoFile) -> Result<Diff> {
    let before = safe_file::read_optional(&f.path)?;
    let path = f.path.display().to_string();
    if f.binary {
        let show = |b: &Option<Vec<u8>>| match b {
            Some(b) => format!("<binary keyring, {} bytes>\n", b.len()),
            None => String::new(),
        };
        return Ok(Diff::file(
            &path,
            show(&before),
            show(&Some(f.contents.clone())),
        ));
    }
    Ok(Diff::file(
        &path,
        String::from_utf8_lossy(&before.unwrap_or_default()),
        String::from_utf8_lossy(&f.contents),
    ))
}

fn describe_packages(plan: &plan::PackagePlan, version: Option<&str>, changes: &mut Vec<String>) {
    match (&plan.target, version) {
        (Target::Keep, _) => {}
        (_, Some(v)) => changes.push(format!("installed version {}", v)),
        (_, None) => changes.push("installs the repository's newest version".into()),
    }
    if !plan.hold.is_empty() {
        changes.push(format!("held {}", plan.hold.join(" ")));
    }
    if !plan.unhold.is_empty() {
        changes.push(format!("released the hold on {}", plan.unhold.join(" ")));
    }
}
