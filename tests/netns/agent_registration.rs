//! The DHCP node agent's registrations and its socket: only root may talk to it, a registration
//! is checked like the plugin's own configuration, the pod's netns comes as an open descriptor
//! and must be a pod's, and no server thread outlives its registration. Threads and descriptors
//! are counted in /proc, the way an operator would find a leak.

use crate::support::{agent_args, agent_status, sh, udhcpc, Background, Pod, AGENT, UNPRIVILEGED_UID};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A cuttlefish-cni-agent of ours, its socket, state and log (stderr) under `dir`. `launcher`
/// prefixes the command (a namespace, fewer capabilities, strace); the agent's own pid is found
/// below it and killed by that pid on drop.
struct AgentProcess {
    _launcher: Background,
    pid: u32,
    dir: PathBuf,
}

impl AgentProcess {
    fn start(dir: &Path, launcher: &[&str], extra: &[&str]) -> AgentProcess {
        let agent = AgentProcess::spawn(dir, launcher, extra);
        agent.wait_until_up();
        agent
    }

    /// Starts the agent without waiting for its socket.
    fn spawn(dir: &Path, launcher: &[&str], extra: &[&str]) -> AgentProcess {
        std::fs::create_dir_all(dir).unwrap();
        let log = File::create(dir.join("agent.log")).unwrap();
        let args = agent_args(dir);
        let mut command: Vec<&str> = launcher.to_vec();
        command.push(AGENT);
        command.extend(args.iter().map(String::as_str));
        command.extend(extra);
        let child = Command::new(command[0])
            .args(&command[1..])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let launcher = Background(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = agent_below(launcher.0.id()) {
                break pid;
            }
            assert!(Instant::now() < deadline, "no agent process below {command:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        AgentProcess {
            _launcher: launcher,
            pid,
            dir: dir.to_path_buf(),
        }
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status().is_none() {
            assert!(
                Instant::now() < deadline,
                "the agent did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    fn status(&self) -> Option<Value> {
        agent_status(&self.socket())
    }

    fn pods_served(&self) -> u64 {
        self.status().unwrap()["pods_served"].as_u64().unwrap()
    }

    /// How many of the agent's threads are in `netns`.
    fn threads_in(&self, netns: NetnsId) -> usize {
        entries_pointing_at(&format!("/proc/{}/task", self.pid), "ns/net", netns)
    }

    /// How many of the agent's open descriptors are that netns.
    fn descriptors_on(&self, netns: NetnsId) -> usize {
        entries_pointing_at(&format!("/proc/{}/fd", self.pid), "", netns)
    }

    /// Waits up to 2 s (a stopped thread leaves /proc a moment after it is joined) until no
    /// thread and no descriptor of the agent holds the netns; fails naming what still does.
    fn assert_lets_go_of(&self, netns: NetnsId, when: &str) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (threads, fds) = (self.threads_in(netns), self.descriptors_on(netns));
            if threads == 0 && fds == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{when}: {threads} thread(s) and {fds} descriptor(s) of the agent still hold the pod netns"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The pid of the agent binary at or below `root` in the process tree.
fn agent_below(root: u32) -> Option<u32> {
    let agent = std::fs::canonicalize(AGENT).unwrap();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref() == Some(agent.as_path()) {
            return Some(pid);
        }
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    None
}

/// Entries of `dir` that are, or whose `link` inside is, the netns `netns`. Compared by
/// (device, inode): a descriptor opened through a bind mount reads back as its path.
fn entries_pointing_at(dir: &str, link: &str, netns: NetnsId) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| {
            let path = match link {
                "" => entry.path(),
                link => entry.path().join(link),
            };
            std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == netns)
        })
        .count()
}

/// A netns's (device, inode).
type NetnsId = (u64, u64);

fn netns_id(path: &str) -> NetnsId {
    let meta = std::fs::metadata(path).unwrap();
    (meta.dev(), meta.ino())
}

fn dhcp_conf(pod: &Pod, agent: &AgentProcess) -> Value {
    pod.conf(json!({"dhcp": true, "agentSocket": agent.socket()}))
}

/// The register request the plugin sends for `pod`.
fn registration(pod: &Pod) -> Value {
    json!({"op": "register", "network": "cfnet", "container_id": pod.container_id, "ifname": "eth0",
           "netns": pod.pod.path(),
           "bridges": [{"name": "cvd-ebr", "gateway": "192.168.98.1"}, {"name": "cvd-wbr", "gateway": "192.168.96.1"}],
           "dns": ["10.96.0.10"]})
}

/// One request as the plugin sends it: a JSON line, with `netns` attached (SCM_RIGHTS).
fn request(socket: &Path, request: &Value, netns: Option<BorrowedFd>) -> Value {
    let stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let line = format!("{request}\n");
    let fds: Vec<i32> = netns.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(line.as_bytes())],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    assert_eq!(sent, line.len());
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

fn assert_refused(answer: &Value, naming: &str) {
    assert_eq!(answer["ok"], false, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(naming),
        "the error should name {naming:?}: {answer}"
    );
}

/// A file this test may have made, removed on drop.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A read-only tmpfs mounted by the test on a directory of its own, unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn on(dir: &Path) -> ReadOnlyMount {
        std::fs::create_dir_all(dir).unwrap();
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "ro,size=64k,mode=0700",
            "cuttlefish-cni-test",
            dir.to_str().unwrap(),
        ]);
        ReadOnlyMount(dir.to_path_buf())
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", self.0.to_str().unwrap()])
            .status();
    }
}

#[test]
fn a_registration_that_cannot_be_recorded_stops_its_servers() {
    let pod = Pod::new("1.1.0");
    let dir = pod.dir.join("agent");
    let _read_only = ReadOnlyMount::on(&dir.join("state"));
    let agent = AgentProcess::start(&dir, &[], &[]);
    let netns = netns_id(&pod.pod.path());

    let add = pod.plugin("ADD", &dhcp_conf(&pod, &agent));
    assert!(!add.success, "ADD succeeded with a read-only state directory");
    assert_eq!(add.error_code(), 103, "the agent refused the pod: {add:?}");
    assert!(add.stdout.contains("recording the registration"), "{add:?}");
    agent.assert_lets_go_of(netns, "after the refused registration");
    assert_eq!(agent.pods_served(), 0);

    pod.plugin("DEL", &dhcp_conf(&pod, &agent)).assert_ok();
    agent.assert_lets_go_of(netns, "after DEL");
}

#[test]
fn concurrent_registrations_of_one_pod_leave_one_server_per_bridge() {
    let pod = Pod::new("1.1.0");
    let agent = AgentProcess::start(&pod.dir.join("agent"), &[], &[]);
    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    let netns = netns_id(&pod.pod.path());
    let netns_file = File::open(pod.pod.path()).unwrap();

    // ADDs retried at once for the same attachment, as a runtime may do after a timeout.
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| request(&agent.socket(), &registration(&pod), Some(netns_file.as_fd()))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        agent.threads_in(netns),
        2,
        "one server per bridge, none left over from the replaced registrations"
    );
    for answer in &answers {
        assert_eq!(answer["ok"], true, "{answer}");
    }
    assert_eq!(agent.pods_served(), 1);

    pod.plugin("DEL", &dhcp_conf(&pod, &agent)).assert_ok();
    agent.assert_lets_go_of(netns, "after DEL");
}

#[test]
fn registrations_are_checked_like_the_plugins_own_configuration() {
    let pod = Pod::new("1.1.0");
    let agent = AgentProcess::start(&pod.dir.join("agent"), &[], &[]);
    // The bridges exist (ADD without dhcp), so nothing but the checks can refuse these.
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    let netns = netns_id(&pod.pod.path());
    let netns_file = File::open(pod.pod.path()).unwrap();
    let bridge = |name: &str, gateway: &str| json!({"name": name, "gateway": gateway});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("network", json!("/../escaped"), "/../escaped"),
        ("network", json!("../escaped"), "../escaped"),
        ("network", json!(""), "network"),
        ("container_id", json!("../../x"), "../../x"),
        ("container_id", json!("x\nFORGED log line"), "container_id"),
        ("ifname", json!("a/b"), "a/b"),
        ("ifname", json!("sixteen-bytes-xx"), "sixteen-bytes-xx"),
        ("netns", json!("relative/netns"), "relative/netns"),
        ("bridges", json!([]), "bridges"),
        // The pod's primary interface: a DHCP server there would answer the cluster network.
        ("bridges", json!([bridge("eth0", "10.200.1.1")]), "eth0"),
        ("bridges", json!([bridge("cvd-ebr", "10.0.0.1")]), "10.0.0.1"),
        (
            "bridges",
            json!([
                bridge("cvd-ebr", "192.168.98.1"),
                bridge("cvd-ebr", "192.168.98.1")
            ]),
            "cvd-ebr",
        ),
    ];
    let tag = cuttlefish_cni::mark::AttachmentTag::of(&cuttlefish_cni::cni::Attachment {
        container_id: pod.container_id.clone(),
        ifname: "eth0".into(),
    })
    .as_str()
    .to_string();
    // Where the unchecked "/../escaped" lands: the filesystem root (the name is this test's own).
    let in_root = RemovedOnDrop(PathBuf::from(format!("/escaped-{tag}.json")));
    let beside_the_state = || {
        let mut names: Vec<String> = std::fs::read_dir(&agent.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    for (field, value, naming) in cases {
        let mut bad = registration(&pod);
        bad[field] = value;
        let answer = request(&agent.socket(), &bad, Some(netns_file.as_fd()));
        assert_eq!(
            beside_the_state(),
            ["agent.log", "agent.sock", "state"],
            "{bad} wrote beside the state directory"
        );
        assert!(!in_root.0.exists(), "{bad} wrote {}", in_root.0.display());
        assert_refused(&answer, naming);
        assert_eq!(agent.pods_served(), 0, "{bad}");
        assert_eq!(agent.threads_in(netns), 0, "a server was started for {bad}");
    }
    assert!(
        !agent.log().lines().any(|l| l.starts_with("FORGED")),
        "a control character reached the log unescaped:\n{}",
        agent.log()
    );

    // Unregister and GC name no file outside the state directory either.
    let decoy = agent.dir.join(format!("decoy-{tag}.json"));
    std::fs::write(&decoy, "{}").unwrap();
    let unregister = json!({"op": "unregister", "network": "../decoy",
                            "attachment": {"container_id": pod.container_id, "ifname": "eth0"}});
    assert_refused(&request(&agent.socket(), &unregister, None), "../decoy");
    assert!(
        decoy.exists(),
        "unregister removed a file outside the state directory"
    );
    let gc = json!({"op": "gc", "network": "../decoy", "valid": []});
    assert_refused(&request(&agent.socket(), &gc, None), "../decoy");
}

#[test]
fn only_a_pods_netns_passed_as_a_descriptor_is_served() {
    let pod = Pod::new("1.1.0");
    let other = Pod::new("1.1.0");
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    let netns = netns_id(&pod.pod.path());

    // The agent as the DaemonSet runs it, in the node's root namespace (hostNetwork).
    let agent = AgentProcess::start(&pod.dir.join("agent"), &[], &[]);
    let root = File::open("/proc/self/ns/net").unwrap();
    let not_a_netns = File::open("/etc/hostname").unwrap();
    let other_netns = File::open(other.pod.path()).unwrap();
    let cases: [(Option<BorrowedFd>, &str); 4] = [
        (Some(root.as_fd()), "the agent's own network namespace"),
        (Some(not_a_netns.as_fd()), "not a namespace"),
        (Some(other_netns.as_fd()), &pod.pod.path()),
        (None, "descriptor"),
    ];
    for (fd, naming) in cases {
        let answer = request(&agent.socket(), &registration(&pod), fd);
        assert_refused(&answer, naming);
        assert_eq!(agent.pods_served(), 0, "{answer}");
        assert_eq!(agent.threads_in(netns), 0, "{naming}: a server runs in the pod");
    }
    drop(agent);

    // An agent in a namespace of its own, on a host whose PID 1 is in the root namespace: it
    // refuses both its own namespace and PID 1's.
    let node = &pod.node.0;
    let script = format!("ip netns exec {node} \"$@\"; :");
    let agent = AgentProcess::start(
        &pod.dir.join("agent-in-node"),
        &[
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "slave",
            "sh",
            "-c",
            &script,
            "sh",
        ],
        &[],
    );
    let own = File::open(pod.node.path()).unwrap();
    for (fd, naming) in [
        (own.as_fd(), "the agent's own network namespace"),
        (root.as_fd(), "the node's root network namespace"),
    ] {
        let answer = request(&agent.socket(), &registration(&pod), Some(fd));
        assert_refused(&answer, naming);
        assert_eq!(agent.pods_served(), 0, "{answer}");
    }
    let netns_file = File::open(pod.pod.path()).unwrap();
    let answer = request(&agent.socket(), &registration(&pod), Some(netns_file.as_fd()));
    assert_eq!(answer["ok"], true, "{answer}");
}

#[test]
fn a_restarted_agent_serves_a_recorded_path_only_if_it_is_still_the_same_netns() {
    let pod = Pod::new("1.1.0");
    let dir = pod.dir.join("agent");
    let agent = AgentProcess::start(&dir, &[], &[]);
    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    drop(agent);

    // The pod's netns goes while the agent is down, and another takes its path, bridges and all.
    sh(&["ip", "netns", "del", &pod.pod.0]);
    sh(&["ip", "netns", "add", &pod.pod.0]);
    for bridge in ["cvd-ebr", "cvd-wbr"] {
        sh(&[
            "ip", "-n", &pod.pod.0, "link", "add", bridge, "up", "type", "bridge",
        ]);
    }
    let impostor = netns_id(&pod.pod.path());
    let agent = AgentProcess::start(&dir, &[], &[]);
    assert_eq!(
        agent.pods_served(),
        0,
        "the restarted agent serves another netns at the recorded path"
    );
    assert_eq!(agent.threads_in(impostor), 0);
    assert_eq!(
        std::fs::read_dir(agent.state_dir()).unwrap().count(),
        0,
        "the stale registration is dropped"
    );
}

#[test]
fn a_client_that_is_not_root_is_refused_counted_and_logged() {
    let pod = Pod::new("1.1.0");
    let agent = AgentProcess::start(&pod.dir.join("agent"), &[], &[]);
    let client = pod.shared_copy(AGENT);
    // DAC_OVERRIDE takes the client past the socket file's mode: what is tested is the agent's
    // own check of its peer.
    let uid = UNPRIVILEGED_UID.to_string();
    let status_as_uid = |socket: PathBuf| {
        Command::new("setpriv")
            .args(["--reuid", &uid, "--regid", &uid, "--clear-groups"])
            .args([
                "--inh-caps=+dac_override",
                "--ambient-caps=+dac_override",
                "--no-new-privs",
            ])
            .args([client.as_str(), "status", "--socket", socket.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let refused = status_as_uid(agent.socket());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "uid {uid} read the agent's status: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(stderr.contains(&format!("uid {uid}")), "{stderr}");
    assert_eq!(agent.status().unwrap()["peers_refused"], 1);
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains(&format!(" cuttlefish-cni-agent[{}]: ", agent.pid))
                && l.contains("refused")
                && l.contains(&format!("uid {uid}"))),
        "{}",
        agent.log()
    );

    let allowing = AgentProcess::start(&pod.dir.join("allowing"), &[], &["--allow-uid", &uid]);
    let allowed = status_as_uid(allowing.socket());
    assert!(allowed.status.success(), "{allowed:?}");
    assert_eq!(allowing.status().unwrap()["peers_refused"], 0);
}

#[test]
fn the_socket_and_the_registrations_are_never_open_to_other_users() {
    let pod = Pod::new("1.1.0");
    let dir = pod.dir.join("agent");
    // strace holds the agent for a second right after its first bind() returns: the socket file
    // exists then, with the mode it was created with.
    let agent = AgentProcess::spawn(
        &dir,
        &[
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=bind",
            "-e",
            "inject=bind:delay_exit=1s:when=1",
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mode = loop {
        if let Ok(meta) = std::fs::symlink_metadata(agent.socket()) {
            break meta.mode() & 0o777;
        }
        assert!(Instant::now() < deadline, "no socket: {}", agent.log());
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(mode & 0o077, 0, "the socket was created with mode {mode:o}");
    agent.wait_until_up();

    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    for entry in std::fs::read_dir(agent.state_dir()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", entry.path().display());
    }
}

/// `add` of the agent container's capabilities in install/daemonset.yaml.
fn daemonset_capabilities() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/install/daemonset.yaml");
    let daemonset: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let containers = daemonset["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let agent = containers.iter().find(|c| c["name"] == "dhcp-agent").unwrap();
    agent["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// The agent as root with exactly `capabilities` (Kubernetes spelling), as the DaemonSet's
/// securityContext runs it: `drop: ALL`, `add: ...`, no privilege escalation.
fn agent_with(dir: &Path, capabilities: &[String]) -> AgentProcess {
    let bounding = std::iter::once("-all".to_string())
        .chain(capabilities.iter().map(|c| format!("+{}", c.to_lowercase())))
        .collect::<Vec<_>>()
        .join(",");
    let bounding = format!("--bounding-set={bounding}");
    AgentProcess::start(
        dir,
        &["setpriv", "--inh-caps=-all", &bounding, "--no-new-privs"],
        &[],
    )
}

#[test]
fn the_agent_needs_exactly_the_capabilities_the_daemonset_gives_it() {
    let capabilities = daemonset_capabilities();
    let pod = Pod::new("1.1.0");
    let agent = agent_with(&pod.dir.join("agent"), &capabilities);
    pod.plugin("ADD", &dhcp_conf(&pod, &agent)).assert_ok();
    let guest = pod.guest_on("cvd-ebr", "g");
    // once: udhcpc fails without a lease.
    let args = udhcpc(std::path::Path::new("/bin/true"), true);
    guest.exec(&args.iter().map(String::as_str).collect::<Vec<_>>());
    drop(agent);

    // Each one is needed; README ("DHCP on the bridges") records what fails without it.
    let expected_failure = |capability: &str| match capability {
        "SYS_ADMIN" => "setns",
        "NET_BIND_SERVICE" => "Permission denied",
        _ => "",
    };
    let without: Vec<(&String, crate::support::Outcome)> = capabilities
        .iter()
        .map(|dropped| {
            let pod = Pod::new("1.1.0");
            let rest: Vec<String> = capabilities.iter().filter(|c| *c != dropped).cloned().collect();
            let agent = agent_with(&pod.dir.join("agent"), &rest);
            (dropped, pod.plugin("ADD", &dhcp_conf(&pod, &agent)))
        })
        .collect();
    let unneeded: Vec<&String> = without
        .iter()
        .filter(|(_, add)| add.success)
        .map(|(c, _)| *c)
        .collect();
    assert!(
        unneeded.is_empty(),
        "the agent served without {unneeded:?}: drop them from install/daemonset.yaml"
    );
    for (dropped, add) in &without {
        assert!(
            add.stdout.contains(expected_failure(dropped)),
            "without {dropped}: {add:?}"
        );
    }
}
