#!/usr/bin/env bash
# Host set-up for the tests, all cached (quick when already done): Debian packages, the pinned Python venvs,
# the signed stand-in apt repository and the Podman node images of the Debian suites (tests/lib.sh's SUITES).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) first"
need_packages file python3-venv debootstrap podman runc zstd apt-utils dpkg-dev gnupg
venv ansible-newest "ansible-core==$ANSIBLE_NEWEST" >/dev/null
venv ansible-oldest "ansible-core==$ANSIBLE_OLDEST" >/dev/null
"$ROOT/scripts/ansible-env" "$CACHE/venv-gpunode-tools"
info "venvs ready under $CACHE"
info "signed stand-in repository: $("$ROOT/tests/aptrepo/build")"
. "$ROOT/tests/nodes/env.sh"
# The suites build side by side (each takes its own lock); debootstrap mostly waits on the mirror.
declare -A pids=()
for suite in "${SUITES[@]}"; do
  "$ROOT/tests/nodes/image" "$suite" >"$CACHE/image-$suite.ref" 2>"$CACHE/image-$suite.log" & pids[$suite]=$!
done
status=0
for suite in "${SUITES[@]}"; do
  if wait "${pids[$suite]}"; then info "node image: $(cat "$CACHE/image-$suite.ref")"
  else status=1; info "node image $suite FAILED:"; tail -n 20 "$CACHE/image-$suite.log" >&2; fi
done
exit $status
