//! Rollback and crash safety, proven at every kernel change of an ADD through the test-only
//! fault hook (`CUTTLEFISH_CNI_FAULT`, compiled only into test builds), and at every kernel change
//! of a DEL.

use crate::support::{Pod, PLUGIN};
use serde_json::json;

const FAULT: &str = "CUTTLEFISH_CNI_FAULT";
/// The kernel changes of a bridge: create it (down), its three IPv6 sysctls, configure it (up).
const BRIDGE_CHANGES: usize = 1 + 3 + 1;
/// The first change of the bridges and of the TAPs (see `ADD_CHANGES`).
const FIRST_BRIDGE_CHANGE: usize = 1 + 2 + 1;
const FIRST_TAP_CHANGE: usize = FIRST_BRIDGE_CHANGE + 2 * BRIDGE_CHANGES;
/// The kernel changes of an ADD of one instance: the nft batch (both tables), two sysctls, two
/// bridges, four TAPs (create, configure), four addresses.
const ADD_CHANGES: usize = FIRST_TAP_CHANGE - 1 + 4 * 2 + 4;

#[test]
fn add_failing_at_any_change_leaves_the_pod_as_it_was() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    for n in 1..=ADD_CHANGES {
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
    // ADD_CHANGES is exactly the number of changes: a fault past the last one never fires.
    pod.exec(
        PLUGIN,
        "ADD",
        &conf,
        &[(FAULT, &format!("fail:{}", ADD_CHANGES + 1))],
    )
    .assert_ok();
    pod.plugin("DEL", &conf).assert_ok();
    assert_eq!(pod.snapshot(), before);
}

#[test]
fn add_killed_at_any_change_is_cleaned_up_by_del() {
    let pod = Pod::new("1.1.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    for n in 1..=ADD_CHANGES {
        let out = pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, &format!("kill:{n}"))]);
        assert!(
            out.signal == Some(9) && out.stdout.is_empty(),
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
    let kill = format!("kill:{FIRST_TAP_CHANGE}");
    let out = pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, &kill)]);
    assert_eq!(out.signal, Some(9), "{out:?}");
    pod.plugin("ADD", &conf).assert_ok();
    crate::expect::objects(&pod, &[1], None, None);
}

/// The nft tables a DEL deletes, one change each: `ip cuttlefish_nat`, `inet cuttlefish_filter`.
const TABLES: usize = 2;

/// The kernel changes of a DEL after an ADD killed right after change `add_kill` (None: after
/// a complete ADD), from the order ADD makes its changes in (see `ADD_CHANGES`): DEL restores the
/// sysctls ADD changed, deletes the tables, then deletes the links in one request by link group,
/// or one by one while a TAP exists that is not in the group yet (created, not configured).
fn del_changes(add_kill: Option<usize>) -> usize {
    let k = add_kill.unwrap_or(ADD_CHANGES);
    let sysctls = usize::from(k >= 2) + usize::from(k >= 3);
    let created = |first: usize, each: usize, count: usize| {
        if k >= first {
            ((k - first) / each + 1).min(count)
        } else {
            0
        }
    };
    let links_created = created(FIRST_BRIDGE_CHANGE, BRIDGE_CHANGES, 2) + created(FIRST_TAP_CHANGE, 2, 4);
    // A bridge is in our link group from its creation; a TAP only once configured.
    let unconfigured_tap =
        (FIRST_TAP_CHANGE..FIRST_TAP_CHANGE + 8).contains(&k) && (k - FIRST_TAP_CHANGE).is_multiple_of(2);
    let link_changes = match links_created {
        0 => 0,
        n if unconfigured_tap => n,
        _ => 1,
    };
    sysctls + TABLES + link_changes
}

#[test]
fn del_killed_at_any_change_is_finished_by_the_next_del() {
    let pod = Pod::new("1.0.0");
    let conf = pod.conf(json!({}));
    let before = pod.snapshot();
    // After a complete ADD, and after an ADD killed at every change (marked and unmarked links).
    for add_kill in (1..=ADD_CHANGES).map(Some).chain([None]) {
        let changes = del_changes(add_kill);
        // One past the last change is the sentinel: that kill never fires, and the DEL finishes.
        for del_kill in 1..=changes + 1 {
            let context = format!("ADD killed at {add_kill:?}, DEL killed at change {del_kill} of {changes}");
            match add_kill {
                Some(n) => {
                    let out = pod.exec(PLUGIN, "ADD", &conf, &[(FAULT, &format!("kill:{n}"))]);
                    assert_eq!(
                        out.signal,
                        Some(9),
                        "ADD kill at change {n} did not fire: {out:?}"
                    );
                }
                None => {
                    pod.plugin("ADD", &conf).assert_ok();
                }
            }
            let out = pod.exec(PLUGIN, "DEL", &conf, &[(FAULT, &format!("kill:{del_kill}"))]);
            if del_kill <= changes {
                assert!(
                    out.signal == Some(9) && out.stdout.is_empty(),
                    "{context}: the kill point was not reached: {out:?}"
                );
                pod.plugin("DEL", &conf).assert_ok();
            } else {
                out.assert_ok();
                assert!(out.stdout.is_empty(), "{context}: {out:?}");
            }
            assert_eq!(pod.snapshot(), before, "{context}: the pod is not as before ADD");
        }
    }
}
