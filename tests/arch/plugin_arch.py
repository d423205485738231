"""The action plugins' choice of executable by the node's architecture, through real ansible-playbook.

usage: plugin_arch.py ANSIBLE_PLAYBOOK ANSIBLE_GALAXY ROOT SHARED

Nodes (all reached by Ansible's local connection, which pipelines, so the one-round-trip path is what runs):
* aarch64: ROOT, an arm64 Debian root file system, entered through a shell executable that chroots into it;
  every program there (sh, uname, sha256sum, the module) is Debian's arm64 build run by qemu-user (binfmt).
  SHARED is bind-mounted at the same path inside ROOT, so the controller's uploads (remote tmp) and the module
  cache are one folder for both sides;
* x86_64: this machine itself;
* i686: this machine under `setarch i686` (a real kernel personality: `uname -m` says i686), an architecture
  the modules are not built for.
Each case runs one containerd_runtime task on a fresh copy of the node's containerd config (not in check mode:
check mode never writes the module cache, and the cache is what is checked here), logs with -vvv, and checks the result, which executable ran (by the sha256 that names the cached file, or by
the file the plain protocol uploaded) and the remote steps. Prints "N passed, N failed, N skipped" (tests/pylib).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "pylib"))
from checks import Tally  # noqa: E402

# The cases build on each other (one module cache): --only NAME runs those up to the first that matches.
tally = Tally("plugin on real architectures", chained=True)  # takes --only out of sys.argv
PLAYBOOK, GALAXY, ROOT, SHARED = sys.argv[1:5]
MODULE = "containerd_runtime"
# A runtime of its own, in a copy of the root's config that each run starts afresh (the stage's direct runs have
# already registered `nvidia` in config.toml itself).
CONFIG = "/etc/containerd/config.toml"
ARGS = {"path": "/etc/containerd/gpunode-arch.toml", "name": "gpunode-arch",
        "binary_path": "/usr/bin/nvidia-container-runtime"}

def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def shell(name, body):
    """A shell executable for Ansible (`ansible_shell_executable`): runs `sh -c CMD` the way `body` says."""
    path = os.path.join(SHARED, name)
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\n{body} "$@"\n')
    os.chmod(path, 0o755)
    return path


NODES = {
    "aarch64": {"ansible_shell_executable": shell("aarch64-sh", f"exec chroot {ROOT} /bin/sh")},
    "x86_64": {},
    "i686": {"ansible_shell_executable": shell("i686-sh", "exec setarch i686 /bin/sh")},
}


def run(node, library=None, collections=None, module=MODULE, extra_vars=None, args=None):
    """One task on one node; returns (result, EXEC count, PUT count, -vvv text of the task)."""
    top = tempfile.mkdtemp(dir=SHARED)
    if node == "aarch64":
        shutil.copy(ROOT + CONFIG, ROOT + ARGS["path"])
    result_file = os.path.join(top, "result.json")
    host_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "ansible_remote_tmp": os.path.join(SHARED, "tmp"),
                 "gpunode_module_cache_dir": os.path.join(SHARED, "cache")}
    host_vars.update(NODES[node])
    host_vars.update(extra_vars or {})
    inventory = {"all": {"hosts": {"node": host_vars}}}
    play = [{
        "hosts": "node", "gather_facts": False,
        "tasks": [
            {"name": "module", module: args or ARGS, "register": "r", "ignore_errors": True},
            # The result is saved by the controller itself: the aarch64 root has no Python.
            {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": result_file},
             "delegate_to": "localhost", "check_mode": False},
        ],
    }]
    for name, data in (("inventory.json", inventory), ("play.yml", play)):
        with open(os.path.join(top, name), "w") as f:
            json.dump(data, f)  # JSON is YAML
    with open(os.path.join(top, "empty.cfg"), "w") as f:
        f.write("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(top, "empty.cfg"), ANSIBLE_NOCOLOR="1")
    if library:
        env.update(ANSIBLE_LIBRARY=library, ANSIBLE_ACTION_PLUGINS=os.path.join(REPO, "plugins/action"))
    if collections:
        env.update(ANSIBLE_COLLECTIONS_PATH=collections)
    cmd = [PLAYBOOK, "-i", os.path.join(top, "inventory.json"), "-vvv", os.path.join(top, "play.yml")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    m = re.search(r"TASK \[module\].*?(?=TASK \[save\])", text, re.S)
    if out.returncode != 0 or not m or not os.path.exists(result_file):
        print(text[-4000:])
        raise SystemExit(f"ansible-playbook failed (rc {out.returncode})")
    section = m.group(0)
    with open(result_file) as f:
        result = json.load(f)
    shutil.rmtree(top)
    return result, len(re.findall(r"^<node> EXEC ", section, re.M)), len(re.findall(r"^<node> PUT ", section, re.M)), section


def cached(digest):
    return os.path.exists(os.path.join(SHARED, "cache", f"{MODULE}-{digest}"))


def main():
    library = os.path.join(REPO, "library")
    x86 = sha256(os.path.join(library, MODULE))
    arm = sha256(os.path.join(library, ".aarch64", MODULE))

    def ok_result(r):
        return not r.get("failed") and r.get("changed") is True and f"runtime {ARGS['name']} " in r.get("msg", "")

    if not tally.case("an aarch64 node: the aarch64 executable, installed into the cache, then one round trip"):
        return tally.finish()
    r, execs, puts, _ = run("aarch64", library)
    tally.check(f"the module ran on the aarch64 root and made the change ({r.get('msg', 'ok')})", ok_result(r))
    tally.check("uploaded once; the cache holds the aarch64 executable's sha256",
                puts == 1 and cached(arm) and not cached(x86))
    r, execs, puts, _ = run("aarch64", library)
    tally.check(f"warm: one remote command, no upload ({execs} EXEC, {puts} PUT)",
                ok_result(r) and execs == 1 and puts == 0)

    if not tally.case("an x86_64 node sharing the same cache folder (a home shared by both architectures)"):
        return tally.finish()
    # This machine has no containerd: the x86-64 run plans on a small config of its own.
    config = os.path.join(SHARED, "x86-config.toml")
    with open(config, "w") as f:
        f.write("version = 2\n")
    r, execs, puts, _ = run("x86_64", library, args=dict(ARGS, path=config))
    tally.check("the x86-64 executable wrote its config", not r.get("failed") and r.get("changed") is True)
    tally.check("the x86-64 executable ran and was cached", not r.get("failed") and cached(x86))
    tally.check("the aarch64 executable stayed in the cache beside it", cached(arm))
    r, execs, puts, _ = run("aarch64", library)
    tally.check("the aarch64 node still hits in one round trip", ok_result(r) and execs == 1 and puts == 0)

    if not tally.case("the plain protocol on the aarch64 node (gpunode_module_cache: false)"):
        return tally.finish()
    r, execs, puts, text = run("aarch64", library, extra_vars={"gpunode_module_cache": False})
    used = re.findall(r"Using module file (\S+)", text)
    tally.check("the module ran", ok_result(r))
    tally.check(f"Ansible uploaded the aarch64 executable ({used})",
                used and used[-1].endswith(f"/.aarch64/{MODULE}"))

    if not tally.case("an architecture the modules are not built for"):
        return tally.finish()
    r, execs, puts, _ = run("i686", library)
    tally.check(f"fails before any upload, naming it: {r.get('msg')}",
                r.get("failed") and "architecture is i686" in r.get("msg", "") and puts == 0)
    r, _, puts, _ = run("i686", library, extra_vars={"gpunode_module_cache": False})
    tally.check("the plain protocol fails the same way",
                r.get("failed") and "architecture is i686" in r.get("msg", "") and puts == 0)

    if not tally.case("an aarch64 node with no aarch64 executable built"):
        return tally.finish()
    x86_only = os.path.join(SHARED, "x86-only")
    os.makedirs(x86_only)
    shutil.copy(os.path.join(library, MODULE), x86_only)
    r, _, puts, _ = run("aarch64", x86_only)
    tally.check(f"fails telling how to build it: {r.get('msg')}",
                r.get("failed") and "scripts/build-modules --arch aarch64" in r.get("msg", "") and puts == 0)

    if not tally.case("the collection carries both architectures"):
        return tally.finish()
    dist = os.path.join(SHARED, "dist")
    env = dict(os.environ, PATH=f"{os.path.dirname(GALAXY)}:{os.environ['PATH']}")
    tarball = subprocess.run([os.path.join(REPO, "scripts/build-collection"), dist], env=env, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    listing = subprocess.run(["tar", "-tzf", tarball], capture_output=True, text=True, check=True).stdout.split()
    for m in ("containerd_runtime", "nvidia_toolkit", "gpu_validate"):
        tally.check(f"{os.path.basename(tarball)} has plugins/modules/{m} and plugins/modules/.aarch64/{m}",
                    f"plugins/modules/{m}" in listing and f"plugins/modules/.aarch64/{m}" in listing)
    collections = os.path.join(SHARED, "collections")
    # --no-deps: its dependency (kubernetes.core) plays no part here and would need Galaxy.
    subprocess.run([GALAXY, "collection", "install", "--no-deps", "-p", collections, tarball], env=env, check=True,
                   capture_output=True)
    installed = os.path.join(collections, "ansible_collections/gpunode/nvidia/plugins/modules")
    tally.check("installed intact (same sha256)", sha256(os.path.join(installed, ".aarch64", MODULE)) == arm)
    shutil.rmtree(os.path.join(SHARED, "cache"))
    r, _, puts, _ = run("aarch64", collections=collections, module=f"gpunode.nvidia.{MODULE}")
    tally.check("gpunode.nvidia.containerd_runtime on the aarch64 node ran the aarch64 executable",
                ok_result(r) and cached(arm) and not cached(x86))

    print()
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())
