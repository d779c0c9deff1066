//! `vsockCid: "auto"`: node-unique vsock CIDs for the pods of one node, handed out by ADD and
//! given back by DEL and GC, while every pod runs instance 1. The pod reads its CID without
//! privileges, from the link alias and through `conf/cvd-vsock-cid.sh`.

use crate::expect;
use crate::support::{plugin_in_parallel, unique_id, Netns, Pod, PLUGIN};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

fn auto(pod: &Pod, extra: Value) -> Value {
    let mut conf = pod.conf(json!({"vsockCid": "auto"}));
    for (k, v) in extra.as_object().unwrap() {
        conf[k] = v.clone();
    }
    conf
}

/// The instance numbers a result names, from its cvd-mtap-NN interfaces.
fn numbers(result: &Value) -> Vec<u32> {
    result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str()?.strip_prefix("cvd-mtap-")?.parse().ok())
        .collect()
}

/// The first CID in the alias of the pod's links, as a process in the pod reads it.
fn alias_cid(pod: &Pod) -> u32 {
    let alias = pod.unprivileged(&["cat", "/sys/class/net/cvd-ebr/ifalias"]);
    assert!(alias.success, "{alias:?}");
    alias
        .stdout
        .split(' ')
        .find_map(|w| w.strip_prefix("cid="))
        .unwrap_or_else(|| panic!("no cid= in {:?}", alias.stdout))
        .parse()
        .unwrap()
}

fn gc(pod: &Pod, network: &str, valid: Value) {
    let conf = json!({"cniVersion": "1.1.0", "name": network, "type": "cuttlefish-cni", "vsockCid": "auto",
                      "dataDir": pod.alloc_dir(), "cni.dev/valid-attachments": valid});
    pod.exec_raw(PLUGIN, "GC", conf.to_string().as_bytes(), "", &[])
        .assert_ok();
}

#[test]
fn twenty_parallel_pods_get_distinct_cids_all_at_instance_1() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let pods: Vec<Pod> = (0..20).map(|_| Pod::on_node("1.1.0", node.clone())).collect();
    let instances = |i: usize| 1 + (i % 2) as u32;
    let conf = |pod: &Pod, i: usize| auto(pod, json!({"instances": instances(i)}));
    let results = plugin_in_parallel(&pods, "ADD", conf);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/cvd-vsock-cid.sh");
    let mut seen = BTreeSet::new();
    for (i, (pod, result)) in pods.iter().zip(&results).enumerate() {
        let n = instances(i);
        assert_eq!(numbers(result), (1..=n).collect::<Vec<_>>());
        expect::objects(pod, &(1..=n).collect::<Vec<_>>(), None, None);
        let first = alias_cid(pod);
        for cid in first..first + n {
            assert!(
                (3..=1026).contains(&cid),
                "CID {cid} outside the default cidRange"
            );
            assert!(seen.insert(cid), "CID {cid} given to two pods");
        }
        let flag = pod.unprivileged(&["sh", &pod.shared_copy(script)]);
        assert_eq!(flag.stdout, format!("--vsock_guest_cid={first}"), "{flag:?}");
        pod.plugin("CHECK", &conf(pod, i)).assert_ok();
    }
    assert_eq!(pods[0].allocated_cids(), seen);

    plugin_in_parallel(&pods, "DEL", conf);
    assert!(
        pods[0].allocated_cids().is_empty(),
        "DEL left {:?} allocated",
        pods[0].allocated_cids()
    );
    for pod in &pods {
        expect::untouched(pod);
    }
}

#[test]
fn a_retry_keeps_its_cids_and_exhaustion_fails_cleanly() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let (first, second) = (Pod::on_node("1.0.0", node.clone()), Pod::on_node("1.0.0", node));
    let range = json!({"cidRange": [5, 6], "instances": 2});
    let add_first = || {
        let result = first
            .plugin("ADD", &auto(&first, range.clone()))
            .assert_ok()
            .json();
        (numbers(&result), alias_cid(&first))
    };
    assert_eq!(add_first(), (vec![1, 2], 5));
    assert_eq!(add_first(), (vec![1, 2], 5), "a retried ADD keeps its CIDs");
    assert_eq!(first.allocated_cids(), BTreeSet::from([5, 6]));

    let before = second.snapshot();
    let full = second.plugin("ADD", &auto(&second, range.clone()));
    assert_eq!(full.error_code(), 11, "{full:?}");
    let msg = full.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains("cidRange [5, 6]") && msg.contains("_vsock-cids"),
        "{msg}"
    );
    assert_eq!(second.snapshot(), before);
    assert_eq!(first.allocated_cids(), BTreeSet::from([5, 6]));

    first.plugin("DEL", &auto(&first, range.clone())).assert_ok();
    assert!(first.allocated_cids().is_empty());
    second.plugin("ADD", &auto(&second, range.clone())).assert_ok();
    assert_eq!(alias_cid(&second), 5);

    // CHECK compares the alias the pod reads its CID from.
    let alias = second.link("cvd-ebr")["ifalias"]
        .as_str()
        .unwrap()
        .replace("cid=5", "cid=99");
    second
        .pod
        .exec(&["ip", "link", "set", "cvd-ebr", "alias", &alias]);
    let out = second.plugin("CHECK", &auto(&second, range));
    assert_eq!(out.error_code(), 102, "{out:?}");
    assert!(out.stdout.contains("cvd-ebr has alias"), "{out:?}");
}

#[test]
fn cids_of_a_killed_add_are_reclaimed_by_del_and_by_gc() {
    let pod = Pod::new("1.1.0");
    let conf = auto(&pod, json!({}));
    let killed = pod.exec(PLUGIN, "ADD", &conf, &[("CUTTLEFISH_CNI_FAULT", "kill:5")]);
    assert!(!killed.success);
    assert_eq!(pod.allocated_cids(), BTreeSet::from([3]));
    pod.plugin("DEL", &conf).assert_ok();
    assert!(pod.allocated_cids().is_empty());

    let killed = pod.exec(PLUGIN, "ADD", &conf, &[("CUTTLEFISH_CNI_FAULT", "kill:5")]);
    assert!(!killed.success);
    let live = json!([{"containerID": pod.container_id, "ifname": "eth0"}]);
    gc(&pod, "cfnet", live);
    assert_eq!(
        pod.allocated_cids(),
        BTreeSet::from([3]),
        "GC released a valid attachment's CID"
    );
    // CIDs are node-wide, but GC of another network knows only its own attachments.
    gc(&pod, "othernet", json!([]));
    assert_eq!(
        pod.allocated_cids(),
        BTreeSet::from([3]),
        "GC of another network released it"
    );
    gc(&pod, "cfnet", json!([]));
    assert!(
        pod.allocated_cids().is_empty(),
        "GC kept a stale attachment's CID"
    );
}

#[test]
fn the_networks_of_a_node_share_its_cids() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let (first, second) = (Pod::on_node("1.0.0", node.clone()), Pod::on_node("1.0.0", node));
    first.plugin("ADD", &auto(&first, json!({}))).assert_ok();
    let other_network = auto(&second, json!({"name": "othernet"}));
    second.plugin("ADD", &other_network).assert_ok();
    assert_eq!((alias_cid(&first), alias_cid(&second)), (3, 4));
    second.plugin("DEL", &other_network).assert_ok();
    assert_eq!(first.allocated_cids(), BTreeSet::from([3]));
}

#[test]
fn without_vsock_cid_auto_nothing_is_allocated_and_the_alias_has_no_cid() {
    let pod = Pod::new("1.0.0");
    pod.plugin("ADD", &pod.conf(json!({}))).assert_ok();
    let alias = pod.unprivileged(&["cat", "/sys/class/net/cvd-mtap-01/ifalias"]);
    assert!(alias.stdout.ends_with(" base=1 instances=1"), "{alias:?}");
    assert!(!pod.alloc_dir().join("_vsock-cids").exists());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/cvd-vsock-cid.sh");
    let flag = pod.unprivileged(&["sh", &pod.shared_copy(script)]);
    assert!(!flag.success && flag.stdout.is_empty(), "{flag:?}");
    assert!(flag.stderr.contains("VSOCK_CID"), "{flag:?}");
}
