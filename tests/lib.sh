# shellcheck shell=bash
# Shared helpers for the test scripts: progress lines, the cache folder, pinned Python venvs, host packages.
# Source it: . "$(dirname "$0")/lib.sh" (or the right relative path).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Slow artefacts (venvs, root file systems, images, downloaded containerd) live outside the clone, so a fresh
# clone on the same machine reuses them; delete the folder to start cold.
CACHE=${TEST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpunode-tests}
mkdir -p "$CACHE"

# Every version the tests pin and the Debian suites they run on, each written once here (the scripts that
# source this file read them). The pins users share live in scripts/versions.
# shellcheck source=scripts/versions
. "$ROOT/scripts/versions"
# shellcheck disable=SC2034
{
  # ansible-core: the oldest supported, and the newest this Python gets (the one users' venv pins).
  ANSIBLE_OLDEST=2.15.13
  ANSIBLE_NEWEST=$ANSIBLE_CORE_VERSION
  # Molecule and its Podman driver, with that ansible-core; the `ansible` package brings the containers.podman
  # collection the driver's create/destroy playbooks use (Ansible Galaxy is not reachable).
  MOLECULE_PINS=("ansible-core==$ANSIBLE_NEWEST" "ansible==$ANSIBLE_PACKAGE_VERSION" "molecule==26.10.0"
    "molecule-plugins[podman]==26.10.12")
  RUFF_PIN=ruff==0.14.0
  # The Kubernetes versions rendered objects are validated against, newest first (kubernetes-validate's schemas).
  KUBERNETES_VERSIONS=(1.37.0 1.35.0)
  # The Debian suites of the test nodes, each for the containerd it ships (sid's node is trixie with sid's
  # containerd, see tests/nodes/image). Every stage that runs per suite takes this list.
  SUITES=(bookworm trixie sid)
  declare -A SUITE_CONTAINERD=([bookworm]=1.6 [trixie]=1.7 [sid]=2.1)
  # The three modules, as library/ holds them.
  MODULES=(containerd_runtime nvidia_toolkit gpu_validate)
}

# What the pinned tools pull in unpinned is held by this constraints file (pip reads the variable).
export PIP_CONSTRAINT="$ROOT/tests/constraints.txt"

step() { printf '\n== %s ==\n' "$*"; }
info() { printf '   %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# A stage that cannot do its work here says why and exits 77: tests/run reports it as skipped, never passed.
skip() { printf '   SKIPPED: %s\n' "$*"; exit 77; }
# A stage that can do all but a part of its work says why with skip_part and ends with end_stage (after its
# own failure check): with a part left out it exits 77 too, so a partial run is never reported as passed.
SKIPPED_PARTS=0
skip_part() { printf '   SKIPPED: %s\n' "$*"; SKIPPED_PARTS=$((SKIPPED_PARTS + 1)); }
end_stage() {
  [ "$SKIPPED_PARTS" -eq 0 ] && exit 0
  printf '   %d part(s) of this stage did not run (SKIPPED above): the stage is reported as skipped\n' "$SKIPPED_PARTS"
  exit 77
}

# need_modules [MODULE...]: makes sure library/ holds the x86-64 executables (default: all three) built from
# the sources as they are now: when one is missing, or older than a file of modules/, Cargo.toml or Cargo.lock,
# scripts/build-modules builds them (quick when cargo finds nothing to do). A stage never tests a stale build.
need_modules() {
  local m
  [ $# -gt 0 ] || set -- "${MODULES[@]}"
  for m in "$@"; do
    if [ ! -x "$ROOT/library/$m" ] || [ ! -f "$ROOT/library/$m.yml" ] || [ -n "$(find "$ROOT/modules" \
      "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -type f -newer "$ROOT/library/$m" -print -quit 2>/dev/null)" ]; then
      info "library/$m is missing or older than its sources: scripts/build-modules"
      (cd "$ROOT" && scripts/build-modules) >&2 || die "scripts/build-modules failed"
      return 0
    fi
  done
}

# Installs Debian packages that are missing (no-op when all are there).
need_packages() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  info "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# venv NAME PIP_SPEC...: creates (once) a venv in the cache with exactly these pins; prints its path.
venv() {
  local name=$1; shift
  local key dir
  key=$( (printf '%s\n' "$@"; cat "$PIP_CONSTRAINT") | sha256sum | cut -c1-12)
  dir="$CACHE/venv-$name-$key"
  if [ ! -x "$dir/bin/python" ] || [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install -q --disable-pip-version-check "$@" >&2
    touch "$dir/.complete"
  fi
  printf '%s\n' "$dir"
}

# The first Debian mirror URL the host's apt is configured with (never a hard-coded host).
debian_mirror() {
  local url
  # apt's own view of its active sources: "500 http://MIRROR/debian bookworm/main amd64 Packages".
  url=$(apt-cache policy 2>/dev/null | awk '$2 ~ /^https?:/ && $3 ~ /\/main$/ && $3 !~ /security/ {print $2; exit}')
  [ -n "$url" ] || die "no Debian mirror found in the host's apt sources"
  printf '%s\n' "${url%/}"
}
