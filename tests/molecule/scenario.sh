# shellcheck shell=bash
# What tests/molecule/molecule and tests/molecule/run both need to know of a scenario before Molecule reads
# it: the suite variables the `default` scenario's molecule.yml names, and the values of its platforms.
# Source it after tests/lib.sh.

# suite_env SUITE: exports GPUNODE_SUITE and GPUNODE_SUITE_SUBNET (the /24 of the suite's nodes: 10.123.21 for
# the first suite of SUITES, 10.123.22 for the second, and so on; the other scenarios keep 10.123.1 to .20).
suite_env() {
  local i
  for i in "${!SUITES[@]}"; do
    if [ "${SUITES[$i]}" = "$1" ]; then
      export GPUNODE_SUITE=$1 GPUNODE_SUITE_SUBNET="10.123.$((21 + i))"
      return 0
    fi
  done
  die "unknown Debian suite '$1' (the test nodes run: ${SUITES[*]})"
}

# scenario_values SCENARIO KEY: each value of KEY (name, network, ip) in the scenario's platforms, one a line,
# with the suite variables filled in as Molecule fills them.
scenario_values() {
  local v
  awk -v key="$2:" '$1 == key || ($1 == "-" && $2 == key) {print $NF}' "$ROOT/molecule/$1/molecule.yml" |
    while read -r v; do
      v=${v//'${GPUNODE_SUITE}'/${GPUNODE_SUITE:-}}
      printf '%s\n' "${v//'${GPUNODE_SUITE_SUBNET}'/${GPUNODE_SUITE_SUBNET:-}}"
    done
}
