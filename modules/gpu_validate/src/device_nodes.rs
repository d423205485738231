//! The `device_nodes` check: `/dev/nvidiactl`, `/dev/nvidia-uvm` and one `/dev/nvidiaN` per GPU exist as
//! character devices with usable modes, and the `/dev/char` links systemd needs are there.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use crate::node::Node;
use crate::report::Check;

pub const ID: &str = "device_nodes";
/// The NVIDIA driver's fixed character-device major (nvidiactl, nvidiaN); nvidia-uvm's is dynamic.
const NVIDIA_MAJOR: u64 = 195;

/// The minors of the GPUs' `/dev/nvidiaN`: the driver's "Device Minor" per GPU, else 0..count.
pub fn gpu_minors(node: &Node, gpu_count: usize) -> Vec<u64> {
    let mut minors: Vec<u64> = std::fs::read_dir(node.path("/proc/driver/nvidia/gpus"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("information")).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("Device Minor:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect();
    if minors.is_empty() {
        minors = (0..gpu_count as u64).collect();
    }
    minors.sort_unstable();
    minors
}

fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}
fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// The major the kernel gave a driver name in `/proc/devices` (`238 nvidia-uvm`).
fn registered_major(node: &Node, name: &str) -> Option<u64> {
    let text = node.read("/proc/devices")?;
    text.lines().find_map(|l| {
        let (num, n) = l.trim().split_once(' ')?;
        (n.trim() == name).then(|| num.parse().ok()).flatten()
    })
}

/// The check itself. `systemd_cgroups`: the node's containers are in systemd-managed cgroups.
pub fn check(node: &Node, minors: &[u64], systemd_cgroups: bool) -> Check {
    let mut wanted: Vec<(String, Option<u64>)> = vec![
        ("/dev/nvidiactl".into(), Some(NVIDIA_MAJOR)),
        (
            "/dev/nvidia-uvm".into(),
            registered_major(node, "nvidia-uvm"),
        ),
    ];
    wanted.extend(
        minors
            .iter()
            .map(|m| (format!("/dev/nvidia{}", m), Some(NVIDIA_MAJOR))),
    );
    let mut faults = Vec::new();
    let mut loose = Vec::new();
    let mut numbers = Vec::new();
    for (path, want_major) in &wanted {
        let meta = match std::fs::metadata(node.path(path)) {
            Ok(m) => m,
            Err(_) => {
                faults.push(format!("{} is missing", path));
                continue;
            }
        };
        let ft = meta.file_type();
        if !ft.is_char_device() {
            let what = if ft.is_dir() {
                "a directory"
            } else if ft.is_file() {
                "a regular file"
            } else if ft.is_block_device() {
                "a block device"
            } else {
                "not a device"
            };
            faults.push(format!("{} is {}, not a character device", path, what));
            continue;
        }
        let (maj, min) = (major(meta.rdev()), minor(meta.rdev()));
        if let Some(w) = want_major {
            if maj != *w {
                faults.push(format!(
                    "{} has major {} where the driver uses {}",
                    path, maj, w
                ));
                continue;
            }
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o006 != 0o006 {
            loose.push(format!("{} mode {:o}", path, mode));
        }
        numbers.push((path.clone(), maj, min));
    }
    if !faults.is_empty() {
        return Check::fail(
            ID,
            faults.join("; "),
            "run `nvidia-modprobe -u -c=0` (or `nvidia-smi` once) as root to create the nodes; /dev/nvidia-uvm \
             needs the nvidia-uvm module; a wrong node type means something else wrote that path: remove it first",
        );
    }
    let list: Vec<String> = numbers
        .iter()
        .map(|(p, a, b)| format!("{} ({}:{})", p, a, b))
        .collect();
    let detail = format!("character devices present: {}", list.join(", "));
    let missing_links: Vec<String> = numbers
        .iter()
        .map(|(_, a, b)| format!("{}:{}", a, b))
        .filter(|l| std::fs::symlink_metadata(node.path(&format!("/dev/char/{}", l))).is_err())
        .collect();
    if !missing_links.is_empty() && systemd_cgroups {
        return Check::warn(
            ID,
            format!(
                "{}; /dev/char links missing for {} on a node with systemd-managed cgroups",
                detail,
                missing_links.join(", ")
            ),
            "without /dev/char/MAJOR:MINOR links a `systemctl daemon-reload` can cut running containers off \
             their GPUs (\"Failed to initialize NVML: Unknown Error\"): run `nvidia-ctk system create-dev-char-symlinks \
             --create-all` and keep it in a udev rule",
        );
    }
    if !loose.is_empty() {
        return Check::warn(
            ID,
            format!("{}; not read-write for all: {}", detail, loose.join(", ")),
            "containers running as non-root users cannot open these nodes: the driver's default mode is 0666 \
             (NVreg_DeviceFileMode)",
        );
    }
    Check::pass(ID, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_as_the_kernel_encodes_them() {
        // makedev(195, 255) and makedev(238, 1) as glibc encodes them.
        let dev = |ma: u64, mi: u64| {
            ((ma & 0xfffff000) << 32)
                | ((ma & 0xfff) << 8)
                | ((mi & 0xffffff00) << 12)
                | (mi & 0xff)
        };
        assert_eq!((major(dev(195, 255)), minor(dev(195, 255))), (195, 255));
        assert_eq!((major(dev(238, 1)), minor(dev(238, 1))), (238, 1));
        assert_eq!(
            (major(dev(511, 70000)), minor(dev(511, 70000))),
            (511, 70000)
        );
    }
}
