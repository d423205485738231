"""Light fleet nodes: one sshd and one containerd per node, each node in its own network, mount and PID namespace,
on a root file system of its own (an overlay of one shared, read-only lower root and a small upper dir per node).

Why not Podman nodes: a systemd container per node costs about a second of CPU to boot and tens of MiB each, so
2 cores hold a handful; these nodes cost one sshd and one idle containerd, so 100 fit. What they lack is systemd:
containerd is started by the node's init script, the role runs with gpu_node_containerd_restart=false (the
restart is the caller's, as on hosts where systemd does not run containerd) and `gpu_validate` finds containerd
by its socket. Everything else the role touches is real: Debian's containerd 1.6 (`config dump`), dpkg and apt
with the toolkit installed from the signed test repository by the real `nvidia_toolkit`, the module cache.

The lower root is the bookworm test node image (tests/nodes) after `nvidia_toolkit` installed the pinned
toolkit in it and the cluster installer's config (molecule/resources/files/config-v2.toml) was laid out; it is
exported once with `podman export` and cached under the test cache. Networking: a bridge on this machine with a
private /16 the bench picks, a veth per node; nothing leaves this machine.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BRIDGE = "gpunode-fleet"
NETNS = "gpunode-fleet-{}"
SUBNET = "10.231"  # 10.231.0.0/16, this machine only; the bridge is .0.1
# The cgroup (v1 cpuacct) the node processes run in, so their CPU is told apart from the controller's.
CPUACCT = "/sys/fs/cgroup/cpuacct"
# Where each node keeps the files a reset restores (in the lower root, read-only for the nodes' users).
PRISTINE = "/usr/local/share/gpunode-fleet"


def node_ip(i):
    return f"{SUBNET}.{1 + i // 250}.{1 + i % 250}"


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def lower_root(cache, image, aptrepo, toolkit_args):
    """The shared lower root, built once per (image, repository, toolkit arguments, module binary): returns its
    path. The real nvidia_toolkit installs the pinned, held toolkit; the build fails loudly if it fails."""
    toolkit = os.path.join(ROOT, "library/nvidia_toolkit")
    config = os.path.join(ROOT, "molecule/resources/files/config-v2.toml")
    digest = hashlib.sha256()
    image_id = sh("podman", "image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    for part in (image_id, json.dumps(toolkit_args, sort_keys=True), open(config).read(), "root v2"):
        digest.update(part.encode())
    for path in (toolkit, os.path.join(aptrepo, "fingerprint")):
        digest.update(open(path, "rb").read())
    top = os.path.join(cache, f"fleet-root-{digest.hexdigest()[:12]}")
    root = os.path.join(top, "root")
    if os.path.exists(os.path.join(top, ".complete")):
        return root
    # One lower root at a time: older ones (another image, repository or module build) are removed.
    for old in os.listdir(cache):
        if old.startswith("fleet-root-"):
            shutil.rmtree(os.path.join(cache, old), ignore_errors=True)
    os.makedirs(root)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "args.json"), "w") as f:
            json.dump(toolkit_args, f)
        script = (
            "set -e; /opt/fleet/nvidia_toolkit /opt/fleet/args.json > /opt/toolkit.out; "
            "grep -q '\"failed\": *true' /opt/toolkit.out && { cat /opt/toolkit.out; exit 1; }; "
            f"mkdir -p {PRISTINE} /root/.ssh /srv/aptrepo; "
            f"cp /opt/fleet/config.toml /etc/containerd/config.toml; cp /opt/fleet/config.toml {PRISTINE}/; "
            f"cp /etc/apt/sources.list.d/nvidia-container-toolkit.list {PRISTINE}/; "
            # The nodes have no network: apt reads only the toolkit's repository (bind-mounted from this machine).
            "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources; "
            "ssh-keygen -A >/dev/null; touch /root/.ssh/authorized_keys; rm -f /opt/toolkit.out")
        name = "gpunode-fleet-root"
        subprocess.run(["podman", "rm", "-f", name], capture_output=True)
        out = subprocess.run(["podman", "run", "--name", name, "-v", f"{aptrepo}:/srv/aptrepo:ro",
                              "-v", f"{toolkit}:/opt/fleet/nvidia_toolkit:ro",
                              "-v", f"{tmp}/args.json:/opt/fleet/args.json:ro",
                              "-v", f"{config}:/opt/fleet/config.toml:ro", image, "sh", "-c", script],
                             capture_output=True, text=True)
        try:
            if out.returncode != 0:
                raise RuntimeError(f"building the fleet's lower root failed: {out.stdout[-1500:]}{out.stderr[-500:]}")
            export = subprocess.Popen(["podman", "export", name], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", root], stdin=export.stdout, check=True)
            if export.wait() != 0:
                raise RuntimeError("podman export failed")
        finally:
            subprocess.run(["podman", "rm", "-f", name], capture_output=True)
    shutil.rmtree(os.path.join(root, "opt/fleet"), ignore_errors=True)
    open(os.path.join(top, ".complete"), "w").close()
    return root


# The node's init, run by `unshare` in the node's namespaces: mounts its root, then containerd in the background
# and sshd in the foreground as PID 1 of the node (killing it ends every process of the node).
INIT = r"""
set -e
L=$1 N=$2 IP=$3 REPO=$4 KEYS=$5
mkdir -p "$N/upper" "$N/work" "$N/merged"
M=$N/merged
mount -t overlay overlay -o "lowerdir=$L,upperdir=$N/upper,workdir=$N/work" "$M"
mount -t proc proc "$M/proc"
mount --bind /sys "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs -o mode=0755 tmpfs "$M/run"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
mkdir -p "$M/run/sshd" "$M/run/containerd"
mount --bind -o ro "$REPO" "$M/srv/aptrepo"
mount --bind -o ro "$KEYS" "$M/root/.ssh/authorized_keys"
exec chroot "$M" /bin/sh -c "containerd >/var/log/containerd.log 2>&1 & exec /usr/sbin/sshd -D -e \
  -o ListenAddress=$IP -o UsePAM=no -o UseDNS=no -o MaxStartups=1000 -o MaxSessions=100 \
  -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no 2>/var/log/sshd.log"
"""


class Fleet:
    """N light nodes; start() brings them up and waits for each one's SSH port, stop() removes every trace."""

    def __init__(self, work, lower, aptrepo, authorized_keys, count):
        self.work, self.lower, self.aptrepo, self.keys = work, lower, aptrepo, authorized_keys
        self.count = count
        self.procs = {}
        self.cgroup = os.path.join(CPUACCT, f"gpunode-fleet-nodes-{os.getpid()}")

    def names(self, n=None):
        return [f"fleet-{i:04d}" for i in range(self.count if n is None else n)]

    def start(self, timeout=300):
        os.makedirs(self.cgroup, exist_ok=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.0.1/16", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i in range(self.count):
            ns, veth, ip = NETNS.format(i), f"gpf{i}", node_ip(i)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", BRIDGE, "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/16", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            node_dir = os.path.join(self.work, "nodes", str(i))
            os.makedirs(node_dir, exist_ok=True)
            log = open(os.path.join(node_dir, "init.log"), "w")
            self.procs[i] = subprocess.Popen(
                ["ip", "netns", "exec", ns, "unshare", "--mount", "--pid", "--kill-child", "--propagation", "private",
                 "sh", "-c", INIT, "init", self.lower, node_dir, ip, self.aptrepo, self.keys],
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._join_cgroup)
        deadline = time.monotonic() + timeout
        for i in range(self.count):
            while not self._port_open(node_ip(i)):
                if self.procs[i].poll() is not None:
                    raise RuntimeError(f"node {i} stopped: " + open(os.path.join(self.work, "nodes", str(i),
                                                                              "init.log")).read()[-800:])
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node {i}'s sshd did not listen within {timeout} s")
                time.sleep(0.2)
        # containerd's socket too: the role's check looks for it.
        for i in range(self.count):
            while subprocess.run(self._enter(i) + ["test", "-S", "/run/containerd/containerd.sock"]).returncode:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node {i}'s containerd did not create its socket within {timeout} s")
                time.sleep(0.2)

    def _join_cgroup(self):
        with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    @staticmethod
    def _port_open(ip):
        import socket
        try:
            with socket.create_connection((ip, 22), timeout=0.5):
                return True
        except OSError:
            return False

    def _init_pid(self, i):
        """The node's PID 1 (sshd) as this machine sees it: unshare's only child."""
        pid = self.procs[i].pid
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return int(f.read().split()[0])

    def _enter(self, i):
        return ["nsenter", "-t", str(self._init_pid(i)), "--mount", "--root", "--wd"]

    def reset(self, n):
        """Brings the first n nodes back to where a first run starts: the cluster installer's containerd config,
        the toolkit's list file as nvidia_toolkit wrote it, no module cache, no key copy of the builtin flow (the
        toolkit stays installed, as in the image)."""
        script = (f"cp {PRISTINE}/config.toml /etc/containerd/config.toml; "
                  f"cp {PRISTINE}/nvidia-container-toolkit.list /etc/apt/sources.list.d/; "
                  "rm -rf /root/.ansible /var/cache/gpunode /etc/containerd/config.toml.*")
        procs = [subprocess.Popen(self._enter(i) + ["sh", "-c", script]) for i in range(n)]
        if any(p.wait() for p in procs):
            raise RuntimeError("resetting the fleet's nodes failed")

    def cpu_seconds(self):
        with open(os.path.join(self.cgroup, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    def memory_kib(self):
        """Resident memory of the nodes' processes (sshd, containerd), summed."""
        total = 0
        with open(os.path.join(self.cgroup, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    with open(f"/proc/{pid}/status") as s:
                        total += next(int(line.split()[1]) for line in s if line.startswith("VmRSS:"))
                except (FileNotFoundError, StopIteration):
                    pass
        return total

    def stop(self):
        # SIGKILL: unshare blocks SIGTERM while it waits for the node's PID 1; --kill-child then kills PID 1, and
        # with it every process of the node's PID namespace.
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            p.wait()
        for i in range(self.count):
            subprocess.run(["ip", "netns", "del", NETNS.format(i)], capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        # The nodes' processes die just after unshare does (SIGKILL from --kill-child): the cgroup empties then.
        deadline = time.monotonic() + 10
        while os.path.isdir(self.cgroup) and time.monotonic() < deadline:
            try:
                os.rmdir(self.cgroup)
            except OSError:
                time.sleep(0.2)
        shutil.rmtree(os.path.join(self.work, "nodes"), ignore_errors=True)
