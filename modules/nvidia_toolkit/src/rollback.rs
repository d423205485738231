//! File changes that are undone when a later step fails: a run that cannot finish (a bad signature, a
//! package that does not install) leaves the keyring, the list and any old list files as they were.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ansible_module::safe_file::{self, NewFile};
use anyhow::Result;

/// A file's contents, and how to make it again (its permission bits and owner), before the change; `None` when
/// it did not exist.
type Before = Option<(Vec<u8>, NewFile)>;

/// The files changed so far, with what they held before.
#[derive(Default)]
pub struct FileChanges {
    undo: Vec<(PathBuf, Before)>,
}

impl FileChanges {
    fn remember(&mut self, path: &Path) -> Result<()> {
        let target = safe_file::write_target(path)?;
        let before = match safe_file::read_optional(&target)? {
            Some(bytes) => {
                let meta = std::fs::metadata(&target)?;
                let how = NewFile {
                    mode: meta.mode() & 0o7777,
                    owner: Some((meta.uid(), meta.gid())),
                };
                Some((bytes, how))
            }
            None => None,
        };
        self.undo.push((target, before));
        Ok(())
    }

    /// Writes `contents` atomically (new files get `mode`), remembering the old contents.
    pub fn write(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        self.remember(path)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        safe_file::write_atomic(path, contents, NewFile::with_mode(mode))
    }

    /// Removes `path`, remembering its contents.
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        self.remember(path)?;
        safe_file::remove(path)
    }

    /// Puts every changed file back, newest change first. Returns what could not be restored.
    pub fn rollback(self) -> Vec<String> {
        let mut problems = Vec::new();
        for (path, before) in self.undo.into_iter().rev() {
            let result = match before {
                Some((bytes, how)) => {
                    let _ = safe_file::remove(&path);
                    safe_file::write_atomic(&path, &bytes, how)
                }
                None => safe_file::remove(&path),
            };
            if let Err(e) = result {
                problems.push(format!("{}: {:#}", path.display(), e));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rollback_restores_contents_modes_and_absence() {
        let d = tempfile::tempdir().unwrap();
        let kept = d.path().join("old.list");
        std::fs::write(&kept, b"old\n").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
        let edited = d.path().join("ours.list");
        std::fs::write(&edited, b"before\n").unwrap();
        let created = d.path().join("sub/new.gpg");

        let mut ch = FileChanges::default();
        ch.remove(&kept).unwrap();
        ch.write(&edited, b"after\n", 0o644).unwrap();
        ch.write(&created, b"key", 0o644).unwrap();
        assert!(!kept.exists());
        assert_eq!(std::fs::read(&edited).unwrap(), b"after\n");
        assert_eq!(
            std::fs::metadata(&created).unwrap().permissions().mode() & 0o777,
            0o644
        );

        assert!(ch.rollback().is_empty());
        assert_eq!(std::fs::read(&kept).unwrap(), b"old\n");
        assert_eq!(
            std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read(&edited).unwrap(), b"before\n");
        assert!(!created.exists());
    }
}
