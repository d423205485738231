//! The loaded NVIDIA driver's version, read from the kernel module's own report (`/proc/driver/nvidia/version`)
//! or, when that is missing, from `nvidia-smi`; and the comparison with the minimum the toolkit needs.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

/// Where the version was found, and the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion {
    pub version: String,
    pub source: String,
}

/// The version in `/proc/driver/nvidia/version`'s text: the first dotted number after "Kernel Module"
/// (e.g. `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ...`).
pub fn parse_proc_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let after = line
        .split_once("Kernel Module")
        .map(|(_, r)| r)
        .unwrap_or(line);
    after
        .split_whitespace()
        .find(|w| is_dotted_number(w))
        .map(String::from)
}

fn is_dotted_number(w: &str) -> bool {
    w.contains('.')
        && w.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Finds the loaded driver's version: `proc_file` first, then `nvidia-smi` on PATH. `None` when neither
/// answers (no driver loaded).
pub fn detect(proc_file: &Path) -> Result<Option<DriverVersion>> {
    if let Ok(text) = std::fs::read_to_string(proc_file) {
        if let Some(version) = parse_proc_version(&text) {
            return Ok(Some(DriverVersion {
                version,
                source: proc_file.display().to_string(),
            }));
        }
    }
    let Ok(smi) = which::which("nvidia-smi") else {
        return Ok(None);
    };
    let out = ansible_module::process::run(
        &smi,
        &[
            "--query-gpu=driver_version",
            "--format=csv,noheader,nounits",
        ],
        &[],
        Duration::from_secs(30),
    )?;
    let version = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| is_dotted_number(l))
        .map(String::from);
    Ok(version
        .filter(|_| out.success())
        .map(|version| DriverVersion {
            version,
            source: smi.display().to_string(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_recorded_h200_node() {
        // Recorded on a real H200 node (tests/fixtures/gpu-node/h200-2026-11-27, /proc/driver/nvidia/version).
        let text = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \nGCC version:  gcc version 15.3.0 (GCC) \n";
        assert_eq!(parse_proc_version(text).as_deref(), Some("580.159.04"));
    }

    #[test]
    fn reads_the_proprietary_module_format() {
        let text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82.01  Tue Oct 26 20:16:42 UTC 2021\n";
        assert_eq!(parse_proc_version(text).as_deref(), Some("470.82.01"));
        assert_eq!(parse_proc_version("garbage"), None);
    }

    #[test]
    fn detect_prefers_the_proc_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("version");
        std::fs::write(
            &f,
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  Tue\n",
        )
        .unwrap();
        let d = detect(&f).unwrap().unwrap();
        assert_eq!(d.version, "535.54.03");
        assert_eq!(d.source, f.display().to_string());
    }
}
