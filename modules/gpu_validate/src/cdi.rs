//! The `cdi` check: when containerd has CDI enabled, a CDI spec for NVIDIA GPUs (`kind: nvidia.com/gpu`)
//! exists in its spec directories.
//!
//! A missing spec fails the check only where CDI is how the node gives containers their GPUs: the NVIDIA
//! runtime's own config (`/etc/nvidia-container-runtime/config.toml`) sets `mode = "cdi"`, or containerd runs
//! the runtime as `nvidia-container-runtime.cdi`, which always works in that mode. Elsewhere it is a warning:
//! containerd 2.x enables CDI by default, also on nodes where the runtime's `auto` or `legacy` mode gives pods
//! their GPUs, and there only a pod that asks for a CDI device by name would fail. A warning says so without
//! failing the task under the default `fail_on`, and still fails it under `fail_on: warning`.

use std::ffi::OsStr;
use std::path::Path;

use toml_edit::{DocumentMut, Item};

use crate::containerd::Effective;
use crate::node::Node;
use crate::report::Check;

pub const ID: &str = "cdi";
const DEFAULT_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];
const KIND: &str = "nvidia.com/gpu";
/// The NVIDIA runtime's config file, which holds its mode (`[nvidia-container-runtime] mode`, default `auto`).
pub const RUNTIME_CONFIG: &str = "/etc/nvidia-container-runtime/config.toml";
/// The NVIDIA runtime's executable that overrides its configured mode with `cdi`.
const CDI_RUNTIME: &str = "nvidia-container-runtime.cdi";

/// How the NVIDIA runtime gives containers their GPUs, as the node's files tell. Each holds the reason, in
/// words for the check's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeMode {
    /// Through CDI specs on disk: without a spec for NVIDIA GPUs, no container gets one.
    Cdi(String),
    /// Another mode (`auto`, `legacy`, `csv`, `jit-cdi`): a spec on disk is not what gives pods their GPUs.
    Other(String),
    /// The runtime's config cannot be read as TOML, so its mode cannot be told.
    Unknown(String),
}

/// The check itself. `config` is containerd's config file, `runtime_name` the runtime that runs GPU pods.
pub fn check(
    node: &Node,
    eff: &Result<Effective, String>,
    config: &str,
    runtime_name: &str,
) -> Check {
    let eff = match eff {
        Ok(e) => e,
        Err(e) => {
            return Check::skip(
                ID,
                format!("no containerd config to tell whether CDI is on: {}", e),
            )
        }
    };
    let Some(cri) = eff.cri() else {
        return Check::skip(
            ID,
            "containerd's config has no CRI plugin section: CDI is not in use",
        );
    };
    if !eff.cdi_enabled() {
        // containerd 1.6 does not know enable_cdi and drops it silently: the file asks for CDI, containerd
        // does not do it, and CDI-mode GPUs fail only when a pod starts.
        if node.read(config).is_some_and(|t| asks_for_cdi(&t)) {
            return Check::warn(
                ID,
                format!("{} sets enable_cdi = true but containerd's effective config has no CDI: this containerd ignores it", config),
                "CDI needs containerd 1.7 or newer: upgrade containerd, or use the nvidia runtime without CDI",
            );
        }
        return Check::skip(
            ID,
            "CDI is not enabled in containerd (enable_cdi is not true)",
        );
    }
    let (dirs, specs) = nvidia_specs(node, cri);
    if !specs.is_empty() {
        return Check::pass(
            ID,
            format!(
                "CDI enabled; {} devices declared in {}",
                KIND,
                specs.join(", ")
            ),
        );
    }
    let missing = format!("no spec declares {} in {}", KIND, dirs.join(", "));
    const GENERATE: &str =
        "generate one: `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (regenerate after driver upgrades)";
    match runtime_mode(node, eff, runtime_name) {
        RuntimeMode::Cdi(why) => Check::fail(
            ID,
            format!(
                "CDI is enabled in containerd and the NVIDIA runtime uses it ({}), but {}: no container gets a GPU",
                why, missing
            ),
            GENERATE,
        ),
        RuntimeMode::Other(how) => Check::warn(
            ID,
            format!(
                "CDI is enabled in containerd but {}; the NVIDIA runtime does not use CDI ({}), so pods get their \
                 GPUs through it, but a pod that asks for a CDI device such as {}=all would fail",
                missing, how, KIND
            ),
            format!("where pods or the device plugin ask for CDI devices, {}; otherwise nothing is wrong (containerd 2.x enables CDI by default)", GENERATE),
        ),
        RuntimeMode::Unknown(why) => Check::warn(
            ID,
            format!(
                "CDI is enabled in containerd but {}; whether the NVIDIA runtime uses CDI cannot be told: {}",
                missing, why
            ),
            format!("fix {} (`nvidia-ctk config default` prints a valid one); if the runtime uses CDI, {}", RUNTIME_CONFIG, GENERATE),
        ),
    }
}

/// The NVIDIA runtime's mode: `cdi` when containerd runs runtime `runtime_name` as
/// `nvidia-container-runtime.cdi`, else the `mode` its config file sets (`auto` when the file or the key is
/// missing, as the runtime itself defaults).
pub fn runtime_mode(node: &Node, eff: &Effective, runtime_name: &str) -> RuntimeMode {
    let binary = eff
        .runtime(runtime_name)
        .and_then(|rt| rt.get("options"))
        .and_then(|o| o.get("BinaryName"))
        .and_then(Item::as_str)
        .unwrap_or("");
    if Path::new(binary).file_name() == Some(OsStr::new(CDI_RUNTIME)) {
        return RuntimeMode::Cdi(format!(
            "containerd runs runtime '{}' as {}, which always uses CDI",
            runtime_name, binary
        ));
    }
    match node.read(RUNTIME_CONFIG) {
        Some(text) => mode_in(&text),
        None => RuntimeMode::Other(format!("no {}: mode \"auto\"", RUNTIME_CONFIG)),
    }
}

/// The mode a config file's text sets.
fn mode_in(text: &str) -> RuntimeMode {
    let doc: DocumentMut = match text.parse() {
        Ok(d) => d,
        Err(e) => {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            return RuntimeMode::Unknown(format!(
                "{} is not valid TOML ({})",
                RUNTIME_CONFIG, first
            ));
        }
    };
    match doc
        .get("nvidia-container-runtime")
        .and_then(|t| t.get("mode"))
        .and_then(Item::as_str)
    {
        Some("cdi") => RuntimeMode::Cdi(format!("{} sets mode = \"cdi\"", RUNTIME_CONFIG)),
        Some(mode) => RuntimeMode::Other(format!("{} sets mode = {:?}", RUNTIME_CONFIG, mode)),
        None => RuntimeMode::Other(format!("{} sets no mode: \"auto\"", RUNTIME_CONFIG)),
    }
}

/// containerd hands out NVIDIA GPUs as CDI devices: CDI is on and a spec declares them. Not `enable_cdi`
/// alone: containerd 2.x has it on by default, also on nodes that use the runtime's legacy mode.
pub fn serves_nvidia_gpus(node: &Node, eff: &Effective) -> bool {
    eff.cdi_enabled()
        && eff
            .cri()
            .is_some_and(|cri| !nvidia_specs(node, cri).1.is_empty())
}

/// The CDI spec folders containerd reads (its `cdi_spec_dirs`, else the defaults) and the specs in them that
/// declare NVIDIA GPUs (`kind: nvidia.com/gpu`), in the order containerd reads them.
pub fn nvidia_specs(node: &Node, cri: &Item) -> (Vec<String>, Vec<String>) {
    let dirs: Vec<String> = cri
        .get("cdi_spec_dirs")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_else(|| DEFAULT_DIRS.iter().map(|d| d.to_string()).collect());
    let mut specs = Vec::new();
    for d in &dirs {
        let Ok(entries) = std::fs::read_dir(node.path(d)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json"))
            .collect();
        names.sort();
        for n in names {
            let p = format!("{}/{}", d.trim_end_matches('/'), n);
            if node.read(&p).is_some_and(|t| declares_kind(&t)) {
                specs.push(p);
            }
        }
    }
    (dirs, specs)
}

/// An `enable_cdi = true` line in a containerd config file.
fn asks_for_cdi(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("").replace(' ', "");
        l == "enable_cdi=true"
    })
}

/// A YAML (`kind: nvidia.com/gpu`) or JSON (`"kind": "nvidia.com/gpu"`) CDI spec for NVIDIA GPUs.
fn declares_kind(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim().trim_end_matches(',');
        let Some(rest) = l
            .strip_prefix("kind:")
            .or_else(|| l.strip_prefix("\"kind\":"))
        else {
            return false;
        };
        rest.trim().trim_matches(|c| c == '"' || c == '\'') == KIND
    }) || text.contains(&format!("\"kind\":\"{}\"", KIND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_kinds_are_recognised_in_yaml_and_json() {
        assert!(declares_kind("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n"));
        assert!(declares_kind(
            "{\"cdiVersion\":\"0.5.0\",\"kind\":\"nvidia.com/gpu\"}"
        ));
        assert!(declares_kind("{\n  \"kind\": \"nvidia.com/gpu\",\n}"));
        assert!(!declares_kind("kind: example.com/fpga\n"));
        assert!(asks_for_cdi("[x]\n  enable_cdi = true # on\n"));
        assert!(!asks_for_cdi("# enable_cdi = true\n"));
    }

    /// The toolkit 1.17.0's own default config (recorded in tests/data), and the same with mode "cdi".
    #[test]
    fn the_runtime_mode_is_read_from_its_config() {
        let recorded = include_str!("../tests/data/nvidia-container-runtime-config.toml");
        assert_eq!(
            mode_in(recorded),
            RuntimeMode::Other(format!("{} sets mode = \"auto\"", RUNTIME_CONFIG))
        );
        let cdi = recorded.replace("mode = \"auto\"", "mode = \"cdi\"");
        assert_ne!(cdi, recorded);
        assert!(matches!(mode_in(&cdi), RuntimeMode::Cdi(_)));
        // The cdi table's own keys (spec-dirs, default-kind) are not the mode.
        let legacy = recorded.replace("mode = \"auto\"", "mode = \"legacy\"");
        assert!(matches!(mode_in(&legacy), RuntimeMode::Other(_)));
        assert!(matches!(
            mode_in("[nvidia-container-runtime]\nlog-level = \"info\"\n"),
            RuntimeMode::Other(ref s) if s.ends_with("sets no mode: \"auto\"")
        ));
        assert!(matches!(
            mode_in("[nvidia-container-runtime\n"),
            RuntimeMode::Unknown(_)
        ));
    }

    fn effective(binary: &str) -> Effective {
        let text = format!(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nenable_cdi = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\nBinaryName = \"{}\"\n",
            binary
        );
        Effective {
            doc: text.parse().unwrap(),
            source: String::new(),
        }
    }

    /// Both cases on a node with CDI enabled and no spec: CDI in use fails, CDI unused warns.
    #[test]
    fn a_missing_spec_fails_only_where_the_runtime_uses_cdi() {
        use crate::report::Status;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::new(dir.path(), std::time::Duration::from_secs(5));
        let verdict = |binary: &str| {
            check(
                &node,
                &Ok(effective(binary)),
                "/etc/containerd/config.toml",
                "nvidia",
            )
        };
        // No runtime config: mode auto.
        let c = verdict("/usr/bin/nvidia-container-runtime");
        assert_eq!(c.status, Status::Warn, "{:?}", c);
        assert!(c.detail.contains("does not use CDI"), "{}", c.detail);
        // The .cdi executable forces CDI.
        let c = verdict("/usr/bin/nvidia-container-runtime.cdi");
        assert_eq!(c.status, Status::Fail, "{:?}", c);
        assert!(c.detail.contains("which always uses CDI"), "{}", c.detail);
        // The config's mode.
        let config = node.path(RUNTIME_CONFIG);
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "[nvidia-container-runtime]\nmode = \"cdi\"\n").unwrap();
        let c = verdict("/usr/bin/nvidia-container-runtime");
        assert_eq!(c.status, Status::Fail, "{:?}", c);
        assert!(!c.hint.is_empty());
        std::fs::write(&config, "[nvidia-container-runtime]\nmode = \"legacy\"\n").unwrap();
        assert_eq!(
            verdict("/usr/bin/nvidia-container-runtime").status,
            Status::Warn
        );
        // A runtime of another name: its own BinaryName is what counts (none here), the config says legacy.
        let c = check(
            &node,
            &Ok(effective("/usr/bin/nvidia-container-runtime.cdi")),
            "/x",
            "other",
        );
        assert_eq!(c.status, Status::Warn, "{:?}", c);
    }
}
