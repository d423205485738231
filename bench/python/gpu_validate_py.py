#!/usr/bin/python
"""The Python equivalent of gpu_validate's read-only checks on a sysroot: NVIDIA devices on the PCI bus, their
driver, the driver version, the device nodes, the runtime in containerd's config. For bench/run."""
import glob
import os

from ansible.module_utils.basic import AnsibleModule


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sysroot=dict(type="path", default="/"),
            # gpu_validate's names and aliases (modules/gpu_validate/gpu_validate.yml), so a task runs either.
            name=dict(type="str", default="nvidia", aliases=["runtime_name"]),
            path=dict(type="path", default="/etc/containerd/config.toml", aliases=["containerd_config"]),
        ),
        supports_check_mode=True,
    )
    root = module.params["sysroot"]
    gpus = []
    for dev in sorted(glob.glob(os.path.join(root, "sys/bus/pci/devices/*"))):
        if read(os.path.join(dev, "vendor")) == "0x10de" and (read(os.path.join(dev, "class")) or "").startswith("0x03"):
            driver = os.path.basename(os.readlink(os.path.join(dev, "driver"))) if os.path.islink(
                os.path.join(dev, "driver")) else None
            gpus.append({"address": os.path.basename(dev), "driver": driver})
    version = read(os.path.join(root, "proc/driver/nvidia/version")) or ""
    nodes = [n for n in ("nvidiactl", "nvidia-uvm", "nvidia0") if os.path.exists(os.path.join(root, "dev", n))]
    config = read(os.path.join(root, module.params["path"].lstrip("/"))) or ""
    runtime = ('runtimes.%s]' % module.params["name"]) in config or \
        ('runtimes."%s"]' % module.params["name"]) in config
    module.exit_json(changed=False, gpus=gpus, driver=version.splitlines()[0] if version else None,
                     device_nodes=nodes, runtime_configured=runtime)


if __name__ == "__main__":
    main()
