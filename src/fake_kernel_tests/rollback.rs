//! A failed ADD rolls back: whichever change fails, ADD returns that failure and the pod is as
//! it was before (links, addresses, tables, sysctls), as tests/netns/faults.rs proves with the
//! real kernel.

use super::support::{errno, pod, pod_without_ipv6, settings, Plugin};
use crate::kernel::fake::FakeKernel;
use crate::model::Change;
use nix::libc::{EBUSY, EIO};
use std::io;

/// Fails each change of the ADD `plugin` makes in a new `pod()` in turn, and proves the
/// rollback; a failure one past the last change never fires. Returns the number of changes.
fn every_failure_rolls_back(new_pod: fn() -> FakeKernel, plugin: &Plugin) -> usize {
    let mut clean = new_pod();
    plugin.add(&mut clean).unwrap();
    let changes = clean.take_journal();
    for (n, change) in changes.iter().enumerate().map(|(i, c)| (i + 1, c)) {
        let mut kernel = new_pod();
        let before = kernel.state.clone();
        kernel.fail_change(n, EIO);
        let error = plugin.add(&mut kernel).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{change}: {}", io::Error::from_raw_os_error(EIO)),
            "ADD failing at change {n} returns that failure"
        );
        assert_eq!(errno(&error), Some(EIO));
        assert_eq!(
            kernel.state, before,
            "ADD failing at change {n} left something behind"
        );
    }
    let mut kernel = new_pod();
    kernel.fail_change(changes.len() + 1, EIO);
    plugin.add(&mut kernel).unwrap();
    assert_eq!(plugin.check(&mut kernel), []);
    changes.len()
}

#[test]
fn add_of_one_instance_failing_at_any_change_leaves_the_pod_as_it_was() {
    assert_eq!(every_failure_rolls_back(pod, &Plugin::one()), 25);
}

#[test]
fn add_of_three_instances_failing_at_any_change_leaves_the_pod_as_it_was() {
    let mut with_dns = settings(5, 3);
    with_dns.dns_redirect = Some([10, 96, 0, 10].into());
    with_dns.tap_owner = Some(1000);
    assert_eq!(every_failure_rolls_back(pod, &Plugin::new("pod-a", with_dns)), 45);
}

#[test]
fn add_without_ipv6_failing_at_any_change_leaves_the_pod_as_it_was() {
    assert_eq!(every_failure_rolls_back(pod_without_ipv6, &Plugin::one()), 18);
}

#[test]
fn add_with_forwarding_on_failing_at_any_change_leaves_it_on() {
    fn forwarding_pod() -> FakeKernel {
        let mut kernel = pod();
        kernel.set_sysctl("net/ipv4/ip_forward", "1");
        kernel.set_sysctl("net/ipv6/conf/all/forwarding", "1");
        kernel
    }
    assert_eq!(every_failure_rolls_back(forwarding_pod, &Plugin::one()), 23);
}

#[test]
fn the_failure_of_add_is_returned_when_the_rollback_fails_too() {
    let mut kernel = pod();
    kernel.fail_change(20, EIO);
    kernel.fail_changes_where(|c| matches!(c, Change::DeleteLinkGroup(_)), EBUSY);
    let error = Plugin::one().add(&mut kernel).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("creating TAP cvd-wtap-01: {}", io::Error::from_raw_os_error(EIO))
    );
    assert!(
        kernel.state.link("cvd-ebr").is_some(),
        "the group delete was refused"
    );
    assert!(kernel.state.tables.is_empty(), "the rest of the rollback ran");
}
