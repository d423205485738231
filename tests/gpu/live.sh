#!/usr/bin/env bash
# Live check of gpu_validate on a real GPU node: runs the module on the node itself and compares what it reports
# with what nvidia-smi prints there. Needs only bash, nvidia-smi and the static module binary (no Python).
#
# usage (as root on the GPU node):  tests/gpu/live.sh [MODULE]
#   MODULE   the gpu_validate binary (default: library/gpu_validate next to this checkout, or $GPU_VALIDATE)
#   SYSROOT  environment: the root the module reads (default /; the tests point it at a recorded node)
# Prints the module's JSON, one line per assertion, then "N passed, N failed"; exits 1 on any mismatch.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=${1:-${GPU_VALIDATE:-$here/../../library/gpu_validate}}
sysroot=${SYSROOT:-/}
passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
# expect DESCRIPTION NEEDLE: the module's JSON contains NEEDLE verbatim.
expect() { if [[ $out == *"$2"* ]]; then ok "$1"; else bad "$1 (missing: $2)"; fi; }
# forbid DESCRIPTION NEEDLE: the module's JSON does not contain NEEDLE.
forbid() { if [[ $out != *"$2"* ]]; then ok "$1"; else bad "$1 (found: $2)"; fi; }

[ -x "$module" ] || { echo "error: $module is not an executable file (build it: scripts/build-modules)" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi is not on PATH" >&2; exit 2; }

echo "== node: $(uname -n), $(date -u +%FT%TZ), sysroot $sysroot"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# fail_on=never: the module answers with every check even where some fail; the assertions below judge them.
printf '{"sysroot": "%s", "fail_on": "never", "_ansible_check_mode": true, "_ansible_module_name": "gpu_validate"}\n' \
  "$sysroot" >"$tmp/args"
t0=$(date +%s%N)
out=$("$module" "$tmp/args")
rc=$?
t1=$(date +%s%N)
echo "== module output (exit $rc, $(( (t1 - t0) / 1000000 )) ms)"
printf '%s\n' "$out"
echo "== assertions"
[ "$rc" = 0 ] && ok "module exits 0 with fail_on=never" || bad "module exits $rc with fail_on=never"

# The GPUs as nvidia-smi lists them, each compared field by field with the module's nvidia_gpus facts
# (the module's JSON keeps its key order and has no spaces, so each GPU is one exact substring).
query=index,name,uuid,driver_version,memory.total,mig.mode.current,compute_cap,pci.bus_id
csv=$(nvidia-smi --query-gpu=$query --format=csv)
echo "nvidia-smi --query-gpu=$query --format=csv:"
printf '%s\n' "$csv"
n=0
driver=""
while IFS= read -r line; do
  [ -z "$line" ] && continue
  IFS=',' read -r idx name uuid drv mem mig cap bus <<<"$line"
  trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }
  idx=$(trim "$idx"); name=$(trim "$name"); uuid=$(trim "$uuid"); drv=$(trim "$drv")
  mem=$(trim "$mem"); mem=${mem% MiB}; mig=$(trim "$mig"); cap=$(trim "$cap"); bus=$(trim "$bus")
  driver=$drv
  n=$((n + 1))
  expect "GPU $idx facts equal nvidia-smi ($name, $uuid)" \
    "{\"index\":$idx,\"name\":\"$name\",\"uuid\":\"$uuid\",\"driver_version\":\"$drv\",\"memory_total_mib\":$mem,\"mig_mode\":\"$mig\",\"compute_capability\":\"$cap\",\"pci_bus_id\":\"$bus\","
done < <(printf '%s\n' "$csv" | tail -n +2)
listed=$(grep -o '"uuid":"' <<<"$out" | wc -l)
[ "$listed" = "$n" ] && ok "module lists $n GPU(s), as nvidia-smi does" || bad "module lists $listed GPU(s), nvidia-smi $n"
[ "$n" -gt 0 ] && ok "nvidia-smi lists at least one GPU" || bad "nvidia-smi lists no GPU"
expect "driver version fact is nvidia-smi's ($driver)" "\"nvidia_driver_version\":\"$driver\""
cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)
expect "CUDA version fact is nvidia-smi's ($cuda)" "\"nvidia_cuda_version\":\"$cuda\""
expect "nvidia_gpu_count is $n" "\"nvidia_gpu_count\":$n"

expect "pci check passes" '{"id":"pci","status":"pass"'
expect "driver check passes" '{"id":"driver","status":"pass"'
expect "nvidia_smi check passes" '{"id":"nvidia_smi","status":"pass"'
if [[ $out == *'{"id":"device_nodes","status":"pass"'* || $out == *'{"id":"device_nodes","status":"warn"'* ]]; then
  ok "device_nodes check passes (or warns)"
else
  bad "device_nodes check fails"
fi

# The container layers: reported absent exactly when they are absent.
dirs="/usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin /usr/local/nvidia/bin /usr/local/nvidia/toolkit"
[ "$sysroot" = / ] && dirs="${PATH//:/ } $dirs"
find_tool() { local d; for d in $dirs; do [ -x "${sysroot%/}$d/$1" ] && [ -f "${sysroot%/}$d/$1" ] && return 0; done; return 1; }
info_toolkit=absent; info_containerd=absent
for t in nvidia-ctk nvidia-container-runtime nvidia-container-cli; do find_tool "$t" && info_toolkit=present; done
{ find_tool containerd || [ -e "${sysroot%/}/etc/containerd/config.toml" ]; } && info_containerd=present
echo "toolkit on this node: $info_toolkit; containerd on this node: $info_containerd"
if [ "$info_toolkit" = absent ]; then
  expect "toolkit check reports the toolkit absent" '{"id":"toolkit","status":"fail","detail":"NVIDIA Container Toolkit is not installed'
  expect "toolkit version fact is null" '"nvidia_container_toolkit_version":null'
else
  forbid "toolkit check does not call an installed toolkit absent" 'NVIDIA Container Toolkit is not installed'
fi
if [ "$info_containerd" = absent ]; then
  expect "containerd check reports containerd absent" '{"id":"containerd","status":"fail","detail":"containerd is not installed'
  expect "runtime is not reported configured" '"nvidia_runtime_configured":false'
  expect "cdi check skips without containerd" '{"id":"cdi","status":"skip"'
else
  forbid "containerd check does not call an installed containerd absent" 'containerd is not installed'
fi

# Without fail_on=never, a node missing layers must fail the task (never green when something is absent).
printf '{"sysroot": "%s"}\n' "$sysroot" >"$tmp/args"
out=$("$module" "$tmp/args")
rc=$?
if [ "$info_toolkit" = absent ] || [ "$info_containerd" = absent ]; then
  [ "$rc" = 1 ] && ok "default fail_on=error fails the task (exit 1)" || bad "default fail_on=error exits $rc"
  expect "failure message names the toolkit or containerd" '"msg":"GPU node validation failed: '
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
