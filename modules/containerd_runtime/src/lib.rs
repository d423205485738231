//! The `containerd_runtime` Ansible module: registers a runtime (NVIDIA's by default) in containerd's
//! `config.toml` with a surgical, comment-preserving edit, or removes it again.
//!
//! # Library API (what the module and the tests call)
//!
//! - [`plan::plan`]`(input: Option<&str>, opts: &Options) -> Result<Plan>`: the in-place edit of one config
//!   text (`None`: the file does not exist). [`Plan`] holds `config: FileChange { before, after }` (`after:
//!   None` deletes the file), `config_version`, `runtime` (the resulting table as JSON), `default_runtime_name`,
//!   `base` (where a new runtime's table came from), and `changed()` / `restart_required()` (parsed data compared, not bytes).
//! - [`plan::plan_drop_in`]`(config, drop_in, import, opts)`: the same in drop-in mode (the runtimes in the
//!   drop-in, `import` added to the config's `imports`); `Plan::drop_in` then holds the drop-in's change.
//! - [`plan::data_of`]`(text)`: what containerd would load from a text, as JSON (formatting ignored).
//! - [`Options::new`]`(name, binary_path)` gives the reference's defaults; set the public fields for the rest.
//!
//! Everything that touches the system (reading, locking, validating, backing up, writing) is in [`run`].

pub mod containerd;
pub mod edit;
pub mod layout;
pub mod other_writers;
pub mod params;
pub mod plan;
pub mod toml_tree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ansible_module::safe_file::{self, DirLock, NewFile};
use ansible_module::{Diff, Kind, Module, ModuleSpec, Opt, Response};
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value as Json};

pub use edit::RuntimeSpec;
pub use plan::{FileChange, Options, Plan, State};

use containerd::Validate;
use node_facts::kubelet;

/// The module's argument spec.
pub fn spec() -> ModuleSpec {
    let runtime = ModuleSpec::new(vec![
        Opt::str("name").required(),
        Opt::str("binary_path").required(),
    ]);
    ModuleSpec::new(vec![
        Opt::path("path").default("/etc/containerd/config.toml"),
        Opt::str("name")
            .default("nvidia")
            .aliases(&["runtime_name"]),
        Opt::str("binary_path").default("/usr/bin/nvidia-container-runtime"),
        Opt::str("runtime_type").default("io.containerd.runc.v2"),
        Opt::bool("set_as_default").default(false),
        Opt::bool("enable_cdi")
            .default(false)
            .aliases(&["cdi_enabled"]),
        Opt::list("extra_runtimes", Kind::Dict).suboptions(runtime),
        Opt::list("container_annotations", Kind::Str),
        Opt::int("config_version"),
        Opt::path("drop_in_path"),
        Opt::str("state")
            .default("present")
            .choices(&["present", "absent"]),
        Opt::bool("backup").default(false),
        Opt::str("validate").default("auto"),
        Opt::path("kubelet_config").default(kubelet::CONFIG),
    ])
    .supports_check_mode()
}

/// How long a run waits for another run editing the same directory.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Runs the module.
pub fn run(m: &mut Module) -> Result<Response> {
    // Every parameter is checked before anything is read, locked or created.
    let params::Params {
        path,
        drop_in_path,
        config_version,
        options: mut opts,
        backup,
        validate,
        kubelet_config,
    } = params::Params::from_module(m)?;
    let target = link_target("path", &path)?;
    let drop_target = drop_in_path
        .as_deref()
        .map(|p| link_target("drop_in_path", p))
        .transpose()?;
    let check = m.check_mode();

    // Hold the directory lock from the read to the write, so no other run interleaves.
    let edited: Vec<&Path> = std::iter::once(target.as_path())
        .chain(drop_target.as_deref())
        .collect();
    if !check {
        for file in &edited {
            create_parent(file)?;
        }
    }
    let _locks = DirLock::acquire_all(&edited, LOCK_WAIT)?;
    let before = read_text(&target)?;
    let containerd = containerd::find();

    // containerd's version matters for a new file's version and for drop-in mode; ask only then.
    let mut containerd_version: Option<(u32, u32)> = None;
    if let Some(bin) = &containerd {
        let blank = || {
            before.as_deref().map_or(true, |t| {
                t.parse::<toml_edit::DocumentMut>()
                    .map(|d| layout::is_blank(&d))
                    .unwrap_or(false)
            })
        };
        if drop_target.is_some() || (config_version.is_none() && blank()) {
            containerd_version = containerd::version(bin).ok();
        }
    }
    opts.new_config_version = match (config_version, containerd_version) {
        (Some(v), _) => v,
        (None, Some((major, _))) if major >= 2 => 3,
        _ => 2,
    };
    if opts.state == State::Absent {
        opts.stale_imports = stale_imports(&target, before.as_deref(), drop_target.as_deref());
    }

    let mut warnings = other_writers::warnings(&target, before.as_deref(), drop_target.as_deref());
    let plan_with = |opts: &Options, warnings: &mut Vec<String>| {
        make_plan(
            &target,
            before.as_deref(),
            drop_target.as_deref(),
            containerd_version,
            containerd.as_deref(),
            opts,
            warnings,
        )
    };
    let mut plan = plan_with(&opts, &mut warnings)?;
    if plan.base.missing_in_file() && opts.state == State::Present {
        // No runtime in the file to copy: containerd's own runc is the base, and the kubelet's cgroup driver
        // decides SystemdCgroup. Plan again with both; the first plan's warnings stand.
        opts.kubelet_systemd_cgroup = std::fs::read_to_string(&kubelet_config)
            .ok()
            .map(|yaml| kubelet::cgroup_driver(&yaml) == "systemd");
        if let Some(bin) = &containerd {
            opts.default_config = containerd::default_config(bin).ok();
        }
        plan = plan_with(&opts, &mut Vec::new())?;
        if opts.kubelet_systemd_cgroup.is_none() {
            warnings.push(format!(
                "no runtime to copy in {} (no default runtime, no runc): {} gets {} and no kubelet config was \
                 found at {} to take SystemdCgroup from; on a node whose kubelet uses the systemd cgroup \
                 driver, set the kubelet_config option or pods may crash-loop",
                target.display(),
                opts.name,
                match plan.base {
                    plan::Base::ContainerdDefaults => "containerd's default runc options",
                    _ => "no inherited options",
                },
                kubelet_config.display()
            ));
        }
    }

    let validate = match validate.as_str() {
        "auto" => containerd
            .clone()
            .map(Validate::Containerd)
            .unwrap_or(Validate::None),
        "none" | "" => Validate::None,
        cmd => Validate::Command(cmd.to_string()),
    };

    // Every file this run may touch, in write order: the drop-in first, so the import never loads a
    // half-configured runtime.
    let mut files: Vec<(PathBuf, &FileChange)> = Vec::new();
    if let (Some(d), Some(change)) = (&drop_target, &plan.drop_in) {
        files.push((d.clone(), change));
    }
    files.push((target.clone(), &plan.config));
    if opts.state == State::Absent {
        files.reverse();
    }

    let changed = plan.changed();
    let mut backups: Vec<String> = Vec::new();
    let mut validated = false;
    if changed && !check {
        // Validate every candidate before anything is replaced.
        for (file, change) in &files {
            if let (true, Some(after)) = (change.changed(), &change.after) {
                if validate != Validate::None {
                    validate_candidate(&validate, file, after)?;
                    validated = true;
                }
            }
        }
        if backup {
            for (file, change) in &files {
                if change.changed() && change.before.is_some() {
                    if let Some(b) = safe_file::backup(file)? {
                        backups.push(b.display().to_string());
                    }
                }
            }
        }
        for (file, change) in &files {
            if !change.changed() {
                continue;
            }
            match &change.after {
                Some(text) => {
                    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("cannot create {}", dir.display()))?;
                    }
                    safe_file::write_atomic(file, text.as_bytes(), NewFile { mode: 0o644 })?
                }
                None => safe_file::remove(file)?,
            }
        }
    }

    let verb = match (changed, opts.state) {
        (false, _) => "already in the wanted state",
        (true, State::Present) => "registered",
        (true, State::Absent) => "removed",
    };
    let where_ = match &plan.drop_in {
        Some(_) => drop_target.as_deref().unwrap_or(&target),
        None => &target,
    };
    let mut r = Response::new(changed)
        .msg(format!(
            "runtime {} {} ({})",
            opts.name,
            verb,
            where_.display()
        ))
        .set("restart_required", plan.restart_required())
        .set("config_version", plan.config_version)
        .set("runtime", plan.runtime.clone())
        .set(
            "default_runtime_name",
            plan.default_runtime_name
                .clone()
                .map(Json::String)
                .unwrap_or(Json::Null),
        )
        .set("drop_in_used", plan.drop_in.is_some())
        .set("validated", validated)
        .set("path", target.display().to_string());
    if let Some(b) = backups.first() {
        r = r.set("backup_file", b.clone());
    }
    if backups.len() > 1 {
        r = r.set("backup_files", json!(backups));
    }
    for (file, change) in &files {
        if change.changed() {
            r = r.diff(Diff::file(
                &file.display().to_string(),
                change.before.clone().unwrap_or_default(),
                change.after.clone().unwrap_or_default(),
            ));
        }
    }
    for w in warnings.into_iter().chain(plan.warnings.clone()) {
        r = r.warn(w);
    }
    Ok(r)
}

/// Chooses in-place or drop-in mode and plans. Drop-in mode is used only where containerd merges a minimal
/// drop-in deeply (containerd 2.x; version 3+ configs when no containerd is installed to ask); containerd 1.x
/// lets an imported CRI table replace the whole CRI section, so there the runtime stays in place.
fn make_plan(
    config: &Path,
    before: Option<&str>,
    drop_in: Option<&Path>,
    containerd_version: Option<(u32, u32)>,
    containerd: Option<&Path>,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Result<Plan> {
    let Some(drop_in) = drop_in else {
        return plan::plan(before, opts);
    };
    let drop_before = read_text(drop_in)?;
    let doc = plan::parse(before.unwrap_or(""), "the config")?;
    let version = layout::detect_version(&doc, opts.new_config_version)?;
    if opts.state == State::Present
        && plan::runtimes_held(&doc, version, opts) == opts.runtimes().len()
    {
        let drop_doc = plan::parse(drop_before.as_deref().unwrap_or(""), "the drop-in")?;
        if plan::runtimes_held(&drop_doc, version, opts) == 0 {
            // Moving a working runtime into a drop-in would change two files (and restart containerd) for the
            // same loaded config: it is edited where it is.
            warnings.push(format!(
                "{} already holds every runtime to register: they are edited there, not moved to {}",
                config.display(),
                drop_in.display()
            ));
            return plan::plan(before, opts);
        }
    }
    let deep_merge = match containerd_version {
        Some((major, _)) => major >= 2,
        None => version >= 3,
    };
    if version >= 2 && deep_merge {
        let mut o = opts.clone();
        if let (Some(bin), Some((major, _))) = (containerd, containerd_version) {
            if major >= 2 && o.state == State::Present {
                // The runtime is copied from what containerd loads. The drop-in keeps the config's version:
                // containerd 2.1 merges a version 3 drop-in into a version 2 config before migrating it,
                // and every version 2 setting is then lost (seen with `config dump`).
                o.effective_config = match before {
                    Some(_) => containerd::dump(bin, config).ok(),
                    None => containerd::default_config(bin).ok(),
                };
            }
        }
        return plan::plan_drop_in(before, drop_before.as_deref(), &import_for(drop_in), &o);
    }
    warnings.push(if version < 2 {
        format!(
            "{} is a version {} config, which cannot import drop-ins: the runtime stays in it",
            config.display(),
            version
        )
    } else {
        format!(
            "containerd {} replaces the whole CRI section with an imported one: a minimal drop-in would drop \
             every other CRI setting, so the runtime stays in {}",
            containerd_version
                .map(|(a, b)| format!("{}.{}", a, b))
                .unwrap_or_else(|| "(not installed; version 2 config)".into()),
            config.display()
        )
    });
    let mut p = plan::plan(before, opts)?;
    // A drop-in left by an earlier run would still override: take our runtimes out of it.
    if let Some(text) = drop_before {
        let mut o = opts.clone();
        o.state = State::Absent;
        let cleanup = plan::plan(Some(&text), &o)?;
        if cleanup.config.changed() {
            p.drop_in = Some(cleanup.config);
        }
    }
    Ok(p)
}

/// The `imports` entry for a drop-in: its folder's `*.toml` (what the reference adds), or the file itself
/// when its name does not end in `.toml`.
fn import_for(drop_in: &Path) -> String {
    match (drop_in.parent(), drop_in.extension()) {
        (Some(dir), Some(ext)) if ext == "toml" => dir.join("*.toml").display().to_string(),
        _ => drop_in.display().to_string(),
    }
}

/// The config's `imports` entries that a drop-in setup added and that now load nothing but our drop-in:
/// our own import (for `drop_in_path`) and `.../conf.d/*.toml` globs (what the reference adds).
fn stale_imports(config: &Path, text: Option<&str>, drop_in: Option<&Path>) -> Vec<String> {
    let Some(doc) = text.and_then(|t| t.parse::<toml_edit::DocumentMut>().ok()) else {
        return Vec::new();
    };
    let Some(list) = doc.get("imports").and_then(|i| i.as_array()) else {
        return Vec::new();
    };
    let ours = drop_in.map(import_for);
    let base = config.parent().unwrap_or(Path::new("/"));
    list.iter()
        .filter_map(|v| v.as_str())
        .filter(|e| Some(*e) == ours.as_deref() || e.ends_with("conf.d/*.toml"))
        .filter(|e| !loads_other_files(&base.join(e), drop_in))
        .map(str::to_string)
        .collect()
}

/// Whether an import pattern matches an existing file other than `drop_in` (a wildcard in a folder name
/// counts as a match: we do not guess).
fn loads_other_files(pattern: &Path, drop_in: Option<&Path>) -> bool {
    let (Some(dir), Some(name)) = (
        pattern.parent(),
        pattern.file_name().and_then(|n| n.to_str()),
    ) else {
        return true;
    };
    if node_facts::glob::has_wildcard(&dir.to_string_lossy()) {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let found = entries.flatten().any(|e| {
        node_facts::glob::matches(name, &e.file_name().to_string_lossy())
            && Some(e.path().as_path()) != drop_in
    });
    found
}

/// The file a path writes to (symlinks followed). A symlink whose target's folder does not exist fails, as
/// Ansible's `copy` does: creating folders behind a link is rarely what the link's author meant.
fn link_target(option: &str, path: &Path) -> Result<PathBuf> {
    let target = safe_file::write_target(path)?;
    if target != path {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                bail!(
                    "{} {} is a symbolic link to {}, whose directory {} does not exist",
                    option,
                    path.display(),
                    target.display(),
                    dir.display()
                );
            }
        }
    }
    Ok(target)
}

/// Reads a config as UTF-8 text; `None` when missing. A directory, an unreadable or a non-UTF-8 file fails.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    if path.is_dir() {
        bail!("{} is a directory, not a file", path.display());
    }
    match safe_file::read_optional(path)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "{} is not valid UTF-8 (invalid byte at offset {}): containerd cannot read it either",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        }),
    }
}

/// Creates the directory `file` goes in when it is missing (a run that writes it locks that directory first).
fn create_parent(file: &Path) -> Result<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `text` to a temporary file beside `file` (so relative `imports` resolve the same way) and
/// validates it; the temporary file is removed whatever the outcome.
fn validate_candidate(how: &Validate, file: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    // Beside the file, so relative `imports` resolve the same way; never named *.toml, so a running
    // containerd's `imports` glob cannot pick the candidate up.
    let mut tmp = safe_file::temp_beside(file)?;
    tmp.write_all(text.as_bytes())?;
    tmp.flush()?;
    containerd::validate(how, tmp.path()).with_context(|| {
        format!(
            "the new {} was rejected; nothing was changed",
            file.display()
        )
    })
}
