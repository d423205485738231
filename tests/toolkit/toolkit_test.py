"""The nvidia_toolkit module on a real Debian node (Podman, systemd, real apt and dpkg) through ansible-playbook,
against the signed stand-in repository of tests/aptrepo: refusals before anything is written (wrong
fingerprint, expired certificate), a tampered InRelease, fresh install, an idempotent run that calls no package
tool and reads no repository, check mode, a pin change with hold, old list files, the dpkg lock (waited for,
then a clear error), latest, and absent.

usage: toolkit_test.py REPO VENV WORK NODE [--only NAME]
  REPO  the built repository (tests/aptrepo/build), mounted read-only on the node at /srv/aptrepo
  VENV  the Ansible venv (scripts/ansible-env), with containers.podman in VENV/collections
  WORK  a scratch folder; WORK/mirror is a copy of REPO/good, mounted on the node at /srv/mirror
  NODE  the running node; every package tool there logs its calls to /var/log/package-tool-calls
tests/toolkit/run makes all four. TOOLKIT_BENCH_RUNS=N repeats the timing comparison (default 1).

The cases build on each other (one node, whose packages each case leaves for the next): `--only NAME` (or
TEST_ONLY=NAME) runs the cases up to the first whose name holds NAME (tests/pylib/checks.py).
"""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from checks import Tally  # noqa: E402

tally = Tally("toolkit", chained=True)  # takes --only out of sys.argv
REPO, VENV, WORK, NODE = sys.argv[1:5]
PACKAGES = ["libnvidia-container-tools", "libnvidia-container1", "nvidia-container-toolkit",
            "nvidia-container-toolkit-base"]
KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
CALL_LOG = "/var/log/package-tool-calls"


def read(name):
    with open(os.path.join(REPO, name)) as f:
        return f.read().strip()


GOOD_FPR = read("fingerprint")
EXPIRED_FPR = read("expired-fingerprint")
# The repository's versions, oldest first: two stand-ins, then the real 1.17.0 programs when they were there.
VERSIONS = read("versions").split()
OLD, NEW, NEWEST = VERSIONS[0], VERSIONS[1], VERSIONS[-1]
REAL = read("real") if os.path.exists(os.path.join(REPO, "real")) else None


def sh(cmd):
    """A shell command on the node; its stdout, stripped."""
    return subprocess.run(["podman", "exec", NODE, "sh", "-c", cmd], capture_output=True, text=True,
                          errors="replace").stdout.strip()


def package_calls():
    return int(sh(f"wc -l <{CALL_LOG}"))


class Run:
    """One ansible-playbook run of one nvidia_toolkit task: the task's result (`r`, with `failed` from the run's
    exit status and its `[WARNING]` lines), the package tool calls it caused on the node, and its wall time."""

    def __init__(self, r, calls, wall):
        self.r, self.calls, self.wall = r, calls, wall


def converge(name, args, *options):
    """Runs nvidia_toolkit with ARGS (a dict) on the node; prints a line with its time and package tool calls."""
    play = [{"name": "nvidia_toolkit on the test node", "hosts": "nodes", "gather_facts": False,
             "tasks": [{"name": "Converge the toolkit", "nvidia_toolkit": args}]}]
    with open(os.path.join(WORK, "play.yml"), "w") as f:
        json.dump(play, f)  # JSON is YAML
    tree = os.path.join(WORK, "tree")
    subprocess.run(["rm", "-rf", tree], check=True)
    before = package_calls()
    t0 = time.monotonic()
    # The tree callback saves the task's result, failed or not, as JSON in WORK/tree/node.
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=tree)
    p = subprocess.run([os.path.join(VENV, "bin", "ansible-playbook"), "-i", os.path.join(WORK, "inventory.ini"),
                        os.path.join(WORK, "play.yml"), *options], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    log = p.stdout + p.stderr
    with open(os.path.join(WORK, name + ".log"), "w") as f:
        f.write(log)
    if not os.path.exists(os.path.join(tree, "node")):
        print(log)
        sys.exit(f"{name}: no result saved")
    with open(os.path.join(tree, "node")) as f:
        r = json.load(f)
    # The tree callback keeps the module's keys; whether the task failed and its warnings come from the run.
    r["failed"] = p.returncode != 0
    r["warnings"] = re.findall(r"^\[WARNING\]: (.*)$", log, re.M)
    calls = package_calls() - before
    print(f"   {name}: playbook {wall:.2f} s, module {r.get('elapsed_ms', '-')} ms, package tool calls +{calls}",
          flush=True)
    return Run(r, calls, wall)


def expect(what, run, cond):
    """One check of the last run and the node: COND is a function, so an error in it (a key the result lacks)
    fails this check, with the result shown, instead of ending the test."""
    try:
        ok, why = bool(cond()), ""
    except Exception as e:
        ok, why = False, f"{type(e).__name__}: {e}\n"
    return tally.check(what, ok, "" if ok else why + json.dumps(run.r, indent=1)[:3000])


def args(version, repo, **extra):
    """The usual arguments: the good key and fingerprint, REPO's packages, no driver check, a 5 s lock timeout."""
    a = {"version": version} if version else {}
    a.update({"key": "/srv/aptrepo/key.asc", "fingerprint": GOOD_FPR, "repo_url": f"file:{repo}/stable/deb/$(ARCH)",
              "driver_check": "skip", "lock_timeout": 5})
    a.update(extra)
    return a


def nothing_written():
    return sh(f"ls {KEYRING} {LIST} 2>/dev/null") == ""


def no_packages():
    return "installed" not in sh("dpkg-query -W -f='${db:Status-Status} ' " + " ".join(PACKAGES) + " 2>/dev/null").split()


def installed_at(version):
    """dpkg itself shows all four packages installed at VERSION."""
    shown = sh("dpkg-query -W -f='${Package}=${Version}=${db:Status-Status} ' " + " ".join(PACKAGES)).split()
    return sorted(shown) == sorted(f"{p}={version}=installed" for p in PACKAGES)


def hold_lock(mode):
    """Another process takes dpkg's frontend lock (fcntl, as apt does) and returns its pid. MODE "forever" keeps
    it; MODE "until-waited" releases it 5 s after the module process has started: the module reaches its wait
    within the first seconds even on a loaded machine, so it certainly waits, for about 5 s less its start-up."""
    holder = f"""
import fcntl, os, time
f = open('/var/lib/dpkg/lock-frontend', 'w')
fcntl.lockf(f, fcntl.LOCK_EX)
with open('/run/lock-held', 'w') as pid:
    pid.write(str(os.getpid()))
def module_running():
    for p in filter(str.isdigit, os.listdir('/proc')):
        if p == str(os.getpid()):
            continue
        try:
            if b'nvidia_toolkit' in open(f'/proc/{{p}}/cmdline', 'rb').read():
                return True
        except OSError:
            pass
    return False
if {mode!r} == 'forever':
    time.sleep(600)
while not module_running():
    time.sleep(0.1)
time.sleep(5)
"""
    subprocess.run(["podman", "exec", "-d", NODE, "python3", "-c", holder], check=True, stdout=subprocess.DEVNULL)
    for _ in range(50):
        pid = sh("cat /run/lock-held 2>/dev/null")
        if pid:
            sh("rm -f /run/lock-held")
            return pid
        time.sleep(0.2)
    sys.exit("the lock holder did not take dpkg's lock within 10 s")


def timed_builtin():
    """The ansible.builtin playbook once; its wall time in seconds."""
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(VENV, "bin", "ansible-playbook"), "-i", os.path.join(WORK, "inventory.ini"),
                        os.path.join(WORK, "builtin.yml")], capture_output=True, text=True)
    wall = time.monotonic() - t0
    with open(os.path.join(WORK, "builtin.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    if p.returncode != 0:
        print(p.stdout + p.stderr)
        sys.exit("the ansible.builtin playbook failed")
    return wall


def builtin_playbook():
    """The usual way: get_url for the key, gpg --dearmor, copy for the list, apt with pinned names."""
    play = [{"name": "The toolkit with ansible.builtin modules", "hosts": "nodes", "gather_facts": False, "tasks": [
        {"name": "Repository key", "ansible.builtin.get_url": {
            "url": "file:///srv/aptrepo/key.asc", "dest": "/root/nvidia-key.asc", "mode": "0644"}},
        {"name": "Binary keyring", "ansible.builtin.command": {
            "cmd": f"gpg --dearmor -o {KEYRING} /root/nvidia-key.asc", "creates": KEYRING}},
        {"name": "List file", "ansible.builtin.copy": {
            "dest": LIST, "content": sh(f"cat {LIST}") + "\n", "mode": "0644"}},
        {"name": "Pinned packages", "ansible.builtin.apt": {
            "name": [f"{p}={NEW}" for p in PACKAGES], "state": "present"}},
    ]}]
    with open(os.path.join(WORK, "builtin.yml"), "w") as f:
        json.dump(play, f)


def cases():
    """The cases in order; returns the figures for the summary."""
    figures = []
    print(f"   repository versions: {' '.join(VERSIONS)}"
          + (f" ({REAL} carries the real programs)" if REAL else " (stand-ins only: ../shared/toolkit is absent)"))

    if not tally.case("refusals before anything is written"):
        return figures
    run = converge("wrong-fingerprint", args(OLD, "/srv/mirror", fingerprint=EXPIRED_FPR))
    expect("wrong fingerprint fails naming both fingerprints", run,
           lambda: run.r["failed"] and GOOD_FPR in run.r["msg"] and EXPIRED_FPR in run.r["msg"])
    expect("nothing written, no package tool called", run, lambda: nothing_written() and run.calls == 0)
    run = converge("expired-certificate", {
        "version": OLD, "key": "/srv/aptrepo/expired-key.asc", "fingerprint": EXPIRED_FPR,
        "repo_url": "file:/srv/aptrepo/expired/stable/deb/$(ARCH)", "driver_check": "skip"})
    expect("expired certificate refused with its date", run,
           lambda: run.r["failed"] and "expired on 2020-12-31" in run.r["msg"])
    expect("nothing written, no package tool called", run, lambda: nothing_written() and run.calls == 0)

    if not tally.case("tampered InRelease"):
        return figures
    run = converge("tampered", args(OLD, "/srv/aptrepo/tampered"))
    # apt up to 2.x (gpgv) says BADSIG; apt 3 (sqv) says the message has been manipulated.
    expect("fails clearly on the bad signature", run,
           lambda: run.r["failed"] and ("BADSIG" in run.r["msg"] or "Message has been manipulated" in run.r["msg"])
           and "is not signed" in run.r["msg"] and "put back" in run.r["msg"])
    expect("nothing installed, list and keyring put back", run, lambda: nothing_written() and no_packages())

    if not tally.case("fresh install, idempotent run"):
        return figures
    run = converge("install", args(OLD, "/srv/mirror"), "--diff")
    expect(f"changed, all four at {OLD} (dpkg)", run, lambda: run.r["changed"] and installed_at(OLD))
    expect("warns about the expired subkey", run,
           lambda: any("expired on 2020-01-02" in w for w in run.r["warnings"]))
    expect("keyring is binary, 0644; list has signed-by", run,
           lambda: sh(f"stat -c %a {KEYRING}") == "644"
           and f"deb [signed-by={KEYRING}] file:/srv/mirror/stable/deb/$(ARCH) /" in sh(f"cat {LIST}")
           and not sh(f"head -c 5 {KEYRING}").startswith("-----"))
    expect("the stand-in programs run", run, lambda: "stand-in" in sh("nvidia-ctk --version"))
    # The repository disappears: a run that looked at it (or ran apt) would fail now.
    stable = os.path.join(WORK, "mirror", "stable")
    os.rename(stable, stable + ".hidden")
    try:
        run = converge("idempotent", args(OLD, "/srv/mirror"))
    finally:
        os.rename(stable + ".hidden", stable)
    expect("second run: changed false, no package tool called, repository not read", run,
           lambda: not run.r["failed"] and run.r["changed"] is False and run.r["apt_called"] is False
           and run.calls == 0)
    figures.append(f"idempotent module run (inside the module): {run.r.get('elapsed_ms')} ms")

    if not tally.case("check mode, pin change with hold"):
        return figures
    run = converge("check-upgrade", args(NEW, "/srv/mirror", hold=True), "--check", "--diff")
    expect("check mode predicts the upgrade and changes nothing", run,
           lambda: run.r["changed"] and f"installed version {NEW}" in run.r["msg"] and installed_at(OLD)
           and run.calls == 0)
    run = converge("upgrade", args(NEW, "/srv/mirror", hold=True))
    expect(f"pin change upgrades all four to {NEW}", run, lambda: run.r["changed"] and installed_at(NEW))
    expect("all four held", run, lambda: sorted(sh("apt-mark showhold").split()) == sorted(PACKAGES))
    run = converge("upgrade-again", args(NEW, "/srv/mirror", hold=True))
    expect("again: changed false, no package tool called", run, lambda: run.r["changed"] is False and run.calls == 0)

    if not tally.case("idempotent run beside the same steps as ansible.builtin tasks"):
        return figures
    # Both already converged (the key file is already in place for get_url); the same node, the same run, one
    # after the other.
    builtin_playbook()
    sh("cp /srv/aptrepo/key.asc /root/nvidia-key.asc")
    ours, theirs = [], []
    for _ in range(int(os.environ.get("TOOLKIT_BENCH_RUNS", "1"))):
        run = converge("bench-module", args(NEW, "/srv/mirror", hold=True))
        ours.append(run.wall)
        theirs.append(timed_builtin())
        with open(os.path.join(WORK, "builtin.log")) as f:
            builtin_log = f.read()
        print(f"   bench-builtin: playbook {theirs[-1]:.2f} s ({' '.join(re.findall(r'changed=[0-9]+', builtin_log))})")
    expect("both idempotent (module: changed false, no package tool call; builtin: changed=0)", run,
           lambda: run.r["changed"] is False and run.calls == 0 and "changed=0" in builtin_log)
    a, b = min(ours), min(theirs)
    line = f"idempotent playbook: nvidia_toolkit {a:.2f} s, ansible.builtin steps {b:.2f} s, ratio {b / a:.1f}x"
    print(f"   {line}")
    figures.append(line)

    if not tally.case("old list files"):
        return figures
    sh('echo "deb https://nvidia.github.io/libnvidia-container/stable/ubuntu18.04/\\$(ARCH) /"'
       " >/etc/apt/sources.list.d/nvidia-docker.list;"
       ' echo "deb file:/srv/mirror/stable/deb/amd64 /" >/etc/apt/sources.list.d/copy.list')
    run = converge("conflicts-fail", args(NEW, "/srv/mirror", conflicts="fail"))
    expect("conflicts: fail names both files and keeps them", run,
           lambda: run.r["failed"] and "nvidia-docker.list" in run.r["msg"] and "copy.list" in run.r["msg"]
           and sh("ls /etc/apt/sources.list.d/ | wc -l") == "3")
    run = converge("conflicts-remove", args(NEW, "/srv/mirror"))
    expect("default removes both, names them, calls no package tool", run,
           lambda: run.r["changed"] and len(run.r["removed_lists"]) == 2
           and sh("ls /etc/apt/sources.list.d/") == "nvidia-container-toolkit.list" and run.calls == 0)

    if not tally.case("the dpkg lock"):
        return figures
    holder = hold_lock("forever")
    try:
        run = converge("lock-timeout", args(OLD, "/srv/mirror"))
    finally:
        sh(f"kill {holder}")
    expect("held lock: clear error after lock_timeout naming the holder, nothing changed", run,
           lambda: run.r["failed"] and "held by process" in run.r["msg"] and "python3" in run.r["msg"]
           and "lock_timeout" in run.r["msg"] and installed_at(NEW) and run.calls == 0)
    hold_lock("until-waited")
    run = converge("lock-wait", args(OLD, "/srv/mirror", lock_timeout=60))
    expect(f"lock released within lock_timeout: waited (lock_wait_ms), then downgraded to {OLD}", run,
           lambda: run.r["changed"] and run.r["lock_wait_ms"] >= 1000 and installed_at(OLD))

    if not tally.case("latest, absent"):
        return figures
    run = converge("latest", {"state": "latest", "key": "/srv/aptrepo/key.asc", "fingerprint": GOOD_FPR,
                              "repo_url": "file:/srv/mirror/stable/deb/$(ARCH)", "driver_check": "skip"})
    expect(f"latest installs {NEWEST}", run, lambda: run.r["changed"] and installed_at(NEWEST))
    if REAL:
        upstream = NEWEST.rsplit("-", 1)[0]
        expect(f"the installed programs are the real ones: nvidia-ctk and nvidia-container-cli print {upstream}", run,
               lambda: sh("nvidia-ctk --version | head -1") == f"NVIDIA Container Toolkit CLI version {upstream}"
               and f"cli-version: {upstream}" in sh("nvidia-container-cli --version"))
    run = converge("absent", {"state": "absent"})
    expect("absent removes packages, list and keyring", run,
           lambda: run.r["changed"] and nothing_written() and no_packages())
    run = converge("absent-again", {"state": "absent"})
    expect("absent again: changed false, no package tool called", run,
           lambda: run.r["changed"] is False and run.calls == 0)
    return figures


def main():
    t0 = time.monotonic()
    figures = cases()
    print(f"\n   toolkit cases took {time.monotonic() - t0:.0f} s")
    for line in figures:
        print(f"   {line}")
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())
