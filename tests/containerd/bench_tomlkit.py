#!/usr/bin/env python3
"""The same comment-preserving edit in Python with tomlkit, as an Ansible module would do it (one JSON args
file in, one JSON object out): copy the base runtime, set BinaryName, write atomically. Used only as the
benchmark's point of comparison."""
import copy
import json
import os
import sys
import tempfile

import tomlkit


def main():
    args = json.load(open(sys.argv[1]))
    path, name, binary = args["path"], args.get("name", "nvidia"), args.get("binary_path", "/usr/bin/nvidia-container-runtime")
    text = open(path).read() if os.path.exists(path) else ""
    doc = tomlkit.parse(text)
    version = doc.get("version", 1 if text.strip() else 2)
    plugin = {1: "cri", 2: "io.containerd.grpc.v1.cri"}.get(version, "io.containerd.cri.v1.runtime")
    ctr = doc.setdefault("plugins", tomlkit.table()).setdefault(plugin, tomlkit.table()).setdefault(
        "containerd", tomlkit.table())
    runtimes = ctr.setdefault("runtimes", tomlkit.table())
    default = ctr.get("default_runtime_name")
    base = None
    for cand in ([default] if default and not default.startswith("nvidia") else []) + ["runc", "crun"]:
        if cand in runtimes:
            base = copy.deepcopy(runtimes[cand])
            break
    if base is None:
        base = tomlkit.table()
        base["runtime_type"] = "io.containerd.runc.v2"
    if not base.get("runtime_type"):
        base["runtime_type"] = "io.containerd.runc.v2"
    base.setdefault("options", tomlkit.table())["BinaryName"] = binary
    runtimes[name] = base
    new = tomlkit.dumps(doc)
    changed = new != text
    if changed:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as f:
            f.write(new)
        os.replace(tmp, path)
    print(json.dumps({"changed": changed}))


if __name__ == "__main__":
    main()
