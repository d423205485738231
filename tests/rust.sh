#!/usr/bin/env bash
# Unit and integration tests of the Rust workspace, and formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo test --workspace --locked
