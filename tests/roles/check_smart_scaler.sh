#!/usr/bin/env bash
# A Smart Scaler user_input.yml through ./setup_kubernetes.sh as a user runs it (--check, cluster objects only, no
# kubeconfig here): the run passes, prints exactly one line naming the other tools' sections it ignored, never
# evaluates their templates, and renders this project's objects from the file's own nvidia_runtime block. Then a
# missing file is refused by name.
# usage: tests/roles/check_smart_scaler.sh VENV WORKDIR
set -uo pipefail
venv=${1:?usage: check_smart_scaler.sh VENV WORKDIR}
work=${2:?usage: check_smart_scaler.sh VENV WORKDIR}/smart-scaler
cd "$(dirname "$0")/../.." || exit 1
mkdir -p "$work"
# The fixture with the rendered objects sent to $work (a YAML round trip: the templates stay text).
python3 - tests/roles/inputs/smart_scaler.yml "$work/user_input.yml" "$work/rendered" <<'PY'
import sys, yaml
data = yaml.safe_load(open(sys.argv[1]))
data["kubernetes_deployment"]["cluster"] = {"manifest_dir": sys.argv[3]}
yaml.safe_dump(data, open(sys.argv[2], "w"), sort_keys=False)
PY
GPUNODE_VENV=$venv ./setup_kubernetes.sh --check --tags cluster --inventory tests/roles/inventory.ini \
  --user-input "$work/user_input.yml" >"$work/run.out" 2>&1 || { cat "$work/run.out"; exit 1; }
cat "$work/run.out"
lines=$(grep -c "section(s) of other tools:" "$work/run.out")
[ "$lines" -eq 1 ] || { echo "expected one line naming the ignored sections, found $lines"; exit 1; }
named='"msg": "user_input.yml: ignored 17 section(s) of other tools: k3s_deployment, microk8s_deployment, '
named+='.*helm_charts, kubernetes_deployment.enabled, .*kubernetes_deployment.firewall"'
grep -q "$named" "$work/run.out" || { echo "the ignored line does not name the sections"; exit 1; }
# The file's nvidia_runtime block was read: the RuntimeClass is rendered with its defaults.
grep -q "^handler: nvidia$" "$work/rendered/runtimeclass.yaml" || { echo "no RuntimeClass rendered"; exit 1; }
echo "one ignored line, the run passed, the RuntimeClass rendered"
# A file that is not there is named, with what to do, before anything else.
if "$venv/bin/ansible-playbook" playbooks/validate_input.yml -e "user_input_file=$work/missing.yml" \
    >"$work/missing.out" 2>&1; then
  echo "a missing file was accepted"; exit 1
fi
grep -q "$work/missing.yml: no such file. Start from the project's user_input.yml" "$work/missing.out" ||
  { cat "$work/missing.out"; exit 1; }
echo "a missing file: named"
