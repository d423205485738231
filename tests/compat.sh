#!/usr/bin/env bash
# NVIDIA toolkit compatibility cases (they live beside the checkout, in ../shared, not in this repository).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runner="$ROOT/../shared/compat/nvidia-ctk/run"
[ -x "$runner" ] || [ -f "$runner" ] || { info "no ../shared/compat/nvidia-ctk here: nothing to check"; exit 0; }
python3 "$runner" --module "$ROOT/library/containerd_runtime"
