//! The `gpu_validate` Ansible module: checks a GPU node layer by layer (PCI bus, kernel driver, nvidia-smi,
//! device nodes, container toolkit, containerd, CDI, and on request a GPU container through containerd's CRI),
//! reports each check and the GPUs as facts, and fails when anything is broken. It changes nothing on the node
//! (the container check's pod sandbox is removed again), so check mode runs it unchanged.

pub mod cdi;
pub mod container;
pub mod containerd;
pub mod device_nodes;
pub mod driver;
pub mod node;
pub mod params;
pub mod pci;
pub mod report;
pub mod smi;
pub mod toolkit;

use std::path::Path;

use ansible_module::{Module, Response};
use serde_json::{json, Value};

use node::Node;
pub use params::{spec, CheckId, Params};
use report::Check;

/// Everything a run found: the checks in order and the facts.
pub struct Findings {
    pub checks: Vec<Check>,
    pub facts: serde_json::Map<String, Value>,
    /// The PCI bus shows no NVIDIA GPU.
    pub no_gpu: bool,
}

/// Runs the selected checks against `node`.
pub fn run_checks(node: &Node, p: &Params) -> Findings {
    let gpus = pci::scan(node);
    let kernel = driver::loaded_version(node);
    let config = p.containerd_config.to_string_lossy();
    let nvidia_smi = p.nvidia_smi_path.as_deref().map(Path::to_string_lossy);
    let needs_containerd = [
        CheckId::DeviceNodes,
        CheckId::Containerd,
        CheckId::Cdi,
        CheckId::Container,
    ]
    .into_iter()
    .any(|c| p.wants(c));
    let eff = needs_containerd.then(|| containerd::load(node, &config));
    let mut checks = Vec::new();
    let mut facts = serde_json::Map::new();
    let mut smi_result = None;

    for id in &p.checks {
        let c = match id {
            CheckId::Pci => pci::check(&gpus, p.expected_gpu_count),
            CheckId::Driver => driver::check(node, &gpus, &p.min_driver_version),
            CheckId::NvidiaSmi => {
                let s = smi::query(node, nvidia_smi.as_deref());
                let c = smi::check(&s, &gpus, kernel.as_deref(), p.expected_gpu_count);
                smi_result = Some(s);
                c
            }
            CheckId::DeviceNodes => {
                let minors = device_nodes::gpu_minors(node, gpus.len());
                let systemd = systemd_cgroups(
                    node,
                    eff.as_ref().and_then(|e| e.as_ref().ok()),
                    &p.kubelet_config,
                );
                device_nodes::check(node, &minors, systemd)
            }
            CheckId::Toolkit => {
                let (c, v) = toolkit::check(node, driver::module_loaded(node));
                facts.insert("nvidia_container_toolkit_version".into(), json!(v));
                c
            }
            CheckId::Containerd => {
                let eff = eff.as_ref().expect("loaded when the check is wanted");
                let (c, configured) =
                    containerd::check(node, eff, &p.runtime_name, &p.kubelet_config);
                facts.insert("nvidia_runtime_configured".into(), json!(configured));
                c
            }
            CheckId::Cdi => cdi::check(
                node,
                eff.as_ref().expect("loaded when the check is wanted"),
                &config,
                &p.runtime_name,
            ),
            CheckId::Container => {
                // The host's UUIDs: nvidia-smi's answer from its own check, else asked now.
                let s = smi_result.get_or_insert_with(|| smi::query(node, nvidia_smi.as_deref()));
                let host: Vec<String> = s.gpus.iter().map(|g| g.uuid.clone()).collect();
                let e = eff.as_ref().and_then(|e| e.as_ref().ok());
                let socket = e.and_then(containerd::socket);
                container::check(
                    node,
                    &container::Request {
                        image: p.smoke_image.as_deref().unwrap_or(""),
                        pull: p.smoke_pull,
                        runtime_name: &p.runtime_name,
                        cdi: e.is_some_and(|e| cdi::serves_nvidia_gpus(node, e)),
                        socket: socket.as_deref().unwrap_or(containerd::DEFAULT_SOCKET),
                        host_uuids: &host,
                        timeout: p.timeout,
                    },
                )
            }
        };
        checks.push(c);
    }

    let smi_gpus: Vec<Value> = smi_result
        .as_ref()
        .map(|s| s.gpus.iter().map(smi::SmiGpu::to_json).collect())
        .unwrap_or_default();
    let driver_version = kernel.clone().or_else(|| {
        smi_result
            .as_ref()
            .and_then(|s| s.gpus.first().map(|g| g.driver_version.clone()))
    });
    let mut all = serde_json::Map::new();
    all.insert("nvidia_gpus".into(), Value::Array(smi_gpus));
    all.insert("nvidia_gpu_count".into(), json!(gpus.len()));
    all.insert("nvidia_driver_version".into(), json!(driver_version));
    all.insert(
        "nvidia_cuda_version".into(),
        json!(smi_result.as_ref().and_then(|s| s.cuda_version.clone())),
    );
    all.append(&mut facts);
    Findings {
        checks,
        facts: all,
        no_gpu: gpus.is_empty(),
    }
}

/// Containers on this node live in systemd-managed cgroups: systemd runs the node and the kubelet or
/// containerd's runc uses the systemd cgroup driver.
fn systemd_cgroups(
    node: &Node,
    eff: Option<&containerd::Effective>,
    kubelet_config: &Path,
) -> bool {
    if !node.path("/run/systemd/system").is_dir() {
        return false;
    }
    containerd::kubelet_cgroup_driver(node, kubelet_config).as_deref() == Some("systemd")
        || eff.and_then(|e| e.systemd_cgroup("runc")) == Some(true)
}

/// Runs the module.
pub fn run(m: &mut Module) -> anyhow::Result<Response> {
    // Every value is judged before the node is looked at.
    let p = Params::from_module(m)?;
    if !p.sysroot.is_dir() {
        anyhow::bail!("sysroot {} is not a directory", p.sysroot.display());
    }
    let node = Node::new(p.sysroot.clone(), p.timeout);
    let v = run_checks(&node, &p);
    let summary = report::summary(&v.checks);
    let mut r = Response::new(false)
        .set(
            "checks",
            Value::Array(v.checks.iter().map(Check::to_json).collect()),
        )
        .set("summary", summary.clone());
    for (k, val) in v.facts {
        r = r.fact(&k, val);
    }
    match report::failure(&v.checks, p.fail_on, v.no_gpu) {
        Some(msg) => {
            r.failed = true;
            r = r.msg(msg);
        }
        None => r = r.msg(summary),
    }
    Ok(r)
}
