//! The node being checked: files read under `sysroot`, programs looked up and run with a time limit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ansible_module::process::{self, Output};

/// Where programs are looked for, under the sysroot. NVIDIA's driver containers and the GPU Operator put
/// `nvidia-smi` and the toolkit under /usr/local/nvidia, which is often missing from a login shell's PATH.
const TOOL_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/nvidia/bin",
    "/usr/local/nvidia/toolkit",
];

/// The node as the module sees it.
#[derive(Debug, Clone)]
pub struct Node {
    /// The sysroot: `/` on a live node, or an image, chroot or test tree.
    pub root: PathBuf,
    /// Each external program's time limit.
    pub timeout: Duration,
}

impl Node {
    pub fn new(root: impl Into<PathBuf>, timeout: Duration) -> Node {
        Node {
            root: root.into(),
            timeout,
        }
    }

    /// True when the node is the running system (sysroot `/`), so its services and PATH are the real ones.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// An absolute node path (`/proc/...`) as a path on this machine.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// A file's text, `None` when it cannot be read (missing, a directory, no permission).
    pub fn read(&self, abs: &str) -> Option<String> {
        std::fs::read(self.path(abs))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The directories searched for programs: PATH first on a live node, then the usual places.
    pub fn tool_dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = Vec::new();
        if self.is_live() {
            if let Ok(path) = std::env::var("PATH") {
                dirs.extend(
                    path.split(':')
                        .filter(|d| d.starts_with('/'))
                        .map(String::from),
                );
            }
        }
        for d in TOOL_DIRS {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_string());
            }
        }
        dirs
    }

    /// The first executable `name` in `tool_dirs`, as a path on this machine.
    pub fn find_tool(&self, name: &str) -> Option<PathBuf> {
        self.tool_dirs()
            .iter()
            .map(|d| self.path(d).join(name))
            .find(|p| is_executable(p))
    }

    /// Runs a program found on the node. `Err` only when it cannot start or runs past the time limit.
    pub fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<Output> {
        process::run(program, args, &[("LC_ALL", "C")], self.timeout)
    }

    /// A path on this machine shown as the node's path (strips the sysroot).
    pub fn show(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) if !self.is_live() => format!("/{}", rel.display()),
            _ => p.display().to_string(),
        }
    }
}

/// A regular file (symlinks followed) with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The first token that looks like a version (`580.159.04`, `1.17.8`, `13.0`): digits and at least one dot.
pub fn version_token(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ':')
        .map(|t| t.trim_start_matches('v'))
        .find(|t| {
            t.contains('.')
                && !t.starts_with('.')
                && !t.ends_with('.')
                && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tokens_are_found_in_tool_output() {
        assert_eq!(
            version_token("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)").as_deref(),
            Some("580.159.04")
        );
        assert_eq!(
            version_token("NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80")
                .as_deref(),
            Some("1.17.8")
        );
        assert_eq!(
            version_token("cli-version: 1.17.8").as_deref(),
            Some("1.17.8")
        );
        assert_eq!(version_token("no version here."), None);
    }

    #[test]
    fn paths_live_under_the_sysroot() {
        let n = Node::new("/tmp/root", Duration::from_secs(1));
        assert_eq!(n.path("/proc/x"), PathBuf::from("/tmp/root/proc/x"));
        assert_eq!(n.show(Path::new("/tmp/root/usr/bin/a")), "/usr/bin/a");
        assert!(!n.is_live());
        assert!(Node::new("/", Duration::from_secs(1)).is_live());
    }
}
