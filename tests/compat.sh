#!/usr/bin/env bash
# NVIDIA toolkit compatibility cases (they live beside the checkout, in ../shared, not in this repository).
# Every applicable case must pass, except those listed in tests/containerd/compat-differences: there the module
# differs from the reference on purpose (docs/containerd_runtime.md says why for each).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
runner="$ROOT/../shared/compat/nvidia-ctk/run"
[ -f "$runner" ] || skip "no ../shared/compat/nvidia-ctk beside this checkout: nothing to check against"
out=$(python3 "$runner" --module "$ROOT/library/containerd_runtime")
printf '%s\n' "$out"
allowed=$(grep -v '^#' "$ROOT/tests/containerd/compat-differences" | sed '/^$/d')
unexpected=0
while read -r name; do
  [ -z "$name" ] && continue
  if grep -qxF "$name" <<<"$allowed"; then
    info "differs on purpose: $name"
  else
    info "UNEXPECTED failure: $name"; unexpected=$((unexpected + 1))
  fi
done < <(sed -n 's/^FAIL \([^:]*\):.*/\1/p' <<<"$out")
grep -qE '^[0-9]+ passed, [0-9]+ failed' <<<"$out" || { info "the runner printed no summary"; exit 1; }
[ "$unexpected" -eq 0 ]
