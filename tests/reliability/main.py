#!/usr/bin/env python3
"""The reliability stage: crash consistency, full disk, read-only file system, concurrency, the bad-input
corpus, property tests of the containerd edit, and the no-shell/no-leak checks, against the built modules in
library/. Prints `N passed, N failed, N skipped` (tests/pylib/checks.py) and exits non-zero when anything failed.

usage: main.py [PART...]   parts: crash concurrency corpus props security (default: all)
environment: RELIABILITY_TRIALS (SIGKILL trials, 200), RELIABILITY_PROP_CASES (300)
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pylib"))
import concurrency  # noqa: E402
import corpus  # noqa: E402
import crash  # noqa: E402
import harness  # noqa: E402
import keys as keygen  # noqa: E402
import props  # noqa: E402
import security  # noqa: E402
from checks import Tally  # noqa: E402

PARTS = ["crash", "concurrency", "corpus", "props", "security"]


def main(argv):
    parts = argv or PARTS
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print("unknown part(s) %s; parts: %s" % (unknown, " ".join(PARTS)))
        return 2
    for m in ("containerd_runtime", "nvidia_toolkit", "gpu_validate"):
        if not os.access(harness.module_path(m), os.X_OK):
            print("error: %s is missing: run scripts/build-modules first" % harness.module_path(m))
            return 2
    if os.geteuid() != 0:
        print("error: these tests mount file systems and use mount namespaces: run them as root")
        return 2
    # A normal disk folder (not tmpfs): fsync and rename behave as on a node's /etc.
    root = tempfile.mkdtemp(prefix="gpunode-reliability-", dir="/var/tmp")
    # A passing check's detail is shown too: it is the evidence (the message a refusal gave, a figure).
    ledger = Tally("reliability", detail_on_pass=True)
    t_all = time.monotonic()
    try:
        keys = None
        if "corpus" in parts or "security" in parts:
            keys = keygen.Keys(tempfile.mkdtemp(prefix="keys-", dir=root)).make_all()
        for part in parts:
            t0 = time.monotonic()
            print("\n-- %s --" % part)
            if part == "crash":
                crash.sigkill(ledger, root, trials=int(os.environ.get("RELIABILITY_TRIALS", "200")))
                crash.full_disk(ledger, root)
                crash.read_only(ledger, root)
            elif part == "concurrency":
                concurrency.stage(ledger, root)
            elif part == "corpus":
                corpus.stage(ledger, root, keys)
            elif part == "props":
                props.stage(ledger, cases=int(os.environ.get("RELIABILITY_PROP_CASES", "300")))
            elif part == "security":
                security.no_shell_in_sources(ledger)
                security.validate_runs_without_shell(ledger, root)
                security.proxy_credentials_masked(ledger, root, keys)
            print("   (%s: %.1f s)" % (part, time.monotonic() - t0))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n-- summary (%.1f s) --" % (time.monotonic() - t_all))
    for name, detail in ledger.failures:
        print("   FAILED %s: %s" % (name, detail[:300]))
    return ledger.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
