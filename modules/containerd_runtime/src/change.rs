//! One run's decision: [`plan`] reads the node (the config, the drop-in, the kubelet's config, what
//! containerd answers) and decides what each file must become, which files are written in which order, and
//! how each candidate is checked before it replaces a file (the `validate` option). It writes nothing; [`crate::apply`] does, [`crate::report`] answers Ansible.

use std::path::{Path, PathBuf};

use ansible_module::safe_file;
use anyhow::{bail, Result};
use node_facts::containerd::{imports, layout, Rules};
use node_facts::kubelet;

use crate::containerd::{CandidateCheck, Installed};
use crate::other_writers;
use crate::params::Params;
use crate::plan::{self, Base, FileChange, Options, Plan, State};

/// The files a run edits, symlinks followed: the config, and the drop-in in drop-in mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub config: PathBuf,
    pub drop_in: Option<PathBuf>,
}

impl Targets {
    /// The files `params` name, each symlink followed to the file it writes to.
    pub fn of(params: &Params) -> Result<Targets> {
        Ok(Targets {
            config: link_target("path", &params.path)?,
            drop_in: params
                .drop_in_path
                .as_deref()
                .map(|p| link_target("drop_in_path", p))
                .transpose()?,
        })
    }

    /// Every file, the config first.
    pub fn all(&self) -> Vec<&Path> {
        std::iter::once(self.config.as_path())
            .chain(self.drop_in.as_deref())
            .collect()
    }
}

/// What a run decided.
#[derive(Debug, Clone)]
pub struct Change {
    pub targets: Targets,
    /// The options planned with, containerd's answers filled in.
    pub options: Options,
    pub plan: Plan,
    /// How each candidate is checked before it replaces a file (the `validate` option, resolved).
    pub candidate_check: CandidateCheck,
    /// Back up each changed file that existed.
    pub backup: bool,
    /// Warnings of the run (the plan's own are in `plan.warnings`).
    pub warnings: Vec<String>,
}

impl Change {
    pub fn changed(&self) -> bool {
        self.plan.changed()
    }

    /// Every file this run may touch with its change, in write order: the drop-in first, so the import never
    /// loads a half-configured runtime; the other way round on removal.
    pub fn files(&self) -> Vec<(&Path, &FileChange)> {
        let mut files = Vec::new();
        if let (Some(d), Some(change)) = (&self.targets.drop_in, &self.plan.drop_in) {
            files.push((d.as_path(), change));
        }
        files.push((self.targets.config.as_path(), &self.plan.config));
        if self.options.state == State::Absent {
            files.reverse();
        }
        files
    }

    /// The file the runtime ends up in (or was removed from).
    pub fn runtime_file(&self) -> &Path {
        match (&self.plan.drop_in, &self.targets.drop_in) {
            (Some(_), Some(d)) => d,
            _ => &self.targets.config,
        }
    }
}

/// Reads the node and decides. `containerd` is the installed containerd, if any; it is asked only what the
/// decision needs (its version for a new file or drop-in mode, its defaults when the file has no runtime to copy).
pub fn plan(
    params: &Params,
    targets: &Targets,
    containerd: Option<&dyn Installed>,
) -> Result<Change> {
    let config = &targets.config;
    let drop_in = targets.drop_in.as_deref();
    let before = read_text(config)?;
    let mut opts = params.options.clone();

    // containerd's version matters for a new file's version and for drop-in mode; ask only then.
    let blank = || {
        before.as_deref().map_or(true, |t| {
            t.parse::<toml_edit::DocumentMut>()
                .map(|d| layout::is_blank(&d))
                .unwrap_or(false)
        })
    };
    let containerd_version = containerd
        .filter(|_| drop_in.is_some() || (params.config_version.is_none() && blank()))
        .and_then(|c| c.version());
    opts.new_config_version = match (params.config_version, containerd_version) {
        (Some(v), _) => v,
        (None, Some((major, _))) if major >= 2 => 3,
        _ => 2,
    };
    if opts.state == State::Absent {
        opts.stale_imports = stale_imports(config, before.as_deref(), drop_in, containerd_version);
    }

    let mut warnings = other_writers::warnings(config, before.as_deref(), drop_in);
    let node = Node {
        config,
        before: before.as_deref(),
        drop_in,
        containerd_version,
        containerd,
    };
    let mut plan = node.plan(&opts, &mut warnings)?;
    if plan.base.missing_in_file() && opts.state == State::Present {
        // No runtime in the file to copy: containerd's own runc is the base, and the kubelet's cgroup driver
        // decides SystemdCgroup. Plan again with both; the first plan's warnings stand.
        opts.kubelet_systemd_cgroup = std::fs::read_to_string(&params.kubelet_config)
            .ok()
            .map(|yaml| kubelet::cgroup_driver(&yaml) == "systemd");
        opts.default_config = containerd.and_then(|c| c.default_config());
        plan = node.plan(&opts, &mut Vec::new())?;
        if opts.kubelet_systemd_cgroup.is_none() {
            warnings.push(format!(
                "no runtime to copy in {} (no default runtime, no runc): {} gets {} and no kubelet config was \
                 found at {} to take SystemdCgroup from; on a node whose kubelet uses the systemd cgroup \
                 driver, set the kubelet_config option or pods may crash-loop",
                config.display(),
                opts.name,
                match plan.base {
                    Base::ContainerdDefaults => "containerd's default runc options",
                    _ => "no inherited options",
                },
                params.kubelet_config.display()
            ));
        }
    }

    let candidate_check = match params.validate.as_str() {
        "auto" => containerd
            .map(|c| CandidateCheck::ConfigDump(c.program().to_path_buf()))
            .unwrap_or(CandidateCheck::None),
        "none" | "" => CandidateCheck::None,
        cmd => CandidateCheck::Command(cmd.to_string()),
    };
    Ok(Change {
        targets: targets.clone(),
        options: opts,
        plan,
        candidate_check,
        backup: params.backup,
        warnings,
    })
}

/// What planning reads of the node, once.
struct Node<'a> {
    config: &'a Path,
    before: Option<&'a str>,
    drop_in: Option<&'a Path>,
    containerd_version: Option<(u32, u32)>,
    containerd: Option<&'a dyn Installed>,
}

impl Node<'_> {
    /// Chooses in-place or drop-in mode and plans. Drop-in mode is used only where containerd merges a
    /// minimal drop-in deeply (containerd 2.x; version 3+ configs when no containerd is installed to ask);
    /// containerd 1.x lets an imported CRI table replace the whole CRI section, so there the runtime stays in
    /// place.
    fn plan(&self, opts: &Options, warnings: &mut Vec<String>) -> Result<Plan> {
        let (config, before) = (self.config, self.before);
        let Some(drop_in) = self.drop_in else {
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
                // Moving a working runtime into a drop-in would change two files (and restart containerd)
                // for the same loaded config: it is edited where it is.
                warnings.push(format!(
                    "{} already holds every runtime to register: they are edited there, not moved to {}",
                    config.display(),
                    drop_in.display()
                ));
                return plan::plan(before, opts);
            }
        }
        let deep_merge = match self.containerd_version {
            Some(release) => Rules::of(Some(release)).plugins_merge_deeply,
            None => version >= 3,
        };
        if version >= 2 && deep_merge {
            let mut o = opts.clone();
            if let (Some(c), Some((major, _))) = (self.containerd, self.containerd_version) {
                if major >= 2 && o.state == State::Present {
                    // The runtime is copied from what containerd loads. The drop-in keeps the config's
                    // version: containerd 2.1 merges a version 3 drop-in into a version 2 config before
                    // migrating it, and every version 2 setting is then lost (seen with `config dump`).
                    o.effective_config = match before {
                        Some(_) => c.dump(config),
                        None => c.default_config(),
                    };
                }
            }
            let import = imports::entry_for(drop_in);
            return plan::plan_drop_in(before, drop_before.as_deref(), &import, &o);
        }
        warnings.push(if version < 2 {
            format!(
                "{} is a version {} config, which cannot import drop-ins: the runtime stays in it",
                config.display(),
                version
            )
        } else {
            format!(
                "containerd {} replaces the whole CRI section with an imported one: a minimal drop-in would \
                 drop every other CRI setting, so the runtime stays in {}",
                self.containerd_version
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
}

/// The config's `imports` entries that a drop-in setup added and that now load nothing but our drop-in:
/// our own entry (for `drop_in_path`) and `.../conf.d/*.toml` globs (what NVIDIA's `nvidia-ctk` adds).
fn stale_imports(
    config: &Path,
    text: Option<&str>,
    drop_in: Option<&Path>,
    containerd_version: Option<(u32, u32)>,
) -> Vec<String> {
    let Some(doc) = text.and_then(|t| t.parse::<toml_edit::DocumentMut>().ok()) else {
        return Vec::new();
    };
    let ours = drop_in.map(imports::entry_for);
    let rules = Rules::of(containerd_version);
    imports::entries(&doc)
        .into_iter()
        .filter(|e| Some(e.as_str()) == ours.as_deref() || e.ends_with("conf.d/*.toml"))
        .filter(|e| imports::loads_only(Path::new("/"), config, e, drop_in, rules))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::Installed;

    /// A containerd that answers as a recorded one did.
    struct Recorded {
        version: (u32, u32),
        default_config: &'static str,
    }

    impl Installed for Recorded {
        fn program(&self) -> &Path {
            Path::new("/usr/bin/containerd")
        }
        fn version(&self) -> Option<(u32, u32)> {
            Some(self.version)
        }
        fn default_config(&self) -> Option<String> {
            Some(self.default_config.to_string())
        }
        fn dump(&self, _: &Path) -> Option<String> {
            None
        }
    }

    const V3_DEFAULT: &str = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\ndefault_runtime_name = 'runc'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\nruntime_type = 'io.containerd.runc.v2'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\nSystemdCgroup = false\n";

    fn params(dir: &Path, drop_in: bool) -> Params {
        Params {
            path: dir.join("config.toml"),
            drop_in_path: drop_in.then(|| dir.join("conf.d/99-nvidia.toml")),
            config_version: None,
            options: Options::new("nvidia", "/usr/bin/nvidia-container-runtime"),
            backup: false,
            validate: "auto".into(),
            kubelet_config: dir.join("kubelet.yaml"),
        }
    }

    #[test]
    fn a_new_file_takes_containerd_2s_version_and_runc() {
        let d = tempfile::tempdir().unwrap();
        let p = params(d.path(), false);
        let c2 = Recorded {
            version: (2, 1),
            default_config: V3_DEFAULT,
        };
        let change = plan(&p, &Targets::of(&p).unwrap(), Some(&c2)).unwrap();
        assert_eq!(change.plan.config_version, 3);
        assert_eq!(change.plan.base, Base::ContainerdDefaults);
        assert_eq!(
            change.candidate_check,
            CandidateCheck::ConfigDump("/usr/bin/containerd".into())
        );
        // No kubelet config: the run says SystemdCgroup could not be taken from it.
        assert!(
            change
                .warnings
                .iter()
                .any(|w| w.contains("no kubelet config")),
            "{:?}",
            change.warnings
        );
        assert!(
            !d.path().join("config.toml").exists(),
            "planning writes nothing"
        );
        // Without containerd: version 2, nothing to copy, nothing to validate with.
        let change = plan(&p, &Targets::of(&p).unwrap(), None).unwrap();
        assert_eq!(
            (change.plan.config_version, change.plan.base.clone()),
            (2, Base::Nothing)
        );
        assert_eq!(change.candidate_check, CandidateCheck::None);
    }

    #[test]
    fn drop_in_mode_only_where_containerd_merges_deeply_and_files_in_write_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.toml"),
            V3_DEFAULT.replace("runtimes.runc", "runtimes.crun"),
        )
        .unwrap();
        let p = params(d.path(), true);
        let targets = Targets::of(&p).unwrap();
        let c17 = Recorded {
            version: (1, 7),
            default_config: V3_DEFAULT,
        };
        let change = plan(&p, &targets, Some(&c17)).unwrap();
        assert!(change.plan.drop_in.is_none());
        assert!(change
            .warnings
            .iter()
            .any(|w| w.contains("replaces the whole CRI section")));
        let c21 = Recorded {
            version: (2, 1),
            default_config: V3_DEFAULT,
        };
        let change = plan(&p, &targets, Some(&c21)).unwrap();
        assert!(change.plan.drop_in.is_some());
        let order: Vec<&Path> = change.files().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            order,
            [targets.drop_in.as_deref().unwrap(), &targets.config]
        );
        assert_eq!(change.runtime_file(), targets.drop_in.as_deref().unwrap());
        let mut absent = p.clone();
        absent.options.state = State::Absent;
        let change = plan(&absent, &targets, Some(&c21)).unwrap();
        let order: Vec<&Path> = change.files().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            order,
            [&targets.config, targets.drop_in.as_deref().unwrap()]
        );
    }
}
