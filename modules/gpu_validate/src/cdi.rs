//! The `cdi` check: when containerd has CDI enabled, a CDI spec for NVIDIA GPUs (`kind: nvidia.com/gpu`)
//! exists in its spec directories.

use toml_edit::Item;

use crate::containerd::Effective;
use crate::node::Node;
use crate::report::Check;

pub const ID: &str = "cdi";
const DEFAULT_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];
const KIND: &str = "nvidia.com/gpu";

/// The check itself.
pub fn check(node: &Node, eff: &Result<Effective, String>, config: &str) -> Check {
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
    if specs.is_empty() {
        return Check::fail(
            ID,
            format!(
                "CDI is enabled in containerd but no spec declares {} in {}",
                KIND,
                dirs.join(", ")
            ),
            "generate one: `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (regenerate after driver upgrades)",
        );
    }
    Check::pass(
        ID,
        format!(
            "CDI enabled; {} devices declared in {}",
            KIND,
            specs.join(", ")
        ),
    )
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
}
