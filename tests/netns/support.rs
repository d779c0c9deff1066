//! Test hosts for the integration tests: a "node" namespace where every plugin runs (so the
//! primary's host-side veth never lands in the root namespace), a "pod" namespace the chain
//! configures, and optionally a "peer" namespace upstream of the node. The reference `ptp`
//! plugin is the primary, so `prevResult` is real. Everything is removed on drop, on failure too.

use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_cuttlefish-cni");
pub const AGENT: &str = env!("CARGO_BIN_EXE_cuttlefish-cni-agent");
pub const GUEST: &str = env!("CARGO_BIN_EXE_cvd-test-guest");
/// Where Debian's containernetworking-plugins puts the reference plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
pub const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
pub const POD_SUBNET: &str = "10.200.1.0/24";
pub const PEER_IP: &str = "10.200.0.1";
pub const NODE_UPLINK_IP: &str = "10.200.0.2";
pub const UNPRIVILEGED_UID: u32 = 1000;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The arguments that keep a test's agent to `dir`: its socket and state there, its device
/// plugin looking for a kubelet in `dir/device-plugins` (never the node's), and its metrics on a
/// free loopback port.
pub fn agent_args(dir: &std::path::Path) -> Vec<String> {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    vec![
        "--socket".into(),
        path("agent.sock"),
        "--state-dir".into(),
        path("state"),
        "--device-plugin-dir".into(),
        path("device-plugins"),
        "--metrics-address".into(),
        "127.0.0.1:0".into(),
    ]
}

/// busybox udhcpc on a guest's eth0 with `script` as its hook; `once`: quit after the first
/// lease, failing without one (`-q -n`), else keep running like a guest's client (renew on
/// SIGUSR1, release on SIGUSR2).
pub fn udhcpc(script: &std::path::Path, once: bool) -> Vec<String> {
    let mut args = vec!["busybox", "udhcpc", "-i", "eth0", "-f", "-t", "5", "-T", "1"];
    if once {
        args.extend(["-q", "-n"]);
    }
    args.push("-s");
    args.iter()
        .map(|a| a.to_string())
        .chain([script.display().to_string()])
        .collect()
}

/// The counters of the agent at `socket` (`cuttlefish-cni-agent status`), if it answers.
pub fn agent_status(socket: &std::path::Path) -> Option<Value> {
    let out = Command::new(AGENT)
        .args(["status", "--socket", socket.to_str().unwrap()])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Runs a command, asserts success, returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(role: &str, id: &str) -> Netns {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the namespace tests need root: run them as root, or run hack/test.sh"
        );
        let name = format!("cfct-{id}-{role}");
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Runs a command in the namespace and returns its stdout, whatever its exit status.
    pub fn exec_status(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what our tests left running in this namespace (only ever our own processes).
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
        // A node's host-local leases and CID allocations (see Pod::ipam_dir, alloc_dir).
        for suffix in ["ipam", "alloc"] {
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{}-{suffix}", self.0)));
        }
    }
}

/// The answer of one plugin execution.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?} / {}", self.stdout, self.stderr))
    }

    /// The CNI error code, asserting the plugin failed with a well-formed error.
    pub fn error_code(&self) -> u64 {
        assert!(!self.success, "expected failure, got success: {}", self.stdout);
        let err = self.json();
        assert!(err["msg"].is_string(), "error without msg: {err}");
        err["code"].as_u64().expect("error code")
    }

    pub fn assert_ok(&self) -> &Self {
        assert!(self.success, "plugin failed: {} {}", self.stdout, self.stderr);
        self
    }
}

/// One pod attached through the chain `ptp` (+ host-local) → cuttlefish-cni.
pub struct Pod {
    pub id: String,
    pub version: String,
    pub dir: PathBuf,
    pub container_id: String,
    pub prev_result: Value,
    pub peer: Option<Netns>,
    pub pod: Netns,
    /// Shared by the pods of one node; the last pod dropped removes it.
    pub node: Arc<Netns>,
}

impl Pod {
    pub fn new(version: &str) -> Pod {
        Pod::on_node(version, Arc::new(Netns::new("node", &unique_id())))
    }

    /// A pod on an existing node namespace (many pods per node).
    pub fn on_node(version: &str, node: Arc<Netns>) -> Pod {
        let id = unique_id();
        let dir = std::env::temp_dir().join(format!("cfct-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pod = Netns::new("pod", &id);
        let mut this = Pod {
            container_id: format!("ctr{}", id.replace('-', "x")),
            id,
            version: version.to_string(),
            dir,
            prev_result: Value::Null,
            peer: None,
            pod,
            node,
        };
        let ptp = this.exec(&format!("{CNI_BIN_DIR}/ptp"), "ADD", &this.ptp_conf(), &[]);
        ptp.assert_ok();
        this.prev_result = ptp.json();
        // See ptp_conf: a 1.0.0 result is a valid 1.1.0 result.
        this.prev_result["cniVersion"] = json!(version);
        this
    }

    /// A pod whose node has an upstream peer at PEER_IP that routes the pod subnet to the node.
    pub fn with_peer(version: &str) -> Pod {
        let mut pod = Pod::new(version);
        let peer = Netns::new("peer", &pod.id);
        let node = &pod.node.0;
        sh(&[
            "ip", "-n", node, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", &peer.0,
        ]);
        sh(&[
            "ip",
            "-n",
            node,
            "addr",
            "add",
            &format!("{NODE_UPLINK_IP}/24"),
            "dev",
            "up0",
        ]);
        sh(&["ip", "-n", node, "link", "set", "up0", "up"]);
        sh(&[
            "ip",
            "-n",
            &peer.0,
            "addr",
            "add",
            &format!("{PEER_IP}/24"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &peer.0, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            &peer.0,
            "route",
            "add",
            POD_SUBNET,
            "via",
            NODE_UPLINK_IP,
        ]);
        pod.peer = Some(peer);
        pod
    }

    fn ptp_conf(&self) -> Value {
        // Debian 12's reference plugins (1.1.1) stop at spec 1.0.0; 1.1.0 changed no field of
        // an ADD result, so a 1.1.0 chain runs its primary at 1.0.0.
        let version = if self.version == "1.1.0" {
            "1.0.0"
        } else {
            self.version.as_str()
        };
        json!({
            "cniVersion": version, "name": "cfnet", "type": "ptp", "ipMasq": false,
            "ipam": {"type": "host-local", "subnet": POD_SUBNET, "dataDir": self.ipam_dir(),
                     "routes": [{"dst": "0.0.0.0/0"}]}
        })
    }

    /// host-local's leases, one directory per node so the node's pods get distinct addresses.
    fn ipam_dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}-ipam", self.node.0))
    }

    /// The plugin's `dataDir` (vsock CID allocations), one directory per node like a real node.
    pub fn alloc_dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}-alloc", self.node.0))
    }

    /// The vsock CIDs allocated on this pod's node: one file per CID.
    pub fn allocated_cids(&self) -> std::collections::BTreeSet<u32> {
        std::fs::read_dir(self.alloc_dir().join("_vsock-cids")).map_or(Default::default(), |dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
    }

    /// Our plugin's configuration in this chain, with `extra` keys merged in.
    pub fn conf(&self, extra: Value) -> Value {
        let mut conf = json!({
            "cniVersion": self.version, "name": "cfnet", "type": "cuttlefish-cni",
            "select": "all", "prevResult": self.prev_result, "dataDir": self.alloc_dir(),
        });
        for (k, v) in extra.as_object().expect("object") {
            conf[k] = v.clone();
        }
        conf
    }

    /// Executes a plugin in the node namespace with the CNI protocol, for this pod.
    pub fn exec(&self, binary: &str, command: &str, conf: &Value, env: &[(&str, &str)]) -> Outcome {
        self.exec_raw(
            binary,
            command,
            conf.to_string().as_bytes(),
            &self.pod.path(),
            env,
        )
    }

    pub fn exec_raw(
        &self,
        binary: &str,
        command: &str,
        stdin: &[u8],
        netns: &str,
        env: &[(&str, &str)],
    ) -> Outcome {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.node.0, binary])
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_BIN_DIR)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn plugin");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        Outcome {
            success: out.status.success(),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn plugin(&self, command: &str, conf: &Value) -> Outcome {
        self.exec(PLUGIN, command, conf, &[])
    }

    /// `ip -d -j link` in the pod, as JSON objects.
    pub fn links(&self) -> Vec<Value> {
        serde_json::from_str(&sh(&["ip", "-n", &self.pod.0, "-d", "-j", "link", "show"])).unwrap()
    }

    pub fn link(&self, name: &str) -> Value {
        self.links()
            .into_iter()
            .find(|l| l["ifname"] == name)
            .unwrap_or_else(|| panic!("no link {name}"))
    }

    pub fn link_names(&self) -> Vec<String> {
        self.links()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// IPv4 addresses of a link as "a.b.c.d/p brd x.x.x.x".
    pub fn addresses(&self, link: &str) -> Vec<String> {
        let out: Vec<Value> = serde_json::from_str(&sh(&[
            "ip",
            "-n",
            &self.pod.0,
            "-4",
            "-j",
            "addr",
            "show",
            "dev",
            link,
        ]))
        .unwrap();
        out.iter()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                format!(
                    "{}/{} brd {}",
                    a["local"].as_str().unwrap(),
                    a["prefixlen"],
                    a["broadcast"].as_str().unwrap_or("-")
                )
            })
            .collect()
    }

    /// `nft -j list ruleset` in the pod.
    pub fn nft(&self) -> Value {
        serde_json::from_str(&self.pod.exec(&["nft", "-j", "list", "ruleset"])).unwrap()
    }

    pub fn sysctl(&self, name: &str) -> String {
        self.pod
            .exec(&["cat", &format!("/proc/sys/{name}")])
            .trim()
            .to_string()
    }

    /// A TAP's owner or group as the kernel shows it in sysfs (-1 = unset).
    pub fn tap_attr(&self, tap: &str, attr: &str) -> String {
        self.pod
            .exec(&["cat", &format!("/sys/class/net/{tap}/{attr}")])
            .trim()
            .to_string()
    }

    /// Everything DEL must restore: links (name, kind, master, group, alias, admin state), IPv4
    /// addresses and routes, the nft ruleset, the forwarding sysctls. Carrier and IPv6
    /// link-local state settle on their own after the primary's ADD, so they are left out.
    pub fn snapshot(&self) -> String {
        let ns = &self.pod.0;
        let links: Vec<String> = self
            .links()
            .iter()
            .map(|l| {
                let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
                format!(
                    "{} kind={} master={} group={} alias={} up={up}",
                    l["ifname"], l["linkinfo"]["info_kind"], l["master"], l["group"], l["ifalias"]
                )
            })
            .collect();
        [
            links.join("\n"),
            sh(&["ip", "-n", ns, "-4", "-o", "addr"]),
            sh(&["ip", "-n", ns, "-4", "route", "show", "table", "all"]).replace(" linkdown", ""),
            self.pod.exec(&["nft", "list", "ruleset"]),
            self.sysctl("net/ipv4/ip_forward"),
            self.sysctl("net/ipv6/conf/all/forwarding"),
        ]
        .join("\n")
    }

    /// A 0666 /dev/net/tun node of our own, the mode a stock host has (this machine's is 0600);
    /// the host's node is never changed.
    pub fn tun_device(&self) -> String {
        let path = self.dir.join("tun");
        if !path.exists() {
            sh(&["mknod", "-m", "0666", path.to_str().unwrap(), "c", "10", "200"]);
        }
        path.to_string_lossy().into_owned()
    }

    /// A copy of `file` that any uid can read and run: the checkout itself may sit in a
    /// directory only root can enter.
    pub fn shared_copy(&self, file: &str) -> String {
        let copy = self.dir.join(std::path::Path::new(file).file_name().unwrap());
        if !copy.exists() {
            std::fs::copy(file, &copy).unwrap();
            sh(&[
                "chmod",
                "0755",
                self.dir.to_str().unwrap(),
                copy.to_str().unwrap(),
            ]);
        }
        copy.to_string_lossy().into_owned()
    }

    /// Runs the test guest in the pod as `uid`/`gid` with no capabilities at all.
    pub fn guest_as(&self, uid: u32, gid: u32, args: &[&str]) -> Outcome {
        let guest = self.shared_copy(GUEST);
        let mut full = vec![guest.as_str()];
        full.extend_from_slice(args);
        self.run_as(uid, gid, &full)
    }

    /// Runs any command in the pod as an unprivileged uid with no capabilities.
    pub fn unprivileged(&self, args: &[&str]) -> Outcome {
        self.run_as(UNPRIVILEGED_UID, UNPRIVILEGED_UID, args)
    }

    fn run_as(&self, uid: u32, gid: u32, args: &[&str]) -> Outcome {
        let (uid, gid) = (uid.to_string(), gid.to_string());
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pod.0,
                "setpriv",
                "--reuid",
                &uid,
                "--regid",
                &gid,
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
            ])
            .args(args)
            .output()
            .unwrap();
        Outcome {
            success: out.status.success(),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // The chain's DEL in reverse order, best effort, then the namespaces (fields drop after).
        let conf = self.conf(json!({}));
        let _ = self.exec(PLUGIN, "DEL", &conf, &[]);
        let _ = self.exec(&format!("{CNI_BIN_DIR}/ptp"), "DEL", &self.ptp_conf(), &[]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process running in a namespace for the length of a test, killed on drop.
pub struct Background(pub std::process::Child);

impl Background {
    pub fn start(netns: &Netns, args: &[&str]) -> Background {
        let child = Command::new("ip")
            .args(["netns", "exec", &netns.0])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        Background(child)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port` (TCP or UDP) in `netns`.
pub fn wait_for_listener(netns: &Netns, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns.0,
                "ss",
                "-Hltun",
                &format!("sport = :{port}"),
            ])
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("nothing listens on port {port} in {}", netns.0);
}

impl Pod {
    /// A "guest" with a real TCP/IP stack on the guest side of `cvd-ebr`: a namespace joined to
    /// the bridge by a veth, 192.168.98.50/24 via 192.168.98.1, MTU 1500 as a Cuttlefish guest.
    pub fn bridge_guest(&self) -> Netns {
        let guest = self.guest_on("cvd-ebr", "g0");
        sh(&[
            "ip",
            "-n",
            &guest.0,
            "addr",
            "add",
            "192.168.98.50/24",
            "dev",
            "eth0",
        ]);
        sh(&[
            "ip",
            "-n",
            &guest.0,
            "route",
            "add",
            "default",
            "via",
            "192.168.98.1",
        ]);
        guest
    }

    /// A guest namespace joined to `bridge` by a veth (`tag` names it), with no address yet.
    pub fn guest_on(&self, bridge: &str, tag: &str) -> Netns {
        let guest = Netns::new(&format!("guest-{tag}"), &self.id);
        let pod = &self.pod.0;
        let port = format!("{tag}-port");
        sh(&[
            "ip", "-n", pod, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &guest.0,
        ]);
        sh(&["ip", "-n", pod, "link", "set", &port, "master", bridge, "up"]);
        sh(&["ip", "-n", &guest.0, "link", "set", "eth0", "up"]);
        guest
    }

    /// The pod's own address, as the primary plugin gave it.
    pub fn ip(&self) -> String {
        self.prev_result["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }
}

/// Runs our plugin's `command` for every pod at once, pod `i` with `conf(pod, i)`, as a node's
/// runtime would; asserts each one succeeded and returns their answers in pod order.
pub fn plugin_in_parallel(
    pods: &[Pod],
    command: &str,
    conf: impl Fn(&Pod, usize) -> Value + Sync,
) -> Vec<Value> {
    std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let conf = &conf;
                s.spawn(move || {
                    let out = pod.plugin(command, &conf(pod, i));
                    out.assert_ok();
                    serde_json::from_str(&out.stdout).unwrap_or(Value::Null)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
