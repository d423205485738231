"""Faults while containerd_runtime writes: SIGKILL at random moments, a full disk, a read-only file system.

SIGKILL: a large config (several MB, so reading, editing and writing take measurable time) is edited again and
again, each run killed after a random delay spread over a whole run's duration. After every kill the file must be
exactly the old or exactly the new content, with its owner and mode; leftovers of killed runs are counted and must
not be something containerd would load (`*.toml` in a folder it imports) or that breaks the next run.

Full disk and read-only: the run fails with a message that names the cause, and the folder is left as it was.
"""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

import configs
import harness

OWNER = (4321, 4321)
MODE = 0o640


def _args(path, **extra):
    a = {"path": path, "name": "nvidia", "binary_path": "/usr/bin/nvidia-container-runtime", "validate": "none"}
    a.update(extra)
    return a


def _put(path, data):
    """Restores the old content atomically (the test's own write must not be the thing that leaves partial files)."""
    tmp = path + ".restore"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chown(tmp, *OWNER)
    os.chmod(tmp, MODE)
    os.replace(tmp, path)


def sigkill(ledger, root, trials=200, size=512 * 1024):
    work = tempfile.mkdtemp(prefix="crash-", dir=root)
    path = os.path.join(work, "config.toml")
    old = configs.large_config(size).encode()
    _put(path, old)
    args_dir = tempfile.mkdtemp(prefix="args-", dir=root)
    args_file = harness.write_args(_args(path), args_dir)
    exe = harness.module_path("containerd_runtime")

    # The new content, how long one whole run takes, and when inside it the write happens (median of three
    # clean runs watched from outside: the temporary file's appearance, then the swap of the config's inode).
    runs = []
    new = None
    for _ in range(3):
        _put(path, old)
        t = _watch(exe, args_file, work, path)
        if t is None:
            ledger.check("SIGKILL trials", False, "the module cannot edit the %d-byte config" % len(old))
            return
        runs.append(t)
        with open(path, "rb") as f:
            new = f.read()
    run_s, t_tmp, t_swap = (sorted(r[i] for r in runs)[1] for i in range(3))
    if new == old:
        ledger.check("SIGKILL trials", False, "the clean run did not change the config")
        return
    ledger.note("SIGKILL: config %d bytes, one run %.1f ms, temp file at %s ms, swap at %.1f ms (medians of 3)" % (
        len(old), run_s * 1000, "%.1f" % (t_tmp * 1000) if t_tmp else "(unseen)", t_swap * 1000))
    # A third of the kills at a random moment of the run; the rest aimed at the write: wait until the temporary
    # file appears, then kill after a random part of the measured write window (timers alone miss it on a
    # loaded machine, where run times vary more than the window is long).
    window = max(t_swap - t_tmp, 0.001) * 1.3 if t_tmp else 0.005

    rng = random.Random(4242)
    counts = {"old": 0, "new": 0, "finished": 0, "mid-write": 0}
    bad = []
    for i in range(trials):
        _put(path, old)
        listing = set(os.listdir(work))
        aimed = i % 3 != 0
        delay = rng.uniform(0, window) if aimed else rng.uniform(0, run_s * 1.1)
        proc = subprocess.Popen([exe, args_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if aimed:
            while proc.poll() is None and not set(os.listdir(work)) - listing:
                time.sleep(0.0001)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        if rc != -signal.SIGKILL:
            counts["finished"] += 1
        if set(os.listdir(work)) - listing:
            counts["mid-write"] += 1       # a temporary file was left: the kill landed inside the write
        try:
            with open(path, "rb") as f:
                now = f.read()
            st = os.stat(path)
        except FileNotFoundError:
            bad.append("trial %d: the config is missing" % i)
            continue
        if now == old:
            counts["old"] += 1
        elif now == new:
            counts["new"] += 1
        else:
            bad.append("trial %d (kill %.1f ms after %s): partial content, %d bytes" % (i, delay * 1000, "the temp file" if aimed else "the start", len(now)))
        if (st.st_uid, st.st_gid) != OWNER or (st.st_mode & 0o7777) != MODE:
            bad.append("trial %d: owner/mode now %d:%d %o" % (i, st.st_uid, st.st_gid, st.st_mode & 0o7777))
    leftovers = sorted(n for n in os.listdir(work) if n != "config.toml")
    ledger.note("SIGKILL: %d trials (%d aimed at the write): %d old, %d new, %d ran to the end, %d killed inside the write; %d leftover files%s" % (
        trials, trials - (trials + 2) // 3, counts["old"], counts["new"], counts["finished"], counts["mid-write"], len(leftovers),
        (" (e.g. %s)" % leftovers[0]) if leftovers else ""))
    ledger.check("SIGKILL: the config is always exactly old or new, owner and mode kept (%d trials)" % trials,
                 not bad, "; ".join(bad[:5]))
    ledger.check("SIGKILL: kills landed before, inside and after the write",
                 counts["old"] > 0 and counts["new"] > 0 and counts["mid-write"] > 0,
                 "old %d, new %d, inside the write %d" % (counts["old"], counts["new"], counts["mid-write"]))
    loadable = [n for n in leftovers if n.endswith(".toml")]
    ledger.check("SIGKILL: leftovers are never *.toml (containerd's imports glob would load them)", not loadable,
                 ", ".join(loadable[:3]))
    # A run after all those kills works and gives the same result.
    _put(path, old)
    res = harness.run_module("containerd_runtime", _args(path), args_dir)
    with open(path, "rb") as f:
        after = f.read()
    ledger.check("SIGKILL: a run after the kills succeeds with the same result",
                 not res.failed and after == new, res.summary())
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(args_dir, ignore_errors=True)


def _watch(exe, args_file, folder, path):
    """Runs the module once while watching the folder; returns (run time, first time a new entry appeared or
    None, time the config's inode changed), or None when the run failed."""
    listing = set(os.listdir(folder))
    ino = os.stat(path).st_ino
    t_tmp = t_swap = None
    t0 = time.monotonic()
    proc = subprocess.Popen([exe, args_file], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while proc.poll() is None:
        time.sleep(0.0001)
        now = time.monotonic() - t0
        try:
            if t_tmp is None and set(os.listdir(folder)) - listing:
                t_tmp = now
            if t_swap is None and os.stat(path).st_ino != ino:
                t_swap = now
        except FileNotFoundError:
            pass
    run_s = time.monotonic() - t0
    out, err = proc.communicate()
    res = harness.Result(proc.returncode, out, err, run_s)
    if res.failed or harness.no_crash_problem(res):
        print("   the clean run failed: %s" % res.summary())
        return None
    if t_swap is None:
        t_swap = run_s
    return run_s, t_tmp or 0.0, t_swap


def _mount(*args):
    subprocess.run(["mount"] + list(args), check=True, capture_output=True)


def _umount(point):
    subprocess.run(["umount", "-l", point], capture_output=True)


def _fill(folder):
    """Fills a file system up with one file (written until ENOSPC)."""
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def full_disk(ledger, root):
    point = tempfile.mkdtemp(prefix="full-", dir=root)
    try:
        _mount("-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", point)
    except subprocess.CalledProcessError as e:
        ledger.check("full disk", False, "cannot mount a tmpfs: %s" % e.stderr.decode().strip())
        return
    args_dir = tempfile.mkdtemp(prefix="args-", dir=root)
    try:
        path = os.path.join(point, "config.toml")
        old = configs.large_config(200 * 1024).encode()
        _put(path, old)
        _fill(point)
        for label, extra in (("plain", {}), ("backup: true", {"backup": True})):
            before = harness.snapshot(point)
            res = harness.run_module("containerd_runtime", _args(path, **extra), args_dir)
            after = harness.snapshot(point)
            problem = harness.no_crash_problem(res)
            if not problem and not res.failed:
                problem = "did not fail: %s" % res.summary()
            elif not problem and "no space" not in res.msg.lower():
                problem = "message does not name the cause: %r" % res.msg[:300]
            if before != after:
                problem = (problem + "; " if problem else "") + "files changed: %s" % harness.snapshot_diff(before, after)
            ledger.check("full disk (%s): clear error, files untouched" % label, not problem, problem or res.msg[:120])
    finally:
        _umount(point)
        shutil.rmtree(args_dir, ignore_errors=True)
        os.rmdir(point)


def read_only(ledger, root):
    src = tempfile.mkdtemp(prefix="ro-src-", dir=root)
    point = tempfile.mkdtemp(prefix="ro-", dir=root)
    path = os.path.join(point, "config.toml")
    # An nvidia runtime with another binary: both `present` (new BinaryName) and `absent` must write.
    nvidia = ('\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n'
              '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
              '  BinaryName = "/usr/local/bin/nvidia-container-runtime"\n')
    _put(os.path.join(src, "config.toml"), (configs.base_config(2) + nvidia).encode())
    try:
        _mount("--bind", src, point)
        _mount("-o", "remount,bind,ro", point)
    except subprocess.CalledProcessError as e:
        ledger.check("read-only file system", False, "cannot make a read-only bind mount: %s" % e.stderr.decode().strip())
        return
    args_dir = tempfile.mkdtemp(prefix="args-", dir=root)
    try:
        before = harness.snapshot(src)
        for label, extra in (("plain", {}), ("backup: true", {"backup": True}), ("state: absent", {"state": "absent"})):
            res = harness.run_module("containerd_runtime", _args(path, **extra), args_dir)
            problem = harness.no_crash_problem(res)
            if not problem and not res.failed:
                problem = "did not fail: %s" % res.summary()
            elif not problem and "read-only" not in res.msg.lower():
                problem = "message does not name the cause: %r" % res.msg[:300]
            after = harness.snapshot(src)
            if before != after:
                problem = (problem + "; " if problem else "") + "files changed: %s" % harness.snapshot_diff(before, after)
            ledger.check("read-only file system (%s): clear error, files untouched" % label, not problem,
                         problem or res.msg[:120])
        # Check mode only reads: it must still answer (and predict the change) on a read-only file system.
        res = harness.run_module("containerd_runtime", _args(path, _ansible_check_mode=True), args_dir)
        ledger.check("read-only file system: check mode still predicts the change",
                     not harness.no_crash_problem(res) and not res.failed and res.changed, res.summary())
    finally:
        _umount(point)
        shutil.rmtree(args_dir, ignore_errors=True)
        os.rmdir(point)
        shutil.rmtree(src, ignore_errors=True)
