#!/usr/bin/env bash
# The `lint` stage: clippy with warnings as errors, shellcheck on every shell script of the repository, ruff on
# every Python file. (ansible-lint and yamllint run in the `roles` stage.) Exits non-zero on any finding.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

need_packages shellcheck
ruff_venv=$(venv ruff "$RUFF_PIN") || die "no venv for $RUFF_PIN"
failed=()

step "cargo clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -q -- -D warnings || failed+=(clippy)

# Every tracked shell script: *.sh, and files whose first line names bash or sh.
mapfile -t scripts < <(git ls-files -z | while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  case $f in *.sh) echo "$f"; continue ;; esac
  head -n1 "$f" | grep -qE '^#!.*\b(ba)?sh\b' && echo "$f"
done | sort -u)
step "shellcheck (${#scripts[@]} scripts, severity warning and above)"
shellcheck -x -S warning "${scripts[@]}" || failed+=(shellcheck)

mapfile -t pyfiles < <(git ls-files '*.py')
step "ruff (${#pyfiles[@]} Python files)"
"$ruff_venv/bin/ruff" check --no-cache "${pyfiles[@]}" || failed+=(ruff)

[ ${#failed[@]} -eq 0 ] || die "lint failed: ${failed[*]}"
info "clippy, shellcheck and ruff found nothing"
