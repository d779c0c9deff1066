//! ADD → CHECK → DEL → DEL for every spec version, and what ADD builds for several instances.

use crate::expect;
use crate::support::{Pod, PLUGIN, VERSIONS};
use serde_json::json;

fn lifecycle(version: &str) {
    let pod = Pod::new(version);
    let before = pod.snapshot();
    let conf = pod.conf(json!({}));
    let result = pod.plugin("ADD", &conf).assert_ok().json();

    // The result: prevResult passed through, our links appended with sandbox and MAC, no IPs.
    assert_eq!(result["cniVersion"], version);
    assert_eq!(result["ips"], pod.prev_result["ips"]);
    assert_eq!(result["routes"], pod.prev_result["routes"]);
    let interfaces = result["interfaces"].as_array().unwrap();
    let prev_interfaces = pod.prev_result["interfaces"].as_array().unwrap();
    assert_eq!(&interfaces[..prev_interfaces.len()], &prev_interfaces[..]);
    let ours: Vec<&str> = interfaces[prev_interfaces.len()..]
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        ours,
        [
            "cvd-ebr",
            "cvd-wbr",
            "cvd-mtap-01",
            "cvd-wifiap-01",
            "cvd-etap-01",
            "cvd-wtap-01"
        ]
    );
    for iface in &interfaces[prev_interfaces.len()..] {
        assert_eq!(iface["sandbox"], pod.pod.path().as_str());
        let name = iface["name"].as_str().unwrap();
        assert_eq!(iface["mac"], pod.link(name)["address"], "{name}");
    }
    expect::objects(&pod, &[1], None, None);

    let with_prev = pod.conf(json!({"prevResult": result}));
    let check = pod.plugin("CHECK", &with_prev);
    if version >= "0.4.0" {
        check.assert_ok();
    } else {
        assert_eq!(
            check.error_code(),
            1,
            "CHECK before 0.4.0 is an incompatible version"
        );
    }

    pod.plugin("DEL", &with_prev).assert_ok();
    assert_eq!(pod.snapshot(), before, "DEL leaves the namespace as ADD found it");
    pod.plugin("DEL", &with_prev).assert_ok();
    pod.exec_raw(PLUGIN, "DEL", with_prev.to_string().as_bytes(), "", &[])
        .assert_ok();
    assert_eq!(pod.snapshot(), before);
}

macro_rules! lifecycle_tests {
    ($($name:ident => $index:expr),*) => {
        $(#[test] fn $name() { lifecycle(VERSIONS[$index]); })*
    };
}

lifecycle_tests!(lifecycle_0_3_0 => 0, lifecycle_0_3_1 => 1, lifecycle_0_4_0 => 2, lifecycle_1_0_0 => 3, lifecycle_1_1_0 => 4);

#[test]
fn three_instances() {
    let pod = Pod::new("1.0.0");
    pod.plugin("ADD", &pod.conf(json!({"instances": 3}))).assert_ok();
    expect::objects(&pod, &[1, 2, 3], None, None);
    assert_eq!(
        pod.addresses("cvd-mtap-03"),
        ["192.168.97.9/30 brd 192.168.97.11"]
    );
    pod.plugin("CHECK", &pod.conf(json!({"instances": 3})))
        .assert_ok();
    pod.plugin("DEL", &pod.conf(json!({}))).assert_ok();
    expect::untouched(&pod);
}

/// The largest pod the plugin builds: its nf_tables batch has over 500 messages, and the kernel
/// acknowledges every one of them before the plugin reads the first acknowledgement.
#[test]
fn all_128_instances() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({"instances": 128, "maxInstancesPerPod": 128}));
    pod.plugin("ADD", &conf).assert_ok();
    let all: Vec<u32> = (1..=128).collect();
    expect::rules_and_sysctls(&pod, &all);
    let taps = pod
        .link_names()
        .into_iter()
        .filter(|name| name.starts_with("cvd-") && !name.ends_with("br"))
        .count();
    assert_eq!(taps, 4 * 128);
    expect::links(&pod, &[1, 64, 65, 128], None, None);
    pod.plugin("CHECK", &conf).assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    expect::untouched(&pod);
}

#[test]
fn range_crossing_64_65() {
    let pod = Pod::new("1.1.0");
    let conf = pod.conf(json!({"baseInstance": 63, "instances": 4}));
    pod.plugin("ADD", &conf).assert_ok();
    expect::objects(&pod, &[63, 64, 65, 66], None, None);
    assert_eq!(
        pod.addresses("cvd-mtap-64"),
        ["192.168.97.253/30 brd 192.168.97.255"]
    );
    assert_eq!(pod.addresses("cvd-mtap-65"), ["192.168.93.1/30 brd 192.168.93.3"]);
    assert_eq!(
        pod.addresses("cvd-wifiap-65"),
        ["192.168.95.1/30 brd 192.168.95.3"]
    );
    pod.plugin("CHECK", &conf).assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    expect::untouched(&pod);
}

#[test]
fn check_names_every_difference() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    pod.pod.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    pod.pod.exec(&["ip", "link", "set", "cvd-wtap-01", "nomaster"]);
    pod.pod
        .exec(&["ip", "addr", "del", "192.168.94.1/30", "dev", "cvd-wifiap-01"]);
    let ruleset = pod.nft();
    let first_rule = ruleset["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .find(|r| r["chain"] == "postrouting")
        .unwrap();
    let handle = first_rule["handle"].to_string();
    pod.pod.exec(&[
        "nft",
        "delete",
        "rule",
        "ip",
        "cuttlefish_nat",
        "postrouting",
        "handle",
        &handle,
    ]);
    let check = pod.plugin("CHECK", &conf);
    assert_eq!(check.error_code(), 102);
    let msg = check.json()["msg"].as_str().unwrap().to_string();
    for expected in [
        "ip_forward",
        "cvd-wtap-01 has master none",
        "cvd-wifiap-01 has addresses []",
        "postrouting rules",
    ] {
        assert!(msg.contains(expected), "{expected:?} missing from {msg}");
    }
    pod.plugin("DEL", &conf).assert_ok();
    expect::untouched(&pod);
}

#[test]
fn add_retried_without_del_rebuilds() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    pod.plugin("ADD", &conf).assert_ok();
    expect::objects(&pod, &[1], None, None);
    pod.plugin("DEL", &conf).assert_ok();
    expect::untouched(&pod);
}
