#!/usr/bin/env bash
# The node flow end to end on a real GPU machine, up to a GPU container started through the kubelet's own
# path (CRI RunPodSandbox with runtime handler `nvidia`, then a container): for each containerd version
#   1. the real gpu_node role on localhost (toolkit from the signed repository, runtime in containerd), in the
#      runtime's default (legacy) mode and with CDI;
#   2. containerd restarted by this script on the edited config, then gpu_validate with every check including
#      `container` (nvidia-smi -L inside the container must list the host's GPU UUIDs);
#   3. negatives: handler runc gives no GPU; a second role run changes nothing and restarts nothing; after
#      state absent containerd refuses handler nvidia with its own "no runtime" error.
# Everything comes from .gpu-e2e/ (tests/gpu/e2e-prepare makes it on a machine with network) and library/.
#
# usage (as root on the GPU machine, from the checkout):  tests/gpu/e2e.sh [VERSION...]
#   VERSION   1.7 and/or 2.1 (default: each with a .gpu-e2e/containerd-VERSION folder)
#   E2E_OUT   where the transcript goes (default: ./e2e-out); one log per version plus summary.txt
#   E2E_NO_GPU=1  rehearse on a machine without GPU (a privileged Podman node): the GPU assertions then fail
# The machine is changed for good: containerd, runc, crictl, libtirpc3 are installed, /etc/containerd and
# /var/lib/containerd are replaced. Run it on a throw-away GPU machine only. Exits 1 on any failed assertion.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 2
e2e="$root/.gpu-e2e"
out=${E2E_OUT:-$root/e2e-out}
mkdir -p "$out"
SMOKE=localhost/gpunode/smoke:1
PAUSE=localhost/gpunode/pause:1
SOCK=/run/containerd/containerd.sock
CHECKS='["pci", "driver", "nvidia_smi", "device_nodes", "toolkit", "containerd", "cdi", "container"]'
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  for d in "$e2e"/containerd-*; do [ -d "$d" ] && versions+=("${d##*/containerd-}"); done
fi
[ ${#versions[@]} -gt 0 ] || { echo "error: no $e2e/containerd-* folder (run tests/gpu/e2e-prepare)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: run as root" >&2; exit 2; }

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
# expect DESCRIPTION COMMAND...: the command succeeds.
expect() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
step() { printf '\n== %s (%s s)\n' "$*" "$SECONDS"; }
# show COMMAND...: prints the command and its output (stdout and stderr), returns its exit status.
show() { printf '$ %s\n' "$*"; "$@" 2>&1; local rc=$?; printf '(exit %s)\n' "$rc"; return $rc; }

# --- once per machine -------------------------------------------------------------------------------------
setup() {
  step "the machine"
  show uname -a
  grep -E '^(PRETTY_NAME|VERSION_ID)=' /etc/os-release
  show nvidia-smi -L
  head -1 /proc/driver/nvidia/version 2>&1
  echo "python3: $(command -v python3) ($(python3 --version 2>&1)); systemd running: $([ -d /run/systemd/system ] && echo yes || echo no)"
  host_uuids=$(nvidia-smi -L 2>/dev/null | sed -n 's/^GPU [0-9]*: .*(UUID: \(GPU-[^)]*\)).*/\1/p' | sort)
  gpu_count=$(printf '%s\n' "$host_uuids" | grep -c '^GPU-')
  [ "$gpu_count" -gt 0 ] || [ "${E2E_NO_GPU:-}" = 1 ] || { echo "error: nvidia-smi lists no GPU here" >&2; exit 2; }

  step "programs: crictl, ctr, libtirpc3, ansible-core, the repository"
  tar -xJf "$e2e"/common/crictl-*-amd64.tar.xz -C /
  tar -xJf "$e2e/common/ctr.tar.xz" -C /
  show crictl --version
  # As on a kubeadm node: crictl's endpoints in its config file (without one it warns on every call).
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$SOCK" "$SOCK" >/etc/crictl.yaml
  if ldconfig -p | grep -q 'libtirpc\.so\.3 '; then
    echo "libtirpc.so.3 is already here"
  else
    show dpkg -i "$e2e"/common/libtirpc-common_*.deb "$e2e"/common/libtirpc3_*.deb | tail -3
  fi
  # A wheel is a zip of the package: unpacked on the path, Ansible runs as `python3 -m ansible.cli.*`.
  rm -rf /tmp/e2e-site && mkdir -p /tmp/e2e-site
  for w in "$e2e"/common/*.whl; do python3 -m zipfile -e "$w" /tmp/e2e-site; done
  export PYTHONPATH=/tmp/e2e-site
  show python3 -m ansible.cli.playbook --version | head -1
  rm -rf /srv/aptrepo && mkdir -p /srv/aptrepo && tar -xf "$e2e/common/aptrepo.tar" -C /srv/aptrepo
  chmod -R a+rX /srv/aptrepo
  echo "repository versions: $(tr '\n' ' ' </srv/aptrepo/versions)(real: $(cat /srv/aptrepo/real))"
  cat >/tmp/e2e-inventory.ini <<INV
[gpu_nodes]
localhost ansible_connection=local ansible_python_interpreter=$(command -v python3)
INV
  for img in smoke pause; do xz -dc "$e2e/common/$img.tar.xz" >"/tmp/e2e-$img.tar"; done
}

# --- containerd, started and stopped by hand (no systemd here) ---------------------------------------------
containerd_pid=""
start_containerd() {
  setsid containerd --config /etc/containerd/config.toml >>"$out/containerd-$version.log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq 1 100); do
    crictl --runtime-endpoint "unix://$SOCK" --timeout 2s version >/dev/null 2>&1 && { echo "containerd started (pid $containerd_pid)"; return 0; }
    sleep 0.1
  done
  echo "containerd did not answer within 10 s:"; tail -20 "$out/containerd-$version.log"
  return 1
}
stop_containerd() {
  [ -n "$containerd_pid" ] || return 0
  kill "$containerd_pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.1; done
  containerd_pid=""
}
restart_containerd() { stop_containerd; start_containerd; }

# role LABEL EXTRA-VARS-JSON: runs tests/gpu/e2e.yml; sets role_out, role_changed, role_restarted.
role() {
  local label=$1 vars=$2
  # Rehearsing without a GPU: the toolkit's driver check would refuse the install.
  [ "${E2E_NO_GPU:-}" = 1 ] && vars="${vars%\}}, \"gpu_node_driver_check\": \"skip\"}"
  printf '$ ansible-playbook -i inventory tests/gpu/e2e.yml -e %s\n' "$vars"
  role_out=$(ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_NOCOLOR=1 python3 -m ansible.cli.playbook -i /tmp/e2e-inventory.ini \
    tests/gpu/e2e.yml -e "$vars" 2>&1)
  local rc=$?
  printf '%s\n' "$role_out" | grep -E '^(TASK|changed|ok|fatal|failed|skipping)|"(toolkit|runtime|restarted|state)":|^localhost +:' \
    | grep -v '^skipping' | sed 's/^/  /'
  role_changed=$(printf '%s\n' "$role_out" | sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p')
  role_restarted=$(printf '%s\n' "$role_out" | sed -n 's/.*"restarted": \(.*\),\{0,1\}$/\1/p' | tr -d '",' | head -1)
  expect "$label: the role succeeds (exit $rc)" test "$rc" = 0
}

# validate LABEL ARGS-JSON: gpu_validate through ansible (ad hoc); sets val_out and val_status (SUCCESS or
# FAILED!), keeps its result in /tmp/e2e-val.json.
validate() {
  printf '$ ansible -m gpu_validate -a %s localhost\n' "$2"
  val_out=$(ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_NOCOLOR=1 python3 -m ansible.cli.adhoc -i /tmp/e2e-inventory.ini localhost \
    -m gpu_validate -a "$2" 2>&1)
  # The result is the JSON after "localhost | STATUS => ".
  val_status=$(printf '%s\n' "$val_out" | sed -n 's/^localhost | \([A-Z!]*\) => .*/\1/p')
  printf '%s\n' "$val_out" | sed -n '/^localhost | /,$p' | sed '1s/^localhost | [A-Z!]* => //' >/tmp/e2e-val.json
  python3 - /tmp/e2e-val.json <<'PY' || printf '%s\n' "$val_out"
import json, sys
r = json.load(open(sys.argv[1]))
for c in r.get("checks", []):
    print("  %-12s %-4s %s" % (c["id"], c["status"], c["detail"]))
    if c["hint"]:
        print("  %-17s hint: %s" % ("", c["hint"]))
print("  summary: %s" % r.get("summary"))
PY
  echo "  ansible: localhost | $val_status"
}
# result_of PYTHON-EXPRESSION: the last validate's result (r) and its checks by id (c) make it true.
result_of() {
  python3 -c 'import json, sys
r = json.load(open("/tmp/e2e-val.json")); c = {x["id"]: x for x in r.get("checks", [])}
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" 2>/dev/null
}
check_status() { result_of "c['$1']['status'] == '$2'"; }
container_detail() { python3 -c 'import json; print(next(x["detail"] for x in json.load(open("/tmp/e2e-val.json"))["checks"] if x["id"] == "container"))' 2>/dev/null; }
# lists_host_uuids: the container check's detail names every host GPU UUID.
lists_host_uuids() {
  local d u; d=$(container_detail)
  [ -n "$host_uuids" ] || return 1
  for u in $host_uuids; do [[ $d == *"UUID: $u"* ]] || return 1; done
}

# crictl_run HANDLER: a pod with HANDLER and the smoke image running `ls /dev; nvidia-smi -L`, by hand.
crictl_run() {
  local handler=$1 dir; dir=$(mktemp -d)
  printf '{"metadata": {"name": "e2e-%s", "namespace": "e2e", "uid": "e2e-%s-%s", "attempt": 0}, "log_directory": "%s", "linux": {"security_context": {"namespace_options": {"network": 2}}}}\n' \
    "$handler" "$handler" "$RANDOM" "$dir" >"$dir/pod.json"
  printf '{"metadata": {"name": "probe"}, "image": {"image": "%s"}, "command": ["/bin/sh", "-c", "ls /dev | grep nvidia || echo no /dev/nvidia; nvidia-smi -L"], "envs": [{"key": "NVIDIA_VISIBLE_DEVICES", "value": "all"}], "log_path": "probe.log", "linux": {}}\n' \
    "$SMOKE" >"$dir/ctr.json"
  local c=(crictl --runtime-endpoint "unix://$SOCK" --image-endpoint "unix://$SOCK" --timeout 30s)
  printf '$ crictl runp --runtime %s pod.json\n' "$handler"
  crictl_out=$("${c[@]}" runp --runtime "$handler" "$dir/pod.json" 2>&1 >"$dir/pod.id")
  local rc=$?
  [ -n "$crictl_out" ] && printf '%s\n' "$crictl_out" | grep -v 'cgroup_parent' | sed 's/^/  /'
  if [ "$rc" = 0 ]; then
    local pod ctr; pod=$(cat "$dir/pod.id")
    ctr=$("${c[@]}" create "$pod" "$dir/ctr.json" "$dir/pod.json" 2>/dev/null)
    "${c[@]}" start "$ctr" >/dev/null
    for _ in $(seq 1 100); do
      "${c[@]}" inspect -o go-template --template '{{.status.state}}' "$ctr" 2>/dev/null | grep -q EXITED && break
      sleep 0.1
    done
    crictl_out=$("${c[@]}" logs "$ctr" 2>&1)
    printf '%s\n' "$crictl_out" | sed 's/^/  | /'
    "${c[@]}" rmp --force "$pod" >/dev/null 2>&1
  fi
  rm -rf "$dir"
  return $rc
}

# --- one containerd version through both modes and the negatives ------------------------------------------
run_version() {
  version=$1
  local dir="$e2e/containerd-$version"
  step "containerd $version: install, default config, start, images"
  stop_containerd
  rm -rf /etc/containerd /var/lib/containerd/* /run/containerd /etc/cdi /var/run/cdi
  tar -xJf "$dir/containerd.tar.xz" -C /
  show dpkg -i "$dir"/runc_*.deb | tail -2
  show containerd --version
  show runc --version | head -1
  mkdir -p /etc/containerd
  containerd config default >/etc/containerd/config.toml
  # Test-machine settings, before the role: the pause image built for this run; restrict_oom_score_adj because
  # this machine forbids lowering oom_score_adj (every sandbox fails otherwise; real nodes need neither); and
  # CDI off (containerd 2.x turns it on by default), so the legacy pass has no CDI and the CDI pass is the
  # role's own gpu_node_cdi.
  sed -i -E "s#^( *)(sandbox_image|sandbox) = .*#\1\2 = '$PAUSE'#; s#^( *)restrict_oom_score_adj = false#\1restrict_oom_score_adj = true#; s#^( *)enable_cdi = true#\1enable_cdi = false#" \
    /etc/containerd/config.toml
  grep -nE '^ *(version|sandbox_image|sandbox|restrict_oom_score_adj|enable_cdi) = ' /etc/containerd/config.toml
  : >"$out/containerd-$version.log"
  expect "containerd $version starts on its default config" start_containerd
  for img in smoke pause; do show ctr -n k8s.io images import "/tmp/e2e-$img.tar" | tail -1; done

  step "containerd $version, legacy mode: the role"
  role "containerd $version legacy, first run" '{"gpu_node_cdi": false}'
  expect "containerd $version legacy: the role changed the node" test "${role_changed:-0}" -gt 0
  expect "containerd $version legacy: the role left the restart to the caller (restarted: $role_restarted)" \
    test "$role_restarted" = "left to the caller"
  show dpkg-query -W -f '${Package} ${Version}\n' nvidia-container-toolkit nvidia-container-toolkit-base \
    libnvidia-container-tools libnvidia-container1
  expect "containerd $version legacy: the real toolkit is installed ($(nvidia-ctk --version 2>&1 | head -1))" \
    bash -c 'nvidia-ctk --version | grep -q "version $(cut -d- -f1 /srv/aptrepo/real)"'
  expect "containerd $version legacy: containerd restarts on the edited config" restart_containerd

  step "containerd $version, legacy mode: gpu_validate with every check"
  validate "legacy" "{\"checks\": $CHECKS, \"smoke_image\": \"$SMOKE\", \"expected_gpu_count\": $gpu_count}"
  for id in pci driver nvidia_smi device_nodes toolkit containerd container; do
    expect "containerd $version legacy: check $id passes" check_status "$id" pass
  done
  expect "containerd $version legacy: check cdi skips (CDI off)" check_status cdi skip
  expect "containerd $version legacy: nvidia-smi -L in the container lists the host's UUIDs" lists_host_uuids
  expect "containerd $version legacy: the module run succeeded (ansible: $val_status)" test "$val_status" = SUCCESS

  step "containerd $version: handler runc gives no GPU"
  validate "runc" "{\"checks\": [\"container\"], \"smoke_image\": \"$SMOKE\", \"name\": \"runc\", \"fail_on\": \"never\"}"
  expect "containerd $version: the container check fails under runc with 'no GPU in the container'" \
    result_of "c['container']['status'] == 'fail' and c['container']['detail'].startswith('no GPU in the container: ')"
  crictl_run runc
  expect "containerd $version: a runc pod has no /dev/nvidia* and no nvidia-smi" \
    bash -c '[[ $1 == *"no /dev/nvidia"* && $1 != *"UUID: GPU-"* ]]' _ "$crictl_out"
  crictl_run nvidia
  expect "containerd $version: the same container under handler nvidia lists the host's GPU" \
    bash -c '[ -n "$2" ] && for u in $2; do [[ $1 == *"UUID: $u"* ]] || exit 1; done' _ "$crictl_out" "$host_uuids"

  step "containerd $version: a second role run"
  local pid_before=$containerd_pid
  role "containerd $version legacy, second run" '{"gpu_node_cdi": false}'
  expect "containerd $version: the second run changes nothing (changed=$role_changed)" test "$role_changed" = 0
  expect "containerd $version: ... and asks for no restart (restarted: $role_restarted)" test "$role_restarted" = false
  expect "containerd $version: ... and containerd runs on, same process ($pid_before)" kill -0 "$pid_before"

  step "containerd $version, CDI mode: the role, the spec, gpu_validate"
  role "containerd $version CDI" '{"gpu_node_cdi": true}'
  expect "containerd $version CDI: the role changed the config and left the restart to the caller" \
    test "$role_restarted" = "left to the caller"
  show nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml | tail -2
  show nvidia-ctk cdi list
  expect "containerd $version CDI: containerd restarts with CDI on" restart_containerd
  validate "cdi" "{\"checks\": $CHECKS, \"smoke_image\": \"$SMOKE\", \"expected_gpu_count\": $gpu_count}"
  for id in pci driver nvidia_smi device_nodes toolkit containerd cdi container; do
    expect "containerd $version CDI: check $id passes" check_status "$id" pass
  done
  expect "containerd $version CDI: the container asked for CDI device nvidia.com/gpu=all" \
    bash -c '[[ $1 == *"CDI device nvidia.com/gpu=all"* ]]' _ "$(container_detail)"
  expect "containerd $version CDI: nvidia-smi -L in the container lists the host's UUIDs" lists_host_uuids

  step "containerd $version: state absent"
  role "containerd $version absent" '{"gpu_node_state": "absent"}'
  expect "containerd $version absent: the role removed the runtime, restart left to the caller" \
    test "$role_restarted" = "left to the caller"
  expect "containerd $version absent: containerd restarts" restart_containerd
  crictl_run nvidia
  expect "containerd $version absent: containerd refuses handler nvidia with its own 'no runtime' error" \
    bash -c '[[ $1 == *"no runtime for "*nvidia*" is configured"* ]]' _ "$crictl_out"
  validate "absent" "{\"checks\": [\"container\"], \"smoke_image\": \"$SMOKE\", \"fail_on\": \"never\"}"
  expect "containerd $version absent: the container check names the unknown handler" \
    result_of "c['container']['detail'].startswith(\"containerd does not know runtime handler 'nvidia'\")"
  expect "containerd $version absent: the toolkit packages are gone" \
    bash -c '! dpkg-query -W -f "\${db:Status-Status}\n" nvidia-container-toolkit 2>/dev/null | grep -q "^installed"'
  stop_containerd
}

# Each part runs in this shell (its variables and exports are needed later), its output copied to a log.
echo "tests/gpu/e2e.sh on $(uname -n), $(date -u +%FT%TZ), containerd ${versions[*]}" >"$out/setup.log"
setup > >(tee -a "$out/setup.log") 2>&1
for v in "${versions[@]}"; do
  run_version "$v" > >(tee "$out/e2e-containerd-$v.log") 2>&1
done
stop_containerd
sleep 0.5 # let the last tee finish writing
echo "$passed passed, $failed failed" | tee "$out/summary.txt"
[ "$failed" = 0 ]
