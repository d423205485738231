#!/usr/bin/env python3
"""containerd_runtime against real containerd (1.6, 1.7, 2.1 from Debian, unpacked, not installed).

usage: check.py MODULE SUITE=DIR... [--only CASE]   (DIR/root/usr/bin/containerd is that suite's binary; a CASE
                                                    is SUITE/START, SUITE/validate or SUITE/drop-in, or part of one)

For every containerd and every starting config (its `config default`, its packaged config, a hand-written
commented config, a missing file) the module registers the runtime, and `containerd --config F config dump`
(containerd's own parse and merge) must show: the runtime with BinaryName, SystemdCgroup equal to runc's, and
everything else exactly as before. A second run must say changed: false and leave identical bytes.
Drop-in mode: first measures whether this containerd merges a minimal drop-in deeply (a hand-made one), then
checks the module chose accordingly (drop-in only where it merges deeply) and that the dump is right.
Prints one line per check and 'N passed, N failed, N skipped' (tests/pylib/checks.py).
"""
import copy
import json
import os
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from checks import Tally  # noqa: E402

BINARY = "/usr/bin/nvidia-container-runtime"
# This driver's tally, made in main(): corpus.py imports the judging functions below and keeps a tally of its own.
tally = None


def dump(containerd, config):
    p = subprocess.run([containerd, "--config", config, "config", "dump"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"config dump failed: {p.stderr.strip()[-400:]}")
    return tomllib.loads(p.stdout)


def run_module(module, bindir, args):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(args, f)
    env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", ""))
    p = subprocess.run([module, f.name], capture_output=True, text=True, env=env)
    os.unlink(f.name)
    return json.loads(p.stdout)


def runtimes_of(d):
    """The runtimes table of a dump (1.x: grpc.v1.cri plugin; 2.x: cri.v1.runtime plugin)."""
    plugins = d.get("plugins", {})
    for plugin in ("io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"):
        rts = plugins.get(plugin, {}).get("containerd", {}).get("runtimes")
        if rts is not None:
            return rts
    return {}


def without(d, names):
    d = copy.deepcopy(d)
    rts = runtimes_of(d)
    for n in names:
        rts.pop(n, None)
    return d


def diff_keys(a, b, path=""):
    """Dotted paths where two dumps differ (for messages)."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            out += diff_keys(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    elif a != b:
        out.append(f"{path}: {a!r} -> {b!r}")
    return out


def check_runtime(label, before, after, name="nvidia", ignore=()):
    rts = runtimes_of(after)
    rt = rts.get(name)
    tally.check(f"{label}: dump has runtime {name}", rt is not None)
    if rt is None:
        return
    opts = rt.get("options", {})
    tally.check(f"{label}: BinaryName", opts.get("BinaryName") == BINARY, repr(opts.get("BinaryName")))
    runc = runtimes_of(before).get("runc", {})
    want = runc.get("options", {}).get("SystemdCgroup", False)
    got = opts.get("SystemdCgroup", False)
    tally.check(f"{label}: SystemdCgroup inherited from runc ({want})", got == want, repr(got))
    if "sandboxer" in runc:
        tally.check(f"{label}: sandboxer inherited", rt.get("sandboxer") == runc["sandboxer"], repr(rt.get("sandboxer")))
    rest = [d for d in diff_keys(without(before, [name]), without(after, [name])) if not d.startswith(ignore)]
    tally.check(f"{label}: rest of the dump unchanged", not rest, "; ".join(rest[:6]))


def in_place(module, suite, bindir, containerd, start, text, work):
    label = f"{suite}/{start}"
    cfg = os.path.join(work, start, "config.toml")
    os.makedirs(os.path.dirname(cfg))
    if text is not None:
        with open(cfg, "w") as f:
            f.write(text)
    if text is None:
        # containerd refuses a --config that does not exist; an empty file loads the same defaults.
        open(cfg, "w").close()
        before = dump(containerd, cfg)
        os.unlink(cfg)
    else:
        before = dump(containerd, cfg)
    r1 = run_module(module, bindir, {"path": cfg})
    tally.check(f"{label}: first run changed", r1.get("changed") is True and not r1.get("failed"), r1.get("msg"))
    tally.check(f"{label}: first run restart_required", r1.get("restart_required") is True)
    tally.check(f"{label}: validated with containerd config dump", r1.get("validated") is True, str(r1.get("validated")))
    if r1.get("failed"):
        return
    if text is not None:
        # Comments in the original survive (surgical edit, not a re-serialisation).
        comments = [line for line in text.splitlines() if line.strip().startswith("#")]
        new = open(cfg).read()
        tally.check(f"{label}: every comment line kept", all(c in new for c in comments))
    check_runtime(label, before, dump(containerd, cfg))
    bytes1 = open(cfg, "rb").read()
    r2 = run_module(module, bindir, {"path": cfg})
    tally.check(f"{label}: second run changed: false", r2.get("changed") is False and r2.get("restart_required") is False,
                json.dumps(r2)[:300])
    tally.check(f"{label}: second run leaves identical bytes", open(cfg, "rb").read() == bytes1)


def merges_deeply(containerd, work, commented):
    """A hand-made minimal drop-in holding only a runtime table: does the rest of the CRI section survive?"""
    d = os.path.join(work, "probe")
    os.makedirs(os.path.join(d, "conf.d"))
    cfg = os.path.join(d, "config.toml")
    with open(cfg, "w") as f:
        f.write(f'imports = ["{d}/conf.d/*.toml"]\n' + commented)
    before = dump(containerd, cfg)
    v = tomllib.loads(commented)["version"]
    plugin = "io.containerd.grpc.v1.cri" if v == 2 else "io.containerd.cri.v1.runtime"
    with open(os.path.join(d, "conf.d", "99-probe.toml"), "w") as f:
        f.write(f'version = {v}\n[plugins."{plugin}".containerd.runtimes.probe]\n'
                f'runtime_type = "io.containerd.runc.v2"\n')
    after = dump(containerd, cfg)
    return not diff_keys(without(before, ["probe"]), without(after, ["probe"]))


def drop_in(module, suite, bindir, containerd, text, work):
    label = f"{suite}/drop-in"
    deep = merges_deeply(containerd, work, text)
    print(f"INFO {suite}: a minimal drop-in {'merges deeply' if deep else 'REPLACES the CRI section'}")
    d = os.path.join(work, "dropin")
    os.makedirs(d)
    cfg, dropin = os.path.join(d, "config.toml"), os.path.join(d, "conf.d", "99-nvidia.toml")
    with open(cfg, "w") as f:
        f.write(text)
    before = dump(containerd, cfg)
    r1 = run_module(module, bindir, {"path": cfg, "drop_in_path": dropin})
    tally.check(f"{label}: first run changed", not r1.get("failed") and r1.get("changed"), r1.get("msg"))
    tally.check(f"{label}: drop-in used only where containerd merges deeply", r1.get("drop_in_used") == deep,
                f"drop_in_used={r1.get('drop_in_used')} deep={deep}")
    tally.check(f"{label}: drop-in file exists iff used", os.path.exists(dropin) == deep)
    # The import line is the one intended difference of drop-in mode.
    check_runtime(label, before, dump(containerd, cfg), ignore=("imports:",) if deep else ())
    snap = {p: open(p, "rb").read() for p in (cfg, dropin) if os.path.exists(p)}
    r2 = run_module(module, bindir, {"path": cfg, "drop_in_path": dropin})
    same = all(open(p, "rb").read() == b for p, b in snap.items())
    tally.check(f"{label}: second run changed: false, identical bytes", r2.get("changed") is False and same,
                json.dumps(r2)[:300])
    r3 = run_module(module, bindir, {"path": cfg, "drop_in_path": dropin, "state": "absent"})
    after_rm = dump(containerd, cfg)
    tally.check(f"{label}: state absent removes it", r3.get("changed") is True and "nvidia" not in runtimes_of(after_rm),
                json.dumps(r3)[:300])
    rest = diff_keys(before, after_rm)
    tally.check(f"{label}: after removal the dump equals the original", not rest, "; ".join(rest[:6]))


def validate_rejects(module, suite, bindir, work):
    """validate: auto is containerd's own judgement: a config containerd refuses is never written."""
    label = f"{suite}/validate"
    cfg = os.path.join(work, "reject", "config.toml")
    os.makedirs(os.path.dirname(cfg))
    text = 'version = 2\noom_score = "high"   # containerd wants an integer here\n'
    with open(cfg, "w") as f:
        f.write(text)
    r = run_module(module, bindir, {"path": cfg})
    ok = r.get("failed") is True and "validation failed" in r.get("msg", "")
    tally.check(f"{label}: a config containerd refuses fails the run", ok, json.dumps(r)[:300])
    tally.check(f"{label}: the file is byte-identical and no candidate is left",
                open(cfg).read() == text and os.listdir(os.path.dirname(cfg)) == ["config.toml"])


def main():
    global tally
    tally = Tally("containerd configs")
    module = os.path.abspath(sys.argv[1])
    for arg in sys.argv[2:]:
        suite, root = arg.split("=", 1)
        bindir = os.path.join(root, "root/usr/bin")
        containerd = os.path.join(bindir, "containerd")
        version = subprocess.run([containerd, "--version"], capture_output=True, text=True).stdout.split()[2]
        print(f"== {suite}: containerd {version}")
        default = subprocess.run([containerd, "config", "default"], capture_output=True, text=True, check=True).stdout
        packaged = open(os.path.join(root, "root/etc/containerd/config.toml")).read()
        v3 = version.startswith("2.")
        commented = open(os.path.join(HERE, "configs", "commented-v3.toml" if v3 else "commented-v2.toml")).read()
        with tempfile.TemporaryDirectory(prefix=f"ctr-{suite}-") as work:
            for start, text in (("default", default), ("packaged", packaged), ("commented", commented),
                                ("missing", None)):
                if not tally.case(f"{suite}/{start}", header=False):
                    continue
                try:
                    in_place(module, suite, bindir, containerd, start, text, work)
                except Exception as e:  # a crash in one case is a failure, not the end of the run
                    tally.check(f"{suite}/{start}", False, str(e))
            if tally.case(f"{suite}/validate", header=False):
                validate_rejects(module, suite, bindir, work)
            if not tally.case(f"{suite}/drop-in", header=False):
                continue
            try:
                drop_in(module, suite, bindir, containerd,
                        open(os.path.join(HERE, "configs", "commented-v2.toml")).read(), work)
            except Exception as e:
                tally.check(f"{suite}/drop-in", False, str(e))
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())
