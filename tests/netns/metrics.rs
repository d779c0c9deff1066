//! The agent's Prometheus endpoint, scraped by a real Prometheus server (Debian's `prometheus`)
//! on loopback: the vsock CID series follow the device nodes under the agent's dev root, and the
//! DHCP series count a real client's lease.

use crate::support::{sh, udhcpc, Background, Pod, AGENT};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Reads the log until the agent says where it serves metrics.
fn metrics_address(log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("metrics on http://").nth(1) {
            return rest.split('/').next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the agent serves no metrics:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port, for Prometheus's own listener (it does not report a port 0 choice).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of an HTTP/1.0 GET on loopback, or None when nothing answers.
fn get(address: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// The value Prometheus's query API gives for `series`, once it has one.
fn query(prometheus: &str, series: &str) -> Option<String> {
    let body = get(prometheus, &format!("/api/v1/query?query={series}"))?;
    let answer: Value = serde_json::from_str(&body).ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_string)
}

fn wait_for_value(prometheus: &str, series: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = query(prometheus, series);
        if value.as_deref() == Some(wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has {series} = {value:?}, not {wanted}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn make_vhost_vsock(dev: &Path) {
    sh(&[
        "mknod",
        "-m",
        "0600",
        dev.join("vhost-vsock").to_str().unwrap(),
        "c",
        "10",
        "241",
    ]);
}

/// Prometheus with its data under `dir`, scraping `target` every second; stopped by PID on drop.
fn prometheus(dir: &Path, target: &str) -> (Background, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: cuttlefish-cni-agent\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian package prometheus) must be installed");
    (Background(child), address)
}

#[test]
fn prometheus_scrapes_the_cid_and_lease_series() {
    let pod = Pod::new("1.1.0");
    let dir: PathBuf = pod.dir.join("agent");
    let dev = dir.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::create_dir_all(dir.join("device-plugins")).unwrap();
    make_vhost_vsock(&dev);
    let log = dir.join("agent.log");
    let socket = dir.join("agent.sock");
    let agent = Command::new(AGENT)
        .args(["--socket", socket.to_str().unwrap()])
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        // No kubelet there: the device plugin waits, and still reports what it advertises.
        .args([
            "--device-plugin-dir",
            dir.join("device-plugins").to_str().unwrap(),
        ])
        .args(["--dev-root", dev.to_str().unwrap()])
        .args(["--cid-range", "100-131"])
        .args(["--metrics-address", "127.0.0.1:0"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _agent = Background(agent);
    let target = metrics_address(&log);

    // One pod served, and its guest's lease.
    let conf = pod.conf(json!({"dhcp": true, "agentSocket": socket}));
    pod.plugin("ADD", &conf).assert_ok();
    let guest = pod.guest_on("cvd-ebr", "m");
    let hook = pod.dir.join("udhcpc-hook.sh");
    std::fs::write(&hook, "#!/bin/sh\n").unwrap();
    sh(&["chmod", "0755", hook.to_str().unwrap()]);
    let args = udhcpc(&hook, true);
    guest.exec(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let (_prometheus, prometheus) = prometheus(&dir, &target);
    wait_for_value(&prometheus, "up", "1");
    wait_for_value(&prometheus, "cuttlefish_vsock_cids_advertised", "32");
    wait_for_value(&prometheus, "cuttlefish_vsock_cids_healthy", "32");
    wait_for_value(&prometheus, "cuttlefish_dhcp_pods_served", "1");
    wait_for_value(&prometheus, "cuttlefish_dhcp_leases_active", "1");
    wait_for_value(&prometheus, "cuttlefish_dhcp_leases_given_total", "1");

    // The host's vhost-vsock node goes: no CID is healthy any more; it comes back: all are.
    std::fs::remove_file(dev.join("vhost-vsock")).unwrap();
    wait_for_value(&prometheus, "cuttlefish_vsock_cids_healthy", "0");
    wait_for_value(&prometheus, "cuttlefish_vsock_cids_advertised", "32");
    make_vhost_vsock(&dev);
    wait_for_value(&prometheus, "cuttlefish_vsock_cids_healthy", "32");

    pod.plugin("DEL", &conf).assert_ok();
    wait_for_value(&prometheus, "cuttlefish_dhcp_pods_served", "0");
    wait_for_value(&prometheus, "cuttlefish_dhcp_leases_active", "0");
}
