//! How the kernel applies each [`Change`] to a namespace: the fake kernel's model of rtnetlink,
//! nf_tables, `/dev/net/tun` and `/proc/sys`, as far as our changes reach them. A refusal is the
//! errno the kernel gives, and a refused change changes nothing unless the kernel says otherwise.

use crate::model::{
    chains_for, tables_for, Address, BridgeInfo, Chain, Change, Link, ListedRule, Observed, Rule, Table,
    TapSpec, TunInfo,
};
use nix::libc::{EBUSY, EEXIST, EINVAL, ENODEV, ENOENT, EOPNOTSUPP, EPERM};

/// What the kernel numbers: link indexes and table handles, each never handed out twice.
#[derive(Debug)]
pub struct Numbers {
    next_index: u32,
    next_handle: u64,
}

impl Numbers {
    pub fn new() -> Numbers {
        Numbers {
            next_index: 1,
            next_handle: 1,
        }
    }

    fn index(&mut self) -> u32 {
        self.next_index += 1;
        self.next_index - 1
    }

    fn handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle - 1
    }
}

/// Where a new link's IPv6 settings come from, and where its own live.
const IPV6_DEFAULT: &str = "net/ipv6/conf/default/";

pub fn apply(ns: &mut Observed, numbers: &mut Numbers, change: &Change) -> Result<(), i32> {
    match change {
        Change::CreateTables { comment, rules } => create_tables(ns, numbers, comment, rules),
        Change::DeleteTable { table, handle } => {
            // With a handle, nf_tables finds the table by handle within the family.
            let at = ns
                .tables
                .iter()
                .position(|t| t.id.family == table.family && t.handle == *handle)
                .ok_or(ENOENT)?;
            ns.tables.remove(at);
            Ok(())
        }
        Change::WriteSysctl { name, value } => match ns.sysctls.get_mut(name) {
            Some(slot) => {
                *slot = Some(value.clone());
                Ok(())
            }
            None => Err(ENOENT),
        },
        Change::CreateBridge { name, group } => {
            if ns.link(name).is_some() {
                return Err(EEXIST);
            }
            create_link(
                ns,
                numbers,
                Link {
                    name: name.clone(),
                    group: *group,
                    kind: Some("bridge".into()),
                    bridge: Some(BridgeInfo {
                        stp_enabled: false,
                        forward_delay: 0,
                    }),
                    ..Link::default()
                },
            );
            Ok(())
        }
        Change::CreateTap(spec) => create_tap(ns, numbers, spec),
        Change::ConfigureLink {
            name,
            alias,
            group,
            master,
        } => {
            let at = ns.links.iter().position(|l| l.name == *name).ok_or(ENODEV)?;
            // do_setlink applies the group, the alias and the flags before the master, and
            // keeps them when setting the master fails.
            let link = &mut ns.links[at];
            link.group = *group;
            link.alias = Some(alias.clone());
            link.up = true;
            if let Some(master) = *master {
                match ns.link_by_index(master) {
                    None => return Err(EINVAL),
                    Some(bridge) if bridge.kind.as_deref() != Some("bridge") => return Err(EOPNOTSUPP),
                    Some(_) => ns.links[at].master = Some(master),
                }
            }
            Ok(())
        }
        Change::AddAddress { index, address, .. } => {
            if ns.link_by_index(*index).is_none() {
                return Err(ENODEV);
            }
            let same =
                |a: &Address| a.index == *index && a.address == address.address && a.prefix == address.prefix;
            if ns.addresses.iter().any(same) {
                return Err(EEXIST);
            }
            ns.addresses.push(Address {
                index: *index,
                address: address.address,
                prefix: address.prefix,
                broadcast: address.broadcast(),
            });
            Ok(())
        }
        Change::DeleteLink { index, .. } => {
            if ns.link_by_index(*index).is_none() {
                return Err(ENODEV);
            }
            delete_link(ns, *index);
            Ok(())
        }
        Change::DeleteLinkGroup(group) => {
            if *group == 0 {
                return Err(EPERM);
            }
            let doomed: Vec<u32> = ns
                .links
                .iter()
                .filter(|l| l.group == *group)
                .map(|l| l.index)
                .collect();
            if doomed.is_empty() {
                return Err(ENODEV);
            }
            for index in doomed {
                delete_link(ns, index);
            }
            Ok(())
        }
    }
}

/// One nf_tables transaction: every table `rules` need, or none when one of them exists.
fn create_tables(ns: &mut Observed, numbers: &mut Numbers, comment: &str, rules: &[Rule]) -> Result<(), i32> {
    let ids = tables_for(rules);
    if ids.iter().any(|id| ns.table(*id).is_some()) {
        return Err(EEXIST);
    }
    for id in ids {
        let chains: Vec<_> = chains_for(rules).into_iter().filter(|c| c.table == id).collect();
        ns.tables.push(Table {
            id,
            handle: numbers.handle(),
            comment: Some(comment.to_string()),
            chains: chains
                .iter()
                .map(|c| Chain {
                    name: c.name.to_string(),
                    chain_type: Some(c.chain_type.to_string()),
                    hook: Some(c.hook.number()),
                    priority: Some(c.priority),
                })
                .collect(),
            // Listed chain by chain, each chain's rules in the order they were added.
            rules: chains
                .iter()
                .flat_map(|c| {
                    rules.iter().filter(|r| r.chain() == *c).map(|r| ListedRule {
                        chain: c.name.to_string(),
                        kind: Some(*r),
                    })
                })
                .collect(),
        });
    }
    Ok(())
}

/// TUNSETIFF with `IFF_TUN_EXCL` refuses any existing name; the TAP starts down, in group 0.
fn create_tap(ns: &mut Observed, numbers: &mut Numbers, spec: &TapSpec) -> Result<(), i32> {
    if ns.link(&spec.name).is_some() {
        return Err(EBUSY);
    }
    create_link(
        ns,
        numbers,
        Link {
            name: spec.name.clone(),
            kind: Some("tun".into()),
            tun: Some(TunInfo {
                is_tap: true,
                packet_info: false,
                vnet_hdr: true,
                persist: true,
                multi_queue: false,
                owner: spec.owner,
                group: spec.group,
            }),
            ..Link::default()
        },
    );
    Ok(())
}

/// Adds `link` under a new index, with a MAC address and the IPv6 settings of `default`.
pub fn create_link(ns: &mut Observed, numbers: &mut Numbers, mut link: Link) -> u32 {
    let index = numbers.index();
    link.index = index;
    link.mac = Some(format!(
        "02:00:00:00:{:02x}:{:02x}",
        link.index >> 8,
        link.index & 0xff
    ));
    let own: Vec<(String, Option<String>)> = ns
        .sysctls
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix(IPV6_DEFAULT)?;
            Some((format!("net/ipv6/conf/{}/{key}", link.name), value.clone()))
        })
        .collect();
    ns.sysctls.extend(own);
    ns.links.push(link);
    index
}

/// The link goes with its addresses and its sysctls, and its ports lose their master.
fn delete_link(ns: &mut Observed, index: u32) {
    let at = ns
        .links
        .iter()
        .position(|l| l.index == index)
        .expect("checked by the caller");
    let link = ns.links.remove(at);
    ns.addresses.retain(|a| a.index != index);
    for port in ns.links.iter_mut().filter(|l| l.master == Some(index)) {
        port.master = None;
    }
    let own = [
        format!("net/ipv4/conf/{}/", link.name),
        format!("net/ipv6/conf/{}/", link.name),
    ];
    ns.sysctls
        .retain(|name, _| !own.iter().any(|prefix| name.starts_with(prefix.as_str())));
}
