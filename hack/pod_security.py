#!/usr/bin/env python3
"""Pod Security Standards, "latest", checked offline on manifests.

  pod_security.py LEVEL FILE...   every Pod and workload pod template in FILE... must pass LEVEL
                                  (baseline or restricted), and so must its Namespace label
                                  pod-security.kubernetes.io/enforce when the Namespace is in FILE...
  pod_security.py --self-test     the checker must catch a pod that breaks any control it checks

The controls are those of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(baseline, then restricted on top). checkov (hack/pod-security-scan.sh) checks the same pods as a
second opinion, but it has no check for several of these controls, and its seccomp check accepts
only RuntimeDefault where restricted also allows Localhost: this file is the reference.
"""
import copy
import sys

import yaml

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
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")


def containers(spec):
    for kind in CONTAINER_KINDS:
        for container in spec.get(kind, []):
            yield f"{kind}[{container['name']}]", container, container.get("securityContext") or {}


def baseline(meta, spec):
    found = []
    pod_context = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"spec.{field} is true")
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            found.append(f"volume {volume['name']} is a hostPath")
    for name, value in (meta.get("annotations") or {}).items():
        if name.startswith("container.apparmor.security.beta.kubernetes.io/") and value not in ("runtime/default", "") \
                and not value.startswith("localhost/"):
            found.append(f"annotation {name} is {value}")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']} is not in the safe set")
    contexts = [("pod", pod_context)]
    for where, container, context in containers(spec):
        contexts.append((where, context))
        if context.get("privileged"):
            found.append(f"{where} is privileged")
        added = set((context.get("capabilities") or {}).get("add", []))
        if added - BASELINE_CAPABILITIES:
            found.append(f"{where} adds capabilities {sorted(added - BASELINE_CAPABILITIES)}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{where} has procMount {context['procMount']}")
        for port in container.get("ports", []):
            if port.get("hostPort", 0):
                found.append(f"{where} uses hostPort {port['hostPort']}")
    for where, context in contexts:
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{where} is a Windows HostProcess")
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where} has an Unconfined seccomp profile")
        if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where} has an Unconfined AppArmor profile")
        selinux = context.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"{where} sets SELinux options {selinux}")
    return found


def restricted(meta, spec):
    found = baseline(meta, spec)
    pod_context = spec.get("securityContext") or {}
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']} is of type {sorted(kinds - RESTRICTED_VOLUMES)}")
    if pod_context.get("runAsUser") == 0:
        found.append("pod runAsUser is 0")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    for where, container, context in containers(spec):
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where} does not set allowPrivilegeEscalation: false")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            found.append(f"{where} does not run with runAsNonRoot: true")
        if context.get("runAsUser") == 0:
            found.append(f"{where} runAsUser is 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in SECCOMP_ALLOWED:
            found.append(f"{where} has seccomp profile {seccomp!r}, not RuntimeDefault or Localhost")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{where} does not drop ALL capabilities")
        added = set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"{where} adds capabilities {sorted(added)} (restricted allows only NET_BIND_SERVICE)")
    return found


LEVELS = {"baseline": baseline, "restricted": restricted}


def pods_in(documents):
    """(name, namespace, metadata, spec) of every Pod and workload pod template."""
    for doc in documents:
        kind, meta = doc.get("kind"), doc.get("metadata") or {}
        name = f"{kind}/{meta.get('name')}"
        if kind == "Pod":
            yield name, meta.get("namespace"), meta, doc["spec"]
        elif kind in WORKLOADS:
            template = doc["spec"]["template"]
            yield name, meta.get("namespace"), template.get("metadata") or {}, template["spec"]
        elif kind == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
            yield name, meta.get("namespace"), template.get("metadata") or {}, template["spec"]


def check_files(level, paths):
    failed = False
    for path in paths:
        documents = [d for d in yaml.safe_load_all(open(path)) if d]
        namespaces = {d["metadata"]["name"]: d for d in documents if d.get("kind") == "Namespace"}
        for name, namespace, meta, spec in pods_in(documents):
            problems = LEVELS[level](meta, spec)
            if namespace in namespaces:
                enforced = (namespaces[namespace]["metadata"].get("labels") or {}).get(
                    "pod-security.kubernetes.io/enforce")
                if enforced != level:
                    problems.append(f"its namespace {namespace} enforces {enforced!r}, not {level!r}")
            for problem in problems:
                print(f"FAIL {path}: {name}: {problem}")
            if not problems:
                print(f"ok   {path}: {name}: Pod Security {level}")
            failed |= bool(problems)
    return not failed


GOOD = {
    "metadata": {"name": "p"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                            "seccompProfile": {"type": "Localhost", "localhostProfile": "cuttlefish/cvd.json"}},
        "containers": [{"name": "c", "image": "i", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "v", "emptyDir": {}}],
    },
}
BREAKS = {
    "privileged": lambda s, c: c.update(privileged=True),
    "capability NET_ADMIN": lambda s, c: c["capabilities"].update(add=["NET_ADMIN"]),
    "capability CHOWN (baseline allows it, restricted does not)": lambda s, c: c["capabilities"].update(add=["CHOWN"]),
    "no drop ALL": lambda s, c: c["capabilities"].update(drop=["NET_RAW"]),
    "hostNetwork": lambda s, c: s.update(hostNetwork=True),
    "hostPID": lambda s, c: s.update(hostPID=True),
    "hostIPC": lambda s, c: s.update(hostIPC=True),
    "hostPath": lambda s, c: s["volumes"].append({"name": "h", "hostPath": {"path": "/dev"}}),
    "an nfs volume": lambda s, c: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    "hostPort": lambda s, c: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
    "seccomp Unconfined": lambda s, c: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "no seccomp profile": lambda s, c: s["securityContext"].pop("seccompProfile"),
    "allowPrivilegeEscalation unset": lambda s, c: c.pop("allowPrivilegeEscalation"),
    "runAsNonRoot unset": lambda s, c: s["securityContext"].pop("runAsNonRoot"),
    "runAsNonRoot false in the container": lambda s, c: c.update(runAsNonRoot=False),
    "runAsUser 0": lambda s, c: c.update(runAsUser=0),
    "procMount Unmasked": lambda s, c: c.update(procMount="Unmasked"),
    "an unsafe sysctl": lambda s, c: s["securityContext"].update(sysctls=[{"name": "net.ipv4.ip_forward", "value": "1"}]),
    "SELinux user": lambda s, c: c.update(seLinuxOptions={"user": "system_u"}),
    "AppArmor Unconfined": lambda s, c: c.update(appArmorProfile={"type": "Unconfined"}),
    "Windows HostProcess": lambda s, c: c.update(windowsOptions={"hostProcess": True}),
}


def self_test():
    ok = not restricted(GOOD["metadata"], GOOD["spec"])
    if not ok:
        print(f"FAIL checker: the reference pod fails: {restricted(GOOD['metadata'], GOOD['spec'])}")
    for what, change in BREAKS.items():
        pod = copy.deepcopy(GOOD)
        change(pod["spec"], pod["spec"]["containers"][0]["securityContext"])
        if not restricted(pod["metadata"], pod["spec"]):
            print(f"FAIL checker: a pod with {what} passed restricted")
            ok = False
    print(f"{'ok  ' if ok else 'FAIL'} checker rejects pods with: {', '.join(BREAKS)}")
    return ok


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(0 if self_test() else 1)
    if len(sys.argv) < 3 or sys.argv[1] not in LEVELS:
        sys.exit(__doc__)
    sys.exit(0 if check_files(sys.argv[1], sys.argv[2:]) else 1)
