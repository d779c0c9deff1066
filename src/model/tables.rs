//! Our two nftables tables and their base chains.

use super::rules::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ip,
    Inet,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ip => "ip",
            Family::Inet => "inet",
        })
    }
}

/// A table's identity: the same name may exist once per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableId {
    pub family: Family,
    pub name: &'static str,
}

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}

/// Masquerade, MSS clamping and DNS redirection: everything IPv4-only, so the `ip` family,
/// which has NAT on every kernel. Release 0.1.0 created only this table, under this name.
pub const NAT: TableId = TableId {
    family: Family::Ip,
    name: "cuttlefish_nat",
};
/// What guests may send through the pod: `inet`, so one chain sees IPv4 and IPv6.
pub const FILTER: TableId = TableId {
    family: Family::Inet,
    name: "cuttlefish_filter",
};
/// Every table we create, in creation order.
pub const TABLES: [TableId; 2] = [NAT, FILTER];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Nat,
    Filter,
}

impl std::fmt::Display for ChainType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChainType::Nat => "nat",
            ChainType::Filter => "filter",
        })
    }
}

/// The netfilter hooks our base chains attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Forward,
    Postrouting,
}

impl Hook {
    /// `NF_INET_PRE_ROUTING`, `NF_INET_FORWARD`, `NF_INET_POST_ROUTING` (linux/netfilter.h):
    /// how the kernel numbers the hook when it lists a chain.
    pub const fn number(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Forward => 2,
            Hook::Postrouting => 4,
        }
    }
}

/// A base chain of one of our tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    pub table: TableId,
    pub name: &'static str,
    pub chain_type: ChainType,
    pub hook: Hook,
    pub priority: i32,
}

/// Masquerade, at srcnat as `cuttlefish-host-resources` does.
pub const MASQUERADE: ChainSpec = ChainSpec {
    table: NAT,
    name: "postrouting",
    chain_type: ChainType::Nat,
    hook: Hook::Postrouting,
    priority: 100,
};
/// MSS clamping, at the mangle priority. A filter chain in the `ip` table: clamping is IPv4
/// only, like the rest of that table.
pub const MSS_CLAMP: ChainSpec = ChainSpec {
    table: NAT,
    name: "forward",
    chain_type: ChainType::Filter,
    hook: Hook::Forward,
    priority: -150,
};
/// DNS redirection, at dstnat.
pub const DNS_REDIRECT: ChainSpec = ChainSpec {
    table: NAT,
    name: "prerouting",
    chain_type: ChainType::Nat,
    hook: Hook::Prerouting,
    priority: -100,
};
/// What guests may send, at the filter priority; policy accept, so the pod's other forwarded
/// traffic is not ours to judge.
pub const GUARD: ChainSpec = ChainSpec {
    table: FILTER,
    name: "forward",
    chain_type: ChainType::Filter,
    hook: Hook::Forward,
    priority: 0,
};

impl Rule {
    pub fn chain(&self) -> &'static ChainSpec {
        match self {
            Rule::Masquerade(_) => &MASQUERADE,
            Rule::ClampMss => &MSS_CLAMP,
            Rule::RedirectDns { .. } => &DNS_REDIRECT,
            Rule::Bridged(_) | Rule::GuestSource { .. } | Rule::DropOtherGuestTraffic => &GUARD,
        }
    }
}

/// The chains `rules` need, in a fixed order.
pub fn chains_for(rules: &[Rule]) -> Vec<&'static ChainSpec> {
    [&DNS_REDIRECT, &MSS_CLAMP, &MASQUERADE, &GUARD]
        .into_iter()
        .filter(|c| rules.iter().any(|r| r.chain() == *c))
        .collect()
}

/// The tables `rules` need, in creation order.
pub fn tables_for(rules: &[Rule]) -> Vec<TableId> {
    TABLES
        .into_iter()
        .filter(|t| rules.iter().any(|r| r.chain().table == *t))
        .collect()
}
