//! Objects named like ours but not created by us are never adopted, changed or deleted; ADD fails
//! clearly instead and leaves the namespace as it was.

use crate::expect;
use crate::support::Pod;
use serde_json::json;

#[test]
fn a_users_own_bridge_named_cvd_ebr_is_left_alone() {
    let pod = Pod::new("1.0.0");
    pod.pod.exec(&["ip", "link", "add", "cvd-ebr", "type", "bridge"]);
    let before = pod.snapshot();
    let add = pod.plugin("ADD", &pod.conf(json!({})));
    assert_eq!(add.error_code(), 100);
    assert!(add.json()["msg"].as_str().unwrap().contains("cvd-ebr"), "{add:?}");
    assert_eq!(pod.snapshot(), before);
    pod.plugin("DEL", &pod.conf(json!({}))).assert_ok();
    assert_eq!(pod.snapshot(), before, "DEL must not delete the user's bridge");
    assert!(pod.link_names().contains(&"cvd-ebr".to_string()));
}

#[test]
fn a_foreign_nat_table_is_left_alone() {
    let pod = Pod::new("1.0.0");
    pod.pod.exec(&["nft", "add", "table", "ip", "cuttlefish_nat"]);
    pod.pod.exec(&[
        "nft",
        "add",
        "chain",
        "ip",
        "cuttlefish_nat",
        "postrouting",
        "{ type nat hook postrouting priority 100 ; }",
    ]);
    pod.pod.exec(&[
        "nft",
        "add",
        "rule",
        "ip",
        "cuttlefish_nat",
        "postrouting",
        "ip",
        "saddr",
        "10.9.0.0/16",
        "masquerade",
    ]);
    let before = pod.snapshot();
    let add = pod.plugin("ADD", &pod.conf(json!({})));
    assert_eq!(add.error_code(), 100);
    assert!(
        add.json()["msg"].as_str().unwrap().contains("cuttlefish_nat"),
        "{add:?}"
    );
    assert_eq!(pod.snapshot(), before);
    pod.plugin("DEL", &pod.conf(json!({}))).assert_ok();
    assert_eq!(
        pod.snapshot(),
        before,
        "DEL must not delete a table that is not ours"
    );
}

#[test]
fn a_foreign_filter_table_is_left_alone() {
    let pod = Pod::new("1.0.0");
    pod.pod.exec(&[
        "nft",
        "add",
        "table",
        "inet",
        "cuttlefish_filter",
        "{ comment \"someone else's\" ; }",
    ]);
    let before = pod.snapshot();
    let add = pod.plugin("ADD", &pod.conf(json!({})));
    assert_eq!(add.error_code(), 100);
    assert!(
        add.json()["msg"]
            .as_str()
            .unwrap()
            .contains("nftables table inet cuttlefish_filter"),
        "{add:?}"
    );
    assert_eq!(pod.snapshot(), before);
    pod.plugin("DEL", &pod.conf(json!({}))).assert_ok();
    assert_eq!(
        pod.snapshot(),
        before,
        "DEL must not delete a table that is not ours"
    );
}

#[test]
fn an_address_in_our_subnets_on_a_foreign_link_is_a_conflict() {
    let pod = Pod::new("1.0.0");
    pod.pod.exec(&["ip", "link", "add", "mine", "type", "bridge"]);
    pod.pod
        .exec(&["ip", "addr", "add", "192.168.97.2/24", "dev", "mine"]);
    let before = pod.snapshot();
    let add = pod.plugin("ADD", &pod.conf(json!({})));
    assert_eq!(add.error_code(), 100);
    assert!(
        add.json()["msg"].as_str().unwrap().contains("192.168.97.2/24"),
        "{add:?}"
    );
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn another_attachments_del_removes_nothing() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    pod.plugin("ADD", &conf).assert_ok();
    let other = pod.exec(
        crate::support::PLUGIN,
        "DEL",
        &conf,
        &[("CNI_CONTAINERID", "someone-else")],
    );
    other.assert_ok();
    expect::objects(&pod, &[1], None, None);
}
