//! The plugin killed at any change of an ADD or a DEL: the next DEL removes everything and
//! restores the sysctls, as tests/netns/faults.rs proves with SIGKILL.

use super::support::{pod, pod_without_ipv6, settings, Plugin};
use crate::kernel::fake::{is_killed, FakeKernel};

/// Kills each change of the ADD `plugin` makes in turn, then runs DEL, then a whole ADD, CHECK
/// and DEL. Returns the number of changes of the ADD.
fn every_killed_add_is_cleaned_up_by_del(new_pod: fn() -> FakeKernel, plugin: &Plugin) -> usize {
    let mut kernel = new_pod();
    let before = kernel.state.clone();
    plugin.add(&mut kernel).unwrap();
    let changes = kernel.take_journal().len();
    plugin.del(&mut kernel).unwrap();
    for n in 1..=changes {
        kernel.take_journal();
        kernel.kill_after(n);
        let error = plugin.add(&mut kernel).unwrap_err();
        assert!(is_killed(&error), "kill at change {n}: {error}");
        assert_eq!(kernel.journal.len(), n, "nothing runs after the kill");
        kernel.restart();
        plugin.del(&mut kernel).unwrap();
        assert_eq!(
            kernel.state, before,
            "DEL after a kill at change {n} left something behind"
        );
        plugin.add(&mut kernel).unwrap();
        assert_eq!(plugin.check(&mut kernel), [], "ADD after a kill at change {n}");
        plugin.del(&mut kernel).unwrap();
    }
    changes
}

#[test]
fn add_of_one_instance_killed_at_any_change_is_cleaned_up_by_del() {
    assert_eq!(every_killed_add_is_cleaned_up_by_del(pod, &Plugin::one()), 25);
}

#[test]
fn add_of_three_instances_killed_at_any_change_is_cleaned_up_by_del() {
    let plugin = Plugin::new("pod-a", settings(5, 3));
    assert_eq!(every_killed_add_is_cleaned_up_by_del(pod, &plugin), 45);
}

#[test]
fn add_without_ipv6_killed_at_any_change_is_cleaned_up_by_del() {
    assert_eq!(
        every_killed_add_is_cleaned_up_by_del(pod_without_ipv6, &Plugin::one()),
        18
    );
}

#[test]
fn del_killed_at_any_change_is_finished_by_the_next_del() {
    let plugin = Plugin::one();
    let mut kernel = pod();
    let before = kernel.state.clone();
    // After an ADD killed at every change (marked and unmarked links), and after a whole ADD.
    for add_kill in (1..=25).map(Some).chain([None]) {
        for del_kill in 1.. {
            let context = format!("ADD killed at {add_kill:?}, DEL killed at change {del_kill}");
            kernel.restart();
            if let Some(n) = add_kill {
                kernel.kill_after(n);
            }
            let added = plugin.add(&mut kernel);
            assert_eq!(added.is_err(), add_kill.is_some(), "{context}");
            kernel.restart();
            kernel.take_journal();
            kernel.kill_after(del_kill);
            let deleted = plugin.del(&mut kernel);
            if !kernel.killed() {
                deleted.unwrap();
                assert_eq!(kernel.state, before, "{context}");
                break;
            }
            assert!(deleted.is_err(), "{context}");
            assert_eq!(
                kernel.journal.len(),
                del_kill,
                "{context}: nothing runs after the kill"
            );
            kernel.restart();
            plugin.del(&mut kernel).unwrap();
            assert_eq!(kernel.state, before, "{context}: the next DEL did not finish");
        }
    }
}
