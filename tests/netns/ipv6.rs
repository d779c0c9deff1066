//! IPv6 link-local on the bridges (cuttlefish-net.md §9.2): ADD turns IPv6 on for both bridges
//! whatever the pod's defaults say, and the pod reaches a guest behind `cvd-etap-01` at
//! `[<guest link-local>%cvd-ebr]:5554`, as Cuttlefish's fastboot proxy does.

use crate::support::{sh, wait_for_listener, Background, Netns, Pod, GUEST, UNPRIVILEGED_UID};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FASTBOOT: &str = "5554";

/// A guest with a kernel network stack behind one of the pod's TAPs: a namespace with a
/// persistent TAP `eth0`, and `cvd-test-guest relay` (as root, in the pod) as the wire between
/// the two TAPs.
struct TapGuest {
    relay: Background,
    netns: Netns,
}

impl TapGuest {
    fn new(pod: &Pod, pod_tap: &str, tag: &str) -> TapGuest {
        let netns = Netns::new(&format!("guest-{tag}"), &pod.id);
        sh(&[
            "ip", "-n", &netns.0, "tuntap", "add", "dev", "eth0", "mode", "tap", "vnet_hdr",
        ]);
        sh(&["ip", "-n", &netns.0, "link", "set", "eth0", "up"]);
        let relay = Background::start(
            &pod.pod,
            &[GUEST, "relay", "/dev/net/tun", pod_tap, &netns.path(), "eth0"],
        );
        TapGuest { relay, netns }
    }
}

impl Drop for TapGuest {
    fn drop(&mut self) {
        let _ = self.relay.0.kill();
        let _ = self.relay.0.wait();
        let _ = std::process::Command::new("ip")
            .args(["-n", &self.netns.0, "link", "del", "eth0"])
            .status();
    }
}

/// The link-local address of `link` in `netns` once it is usable (DAD done), waiting up to 10 s.
fn link_local(netns: &Netns, link: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = sh(&[
            "ip", "-n", &netns.0, "-6", "-j", "addr", "show", "dev", link, "scope", "link",
        ]);
        let links: Vec<Value> = serde_json::from_str(&out).unwrap();
        let usable = links
            .iter()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .find(|a| a["tentative"].is_null() && a["dadfailed"].is_null())
            .and_then(|a| a["local"].as_str().map(str::to_string));
        if usable.is_some() || Instant::now() >= deadline {
            return usable;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bridge_sysctls(pod: &Pod, bridge: &str) -> Vec<String> {
    ["disable_ipv6", "addr_gen_mode", "autoconf"]
        .iter()
        .map(|key| format!("{key}={}", pod.sysctl(&format!("net/ipv6/conf/{bridge}/{key}"))))
        .collect()
}

/// ADD in a pod whose own settings would leave the bridges without IPv6 (`settings`, written
/// before ADD), guests on `cvd-etap-01` and `cvd-wtap-01`, then the fastboot-style connection.
fn link_local_reaches_a_guest_despite(settings: &[&str]) {
    let pod = Pod::new("1.1.0");
    for setting in settings {
        pod.pod.exec(&["sysctl", "-qw", setting]);
    }
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    for bridge in ["cvd-ebr", "cvd-wbr"] {
        assert_eq!(
            bridge_sysctls(&pod, bridge),
            ["disable_ipv6=0", "addr_gen_mode=0", "autoconf=1"],
            "{bridge}"
        );
    }
    let ethernet = TapGuest::new(&pod, "cvd-etap-01", "e");
    let _wifi = TapGuest::new(&pod, "cvd-wtap-01", "w");
    for bridge in ["cvd-ebr", "cvd-wbr"] {
        assert!(
            link_local(&pod.pod, bridge).is_some_and(|a| a.starts_with("fe80::")),
            "{bridge} has no usable fe80:: address 10 s after a guest attached: {}",
            sh(&["ip", "-n", &pod.pod.0, "-6", "addr", "show", "dev", bridge])
        );
    }
    let guest = link_local(&ethernet.netns, "eth0").expect("the guest's eth0 has no link-local address");
    let _server = Background::start(
        &ethernet.netns,
        &[GUEST, "tcp-serve", &format!("[::]:{FASTBOOT}"), "64"],
    );
    wait_for_listener(&ethernet.netns, FASTBOOT.parse().unwrap());
    // From an ordinary process in the pod, like the fastboot proxy; through our filter table.
    let out = pod.guest_as(
        UNPRIVILEGED_UID,
        UNPRIVILEGED_UID,
        &["tcp-exchange", &format!("[{guest}%cvd-ebr]:{FASTBOOT}"), "64"],
    );
    assert_eq!(out.stdout, "exchanged 64 bytes", "{out:?}");
    pod.plugin("CHECK", &conf).assert_ok();
}

#[test]
fn bridges_get_link_local_when_the_pod_default_disables_ipv6() {
    // Also no link-local (addr_gen_mode 1) and no SLAAC by default: ADD sets all three.
    link_local_reaches_a_guest_despite(&[
        "net.ipv6.conf.default.disable_ipv6=1",
        "net.ipv6.conf.default.addr_gen_mode=1",
        "net.ipv6.conf.default.autoconf=0",
    ]);
}

#[test]
fn bridges_get_link_local_when_the_pod_disables_ipv6_for_all() {
    // Writing `all` also writes `default` and turns IPv6 off on every existing link, lo included.
    link_local_reaches_a_guest_despite(&["net.ipv6.conf.all.disable_ipv6=1"]);
}

#[test]
fn check_reports_a_bridge_whose_ipv6_settings_changed() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    pod.plugin("ADD", &conf).assert_ok();
    let changed = [
        ("cvd-ebr", "disable_ipv6", "1", "0"),
        ("cvd-wbr", "addr_gen_mode", "1", "0"),
        ("cvd-wbr", "autoconf", "0", "1"),
    ];
    for (bridge, key, value, _) in changed {
        pod.pod
            .exec(&["sysctl", "-qw", &format!("net.ipv6.conf.{bridge}.{key}={value}")]);
    }
    let out = pod.plugin("CHECK", &conf);
    assert_eq!(out.error_code(), 102, "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    for (bridge, key, value, expected) in changed {
        let line = format!("sysctl net/ipv6/conf/{bridge}/{key} is {value}, expected {expected}");
        assert!(msg.contains(&line), "{line:?} not in {msg:?}");
    }
    assert!(!msg.contains("cvd-ebr/addr_gen_mode"), "{msg}");
    pod.plugin("DEL", &conf).assert_ok();
    assert_eq!(pod.snapshot(), before);
}

/// The netlink layer carries host addresses of either family: what it adds is what `ip` lists
/// (an IPv4 address with its broadcast, an IPv6 one without), and `observe` reads both back.
#[test]
fn the_kernel_layer_adds_and_observes_addresses_of_either_family() {
    use cuttlefish_cni::kernel::{Kernel, NetnsKernel};
    use cuttlefish_cni::model::{Change, HostAddress};
    let netns = Netns::new("families", &crate::support::unique_id());
    sh(&["ip", "-n", &netns.0, "link", "add", "d0", "type", "bridge"]);
    let index: u32 = link_index(&netns, "d0");
    let ours = [
        HostAddress::v4([192, 168, 97, 1].into(), 30),
        HostAddress {
            address: "fd00:cf::1".parse().unwrap(),
            prefix: 64,
        },
    ];
    let observed = cuttlefish_cni::netns::Netns::open(&netns.path())
        .unwrap()
        .run(|| {
            let mut kernel = NetnsKernel::open(&netns.0)?;
            for address in ours {
                kernel.apply(&Change::AddAddress {
                    link: "d0".into(),
                    index,
                    address,
                })?;
            }
            kernel.observe(&[])
        })
        .unwrap();
    let listed = sh(&["ip", "-n", &netns.0, "-o", "addr", "show", "dev", "d0"]);
    assert!(
        listed.contains("inet 192.168.97.1/30 brd 192.168.97.3 "),
        "{listed}"
    );
    assert!(listed.contains("inet6 fd00:cf::1/64 "), "{listed}");
    let on_d0: Vec<_> = observed.addresses.iter().filter(|a| a.index == index).collect();
    assert_eq!(on_d0.len(), 2, "{on_d0:?}");
    for address in ours {
        assert!(
            on_d0.iter().any(|a| address.is(a)),
            "{address} not observed in {on_d0:?}"
        );
    }
    assert!(
        observed
            .addresses
            .iter()
            .any(|a| a.address == std::net::Ipv6Addr::LOCALHOST),
        "lo's ::1 is not observed: {:?}",
        observed.addresses
    );
}

fn link_index(netns: &Netns, link: &str) -> u32 {
    let out = sh(&["ip", "-n", &netns.0, "-j", "link", "show", "dev", link]);
    let links: Vec<Value> = serde_json::from_str(&out).unwrap();
    links[0]["ifindex"].as_u64().unwrap() as u32
}

/// CHECK compares IPv4 addresses only, the one family the plan uses: an address a guest's
/// router advertisement gives a bridge by SLAAC is not drift, an extra IPv4 address is.
#[test]
fn check_compares_the_plans_family_only() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    for (address, link) in [
        ("fd00:cf:1::10/64", "cvd-ebr"),
        ("fd00:cf:2::10/64", "cvd-mtap-01"),
    ] {
        sh(&[
            "ip", "-n", &pod.pod.0, "-6", "addr", "add", address, "dev", link, "nodad",
        ]);
    }
    pod.plugin("CHECK", &conf).assert_ok();
    sh(&[
        "ip",
        "-n",
        &pod.pod.0,
        "addr",
        "add",
        "10.9.9.9/24",
        "dev",
        "cvd-etap-01",
    ]);
    let out = pod.plugin("CHECK", &conf);
    assert_eq!(out.error_code(), 102, "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("cvd-etap-01 has addresses [10.9.9.9/24"), "{msg}");
    assert!(!msg.contains("fd00"), "{msg}");
    pod.plugin("DEL", &conf).assert_ok();
}
