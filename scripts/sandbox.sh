# shellcheck shell=bash
# The sandbox of ./setup_kubernetes.sh --sandbox: one local Podman node (systemd, Debian's containerd) and a
# local signed apt repository standing in for NVIDIA's (which cannot be reached here). Sourced, not run: the
# caller sets `root` to the checkout. It uses the tests' node images and repository builder.
#
# sandbox_up SUITE    starts (or reuses) the node, writes an inventory and a user input for it:
#                     exports SANDBOX_INVENTORY, SANDBOX_USER_INPUT, SANDBOX_NODE
# sandbox_down        removes the node

sandbox_up() {
  # shellcheck disable=SC2154  # root: set by the caller
  : "${root:?the caller sets root to the checkout}"
  local suite=$1 repo fingerprint
  . "$root/tests/lib.sh"
  . "$root/tests/nodes/env.sh"
  SANDBOX_NODE=gpunode-sandbox-$suite
  local dir="$CACHE/sandbox-$suite"
  mkdir -p "$dir"

  [ -x "$root/tests/aptrepo/build" ] || die "the sandbox needs tests/aptrepo/build (the local signed repository)"
  echo "   local signed repository (stand-in packages for NVIDIA's)"
  repo=$("$root/tests/aptrepo/build")
  fingerprint=$(cat "$repo/fingerprint")

  local image
  image=$("$root/tests/nodes/image" "$suite")
  if [ "$(podman inspect -f '{{.State.Running}}' "$SANDBOX_NODE" 2>/dev/null)" != true ]; then
    echo "   starting node $SANDBOX_NODE from $image"
    podman rm -f "$SANDBOX_NODE" >/dev/null 2>&1 || true
    podman run -d --name "$SANDBOX_NODE" --hostname "$SANDBOX_NODE" --systemd=always \
      -v "$repo:/srv/aptrepo:ro" "$image" >/dev/null
    local _
    for _ in $(seq 1 30); do
      podman exec "$SANDBOX_NODE" systemctl is-active containerd >/dev/null 2>&1 && break
      sleep 1
    done
  else
    echo "   reusing the running node $SANDBOX_NODE"
  fi

  SANDBOX_INVENTORY=$dir/inventory.ini
  cat >"$SANDBOX_INVENTORY" <<INV
# The sandbox node: a Podman container with systemd and containerd ($suite); Ansible is root there already.
[gpu_nodes]
$SANDBOX_NODE ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3 ansible_become=false
INV
  # The user's settings, pointed at the local repository; the checks report the missing GPU without failing.
  SANDBOX_USER_INPUT=$dir/user_input.yml
  cat >"$SANDBOX_USER_INPUT" <<UI
---
# Written by ./setup_kubernetes.sh --sandbox: a local node without a GPU and a local signed repository.
kubernetes_deployment:
  nvidia_runtime:
    repository:
      url: file:/srv/aptrepo/good/stable/deb/\$(ARCH)
      key_file: $repo/key.asc
      fingerprint: $fingerprint
    validation:
      fail_on: never
      driver_check: skip
  cluster:
    apply: never
    manifest_dir: $dir/rendered
UI
  export SANDBOX_INVENTORY SANDBOX_USER_INPUT SANDBOX_NODE
}

sandbox_down() {
  . "$root/tests/nodes/env.sh"
  podman rm -f "$SANDBOX_NODE" >/dev/null 2>&1 || true
}
