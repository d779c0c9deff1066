//! CHECK: compare a pod netns, as observed, with the plan. Every difference is a [`Drift`]; an
//! empty list means the attachment is as ADD left it. A TAP with no VMM attached has no carrier
//! (and so does a bridge whose ports all lack one): that is normal and not checked.

mod drift;

pub use drift::{Drift, Master, TapFlag};

use crate::mark::{AttachmentTag, TableRecord, LINK_GROUP};
use crate::model::{chains_for, tables_for, HostAddress, IpFamily, Link, Observed, Rule, Table};
use crate::plan::{Plan, FORWARDING_SYSCTLS};
use std::collections::BTreeSet;

/// How `observed` differs from `plan`. `alias` is the one ADD wrote on every link (the pod
/// reads its vsock CID there). `observed` must hold the values of [`Plan::sysctls`].
pub fn diff(plan: &Plan, observed: &Observed, tag: &AttachmentTag, alias: &str) -> Vec<Drift> {
    let mut drifts = Vec::new();
    let families = plan.families();

    for bridge in &plan.bridges {
        let Some(link) = find_ours(observed, bridge.name, tag, alias, &mut drifts) else {
            continue;
        };
        match link.bridge {
            None => drifts.push(Drift::NotABridge {
                link: link.name.clone(),
                kind: link.kind.clone(),
            }),
            Some(info) => {
                if info.stp_enabled {
                    drifts.push(Drift::StpEnabled {
                        link: link.name.clone(),
                    });
                }
                if info.forward_delay != 0 {
                    drifts.push(Drift::ForwardDelay {
                        link: link.name.clone(),
                        actual: info.forward_delay,
                    });
                }
            }
        }
        check_addresses(observed, link, Some(bridge.address()), &families, &mut drifts);
        for (name, wanted) in bridge.ipv6_sysctls() {
            check_sysctl(observed, name, wanted, &mut drifts);
        }
    }

    for tap in &plan.taps {
        let Some(link) = find_ours(observed, &tap.name, tag, alias, &mut drifts) else {
            continue;
        };
        match link.tun {
            None => drifts.push(Drift::NotATap {
                link: link.name.clone(),
                kind: link.kind.clone(),
            }),
            Some(tun) => {
                let expect = [
                    (tun.is_tap, true, TapFlag::TypeTap),
                    (tun.packet_info, false, TapFlag::NoPacketInfo),
                    (tun.vnet_hdr, true, TapFlag::VnetHdr),
                    (tun.persist, true, TapFlag::Persist),
                    (tun.multi_queue, false, TapFlag::SingleQueue),
                ];
                for (actual, wanted, flag) in expect {
                    if actual != wanted {
                        drifts.push(Drift::TapFlag {
                            link: link.name.clone(),
                            flag,
                        });
                    }
                }
                if tun.owner != tap.owner {
                    drifts.push(Drift::TapOwner {
                        link: link.name.clone(),
                        actual: tun.owner,
                        expected: tap.owner,
                    });
                }
                if tun.group != tap.group {
                    drifts.push(Drift::TapGroup {
                        link: link.name.clone(),
                        actual: tun.group,
                        expected: tap.group,
                    });
                }
            }
        }
        let expected_master = tap.bridge.and_then(|b| observed.link(b)).map(|b| b.index);
        if link.master != expected_master {
            drifts.push(Drift::WrongMaster {
                link: link.name.clone(),
                actual: master_of(observed, link),
                expected: tap.bridge,
            });
        }
        check_addresses(observed, link, tap.address, &families, &mut drifts);
    }

    for id in tables_for(&plan.nft_rules) {
        match observed.table(id) {
            Some(table) => check_table(table, plan, tag, &mut drifts),
            None => drifts.push(Drift::TableMissing(id)),
        }
    }

    for name in FORWARDING_SYSCTLS {
        check_sysctl(observed, name.to_string(), "1", &mut drifts);
    }
    drifts
}

fn find_ours<'a>(
    observed: &'a Observed,
    name: &str,
    tag: &AttachmentTag,
    alias: &str,
    drifts: &mut Vec<Drift>,
) -> Option<&'a Link> {
    let Some(link) = observed.link(name) else {
        drifts.push(Drift::LinkMissing { link: name.into() });
        return None;
    };
    match link.alias.as_deref() {
        Some(actual) if actual == alias => {}
        Some(actual) if tag.named_in(actual) => drifts.push(Drift::WrongAlias {
            link: name.into(),
            actual: actual.into(),
            expected: alias.into(),
        }),
        _ => drifts.push(Drift::NotMarked {
            link: name.into(),
            alias: link.alias.clone(),
        }),
    }
    if link.group != LINK_GROUP {
        drifts.push(Drift::WrongGroup {
            link: name.into(),
            actual: link.group,
            expected: LINK_GROUP,
        });
    }
    if !link.up {
        drifts.push(Drift::Down { link: name.into() });
    }
    Some(link)
}

/// A sysctl the kernel does not have is not checked: IPv6 is off on the node, and ADD set
/// nothing.
fn check_sysctl(observed: &Observed, name: String, wanted: &'static str, drifts: &mut Vec<Drift>) {
    if let Some(value) = observed.sysctl(&name) {
        if value != wanted {
            drifts.push(Drift::Sysctl {
                actual: value.to_string(),
                name,
                expected: wanted,
            });
        }
    }
}

/// Compares the addresses of `link` of the families the plan uses, except IPv6 link-local ones:
/// the kernel adds those itself, and SLAAC on the bridges adds whatever prefix a guest
/// advertises (cuttlefish-net.md §9.2).
fn check_addresses(
    observed: &Observed,
    link: &Link,
    expected: Option<HostAddress>,
    families: &BTreeSet<IpFamily>,
    drifts: &mut Vec<Drift>,
) {
    let expected: Vec<HostAddress> = expected.into_iter().collect();
    let actual: Vec<_> = observed
        .addresses_of(link)
        .filter(|a| families.contains(&a.family()) && !a.is_ipv6_link_local())
        .copied()
        .collect();
    let matches = actual.len() == expected.len() && expected.iter().all(|w| actual.iter().any(|a| w.is(a)));
    if !matches {
        drifts.push(Drift::Addresses {
            link: link.name.clone(),
            actual,
            expected,
        });
    }
}

fn master_of(observed: &Observed, link: &Link) -> Master {
    match link.master {
        None => Master::None,
        Some(index) => observed
            .link_by_index(index)
            .map_or(Master::Index(index), |m| Master::Link(m.name.clone())),
    }
}

fn check_table(table: &Table, plan: &Plan, tag: &AttachmentTag, drifts: &mut Vec<Drift>) {
    let id = table.id;
    let comment = table.comment.as_deref().unwrap_or_default();
    if !tag.owns_table(table) {
        drifts.push(Drift::TableNotOurs {
            table: id,
            comment: comment.to_string(),
        });
    } else if let Err(reason) = TableRecord::parse(comment) {
        drifts.push(Drift::RecordDamaged { table: id, reason });
    }
    let wanted_chains: Vec<_> = chains_for(&plan.nft_rules)
        .into_iter()
        .filter(|c| c.table == id)
        .collect();
    let chains_ok = table.chains.len() == wanted_chains.len()
        && wanted_chains.iter().all(|w| {
            table.chains.iter().any(|c| {
                c.name == w.name
                    && c.chain_type.as_deref() == Some(w.chain_type.to_string().as_str())
                    && c.hook == Some(w.hook.number())
                    && c.priority == Some(w.priority)
            })
        });
    if !chains_ok {
        drifts.push(Drift::Chains {
            table: id,
            actual: table.chains.clone(),
            expected: wanted_chains.clone(),
        });
    }
    // Rules are compared per chain, in order: the kernel lists them chain by chain.
    for chain in wanted_chains {
        let actual: Vec<Option<Rule>> = table
            .rules
            .iter()
            .filter(|r| r.chain == chain.name)
            .map(|r| r.kind)
            .collect();
        let expected: Vec<Rule> = plan
            .nft_rules
            .iter()
            .filter(|r| r.chain() == chain)
            .copied()
            .collect();
        if actual.iter().copied().ne(expected.iter().copied().map(Some)) {
            drifts.push(Drift::Rules {
                table: id,
                chain: chain.name,
                actual,
                expected,
            });
        }
    }
}
