"""The fleet section of the benchmarks: the node role and its ansible.builtin twin on 10 to 100 light SSH nodes
(bench/fleet/nodes.py), at 0 and +50 ms RTT, first run and idempotent run; then a model fitted to the figures
and its prediction for 1,000 nodes.

What each play records:
  wall            ansible-playbook's wall time, fresh SSH connections (a new ControlPath folder per play)
  controller CPU  CPU of ansible-playbook, its workers and the ssh clients (a cpuacct cgroup of their own)
  node CPU        CPU of every node's processes (sshd, modules, containerd) in the nodes' cgroup
  proxy CPU       CPU of bench/delay_proxy.py (the simulated network), kept apart from both
  bytes per node  controller-to-node bytes counted by bench/delay_proxy.py, averaged over the nodes
  host-tasks      from the PLAY RECAP (ok + skipped + failed, summed over hosts)
All of it runs on this machine: the nodes, the network and the controller share its cores, which the model
takes apart (node CPU and proxy CPU would be on other machines in a real fleet).

The run is bounded: plays are ordered by what matters most, and a play whose predicted time (from the same
flow's smaller plays) does not fit the time left is not run and is listed as not measured.
"""
import datetime
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, BENCH)
import nodes as fleet_nodes  # noqa: E402
from sent_count import read_count  # noqa: E402

ROOT = os.path.dirname(BENCH)
FLOWS = {"gpu_node role": os.path.join(ROOT, "molecule/resources/converge.yml"),
         "ansible.builtin twin": os.path.join(BENCH, "role/builtin.yml")}
SSH_ARGS = ("-o ControlMaster=auto -o ControlPersist=300s -o UserKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=no -o LogLevel=ERROR")
GOAL_NODES, GOAL_RTT_MS, GOAL_S = 1000, 50, 300
MEMORY = "/sys/fs/cgroup/memory"


class Cgroup:
    """A cpuacct and a memory cgroup (v1 on this machine) of one name: CPU time read before and after a play, and
    the peak memory of a play (reset before it)."""

    def __init__(self, name):
        self.name = f"{name}-{os.getpid()}"
        self.path = os.path.join(fleet_nodes.CPUACCT, self.name)
        self.mem = os.path.join(MEMORY, self.name)
        os.makedirs(self.path, exist_ok=True)
        os.makedirs(self.mem, exist_ok=True)

    def seconds(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    def reset_peak(self):
        with open(os.path.join(self.mem, "memory.max_usage_in_bytes"), "w") as f:
            f.write("0")

    def peak_bytes(self):
        with open(os.path.join(self.mem, "memory.max_usage_in_bytes")) as f:
            return int(f.read())

    def join(self):
        for path in (self.path, self.mem):
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def pids(self):
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]

    def remove(self):
        for path in (self.path, self.mem):
            try:
                os.rmdir(path)
            except OSError:
                pass


def host_tasks(stdout):
    """(host-tasks, changed, failed + unreachable) summed over the PLAY RECAP's hosts."""
    import re
    tasks = changed = bad = 0
    for line in stdout.splitlines():
        if " : ok=" not in line:
            continue
        c = {k: int(v) for k, v in re.findall(r"\b(\w+)=(\d+)", line)}
        tasks += c.get("ok", 0) + c.get("skipped", 0) + c.get("failed", 0)
        changed += c.get("changed", 0)
        bad += c.get("failed", 0) + c.get("unreachable", 0)
    return tasks, changed, bad


class Runner:
    def __init__(self, ctx, fleet, work):
        self.ctx, self.fleet, self.work = ctx, fleet, work
        self.ctl, self.proxy = Cgroup("gpunode-fleet-controller"), Cgroup("gpunode-fleet-proxy")
        self.wrapper = os.path.join(work, "proxy")
        with open(self.wrapper, "w") as f:  # each proxy moves itself into the proxy cgroup, then runs
            f.write(f"#!/bin/sh\necho $$ > {self.proxy.path}/cgroup.procs\necho $$ > {self.proxy.mem}/cgroup.procs\n"
                    f"exec {ctx['python']} {os.path.join(BENCH, 'delay_proxy.py')} \"$@\"\n")
        os.chmod(self.wrapper, 0o755)
        self.inventories = {}
        # The roles, modules and plugins as they are when the section starts, so that every play of the section
        # runs the same code even while the checkout changes under a long run.
        self.code = os.path.join(work, "code")
        for part in ("roles", "library", "plugins"):
            shutil.copytree(os.path.join(ROOT, part), os.path.join(self.code, part), symlinks=True)
        shutil.copy(os.path.join(ROOT, "molecule/resources/group_vars/gpu_nodes.yml"), self.code)

    def inventory(self, n):
        if n not in self.inventories:
            inv = os.path.join(self.work, f"inventory-{n}")
            os.makedirs(os.path.join(inv, "group_vars"))
            shutil.copy(os.path.join(self.code, "gpu_nodes.yml"), os.path.join(inv, "group_vars/gpu_nodes.yml"))
            with open(os.path.join(inv, "group_vars/all.yml"), "w") as f:
                # No systemd on the light nodes: containerd is started by the node's init (see nodes.py).
                f.write("gpu_node_containerd_restart: false\n")
            with open(os.path.join(inv, "hosts.ini"), "w") as f:
                f.write("[gpu_nodes]\n" + "".join(f"{name} ansible_host={fleet_nodes.node_ip(i)}\n"
                                                  for i, name in enumerate(self.fleet.names(n))))
            self.inventories[n] = inv
        return self.inventories[n]

    def play(self, flow, n, forks, rtt_ms, strategy="linear"):
        run = tempfile.mkdtemp(prefix="play-", dir=self.work)
        proxy = f"{self.wrapper} {rtt_ms / 2:g} %h 22 {run}/%h"
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_ROLES_PATH=os.path.join(self.code, "roles"),
                   ANSIBLE_LIBRARY=os.path.join(self.code, "library"),
                   ANSIBLE_ACTION_PLUGINS=os.path.join(self.code, "plugins/action"), ANSIBLE_PIPELINING="true",
                   ANSIBLE_REMOTE_USER="root", ANSIBLE_PRIVATE_KEY_FILE=self.ctx["fleet"]["key"],
                   ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_FORKS=str(forks), ANSIBLE_STRATEGY=strategy,
                   ANSIBLE_SSH_ARGS=SSH_ARGS + f' -o ProxyCommand="{proxy}"',
                   ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(run, "cp"), ANSIBLE_TIMEOUT="60",
                   GPUNODE_APTREPO=self.ctx["fleet"]["aptrepo"])
        argv = [self.ctx["ansible_playbook"], "-i", self.inventory(n), FLOWS[flow]]
        self.ctl.reset_peak()
        c0, n0, p0 = self.ctl.seconds(), self.fleet.cpu_seconds(), self.proxy.seconds()
        t0 = time.perf_counter()
        with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
            proc = subprocess.Popen(argv, env=env, stdout=so, stderr=se, text=True, cwd=ROOT,
                                    preexec_fn=self.ctl.join)
            main_cpu = 0.0
            while proc.poll() is None:
                main_cpu = own_cpu(proc.pid) or main_cpu
                time.sleep(0.1)
            wall = time.perf_counter() - t0
            so.seek(0)
            se.seek(0)
            out = subprocess.CompletedProcess(argv, proc.returncode, so.read(), se.read())
        # The SSH masters outlive the play (ControlPersist); their CPU so far is counted, then they are ended.
        for pid in self.ctl.pids():
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while (self.ctl.pids() or self.proxy.pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        tasks, changed, bad = host_tasks(out.stdout)
        sent = sum(read_count(os.path.join(run, fleet_nodes.node_ip(i))) for i in range(n))
        rec = {"flow": flow, "nodes": n, "forks": forks, "rtt_ms": rtt_ms, "strategy": strategy, "wall": wall,
               "controller_cpu": self.ctl.seconds() - c0, "node_cpu": self.fleet.cpu_seconds() - n0,
               "proxy_cpu": self.proxy.seconds() - p0, "controller_peak": self.ctl.peak_bytes(),
               "main_cpu": main_cpu, "host_tasks": tasks, "changed": changed,
               "failures": bad + (1 if out.returncode and not bad else 0), "bytes_per_node": sent / n}
        if rec["failures"]:
            rec["error"] = (out.stdout[-1500:] + out.stderr[-500:]).strip()
        shutil.rmtree(run, ignore_errors=True)
        return rec

    def close(self):
        self.ctl.remove()
        self.proxy.remove()


def own_cpu(pid):
    """CPU seconds of one process itself (all its threads, not its children), from /proc/PID/stat; None once it
    is gone. ansible-playbook's main process runs the strategy and the callbacks on one core for every host-task:
    sampled every 0.1 s until it exits, so the last 0.1 s may be missed."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plan(counts, rtts):
    """The plays in the order they are run: (flow, rtt, n, forks, strategy, kinds). Most important first: the role
    at both RTTs, then (on the nodes the role just set up) fewer forks and strategy free on the largest fleet, then
    the twin: its smallest fleet at both RTTs (for the round trips), its larger ones at 0 ms, then at the largest
    RTT."""
    role, twin = FLOWS
    lo, hi = rtts[0], rtts[-1]
    steps = [(role, rtt, n, n, "linear", ("first", "idempotent")) for rtt in rtts for n in counts]
    big = counts[-1]
    steps += [(role, hi, big, forks, "linear", ("idempotent",)) for forks in (10, 25) if forks < big]
    steps.append((role, hi, big, big, "free", ("idempotent",)))
    steps += [(twin, rtt, counts[0], counts[0], "linear", ("first", "idempotent")) for rtt in rtts]
    steps += [(twin, rtt, n, n, "linear", ("first", "idempotent")) for rtt in (lo, hi) if rtt in rtts
              for n in counts[1:]]
    return list(dict.fromkeys(steps))


def predict(done, flow, rtt, n, kinds):
    """Seconds the plays of one step would take, from the same flow's largest measured play (linear in n)."""
    same = [r for r in done if r["flow"] == flow and r["strategy"] == "linear" and r["forks"] == r["nodes"]]
    if not same:
        return 0.0
    ref = max(same, key=lambda r: (r["rtt_ms"] == rtt, r["nodes"]))
    per_node = max(r["wall"] for r in same if r["nodes"] == ref["nodes"] and r["rtt_ms"] == ref["rtt_ms"]) / ref["nodes"]
    return per_node * n * len(kinds)


def outlier(records, r):
    """An idempotent play that sent more than twice its flow's median: the modules were uploaded again (their
    binaries were rebuilt while the section ran), so it is not an idempotent run's cost. Kept in the table,
    left out of the model."""
    if r["run"] != "idempotent":
        return False
    same = [x["bytes_per_node"] for x in records if x["flow"] == r["flow"] and x["run"] == "idempotent"]
    return r["bytes_per_node"] > 2 * statistics.median(same)


def fit(points):
    """Least-squares line wall = a + b * n over (n, wall) points: (a, b)."""
    xs, ys = zip(*points)
    if len(set(xs)) < 2:  # one node count only: a line through the origin
        return 0.0, statistics.fmean(ys) / statistics.fmean(xs)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def model(records, flow, run_kind, rtt_hi):
    """The model's parameters for one flow and run from the measured plays (see the section's notes):
    T tasks per host, c controller CPU seconds per host-task, s the seconds one host-task takes on its node
    beyond latency (node CPU per host-task, measured), r round trips per host-task (from the 0 vs +rtt_hi plays),
    w0 fixed start-up (intercept of wall against nodes)."""
    rs = [r for r in records if r["flow"] == flow and r["run"] == run_kind and r["strategy"] == "linear"
          and r["forks"] == r["nodes"] and not r["failures"] and not outlier(records, r)]
    if not rs:
        return None
    T = statistics.median(r["host_tasks"] / r["nodes"] for r in rs)
    # Slopes of CPU against host-tasks: the start-up (parsing, plugin loading) is in the intercept, not spread
    # over the host-tasks of small plays.
    c = fit(sorted((r["host_tasks"], r["controller_cpu"]) for r in rs))[1]
    main = fit(sorted((r["host_tasks"], r["main_cpu"]) for r in rs))[1]
    s = statistics.median(r["node_cpu"] / r["host_tasks"] for r in rs)
    # Wall time per task of each play (a play's tasks per host may differ when the role changes between plays).
    lo = {r["nodes"]: r["wall"] * r["nodes"] / r["host_tasks"] for r in rs if r["rtt_ms"] == 0}
    hi = {r["nodes"]: r["wall"] * r["nodes"] / r["host_tasks"] for r in rs if r["rtt_ms"] == rtt_hi}
    both = sorted(set(lo) & set(hi))
    # Extra wall time per task per added second of RTT, with forks = nodes (one batch): round trips a task costs.
    # The median over the node counts (the shared machine's noise moves single plays by seconds).
    r_trips = statistics.median((hi[n] - lo[n]) / (rtt_hi / 1000) for n in both) if both else None
    w0, _ = fit(sorted((r["nodes"], r["wall"]) for r in rs if r["rtt_ms"] == 0)
                or sorted((r["nodes"], r["wall"]) for r in rs))
    bytes_node = statistics.median(r["bytes_per_node"] for r in rs)
    # A pipelined task costs at least one round trip (its command out, its result back). Where the plays give
    # less (this machine's saturated CPU hides the added latency, or its noise exceeds it), the model takes one.
    r_used = max(r_trips or 0.0, 1.0)
    return {"T": T, "c": c, "main": main, "s": s, "r_used": r_used, "r": r_trips, "w0": max(w0, 0.0), "bytes": bytes_node, "plays": len(rs)}


def predict_fleet(m, n, cores, forks, rtt_s, strategy):
    """Wall time of one run on n nodes: the larger of the controller's CPU bound and the latency bound, plus the
    fixed start-up. Linear: every task waits for its slowest batch of forks (ceil(n / forks) batches per task,
    each one host-task long); free: the forks stream through the hosts with no per-task barrier, so a run costs
    ceil(n / forks) host runs of T tasks without the per-task wait for the slowest host (the straggler term)."""
    host_task = m["s"] + m["r_used"] * rtt_s  # one host-task on its node, as the controller waits for it
    # All of the controller's CPU spread over its cores, and the main process's share on one core: the larger.
    cpu = max(n * m["T"] * m["c"] / cores, n * m["T"] * m["main"])
    batches = math.ceil(n / forks)
    # The fork waiting for a host-task also waits for the controller's own CPU work on it.
    latency = batches * m["T"] * (host_task + m["c"])
    straggler = 0.0 if strategy == "free" else m["T"] * host_task  # the last batch of each task runs alone
    return m["w0"] + max(cpu, latency + straggler)


def toolkit_args(aptrepo):
    """nvidia_toolkit's arguments as the role passes them (roles/gpu_node/tasks/present.yml) with the test nodes'
    settings: the lower root gets the toolkit the role would install."""
    import re
    group_vars = open(os.path.join(ROOT, "molecule/resources/group_vars/gpu_nodes.yml")).read()
    settings = dict(re.findall(r"^(gpu_node_\w+): \"?([^\"\n]*)\"?$", group_vars, re.M))
    return {"state": "present", "version": settings["gpu_node_toolkit_version"],
            "packages": ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                         "libnvidia-container1"],
            "repo_url": settings["gpu_node_repo_url"], "channel": "stable",
            "key": open(os.path.join(aptrepo, "key.asc")).read(),
            "fingerprint": open(os.path.join(aptrepo, "fingerprint")).read().strip(),
            "keyring_path": "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg",
            "list_path": "/etc/apt/sources.list.d/nvidia-container-toolkit.list", "hold": True,
            "driver_check": "warn"}


def section_fleet(ctx, add_table):
    """Measures (or, with the context's fleet.replay, reads a saved run's JSON), then writes the tables, the JSON
    (fleet.results) and the plot (fleet.png)."""
    f = ctx["fleet"]
    if f.get("replay"):
        with open(f["replay"]) as saved:
            run = json.load(saved)
    else:
        run = measure(ctx)
    report(ctx, add_table, run)  # also brings the plot's series up to date
    with open(f["results"], "w") as out:
        json.dump(run, out, indent=1)
    if f.get("plot_python") and f.get("png"):
        subprocess.run([f["plot_python"], os.path.join(HERE, "plot.py"), f["results"], f["png"]], check=True)


def measure(ctx):
    """Starts the fleet, runs the plan within the budget, removes the fleet: the run as a JSON-able dict."""
    f = ctx["fleet"]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    f["lower"] = fleet_nodes.lower_root(f["cache"], f["image"], f["aptrepo"], toolkit_args(f["aptrepo"]))
    counts, rtts, budget = f["counts"], f["rtts"], f["budget_s"]
    work = tempfile.mkdtemp(prefix="gpunode-bench-fleet-")
    started = time.monotonic()
    records, skipped = [], []
    saved = None
    if f.get("extend"):  # a saved run's plays are kept and not run again
        with open(f["extend"]) as prior:
            saved = json.load(prior)
        records = saved["records"]
    done = {(r["flow"], r["rtt_ms"], r["nodes"], r["forks"], r["strategy"]) for r in records}
    fleet = fleet_nodes.Fleet(work, f["lower"], f["aptrepo"], f["authorized_keys"], max(counts))
    runner = None
    try:
        t0 = time.perf_counter()
        fleet.start()
        boot = time.perf_counter() - t0
        mem = fleet.memory_kib()
        runner = Runner(ctx, fleet, work)
        for flow, rtt, n, forks, strategy, kinds in plan(counts, rtts):
            if (flow, rtt, n, forks, strategy) in done:
                continue
            left = budget - (time.monotonic() - started)
            need = predict(records, flow, rtt, n, kinds)
            if need > left:
                skipped.append(f"{flow}, {n} nodes, forks {forks}, +{rtt} ms RTT, {strategy}, "
                               f"{' and '.join(kinds)} run: predicted {need:.0f} s, {max(left, 0):.0f} s left")
                print(f"   not run: {skipped[-1]}", flush=True)
                continue
            if "first" in kinds:
                fleet.reset(n)
            for kind in kinds:
                rec = runner.play(flow, n, forks, rtt, strategy)
                rec["run"] = kind
                records.append(rec)
                print(f"   {flow:22} {kind:10} n={n:4} forks={forks:3} rtt={rtt:3} {strategy:6} "
                      f"wall={rec['wall']:7.2f} s ctl={rec['controller_cpu']:6.1f} s node={rec['node_cpu']:6.1f} s "
                      f"main={rec['main_cpu']:5.1f} s proxy={rec['proxy_cpu']:5.1f} s peak={rec['controller_peak'] / 2**20:.0f} MiB tasks={rec['host_tasks']} changed={rec['changed']} "
                      f"failures={rec['failures']} sent={rec['bytes_per_node'] / 1024:.1f} KiB/node", flush=True)
                if rec["failures"]:
                    print(rec["error"], flush=True)
    finally:
        if runner:
            runner.close()
        fleet.stop()
        shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - started
    run = {"records": records, "skipped": skipped, "boot_s": boot, "memory_kib": mem, "total_s": total,
           "budget_s": budget, "counts": counts, "rtts": rtts, "started": when,
           "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine_short": f"{os.cpu_count()}-core"}
    if saved:
        run["started"] = f"{saved['started']} to {saved['finished']}, then {run['started']}"
        run["boot_s"], run["memory_kib"] = saved["boot_s"], saved["memory_kib"]
        run["total_s"] += saved["total_s"]
        run["budget_s"] += saved["budget_s"]
    run.update(series(records, rtts))
    run["when"] = f"{run['started']} to {run['finished']}"
    return run


def series(records, rtts):
    """The plot's lines: per flow, RTT and run, wall against nodes (forks = nodes, linear)."""
    out = {"when": "", "series": []}
    for flow in FLOWS:
        for rtt in rtts:
            for kind in ("first", "idempotent"):
                pts = [{"nodes": r["nodes"], "wall": r["wall"], "reupload": outlier(records, r)} for r in records
                       if r["flow"] == flow and r["rtt_ms"] == rtt and r["run"] == kind and r["strategy"] == "linear"
                       and r["forks"] == r["nodes"]]
                out["series"].append({"flow": flow, "rtt_ms": rtt, "run": kind, "points": pts})
    return out


def report(ctx, add_table, run):
    """The section's tables from one run (measured now or replayed)."""
    records, skipped = run["records"], run["skipped"]
    rtts = run.get("rtts") or sorted({r["rtt_ms"] for r in records})
    run.update(series(records, rtts), when=run.get("when", ""))
    run.setdefault("started", run.get("when", "?"))
    rows = []
    for r in records:
        rows.append([r["flow"], r["run"], str(r["nodes"]), str(r["forks"]), f"+{r['rtt_ms']} ms", r["strategy"],
                     f"{r['wall']:.1f} s", f"{r['host_tasks'] / r['nodes']:.0f}",
                     f"{1000 * r['controller_cpu'] / max(r['host_tasks'], 1):.0f} ms",
                     f"{1000 * r['main_cpu'] / max(r['host_tasks'], 1):.1f} ms",
                     f"{1000 * r['node_cpu'] / max(r['host_tasks'], 1):.0f} ms",
                     f"{r['proxy_cpu']:.1f} s", f"{r['controller_peak'] / 2**20:.0f} MiB",
                     f"{r['bytes_per_node'] / 1024:.1f} KiB", str(r["changed"]),
                     "none" if not r["failures"] else f"FAILED ({r['failures']})"])
    notes = [f"measured {run['started']} to {run.get('finished', '?')}"
             + (f", tables written again from that run's saved figures at {ctx['started']['fleet']}"
                if ctx["fleet"].get("replay") else "")]
    if "boot_s" in run:
        notes += [f"{max(run['counts'])} nodes started in {run['boot_s']:.1f} s; their processes (sshd and "
                  f"containerd each) held {run['memory_kib'] / 1024:.0f} MiB resident in all before the first play",
                  f"the whole section took {run['total_s'] / 60:.1f} min (budget {run['budget_s'] / 60:.0f} min)"]
    notes += [f"not measured (did not fit the budget): {s}" for s in skipped]
    notes += [f"left out of the model: {r['flow']}, idempotent, {r['nodes']} nodes, forks {r['forks']}, "
              f"+{r['rtt_ms']} ms RTT, {r['strategy']}: it sent {r['bytes_per_node'] / 1024:.0f} KiB per node, the "
              "modules' binaries again (they were rebuilt in the checkout while the section ran)"
              for r in records if outlier(records, r)]
    idem_changed = [r for r in records if r["run"] == "idempotent" and r["changed"]]
    if idem_changed:
        notes.append("NOT IDEMPOTENT: " + "; ".join(f"{r['flow']} on {r['nodes']} nodes changed {r['changed']}"
                                                    for r in idem_changed))
    add_table("Fleet of light SSH nodes: every play",
              "Light nodes (bench/fleet/nodes.py): one sshd and one containerd 1.6 per node, each node in its own "
              "network, mount and PID namespace on an overlay of the bookworm test node's root file system with the "
              "pinned toolkit installed by nvidia_toolkit from the signed test repository (no systemd: "
              "gpu_node_containerd_restart=false for both flows). Reached over real OpenSSH through "
              "bench/delay_proxy.py (+0 or +50 ms RTT, counting bytes), pipelining on, ControlPersist on with fresh "
              "connections for each play. First run: from the cluster installer's containerd config, no module "
              "cache; idempotent: the run right after it. Per host-task: CPU / (hosts x tasks in the PLAY RECAP). "
              "Controller CPU = ansible-playbook, its forks and ssh; node CPU = every node's processes; proxy CPU = "
              "the simulated network; main process: ansible-playbook's own process (sampled from /proc every 0.1 s). "
              "All three share this machine's cores. Controller peak memory: the memory "
              "cgroup's peak for ansible-playbook, its forks and ssh (page cache included).",
              ["flow", "run", "nodes", "forks", "added RTT", "strategy", "wall", "tasks/host", "controller CPU/host-task", "of it main process",
               "node CPU/host-task", "proxy CPU", "controller peak memory", "sent/node", "changed", "failures"], rows, notes)

    # The model, fitted per flow and run.
    rtt_hi = max(rtts)
    params, prow = {}, []
    for flow in FLOWS:
        for kind in ("first", "idempotent"):
            m = model(records, flow, kind, rtt_hi)
            if not m:
                continue
            params[(flow, kind)] = m
            prow.append([flow, kind, f"{m['T']:.0f}", f"{1000 * m['c']:.0f} ms", f"{1000 * m['main']:.1f} ms",
                         f"{1000 * m['s']:.0f} ms",
                         "not measured" if m["r"] is None else f"{m['r']:.1f}", f"{m['r_used']:.1f}",
                         f"{m['w0']:.1f} s",
                         f"{m['bytes'] / 1024:.1f} KiB", str(m["plays"])])
    add_table("Fleet model: parameters fitted to the plays above",
              "T: tasks per host (PLAY RECAP); c: controller CPU per host-task (slope of CPU against host-tasks over the "
              "plays, so start-up is not counted in it); m: the part of c spent in "
              "ansible-playbook's main process (strategy, results, callbacks: one core, whatever the forks); s: node CPU per host-task (time a "
              "node works on a task); r: round trips a host-task costs, from the extra wall time at +50 ms RTT with "
              "forks = nodes, median over the node counts of (wall(+50) - wall(0)) / (T x 0.05 s), per-task walls; r used: "
              "at least 1, the round trip a pipelined task cannot avoid (a smaller or negative r means the plays "
              "could not resolve the latency: this machine's saturated CPU hides it, or its noise is larger); w0: fixed start-up, the intercept of wall against "
              "nodes at 0 ms; sent/node: median bytes sent to a node.",
              ["flow", "run", "T", "c", "m", "s", "r", "r used", "w0", "sent/node", "plays"], prow)

    pred = []
    for flow in FLOWS:
        m = params.get((flow, "idempotent"))
        if not m:
            continue
        for cores, forks in ((2, 50), (8, 50), (8, 200), (16, 100), (16, 400), (32, 200), (32, 500)):
            lin = predict_fleet(m, GOAL_NODES, cores, forks, GOAL_RTT_MS / 1000, "linear")
            free = predict_fleet(m, GOAL_NODES, cores, forks, GOAL_RTT_MS / 1000, "free")
            best = min(lin, free)
            # Slices: K runs side by side (AWX job slicing, or --limit batches in parallel), each its own main
            # process, sharing the cores; the smallest K that brings the free run under the goal.
            slices = next((k for k in range(1, 65) if predict_fleet(m, math.ceil(GOAL_NODES / k), cores / k,
                                                                    max(1, forks // k), GOAL_RTT_MS / 1000,
                                                                    "free") <= GOAL_S), None)
            pred.append([flow, str(cores), str(forks), f"{lin / 60:.1f} min", f"{free / 60:.1f} min",
                         f"{max(GOAL_NODES * m['T'] * m['c'] / cores, GOAL_NODES * m['T'] * m['main']) / 60:.1f} min",
                         f"{verdict(best <= GOAL_S)} (< 5 min)",
                         "none needed" if best <= GOAL_S else (f"{slices}" if slices else "not with these cores")])
    pnotes = []
    for free in (r for r in records if r["strategy"] == "free"):
        linear = [r for r in records if r["strategy"] == "linear" and r["flow"] == free["flow"]
                  and r["nodes"] == free["nodes"] and r["rtt_ms"] == free["rtt_ms"] and r["run"] == "idempotent"]
        pnotes.append(f"measured on {free['nodes']} nodes, +{free['rtt_ms']} ms RTT ({free['flow']}, idempotent): "
                      f"strategy free with forks {free['forks']} {free['wall']:.1f} s; linear "
                      + ", ".join(f"forks {r['forks']} {r['wall']:.1f} s"
                                  + (" (modules uploaded again)" if outlier(records, r) else "")
                                  for r in sorted(linear, key=lambda r: r["forks"])))
    add_table(f"Fleet model: the idempotent run on {GOAL_NODES:,} nodes at +{GOAL_RTT_MS} ms RTT (predicted, not measured)",
              "wall = w0 + max(N x T x c / C, N x T x m, ceil(N / F) x T x (s + r x RTT + c) + straggler) with r the r used, with C controller "
              "cores given wholly to Ansible, F forks, the parameters above; linear pays one host-task per task for "
              "its last batch (straggler), free does not. The CPU bound alone is the last column: no fork count "
              "beats it. Slices: the fewest runs side by side (AWX job slicing or --limit batches), each with N/K nodes, "
              "F/K forks and C/K cores, that bring the run under 5 minutes. The assumptions and what was not "
              "measured are listed under the tables.",
              ["flow", "cores C", "forks F", "linear", "free", "CPU bound", "goal", "slices for < 5 min"], pred, pnotes)


def verdict(ok):
    return "met" if ok else "MISSED"
