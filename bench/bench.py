"""The benchmarks: the compiled modules beside what users would otherwise run, in one run, one table.

Run through bench/run (it prepares the venv, containerd, the modules); this file does the measuring:

  sizes     size of each static binary; bytes a run uploads (plain protocol vs the action plugin's cache)
  direct    each module's idempotent path run directly as Ansible runs it (argv[1] = args file), >= 50 runs:
            median, p90, peak RSS; beside a Python AnsibleModule doing the same work (bench/python/)
  playbook  inside ansible-playbook on localhost: per-task time of each module (plain and through the action
            plugin) beside ansible.builtin.stat and the builtin/Python task a role would use
  ssh       over real SSH (local sshd) with added latency (bench/delay_proxy.py): per-task time and bytes sent
            of the binary module (plain: seven remote steps), through the plugin (one) and pipelined Python
  podman    the same per-task comparison on a Podman node reached over SSH
  role      the node role's idempotent run on 1, 2, 4 and 8 Podman nodes over SSH, beside the same flow written
            in ansible.builtin tasks (bench/role/builtin.yml); nvidia_toolkit's idempotent path run directly
            on a node where the role installed the toolkit, beside the Python modules a role would use
  fleet     the role and its twin on 10 to 100 light SSH nodes (bench/fleet/), first and idempotent run, 0 and
            +50 ms RTT: wall, CPU per host-task, bytes per node; a model and its 1,000-node prediction

Every figure is measured in this run; a section that cannot run says why in the table instead of a number.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from sent_count import read_count  # bench/ is this script's folder, so it is on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBRARY = os.path.join(ROOT, "library")
MODULES = ["containerd_runtime", "nvidia_toolkit", "gpu_validate"]
# The goals, checked where the figure is measured.
SIZE_GOAL_MB = {"containerd_runtime": 1.5, "gpu_validate": 1.5, "nvidia_toolkit": 3.0}

report = []  # (bench section, table title, intro, header, rows, notes)
SECTIONS = ["sizes", "direct", "playbook", "ssh", "podman", "role", "fleet"]
current = {"section": None}


def add_table(title, intro, header, rows, notes=()):
    report.append((current["section"], title, intro, header, rows, list(notes)))
    print(f"\n## {title}\n")
    if rows == [] or title.startswith("Section"):
        print(intro)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    for n in notes:
        print(f"  note: {n}")


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure_direct(ctx, argv, runs):
    """One warm-up run (page cache; its output is returned for checking), then `runs` timed runs, all started by
    bench/spawn.rs (a tiny static launcher: a child of Python would report Python's RSS as its peak)."""
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run([ctx["spawn"], "1", out.name, *argv], check=True, capture_output=True)
        first = open(out.name, encoding="utf-8", errors="replace").read()
        lines = subprocess.run([ctx["spawn"], str(runs), os.devnull, *argv], check=True, capture_output=True,
                               text=True).stdout.split("\n")
    samples = [tuple(int(x) for x in line.split()) for line in lines if line.strip()]
    walls = [s[0] / 1e9 for s in samples]
    cpus = [s[3] / 1e9 for s in samples]
    return {"median": statistics.median(walls), "p90": pct(walls, 0.9), "rss_kib": max(s[1] for s in samples),
            "cpu": statistics.median(cpus), "out": first}


def ms(s):
    return f"{s * 1000:.2f} ms"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def verdict(ok):
    return "met" if ok else "MISSED"


def parse_result(text):
    try:
        return json.loads(text[text.index("{"):])
    except (ValueError, json.JSONDecodeError):
        return {"failed": True, "msg": text.strip()[:200]}


# ---------------------------------------------------------------------------------------------------- sizes
def section_sizes(ctx):
    rows, notes = [], []
    for m in MODULES:
        path = os.path.join(LIBRARY, m)
        size = os.path.getsize(path)
        goal = SIZE_GOAL_MB[m]
        rows.append([m, f"{size:,} B", f"{size / 1e6:.2f} MB", f"< {goal} MB", verdict(size / 1e6 < goal)])
    probe = ctx.get("probe")
    if probe:
        size = os.path.getsize(probe)
        rows.append(["(a std-only static Rust program)", f"{size:,} B", f"{size / 1e6:.2f} MB", "-", "floor"])
        notes.append("the last row is the floor of a static glibc build: most of each module's size is the "
                     "statically linked C library and Rust's std, not module code")
    add_table("Binary sizes", "Release build by scripts/build-modules (static, LTO, opt-level s, stripped).",
              ["module", "bytes", "size", "goal", "verdict"], rows, notes)


# --------------------------------------------------------------------------------------------------- direct
def write_args(tmp, name, args):
    path = os.path.join(tmp, f"{name}.args")
    with open(path, "w") as f:
        json.dump(args, f)
    return path


def write_py_args(tmp, name, args):
    path = os.path.join(tmp, f"{name}.pyargs")
    with open(path, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
    return path


def direct_cases(ctx, tmp):
    """(module, what, binary argv, python argv, note) for each module's idempotent path."""
    py = ctx["python"]
    cases = []
    # containerd_runtime on containerd 1.6's default config, with the runtime already in place.
    config = os.path.join(tmp, "config.toml")
    with open(config, "w") as f:
        f.write(ctx["containerd_default"])
    args = {"path": config, "name": "nvidia", "binary_path": "/usr/bin/nvidia-container-runtime",
            "validate": "none"}
    apply = write_args(tmp, "cr-apply", args)
    out = subprocess.run([os.path.join(LIBRARY, "containerd_runtime"), apply], capture_output=True, text=True)
    first = parse_result(out.stdout)
    if first.get("failed"):
        args.pop("validate")
        apply = write_args(tmp, "cr-apply", args)
        first = parse_result(subprocess.run([os.path.join(LIBRARY, "containerd_runtime"), apply],
                                            capture_output=True, text=True).stdout)
    cases.append(("containerd_runtime", "runtime present in containerd 1.6's default config (no change)",
                  [os.path.join(LIBRARY, "containerd_runtime"), apply],
                  [py, os.path.join(HERE, "python/containerd_runtime_py.py"),
                   write_py_args(tmp, "cr", {"path": config, "name": "nvidia",
                                              "binary_path": "/usr/bin/nvidia-container-runtime"})],
                  None if not first.get("failed") else f"first apply failed: {first.get('msg')}"))
    # nvidia_toolkit's idempotent path needs an installed toolkit and its keyring: the role section measures it
    # on a node the role set up.
    # gpu_validate: the read-only checks on the recorded H200 node's file system.
    sysroot = ctx.get("sysroot")
    checks = ["pci", "driver", "device_nodes", "containerd"]
    cases.append(("gpu_validate", "PCI, driver, device nodes, containerd config reads on the recorded H200 sysroot",
                  [os.path.join(LIBRARY, "gpu_validate"),
                   write_args(tmp, "gv", {"sysroot": sysroot, "checks": checks, "fail_on": "never"})],
                  [py, os.path.join(HERE, "python/gpu_validate_py.py"),
                   write_py_args(tmp, "gv", {"sysroot": sysroot})], None))
    return cases


def section_direct(ctx):
    runs = ctx["runs"]
    tmp = tempfile.mkdtemp(prefix="gpunode-bench-")
    rows, notes = [], []
    try:
        for module, what, bin_argv, py_argv, note in direct_cases(ctx, tmp):
            b = measure_direct(ctx, bin_argv, runs)
            p = measure_direct(ctx, py_argv, runs)
            res = parse_result(b["out"])
            state = "ok" if not res.get("failed") else f"module failed: {str(res.get('msg'))[:80]}"
            if res.get("changed"):
                state = "changed (not idempotent!)"
            ratio = p["median"] / b["median"]
            goal = "-"
            if module == "containerd_runtime":
                ok = state == "ok" and b["median"] < 0.002 and b["rss_kib"] < 5 * 1000 and ratio >= 10
                goal = f"<2 ms, <5 MB, >=10x: {verdict(ok)}"
            rows.append([module, ms(b["median"]), ms(b["p90"]), ms(b["cpu"]), mib(b["rss_kib"]), ms(p["median"]),
                         ms(p["p90"]), ms(p["cpu"]), mib(p["rss_kib"]), f"{ratio:.1f}x",
                         f"{p['rss_kib'] / b['rss_kib']:.1f}x", state, goal])
            notes.append(f"{module}: {what}" + (f"; {note}" if note else ""))
            py_res = parse_result(p["out"])
            if py_res.get("failed"):
                notes.append(f"{module}: the Python baseline failed: {str(py_res.get('msg'))[:120]}")
        floor = measure_direct(ctx, ["/bin/true"], runs)
        rows.append(["(/bin/true: the launcher's floor)", ms(floor["median"]), ms(floor["p90"]), ms(floor["cpu"]),
                     mib(floor["rss_kib"]), "", "", "", "", "", "", "", ""])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    add_table(f"Direct runs ({runs} runs each, after one warm-up)",
              "Each module run the way Ansible runs a binary module (`MODULE ARGS_FILE`), beside a Python "
              "AnsibleModule doing the same work run the way Ansible runs it without AnsiballZ packing "
              "(`python3 module.py ARGS_FILE`, ansible-core " + ctx["ansible_version"] + ", tomlkit " +
              ctx["tomlkit_version"] + "). Started by bench/spawn.rs; wall time includes fork+exec; RSS is the "
              "peak (wait4's ru_maxrss, which includes the launcher's own pages before exec: see the floor row); CPU "
              "is the median user + system time per run, which a loaded machine does not inflate the way it "
              "inflates wall time.",
              ["module", "median", "p90", "CPU", "peak RSS", "Python median", "Python p90", "Python CPU",
               "Python RSS", "time ratio", "RSS ratio", "result", "goal"], rows, notes)


# ------------------------------------------------------------------------------------------------- playbooks
def play_file(tmp, name, hosts, task, count, play_vars=None):
    # ignore_errors: a failing module still gets timed; the row then says it failed.
    tasks = [dict(task, name=f"t{i}", ignore_errors=True) for i in range(count)]
    play = [{"hosts": hosts, "gather_facts": False, "vars": play_vars or {}, "tasks": tasks}]
    path = os.path.join(tmp, f"{name}.yml")
    with open(path, "w") as f:
        json.dump(play, f)
    return path


def run_playbook(ctx, path, inventory_args, env_extra=None, reps=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LIBRARY=ctx["bench_library"], ANSIBLE_ACTION_PLUGINS=ctx["action_plugins"])
    env.update(env_extra or {})
    times, ignored = [], False
    for _ in range(reps or ctx["reps"]):
        t0 = time.perf_counter()
        out = subprocess.run([ctx["ansible_playbook"], *inventory_args, path], env=env, capture_output=True,
                             text=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise RuntimeError(f"{os.path.basename(path)} failed:\n{out.stdout[-1500:]}{out.stderr[-800:]}")
        ignored = ignored or bool(re.search(r"ignored=[1-9]", out.stdout))
        if ignored:
            run_playbook.last_error = re.findall(r'"msg": "([^"]{0,160})', out.stdout)[:1]
    run_playbook.ignored = ignored
    return statistics.median(times)


def task_variants(ctx, node_paths):
    """(label, task, extra play vars) per comparison; node_paths holds the files the tasks use on the node."""
    cr = {"path": node_paths["config"], "name": "nvidia", "binary_path": "/usr/bin/nvidia-container-runtime"}
    gv = {"sysroot": node_paths["sysroot"], "checks": ["pci", "driver", "device_nodes", "containerd"],
          "fail_on": "never"}
    no_cache = {"gpunode_module_cache": False}
    return [
        ("ansible.builtin.stat", {"ansible.builtin.stat": {"path": node_paths["config"]}}, {}),
        ("containerd_runtime via action plugin (cached)", {"containerd_runtime": cr}, {}),
        ("containerd_runtime plain binary protocol", {"containerd_runtime": cr}, no_cache),
        ("ansible.builtin.copy of the same config (template-like)",
         {"ansible.builtin.copy": {"content": ctx["containerd_configured"], "dest": node_paths["config"]}}, {}),
        ("Python module: tomlkit edit (bench/python)", {"containerd_runtime_py": cr}, {}),
        ("gpu_validate via action plugin (cached)", {"gpu_validate": gv}, {}),
        ("gpu_validate plain binary protocol", {"gpu_validate": gv}, no_cache),
        ("Python module: validation reads (bench/python)",
         {"gpu_validate_py": {"sysroot": node_paths["sysroot"]}}, {}),
    ]


def per_task_table(ctx, title, intro, inventory_args, node_paths, count, env_extra=None, notes=()):
    tmp = tempfile.mkdtemp(prefix="gpunode-bench-play-")
    rows = []
    try:
        hosts = "all"
        empty = play_file(tmp, "empty", hosts, {"ansible.builtin.meta": "noop"}, 1)
        base = run_playbook(ctx, empty, inventory_args, env_extra)
        stat_per_task = None
        for label, task, play_vars in task_variants(ctx, node_paths):
            # One untimed run fills the plugin's cache on the node and any other warm-up.
            path = play_file(tmp, "variant", hosts, task, count, play_vars)
            run_playbook(ctx, play_file(tmp, "warm", hosts, task, 1, play_vars), inventory_args, env_extra, 1)
            total = run_playbook(ctx, path, inventory_args, env_extra)
            per = (total - base) / count
            if stat_per_task is None:
                stat_per_task = per
            goal = ""
            if label.startswith(("containerd_runtime", "gpu_validate")):
                goal = f"{verdict(per <= stat_per_task * 1.05)} (no slower than stat)"
            if run_playbook.ignored:
                goal = "task FAILED: " + " ".join(run_playbook.last_error)
            rows.append([label, f"{total:.2f} s", ms(per), f"{per / stat_per_task:.2f}", goal])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    add_table(title, intro + f" {count} identical tasks per play, median of {ctx['reps']} plays; per task = (play - empty "
              f"play {base:.2f} s) / {count}.", ["task", "play", "per task", "vs stat", "goal"], rows, notes)


def section_playbook(ctx):
    per_task_table(ctx, "Inside ansible-playbook, localhost (local connection)",
                   f"ansible-core {ctx['ansible_version']}, pipelining on (the project's ansible.cfg).",
                   ["-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={ctx['python']}"],
                   {"config": ctx["local_config"], "sysroot": ctx["sysroot"]}, ctx["tasks"])


# ------------------------------------------------------------------------------------------------------- ssh
def section_ssh(ctx):
    """SSH to a local sshd through bench/delay_proxy.py (added latency, bytes counted) as the ProxyCommand."""
    ssh = ctx["ssh"]
    rows = []
    tmp = tempfile.mkdtemp(prefix="gpunode-bench-ssh-")
    count_file = os.path.join(tmp, "sent")
    n = ctx["tasks"]
    cr = {"path": ctx["local_config"], "name": "nvidia", "binary_path": "/usr/bin/nvidia-container-runtime"}
    variants = [
        ("ansible.builtin.stat (pipelined Python)", {"ansible.builtin.stat": {"path": ctx["local_config"]}}, {}),
        ("containerd_runtime plain binary protocol", {"containerd_runtime": cr}, {"gpunode_module_cache": False}),
        ("containerd_runtime via action plugin (cached)", {"containerd_runtime": cr}, {}),
        ("Python module: tomlkit edit (pipelined)", {"containerd_runtime_py": cr}, {}),
    ]
    try:
        for delay in ctx["delays"]:
            proxy = f"{ctx['python']} {ssh['proxy']} {delay} {ssh['host']} {ssh['port']} {count_file}"
            inv = ["-i", f"{ssh['host']},", "-c", "ssh", "-u", "root",
                   "-e", f"ansible_python_interpreter={ctx['python']}",
                   "-e", f"ansible_ssh_private_key_file={ssh['key']}",
                   "-e", f"ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                         f"-o ProxyCommand=\"{proxy}\"'"]
            # A control path per delay: a master connection made through one proxy is never reused by another.
            env = {"ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(tmp, f"cp{delay}")}
            empty = play_file(tmp, "empty", "all", {"ansible.builtin.meta": "noop"}, 1)
            run_playbook(ctx, empty, inv, env, 1)
            base = run_playbook(ctx, empty, inv, env)
            stat_per = None
            for label, task, pv in variants:
                run_playbook(ctx, play_file(tmp, "warm", "all", task, 1, pv), inv, env, 1)
                # The proxy's counter runs for the life of the ssh master connection: take the difference.
                before = read_count(count_file)
                total = run_playbook(ctx, play_file(tmp, "v", "all", task, n, pv), inv, env, 1)
                sent = read_count(count_file) - before
                per = (total - base) / n
                stat_per = stat_per or per
                rows.append([f"+{2 * delay} ms", label, f"{total:.2f} s", ms(per), f"{per / stat_per:.2f}",
                             f"{sent / n / 1024:.1f} KiB", "task FAILED" if run_playbook.ignored else "ok"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    add_table("Over SSH with added latency",
              "OpenSSH to an sshd on 127.0.0.1 through bench/delay_proxy.py, which delays each direction (this "
              "kernel has no netem qdisc) and counts the bytes sent to the node; Ansible's ControlPersist and "
              f"pipelining on. {n} tasks per play, one play per row after a warm-up play (which fills the plugin's "
              "cache); per task = (play - empty play) / tasks. Sent per task = controller-to-node bytes through "
              "the connection (ssh framing included), averaged over the play.",
              ["added RTT", "task", "play", "per task", "vs stat", "sent per task", "result"], rows)


# ---------------------------------------------------------------------------------------------------- podman
# How the benchmark's Podman nodes are reached (as the Molecule scenarios reach them): throw-away host keys,
# one SSH master per node kept across the runs of a section.
NODE_SSH_ARGS = ("-o ControlMaster=auto -o ControlPersist=300s -o UserKnownHostsFile=/dev/null "
                 "-o StrictHostKeyChecking=no -o LogLevel=ERROR")


def section_podman(ctx):
    node = ctx["podman_node"]
    inv = ["-i", f"{node['host']},", "-c", "ssh", "-u", "root", "-e", "ansible_python_interpreter=/usr/bin/python3",
           "-e", f"ansible_ssh_private_key_file={node['key']}"]
    tmp = tempfile.mkdtemp(prefix="gpunode-bench-podman-")
    env = {"ANSIBLE_SSH_ARGS": NODE_SSH_ARGS,
           "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(tmp, "cp")}
    try:
        per_task_table(ctx, "Inside ansible-playbook, one Podman node over SSH",
                       "The node is a Debian bookworm systemd container (tests/nodes) reached over SSH with "
                       "pipelining and ControlPersist, as the Molecule scenarios reach it.",
                       inv, {"config": "/etc/containerd/config.toml", "sysroot": "/opt/h200"}, ctx["tasks"],
                       env_extra=env,
                       notes=["gpu_validate rows read the recorded H200 sysroot copied into the node at /opt/h200",
                              "the Python tomlkit module uses Debian's python3-tomlkit on the node"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ role
ROLE_FLOWS = [
    ("gpu_node role", os.path.join(ROOT, "molecule/resources/converge.yml")),
    ("ansible.builtin twin", os.path.join(HERE, "role/builtin.yml")),
]


def recap(stdout):
    """Sums of the PLAY RECAP counters over all hosts: {'ok': .., 'changed': .., 'failed': .., ...}."""
    totals = {}
    for key, value in re.findall(r"\b(ok|changed|unreachable|failed|skipped|rescued|ignored)=(\d+)", stdout):
        totals[key] = totals.get(key, 0) + int(value)
    return totals


def role_env(ctx, tmp):
    role = ctx["role"]
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_LIBRARY=LIBRARY,
                ANSIBLE_ACTION_PLUGINS=ctx["action_plugins"], ANSIBLE_PIPELINING="true",
                ANSIBLE_REMOTE_USER="root", ANSIBLE_PRIVATE_KEY_FILE=role["key"], ANSIBLE_HOST_KEY_CHECKING="false",
                ANSIBLE_SSH_ARGS=NODE_SSH_ARGS,
                ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(tmp, "cp"), ANSIBLE_FORKS=str(len(role["nodes"])),
                GPUNODE_APTREPO=role["aptrepo"])


def role_play(ctx, env, inventory, playbook, limit=None):
    """One ansible-playbook run: (seconds, recap totals); raises with the output's tail when it fails."""
    argv = [ctx["ansible_playbook"], "-i", inventory, playbook] + (["--limit", limit] if limit else [])
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    took = time.perf_counter() - t0
    totals = recap(out.stdout)
    if out.returncode != 0 or totals.get("failed") or totals.get("unreachable"):
        raise RuntimeError(f"{os.path.relpath(playbook, ROOT)} failed:\n{out.stdout[-2000:]}{out.stderr[-800:]}")
    return took, totals


def section_role(ctx):
    role = ctx["role"]
    nodes = role["nodes"]  # [{"name", "ip", "container"}], in order
    counts = [n for n in role["counts"] if n <= len(nodes)]
    tmp = tempfile.mkdtemp(prefix="gpunode-bench-role-")
    try:
        # The Molecule nodes' settings: the role's variables for the signed test repository, as group_vars.
        inventory = os.path.join(tmp, "inventory")
        os.makedirs(os.path.join(inventory, "group_vars"))
        shutil.copy(os.path.join(ROOT, "molecule/resources/group_vars/gpu_nodes.yml"),
                    os.path.join(inventory, "group_vars/gpu_nodes.yml"))
        with open(os.path.join(inventory, "hosts.ini"), "w") as f:
            f.write("[gpu_nodes]\n" + "".join(f"{n['name']} ansible_host={n['ip']}\n" for n in nodes))
        env = role_env(ctx, tmp)
        prepare = os.path.join(ROOT, "molecule/resources/prepare.yml")
        reps = ctx["reps"]
        results, first_runs, toolkit_rows = {}, [], []
        for label, playbook in ROLE_FLOWS:
            # Every flow starts from the same nodes: a cluster installer's containerd config, containerd running.
            role_play(ctx, env, inventory, prepare)
            (took, totals), first_sent = counted(ctx, env, tmp, nodes, lambda e: role_play(ctx, e, inventory, playbook))
            first_runs.append([label, f"{len(nodes)}", f"{took:.2f} s", str(totals.get("changed", 0)),
                               f"{first_sent / len(nodes) / 1024:.1f} KiB"])
            for n in counts:
                limit = ",".join(node["name"] for node in nodes[:n])
                times, changed = [], 0
                for _ in range(reps):
                    took, totals = role_play(ctx, env, inventory, playbook, limit)
                    times.append(took)
                    changed += totals.get("changed", 0)
                results[(label, n)] = (statistics.median(times), changed)
            # One more idempotent run on every node, untimed, through the byte-counting proxy.
            _, idem_sent = counted(ctx, env, tmp, nodes, lambda e: role_play(ctx, e, inventory, playbook))
            first_runs[-1].append(f"{idem_sent / len(nodes) / 1024:.1f} KiB")
            if label == "gpu_node role":
                toolkit_rows = toolkit_on_node(ctx, nodes[0]["container"])
        role_label, twin_label = ROLE_FLOWS[0][0], ROLE_FLOWS[1][0]
        rows = []
        for n in counts:
            r, rc = results[(role_label, n)]
            b, bc = results[(twin_label, n)]
            ok = rc == 0 and bc == 0
            goal = f"{verdict(b / r >= 3)} (>= 3x)" if ok else f"NOT IDEMPOTENT (changed: role {rc}, twin {bc})"
            rows.append([str(n), f"{r:.2f} s", f"{b:.2f} s", f"{b / r:.2f}x", goal])
        notes = []
        if len(counts) > 1:
            lo, hi = counts[0], counts[-1]
            for label in (role_label, twin_label):
                growth = (results[(label, hi)][0] - results[(label, lo)][0]) / (hi - lo)
                notes.append(f"{label}: each node beyond the first adds {growth:.2f} s "
                             f"({lo} to {hi} nodes, forks = {len(nodes)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    add_table("The node role's idempotent run on Podman nodes",
              "Debian bookworm systemd nodes with containerd 1.6 (tests/nodes), reached over SSH with pipelining and "
              "ControlPersist, as in the Molecule scenarios; the toolkit from the signed test repository, pinned and "
              "held. Each flow first runs once on every node (the first-run table), then its second, idempotent run "
              f"is timed on the first 1, 2, 4 and 8 nodes (`--limit`), median of {reps}. The role is "
              "molecule/resources/converge.yml (gpu_node, the modules through their action plugins); the twin is "
              "bench/role/builtin.yml (key, fingerprint, keyring, list, pinned apt install, holds, blockinfile in "
              "containerd's config, the same checks). A verdict needs changed=0 in every timed run.",
              ["nodes", "gpu_node role", "ansible.builtin twin", "twin / role", "goal"], rows, notes)
    add_table("First run of each flow, and bytes sent to each node",
              "From a cluster installer's config (the role's first run also installs the toolkit and fills the "
              "action plugin's cache on each node; the twin's finds the toolkit installed, and re-adds the runtime "
              "to the reset config). Bytes: controller-to-node through SSH (its compression and framing, and the "
              "connection's set-up, included), counted by bench/delay_proxy.py with no delay as the ProxyCommand, "
              "averaged over the nodes; for the first run and for one more idempotent run on every node.",
              ["flow", "nodes", "first run", "changed tasks", "sent per node, first run",
               "sent per node, idempotent run"], first_runs)
    add_table("nvidia_toolkit run directly on a node with the toolkit installed",
              f"On the first node after the role's runs, started by bench/spawn.rs inside the node, {ctx['runs']} runs "
              "after one warm-up. The module's idempotent path: key parsed and fingerprint checked, keyring, list "
              "file, dpkg's status for the four pinned packages and their holds, no apt run. Beside it the Python "
              "modules a role would run on the node for part of that work (ansible-core "
              f"{ctx['ansible_version']} module_utils copied into the node, run as `python3 module.py ARGS_FILE`).",
              ["module", "median", "p90", "CPU", "peak RSS", "result"], toolkit_rows)


def counted(ctx, env, tmp, nodes, play):
    """Runs play(env) over fresh SSH connections through bench/delay_proxy.py (no delay), which counts the bytes
    sent to each node: (play's result, bytes sent to all nodes)."""
    run = tempfile.mkdtemp(prefix="count-", dir=tmp)
    proxy = f"{ctx['python']} {os.path.join(HERE, 'delay_proxy.py')} 0 %h 22 {run}/%h"
    counted_env = dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(run, "cp"),
                       ANSIBLE_SSH_ARGS=env["ANSIBLE_SSH_ARGS"] + f' -o ProxyCommand="{proxy}"')
    result = play(counted_env)
    return result, sum(read_count(os.path.join(run, n["ip"])) for n in nodes)


def toolkit_on_node(ctx, container):
    """The direct-run rows for nvidia_toolkit on a node the role set up (keyring, list and packages in place)."""
    podman = ["podman", "exec", container]
    subprocess.run(podman + ["mkdir", "-p", "/opt/bench/py/ansible"], check=True)
    for src, dst in [(ctx["spawn"], "/opt/bench/spawn"), (os.path.join(LIBRARY, "nvidia_toolkit"), "/opt/bench/"),
                     (os.path.join(HERE, "python/toolkit_check_py.py"), "/opt/bench/"),
                     (os.path.join(ctx["ansible_package"], "module_utils"), "/opt/bench/py/ansible/"),
                     # Not named apt.py: Python would import it for python3-apt's `apt` package.
                     (os.path.join(ctx["ansible_package"], "modules/apt.py"), "/opt/bench/builtin_apt.py")]:
        subprocess.run(["podman", "cp", src, f"{container}:{dst}"], check=True)
    subprocess.run(podman + ["touch", "/opt/bench/py/ansible/__init__.py"], check=True)
    group_vars = os.path.join(ROOT, "molecule/resources/group_vars/gpu_nodes.yml")
    settings = dict(re.findall(r"^(gpu_node_\w+): \"?([^\"\n]*)\"?$", open(group_vars).read(), re.M))
    aptrepo = ctx["role"]["aptrepo"]
    packages = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                "libnvidia-container1"]
    version = settings["gpu_node_toolkit_version"]
    # The arguments the role passes (roles/gpu_node/tasks/present.yml) with the test nodes' settings.
    module_args = {"state": "present", "version": version, "packages": packages,
                   "repo_url": "file:/srv/aptrepo/good/stable/deb/$(ARCH)", "channel": "stable",
                   "key": open(os.path.join(aptrepo, "key.asc")).read(),
                   "fingerprint": open(os.path.join(aptrepo, "fingerprint")).read().strip(),
                   "keyring_path": "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg",
                   "list_path": "/etc/apt/sources.list.d/nvidia-container-toolkit.list",
                   "hold": True, "driver_check": "warn"}
    cases = [
        ("nvidia_toolkit (whole idempotent path)", ["/opt/bench/nvidia_toolkit", "/opt/bench/tk.args"], module_args),
        ("Python: dpkg-query check only (bench/python)",
         ["/usr/bin/python3", "/opt/bench/toolkit_check_py.py", "/opt/bench/py.args"],
         {"ANSIBLE_MODULE_ARGS": {"packages": packages}}),
        ("Python: ansible.builtin.apt, the pinned packages only",
         ["/usr/bin/python3", "/opt/bench/builtin_apt.py", "/opt/bench/apt.args"],
         {"ANSIBLE_MODULE_ARGS": {"name": [f"{p}={version}" for p in packages], "state": "present",
                                  "allow_change_held_packages": True}}),
        ("(/bin/true: the launcher's floor)", ["/bin/true"], None),
    ]
    rows = []
    for label, argv, args in cases:
        if args is not None:
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump(args, f)
                f.flush()
                subprocess.run(["podman", "cp", f.name, f"{container}:{argv[-1]}"], check=True)
        env = ["env", "PYTHONPATH=/opt/bench/py"]
        subprocess.run(podman + env + ["/opt/bench/spawn", "1", "/opt/bench/first.out", *argv], check=True,
                       capture_output=True)
        first = subprocess.run(podman + ["cat", "/opt/bench/first.out"], capture_output=True, text=True).stdout
        out = subprocess.run(podman + env + ["/opt/bench/spawn", str(ctx["runs"]), "/dev/null", *argv], check=True,
                             capture_output=True, text=True).stdout
        samples = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
        walls = [s[0] / 1e9 for s in samples]
        result = "" if args is None else parse_result(first)
        state = ""
        if result != "":
            state = ("FAILED: " + str(result.get("msg"))[:100]) if result.get("failed") else (
                "changed (not idempotent!)" if result.get("changed") else "ok, changed=false")
        rows.append([label, ms(statistics.median(walls)), ms(pct(walls, 0.9)),
                     ms(statistics.median(s[3] / 1e9 for s in samples)), mib(max(s[1] for s in samples)), state])
    return rows


# ----------------------------------------------------------------------------------------------------- fleet
def section_fleet(ctx):
    """bench/fleet/section.py: the role and its twin on 10 to 100 light SSH nodes, and the model for 1,000."""
    from fleet.section import section_fleet as run_fleet
    run_fleet(ctx, add_table)


# ------------------------------------------------------------------------------------------------------ main
def section_block(ctx, name):
    """One bench section's tables as markdown, between markers so a later partial run replaces only it."""
    lines = [f"<!-- section:{name} -->",
             f"*Section started {ctx['started'][name]}, {ctx['machine']}.*", ""]
    for sec, title, intro, header, rows, notes in report:
        if sec != name:
            continue
        lines += [f"### {title}", "", intro, "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    lines.append(f"<!-- /section:{name} -->")
    return "\n".join(lines)


def write_markdown(ctx, path):
    """Rewrites docs/BENCHMARKS.md: the sections measured now replace their old blocks; the others stay."""
    old = open(path).read() if os.path.exists(path) else ""
    blocks = {}
    for name in SECTIONS:
        m = re.search(rf"<!-- section:{name} -->.*?<!-- /section:{name} -->", old, re.S)
        if m:
            blocks[name] = m.group(0)
    for name in ctx["argv_sections"]:
        blocks[name] = section_block(ctx, name)
    lines = ["# Benchmarks", "",
             "Produced by `bench/run` (see its header for the options); each section below says when and on "
             "which machine it was measured, and a partial run (`bench/run SECTION...`) replaces only its own "
             "sections. Goals are checked in the tables: a missed goal says MISSED, and the notes at the end say "
             "why. The machine is shared and noisy: ratios between rows of one section are more stable than "
             "absolute times.", ""]
    titles = {"sizes": "Sizes", "direct": "Direct runs", "playbook": "Inside ansible-playbook (localhost)",
              "ssh": "Over SSH with added latency", "podman": "On a Podman node",
              "role": "The node role on 1 to 8 Podman nodes",
              "fleet": "Fleet scale: 10 to 100 light SSH nodes, and a model for 1,000"}
    for name in SECTIONS:
        if name in blocks:
            lines += [f"## {titles[name]}", "", blocks[name], ""]
    # The prose around the figures (why a goal is missed, how to read the tables) is read when the file is
    # written, so it can be edited while a long run is going.
    discussion = os.path.join(HERE, "discussion.md")
    if os.path.exists(discussion):
        lines += [open(discussion).read()]
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--context", required=True, help="JSON file from bench/run")
    ap.add_argument("sections", nargs="+")
    a = ap.parse_args()
    with open(a.context) as f:
        ctx = json.load(f)
    ctx["started"] = {}
    ctx["action_plugins"] = os.path.join(ROOT, "plugins/action")
    funcs = {"sizes": section_sizes, "direct": section_direct, "playbook": section_playbook,
             "ssh": section_ssh, "podman": section_podman, "role": section_role, "fleet": section_fleet}
    ctx["argv_sections"] = []
    failed = False
    for s in a.sections:
        current["section"] = s
        # When each section started and how loaded the machine was then, for its block in the markdown.
        ctx["started"][s] = (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                             + ", load average " + " ".join(open("/proc/loadavg").read().split()[:3]))
        try:
            funcs[s](ctx)
        except Exception as e:  # one section failing must not lose the others' figures
            failed = True
            add_table(f"Section {s}: not measured", f"The section failed in this run: {e}".replace("\n", " ")[:600],
                      ["section"], [[s]])
        # Written after every section: an interrupted run keeps what it measured.
        ctx["argv_sections"].append(s)
        if ctx.get("markdown"):
            write_markdown(ctx, ctx["markdown"])
            print(f"\nwrote {ctx['markdown']} ({s})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
