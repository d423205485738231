"""Functional test of the one-round-trip action plugin (plugins/plugin_utils/binary_cache.py), run by real
ansible-playbook against localhost (local connection; the node is this machine).

usage: plugin_test.py ANSIBLE_PLAYBOOK PROBE_BINARY [--only NAME]

Each case runs one task of a probe module (tests/plugin/probe.rs: it answers with the path it ran from and the
arguments it read) under -vvv, counts the remote steps Ansible logged for that task (EXEC = one remote command,
PUT = one upload) and checks the result. The plugin under test is a copy of the real files under their real
names' pattern: plugin_utils/binary_cache.py beside action/, with a module plugin file copied from
plugins/action/containerd_runtime.py (the plain clone's layout, which the plugin loads it from).
The cases build on each other (one module cache): `--only NAME` (or TEST_ONLY=NAME) runs the cases up to the
first whose name holds NAME (tests/pylib/checks.py).
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
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from checks import Tally  # noqa: E402

tally = Tally("plugin test", chained=True)  # takes --only out of sys.argv
PLAYBOOK, PROBE = sys.argv[1], sys.argv[2]
MODULE = "gpunode_probe"


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

        if tally.case("cold cache: upload once, install, run from the cache"):
            r, execs, puts, _ = ws.run(args)
            tally.check("module ran and succeeded", r.get("msg") == "probe ran" and not r.get("failed"))
            tally.check(f"ran from the cache file named by its sha256 ({r.get('exe')})",
                        r.get("exe") == ws.cached_file())
            tally.check("arguments arrived on stdin", r.get("args_path") == "/dev/stdin")
            tally.check("module arguments intact (unicode, nested)", {k: r["args"].get(k) for k in args} == args)
            tally.check(f"one upload (the binary; no args file), saw {puts}", puts == 1)
            mode = stat.S_IMODE(os.stat(ws.cache).st_mode)
            tally.check(f"cache dir mode 0700 (saw {oct(mode)})", mode == 0o700)
            tally.check("cached binary mode 0700", stat.S_IMODE(os.stat(ws.cached_file()).st_mode) == 0o700)

        if tally.case("warm cache: one round trip"):
            r, execs, puts, _ = ws.run(args)
            tally.check(f"one remote command, no upload (saw {execs} EXEC, {puts} PUT)", execs == 1 and puts == 0)
            tally.check("same result from the cache",
                        r.get("exe") == ws.cached_file() and r["args"].get("count") == 3)
            tally.check("Ansible's context keys passed (_ansible_module_name)",
                        context(r).get("_ansible_module_name") == MODULE)

        if tally.case("check mode reaches the module"):
            r, execs, _, _ = ws.run(args, check_mode=True)
            tally.check("_ansible_check_mode true, one round trip",
                        execs == 1 and context(r).get("_ansible_check_mode") is True)

        if tally.case("check mode on a cold cache: the module runs, the cache is not written"):
            cold = os.path.join(top, "home", "check-cold")
            r, _, puts, _ = ws.run(args, check_mode=True, cache_dir=cold)
            tally.check("the module ran in check mode",
                        r.get("msg") == "probe ran" and context(r).get("_ansible_check_mode") is True)
            tally.check(f"no cache folder created; ran the plain protocol's upload ({r.get('exe')})",
                        not os.path.exists(cold) and "AnsiballZ_" in r.get("exe", ""))

        if tally.case("failure result passes through"):
            r, _, _, _ = ws.run({"fail": True})
            tally.check("failed: true and msg kept", r.get("failed") is True and r.get("msg") == "probe asked to fail")

        if tally.case("gpunode_module_cache: false gives the plain protocol, same module result"):
            plain, execs, puts, _ = ws.run(args, extra_vars={"gpunode_module_cache": False})
            tally.check(f"plain protocol: binary + args file uploaded ({execs} EXEC, {puts} PUT)",
                        puts == 2 and execs >= 3)
            tally.check("plain protocol ran the uploaded AnsiballZ_ file with an args file",
                        "AnsiballZ_" in plain.get("exe", "") and plain.get("args_path", "").endswith("/args"))
            strip = {"_ansible_tmpdir", "_ansible_remote_tmp"}
            same = {k: v for k, v in context(plain).items() if k not in strip} == \
                {k: v for k, v in r_args(ws, args).items() if k not in strip}
            tally.check("the module saw the same arguments either way", same)

        if tally.case("a cache dir others can write is not trusted"):
            os.chmod(ws.cache, 0o777)
            r, execs, puts, _ = ws.run(args)
            tally.check(f"did not run from the shared dir; ran the uploaded copy ({r.get('exe')})",
                        r.get("exe") != ws.cached_file() and r.get("msg") == "probe ran")
            tally.check("marker not leaked",
                        "@@gpunode" not in (r.get("module_stderr") or "") and not r.get("failed"))
            os.chmod(ws.cache, 0o700)
            r, execs, _, _ = ws.run(args)
            tally.check("private again: one round trip", execs == 1 and r.get("exe") == ws.cached_file())

        if tally.case("a symlinked cache dir is not trusted"):
            real = ws.cache + ".real"
            os.rename(ws.cache, real)
            os.symlink(real, ws.cache)
            r, _, _, _ = ws.run(args)
            tally.check("did not run through the symlink",
                        not r.get("exe", "").startswith(ws.cache + "/") and r.get("msg") == "probe ran")
            os.unlink(ws.cache)
            os.rename(real, ws.cache)

        if tally.case("a cached file owned by someone else is replaced, not run"):
            os.chown(ws.cached_file(), 65534, 65534)
            r, execs, puts, _ = ws.run(args)
            tally.check("re-uploaded and replaced by our own copy",
                        puts == 1 and os.stat(ws.cached_file()).st_uid == os.getuid())
            r, execs, _, _ = ws.run(args)
            tally.check("then one round trip again", execs == 1)

        if tally.case("a new binary version: miss, install, older version removed"):
            old = ws.cached_file()
            with open(os.path.join(ws.library, MODULE), "ab") as f:
                f.write(b"\0version-2")  # still the same ELF program; a different sha256
            r, _, puts, _ = ws.run(args)
            tally.check("new version cached",
                        puts == 1 and r.get("exe") == ws.cached_file() and ws.cached_file() != old)
            tally.check("old version removed", not os.path.exists(old))

        if tally.case("no sha256sum on the node: runs the uploaded copy, caches nothing"):
            bare = os.path.join(top, "bare-bin")
            os.makedirs(bare)
            for tool in ("sh", "ls", "mkdir", "chmod", "rm", "cp", "mv", "cat", "echo", "sleep"):
                found = shutil.which(tool)
                if found:
                    os.symlink(found, os.path.join(bare, tool))
            empty_cache = os.path.join(top, "home", "nosum")
            venv_bin = os.path.dirname(PLAYBOOK)
            r, _, puts, _ = ws.run(args, cache_dir=empty_cache, env={"PATH": f"{venv_bin}:{bare}"})
            tally.check(f"ran the uploaded copy ({r.get('exe')})",
                        r.get("msg") == "probe ran" and puts == 1 and "AnsiballZ_" not in r.get("exe", ""))
            tally.check("nothing cached unverified",
                        not os.path.exists(os.path.join(empty_cache, f"{MODULE}-{ws.digest()}")))

        if tally.case("cache on a noexec mount: falls back to the plain protocol"):
            noexec = os.path.join(top, "noexec")
            os.makedirs(noexec)
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,mode=700", "tmpfs", noexec],
                                     capture_output=True).returncode == 0
            if not mounted:
                tally.skip("cache on a noexec mount", "cannot mount a tmpfs here (needs root)")
            else:
                try:
                    cache = os.path.join(noexec, "modules")
                    r, _, _, _ = ws.run(args, cache_dir=cache)
                    tally.check("cold: installed, exec refused (126), plain protocol ran it",
                                r.get("msg") == "probe ran" and "AnsiballZ_" in r.get("exe", ""))
                    r, execs, puts, _ = ws.run(args, cache_dir=cache)
                    tally.check("warm: noexec seen in the first command, then plain protocol "
                                f"({execs} EXEC, {puts} PUT)", r.get("msg") == "probe ran" and puts == 2 and execs == 6)
                finally:
                    subprocess.run(["umount", noexec])
    finally:
        shutil.rmtree(top, ignore_errors=True)

    print()
    return tally.finish()


def context(result):
    """Everything the module read, `_ansible_*` keys included (Ansible strips those from nested results)."""
    return json.loads(result["args_text"])


def r_args(ws, args):
    """The arguments the module saw through the cache, for comparing with the plain protocol."""
    r, _, _, _ = ws.run(args)
    return context(r)


if __name__ == "__main__":
    sys.exit(main())
