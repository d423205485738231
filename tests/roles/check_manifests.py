"""Content checks of the manifests the gpu_cluster role rendered for tests/roles/inputs/everything_*.yml.

usage: python check_manifests.py VARIANT DIR      (VARIANT: timeslicing | mps)
Prints one line per check and exits non-zero when one fails. Schema validation is kubernetes-validate's job
(tests/roles/run); this checks what the schema cannot: the values that make the objects work together.
"""
import sys
from pathlib import Path

import yaml

variant, folder = sys.argv[1], Path(sys.argv[2])
failures = []


def check(what, ok):
    print(("   ok   " if ok else "   FAIL ") + what)
    if not ok:
        failures.append(what)


def docs(name):
    return [d for d in yaml.safe_load_all((folder / name).read_text()) if d]


def one(name, kind):
    found = [d for d in docs(name) if d.get("kind") == kind]
    check(f"{name} holds one {kind}", len(found) == 1)
    return found[0] if found else {}


values = yaml.safe_load((folder / "gpu-operator-values.yaml").read_text())
check("operator values: driver from the host", values["driver"]["enabled"] is False)
check("operator values: host toolkit, so the operator's is off", values["toolkit"]["enabled"] is False)
check("operator values: dcgm-exporter on, its own ServiceMonitor off (ours is the only one)",
      values["dcgmExporter"]["enabled"] is True and values["dcgmExporter"]["serviceMonitor"]["enabled"] is False)

if variant == "timeslicing":
    rc = one("runtimeclass.yaml", "RuntimeClass")
    check("RuntimeClass name from runtime_class_name", rc["metadata"]["name"] == "nvidia-gpu")
    check("RuntimeClass handler = containerd runtime name", rc["handler"] == "nvidia")
    check("RuntimeClass schedules on GPU nodes",
          rc["scheduling"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"})
    check("operator values: runtimeClass agrees", values["operator"]["runtimeClass"] == "nvidia-gpu")
    check("operator values: MIG strategy single", values["mig"]["strategy"] == "single")
    check("operator values: CDI follows nvidia_runtime.cdi", values["cdi"]["enabled"] is True)

    cm = one("device-plugin-config.yaml", "ConfigMap")
    check("sharing ConfigMap in the operator's namespace", cm["metadata"]["namespace"] == "gpu-operator")
    check("devicePlugin.config wired to the ConfigMap and its key",
          values["devicePlugin"]["config"] == {"name": cm["metadata"]["name"], "default": "any"})
    cfg = yaml.safe_load(cm["data"]["any"])
    ts = cfg["sharing"]["timeSlicing"]
    check("time-slicing: version v1, 8 replicas of nvidia.com/gpu",
          cfg["version"] == "v1" and ts["resources"] == [{"name": "nvidia.com/gpu", "replicas": 8}])
    check("time-slicing: no MPS beside it", "mps" not in cfg["sharing"])

    nim = one("nim-service.yaml", "NIMService")
    check("NIMService runs with the RuntimeClass", nim["spec"]["runtimeClassName"] == "nvidia-gpu")
    check("NIMService asks for 2 GPUs", nim["spec"]["resources"]["limits"]["nvidia.com/gpu"] == 2)
    check("NIMService in its namespace", nim["metadata"]["namespace"] == "nim")
    check("NIMService storage class", nim["spec"]["storage"]["pvc"].get("storageClass") == "fast")

    sm = one("gpu-metrics-servicemonitor.yaml", "ServiceMonitor")
    ep = sm["spec"]["endpoints"][0]
    check("ServiceMonitor selects dcgm-exporter in the operator's namespace",
          sm["spec"]["selector"]["matchLabels"] == {"app": "nvidia-dcgm-exporter"}
          and sm["spec"]["namespaceSelector"]["matchNames"] == ["gpu-operator"])
    check("ServiceMonitor interval 60s (asked), never under 30s", ep["interval"] == "60s")
    check("ServiceMonitor carries the Prometheus release label",
          sm["metadata"]["labels"]["release"] == "kube-prometheus-stack")

    so = one("keda-scaledobject.yaml", "ScaledObject")
    trig = so["spec"]["triggers"][0]
    check("ScaledObject targets the NIM deployment",
          so["spec"]["scaleTargetRef"]["name"] == nim["metadata"]["name"])
    check("ScaledObject reads DCGM_FI_DEV_GPU_UTIL of the NIM pods",
          trig["type"] == "prometheus" and "DCGM_FI_DEV_GPU_UTIL{" in trig["metadata"]["query"]
          and 'namespace="nim"' in trig["metadata"]["query"])
    check("ScaledObject threshold 60", trig["metadata"]["threshold"] == "60")
    check("ScaledObject polls no faster than dcgm-exporter collects (30 s)", so["spec"]["pollingInterval"] == 30)

    ks = yaml.safe_load((folder / "kubespray-containerd-runtimes.yml").read_text())
    rt = ks["containerd_additional_runtimes"][0]
    check("Kubespray runtime named as in containerd, with BinaryName and SystemdCgroup",
          rt["name"] == "nvidia" and rt["options"]["BinaryName"] == '"/usr/bin/nvidia-container-runtime"'
          and rt["options"]["SystemdCgroup"] == "true")

    labels = docs("node-labels.yaml")
    check("node labels for each GPU node, both labels",
          [d["metadata"]["name"] for d in labels] == ["gpu-a", "gpu-b.k8s"]
          and all(d["metadata"]["labels"] == {"nvidia.com/gpu.present": "true", "nvidia.com/gpu": "true"}
                  for d in labels))
else:
    cm = one("device-plugin-config.yaml", "ConfigMap")
    cfg = yaml.safe_load(cm["data"]["any"])
    check("MPS: 3 replicas of nvidia.com/gpu, no time-slicing",
          cfg["sharing"]["mps"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 3}]
          and "timeSlicing" not in cfg["sharing"])
    check("devicePlugin.config wired to the MPS ConfigMap",
          values["devicePlugin"]["config"]["name"] == cm["metadata"]["name"])
    dep = one("nim-service.yaml", "Deployment")
    check("Deployment pods run with the RuntimeClass",
          dep["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia")
    check("Deployment asks for 1 GPU",
          dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1)
    svc = one("nim-service.yaml", "Service")
    check("Service selects the Deployment's pods",
          svc["spec"]["selector"] == dep["spec"]["template"]["metadata"]["labels"])
    sec = one("gpu-metrics-scrape-config.yaml", "Secret")
    scrape = yaml.safe_load(sec["stringData"]["prometheus-additional.yaml"])[0]
    check("scrape config every 30s (the seed's 1s is refused), dcgm-exporter kept",
          scrape["scrape_interval"] == "30s"
          and scrape["relabel_configs"][0]["regex"] == "nvidia-dcgm-exporter")
    check("no ServiceMonitor in scrape_config mode", not (folder / "gpu-metrics-servicemonitor.yaml").exists())
    check("no NIM Operator values when it is off", not (folder / "nim-operator-values.yaml").exists())

print(f"manifest content checks ({variant}): {len(failures)} failed")
sys.exit(1 if failures else 0)
