#!/usr/bin/python3
"""A kubelet stand-in for cuttlefish-cni-agent's device plugin: the real Device Plugin API v1beta1
over Unix sockets, with stubs that hack/device-plugin-test.sh generates from a packaged api.proto.

It serves Registration on kubelet.sock in a device-plugins directory of its own, starts the agent
against it and a dev root of device nodes it makes, and checks what a kubelet relies on.

    kubelet_stand_in.py test AGENT WORKDIR      every check; prints ok/FAIL lines and a summary
    kubelet_stand_in.py bench-kubelet DIR N     for hack/bench.sh: times N Allocate calls
    kubelet_stand_in.py allocate DIR N...       for hack/e2e.sh: as the kubelet admitting one pod
                                                per N (its vsock CIDs, one each of the shared
                                                devices), prints each pod's envs and devices as
                                                one JSON line
Needs root (mknod). Every process it starts is stopped by PID.
"""
import json
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures

import grpc
import v1beta1_pb2 as pb
import v1beta1_pb2_grpc as pb_grpc

RESOURCES = {
    "cuttlefish.dev/vsock-cid": "vhost-vsock",
    "cuttlefish.dev/kvm": "kvm",
    "cuttlefish.dev/tun": "net/tun",
    "cuttlefish.dev/vhost-net": "vhost-net",
}
NODES = {"vhost-vsock": (10, 241), "kvm": (10, 232), "net/tun": (10, 200), "vhost-net": (10, 238)}
CID_RANGE = (10, 17)
CID_RANGE_OF_E2E = (10, 41)  # hack/e2e.sh starts its agent with --cid-range 10-41
SHARED_CAPACITY = 4
DEADLINE = 5.0  # what the issue allows for health updates and re-registration


def field(message, number):
    """The name of a field by its number: packaged copies of api.proto spell some names
    differently (devicesIDs, devices_ids); the numbers are the API."""
    return message.DESCRIPTOR.fields_by_number[number].name


def allocate_request(*containers):
    request = pb.AllocateRequest()
    for ids in containers:
        container = request.container_requests.add()
        getattr(container, field(container, 1)).extend(ids)
    return request


def preferred_request(available, must, size):
    request = pb.PreferredAllocationRequest()
    container = request.container_requests.add()
    getattr(container, field(container, 1)).extend(available)
    getattr(container, field(container, 2)).extend(must)
    container.allocation_size = size
    return request


def ids(response):
    return [getattr(d, field(d, 1)) for d in response.devices]


class Kubelet(pb_grpc.RegistrationServicer):
    """Registration on <dir>/kubelet.sock; every Register request lands in a queue."""

    def __init__(self, directory):
        self.dir = directory
        self.registered = queue.Queue()
        self.server = None

    def Register(self, request, context):
        self.registered.put((time.monotonic(), request))
        return pb.Empty()

    def start(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port("unix:" + os.path.join(self.dir, "kubelet.sock"))
        self.server.start()
        return time.monotonic()

    def stop(self):
        """As a stopping kubelet, and a starting one: every socket in the directory goes."""
        if self.server:
            self.server.stop(0).wait()
            self.server = None
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))

    def registrations(self, count, timeout):
        """The next `count` Register requests, by resource name, with the time each came."""
        found, deadline = {}, time.monotonic() + timeout
        while len(found) < count:
            try:
                when, request = self.registered.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            found[request.resource_name] = (when, request)
        return found

    def plugin(self, endpoint):
        channel = grpc.insecure_channel("unix:" + os.path.join(self.dir, endpoint))
        return pb_grpc.DevicePluginStub(channel)


class Watch:
    """A ListAndWatch stream read on a thread of its own."""

    def __init__(self, stub):
        self.responses = queue.Queue()
        self.call = stub.ListAndWatch(pb.Empty())
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as e:
            self.responses.put(e)

    def next(self, timeout=DEADLINE):
        try:
            item = self.responses.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            raise item
        return item

    def cancel(self):
        self.call.cancel()


class Checks:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def check(self, what, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {what}{': ' + str(detail) if detail else ''}", flush=True)
        return condition


class Node:
    """The dev root, the device-plugins directory and an agent started on them."""

    def __init__(self, agent, work, name, extra_args=()):
        self.root = os.path.join(work, name)
        shutil.rmtree(self.root, ignore_errors=True)
        self.dev = os.path.join(self.root, "dev")
        self.plugins = os.path.join(self.root, "device-plugins")
        os.makedirs(os.path.join(self.dev, "net"))
        os.makedirs(self.plugins)
        for node in NODES:
            self.make(node)
        self.kubelet = Kubelet(self.plugins)
        self.log = os.path.join(self.root, "agent.log")
        self.agent_args = [
            agent,
            "--socket", os.path.join(self.root, "agent.sock"),
            "--state-dir", os.path.join(self.root, "state"),
            "--device-plugin-dir", self.plugins,
            "--dev-root", self.dev,
            "--cid-range", f"{CID_RANGE[0]}-{CID_RANGE[1]}",
            "--shared-capacity", str(SHARED_CAPACITY),
            "--metrics-address", "127.0.0.1:0",
            *extra_args,
        ]
        self.agent = None

    def make(self, node):
        major, minor = NODES[node]
        os.mknod(os.path.join(self.dev, node), 0o600 | stat.S_IFCHR, os.makedev(major, minor))

    def start_agent(self):
        with open(self.log, "ab") as log:
            self.agent = subprocess.Popen(self.agent_args, stdout=subprocess.DEVNULL, stderr=log)

    def metrics(self):
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = re.search(r"metrics on (http://\S+)", open(self.log).read())
            if found:
                return urllib.request.urlopen(found.group(1), timeout=5).read().decode()
            time.sleep(0.05)
        raise RuntimeError("the agent never served metrics")

    def stop(self):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGKILL)
            self.agent.wait()
        self.kubelet.stop()


def register_all(c, node, what):
    started = node.kubelet.start()
    found = node.kubelet.registrations(len(RESOURCES), 15)
    c.check(f"{what}: every resource registers", set(found) == set(RESOURCES), sorted(found))
    return started, {name: request for name, (_, request) in found.items()}


def check_registrations(c, node, registered):
    for name, request in registered.items():
        endpoint = request.endpoint
        c.check(
            f"Register {name}: version v1beta1, endpoint a socket file in the directory",
            request.version == "v1beta1" and "/" not in endpoint
            and stat.S_ISSOCK(os.stat(os.path.join(node.plugins, endpoint)).st_mode),
            request,
        )
        preferred = name == "cuttlefish.dev/vsock-cid"
        c.check(
            f"Register {name}: options (preferred allocation {preferred}, no PreStartContainer)",
            request.HasField("options")
            and request.options.get_preferred_allocation_available == preferred
            and not request.options.pre_start_required,
            request.options,
        )
    endpoints = [r.endpoint for r in registered.values()]
    c.check("each resource has a socket of its own", len(set(endpoints)) == len(endpoints), endpoints)


def check_lists(c, node, registered):
    cids = [str(cid) for cid in range(CID_RANGE[0], CID_RANGE[1] + 1)]
    for name, request in registered.items():
        stub = node.kubelet.plugin(request.endpoint)
        options = stub.GetDevicePluginOptions(pb.Empty(), timeout=5)
        c.check(f"GetDevicePluginOptions {name} matches Register", options == request.options, options)
        watch = Watch(stub)
        first = watch.next()
        watch.cancel()
        prefix = name.split("/")[1]
        wanted = cids if prefix == "vsock-cid" else [f"{prefix}-{i}" for i in range(SHARED_CAPACITY)]
        c.check(f"ListAndWatch {name}: {wanted[0]}..{wanted[-1]}", first is not None and ids(first) == wanted,
                first and ids(first))
        c.check(f"ListAndWatch {name}: all Healthy",
                first is not None and all(d.health == "Healthy" for d in first.devices))


def check_allocation(c, node, registered):
    vsock = node.kubelet.plugin(registered["cuttlefish.dev/vsock-cid"].endpoint)
    response = vsock.GetPreferredAllocation(preferred_request(["10", "12", "13", "14", "16", "17"], [], 3), timeout=5)
    got = list(getattr(response.container_responses[0], field(response.container_responses[0], 1)))
    c.check("GetPreferredAllocation: the lowest contiguous block", got == ["12", "13", "14"], got)
    response = vsock.GetPreferredAllocation(preferred_request(["10", "11", "13", "16", "17"], ["17"], 2), timeout=5)
    got = list(getattr(response.container_responses[0], field(response.container_responses[0], 1)))
    c.check("GetPreferredAllocation: a block holding the must-include CID", got == ["16", "17"], got)

    response = vsock.Allocate(allocate_request(["13", "12", "15"], ["17"]), timeout=5)
    first, second = response.container_responses
    c.check("Allocate vsock-cid: VSOCK_CID is the lowest, VSOCK_CIDS all of them ascending",
            dict(first.envs) == {"VSOCK_CID": "12", "VSOCK_CIDS": "12,13,15"}, dict(first.envs))
    c.check("Allocate vsock-cid: per container", dict(second.envs) == {"VSOCK_CID": "17", "VSOCK_CIDS": "17"},
            dict(second.envs))
    spec = [(d.container_path, d.host_path, d.permissions) for d in first.devices]
    c.check("Allocate vsock-cid: /dev/vhost-vsock from the dev root, rw",
            spec == [("/dev/vhost-vsock", os.path.join(node.dev, "vhost-vsock"), "rw")], spec)
    for bad in (["18"], ["9"], ["12", "12"], ["kvm-0"], ["1x"]):
        try:
            vsock.Allocate(allocate_request(bad), timeout=5)
            c.check(f"Allocate vsock-cid {bad} is refused", False, "accepted")
        except grpc.RpcError as e:
            c.check(f"Allocate vsock-cid {bad} is refused with INVALID_ARGUMENT naming the ID",
                    e.code() == grpc.StatusCode.INVALID_ARGUMENT and bad[-1] in e.details(), (e.code(), e.details()))
    for name, node_path in RESOURCES.items():
        if name == "cuttlefish.dev/vsock-cid":
            continue
        prefix = name.split("/")[1]
        stub = node.kubelet.plugin(registered[name].endpoint)
        response = stub.Allocate(allocate_request([f"{prefix}-{SHARED_CAPACITY - 1}"]), timeout=5)
        spec = [(d.container_path, d.host_path, d.permissions) for d in response.container_responses[0].devices]
        c.check(f"Allocate {name}: /dev/{node_path} from the dev root, rw",
                spec == [(f"/dev/{node_path}", os.path.join(node.dev, node_path), "rw")], spec)
        try:
            stub.Allocate(allocate_request([f"{prefix}-{SHARED_CAPACITY}"]), timeout=5)
            c.check(f"Allocate {name} beyond the capacity is refused", False, "accepted")
        except grpc.RpcError as e:
            c.check(f"Allocate {name} beyond the capacity is refused",
                    e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code())


def check_health(c, node, registered):
    for name, node_path in (("cuttlefish.dev/vsock-cid", "vhost-vsock"), ("cuttlefish.dev/tun", "net/tun")):
        watch = Watch(node.kubelet.plugin(registered[name].endpoint))
        watch.next()
        for action, health in (("removed", "Unhealthy"), ("recreated", "Healthy")):
            t0 = time.monotonic()
            if action == "removed":
                os.unlink(os.path.join(node.dev, node_path))
            else:
                node.make(node_path)
            update = watch.next(timeout=DEADLINE + 1)
            took = time.monotonic() - t0
            c.check(f"{name}: {node_path} {action} -> every device {health} within {DEADLINE:.0f} s ({took:.2f} s)",
                    update is not None and took <= DEADLINE and all(d.health == health for d in update.devices)
                    and len(update.devices) > 0, update and [d.health for d in update.devices][:3])
        watch.cancel()


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def dhcp_answers(agent, node):
    status = subprocess.run([agent, "status", "--socket", os.path.join(node.root, "agent.sock")],
                            capture_output=True, timeout=10)
    return status.returncode == 0 and b'"pods_served"' in status.stdout


def test(agent, work):
    c = Checks()
    node = Node(agent, work, "node")
    try:
        node.start_agent()
        _, registered = register_all(c, node, "first kubelet")
        check_registrations(c, node, registered)
        check_lists(c, node, registered)
        check_allocation(c, node, registered)
        check_health(c, node, registered)

        # Restart: the sockets go, kubelet.sock comes back; the agent registers within 5 s.
        node.kubelet.stop()
        time.sleep(1.5)  # a kubelet takes a moment to come back; the agent must notice the new socket
        t0 = node.kubelet.start()
        found = node.kubelet.registrations(len(RESOURCES), 15)
        latest = max((when for when, _ in found.values()), default=float("inf"))
        c.check(f"kubelet restart: every resource registers again within {DEADLINE:.0f} s "
                f"({latest - t0:.2f} s)", set(found) == set(RESOURCES) and latest - t0 <= DEADLINE, sorted(found))
        registered = {name: request for name, (_, request) in found.items()}
        if "cuttlefish.dev/vsock-cid" in registered:
            watch = Watch(node.kubelet.plugin(registered["cuttlefish.dev/vsock-cid"].endpoint))
            first = watch.next()
            watch.cancel()
            c.check("after the restart, the new socket serves ListAndWatch", first is not None and len(first.devices) == 8)

        # Only kubelet.sock is recreated (the plugin sockets stay): that is a restart too.
        node.kubelet.server.stop(0).wait()
        if os.path.exists(os.path.join(node.plugins, "kubelet.sock")):
            os.unlink(os.path.join(node.plugins, "kubelet.sock"))
        t0 = node.kubelet.start()
        found = node.kubelet.registrations(len(RESOURCES), 15)
        latest = max((when for when, _ in found.values()), default=float("inf"))
        c.check(f"kubelet.sock recreated alone: every resource registers again within {DEADLINE:.0f} s "
                f"({latest - t0:.2f} s)", set(found) == set(RESOURCES) and latest - t0 <= DEADLINE, sorted(found))

        c.check("DHCP keeps answering while the device plugin re-registers", dhcp_answers(agent, node))
        text = node.metrics()
        for series, value in (
            ('cuttlefish_kubelet_registrations_total{resource="cuttlefish.dev/vsock-cid"}', 3),
            ('cuttlefish_device_plugin_allocate_calls_total{resource="cuttlefish.dev/vsock-cid"}', 6),
            ('cuttlefish_device_plugin_allocate_failures_total{resource="cuttlefish.dev/vsock-cid"}', 5),
            ("cuttlefish_vsock_cids_advertised", 8),
            ("cuttlefish_vsock_cids_healthy", 8),
        ):
            c.check(f"metrics: {series} = {value}", metric(text, series) == value, metric(text, series))
        c.check("the agent is still running", node.agent.poll() is None)
    finally:
        node.stop()

    # The reverse: DHCP cannot start (its socket's directory is a file); the device plugin serves.
    blocked = os.path.join(work, "not-a-directory")
    open(blocked, "w").close()
    node = Node(agent, work, "node-without-dhcp", ["--socket", os.path.join(blocked, "agent.sock")])
    try:
        node.start_agent()
        _, registered = register_all(c, node, "DHCP failing")
        if "cuttlefish.dev/vsock-cid" in registered:
            stub = node.kubelet.plugin(registered["cuttlefish.dev/vsock-cid"].endpoint)
            response = stub.Allocate(allocate_request(["11"]), timeout=5)
            c.check("DHCP failing: Allocate still works",
                    dict(response.container_responses[0].envs).get("VSOCK_CIDS") == "11")
        log = open(node.log).read()
        c.check("DHCP failing: its error is logged and retried, the agent runs on",
                node.agent.poll() is None and log.count("DHCP: listening on") >= 1, log[-500:])
    finally:
        node.stop()

    print(f"{c.passed} passed, {c.failed} failed")
    if c.failed:
        for name in ("node", "node-without-dhcp"):
            log = os.path.join(work, name, "agent.log")
            if os.path.exists(log):
                print(f"--- {log}\n" + open(log).read()[-4000:])
    return 1 if c.failed else 0


def bench_kubelet(directory, calls):
    """For hack/bench.sh: a kubelet on <directory>/kubelet.sock that times `calls` Allocate calls
    once the vsock CIDs register, prints the figures, then serves on until SIGTERM."""
    kubelet = Kubelet(directory)
    kubelet.start()
    found = kubelet.registrations(len(RESOURCES), 30)
    stub = kubelet.plugin(found["cuttlefish.dev/vsock-cid"][1].endpoint)
    stub.Allocate(allocate_request([str(CID_RANGE[0])]), timeout=5)  # connection set up untimed
    samples = []
    for i in range(calls):
        request = allocate_request([str(CID_RANGE[0] + i % 8)])
        t0 = time.perf_counter()
        stub.Allocate(request, timeout=5)
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    def pick(q):
        return samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"Allocate of one CID ({calls} calls, Python gRPC client over the Unix socket): median "
          f"{pick(0.5):.0f} us, p90 {pick(0.9):.0f} us, p99 {pick(0.99):.0f} us, max {samples[-1]:.0f} us",
          flush=True)
    signal.sigwait([signal.SIGTERM])
    kubelet.server.stop(0).wait()


def allocate(directory, pods):
    """What the kubelet does for each pod at admission: the preferred block of vsock CIDs, then
    Allocate for every cuttlefish.dev resource. One JSON line a pod: {"envs", "devices"}."""
    kubelet = Kubelet(directory)
    kubelet.start()
    found = kubelet.registrations(len(RESOURCES), 30)
    if set(found) != set(RESOURCES):
        sys.exit(f"registered: {sorted(found)}, expected {sorted(RESOURCES)}")
    stubs = {name: kubelet.plugin(request.endpoint) for name, (_, request) in found.items()}
    free = [str(cid) for cid in range(CID_RANGE_OF_E2E[0], CID_RANGE_OF_E2E[1] + 1)]
    for index, count in enumerate(pods):
        preferred = stubs["cuttlefish.dev/vsock-cid"].GetPreferredAllocation(
            preferred_request(free, [], count), timeout=5)
        cids = list(getattr(preferred.container_responses[0], field(preferred.container_responses[0], 1)))
        free = [cid for cid in free if cid not in cids]
        requests = {"cuttlefish.dev/vsock-cid": cids}
        for name in RESOURCES:
            requests.setdefault(name, [f"{name.split('/')[1]}-{index}"])
        envs, devices = {}, []
        for name, ids_ in requests.items():
            response = stubs[name].Allocate(allocate_request(ids_), timeout=5).container_responses[0]
            envs.update(getattr(response, field(response, 1)))
            for device in getattr(response, field(response, 3)):
                devices.append({"container": getattr(device, field(device, 1)),
                                "host": getattr(device, field(device, 2)),
                                "permissions": getattr(device, field(device, 3))})
        print(json.dumps({"envs": envs, "devices": devices}), flush=True)
    kubelet.server.stop(0).wait()


if __name__ == "__main__":
    if sys.argv[1] == "test":
        sys.exit(test(sys.argv[2], sys.argv[3]))
    if sys.argv[1] == "allocate":
        allocate(sys.argv[2], [int(n) for n in sys.argv[3:]])
        sys.exit(0)
    if sys.argv[1] == "bench-kubelet":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
        bench_kubelet(sys.argv[2], int(sys.argv[3]))
