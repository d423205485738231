#!/usr/bin/env bash
# Host set-up for the tests: Debian packages and the pinned Python venvs (cached; quick when already done).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) first"
need_packages file python3-venv debootstrap podman runc zstd apt-utils dpkg-dev gnupg
venv ansible-newest "ansible-core==$ANSIBLE_NEWEST" >/dev/null
venv ansible-oldest "ansible-core==$ANSIBLE_OLDEST" >/dev/null
info "venvs ready under $CACHE"
