#!/usr/bin/env python3
"""containerd_runtime against real containerd (1.6, 1.7, 2.1 from Debian, unpacked, not installed).

usage: check.py MODULE SUITE=DIR...   (DIR/root/usr/bin/containerd is that suite's binary)

For every containerd and every starting config (its `config default`, its packaged config, a hand-written
commented config, a missing file) the module registers the runtime, and `containerd --config F config dump`
(containerd's own parse and merge) must show: the runtime with BinaryName, SystemdCgroup equal to runc's, and
everything else exactly as before. A second run must say changed: false and leave identical bytes.
Drop-in mode: first measures whether this containerd merges a minimal drop-in deeply (a hand-made one), then
checks the module chose accordingly (drop-in only where it merges deeply) and that the dump is right.
Prints one line per check and 'N passed, N failed'.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = "/usr/bin/nvidia-container-runtime"
results = {"pass": 0, "fail": 0}


def report(ok, what, detail=""):
    results["pass" if ok else "fail"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ""))


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
    report(rt is not None, f"{label}: dump has runtime {name}")
    if rt is None:
        return
    opts = rt.get("options", {})
    report(opts.get("BinaryName") == BINARY, f"{label}: BinaryName", repr(opts.get("BinaryName")))
    runc = runtimes_of(before).get("runc", {})
    want = runc.get("options", {}).get("SystemdCgroup", False)
    got = opts.get("SystemdCgroup", False)
    report(got == want, f"{label}: SystemdCgroup inherited from runc ({want})", repr(got))
    if "sandboxer" in runc:
        report(rt.get("sandboxer") == runc["sandboxer"], f"{label}: sandboxer inherited", repr(rt.get("sandboxer")))
    rest = [d for d in diff_keys(without(before, [name]), without(after, [name])) if not d.startswith(ignore)]
    report(not rest, f"{label}: rest of the dump unchanged", "; ".join(rest[:6]))


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
    report(r1.get("changed") is True and not r1.get("failed"), f"{label}: first run changed", r1.get("msg"))
    report(r1.get("restart_required") is True, f"{label}: first run restart_required")
    report(r1.get("validated") is True, f"{label}: validated with containerd config dump", str(r1.get("validated")))
    if r1.get("failed"):
        return
    if text is not None:
        # Comments in the original survive (surgical edit, not a re-serialisation).
        comments = [line for line in text.splitlines() if line.strip().startswith("#")]
        new = open(cfg).read()
        report(all(c in new for c in comments), f"{label}: every comment line kept")
    check_runtime(label, before, dump(containerd, cfg))
    bytes1 = open(cfg, "rb").read()
    r2 = run_module(module, bindir, {"path": cfg})
    report(r2.get("changed") is False and r2.get("restart_required") is False, f"{label}: second run changed: false",
           json.dumps(r2)[:300])
    report(open(cfg, "rb").read() == bytes1, f"{label}: second run leaves identical bytes")


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
    report(not r1.get("failed") and r1.get("changed"), f"{label}: first run changed", r1.get("msg"))
    report(r1.get("drop_in_used") == deep, f"{label}: drop-in used only where containerd merges deeply",
           f"drop_in_used={r1.get('drop_in_used')} deep={deep}")
    report(os.path.exists(dropin) == deep, f"{label}: drop-in file exists iff used")
    # The import line is the one intended difference of drop-in mode.
    check_runtime(label, before, dump(containerd, cfg), ignore=("imports:",) if deep else ())
    snap = {p: open(p, "rb").read() for p in (cfg, dropin) if os.path.exists(p)}
    r2 = run_module(module, bindir, {"path": cfg, "drop_in_path": dropin})
    same = all(open(p, "rb").read() == b for p, b in snap.items())
    report(r2.get("changed") is False and same, f"{label}: second run changed: false, identical bytes",
           json.dumps(r2)[:300])
    r3 = run_module(module, bindir, {"path": cfg, "drop_in_path": dropin, "state": "absent"})
    after_rm = dump(containerd, cfg)
    report(r3.get("changed") is True and "nvidia" not in runtimes_of(after_rm), f"{label}: state absent removes it",
           json.dumps(r3)[:300])
    rest = diff_keys(before, after_rm)
    report(not rest, f"{label}: after removal the dump equals the original", "; ".join(rest[:6]))


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
    report(ok, f"{label}: a config containerd refuses fails the run", json.dumps(r)[:300])
    report(open(cfg).read() == text and os.listdir(os.path.dirname(cfg)) == ["config.toml"],
           f"{label}: the file is byte-identical and no candidate is left")


def main():
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
                try:
                    in_place(module, suite, bindir, containerd, start, text, work)
                except Exception as e:  # a crash in one case is a failure, not the end of the run
                    report(False, f"{suite}/{start}", str(e))
            validate_rejects(module, suite, bindir, work)
            try:
                drop_in(module, suite, bindir, containerd,
                        open(os.path.join(HERE, "configs", "commented-v2.toml")).read(), work)
            except Exception as e:
                report(False, f"{suite}/drop-in", str(e))
    print(f"{results['pass']} passed, {results['fail']} failed")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
