//! CHECK: read the pod netns back and compare it with the plan. Every difference is named; an
//! empty list means the attachment is as ADD left it. A TAP with no VMM attached has no carrier
//! (and so does a bridge whose ports all lack one): that is normal and not checked.

use crate::error::Result;
use crate::kernel::Kernel;
use crate::mark::{self, Owner, TableRecord, LINK_GROUP};
use crate::netlink::route::{Address, Link};
use crate::nft;
use crate::plan::{HostAddress, Plan, SYSCTLS};

/// `alias` is the one ADD wrote on every link: the pod reads its vsock CID there.
pub fn differences(kernel: &mut dyn Kernel, plan: &Plan, owner: &Owner, alias: &str) -> Result<Vec<String>> {
    let links = kernel.links()?;
    let addresses = kernel.addresses()?;
    let mut diffs = Vec::new();

    for bridge in &plan.bridges {
        let Some(link) = find_ours(&links, bridge.name, owner, alias, &mut diffs) else {
            continue;
        };
        match link.bridge {
            None => diffs.push(format!("{} is not a bridge (kind {:?})", link.name, link.kind)),
            Some(info) => {
                if info.stp_enabled {
                    diffs.push(format!("{} has STP enabled", link.name));
                }
                if info.forward_delay != 0 {
                    diffs.push(format!(
                        "{} has forward_delay {}, expected 0",
                        link.name, info.forward_delay
                    ));
                }
            }
        }
        check_addresses(link, &addresses, Some(bridge.address), &mut diffs);
        for (name, wanted) in bridge.ipv6_sysctls() {
            // None: IPv6 is off on the node, and ADD set nothing.
            if let Some(value) = kernel.read_sysctl(&name)? {
                if value != wanted {
                    diffs.push(format!("sysctl {name} is {value}, expected {wanted}"));
                }
            }
        }
    }

    for tap in &plan.taps {
        let Some(link) = find_ours(&links, &tap.name, owner, alias, &mut diffs) else {
            continue;
        };
        match link.tun {
            None => diffs.push(format!("{} is not a TAP (kind {:?})", link.name, link.kind)),
            Some(tun) => {
                let expect = [
                    (tun.is_tap, true, "type tap"),
                    (tun.packet_info, false, "pi off"),
                    (tun.vnet_hdr, true, "vnet_hdr on"),
                    (tun.persist, true, "persist on"),
                    (tun.multi_queue, false, "multi_queue off"),
                ];
                for (actual, wanted, what) in expect {
                    if actual != wanted {
                        diffs.push(format!("{} is not {what}", link.name));
                    }
                }
                if tun.owner != tap.owner {
                    diffs.push(format!(
                        "{} has owner {:?}, expected {:?}",
                        link.name, tun.owner, tap.owner
                    ));
                }
                if tun.group != tap.group {
                    diffs.push(format!(
                        "{} has group {:?}, expected {:?}",
                        link.name, tun.group, tap.group
                    ));
                }
            }
        }
        let expected_master = tap
            .bridge
            .and_then(|b| links.iter().find(|l| l.name == b))
            .map(|b| b.index);
        if link.master != expected_master {
            diffs.push(format!(
                "{} has master {}, expected {}",
                link.name,
                name_of(&links, link.master),
                tap.bridge.unwrap_or("none")
            ));
        }
        check_addresses(link, &addresses, tap.address, &mut diffs);
    }

    check_nft_tables(&kernel.nft_tables()?, plan, owner, &mut diffs);

    for name in SYSCTLS {
        if let Some(value) = kernel.read_sysctl(name)? {
            if value != "1" {
                diffs.push(format!("sysctl {name} is {value}, expected 1"));
            }
        }
    }
    Ok(diffs)
}

fn find_ours<'a>(
    links: &'a [Link],
    name: &str,
    owner: &Owner,
    alias: &str,
    diffs: &mut Vec<String>,
) -> Option<&'a Link> {
    let Some(link) = links.iter().find(|l| l.name == name) else {
        diffs.push(format!("{name} is missing"));
        return None;
    };
    match link.alias.as_deref() {
        Some(actual) if actual == alias => {}
        Some(actual) if owner.owns_alias(actual) => {
            diffs.push(format!("{name} has alias {actual:?}, expected {alias:?}"))
        }
        _ => diffs.push(format!(
            "{name} is not marked as created for this attachment (alias {:?})",
            link.alias
        )),
    }
    if link.group != LINK_GROUP {
        diffs.push(format!(
            "{name} is in link group {}, expected {LINK_GROUP}",
            link.group
        ));
    }
    if !link.up {
        diffs.push(format!("{name} is down"));
    }
    Some(link)
}

fn check_addresses(
    link: &Link,
    addresses: &[Address],
    expected: Option<HostAddress>,
    diffs: &mut Vec<String>,
) {
    let actual: Vec<&Address> = addresses.iter().filter(|a| a.index == link.index).collect();
    let wanted: Vec<HostAddress> = expected.into_iter().collect();
    let matches = actual.len() == wanted.len()
        && wanted.iter().all(|w| {
            actual
                .iter()
                .any(|a| a.address == w.address && a.prefix == w.prefix && a.broadcast == Some(w.broadcast()))
        });
    if !matches {
        let shown: Vec<String> = actual
            .iter()
            .map(|a| format!("{}/{} brd {:?}", a.address, a.prefix, a.broadcast))
            .collect();
        let want: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        diffs.push(format!(
            "{} has addresses [{}], expected [{}]",
            link.name,
            shown.join(", "),
            want.join(", ")
        ));
    }
}

fn name_of(links: &[Link], index: Option<u32>) -> String {
    match index {
        None => "none".into(),
        Some(i) => links
            .iter()
            .find(|l| l.index == i)
            .map_or(format!("index {i}"), |l| l.name.clone()),
    }
}

fn check_nft_tables(tables: &[nft::Table], plan: &Plan, owner: &Owner, diffs: &mut Vec<String>) {
    for id in nft::tables_for(&plan.nft_rules) {
        match tables.iter().find(|t| t.id == id) {
            Some(table) => check_nft_table(table, plan, owner, diffs),
            None => diffs.push(format!("nftables table {id} is missing")),
        }
    }
}

fn check_nft_table(table: &nft::Table, plan: &Plan, owner: &Owner, diffs: &mut Vec<String>) {
    let id = table.id;
    let comment = table.comment.as_deref().unwrap_or_default();
    if mark::owner_of_comment(comment) != Some(owner.tag()) {
        diffs.push(format!("nftables table {id} is not ours (comment {comment:?})"));
    } else if let Err(e) = TableRecord::parse(comment) {
        diffs.push(format!("the state record of nftables table {id} is damaged: {e}"));
    }
    let describe = |c: &nft::Chain| {
        format!(
            "{} ({:?} hook {:?} priority {:?})",
            c.name, c.chain_type, c.hook, c.priority
        )
    };
    let wanted_chains: Vec<&nft::ChainSpec> = nft::chains_for(&plan.nft_rules)
        .into_iter()
        .filter(|c| c.table == id)
        .collect();
    let chains_ok = table.chains.len() == wanted_chains.len()
        && wanted_chains.iter().all(|w| {
            table.chains.iter().any(|c| {
                c.name == w.name
                    && c.chain_type.as_deref() == Some(w.chain_type)
                    && c.hook == Some(w.hook)
                    && c.priority == Some(w.priority)
            })
        });
    if !chains_ok {
        let want: Vec<String> = wanted_chains
            .iter()
            .map(|c| {
                format!(
                    "{} ({} hook {} priority {})",
                    c.name, c.chain_type, c.hook, c.priority
                )
            })
            .collect();
        let have: Vec<String> = table.chains.iter().map(describe).collect();
        diffs.push(format!(
            "nftables chains of {id} are [{}], expected [{}]",
            have.join(", "),
            want.join(", ")
        ));
    }
    // Rules are compared per chain, in order: the kernel lists them chain by chain.
    for chain in wanted_chains {
        let actual: Vec<Option<nft::Rule>> = table
            .rules
            .iter()
            .filter(|r| r.chain == chain.name)
            .map(|r| r.kind)
            .collect();
        let wanted: Vec<Option<nft::Rule>> = plan
            .nft_rules
            .iter()
            .filter(|r| r.chain() == chain)
            .map(|r| Some(*r))
            .collect();
        if actual != wanted {
            let show = |rules: &[Option<nft::Rule>]| {
                rules
                    .iter()
                    .map(|r| r.map_or("(a rule not ours)".to_string(), |r| r.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            diffs.push(format!(
                "{id} {} rules are [{}], expected [{}]",
                chain.name,
                show(&actual),
                show(&wanted)
            ));
        }
    }
}
