//! DHCP on the pod bridges from the node agent, checked with a real DHCP client (busybox
//! udhcpc) in guest namespaces joined to `cvd-ebr` and `cvd-wbr`: the pod's containers need no
//! capability for any of it.

use crate::support::{
    agent_args, agent_status, plugin_in_parallel, sh, udhcpc, Background, Netns, Pod, AGENT, GUEST, PLUGIN,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A cuttlefish-cni-agent we started, with its socket and state under a directory of ours.
struct Agent {
    process: Option<Background>,
    dir: PathBuf,
}

impl Agent {
    fn start(dir: PathBuf) -> Agent {
        std::fs::create_dir_all(&dir).unwrap();
        let mut agent = Agent { process: None, dir };
        agent.restart();
        agent
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// (Re)starts the agent process (ours, killed by PID) on the same state directory. Its
    /// stderr, where its log lines and any panic message go, is appended to `agent.log`.
    fn restart(&mut self) {
        self.process = None;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .unwrap();
        let child = Command::new(AGENT)
            .args(agent_args(&self.dir))
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(Background(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status().is_none() {
            assert!(Instant::now() < deadline, "the agent did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails the test if any thread of the agent panicked: the panic message is in its log.
    fn assert_no_panic(&self) {
        let log = std::fs::read_to_string(self.dir.join("agent.log")).unwrap();
        assert!(!log.contains("panicked"), "the agent panicked:\n{log}");
    }

    /// Fails the test if the agent process has exited.
    fn assert_running(&mut self) {
        let process = self.process.as_mut().expect("started");
        let exited = process.0.try_wait().unwrap();
        let log = std::fs::read_to_string(self.dir.join("agent.log")).unwrap();
        assert!(exited.is_none(), "the agent exited ({exited:?}):\n{log}");
    }

    /// The agent's peak resident set (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let pid = self.process.as_ref().expect("started").0.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"))
    }

    fn status(&self) -> Option<Value> {
        agent_status(&self.socket())
    }
}

fn dhcp_conf(pod: &Pod, agent: &Agent) -> Value {
    pod.conf(json!({"dhcp": true, "agentSocket": agent.socket(), "dnsServers": ["10.96.0.10", "10.96.0.11"]}))
}

/// A udhcpc hook that records each event and configures the address like a guest would.
fn hook(pod: &Pod, tag: &str) -> (PathBuf, PathBuf) {
    let script = pod.dir.join(format!("udhcpc-{tag}.sh"));
    let events = pod.dir.join(format!("udhcpc-{tag}.log"));
    let body = format!(
        "#!/bin/sh\necho \"$1 ip=$ip mask=$subnet router=$router dns=$dns lease=$lease\" >> {}\n\
         case $1 in bound|renew) ip addr replace $ip/24 dev $interface ;; deconfig) ip addr flush dev $interface ;; esac\n",
        events.display()
    );
    std::fs::write(&script, body).unwrap();
    sh(&["chmod", "0755", script.to_str().unwrap()]);
    (script, events)
}

fn wait_for_event(events: &PathBuf, kind: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = std::fs::read_to_string(events).unwrap_or_default();
        let matching: Vec<&str> = log.lines().filter(|l| l.starts_with(kind)).collect();
        if matching.len() >= count {
            return matching[count - 1].to_string();
        }
        assert!(Instant::now() < deadline, "no {kind} event #{count}; log: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// udhcpc in `guest` for one lease, in the foreground; returns the `bound` line.
fn one_lease(pod: &Pod, guest: &Netns, tag: &str) -> String {
    let (script, events) = hook(pod, tag);
    let args = udhcpc(&script, true);
    guest.exec(&args.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for_event(&events, "bound", 1)
}

/// udhcpc in `guest` for one lease, whatever comes of it; returns its event log.
fn try_lease(pod: &Pod, guest: &Netns, tag: &str) -> String {
    let (script, events) = hook(pod, tag);
    let args = udhcpc(&script, true);
    guest.exec_status(&args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::read_to_string(&events).unwrap_or_default()
}

/// Whether a `try_lease` log shows a lease on `cvd-ebr`.
fn leased(events: &str) -> bool {
    events
        .lines()
        .any(|l| l.starts_with("bound ip=192.168.98.") && l.contains(" router=192.168.98.1 "))
}

/// A guest on `cvd-ebr` with a static address, to send from ordinary UDP sockets.
fn addressed_guest(pod: &Pod, tag: &str, address: &str) -> Netns {
    let guest = pod.guest_on("cvd-ebr", tag);
    let ns = guest.0.as_str();
    sh(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        &format!("{address}/24"),
        "dev",
        "eth0",
    ]);
    sh(&["ip", "-n", ns, "route", "add", "default", "via", "192.168.98.1"]);
    guest
}

/// udhcpc in `guest` in the background; returns the process and its event log.
fn running_client(pod: &Pod, guest: &Netns, tag: &str) -> (Background, PathBuf) {
    let (script, events) = hook(pod, tag);
    let args = udhcpc(&script, false);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Background::start(guest, &args), events)
}

fn signal(process: &Background, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(process.0.id() as i32), signal).unwrap();
}

#[test]
fn guests_get_leases_on_both_bridges_that_renew_release_and_survive_an_agent_restart() {
    let pod = Pod::new("1.1.0");
    let mut agent = Agent::start(pod.dir.join("agent"));
    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    pod.plugin("CHECK", &dhcp_conf(&pod, &agent)).assert_ok();

    let ebr = pod.guest_on("cvd-ebr", "e");
    let bound = one_lease(&pod, &ebr, "e1");
    assert!(
        bound.contains("ip=192.168.98.2 mask=255.255.255.0 router=192.168.98.1"),
        "{bound}"
    );
    assert!(bound.contains("dns=10.96.0.10 10.96.0.11 lease=3600"), "{bound}");
    let wbr = pod.guest_on("cvd-wbr", "w");
    assert!(
        one_lease(&pod, &wbr, "w1").contains("ip=192.168.96.2 "),
        "the Wi-Fi bridge has its own pool"
    );

    // A long-running client: renew (SIGUSR1) and release (SIGUSR2), before and after a restart.
    let (client, events) = running_client(&pod, &ebr, "e2");
    let bound = wait_for_event(&events, "bound", 1);
    signal(&client, nix::sys::signal::Signal::SIGUSR1);
    let renewed = wait_for_event(&events, "renew", 1);
    assert_eq!(
        renewed.split_whitespace().nth(1),
        bound.split_whitespace().nth(1),
        "renewal keeps the address"
    );

    agent.restart();
    assert_eq!(
        agent.status().unwrap()["pods_served"],
        1,
        "a restarted agent serves the pod again"
    );
    signal(&client, nix::sys::signal::Signal::SIGUSR1);
    let renewed = wait_for_event(&events, "renew", 2);
    assert_eq!(
        renewed.split_whitespace().nth(1),
        bound.split_whitespace().nth(1),
        "after the restart"
    );
    let before = agent.status().unwrap()["leases_active"].as_u64().unwrap();
    signal(&client, nix::sys::signal::Signal::SIGUSR2);
    wait_for_event(&events, "deconfig", 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.status().unwrap()["leases_active"].as_u64().unwrap() >= before {
        assert!(Instant::now() < deadline, "the release did not free the lease");
        std::thread::sleep(Duration::from_millis(50));
    }

    pod.plugin("DEL", &dhcp_conf(&pod, &agent)).assert_ok();
    assert_eq!(agent.status().unwrap()["pods_served"], 0, "DEL unregisters");
    agent.assert_no_panic();
}

#[test]
fn each_pod_has_its_own_pool_and_a_gone_netns_is_dropped() {
    let first = Pod::new("1.0.0");
    let second = Pod::new("1.0.0");
    let agent = Agent::start(first.dir.join("agent"));
    first.plugin("ADD", &dhcp_conf(&first, &agent)).assert_ok();
    second.plugin("ADD", &dhcp_conf(&second, &agent)).assert_ok();
    let a = first.guest_on("cvd-ebr", "a");
    let b = second.guest_on("cvd-ebr", "b");
    assert!(one_lease(&first, &a, "a").contains("ip=192.168.98.2 "));
    assert!(
        one_lease(&second, &b, "b").contains("ip=192.168.98.2 "),
        "the second pod's pool is its own"
    );
    assert_eq!(agent.status().unwrap()["pods_served"], 2);

    drop(b);
    sh(&["ip", "netns", "del", &second.pod.0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.status().unwrap()["pods_served"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the agent kept a pod whose netns is gone"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.assert_no_panic();
}

#[test]
fn an_unreachable_agent_fails_add_with_code_11_and_del_still_succeeds() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let conf = pod.conf(json!({"dhcp": true, "agentSocket": pod.dir.join("nobody.sock")}));
    let add = pod.plugin("ADD", &conf);
    assert_eq!(add.error_code(), 11);
    assert!(
        add.json()["msg"].as_str().unwrap().contains("nobody.sock"),
        "{add:?}"
    );
    assert_eq!(pod.snapshot(), before, "a failed ADD leaves nothing");
    pod.plugin("DEL", &conf).assert_ok();
}

#[test]
fn floods_garbage_and_bad_registrations_leave_the_agent_serving() {
    let pod = Pod::new("1.0.0");
    let agent = Agent::start(pod.dir.join("agent"));
    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    let guest = pod.guest_on("cvd-ebr", "c");
    let (client, events) = running_client(&pod, &guest, "c");
    wait_for_event(&events, "bound", 1);

    // A flood of DISCOVERs with random MACs from another guest fills the pool...
    let flooder = addressed_guest(&pod, "f", "192.168.98.200");
    let offers = flooder.exec(&[GUEST, "dhcp-flood", "400"]);
    assert_eq!(offers.trim(), "252 offers", "253 addresses less the one leased");
    // ... and garbage arrives too ...
    flooder.exec(&[GUEST, "garbage", "192.168.98.255:67", "50"]);
    // ... while the bound client still renews.
    signal(&client, nix::sys::signal::Signal::SIGUSR1);
    wait_for_event(&events, "renew", 1);
    let status = agent.status().unwrap();
    assert!(status["errors"].as_u64().unwrap() >= 49, "{status}");

    // A registration for a path that is not a network namespace is refused.
    let bad = json!({"op": "register", "network": "x", "container_id": "c", "ifname": "eth0", "netns": "/etc/hostname",
                     "bridges": [{"name": "cvd-ebr", "gateway": "192.168.98.1"}], "dns": []});
    let mut stream = std::os::unix::net::UnixStream::connect(agent.socket()).unwrap();
    std::io::Write::write_all(&mut stream, format!("{bad}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("/etc/hostname"),
        "{answer}"
    );
    assert_eq!(agent.status().unwrap()["pods_served"], 1);
    agent.assert_no_panic();
}

#[test]
fn malformed_bootrequests_neither_stop_the_agent_nor_its_serving() {
    let pod = Pod::new("1.0.0");
    let mut agent = Agent::start(pod.dir.join("agent"));
    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    let hostile = addressed_guest(&pod, "h", "192.168.98.200");
    let sent = hostile.exec(&[GUEST, "dhcp-malformed"]);
    assert_eq!(sent.trim(), "sent 14");

    // The server reads its socket in order: a well-formed client after them is answered after
    // every malformed datagram was handled.
    let guest = pod.guest_on("cvd-ebr", "g");
    let events = try_lease(&pod, &guest, "g");
    agent.assert_running();
    agent.assert_no_panic();
    assert!(
        leased(&events),
        "no lease after the malformed datagrams: {events}"
    );
    // Counted as errors: the five with a wrong hlen, the three cut short, the two whose options
    // run past the end. The overloaded one and the three with odd options are DISCOVERs.
    assert_eq!(
        agent.status().unwrap()["errors"],
        10,
        "unusable datagrams are counted"
    );
}

#[test]
fn a_discover_flood_from_one_pod_stays_bounded_and_does_not_starve_another_pod() {
    let flooded = Pod::new("1.0.0");
    let other = Pod::new("1.0.0");
    let mut agent = Agent::start(flooded.dir.join("agent"));
    flooded.plugin("ADD", &dhcp_conf(&flooded, &agent)).assert_ok();
    other.plugin("ADD", &dhcp_conf(&other, &agent)).assert_ok();
    let flooder = addressed_guest(&flooded, "f", "192.168.98.200");
    let guest = other.guest_on("cvd-ebr", "c");

    // 20,000 DISCOVERs with random MACs over four seconds; the other pod's client asks midway.
    let mut flood = Background::start(&flooder, &[GUEST, "dhcp-burst", "20000", "5000"]);
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let events = try_lease(&other, &guest, "c");
    let took = asked.elapsed();
    let flood_running = flood.0.try_wait().unwrap().is_none();
    assert!(leased(&events), "no lease in the other pod: {events}");
    assert!(took <= Duration::from_secs(2), "the lease took {took:?}");
    assert!(
        flood_running,
        "the flood ended before the other pod's client was served"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while flood.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the flood did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(flood.0.wait().unwrap().success(), "the flood could not be sent");
    agent.assert_running();
    agent.assert_no_panic();
    let peak = agent.peak_rss_kib();
    assert!(peak < 32 * 1024, "the agent's peak RSS is {peak} KiB");
    let status = agent.status().unwrap();
    let rate_limited = |pod: &Pod| {
        status["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["container_id"] == pod.container_id.as_str())
            .and_then(|p| p["rate_limited"].as_u64())
    };
    eprintln!(
        "lease in the other pod after {took:?}; agent peak RSS {peak} KiB; rate-limited {:?}",
        rate_limited(&flooded)
    );
    assert!(
        rate_limited(&flooded).is_some_and(|n| n > 0),
        "the flood was not rate-limited: {status}"
    );
    assert_eq!(rate_limited(&other), Some(0), "{status}");
}

#[test]
fn one_agent_serves_fifty_pods_and_gc_drops_stale_registrations() {
    let node = std::sync::Arc::new(Netns::new("node", &crate::support::unique_id()));
    let pods: Vec<Pod> = (0..50).map(|_| Pod::on_node("1.1.0", node.clone())).collect();
    let agent = Agent::start(pods[0].dir.join("agent"));
    plugin_in_parallel(&pods, "ADD", |pod, _| dhcp_conf(pod, &agent));
    assert_eq!(agent.status().unwrap()["pods_served"], 50);
    // Clients of a few pods: each pod's first client gets .2 from that pod's own pool.
    for (i, pod) in pods.iter().enumerate().step_by(12) {
        let guest = pod.guest_on("cvd-ebr", &format!("p{i}"));
        assert!(
            one_lease(pod, &guest, &format!("p{i}")).contains("ip=192.168.98.2 "),
            "pod {i}"
        );
    }
    // GC with only the first ten attachments valid drops the other forty registrations.
    let valid: Vec<Value> = pods[..10]
        .iter()
        .map(|p| json!({"containerID": p.container_id, "ifname": "eth0"}))
        .collect();
    let gc = json!({"cniVersion": "1.1.0", "name": "cfnet", "type": "cuttlefish-cni", "dhcp": true,
                    "agentSocket": agent.socket(), "dataDir": pods[0].alloc_dir(), "cni.dev/valid-attachments": valid});
    pods[0]
        .exec_raw(PLUGIN, "GC", gc.to_string().as_bytes(), "", &[])
        .assert_ok();
    assert_eq!(agent.status().unwrap()["pods_served"], 10);
    plugin_in_parallel(&pods, "DEL", |pod, _| dhcp_conf(pod, &agent));
    assert_eq!(agent.status().unwrap()["pods_served"], 0);
    agent.assert_no_panic();
}
