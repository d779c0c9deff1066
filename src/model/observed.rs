//! What a namespace holds, as far as our objects are concerned: its links, their addresses of
//! either family, those of our nftables tables that exist, and the sysctls asked for.

use super::address::Address;
use super::tables::TableId;
use std::collections::BTreeMap;

/// A snapshot of a pod netns, read through [`crate::kernel::Kernel::observe`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    /// Those of our tables (by family and name) that exist, whoever created them.
    pub tables: Vec<Table>,
    /// The sysctls asked for, by name; None where the kernel has no such sysctl.
    pub sysctls: BTreeMap<String, Option<String>>,
}

impl Observed {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    pub fn addresses_of(&self, link: &Link) -> impl Iterator<Item = &Address> {
        let index = link.index;
        self.addresses.iter().filter(move |a| a.index == index)
    }

    pub fn table(&self, id: TableId) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// The value of a sysctl that was observed; None when it does not exist or was not asked for.
    pub fn sysctl(&self, name: &str) -> Option<&str> {
        self.sysctls.get(name).and_then(Option::as_deref)
    }
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub group: u32,
    /// The index of the bridge this link is a port of.
    pub master: Option<u32>,
    pub up: bool,
    pub mac: Option<String>,
    /// The rtnetlink kind: `bridge`, `tun`, `veth`, …
    pub kind: Option<String>,
    pub bridge: Option<BridgeInfo>,
    pub tun: Option<TunInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgeInfo {
    pub stp_enabled: bool,
    pub forward_delay: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunInfo {
    pub is_tap: bool,
    pub packet_info: bool,
    pub vnet_hdr: bool,
    pub persist: bool,
    pub multi_queue: bool,
    /// The uid allowed to open the TAP.
    pub owner: Option<u32>,
    pub group: Option<u32>,
}

/// One of our tables (by family and name) as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub id: TableId,
    pub handle: u64,
    pub comment: Option<String>,
    pub chains: Vec<Chain>,
    pub rules: Vec<ListedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub chain_type: Option<String>,
    /// The hook as the kernel numbers it (see [`super::Hook::number`]).
    pub hook: Option<u32>,
    pub priority: Option<i32>,
}

/// A rule as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    pub chain: String,
    /// Which of our rules this is; None for any other rule.
    pub kind: Option<super::Rule>,
}
