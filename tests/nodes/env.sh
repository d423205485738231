# shellcheck shell=bash
# Environment for every Podman call against the test nodes. Source it: . tests/nodes/env.sh
# It points Podman at this folder's containers.conf, so no host-wide Podman configuration is changed.

NODES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export NODES_DIR
export CONTAINERS_CONF="$NODES_DIR/containers.conf"
# The image name every node uses; the tag is the Debian suite.
export NODE_IMAGE_REPO=localhost/gpunode-node
