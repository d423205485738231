#!/usr/bin/env bash
# Unit and integration tests of the Rust workspace, formatting, and THIRD_PARTY_NOTICES.md against Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo test --workspace --locked
scripts/third-party-notices --check
