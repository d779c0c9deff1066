//! The scripts under hack/ build the Cuttlefish layout by hand (the benchmark's floor and shell
//! candidates) from hack/lib/cuttlefish.sh, a copy of the plugin's constants and formulas that
//! bash cannot import. These tests run that library with bash and compare every value with the
//! plugin's own, for every instance the plugin supports.

use cuttlefish_cni::config::{Settings, MAX_INSTANCE};
use cuttlefish_cni::mark::LINK_GROUP;
use cuttlefish_cni::model::Rule;
use cuttlefish_cni::plan::Plan;
use std::path::Path;
use std::process::Command;

/// Runs `script` in bash after sourcing hack/lib/cuttlefish.sh; returns its stdout.
fn hack_lib(script: &str) -> String {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/lib/cuttlefish.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; source \"$0\"; {script}"))
        .arg(&lib)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn every_instance() -> Plan {
    Plan::new(&Settings {
        instances: MAX_INSTANCE,
        base_instance: 1,
        vsock_cid: None,
        tap_owner: None,
        tap_group: None,
        clamp_mss: false,
        dns_redirect: None,
    })
}

#[test]
fn link_group_is_the_plugins() {
    assert_eq!(
        hack_lib("echo $CUTTLEFISH_LINK_GROUP").trim(),
        LINK_GROUP.to_string()
    );
}

#[test]
fn bridges_are_the_plugins() {
    let script: Vec<String> = hack_lib("printf '%s\\n' \"${CUTTLEFISH_BRIDGES[@]}\"")
        .lines()
        .map(String::from)
        .collect();
    let plan: Vec<String> = every_instance()
        .bridges
        .iter()
        .map(|b| format!("{}={}/{}", b.name, b.gateway, b.address().prefix))
        .collect();
    assert_eq!(script, plan);
}

#[test]
fn link_names_are_the_plugins() {
    let script = hack_lib(&format!("cuttlefish_links {MAX_INSTANCE}"));
    let plan = every_instance();
    assert_eq!(
        script.split_whitespace().collect::<Vec<_>>(),
        plan.link_names().collect::<Vec<_>>()
    );
}

#[test]
fn routed_addresses_are_the_plugins() {
    let plan = every_instance();
    let routed: Vec<(&str, u32, String)> = plan
        .taps
        .iter()
        .filter_map(|t| {
            let address = t.address?;
            assert_eq!(address.prefix, 30, "{}", t.name);
            let kind = t.name.split('-').nth(1).expect("cvd-<kind>-NN");
            Some((kind, t.instance, address.address.to_string()))
        })
        .collect();
    assert_eq!(routed.len(), 2 * MAX_INSTANCE as usize);
    let script = hack_lib(
        &routed
            .iter()
            .map(|(kind, instance, _)| format!("cuttlefish_routed {kind} {instance}"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let script: Vec<&str> = script.lines().collect();
    for ((kind, instance, address), from_script) in routed.iter().zip(&script) {
        assert_eq!(from_script, address, "{kind} of instance {instance}");
    }
    assert_eq!(script.len(), routed.len());
}

#[test]
fn masqueraded_subnets_are_the_plugins() {
    let plan = every_instance();
    let rules: Vec<String> = plan
        .nft_rules
        .iter()
        .filter_map(|r| match r {
            Rule::Masquerade(subnet) => Some(subnet.to_string()),
            _ => None,
        })
        .collect();
    let script = hack_lib(&format!("cuttlefish_masquerade {MAX_INSTANCE}"));
    assert_eq!(script.lines().collect::<Vec<_>>(), rules);
}
