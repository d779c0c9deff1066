//! The fake kernel behaves as the kernel does in what the plugin relies on.

use super::{is_killed, FakeKernel, Read};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::model::{
    Change, HostAddress, Protocol, Rule, TableId, TapSpec, DNS_REDIRECT, FILTER, MASQUERADE, NAT,
};
use nix::libc::{EBUSY, EEXIST, EINVAL, EIO, ENODEV, ENOENT};

fn bridge(name: &str) -> Change {
    Change::CreateBridge {
        name: name.into(),
        group: 7,
    }
}

fn tap(name: &str) -> Change {
    Change::CreateTap(TapSpec {
        name: name.into(),
        owner: Some(1000),
        group: None,
    })
}

fn errno(result: crate::error::Result<()>) -> Option<i32> {
    match result {
        Err(Error::Kernel { source, .. }) => source.raw_os_error(),
        other => panic!("not a kernel error: {other:?}"),
    }
}

fn index(kernel: &FakeKernel, name: &str) -> u32 {
    kernel.state.link(name).unwrap().index
}

fn tables(comment: &str, rules: Vec<Rule>) -> Change {
    Change::CreateTables {
        comment: comment.into(),
        rules,
    }
}

fn handle(kernel: &FakeKernel, table: TableId) -> u64 {
    kernel.state.table(table).unwrap().handle
}

#[test]
fn links_are_created_as_the_kernel_makes_them_and_names_are_exclusive() {
    let mut kernel = FakeKernel::new_netns(true);
    kernel.apply(&bridge("br")).unwrap();
    kernel.apply(&tap("tp")).unwrap();
    let br = kernel.state.link("br").unwrap().clone();
    assert_eq!(
        (br.kind.as_deref(), br.group, br.up, br.alias.as_deref()),
        (Some("bridge"), 7, false, None)
    );
    let bridge_info = br.bridge.unwrap();
    assert!(!bridge_info.stp_enabled && bridge_info.forward_delay == 0);
    let tp = kernel.state.link("tp").unwrap().clone();
    assert_eq!((tp.kind.as_deref(), tp.group, tp.up), (Some("tun"), 0, false));
    let tun = tp.tun.unwrap();
    assert!(tun.is_tap && !tun.packet_info && tun.vnet_hdr && tun.persist && !tun.multi_queue);
    assert_eq!((tun.owner, tun.group), (Some(1000), None));
    assert_eq!(kernel.state.sysctl("net/ipv6/conf/br/disable_ipv6"), Some("0"));

    assert_eq!(errno(kernel.apply(&bridge("tp"))), Some(EEXIST));
    assert_eq!(errno(kernel.apply(&tap("br"))), Some(EBUSY));
    assert_eq!(kernel.state.links.len(), 3, "lo, br, tp");

    kernel
        .apply(&Change::DeleteLink {
            name: "br".into(),
            index: br.index,
        })
        .unwrap();
    kernel.apply(&bridge("br")).unwrap();
    assert!(index(&kernel, "br") > tp.index, "indexes are never reused");
}

#[test]
fn new_links_take_the_ipv6_defaults_and_without_ipv6_get_none() {
    let mut kernel = FakeKernel::new_netns(true);
    kernel.set_sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    kernel.apply(&bridge("br")).unwrap();
    assert_eq!(kernel.state.sysctl("net/ipv6/conf/br/disable_ipv6"), Some("1"));
    assert_eq!(kernel.state.sysctl("net/ipv6/conf/br/autoconf"), Some("1"));

    let mut off = FakeKernel::new_netns(false);
    off.apply(&bridge("br")).unwrap();
    assert!(off.state.sysctls.keys().all(|k| !k.starts_with("net/ipv6")));
    assert_eq!(off.sysctl("net/ipv6/conf/all/forwarding").unwrap(), None);
    let write = Change::WriteSysctl {
        name: "net/ipv6/conf/br/disable_ipv6".into(),
        value: "0".into(),
    };
    assert_eq!(errno(off.apply(&write)), Some(ENOENT));
}

#[test]
fn configuring_sets_alias_group_master_and_up_and_a_bad_master_is_refused_last() {
    let mut kernel = FakeKernel::new_netns(true);
    kernel.apply(&bridge("br")).unwrap();
    kernel.apply(&tap("tp")).unwrap();
    let configure = |master| Change::ConfigureLink {
        name: "tp".into(),
        alias: "mine".into(),
        group: 9,
        master,
    };
    assert_eq!(errno(kernel.apply(&configure(Some(999)))), Some(EINVAL));
    let tp = kernel.state.link("tp").unwrap();
    assert_eq!(
        (tp.alias.as_deref(), tp.group, tp.up, tp.master),
        (Some("mine"), 9, true, None)
    );
    kernel.apply(&configure(Some(index(&kernel, "br")))).unwrap();
    assert_eq!(
        kernel.state.link("tp").unwrap().master,
        Some(index(&kernel, "br"))
    );
    let missing = Change::ConfigureLink {
        name: "nope".into(),
        alias: String::new(),
        group: 0,
        master: None,
    };
    assert_eq!(errno(kernel.apply(&missing)), Some(ENODEV));
}

#[test]
fn deleting_a_bridge_takes_its_addresses_and_sysctls_and_frees_its_ports() {
    let mut kernel = FakeKernel::new_netns(true);
    kernel.apply(&bridge("br")).unwrap();
    kernel.apply(&tap("tp")).unwrap();
    let br = index(&kernel, "br");
    kernel
        .apply(&Change::ConfigureLink {
            name: "tp".into(),
            alias: "a".into(),
            group: 7,
            master: Some(br),
        })
        .unwrap();
    let address = Change::AddAddress {
        link: "br".into(),
        index: br,
        address: HostAddress {
            address: [10, 0, 0, 1].into(),
            prefix: 24,
        },
    };
    kernel.apply(&address).unwrap();
    assert_eq!(errno(kernel.apply(&address)), Some(EEXIST));
    assert_eq!(
        kernel.state.addresses.last().unwrap().broadcast,
        Some([10, 0, 0, 255].into())
    );
    kernel
        .apply(&Change::AddAddress {
            link: "br".into(),
            index: br,
            address: HostAddress {
                address: "fd00::1".parse().unwrap(),
                prefix: 64,
            },
        })
        .unwrap();
    assert_eq!(kernel.state.addresses.last().unwrap().broadcast, None);

    kernel
        .apply(&Change::DeleteLink {
            name: "br".into(),
            index: br,
        })
        .unwrap();
    assert_eq!(kernel.state.link("tp").unwrap().master, None);
    assert!(kernel.state.addresses.iter().all(|a| a.index != br));
    assert!(kernel.state.sysctls.keys().all(|k| !k.contains("/br/")));

    let again = kernel.apply(&Change::DeleteLink {
        name: "br".into(),
        index: br,
    });
    assert!(again.as_ref().unwrap_err().is_not_found(), "{again:?}");
    kernel.apply(&Change::DeleteLinkGroup(7)).unwrap();
    assert!(kernel.state.link("tp").is_none());
    let empty = kernel.apply(&Change::DeleteLinkGroup(7));
    assert_eq!(errno(empty), Some(ENODEV));
}

#[test]
fn tables_are_created_whole_or_not_at_all_and_deleted_by_handle() {
    let mut kernel = FakeKernel::new_netns(true);
    let rules = vec![
        Rule::Masquerade("10.0.0.0/24".parse().unwrap()),
        Rule::RedirectDns {
            protocol: Protocol::Udp,
            server: [10, 0, 0, 10].into(),
        },
        Rule::DropOtherGuestTraffic,
    ];
    kernel.apply(&tables("record", rules.clone())).unwrap();
    let nat = kernel.state.table(NAT).unwrap().clone();
    assert_eq!(nat.comment.as_deref(), Some("record"));
    let chains: Vec<&str> = nat.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(chains, [DNS_REDIRECT.name, MASQUERADE.name]);
    let listed: Vec<(&str, Option<Rule>)> = nat.rules.iter().map(|r| (r.chain.as_str(), r.kind)).collect();
    assert_eq!(
        listed,
        [("prerouting", Some(rules[1])), ("postrouting", Some(rules[0]))],
        "chain by chain"
    );
    assert_eq!(kernel.state.table(FILTER).unwrap().rules.len(), 1);

    let filter = handle(&kernel, FILTER);
    let wrong = Change::DeleteTable {
        table: FILTER,
        handle: handle(&kernel, NAT),
    };
    assert!(kernel.apply(&wrong).unwrap_err().is_not_found());
    kernel
        .apply(&Change::DeleteTable {
            table: FILTER,
            handle: filter,
        })
        .unwrap();
    assert!(kernel.state.table(FILTER).is_none());

    let before = kernel.state.clone();
    assert_eq!(errno(kernel.apply(&tables("other", rules))), Some(EEXIST));
    assert_eq!(kernel.state, before, "the filter table is not created either");
}

#[test]
fn injected_failures_and_a_kill() {
    let mut kernel = FakeKernel::new_netns(true);
    kernel.fail_change(2, EIO);
    kernel.apply(&bridge("a")).unwrap();
    assert_eq!(errno(kernel.apply(&bridge("b"))), Some(EIO));
    kernel.apply(&bridge("c")).unwrap();
    assert!(kernel.state.link("b").is_none());
    let names: Vec<String> = kernel.take_journal().iter().map(ToString::to_string).collect();
    assert_eq!(names, ["creating bridge a", "creating bridge c"]);

    kernel.fail_changes_where(|c| matches!(c, Change::CreateTap(_)), EBUSY);
    assert_eq!(errno(kernel.apply(&tap("t"))), Some(EBUSY));
    kernel.fail_read(Read::Tables, EIO);
    assert!(kernel.tables().is_err() && kernel.links().is_ok());

    kernel.restart();
    kernel.kill_after(1);
    let killed = kernel.apply(&tap("t")).unwrap_err();
    assert!(is_killed(&killed), "{killed}");
    assert!(kernel.state.link("t").is_some(), "the last change is applied");
    assert!(is_killed(&kernel.links().unwrap_err()));
    assert!(is_killed(&kernel.apply(&bridge("d")).unwrap_err()));
    kernel.restart();
    assert!(kernel.tables().is_ok());
    kernel.apply(&bridge("d")).unwrap();
    assert!(!is_killed(&Error::WorkerPanicked));
}
