//! ADD on an empty pod: what it changes, in which order, and that CHECK accepts the result.

use super::support::{pod, pod_without_ipv6, settings, steps, Plugin};
use crate::mark::{TableRecord, LINK_GROUP};
use crate::model::{Chain, Change, Protocol, Rule, FILTER, NAT};

/// An ADD of instance 1: the record with the rules, the forwarding switches, each bridge
/// created down with its IPv6 settings before it comes up, each TAP created then marked (and
/// made a port), the addresses last.
const ADD_OF_INSTANCE_1: [&str; 25] = [
    "creating nftables tables ip cuttlefish_nat and inet cuttlefish_filter",
    "setting sysctl net/ipv4/ip_forward=1",
    "setting sysctl net/ipv6/conf/all/forwarding=1",
    "creating bridge cvd-ebr",
    "setting sysctl net/ipv6/conf/cvd-ebr/disable_ipv6=0",
    "setting sysctl net/ipv6/conf/cvd-ebr/addr_gen_mode=0",
    "setting sysctl net/ipv6/conf/cvd-ebr/autoconf=1",
    "configuring link cvd-ebr",
    "creating bridge cvd-wbr",
    "setting sysctl net/ipv6/conf/cvd-wbr/disable_ipv6=0",
    "setting sysctl net/ipv6/conf/cvd-wbr/addr_gen_mode=0",
    "setting sysctl net/ipv6/conf/cvd-wbr/autoconf=1",
    "configuring link cvd-wbr",
    "creating TAP cvd-mtap-01",
    "configuring link cvd-mtap-01",
    "creating TAP cvd-wifiap-01",
    "configuring link cvd-wifiap-01",
    "creating TAP cvd-etap-01",
    "configuring link cvd-etap-01",
    "creating TAP cvd-wtap-01",
    "configuring link cvd-wtap-01",
    "adding 192.168.98.1/24 brd 192.168.98.255 to cvd-ebr",
    "adding 192.168.96.1/24 brd 192.168.96.255 to cvd-wbr",
    "adding 192.168.97.1/30 brd 192.168.97.3 to cvd-mtap-01",
    "adding 192.168.94.1/30 brd 192.168.94.3 to cvd-wifiap-01",
];

#[test]
fn add_of_one_instance_makes_25_changes_in_order_and_check_accepts_them() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    assert_eq!(steps(&kernel.journal), ADD_OF_INSTANCE_1);
    assert_eq!(plugin.check(&mut kernel), []);
}

#[test]
fn the_record_goes_first_with_every_rule_and_the_sysctl_values_found() {
    let mut kernel = pod();
    kernel.set_sysctl("net/ipv6/conf/all/forwarding", "1");
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    let record = TableRecord {
        attachment: plugin.tag.as_str().to_string(),
        base_instance: 1,
        instances: 1,
        sysctls_before: vec![
            ("net/ipv4/ip_forward", Some("0".into())),
            ("net/ipv6/conf/all/forwarding", Some("1".into())),
        ],
    };
    assert_eq!(
        kernel.journal[0],
        Change::CreateTables {
            comment: record.to_comment(),
            rules: plugin.plan.nft_rules.clone(),
        }
    );
    for id in [NAT, FILTER] {
        let table = kernel.state.table(id).unwrap();
        assert_eq!(table.comment.as_deref(), Some(record.to_comment().as_str()));
    }
    let listed = kernel.state.tables.iter().flat_map(|t| &t.rules).count();
    assert_eq!(listed, plugin.plan.nft_rules.len());
    // Forwarding already on is neither written nor, later, restored.
    assert!(!steps(&kernel.journal)
        .iter()
        .any(|s| s.contains("conf/all/forwarding")));
    assert_eq!(kernel.journal.len(), 24);
    kernel.take_journal();
    plugin.del(&mut kernel).unwrap();
    assert!(!steps(&kernel.journal)
        .iter()
        .any(|s| s.contains("conf/all/forwarding")));
    assert_eq!(kernel.state.sysctl("net/ipv6/conf/all/forwarding"), Some("1"));
}

#[test]
fn every_link_is_marked_in_our_group_and_the_bridged_taps_are_ports() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    let index = |name: &str| kernel.state.link(name).unwrap().index;
    let configured: Vec<Change> = kernel
        .journal
        .iter()
        .filter(|c| matches!(c, Change::ConfigureLink { .. }))
        .cloned()
        .collect();
    let expect = |name: &str, master: Option<u32>| Change::ConfigureLink {
        name: name.into(),
        alias: plugin.alias(),
        group: LINK_GROUP,
        master,
    };
    assert_eq!(
        configured,
        [
            expect("cvd-ebr", None),
            expect("cvd-wbr", None),
            expect("cvd-mtap-01", None),
            expect("cvd-wifiap-01", None),
            expect("cvd-etap-01", Some(index("cvd-ebr"))),
            expect("cvd-wtap-01", Some(index("cvd-wbr"))),
        ]
    );
}

#[test]
fn add_returns_our_links_as_the_kernel_has_them() {
    let mut kernel = pod();
    let links = Plugin::one().add(&mut kernel).unwrap();
    for name in Plugin::one().plan.link_names() {
        let returned = links.iter().find(|l| l.name == name).unwrap();
        assert_eq!(Some(returned), kernel.state.link(name));
        assert!(returned.mac.is_some(), "{name}: the result names its MAC");
    }
}

#[test]
fn the_bridges_get_ipv6_whatever_the_pods_defaults_say() {
    let mut kernel = pod();
    for (key, value) in [("disable_ipv6", "1"), ("addr_gen_mode", "1"), ("autoconf", "0")] {
        kernel.set_sysctl(&format!("net/ipv6/conf/default/{key}"), value);
    }
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    for bridge in ["cvd-ebr", "cvd-wbr"] {
        let value = |key: &str| kernel.state.sysctl(&format!("net/ipv6/conf/{bridge}/{key}"));
        assert_eq!(
            [value("disable_ipv6"), value("addr_gen_mode"), value("autoconf")],
            [Some("0"), Some("0"), Some("1")],
            "{bridge}"
        );
    }
    assert_eq!(plugin.check(&mut kernel), []);
}

#[test]
fn without_ipv6_on_the_node_no_ipv6_sysctl_is_written() {
    let mut kernel = pod_without_ipv6();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    let expected: Vec<&str> = ADD_OF_INSTANCE_1
        .into_iter()
        .filter(|s| !s.contains("net/ipv6"))
        .collect();
    assert_eq!(steps(&kernel.journal), expected);
    assert_eq!(expected.len(), 18);
    let Change::CreateTables { comment, .. } = &kernel.journal[0] else {
        panic!("the record goes first");
    };
    let record = TableRecord::parse(comment).unwrap();
    assert_eq!(record.sysctls_before[1], ("net/ipv6/conf/all/forwarding", None));
    assert_eq!(plugin.check(&mut kernel), []);
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.state, before);
}

#[test]
fn three_instances_from_instance_5() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    let plugin = Plugin::new("pod-a", settings(5, 3));
    plugin.add(&mut kernel).unwrap();
    // The record and forwarding, two bridges, four TAPs of two changes per instance, two
    // addresses for the bridges and two per instance.
    assert_eq!(kernel.journal.len(), 3 + 2 * 5 + 3 * 8 + 2 + 3 * 2);
    let ours: Vec<&str> = kernel.state.links[2..].iter().map(|l| l.name.as_str()).collect();
    assert_eq!(ours, plugin.plan.link_names().collect::<Vec<_>>());
    assert_eq!(
        ours[2..6],
        ["cvd-mtap-05", "cvd-wifiap-05", "cvd-etap-05", "cvd-wtap-05"]
    );
    let mtap_07 = kernel.state.link("cvd-mtap-07").unwrap();
    let addresses: Vec<String> = kernel
        .state
        .addresses_of(mtap_07)
        .map(|a| format!("{}/{} brd {:?}", a.address, a.prefix, a.broadcast))
        .collect();
    assert_eq!(addresses, ["192.168.97.25/30 brd Some(192.168.97.27)"]);
    assert_eq!(plugin.check(&mut kernel), []);
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.state, before);
}

#[test]
fn mss_clamping_and_dns_redirection_are_rules_of_the_nat_table() {
    let mut kernel = pod();
    let mut with_both = settings(1, 1);
    with_both.dns_redirect = Some([10, 96, 0, 10].into());
    let plugin = Plugin::new("pod-a", with_both);
    plugin.add(&mut kernel).unwrap();
    let nat = kernel.state.table(NAT).unwrap();
    let chain = |name: &str, chain_type: &str, hook, priority| Chain {
        name: name.into(),
        chain_type: Some(chain_type.into()),
        hook: Some(hook),
        priority: Some(priority),
    };
    assert_eq!(
        nat.chains,
        [
            chain("prerouting", "nat", 0, -100),
            chain("forward", "filter", 2, -150),
            chain("postrouting", "nat", 4, 100),
        ]
    );
    let rules_of = |chain: &str| -> Vec<Option<Rule>> {
        nat.rules
            .iter()
            .filter(|r| r.chain == chain)
            .map(|r| r.kind)
            .collect()
    };
    let dns = |protocol| Rule::RedirectDns {
        protocol,
        server: [10, 96, 0, 10].into(),
    };
    assert_eq!(rules_of("forward"), [Some(Rule::ClampMss)]);
    assert_eq!(
        rules_of("prerouting"),
        [Some(dns(Protocol::Udp)), Some(dns(Protocol::Tcp))]
    );
    assert_eq!(rules_of("postrouting").len(), 4);
    assert_eq!(plugin.check(&mut kernel), []);

    let mut bare = pod();
    let mut neither = settings(1, 1);
    neither.clamp_mss = false;
    Plugin::new("pod-a", neither).add(&mut bare).unwrap();
    let chains: Vec<&str> = bare
        .state
        .table(NAT)
        .unwrap()
        .chains
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(chains, ["postrouting"]);
}
