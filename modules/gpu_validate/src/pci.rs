//! The `pci` check: NVIDIA GPUs (vendor 0x10de, display class 0x03xxxx) on the PCI bus, from sysfs.

use crate::node::Node;
use crate::report::Check;

pub const ID: &str = "pci";
const NVIDIA_VENDOR: &str = "0x10de";

/// One NVIDIA GPU as sysfs shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PciGpu {
    /// `0000:00:06.0`
    pub address: String,
    /// `0x2335`
    pub device: String,
    /// The bound kernel driver (`nvidia`, `nouveau`, `vfio-pci`), `None` when unbound.
    pub driver: Option<String>,
}

/// Every NVIDIA GPU under `/sys/bus/pci/devices`, sorted by address. NVIDIA's audio, USB and NVSwitch
/// functions share the vendor id but are not GPUs: only display-class functions count.
pub fn scan(node: &Node) -> Vec<PciGpu> {
    let dir = node.path("/sys/bus/pci/devices");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut gpus: Vec<PciGpu> = entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let read = |f: &str| {
                std::fs::read_to_string(p.join(f))
                    .map(|s| s.trim().to_lowercase())
                    .unwrap_or_default()
            };
            if read("vendor") != NVIDIA_VENDOR || !read("class").starts_with("0x03") {
                return None;
            }
            let driver = std::fs::read_link(p.join("driver"))
                .ok()
                .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
            Some(PciGpu {
                address: e.file_name().to_string_lossy().into_owned(),
                device: read("device"),
                driver,
            })
        })
        .collect();
    gpus.sort_by(|a, b| a.address.cmp(&b.address));
    gpus
}

/// A PCI address in sysfs's form (`0000:00:06.0`): nvidia-smi prints an 8-digit domain (`00000000:00:06.0`).
pub fn normalize_address(a: &str) -> String {
    let a = a.trim().to_lowercase();
    match a.split_once(':') {
        Some((domain, rest)) if rest.contains(':') => match u32::from_str_radix(domain, 16) {
            Ok(d) => format!("{:04x}:{}", d, rest),
            Err(_) => a,
        },
        _ => a,
    }
}

/// The check itself.
pub fn check(gpus: &[PciGpu], expected: Option<usize>) -> Check {
    if gpus.is_empty() {
        return Check::fail(
            ID,
            "no NVIDIA GPU on the PCI bus (no display-class device with vendor 0x10de under /sys/bus/pci/devices)",
            "run this on a GPU node; on a VM, pass the GPU through; check `lspci -nn | grep -i nvidia`",
        );
    }
    let list: Vec<String> = gpus
        .iter()
        .map(|g| {
            format!(
                "{} (device {}, driver {})",
                g.address,
                g.device,
                g.driver.as_deref().unwrap_or("none")
            )
        })
        .collect();
    let detail = format!(
        "{} NVIDIA GPU{} on the PCI bus: {}",
        gpus.len(),
        if gpus.len() == 1 { "" } else { "s" },
        list.join(", ")
    );
    match expected {
        Some(n) if gpus.len() < n => Check::fail(
            ID,
            format!("{}; expected {}", detail, n),
            "a GPU is missing from the bus: check the hardware, BIOS/firmware and VM passthrough (dmesg, lspci)",
        ),
        _ => Check::pass(ID, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized_to_the_sysfs_form() {
        assert_eq!(normalize_address("00000000:00:06.0"), "0000:00:06.0");
        assert_eq!(normalize_address("0000:3B:00.0"), "0000:3b:00.0");
        assert_eq!(normalize_address("00000001:81:00.0"), "0001:81:00.0");
    }

    #[test]
    fn no_gpu_fails_and_too_few_fails() {
        assert_eq!(check(&[], None).status, crate::report::Status::Fail);
        let one = vec![PciGpu {
            address: "0000:00:06.0".into(),
            device: "0x2335".into(),
            driver: Some("nvidia".into()),
        }];
        assert_eq!(check(&one, Some(1)).status, crate::report::Status::Pass);
        assert_eq!(check(&one, Some(2)).status, crate::report::Status::Fail);
    }
}
