#!/usr/bin/env bash
# Validates the manifests offline:
#   1. `kubectl kustomize install/` renders;
#   2. every rendered object and the example pod validate against the Kubernetes OpenAPI schemas
#      (kubernetes-validate, which ships them; strict: unknown fields fail);
#   3. the example pod passes the Pod Security "baseline" rules, checked one by one, and the
#      checker itself rejects pods that break them.
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

echo "== kubernetes-validate -k $k8s_version --strict (rendered objects, example pod)"
kubernetes-validate -k "$k8s_version" --strict "$work/rendered.yaml" cvd-pod-example.yaml

echo "== Pod Security baseline: cvd-pod-example.yaml"
python3 - cvd-pod-example.yaml "$work/rendered.yaml" <<'EOF'
import copy
import sys
import yaml

# https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
DEVICES = ["devices.kubevirt.io/kvm", "devices.kubevirt.io/tun",
           "devices.kubevirt.io/vhost-net", "devices.kubevirt.io/vhost-vsock"]


def baseline_violations(pod):
    meta, spec = pod.get("metadata", {}), pod["spec"]
    found = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"spec.{field} is true")
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            found.append(f"volume {volume['name']} is a hostPath")
    for name, value in meta.get("annotations", {}).items():
        if name.startswith("container.apparmor.security.beta.kubernetes.io/") and value == "unconfined":
            found.append(f"annotation {name} is unconfined")
    for sysctl in spec.get("securityContext", {}).get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']} is not in the safe set")
    contexts = [("pod", spec.get("securityContext", {}))]
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind, []):
            where = f"{kind}[{container['name']}]"
            context = container.get("securityContext", {})
            contexts.append((where, context))
            if context.get("privileged"):
                found.append(f"{where} is privileged")
            added = set(context.get("capabilities", {}).get("add", []))
            if added - BASELINE_CAPABILITIES:
                found.append(f"{where} adds capabilities {sorted(added - BASELINE_CAPABILITIES)}")
            if context.get("procMount", "Default") != "Default":
                found.append(f"{where} has procMount {context['procMount']}")
            for port in container.get("ports", []):
                if port.get("hostPort", 0):
                    found.append(f"{where} uses hostPort {port['hostPort']}")
    for where, context in contexts:
        if context.get("windowsOptions", {}).get("hostProcess"):
            found.append(f"{where} is a Windows HostProcess")
        if context.get("seccompProfile", {}).get("type") == "Unconfined":
            found.append(f"{where} has an Unconfined seccomp profile")
        if context.get("appArmorProfile", {}).get("type") == "Unconfined":
            found.append(f"{where} has an Unconfined AppArmor profile")
        selinux = context.get("seLinuxOptions", {})
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"{where} sets SELinux options {selinux}")
    return found


def project_violations(pod):
    found = []
    annotations = pod["metadata"].get("annotations", {})
    if annotations.get("cuttlefish.dev/instances") != "1":
        found.append("annotation cuttlefish.dev/instances is not '1'")
    if annotations.get("cuttlefish.dev/base-instance") == "auto":
        found.append("annotation cuttlefish.dev/base-instance is 'auto', removed in 0.2.0")
    for container in pod["spec"]["containers"]:
        limits = container.get("resources", {}).get("limits", {})
        for device in DEVICES:
            if limits.get(device) != "1":
                found.append(f"containers[{container['name']}] does not request {device}")
    return found


example = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
pods = [d for d in example if d["kind"] == "Pod"]
namespaces = {d["metadata"]["name"]: d for d in example if d["kind"] == "Namespace"}
failed = False
for pod in pods:
    name = pod["metadata"]["name"]
    problems = baseline_violations(pod) + project_violations(pod)
    namespace = namespaces.get(pod["metadata"].get("namespace"), {})
    level = namespace.get("metadata", {}).get("labels", {}).get("pod-security.kubernetes.io/enforce")
    if level != "baseline":
        problems.append(f"its namespace does not enforce baseline (enforce={level!r})")
    for problem in problems:
        print(f"FAIL pod {name}: {problem}")
    failed |= bool(problems)
    if not problems:
        print(f"ok   pod {name}: baseline (privileged, capabilities, host namespaces, hostPath, "
              f"hostPorts, seccomp, AppArmor, SELinux, procMount, sysctls), annotations, devices")

# The checker must catch each rule it claims to check.
def broken(change):
    pod = copy.deepcopy(pods[0])
    change(pod, pod["spec"]["containers"][0])
    return pod

mutations = {
    "privileged": lambda p, c: c["securityContext"].update(privileged=True),
    "NET_ADMIN": lambda p, c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    "hostNetwork": lambda p, c: p["spec"].update(hostNetwork=True),
    "hostPath": lambda p, c: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/dev"}}),
    "hostPort": lambda p, c: c.update(ports=[{"containerPort": 80, "hostPort": 80}]),
    "seccomp": lambda p, c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}),
}
for what, change in mutations.items():
    if not baseline_violations(broken(change)):
        print(f"FAIL checker: a pod with {what} passed")
        failed = True
print(f"ok   checker rejects pods with: {', '.join(mutations)}")

# The installer, for information: it needs hostPath and hostNetwork, which only a privileged
# namespace such as kube-system admits.
for doc in yaml.safe_load_all(open(sys.argv[2])):
    if doc and doc["kind"] == "DaemonSet":
        template = {"metadata": doc["spec"]["template"]["metadata"], "spec": doc["spec"]["template"]["spec"]}
        print(f"info daemonset {doc['metadata']['name']} (namespace {doc['metadata']['namespace']}, privileged level): "
              + "; ".join(baseline_violations(template)))
sys.exit(1 if failed else 0)
EOF
echo "validate: all manifests valid"
