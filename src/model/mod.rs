//! The vocabulary of a pod's network, shared by the plan, the kernel, setup, teardown and
//! CHECK: what we build (links, host addresses, nftables rules with the chain and table they
//! belong to, sysctls by name), the changes that build and remove it ([`Change`]), and what a
//! namespace holds ([`Observed`]). Nothing here knows a wire format: the encoders in `netlink`
//! and `nft` translate this vocabulary to netlink messages and back.

mod address;
mod change;
mod observed;
mod rules;
mod tables;

pub use address::{Address, HostAddress, IpFamily};
pub use change::{Change, TapSpec};
pub use observed::{BridgeInfo, Chain, Link, ListedRule, Observed, Table, TunInfo};
pub use rules::{IfName, Protocol, Rule, DNS_PORT, IFNAME_PREFIX};
pub use tables::{
    chains_for, tables_for, ChainSpec, ChainType, Family, Hook, TableId, DNS_REDIRECT, FILTER, GUARD,
    MASQUERADE, MSS_CLAMP, NAT, TABLES,
};
