//! dpkg's own records, read directly: installed versions from the status file, and who holds the dpkg locks.
//!
//! Reading `/var/lib/dpkg/status` takes a millisecond and needs neither apt nor the network, which is what
//! makes a run on an already-right node fast.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// One package as dpkg records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageState {
    pub version: String,
    /// dpkg's selection: `install`, `hold`, `deinstall`, `purge`.
    pub want: String,
    /// dpkg's state: `installed`, `config-files`, `unpacked`, `half-installed`, ...
    pub status: String,
}

impl PackageState {
    /// Fully installed (not merely unpacked or with config files left).
    pub fn is_installed(&self) -> bool {
        self.status == "installed"
    }
    pub fn is_held(&self) -> bool {
        self.want == "hold"
    }
}

/// Parses the status file's text into package name → state, for every package in it.
pub fn parse_status(text: &str) -> BTreeMap<String, PackageState> {
    let mut out = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = String::new();
        let mut status = None;
        for line in stanza.lines() {
            // Continuation lines (descriptions, conffiles) start with a space; none of our fields do.
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("Status:") {
                status = Some(v.split_whitespace().map(String::from).collect::<Vec<_>>());
            }
        }
        let (Some(name), Some(status)) = (name, status) else {
            continue;
        };
        if status.len() != 3 {
            continue;
        }
        let state = PackageState {
            version,
            want: status[0].clone(),
            status: status[2].clone(),
        };
        // A package of several architectures (multi-arch) appears more than once: keep an installed one.
        match out.get(&name) {
            Some(prev) if PackageState::is_installed(prev) && !state.is_installed() => {}
            _ => {
                out.insert(name, state);
            }
        }
    }
    out
}

/// Reads the status file under `admin_dir` (normally `/var/lib/dpkg`).
pub fn read_status(admin_dir: &Path) -> Result<BTreeMap<String, PackageState>> {
    let path = admin_dir.join("status");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read dpkg's status file {}", path.display()))?;
    Ok(parse_status(&text))
}

/// The lock files apt and dpkg take, in the order they take them.
pub fn lock_files(admin_dir: &Path) -> [PathBuf; 2] {
    [admin_dir.join("lock-frontend"), admin_dir.join("lock")]
}

/// The process holding a POSIX write lock on `path` (apt and dpkg lock with fcntl), if any.
/// Asks with F_GETLK, which reports a holder without taking the lock.
pub fn lock_holder(path: &Path) -> Result<Option<i32>> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    // SAFETY: an all-zero flock is a valid value; fcntl(F_GETLK) only writes into it.
    let mut fl: nix::libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = nix::libc::F_WRLCK as i16;
    fl.l_whence = nix::libc::SEEK_SET as i16;
    let rc = unsafe { nix::libc::fcntl(file.as_raw_fd(), nix::libc::F_GETLK, &mut fl) };
    if rc != 0 {
        bail!(
            "cannot query the lock on {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok((fl.l_type != nix::libc::F_UNLCK as i16).then_some(fl.l_pid))
}

/// Waits until neither dpkg lock is held, up to `timeout`. On time-out the error names the lock, the holding
/// process and how long it waited. Returns how long it waited.
pub fn wait_for_locks(admin_dir: &Path, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let mut held = None;
        for path in lock_files(admin_dir) {
            if let Some(pid) = lock_holder(&path)? {
                held = Some((path, pid));
                break;
            }
        }
        let Some((path, pid)) = held else {
            return Ok(start.elapsed());
        };
        if start.elapsed() >= timeout {
            bail!(
                "the dpkg lock {} is held by process {} ({}) and was still held after waiting {} s \
                 (lock_timeout); another package manager (often unattended-upgrades on a fresh node) is \
                 running: wait for it or raise lock_timeout",
                path.display(),
                pid,
                process_name(pid),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The command name of a process, or `unknown`.
fn process_name(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{}/cmdline", pid))
        .ok()
        .map(|s| s.replace('\0', " ").trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string(format!("/proc/{}/comm", pid))
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    const STATUS: &str = "\
Package: libnvidia-container1
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1.17.8-1
Description: stand-in
 a continuation line with Version: 9.9 in it

Package: libnvidia-container-tools
Status: hold ok installed
Architecture: amd64
Version: 1.17.8-1

Package: nvidia-container-toolkit
Status: deinstall ok config-files
Architecture: amd64
Version: 1.17.7-1

Package: nvidia-container-toolkit-base
Status: install ok unpacked
Version: 1.17.8-1
";

    #[test]
    fn parses_versions_selections_and_states() {
        let s = parse_status(STATUS);
        assert_eq!(s.len(), 4);
        let lib = &s["libnvidia-container1"];
        assert_eq!(lib.version, "1.17.8-1");
        assert!(lib.is_installed() && !lib.is_held());
        assert!(s["libnvidia-container-tools"].is_held());
        assert!(!s["nvidia-container-toolkit"].is_installed());
        assert!(!s["nvidia-container-toolkit-base"].is_installed());
    }

    #[test]
    fn keeps_the_installed_architecture_of_a_multiarch_package() {
        let text = "Package: libx\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n\n\
                    Package: libx\nStatus: deinstall ok config-files\nArchitecture: i386\nVersion: 1\n";
        assert_eq!(parse_status(text)["libx"].version, "2");
    }

    #[test]
    fn sees_a_lock_held_by_another_process_and_times_out_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock-frontend");
        std::fs::write(&lock, b"").unwrap();
        std::fs::write(dir.path().join("lock"), b"").unwrap();
        assert_eq!(lock_holder(&lock).unwrap(), None);
        assert!(wait_for_locks(dir.path(), Duration::from_secs(1)).is_ok());
        // A child takes an fcntl lock the way apt does (python's lockf is fcntl F_SETLKW).
        let script = format!(
            "import fcntl,sys,time\nf=open('{}','w')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(30)",
            lock.display()
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(lock_holder(&lock).unwrap(), Some(child.id() as i32));
        let t0 = Instant::now();
        let err = wait_for_locks(dir.path(), Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(t0.elapsed() >= Duration::from_secs(1));
        assert!(
            err.contains(&child.id().to_string()) && err.contains("lock_timeout"),
            "{err}"
        );
        assert!(err.contains("python3"), "{err}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(lock_holder(&lock).unwrap(), None);
    }
}
