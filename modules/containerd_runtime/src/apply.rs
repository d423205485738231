//! Carries out a [`Change`]: every candidate checked (the `validate` option) before anything is replaced, each
//! changed file that existed backed up, each file replaced atomically, and the files already written put back
//! when a later one fails, with their own owner and mode, so a run changes all of its files or none.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ansible_module::safe_file::{self, NewFile};
use anyhow::{Context as _, Result};

use crate::change::Change;
use crate::containerd::{self, CandidateCheck};
use crate::plan::FileChange;

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The candidate check ran on at least one candidate and accepted them all (the `validated` return value).
    pub validated: bool,
    /// Each changed file that existed, with its backup, in write order.
    pub backups: Vec<(PathBuf, PathBuf)>,
}

/// Writes what `change` decided (nothing when nothing changed).
pub fn apply(change: &Change) -> Result<Applied> {
    let mut applied = Applied::default();
    if !change.changed() {
        return Ok(applied);
    }
    let files: Vec<(&Path, &FileChange)> = change
        .files()
        .into_iter()
        .filter(|(_, c)| c.changed())
        .collect();
    // Check every candidate before anything is replaced.
    if change.candidate_check != CandidateCheck::None {
        for (file, c) in &files {
            if let Some(after) = &c.after {
                check_candidate(&change.candidate_check, file, after)?;
                applied.validated = true;
            }
        }
    }
    if change.backup {
        for (file, c) in &files {
            if c.before.is_some() {
                if let Some(b) = safe_file::backup(file)? {
                    applied.backups.push((file.to_path_buf(), b));
                }
            }
        }
    }
    // Each file's owner and mode as they are now, for putting it back: a file this run removes would
    // otherwise come back as a new file, root's and 0644.
    let kept: Vec<NewFile> = files.iter().map(|(file, _)| as_it_is(file)).collect();
    for (i, (file, c)) in files.iter().enumerate() {
        if let Err(e) = write(file, c.after.as_deref(), NewFile::default()) {
            let restored = files[..i]
                .iter()
                .zip(&kept)
                .rev()
                .map(|((f, c), how)| {
                    write(f, c.before.as_deref(), *how).map(|_| f.display().to_string())
                })
                .collect::<Result<Vec<_>>>();
            return Err(match restored {
                Ok(names) if names.is_empty() => e,
                Ok(names) => e.context(format!("{} was put back as it was", names.join(" and "))),
                Err(r) => e.context(format!(
                    "putting back the files written before failed too: {:#}",
                    r
                )),
            });
        }
    }
    Ok(applied)
}

/// How `file` is made if it has to be made again: with its owner and mode when it exists now, else as a new
/// file (0644, the run's owner). A file that cannot be looked at is not there to put back.
fn as_it_is(file: &Path) -> NewFile {
    safe_file::write_target(file)
        .ok()
        .and_then(|target| std::fs::metadata(target).ok())
        .map(|m| NewFile {
            mode: m.mode() & 0o7777,
            owner: Some((m.uid(), m.gid())),
        })
        .unwrap_or_default()
}

/// Makes `file` hold `text`, or removes it (`None`). A file that exists keeps its owner and mode; a new one is
/// made as `new_file` says.
fn write(file: &Path, text: Option<&str>, new_file: NewFile) -> Result<()> {
    match text {
        Some(text) => {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            safe_file::write_atomic(file, text.as_bytes(), new_file)
        }
        None => safe_file::remove(file),
    }
}

/// Writes `text` to a temporary file beside `file` and runs the candidate check on it; the temporary file is
/// removed whatever the outcome.
fn check_candidate(how: &CandidateCheck, file: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    // Beside the file, so relative `imports` resolve the same way; never named *.toml, so a running
    // containerd's `imports` glob cannot pick the candidate up.
    let mut tmp = safe_file::temp_beside(file)?;
    tmp.write_all(text.as_bytes())?;
    tmp.flush()?;
    containerd::check_candidate(how, tmp.path()).with_context(|| {
        format!(
            "the new {} was rejected; nothing was changed",
            file.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Targets;
    use crate::plan::{Base, Options, Plan};
    use serde_json::Value as Json;

    fn change(
        config: PathBuf,
        drop_in: PathBuf,
        texts: [(Option<&str>, Option<&str>); 2],
    ) -> Change {
        let file = |(before, after): (Option<&str>, Option<&str>)| FileChange {
            before: before.map(String::from),
            after: after.map(String::from),
        };
        Change {
            targets: Targets {
                config,
                drop_in: Some(drop_in),
            },
            options: Options::new("nvidia", "/usr/bin/nvidia-container-runtime"),
            plan: Plan {
                config: file(texts[0]),
                drop_in: Some(file(texts[1])),
                config_version: 3,
                runtime: Json::Null,
                default_runtime_name: None,
                base: Base::NotNeeded,
                warnings: Vec::new(),
            },
            candidate_check: CandidateCheck::None,
            backup: true,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn backups_map_each_existing_file_and_hold_its_old_bytes() {
        let d = tempfile::tempdir().unwrap();
        let (config, drop_in) = (
            d.path().join("config.toml"),
            d.path().join("conf.d/99-nvidia.toml"),
        );
        std::fs::write(&config, "version = 3\n").unwrap();
        let c = change(
            config.clone(),
            drop_in.clone(),
            [
                (Some("version = 3\n"), Some("version = 3\nimports = []\n")),
                (None, Some("version = 3\n")),
            ],
        );
        let applied = apply(&c).unwrap();
        // The new drop-in had nothing to back up; the config did.
        assert_eq!(applied.backups.len(), 1);
        let (file, backup) = &applied.backups[0];
        assert_eq!(file, &config);
        assert_eq!(std::fs::read_to_string(backup).unwrap(), "version = 3\n");
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            "version = 3\nimports = []\n"
        );
        assert_eq!(std::fs::read_to_string(&drop_in).unwrap(), "version = 3\n");
    }

    #[test]
    fn a_failed_write_puts_back_the_files_written_before_it() {
        let d = tempfile::tempdir().unwrap();
        // The config's folder is a file: its write fails after the drop-in (written first) was replaced.
        let blocked = d.path().join("not-a-folder");
        std::fs::write(&blocked, "").unwrap();
        let drop_in = d.path().join("99-nvidia.toml");
        std::fs::write(&drop_in, "# before\n").unwrap();
        let c = change(
            blocked.join("config.toml"),
            drop_in.clone(),
            [
                (None, Some("imports = []\n")),
                (Some("# before\n"), Some("version = 3\n")),
            ],
        );
        let e = format!("{:#}", apply(&c).unwrap_err());
        assert!(e.contains("was put back as it was"), "{e}");
        assert_eq!(std::fs::read_to_string(&drop_in).unwrap(), "# before\n");
    }

    /// A file the run removed (as `state: absent` removes a drop-in left empty) and has to put back comes back
    /// with its own owner and mode, not as a new file of the run's.
    #[test]
    fn a_removed_file_put_back_keeps_its_owner_and_mode() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let blocked = d.path().join("not-a-folder");
        std::fs::write(&blocked, "").unwrap();
        let drop_in = d.path().join("99-nvidia.toml");
        std::fs::write(&drop_in, "# before\n").unwrap();
        std::fs::set_permissions(&drop_in, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Only root can give a file away; anyone else keeps their own ids, and the mode is still checked.
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(&drop_in, Some(1234), Some(2345)).unwrap();
        }
        let before = std::fs::metadata(&drop_in).unwrap();
        let c = change(
            blocked.join("config.toml"),
            drop_in.clone(),
            [(None, Some("imports = []\n")), (Some("# before\n"), None)],
        );
        let e = format!("{:#}", apply(&c).unwrap_err());
        assert!(e.contains("was put back as it was"), "{e}");
        let after = std::fs::metadata(&drop_in).unwrap();
        assert_eq!(std::fs::read_to_string(&drop_in).unwrap(), "# before\n");
        assert_eq!(after.mode() & 0o7777, 0o600, "mode kept");
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        if root {
            assert_eq!((after.uid(), after.gid()), (1234, 2345), "owner kept");
        }
    }
}
