//! Carries out a [`Change`]: every candidate validated before anything is replaced, each changed file that
//! existed backed up, each file replaced atomically, and the files already written put back when a later one
//! fails, so a run changes all of its files or none.

use std::path::{Path, PathBuf};

use ansible_module::safe_file::{self, NewFile};
use anyhow::{Context as _, Result};

use crate::change::Change;
use crate::containerd::{self, Validate};
use crate::plan::FileChange;

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// A validation ran on at least one candidate (and accepted them all).
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
    // Validate every candidate before anything is replaced.
    if change.validate != Validate::None {
        for (file, c) in &files {
            if let Some(after) = &c.after {
                validate_candidate(&change.validate, file, after)?;
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
    for (i, (file, c)) in files.iter().enumerate() {
        if let Err(e) = write(file, c.after.as_deref()) {
            let undone = &files[..i];
            let restored = undone
                .iter()
                .rev()
                .map(|(f, c)| write(f, c.before.as_deref()).map(|_| f.display().to_string()))
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

/// Makes `file` hold `text`, or removes it (`None`).
fn write(file: &Path, text: Option<&str>) -> Result<()> {
    match text {
        Some(text) => {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            safe_file::write_atomic(file, text.as_bytes(), NewFile { mode: 0o644 })
        }
        None => safe_file::remove(file),
    }
}

/// Writes `text` to a temporary file beside `file` and validates it; the temporary file is removed whatever
/// the outcome.
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
            validate: Validate::None,
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
}
