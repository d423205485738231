#!/usr/bin/python
"""The Python equivalent of containerd_runtime's idempotent path, written the way a Python Ansible module would
do it: AnsibleModule, tomlkit (keeps comments), compare, write atomically only on change. Config version 2
(containerd 1.6/1.7) and 3 (2.x). Used by bench/run only, as the baseline the binary module is compared with."""
import os
import tempfile

import tomlkit
from ansible.module_utils.basic import AnsibleModule


def runtimes_table(doc):
    """The runtimes table for the config's version (created when missing)."""
    version = int(doc.get("version", 1))
    if version >= 3:
        path = ["plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes"]
    else:
        path = ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes"]
    table = doc
    for key in path:
        if key not in table:
            table[key] = tomlkit.table()
        table = table[key]
    return table


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/containerd/config.toml"),
            name=dict(type="str", default="nvidia"),
            binary_path=dict(type="str", default="/usr/bin/nvidia-container-runtime"),
            runtime_type=dict(type="str", default="io.containerd.runc.v2"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    with open(p["path"]) as f:
        text = f.read()
    doc = tomlkit.parse(text)
    runtimes = runtimes_table(doc)
    want = {"runtime_type": p["runtime_type"], "options": {"BinaryName": p["binary_path"]}}
    have = runtimes.get(p["name"])
    changed = have is None or have.get("runtime_type") != want["runtime_type"] or \
        (have.get("options") or {}).get("BinaryName") != p["binary_path"]
    if changed:
        entry = tomlkit.table()
        entry["runtime_type"] = want["runtime_type"]
        options = tomlkit.table()
        options["BinaryName"] = p["binary_path"]
        options["SystemdCgroup"] = True
        entry["options"] = options
        runtimes[p["name"]] = entry
        if not module.check_mode:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(p["path"]))
            with os.fdopen(fd, "w") as f:
                f.write(tomlkit.dumps(doc))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p["path"])
    module.exit_json(changed=changed, path=p["path"], runtime=p["name"])


if __name__ == "__main__":
    main()
