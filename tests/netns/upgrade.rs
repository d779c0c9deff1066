//! Upgrade from the previous release, whose `baseInstance: "auto"` allocated node-unique instance
//! numbers on the node. Pods it built are checked, deleted and garbage-collected by this release,
//! with the old conflist or the new one, and their allocation files are released. The previous
//! release's plugin is built from git history by `hack/previous-release.sh`.

use crate::expect;
use crate::support::{unique_id, Netns, Pod, PLUGIN};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// The previous release's plugin, built once per test run (and reused from target/ afterwards).
fn previous_release() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/previous-release.sh");
        let out = std::process::Command::new(script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// The previous release's allocation records: one file per instance number in
/// `<dataDir>/<network>/`.
fn legacy_allocations(pod: &Pod) -> BTreeSet<u32> {
    std::fs::read_dir(pod.alloc_dir().join("cfnet")).map_or(BTreeSet::new(), |dir| {
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    })
}

fn message(out: &crate::support::Outcome) -> String {
    out.json()["msg"].as_str().unwrap().to_string()
}

#[test]
fn pods_the_previous_release_built_with_auto_are_checked_deleted_and_collected() {
    let old_plugin = previous_release();
    let node = Arc::new(Netns::new("node", &unique_id()));
    let pods: Vec<Pod> = (0..3).map(|_| Pod::on_node("1.1.0", node.clone())).collect();
    // Pods 0 and 1 through the plugin key, pod 2 through its own CNI_ARGS, which the runtime
    // sends again with every later command for that pod.
    let old_conf =
        |pod: &Pod| pod.conf(json!({"baseInstance": "auto", "instanceRange": [5, 20], "instances": 2}));
    let new_conf = |pod: &Pod| pod.conf(json!({"instances": 2}));
    let per_pod: [(&str, &str); 1] = [("CNI_ARGS", "CUTTLEFISH_BASE_INSTANCE=auto")];
    let args = |i: usize| -> &[(&str, &str)] {
        if i == 2 {
            &per_pod
        } else {
            &[]
        }
    };
    let conf_of = |i: usize, pod: &Pod, old: bool| -> Value {
        match (i, old) {
            (2, true) => pod.conf(json!({"instanceRange": [5, 20], "instances": 2})),
            (_, true) => old_conf(pod),
            (_, false) => new_conf(pod),
        }
    };
    for (i, pod) in pods.iter().enumerate() {
        pod.exec(old_plugin, "ADD", &conf_of(i, pod, true), args(i))
            .assert_ok();
    }
    assert_eq!(legacy_allocations(&pods[0]), (5..=10).collect());
    for (pod, base) in pods.iter().zip([5u32, 7, 9]) {
        let names = pod.link_names();
        for n in [base, base + 1] {
            assert!(names.contains(&format!("cvd-mtap-{n:02}")), "{names:?}");
        }
        assert_eq!(
            expect::nat_rules(pod).len(),
            6,
            "two /30s per instance and the bridges"
        );
    }

    // CHECK looks at what each pod has (instances 5-6, 7-8, 9-10), not at cvd-*-01, with the
    // conflist the pods were built with and with the upgraded one. What it finds missing is
    // exactly what 0.1.0 did not build: the anti-spoof table.
    for (i, pod) in pods.iter().enumerate() {
        for old in [true, false] {
            let out = pod.exec(PLUGIN, "CHECK", &conf_of(i, pod, old), args(i));
            assert_eq!(
                out.error_code(),
                102,
                "CHECK of pod {i} (old conflist: {old}): {out:?}"
            );
            assert_eq!(
                message(&out),
                "CHECK found 1 difference(s): nftables table inet cuttlefish_filter is missing",
                "CHECK of pod {i} (old conflist: {old})"
            );
        }
    }

    // ADD with the removed value, from the plugin key or the pod, names what replaced it.
    for (conf, env) in [(old_conf(&pods[0]), &[][..]), (new_conf(&pods[0]), &per_pod[..])] {
        let out = pods[0].exec(PLUGIN, "ADD", &conf, env);
        assert_eq!(out.error_code(), 7, "{out:?}");
        assert!(
            message(&out).contains("\"auto\"") && message(&out).contains("vsockCid"),
            "{out:?}"
        );
    }

    // DEL with the upgraded conflist, and with the old one.
    pods[0].plugin("DEL", &new_conf(&pods[0])).assert_ok();
    pods[1].plugin("DEL", &old_conf(&pods[1])).assert_ok();
    expect::untouched(&pods[0]);
    expect::untouched(&pods[1]);
    assert_eq!(legacy_allocations(&pods[0]), BTreeSet::from([9, 10]));

    // GC: with the old conflist and pod 2 valid, nothing goes; with the new one and no valid
    // attachment, pod 2's numbers are released.
    let gc = |conf: Value, valid: Value| {
        let mut conf = conf;
        let conf = conf.as_object_mut().unwrap();
        conf.remove("prevResult");
        conf.insert("cni.dev/valid-attachments".into(), valid);
        pods[2]
            .exec_raw(
                PLUGIN,
                "GC",
                Value::Object(conf.clone()).to_string().as_bytes(),
                "",
                &[],
            )
            .assert_ok();
    };
    let pod2 = json!([{"containerID": pods[2].container_id, "ifname": "eth0"}]);
    gc(old_conf(&pods[2]), pod2);
    assert_eq!(legacy_allocations(&pods[2]), BTreeSet::from([9, 10]));
    gc(new_conf(&pods[2]), json!([]));
    assert_eq!(legacy_allocations(&pods[2]), BTreeSet::new());

    // The pod's own DEL still removes its links and table.
    pods[2]
        .exec(PLUGIN, "DEL", &conf_of(2, &pods[2], false), args(2))
        .assert_ok();
    expect::untouched(&pods[2]);
    assert_eq!(legacy_allocations(&pods[2]), BTreeSet::new());
}
