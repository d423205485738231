#!/usr/bin/env bash
# Sets up NVIDIA GPU support on a Kubernetes cluster's nodes: checks user_input.yml, builds the modules and the
# pinned Ansible venv when missing, runs site.yml, and ends with one line per GPU node.
#
# usage: ./setup_kubernetes.sh [--inventory FILE] [--user-input FILE] [--check] [--diff] [--limit PATTERN]
#                              [--tags TAGS] [--cleanup] [--sandbox [--suite SUITE]] [-v...]
#   --inventory FILE    the hosts (default: inventory/hosts.ini); GPU nodes in the group nvidia_runtime.node_group
#   --user-input FILE   the settings (default: ./user_input.yml)
#   --check, --diff     predict the changes without making them / show the file changes
#   --limit, --tags     passed to ansible-playbook (tags: nodes, cluster)
#   --cleanup           reverse it instead (playbooks/cleanup.yml): runtime removed from containerd with the
#                       previous default runtime restored, toolkit packages, apt list and keyring removed, and
#                       the RuntimeClass, node labels and charts removed (also after nvidia_runtime.enabled: false)
#   --sandbox           run the node flow against a local Podman node (systemd, containerd) and a local signed
#                       apt repository standing in for NVIDIA's: the main job on one machine, no cluster needed
# Environment: GPUNODE_VENV (default .venv) is where the pinned Ansible venv lives.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

inventory=inventory/hosts.ini
user_input=$root/user_input.yml
sandbox=false
playbook=site.yml
suite=bookworm
extra=()
started=$(date +%s)
say() { printf '\n>>> [%3ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --inventory | -i) inventory=${2:?}; shift ;;
    --user-input) user_input=$(cd "$(dirname "${2:?}")" && pwd)/$(basename "$2"); shift ;;
    --check | -C) extra+=(--check) ;;
    --diff | -D) extra+=(--diff) ;;
    --limit | -l) extra+=(--limit "${2:?}"); shift ;;
    --tags | -t) extra+=(--tags "${2:?}"); shift ;;
    --sandbox) sandbox=true ;;
    --cleanup) playbook=playbooks/cleanup.yml ;;
    --suite) suite=${2:?}; shift ;;
    -v*) extra+=("$1") ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
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
# Before any host is touched (also under --check): only the controller reads and checks the file.
ansible-playbook -i localhost, playbooks/validate_input.yml -e "user_input_file=$user_input" >/tmp/gpunode-validate.$$ 2>&1 \
  || { grep -E 'Validation of arguments failed|kubernetes_deployment|must be stored|ERROR' /tmp/gpunode-validate.$$ >&2 || cat /tmp/gpunode-validate.$$ >&2
       rm -f /tmp/gpunode-validate.$$; die "user input rejected; nothing was changed"; }
rm -f /tmp/gpunode-validate.$$
echo "   user input valid"

say "Compiled modules"
modules=(containerd_runtime nvidia_toolkit gpu_validate)
missing=false
for m in "${modules[@]}"; do [ -x "library/$m" ] || missing=true; done
# Rebuilt when a module's source is newer than its executable.
if $missing || [ -n "$(find modules Cargo.toml Cargo.lock -newer library/gpu_validate -type f 2>/dev/null | head -n 1)" ]; then
  scripts/build-modules
else
  echo "   up to date in library/"
fi

if $sandbox; then
  say "Sandbox: a local Podman node ($suite) and a local signed repository"
  # shellcheck source=tests/roles/sandbox.sh
  . tests/roles/sandbox.sh
  sandbox_up "$suite"
  inventory=$SANDBOX_INVENTORY
  user_input=$SANDBOX_USER_INPUT
  [ "$playbook" = site.yml ] && extra+=(--tags "nodes")
  echo "   the node stays up for a second run; remove it with: podman rm -f $SANDBOX_NODE" 
fi
[ -f "$inventory" ] || die "no inventory at $inventory (--inventory FILE; see inventory/example.ini)"

say "Running $playbook on $inventory"
rc=0
ansible-playbook -i "$inventory" "$playbook" -e "user_input_file=$user_input" "${extra[@]}" || rc=$?
if [ $rc -eq 0 ]; then
  say "Done: no host failed; each node's validation verdict is in the summary above"
else
  say "FAILED (ansible-playbook exit $rc): see the errors and the summary above"
fi
exit $rc
