//! The `toolkit` check: NVIDIA Container Toolkit's programs are installed, report their versions, and
//! `nvidia-container-cli info` reaches the driver.

use crate::node::{version_token, Node};
use crate::report::Check;

pub const ID: &str = "toolkit";
const PROGRAMS: &[&str] = &[
    "nvidia-ctk",
    "nvidia-container-runtime",
    "nvidia-container-cli",
];

/// The check and the toolkit's version (nvidia-ctk's, else the runtime's).
pub fn check(node: &Node) -> (Check, Option<String>) {
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
    let mut versions = Vec::new();
    let mut version = None;
    for (name, path) in &found {
        let Some(path) = path else { continue };
        match node.run(path, &["--version"]) {
            Ok(o) if o.success() => match version_token(&o.stdout) {
                Some(v) => {
                    versions.push(format!("{} {}", name, v));
                    version.get_or_insert(v);
                }
                None => faults.push(format!("{} --version printed no version", name)),
            },
            Ok(o) => faults.push(format!("{} --version failed: {}", name, o.complaint())),
            Err(e) => faults.push(format!("{:#}", e)),
        }
    }
    if let Some((_, Some(cli))) = found.iter().find(|(n, _)| *n == "nvidia-container-cli") {
        match node.run(cli, &["info"]) {
            Ok(o) if o.success() => {}
            Ok(o) => faults.push(format!(
                "nvidia-container-cli info failed: {}",
                o.complaint()
            )),
            Err(e) => faults.push(format!("{:#}", e)),
        }
    }
    if !faults.is_empty() {
        let detail = if versions.is_empty() {
            faults.join("; ")
        } else {
            format!("{}; {}", versions.join(", "), faults.join("; "))
        };
        return (
            Check::fail(
                ID,
                detail,
                "reinstall NVIDIA Container Toolkit (nvidia-container-toolkit and libnvidia-container-tools, same \
                 version); `nvidia-container-cli info` failing means it cannot reach the driver or NVML",
            ),
            version,
        );
    }
    (
        Check::pass(
            ID,
            format!("{}; nvidia-container-cli info works", versions.join(", ")),
        ),
        version,
    )
}
