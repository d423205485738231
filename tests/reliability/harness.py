"""What every reliability test shares: calling a built module as Ansible does, snapshots of folders to prove
that nothing changed, and the sandbox that keeps package tools away from the host. (The pass/fail tally is
tests/pylib/checks.py's, which every test driver shares.)

A module is called as Ansible calls a binary module: `library/NAME ARGS_FILE`, one JSON object on stdout.
"""

import hashlib
import json
import os
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIBRARY = os.environ.get("MODULE_LIBRARY", os.path.join(ROOT, "library"))
SANDBOX = os.path.join(HERE, "sandbox")


def module_path(name):
    return os.path.join(LIBRARY, name)


class Result:
    """One module run: exit code, raw output, and the parsed JSON object (None when stdout was not one)."""

    def __init__(self, rc, stdout, stderr, seconds):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.json = None
        self.parse_error = None
        text = stdout.decode("utf-8", "replace").strip()
        try:
            value = json.loads(text)
            if isinstance(value, dict):
                self.json = value
            else:
                self.parse_error = "stdout is JSON but not an object"
        except ValueError as e:
            self.parse_error = "stdout is not one JSON object: %s: %r" % (e, text[:300])

    @property
    def failed(self):
        return bool(self.json and self.json.get("failed"))

    @property
    def changed(self):
        return bool(self.json and self.json.get("changed"))

    @property
    def msg(self):
        return str((self.json or {}).get("msg", ""))

    def summary(self):
        if self.json is None:
            return "rc=%s %s stderr=%r" % (self.rc, self.parse_error, self.stderr[-300:])
        return "rc=%s failed=%s changed=%s msg=%r" % (self.rc, self.failed, self.changed, self.msg[:400])


def write_args(args, folder):
    """Writes an args file: a dict becomes JSON, bytes are written as they are (for broken args files)."""
    fd, path = tempfile.mkstemp(prefix="args-", suffix=".json", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(args if isinstance(args, bytes) else json.dumps(args).encode())
    return path


def run_module(name, args, folder, argv=None, env=None, sandbox_log=None, timeout=120):
    """Runs module `name` with `args` (dict, bytes, or None for no args file at all).

    `argv` replaces the argument list (to pass a missing file). `sandbox_log`: run inside the sandbox (a private
    mount namespace where apt/dpkg are loggers and the system apt folders are empty scratch folders).
    """
    exe = module_path(name)
    if argv is None:
        argv = [] if args is None else [write_args(args, folder)]
    cmd = [exe] + argv
    if sandbox_log is not None:
        cmd = ["unshare", "--mount", "--propagation", "private", SANDBOX, sandbox_log] + cmd
    full_env = dict(os.environ)
    full_env.update(env or {})
    t0 = time.monotonic()
    # The folder is also the working directory: a module that accepts a relative path writes there, never
    # into the repository.
    p = subprocess.run(cmd, capture_output=True, env=full_env, timeout=timeout, cwd=folder)
    return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def snapshot(folder):
    """Everything about a folder tree that a module could change: names, types, modes, owners, link targets and
    content hashes. Two equal snapshots mean the tree was left as it was."""
    out = {}
    if not os.path.lexists(folder):
        return {"": "missing"}
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, folder)
            st = os.lstat(p)
            entry = (st.st_mode, st.st_uid, st.st_gid)
            if os.path.islink(p):
                entry += ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    entry += ("file", hashlib.sha256(f.read()).hexdigest())
            out[rel] = entry
    return out


def snapshot_diff(before, after):
    """A short description of what differs between two snapshots (empty when equal)."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = []
    if added:
        parts.append("added %s" % added[:5])
    if removed:
        parts.append("removed %s" % removed[:5])
    if changed:
        parts.append("changed %s" % changed[:5])
    return "; ".join(parts)


def no_crash_problem(res):
    """Why a result is not a clean module answer (None when it is one): a panic, a signal, or stdout that is
    not exactly one JSON object."""
    if res.json is None:
        return res.parse_error
    if "crashed" in res.msg or b"panicked" in res.stderr:
        return "the module crashed: %s" % res.msg[:300]
    if res.rc not in (0, 1):
        return "exit code %s (a signal or an abort?)" % res.rc
    return None
