#!/usr/bin/env python3
"""containerd_runtime on the configs that real installers write, judged by the matching real containerd.

usage: corpus.py MODULE SUITE=DIR... [--only NAME]   (DIR/root/usr/bin/containerd is that suite's binary;
                                                     NAME: a file of corpus/ without .toml, or part of one)

corpus/ holds one config per file, each with its provenance in corpus/SOURCES.md. A config is tried on each
containerd it suits: version 3 only on containerd 2.x, version 2 everywhere, version 1 on 1.x (2.0 removed it:
2.x loads such a file but ignores its CRI tables, so it is a SKIP there). In a temp dir:
  - `containerd config dump` of the original; a config this containerd refuses is a SKIP, never a pass;
  - the module with its defaults (validated by this containerd, found on PATH), then in the dump:
    runtime `nvidia` with BinaryName /usr/bin/nvidia-container-runtime, its SystemdCgroup equal to the default
    runtime's (default_runtime_name of the original dump, else runc), and nothing else changed (where the
    installer had already written an `nvidia` runtime, only its BinaryName, an empty runtime_type and a missing
    SystemdCgroup, set to the default runtime's, may change);
  - where the installer's nvidia runtime is already right: the first run is changed: false with identical bytes;
  - a second run: changed: false and identical bytes;
  - `state: absent`: the dump equals the original; except where the installer made `nvidia` the default, where
    absent must fail and leave the file byte-identical; and where the installer wrote an `nvidia` runtime of its
    own (k3s), which `absent` removes as asked: there the dump equals the original without that runtime.
Prints one line per check and 'N passed, N failed, N skipped' (tests/pylib/checks.py). A run over the whole corpus
also writes what failed or was skipped to /tmp/corpus-status.txt (the list the module's authors work from).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
# The judging functions are check.py's, so both drivers read containerd's dumps the same way.
from check import BINARY, diff_keys, dump, run_module, runtimes_of, without  # noqa: E402
from checks import Tally  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
NAME = "nvidia"
STATUS = "/tmp/corpus-status.txt"
tally = Tally("installer corpus")  # takes --only out of sys.argv
# Per config and containerd: "pass", "FAIL (n)", "SKIP: why"; and each failure's message for the status file.
outcome, failures = {}, {}


def config_version(text):
    """The version containerd reads: an integer `version`, or 1 where the key is missing."""
    return tomllib.loads(text).get("version", 1)


def default_runtime(d):
    """default_runtime_name of a dump (1.x: grpc.v1.cri plugin; 2.x: cri.v1.runtime plugin), else runc."""
    plugins = d.get("plugins", {})
    for plugin in ("io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"):
        name = plugins.get(plugin, {}).get("containerd", {}).get("default_runtime_name")
        if name:
            return name
    return "runc"


def systemd_cgroup(rt):
    return (rt or {}).get("options", {}).get("SystemdCgroup", False)


def brief(diffs):
    """diff_keys' lines, with a whole table that appeared or vanished named instead of printed."""
    out = []
    for d in diffs[:6]:
        path, _, change = d.partition(": ")
        if change.startswith("None -> {"):
            out.append(f"{path}: table added")
        elif change.startswith("{") and change.endswith("-> None"):
            out.append(f"{path}: table removed")
        else:
            out.append(d if len(d) <= 200 else d[:200] + "…")
    return "; ".join(out)


def check(ok, label, what, detail=""):
    """One check of one config on one containerd; its failure is also kept for the status file."""
    tally.check(f"{label}: {what}", ok, detail)
    if not ok:
        failures.setdefault(label, []).append(f"{what}: {detail}" if detail else what)
    return ok


def judge(module, bindir, containerd, label, text, work):
    cfg = os.path.join(work, "config.toml")
    with open(cfg, "w") as f:
        f.write(text)
    try:
        before = dump(containerd, cfg)
    except RuntimeError as e:
        # Not loadable by this containerd: nothing to judge, and never counted as a pass.
        why = f"not loadable by containerd ({str(e).splitlines()[-1].replace(work, '<dir>')[:200]})"
        tally.skip(label, why)
        outcome[label] = f"SKIP: {why}"
        return
    runtimes = runtimes_of(before)
    existed = NAME in runtimes
    default = default_runtime(before)

    r1 = run_module(module, bindir, {"path": cfg})
    if not check(not r1.get("failed"), label, "first run succeeds", r1.get("msg", "")):
        return
    after = dump(containerd, cfg)
    rt = runtimes_of(after).get(NAME)
    if not check(rt is not None, label, f"dump has runtime {NAME}"):
        return
    got = rt.get("options", {}).get("BinaryName")
    check(got == BINARY, label, f"BinaryName is {BINARY}", repr(got))
    want = systemd_cgroup(runtimes.get(default))
    check(systemd_cgroup(rt) == want, label, f"SystemdCgroup equals default runtime {default}'s ({want})",
          repr(systemd_cgroup(rt)))
    if existed and runtimes[NAME].get("options", {}).get("BinaryName") == BINARY \
            and systemd_cgroup(runtimes[NAME]) == want:
        # The installer's runtime is already right: a node that works is left exactly as it was.
        check(r1.get("changed") is False and open(cfg).read() == text, label,
              "an installer's runtime that is already right: changed: false, identical bytes",
              json.dumps({k: r1.get(k) for k in ("changed", "msg")}))
    rest = diff_keys(without(before, [NAME]), without(after, [NAME]))
    if existed:
        # The installer's own nvidia table: only BinaryName, a runtime_type it left empty and a SystemdCgroup it
        # left out (set to the default runtime's, as the check above wants) may change.
        allowed = ["options.BinaryName:"] + (["runtime_type:"] if not runtimes[NAME].get("runtime_type") else [])
        allowed += [f"options.SystemdCgroup: None -> {want!r}"]
        rest += [f"runtimes.{NAME}.{d}" for d in diff_keys(runtimes[NAME], rt)
                 if not any(d.startswith(a) for a in allowed)]
    check(not rest, label, "rest of the dump unchanged", brief(rest))

    bytes1 = open(cfg, "rb").read()
    r2 = run_module(module, bindir, {"path": cfg})
    check(r2.get("changed") is False and not r2.get("failed"), label, "second run changed: false",
          json.dumps({k: r2.get(k) for k in ("changed", "failed", "msg")}))
    check(open(cfg, "rb").read() == bytes1, label, "second run leaves identical bytes")

    r3 = run_module(module, bindir, {"path": cfg, "state": "absent"})
    if default == NAME:
        # The installer made nvidia the default: taking it away would leave the node without its default runtime.
        check(r3.get("failed") is True, label, "absent fails where the installer made nvidia the default",
              json.dumps({k: r3.get(k) for k in ("changed", "failed", "msg")}))
        check(open(cfg, "rb").read() == bytes1, label, "absent leaves the file byte-identical")
        return
    if not check(not r3.get("failed"), label, "absent succeeds", r3.get("msg", "")):
        return
    # A file the module deleted (nothing left but `version`) loads as containerd's defaults, as an empty one does.
    if not os.path.exists(cfg):
        open(cfg, "w").close()
    gone = dump(containerd, cfg)
    if existed:
        # `absent` means the runtime must not be there, whoever wrote it: gone, and nothing else changed.
        check(NAME not in runtimes_of(gone), label, f"absent removes the installer's {NAME} runtime")
        rest = diff_keys(without(before, [NAME]), gone)
        check(not rest, label, f"absent gives back the original dump without {NAME}", brief(rest))
        return
    rest = diff_keys(before, gone)
    check(not rest, label, "absent gives back the original dump", brief(rest))


def main():
    args = sys.argv[1:]
    module = os.path.abspath(args[0])
    names = [n for n in sorted(f[:-5] for f in os.listdir(CORPUS) if f.endswith(".toml"))
             if tally.case(n, header=False)]
    for arg in args[1:]:
        suite, root = arg.split("=", 1)
        bindir = os.path.join(root, "root/usr/bin")
        containerd = os.path.join(bindir, "containerd")
        version = subprocess.run([containerd, "--version"], capture_output=True, text=True).stdout.split()[2]
        print(f"== {suite}: containerd {version}")
        for name in names:
            text = open(os.path.join(CORPUS, name + ".toml")).read()
            v = config_version(text)
            v2x = version.lstrip("v").startswith("2.")
            if v >= 3 and not v2x:
                continue  # version 3 is containerd 2.x's format; 1.x is not meant to read it
            label = f"{name}@{version}"
            if v == 1 and v2x:
                # containerd 2.0 removed version 1: 2.x loads such a file but drops its CRI tables with
                # "Ignoring unknown key" warnings, so no edit of it can reach the CRI plugin.
                why = "not loadable by containerd 2.x (config version 1 was removed in 2.0; its CRI tables are ignored)"
                tally.skip(label, why)
                outcome[label] = f"SKIP: {why}"
                continue
            before = tally.failed
            work = tempfile.mkdtemp(prefix=f"corpus-{name}-")
            try:
                judge(module, bindir, containerd, label, text, work)
            except Exception as e:  # a crash on one config is a failure, not the end of the run
                check(False, label, "judged without error", str(e)[:300])
            finally:
                shutil.rmtree(work, ignore_errors=True)
            outcome.setdefault(label, "pass" if tally.failed == before else f"FAIL ({tally.failed - before})")
    print()
    for label, state in outcome.items():
        print(f"RESULT {label}: {state}")
    status = tally.finish()
    if tally.only is None:
        with open(STATUS, "w") as f:
            digest = hashlib.sha256(open(module, "rb").read()).hexdigest()[:12]
            f.write(f"containerd_runtime on the installer corpus: {tally.summary()}\n"
                    f"module: {module} (sha256 {digest}…)\n")
            for label, state in outcome.items():
                if state != "pass":
                    f.write(f"\n{label}: {state}\n")
                    f.writelines(f"  - {m}\n" for m in failures.get(label, []))
    return status


if __name__ == "__main__":
    sys.exit(main())
