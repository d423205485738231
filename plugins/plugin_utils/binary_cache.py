# Copyright: contributors to gpunode.nvidia. Apache-2.0.
"""Runs a compiled (binary) module in one round trip by keeping it on the node, keyed by its sha256.

Ansible's plain protocol costs a binary module about seven remote steps per task (expand home, mkdir, upload the
binary, upload the args, chmod, run, rm). This base class does it in one when it can:

* hit: one remote command runs ``<cache dir>/<module>-<sha256> /dev/stdin`` with the module's arguments on stdin,
  after checking (in the same shell) that the directory is a real directory owned by the remote user and
  writable by nobody else, and that the file is owned by that user;
* miss: the binary goes to Ansible's usual remote tmp dir, one command checks its sha256, copies it into the
  cache and runs it; the next task on that node hits;
* the node's architecture (``uname -m``) is read in that same command, which picks that architecture's
  executable: ``x86_64`` runs ``<module>`` and ``aarch64`` runs ``.aarch64/<module>`` beside it (where
  ``scripts/build-modules --arch aarch64`` puts it); any other architecture, or one whose executable is not
  built, fails the task with a message that says so, before anything is uploaded;
* check mode reads the cache but never writes it: a miss runs the module through the plain protocol;
* anything the cache cannot do (pipelining off or unsupported by the become method, ``async``, a directory
  others can write, no ``sha256sum``, a cache on a ``noexec`` mount, ``gpunode_module_cache: false``) falls
  back to Ansible's plain protocol or to running the uploaded copy, so the task still runs the same binary.

The module itself never knows: it reads its arguments from the path in argv[1] (``/dev/stdin`` here).

Task variables: ``gpunode_module_cache`` (bool, default true) and ``gpunode_module_cache_dir`` (default
``~/.ansible/gpunode/modules``, on the node, per remote user).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
from collections.abc import Sequence

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

try:  # ansible-core 2.19+: module arguments and results go through a serialization profile
    from ansible.module_utils.common.json import Direction, get_module_encoder
except ImportError:  # ansible-core 2.15 to 2.18
    Direction = get_module_encoder = None

display = Display()

DEFAULT_CACHE_DIR = "~/.ansible/gpunode/modules"
# Printed by the remote command when the cached file is not there (or not trustworthy): the only output then.
MISS_MARKER = "@@gpunode-module-cache-miss@@"
# Printed when the cached file is there but cannot be executed (a noexec mount): the plain protocol runs instead.
NOEXEC_MARKER = "@@gpunode-module-cache-noexec@@"
# Printed, with `uname -m`, when the controller has no executable for the node's architecture.
ARCH_MARKER = "@@gpunode-module-arch@@"
# The architectures the modules are built for, as `uname -m` names them, and the folder (beside the x86-64
# executable) that holds each one's executable. The aarch64 folder is hidden because Ansible's module loader
# searches every visible subfolder of a library path first: a visible one would shadow the x86-64 module.
ARCH_DIRS = {"x86_64": "", "aarch64": ".aarch64"}
# Printed on stderr when the uploaded copy could not be installed into the cache and ran from tmp instead.
UNUSABLE_MARKER = "@@gpunode-module-cache-unusable@@"

# A shell function: is $1 a real directory, owned by us, that nobody else can write? ls is the one portable way
# to read a mode in POSIX sh; a trailing "+" (ACL) does not match, "." (SELinux label) does.
_PRIVATE_DIR_FN = (
    'private() { [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ] && '
    'case $(LC_ALL=C ls -ld "$1") in "drwx------ "*|"drwx------. "*) return 0;; esac; return 1; }'
)


def sha256_file(path):
    """The hex sha256 of a controller-side file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shell_dir(path):
    """A shell word for a remote directory; a leading ``~/`` means the remote user's $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def arch_path(module_path, arch):
    """Where the executable for `arch` lives, given the (x86-64) module file Ansible resolved."""
    return os.path.join(os.path.dirname(module_path), ARCH_DIRS[arch], os.path.basename(module_path))


def arch_case(digests):
    """A shell `case` on `uname -m` that sets a (architecture) and h (its executable's sha256), or prints the
    architecture marker and stops when there is no executable for it. A node without uname (a bare PATH) is
    taken for x86_64, the executable Ansible's own protocol would send it."""
    arms = "".join(f"{arch}) a={arch}; h={digest};; " for arch, digest in digests.items())
    return (
        f'm=$(uname -m 2>/dev/null) || m=x86_64; '
        f'case $m in {arms}*) echo {ARCH_MARKER} "$m"; exit 0;; esac'
    )


def hit_command(cache_dir, name, digests, env):
    """The one-round-trip command: pick the node's architecture, run its cached binary with the arguments on
    stdin, or print a marker and the architecture: miss (not there or not trustworthy), noexec (there, but the
    mount forbids running it), arch (no executable for this architecture)."""
    return (
        f"{_PRIVATE_DIR_FN}; {arch_case(digests)}; d={shell_dir(cache_dir)}; "
        f'f="$d"/{shlex.quote(name)}-"$h"; '
        f'if [ -f "$f" ] && [ -O "$f" ] && private "$d"; then '
        f'if [ -x "$f" ]; then {env}"$f" /dev/stdin; exit $?; fi; echo {NOEXEC_MARKER} "$a"; exit 0; fi; '
        f'echo {MISS_MARKER} "$a"'
    )


def install_command(cache_dir, name, digest, uploaded, env, keep=()):
    """After an upload to `uploaded`: check its sha256, copy it into the cache and run it from there. When the
    cache cannot take it, say so on stderr and run the uploaded copy (same binary, same arguments). `keep`: the
    digests of the other architectures' executables, which a home shared by nodes of several architectures
    needs too."""
    final = shlex.quote(f"{name}-{digest}")
    temp = shlex.quote(f".{name}-{digest}.tmp")
    old = shlex.quote(f"{name}-") + "*"
    kept = "".join(f" | {shlex.quote(f'{name}-{k}')}" for k in keep)
    return (
        f"{_PRIVATE_DIR_FN}; umask 077; d={shell_dir(cache_dir)}; f=\"$d\"/{final}; t={shlex.quote(uploaded)}; "
        f'[ -e "$d" ] || mkdir -p "$d" 2>/dev/null; '
        f'if private "$d" && set -- $(sha256sum "$t" 2>/dev/null) && [ "${{1:-}}" = {digest} ] '
        f'&& cp "$t" "$d"/{temp} && chmod 700 "$d"/{temp} && mv -f "$d"/{temp} "$f"; then '
        # One version per module and architecture: older ones go (a running one keeps its inode).
        f'for o in "$d"/{old}; do case ${{o##*/}} in {final}{kept}) ;; *) rm -f "$o";; esac; done; '
        f'{env}"$f" /dev/stdin; exit $?; fi; '
        f'rm -f "$d"/{temp} 2>/dev/null; echo {UNUSABLE_MARKER} >&2; {env}"$t" /dev/stdin'
    )


def arch_failure(name, arch, module_path):
    """The task's result when there is no executable for the node's architecture."""
    if arch in ARCH_DIRS:
        where = arch_path(module_path, arch)
        msg = (f"{name}: this node is {arch} and there is no {arch} executable at {where}: "
               f"build it with scripts/build-modules --arch {arch} (or --arch all)")
    else:
        msg = (f"{name}: this node's architecture is {arch or 'unknown'}; the module is built for "
               f"{' and '.join(ARCH_DIRS)} only")
    return {"failed": True, "msg": msg, "node_architecture": arch}


def could_not_execute(res):
    """The shell could not run the file at all (noexec mount, wrong architecture, missing): no module output."""
    return res.get("rc") in (126, 127) and "{" not in (res.get("stdout") or "")


class CachedBinaryAction(ActionBase):
    """Base of the action plugins named after the binary modules (one subclass per module, same behaviour)."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        wrap_async = self._task.async_val and not self._connection.has_native_async

        data = None
        # The node's architecture once known (from the cache's command, or asked for the plain protocol).
        self._gpunode_arch = None
        if not wrap_async and self._cache_wanted(task_vars):
            data = self._run_cached(task_vars)
        if data is None:
            display.vvv("gpunode module cache not used: plain binary-module protocol")
            data = self._run_plain(task_vars, wrap_async)
        result = merge_hash(result, data)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _cache_wanted(self, task_vars):
        if not boolean(self._var(task_vars, "gpunode_module_cache", True), strict=False):
            return False
        # Arguments on stdin need what pipelining needs: a connection that takes stdin, a become method that
        # passes it, no keep_remote_files. Pipelining is off by default only for sudo's requiretty, so without
        # become the cache is used whatever that setting says; with become, only where pipelining is on.
        if self._is_pipelining_enabled("new"):
            return True
        conn = self._connection
        return bool(conn.has_pipelining and not conn.become and not C.DEFAULT_KEEP_REMOTE_FILES)

    def _var(self, task_vars, name, default):
        """A variable's value, templated when it is a template (e.g. set from another variable)."""
        value = task_vars.get(name, default)
        if isinstance(value, str) and "{{" in value:
            value = self._templar.template(value)
        return value

    def _run_cached(self, task_vars):
        """One module run through the cache; None when the plain protocol must run instead."""
        module_name = self._task.action
        module_args = self._task.args.copy()
        self._update_module_args(module_name, module_args, task_vars)
        style, module_path, profile = self._module_file(module_name, module_args, task_vars)
        if style != "binary":
            return None
        name = os.path.basename(module_path)
        digests = {
            arch: sha256_file(arch_path(module_path, arch))
            for arch in ARCH_DIRS
            if os.path.isfile(arch_path(module_path, arch))
        }
        cache_dir = to_text(self._var(task_vars, "gpunode_module_cache_dir", None) or DEFAULT_CACHE_DIR)
        env = self._compute_environment_string()
        env = env + " " if env else ""
        if get_module_encoder is not None:
            args_json = json.dumps(module_args, cls=get_module_encoder(profile, Direction.CONTROLLER_TO_MODULE))
        else:
            args_json = json.dumps(module_args)
        args_json = args_json.encode("utf-8")

        res = self._low_level_execute_command(
            hit_command(cache_dir, name, digests, env), sudoable=True, in_data=args_json
        )
        marker, _sep, arch = (res.get("stdout") or "").strip().partition(" ")
        if marker in (ARCH_MARKER, NOEXEC_MARKER, MISS_MARKER):
            self._gpunode_arch = arch
        if marker == ARCH_MARKER:
            return arch_failure(name, arch, module_path)
        if marker == NOEXEC_MARKER:
            display.vvv(f"gpunode module cache: {cache_dir} is on a noexec mount")
            return None
        if marker == MISS_MARKER and self._task.check_mode:
            # Check mode changes nothing on the node, the cache included: the plain protocol runs the module
            # from Ansible's temporary directory, which is removed after the task.
            display.vvv(f"gpunode module cache: {name} not cached and check mode: not installing it")
            return None
        if marker == MISS_MARKER:
            digest = digests[arch]
            display.vvv(f"gpunode module cache: {name}-{digest[:12]} ({arch}) not on the node yet, installing it")
            keep = [d for a, d in digests.items() if a != arch]
            try:
                res = self._install_and_run(
                    cache_dir, name, digest, arch_path(module_path, arch), env, args_json, keep
                )
            except AnsibleError as e:
                display.vvv(f"gpunode module cache: install failed ({e})")
                return None
        if could_not_execute(res):
            display.vvv(f"gpunode module cache: cannot execute from the cache (rc {res.get('rc')})")
            return None
        if UNUSABLE_MARKER in (res.get("stderr") or ""):
            display.vvv(f"gpunode module cache: {cache_dir} is not usable (not private, or no sha256sum)")
            res["stderr"] = res["stderr"].replace(UNUSABLE_MARKER + "\n", "").replace(UNUSABLE_MARKER, "")
        return self._finish(self._parse(res, profile))

    def _install_and_run(self, cache_dir, name, digest, module_path, env, args_json, keep):
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        uploaded = self._connection._shell.join_path(tmpdir, f"{name}-{digest[:16]}")
        self._transfer_file(module_path, uploaded)
        self._fixup_perms2([tmpdir, uploaded], self._get_remote_user())
        return self._low_level_execute_command(
            install_command(cache_dir, name, digest, uploaded, env, keep), sudoable=True, in_data=args_json
        )

    def _run_plain(self, task_vars, wrap_async):
        """Ansible's plain binary-module protocol with the executable for the node's architecture (asked in one
        extra command when the cache's command did not already tell it)."""
        if self._gpunode_arch is None:
            res = self._low_level_execute_command("uname -m 2>/dev/null || echo x86_64", sudoable=False)
            self._gpunode_arch = (res.get("stdout") or "").strip()
        module_path = self._module_file(self._task.action, self._task.args.copy(), task_vars)[1]
        if self._gpunode_arch not in ARCH_DIRS or not os.path.isfile(arch_path(module_path, self._gpunode_arch)):
            return arch_failure(os.path.basename(module_path), self._gpunode_arch, module_path)
        return self._execute_module(task_vars=task_vars, wrap_async=wrap_async)

    def _configure_module(self, module_name, module_args, task_vars=None):
        """Ansible's module build, with the executable swapped for the node's architecture once that is known
        (the plain protocol uploads the file at the returned path)."""
        built = super()._configure_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
        arch = getattr(self, "_gpunode_arch", None)
        if not arch or not ARCH_DIRS.get(arch):
            return built
        if len(built) == 2:  # 2.19+: (module bits, path)
            bits, path = built
            if bits.module_style != "binary":
                return built
            path = arch_path(path, arch)
            with open(path, "rb") as f:
                return dataclasses.replace(bits, b_module_data=f.read()), path
        style, shebang, _data, path = built  # 2.15 to 2.18
        if style != "binary":
            return built
        path = arch_path(path, arch)
        with open(path, "rb") as f:
            return style, shebang, f.read(), path

    def _module_file(self, module_name, module_args, task_vars):
        """(module style, path of the module file, serialization profile or None) on any ansible-core."""
        # Ansible's own build, without this class's architecture swap: the path is the x86-64 module's.
        built = super()._configure_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
        if len(built) == 2:  # 2.19+: (module bits, path)
            bits, path = built
            return bits.module_style, path, bits.serialization_profile
        style, _shebang, _data, path = built  # 2.15 to 2.18
        return style, path, None

    def _parse(self, res, profile):
        if profile is None:
            return self._parse_returned_data(res)
        return self._parse_returned_data(res, profile)

    def _finish(self, data):
        """What ActionBase._execute_module does to a module's result after parsing it."""
        if data.pop("_ansible_suppress_tmpdir_delete", False):
            self._cleanup_remote_tmp = False
        results = data.get("results")
        if results is not None and (not isinstance(results, Sequence) or isinstance(results, str)):
            data["ansible_module_results"] = data.pop("results")
            display.warning("Found internal 'results' key in module return, renamed to 'ansible_module_results'.")
        remove_internal_keys(data)
        for stream in ("stdout", "stderr"):
            if stream in data and f"{stream}_lines" not in data:
                data[f"{stream}_lines"] = (data.get(stream) or "").splitlines()
        if get_module_encoder is None:
            # Before 2.19, results are marked unsafe for templating here.
            from ansible.utils.unsafe_proxy import wrap_var

            data = wrap_var(data)
        return data
