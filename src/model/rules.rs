//! Our nftables rules, as the plan states them and CHECK compares them. How each one is
//! written in nf_tables expressions is the `nft` encoder's business.

use ipnetwork::Ipv4Network;
use std::net::Ipv4Addr;

/// A rule of ours, in the plan's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Guest traffic from `subnet` leaves the pod with the pod's address.
    Masquerade(Ipv4Network),
    /// Forwarded TCP SYNs get an MSS no larger than the path MTU allows, in both directions:
    /// the kernel's `rt mtu` is the smaller of the route's MTU and the MTU of the route back to
    /// the source, and it never raises an MSS. Guest TCP then works through a pod MTU below
    /// 1500 (Cilium tunnels) without relying on ICMP "fragmentation needed".
    ClampMss,
    /// Guest DNS to any address goes to `server` instead.
    RedirectDns { protocol: Protocol, server: Ipv4Addr },
    /// Traffic between two ports of this bridge. With br_netfilter (loaded on most Kubernetes
    /// nodes) the kernel passes bridged frames through the forward hook, the bridge as input
    /// and output: guest to guest on one bridge, which never leaves the pod.
    Bridged(IfName),
    /// Forwarded IPv4 that enters from `iifname` with a source in `source`: what the guests
    /// behind that link may send.
    GuestSource { iifname: IfName, source: Ipv4Network },
    /// Everything else forwarded from a `cvd-*` link: spoofed IPv4 sources and all IPv6.
    DropOtherGuestTraffic,
}

/// An interface name as nf_tables compares it: IFNAMSIZ bytes, NUL-padded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IfName([u8; IFNAMSIZ]);

const IFNAMSIZ: usize = 16;

impl IfName {
    /// None for a name the kernel would refuse (empty, longer than 15 bytes, or with a NUL).
    pub fn new(name: &str) -> Option<IfName> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
            return None;
        }
        let mut padded = [0; IFNAMSIZ];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(IfName(padded))
    }

    pub fn from_padded(value: &[u8]) -> Option<IfName> {
        let padded: [u8; IFNAMSIZ] = value.try_into().ok()?;
        let end = padded.iter().position(|b| *b == 0)?;
        IfName::new(std::str::from_utf8(&padded[..end]).ok()?)
    }

    /// The name as nf_tables compares it.
    pub fn padded(&self) -> &[u8; IFNAMSIZ] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|b| *b == 0).unwrap_or(IFNAMSIZ);
        std::str::from_utf8(&self.0[..end]).unwrap_or_default()
    }
}

impl std::fmt::Debug for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        }
    }
}

impl Rule {
    /// The comment the rule carries in the kernel, so `nft list ruleset` says whose it is.
    pub fn comment(&self) -> String {
        format!("cuttlefish-cni {}", self.label())
    }

    /// A short label for the rule's comment (free of quotes, so saved rulesets parse back).
    pub fn label(&self) -> String {
        match self {
            Rule::Masquerade(net) => format!("masquerade {net}"),
            Rule::ClampMss => "clamp-mss".to_string(),
            Rule::RedirectDns { protocol, .. } => format!("dns-redirect {}", protocol.name()),
            Rule::Bridged(bridge) => format!("bridged {bridge}"),
            Rule::GuestSource { iifname, source } => format!("guest-source {iifname} {source}"),
            Rule::DropOtherGuestTraffic => "drop-other-guest-traffic".to_string(),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Masquerade(net) => write!(f, "ip saddr {net} masquerade"),
            Rule::ClampMss => write!(f, "tcp flags syn / syn,rst tcp option maxseg size set rt mtu"),
            Rule::RedirectDns { protocol, server } => {
                write!(
                    f,
                    "iifname \"{IFNAME_PREFIX}*\" {} dport 53 dnat to {server}",
                    protocol.name()
                )
            }
            Rule::Bridged(bridge) => write!(f, "iifname \"{bridge}\" oifname \"{bridge}\" accept"),
            Rule::GuestSource { iifname, source } if source.prefix() == 32 => {
                write!(f, "iifname \"{iifname}\" ip saddr {} accept", source.ip())
            }
            Rule::GuestSource { iifname, source } => {
                write!(f, "iifname \"{iifname}\" ip saddr {source} accept")
            }
            Rule::DropOtherGuestTraffic => write!(f, "iifname \"{IFNAME_PREFIX}*\" drop"),
        }
    }
}

/// Every link we create starts with this.
pub const IFNAME_PREFIX: &str = "cvd-";
pub const DNS_PORT: u16 = 53;
