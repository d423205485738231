//! The `driver` check: the NVIDIA kernel module is loaded (`/proc/driver/nvidia/version`), new enough, and
//! bound to every NVIDIA GPU on the bus.

use std::cmp::Ordering;

use node_facts::version;

use crate::node::Node;
use crate::pci::PciGpu;
use crate::report::Check;

pub const ID: &str = "driver";
const VERSION_FILE: &str = "/proc/driver/nvidia/version";

/// The NVIDIA kernel module is loaded: `/proc/driver/nvidia/version` exists (what the driver check's
/// "not loaded" verdict means, shared so the checks that need the driver agree with it).
pub fn module_loaded(node: &Node) -> bool {
    node.read(VERSION_FILE).is_some()
}

/// The loaded kernel module's version, `None` when the module is not loaded.
pub fn loaded_version(node: &Node) -> Option<String> {
    version::nvidia_driver(&node.read(VERSION_FILE)?)
}

/// The check itself.
pub fn check(node: &Node, gpus: &[PciGpu], min_version: &str) -> Check {
    let Some(text) = node.read(VERSION_FILE) else {
        return Check::fail(
            ID,
            format!("the NVIDIA kernel module is not loaded ({} is missing)", VERSION_FILE),
            "load it with `modprobe nvidia`; if that fails, see dmesg (module not built for this kernel, Secure Boot \
             refusing an unsigned module, nouveau holding the GPU)",
        );
    };
    let Some(version) = loaded_version(node) else {
        return Check::fail(
            ID,
            format!(
                "cannot read the driver version from {}: {:?}",
                VERSION_FILE,
                text.trim()
            ),
            "reinstall the NVIDIA driver",
        );
    };
    let flavor = if text.contains("Open Kernel Module") {
        "open kernel module"
    } else {
        "proprietary kernel module"
    };
    if version::compare(&version, min_version) == Ordering::Less {
        return Check::fail(
            ID,
            format!(
                "NVIDIA driver {} ({}) is older than the minimum {}",
                version, flavor, min_version
            ),
            format!("install NVIDIA driver {} or newer and reboot", min_version),
        );
    }
    let foreign: Vec<String> = gpus
        .iter()
        .filter(|g| g.driver.as_deref() != Some("nvidia"))
        .map(|g| {
            format!(
                "{} ({})",
                g.address,
                g.driver.as_deref().unwrap_or("no driver")
            )
        })
        .collect();
    if !foreign.is_empty() {
        return Check::fail(
            ID,
            format!(
                "NVIDIA driver {} is loaded but not bound to: {}",
                version,
                foreign.join(", ")
            ),
            "unbind nouveau/vfio-pci from these GPUs (blacklist nouveau, remove vfio-pci ids) and reboot",
        );
    }
    Check::pass(
        ID,
        format!(
            "NVIDIA driver {} ({}) loaded, >= {}",
            version, flavor, min_version
        ),
    )
}
