//! The changes ADD, its rollback and DEL make to a pod netns, one kernel request each.

use super::address::HostAddress;
use super::rules::Rule;
use super::tables::{tables_for, TableId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Creates the tables `rules` need, each with `comment` (the state record), their chains
    /// and the rules, each with [`Rule::comment`], in one transaction: all of it or nothing.
    CreateTables {
        comment: String,
        rules: Vec<Rule>,
    },
    /// Deletes a table by its handle, so that a table recreated under the same name since it
    /// was observed is left alone.
    DeleteTable {
        table: TableId,
        handle: u64,
    },
    WriteSysctl {
        name: String,
        value: String,
    },
    /// A bridge in `group`, STP off, forward_delay 0, down.
    CreateBridge {
        name: String,
        group: u32,
    },
    /// A persistent TAP without packet information, with vnet_hdr, single queue.
    CreateTap(TapSpec),
    /// Puts a link in `group` with `alias`, makes it a port of `master`, brings it up.
    ConfigureLink {
        name: String,
        alias: String,
        group: u32,
        master: Option<u32>,
    },
    AddAddress {
        link: String,
        index: u32,
        address: HostAddress,
    },
    DeleteLink {
        name: String,
        index: u32,
    },
    /// Deletes every link in the group with one request.
    DeleteLinkGroup(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSpec {
    pub name: String,
    /// The uid and gid allowed to open the TAP; None: only CAP_NET_ADMIN.
    pub owner: Option<u32>,
    pub group: Option<u32>,
}

/// The step, as error messages name it.
impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::CreateTables { rules, .. } => {
                let names: Vec<String> = tables_for(rules).iter().map(ToString::to_string).collect();
                write!(f, "creating nftables tables {}", names.join(" and "))
            }
            Change::DeleteTable { table, .. } => write!(f, "deleting nftables table {table}"),
            Change::WriteSysctl { name, value } => write!(f, "setting sysctl {name}={value}"),
            Change::CreateBridge { name, .. } => write!(f, "creating bridge {name}"),
            Change::CreateTap(tap) => write!(f, "creating TAP {}", tap.name),
            Change::ConfigureLink { name, .. } => write!(f, "configuring link {name}"),
            Change::AddAddress { link, address, .. } => write!(f, "adding {address} to {link}"),
            Change::DeleteLink { name, .. } => write!(f, "deleting link {name}"),
            Change::DeleteLinkGroup(group) => write!(f, "deleting link group {group}"),
        }
    }
}
