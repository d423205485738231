"""Content checks of the manifests the gpu_cluster role rendered for tests/roles/inputs/.

usage: python check_manifests.py VARIANT DIR      (VARIANT: timeslicing | mps | device_plugin)
Prints one line per check and exits non-zero when one fails. Schema validation is kubernetes-validate's job
(tests/roles/run); this checks what the schema cannot: the values that make the objects work together and
with what the GPU Operator, the device plugin chart, NIM, KEDA and Prometheus do with them.
"""
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pylib"))
from checks import Tally  # noqa: E402

variant, folder = sys.argv[1], Path(sys.argv[2])
tally = Tally(f"manifest content checks ({variant})")
check = tally.check


def docs(name):
    return [d for d in yaml.safe_load_all((folder / name).read_text()) if d]


def one(name, kind):
    found = [d for d in docs(name) if d.get("kind") == kind]
    check(f"{name} holds one {kind}", len(found) == 1)
    return found[0] if found else {}


def operator_values():
    values = yaml.safe_load((folder / "gpu-operator-values.yaml").read_text())
    check("operator values: driver from the host", values["driver"]["enabled"] is False)
    check("operator values: host toolkit, so the operator's is off", values["toolkit"]["enabled"] is False)
    check("operator values: dcgm-exporter on, its own ServiceMonitor off (ours is the only one)",
          values["dcgmExporter"]["enabled"] is True and values["dcgmExporter"]["serviceMonitor"]["enabled"] is False)
    check("operator values: no standalone DCGM host engine (dcgm-exporter embeds one)",
          values["dcgm"]["enabled"] is False)
    check("operator values: no operator.defaultRuntime (no such key in the chart)",
          "defaultRuntime" not in values["operator"])
    return values


def smoke_job(runtime_class, resource):
    job = one("smoke-test-job.yaml", "Job")
    pod = job["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    check("smoke test Job: RuntimeClass, one GPU of the advertised resource, nvidia-smi -L, no retry",
          pod["runtimeClassName"] == runtime_class and ctr["resources"]["limits"] == {resource: 1}
          and ctr["command"] == ["nvidia-smi", "-L"] and job["spec"]["backoffLimit"] == 0
          and pod["restartPolicy"] == "Never")
    check("smoke test Job: bounded by the timeout", job["spec"]["activeDeadlineSeconds"] == 300)


def sharing_config(text):
    cfg = yaml.safe_load(text)
    check("device plugin config: version v1", cfg["version"] == "v1")
    return cfg


if variant == "timeslicing":
    values = operator_values()
    check("no RuntimeClass of ours while the GPU Operator owns it", not (folder / "runtimeclass.yaml").exists())
    check("operator values: runtimeClass = runtime_class_name = runtime_name (the operator's handler)",
          values["operator"]["runtimeClass"] == "nvidia-gpu")
    check("operator values: MIG strategy single", values["mig"]["strategy"] == "single")
    check("operator values: CDI follows nvidia_runtime.cdi", values["cdi"]["enabled"] is True)
    check("no device plugin chart beside the operator's", not (folder / "device-plugin-values.yaml").exists())

    cm = one("device-plugin-config.yaml", "ConfigMap")
    check("sharing ConfigMap in the operator's namespace", cm["metadata"]["namespace"] == "gpu-operator")
    check("devicePlugin.config wired to the ConfigMap and its key",
          values["devicePlugin"]["config"] == {"name": cm["metadata"]["name"], "default": "any"})
    cfg = sharing_config(cm["data"]["any"])
    ts = cfg["sharing"]["timeSlicing"]
    check("time-slicing: 8 replicas of nvidia.com/gpu, renamed", ts["resources"] == [
        {"name": "nvidia.com/gpu", "replicas": 8}] and ts["renameByDefault"] is True)
    check("time-slicing: no MPS beside it", "mps" not in cfg["sharing"])

    nim = one("nim-service.yaml", "NIMService")
    check("NIMService runs with the RuntimeClass", nim["spec"]["runtimeClassName"] == "nvidia-gpu")
    check("NIMService asks for 2 nvidia.com/gpu.shared (renameByDefault advertises that name), and the CPU and "
          "memory of nim_service.resources (the unset CPU limit left out)",
          nim["spec"]["resources"] == {"limits": {"nvidia.com/gpu.shared": 2, "memory": "48Gi"},
                                       "requests": {"cpu": "8", "memory": "24Gi"}})
    check("NIMService env: nim_service.env in order, values as strings (the operator adds its own before them)",
          nim["spec"]["env"] == [{"name": "LOG_LEVEL", "value": "DEBUG"},
                                 {"name": "NIM_MAX_MODEL_LEN", "value": "8192"}])
    check("NIMService runs as nim_service.security_context's user and group (the operator's userID, groupID)",
          nim["spec"]["userID"] == 1001 and nim["spec"]["groupID"] == 1002)
    check("NIMService in its namespace", nim["metadata"]["namespace"] == "nim")
    pvc = nim["spec"]["storage"]["pvc"]
    check("NIMService cache: ReadWriteMany in the named class (KEDA may place replicas on several nodes)",
          pvc.get("storageClass") == "fast" and pvc["volumeAccessMode"] == "ReadWriteMany")

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
    check("ScaledObject: metricType Value on avg() (proportional; the HPA table is test_cluster_meaning.py)",
          trig["metricType"] == "Value" and trig["metadata"]["query"].startswith("avg("))
    check("ScaledObject threshold 60, at least one replica",
          trig["metadata"]["threshold"] == "60" and so["spec"]["minReplicaCount"] == 1)
    check("ScaledObject polls no faster than dcgm-exporter collects (30 s)", so["spec"]["pollingInterval"] == 30)

    ks = yaml.safe_load((folder / "kubespray-containerd-runtimes.yml").read_text())
    rt = ks["containerd_additional_runtimes"][0]
    check("Kubespray runtime named as in containerd, BinaryName plain (Kubespray quotes it)",
          rt["name"] == "nvidia-gpu" and rt["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime")
    check("Kubespray SystemdCgroup follows containerd_use_systemd_cgroup",
          "containerd_use_systemd_cgroup" in rt["options"]["SystemdCgroup"])
    check("Kubespray enable_cdi with nvidia_runtime.cdi", ks.get("enable_cdi") is True)

    labels = docs("node-labels.yaml")
    check("node labels for each GPU node, both labels",
          [d["metadata"]["name"] for d in labels] == ["gpu-a", "gpu-b.k8s"]
          and all(d["metadata"]["labels"] == {"nvidia.com/gpu.present": "true", "nvidia.com/gpu": "true"}
                  for d in labels))
    smoke_job("nvidia-gpu", "nvidia.com/gpu.shared")
elif variant == "mps":
    values = operator_values()
    cm = one("device-plugin-config.yaml", "ConfigMap")
    cfg = sharing_config(cm["data"]["any"])
    check("MPS: 3 replicas of nvidia.com/gpu, no time-slicing",
          cfg["sharing"]["mps"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 3}]
          and "timeSlicing" not in cfg["sharing"])
    check("devicePlugin.config wired to the MPS ConfigMap",
          values["devicePlugin"]["config"]["name"] == cm["metadata"]["name"])
    dep = one("nim-service.yaml", "Deployment")
    pod = dep["spec"]["template"]["spec"]
    check("Deployment pods run with the RuntimeClass", pod["runtimeClassName"] == "nvidia")
    check("Deployment asks for 1 GPU", pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1)
    check("Deployment: the default CPU and memory (4 CPUs and 16Gi asked, 32Gi at most, no CPU limit)",
          pod["containers"][0]["resources"] == {"requests": {"cpu": "4", "memory": "16Gi"},
                                                "limits": {"memory": "32Gi", "nvidia.com/gpu": 1}})
    check("Deployment env: NGC_API_KEY from the secret, then nim_service.env",
          [e["name"] for e in pod["containers"][0]["env"]] == ["NGC_API_KEY", "LOG_LEVEL"]
          and pod["containers"][0]["env"][1]["value"] == "INFO")
    check("Deployment pods: non-root user 1000, group 1000, fsGroup 1000, RuntimeDefault seccomp",
          pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                     "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
    check("Deployment container: no privilege escalation, every capability dropped",
          pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False,
                                                      "capabilities": {"drop": ["ALL"]}})
    check("Deployment: one cache per replica (emptyDir)", "emptyDir" in pod["volumes"][0])
    svc = one("nim-service.yaml", "Service")
    check("Service selects the Deployment's pods",
          svc["spec"]["selector"] == dep["spec"]["template"]["metadata"]["labels"])
    sec = one("gpu-metrics-scrape-config.yaml", "Secret")
    key, text = next(iter(sec["stringData"].items()))
    scrape = yaml.safe_load(text)[0]
    check("scrape config every 30s (the seed's 1s is refused), dcgm-exporter kept",
          scrape["scrape_interval"] == "30s"
          and scrape["relabel_configs"][0]["regex"] == "nvidia-dcgm-exporter")
    kps = yaml.safe_load((folder / "kube-prometheus-stack-values.yaml").read_text())
    check("kube-prometheus-stack values name the Secret and its key",
          kps["prometheus"]["prometheusSpec"]["additionalScrapeConfigsSecret"]
          == {"enabled": True, "name": sec["metadata"]["name"], "key": key})
    check("no ServiceMonitor in scrape_config mode", not (folder / "gpu-metrics-servicemonitor.yaml").exists())
    check("no NIM Operator values when it is off", not (folder / "nim-operator-values.yaml").exists())
elif variant == "device_plugin":
    check("no GPU Operator values when it is off", not (folder / "gpu-operator-values.yaml").exists())
    rc = one("runtimeclass.yaml", "RuntimeClass")
    check("our RuntimeClass while the operator is off: handler = runtime name, GPU nodes only",
          rc["metadata"]["name"] == "nvidia" and rc["handler"] == "nvidia"
          and rc["scheduling"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"})
    dp = yaml.safe_load((folder / "device-plugin-values.yaml").read_text())
    check("device plugin chart runs with the RuntimeClass", dp["runtimeClassName"] == rc["metadata"]["name"])
    labels = docs("node-labels.yaml")
    check("device plugin chart selects the GPU nodes, which carry that label",
          dp["nodeSelector"] == rc["scheduling"]["nodeSelector"]
          and all(dp["nodeSelector"].items() <= d["metadata"]["labels"].items() for d in labels) and labels)
    conf = dp["config"]
    check("device plugin chart: config.default names an entry of config.map",
          conf["default"] in conf["map"] and "name" not in conf)
    cfg = sharing_config(conf["map"][conf["default"]])
    check("device plugin chart: MPS 4 replicas of nvidia.com/gpu",
          cfg["sharing"]["mps"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}])
    check("device plugin chart: GFD on, which labels nvidia.com/mps.capable for the MPS daemon",
          dp["gfd"]["enabled"] is True)
    dep = one("nim-service.yaml", "Deployment")
    check("NIM Deployment asks for nvidia.com/gpu, which the chart advertises, and nothing else (quantities \"\")",
          dep["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}})
    ks = yaml.safe_load((folder / "kubespray-containerd-runtimes.yml").read_text())
    check("Kubespray: no enable_cdi without CDI", "enable_cdi" not in ks)
    smoke_job("nvidia", "nvidia.com/gpu")
else:
    sys.exit(f"unknown variant {variant}")

sys.exit(tally.finish())
