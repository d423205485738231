//! The `containerd` check: containerd's effective config has runtime `name` with an executable `BinaryName`, the
//! same `SystemdCgroup` as the default runtime and as the kubelet (its config file is `kubelet_config`), and
//! containerd is running.

use std::path::Path;

use node_facts::containerd::imports;
use node_facts::containerd::layout::{self, Layout};
use node_facts::containerd::Rules;
use toml_edit::{DocumentMut, Item};

use crate::node::{is_executable, Node};
use crate::report::Check;

pub const ID: &str = "containerd";
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

/// containerd's configuration as containerd sees it (or as close as can be told without containerd).
pub struct Effective {
    pub doc: DocumentMut,
    /// How it was obtained, for the check's detail.
    pub source: String,
}

impl Effective {
    pub fn version(&self) -> i64 {
        self.doc
            .get("version")
            .and_then(Item::as_integer)
            .unwrap_or(1)
    }

    /// Where this config version keeps the CRI plugin's tables.
    fn layout(&self) -> Layout {
        Layout::for_version(self.version())
    }

    /// The CRI plugin's table, where runtimes and `enable_cdi` live; it moved in config versions 2 and 3.
    pub fn cri(&self) -> Option<&Item> {
        layout::get(self.doc.as_item(), &self.layout().cri())
    }

    pub fn runtimes(&self) -> Option<&Item> {
        layout::get(self.doc.as_item(), &self.layout().runtimes())
    }

    pub fn runtime(&self, name: &str) -> Option<&Item> {
        self.runtimes()?.get(name)
    }

    pub fn runtime_names(&self) -> Vec<String> {
        self.runtimes()
            .and_then(Item::as_table_like)
            .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn default_runtime(&self) -> Option<String> {
        layout::get(self.doc.as_item(), &self.layout().containerd())?
            .get("default_runtime_name")?
            .as_str()
            .map(String::from)
    }

    /// The CRI plugin has `enable_cdi = true` (containerd 1.6 drops the key, so its effective config never has it).
    pub fn cdi_enabled(&self) -> bool {
        self.cri()
            .and_then(|c| c.get("enable_cdi"))
            .and_then(Item::as_bool)
            == Some(true)
    }

    /// A runtime's `options.SystemdCgroup` (runc's default when absent: false).
    pub fn systemd_cgroup(&self, name: &str) -> Option<bool> {
        let rt = self.runtime(name)?;
        Some(
            rt.get("options")
                .and_then(|o| o.get("SystemdCgroup"))
                .and_then(Item::as_bool)
                .unwrap_or(false),
        )
    }
}

/// Loads the effective config: `containerd config dump` when containerd is installed (imports and defaults
/// merged exactly as containerd merges them), else the file itself with its imports merged.
pub fn load(node: &Node, config: &str) -> Result<Effective, String> {
    let file = node.path(config);
    if let Some(bin) = node.find_tool("containerd") {
        let file_arg = file.to_string_lossy();
        let out = node
            .run(&bin, &["--config", &file_arg, "config", "dump"])
            .map_err(|e| format!("{:#}", e))?;
        if !out.success() {
            return Err(format!(
                "`containerd config dump` cannot load {}: {}",
                config,
                out.complaint()
            ));
        }
        let doc: DocumentMut = out
            .stdout
            .parse()
            .map_err(|e| format!("cannot parse `containerd config dump` output: {}", e))?;
        return Ok(Effective {
            doc,
            source: format!("effective config from `{} config dump`", node.show(&bin)),
        });
    }
    let text = std::fs::read_to_string(&file).map_err(|_| {
        format!(
            "containerd is not installed (not found in {}) and {} does not exist",
            node.tool_dirs().join(", "),
            config
        )
    })?;
    let doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {}", config, e))?;
    // Without containerd its release is unknown: 2.x's rules, the current ones, are used.
    let (doc, imported) = imports::load(&node.root, Path::new(config), doc, Rules::of(None))
        .map_err(|e| e.to_string())?;
    let merged = if imported.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = imported.iter().map(|p| p.display().to_string()).collect();
        format!(
            " with imports {} merged as containerd 2.x merges them (containerd 1.x replaces whole plugin \
             tables instead)",
            names.join(", ")
        )
    };
    Ok(Effective {
        doc,
        source: format!(
            "containerd program not found: read {} itself{}",
            config, merged
        ),
    })
}

/// The kubelet's `cgroupDriver` from its config file `kubelet_config` (a path on the node), `None` when there is
/// no such file. The file is YAML, but this key is a top-level scalar, so one line says it; the kubelet's own
/// default is cgroupfs.
pub fn kubelet_cgroup_driver(node: &Node, kubelet_config: &Path) -> Option<String> {
    node.read(&kubelet_config.to_string_lossy())
        .map(|text| node_facts::kubelet::cgroup_driver(&text))
}

/// containerd's socket as its config sets it (`grpc.address`); `None` when the config leaves the default.
pub fn socket(e: &Effective) -> Option<String> {
    e.doc
        .get("grpc")?
        .get("address")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Whether containerd is running: systemd's word on a live systemd node, else its socket exists.
fn running(node: &Node, eff: Option<&Effective>) -> Result<String, String> {
    if node.is_live() && node.path("/run/systemd/system").is_dir() {
        if let Some(systemctl) = node.find_tool("systemctl") {
            let out = node
                .run(&systemctl, &["is-active", "containerd"])
                .map_err(|e| format!("{:#}", e))?;
            let state = out.stdout.trim().to_string();
            return if state == "active" {
                Ok("containerd.service is active".into())
            } else {
                Err(format!(
                    "containerd is not running (systemctl is-active containerd: {})",
                    if state.is_empty() {
                        out.complaint()
                    } else {
                        &state
                    }
                ))
            };
        }
    }
    let socket = eff
        .and_then(socket)
        .unwrap_or_else(|| DEFAULT_SOCKET.into());
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(node.path(&socket)) {
        Ok(m) if m.file_type().is_socket() => Ok(format!("containerd socket {} exists", socket)),
        _ => Err(format!(
            "containerd is not running (no socket at {})",
            socket
        )),
    }
}

/// The check of runtime `runtime_name`, and whether it is configured (the `nvidia_runtime_configured` fact).
pub fn check(
    node: &Node,
    eff: &Result<Effective, String>,
    runtime_name: &str,
    kubelet_config: &Path,
) -> (Check, bool) {
    let hint_config =
        "configure the runtime with the gpunode.nvidia.containerd_runtime module (or `nvidia-ctk \
                       runtime configure --runtime=containerd`) and restart containerd";
    let eff = match eff {
        Ok(e) => e,
        Err(e) => {
            let mut detail = e.clone();
            if let Err(r) = running(node, None) {
                detail.push_str(&format!("; {}", r));
            }
            return (
                Check::fail(
                    ID,
                    detail,
                    "install containerd and configure it for Kubernetes",
                ),
                false,
            );
        }
    };
    let mut faults: Vec<String> = Vec::new();
    let mut hints: Vec<&str> = Vec::new();
    let mut facts: Vec<String> = vec![
        eff.source.clone(),
        format!("config version {}", eff.version()),
    ];
    let mut configured = false;
    match eff.runtime(runtime_name) {
        None => {
            faults.push(format!(
                "runtime '{}' is not configured (runtimes: {})",
                runtime_name,
                match eff.runtime_names() {
                    n if n.is_empty() => "none".to_string(),
                    n => n.join(", "),
                }
            ));
            hints.push(hint_config);
        }
        Some(rt) => {
            let binary = rt
                .get("options")
                .and_then(|o| o.get("BinaryName"))
                .and_then(Item::as_str)
                .unwrap_or("");
            if binary.is_empty() {
                faults.push(format!(
                    "runtime '{}' has no options.BinaryName: containerd would start plain runc, without GPUs",
                    runtime_name
                ));
                hints.push(hint_config);
            } else if !is_executable(&node.path(binary)) {
                faults.push(format!(
                    "runtime '{}' BinaryName {} is not an executable file",
                    runtime_name, binary
                ));
                hints.push("install NVIDIA Container Toolkit, or point BinaryName at its nvidia-container-runtime");
            } else {
                configured = true;
                facts.push(format!("runtime '{}' runs {}", runtime_name, binary));
            }
            let own = eff.systemd_cgroup(runtime_name).unwrap_or(false);
            // The default runtime is what every pod without a RuntimeClass runs on, so it is the one this
            // runtime must agree with (runc when none is named). containerd 2.x's dump always holds a
            // built-in runc, even where the file's default is another runtime (EKS's `nvidia`).
            let default = eff.default_runtime().unwrap_or_else(|| "runc".to_string());
            if default != runtime_name {
                if let Some(theirs) = eff.systemd_cgroup(&default) {
                    if theirs != own {
                        faults.push(format!(
                            "runtime '{}' has SystemdCgroup = {} but the default runtime {} has {}",
                            runtime_name, own, default, theirs
                        ));
                        hints.push("give the runtime the same options.SystemdCgroup as the default runtime (copy its options)");
                    }
                }
            }
            match kubelet_cgroup_driver(node, kubelet_config) {
                Some(driver) if (driver == "systemd") != own => {
                    faults.push(format!(
                        "runtime '{}' has SystemdCgroup = {} but the kubelet's cgroupDriver is {}",
                        runtime_name, own, driver
                    ));
                    hints.push("SystemdCgroup must be true exactly when the kubelet's cgroupDriver is systemd, or pods crash-loop");
                }
                Some(driver) => facts.push(format!(
                    "SystemdCgroup = {} matches the kubelet's cgroupDriver {}",
                    own, driver
                )),
                None => facts.push(format!("SystemdCgroup = {}; no kubelet config", own)),
            }
        }
    }
    if let Some(d) = eff.default_runtime() {
        facts.push(format!("default runtime {}", d));
    }
    match running(node, Some(eff)) {
        Ok(s) => facts.push(s),
        Err(e) => {
            faults.push(e);
            hints.push(
                "start containerd: systemctl enable --now containerd; see journalctl -u containerd",
            );
        }
    }
    let configured = configured && faults.is_empty();
    if faults.is_empty() {
        (Check::pass(ID, facts.join("; ")), configured)
    } else {
        hints.dedup();
        (
            Check::fail(
                ID,
                format!("{} ({})", faults.join("; "), facts.join("; ")),
                hints.join("; "),
            ),
            configured,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_containerd_the_file_is_read_with_its_imports_merged() {
        let root = tempfile::tempdir().unwrap();
        let write = |p: &str, text: &str| {
            let f = root.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        };
        let cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
        write(
            "etc/containerd/config.toml",
            &format!("version = 2\nimports = [\"conf.d/*.toml\"]\n{cri}]\nenable_cdi = false\n{cri}.containerd.runtimes.runc.options]\nSystemdCgroup = true\n"),
        );
        write(
            "etc/containerd/conf.d/99-nvidia.toml",
            &format!("version = 2\n{cri}]\nenable_cdi = true\n{cri}.containerd.runtimes.nvidia.options]\nBinaryName = \"/usr/bin/nvidia-container-runtime\"\n"),
        );
        let node = Node::new(root.path(), std::time::Duration::from_secs(5));
        let e = load(&node, "/etc/containerd/config.toml").unwrap();
        assert_eq!(e.runtime_names(), ["runc", "nvidia"]);
        assert_eq!(e.systemd_cgroup("runc"), Some(true));
        assert!(e.cdi_enabled());
        assert!(
            e.source
                .contains("imports /etc/containerd/conf.d/99-nvidia.toml merged"),
            "{}",
            e.source
        );
        write("etc/containerd/conf.d/50-broken.toml", "[x\n");
        let err = load(&node, "/etc/containerd/config.toml").err().unwrap();
        assert!(
            err.contains("import /etc/containerd/conf.d/50-broken.toml is not valid TOML"),
            "{err}"
        );
    }

    #[test]
    fn runtimes_are_found_per_config_version() {
        let v2: DocumentMut = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\nruntime_type = \"io.containerd.runc.v2\"\n".parse().unwrap();
        let e = Effective {
            doc: v2,
            source: String::new(),
        };
        assert_eq!(e.runtime_names(), vec!["runc", "nvidia"]);
        assert_eq!(e.systemd_cgroup("runc"), Some(true));
        assert_eq!(e.systemd_cgroup("nvidia"), Some(false));
        assert_eq!(e.systemd_cgroup("crun"), None);
        let v3: DocumentMut = "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia.options]\nBinaryName = \"/x\"\n".parse().unwrap();
        let e = Effective {
            doc: v3,
            source: String::new(),
        };
        assert_eq!(e.runtime_names(), vec!["nvidia"]);
    }
}
