#!/usr/bin/env python3
"""Each module's sidecar docs (library/MODULE.yml, what ansible-doc shows) against the argument spec the built
executable really validates with (`MODULE --argument-spec`): the same options and sub-options, and for each the
same type, required, default, choices, aliases and elements. validate-modules cannot read a compiled module,
so this is the check that keeps the two in step.

usage: sidecars.py LIBRARY_DIR [MODULE...]     (one line per module and 'N passed, N failed, N skipped')
"""
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pylib"))
from checks import Tally  # noqa: E402

MODULES = ["containerd_runtime", "nvidia_toolkit", "gpu_validate"]


def norm_choices(values):
    return sorted(json.dumps(v, sort_keys=True) for v in values or [])


def compare(spec, doc_options, where=""):
    """Differences between an argument spec (JSON) and a DOCUMENTATION options dict, as readable lines."""
    doc_options = doc_options or {}
    out = []
    for name in sorted(set(spec) - set(doc_options)):
        out.append(f"{where}{name}: in the spec, not documented")
    for name in sorted(set(doc_options) - set(spec)):
        out.append(f"{where}{name}: documented, not in the spec")
    for name in sorted(set(spec) & set(doc_options)):
        s, d = spec[name], doc_options[name] or {}
        here = f"{where}{name}"
        if s.get("type", "str") != d.get("type", "str"):
            out.append(f"{here}: type {s.get('type')!r} in the spec, {d.get('type', 'str')!r} documented")
        if bool(s.get("required")) != bool(d.get("required")):
            out.append(f"{here}: required {bool(s.get('required'))} in the spec, {bool(d.get('required'))} documented")
        if s.get("default") != d.get("default"):
            out.append(f"{here}: default {s.get('default')!r} in the spec, {d.get('default')!r} documented")
        if norm_choices(s.get("choices")) != norm_choices(d.get("choices")):
            out.append(f"{here}: choices {s.get('choices')} in the spec, {d.get('choices')} documented")
        if sorted(s.get("aliases") or []) != sorted(d.get("aliases") or []):
            out.append(f"{here}: aliases {s.get('aliases')} in the spec, {d.get('aliases')} documented")
        if s.get("elements") != d.get("elements"):
            out.append(f"{here}: elements {s.get('elements')!r} in the spec, {d.get('elements')!r} documented")
        if "options" in s or "suboptions" in d:
            out += compare(s.get("options") or {}, d.get("suboptions"), here + ".")
    return out


def main():
    tally = Tally("sidecars")
    library = sys.argv[1]
    modules = sys.argv[2:] or MODULES
    for mod in modules:
        p = subprocess.run([os.path.join(library, mod), "--argument-spec"], capture_output=True, text=True)
        try:
            spec = json.loads(p.stdout)
            with open(os.path.join(library, mod + ".yml")) as f:
                doc = yaml.safe_load(f)["DOCUMENTATION"]
            problems = compare(spec, doc.get("options"))
        except (ValueError, KeyError, TypeError, OSError, yaml.YAMLError) as e:
            problems = [f"cannot compare: {e} (exit {p.returncode}: {p.stderr.strip()[:200]})"]
        if problems:
            tally.check(f"{mod}: the sidecar documents the spec exactly", False, "\n".join(problems))
        else:
            tally.check(f"{mod}: the sidecar documents the spec's {len(spec)} options exactly", True)
    sys.exit(tally.finish())


if __name__ == "__main__":
    main()
