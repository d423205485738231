"""Functional test of the one-round-trip action plugin (plugins/plugin_utils/binary_cache.py), run by real
ansible-playbook against localhost (local connection; the node is this machine).

usage: plugin_test.py ANSIBLE_PLAYBOOK PROBE_BINARY

Each case runs one task of a probe module (tests/plugin/probe.rs: it answers with the path it ran from and the
arguments it read) under -vvv, counts the remote steps Ansible logged for that task (EXEC = one remote command,
PUT = one upload) and checks the result. The plugin under test is a copy of the real files under their real
names' pattern: plugin_utils/binary_cache.py beside action/, with a module plugin file copied from
plugins/action/containerd_runtime.py (the plain clone's layout, which the plugin loads it from).
"""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK, PROBE = sys.argv[1], sys.argv[2]
MODULE = "gpunode_probe"

failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
        print(f"   ok   {what}")
    else:
        failures.append(what)
        print(f"   FAIL {what}")


class Workspace:
    """A temporary library + action plugin folder, a cache dir on the 'node' and a result file."""

    def __init__(self, top):
        self.top = top
        self.library = os.path.join(top, "library")
        self.actions = os.path.join(top, "action")
        self.cache = os.path.join(top, "home", "modules")
        self.result = os.path.join(top, "result.json")
        os.makedirs(self.library)
        os.makedirs(self.actions)
        os.makedirs(os.path.dirname(self.cache))
        # An empty config: the project's ansible.cfg (found through the working directory) must not interfere.
        with open(os.path.join(top, "empty.cfg"), "w") as f:
            f.write("[defaults]\n")
        shutil.copy(PROBE, os.path.join(self.library, MODULE))
        os.makedirs(os.path.join(top, "plugin_utils"))
        shutil.copy(os.path.join(ROOT, "plugins/plugin_utils/binary_cache.py"), os.path.join(top, "plugin_utils"))
        shutil.copy(os.path.join(ROOT, "plugins/action/containerd_runtime.py"),
                    os.path.join(self.actions, MODULE + ".py"))

    def digest(self):
        with open(os.path.join(self.library, MODULE), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def cached_file(self):
        return os.path.join(self.cache, f"{MODULE}-{self.digest()}")

    def run(self, args=None, extra_vars=None, check_mode=False, env=None, cache_dir=None):
        """Runs the probe task once; returns (result dict, EXEC count, PUT count, full output)."""
        task_vars = {"gpunode_module_cache_dir": cache_dir or self.cache, "ansible_python_interpreter": sys.executable}
        task_vars.update(extra_vars or {})
        play = [{
            "hosts": "localhost", "gather_facts": False, "vars": task_vars,
            "tasks": [
                {"name": "probe", MODULE: args or {}, "register": "r", "ignore_errors": True},
                {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": self.result},
                 "check_mode": False},
            ],
        }]
        path = os.path.join(self.top, "play.yml")
        with open(path, "w") as f:
            json.dump(play, f)  # JSON is YAML
        cmd = [PLAYBOOK, "-i", "localhost,", "-c", "local", "-vvv", path] + (["--check"] if check_mode else [])
        full_env = dict(os.environ, ANSIBLE_LIBRARY=self.library, ANSIBLE_ACTION_PLUGINS=self.actions,
                        ANSIBLE_CONFIG=os.path.join(self.top, "empty.cfg"), ANSIBLE_NOCOLOR="1")
        full_env.update(env or {})
        if os.path.exists(self.result):
            os.unlink(self.result)
        out = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=120)
        text = out.stdout + out.stderr
        m = re.search(r"TASK \[probe\].*?(?=TASK \[save\])", text, re.S)
        if out.returncode != 0 or not m:
            print(text)
            raise SystemExit(f"ansible-playbook failed (rc {out.returncode})")
        section = m.group(0)
        execs = len(re.findall(r"^<localhost> EXEC ", section, re.M))
        puts = len(re.findall(r"^<localhost> PUT ", section, re.M))
        with open(self.result) as f:
            result = json.load(f)
        return result, execs, puts, section


def main():
    top = tempfile.mkdtemp(prefix="gpunode-plugin-test-")
    try:
        ws = Workspace(top)
        args = {"name": "runtime \u00e9", "count": 3, "nested": {"k": [1, "two"]}}

        print("-- cold cache: upload once, install, run from the cache")
        r, execs, puts, _ = ws.run(args)
        check(r.get("msg") == "probe ran" and not r.get("failed"), "module ran and succeeded")
        check(r.get("exe") == ws.cached_file(), f"ran from the cache file named by its sha256 ({r.get('exe')})")
        check(r.get("args_path") == "/dev/stdin", "arguments arrived on stdin")
        check({k: r["args"].get(k) for k in args} == args, "module arguments intact (unicode, nested)")
        check(puts == 1, f"one upload (the binary; no args file), saw {puts}")
        mode = stat.S_IMODE(os.stat(ws.cache).st_mode)
        check(mode == 0o700, f"cache dir mode 0700 (saw {oct(mode)})")
        check(stat.S_IMODE(os.stat(ws.cached_file()).st_mode) == 0o700, "cached binary mode 0700")

        print("-- warm cache: one round trip")
        r, execs, puts, _ = ws.run(args)
        check(execs == 1 and puts == 0, f"one remote command, no upload (saw {execs} EXEC, {puts} PUT)")
        check(r.get("exe") == ws.cached_file() and r["args"].get("count") == 3, "same result from the cache")
        check(context(r).get("_ansible_module_name") == MODULE, "Ansible's context keys passed (_ansible_module_name)")

        print("-- check mode reaches the module")
        r, execs, _, _ = ws.run(args, check_mode=True)
        check(execs == 1 and context(r).get("_ansible_check_mode") is True, "_ansible_check_mode true, one round trip")

        print("-- check mode on a cold cache: the module runs, the cache is not written")
        cold = os.path.join(top, "home", "check-cold")
        r, _, puts, _ = ws.run(args, check_mode=True, cache_dir=cold)
        check(r.get("msg") == "probe ran" and context(r).get("_ansible_check_mode") is True,
              "the module ran in check mode")
        check(not os.path.exists(cold) and "AnsiballZ_" in r.get("exe", ""),
              f"no cache folder created; ran the plain protocol's upload ({r.get('exe')})")

        print("-- failure result passes through")
        r, _, _, _ = ws.run({"fail": True})
        check(r.get("failed") is True and r.get("msg") == "probe asked to fail", "failed: true and msg kept")

        print("-- gpunode_module_cache: false gives the plain protocol, same module result")
        plain, execs, puts, _ = ws.run(args, extra_vars={"gpunode_module_cache": False})
        check(puts == 2 and execs >= 3, f"plain protocol: binary + args file uploaded ({execs} EXEC, {puts} PUT)")
        check("AnsiballZ_" in plain.get("exe", "") and plain.get("args_path", "").endswith("/args"),
              "plain protocol ran the uploaded AnsiballZ_ file with an args file")
        strip = {"_ansible_tmpdir", "_ansible_remote_tmp"}
        same = {k: v for k, v in context(plain).items() if k not in strip} == \
            {k: v for k, v in r_args(ws, args).items() if k not in strip}
        check(same, "the module saw the same arguments either way")

        print("-- a cache dir others can write is not trusted")
        os.chmod(ws.cache, 0o777)
        r, execs, puts, _ = ws.run(args)
        check(r.get("exe") != ws.cached_file() and r.get("msg") == "probe ran",
              f"did not run from the shared dir; ran the uploaded copy ({r.get('exe')})")
        check("@@gpunode" not in (r.get("module_stderr") or "") and not r.get("failed"), "marker not leaked")
        os.chmod(ws.cache, 0o700)
        r, execs, _, _ = ws.run(args)
        check(execs == 1 and r.get("exe") == ws.cached_file(), "private again: one round trip")

        print("-- a symlinked cache dir is not trusted")
        real = ws.cache + ".real"
        os.rename(ws.cache, real)
        os.symlink(real, ws.cache)
        r, _, _, _ = ws.run(args)
        check(not r.get("exe", "").startswith(ws.cache + "/") and r.get("msg") == "probe ran",
              "did not run through the symlink")
        os.unlink(ws.cache)
        os.rename(real, ws.cache)

        print("-- a cached file owned by someone else is replaced, not run")
        os.chown(ws.cached_file(), 65534, 65534)
        r, execs, puts, _ = ws.run(args)
        check(puts == 1 and os.stat(ws.cached_file()).st_uid == os.getuid(),
              "re-uploaded and replaced by our own copy")
        r, execs, _, _ = ws.run(args)
        check(execs == 1, "then one round trip again")

        print("-- a new binary version: miss, install, older version removed")
        old = ws.cached_file()
        with open(os.path.join(ws.library, MODULE), "ab") as f:
            f.write(b"\0version-2")  # still the same ELF program; a different sha256
        r, _, puts, _ = ws.run(args)
        check(puts == 1 and r.get("exe") == ws.cached_file() and ws.cached_file() != old, "new version cached")
        check(not os.path.exists(old), "old version removed")

        print("-- no sha256sum on the node: runs the uploaded copy, caches nothing")
        bare = os.path.join(top, "bare-bin")
        os.makedirs(bare)
        for tool in ("sh", "ls", "mkdir", "chmod", "rm", "cp", "mv", "cat", "echo", "sleep"):
            found = shutil.which(tool)
            if found:
                os.symlink(found, os.path.join(bare, tool))
        empty_cache = os.path.join(top, "home", "nosum")
        venv_bin = os.path.dirname(PLAYBOOK)
        r, _, puts, _ = ws.run(args, cache_dir=empty_cache, env={"PATH": f"{venv_bin}:{bare}"})
        check(r.get("msg") == "probe ran" and puts == 1 and "AnsiballZ_" not in r.get("exe", ""),
              f"ran the uploaded copy ({r.get('exe')})")
        check(not os.path.exists(os.path.join(empty_cache, f"{MODULE}-{ws.digest()}")), "nothing cached unverified")

        print("-- cache on a noexec mount: falls back to the plain protocol")
        noexec = os.path.join(top, "noexec")
        os.makedirs(noexec)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,mode=700", "tmpfs", noexec],
                                 capture_output=True).returncode == 0
        if not mounted:
            print("   SKIP cannot mount a tmpfs here (needs root); noexec case not run")
        else:
            try:
                cache = os.path.join(noexec, "modules")
                r, _, _, _ = ws.run(args, cache_dir=cache)
                check(r.get("msg") == "probe ran" and "AnsiballZ_" in r.get("exe", ""),
                      "cold: installed, exec refused (126), plain protocol ran it")
                r, execs, puts, _ = ws.run(args, cache_dir=cache)
                check(r.get("msg") == "probe ran" and puts == 2 and execs == 6,
                      f"warm: noexec seen in the first command, then plain protocol ({execs} EXEC, {puts} PUT)")
            finally:
                subprocess.run(["umount", noexec])
    finally:
        shutil.rmtree(top, ignore_errors=True)

    print(f"\nplugin test: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def context(result):
    """Everything the module read, `_ansible_*` keys included (Ansible strips those from nested results)."""
    return json.loads(result["args_text"])


def r_args(ws, args):
    """The arguments the module saw through the cache, for comparing with the plain protocol."""
    r, _, _, _ = ws.run(args)
    return context(r)


if __name__ == "__main__":
    sys.exit(main())
