//! The `toolkit` check: NVIDIA Container Toolkit's programs are installed, print one and the same version, and
//! `nvidia-container-cli info` reaches the driver. Without a loaded driver `info` cannot work, so it is not run:
//! the driver check already fails for that, and the toolkit is judged on what can be judged.

use crate::node::{version_token, Node};
use crate::report::Check;

pub const ID: &str = "toolkit";
const PROGRAMS: &[&str] = &[
    "nvidia-ctk",
    "nvidia-container-runtime",
    "nvidia-container-cli",
];
/// What the detail says when `info` was left out.
pub const INFO_NOT_RUN: &str = "no NVIDIA driver loaded: nvidia-container-cli info not run";

/// The check and the toolkit's version (nvidia-ctk's, else the runtime's). `driver_loaded` is the driver
/// check's finding (`driver::module_loaded`).
pub fn check(node: &Node, driver_loaded: bool) -> (Check, Option<String>) {
    let found: Vec<(&str, Option<std::path::PathBuf>)> =
        PROGRAMS.iter().map(|p| (*p, node.find_tool(p))).collect();
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.len() == PROGRAMS.len() {
        return (
            Check::fail(
                ID,
                format!(
                    "NVIDIA Container Toolkit is not installed: {} not found (looked in {})",
                    missing.join(", "),
                    node.tool_dirs().join(", ")
                ),
                "install it with the gpunode.nvidia.nvidia_toolkit module (or the gpu_node role)",
            ),
            None,
        );
    }
    let mut faults = Vec::new();
    if !missing.is_empty() {
        faults.push(format!("not found: {}", missing.join(", ")));
    }
    // `versions` is what the detail shows; `stamps` adds libnvidia-container's own version for the comparison.
    let mut versions = Vec::new();
    let mut stamps = Vec::new();
    let mut version = None;
    for (name, path) in &found {
        let Some(path) = path else { continue };
        match node.run(path, &["--version"]) {
            Ok(o) if o.success() => match version_token(&o.stdout) {
                Some(v) => {
                    versions.push(format!("{} {}", name, v));
                    stamps.push(format!("{} {}", name, v));
                    if let Some(lib) = lib_version(&o.stdout) {
                        stamps.push(format!("libnvidia-container {}", lib));
                    }
                    version.get_or_insert(v);
                }
                None => faults.push(format!("{} --version printed no version", name)),
            },
            Ok(o) => faults.push(format!("{} --version failed: {}", name, o.complaint())),
            Err(e) => faults.push(format!("{:#}", e)),
        }
    }
    if !agree(&stamps) {
        faults.push(format!("versions disagree: {}", stamps.join(", ")));
    }
    let info = match found.iter().find(|(n, _)| *n == "nvidia-container-cli") {
        Some((_, Some(cli))) if driver_loaded => match node.run(cli, &["info"]) {
            Ok(o) if o.success() => Some("nvidia-container-cli info works"),
            Ok(o) => {
                faults.push(format!(
                    "nvidia-container-cli info failed: {}",
                    o.complaint()
                ));
                None
            }
            Err(e) => {
                faults.push(format!("{:#}", e));
                None
            }
        },
        Some((_, Some(_))) => Some(INFO_NOT_RUN),
        _ => None,
    };
    let mut detail = versions.join(", ");
    for part in faults.iter().map(String::as_str).chain(info) {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(part);
    }
    if !faults.is_empty() {
        return (
            Check::fail(
                ID,
                detail,
                "reinstall NVIDIA Container Toolkit (nvidia-container-toolkit, nvidia-container-toolkit-base, \
                 libnvidia-container-tools and libnvidia-container1, same version); `nvidia-container-cli info` \
                 failing means it cannot reach the driver or NVML",
            ),
            version,
        );
    }
    (Check::pass(ID, detail), version)
}

/// libnvidia-container's version from `nvidia-container-cli --version` (its `lib-version:` line).
fn lib_version(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("lib-version:"))
        .and_then(version_token)
}

/// Every `name version` stamp carries the same version.
fn agree(stamps: &[String]) -> bool {
    let mut vs = stamps.iter().filter_map(|s| s.rsplit(' ').next());
    match vs.next() {
        Some(first) => vs.all(|v| v == first),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lib_version_is_read_from_its_own_line() {
        let out = "cli-version: 1.17.8\nlib-version: 1.16.2\nbuild date: 2025-05-30T13:47+00:00\n";
        assert_eq!(lib_version(out).as_deref(), Some("1.16.2"));
        assert_eq!(lib_version("cli-version: 1.17.8\n"), None);
    }

    #[test]
    fn versions_agree_only_when_all_are_equal() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(agree(&s(&[
            "nvidia-ctk 1.17.8",
            "nvidia-container-cli 1.17.8"
        ])));
        assert!(agree(&s(&[])));
        assert!(!agree(&s(&[
            "nvidia-ctk 1.17.8",
            "nvidia-container-cli 1.17.8",
            "libnvidia-container 1.16.2"
        ])));
    }
}
