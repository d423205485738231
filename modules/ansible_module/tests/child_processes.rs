//! Behaviour that needs a process of its own (runs without the test harness: `harness = false`).
//!
//! The test binary starts copies of itself in a "child" role:
//! - a module whose `run` panics must still print one parseable JSON failure and exit 1;
//! - a write that fails (a directory the writer may not change; a file-size limit hit half-way through
//!   writing the temp file) must leave the original file byte-identical and no temp file behind;
//! - a backup cut short the same way (a full disk) must leave no partial backup and no temp file.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use ansible_module::safe_file::{backup, write_atomic, NewFile};
use ansible_module::{Module, ModuleSpec, Opt, Response};

const ROLE: &str = "ANSIBLE_MODULE_TEST_CHILD";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("panic") => ansible_module::main(
            "panicky",
            ModuleSpec::new(vec![Opt::str("what"), Opt::str("token").no_log()]),
            run_panics,
        ),
        Ok("write") => child_write(),
        Ok("backup") => child_backup(),
        _ => {}
    }
    let mut passed = 0;
    for (name, test) in [
        ("panic_gives_json_failure", panic_gives_json_failure as fn()),
        (
            "write_refused_by_permissions_changes_nothing",
            write_refused_by_permissions_changes_nothing,
        ),
        (
            "write_cut_short_changes_nothing",
            write_cut_short_changes_nothing,
        ),
        (
            "backup_cut_short_leaves_no_partial_backup",
            backup_cut_short_leaves_no_partial_backup,
        ),
    ] {
        test();
        println!("test {} ... ok", name);
        passed += 1;
    }
    println!("test result: ok. {} passed; 0 failed", passed);
}

fn run_panics(m: &mut Module) -> anyhow::Result<Response> {
    let what = m.str("what").unwrap_or("nothing").to_string();
    let token = m.str("token").unwrap_or("").to_string();
    panic!("deliberate panic about {} ({})", what, token);
}

/// Child role: one atomic write of 64 KiB to $PATH_TO_WRITE; prints the outcome, exits 0 either way.
fn child_write() -> ! {
    let path = std::env::var("PATH_TO_WRITE").unwrap();
    match write_atomic(Path::new(&path), &vec![b'x'; 64 * 1024], NewFile::default()) {
        Ok(()) => println!("written"),
        Err(e) => println!("error: {:#}", e),
    }
    std::process::exit(0)
}

/// Child role: one backup of $PATH_TO_WRITE; prints the outcome, exits 0 either way.
fn child_backup() -> ! {
    let path = std::env::var("PATH_TO_WRITE").unwrap();
    match backup(Path::new(&path)) {
        Ok(b) => println!("backup: {:?}", b),
        Err(e) => println!("error: {:#}", e),
    }
    std::process::exit(0)
}

fn me() -> Command {
    Command::new(std::env::current_exe().unwrap())
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn panic_gives_json_failure() {
    let dir = tempfile::tempdir().unwrap();
    let args = dir.path().join("args");
    fs::write(
        &args,
        br#"{"what": "the args", "token": "s3cr3t", "_ansible_check_mode": false}"#,
    )
    .unwrap();
    let out = me().env(ROLE, "panic").arg(&args).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1; stdout {stdout} stderr {stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line on stdout: {stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(v["failed"], serde_json::Value::Bool(true));
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("panicky module crashed: deliberate panic about the args (********) at "),
        "{msg}"
    );
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

/// A file with known contents in a directory others may read but not change.
fn original(dir: &Path) -> (std::path::PathBuf, u64) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("config.toml");
    fs::write(&path, b"original contents\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    (path, ino)
}

fn assert_untouched(dir: &Path, path: &Path, ino: u64) {
    assert_eq!(
        fs::read(path).unwrap(),
        b"original contents\n",
        "byte-identical"
    );
    assert_eq!(fs::metadata(path).unwrap().ino(), ino, "same file");
    let names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temp file left: {names:?}");
}

fn write_refused_by_permissions_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ino) = original(dir.path());
    // root ignores permissions: write as nobody instead, from a copy of this binary nobody may run
    // (the build folder may sit below a home directory nobody cannot enter).
    let exe_dir = tempfile::tempdir().unwrap();
    let mut cmd = me();
    if nix::unistd::geteuid().is_root() {
        fs::set_permissions(exe_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let exe = exe_dir.path().join("child");
        fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        cmd = Command::new(&exe);
        cmd.uid(65534).gid(65534);
    } else {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    }
    cmd.env(ROLE, "write").env("PATH_TO_WRITE", &path);
    let out = cmd.output().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.starts_with("error: cannot create a temporary file in"),
        "{stdout} {stderr}"
    );
    assert_untouched(dir.path(), &path, ino);
}

/// Writes past 4 KiB fail with EFBIG (instead of a SIGXFSZ kill), as on a full disk.
fn limit_file_size(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            use nix::libc;
            // Past 4 KiB a write fails with EFBIG (instead of a SIGXFSZ kill).
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn write_cut_short_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ino) = original(dir.path());
    let mut cmd = me();
    cmd.env(ROLE, "write").env("PATH_TO_WRITE", &path);
    limit_file_size(&mut cmd);
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.starts_with("error: cannot write a temporary file in"),
        "{stdout} {stderr}"
    );
    assert!(stdout.contains("File too large"), "{stdout}");
    assert_untouched(dir.path(), &path, ino);
}

fn backup_cut_short_leaves_no_partial_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let contents = vec![b'y'; 64 * 1024];
    fs::write(&path, &contents).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    let mut cmd = me();
    cmd.env(ROLE, "backup").env("PATH_TO_WRITE", &path);
    limit_file_size(&mut cmd);
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    let prefix = format!("error: cannot write the backup {}.", path.display());
    assert!(stdout.starts_with(&prefix), "{stdout} {stderr}");
    assert!(
        stdout.contains("(the file itself was not changed)") && stdout.contains("File too large"),
        "{stdout}"
    );
    assert_eq!(fs::read(&path).unwrap(), contents, "byte-identical");
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino, "same file");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no partial backup, no temp file: {names:?}");
}
