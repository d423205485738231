#!/usr/bin/env bash
# Sets up NVIDIA GPU support on a Kubernetes cluster's nodes: checks user_input.yml, builds the modules and the
# pinned Ansible venv when missing, runs site.yml, and ends with one line per GPU node.
#
# usage: ./setup_kubernetes.sh [--inventory FILE] [--user-input FILE] [--check] [--diff] [--limit PATTERN]
#                              [--tags TAGS] [--cleanup] [--sandbox [--suite SUITE]] [--collection FILE] [-v...]
#   --inventory FILE    the hosts (default: inventory/hosts.ini); GPU nodes in the group nvidia_runtime.node_group
#   --user-input FILE   the settings (default: ./user_input.yml)
#   --check, --diff     predict the changes without making them / show the file changes
#   --limit PATTERN     only these hosts (an Ansible host pattern); the controller always takes part
#   --tags TAGS         only these parts: nodes, cluster
#   --cleanup           reverse it instead (playbooks/cleanup.yml): runtime removed from containerd with the
#                       previous default runtime restored, toolkit packages, apt list and keyring removed, and
#                       the RuntimeClass, node labels and charts removed (also after nvidia_runtime.enabled: false)
#   --sandbox           run the node flow against a local Podman node (systemd, containerd) and a local signed
#                       apt repository standing in for NVIDIA's: the main job on one machine, no cluster needed
#   --suite SUITE       the sandbox node's Debian suite: bookworm (default), trixie or sid
#   --collection FILE   take the modules from a built gpunode.nvidia collection tarball (scripts/build-collection,
#                       or a release's) instead of building them: no Rust needed
#   -v...               passed to ansible-playbook
#   -h, --help          this text
# Environment: GPUNODE_VENV (default .venv) is where the pinned Ansible venv lives; GPUNODE_COLLECTION=FILE is
# the same as --collection FILE.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
caller=$PWD  # where it was run: --collection FILE is relative to it
cd "$root"

inventory=inventory/hosts.ini
user_input=$root/user_input.yml
sandbox=false
playbook=site.yml
suite=bookworm
extra=()
limit=
collection=${GPUNODE_COLLECTION:-}
started=$(date +%s)
say() { printf '\n>>> [%3ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --inventory | -i) inventory=${2:?}; shift ;;
    --user-input) user_input=$(cd "$(dirname "${2:?}")" && pwd)/$(basename "$2"); shift ;;
    --check | -C) extra+=(--check) ;;
    --diff | -D) extra+=(--diff) ;;
    --limit | -l) limit=${2:?}; shift ;;
    --tags | -t) extra+=(--tags "${2:?}"); shift ;;
    --sandbox) sandbox=true ;;
    --cleanup) playbook=playbooks/cleanup.yml ;;
    --suite) suite=${2:?}; shift ;;
    --collection) collection=${2:?}; shift ;;
    -v*) extra+=("$1") ;;
    # The comment block at the top of this file, without its comment signs.
    -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[ -f "$user_input" ] || die "no user input file at $user_input"

say "Ansible venv (pinned ansible-core, kubernetes.core)"
venv=${GPUNODE_VENV:-$root/.venv}
scripts/ansible-env "$venv"
export PATH="$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$venv/collections"
export ANSIBLE_CONFIG="$root/ansible.cfg"

say "Checking $user_input"
# Before any host is touched (also under --check): only the controller reads and checks the file. Its output is
# kept in memory (no temporary file) and shown only when the file is rejected.
if ! check_out=$(ansible-playbook -i localhost, playbooks/validate_input.yml -e "user_input_file=$user_input" \
    2>&1); then
  grep -E 'Validation of arguments failed|kubernetes_deployment|must be stored|ERROR' <<<"$check_out" >&2 ||
    printf '%s\n' "$check_out" >&2
  die "user input rejected; nothing was changed"
fi
echo "   user input valid"

say "Compiled modules"
modules=(containerd_runtime nvidia_toolkit gpu_validate)
# from_collection TARBALL: the modules (x86-64, and aarch64 when the tarball has them) and their docs from a
# built collection into library/, after checking that it is this checkout's version with all three modules.
from_collection() {
  local tarball=$1 dir version want
  case $tarball in /*) ;; *) tarball=$caller/$tarball ;; esac
  [ -f "$tarball" ] || die "no collection tarball at $tarball"
  dir=$(mktemp -d)
  # shellcheck disable=SC2064 # the folder is known now
  trap "rm -rf '$dir'" EXIT
  tar -xzf "$tarball" -C "$dir" MANIFEST.json plugins/modules 2>/dev/null ||
    die "$tarball is not a gpunode.nvidia collection tarball (scripts/build-collection makes one)"
  version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' \
    "$dir/MANIFEST.json" 2>/dev/null) || version=
  want=$(sed -n 's/^version: *//p' galaxy.yml)
  [ "$version" = "$want" ] ||
    die "$tarball is version ${version:-unknown}; this checkout is $want: use the tarball of the same release"
  for m in "${modules[@]}"; do
    [ -f "$dir/plugins/modules/$m" ] && [ -f "$dir/plugins/modules/$m.yml" ] || die "$tarball has no module $m"
  done
  mkdir -p library
  for m in "${modules[@]}"; do
    install -m 0755 "$dir/plugins/modules/$m" "library/$m"
    install -m 0644 "$dir/plugins/modules/$m.yml" "library/$m.yml"
    if [ -f "$dir/plugins/modules/.aarch64/$m" ]; then
      mkdir -p library/.aarch64 && install -m 0755 "$dir/plugins/modules/.aarch64/$m" "library/.aarch64/$m"
    fi
  done
  rm -rf "$dir"; trap - EXIT  # gone now, not left to a trap that a later part may replace
  echo "   from $tarball (gpunode.nvidia $version) into library/, not built"
}
# no_cargo WHY: the modules cannot be built here; says both ways on.
no_cargo() {
  die "$1, and cargo (Rust) is not installed, so they cannot be built. Either:
  - install Rust 1.80 or newer with rustup (https://rustup.rs; Debian 12's cargo package is too old) and run
    this again: the modules are built into library/; or
  - use a built collection tarball, which carries the compiled modules (scripts/build-collection makes it on a
    machine with Rust; a release ships it): ./setup_kubernetes.sh --collection gpunode-nvidia-VERSION.tar.gz ...
    (or GPUNODE_COLLECTION=FILE). Its modules are copied into library/ and used without building.
Nothing was changed."
}
missing=false
for m in "${modules[@]}"; do [ -x "library/$m" ] || missing=true; done
if [ -n "$collection" ]; then
  from_collection "$collection"
# Rebuilt when a module's source is newer than its executable.
elif $missing || [ -n "$(find modules Cargo.toml Cargo.lock -newer library/gpu_validate -type f 2>/dev/null | head -n 1)" ]; then
  if ! command -v cargo >/dev/null; then
    $missing && no_cargo "the modules are not in library/"
    no_cargo "the modules in library/ are older than their sources in modules/"
  fi
  scripts/build-modules
else
  echo "   up to date in library/"
fi

if $sandbox; then
  say "Sandbox: a local Podman node ($suite) and a local signed repository"
  # shellcheck source=scripts/sandbox.sh
  . scripts/sandbox.sh
  sandbox_up "$suite"
  inventory=$SANDBOX_INVENTORY
  user_input=$SANDBOX_USER_INPUT
  [ "$playbook" = site.yml ] && extra+=(--tags "nodes")
  echo "   the node stays up for a second run; remove it with: podman rm -f $SANDBOX_NODE" 
fi
[ -f "$inventory" ] || die "no inventory at $inventory (--inventory FILE; see inventory/example.ini)"
if [ -n "$limit" ]; then
  # The pattern is resolved to its hosts here and the controller (localhost) added: it checks the input and
  # renders the cluster objects, and a limit without it would skip those plays and break the rest.
  hosts=$(ansible -i "$inventory" all --limit "$limit" --list-hosts 2>/dev/null | tail -n +2 | tr -d ' ' |
    paste -sd, -) || hosts=  # ansible fails when nothing matches
  [ -n "$hosts" ] || die "--limit $limit matches no host of $inventory"
  extra+=(--limit "$hosts,localhost")
fi

say "Running $playbook on $inventory"
rc=0
ansible-playbook -i "$inventory" "$playbook" -e "user_input_file=$user_input" "${extra[@]}" || rc=$?
if [ $rc -eq 0 ]; then
  say "Done: no host failed; each node's validation verdict is in the summary above"
else
  say "FAILED (ansible-playbook exit $rc): see the errors and the summary above"
fi
exit $rc
