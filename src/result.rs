//! The ADD result: `prevResult` passed through, with our bridges and TAPs appended to
//! `interfaces`. Our addresses are not added to `ips`: CRI-O takes every entry of `ips` for a
//! pod IP, and containerd attributes index-less IPs to eth0.

use crate::model::Link;
use crate::plan::Plan;
use serde_json::{json, Map, Value};

pub fn with_our_interfaces(
    prev_result: &Map<String, Value>,
    version: &str,
    netns: &str,
    plan: &Plan,
    links: &[Link],
) -> Value {
    let mut result = passthrough(prev_result, version);
    let interfaces = result
        .entry("interfaces")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = interfaces {
        for name in plan.link_names() {
            let mac = links.iter().find(|l| l.name == name).and_then(|l| l.mac.clone());
            list.push(json!({"name": name, "mac": mac.unwrap_or_default(), "sandbox": netns}));
        }
    }
    Value::Object(result)
}

/// `prevResult` unchanged but for `cniVersion`, which must be the configuration's.
pub fn passthrough(prev_result: &Map<String, Value>, version: &str) -> Map<String, Value> {
    let mut result = prev_result.clone();
    result.insert("cniVersion".into(), Value::String(version.into()));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn interfaces_are_appended_and_ips_untouched() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": "/run/netns/p"}],
            "ips": [{"address": "10.0.0.2/24", "interface": 0}]
        });
        let plan = Plan::new(&Settings {
            instances: 1,
            base_instance: 1,
            vsock_cid: None,
            tap_owner: None,
            tap_group: None,
            clamp_mss: false,
            dns_redirect: None,
        });
        let links = vec![Link {
            name: "cvd-mtap-01".into(),
            mac: Some("aa:bb:cc:dd:ee:ff".into()),
            ..Link::default()
        }];
        let out = with_our_interfaces(prev.as_object().unwrap(), "1.0.0", "/run/netns/p", &plan, &links);
        let names: Vec<&str> = out["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        let ours: Vec<&str> = plan.link_names().collect();
        assert_eq!(names[0], "eth0");
        assert_eq!(names[1..], ours, "ours after the primary's, in plan order");
        assert_eq!(out["interfaces"][3]["mac"], "aa:bb:cc:dd:ee:ff");
        assert_eq!(out["interfaces"][3]["sandbox"], "/run/netns/p");
        assert_eq!(out["ips"], prev["ips"]);
    }
}
