#!/usr/bin/env bash
# nvidia_runtime.architecture against a real node (this machine, x86_64, through the local connection), in check
# mode and with confirm_pci, so nothing is changed on it. Declared arm64: the node fails before anything else is
# done, with the architecture named. Declared amd64 (Smart Scaler's spelling): the check passes and the flow goes
# on (to the PCI check, which leaves this GPU-less machine alone). Undeclared: the check does not run.
# usage: tests/roles/check_architecture.sh WORKDIR     (ansible-playbook on PATH)
set -uo pipefail
work=$1
cd "$(dirname "$0")/../.." || exit 1
[ "$(uname -m)" = x86_64 ] || { echo "this check expects an x86_64 controller, not $(uname -m)"; exit 1; }
printf '[gpu_nodes]\ngpu-here ansible_connection=local\n' >"$work/arch.ini"
# run ARCH: the node flow with that declared architecture; its output in $work/arch-ARCH.out.
run() {
  printf 'kubernetes_deployment:\n  nvidia_runtime: {architecture: "%s", confirm_pci: true}\n' "$1" >"$work/arch-$1.yml"
  ansible-playbook --check -i "$work/arch.ini" playbooks/gpu_nodes.yml -e "user_input_file=$work/arch-$1.yml" \
    >"$work/arch-$1.out" 2>&1
}
task='TASK \[gpu_node : Check the node is of the declared architecture\]'
if run arm64; then echo "declared arm64 on an x86_64 node: the run passed"; cat "$work/arch-arm64.out"; exit 1; fi
expected="gpu-here: the node's architecture is x86_64, but kubernetes_deployment.nvidia_runtime.architecture"
expected+=" (gpu_node_expected_architecture) says arm64 (aarch64). Nothing was changed on it."
grep -qF "$expected" "$work/arch-arm64.out" || { cat "$work/arch-arm64.out"; exit 1; }
# Nothing after the check ran on the node: the PCI check is never reached.
! grep -q "Look for PCI vendor" "$work/arch-arm64.out" || { echo "the flow went on after the failed check"; exit 1; }
echo "declared arm64: refused before anything ran"
run amd64 || { cat "$work/arch-amd64.out"; exit 1; }
if ! grep -A1 "$task" "$work/arch-amd64.out" | grep -q "^ok: \[gpu-here\]" ||
   ! grep -q "no NVIDIA PCI device" "$work/arch-amd64.out"; then
  cat "$work/arch-amd64.out"; exit 1
fi
echo "declared amd64: checked, passed, the flow went on"
run "" || { cat "$work/arch-.out"; exit 1; }
! grep -q "$task" "$work/arch-.out" || { echo "the check ran without a declared architecture"; exit 1; }
echo "no declared architecture: not checked"
