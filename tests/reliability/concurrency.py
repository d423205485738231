"""Concurrent runs of containerd_runtime on one config: 16 at once must end exactly as running them one by one.

- 16 different runtime names at once: every runtime is present, and the parsed config equals the sequential
  result (byte order may differ: tables are appended in whatever order the runs got the lock).
- 16 runs of the same name at once: the bytes equal a single run's, and exactly one run reports changed.
Each is repeated a few rounds to give races a chance; no temporary file may be left behind.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import tomllib

import configs
import harness

N = 16


def _args(path, i):
    return {"path": path, "name": "nvidia-%02d" % i, "binary_path": "/usr/bin/nvidia-container-runtime-%02d" % i,
            "validate": "none"}


def _at_once(arg_files):
    """Starts one module process per args file at the same moment; returns their Results."""
    exe = harness.module_path("containerd_runtime")
    barrier = threading.Barrier(len(arg_files))
    results = [None] * len(arg_files)

    def one(i):
        barrier.wait()
        p = subprocess.run([exe, arg_files[i]], capture_output=True)
        results[i] = harness.Result(p.returncode, p.stdout, p.stderr, 0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(arg_files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def stage(ledger, root, rounds=5):
    work = tempfile.mkdtemp(prefix="conc-", dir=root)
    ref_dir = tempfile.mkdtemp(prefix="conc-ref-", dir=root)
    args_dir = tempfile.mkdtemp(prefix="args-", dir=root)
    old = configs.base_config(2)
    path = os.path.join(work, "config.toml")
    ref = os.path.join(ref_dir, "config.toml")

    # Sequential reference: the 16 names one after another.
    with open(ref, "w") as f:
        f.write(old)
    for i in range(N):
        res = harness.run_module("containerd_runtime", _args(ref, i), args_dir)
        if res.failed or harness.no_crash_problem(res):
            ledger.check("concurrency", False, "a sequential run failed: %s" % res.summary())
            return
    with open(ref, "rb") as f:
        seq = tomllib.loads(f.read().decode())
    runtimes = seq["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    missing = [i for i in range(N) if "nvidia-%02d" % i not in runtimes]

    distinct_bad, same_bad = [], []
    files = [harness.write_args(_args(path, i), args_dir) for i in range(N)]
    same = [harness.write_args(_args(path, 0), args_dir) for _ in range(N)]
    single = None
    for r in range(rounds):
        with open(path, "w") as f:
            f.write(old)
        results = _at_once(files)
        errs = [x.summary() for x in results if x.failed or harness.no_crash_problem(x)]
        with open(path, "rb") as f:
            got = tomllib.loads(f.read().decode())
        if errs:
            distinct_bad.append("round %d: %d runs failed, e.g. %s" % (r, len(errs), errs[0]))
        elif got != seq:
            have = sorted(got["plugins"]["io.containerd.grpc.v1.cri"]["containerd"].get("runtimes", {}))
            distinct_bad.append("round %d: differs from the sequential result; runtimes %s" % (r, have))
        leftovers = [n for n in os.listdir(work) if n != "config.toml"]
        if leftovers:
            distinct_bad.append("round %d: left %s" % (r, leftovers[:3]))

        with open(path, "w") as f:
            f.write(old)
        if single is None:
            harness.run_module("containerd_runtime", _args(path, 0), args_dir)
            with open(path, "rb") as f:
                single = f.read()
            with open(path, "w") as f:
                f.write(old)
        results = _at_once(same)
        with open(path, "rb") as f:
            got_bytes = f.read()
        errs = [x.summary() for x in results if x.failed or harness.no_crash_problem(x)]
        changed = sum(1 for x in results if x.changed)
        if errs:
            same_bad.append("round %d: %d runs failed, e.g. %s" % (r, len(errs), errs[0]))
        if got_bytes != single:
            same_bad.append("round %d: bytes differ from a single run" % r)
        if changed != 1:
            same_bad.append("round %d: %d runs reported changed (one should)" % (r, changed))
    ledger.check("concurrency: sequential reference has all %d runtimes" % N, not missing, "missing %s" % missing)
    ledger.check("concurrency: %d runs with different names at once = sequential result (%d rounds)" % (N, rounds),
                 not distinct_bad, "; ".join(distinct_bad[:3]))
    ledger.check("concurrency: %d runs of one name at once = one run, exactly one changed (%d rounds)" % (N, rounds),
                 not same_bad, "; ".join(same_bad[:3]))
    for d in (work, ref_dir, args_dir):
        shutil.rmtree(d, ignore_errors=True)
