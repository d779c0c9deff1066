//! Many pods on one node at once: 50 ADDs in parallel, then 50 DELs in parallel. Every pod is
//! correct, none affects another, nothing leaks.

use crate::expect;
use crate::support::{plugin_in_parallel, Netns, Pod};
use serde_json::json;
use std::sync::Arc;

const PODS: usize = 50;

#[test]
fn fifty_pods_in_parallel_on_one_node() {
    let node = Arc::new(Netns::new("node", &crate::support::unique_id()));
    let pods: Vec<Pod> = (0..PODS).map(|_| Pod::on_node("1.1.0", node.clone())).collect();
    let conf = |pod: &Pod, i: usize| pod.conf(json!({"instances": 1 + i % 3}));

    plugin_in_parallel(&pods, "ADD", conf);
    for (i, pod) in pods.iter().enumerate() {
        let instances: Vec<u32> = (1..=(1 + i % 3) as u32).collect();
        expect::objects(pod, &instances, None, None);
        pod.plugin("CHECK", &conf(pod, i)).assert_ok();
    }

    plugin_in_parallel(&pods, "DEL", conf);
    for pod in &pods {
        expect::untouched(pod);
        assert_eq!(pod.sysctl("net/ipv4/ip_forward"), "0");
    }
}
