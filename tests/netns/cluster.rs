//! Cluster realities the bare-metal script never met: a pod MTU below the guest's 1500 (Cilium
//! tunnels), and clusters where the guest's DNS servers (8.8.8.8) are unreachable.

use crate::support::{sh, wait_for_listener, Background, Netns, Pod, GUEST, PEER_IP};
use serde_json::json;

/// Drops ICMP "fragmentation needed" leaving `netns`: path MTU discovery cannot help.
fn drop_frag_needed(netns: &Netns) {
    netns.exec(&["nft", "add", "table", "ip", "cfct_drop"]);
    netns.exec(&[
        "nft",
        "add",
        "chain",
        "ip",
        "cfct_drop",
        "out",
        "{ type filter hook output priority 0 ; }",
    ]);
    netns.exec(&[
        "nft",
        "add",
        "rule",
        "ip",
        "cfct_drop",
        "out",
        "icmp",
        "type",
        "destination-unreachable",
        "icmp",
        "code",
        "frag-needed",
        "drop",
    ]);
}

/// TCP in both directions between a guest behind cvd-ebr (MTU 1500) and a peer, through a pod
/// whose link to the node has MTU 1400, with "fragmentation needed" dropped in the pod and the
/// node: it works with MSS clamping (the default) and stalls without it.
#[test]
fn guest_tcp_crosses_a_smaller_pod_mtu_thanks_to_mss_clamping() {
    for clamp in [true, false] {
        let pod = Pod::with_peer("1.0.0");
        let host_veth = pod.prev_result["interfaces"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        sh(&["ip", "-n", &pod.node.0, "link", "set", &host_veth, "mtu", "1400"]);
        pod.pod.exec(&["ip", "link", "set", "eth0", "mtu", "1400"]);
        drop_frag_needed(&pod.pod);
        drop_frag_needed(&pod.node);
        pod.plugin("ADD", &pod.conf(json!({"clampMss": clamp})))
            .assert_ok();
        pod.plugin("CHECK", &pod.conf(json!({"clampMss": clamp})))
            .assert_ok();
        let guest = pod.bridge_guest();
        let peer = pod.peer.as_ref().unwrap();
        let _server = Background::start(peer, &[GUEST, "tcp-serve", "0.0.0.0:8080", "300000"]);
        wait_for_listener(peer, 8080);
        let out = Netns::exec_status(
            &guest,
            &[GUEST, "tcp-exchange", &format!("{PEER_IP}:8080"), "300000"],
        );
        if clamp {
            assert_eq!(out.trim(), "exchanged 300000 bytes", "with clamping");
        } else {
            assert!(
                out.starts_with("error:"),
                "without clamping the transfer should stall: {out}"
            );
        }
    }
}

/// With dnsRedirect, guest DNS over UDP and TCP to any address reaches the pod's DNS server
/// (here a responder in the peer namespace, given through the `dns` capability).
#[test]
fn guest_dns_to_any_address_reaches_the_pods_dns_server() {
    let pod = Pod::with_peer("1.1.0");
    let peer = pod.peer.as_ref().unwrap();
    // An address that exists but serves no DNS: without the redirect, queries to it fail.
    sh(&[
        "ip",
        "-n",
        &peer.0,
        "addr",
        "add",
        "10.200.0.99/24",
        "dev",
        "eth0",
    ]);
    let conf = pod.conf(json!({"dnsRedirect": true, "runtimeConfig": {"dns": {"servers": [PEER_IP]}}}));
    pod.plugin("ADD", &conf).assert_ok();
    pod.plugin("CHECK", &conf).assert_ok();
    let guest = pod.bridge_guest();
    let expected = format!("peer saw {}", pod.ip());

    let udp = Background::start(peer, &[GUEST, "reflect", "0.0.0.0:53"]);
    wait_for_listener(peer, 53);
    assert_eq!(
        Netns::exec_status(&guest, &[GUEST, "udp-ask", "10.200.0.99:53"]).trim(),
        expected
    );
    drop(udp);
    let _tcp = Background::start(peer, &[GUEST, "reflect-tcp", "0.0.0.0:53"]);
    wait_for_listener(peer, 53);
    assert_eq!(
        Netns::exec_status(&guest, &[GUEST, "tcp-ask", "10.200.0.99:53"]).trim(),
        expected
    );

    // Without our prerouting chain the same query goes unanswered.
    pod.pod
        .exec(&["nft", "flush", "chain", "ip", "cuttlefish_nat", "prerouting"]);
    assert!(Netns::exec_status(&guest, &[GUEST, "udp-ask", "10.200.0.99:53"]).starts_with("error:"));
}
