//! What every call checks and what one pod may ask for: plugin keys are checked even when a pod
//! overrides them, a pod's request is bounded by `maxInstancesPerPod`, a pod's explicit block
//! keeps its default vsock CIDs out of a declared `cidRange`, and `dnsRedirect` is resolved only
//! for pods the plugin acts on.

use crate::expect;
use crate::support::{unique_id, Netns, Pod, PLUGIN};
use serde_json::{json, Value};
use std::sync::Arc;

/// `select: annotated` (the default): the plugin acts only on pods that ask.
fn annotated(pod: &Pod, extra: Value) -> Value {
    let mut conf = pod.conf(extra);
    conf.as_object_mut().unwrap().remove("select");
    conf
}

fn message(out: &crate::support::Outcome) -> String {
    out.json()["msg"].as_str().unwrap().to_string()
}

#[test]
fn a_pod_asking_for_more_than_max_instances_per_pod_gets_code_7_and_nothing() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let conf = pod.conf(json!({"vsockCid": "auto"}));
    let out = pod.exec(PLUGIN, "ADD", &conf, &[("CNI_ARGS", "CUTTLEFISH_INSTANCES=128")]);
    assert_eq!(out.error_code(), 7, "{out:?}");
    let msg = message(&out);
    assert!(
        msg.contains("CUTTLEFISH_INSTANCES = 128") && msg.contains("maxInstancesPerPod (16)"),
        "{msg}"
    );
    assert_eq!(pod.snapshot(), before);
    assert!(pod.allocated_cids().is_empty());

    let lowered = pod.conf(json!({"vsockCid": "auto", "maxInstancesPerPod": 3}));
    let out = pod.exec(PLUGIN, "ADD", &lowered, &[("CNI_ARGS", "CUTTLEFISH_INSTANCES=4")]);
    assert_eq!(out.error_code(), 7, "{out:?}");
    assert_eq!(pod.snapshot(), before);
    let env = [("CNI_ARGS", "CUTTLEFISH_INSTANCES=3")];
    pod.exec(PLUGIN, "ADD", &lowered, &env).assert_ok();
    assert_eq!(pod.allocated_cids().len(), 3);
    pod.exec(PLUGIN, "DEL", &lowered, &env).assert_ok();
    expect::untouched(&pod);
}

#[test]
fn an_explicit_block_whose_default_cids_fall_in_a_declared_cid_range_is_refused() {
    let node = Arc::new(Netns::new("node", &unique_id()));
    let (allocating, explicit) = (Pod::on_node("1.0.0", node.clone()), Pod::on_node("1.0.0", node));
    // The device plugin hands out CIDs 5-20 on this node; this network allocates none.
    let declared = |pod: &Pod| pod.conf(json!({"cidRange": [5, 20]}));
    let before = explicit.snapshot();
    let inside = [("CNI_ARGS", "CUTTLEFISH_BASE_INSTANCE=2;CUTTLEFISH_INSTANCES=2")];
    let out = explicit.exec(PLUGIN, "ADD", &declared(&explicit), &inside);
    assert_eq!(out.error_code(), 7, "{out:?}");
    let msg = message(&out);
    assert!(
        msg.contains("vsock CIDs 4..5") && msg.contains("cidRange [5, 20]"),
        "{msg}"
    );
    assert_eq!(explicit.snapshot(), before);

    let below = [("CNI_ARGS", "CUTTLEFISH_BASE_INSTANCE=1;CUTTLEFISH_INSTANCES=2")];
    explicit
        .exec(PLUGIN, "ADD", &declared(&explicit), &below)
        .assert_ok();
    expect::objects(&explicit, &[1, 2], None, None);
    explicit
        .exec(PLUGIN, "DEL", &declared(&explicit), &below)
        .assert_ok();

    // With vsockCid "auto" the CIDs are allocated, so the same block is harmless.
    let auto = |pod: &Pod| pod.conf(json!({"vsockCid": "auto", "cidRange": [5, 20]}));
    allocating.plugin("ADD", &auto(&allocating)).assert_ok();
    explicit
        .exec(PLUGIN, "ADD", &auto(&explicit), &inside)
        .assert_ok();
    expect::objects(&explicit, &[2, 3], None, None);
    assert_eq!(explicit.allocated_cids(), (5..=7).collect());
    explicit
        .exec(PLUGIN, "DEL", &auto(&explicit), &inside)
        .assert_ok();
    allocating.plugin("DEL", &auto(&allocating)).assert_ok();
    assert!(allocating.allocated_cids().is_empty());
}

#[test]
fn a_broken_plugin_key_is_noticed_even_when_the_pod_overrides_it() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let conf = pod.conf(json!({"instances": "2", "args": {"cni": {"instances": 2}}}));
    for command in ["ADD", "DEL"] {
        let out = pod.plugin(command, &conf);
        assert_eq!(out.error_code(), 7, "{command}: {out:?}");
        assert!(message(&out).starts_with("instances = \"2\""), "{out:?}");
    }
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn dns_redirect_without_a_server_fails_only_pods_that_act() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    // The installer's entry on a runtime that fills no `dns` capability.
    let conf = annotated(&pod, json!({"dnsRedirect": true}));
    let result = pod.plugin("ADD", &conf).assert_ok().json();
    assert_eq!(result, pod.prev_result);
    pod.plugin("CHECK", &conf).assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    assert_eq!(pod.snapshot(), before);

    let asks = [("CNI_ARGS", "CUTTLEFISH_INSTANCES=1")];
    let out = pod.exec(PLUGIN, "ADD", &conf, &asks);
    assert_eq!(out.error_code(), 7, "{out:?}");
    assert!(message(&out).starts_with("runtimeConfig.dns.servers"), "{out:?}");
    assert_eq!(pod.snapshot(), before);
}
