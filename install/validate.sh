#!/usr/bin/env bash
# Validates the manifests offline:
#   1. `kubectl kustomize install/` renders;
#   2. every rendered object and the example CVD workloads (install/, conf/) validate against the
#      Kubernetes OpenAPI schemas (kubernetes-validate, which ships them; strict: unknown fields fail);
#   3. the example CVD workloads pass Pod Security "restricted" (hack/pod_security.py, which also
#      proves it rejects pods that break each control, and checkov as a second opinion), and ask
#      for what cuttlefish-cni needs.
# Installs kubectl (Debian's kubernetes-client) and kubernetes-validate (PyPI) when missing.
# K8S_VERSION picks the schema version (default 1.32.0).
set -euo pipefail
cd "$(dirname "$0")"
k8s_version=${K8S_VERSION:-1.32.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v kubectl >/dev/null; then
    echo "validate: installing kubectl (Debian package kubernetes-client)" >&2
    apt-get update -qq && apt-get install -y -qq kubernetes-client >&2
fi
if ! python3 -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    echo "validate: installing kubernetes-validate from PyPI" >&2
    python3 -m pip install --quiet kubernetes-validate >&2
fi

echo "== kubectl kustomize install/ ($(kubectl version --client 2>/dev/null | head -1))"
kubectl kustomize . >"$work/rendered.yaml"
grep -E '^(kind|  name|  namespace):' "$work/rendered.yaml"

echo "== kubernetes-validate -k $k8s_version --strict (rendered objects, example pods)"
kubernetes-validate -k "$k8s_version" --strict "$work/rendered.yaml" cvd-pod-example.yaml ../conf/multus-pod-example.yaml

echo "== Pod Security restricted: every example CVD workload"
python3 ../hack/pod_security.py --self-test
python3 ../hack/pod_security.py restricted cvd-pod-example.yaml ../conf/multus-pod-example.yaml
bash ../hack/pod-security-scan.sh cvd-pod-example.yaml ../conf/multus-pod-example.yaml

echo "== what cuttlefish-cni needs of a CVD workload"
PYTHONPATH=../hack python3 - cvd-pod-example.yaml ../conf/multus-pod-example.yaml "$work/rendered.yaml" <<'EOF'
import json
import sys

import yaml

from pod_security import baseline, pods_in

DEVICES = ["cuttlefish.dev/vsock-cid", "cuttlefish.dev/kvm", "cuttlefish.dev/tun", "cuttlefish.dev/vhost-net"]


def requests(meta):
    """The cuttlefish-cni keys a pod asks for: annotations, or Multus cni-args."""
    annotations = meta.get("annotations") or {}
    asked = {k.split("/", 1)[1]: str(v) for k, v in annotations.items() if k.startswith("cuttlefish.dev/")}
    for network in json.loads(annotations.get("v1.multus-cni.io/default-network", "[]")):
        asked.update({k: str(v) for k, v in network.get("cni-args", {}).items()})
    return asked


def problems(meta, spec):
    found = []
    asked = requests(meta)
    if not {"instances", "tap-owner", "tapOwner"} & set(asked):
        found.append("asks cuttlefish-cni for nothing (no cuttlefish.dev/* annotation or cni-args)")
    if "base-instance" in asked or "baseInstance" in asked:
        found.append("names a baseInstance: every CVD pod runs instance 1")
    owner = asked.get("tap-owner", asked.get("tapOwner"))
    if owner != str((spec.get("securityContext") or {}).get("runAsUser")):
        found.append(f"TAP owner {owner} is not the pod's runAsUser: the CVD could not attach")
    for container in spec["containers"]:
        limits = container.get("resources", {}).get("limits", {})
        text = " ".join(container.get("command", []) + container.get("args", []))
        for device in DEVICES:
            if device not in limits:
                found.append(f"containers[{container['name']}] does not request {device}")
        if any(not k.startswith(("cpu", "memory", "cuttlefish.dev/")) for k in limits):
            found.append(f"containers[{container['name']}] requests devices of another plugin: {sorted(limits)}")
        if "--vsock_guest_cid" not in text and "cvd-vsock-cid.sh" not in text:
            found.append(f"containers[{container['name']}] does not pass its vsock CID to launch_cvd")
        if "base_instance_num" in text and "--base_instance_num=1" not in text:
            found.append(f"containers[{container['name']}] runs another instance than 1")
    return found


failed = False
for path in sys.argv[1:3]:
    documents = [d for d in yaml.safe_load_all(open(path)) if d]
    for name, _, meta, spec in pods_in(documents):
        found = problems(meta, spec)
        for problem in found:
            print(f"FAIL {path}: {name}: {problem}")
        if not found:
            print(f"ok   {path}: {name}: asks for instance 1, TAPs owned by its runAsUser, cuttlefish.dev devices, its vsock CID")
        failed |= bool(found)
    services = [d for d in documents if d["kind"] == "Service"]
    workloads = [meta for _, _, meta, _ in pods_in(documents)]
    for service in services:
        selector = service["spec"]["selector"]
        ports = [p["port"] for p in service["spec"]["ports"]]
        selects = all(all((m.get("labels") or {}).get(k) == v for k, v in selector.items()) for m in workloads)
        if 6520 not in ports or not selects:
            print(f"FAIL {path}: Service/{service['metadata']['name']} does not select every CVD pod on 6520")
            failed = True
        else:
            print(f"ok   {path}: Service/{service['metadata']['name']} selects every CVD pod on 6520")

# The installer, for information: it needs hostPath and hostNetwork, which only a privileged
# namespace such as kube-system admits.
for name, namespace, meta, spec in pods_in(d for d in yaml.safe_load_all(open(sys.argv[3])) if d):
    print(f"info {name} (namespace {namespace}, privileged level): " + "; ".join(baseline(meta, spec)))
sys.exit(1 if failed else 0)
EOF
echo "validate: all manifests valid"
