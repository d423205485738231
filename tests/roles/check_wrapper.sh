#!/usr/bin/env bash
# ./setup_kubernetes.sh as a user meets it: --help, --limit, the summary of nodes a run never touched, the input
# check with /tmp read-only, a controller without cargo, and a built collection tarball used instead of a build.
# The GPU nodes are this machine (confirm_pci: no NVIDIA device, so the node role changes nothing) and an
# unreachable address; the cluster objects are only rendered.
#
# usage: tests/roles/check_wrapper.sh VENV WORKDIR     (prints "ok"/"FAIL" per check; exits 1 when one fails)
set -uo pipefail
venv=${1:?usage: check_wrapper.sh VENV WORKDIR}
work=${2:?usage: check_wrapper.sh VENV WORKDIR}/wrapper
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
mkdir -p "$work"
export GPUNODE_VENV=$venv
failed=0
# check NAME FUNCTION: runs FUNCTION, its output in $work/NAME.log, shown when it fails.
check() {
  if "$2" >"$work/$1.log" 2>&1; then
    echo "ok   $1"
  else
    echo "FAIL $1"; sed 's/^/      /' "$work/$1.log" | tail -n 40; failed=1
  fi
}
# summary_line OUT HOST: the summary's line for HOST.
summary_line() { grep -o "\"msg\": \"$2 \+state=.*" "$1" | head -n 1; }

printf '%s\n' '[gpu_nodes]' 'gpu-down ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh' \
  'gpu-here ansible_connection=local' >"$work/inventory.ini"
# The input: minimal.yml with confirm_pci on and the cluster objects rendered only; "off": the node flow disabled.
python3 - "$work" <<'PY'
import sys, yaml
work = sys.argv[1]
data = yaml.safe_load(open("tests/roles/inputs/minimal.yml"))
kd = data["kubernetes_deployment"]
kd.setdefault("cluster", {}).update({"apply": "never", "manifest_dir": f"{work}/rendered"})
kd.setdefault("nvidia_runtime", {})["confirm_pci"] = True
yaml.safe_dump(data, open(f"{work}/input.yml", "w"))
kd["nvidia_runtime"]["enabled"] = False
yaml.safe_dump(data, open(f"{work}/off.yml", "w"))
PY
run() { ./setup_kubernetes.sh --inventory "$work/inventory.ini" "$@"; }

# --help: the usage text, every option the wrapper takes, and no line of code.
help_text() {
  local out opt
  out=$(./setup_kubernetes.sh --help) || return 1
  echo "$out"
  grep -q '^usage: ./setup_kubernetes.sh' <<<"$out" || return 1
  ! grep -qE '^(set -|root=|cd )' <<<"$out" || { echo "code in --help"; return 1; }
  for opt in $(grep -oE '^    --[a-z-]+' setup_kubernetes.sh | tr -d ' '); do
    grep -q -- "$opt" <<<"$out" || { echo "--help does not mention $opt"; return 1; }
  done
}
check help help_text

# --limit HOST: the input is checked and the cluster rendered on the controller; the other GPU node is reported
# as outside the limit, not as failed, and is not contacted.
limit_one() {
  run --user-input "$work/input.yml" --limit gpu-here >"$work/limit.out" 2>&1 || { cat "$work/limit.out"; return 1; }
  cat "$work/limit.out"
  summary_line "$work/limit.out" gpu-down | grep -q "state=not in this run .*validation: outside --limit" &&
    summary_line "$work/limit.out" gpu-here | grep -q "state=skipped (no NVIDIA PCI device)" &&
    ! grep -q "gpu-down.*UNREACHABLE" "$work/limit.out" && ! grep -q "has no attribute" "$work/limit.out"
}
check limit-one-host limit_one
limit_none() {
  ! run --user-input "$work/input.yml" --limit nosuch-host >"$work/nolimit.out" 2>&1 &&
    grep -q -- "--limit nosuch-host matches no host" "$work/nolimit.out"
}
check limit-matching-nothing-refused limit_none
# Without --limit the unreachable node fails the run and is reported so.
unreachable() {
  ! run --user-input "$work/input.yml" >"$work/all.out" 2>&1 || { echo "the run passed with a node down"; return 1; }
  cat "$work/all.out"
  summary_line "$work/all.out" gpu-down | grep -q "state=FAILED or unreachable"
}
check unreachable-node-reported-failed unreachable

# nvidia_runtime.enabled: false, with /tmp read-only (the input check must not need it): no node is contacted,
# each is reported as left alone, the run passes; nothing is left in TMPDIR.
disabled_ro_tmp() {
  mkdir -p "$work/tmp"
  TMPDIR=$work/tmp unshare -m bash -c 'mount -o bind,ro /tmp /tmp && exec "$@"' _ \
    ./setup_kubernetes.sh --inventory "$work/inventory.ini" --user-input "$work/off.yml" >"$work/off.out" 2>&1 ||
    { cat "$work/off.out"; return 1; }
  cat "$work/off.out"
  grep -q "user input valid" "$work/off.out" && ! grep -q "FAILED or unreachable" "$work/off.out" &&
    summary_line "$work/off.out" gpu-down | grep -q "state=untouched .*enabled is false" &&
    [ -z "$(ls -A "$work/tmp")" ]
}
check disabled-nodes-untouched-ro-tmp disabled_ro_tmp
# A bad input under a read-only /tmp is still refused with its own message.
bad_ro_tmp() {
  ! TMPDIR=$work/tmp unshare -m bash -c 'mount -o bind,ro /tmp /tmp && exec "$@"' _ \
    ./setup_kubernetes.sh --check --inventory "$work/inventory.ini" \
    --user-input tests/roles/bad_input/two_toolkits.yml >"$work/bad.out" 2>&1 || return 1
  cat "$work/bad.out"
  grep -q "gpu_operator.toolkit_enabled: true together with" "$work/bad.out" &&
    grep -q "nothing was changed" "$work/bad.out"
}
check bad-input-refused-ro-tmp bad_ro_tmp
# --tags cluster: the node flow does not run; the nodes are reported as left alone and the run passes.
tags_cluster() {
  run --user-input "$work/input.yml" --tags cluster >"$work/tags.out" 2>&1 || { cat "$work/tags.out"; return 1; }
  cat "$work/tags.out"
  ! grep -q "FAILED or unreachable" "$work/tags.out" &&
    summary_line "$work/tags.out" gpu-down | grep -q "state=untouched .*not in this run (--tags)"
}
check tags-cluster-nodes-untouched tags_cluster

# A copy of the working tree without library/ and a PATH without cargo: a controller with no Rust.
clone=$work/clone
rm -rf "$clone" && mkdir -p "$clone"
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$clone"
no_cargo_path=$(tr : '\n' <<<"$PATH" | while read -r d; do [ -x "$d/cargo" ] || echo "$d"; done | paste -sd: -)
in_clone() { (cd "$clone" && PATH=$no_cargo_path ./setup_kubernetes.sh --inventory "$work/inventory.ini" "$@"); }
no_cargo() {
  ! PATH=$no_cargo_path command -v cargo || { echo "cargo is still on the PATH"; return 1; }
  [ ! -e "$clone/library/gpu_validate" ] || return 1
  ! in_clone --user-input "$work/input.yml" >"$work/nocargo.out" 2>&1 || return 1
  cat "$work/nocargo.out"
  grep -q "the modules are not in library/, and cargo (Rust) is not installed" "$work/nocargo.out" &&
    grep -q "rustup" "$work/nocargo.out" &&
    grep -q -- "--collection gpunode-nvidia-VERSION.tar.gz" "$work/nocargo.out" &&
    grep -q "GPUNODE_COLLECTION" "$work/nocargo.out" && ! grep -q "Running site.yml" "$work/nocargo.out"
}
check no-cargo-says-what-to-do no_cargo

# The tarball scripts/build-collection makes (with the licence and notices): its modules used without building.
from_tarball() {
  local tarball m
  tarball=$(scripts/build-collection "$work/dist") || return 1
  tar -tzf "$tarball" >"$work/tarball.list" || return 1
  grep -qx LICENSE "$work/tarball.list" && grep -qx THIRD_PARTY_NOTICES.md "$work/tarball.list" ||
    { echo "LICENSE or THIRD_PARTY_NOTICES.md missing from $tarball"; return 1; }
  # A relative path, from another folder: it is taken relative to where the wrapper was run.
  (cd "$work" && PATH=$no_cargo_path "$clone/setup_kubernetes.sh" --inventory "$work/inventory.ini" \
    --user-input "$work/input.yml" --limit gpu-here --collection "dist/$(basename "$tarball")") \
    >"$work/tarball.out" 2>&1 || { cat "$work/tarball.out"; return 1; }
  cat "$work/tarball.out"
  grep -q "from $work/dist/$(basename "$tarball") (gpunode.nvidia [0-9.]*) into library/, not built" \
    "$work/tarball.out" && grep -q "Done: no host failed" "$work/tarball.out" || return 1
  mkdir -p "$work/unpacked" && tar -xzf "$tarball" -C "$work/unpacked" plugins/modules || return 1
  for m in containerd_runtime nvidia_toolkit gpu_validate; do
    cmp "$clone/library/$m" "$work/unpacked/plugins/modules/$m" || return 1
  done
  # The copied module answers from the clone's library/ (ansible.cfg points there).
  printf 'version = 2\n' >"$work/config.toml"
  (cd "$clone" && PATH=$no_cargo_path ANSIBLE_CONFIG=$clone/ansible.cfg ansible -i localhost, -c local localhost \
    -m containerd_runtime -a "path=$work/config.toml name=nvidia validate=none") || return 1
  grep -q 'BinaryName = "/usr/bin/nvidia-container-runtime"' "$work/config.toml"
}
check collection-tarball-instead-of-cargo from_tarball
# Sources newer than the executables, no cargo: refused with the same advice, not run with stale modules.
stale_no_cargo() {
  touch "$clone/modules/gpu_validate/src/lib.rs"
  ! in_clone --user-input "$work/input.yml" >"$work/stale.out" 2>&1 || return 1
  cat "$work/stale.out"
  grep -q "the modules in library/ are older than their sources in modules/, and cargo (Rust) is not installed" \
    "$work/stale.out"
}
check stale-modules-no-cargo-refused stale_no_cargo

[ "$failed" -eq 0 ]
