# shellcheck shell=bash
# Shared helpers for the test scripts: progress lines, the cache folder, pinned Python venvs, host packages.
# Source it: . "$(dirname "$0")/lib.sh" (or the right relative path).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Slow artefacts (venvs, root file systems, images, downloaded containerd) live outside the clone, so a fresh
# clone on the same machine reuses them; delete the folder to start cold.
CACHE=${TEST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpunode-tests}
mkdir -p "$CACHE"

# The pinned ansible-core versions: the oldest supported and the newest this Python gets (read by the scripts
# that source this file).
# shellcheck disable=SC2034
ANSIBLE_OLDEST=2.15.13
# shellcheck disable=SC2034
ANSIBLE_NEWEST=2.19.14

# What the pinned tools pull in unpinned is held by this constraints file (pip reads the variable).
export PIP_CONSTRAINT="$ROOT/tests/constraints.txt"

step() { printf '\n== %s ==\n' "$*"; }
info() { printf '   %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# A stage that cannot do its work here says why and exits 77: tests/run reports it as skipped, never passed.
skip() { printf '   SKIPPED: %s\n' "$*"; exit 77; }

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
