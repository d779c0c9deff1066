//! Which pods get Cuttlefish networking: with `select: annotated` (the default) only pods that
//! ask, through pod annotations, Multus `args.cni` or `CNI_ARGS`; the rest get prevResult back.

use crate::expect;
use crate::support::{Pod, PLUGIN};
use serde_json::{json, Value};

fn annotated(pod: &Pod, extra: Value) -> Value {
    let mut conf = pod.conf(extra);
    conf.as_object_mut().unwrap().remove("select");
    conf
}

#[test]
fn pods_that_do_not_ask_get_prev_result_and_nothing_else() {
    let pod = Pod::new("1.0.0");
    let before = pod.snapshot();
    let result = pod.plugin("ADD", &annotated(&pod, json!({}))).assert_ok().json();
    assert_eq!(result, pod.prev_result);
    assert_eq!(pod.snapshot(), before);
    pod.plugin("CHECK", &annotated(&pod, json!({}))).assert_ok();
    pod.plugin("DEL", &annotated(&pod, json!({}))).assert_ok();
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn pod_annotation_asks_and_overrides() {
    let pod = Pod::new("1.0.0");
    let conf = annotated(
        &pod,
        json!({"runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"cuttlefish.dev/instances": "2", "other": "x"}}}),
    );
    pod.plugin("ADD", &conf).assert_ok();
    expect::objects(&pod, &[1, 2], None, None);
    pod.plugin("CHECK", &conf).assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    expect::untouched(&pod);
}

#[test]
fn multus_cni_args_ask_and_override() {
    let pod = Pod::new("0.3.1");
    let conf = annotated(&pod, json!({"args": {"cni": {"baseInstance": 5}}}));
    pod.plugin("ADD", &conf).assert_ok();
    expect::objects(&pod, &[5], None, None);
    pod.plugin("DEL", &conf).assert_ok();
    expect::untouched(&pod);
}

#[test]
fn cni_args_ask_and_override() {
    let pod = Pod::new("1.1.0");
    let conf = annotated(&pod, json!({}));
    let env = [(
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAME=p;CUTTLEFISH_INSTANCES=2;CUTTLEFISH_TAP_OWNER=1000",
    )];
    pod.exec(PLUGIN, "ADD", &conf, &env).assert_ok();
    expect::objects(&pod, &[1, 2], Some(1000), None);
    pod.exec(PLUGIN, "CHECK", &conf, &env).assert_ok();
    pod.exec(PLUGIN, "DEL", &conf, &env).assert_ok();
    expect::untouched(&pod);
}
