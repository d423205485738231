"""containerd configs for the reliability tests, generated from a seed: a realistic base config, a large one
(so that a write takes measurable time), and random documents for the property tests.

Generated text is tagged: every comment a test expects to survive starts with `# keep`, and the blocks of
tables the module must not touch are returned separately so a test can look for them verbatim.
"""

import random

CRI_V2 = 'plugins."io.containerd.grpc.v1.cri"'
CRI_V3 = 'plugins."io.containerd.cri.v1.runtime"'


def cri_table(version):
    """The CRI plugin table that holds `containerd.runtimes` for a config version (2: grpc CRI; 3+: cri.v1.runtime)."""
    return CRI_V2 if version == 2 else CRI_V3


def cri_keys(version):
    """The CRI plugin table's path as a list of keys, for walking a parsed document."""
    return ["plugins", "io.containerd.grpc.v1.cri" if version == 2 else "io.containerd.cri.v1.runtime"]


def base_config(version=2, systemd_cgroup=True):
    """A config like containerd 1.6's default with runc set to the systemd cgroup driver, plus comments."""
    cri = cri_table(version)
    return (
        "# keep: node config managed by hand\n"
        "version = %d\n"
        'root = "/var/lib/containerd"\n'
        'state = "/run/containerd"\n'
        "\n"
        "[grpc]\n"
        '  address = "/run/containerd/containerd.sock"  # keep: socket\n'
        "  max_recv_message_size = 16777216\n"
        "\n"
        "[%s]\n"
        '  sandbox_image = "registry.k8s.io/pause:3.9"\n'
        "\n"
        "[%s.containerd]\n"
        '  default_runtime_name = "runc"\n'
        '  snapshotter = "overlayfs"\n'
        "\n"
        "[%s.containerd.runtimes.runc]\n"
        '  runtime_type = "io.containerd.runc.v2"\n'
        "\n"
        "[%s.containerd.runtimes.runc.options]\n"
        "  SystemdCgroup = %s\n"
        "\n"
        "# keep: registry mirrors below\n"
        "[%s.registry]\n"
        '  config_path = "/etc/containerd/certs.d"\n'
    ) % (version, cri, cri, cri, cri, "true" if systemd_cgroup else "false", cri if version == 2 else 'plugins."io.containerd.grpc.v1.cri"')


def large_config(target_bytes, version=2, seed=1):
    """A valid config of about `target_bytes`: the base config plus many commented registry-host tables."""
    rng = random.Random(seed)
    parts = [base_config(version)]
    size = len(parts[0])
    i = 0
    while size < target_bytes:
        host = "mirror-%06d.registry.example" % i
        block = (
            "\n# keep: mirror %d, added by the site's registry policy (%s)\n"
            '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."%s"]\n'
            '  endpoint = ["https://%s:%d", "https://fallback-%d.example"]\n'
            "  weight = %d\n"
        ) % (i, "x" * rng.randint(10, 60), host, host, rng.randint(1000, 9999), i, rng.randint(0, 100))
        parts.append(block)
        size += len(block)
        i += 1
    return "".join(parts)


# --- random documents for the property tests -------------------------------------------------------------

UNRELATED_TABLES = [
    ("grpc", ['address = "/run/containerd/containerd.sock"', "uid = 0", "gid = 0"]),
    ("ttrpc", ['address = ""']),
    ("debug", ['level = "info"', "format = 'json'"]),
    ("metrics", ['address = "127.0.0.1:1338"', "grpc_histogram = false"]),
    ('plugins."io.containerd.gc.v1.scheduler"', ["pause_threshold = 0.02", 'schedule_delay = "0s"']),
    ('plugins."io.containerd.snapshotter.v1.overlayfs"', ['root_path = ""', "upperdir_label = false"]),
    ('plugins."io.containerd.internal.v1.opt"', ['path = "/opt/containerd"']),
    ("timeouts", ['"io.containerd.timeout.shim.cleanup" = "5s"', '"io.containerd.timeout.task.state" = "2s"']),
    ("cgroup", ['path = ""']),
    ('proxy_plugins."my-snap"', ['type = "snapshot"', 'address = "/run/my-snap.sock"']),
]

ODD_VALUES = [
    "'literal \\no escape'",
    '"tab\\tand \\u00e9"',
    "[1, 2,\n  3,  # keep: inside an array\n]",
    "{ a = 1, b = 'x' }",
    '"""\nmulti\nline"""',
    "1979-05-27T07:32:00Z",
    "-0.0",
    "0x_dead_beef".replace("_", "", 1),
    "+inf",
    "true",
]

NAMES = ["nvidia", "nvidia-cdi", "gpu", "nvidia.experimental", "nvidia_2", "NVIDIA"]
BINARIES = [
    "/usr/bin/nvidia-container-runtime",
    "/usr/local/nvidia/toolkit/nvidia-container-runtime",
    '/opt/odd "quoted" dir/nvidia-container-runtime',
    "/opt/back\\slash/runtime",
    "/opt/ünïcode/runtime",
]


def random_case(rng):
    """One random (config text or None, args, facts) case for the containerd edit.

    facts: `version`, `keep_blocks` (text blocks that must survive verbatim), `keep_comments` (in order),
    `base` (the runtime a new runtime should copy, or None).
    """
    kind = rng.choice(["missing", "empty", "comments-only", "v2", "v2", "v3", "v3"])
    args = {
        "name": rng.choice(NAMES),
        "binary_path": rng.choice(BINARIES),
        "set_as_default": rng.random() < 0.4,
        "enable_cdi": rng.random() < 0.3,
        "state": "absent" if rng.random() < 0.25 else "present",
        "validate": "none",
        "backup": False,
    }
    facts = {"keep_blocks": [], "keep_comments": [], "base": None, "version": None}
    if kind == "missing":
        args["config_version"] = rng.choice([2, 3])
        facts["version"] = args["config_version"]
        return None, args, facts
    if kind == "empty":
        args["config_version"] = rng.choice([2, 3])
        facts["version"] = args["config_version"]
        return "", args, facts
    if kind == "comments-only":
        args["config_version"] = rng.choice([2, 3])
        facts["version"] = args["config_version"]
        text = "# keep: only a comment\n\n# keep: and another\n"
        facts["keep_comments"] = ["# keep: only a comment", "# keep: and another"]
        return text, args, facts

    version = 2 if kind == "v2" else rng.choice([3, 3, 4])
    facts["version"] = version
    cri = cri_table(version)
    lines = []
    n_comment = 0

    def comment(where):
        nonlocal n_comment
        n_comment += 1
        c = "# keep: %s %d" % (where, n_comment)
        facts["keep_comments"].append(c)
        return c

    if rng.random() < 0.7:
        lines.append(comment("header"))
    lines.append("version = %d" % version)
    for key, value in rng.sample([("root", '"/var/lib/containerd"'), ("state", "'/run/containerd'"),
                                  ("oom_score", "-999"), ("disabled_plugins", "[]"),
                                  ("required_plugins", '["io.containerd.grpc.v1.cri"]')], rng.randint(0, 3)):
        lines.append("%s = %s" % (key, value))
    lines.append("")

    blocks = []
    for name, keys in rng.sample(UNRELATED_TABLES, rng.randint(0, 5)):
        b = []
        if rng.random() < 0.5:
            b.append(comment(name))
        b.append("[%s]" % name)
        for k in keys:
            b.append(rng.choice(["", "  ", "\t"]) + k + (("  " + comment("inline")) if rng.random() < 0.2 else ""))
        if rng.random() < 0.3:
            b.append("  odd_%d = %s" % (rng.randint(0, 99), rng.choice(ODD_VALUES)))
        b.append("")
        blocks.append(("unrelated", "\n".join(b) + "\n"))

    # The CRI plugin: its own settings, containerd settings, runtimes and a registry (not a runtime table).
    default = rng.choice([None, "runc", "runc", "crun", "nvidia", "kata"])
    runtimes = {}
    if rng.random() < 0.85:
        runtimes["runc"] = rng.choice([True, False, None])
    if rng.random() < 0.3:
        runtimes["crun"] = rng.choice([True, False, None])
    if rng.random() < 0.2:
        runtimes["nvidia"] = rng.choice([True, None])
    if rng.random() < 0.2:
        runtimes["kata"] = None
    cri_lines = ["[%s]" % cri, "  " + comment("cri"), '  sandbox_image = "registry.k8s.io/pause:3.%d"' % rng.randint(1, 10), ""]
    cri_lines += ["[%s.containerd]" % cri]
    if default:
        cri_lines.append('  default_runtime_name = "%s"' % default)
    cri_lines.append('  snapshotter = "overlayfs"')
    cri_lines.append("")
    for rt, cgroup in runtimes.items():
        cri_lines.append("[%s.containerd.runtimes.%s]" % (cri, rt))
        cri_lines.append('  runtime_type = "io.containerd.%s.v2"' % ("kata" if rt == "kata" else "runc"))
        if version >= 3 and rng.random() < 0.5:
            cri_lines.append('  sandboxer = "podsandbox"')
        if rt == "nvidia":
            cri_lines.append("  [%s.containerd.runtimes.%s.options]" % (cri, rt))
            cri_lines.append('    BinaryName = "/usr/bin/nvidia-container-runtime-old"')
            if cgroup is not None:
                cri_lines.append("    SystemdCgroup = %s" % str(cgroup).lower())
        elif cgroup is not None:
            cri_lines.append("  [%s.containerd.runtimes.%s.options]" % (cri, rt))
            cri_lines.append("    SystemdCgroup = %s" % str(cgroup).lower())
        cri_lines.append("")
    blocks.append(("cri", "\n".join(cri_lines) + "\n"))

    if rng.random() < 0.6:
        reg = [comment("registry"), '[plugins."io.containerd.grpc.v1.cri".registry]',
               '  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"', ""]
        blocks.append(("unrelated", "\n".join(reg) + "\n"))

    rng.shuffle(blocks)
    text = "\n".join(lines) + "\n" + "".join(b for _, b in blocks)
    if rng.random() < 0.5:
        text += comment("trailer") + "\n"
    # Comments inside blocks are kept in the order written; the shuffle changed that order, so recompute it.
    facts["keep_comments"] = [ln[ln.index("# keep"):] for ln in text.splitlines() if "# keep" in ln]
    facts["keep_blocks"] = [b for k, b in blocks if k == "unrelated"]
    # The base runtime a new runtime copies: the default runtime whatever its name, then runc.
    for candidate in ([default] if default else []) + ["runc"]:
        if candidate in runtimes:
            facts["base"] = candidate
            break
    facts["runtimes"] = runtimes
    facts["default"] = default
    return text, args, facts
