//! The recorded H200 node as it was, and the same node fully configured: what passes, and facts equal to
//! what nvidia-smi printed there.

mod common;

use ansible_module::Choice;
use common::{check, recorded_query_line, status, statuses, FakeNode};
use gpu_validate::CheckId;
use serde_json::json;

#[test]
fn recorded_node_facts_equal_the_recorded_query_line() {
    let node = FakeNode::recorded();
    let out = node.run(json!({}));
    // The recorded line, field by field, in the order the query asked for them.
    let line = recorded_query_line();
    let f: Vec<&str> = line.split(", ").collect();
    assert_eq!(f.len(), 9, "{}", line);
    let facts = &out["ansible_facts"];
    let gpus = facts["nvidia_gpus"].as_array().expect("nvidia_gpus list");
    assert_eq!(gpus.len(), 1, "{}", out);
    let g = &gpus[0];
    assert_eq!(g["index"], json!(f[0].parse::<i64>().unwrap()));
    assert_eq!(g["name"], f[1]);
    assert_eq!(g["uuid"], f[2]);
    assert_eq!(g["driver_version"], f[3]);
    assert_eq!(g["memory_total_mib"], json!(f[4].parse::<i64>().unwrap()));
    assert_eq!(g["mig_mode"], f[5]);
    assert_eq!(g["compute_capability"], f[6]);
    assert_eq!(g["pci_bus_id"], f[7]);
    assert_eq!(g["persistence_mode"], f[8]);
    assert_eq!(facts["nvidia_driver_version"], "580.159.04");
    assert_eq!(facts["nvidia_cuda_version"], "13.0");
    assert_eq!(facts["nvidia_gpu_count"], 1);
    assert_eq!(facts["nvidia_container_toolkit_version"], json!(null));
    assert_eq!(facts["nvidia_runtime_configured"], false);
}

#[test]
fn recorded_node_passes_the_gpu_layers_and_reports_what_is_absent() {
    let node = FakeNode::recorded();
    let out = node.run(json!({}));
    let s = statuses(&out);
    for id in ["pci", "driver", "nvidia_smi", "device_nodes"] {
        assert_eq!(status(&out, id), "pass", "{}: {}", id, out);
    }
    assert!(check(&out, "pci")["detail"]
        .as_str()
        .unwrap()
        .contains("0000:00:06.0 (device 0x2335, driver nvidia)"));
    assert!(check(&out, "driver")["detail"]
        .as_str()
        .unwrap()
        .contains("580.159.04 (open kernel module)"));
    // Absent layers are reported absent, truthfully: the task fails, naming both.
    assert_eq!(status(&out, "toolkit"), "fail", "{}", s);
    assert!(check(&out, "toolkit")["detail"]
        .as_str()
        .unwrap()
        .contains("not installed"));
    assert_eq!(status(&out, "containerd"), "fail", "{}", s);
    assert!(check(&out, "containerd")["detail"]
        .as_str()
        .unwrap()
        .contains("containerd is not installed"));
    assert_eq!(status(&out, "cdi"), "skip", "{}", s);
    assert_eq!(out["failed"], true);
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("GPU node validation failed: toolkit fail:"),
        "{}",
        msg
    );
    // One short part per failed check; the hints stay in `checks`.
    assert!(
        msg.contains("containerd fail:") && !msg.contains("hint:"),
        "{}",
        msg
    );
    assert!(!check(&out, "toolkit")["hint"].as_str().unwrap().is_empty());
    assert_eq!(
        out["summary"],
        "7 checks: 4 pass, 0 warn, 2 fail (toolkit, containerd), 1 skip (cdi)"
    );
    assert_ne!(out["changed"], true);
}

#[test]
fn configured_node_passes_every_check() {
    let node = FakeNode::configured();
    let out = node.run(json!({"expected_gpu_count": 1}));
    assert_eq!(out["failed"], json!(null), "{}", out);
    for id in CheckId::ALL.iter().filter(|c| **c != CheckId::Container) {
        assert_eq!(status(&out, id.as_str()), "pass", "{:?}: {}", id, out);
    }
    // The container check runs a container: only when asked for, never by default.
    let ids: Vec<&str> = out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"container"), "{:?}", ids);
    assert_eq!(
        out["ansible_facts"]["nvidia_container_toolkit_version"],
        "1.17.8"
    );
    assert_eq!(out["ansible_facts"]["nvidia_runtime_configured"], true);
    assert_eq!(out["msg"], "7 checks: 7 pass, 0 warn, 0 fail, 0 skip");
    let c = check(&out, "containerd")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    if common::real_containerd().is_some() {
        assert!(c.contains("config dump"), "{}", c);
    } else {
        assert!(
            c.contains("containerd program not found: read /etc/containerd/config.toml itself"),
            "{}",
            c
        );
    }
    assert!(
        c.contains("runtime 'nvidia' runs /usr/bin/nvidia-container-runtime"),
        "{}",
        c
    );
    assert!(check(&out, "cdi")["detail"]
        .as_str()
        .unwrap()
        .contains("/etc/cdi/nvidia.yaml"));
}

#[test]
fn check_mode_and_a_subset_of_checks() {
    let node = FakeNode::recorded();
    let out = node.run(json!({"_ansible_check_mode": true, "checks": ["pci", "driver"]}));
    assert_eq!(out["skipped"], json!(null), "{}", out);
    assert_eq!(out["checks"].as_array().unwrap().len(), 2);
    assert_eq!(out["failed"], json!(null), "{}", out);
    assert_eq!(out["msg"], "2 checks: 2 pass, 0 warn, 0 fail, 0 skip");
}

#[test]
fn fail_on_never_reports_without_failing_and_warning_fails_on_warnings() {
    let node = FakeNode::recorded();
    let out = node.run(json!({"fail_on": "never"}));
    assert_eq!(out["failed"], json!(null), "{}", out);
    assert_eq!(status(&out, "toolkit"), "fail");

    // A GPU node node with loose device-node modes: a warning, which fails only under fail_on=warning.
    node.mknod_char("/dev/nvidia0", 195, 0, 0o660);
    let out = node.run(json!({"checks": ["device_nodes"]}));
    assert_eq!(status(&out, "device_nodes"), "warn", "{}", out);
    assert_eq!(out["failed"], json!(null), "{}", out);
    let out = node.run(json!({"checks": ["device_nodes"], "fail_on": "warning"}));
    assert_eq!(out["failed"], true, "{}", out);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .contains("/dev/nvidia0 mode 660"));
}

#[test]
fn bad_options_fail_clearly() {
    let node = FakeNode::recorded();
    let out = node.run(json!({"checks": ["pci", "gpu_burn"]}));
    assert_eq!(out["failed"], true);
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains("must be one or more of"),
        "{}",
        out
    );
    let out = node.run(json!({"min_driver_version": "latest"}));
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains("min_driver_version must be a dotted version"),
        "{}",
        out
    );
    let out = node.run(json!({"checks": []}));
    assert_eq!(out["failed"], true, "{}", out);
    assert!(
        out["msg"].as_str().unwrap().starts_with("checks is empty"),
        "{}",
        out
    );
    let out = node.run(json!({"sysroot": "/nonexistent/root"}));
    assert_eq!(out["msg"], "sysroot /nonexistent/root is not a directory");
}

/// On a node where every check passes, a bad value must still be refused, naming its parameter, before any
/// check runs (no `checks` in the answer): otherwise it would be used as given.
#[test]
fn bad_values_are_refused_before_any_check_runs() {
    let node = FakeNode::configured();
    let root = node.root.to_str().unwrap().to_string();
    let cases = [
        (
            json!({"expected_gpu_count": -1}),
            "expected_gpu_count must be 0 or more",
        ),
        (json!({"name": ""}), "name must not be empty"),
        // The old name still works, and the message names what was written.
        (
            json!({"runtime_name": ""}),
            "runtime_name must not be empty",
        ),
        (
            json!({"nvidia_smi_path": "../bin/nvidia-smi"}),
            "nvidia_smi_path must be an absolute path",
        ),
        (
            json!({"nvidia_smi_path": "/usr/local/nvidia/bin/../../../../usr/bin/nvidia-smi"}),
            "nvidia_smi_path must be an absolute path without '..'",
        ),
        (
            json!({"path": "etc/containerd/config.toml"}),
            "path must be an absolute path",
        ),
        (
            json!({"containerd_config": "/etc/../containerd/config.toml"}),
            "containerd_config must be an absolute path without '..' steps",
        ),
        (
            json!({"min_driver_version": ""}),
            "min_driver_version must be a dotted version",
        ),
        (
            json!({"sysroot": "root"}),
            "sysroot must be an absolute path",
        ),
        (
            json!({"checks": ["container"]}),
            "the container check needs smoke_image",
        ),
        (
            // The node under test is a folder: a container cannot be run in it.
            json!({"smoke_image": "localhost/gpunode/smoke:1"}),
            "the container check runs a container on this node through containerd: it needs sysroot /",
        ),
        (
            json!({"checks": ["pci"], "smoke_image": "two words"}),
            "smoke_image must be an image reference",
        ),
        (
            json!({"sysroot": format!("{}\0x", root)}),
            "sysroot must not contain a NUL byte",
        ),
        (
            json!({"sysroot": format!("{}/..", root)}),
            "sysroot must be an absolute path without '..' steps",
        ),
        (json!({"timeout": 0}), "timeout must be at least 1 second"),
    ];
    for (args, says) in cases {
        let out = node.run(args.clone());
        assert_eq!(out["failed"], true, "{}: {}", args, out);
        let msg = out["msg"].as_str().unwrap();
        assert!(msg.starts_with(says), "{}: {}", args, msg);
        assert_eq!(out["checks"], json!(null), "{}: a check ran: {}", args, out);
    }
    // The same node with good values passes, so the refusals above come from the values alone.
    let out = node.run(json!({"expected_gpu_count": 0}));
    assert_eq!(out["failed"], json!(null), "{}", out);
}
