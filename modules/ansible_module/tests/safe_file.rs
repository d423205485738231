//! safe_file: an atomic write keeps owner, group, mode and symlinks; backups are named as Ansible names
//! them; the directory lock makes concurrent read-modify-write runs take turns.

use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ansible_module::safe_file::{backup, read_optional, write_atomic, DirLock, NewFile};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Names in a directory other than the ones given: leftovers such as temp files.
fn others(dir: &Path, expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

#[test]
fn replace_keeps_owner_group_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    fs::write(&path, b"old\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        chown(&path, Some(1234), Some(2345)).unwrap();
    }
    let before = fs::metadata(&path).unwrap();
    write_atomic(&path, b"new contents\n", NewFile::with_mode(0o600)).unwrap();
    let after = fs::metadata(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new contents\n");
    assert_eq!(after.mode() & 0o7777, 0o640, "mode kept");
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if is_root() {
        assert_eq!((after.uid(), after.gid()), (1234, 2345), "owner kept");
    }
    assert_ne!(
        after.ino(),
        before.ino(),
        "replaced by rename, not rewritten in place"
    );
    assert!(
        others(dir.path(), &["config.toml"]).is_empty(),
        "no temp file left"
    );
}

#[test]
fn a_new_file_gets_the_requested_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh");
    write_atomic(&path, b"x", NewFile::with_mode(0o600)).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(read_optional(&dir.path().join("missing")).unwrap(), None);
}

/// A file put back after it was removed is made with the owner it had. Only root can give a file away; anyone
/// else asks for their own ids, which still goes through fchown.
#[test]
fn a_new_file_gets_the_requested_owner() {
    let owner = if is_root() {
        (1234, 2345)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restored");
    let how = NewFile {
        mode: 0o640,
        owner: Some(owner),
    };
    write_atomic(&path, b"x", how).unwrap();
    let m = fs::metadata(&path).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (owner.0, owner.1, 0o640)
    );
}

#[test]
fn a_symlink_is_followed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    let target = dir.path().join("real/config.toml");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o604)).unwrap();
    // A relative link to a relative link: a chain.
    symlink("real/config.toml", dir.path().join("link1")).unwrap();
    symlink("link1", dir.path().join("link2")).unwrap();
    write_atomic(&dir.path().join("link2"), b"new", NewFile::default()).unwrap();
    for link in ["link1", "link2"] {
        let meta = fs::symlink_metadata(dir.path().join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{} is still a symlink", link);
    }
    assert_eq!(fs::read(&target).unwrap(), b"new");
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o7777, 0o604);
    // A dangling link is written through too: the file appears where it points.
    symlink("real/absent.toml", dir.path().join("dangling")).unwrap();
    write_atomic(&dir.path().join("dangling"), b"made", NewFile::default()).unwrap();
    assert_eq!(
        fs::read(dir.path().join("real/absent.toml")).unwrap(),
        b"made"
    );
    assert!(fs::symlink_metadata(dir.path().join("dangling"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn backups_are_named_like_ansible_and_keep_contents_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    assert_eq!(backup(&path).unwrap(), None, "nothing to back up");
    fs::write(&path, b"version 1").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let b = backup(&path).unwrap().expect("a backup");
    let name = b.file_name().unwrap().to_str().unwrap().to_string();
    // config.toml.PID.YYYY-MM-DD@HH:MM:SS~
    let rest = name.strip_prefix("config.toml.").expect(&name);
    let (pid, stamp) = rest.split_once('.').expect(&name);
    assert_eq!(pid, std::process::id().to_string());
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { c })
        .collect();
    assert_eq!(shape, "DDDD-DD-DD@DD:DD:DD~", "{}", name);
    assert_eq!(fs::read(&b).unwrap(), b"version 1");
    assert_eq!(fs::metadata(&b).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(b.parent(), path.parent());
}

#[test]
fn the_lock_serialises_read_modify_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("counter"));
    fs::write(&*path, b"0").unwrap();
    let writers = 6;
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let _lock = DirLock::acquire(&path, Duration::from_secs(20)).unwrap();
                let n: u32 = String::from_utf8(fs::read(&*path).unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                // Without the lock, the others would read the same value during this pause.
                std::thread::sleep(Duration::from_millis(30));
                write_atomic(&path, (n + 1).to_string().as_bytes(), NewFile::default()).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(fs::read(&*path).unwrap(), writers.to_string().as_bytes());
}

#[test]
fn a_held_lock_makes_others_wait_then_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let held = DirLock::acquire(&path, Duration::from_secs(1)).unwrap();
    let start = Instant::now();
    let err = DirLock::acquire(&path, Duration::from_millis(200))
        .err()
        .expect("the second lock must wait and give up");
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(format!("{:#}", err).contains("cannot lock"), "{:#}", err);
    drop(held);
    DirLock::acquire(&path, Duration::from_millis(200)).expect("free once released");
}

/// Names that look like a killed writer's temp file of `config.toml` but are not exactly one.
const LOOKALIKES: [&str; 6] = [
    ".config.toml.Zx81Q.tmp",
    ".config.toml.Zx81Qab.tmp",
    ".config.toml.Zx81Qa.tmp~",
    ".config.toml.Zx81Qa.validate",
    "config.toml.Zx81Qa.tmp",
    ".other.toml.Zx81Qa.tmp",
];

/// A folder holding `config.toml`, two leftovers of killed writers (a write's and a backup's temp file, same
/// scheme) and the look-alikes.
fn folder_with_leftovers() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    fs::write(&path, b"old\n").unwrap();
    for name in [".config.toml.Zx81Qa.tmp", ".config.toml.0b9KpX.tmp"]
        .iter()
        .chain(LOOKALIKES.iter())
    {
        fs::write(dir.path().join(name), b"partial").unwrap();
    }
    (dir, path)
}

#[test]
fn a_locked_write_removes_leftover_temp_files_of_that_file_only() {
    let (dir, path) = folder_with_leftovers();
    // A folder and a symlink with a temp file's name are not ours to remove.
    fs::create_dir(dir.path().join(".config.toml.Dir123.tmp")).unwrap();
    symlink("config.toml", dir.path().join(".config.toml.Lnk123.tmp")).unwrap();
    let _lock = DirLock::acquire(&path, Duration::from_secs(5)).unwrap();
    write_atomic(&path, b"new\n", NewFile::default()).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new\n");
    let mut kept: Vec<&str> = LOOKALIKES.to_vec();
    kept.extend([".config.toml.Dir123.tmp", ".config.toml.Lnk123.tmp"]);
    kept.sort();
    assert_eq!(others(dir.path(), &["config.toml"]), kept);
}

#[test]
fn a_locked_write_through_a_symlink_cleans_where_the_file_is() {
    let (real, path) = folder_with_leftovers();
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("config.toml");
    symlink(&path, &link).unwrap();
    // The lock is taken on the file's own folder (as containerd_runtime does), the write names the link.
    let _lock = DirLock::acquire(&path, Duration::from_secs(5)).unwrap();
    write_atomic(&link, b"new\n", NewFile::default()).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new\n");
    let mut kept = LOOKALIKES.to_vec();
    kept.sort();
    assert_eq!(others(real.path(), &["config.toml"]), kept);
}

#[test]
fn without_the_lock_leftover_temp_files_are_kept() {
    // A writer that does not lock cannot know whether a temp file's owner is still running.
    let (dir, path) = folder_with_leftovers();
    write_atomic(&path, b"new\n", NewFile::default()).unwrap();
    drop(DirLock::acquire(&path, Duration::from_secs(5)).unwrap());
    write_atomic(&path, b"newer\n", NewFile::default()).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"newer\n");
    assert_eq!(
        others(dir.path(), &["config.toml"]).len(),
        2 + LOOKALIKES.len()
    );
}

#[test]
fn locking_several_files_locks_each_directory_once() {
    // Two names for one directory (a path and a symlink to it) must not make the run wait for itself.
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let link = other.path().join("link");
    symlink(dir.path(), &link).unwrap();
    let files = [
        dir.path().join("config.toml"),
        link.join("drop-in.toml"),
        other.path().join("x.list"),
        dir.path().join("missing/sub.toml"),
    ];
    let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let start = Instant::now();
    let locks = DirLock::acquire_all(&files, Duration::from_millis(500)).unwrap();
    assert!(start.elapsed() < Duration::from_millis(400));
    // Both existing directories once; the missing one skipped.
    assert_eq!(locks.len(), 2);
    // And they are really held: another lock on either waits and gives up.
    for f in [files[0], files[2]] {
        assert!(DirLock::acquire(f, Duration::from_millis(50)).is_err());
    }
    drop(locks);
    DirLock::acquire(files[1], Duration::from_millis(50)).expect("free once released");
}

#[test]
fn a_candidate_beside_a_locked_file_cleans_leftovers_and_goes_away() {
    let (dir, path) = folder_with_leftovers();
    let _lock = DirLock::acquire(&path, Duration::from_secs(5)).unwrap();
    let candidate = ansible_module::safe_file::temp_beside(&path).unwrap();
    let name = candidate
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(".config.toml.") && name.ends_with(".tmp"),
        "{name}"
    );
    let mut kept: Vec<&str> = LOOKALIKES.to_vec();
    kept.push(&name);
    kept.sort();
    assert_eq!(others(dir.path(), &["config.toml"]), kept);
    drop(candidate);
    assert_eq!(others(dir.path(), &["config.toml"]).len(), LOOKALIKES.len());
}
