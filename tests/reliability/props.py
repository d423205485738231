#!/usr/bin/env python3
"""Property tests of the containerd edit, through the built `containerd_runtime` binary, judged by Python's own
TOML parser (tomllib, independent of the module's toml_edit).

For each random config and random arguments (configs.random_case), these must hold:
  no-crash        one JSON object back, no panic, exit 0 or 1, and a valid config is never refused
  parses          the written file is valid TOML
  idempotent      a second run reports changed=false and leaves the bytes identical
  outside         every key outside the runtime/default/CDI/version/imports entries is unchanged
  comments        every comment outside the runtime tables survives, in order; unrelated tables survive verbatim
  semantics       the runtime exists with BinaryName (present) or is gone (absent); default and CDI as asked;
                  SystemdCgroup inherited from the base runtime
  check-mode      check mode predicts `changed` exactly and writes nothing
  diff            diff mode returns the file's real before/after
  restart         restart_required is true exactly when what containerd loads changed

usage: props.py [--cases N] [--seconds S] [--seed SEED] [--keep-failures DIR]
  --seconds: run until that much time has passed (the long run); the seed of each case is printed on failure so
  `props.py --replay SEED` runs just that case.
"""

import argparse
import copy
import json
import os
import random
import shutil
import sys
import tempfile
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402
import harness  # noqa: E402

PROPERTIES = ["no-crash", "parses", "idempotent", "outside", "comments", "semantics", "check-mode", "diff",
              "restart"]


def dig(doc, keys):
    for k in keys:
        if not isinstance(doc, dict) or k not in doc:
            return None
        doc = doc[k]
    return doc


def without_managed(doc, name, version):
    """The document less what the module may change, with tables left empty removed (they are pruned or created)."""
    doc = copy.deepcopy(doc)
    cri = configs.cri_keys(version)
    for path in (cri + ["containerd", "runtimes", name], cri + ["containerd", "default_runtime_name"],
                 cri + ["enable_cdi"], ["version"], ["imports"]):
        parent = dig(doc, path[:-1])
        if isinstance(parent, dict):
            parent.pop(path[-1], None)

    def prune(d):
        if isinstance(d, dict):
            for k in list(d):
                prune(d[k])
                if isinstance(d[k], dict) and not d[k]:
                    del d[k]
        return d
    return prune(doc)


def is_subsequence(needles, lines):
    it = iter(lines)
    return all(any(n in line for line in it) for n in needles)


def check_case(seed, workdir):
    """Runs one case; returns {property: problem} for the properties it broke (empty: all held)."""
    rng = random.Random(seed)
    text, args, facts = configs.random_case(rng)
    path = os.path.join(workdir, "config.toml")
    for entry in os.listdir(workdir):
        p = os.path.join(workdir, entry)
        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
    if text is not None:
        with open(path, "w") as f:
            f.write(text)
    args = dict(args, path=path)
    before_bytes = text.encode() if text is not None else None
    broken = {}

    def run(extra):
        return harness.run_module("containerd_runtime", dict(args, **extra), workdir)

    def read():
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def listing():
        return sorted(n for n in os.listdir(workdir) if not n.startswith("args-"))

    # Removing a runtime that someone else made the default (no marker of this module) is refused, in check mode
    # too, and writes nothing: containerd would be left without its default runtime.
    runtimes = facts.get("runtimes", {})
    if args["state"] == "absent" and facts.get("default") == args["name"] and args["name"] in runtimes:
        for extra in ({"_ansible_check_mode": True}, {}):
            res = run(extra)
            problem = harness.no_crash_problem(res)
            if problem or not res.failed or "set outside this module" not in res.msg:
                broken["semantics"] = "absent of a default set elsewhere: %s" % (problem or res.summary())
            elif read() != before_bytes:
                broken["semantics"] = "absent of a default set elsewhere changed the file"
        return broken, text, args

    # Check mode first: it must predict and write nothing.
    list0 = listing()
    chk = run({"_ansible_check_mode": True})
    problem = harness.no_crash_problem(chk)
    if problem or chk.failed:
        broken["no-crash"] = "check mode: %s" % (problem or chk.summary())
        return broken, text, args
    if read() != before_bytes or listing() != list0:
        broken["check-mode"] = "check mode changed the folder"

    res = run({"_ansible_diff": True})
    problem = harness.no_crash_problem(res)
    if problem or res.failed:
        broken["no-crash"] = problem or "a valid config was refused: %s" % res.summary()
        return broken, text, args
    after_bytes = read()
    if chk.changed != res.changed:
        broken["check-mode"] = "check mode said changed=%s, the real run %s" % (chk.changed, res.changed)
    if res.changed != (after_bytes != before_bytes):
        broken["semantics"] = "changed=%s but the bytes %s" % (
            res.changed, "differ" if after_bytes != before_bytes else "are equal")

    try:
        before = tomllib.loads(text) if text else {}
        after = tomllib.loads(after_bytes.decode()) if after_bytes else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        broken["parses"] = str(e)
        return broken, text, args

    # Idempotence.
    again = run({})
    if harness.no_crash_problem(again) or again.failed or again.changed or read() != after_bytes:
        broken["idempotent"] = "second run: %s; bytes %s" % (
            again.summary(), "identical" if read() == after_bytes else "differ")

    version = facts["version"]
    name = args["name"]
    if without_managed(before, name, version) != without_managed(after, name, version):
        broken["outside"] = "keys outside the managed entries changed"

    out_text = after_bytes.decode() if after_bytes else ""
    if args["state"] == "present" or out_text:
        if not is_subsequence(facts["keep_comments"], out_text.splitlines()):
            missing = [c for c in facts["keep_comments"] if c not in out_text]
            broken["comments"] = "comments lost or reordered: %s" % (missing[:3] or "reordered")
        for block in facts["keep_blocks"]:
            if block.rstrip("\n") + "\n" not in out_text:
                broken["comments"] = "an unrelated table was reformatted: %r" % block[:80]

    cri = configs.cri_keys(version)
    rt = dig(after, cri + ["containerd", "runtimes", name])
    default = dig(after, cri + ["containerd", "default_runtime_name"])
    why = []
    if args["state"] == "present":
        if not isinstance(rt, dict):
            why.append("runtime %s missing" % name)
        else:
            if dig(rt, ["options", "BinaryName"]) != args["binary_path"]:
                why.append("BinaryName %r" % dig(rt, ["options", "BinaryName"]))
            base = facts["base"]
            got = dig(rt, ["options", "SystemdCgroup"])
            base_cgroup = dig(before, cri + ["containerd", "runtimes", base or "", "options", "SystemdCgroup"])
            if name in runtimes:
                # An existing runtime keeps its own; it takes the base's systemd driver only when it has none.
                own = dig(before, cri + ["containerd", "runtimes", name, "options", "SystemdCgroup"])
                want = own if own is not None else (True if base_cgroup is True and base != name else None)
                if want != got:
                    why.append("SystemdCgroup %r, the existing runtime had %r (base %s: %r)" % (
                        got, own, base, base_cgroup))
            elif base and base_cgroup != got:
                why.append("SystemdCgroup %r, base %s has %r" % (got, base, base_cgroup))
        if args["set_as_default"] and default != name:
            why.append("default_runtime_name %r" % default)
        if not args["set_as_default"] and facts.get("default") == name and default != name:
            why.append("a default set elsewhere was changed to %r" % default)
        if args["enable_cdi"] and dig(after, cri + ["enable_cdi"]) is not True:
            why.append("enable_cdi not set")
    else:
        if rt is not None:
            why.append("runtime %s still there" % name)
        if default == name and facts.get("default") != name:
            why.append("default_runtime_name names it")
    if why:
        broken["semantics"] = "; ".join(why)

    if res.changed:
        d = res.json.get("diff")
        if isinstance(d, list):
            d = next((x for x in d if path in str(x.get("before_header", "")) + str(x.get("after_header", ""))), None)
        if not isinstance(d, dict):
            broken["diff"] = "diff mode returned no diff for %s" % path
        elif d.get("before", "") != (text or "") or d.get("after", "") != out_text:
            broken["diff"] = "the diff's before/after differ from the file's real contents"

    want_restart = before != after
    got_restart = res.json.get("restart_required")
    if got_restart is not want_restart or again.json.get("restart_required") not in (False,):
        broken["restart"] = "restart_required=%r (then %r), loaded config %s" % (
            got_restart, again.json.get("restart_required"), "changed" if want_restart else "unchanged")
    return broken, text, args


def run_cases(seeds, workdir, keep_failures=None, on_case=None):
    """Runs the cases; returns ({property: [(seed, problem)]}, number of cases run)."""
    failures = {p: [] for p in PROPERTIES}
    n = 0
    for seed in seeds:
        broken, text, args = check_case(seed, workdir)
        n += 1
        for prop, problem in broken.items():
            failures[prop].append((seed, problem))
            if keep_failures and len(failures[prop]) <= 5:
                d = os.path.join(keep_failures, "%s-seed-%d" % (prop, seed))
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "input.toml"), "w") as f:
                    f.write(text if text is not None else "")
                with open(os.path.join(d, "args.json"), "w") as f:
                    json.dump(args, f, indent=1)
                with open(os.path.join(d, "problem.txt"), "w") as f:
                    f.write(problem + "\n")
        if on_case:
            on_case(n, failures)
    return failures, n


def stage(ledger, cases=300, seed=20261127):
    """The short run inside tests/reliability/run: a fixed set of seeds, one ledger line per property."""
    workdir = tempfile.mkdtemp(prefix="props-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    t0 = time.monotonic()
    failures, n = run_cases(range(seed, seed + cases), workdir)
    ledger.note("property tests: %d cases in %.1f s" % (n, time.monotonic() - t0))
    for prop in PROPERTIES:
        f = failures[prop]
        ledger.check("containerd edit property %s (%d cases)" % (prop, n), not f,
                     "" if not f else "%d cases broke it, first seed %d: %s" % (len(f), f[0][0], f[0][1]))
    shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--replay", type=int)
    ap.add_argument("--keep-failures", default=None)
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="props-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    if a.replay is not None:
        broken, text, args = check_case(a.replay, workdir)
        print("input:\n%s\nargs: %s\nbroken: %s" % (text, json.dumps(args), json.dumps(broken, indent=1)))
        return 1 if broken else 0
    t0 = time.monotonic()

    def seeds():
        s = a.seed
        while True:
            if a.seconds and time.monotonic() - t0 >= a.seconds:
                return
            if not a.seconds and s - a.seed >= a.cases:
                return
            yield s
            s += 1

    def progress(n, failures):
        if n % 1000 == 0:
            bad = sum(len(v) for v in failures.values())
            print("%7d cases  %6.0f s  %d property failures" % (n, time.monotonic() - t0, bad), flush=True)

    failures, n = run_cases(seeds(), workdir, a.keep_failures, progress)
    took = time.monotonic() - t0
    print("seeds %d..%d: %d cases in %.0f s (%.1f cases/s)" % (a.seed, a.seed + n - 1, n, took, n / max(took, 1e-9)))
    for prop in PROPERTIES:
        f = failures[prop]
        print("  %-11s %s" % (prop, "held" if not f else "BROKEN in %d cases, e.g. seed %d: %s" % (
            len(f), f[0][0], f[0][1])))
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
