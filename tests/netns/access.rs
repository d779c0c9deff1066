//! What a real process with no capabilities can do with the result: attach to every TAP the way
//! crosvm does, be refused where tapOwner/tapGroup say so, and get guest traffic masqueraded.

use crate::support::{wait_for_listener, Pod, GUEST, PEER_IP, UNPRIVILEGED_UID};
use serde_json::json;
use std::process::{Command, Stdio};

const TAPS: [&str; 4] = ["cvd-mtap-01", "cvd-wifiap-01", "cvd-etap-01", "cvd-wtap-01"];

#[test]
fn capability_less_process_attaches_to_every_tap() {
    let pod = Pod::new("1.0.0");
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    let tun = pod.tun_device();
    for tap in TAPS {
        let out = pod.guest_as(UNPRIVILEGED_UID, UNPRIVILEGED_UID, &["attach", &tun, tap]);
        assert_eq!(out.stdout, "attached", "{tap}: {out:?}");
    }
    // ... but it cannot create a TAP of its own, nor change ours.
    let out = pod.guest_as(
        UNPRIVILEGED_UID,
        UNPRIVILEGED_UID,
        &["attach", &tun, "cvd-new-00"],
    );
    assert!(out.stdout.contains("Operation not permitted"), "{out:?}");
    assert!(
        !pod.unprivileged(&["ip", "link", "set", "cvd-ebr", "down"])
            .success
    );
    assert!(
        !pod.unprivileged(&["ip", "addr", "add", "10.9.9.9/32", "dev", "cvd-mtap-01"])
            .success
    );
    assert!(!pod.unprivileged(&["nft", "flush", "ruleset"]).success);
    assert_eq!(crate::expect::nat_rules(&pod).len(), 4);
}

#[test]
fn tap_owner_restricts_attachment_to_that_uid() {
    let pod = Pod::new("1.0.0");
    let other = UNPRIVILEGED_UID + 1;
    pod.plugin("ADD", &pod.conf(json!({"tapOwner": other})))
        .assert_ok();
    crate::expect::objects(&pod, &[1], Some(other), None);
    let tun = pod.tun_device();
    for tap in TAPS {
        let refused = pod.guest_as(UNPRIVILEGED_UID, UNPRIVILEGED_UID, &["attach", &tun, tap]);
        assert!(
            refused.stdout.contains("Operation not permitted"),
            "{tap}: {refused:?}"
        );
        assert_eq!(
            pod.guest_as(other, other, &["attach", &tun, tap]).stdout,
            "attached",
            "{tap}"
        );
    }
}

#[test]
fn tap_group_admits_members_only() {
    let pod = Pod::new("1.0.0");
    let group = 2000;
    pod.plugin("ADD", &pod.conf(json!({"tapGroup": group})))
        .assert_ok();
    crate::expect::objects(&pod, &[1], None, Some(group));
    let tun = pod.tun_device();
    let member = pod.guest_as(UNPRIVILEGED_UID, group, &["attach", &tun, "cvd-mtap-01"]);
    assert_eq!(member.stdout, "attached", "{member:?}");
    let stranger = pod.guest_as(
        UNPRIVILEGED_UID,
        UNPRIVILEGED_UID,
        &["attach", &tun, "cvd-mtap-01"],
    );
    assert!(
        stranger.stdout.contains("Operation not permitted"),
        "{stranger:?}"
    );
}

/// A frame from the guest side of cvd-mtap-01 (source 192.168.97.2) reaches a peer upstream of
/// the node, which sees the pod's address, and the answer comes back. The peer has no route to
/// 192.168.97.0/30, so only the masquerade can bring it back: without our table it fails.
#[test]
fn guest_traffic_leaves_the_pod_masqueraded() {
    let pod = Pod::with_peer("1.0.0");
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    let pod_ip = pod.prev_result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tun = pod.tun_device();

    let roundtrip = |port: &str| {
        let peer = pod.peer.as_ref().unwrap();
        let mut reflector = Command::new("ip")
            .args([
                "netns",
                "exec",
                &peer.0,
                GUEST,
                "reflect",
                &format!("0.0.0.0:{port}"),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_listener(peer, port.parse().unwrap());
        let guest = pod.guest_as(
            UNPRIVILEGED_UID,
            UNPRIVILEGED_UID,
            &[
                "udp",
                &tun,
                "cvd-mtap-01",
                "192.168.97.2",
                "192.168.97.1",
                PEER_IP,
                port,
            ],
        );
        let _ = reflector.kill();
        let _ = reflector.wait();
        guest
    };

    let through = roundtrip("7777");
    assert_eq!(through.stdout, format!("peer saw {pod_ip}"), "{through:?}");

    pod.pod.exec(&["nft", "delete", "table", "ip", "cuttlefish_nat"]);
    let without_nat = roundtrip("7778");
    assert!(
        without_nat.stdout.starts_with("error: no reply"),
        "{without_nat:?}"
    );
}
