//! The `nvidia_smi` check: nvidia-smi runs, and lists every GPU the PCI bus shows, each with its facts.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::node::{version_token, Node};
use crate::pci::{normalize_address, PciGpu};
use crate::report::Check;

pub const ID: &str = "nvidia_smi";

/// The fields asked of `nvidia-smi --query-gpu`, in order. Drivers before compute_cap existed reject the
/// whole query, so it is retried without that field.
const FIELDS: &[&str] = &[
    "index",
    "name",
    "uuid",
    "driver_version",
    "memory.total",
    "mig.mode.current",
    "compute_cap",
    "pci.bus_id",
    "persistence_mode",
];

/// One GPU as nvidia-smi reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SmiGpu {
    pub index: i64,
    pub name: String,
    pub uuid: String,
    pub driver_version: String,
    pub memory_total_mib: i64,
    pub mig_mode: String,
    pub compute_capability: Option<String>,
    pub pci_bus_id: String,
    pub persistence_mode: String,
}

impl SmiGpu {
    /// The `nvidia_gpus` fact entry.
    pub fn to_json(&self) -> Value {
        json!({
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "driver_version": self.driver_version,
            "memory_total_mib": self.memory_total_mib,
            "mig_mode": self.mig_mode,
            "compute_capability": self.compute_capability,
            "pci_bus_id": self.pci_bus_id,
            "persistence_mode": self.persistence_mode,
        })
    }
}

/// What running nvidia-smi gave: the GPUs and the CUDA version, or why it could not.
#[derive(Debug, Clone, Default)]
pub struct Smi {
    pub gpus: Vec<SmiGpu>,
    pub cuda_version: Option<String>,
    /// Set when nvidia-smi is missing, failed or printed something unreadable.
    pub error: Option<String>,
}

/// Finds nvidia-smi: the given path (under the sysroot) or the usual places.
pub fn locate(node: &Node, given: Option<&str>) -> Result<PathBuf, String> {
    match given {
        Some(p) => {
            let path = node.path(p);
            if crate::node::is_executable(&path) {
                Ok(path)
            } else {
                Err(format!(
                    "nvidia-smi not found: {} is not an executable file",
                    p
                ))
            }
        }
        None => node.find_tool("nvidia-smi").ok_or_else(|| {
            format!(
                "nvidia-smi not found (looked in {})",
                node.tool_dirs().join(", ")
            )
        }),
    }
}

/// Runs nvidia-smi (query, then the plain table for the CUDA version).
pub fn query(node: &Node, given: Option<&str>) -> Smi {
    let program = match locate(node, given) {
        Ok(p) => p,
        Err(e) => {
            return Smi {
                error: Some(e),
                ..Smi::default()
            }
        }
    };
    let mut fields: Vec<&str> = FIELDS.to_vec();
    let mut out = run_query(node, &program, &fields);
    if let Ok(o) = &out {
        if !o.success() && o.complaint().contains("not a valid field") {
            fields.retain(|f| *f != "compute_cap");
            out = run_query(node, &program, &fields);
        }
    }
    let shown = node.show(&program);
    let out = match out {
        Ok(o) if o.success() => o,
        Ok(o) => {
            let code = o.code.map(|c| c.to_string()).unwrap_or("a signal".into());
            return Smi {
                error: Some(format!(
                    "{} failed (exit {}): {}",
                    shown,
                    code,
                    o.complaint()
                )),
                ..Smi::default()
            };
        }
        Err(e) => {
            return Smi {
                error: Some(format!("{:#}", e)),
                ..Smi::default()
            }
        }
    };
    let gpus = match parse_query(&out.stdout, &fields) {
        Ok(g) => g,
        Err(e) => {
            return Smi {
                error: Some(format!("cannot read {}'s output: {}", shown, e)),
                ..Smi::default()
            }
        }
    };
    // The CUDA version only appears in the table's header; not having it is not a fault of the node.
    let cuda_version = node
        .run(&program, &[])
        .ok()
        .filter(|o| o.success())
        .and_then(|o| parse_cuda_version(&o.stdout));
    Smi {
        gpus,
        cuda_version,
        error: None,
    }
}

fn run_query(
    node: &Node,
    program: &std::path::Path,
    fields: &[&str],
) -> anyhow::Result<ansible_module::process::Output> {
    let q = format!("--query-gpu={}", fields.join(","));
    node.run(program, &[&q, "--format=csv,noheader,nounits"])
}

/// Parses `--format=csv,noheader,nounits` lines in `fields` order.
pub fn parse_query(stdout: &str, fields: &[&str]) -> Result<Vec<SmiGpu>, String> {
    let mut gpus = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != fields.len() {
            return Err(format!(
                "expected {} comma-separated fields, got {:?}",
                fields.len(),
                line
            ));
        }
        let get = |f: &str| -> String {
            fields
                .iter()
                .position(|x| *x == f)
                .map(|i| cells[i].to_string())
                .unwrap_or_default()
        };
        let int = |f: &str| -> Result<i64, String> {
            get(f)
                .parse()
                .map_err(|_| format!("{} is not a number in {:?}", f, line))
        };
        gpus.push(SmiGpu {
            index: int("index")?,
            name: get("name"),
            uuid: get("uuid"),
            driver_version: get("driver_version"),
            memory_total_mib: int("memory.total")?,
            mig_mode: get("mig.mode.current"),
            compute_capability: fields.contains(&"compute_cap").then(|| get("compute_cap")),
            pci_bus_id: get("pci.bus_id"),
            persistence_mode: get("persistence_mode"),
        });
    }
    Ok(gpus)
}

/// `| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |` -> `13.0`.
pub fn parse_cuda_version(table: &str) -> Option<String> {
    let (_, rest) = table.split_once("CUDA Version:")?;
    version_token(rest.lines().next()?)
}

/// The check itself: nvidia-smi worked, and agrees with the bus, the kernel module and the expected count.
pub fn check(smi: &Smi, pci: &[PciGpu], kernel: Option<&str>, expected: Option<usize>) -> Check {
    if let Some(e) = &smi.error {
        return Check::fail(
            ID,
            e.clone(),
            "nvidia-smi ships with the driver: install the driver's utilities; \"couldn't communicate with the \
             driver\" means the kernel module is not loaded, \"Driver/library version mismatch\" means reboot \
             after a driver upgrade",
        );
    }
    if smi.gpus.is_empty() {
        return Check::fail(ID, "nvidia-smi lists no GPU", "see dmesg for NVRM errors");
    }
    let listed: Vec<String> = smi
        .gpus
        .iter()
        .map(|g| normalize_address(&g.pci_bus_id))
        .collect();
    let unlisted: Vec<&str> = pci
        .iter()
        .filter(|p| !listed.contains(&normalize_address(&p.address)))
        .map(|p| p.address.as_str())
        .collect();
    let n = smi.gpus.len();
    if !unlisted.is_empty() {
        return Check::fail(
            ID,
            format!(
                "nvidia-smi lists {} GPU(s) but the PCI bus shows {}; not usable: {}",
                n,
                pci.len(),
                unlisted.join(", ")
            ),
            "the driver did not initialise these GPUs: see dmesg (NVRM, Xid, 'fallen off the bus'), the GPU's \
             power and its driver binding",
        );
    }
    if let Some(e) = expected {
        if n < e {
            return Check::fail(
                ID,
                format!("nvidia-smi lists {} GPU(s), expected {}", n, e),
                "a GPU is missing or failed: see dmesg and nvidia-smi -q",
            );
        }
    }
    if let Some(k) = kernel {
        if let Some(g) = smi.gpus.iter().find(|g| g.driver_version != k) {
            return Check::fail(
                ID,
                format!(
                    "nvidia-smi reports driver {} but the loaded kernel module is {}",
                    g.driver_version, k
                ),
                "user-space driver and kernel module differ: reboot (or reload the module) after a driver upgrade",
            );
        }
    }
    let each: Vec<String> = smi
        .gpus
        .iter()
        .map(|g| {
            format!(
                "GPU {}: {} {} MiB, MIG {}, compute {}, bus {}, persistence {}",
                g.index,
                g.name,
                g.memory_total_mib,
                g.mig_mode,
                g.compute_capability.as_deref().unwrap_or("unknown"),
                g.pci_bus_id,
                g.persistence_mode
            )
        })
        .collect();
    Check::pass(
        ID,
        format!(
            "nvidia-smi lists {} GPU(s), CUDA {}: {}",
            n,
            smi.cuda_version.as_deref().unwrap_or("unknown"),
            each.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = "0, NVIDIA H200, GPU-2d7464a3-3231-11fe-df0a-18d3e1f0787d, 580.159.04, 143771, Disabled, 9.0, 00000000:00:06.0, Enabled\n";

    #[test]
    fn parses_the_recorded_query_line() {
        let g = parse_query(RECORDED, FIELDS).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "NVIDIA H200");
        assert_eq!(g[0].memory_total_mib, 143771);
        assert_eq!(g[0].compute_capability.as_deref(), Some("9.0"));
        assert_eq!(g[0].persistence_mode, "Enabled");
    }

    #[test]
    fn old_drivers_without_compute_cap_parse_too() {
        let fields: Vec<&str> = FIELDS
            .iter()
            .copied()
            .filter(|f| *f != "compute_cap")
            .collect();
        let g = parse_query(
            "1, Tesla T4, GPU-x, 470.82.01, 15109, [N/A], 00000000:3B:00.0, Disabled",
            &fields,
        )
        .unwrap();
        assert_eq!(g[0].index, 1);
        assert_eq!(g[0].compute_capability, None);
        assert!(parse_query("0, only, three", FIELDS).is_err());
    }

    #[test]
    fn cuda_version_comes_from_the_table_header() {
        let t = "| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: 13.0     |\n";
        assert_eq!(parse_cuda_version(t).as_deref(), Some("13.0"));
        assert_eq!(parse_cuda_version("nothing"), None);
    }
}
