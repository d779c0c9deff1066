//! A guest may send anything through its TAP. Forwarding is on in the pod, so without a filter a
//! packet with a source outside the guest's subnet, or any IPv6 packet, leaves the pod as it is,
//! and a primary that does not drop it (ptp here) carries it on. Only what the pod owes its
//! guests may leave: the /30's guest address from `cvd-mtap-NN`/`cvd-wifiap-NN`, the /24 from
//! the bridges, masqueraded.

use crate::support::{sh, Netns, Pod, GUEST, PEER_IP, UNPRIVILEGED_UID};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PEER_V6: &str = "2001:db8:2::1";
/// How long after the last send the peer's counters are read.
const SETTLE: Duration = Duration::from_secs(2);

/// IPv6 between pod, node and peer, so that nothing but the pod's own rules stands between a
/// guest's IPv6 packet and the peer: pod 2001:db8:1::2 → node → peer 2001:db8:2::1.
fn add_ipv6_path(pod: &Pod) {
    let node = &pod.node.0;
    let peer = &pod.peer.as_ref().unwrap().0;
    let host_veth = pod.prev_result["interfaces"][0]["name"].as_str().unwrap();
    let addr =
        |ns: &str, a: &str, dev: &str| sh(&["ip", "-n", ns, "-6", "addr", "add", a, "dev", dev, "nodad"]);
    addr(&pod.pod.0, "2001:db8:1::2/64", "eth0");
    addr(node, "2001:db8:1::1/64", host_veth);
    addr(node, "2001:db8:2::2/64", "up0");
    addr(peer, "2001:db8:2::1/64", "eth0");
    sh(&[
        "ip",
        "-n",
        &pod.pod.0,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:1::1",
    ]);
    sh(&[
        "ip",
        "-n",
        peer,
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        "2001:db8:2::2",
    ]);
    pod.node
        .exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
}

/// Counters in the peer, before anything else there can drop a packet: one per UDP port, and
/// one for port `masqueraded_port` from the pod's own address.
fn count_arrivals(peer: &Netns, pod_ip: &str, ports: &[u16], masqueraded_port: u16) {
    let mut rules = format!(
        "table inet cfct_count {{ chain pre {{ type filter hook prerouting priority -300 ;\n\
         ip saddr {pod_ip} udp dport {masqueraded_port} counter comment \"masqueraded\"\n"
    );
    for port in ports {
        rules.push_str(&format!("udp dport {port} counter comment \"{port}\"\n"));
    }
    rules.push_str("}\n}\n");
    let file = std::env::temp_dir().join(format!("{}-count.nft", peer.0));
    std::fs::write(&file, rules).unwrap();
    peer.exec(&["nft", "-f", file.to_str().unwrap()]);
    std::fs::remove_file(file).unwrap();
}

/// Packets counted by the counter with this comment.
fn arrivals(peer: &Netns, comment: &str) -> u64 {
    let table: Value =
        serde_json::from_str(&peer.exec(&["nft", "-j", "list", "table", "inet", "cfct_count"])).unwrap();
    let rule = table["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .find(|r| r["comment"] == comment)
        .unwrap_or_else(|| panic!("no counter {comment}"));
    rule["expr"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["counter"]["packets"].as_u64())
        .unwrap()
}

#[test]
fn spoofed_and_ipv6_guest_traffic_never_leaves_the_pod() {
    let pod = Pod::with_peer("1.0.0");
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    add_ipv6_path(&pod);
    let peer = pod.peer.as_ref().unwrap();
    let pod_ip = pod.ip();
    let tun = pod.tun_device();

    // From the guest side of cvd-mtap-01 (guest 192.168.97.2): (source, destination, port).
    let honest = ("192.168.97.2", PEER_IP, 9001);
    let spoofed = [
        ("10.99.0.7", PEER_IP, 9002),
        // The guest address of another of the pod's TAPs (cvd-wifiap-01).
        ("192.168.94.2", PEER_IP, 9003),
        ("2001:db8:97::2", PEER_V6, 9004),
    ];
    // From a guest behind cvd-ebr (192.168.98.50): honest, then with a source outside the /24.
    let (bridge_honest, bridge_spoofed) = (9005, 9006);
    let ports: Vec<u16> = [honest.2, bridge_honest, bridge_spoofed]
        .into_iter()
        .chain(spoofed.iter().map(|s| s.2))
        .collect();
    count_arrivals(peer, &pod_ip, &ports, honest.2);

    // The spoofed datagrams go first and the honest ones last, on the same paths: once the
    // honest ones have arrived, anything spoofed that was forwarded has arrived too.
    for (src, dst, port) in spoofed.iter().chain([&honest]) {
        let out = pod.guest_as(
            UNPRIVILEGED_UID,
            UNPRIVILEGED_UID,
            &[
                "send",
                &tun,
                "cvd-mtap-01",
                "192.168.97.2",
                "192.168.97.1",
                src,
                dst,
                &port.to_string(),
            ],
        );
        assert_eq!(out.stdout, "sent", "{out:?}");
    }
    let guest = pod.bridge_guest();
    guest.exec(&["ip", "addr", "add", "10.99.0.8/32", "dev", "eth0"]);
    let spoofing_route = format!("{PEER_IP}/32");
    guest.exec(&[
        "ip",
        "route",
        "add",
        &spoofing_route,
        "via",
        "192.168.98.1",
        "src",
        "10.99.0.8",
    ]);
    guest.exec(&[GUEST, "garbage", &format!("{PEER_IP}:{bridge_spoofed}"), "3"]);
    guest.exec(&["ip", "route", "del", &spoofing_route]);
    guest.exec(&[GUEST, "garbage", &format!("{PEER_IP}:{bridge_honest}"), "3"]);
    let last_sent = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(5);
    while (arrivals(peer, "masqueraded") < 3 || arrivals(peer, &bridge_honest.to_string()) < 3)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        arrivals(peer, "masqueraded"),
        3,
        "the honest datagrams from the TAP did not arrive"
    );
    assert_eq!(
        arrivals(peer, &honest.2.to_string()),
        3,
        "the honest datagrams arrived unmasqueraded"
    );
    assert_eq!(
        arrivals(peer, &bridge_honest.to_string()),
        3,
        "the honest datagrams from the bridge did not arrive"
    );
    // Forwarded IPv6 reached the peer about 0.5 s after it was sent (without the filter): give
    // a spoofed packet that much and more before concluding it never arrives.
    std::thread::sleep(SETTLE.saturating_sub(last_sent.elapsed()));
    let leaked: Vec<String> = spoofed
        .iter()
        .map(|(src, _, port)| (src.to_string(), *port))
        .chain([("10.99.0.8 behind cvd-ebr".to_string(), bridge_spoofed)])
        .filter_map(|(src, port)| {
            let n = arrivals(peer, &port.to_string());
            (n > 0).then(|| format!("{n} datagrams from {src}"))
        })
        .collect();
    assert!(leaked.is_empty(), "left the pod: {leaked:?}");
}

/// br_netfilter (built into this kernel, loaded on most Kubernetes nodes) passes frames
/// bridged between two guests of one bridge through the forward hook. They never leave the
/// pod, so the filter lets them through, IPv6 included.
#[test]
fn guests_on_one_bridge_still_reach_each_other_over_ipv6() {
    let pod = Pod::new("1.0.0");
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    assert_eq!(
        pod.sysctl("net/bridge/bridge-nf-call-ip6tables"),
        "1",
        "this test needs br_netfilter, or it proves nothing"
    );
    let first = pod.guest_on("cvd-ebr", "g1");
    let second = pod.guest_on("cvd-ebr", "g2");
    first.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:98::51/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    second.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:98::52/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    first.exec(&["busybox", "ping", "-6", "-c", "1", "-W", "5", "2001:db8:98::52"]);
}

/// CHECK names the filter when it is incomplete or gone.
#[test]
fn check_reports_missing_guest_filter_rules() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    pod.plugin("CHECK", &conf).assert_ok();
    let listing = pod.pod.exec(&[
        "nft",
        "-a",
        "list",
        "chain",
        "inet",
        "cuttlefish_filter",
        "forward",
    ]);
    let handle = listing
        .lines()
        .find(|l| l.trim().starts_with("iifname \"cvd-*\" drop"))
        .and_then(|l| l.split("# handle ").nth(1))
        .unwrap_or_else(|| panic!("no drop rule in {listing}"))
        .trim()
        .to_string();
    pod.pod.exec(&[
        "nft",
        "delete",
        "rule",
        "inet",
        "cuttlefish_filter",
        "forward",
        "handle",
        &handle,
    ]);
    let check = pod.plugin("CHECK", &conf);
    assert_eq!(check.error_code(), 102);
    let msg = check.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains("inet cuttlefish_filter forward rules") && msg.contains(r#"iifname "cvd-*" drop"#),
        "{msg}"
    );
    pod.pod
        .exec(&["nft", "delete", "table", "inet", "cuttlefish_filter"]);
    let check = pod.plugin("CHECK", &conf);
    assert_eq!(check.error_code(), 102);
    let msg = check.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains("nftables table inet cuttlefish_filter is missing"),
        "{msg}"
    );
}

/// Release 0.1.0 built `ip cuttlefish_nat` alone, with the same record. DEL after an upgrade
/// removes it and everything else of ours.
#[test]
fn a_pod_built_by_release_0_1_0_is_deleted_after_an_upgrade() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    pod.plugin("ADD", &conf).assert_ok();
    pod.pod
        .exec(&["nft", "delete", "table", "inet", "cuttlefish_filter"]);
    pod.plugin("DEL", &conf).assert_ok();
    assert_eq!(pod.snapshot(), before);
}
