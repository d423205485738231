"""The benchmarks: the compiled modules beside what users would otherwise run, in one run, one table.

Run through bench/run (it prepares the venv, containerd, the modules); this file does the measuring:

  sizes     size of each static binary; bytes a run uploads (plain protocol vs the action plugin's cache)
  direct    each module's idempotent path run directly as Ansible runs it (argv[1] = args file), >= 50 runs:
            median, p90, peak RSS; beside a Python AnsibleModule doing the same work (bench/python/)
  playbook  inside ansible-playbook on localhost: per-task time of each module (plain and through the action
            plugin) beside ansible.builtin.stat and the builtin/Python task a role would use
  ssh       over real SSH (local sshd) with added latency (bench/delay_proxy.py): per-task time and bytes sent
            of the binary module (plain: seven remote steps), through the plugin (one) and pipelined Python
  podman    the same per-task comparison on a Podman node (containers.podman connection)

Every figure is measured in this run; a section that cannot run says why in the table instead of a number.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBRARY = os.path.join(ROOT, "library")
MODULES = ["containerd_runtime", "nvidia_toolkit", "gpu_validate"]
# The goals, checked where the figure is measured.
SIZE_GOAL_MB = {"containerd_runtime": 1.5, "gpu_validate": 1.5, "nvidia_toolkit": 3.0}

report = []  # (bench section, table title, intro, header, rows, notes)
SECTIONS = ["sizes", "direct", "playbook", "ssh", "podman"]
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
    # nvidia_toolkit: the check of packages and repository, in check mode (this host has no NVIDIA packages).
    cases.append(("nvidia_toolkit", "packages + repository check (check mode)",
                  [os.path.join(LIBRARY, "nvidia_toolkit"),
                   write_args(tmp, "tk", {"_ansible_check_mode": True})],
                  [py, os.path.join(HERE, "python/toolkit_check_py.py"),
                   write_py_args(tmp, "tk", {"_ansible_check_mode": True})], None))
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


def read_count(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------------------------------------------- podman
def section_podman(ctx):
    node = ctx["podman_node"]
    inv = ["-i", f"{node},", "-c", "containers.podman.podman", "-e", "ansible_python_interpreter=/usr/bin/python3"]
    per_task_table(ctx, "Inside ansible-playbook, one Podman node (containers.podman.podman connection)",
                   "The node is a Debian bookworm systemd container (tests/nodes); the podman connection "
                   "cannot pipeline, so the action plugin falls back to the plain protocol there and Python "
                   "modules are not pipelined either.",
                   inv, {"config": "/etc/containerd/config.toml", "sysroot": "/opt/h200"}, ctx["tasks"],
                   env_extra={"ANSIBLE_COLLECTIONS_PATH": ctx["collections_path"]},
                   notes=["gpu_validate rows read the recorded H200 sysroot copied into the node at /opt/h200",
                          "the podman connection cannot pass standard input, so the 'via action plugin' rows ran "
                          "the plain protocol too (the plugin's fallback): the two rows differ by noise only"])


# ------------------------------------------------------------------------------------------------------ main
def section_block(ctx, name):
    """One bench section's tables as markdown, between markers so a later partial run replaces only it."""
    lines = [f"<!-- section:{name} -->",
             f"*Section started {ctx['date']}, load average {ctx['load']}, {ctx['machine']}.*", ""]
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
              "ssh": "Over SSH with added latency", "podman": "On a Podman node"}
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
    ctx["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ctx["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
    ctx["action_plugins"] = os.path.join(ROOT, "plugins/action")
    funcs = {"sizes": section_sizes, "direct": section_direct, "playbook": section_playbook,
             "ssh": section_ssh, "podman": section_podman}
    ctx["argv_sections"] = []
    failed = False
    for s in a.sections:
        current["section"] = s
        ctx["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        ctx["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
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
