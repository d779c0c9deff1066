//! `baseInstance: "auto"`: node-unique instance numbers (hence vsock CIDs) for the pods of one
//! node, handed out by ADD and given back by DEL and GC.

use crate::expect;
use crate::support::{plugin_in_parallel, unique_id, Netns, Pod, PLUGIN};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

fn auto(pod: &Pod, extra: Value) -> Value {
    let mut conf = pod.conf(json!({"baseInstance": "auto"}));
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

/// The numbers allocated on the node: one file per number in `<dataDir>/<network>/`.
fn allocated(pod: &Pod) -> BTreeSet<u32> {
    match std::fs::read_dir(pod.alloc_dir().join("cfnet")) {
        Err(_) => BTreeSet::new(),
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    }
}

#[test]
fn fifty_parallel_pods_get_disjoint_numbers_and_give_them_back() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let pods: Vec<Pod> = (0..50).map(|_| Pod::on_node("1.1.0", node.clone())).collect();
    let conf = |pod: &Pod, i: usize| auto(pod, json!({"instances": 1 + i % 2}));
    let results = plugin_in_parallel(&pods, "ADD", conf);
    let mut seen = BTreeSet::new();
    for (i, (pod, result)) in pods.iter().zip(&results).enumerate() {
        let mine = numbers(result);
        assert_eq!(mine.len(), 1 + i % 2);
        assert!(
            mine.windows(2).all(|w| w[1] == w[0] + 1),
            "not contiguous: {mine:?}"
        );
        for n in &mine {
            assert!(seen.insert(*n), "instance {n} given to two pods");
        }
        expect::objects(pod, &mine, None, None);
        pod.plugin("CHECK", &conf(pod, i)).assert_ok();
    }
    assert_eq!(allocated(&pods[0]), seen);

    plugin_in_parallel(&pods, "DEL", conf);
    assert!(
        allocated(&pods[0]).is_empty(),
        "DEL left {:?} allocated",
        allocated(&pods[0])
    );
}

#[test]
fn a_retry_keeps_its_numbers_and_exhaustion_fails_cleanly() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let (first, second) = (Pod::on_node("1.0.0", node.clone()), Pod::on_node("1.0.0", node));
    let range = json!({"instanceRange": [5, 6], "instances": 2});
    let add_first = || {
        numbers(
            &first
                .plugin("ADD", &auto(&first, range.clone()))
                .assert_ok()
                .json(),
        )
    };
    assert_eq!(add_first(), [5, 6]);
    assert_eq!(add_first(), [5, 6], "a retried ADD keeps its numbers");

    let before = second.snapshot();
    let full = second.plugin("ADD", &auto(&second, range.clone()));
    assert_eq!(full.error_code(), 11, "{full:?}");
    assert!(
        full.json()["msg"].as_str().unwrap().contains("[5, 6]"),
        "{full:?}"
    );
    assert_eq!(second.snapshot(), before);
    assert_eq!(allocated(&first), BTreeSet::from([5, 6]));

    first.plugin("DEL", &auto(&first, range.clone())).assert_ok();
    assert_eq!(
        numbers(&second.plugin("ADD", &auto(&second, range)).assert_ok().json()),
        [5, 6]
    );
}

#[test]
fn numbers_of_a_killed_add_are_reclaimed_by_del_and_by_gc() {
    let pod = Pod::new("1.1.0");
    let conf = auto(&pod, json!({}));
    let killed = pod.exec(PLUGIN, "ADD", &conf, &[("CUTTLEFISH_CNI_FAULT", "kill:5")]);
    assert!(!killed.success);
    assert_eq!(allocated(&pod), BTreeSet::from([1]));
    pod.plugin("DEL", &conf).assert_ok();
    assert!(allocated(&pod).is_empty());

    let killed = pod.exec(PLUGIN, "ADD", &conf, &[("CUTTLEFISH_CNI_FAULT", "kill:5")]);
    assert!(!killed.success);
    let gc = |valid: Value| {
        json!({"cniVersion": "1.1.0", "name": "cfnet", "type": "cuttlefish-cni", "dataDir": pod.alloc_dir(),
               "cni.dev/valid-attachments": valid})
    };
    let live = json!([{"containerID": pod.container_id, "ifname": "eth0"}]);
    pod.exec_raw(PLUGIN, "GC", gc(live).to_string().as_bytes(), "", &[])
        .assert_ok();
    assert_eq!(
        allocated(&pod),
        BTreeSet::from([1]),
        "GC released a valid attachment's number"
    );
    pod.exec_raw(PLUGIN, "GC", gc(json!([])).to_string().as_bytes(), "", &[])
        .assert_ok();
    assert!(allocated(&pod).is_empty(), "GC kept a stale attachment's number");
}

#[test]
fn a_process_without_privileges_learns_its_number() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let (first, second) = (Pod::on_node("1.0.0", node.clone()), Pod::on_node("1.0.0", node));
    let range = json!({"instanceRange": [7, 20]});
    first.plugin("ADD", &auto(&first, range.clone())).assert_ok();
    second.plugin("ADD", &auto(&second, range)).assert_ok();
    let snippet = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/cvd-base-instance.sh");
    for (pod, expected) in [(&first, "7"), (&second, "8")] {
        let out = pod.unprivileged(&["sh", &pod.shared_copy(snippet)]);
        assert_eq!(out.stdout.trim(), expected, "{out:?}");
        let alias = pod.unprivileged(&["cat", "/sys/class/net/cvd-ebr/ifalias"]);
        assert!(
            alias.stdout.contains(&format!("base={expected} instances=1")),
            "{alias:?}"
        );
    }
}
