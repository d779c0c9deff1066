//! CHECK finds every kind of drift: after a good ADD, one object is changed as a tenant could,
//! and CHECK names exactly that difference.

use super::support::{pod, settings, Plugin};
use crate::check::{Drift, Master, TapFlag};
use crate::kernel::fake::FakeKernel;
use crate::kernel::Kernel;
use crate::mark::{TableRecord, LINK_GROUP};
use crate::model::{chains_for, Address, Change, HostAddress, ListedRule, Rule, FILTER, NAT};

/// What CHECK of `plugin` finds after a good ADD and `tamper`.
fn drifts_after(plugin: &Plugin, tamper: impl FnOnce(&mut FakeKernel)) -> Vec<Drift> {
    let mut kernel = pod();
    plugin.added(&mut kernel);
    tamper(&mut kernel);
    plugin.check(&mut kernel)
}

fn one_after(tamper: impl FnOnce(&mut FakeKernel)) -> Vec<Drift> {
    drifts_after(&Plugin::one(), tamper)
}

/// `ip link del`, through the kernel model.
fn delete_link(kernel: &mut FakeKernel, name: &str) {
    let index = kernel.state.link(name).unwrap().index;
    kernel
        .apply(&Change::DeleteLink {
            name: name.into(),
            index,
        })
        .unwrap();
}

fn link(name: &str) -> String {
    name.to_string()
}

#[test]
fn a_missing_link() {
    assert_eq!(
        one_after(|k| delete_link(k, "cvd-wtap-01")),
        [Drift::LinkMissing {
            link: link("cvd-wtap-01")
        }]
    );
}

#[test]
fn a_missing_bridge_is_one_drift_not_one_per_port() {
    assert_eq!(
        one_after(|k| delete_link(k, "cvd-ebr")),
        [Drift::LinkMissing {
            link: link("cvd-ebr")
        }]
    );
}

#[test]
fn an_alias_of_this_attachment_that_is_not_the_one_add_wrote() {
    let plugin = Plugin::one();
    let mut with_cid = plugin.settings;
    with_cid.vsock_cid = Some(99);
    let other = plugin.tag.link_alias(&with_cid);
    let tampered = other.clone();
    assert_eq!(
        drifts_after(&plugin, |k| k.link_mut("cvd-ebr").alias = Some(tampered)),
        [Drift::WrongAlias {
            link: link("cvd-ebr"),
            actual: other,
            expected: plugin.alias(),
        }]
    );
}

#[test]
fn a_link_without_our_mark() {
    for alias in [
        None,
        Some("cuttlefish-cni owner=0123456789abcdef base=1 instances=1"),
    ] {
        let tampered = alias.map(String::from);
        assert_eq!(
            one_after(|k| k.link_mut("cvd-mtap-01").alias = tampered),
            [Drift::NotMarked {
                link: link("cvd-mtap-01"),
                alias: alias.map(String::from),
            }]
        );
    }
}

#[test]
fn a_link_in_another_group() {
    assert_eq!(
        one_after(|k| k.link_mut("cvd-etap-01").group = 0),
        [Drift::WrongGroup {
            link: link("cvd-etap-01"),
            actual: 0,
            expected: LINK_GROUP,
        }]
    );
}

#[test]
fn a_link_that_is_down() {
    assert_eq!(
        one_after(|k| k.link_mut("cvd-wbr").up = false),
        [Drift::Down {
            link: link("cvd-wbr")
        }]
    );
}

#[test]
fn a_bridge_that_is_not_a_bridge() {
    let drifts = one_after(|k| {
        let ebr = k.link_mut("cvd-ebr");
        ebr.kind = Some("dummy".into());
        ebr.bridge = None;
    });
    assert_eq!(
        drifts,
        [Drift::NotABridge {
            link: link("cvd-ebr"),
            kind: Some("dummy".into()),
        }]
    );
}

#[test]
fn a_bridge_with_stp() {
    assert_eq!(
        one_after(|k| k.link_mut("cvd-ebr").bridge.as_mut().unwrap().stp_enabled = true),
        [Drift::StpEnabled {
            link: link("cvd-ebr")
        }]
    );
}

#[test]
fn a_bridge_with_a_forward_delay() {
    assert_eq!(
        one_after(|k| k.link_mut("cvd-wbr").bridge.as_mut().unwrap().forward_delay = 1500),
        [Drift::ForwardDelay {
            link: link("cvd-wbr"),
            actual: 1500,
        }]
    );
}

#[test]
fn a_tap_that_is_not_a_tap() {
    let drifts = one_after(|k| {
        let mtap = k.link_mut("cvd-mtap-01");
        mtap.kind = Some("veth".into());
        mtap.tun = None;
    });
    assert_eq!(
        drifts,
        [Drift::NotATap {
            link: link("cvd-mtap-01"),
            kind: Some("veth".into()),
        }]
    );
}

#[test]
fn each_tap_flag() {
    type Flip = fn(&mut crate::model::TunInfo);
    let cases: [(TapFlag, Flip); 5] = [
        (TapFlag::TypeTap, |t| t.is_tap = false),
        (TapFlag::NoPacketInfo, |t| t.packet_info = true),
        (TapFlag::VnetHdr, |t| t.vnet_hdr = false),
        (TapFlag::Persist, |t| t.persist = false),
        (TapFlag::SingleQueue, |t| t.multi_queue = true),
    ];
    for (flag, flip) in cases {
        assert_eq!(
            one_after(|k| flip(k.link_mut("cvd-wifiap-01").tun.as_mut().unwrap())),
            [Drift::TapFlag {
                link: link("cvd-wifiap-01"),
                flag,
            }],
            "{flag}"
        );
    }
}

#[test]
fn a_tap_owner_and_group() {
    let mut owned = settings(1, 1);
    owned.tap_owner = Some(1000);
    let plugin = Plugin::new("pod-a", owned);
    let drifts = drifts_after(&plugin, |k| {
        let tun = k.link_mut("cvd-etap-01").tun.as_mut().unwrap();
        tun.owner = Some(0);
        tun.group = Some(5);
    });
    assert_eq!(
        drifts,
        [
            Drift::TapOwner {
                link: link("cvd-etap-01"),
                actual: Some(0),
                expected: Some(1000),
            },
            Drift::TapGroup {
                link: link("cvd-etap-01"),
                actual: Some(5),
                expected: None,
            }
        ]
    );
}

#[test]
fn a_tap_with_the_wrong_master() {
    let cases = [
        ("cvd-etap-01", None, Master::None, Some("cvd-ebr")),
        (
            "cvd-etap-01",
            Some("cvd-wbr"),
            Master::Link(link("cvd-wbr")),
            Some("cvd-ebr"),
        ),
        (
            "cvd-mtap-01",
            Some("cvd-ebr"),
            Master::Link(link("cvd-ebr")),
            None,
        ),
    ];
    for (tap, new_master, actual, expected) in cases {
        let drifts = one_after(|k| {
            let index = new_master.map(|m| k.state.link(m).unwrap().index);
            k.link_mut(tap).master = index;
        });
        assert_eq!(
            drifts,
            [Drift::WrongMaster {
                link: link(tap),
                actual: actual.clone(),
                expected,
            }],
            "{tap} with master {actual}"
        );
    }
    assert_eq!(
        one_after(|k| k.link_mut("cvd-wtap-01").master = Some(999)),
        [Drift::WrongMaster {
            link: link("cvd-wtap-01"),
            actual: Master::Index(999),
            expected: Some("cvd-wbr"),
        }]
    );
}

#[test]
fn missing_and_extra_addresses() {
    let drifts = one_after(|k| {
        let wifiap = k.state.link("cvd-wifiap-01").unwrap().index;
        k.state.addresses.retain(|a| a.index != wifiap);
    });
    assert_eq!(
        drifts,
        [Drift::Addresses {
            link: link("cvd-wifiap-01"),
            actual: vec![],
            expected: vec![HostAddress {
                address: [192, 168, 94, 1].into(),
                prefix: 30,
            }],
        }]
    );

    let mut extra = None;
    let drifts = one_after(|k| {
        let ebr = k.state.link("cvd-ebr").unwrap().index;
        let address = Address {
            index: ebr,
            address: [10, 1, 1, 1].into(),
            prefix: 24,
            broadcast: None,
        };
        k.state.addresses.push(address);
        extra = Some(address);
    });
    let ours = Address {
        index: extra.unwrap().index,
        address: [192, 168, 98, 1].into(),
        prefix: 24,
        broadcast: Some([192, 168, 98, 255].into()),
    };
    assert_eq!(
        drifts,
        [Drift::Addresses {
            link: link("cvd-ebr"),
            actual: vec![ours, extra.unwrap()],
            expected: vec![HostAddress {
                address: [192, 168, 98, 1].into(),
                prefix: 24,
            }],
        }]
    );
}

#[test]
fn a_bridge_ipv6_sysctl() {
    assert_eq!(
        one_after(|k| k.set_sysctl("net/ipv6/conf/cvd-wbr/disable_ipv6", "1")),
        [Drift::Sysctl {
            name: "net/ipv6/conf/cvd-wbr/disable_ipv6".into(),
            actual: "1".into(),
            expected: "0",
        }]
    );
}

#[test]
fn a_forwarding_sysctl() {
    assert_eq!(
        one_after(|k| k.set_sysctl("net/ipv6/conf/all/forwarding", "0")),
        [Drift::Sysctl {
            name: "net/ipv6/conf/all/forwarding".into(),
            actual: "0".into(),
            expected: "1",
        }]
    );
}

#[test]
fn a_missing_table() {
    assert_eq!(
        one_after(|k| k.state.tables.retain(|t| t.id != FILTER)),
        [Drift::TableMissing(FILTER)]
    );
}

#[test]
fn a_table_that_is_not_ours() {
    assert_eq!(
        one_after(|k| k.state.tables[0].comment = Some("written by hand".into())),
        [Drift::TableNotOurs {
            table: NAT,
            comment: "written by hand".into(),
        }]
    );
}

#[test]
fn a_damaged_record() {
    let plugin = Plugin::one();
    let damaged = format!("cuttlefish-cni owner={} base=1", plugin.tag.as_str());
    let tampered = damaged.clone();
    assert_eq!(
        drifts_after(&plugin, |k| k.state.tables[1].comment = Some(tampered)),
        [Drift::RecordDamaged {
            table: FILTER,
            reason: TableRecord::parse(&damaged).unwrap_err(),
        }]
    );
}

#[test]
fn a_chain_with_another_priority() {
    let plugin = Plugin::one();
    let mut actual = Vec::new();
    let drifts = drifts_after(&plugin, |k| {
        let nat = &mut k.state.tables[0];
        nat.chains
            .iter_mut()
            .find(|c| c.name == "postrouting")
            .unwrap()
            .priority = Some(0);
        actual = nat.chains.clone();
    });
    let expected = chains_for(&plugin.plan.nft_rules)
        .into_iter()
        .filter(|c| c.table == NAT)
        .collect();
    assert_eq!(
        drifts,
        [Drift::Chains {
            table: NAT,
            actual,
            expected,
        }]
    );
}

#[test]
fn a_missing_rule_and_a_rule_not_ours() {
    let plugin = Plugin::one();
    let guard: Vec<Rule> = plugin
        .plan
        .nft_rules
        .iter()
        .filter(|r| r.chain().table == FILTER)
        .copied()
        .collect();
    let drifts = drifts_after(&plugin, |k| {
        let filter = &mut k.state.tables[1];
        filter.rules.remove(0);
        filter.rules.push(ListedRule {
            chain: "forward".into(),
            kind: None,
        });
    });
    let mut actual: Vec<Option<Rule>> = guard[1..].iter().copied().map(Some).collect();
    actual.push(None);
    assert_eq!(
        drifts,
        [Drift::Rules {
            table: FILTER,
            chain: "forward",
            actual,
            expected: guard,
        }]
    );
}
