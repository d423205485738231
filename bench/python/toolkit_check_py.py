#!/usr/bin/python
"""The Python equivalent of nvidia_toolkit's idempotent check: are the toolkit's packages installed at one
version, is the repository's list file and keyring there (dpkg-query, as Python roles do it). For bench/run."""
import os

from ansible.module_utils.basic import AnsibleModule

PACKAGES = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
            "libnvidia-container1"]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=PACKAGES),
            list_file=dict(type="path", default="/etc/apt/sources.list.d/nvidia-container-toolkit.list"),
            keyring=dict(type="path", default="/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    rc, out, _ = module.run_command(["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Status}\\n"]
                                    + p["packages"])
    installed = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "installed":
            installed[parts[0]] = parts[1]
    missing = [name for name in p["packages"] if name not in installed]
    versions = sorted(set(installed.values()))
    repo_ok = os.path.exists(p["list_file"]) and os.path.exists(p["keyring"])
    module.exit_json(changed=bool(missing) or not repo_ok or len(versions) > 1, missing=missing,
                     versions=versions, repository=repo_ok)


if __name__ == "__main__":
    main()
