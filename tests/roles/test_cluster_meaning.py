"""Tests of what the rendered cluster objects mean, beyond their schema (run by tests/roles/run).

- KEDA: the ScaledObject's trigger, run through the HPA's replica formulas for external metrics (kubernetes
  pkg/controller/podautoscaler/replica_calculator.go: Value targets give ceil(replicas * metric / target),
  AverageValue targets ceil(metric / target); within 10 % of the target nothing changes), must reach
  maxReplicaCount under full load and scale down under light load. The previous rendering (AverageValue over
  an average) is checked to fail the same table, so the table can tell the two apart.
- Kubespray: the emitted variables, rendered by real Ansible through templates that follow Kubespray's quoting
  rule (kubespray_render.yml), must parse as TOML and be accepted by real containerd 1.7 (config version 2) and
  2.1 (version 3), whose `config dump` must show the NVIDIA runtime with the cluster's cgroup driver and CDI.
  The previous variables (pre-quoted strings) are checked to fail the parse.

Environment: RENDERED (a folder rendered from tests/roles/inputs/everything_timeslicing.yml), KUBESPRAY_TOML (the
folder kubespray_render.yml wrote), CONTAINERD_1_7 and CONTAINERD_2_1 (unpacked Debian packages, from
tests/containerd/fetch). Usage: python -m unittest -v test_cluster_meaning
"""
import math
import os
import subprocess
import tomllib
import unittest
from pathlib import Path

import yaml

TOLERANCE = 0.1  # the HPA's default --horizontal-pod-autoscaler-tolerance


def hpa_desired(metric_type, target, current, metric, min_replicas, max_replicas):
    """Desired replicas of an HPA with one external metric, clamped to the bounds."""
    if metric_type == "Value":
        ratio = metric / target
        desired = current if abs(ratio - 1) <= TOLERANCE else math.ceil(ratio * current)
    elif metric_type == "AverageValue":
        ratio = metric / (target * current)
        desired = current if abs(ratio - 1) <= TOLERANCE else math.ceil(metric / target)
    else:
        raise ValueError(metric_type)
    return max(min_replicas, min(max_replicas, desired))


def query_value(query, replicas, gpus_per_pod, utilisation):
    """What the trigger's PromQL returns when every GPU of every replica is at `utilisation` percent."""
    series = [utilisation] * (replicas * gpus_per_pod)
    if query.startswith("avg("):
        return sum(series) / len(series)
    if query.startswith("sum("):
        return sum(series)
    raise ValueError(f"unexpected aggregation in {query}")


def desired_for(scaled_object, replicas, utilisation, gpus_per_pod=1):
    spec = scaled_object["spec"]
    trigger = spec["triggers"][0]
    metric = query_value(trigger["metadata"]["query"], replicas, gpus_per_pod, utilisation)
    return hpa_desired(trigger.get("metricType", "AverageValue"), float(trigger["metadata"]["threshold"]),
                       replicas, metric, spec["minReplicaCount"], spec["maxReplicaCount"])


def scale_until_stable(scaled_object, utilisation, start):
    """Replicas after the HPA has acted until nothing changes, the load per GPU staying the same."""
    replicas = start
    for _ in range(20):
        nxt = desired_for(scaled_object, replicas, utilisation)
        if nxt == replicas:
            return replicas
        replicas = nxt
    return replicas


# (current replicas, GPU utilisation %, desired replicas) for a 60 % target, bounds 1..4 (everything_timeslicing).
TABLE = [
    (1, 100, 2),   # ceil(1 * 100 / 60)
    (2, 100, 4),   # ceil(2 * 1.67) = 4
    (3, 100, 4),   # ceil(5) clamped to maxReplicaCount
    (4, 90, 4),    # still above the target: stays at the maximum
    (2, 63, 2),    # within 10 % of the target: no change
    (4, 30, 2),    # ceil(4 * 0.5)
    (4, 10, 1),    # ceil(0.67)
    (1, 0, 1),     # never below minReplicaCount
]


class KedaScaling(unittest.TestCase):
    def setUp(self):
        folder = Path(os.environ["RENDERED"])
        self.so = yaml.safe_load((folder / "keda-scaledobject.yaml").read_text())

    def test_table(self):
        for replicas, util, expected in TABLE:
            with self.subTest(replicas=replicas, utilisation=util):
                self.assertEqual(desired_for(self.so, replicas, util), expected)

    def test_full_load_reaches_max_replicas(self):
        self.assertEqual(scale_until_stable(self.so, 100, 1), self.so["spec"]["maxReplicaCount"])

    def test_previous_rendering_fails_the_table(self):
        old = yaml.safe_load(yaml.safe_dump(self.so))
        old["spec"]["triggers"][0]["metricType"] = "AverageValue"
        self.assertEqual(scale_until_stable(old, 100, 1), 2, "AverageValue on avg() stops at ceil(100/60) = 2")
        self.assertNotEqual([desired_for(old, r, u) for r, u, _ in TABLE], [e for _, _, e in TABLE])


def dump(containerd_root, config):
    binary = Path(containerd_root) / "root/usr/bin/containerd"
    p = subprocess.run([str(binary), "--config", str(config), "config", "dump"], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"containerd config dump rejected {config}: {p.stderr.strip()[-400:]}")
    return tomllib.loads(p.stdout)


# The variables the role emitted before (pre-quoted BinaryName, a constant SystemdCgroup), as rendered then.
PREVIOUS_VARS_OPTIONS = {"BinaryName": '"/usr/bin/nvidia-container-runtime"', "SystemdCgroup": "true"}


class KubesprayRendering(unittest.TestCase):
    folder = Path(os.environ.get("KUBESPRAY_TOML", "/nonexistent"))
    layouts = {"v2": ("CONTAINERD_1_7", "io.containerd.grpc.v1.cri"),
               "v3": ("CONTAINERD_2_1", "io.containerd.cri.v1.runtime")}

    def check(self, layout, systemd):
        env, plugin = self.layouts[layout]
        path = self.folder / f"{layout}-systemd-{str(systemd).lower()}.toml"
        tomllib.loads(path.read_text())  # valid TOML first: containerd's errors are less clear
        cri = dump(os.environ[env], path)["plugins"][plugin]
        runtime = cri["containerd"]["runtimes"]["nvidia-gpu"]
        self.assertEqual(runtime["runtime_type"], "io.containerd.runc.v2")
        self.assertEqual(runtime["options"]["BinaryName"], "/usr/bin/nvidia-container-runtime")
        self.assertIs(runtime["options"]["SystemdCgroup"], systemd, "SystemdCgroup follows the cluster's driver")
        self.assertIs(cri.get("enable_cdi"), True, "enable_cdi emitted with nvidia_runtime.cdi")

    def test_containerd_1_7_systemd(self):
        self.check("v2", True)

    def test_containerd_1_7_cgroupfs(self):
        self.check("v2", False)

    def test_containerd_2_1_systemd(self):
        self.check("v3", True)

    def test_containerd_2_1_cgroupfs(self):
        self.check("v3", False)

    def test_previous_variables_are_invalid_toml(self):
        # Kubespray's rule quotes every non-boolean value: a value carrying its own quotes doubles them.
        lines = [f'{k} = "{v}"' if v not in ("true", "false") else f"{k} = {v}"
                 for k, v in PREVIOUS_VARS_OPTIONS.items()]
        with self.assertRaises(tomllib.TOMLDecodeError):
            tomllib.loads("[options]\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
