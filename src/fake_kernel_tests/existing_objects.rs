//! ADD in a pod that already holds objects: this attachment's leftovers are removed first, then
//! built again; anybody else's objects of our names, or addresses in our subnets, are a
//! conflict and nothing changes.

use super::support::{pod, settings, steps, Plugin};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::mark::LINK_GROUP;
use crate::model::{Address, Change, Link, Rule};

fn conflict(error: Error) -> String {
    assert_eq!(error.code(), 100, "{error}");
    assert!(matches!(error, Error::Conflict { .. }), "{error:?}");
    error.to_string()
}

#[test]
fn a_retried_add_removes_its_own_objects_first() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    let first = steps(&kernel.take_journal());
    plugin.add(&mut kernel).unwrap();
    let retried = steps(&kernel.journal);
    assert_eq!(
        retried[..5],
        [
            "setting sysctl net/ipv4/ip_forward=0",
            "setting sysctl net/ipv6/conf/all/forwarding=0",
            "deleting nftables table ip cuttlefish_nat",
            "deleting nftables table inet cuttlefish_filter",
            &format!("deleting link group {LINK_GROUP}"),
        ]
    );
    assert_eq!(retried[5..], first, "then the same ADD");
    assert_eq!(plugin.check(&mut kernel), []);
}

#[test]
fn an_add_after_one_killed_before_marking_a_tap_replaces_its_leftovers() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    // Killed right after creating the first TAP, which has no alias and is in no group yet.
    kernel.kill_after(14);
    plugin.add(&mut kernel).unwrap_err();
    assert_eq!(kernel.state.link("cvd-mtap-01").unwrap().alias, None);
    kernel.restart();
    plugin.add(&mut kernel).unwrap();
    assert_eq!(plugin.check(&mut kernel), []);
    let names: Vec<&str> = kernel.state.links.iter().map(|l| l.name.as_str()).collect();
    let mut expected = vec!["lo", "eth0"];
    expected.extend(plugin.plan.link_names());
    assert_eq!(names, expected);
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.state, before);
}

#[test]
fn the_leftovers_of_an_add_with_other_settings_go_by_their_record() {
    let mut kernel = pod();
    Plugin::new("pod-a", settings(1, 3)).add(&mut kernel).unwrap();
    let plugin = Plugin::one();
    plugin.add(&mut kernel).unwrap();
    assert_eq!(plugin.check(&mut kernel), []);
    assert!(kernel
        .state
        .links
        .iter()
        .all(|l| !l.name.ends_with("-02") && !l.name.ends_with("-03")));
}

#[test]
fn a_foreign_link_of_our_name_is_a_conflict_and_nothing_changes() {
    for (alias, creator) in [
        (None, "someone else"),
        (Some("my bridge"), "someone else (alias \"my bridge\")"),
    ] {
        let mut kernel = pod();
        kernel.add_link(Link {
            name: "cvd-ebr".into(),
            alias: alias.map(String::from),
            kind: Some("bridge".into()),
            ..Link::default()
        });
        let before = kernel.state.clone();
        let plugin = Plugin::one();
        let error = plugin.add(&mut kernel).unwrap_err();
        assert_eq!(
            conflict(error),
            format!("link cvd-ebr: already exists in the pod, created by {creator}")
        );
        assert_eq!(kernel.journal, []);
        plugin.del(&mut kernel).unwrap();
        assert_eq!(kernel.state, before, "DEL leaves the user's bridge alone");
    }
}

#[test]
fn a_foreign_table_of_our_name_is_a_conflict_and_nothing_changes() {
    let mut kernel = pod();
    let foreign = Change::CreateTables {
        comment: "someone else's".into(),
        rules: vec![Rule::Masquerade("10.9.0.0/16".parse().unwrap())],
    };
    kernel.apply(&foreign).unwrap();
    kernel.take_journal();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    let error = plugin.add(&mut kernel).unwrap_err();
    assert_eq!(
        conflict(error),
        "nftables table ip cuttlefish_nat: already exists in the pod (comment \"someone else's\") \
         and was not created for this attachment"
    );
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
    plugin.del(&mut kernel).unwrap();
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
}

#[test]
fn an_address_in_our_subnets_on_a_foreign_link_is_a_conflict() {
    let mut kernel = pod();
    let mine = kernel.add_link(Link {
        name: "mine".into(),
        kind: Some("bridge".into()),
        ..Link::default()
    });
    kernel.state.addresses.push(Address {
        index: mine,
        address: [192, 168, 97, 2].into(),
        prefix: 24,
        broadcast: None,
    });
    let before = kernel.state.clone();
    let error = Plugin::one().add(&mut kernel).unwrap_err();
    assert_eq!(
        conflict(error),
        "address 192.168.97.2/24 on mine: overlaps 192.168.97.1/30 brd 192.168.97.3 planned for cvd-mtap-01"
    );
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
}

#[test]
fn another_attachments_objects_are_a_conflict_and_stay() {
    let mut kernel = pod();
    let other = Plugin::new("pod-b", settings(1, 1));
    other.add(&mut kernel).unwrap();
    kernel.take_journal();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    let error = plugin.add(&mut kernel).unwrap_err();
    assert!(conflict(error).starts_with(
        "nftables table ip cuttlefish_nat: already exists in the pod (comment \"cuttlefish-cni owner="
    ),);
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));

    // Its links alone (its tables gone) are a conflict too.
    kernel.state.tables.clear();
    let before = kernel.state.clone();
    let error = plugin.add(&mut kernel).unwrap_err();
    assert_eq!(
        conflict(error),
        "link cvd-ebr: already exists in the pod, created by another attachment"
    );
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
    assert_eq!(
        other.check(&mut kernel).len(),
        2,
        "only its two tables are missing"
    );
}
