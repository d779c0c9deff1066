#!/usr/bin/env python3
"""Runs seccomp-probe in containers made through containerd's CRI, as a kubelet would.

One pod sandbox on the node's network (no CNI needed), then one container per NAME=PROFILE:
uid 1000, capabilities drop ALL, no_new_privs, and the seccomp profile given as
  runtime-default | unconfined | localhost:/absolute/path/profile.json
(the CRI v1 SecurityProfile that the kubelet sends for a pod's seccompProfile).

For each NAME it writes WORKDIR/NAME.probe (the probe's output lines) and WORKDIR/NAME.seccomp.json
(linux.seccomp of the OCI spec containerd generated, from ContainerStatus verbose info).
Removes everything it created before it exits; exits 1 on any error.

usage: cri-probe.py SOCKET PAUSE_IMAGE IMAGE WORKDIR NAME=PROFILE...
"""
import json
import os
import sys
import time

import grpc

import v1_pb2 as pb
import v1_pb2_grpc as rpc

sock, pause_image, image, work = sys.argv[1:5]
wanted = [arg.split("=", 1) for arg in sys.argv[5:]]
logs = os.path.join(work, "pod-logs")
os.makedirs(logs, exist_ok=True)

runtime = rpc.RuntimeServiceStub(grpc.insecure_channel("unix://" + sock))
version = runtime.Version(pb.VersionRequest(), timeout=10)
print("CRI: %s %s, API %s" % (version.runtime_name, version.runtime_version, version.runtime_api_version))


def security_profile(spec):
    if spec == "runtime-default":
        return pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)
    if spec == "unconfined":
        return pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined)
    if spec.startswith("localhost:"):
        return pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref=spec[len("localhost:"):])
    raise SystemExit("unknown profile " + spec)


node_network = pb.NamespaceOption(network=pb.NODE)
sandbox_config = pb.PodSandboxConfig(
    metadata=pb.PodSandboxMetadata(name="cfsec-pod", uid="cfsec-pod-%d" % os.getpid(), namespace="cfsec"),
    log_directory=logs,
    linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=node_network)),
)
pod = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=sandbox_config), timeout=60).pod_sandbox_id
containers = []
try:
    for name, profile in wanted:
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=image),
            command=["/bin/seccomp-probe"],
            log_path=name + ".log",
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                capabilities=pb.Capability(drop_capabilities=["ALL"]),
                run_as_user=pb.Int64Value(value=1000),
                no_new_privs=True,
                namespace_options=node_network,
                seccomp=security_profile(profile),
            )),
        )
        cid = runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=config, sandbox_config=sandbox_config), timeout=60).container_id
        containers.append(cid)
        status = runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True), timeout=10)
        spec = json.loads(status.info["info"])["runtimeSpec"]
        with open(os.path.join(work, name + ".seccomp.json"), "w") as f:
            json.dump(spec["linux"].get("seccomp"), f, indent=2)
        runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        deadline = time.time() + 60
        while True:
            state = runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), timeout=10).status
            if state.state == pb.CONTAINER_EXITED:
                break
            if time.time() > deadline:
                raise SystemExit("%s: still running after 60 s" % name)
            time.sleep(0.1)
        # CRI log lines: "<time> <stream> <P|F> <text>"
        with open(os.path.join(logs, name + ".log")) as f:
            lines = [line.rstrip("\n").split(" ", 3)[3] for line in f if line.count(" ") >= 3]
        with open(os.path.join(work, name + ".probe"), "w") as f:
            f.write("".join(line + "\n" for line in lines))
        print("CRI container %s (%s): exit code %d, %d probe lines" % (name, profile, state.exit_code, len(lines)))
finally:
    for cid in containers:
        runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
    runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
