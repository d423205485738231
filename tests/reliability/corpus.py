"""The bad-input corpus: cases across the three modules, each called as Ansible calls the binary.

Every case asserts: a clean answer (one JSON object, no panic, no signal), `failed: true` with a message that
names the problem (a key phrase, matched case-insensitively), a short message (no 10 MB echo), and nothing
changed: the case's folder is byte-for-byte as it was, and (for nvidia_toolkit, run in the sandbox) no apt or
dpkg command ran and nothing reached the system apt folders.

A case whose module answers otherwise is a failing case: it stays in the corpus as it is until the module is
fixed. `mode="either"` marks input that is valid but extreme: success or a clear failure are both fine, a
crash is not.
"""

import json
import os
import random
import re
import shutil
import tempfile

import configs
import harness


class Ctx:
    """One case's folder and what lives in it."""

    def __init__(self, root, keys):
        self.dir = tempfile.mkdtemp(prefix="case-", dir=root)
        self.keys = keys
        self.config = os.path.join(self.dir, "config.toml")

    def p(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        with open(self.p(name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


class Case:
    def __init__(self, cid, module, args, pattern, setup=None, mode="fail", secret=None):
        self.id = cid
        self.module = module
        self.args = args          # dict, bytes, or a function of Ctx returning either; "NOARGS"/("MISSING",)
        self.pattern = pattern
        self.setup = setup        # function of Ctx, prepares files
        self.mode = mode
        self.secret = secret      # name of a key file whose body must not appear in the answer


# --- containerd_runtime ------------------------------------------------------------------------------------

def cr(extra=None, drop=()):
    """containerd_runtime args on the case's config (a valid version 2 config), validation off."""
    def build(ctx):
        a = {"path": ctx.config, "validate": "none"}
        a.update(extra or {})
        for k in drop:
            a.pop(k, None)
        return a
    return build


def with_config(text):
    def setup(ctx):
        ctx.write("config.toml", text)
    return setup


def base_setup(ctx):
    ctx.write("config.toml", configs.base_config(2))


def args_file(data):
    """A raw args file (bytes) in place of the JSON Ansible writes."""
    return lambda ctx: data


TEN_MB = configs.large_config(10 * 1024 * 1024) + "\n[broken\nkey = 1\n"
GARBAGE = bytes(random.Random(11).getrandbits(8) for _ in range(65536))
NEST = 5000
V2 = 'version = 2\n'
CRI = 'plugins."io.containerd.grpc.v1.cri"'

CONTAINERD = [
    Case("cr-wrong-type-bool", "containerd_runtime", cr({"set_as_default": "yes please"}), r"set_as_default.*bool", base_setup),
    Case("cr-wrong-type-int", "containerd_runtime", cr({"config_version": "two"}), r"config_version.*int", base_setup),
    Case("cr-wrong-type-bool-int", "containerd_runtime", cr({"enable_cdi": 2}), r"enable_cdi.*bool", base_setup),
    Case("cr-wrong-type-backup", "containerd_runtime", cr({"backup": "sometimes"}), r"backup.*bool", base_setup),
    Case("cr-list-is-string", "containerd_runtime", cr({"extra_runtimes": "nvidia-cdi"}), r"extra_runtimes", base_setup),
    Case("cr-unknown-suboption", "containerd_runtime",
         cr({"extra_runtimes": [{"name": "nvidia-cdi", "nmae": "x", "binary_path": "/usr/bin/x"}]}), r"unsupported.*nmae", base_setup),
    Case("cr-unknown-param", "containerd_runtime", cr({"runtime_nmae": "nvidia"}), r"unsupported parameters.*runtime_nmae", base_setup),
    Case("cr-misspelt-param", "containerd_runtime", cr({"set_as_defualt": True}), r"unsupported parameters.*set_as_defualt", base_setup),
    Case("cr-bad-choice", "containerd_runtime", cr({"state": "presnt"}), r"state.*one of", base_setup),
    Case("cr-huge-version", "containerd_runtime", cr({"path": None, "config_version": 10 ** 30}), r"config_version"),
    Case("cr-u64-version", "containerd_runtime", cr({"config_version": 2 ** 63}), r"config_version"),
    Case("cr-negative-version", "containerd_runtime", cr({"config_version": -1}), r"config_version"),
    Case("cr-empty-name", "containerd_runtime", cr({"name": ""}), r"name", base_setup),
    Case("cr-control-char-name", "containerd_runtime", cr({"name": "nvi\x01dia"}), r"name", base_setup),
    Case("cr-newline-name", "containerd_runtime", cr({"name": "nvidia\n[evil]"}), r"name", base_setup),
    Case("cr-relative-binary", "containerd_runtime", cr({"binary_path": "bin/nvidia-container-runtime"}), r"absolute", base_setup),
    Case("cr-dotdot-binary", "containerd_runtime", cr({"binary_path": "../../usr/bin/nvidia-container-runtime"}), r"absolute", base_setup),
    Case("cr-relative-path", "containerd_runtime", cr({"path": "config.toml"}), r"absolute", base_setup),
    Case("cr-dotdot-path", "containerd_runtime", cr({"path": "../etc/containerd/config.toml"}), r"absolute", base_setup),
    Case("cr-nul-path", "containerd_runtime", lambda c: cr({"path": c.config + "\x00.bak"})(c), r"nul|null|\\0|zero byte", base_setup),
    Case("cr-nul-binary", "containerd_runtime", cr({"binary_path": "/usr/bin/nvidia\x00"}), r"nul|null|\\0|zero byte", base_setup),
    Case("cr-relative-drop-in", "containerd_runtime", cr({"drop_in_path": "conf.d/99-nvidia.toml"}), r"absolute", base_setup),
    Case("cr-validate-without-placeholder", "containerd_runtime", cr({"validate": "containerd config dump"}), r"%s", base_setup),
    Case("cr-validate-rejects", "containerd_runtime", cr({"validate": "/bin/false %s"}), r"validat", base_setup),
    Case("cr-args-not-json", "containerd_runtime", args_file(b"name: nvidia\nstate: present\n"), r"not valid JSON"),
    Case("cr-args-truncated", "containerd_runtime", lambda c: json.dumps(cr()(c)).encode()[:-7], r"not valid JSON", base_setup),
    Case("cr-args-array", "containerd_runtime", args_file(b'["name", "nvidia"]'), r"JSON object"),
    Case("cr-args-missing-file", "containerd_runtime", ("MISSING",), r"cannot read the arguments file"),
    Case("cr-args-none", "containerd_runtime", "NOARGS", r"missing the arguments file"),
    Case("cr-args-invalid-utf8", "containerd_runtime", args_file(b'{"name": "nv\xffidia"}'), r"JSON|UTF-8"),
    Case("cr-args-lone-surrogate", "containerd_runtime", args_file(b'{"name": "\\udcff"}'), r"JSON|surrogate|UTF"),
    Case("cr-invalid-toml", "containerd_runtime", cr(), r"line \d+",
         with_config(V2 + "[plugins\nfoo = 1\n")),
    Case("cr-duplicate-key", "containerd_runtime", cr(), r"duplicate",
         with_config(V2 + 'root = "/a"\nroot = "/b"\n')),
    Case("cr-duplicate-table", "containerd_runtime", cr(), r"duplicate",
         with_config(V2 + "[grpc]\nuid = 0\n\n[grpc]\ngid = 0\n")),
    Case("cr-version-string", "containerd_runtime", cr(), r"version", with_config('version = "2"\n')),
    Case("cr-version-float", "containerd_runtime", cr(), r"version", with_config("version = 2.0\n")),
    Case("cr-version-negative", "containerd_runtime", cr(), r"version", with_config("version = -3\n")),
    Case("cr-version-overflow", "containerd_runtime", cr(), r"TOML|version|line", with_config("version = 99999999999999999999\n")),
    Case("cr-10mb-broken-at-end", "containerd_runtime", cr(), r"line \d{5,}", with_config(TEN_MB)),
    Case("cr-deep-inline-tables", "containerd_runtime", cr(), r"TOML|nest|depth|recurs|line",
         with_config(V2 + "x = " + "{a = " * NEST + "1" + "}" * NEST + "\n")),
    Case("cr-deep-arrays", "containerd_runtime", cr(), r"TOML|nest|depth|recurs|line",
         with_config(V2 + "x = " + "[" * NEST + "]" * NEST + "\n")),
    Case("cr-deep-table-header", "containerd_runtime", cr(), r".", mode="either",
         setup=with_config(V2 + "[" + ".".join(["t"] * 20000) + "]\nk = 1\n")),
    Case("cr-binary-garbage", "containerd_runtime", cr(), r"UTF-8|TOML|invalid", with_config(GARBAGE)),
    Case("cr-non-utf8", "containerd_runtime", cr(), r"UTF-8", with_config(b"# caf\xe9\nversion = 2\n")),
    Case("cr-nul-byte", "containerd_runtime", cr(), r"TOML|NUL|control|invalid|line", with_config(b"version = 2\n\x00\n")),
    Case("cr-control-char-in-string", "containerd_runtime", cr(), r"TOML|control|line", with_config('version = 2\nroot = "a\x07b"\n')),
    Case("cr-config-is-directory", "containerd_runtime", cr(), r"directory", lambda c: os.mkdir(c.config)),
    Case("cr-dangling-symlink", "containerd_runtime", cr(), r"no such file|does not exist|not exist|missing|cannot",
         lambda c: os.symlink(c.p("nowhere/config.toml"), c.config)),
    Case("cr-symlink-loop", "containerd_runtime", cr(), r"symbolic link|loop",
         lambda c: (os.symlink(c.p("b.toml"), c.config), os.symlink(c.config, c.p("b.toml")))),
    Case("cr-plugins-is-string", "containerd_runtime", cr(), r"plugins", with_config(V2 + 'plugins = "oops"\n')),
    Case("cr-runtimes-is-array", "containerd_runtime", cr(), r"runtimes",
         with_config(V2 + "[%s.containerd]\nruntimes = [1, 2]\n" % CRI)),
    Case("cr-options-is-string", "containerd_runtime", cr(), r"options",
         with_config(V2 + '[%s.containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\noptions = "x"\n' % CRI)),
]

# --- nvidia_toolkit -----------------------------------------------------------------------------------------

def nt(key="good.asc", fpr="good", extra=None, inline=False):
    """nvidia_toolkit args with a key from the generated set, every path inside the case's folder, a repository
    that does not exist, and no driver check (the case is about the argument under test)."""
    def build(ctx):
        keyval = ctx.keys.files[key] if key else None
        if inline and keyval:
            with open(keyval, "rb") as f:
                keyval = f.read().decode("utf-8", "replace")
        a = {"state": "present", "version": "1.17.8-1", "key": keyval,
             "fingerprint": ctx.keys.fpr.get(fpr, fpr), "keyring_path": ctx.p("keyring.gpg"),
             "list_path": ctx.p("nvidia-container-toolkit.list"), "repo_url": "file:///nonexistent-repo",
             "driver_check": "skip", "lock_timeout": 1}
        a.update(extra or {})
        return a
    return build


TOOLKIT = [
    Case("nt-wrong-fingerprint", "nvidia_toolkit", nt("other.asc", "good"), r"fingerprint"),
    Case("nt-wrong-fingerprint-inline", "nvidia_toolkit", nt("other.asc", "good", inline=True), r"fingerprint"),
    Case("nt-wrong-fingerprint-binary", "nvidia_toolkit", nt("good.gpg", "other"), r"fingerprint"),
    Case("nt-expired", "nvidia_toolkit", nt("expired.asc", "expired"), r"expired"),
    Case("nt-revoked", "nvidia_toolkit", nt("revoked.asc", "revoked"), r"revoked"),
    Case("nt-truncated-armor", "nvidia_toolkit", nt("truncated.asc"), r"key|certificate|openpgp|armor"),
    Case("nt-corrupt-armor", "nvidia_toolkit", nt("corrupt.asc"), r"key|certificate|openpgp|armor|checksum"),
    Case("nt-two-certs", "nvidia_toolkit", nt("two-certs.asc"), r"one certificate|more than one|several|2 certificates|two certificates|exactly one"),
    Case("nt-two-armor-blocks", "nvidia_toolkit", nt("two-armors.asc"), r"one certificate|more than one|several|2 certificates|two certificates|exactly one"),
    Case("nt-secret-key", "nvidia_toolkit", nt("secret.asc"), r"secret", secret="secret.asc"),
    Case("nt-secret-key-inline", "nvidia_toolkit", nt("secret.asc", inline=True), r"secret", secret="secret.asc"),
    Case("nt-empty-key", "nvidia_toolkit", nt("empty.asc"), r"empty|no certificate|key"),
    Case("nt-garbage-key", "nvidia_toolkit", nt("garbage.bin"), r"key|certificate|openpgp"),
    Case("nt-control-chars-key", "nvidia_toolkit", nt(None, extra={"key": "\x1b[31m-----BEGIN PGP\x07"}), r"key|certificate|openpgp|armor"),
    Case("nt-key-missing", "nvidia_toolkit", lambda c: nt(extra={"key": c.p("missing.asc")})(c), r"no such file|does not exist|not found|cannot read"),
    Case("nt-key-is-directory", "nvidia_toolkit", lambda c: nt(extra={"key": c.dir})(c), r"directory"),
    Case("nt-fingerprint-not-hex", "nvidia_toolkit", nt(fpr="XYZ"), r"fingerprint"),
    Case("nt-fingerprint-short-id", "nvidia_toolkit", nt(fpr="F796ECB0"), r"fingerprint"),
    Case("nt-version-shell", "nvidia_toolkit", nt(extra={"version": "1.17.8-1; rm -rf /"}), r"version"),
    Case("nt-version-newline", "nvidia_toolkit", nt(extra={"version": "1.17.8-1\nPin: release *"}), r"version"),
    Case("nt-package-option-injection", "nvidia_toolkit",
         nt(extra={"packages": ["nvidia-container-toolkit", "-oAPT::Get::AllowUnauthenticated=true"]}), r"package"),
    Case("nt-repo-url-newline", "nvidia_toolkit",
         nt(extra={"repo_url": "file:///repo\ndeb [trusted=yes] http://127.0.0.1:9/evil ./"}), r"repo_url"),
    Case("nt-repo-url-not-url", "nvidia_toolkit", nt(extra={"repo_url": "not a url"}), r"repo_url"),
    Case("nt-bad-channel", "nvidia_toolkit", nt(extra={"channel": "nightly"}), r"channel.*one of"),
    Case("nt-bad-state", "nvidia_toolkit", nt(extra={"state": "installed"}), r"state.*one of"),
    Case("nt-negative-timeout", "nvidia_toolkit", nt(extra={"lock_timeout": -5}), r"lock_timeout"),
    Case("nt-huge-timeout", "nvidia_toolkit", nt(extra={"lock_timeout": 10 ** 30}), r"lock_timeout"),
    Case("nt-timeout-not-int", "nvidia_toolkit", nt(extra={"lock_timeout": "soon"}), r"lock_timeout.*int"),
    Case("nt-hold-not-bool", "nvidia_toolkit", nt(extra={"hold": "maybe"}), r"hold.*bool"),
    Case("nt-bad-min-driver", "nvidia_toolkit", nt(extra={"min_driver_version": "latest", "driver_check": "required"}), r"min_driver_version"),
    Case("nt-bad-driver-check", "nvidia_toolkit", nt(extra={"driver_check": "sometimes"}), r"driver_check.*one of"),
    Case("nt-relative-keyring", "nvidia_toolkit", nt(extra={"keyring_path": "keyring.gpg"}), r"absolute"),
    Case("nt-dotdot-list", "nvidia_toolkit", nt(extra={"list_path": "../nvidia.list"}), r"absolute"),
    Case("nt-unknown-param", "nvidia_toolkit", nt(extra={"fingerprnt": "ABCD"}), r"unsupported parameters.*fingerprnt"),
    Case("nt-args-truncated", "nvidia_toolkit", lambda c: json.dumps(nt()(c)).encode()[:40], r"not valid JSON"),
]

# --- gpu_validate -------------------------------------------------------------------------------------------

def gv(extra=None):
    def build(ctx):
        os.makedirs(ctx.p("sysroot"), exist_ok=True)
        a = {"sysroot": ctx.p("sysroot")}
        a.update(extra or {})
        return a
    return build


GPU = [
    Case("gv-unknown-check", "gpu_validate", gv({"checks": ["pci", "gpuz"]}), r"gpuz"),
    Case("gv-no-checks", "gpu_validate", gv({"checks": []}), r"checks"),
    Case("gv-negative-count", "gpu_validate", gv({"expected_gpu_count": -1}), r"expected_gpu_count"),
    Case("gv-count-not-int", "gpu_validate", gv({"expected_gpu_count": "eight"}), r"expected_gpu_count.*int"),
    Case("gv-huge-count", "gpu_validate", gv({"expected_gpu_count": 1e30}), r"expected_gpu_count"),
    Case("gv-bad-fail-on", "gpu_validate", gv({"fail_on": "sometimes"}), r"fail_on.*one of"),
    Case("gv-relative-sysroot", "gpu_validate", gv({"sysroot": "sysroot"}), r"absolute"),
    Case("gv-missing-sysroot", "gpu_validate", gv({"sysroot": "/nonexistent-sysroot-7f3a"}), r"sysroot|does not exist|no such"),
    Case("gv-nul-sysroot", "gpu_validate", lambda c: gv({"sysroot": c.p("sysroot") + "\x00x"})(c), r"nul|null|\\0|zero byte"),
    Case("gv-dotdot-smi", "gpu_validate", gv({"nvidia_smi_path": "../bin/nvidia-smi"}), r"absolute"),
    Case("gv-relative-containerd-config", "gpu_validate", gv({"containerd_config": "config.toml"}), r"absolute"),
    Case("gv-bad-min-driver", "gpu_validate", gv({"min_driver_version": "latest"}), r"min_driver_version"),
    Case("gv-empty-runtime-name", "gpu_validate", gv({"runtime_name": ""}), r"runtime_name"),
    Case("gv-unknown-param", "gpu_validate", gv({"expected_gpus": 8}), r"unsupported parameters.*expected_gpus"),
]

ALL = CONTAINERD + TOOLKIT + GPU


def run_case(case, root, keys):
    """Runs one case; returns (ok, detail)."""
    ctx = Ctx(root, keys)
    if case.setup:
        case.setup(ctx)
    args = case.args(ctx) if callable(case.args) else case.args
    if isinstance(args, dict) and args.get("path", "") is None:
        args["path"] = ctx.p("new.toml")          # a config that does not exist yet
    before = harness.snapshot(ctx.dir)
    argv = None
    if args == "NOARGS":
        args, argv = None, []
    elif args == ("MISSING",):
        args, argv = None, [ctx.p("no-such-args.json")]
    # The args file lives outside the folder under test so the snapshot sees only the module's doing.
    args_dir = tempfile.mkdtemp(prefix="args-", dir=root)
    log = os.path.join(args_dir, "apt-calls.log") if case.module == "nvidia_toolkit" else None
    res = harness.run_module(case.module, args, args_dir, argv=argv, sandbox_log=log)
    problems = []
    crash = harness.no_crash_problem(res)
    if crash:
        problems.append(crash)
    elif case.mode == "fail" or res.failed:
        unrelated = res.msg.startswith("Unsupported parameters") and "unsupported" not in case.pattern
        if not res.failed:
            problems.append("accepted (changed=%s): %s" % (res.changed, res.summary()))
        elif unrelated:
            problems.append("refused for another reason: %r" % res.msg[:200])
        elif not re.search(case.pattern, res.msg, re.I | re.S):
            problems.append("message lacks /%s/: %r" % (case.pattern, res.msg[:300]))
        elif len(res.msg) > 4000:
            problems.append("message of %d characters" % len(res.msg))
        if res.failed and res.rc == 0:
            problems.append("failed but exit code 0")
    after = harness.snapshot(ctx.dir)
    if res.failed and before != after:
        problems.append("files changed: %s" % harness.snapshot_diff(before, after))
    if log:
        with open(log) as f:
            calls = f.read().strip()
        written = harness.snapshot(log + ".root")
        written = [k for k, v in written.items() if v[3:4] == ("file",)]
        if res.failed and calls:
            problems.append("package tools ran: %s" % calls.replace("\n", " | ")[:200])
        if res.failed and written:
            problems.append("system apt folders written: %s" % written[:3])
    if case.secret:
        with open(keys.files[case.secret]) as f:
            body = [ln for ln in f.read().splitlines() if len(ln) > 40]
        if any(ln in res.stdout.decode(errors="replace") for ln in body):
            problems.append("the secret key's text appears in the answer")
    shutil.rmtree(ctx.dir, ignore_errors=True)
    shutil.rmtree(args_dir, ignore_errors=True)
    return (not problems), "; ".join(problems) or res.msg[:120].replace("\n", " ")


def stage(ledger, root, keys):
    for case in ALL:
        ok, detail = run_case(case, root, keys)
        ledger.check("bad input %s (%s)" % (case.id, case.module), ok, detail)
    ledger.note("bad-input corpus: %d cases (%d containerd_runtime, %d nvidia_toolkit, %d gpu_validate)" % (
        len(ALL), len(CONTAINERD), len(TOOLKIT), len(GPU)))
