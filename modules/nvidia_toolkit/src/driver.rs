//! The loaded NVIDIA driver's version, read from the kernel module's own report (`/proc/driver/nvidia/version`)
//! or, when that is missing, from `nvidia-smi`; and the comparison with the minimum the toolkit needs.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use node_facts::version;

/// Where the version was found, and the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion {
    pub version: String,
    pub source: String,
}

/// Finds the loaded driver's version: `proc_file` first, then `nvidia-smi` on PATH. `None` when neither
/// answers (no driver loaded).
pub fn detect(proc_file: &Path) -> Result<Option<DriverVersion>> {
    if let Ok(text) = std::fs::read_to_string(proc_file) {
        if let Some(version) = version::nvidia_driver(&text) {
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
        .find(|l| version::is_dotted_number(l))
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
