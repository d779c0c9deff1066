//! CHECK's error message is a contract (kubelet events, scripts that read them): rendered from
//! the typed drifts, it says word for word what CHECK said before the drifts were typed.

use super::support::{pod, settings, Plugin};
use crate::error::Error;
use crate::model::{Address, FILTER};

#[test]
fn the_message_is_word_for_word_what_check_printed() {
    let mut owned = settings(1, 1);
    owned.tap_owner = Some(1000);
    let plugin = Plugin::new("pod-a", owned);
    let mut kernel = pod();
    plugin.added(&mut kernel);

    let ebr = kernel.link_mut("cvd-ebr");
    ebr.alias = None;
    ebr.group = 0;
    ebr.up = false;
    let bridge = ebr.bridge.as_mut().unwrap();
    bridge.stp_enabled = true;
    bridge.forward_delay = 1500;
    kernel.set_sysctl("net/ipv6/conf/cvd-ebr/disable_ipv6", "1");
    let wbr = kernel.state.link("cvd-wbr").unwrap().index;
    kernel.state.addresses.push(Address {
        index: wbr,
        address: [10, 1, 1, 1].into(),
        prefix: 24,
        broadcast: None,
    });
    let mtap = kernel.link_mut("cvd-mtap-01").tun.as_mut().unwrap();
    mtap.vnet_hdr = false;
    mtap.owner = Some(0);
    let wifiap = kernel.state.link("cvd-wifiap-01").unwrap().index;
    kernel.state.addresses.retain(|a| a.index != wifiap);
    let etap = kernel.link_mut("cvd-etap-01");
    etap.kind = Some("veth".into());
    etap.tun = None;
    kernel.link_mut("cvd-wtap-01").master = None;
    let nat = &mut kernel.state.tables[0];
    nat.chains[1].priority = Some(0);
    let first_masquerade = nat.rules.iter().position(|r| r.chain == "postrouting").unwrap();
    nat.rules.remove(first_masquerade);
    kernel.state.tables.retain(|t| t.id != FILTER);
    kernel.set_sysctl("net/ipv4/ip_forward", "0");

    let error = Error::CheckFailed(plugin.check(&mut kernel));
    assert_eq!(error.code(), 102);
    let expected = [
        "CHECK found 16 difference(s): cvd-ebr is not marked as created for this attachment (alias None)",
        "cvd-ebr is in link group 0, expected 52992",
        "cvd-ebr is down",
        "cvd-ebr has STP enabled",
        "cvd-ebr has forward_delay 1500, expected 0",
        "sysctl net/ipv6/conf/cvd-ebr/disable_ipv6 is 1, expected 0",
        "cvd-wbr has addresses [192.168.96.1/24 brd Some(192.168.96.255), 10.1.1.1/24 brd None], \
         expected [192.168.96.1/24 brd 192.168.96.255]",
        "cvd-mtap-01 is not vnet_hdr on",
        "cvd-mtap-01 has owner Some(0), expected Some(1000)",
        "cvd-wifiap-01 has addresses [], expected [192.168.94.1/30 brd 192.168.94.3]",
        "cvd-etap-01 is not a TAP (kind Some(\"veth\"))",
        "cvd-wtap-01 has master none, expected cvd-wbr",
        "nftables chains of ip cuttlefish_nat are [forward (Some(\"filter\") hook Some(2) priority Some(-150)), \
         postrouting (Some(\"nat\") hook Some(4) priority Some(0))], \
         expected [forward (filter hook 2 priority -150), postrouting (nat hook 4 priority 100)]",
        "ip cuttlefish_nat postrouting rules are [ip saddr 192.168.94.0/30 masquerade, \
         ip saddr 192.168.98.0/24 masquerade, ip saddr 192.168.96.0/24 masquerade], \
         expected [ip saddr 192.168.97.0/30 masquerade, ip saddr 192.168.94.0/30 masquerade, \
         ip saddr 192.168.98.0/24 masquerade, ip saddr 192.168.96.0/24 masquerade]",
        "nftables table inet cuttlefish_filter is missing",
        "sysctl net/ipv4/ip_forward is 0, expected 1",
    ];
    assert_eq!(error.to_string(), expected.join("; "));
}
