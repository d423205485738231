//! Safe file writes for every module: a lock, a timestamped backup, and an atomic replace that keeps the
//! owner, group and mode, and writes through a symlink to its target instead of replacing the link.
//!
//! A write is: temp file in the target's directory, write, fchown/fchmod, fsync, rename over the target,
//! fsync the directory. A reader (or a crash) sees the old file or the new one, never a partial one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use nix::fcntl::{Flock, FlockArg};

/// Resolves the file a write to `path` must replace: a symlink (or a chain) is followed to its target, so the
/// link itself survives. A dangling link resolves to where it points.
pub fn write_target(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)
                    .with_context(|| format!("cannot read the symlink {}", current.display()))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(meta) if meta.is_dir() => bail!("{} is a directory, not a file", current.display()),
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", current.display()))
            }
        }
    }
    bail!("too many levels of symbolic links at {}", path.display())
}

/// Reads a file that may not exist: `Ok(None)` when it is missing.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// An advisory lock on the directory that holds a file: every module run that edits a file in that directory
/// waits its turn, so a read-modify-write is never interleaved with another. Released on drop.
pub struct DirLock {
    _lock: Flock<File>,
}

impl DirLock {
    /// Locks the directory of `file`, waiting up to `timeout`.
    pub fn acquire(file: &Path, timeout: Duration) -> Result<DirLock> {
        let dir = parent_dir(file);
        let start = Instant::now();
        let mut handle = File::open(&dir)
            .with_context(|| format!("cannot open {} to lock it", dir.display()))?;
        loop {
            match Flock::lock(handle, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(DirLock { _lock: lock }),
                Err((h, nix::errno::Errno::EWOULDBLOCK)) if start.elapsed() < timeout => {
                    handle = h;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((_, e)) => {
                    return Err(anyhow!(
                        "cannot lock {} within {} s: {}",
                        dir.display(),
                        timeout.as_secs(),
                        e
                    ))
                }
            }
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// How a new file is created when none exists yet (an existing file keeps its own owner, group and mode).
#[derive(Debug, Clone, Copy)]
pub struct NewFile {
    pub mode: u32,
}

impl Default for NewFile {
    fn default() -> Self {
        NewFile { mode: 0o644 }
    }
}

/// Replaces `path` (after following symlinks) with `contents`, atomically.
pub fn write_atomic(path: &Path, contents: &[u8], new_file: NewFile) -> Result<()> {
    let target = write_target(path)?;
    let dir = parent_dir(&target);
    let existing = match fs::metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", target.display())),
    };
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut write = || -> io::Result<()> {
        let f = tmp.as_file_mut();
        f.write_all(contents)?;
        match &existing {
            Some(meta) => {
                nix::unistd::fchown(
                    &*f,
                    Some(nix::unistd::Uid::from_raw(meta.uid())),
                    Some(nix::unistd::Gid::from_raw(meta.gid())),
                )
                .map_err(io::Error::from)?;
                f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            }
            None => f.set_permissions(fs::Permissions::from_mode(new_file.mode))?,
        }
        f.sync_all()
    };
    write().with_context(|| format!("cannot write a temporary file in {}", dir.display()))?;
    tmp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", target.display()))?;
    sync_dir(&dir);
    Ok(())
}

/// Removes `path` (its symlink target when it is a link); a missing file is not an error.
pub fn remove(path: &Path) -> Result<()> {
    let target = write_target(path)?;
    match fs::remove_file(&target) {
        Ok(()) => {
            sync_dir(&parent_dir(&target));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", target.display())),
    }
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable; some file systems refuse fsync on a directory, which is harmless here.
    if let Ok(d) = OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_directory())
        .open(dir)
    {
        let _ = d.sync_all();
    }
}

fn libc_o_directory() -> i32 {
    nix::fcntl::OFlag::O_DIRECTORY.bits()
}

/// Copies `path` to `path.PID.YYYY-MM-DD@HH:MM:SS~` (Ansible's backup naming, local time), keeping mode and
/// owner. Returns the backup's path, or `None` when there is nothing to back up.
///
/// The copy is written like any other file here: a temporary file in the same directory, fsync, then a rename
/// to the backup's name. A failure (a full disk) removes the temporary file, so no partial backup is left.
pub fn backup(path: &Path) -> Result<Option<PathBuf>> {
    let target = write_target(path)?;
    let Some(contents) = read_optional(&target)? else {
        return Ok(None);
    };
    let stamp = local_timestamp();
    let backup = PathBuf::from(format!(
        "{}.{}.{}~",
        target.display(),
        std::process::id(),
        stamp
    ));
    let meta =
        fs::metadata(&target).with_context(|| format!("cannot inspect {}", target.display()))?;
    let dir = parent_dir(&target);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let failed = || {
        format!(
            "cannot write the backup {} (the file itself was not changed)",
            backup.display()
        )
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(failed)?;
    let mut write = || -> io::Result<()> {
        let f = tmp.as_file_mut();
        f.write_all(&contents)?;
        // Owner first: chown clears setuid/setgid bits, which the mode then restores. Not being allowed to
        // give the copy away (not root) is no reason to fail the backup.
        let _ = nix::unistd::fchown(
            &*f,
            Some(nix::unistd::Uid::from_raw(meta.uid())),
            Some(nix::unistd::Gid::from_raw(meta.gid())),
        );
        f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        f.sync_all()
    };
    write().with_context(failed)?;
    // No-clobber: never replace an existing file of that name (the old create_new semantics).
    tmp.persist_noclobber(&backup)
        .map_err(|e| e.error)
        .with_context(failed)?;
    sync_dir(&dir);
    Ok(Some(backup))
}

/// `YYYY-MM-DD@HH:MM:SS` in local time (reads /etc/localtime through libc; no NSS involved).
fn local_timestamp() -> String {
    // SAFETY: time() with a null pointer only returns; localtime_r writes only into `tm`, which we own.
    let now = unsafe { nix::libc::time(std::ptr::null_mut()) };
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    unsafe { nix::libc::localtime_r(&now, &mut tm) };
    format!(
        "{:04}-{:02}-{:02}@{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}
