"""No shell, no leaked secrets.

- The module sources never start a shell (`Command::new("sh")`, `"bash"`, `/bin/sh`, libc `system`/`popen`);
  the `#[cfg(test)]` part at the end of a file is not module code and is not scanned.
- A `validate` command full of shell syntax runs as an argument vector: nothing it "says" happens.
- Proxy credentials from the task's environment never appear in a result, even when apt's error quotes them.
"""

import os
import re
import shutil
import tempfile

import harness

SHELL_PATTERNS = [
    (r'Command::new\(\s*"(/usr)?(/bin/)?(ba|da|z|k)?sh"', "Command::new of a shell"),
    (r'"(/usr)?/bin/(ba|da|z)?sh"', "a shell's path"),
    (r"\blibc::(system|popen)\b|\bfn\s+(system|popen)\s*\(\s*command", "libc system/popen"),
    (r'"(ba|da|z)?sh"', "a shell's name"),
]


def scan_sources(root):
    """Every place in the modules' Rust sources that looks like shell use: [(file:line, what, text)]."""
    hits, files = [], 0
    for dirpath, _, names in os.walk(os.path.join(root, "modules")):
        if "/target" in dirpath:
            continue
        for n in names:
            if not n.endswith(".rs"):
                continue
            files += 1
            p = os.path.join(dirpath, n)
            with open(p, encoding="utf-8", errors="replace") as f:
                for i, line in enumerate(f, 1):
                    if line.strip() == "#[cfg(test)]":
                        break               # unit tests below may start helpers (python3 -c) on purpose
                    code = line.split("//")[0]
                    for pattern, what in SHELL_PATTERNS:
                        if re.search(pattern, code):
                            hits.append(("%s:%d" % (os.path.relpath(p, root), i), what, line.strip()))
    return hits, files


def no_shell_in_sources(ledger):
    hits, files = scan_sources(harness.ROOT)
    ledger.check("no shell in the module sources (%d .rs files scanned)" % files, files > 0 and not hits,
                 "; ".join("%s %s: %s" % h for h in hits[:5]))


def validate_runs_without_shell(ledger, root):
    work = tempfile.mkdtemp(prefix="noshell-", dir=root)
    path = os.path.join(work, "config.toml")
    with open(path, "w") as f:
        f.write("version = 2\n")
    marks = [os.path.join(work, "pwned-%d" % i) for i in range(3)]
    cmd = "/bin/echo %%s ; touch %s && touch %s $(touch %s)" % tuple(marks)
    res = harness.run_module("containerd_runtime", {"path": path, "validate": cmd}, work)
    made = [m for m in marks if os.path.exists(m)]
    ledger.check("validate command runs as an argument vector (shell syntax inert)",
                 not harness.no_crash_problem(res) and not made,
                 ("files a shell would make exist: %s" % made) if made else res.msg[:160])
    shutil.rmtree(work, ignore_errors=True)


def proxy_credentials_masked(ledger, root, keys):
    work = tempfile.mkdtemp(prefix="proxy-", dir=root)
    secret = "S3cr3t-Pw-8zq"
    proxy = "http://alice:%s@127.0.0.1:3128/" % secret
    args = {"state": "present", "version": "1.17.8-1", "key": keys.files["good.asc"], "fingerprint": keys.fpr["good"],
            "keyring_path": os.path.join(work, "keyring.gpg"), "list_path": os.path.join(work, "nvidia.list"),
            "repo_url": "file:///nonexistent-repo", "driver_check": "skip", "lock_timeout": 1}
    log = os.path.join(work, "apt-calls.log")
    env = {"http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "STUB_MODE": "fail"}
    res = harness.run_module("nvidia_toolkit", args, work, env=env, sandbox_log=log)
    with open(log) as f:
        calls = f.read()
    out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
    reached = "apt-get" in calls or "apt " in calls
    problem = harness.no_crash_problem(res)
    if not problem and not reached:
        problem = "inconclusive: the run never reached apt (%s)" % res.msg[:200]
    if not problem and secret in out:
        problem = "the proxy password appears in the result: %r" % out[out.index(secret) - 60: out.index(secret) + 20]
    if not problem and not res.failed:
        problem = "apt failed but the module did not: %s" % res.summary()
    ledger.check("proxy credentials from the environment are masked when apt's error quotes them", not problem,
                 problem or res.msg[:160])
    shutil.rmtree(work, ignore_errors=True)
