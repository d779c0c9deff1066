//! How a pod netns differs from the plan, one value per difference. CHECK's error message is
//! rendered from these.

use crate::mark::RecordError;
use crate::model::{Address, Chain, ChainSpec, HostAddress, Rule, TableId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    LinkMissing {
        link: String,
    },
    /// The link carries the alias of this attachment, but not the one ADD wrote (another
    /// instance range or vsock CID).
    WrongAlias {
        link: String,
        actual: String,
        expected: String,
    },
    NotMarked {
        link: String,
        alias: Option<String>,
    },
    WrongGroup {
        link: String,
        actual: u32,
        expected: u32,
    },
    Down {
        link: String,
    },
    NotABridge {
        link: String,
        kind: Option<String>,
    },
    StpEnabled {
        link: String,
    },
    ForwardDelay {
        link: String,
        actual: u32,
    },
    NotATap {
        link: String,
        kind: Option<String>,
    },
    TapFlag {
        link: String,
        flag: TapFlag,
    },
    TapOwner {
        link: String,
        actual: Option<u32>,
        expected: Option<u32>,
    },
    TapGroup {
        link: String,
        actual: Option<u32>,
        expected: Option<u32>,
    },
    WrongMaster {
        link: String,
        actual: Master,
        expected: Option<&'static str>,
    },
    Addresses {
        link: String,
        actual: Vec<Address>,
        expected: Vec<HostAddress>,
    },
    Sysctl {
        name: String,
        actual: String,
        expected: &'static str,
    },
    TableMissing(TableId),
    TableNotOurs {
        table: TableId,
        comment: String,
    },
    RecordDamaged {
        table: TableId,
        reason: RecordError,
    },
    Chains {
        table: TableId,
        actual: Vec<Chain>,
        expected: Vec<&'static ChainSpec>,
    },
    /// The rules of one chain, in order; None for a rule that is not one of ours.
    Rules {
        table: TableId,
        chain: &'static str,
        actual: Vec<Option<Rule>>,
        expected: Vec<Rule>,
    },
    /// What the DHCP agent says of this attachment.
    DhcpAgent(String),
    /// Instance numbers an earlier release's `baseInstance: "auto"` allocated, not one per
    /// instance.
    InstanceNumbers {
        held: Vec<u32>,
        expected: usize,
    },
    /// The vsock CIDs of `vsockCid: "auto"`, not one per instance.
    VsockCids {
        held: Vec<u32>,
        expected: usize,
    },
}

/// What a TAP must be, as `ip tuntap add … vnet_hdr` makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapFlag {
    TypeTap,
    NoPacketInfo,
    VnetHdr,
    Persist,
    SingleQueue,
}

impl std::fmt::Display for TapFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TapFlag::TypeTap => "type tap",
            TapFlag::NoPacketInfo => "pi off",
            TapFlag::VnetHdr => "vnet_hdr on",
            TapFlag::Persist => "persist on",
            TapFlag::SingleQueue => "multi_queue off",
        })
    }
}

/// The bridge a link is a port of, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    None,
    Link(String),
    /// A master index that no link in the namespace has.
    Index(u32),
}

impl std::fmt::Display for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Master::None => f.write_str("none"),
            Master::Link(name) => f.write_str(name),
            Master::Index(index) => write!(f, "index {index}"),
        }
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::LinkMissing { link } => write!(f, "{link} is missing"),
            Drift::WrongAlias {
                link,
                actual,
                expected,
            } => write!(f, "{link} has alias {actual:?}, expected {expected:?}"),
            Drift::NotMarked { link, alias } => write!(
                f,
                "{link} is not marked as created for this attachment (alias {alias:?})"
            ),
            Drift::WrongGroup {
                link,
                actual,
                expected,
            } => write!(f, "{link} is in link group {actual}, expected {expected}"),
            Drift::Down { link } => write!(f, "{link} is down"),
            Drift::NotABridge { link, kind } => write!(f, "{link} is not a bridge (kind {kind:?})"),
            Drift::StpEnabled { link } => write!(f, "{link} has STP enabled"),
            Drift::ForwardDelay { link, actual } => {
                write!(f, "{link} has forward_delay {actual}, expected 0")
            }
            Drift::NotATap { link, kind } => write!(f, "{link} is not a TAP (kind {kind:?})"),
            Drift::TapFlag { link, flag } => write!(f, "{link} is not {flag}"),
            Drift::TapOwner {
                link,
                actual,
                expected,
            } => write!(f, "{link} has owner {actual:?}, expected {expected:?}"),
            Drift::TapGroup {
                link,
                actual,
                expected,
            } => write!(f, "{link} has group {actual:?}, expected {expected:?}"),
            Drift::WrongMaster {
                link,
                actual,
                expected,
            } => write!(
                f,
                "{link} has master {actual}, expected {}",
                expected.unwrap_or("none")
            ),
            Drift::Addresses {
                link,
                actual,
                expected,
            } => {
                let actual: Vec<String> = actual
                    .iter()
                    .map(|a| format!("{}/{} brd {:?}", a.address, a.prefix, a.broadcast))
                    .collect();
                write!(
                    f,
                    "{link} has addresses [{}], expected [{}]",
                    actual.join(", "),
                    list(expected)
                )
            }
            Drift::Sysctl {
                name,
                actual,
                expected,
            } => write!(f, "sysctl {name} is {actual}, expected {expected}"),
            Drift::TableMissing(table) => write!(f, "nftables table {table} is missing"),
            Drift::TableNotOurs { table, comment } => {
                write!(f, "nftables table {table} is not ours (comment {comment:?})")
            }
            Drift::RecordDamaged { table, reason } => {
                write!(f, "the state record of nftables table {table} is damaged: {reason}")
            }
            Drift::Chains {
                table,
                actual,
                expected,
            } => {
                let actual: Vec<String> = actual
                    .iter()
                    .map(|c| {
                        format!(
                            "{} ({:?} hook {:?} priority {:?})",
                            c.name, c.chain_type, c.hook, c.priority
                        )
                    })
                    .collect();
                let expected: Vec<String> = expected
                    .iter()
                    .map(|c| {
                        format!(
                            "{} ({} hook {} priority {})",
                            c.name,
                            c.chain_type,
                            c.hook.number(),
                            c.priority
                        )
                    })
                    .collect();
                write!(
                    f,
                    "nftables chains of {table} are [{}], expected [{}]",
                    actual.join(", "),
                    expected.join(", ")
                )
            }
            Drift::Rules {
                table,
                chain,
                actual,
                expected,
            } => {
                let actual: Vec<String> = actual
                    .iter()
                    .map(|r| r.map_or("(a rule not ours)".to_string(), |r| r.to_string()))
                    .collect();
                write!(
                    f,
                    "{table} {chain} rules are [{}], expected [{}]",
                    actual.join(", "),
                    list(expected)
                )
            }
            Drift::DhcpAgent(what) => f.write_str(what),
            Drift::InstanceNumbers { held, expected } => write!(
                f,
                "the attachment holds instance numbers {held:?} (allocated by baseInstance \"auto\" of an earlier release), expected {expected} of them"
            ),
            Drift::VsockCids { held, expected } => write!(
                f,
                "the attachment holds vsock CIDs {held:?}, expected {expected} of them (vsockCid: \"auto\")"
            ),
        }
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
