//! Rollback and crash safety, proven at every kernel change of an ADD through the test-only
//! fault hook (`CUTTLEFISH_CNI_FAULT`, compiled only into test builds).

use crate::support::{Pod, PLUGIN};
use serde_json::json;

const FAULT: &str = "CUTTLEFISH_CNI_FAULT";
/// The kernel changes of an ADD of one instance: the nft batch, two sysctls, two bridges
/// (create, configure), four TAPs (create, configure), four addresses.
const CHANGES: usize = 1 + 2 + 2 * 2 + 4 * 2 + 4;

#[test]
fn add_failing_at_any_change_leaves_the_pod_as_it_was() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    for n in 1..=CHANGES {
        let out = pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, &format!("fail:{n}"))]);
        assert_eq!(out.error_code(), 101, "fault at change {n}: {out:?}");
        assert!(
            out.json()["msg"].as_str().unwrap().contains("injected fault"),
            "{out:?}"
        );
        assert_eq!(
            pod.snapshot(),
            before,
            "ADD failing at change {n} left something behind"
        );
    }
    // CHANGES is exactly the number of changes: a fault past the last one never fires.
    pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, &format!("fail:{}", CHANGES + 1))])
        .assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn add_killed_at_any_change_is_cleaned_up_by_del() {
    let pod = Pod::new("1.1.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    for n in 1..=CHANGES {
        let out = pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, &format!("kill:{n}"))]);
        assert!(
            !out.success && out.stdout.is_empty(),
            "kill at change {n} did not kill: {out:?}"
        );
        pod.plugin("DEL", &conf).assert_ok();
        assert_eq!(
            pod.snapshot(),
            before,
            "DEL after a kill at change {n} left something behind"
        );
        pod.plugin("ADD", &conf).assert_ok();
        pod.plugin("CHECK", &conf).assert_ok();
        pod.plugin("DEL", &conf).assert_ok();
    }
}

#[test]
fn a_new_add_after_a_kill_replaces_the_leftovers() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    // Killed right after the first TAP exists but before it carries our mark.
    let out = pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, "kill:8")]);
    assert!(!out.success);
    pod.plugin("ADD", &conf).assert_ok();
    crate::expect::objects(&pod, &[1], None, None);
}

/// The kernel changes of a DEL of one instance: two sysctls, the table, the link group.
const DEL_CHANGES: usize = 4;

#[test]
fn del_killed_at_any_change_is_finished_by_the_next_del() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    // After a complete ADD, and after an ADD killed at every change (marked and unmarked links).
    for add_kill in (1..=CHANGES).map(Some).chain([None]) {
        for del_kill in 1..=DEL_CHANGES {
            let add_env: Vec<(&str, String)> = add_kill
                .map(|n| (FAULT, format!("kill:{n}")))
                .into_iter()
                .collect();
            let add_env: Vec<(&str, &str)> = add_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let _ = pod.exec(PLUGIN, "ADD", &conf, &add_env);
            let out = pod.exec(PLUGIN, "DEL", &conf, &[(FAULT, &format!("kill:{del_kill}"))]);
            assert!(out.stdout.is_empty(), "{out:?}");
            pod.plugin("DEL", &conf).assert_ok();
            assert_eq!(
                pod.snapshot(),
                before,
                "ADD killed at {add_kill:?}, DEL killed at change {del_kill}"
            );
        }
    }
}
