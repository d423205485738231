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

use std::time::Duration;

use ansible_module::{Kind, Module, ModuleSpec, Opt, Response};
use serde_json::{json, Value};

use node::Node;
use report::{Check, FailOn};

/// Every check, in the order they run.
pub const CHECKS: &[&str] = &[
    pci::ID,
    driver::ID,
    smi::ID,
    device_nodes::ID,
    toolkit::ID,
    containerd::ID,
    cdi::ID,
    container::ID,
];

/// The checks run when `checks` is not given: every one but `container`, which runs a container and so is
/// asked for (by naming it, or by setting `smoke_image`).
pub fn default_checks(smoke_image: Option<&str>) -> Vec<String> {
    CHECKS
        .iter()
        .filter(|c| **c != container::ID || smoke_image.is_some())
        .map(|c| c.to_string())
        .collect()
}

/// The module's argument spec.
pub fn spec() -> ModuleSpec {
    ModuleSpec::new(vec![
        // No default here: the default depends on smoke_image (default_checks).
        Opt::list("checks", Kind::Str).choices(CHECKS),
        Opt::int("expected_gpu_count"),
        Opt::str("min_driver_version").default("470.82.01"),
        Opt::str("runtime_name").default("nvidia"),
        Opt::path("containerd_config").default("/etc/containerd/config.toml"),
        Opt::str("fail_on")
            .choices(&["error", "warning", "never"])
            .default("error"),
        Opt::path("sysroot").default("/"),
        Opt::path("nvidia_smi_path"),
        Opt::int("timeout").default(60),
        Opt::str("smoke_image"),
        Opt::bool("smoke_pull").default(false),
    ])
    .supports_check_mode()
}

/// Everything a run found: the checks in order and the facts.
pub struct Validation {
    pub checks: Vec<Check>,
    pub facts: serde_json::Map<String, Value>,
    /// The PCI bus shows no NVIDIA GPU.
    pub no_gpu: bool,
}

/// The options `validate` needs, as plain values (what tests build directly).
pub struct Options {
    pub checks: Vec<String>,
    pub expected_gpu_count: Option<i64>,
    pub min_driver_version: String,
    pub runtime_name: String,
    pub containerd_config: String,
    pub nvidia_smi_path: Option<String>,
    /// The image the `container` check runs `nvidia-smi -L` in.
    pub smoke_image: Option<String>,
    pub smoke_pull: bool,
    /// The container check's time limit (the `timeout` option).
    pub timeout: Duration,
    /// The sysroot is `/`: only then can a container be run.
    pub live: bool,
}

/// Runs the selected checks against `node`.
pub fn validate(node: &Node, o: &Options) -> Validation {
    let wants = |id: &str| o.checks.iter().any(|c| c == id);
    let gpus = pci::scan(node);
    let kernel = driver::loaded_version(node);
    let needs_containerd =
        wants(containerd::ID) || wants(cdi::ID) || wants(device_nodes::ID) || wants(container::ID);
    let eff = needs_containerd.then(|| containerd::load(node, &o.containerd_config));
    let mut checks = Vec::new();
    let mut facts = serde_json::Map::new();
    let mut smi_result = None;

    for id in CHECKS.iter().filter(|id| wants(id)) {
        let c = match *id {
            pci::ID => pci::check(&gpus, o.expected_gpu_count),
            driver::ID => driver::check(node, &gpus, &o.min_driver_version),
            smi::ID => {
                let s = smi::query(node, o.nvidia_smi_path.as_deref());
                let c = smi::check(&s, &gpus, kernel.as_deref(), o.expected_gpu_count);
                smi_result = Some(s);
                c
            }
            device_nodes::ID => {
                let minors = device_nodes::gpu_minors(node, gpus.len());
                let systemd = systemd_cgroups(node, eff.as_ref().and_then(|e| e.as_ref().ok()));
                device_nodes::check(node, &minors, systemd)
            }
            toolkit::ID => {
                let (c, v) = toolkit::check(node, driver::module_loaded(node));
                facts.insert("nvidia_container_toolkit_version".into(), json!(v));
                c
            }
            containerd::ID => {
                let eff = eff.as_ref().expect("loaded when the check is wanted");
                let (c, configured) = containerd::check(node, eff, &o.runtime_name);
                facts.insert("nvidia_runtime_configured".into(), json!(configured));
                c
            }
            cdi::ID => cdi::check(
                node,
                eff.as_ref().expect("loaded when the check is wanted"),
                &o.containerd_config,
            ),
            container::ID => {
                // The host's UUIDs: nvidia-smi's answer from its own check, else asked now.
                let s = smi_result
                    .get_or_insert_with(|| smi::query(node, o.nvidia_smi_path.as_deref()));
                let host: Vec<String> = s.gpus.iter().map(|g| g.uuid.clone()).collect();
                let e = eff.as_ref().and_then(|e| e.as_ref().ok());
                let socket = e.and_then(containerd::socket);
                container::check(
                    node,
                    &container::Request {
                        image: o.smoke_image.as_deref().unwrap_or(""),
                        pull: o.smoke_pull,
                        runtime_name: &o.runtime_name,
                        // CDI devices only where CDI is set up for NVIDIA GPUs: containerd 2.x has
                        // enable_cdi on by default, also on nodes that use the runtime's legacy mode.
                        cdi: e.is_some_and(|e| {
                            e.cdi_enabled()
                                && e.cri()
                                    .is_some_and(|cri| !cdi::nvidia_specs(node, cri).1.is_empty())
                        }),
                        socket: socket.as_deref().unwrap_or(containerd::DEFAULT_SOCKET),
                        host_uuids: &host,
                        timeout: o.timeout,
                    },
                )
            }
            _ => unreachable!("CHECKS lists every id"),
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
    Validation {
        checks,
        facts: all,
        no_gpu: gpus.is_empty(),
    }
}

/// Containers on this node live in systemd-managed cgroups: systemd runs the node and the kubelet or
/// containerd's runc uses the systemd cgroup driver.
fn systemd_cgroups(node: &Node, eff: Option<&containerd::Effective>) -> bool {
    if !node.path("/run/systemd/system").is_dir() {
        return false;
    }
    containerd::kubelet_cgroup_driver(node).as_deref() == Some("systemd")
        || eff.and_then(|e| e.systemd_cgroup("runc")) == Some(true)
}

/// Runs the module.
pub fn run(m: &mut Module) -> anyhow::Result<Response> {
    let timeout = m.given_int("timeout")?;
    if timeout < 1 {
        anyhow::bail!("timeout must be at least 1 second, got {}", timeout);
    }
    let sysroot = m.given_str("sysroot")?;
    params::check_sysroot(sysroot)?;
    let smoke_image = m.str("smoke_image").map(String::from);
    let o = Options {
        checks: match m.get("checks") {
            Some(serde_json::Value::Array(_)) => m.str_list("checks"),
            _ => default_checks(smoke_image.as_deref()),
        },
        expected_gpu_count: m.int("expected_gpu_count"),
        min_driver_version: m.given_str("min_driver_version")?.to_string(),
        runtime_name: m.given_str("runtime_name")?.to_string(),
        containerd_config: m.given_str("containerd_config")?.to_string(),
        nvidia_smi_path: m.str("nvidia_smi_path").map(String::from),
        smoke_image,
        smoke_pull: m.bool("smoke_pull"),
        timeout: Duration::from_secs(timeout as u64),
        live: std::path::Path::new(sysroot) == std::path::Path::new("/"),
    };
    // Every value is judged before the node is looked at.
    params::check_options(&o)?;
    if !std::path::Path::new(sysroot).is_dir() {
        anyhow::bail!("sysroot {} is not a directory", sysroot);
    }
    let node = Node::new(sysroot, Duration::from_secs(timeout as u64));
    let fail_on = FailOn::parse(m.given_str("fail_on")?);
    let v = validate(&node, &o);
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
    match report::failure(&v.checks, fail_on, v.no_gpu) {
        Some(msg) => {
            r.failed = true;
            r = r.msg(msg);
        }
        None => r = r.msg(summary),
    }
    Ok(r)
}
