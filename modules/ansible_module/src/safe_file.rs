//! Safe file writes for every module: a lock, a timestamped backup, and an atomic replace that keeps the
//! owner, group and mode, and writes through a symlink to its target instead of replacing the link.
//!
//! A write is: temp file in the target's directory, write, fchown/fchmod, fsync, rename over the target,
//! fsync the directory. A reader (or a crash) sees the old file or the new one, never a partial one.
//!
//! A writer killed between creating its temp file and the rename leaves `.NAME.XXXXXX.tmp` behind. The next
//! write of NAME removes such files, but only while this process holds the directory's `DirLock`: every
//! writer that locks takes the lock before creating its temp file, so no live writer can own one then.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
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
    dir: DirId,
}

/// A directory's (device, inode): the same directory whatever path (or symlink) named it.
type DirId = (u64, u64);

/// The directories this process holds a `DirLock` on (one entry per lock), for `write_atomic`'s cleanup.
static LOCKED_DIRS: Mutex<Vec<DirId>> = Mutex::new(Vec::new());

fn locked_dirs() -> std::sync::MutexGuard<'static, Vec<DirId>> {
    // A panic elsewhere cannot leave the list half-changed: every change is one push or one remove.
    LOCKED_DIRS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this process holds a `DirLock` on `dir`.
fn holds_lock(dir: &Path) -> bool {
    match fs::metadata(dir) {
        Ok(m) => locked_dirs().contains(&(m.dev(), m.ino())),
        Err(_) => false,
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Runs before the flock itself is released (fields drop after this).
        let mut held = locked_dirs();
        if let Some(i) = held.iter().position(|d| *d == self.dir) {
            held.swap_remove(i);
        }
    }
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
                Ok(lock) => {
                    let meta = lock
                        .metadata()
                        .with_context(|| format!("cannot inspect {}", dir.display()))?;
                    let id = (meta.dev(), meta.ino());
                    locked_dirs().push(id);
                    return Ok(DirLock {
                        _lock: lock,
                        dir: id,
                    });
                }
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

    /// Locks the directories that hold `files`: each directory once (two paths, or a path and a symlink, may
    /// name one directory, and a second lock on it would wait for the first until the timeout) and in the
    /// order of their (device, inode), so two runs locking the same directories cannot deadlock. A directory
    /// that does not exist yet is skipped: there is nothing in it to interleave with.
    pub fn acquire_all(files: &[&Path], timeout: Duration) -> Result<Vec<DirLock>> {
        let mut dirs: Vec<(DirId, &Path)> = Vec::new();
        for file in files {
            let Ok(meta) = fs::metadata(parent_dir(file)) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if meta.is_dir() && !dirs.iter().any(|(d, _)| *d == id) {
                dirs.push((id, file));
            }
        }
        dirs.sort_by_key(|(id, _)| *id);
        dirs.into_iter()
            .map(|(_, file)| DirLock::acquire(file, timeout))
            .collect()
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
    /// `(uid, gid)` to give it; `None`: the writing process's. A file put back after it was removed takes the
    /// owner it had.
    pub owner: Option<(u32, u32)>,
}

impl NewFile {
    /// A new file of `mode`, owned by the writing process.
    pub fn with_mode(mode: u32) -> NewFile {
        NewFile { mode, owner: None }
    }
}

impl Default for NewFile {
    fn default() -> Self {
        NewFile::with_mode(0o644)
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
    let name = temp_base(&target);
    if holds_lock(&dir) {
        remove_stale_temps(&dir, name);
    }
    let mut tmp = temp_file(&dir, name)
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
            None => {
                if let Some((uid, gid)) = new_file.owner {
                    nix::unistd::fchown(
                        &*f,
                        Some(nix::unistd::Uid::from_raw(uid)),
                        Some(nix::unistd::Gid::from_raw(gid)),
                    )
                    .map_err(io::Error::from)?;
                }
                f.set_permissions(fs::Permissions::from_mode(new_file.mode))?
            }
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

/// A new temporary file beside `path`, removed on drop: for a candidate a program checks before the real write
/// (relative paths in it resolve as in `path`). Named like `write_atomic`'s temp files, so a run killed while
/// the candidate existed leaves nothing the next locked write does not clean up.
pub fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    let name = temp_base(path);
    if holds_lock(&dir) {
        remove_stale_temps(&dir, name);
    }
    temp_file(&dir, name)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
}

/// How many random characters a temp file's name has (ASCII letters and digits).
const TEMP_RANDOM_LEN: usize = 6;

/// The name a file's temp files are named after: its own, or `file` when that is not UTF-8.
fn temp_base(target: &Path) -> &str {
    target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file")
}

/// A new temp file `.NAME.XXXXXX.tmp` in `dir`: hidden and not `*.toml`, so no `imports` glob loads it.
/// Removed on drop unless persisted. Backups and writes share this scheme, so one cleanup covers both.
fn temp_file(dir: &Path, name: &str) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{}.", name))
        .rand_bytes(TEMP_RANDOM_LEN)
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Whether `file_name` is exactly one of `temp_file(_, name)`'s names.
fn is_temp_of(name: &str, file_name: &str) -> bool {
    file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".tmp"))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Removes the temp files of `name` that killed writers left in `dir`. Only call it while holding `dir`'s
/// lock. Best effort: a leftover that cannot be removed does no harm, so it never fails the write.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| is_temp_of(name, n));
        // A regular file only: never a directory, nor a symlink someone put there under that name.
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    let name = temp_base(&target);
    let failed = || {
        format!(
            "cannot write the backup {} (the file itself was not changed)",
            backup.display()
        )
    };
    let mut tmp = temp_file(&dir, name).with_context(failed)?;
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

#[cfg(test)]
mod tests {
    use super::is_temp_of;

    #[test]
    fn temp_names_match_exactly() {
        assert!(is_temp_of("config.toml", ".config.toml.aB3xY9.tmp"));
        for other in [
            "config.toml",
            ".config.toml.aB3xY.tmp",
            ".config.toml.aB3xY9z.tmp",
            ".config.toml.aB-xY9.tmp",
            ".config.toml.aB3xY9.tmp~",
            ".config.toml.aB3xY9.validate",
            "config.toml.aB3xY9.tmp",
            ".config.toml.aB3xY9.tmp.toml",
            ".xconfig.toml.aB3xY9.tmp",
            ".other.toml.aB3xY9.tmp",
            ".config.toml.d.aB3xY9.tmp",
        ] {
            assert!(!is_temp_of("config.toml", other), "{}", other);
        }
        // A name that is a prefix of another: `.a.b.XXXXXX.tmp` is `a.b`'s, not `a`'s.
        assert!(!is_temp_of("a", ".a.b.aB3xY9.tmp"));
        assert!(is_temp_of("a.b", ".a.b.aB3xY9.tmp"));
    }
}
