//! DEL: its order, its idempotence, what it leaves alone, and how it reports failures while
//! still running every other step.

use super::support::{errno, pod, settings, steps, Plugin};
use crate::kernel::fake::{FakeKernel, Read};
use crate::mark::LINK_GROUP;
use crate::model::{Change, Link, TableId, FILTER, NAT};
use nix::libc::{EBUSY, EIO, ENODEV};

fn handle(kernel: &FakeKernel, table: TableId) -> u64 {
    kernel.state.table(table).unwrap().handle
}

fn index(kernel: &FakeKernel, name: &str) -> u32 {
    kernel.state.link(name).unwrap().index
}

fn write(name: &str, value: &str) -> Change {
    Change::WriteSysctl {
        name: name.into(),
        value: value.into(),
    }
}

fn delete_tables(kernel: &FakeKernel) -> [Change; 2] {
    [NAT, FILTER].map(|table| Change::DeleteTable {
        table,
        handle: handle(kernel, table),
    })
}

fn delete_links(kernel: &FakeKernel, names: &[&str]) -> Vec<Change> {
    names
        .iter()
        .map(|name| Change::DeleteLink {
            name: name.to_string(),
            index: index(kernel, name),
        })
        .collect()
}

#[test]
fn del_restores_the_sysctls_then_deletes_the_tables_then_the_link_group() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    let mut expected = vec![
        write("net/ipv4/ip_forward", "0"),
        write("net/ipv6/conf/all/forwarding", "0"),
    ];
    expected.extend(delete_tables(&kernel));
    expected.push(Change::DeleteLinkGroup(LINK_GROUP));
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.journal, expected);
    assert_eq!(kernel.state, before);
}

#[test]
fn with_an_unmarked_tap_del_deletes_link_by_link_and_the_tables_last() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    // Killed right after creating the first TAP: not marked, not in our group.
    kernel.kill_after(14);
    plugin.add(&mut kernel).unwrap_err();
    kernel.restart();
    kernel.take_journal();
    let mut expected = vec![
        write("net/ipv4/ip_forward", "0"),
        write("net/ipv6/conf/all/forwarding", "0"),
    ];
    expected.extend(delete_links(&kernel, &["cvd-ebr", "cvd-wbr", "cvd-mtap-01"]));
    expected.extend(delete_tables(&kernel));
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.journal, expected);
    assert_eq!(kernel.state, before);
}

#[test]
fn a_foreign_link_in_our_group_stays_and_ours_are_deleted_one_by_one() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    let foreign = Link {
        name: "theirs".into(),
        group: LINK_GROUP,
        kind: Some("dummy".into()),
        ..Link::default()
    };
    kernel.add_link(foreign);
    let ours: Vec<&str> = plugin.plan.link_names().collect();
    let expected = delete_links(&kernel, &ours);
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.journal[4..], expected, "after the sysctls and the tables");
    let left: Vec<&str> = kernel.state.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(left, ["lo", "eth0", "theirs"]);
}

#[test]
fn a_second_del_changes_nothing_and_succeeds() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    plugin.del(&mut kernel).unwrap();
    kernel.take_journal();
    plugin.del(&mut kernel).unwrap();
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
}

#[test]
fn del_of_an_attachment_that_built_nothing_changes_nothing() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    Plugin::one().del(&mut kernel).unwrap();
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
}

#[test]
fn del_leaves_another_attachments_objects_alone() {
    let mut kernel = pod();
    let owner = Plugin::one();
    owner.added(&mut kernel);
    let before = kernel.state.clone();
    let other = Plugin::new("pod-b", settings(1, 1));
    other.del(&mut kernel).unwrap();
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
    assert_eq!(owner.check(&mut kernel), []);
}

#[test]
fn del_restores_only_the_sysctls_that_still_differ_and_leaves_foreign_objects_alone() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    kernel.set_sysctl("net/ipv4/ip_forward", "0");
    kernel.add_link(Link {
        name: "mine".into(),
        kind: Some("bridge".into()),
        ..Link::default()
    });
    plugin.del(&mut kernel).unwrap();
    assert_eq!(
        steps(&kernel.journal)[..2],
        [
            "setting sysctl net/ipv6/conf/all/forwarding=0",
            "deleting nftables table ip cuttlefish_nat"
        ]
    );
    let left: Vec<&str> = kernel.state.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(left, ["lo", "eth0", "mine"]);
    assert_eq!(kernel.state.addresses, pod().state.addresses, "lo's and eth0's");
}

/// Rewrites the comment of both our tables, as a tenant with `CAP_NET_ADMIN` in the pod can.
fn rewrite_record(kernel: &mut FakeKernel, comment: &str) {
    for table in &mut kernel.state.tables {
        table.comment = Some(comment.into());
    }
}

#[test]
fn with_a_damaged_record_del_removes_our_tables_and_marked_links_and_leaves_the_sysctls() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    let damaged = format!("cuttlefish-cni owner={} base=99999999999", plugin.tag.as_str());
    rewrite_record(&mut kernel, &damaged);
    let mut expected = delete_tables(&kernel).to_vec();
    expected.push(Change::DeleteLinkGroup(LINK_GROUP));
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.journal, expected);
    assert!(kernel.state.tables.is_empty());
    assert_eq!(kernel.state.links.len(), 2, "lo and eth0");
    assert_eq!(kernel.state.sysctl("net/ipv4/ip_forward"), Some("1"));
}

#[test]
fn del_leaves_tables_whose_comment_names_no_attachment_of_ours() {
    for comment in [
        "written by hand".to_string(),
        "cuttlefish-cni owner=0123456789abcdef base=1 instances=1 sysctls=0,0".to_string(),
    ] {
        let mut kernel = pod();
        let plugin = Plugin::one();
        plugin.added(&mut kernel);
        rewrite_record(&mut kernel, &comment);
        let tables = kernel.state.tables.clone();
        plugin.del(&mut kernel).unwrap();
        assert_eq!(
            steps(&kernel.journal),
            [format!("deleting link group {LINK_GROUP}")],
            "{comment}"
        );
        assert_eq!(kernel.state.tables, tables, "{comment}");
    }
}

#[test]
fn a_failed_delete_is_reported_and_every_other_step_still_runs() {
    let mut kernel = pod();
    let before = kernel.state.clone();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    kernel.fail_changes_where(
        |c| matches!(c, Change::DeleteTable { table, .. } if *table == NAT),
        EBUSY,
    );
    let error = plugin.del(&mut kernel).unwrap_err();
    assert_eq!(errno(&error), Some(EBUSY));
    assert!(
        error
            .to_string()
            .starts_with("deleting nftables table ip cuttlefish_nat: "),
        "{error}"
    );
    assert_eq!(
        kernel.journal.len(),
        4,
        "both sysctls, the other table, the link group"
    );
    let mut expected = before.clone();
    expected.tables = kernel.state.tables.clone();
    assert_eq!(kernel.state, expected, "all but the NAT table is gone");
    assert_eq!(kernel.state.tables[0].id, NAT);

    kernel.restart();
    plugin.del(&mut kernel).unwrap();
    assert_eq!(kernel.state, before, "the next DEL finishes");
}

#[test]
fn three_failed_deletes_are_all_reported_with_the_kernel_code() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    kernel.fail_changes_where(|c| matches!(c, Change::DeleteTable { .. }), EBUSY);
    kernel.fail_changes_where(|c| matches!(c, Change::DeleteLinkGroup(_)), EIO);
    let error = plugin.del(&mut kernel).unwrap_err();
    assert_eq!(error.code(), crate::error::CODE_KERNEL, "{error}");
    let message = error.to_string();
    assert!(message.starts_with("3 failures: "), "{message}");
    let busy = std::io::Error::from_raw_os_error(EBUSY);
    for failure in [
        format!("deleting nftables table ip cuttlefish_nat: {busy}"),
        format!("deleting nftables table inet cuttlefish_filter: {busy}"),
        format!(
            "deleting link group {LINK_GROUP}: {}",
            std::io::Error::from_raw_os_error(EIO)
        ),
    ] {
        assert!(message.contains(&failure), "{failure:?} missing from {message}");
    }
    assert_eq!(
        kernel.state.sysctl("net/ipv4/ip_forward"),
        Some("0"),
        "restored all the same"
    );
}

#[test]
fn an_object_already_gone_is_success() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    kernel.fail_changes_where(|c| matches!(c, Change::DeleteLinkGroup(_)), ENODEV);
    plugin.del(&mut kernel).unwrap();
}

#[test]
fn del_that_cannot_list_the_tables_fails_before_any_change() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    let before = kernel.state.clone();
    kernel.fail_read(Read::Tables, EIO);
    let error = plugin.del(&mut kernel).unwrap_err();
    assert_eq!(errno(&error), Some(EIO));
    assert!(
        error.to_string().starts_with("reading our nftables tables: "),
        "{error}"
    );
    assert_eq!((kernel.journal.len(), &kernel.state), (0, &before));
}

#[test]
fn a_sysctl_del_cannot_read_is_reported_and_the_rest_still_runs() {
    let mut kernel = pod();
    let plugin = Plugin::one();
    plugin.added(&mut kernel);
    kernel.fail_read(Read::Sysctls, EIO);
    let message = plugin.del(&mut kernel).unwrap_err().to_string();
    assert!(
        message.contains("reading sysctl net/ipv4/ip_forward: "),
        "{message}"
    );
    assert!(
        message.contains("reading sysctl net/ipv6/conf/all/forwarding: "),
        "{message}"
    );
    assert_eq!(
        kernel.journal.len(),
        3,
        "the two tables and the link group: {:?}",
        steps(&kernel.journal)
    );
    assert_eq!(kernel.state.links.len(), 2, "lo and eth0");
}
