#!/usr/bin/env python3
"""Conformance of our argument validation with ansible-core's AnsibleModule.

Runs every case below through a real Python `AnsibleModule` (the ansible-core this interpreter imports) and
through our library (the `spec_probe` example binary, given as argv[1]), and asserts the same `failed`,
`msg`, `changed`, `skipped`, warnings and validated parameters (`invocation.module_args`).

usage: python conformance.py PATH/TO/spec_probe [--only NAME]
    (prints each failing case and "N passed, N failed, N skipped"; exit 1 on any failure; --only or TEST_ONLY
    runs the cases whose name holds NAME)

Two things Python leaves to its hash seed are compared as sets: the order of the "Valid booleans include"
list, and which level's supported options an "Unsupported parameters" message names when unknown
parameters sit at several levels.
"""

import contextlib
import copy
import io
import json
import os
import re
import subprocess
import sys

import ansible
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pylib"))
from checks import Tally  # noqa: E402

NEW = tuple(int(x) for x in ansible.__version__.split(".")[:2]) >= (2, 19)


def case(name, spec, args, changed=False, **extra):
    c = {"name": name, "spec": spec, "args": dict(args), "changed": changed}
    c["args"].setdefault("_ansible_module_name", "probe")
    c.update(extra)
    return c


# Specs shared by several cases.
BASIC = {
    "argument_spec": {
        "name": {"type": "str", "required": True, "aliases": ["dest", "target"]},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "count": {"type": "int"},
        "ratio": {"type": "float"},
        "enabled": {"type": "bool", "default": False},
        "path": {"type": "path"},
        "tags": {"type": "list", "elements": "str"},
        "ports": {"type": "list", "elements": "int"},
        "labels": {"type": "dict"},
        "extra": {"type": "raw"},
    },
    "supports_check_mode": True,
}
RULES = {
    "argument_spec": {
        "a": {"type": "str"},
        "b": {"type": "str"},
        "c": {"type": "str"},
        "d": {"type": "int"},
        "state": {"type": "str", "choices": ["present", "absent"]},
        "size": {"type": "int"},
        "dest": {"type": "str"},
    },
    "mutually_exclusive": [["a", "b"]],
    "required_together": [["c", "d"]],
    "required_one_of": [["a", "b", "state"]],
    "required_if": [["state", "absent", ["dest"]], ["size", 10, ["c", "dest"], True]],
    "required_by": {"size": ["dest"]},
    "supports_check_mode": True,
}
NESTED = {
    "argument_spec": {
        "name": {"type": "str"},
        "server": {
            "type": "dict",
            "options": {
                "host": {"type": "str", "required": True, "aliases": ["address"]},
                "port": {"type": "int", "default": 80},
                "password": {"type": "str", "no_log": True},
                "user": {"type": "str"},
                "tls": {
                    "type": "dict",
                    "options": {"verify": {"type": "bool", "default": True}, "ca": {"type": "path"}},
                },
            },
            "required_together": [["user", "password"]],
        },
        "mounts": {
            "type": "list",
            "elements": "dict",
            "options": {
                "src": {"type": "str", "required": True},
                "mode": {"type": "str", "choices": ["ro", "rw"], "default": "ro"},
                "opts": {"type": "list", "elements": "str"},
            },
            "mutually_exclusive": [["src", "opts"]],
        },
        "defaults": {
            "type": "dict",
            "apply_defaults": True,
            "options": {"level": {"type": "int", "default": 3}, "debug": {"type": "bool"}},
        },
    },
    "supports_check_mode": True,
}
SECRETS = {
    "argument_spec": {
        "user": {"type": "str"},
        "token": {"type": "str", "no_log": True},
        "pin": {"type": "int", "no_log": True},
        "note": {"type": "str"},
        "key": {"type": "str", "no_log": True, "default": "defaultsecret"},
        "creds": {
            "type": "list",
            "elements": "dict",
            "options": {"login": {"type": "str"}, "pass": {"type": "str", "no_log": True}},
        },
    },
    "supports_check_mode": True,
}
NO_CHECK = {"argument_spec": {"x": {"type": "str"}}, "supports_check_mode": False}
CHOICES = {
    "argument_spec": {
        "flags": {"type": "list", "elements": "str", "choices": ["f1", "f2", "f3"]},
        "level": {"type": "int", "choices": [1, 2, 3]},
        "mode": {"type": "str", "choices": ["yes", "no", "auto"]},
        "answer": {"type": "raw", "choices": [True, "maybe"]},
    },
}

CASES = [
    # Plain success, conversions and defaults.
    case("minimal", BASIC, {"name": "web"}),
    case("changed true", BASIC, {"name": "web"}, changed=True),
    case("k=v strings convert", BASIC, {
        "name": "web", "count": "42", "ratio": "1.5", "enabled": "yes", "tags": "a,b, c", "ports": "80,443",
        "labels": "a=1, b='x y'"}),
    case("int from float-like", BASIC, {"name": "n", "count": " 4.0 ", "ports": [1.0, "2", "1e3", True]}),
    case("int rejects fraction", BASIC, {"name": "n", "count": 4.5}),
    case("int rejects word", BASIC, {"name": "n", "count": "forty"}),
    case("int big string", BASIC, {"name": "n", "count": "1_000"}),
    case("float from int and bool", BASIC, {"name": "n", "ratio": 3, "ports": [], "enabled": 1}),
    case("float rejects word", BASIC, {"name": "n", "ratio": "fast"}),
    case("float rejects list", BASIC, {"name": "n", "ratio": [1]}),
    case("bool words", BASIC, {"name": "n", "enabled": " ON "}),
    case("bool rejects maybe", BASIC, {"name": "n", "enabled": "maybe"}),
    case("bool rejects 2", BASIC, {"name": "n", "enabled": 2}),
    case("bool rejects list", BASIC, {"name": "n", "enabled": ["yes"]}),
    case("str from numbers and dicts", BASIC, {"name": 12.5, "state": "present", "extra": {"k": [1, None]},
                                               "tags": [1, True, None, 2.0, {"a": "b"}]}),
    case("str null is empty for required", BASIC, {"name": None}),
    case("list from int", BASIC, {"name": "n", "tags": 5}),
    case("list rejects dict", BASIC, {"name": "n", "tags": {"a": 1}}),
    case("list elements fail", BASIC, {"name": "n", "ports": ["80", "http", 443]}),
    case("dict from json string", BASIC, {"name": "n", "labels": '{"a": [1, 2], "b": null}'}),
    case("dict from python literal", BASIC, {"name": "n", "labels": "{'a': True, 'b': (1, 2)}"}),
    case("dict bad literal", BASIC, {"name": "n", "labels": "{not a dict"}),
    case("dict k=v without =", BASIC, {"name": "n", "labels": "a=1, b"}),
    case("dict plain word", BASIC, {"name": "n", "labels": "word"}),
    case("dict rejects int", BASIC, {"name": "n", "labels": 5}),
    case("path expands", BASIC, {"name": "n", "path": "~/x/$CONFORMANCE_VAR/${CONFORMANCE_VAR}y/$NOT_SET_ANYWHERE"}),
    case("explicit null keeps default out", BASIC, {"name": "n", "state": None, "count": None}),
    case("null for option with default", BASIC, {"name": "n", "enabled": None}),
    # Aliases.
    case("alias used", BASIC, {"dest": "viaalias"}),
    case("alias and option both", BASIC, {"name": "own", "dest": "alias"}),
    case("two aliases", BASIC, {"target": "t", "dest": "d"}),
    # Required, choices.
    case("missing required", BASIC, {"state": "absent"}),
    case("missing required sorted", {"argument_spec": {"zeta": {"required": True}, "alpha": {"required": True}}}, {}),
    case("choice bad", BASIC, {"name": "n", "state": "gone"}),
    case("choice null given", BASIC, {"name": "n", "state": None}),
    case("list choices bad", CHOICES, {"flags": ["f1", "f4", "f5"]}),
    case("list choices from string", CHOICES, {"flags": "f1,f3"}),
    case("int choices convert first", CHOICES, {"level": "2"}),
    case("int choices bad", CHOICES, {"level": 7}),
    case("yaml False back to no", CHOICES, {"mode": "False"}),
    case("yaml True back to yes", CHOICES, {"mode": "True"}),
    case("raw choice True equals 1", CHOICES, {"answer": 1}),
    case("raw choice bad", CHOICES, {"answer": 2.5}),
    # Cross-option rules.
    case("rules satisfied", RULES, {"a": "x", "c": "1", "d": 2}),
    case("mutually exclusive", RULES, {"a": "x", "b": "y"}),
    case("mutually exclusive counts null", RULES, {"a": "x", "b": None}),
    case("required together", RULES, {"a": "x", "c": "only"}),
    case("required one of", RULES, {"c": "1", "d": 1}),
    case("required if all", RULES, {"state": "absent"}),
    case("required if any", RULES, {"state": "present", "size": "10"}),
    case("required if any satisfied", RULES, {"state": "present", "size": 10, "c": "x", "d": 1, "dest": "y"}),
    case("required by", RULES, {"a": "x", "size": 3}),
    case("required by null", RULES, {"a": "x", "size": 3, "dest": None}),
    case("first error wins (exclusive before type)", RULES, {"a": "x", "b": "y", "d": "nope"}),
    case("type before choices", RULES, {"a": "x", "d": "nope", "state": "bogus", "c": "z"}),
    # Nested options.
    case("nested ok with defaults", NESTED, {"server": {"host": "h", "tls": {}}, "mounts": [{"src": "/a"}]}),
    case("nested alias", NESTED, {"server": {"address": "h", "host": "x", "port": "8080"}}),
    case("nested missing required", NESTED, {"server": {"port": 1}}),
    case("nested type error", NESTED, {"server": {"host": "h", "port": "http"}}),
    case("nested deeper type", NESTED, {"server": {"host": "h", "tls": {"verify": "sometimes"}}}),
    case("list of dicts element error", NESTED, {"mounts": [{"src": "/a"}, {"mode": "rx"}]}),
    case("list of dicts choice error", NESTED, {"mounts": [{"src": "/a", "mode": "rx"}]}),
    case("list of dicts exclusive", NESTED, {"mounts": [{"src": "/a", "opts": "x,y"}]}),
    case("list of dicts from k=v strings", NESTED, {"mounts": ["src=/a mode=rw", "src=/b"]}),
    case("list of dicts bad element", NESTED, {"mounts": [{"src": "/a"}, 5]}),
    case("dict option given int", NESTED, {"server": 5}),
    case("dict option given bad string", NESTED, {"server": "nonsense"}),
    case("nested null counts as given", NESTED, {"server": {"host": "h", "password": "pw", "user": None}}),
    case("nested required together", NESTED, {"server": {"host": "h", "password": "pw"}}),
    case("apply defaults on null", NESTED, {"defaults": None}),
    case("apply defaults on partial", NESTED, {"defaults": {"debug": "no"}}),
    case("nested unknown", NESTED, {"server": {"host": "h", "zz": 1, "aa": 2}}),
    case("nested unknown in list", NESTED, {"mounts": [{"src": "a", "bogus": 1}, {"src": "b", "bogus": 2}]}),
    # Unknown parameters.
    case("unknown top", BASIC, {"name": "n", "zzz": 1, "bogus": 2}),
    case("unknown ignored", BASIC, {"name": "n", "zzz": 1, "_ansible_ignore_unknown_opts": True}),
    case("unknown after other errors", BASIC, {"name": "n", "zzz": 1, "count": "x"}),
    case("unknown at two levels", NESTED, {"server": {"host": "h", "zz": 1}, "top": 1}),
    case("module name in message", BASIC, {"name": "n", "zzz": 1, "_ansible_module_name": "gpunode.nvidia.thing"}),
    # Check mode.
    case("check mode supported", BASIC, {"name": "n", "_ansible_check_mode": True}, changed=True),
    case("check mode unsupported skips", NO_CHECK, {"x": "y", "_ansible_check_mode": True}),
    case("check mode unsupported still validates", NO_CHECK, {"x": "y", "q": 1, "_ansible_check_mode": True}),
    case("check mode flag as string", NO_CHECK, {"x": "y", "_ansible_check_mode": "yes"}),
    # Secrets.
    case("no_log masks", SECRETS, {"user": "bob", "token": "hunter2", "note": "the hunter2 token", "pin": 1234}),
    case("no_log masks numbers containing", SECRETS, {"user": "12345", "pin": "234", "note": "x"}),
    case("no_log default masked", SECRETS, {"note": "uses defaultsecret"}),
    case("no_log in sub-options", SECRETS, {"creds": [{"login": "a", "pass": "s3cr3t"}], "note": "s3cr3t!"}),
    case("no_log in failure message", SECRETS, {"token": "hunter2", "zzz": "hunter2"}),
    case("no_log secret in type error", SECRETS, {"token": "t0k", "pin": "t0k"}),
    # Deeper nesting and other shapes.
    case("unknown two levels down", NESTED, {"server": {"host": "h", "tls": {"verify": True, "deep": 1}}}),
    case("nested path expands", NESTED, {"server": {"host": "h", "tls": {"ca": "$CONFORMANCE_VAR/ca.pem"}}}),
    case("nested list choices and elements", NESTED, {"mounts": [{"src": "a", "opts": [1, 2.5, "x"]}]}),
    case("list of dicts given one dict", NESTED, {"mounts": {"src": "solo"}}),
    case("raw with elements given a string", {"argument_spec": {"r": {"type": "raw", "elements": "int"}}},
         {"r": "5"}),
    case("raw with elements given a number", {"argument_spec": {"r": {"type": "raw", "elements": "int"}}},
         {"r": 5}),
    case("required_if with bool value", {
        "argument_spec": {"force": {"type": "bool"}, "reason": {"type": "str"}},
        "required_if": [["force", True, ["reason"]]]}, {"force": "yes"}),
    case("required_if on a converted int", RULES, {"a": "x", "size": "10", "dest": "d"}),
    case("two mutually exclusive groups", {
        "argument_spec": {"a": {}, "b": {}, "c": {}, "d": {}},
        "mutually_exclusive": [["a", "b"], ["c", "d"]]}, {"a": 1, "b": 2, "c": 3, "d": 4}),
    case("alias of a no_log option is masked", {
        "argument_spec": {"password": {"no_log": True, "aliases": ["pass"]}, "msg": {}}},
        {"pass": "xyzzy", "msg": "said xyzzy"}),
    case("unicode values", BASIC, {"name": "caf\u00e9 \u2603", "tags": "\u00e9,\u00e8"}),
    case("float strings", BASIC, {"name": "n", "ratio": " 1_000.5 "}),
    case("float exponent", BASIC, {"name": "n", "ratio": "1e-7", "extra": 1e16}),
    # Spec shapes.
    case("required with default is a spec error", {"argument_spec": {"x": {"required": True, "default": "d"}}}, {}),
]


def run_python(c):
    """One AnsibleModule run in this process: its printed result as a dict."""
    spec = copy.deepcopy(c["spec"])
    args = copy.deepcopy(c["args"])
    ansible_warnings._global_warnings.clear()
    ansible_warnings._global_deprecations.clear()
    if NEW:
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        basic._ANSIBLE_PROFILE = "legacy"
    else:
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    out = io.StringIO()
    extra = {}
    with contextlib.redirect_stdout(out):
        try:
            m = basic.AnsibleModule(
                argument_spec=spec["argument_spec"],
                mutually_exclusive=spec.get("mutually_exclusive"),
                required_together=spec.get("required_together"),
                required_one_of=spec.get("required_one_of"),
                required_if=spec.get("required_if"),
                required_by=spec.get("required_by"),
                supports_check_mode=spec.get("supports_check_mode", False),
            )
            m.exit_json(changed=c["changed"])
        except SystemExit:
            pass
        except Exception as e:  # AnsibleModule itself crashes on a few inputs (a traceback, no JSON)
            return {"python_crash": "%s: %s" % (type(e).__name__, e)}, {"supported": []}
        # Which level each unknown parameter's supported list names (for the hash-order alternatives).
        try:
            v = basic.ModuleArgumentSpecValidator(
                copy.deepcopy(spec["argument_spec"]), spec.get("mutually_exclusive"),
                spec.get("required_together"), spec.get("required_one_of"), spec.get("required_if"),
                spec.get("required_by"))
            r = v.validate({k: val for k, val in copy.deepcopy(args).items() if not k.startswith("_ansible_")})
            extra["supported"] = [
                (", ".join(sorted(s[0])) + (" (%s)" % ", ".join(sorted(s[1])) if s[1] else ""))
                for s in r._supported_parameters.values()
            ]
        except Exception:  # the Python side's own crash is reported by the comparison
            extra["supported"] = []
    text = out.getvalue().strip()
    try:
        return json.loads(text), extra
    except ValueError:
        return {"python_output": text}, extra


BOOLS = re.compile(r"Valid booleans include: (.*)$")


def messages_match(ours, theirs, extra):
    if ours == theirs:
        return True
    if ours is None or theirs is None:
        return False
    mo, mt = BOOLS.search(ours), BOOLS.search(theirs)
    if mo and mt and ours[: mo.start()] == theirs[: mt.start()]:
        return set(mo.group(1).split(", ")) == set(mt.group(1).split(", "))
    if theirs.startswith("Unsupported parameters"):
        head = theirs.split(". Supported parameters include: ")[0]
        return any(ours == "%s. Supported parameters include: %s." % (head, s) for s in extra["supported"])
    return False


def warning_texts(result):
    """Warnings as text: 2.19 in-process gives structured summaries, a binary module returns strings."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def compare(c, ours, theirs, extra):
    problems = []
    if "python_crash" in theirs:
        # Where Python crashes with a traceback, ours must still fail cleanly with a message.
        if not (ours.get("failed") is True and ours.get("msg")):
            problems.append("python crashes (%s); ours must fail cleanly, got %r" % (theirs["python_crash"], ours))
        return problems
    for key in ("failed", "changed", "skipped"):
        if ours.get(key) != theirs.get(key):
            problems.append("%s: ours %r, python %r" % (key, ours.get(key), theirs.get(key)))
    if not messages_match(ours.get("msg"), theirs.get("msg"), extra):
        problems.append("msg:\n      ours   %r\n      python %r" % (ours.get("msg"), theirs.get("msg")))
    if ours.get("invocation") != theirs.get("invocation"):
        problems.append("invocation:\n      ours   %s\n      python %s" % (
            json.dumps(ours.get("invocation"), sort_keys=True), json.dumps(theirs.get("invocation"), sort_keys=True)))
    if warning_texts(ours) != warning_texts(theirs):
        problems.append("warnings: ours %r, python %r" % (warning_texts(ours), warning_texts(theirs)))
    extra_keys = set(ours) ^ set(theirs)
    if extra_keys - {"deprecations"}:
        problems.append("keys differ: ours %s, python %s" % (sorted(ours), sorted(theirs)))
    return problems


def main():
    # A hundred cases: only the failing ones are printed; the counts are whole.
    tally = Tally("conformance, ansible-core %s" % ansible.__version__, show_passes=False)
    probe = sys.argv[1]
    cases = [c for c in CASES if tally.case(c["name"], header=False)]
    os.environ["CONFORMANCE_VAR"] = "cv"
    os.environ.setdefault("HOME", "/root")
    res = subprocess.run([probe], input=json.dumps(cases).encode(), capture_output=True, check=True)
    ours_all = json.loads(res.stdout)
    crashes = 0
    for c, ours in zip(cases, ours_all, strict=True):
        theirs, extra = run_python(c)
        problems = compare(c, ours, theirs, extra)
        if "python_crash" in theirs:
            crashes += 1
            print("note %s: python crashes (%s); ours: %r" % (c["name"], theirs["python_crash"], ours.get("msg")))
        tally.check(c["name"], not problems, "args %s\n%s" % (json.dumps(c["args"]), "\n".join(problems)))
    print("ansible-core %s: %d cases (%d where Python crashes)" % (ansible.__version__, len(cases), crashes))
    sys.exit(tally.finish())


if __name__ == "__main__":
    main()
