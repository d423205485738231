"""Checks the workloads in examples/: yamllint, Kubernetes' schemas (kubernetes-validate, strict) and what the schemas
cannot see: the RuntimeClass the gpu_cluster role creates, a GPU limit, a CUDA image tag that exists in NVIDIA's
scheme, a restrictive security context, and for NIM the secrets, the probes and a Service that selects the pods.

usage: python check_examples.py KUBERNETES_VERSION...      (run from the repository root)
Prints one line per check and exits non-zero when one fails.
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pylib"))
from checks import Tally  # noqa: E402

EXAMPLES = Path("examples")
tally = Tally("examples")
check = tally.check


def objects(name):
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def pod_spec(obj):
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def runtime_class_default():
    """The RuntimeClass name user_input.yml defaults to (the role renders it with handler nvidia)."""
    spec = yaml.safe_load(Path("roles/user_input/files/user_input_spec.yml").read_text())
    return spec["kubernetes_deployment"]["options"]["nvidia_runtime"]["options"]["runtime_class_name"]["default"]


def restrictive(name, spec):
    pod_sc = spec.get("securityContext", {})
    check(f"{name}: runs as a non-root user (runAsNonRoot with a numeric runAsUser), RuntimeDefault seccomp",
          pod_sc.get("runAsNonRoot") is True and isinstance(pod_sc.get("runAsUser"), int)
          and pod_sc["runAsUser"] > 0 and pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        check(f"{name}/{c['name']}: no privilege escalation, no privilege, every capability dropped",
              sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged", False)
              and sc.get("capabilities", {}).get("drop") == ["ALL"])


def gpu_pod(runtime_class):
    docs = objects("gpu-test-pod.yaml")
    check("gpu-test-pod.yaml holds one Pod", [d["kind"] for d in docs] == ["Pod"])
    spec = pod_spec(docs[0])
    c = spec["containers"][0]
    check(f"gpu-test-pod: runtimeClassName {runtime_class}", spec.get("runtimeClassName") == runtime_class)
    check("gpu-test-pod: one nvidia.com/gpu in its limits", c["resources"]["limits"] == {"nvidia.com/gpu": 1})
    # NVIDIA's CUDA tags name the full version and the OS: 12.6.3-base-ubuntu24.04 ("11.8-base" never existed).
    m = re.fullmatch(r"nvcr\.io/nvidia/cuda:(\d+)\.(\d+)\.(\d+)-base-(ubuntu\d\d\.04|ubi\d+|rockylinux\d+)",
                     c["image"])
    check(f"gpu-test-pod: a CUDA base image with a full tag ({c['image']})", m is not None)
    check("gpu-test-pod: CUDA 12 or newer (11.x images are out of NVIDIA's support)",
          m is not None and int(m.group(1)) >= 12)
    check("gpu-test-pod: runs nvidia-smi once, no restart",
          c["command"][0] == "nvidia-smi" and spec["restartPolicy"] == "Never")
    restrictive("gpu-test-pod", spec)


def nim(runtime_class):
    docs = objects("nim-deployment.yaml")
    check("nim-deployment.yaml holds a Deployment and a Service",
          [d["kind"] for d in docs] == ["Deployment", "Service"])
    dep, svc = docs
    spec = pod_spec(dep)
    c = spec["containers"][0]
    check(f"nim: runtimeClassName {runtime_class}", spec.get("runtimeClassName") == runtime_class)
    check("nim: one nvidia.com/gpu, and cpu and memory requests", c["resources"]["limits"].get("nvidia.com/gpu") == 1
          and {"cpu", "memory"} <= set(c["resources"].get("requests", {})))
    check("nim: an image from NGC's NIM registry, with a tag", re.fullmatch(r"nvcr\.io/nim/.+:[\w.-]+", c["image"]))
    check("nim: nvcr.io pull secret", [s["name"] for s in spec.get("imagePullSecrets", [])] == ["ngc-secret"])
    env = {e["name"]: e for e in c.get("env", [])}
    check("nim: NGC_API_KEY from a Secret, not inline",
          "valueFrom" in env.get("NGC_API_KEY", {}) and "value" not in env.get("NGC_API_KEY", {}))
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    check("nim: the model cache mounted where NIM_CACHE_PATH points",
          env.get("NIM_CACHE_PATH", {}).get("value") in mounts)
    check("nim: /dev/shm from a memory-backed volume",
          volumes.get(mounts.get("/dev/shm"), {}).get("emptyDir", {}).get("medium") == "Memory")
    check("nim: readiness on NIM's /v1/health/ready, started before liveness counts",
          c["readinessProbe"]["httpGet"]["path"] == "/v1/health/ready" and "startupProbe" in c)
    restrictive("nim", spec)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check("nim: the Deployment selects its own pods",
          dep["spec"]["selector"]["matchLabels"].items() <= labels.items())
    ports = {p["name"] for p in c["ports"]}
    check("nim: the Service selects the pods, in their namespace, on the container's named port",
          svc["spec"]["selector"].items() <= labels.items()
          and svc["metadata"]["namespace"] == dep["metadata"]["namespace"]
          and all(p["targetPort"] in ports for p in svc["spec"]["ports"]))


def schemas(versions):
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    for v in versions:
        r = subprocess.run(["kubernetes-validate", "--strict", "-k", v, *files], capture_output=True, text=True)
        print(r.stdout + r.stderr, end="")
        n = sum(len(objects(Path(f).name)) for f in files)
        passed = (r.stdout + r.stderr).count(" passed for resource ")
        check(f"Kubernetes {v} schemas, strict: {passed} of {n} objects pass", r.returncode == 0 and passed == n)


def lint():
    r = subprocess.run(["yamllint", "-s", str(EXAMPLES)], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    check("yamllint (the project's .yamllint), strict", r.returncode == 0)


def schema_rejects(version):
    """The validator must reject a misspelt field (runtimeClass for runtimeClassName), or its passes mean nothing."""
    pod = objects("gpu-test-pod.yaml")[0]
    pod["spec"]["runtimeClass"] = pod["spec"].pop("runtimeClassName")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(pod, f)
        f.flush()
        r = subprocess.run(["kubernetes-validate", "--strict", "-k", version, f.name], capture_output=True, text=True)
    # Rejected for that field, not for a broken validator.
    check("the strict schema check rejects the test pod with runtimeClass misspelt",
          r.returncode != 0 and "'runtimeClass' was unexpected" in r.stdout + r.stderr)


def referenced():
    readme = Path("README.md").read_text()
    guide = Path("docs/troubleshooting.md").read_text()
    for p in sorted(EXAMPLES.glob("*.yaml")):
        check(f"README.md and docs/troubleshooting.md point to {p}", str(p) in readme and str(p) in guide)


rc = runtime_class_default()
gpu_pod(rc)
nim(rc)
lint()
schemas(sys.argv[1:] or ["1.37.0"])
schema_rejects((sys.argv[1:] or ["1.37.0"])[0])
referenced()
sys.exit(tally.finish())
