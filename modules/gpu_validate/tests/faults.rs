//! Faults injected one at a time into the recorded node (or its configured form): each must make the RIGHT
//! check fail, fail the task, and name that check in `msg`.

mod common;

use common::{check, status, statuses, FakeNode};
use serde_json::{json, Value};

/// Asserts that `id` failed with a detail containing `detail`, and that the task failed naming it.
fn assert_fails(out: &Value, id: &str, detail: &str) {
    assert_eq!(
        status(out, id),
        "fail",
        "{} should fail: {}",
        id,
        statuses(out)
    );
    let d = check(out, id)["detail"].as_str().unwrap();
    assert!(
        d.contains(detail),
        "{} detail {:?} lacks {:?}",
        id,
        d,
        detail
    );
    assert!(
        !check(out, id)["hint"].as_str().unwrap().is_empty(),
        "{} has no hint",
        id
    );
    assert_eq!(out["failed"], true, "{}", out);
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{} fail: ", id)),
        "msg does not name {}: {}",
        id,
        msg
    );
}

/// Asserts that only `ids` failed among the GPU layers of the recorded node (toolkit and containerd are
/// absent there, so they are left out of the run).
fn gpu_layers(node: &FakeNode, extra: Value) -> Value {
    let mut args = json!({"checks": ["pci", "driver", "nvidia_smi", "device_nodes"]});
    if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
        a.extend(e);
    }
    node.run(args)
}

fn only_failing(out: &Value, ids: &[&str]) {
    for c in out["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let want = if ids.contains(&id) { "fail" } else { "pass" };
        assert_eq!(c["status"], want, "{}: {}", id, statuses(out));
    }
}

#[test]
fn fault_01_driver_too_old() {
    let node = FakeNode::recorded();
    node.edit("/proc/driver/nvidia/version", "580.159.04", "450.80.02");
    node.edit(
        "/usr/local/nvidia/bin/nvidia-smi.recording",
        "580.159.04",
        "450.80.02",
    );
    let out = gpu_layers(&node, json!({}));
    assert_fails(
        &out,
        "driver",
        "450.80.02 (open kernel module) is older than the minimum 470.82.01",
    );
    only_failing(&out, &["driver"]);
    // The same node against a raised minimum, without touching files.
    let node = FakeNode::recorded();
    let out = gpu_layers(&node, json!({"min_driver_version": "590.48"}));
    assert_fails(&out, "driver", "older than the minimum 590.48");
}

#[test]
fn fault_02_kernel_module_not_loaded() {
    let node = FakeNode::recorded();
    node.remove("/proc/driver/nvidia");
    node.write("/proc/modules", "");
    // What nvidia-smi says when the module is not loaded.
    node.write(
        "/usr/local/nvidia/bin/nvidia-smi.recording",
        "## nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,mig.mode.current,compute_cap,pci.bus_id,persistence_mode --format=csv,noheader,nounits\n\
         NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\nrc=9\n",
    );
    let out = gpu_layers(&node, json!({}));
    assert_fails(&out, "driver", "the NVIDIA kernel module is not loaded");
    assert_fails(
        &out,
        "nvidia_smi",
        "couldn't communicate with the NVIDIA driver",
    );
    assert_eq!(status(&out, "pci"), "pass");
}

#[test]
fn fault_03_gpu_count_below_expected() {
    let node = FakeNode::recorded();
    let out = gpu_layers(&node, json!({"expected_gpu_count": 2}));
    assert_fails(
        &out,
        "pci",
        "1 NVIDIA GPU on the PCI bus: 0000:00:06.0 (device 0x2335, driver nvidia); expected 2",
    );
    assert_fails(&out, "nvidia_smi", "nvidia-smi lists 1 GPU(s), expected 2");
    assert_eq!(
        status(&gpu_layers(&node, json!({"expected_gpu_count": 1})), "pci"),
        "pass"
    );
}

#[test]
fn fault_04_pci_shows_more_gpus_than_nvidia_smi() {
    let node = FakeNode::recorded();
    // A second H200 on the bus, bound to nvidia, that the driver did not bring up.
    let dev = "/sys/bus/pci/devices/0000:00:07.0";
    for (f, v) in [
        ("vendor", "0x10de"),
        ("device", "0x2335"),
        ("class", "0x030200"),
    ] {
        node.write(&format!("{}/{}", dev, f), &format!("{}\n", v));
    }
    std::os::unix::fs::symlink(
        "../../../bus/pci/drivers/nvidia",
        node.path(&format!("{}/driver", dev)),
    )
    .unwrap();
    let out = gpu_layers(&node, json!({}));
    assert_fails(
        &out,
        "nvidia_smi",
        "nvidia-smi lists 1 GPU(s) but the PCI bus shows 2; not usable: 0000:00:07.0",
    );
    assert_eq!(status(&out, "pci"), "pass");
    assert_eq!(out["ansible_facts"]["nvidia_gpu_count"], 2);
    // NVIDIA's audio function on the same card is not a GPU and changes nothing.
    let node = FakeNode::recorded();
    for (f, v) in [
        ("vendor", "0x10de"),
        ("device", "0x22e8"),
        ("class", "0x040300"),
    ] {
        node.write(
            &format!("/sys/bus/pci/devices/0000:00:06.1/{}", f),
            &format!("{}\n", v),
        );
    }
    only_failing(&gpu_layers(&node, json!({})), &[]);
}

#[test]
fn fault_05_nvidia_uvm_missing() {
    let node = FakeNode::recorded();
    node.remove("/dev/nvidia-uvm");
    let out = gpu_layers(&node, json!({}));
    assert_fails(&out, "device_nodes", "/dev/nvidia-uvm is missing");
    only_failing(&out, &["device_nodes"]);
}

#[test]
fn fault_06_wrong_device_node_type() {
    let node = FakeNode::recorded();
    node.remove("/dev/nvidia0");
    node.write("/dev/nvidia0", "");
    let out = gpu_layers(&node, json!({}));
    assert_fails(
        &out,
        "device_nodes",
        "/dev/nvidia0 is a regular file, not a character device",
    );
    only_failing(&out, &["device_nodes"]);
    // A character device with the wrong major number is wrong too.
    let node = FakeNode::recorded();
    node.mknod_char("/dev/nvidiactl", 1, 3, 0o666);
    let out = gpu_layers(&node, json!({}));
    assert_fails(
        &out,
        "device_nodes",
        "/dev/nvidiactl has major 1 where the driver uses 195",
    );
}

#[test]
fn fault_07_nvidia_smi_missing() {
    let node = FakeNode::recorded();
    node.remove("/usr/local/nvidia/bin/nvidia-smi");
    let out = gpu_layers(&node, json!({}));
    assert_fails(
        &out,
        "nvidia_smi",
        "nvidia-smi not found (looked in /usr/local/sbin",
    );
    only_failing(&out, &["nvidia_smi"]);
    assert_eq!(out["ansible_facts"]["nvidia_gpus"], json!([]));
    let out = gpu_layers(&node, json!({"nvidia_smi_path": "/opt/bin/nvidia-smi"}));
    assert_fails(
        &out,
        "nvidia_smi",
        "/opt/bin/nvidia-smi is not an executable file",
    );
}

#[test]
fn fault_08_nvidia_smi_failing() {
    let node = FakeNode::recorded();
    let rec = "/usr/local/nvidia/bin/nvidia-smi.recording";
    let text = node.read(rec);
    // The first query's recorded status becomes the failure nvidia-smi gives after a driver upgrade.
    let broken = text.replacen(
        "Disabled, 9.0, 00000000:00:06.0, Enabled\nrc=0",
        "\nFailed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.173\nrc=18",
        1,
    );
    assert_ne!(broken, text);
    node.write(rec, &broken);
    let out = gpu_layers(&node, json!({}));
    assert_fails(&out, "nvidia_smi", "failed (exit 18): ");
    assert_fails(&out, "nvidia_smi", "Driver/library version mismatch");
    only_failing(&out, &["nvidia_smi"]);

    // nvidia-smi that hangs is stopped at the time limit and fails the check.
    let node = FakeNode::recorded();
    node.write("/opt/hang/nvidia-smi", "#!/bin/sh\nexec sleep 30\n");
    std::fs::set_permissions(
        node.path("/opt/hang/nvidia-smi"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = gpu_layers(
        &node,
        json!({"nvidia_smi_path": "/opt/hang/nvidia-smi", "timeout": 1}),
    );
    assert_fails(&out, "nvidia_smi", "ran past 1 s and was stopped");
}

#[test]
fn fault_09_toolkit_missing() {
    let node = FakeNode::configured();
    for p in [
        "nvidia-ctk",
        "nvidia-container-runtime",
        "nvidia-container-cli",
    ] {
        node.remove(&format!("/usr/bin/{}", p));
    }
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(&out, "toolkit", "NVIDIA Container Toolkit is not installed: nvidia-ctk, nvidia-container-runtime, nvidia-container-cli not found");
    // Half an install is broken too, and a failing `nvidia-container-cli info` is while the driver is loaded.
    let node = FakeNode::configured();
    node.remove("/usr/bin/nvidia-ctk");
    node.edit("/usr/bin/nvidia-container-cli", "  info) printf", "  info) echo 'nvidia-container-cli: initialization error: nvml error: driver not loaded' >&2; exit 1; printf");
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(&out, "toolkit", "not found: nvidia-ctk");
    assert_fails(
        &out,
        "toolkit",
        "nvidia-container-cli info failed: nvidia-container-cli: initialization error",
    );
    // The whole install with only `info` failing: still a failure, because the driver is loaded.
    let node = FakeNode::configured();
    assert!(node.path("/proc/driver/nvidia/version").is_file());
    node.edit("/usr/bin/nvidia-container-cli", "  info) printf", "  info) echo 'nvidia-container-cli: initialization error: nvml error: driver not loaded' >&2; exit 1; printf");
    let out = node.run(json!({"checks": ["driver", "toolkit"]}));
    assert_eq!(status(&out, "driver"), "pass", "{}", statuses(&out));
    assert_fails(
        &out,
        "toolkit",
        "nvidia-ctk 1.17.8, nvidia-container-runtime 1.17.8, nvidia-container-cli 1.17.8; nvidia-container-cli info failed: nvidia-container-cli: initialization error",
    );
}

#[test]
fn fault_10_runtime_missing_from_containerd() {
    let node = FakeNode::configured();
    node.edit(
        "/etc/containerd/config.toml",
        "runtimes.nvidia]",
        "runtimes.other]",
    );
    node.edit(
        "/etc/containerd/config.toml",
        "runtimes.nvidia.options]",
        "runtimes.other.options]",
    );
    let out = node.run(json!({}));
    assert_fails(
        &out,
        "containerd",
        "runtime 'nvidia' is not configured (runtimes: ",
    );
    assert_eq!(out["ansible_facts"]["nvidia_runtime_configured"], false);
    only_failing(&out, &["containerd"]);
    // Asking for a runtime name that is configured passes.
    let out = node.run(json!({"name": "other"}));
    assert_eq!(status(&out, "containerd"), "pass", "{}", out);
}

#[test]
fn fault_11_binary_name_missing() {
    let node = FakeNode::configured();
    node.edit(
        "/etc/containerd/config.toml",
        "BinaryName = \"/usr/bin/nvidia-container-runtime\"",
        "BinaryName = \"/usr/local/nvidia/toolkit/nvidia-container-runtime\"",
    );
    let out = node.run(json!({}));
    assert_fails(
        &out,
        "containerd",
        "BinaryName /usr/local/nvidia/toolkit/nvidia-container-runtime is not an executable file",
    );
    only_failing(&out, &["containerd"]);
    // No BinaryName at all: containerd would run plain runc.
    let node = FakeNode::configured();
    node.edit(
        "/etc/containerd/config.toml",
        "BinaryName = \"/usr/bin/nvidia-container-runtime\"",
        "",
    );
    let out = node.run(json!({}));
    assert_fails(
        &out,
        "containerd",
        "runtime 'nvidia' has no options.BinaryName",
    );
}

#[test]
fn fault_12_systemd_cgroup_differs_from_runc() {
    let node = FakeNode::configured();
    let text = node.read("/etc/containerd/config.toml");
    let (head, tail) = text.split_once("runtimes.nvidia.options]").unwrap();
    node.write(
        "/etc/containerd/config.toml",
        &format!(
            "{}runtimes.nvidia.options]{}",
            head,
            tail.replace("SystemdCgroup = true", "SystemdCgroup = false")
        ),
    );
    let out = node.run(json!({}));
    assert_fails(
        &out,
        "containerd",
        "runtime 'nvidia' has SystemdCgroup = false but the default runtime runc has true",
    );
    assert_fails(
        &out,
        "containerd",
        "runtime 'nvidia' has SystemdCgroup = false but the kubelet's cgroupDriver is systemd",
    );
    only_failing(&out, &["containerd"]);
}

#[test]
fn fault_13_systemd_cgroup_differs_from_the_kubelet() {
    let node = FakeNode::configured();
    node.edit(
        "/var/lib/kubelet/config.yaml",
        "cgroupDriver: systemd",
        "cgroupDriver: cgroupfs",
    );
    let out = node.run(json!({}));
    assert_fails(
        &out,
        "containerd",
        "runtime 'nvidia' has SystemdCgroup = true but the kubelet's cgroupDriver is cgroupfs",
    );
    let d = check(&out, "containerd")["detail"].as_str().unwrap();
    assert!(!d.contains("but the default runtime"), "{}", d);
    // No cgroupDriver line: the kubelet's default, cgroupfs.
    let node = FakeNode::configured();
    node.edit(
        "/var/lib/kubelet/config.yaml",
        "cgroupDriver: systemd\n",
        "",
    );
    assert_fails(
        &node.run(json!({})),
        "containerd",
        "the kubelet's cgroupDriver is cgroupfs",
    );
}

/// `kubelet_config` names the kubelet's config where it is not kubeadm's path, as containerd_runtime's option of
/// the same name does: the cgroup driver is read from there, and only there.
#[test]
fn kubelet_config_names_where_the_kubelets_driver_is_read() {
    let node = FakeNode::configured();
    let kubeadm = node.read("/var/lib/kubelet/config.yaml");
    node.remove("/var/lib/kubelet/config.yaml");
    node.write(
        "/etc/kubernetes/kubelet/config.yaml",
        &kubeadm.replace("cgroupDriver: systemd", "cgroupDriver: cgroupfs"),
    );
    // Not given: kubeadm's path has no file, so there is no driver to compare with.
    let out = node.run(json!({}));
    assert_eq!(status(&out, "containerd"), "pass", "{}", statuses(&out));
    let d = check(&out, "containerd")["detail"].as_str().unwrap();
    assert!(
        d.contains("SystemdCgroup = true; no kubelet config"),
        "{}",
        d
    );
    // Given: the file there is read, and its driver differs from the runtime's.
    let out = node.run(json!({"kubelet_config": "/etc/kubernetes/kubelet/config.yaml"}));
    assert_fails(
        &out,
        "containerd",
        "runtime 'nvidia' has SystemdCgroup = true but the kubelet's cgroupDriver is cgroupfs",
    );
}

/// The NVIDIA runtime's own config as the real toolkit 1.17.0 writes it (mode "auto"), from tests/data.
const RUNTIME_CONFIG: &str = include_str!("data/nvidia-container-runtime-config.toml");

#[test]
fn fault_14_cdi_in_use_without_a_spec() {
    let node = FakeNode::configured();
    node.remove("/etc/cdi/nvidia.yaml");
    node.write("/etc/nvidia-container-runtime/config.toml", RUNTIME_CONFIG);
    node.edit(
        "/etc/nvidia-container-runtime/config.toml",
        "mode = \"auto\"",
        "mode = \"cdi\"",
    );
    let out = node.run(json!({}));
    assert_fails(&out, "cdi", "CDI is enabled in containerd and the NVIDIA runtime uses it (/etc/nvidia-container-runtime/config.toml sets mode = \"cdi\"), but no spec declares nvidia.com/gpu in /etc/cdi, /var/run/cdi");
    only_failing(&out, &["cdi"]);
    // A spec for another kind does not count.
    node.write(
        "/var/run/cdi/fpga.yaml",
        "cdiVersion: 0.5.0\nkind: example.com/fpga\ndevices: []\n",
    );
    assert_fails(
        &node.run(json!({})),
        "cdi",
        "no spec declares nvidia.com/gpu",
    );
    // The runtime's .cdi executable uses CDI whatever its config says.
    node.edit(
        "/etc/nvidia-container-runtime/config.toml",
        "mode = \"cdi\"",
        "mode = \"legacy\"",
    );
    std::fs::copy(
        node.path("/usr/bin/nvidia-container-runtime"),
        node.path("/usr/bin/nvidia-container-runtime.cdi"),
    )
    .unwrap();
    node.edit(
        "/etc/containerd/config.toml",
        "BinaryName = \"/usr/bin/nvidia-container-runtime\"",
        "BinaryName = \"/usr/bin/nvidia-container-runtime.cdi\"",
    );
    assert_fails(
        &node.run(json!({})),
        "cdi",
        "the NVIDIA runtime uses it (containerd runs runtime 'nvidia' as /usr/bin/nvidia-container-runtime.cdi, which always uses CDI)",
    );
    // CDI off: nothing to check.
    node.edit(
        "/etc/containerd/config.toml",
        "enable_cdi = true",
        "enable_cdi = false",
    );
    assert_eq!(status(&node.run(json!({})), "cdi"), "skip");
}

/// containerd 2.x enables CDI by default: on a node whose runtime gives pods their GPUs in its legacy or auto
/// mode, a missing spec is a warning (a pod asking for a CDI device would fail), never a failed node.
#[test]
fn cdi_enabled_but_unused_without_a_spec_only_warns() {
    let node = FakeNode::configured();
    node.remove("/etc/cdi/nvidia.yaml");
    // No runtime config at all: the runtime's default mode, auto.
    let out = node.run(json!({}));
    assert_eq!(status(&out, "cdi"), "warn", "{}", statuses(&out));
    assert_eq!(out["failed"], json!(null), "{}", out);
    let d = check(&out, "cdi")["detail"].as_str().unwrap();
    assert!(
        d.starts_with("CDI is enabled in containerd but no spec declares nvidia.com/gpu in /etc/cdi, /var/run/cdi; the NVIDIA runtime does not use CDI (no /etc/nvidia-container-runtime/config.toml: mode \"auto\")"),
        "{}",
        d
    );
    assert!(
        d.ends_with("a pod that asks for a CDI device such as nvidia.com/gpu=all would fail"),
        "{}",
        d
    );
    // The toolkit's own default config, and legacy mode: the same.
    node.write("/etc/nvidia-container-runtime/config.toml", RUNTIME_CONFIG);
    let out = node.run(json!({}));
    assert_eq!(status(&out, "cdi"), "warn", "{}", statuses(&out));
    assert!(check(&out, "cdi")["detail"]
        .as_str()
        .unwrap()
        .contains("(/etc/nvidia-container-runtime/config.toml sets mode = \"auto\")"));
    node.edit(
        "/etc/nvidia-container-runtime/config.toml",
        "mode = \"auto\"",
        "mode = \"legacy\"",
    );
    let out = node.run(json!({}));
    assert_eq!(status(&out, "cdi"), "warn", "{}", statuses(&out));
    assert_eq!(out["failed"], json!(null), "{}", out);
    // fail_on: warning asks for warnings to fail the task.
    let out = node.run(json!({"fail_on": "warning"}));
    assert_eq!(out["failed"], true, "{}", out);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .contains("cdi warn: CDI is enabled in containerd but no spec"));
    // A runtime config that is not TOML: the mode cannot be told, and the warning says why.
    node.write(
        "/etc/nvidia-container-runtime/config.toml",
        "[nvidia-container-runtime\nmode = \"cdi\"\n",
    );
    let out = node.run(json!({}));
    assert_eq!(status(&out, "cdi"), "warn", "{}", statuses(&out));
    assert!(check(&out, "cdi")["detail"]
        .as_str()
        .unwrap()
        .contains("whether the NVIDIA runtime uses CDI cannot be told: /etc/nvidia-container-runtime/config.toml is not valid TOML"));
    // The case as containerd 2.x ships it: the config says nothing of CDI, containerd turns it on itself.
    node.write("/etc/nvidia-container-runtime/config.toml", RUNTIME_CONFIG);
    node.edit("/etc/containerd/config.toml", "  enable_cdi = true\n", "");
    let out = node.run(json!({}));
    let two = common::real_containerd().is_some_and(|bin| {
        let v = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .unwrap();
        // `containerd github.com/containerd/containerd/v2 2.1.9+unknown`
        String::from_utf8_lossy(&v.stdout)
            .split_whitespace()
            .nth(2)
            .is_some_and(|version| version.starts_with("2."))
    });
    if two {
        assert_eq!(status(&out, "cdi"), "warn", "{}", statuses(&out));
        assert_eq!(out["failed"], json!(null), "{}", out);
    } else {
        // The file read directly (or containerd 1.x): CDI is off unless the file turns it on.
        assert_eq!(status(&out, "cdi"), "skip", "{}", statuses(&out));
    }
    node.edit(
        "/etc/containerd/config.toml",
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n",
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  enable_cdi = true\n",
    );
    // With a spec, the check passes whatever the mode.
    node.write(
        "/etc/cdi/nvidia.yaml",
        &std::fs::read_to_string(common::fixtures().join("configured/etc/cdi/nvidia.yaml"))
            .unwrap(),
    );
    assert_eq!(status(&node.run(json!({})), "cdi"), "pass");
}

#[test]
fn fault_15_containerd_not_running() {
    let node = FakeNode::configured();
    node.remove("/run/containerd/containerd.sock");
    let out = node.run(json!({}));
    assert_fails(
        &out,
        "containerd",
        "containerd is not running (no socket at /run/containerd/containerd.sock)",
    );
    only_failing(&out, &["containerd"]);
}

#[test]
fn fault_16_gpu_bound_to_another_driver() {
    let node = FakeNode::recorded();
    let link = node.path("/sys/bus/pci/devices/0000:00:06.0/driver");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("../../../bus/pci/drivers/vfio-pci", &link).unwrap();
    let out = gpu_layers(&node, json!({}));
    assert_fails(&out, "driver", "not bound to: 0000:00:06.0 (vfio-pci)");
}

#[test]
fn fault_17_missing_dev_char_links_on_a_systemd_cgroup_node() {
    let node = FakeNode::configured();
    std::fs::create_dir_all(node.path("/run/systemd/system")).unwrap();
    let out = node.run(json!({"fail_on": "warning"}));
    assert_eq!(status(&out, "device_nodes"), "warn", "{}", statuses(&out));
    let d = check(&out, "device_nodes")["detail"].as_str().unwrap();
    assert!(
        d.contains("/dev/char links missing for 195:255, 238:0, 195:0"),
        "{}",
        d
    );
    assert_eq!(out["failed"], true);
    // With the links the warning goes away.
    std::fs::create_dir_all(node.path("/dev/char")).unwrap();
    for (l, t) in [
        ("195:255", "../nvidiactl"),
        ("238:0", "../nvidia-uvm"),
        ("195:0", "../nvidia0"),
    ] {
        std::os::unix::fs::symlink(t, node.path(&format!("/dev/char/{}", l))).unwrap();
    }
    let out = node.run(json!({"fail_on": "warning"}));
    assert_eq!(status(&out, "device_nodes"), "pass", "{}", out);
    assert_eq!(out["failed"], json!(null));
}

#[test]
fn fault_18_broken_containerd_config() {
    let node = FakeNode::configured();
    node.write("/etc/containerd/config.toml", "version = 2\n[plugins\n");
    let out = node.run(json!({}));
    assert_eq!(status(&out, "containerd"), "fail", "{}", out);
    assert_eq!(status(&out, "cdi"), "skip");
    assert_eq!(out["failed"], true);
}

#[test]
fn fault_19_containerd_1_6_ignores_enable_cdi() {
    // Only real containerd 1.6 drops enable_cdi; tests/gpu/run runs this with bookworm's containerd.
    let Some(bin) = common::real_containerd() else {
        eprintln!("no real containerd given (GPU_VALIDATE_CONTAINERD): nothing to judge");
        return;
    };
    let v = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    if !String::from_utf8_lossy(&v.stdout).contains(" 1.6.") {
        eprintln!("containerd is not 1.6: nothing to judge");
        return;
    }
    let node = FakeNode::configured();
    let out = node.run(json!({"fail_on": "warning"}));
    assert_eq!(status(&out, "cdi"), "warn", "{}", statuses(&out));
    assert!(check(&out, "cdi")["detail"]
        .as_str()
        .unwrap()
        .contains("this containerd ignores it"));
    assert_eq!(out["failed"], true);
}

#[test]
fn fault_20_toolkit_versions_disagree() {
    // nvidia-container-cli from another release than nvidia-ctk and the runtime.
    let node = FakeNode::configured();
    node.edit(
        "/usr/bin/nvidia-container-cli",
        "cli-version: 1.17.8\\nlib-version: 1.17.8",
        "cli-version: 1.16.2\\nlib-version: 1.16.2",
    );
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(
        &out,
        "toolkit",
        "versions disagree: nvidia-ctk 1.17.8, nvidia-container-runtime 1.17.8, nvidia-container-cli 1.16.2, libnvidia-container 1.16.2",
    );
    // Only the library (libnvidia-container1) from another release.
    let node = FakeNode::configured();
    node.edit(
        "/usr/bin/nvidia-container-cli",
        "lib-version: 1.17.8",
        "lib-version: 1.16.2",
    );
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(
        &out,
        "toolkit",
        "versions disagree: nvidia-ctk 1.17.8, nvidia-container-runtime 1.17.8, nvidia-container-cli 1.17.8, libnvidia-container 1.16.2",
    );
}

/// The configured node with the kernel module unloaded; `nvidia-container-cli info` fails there as the real
/// one does, so a run of it would fail the toolkit check.
fn configured_without_driver() -> FakeNode {
    let node = FakeNode::configured();
    node.remove("/proc/driver/nvidia");
    node.edit("/usr/bin/nvidia-container-cli", "  info) printf", "  info) echo 'nvidia-container-cli: initialization error: nvml error: driver not loaded' >&2; exit 1; printf");
    node
}

#[test]
fn fault_21_driver_not_loaded_fails_the_driver_check_not_the_toolkit_check() {
    let node = configured_without_driver();
    let out = node.run(json!({"checks": ["driver", "toolkit"]}));
    assert_fails(&out, "driver", "the NVIDIA kernel module is not loaded");
    assert_eq!(status(&out, "toolkit"), "pass", "{}", statuses(&out));
    assert_eq!(
        check(&out, "toolkit")["detail"],
        "nvidia-ctk 1.17.8, nvidia-container-runtime 1.17.8, nvidia-container-cli 1.17.8; \
         no NVIDIA driver loaded: nvidia-container-cli info not run"
    );
    assert_eq!(
        out["ansible_facts"]["nvidia_container_toolkit_version"],
        "1.17.8"
    );
    let msg = out["msg"].as_str().unwrap();
    assert!(!msg.contains("toolkit fail"), "{}", msg);
    // The toolkit check alone judges the same: the driver's absence is the driver check's finding.
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_eq!(status(&out, "toolkit"), "pass", "{}", out);
    assert_eq!(out["failed"], json!(null), "{}", out);

    // Without the driver, a missing program or disagreeing versions still fail the toolkit check.
    let node = configured_without_driver();
    node.remove("/usr/bin/nvidia-container-runtime");
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(&out, "toolkit", "not found: nvidia-container-runtime");
    assert_fails(
        &out,
        "toolkit",
        "no NVIDIA driver loaded: nvidia-container-cli info not run",
    );
    let node = configured_without_driver();
    node.remove("/usr/bin/nvidia-container-cli");
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(&out, "toolkit", "not found: nvidia-container-cli");
    let node = configured_without_driver();
    node.edit(
        "/usr/bin/nvidia-ctk",
        "CLI version 1.17.8",
        "CLI version 1.18.0",
    );
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(
        &out,
        "toolkit",
        "versions disagree: nvidia-ctk 1.18.0, nvidia-container-runtime 1.17.8",
    );
    let node = configured_without_driver();
    for p in [
        "nvidia-ctk",
        "nvidia-container-runtime",
        "nvidia-container-cli",
    ] {
        node.remove(&format!("/usr/bin/{}", p));
    }
    let out = node.run(json!({"checks": ["toolkit"]}));
    assert_fails(&out, "toolkit", "NVIDIA Container Toolkit is not installed");
}

#[test]
fn the_runtime_that_is_itself_the_default_is_judged_by_the_kubelet_not_by_a_built_in_runc() {
    // EKS's GPU config: `nvidia` is the default runtime with SystemdCgroup = true and the file has no runc,
    // while containerd 2.x's dump still shows a built-in runc with SystemdCgroup = false.
    let node = FakeNode::configured();
    let text = node.read("/etc/containerd/config.toml");
    let (head, tail) = text.split_once("runtimes.runc.options]").unwrap();
    node.write(
        "/etc/containerd/config.toml",
        &format!(
            "{}runtimes.runc.options]{}",
            head,
            tail.replacen("SystemdCgroup = true", "SystemdCgroup = false", 1)
        )
        .replace(
            "default_runtime_name = \"runc\"",
            "default_runtime_name = \"nvidia\"",
        ),
    );
    let out = node.run(json!({}));
    let d = check(&out, "containerd")["detail"].as_str().unwrap();
    assert!(d.contains("default runtime nvidia"), "{}", d);
    assert_eq!(check(&out, "containerd")["status"], "pass", "{}", d);
}
