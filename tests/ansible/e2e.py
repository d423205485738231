#!/usr/bin/env python3
"""Our binary modules through real Ansible: `ansible-playbook`, `ansible -m` and `ansible-doc`.

Run with the Python of a venv that holds ansible-core (its `ansible*` commands sit beside it):
    python e2e.py PROBE_LIBRARY_DIR
PROBE_LIBRARY_DIR holds the test-only `gpunode_probe` module; the three real modules come from the
project's `library/` (scripts/build-modules). Prints each check and "N passed, N failed, N skipped" (tests/pylib);
exit 1 on failure.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import ansible
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
MODULES = ["containerd_runtime", "nvidia_toolkit", "gpu_validate"]
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from checks import Tally  # noqa: E402

tally = Tally("ansible-core %s" % ansible.__version__)
check = tally.check


def run(cmd, env, cwd):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def adhoc_result(output):
    """The result an ad-hoc run prints with the minimal callback: `localhost | CHANGED => {...}`."""
    m = re.search(r"^localhost \| ([A-Z!]+) => (\{.*?^\})", output, re.S | re.M)
    if not m:
        return None, {}
    return m.group(1), json.loads(m.group(2))


def main():
    probe_lib = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="ansible-e2e-")
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_LIBRARY": "%s:%s" % (probe_lib, os.path.join(ROOT, "library")),
        "ANSIBLE_LOCAL_TEMP": os.path.join(work, "local-tmp"),
        "ANSIBLE_REMOTE_TMP": os.path.join(work, "remote-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
    })
    base = ["-i", "localhost,", "-c", "local"]
    print("ansible-core %s" % ansible.__version__)

    # The playbook: every contract point asserted from Ansible's side; -vvv shows every result in full.
    rc, out = run([os.path.join(BIN, "ansible-playbook"), *base, "-vvv", os.path.join(HERE, "probe.yml"),
                   "-e", "workdir=%s" % work], env, work)
    recap = re.search(r"localhost\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    check("playbook: every assertion holds (rc 0, failed=0)", rc == 0 and recap is not None and recap.group(4) == "0",
          "rc %d\n%s" % (rc, "\n".join(line for line in out.splitlines() if "FAILED" in line or "Assertion" in line or "msg" in line)[-4000:]))
    check("playbook: ignored failures are the 8 expected ones",
          re.search(r"ignored=8\b", out) is not None, (recap.group(0) if recap else out[-2000:]))
    check("playbook: no secret appears anywhere in the -vvv output",
          "Sup3rS3cret" not in out and "TaskS3cret" not in out,
          "\n".join(line for line in out.splitlines() if "S3cret" in line))
    check("playbook: warnings are shown", "probe warning one" in out and "probe warning two" in out,
          out[-2000:])
    check("playbook: the diff is shown", re.search(r"\+\+\+ after: .*/probe.txt \(after\)", out) is not None,
          out[-2000:])

    # Ad-hoc runs: `ansible -m`.
    target = os.path.join(work, "adhoc.txt")
    adhoc = [os.path.join(BIN, "ansible"), "localhost", *base]
    rc, out = run(adhoc + ["-m", "gpunode_probe", "-a", "path=%s content=adhoc" % target], env, work)
    status, res = adhoc_result(out)
    check("ansible -m: writes (CHANGED, rc 0)", rc == 0 and status == "CHANGED" and res.get("changed") is True
          and open(target).read() == "adhoc", out)
    rc, out = run(adhoc + ["-m", "gpunode_probe", "-a", "path=%s content=other" % target, "--check", "--diff"],
                  env, work)
    status, res = adhoc_result(out)
    check("ansible -m --check --diff: predicts, shows the diff, writes nothing",
          rc == 0 and status == "CHANGED" and res.get("check_mode") is True and "+other" in out
          and open(target).read() == "adhoc", out)
    rc, out = run(adhoc + ["-m", "gpunode_probe", "-a", "path=%s content=adhoc" % target], env, work)
    status, res = adhoc_result(out)
    check("ansible -m: idempotent (SUCCESS, changed false)", rc == 0 and status == "SUCCESS"
          and res.get("changed") is False, out)
    rc, out = run(adhoc + ["-m", "gpunode_probe", "-a", "fail=yes"], env, work)
    status, res = adhoc_result(out)
    check("ansible -m: a failure exits non-zero with the module's message",
          rc == 2 and status == "FAILED!" and res.get("msg") == "gpunode_probe was asked to fail", out)
    rc, out = run(adhoc + ["-m", "gpunode_probe", "-a", "secret=AdH0cS3cret echo=AdH0cS3cret", "-vvv"], env, work)
    check("ansible -m -vvv: the secret is masked", rc == 0 and "AdH0cS3cret" not in out
          and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out, out)

    for mod in MODULES:
        rc, out = run(adhoc + ["-m", mod, "-a", "bogus=1 zzz=2", "--check"], env, work)
        status, res = adhoc_result(out)
        msg = res.get("msg", "")
        check("ansible -m %s bogus=1: Ansible's unsupported-parameters message" % mod,
              rc == 2 and status == "FAILED!" and msg.startswith(
                  "Unsupported parameters for (%s) module: bogus, zzz. Supported parameters include: " % mod)
              and msg.endswith("."), out)

    # ansible-doc reads each sidecar.
    for mod in MODULES:
        with open(os.path.join(ROOT, "library", mod + ".yml")) as fh:
            doc = yaml.safe_load(fh)
        short = (doc.get("DOCUMENTATION") or {}).get("short_description", "")
        rc, out = run([os.path.join(BIN, "ansible-doc"), "-M", os.path.join(ROOT, "library"), mod], env, ROOT)
        rcj, outj = run([os.path.join(BIN, "ansible-doc"), "-j", "-M", os.path.join(ROOT, "library"), mod], env, ROOT)
        try:
            shown = json.loads(outj)[mod]
        except (ValueError, KeyError):
            shown = {}
        check("ansible-doc -M library %s: shown without error, from the sidecar" % mod,
              rc == 0 and rcj == 0 and mod in out.lower() and "ERROR" not in out and "WARNING" not in out
              and bool(short) and shown.get("doc", {}).get("short_description") == short
              and bool(shown.get("examples")) and "return" in shown,
              "rc %d / %d\n%s\n%s" % (rc, rcj, out[-2000:], outj[-1000:]))

    sys.exit(tally.finish())


if __name__ == "__main__":
    main()
