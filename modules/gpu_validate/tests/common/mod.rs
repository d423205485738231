//! A GPU node rebuilt from the recording of a real H200 node (tests/fixtures/gpu-node/h200-2026-11-27): its
//! sysroot unpacked into a temporary folder, its device nodes recreated with mknod (tests run as root), and
//! nvidia-smi replaced by a replay of the recorded output. `configured()` lays the configured-node overlay on
//! top. Tests then break one thing and run the module against the folder as its `sysroot`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{json, Map, Value};

/// Tests run on threads: a file this process has open for writing leaks, for an instant, into a child
/// another thread forks, and a program exec'd from that file meanwhile fails with "Text file busy". Writing
/// takes this lock exclusively; anything that starts programs takes it shared.
static FILES: RwLock<()> = RwLock::new(());
fn writing() -> RwLockWriteGuard<'static, ()> {
    FILES.write().unwrap_or_else(|e| e.into_inner())
}
fn spawning() -> RwLockReadGuard<'static, ()> {
    FILES.read().unwrap_or_else(|e| e.into_inner())
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gpu-node")
}
pub fn recording() -> PathBuf {
    fixtures().join("h200-2026-11-27")
}

/// The recorded `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` line, read from the recording.
pub fn recorded_query_line() -> String {
    let text = std::fs::read_to_string(recording().join("commands.txt")).unwrap();
    let mut lines = text.lines();
    lines
        .find(|l| l.starts_with("## nvidia-smi --query-gpu=") && l.ends_with("noheader,nounits"))
        .expect("query section in commands.txt");
    lines.next().unwrap().to_string()
}

pub struct FakeNode {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl FakeNode {
    /// The recorded node as it was: GPU, driver, device nodes; no toolkit, no containerd.
    pub fn recorded() -> FakeNode {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let guard = spawning();
        let st = Command::new("tar")
            .arg("-xzf")
            .arg(recording().join("sysroot.tar.gz"))
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap();
        assert!(st.success(), "cannot unpack the recorded sysroot");
        let node = FakeNode { _dir: dir, root };
        node.make_device_nodes();
        let bin = node.path("/usr/local/nvidia/bin");
        std::fs::create_dir_all(&bin).unwrap();
        // cp (a child process) writes the program: this process never holds it open for writing.
        let st = Command::new("cp")
            .arg(fixtures().join("replay-nvidia-smi"))
            .arg(bin.join("nvidia-smi"))
            .status()
            .unwrap();
        assert!(st.success());
        drop(guard);
        std::fs::copy(
            recording().join("commands.txt"),
            bin.join("nvidia-smi.recording"),
        )
        .unwrap();
        node
    }

    /// The recorded node with the toolkit, containerd config, kubelet config and CDI spec in place, and
    /// containerd "running" (its socket exists). When GPU_VALIDATE_CONTAINERD names a real containerd binary,
    /// it is installed in the node so the module judges the config with `containerd config dump`.
    pub fn configured() -> FakeNode {
        let node = FakeNode::recorded();
        let _guard = spawning();
        let st = Command::new("cp")
            .arg("-a")
            .arg(fixtures().join("configured/."))
            .arg(&node.root)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::remove_file(node.path("/README.md")).unwrap();
        if let Some(c) = real_containerd() {
            std::os::unix::fs::symlink(c, node.path("/usr/bin/containerd")).unwrap();
        }
        node.start_containerd_socket();
        node
    }

    /// Recreates the device nodes listed in dev-nodes.txt (`path|type|major hex|minor hex|mode octal`).
    fn make_device_nodes(&self) {
        let list = std::fs::read_to_string(self.root.join("dev-nodes.txt")).unwrap();
        for line in list.lines() {
            let f: Vec<&str> = line.split('|').collect();
            let path = self.path(f[0]);
            let mode = u32::from_str_radix(f[4], 8).unwrap();
            if f[1] == "directory" {
                std::fs::create_dir_all(&path).unwrap();
                continue;
            }
            assert_eq!(f[1], "character special file", "{}", line);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let (ma, mi) = (
                u64::from_str_radix(f[2], 16).unwrap(),
                u64::from_str_radix(f[3], 16).unwrap(),
            );
            self.mknod_char(f[0], ma, mi, mode);
        }
    }

    pub fn mknod_char(&self, p: &str, major: u64, minor: u64, mode: u32) {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let path = self.path(p);
        let _ = std::fs::remove_file(&path);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            makedev(major, minor),
        )
        .unwrap_or_else(|e| panic!("mknod {} failed ({}): these tests must run as root", p, e));
        // mknod applies the umask: set the recorded mode exactly.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn start_containerd_socket(&self) {
        let sock = self.path("/run/containerd/containerd.sock");
        std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
        // Binding leaves the socket file behind after the listener is dropped: enough for "running".
        std::os::unix::net::UnixListener::bind(&sock).unwrap();
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
    pub fn write(&self, p: &str, text: &str) {
        let _guard = writing();
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap()
    }
    /// Replaces `from` by `to` in a file, asserting that `from` was there (so a fault is really injected).
    pub fn edit(&self, p: &str, from: &str, to: &str) {
        let text = self.read(p);
        assert!(text.contains(from), "{} does not contain {:?}", p, from);
        self.write(p, &text.replace(from, to));
    }
    pub fn remove(&self, p: &str) {
        let path = self.path(p);
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }

    /// Runs the module in-process with `sysroot` set to this node; `args` adds or overrides options.
    pub fn run(&self, args: Value) -> Value {
        let mut m: Map<String, Value> = Map::new();
        m.insert("sysroot".into(), json!(self.root.to_str().unwrap()));
        if let Value::Object(extra) = args {
            m.extend(extra);
        }
        let _guard = spawning();
        ansible_module::execute_args("gpu_validate", &gpu_validate::spec(), m, gpu_validate::run)
    }
}

/// The real containerd binary to judge configs with, from GPU_VALIDATE_CONTAINERD (tests/gpu/run sets it).
pub fn real_containerd() -> Option<PathBuf> {
    std::env::var_os("GPU_VALIDATE_CONTAINERD")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

/// The named check's entry in a result.
pub fn check<'a>(out: &'a Value, id: &str) -> &'a Value {
    out["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {}", out))
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {} in {}", id, out))
}

pub fn status<'a>(out: &'a Value, id: &str) -> &'a str {
    check(out, id)["status"].as_str().unwrap()
}

/// Every check's status, as "id=status" words, for assertion messages.
pub fn statuses(out: &Value) -> String {
    out["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c["id"].as_str().unwrap(),
                        c["status"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
