//! Addresses on links: the ones we put on ours ([`HostAddress`]) and the ones a namespace
//! holds ([`Address`]), of either family.

use ipnetwork::{IpNetwork, Ipv4Network};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(address: IpAddr) -> IpFamily {
        match address {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

/// An address we put on one of our links. An IPv4 address always goes with its broadcast
/// (`ip addr add … brd +`): assemble_cvd rejects a tap whose broadcast equals its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddress {
    pub address: IpAddr,
    pub prefix: u8,
}

impl HostAddress {
    pub const fn v4(address: Ipv4Addr, prefix: u8) -> HostAddress {
        HostAddress {
            address: IpAddr::V4(address),
            prefix,
        }
    }

    pub fn family(&self) -> IpFamily {
        IpFamily::of(self.address)
    }

    /// The subnet the address is in (host bits cleared).
    pub fn network(&self) -> IpNetwork {
        let net = IpNetwork::new(self.address, self.prefix).expect("prefix fits the family");
        IpNetwork::new(net.network(), self.prefix).expect("prefix fits the family")
    }

    /// The subnet of an IPv4 address; None for IPv6.
    pub fn ipv4_network(&self) -> Option<Ipv4Network> {
        match self.network() {
            IpNetwork::V4(net) => Some(net),
            IpNetwork::V6(_) => None,
        }
    }

    /// The broadcast an IPv4 address goes with; IPv6 has none.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        self.ipv4_network().map(|net| net.broadcast())
    }

    /// The guest side of a routed IPv4 /30: the host address + 1 (cuttlefish-net.md §1.2).
    /// None for anything else.
    pub fn guest(&self) -> Option<Ipv4Addr> {
        match self.address {
            IpAddr::V4(host) if self.prefix == 30 => Some(Ipv4Addr::from(u32::from(host) + 1)),
            _ => None,
        }
    }

    /// Whether a namespace's `address` is in the same subnet as this one, or this one in its.
    pub fn overlaps(&self, address: &Address) -> bool {
        match (self.network(), IpNetwork::new(address.address, address.prefix)) {
            (IpNetwork::V4(ours), Ok(IpNetwork::V4(theirs))) => ours.overlaps(theirs),
            (IpNetwork::V6(ours), Ok(IpNetwork::V6(theirs))) => ours.overlaps(theirs),
            _ => false,
        }
    }

    /// Whether the namespace's `address` is this one, with the broadcast it goes with.
    pub fn is(&self, address: &Address) -> bool {
        address.address == self.address
            && address.prefix == self.prefix
            && address.broadcast == self.broadcast()
    }
}

impl std::fmt::Display for HostAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)?;
        match self.broadcast() {
            Some(broadcast) => write!(f, " brd {broadcast}"),
            None => Ok(()),
        }
    }
}

/// An address on a link, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The index of the link that carries it.
    pub index: u32,
    pub address: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
}

impl Address {
    pub fn family(&self) -> IpFamily {
        IpFamily::of(self.address)
    }

    /// fe80::/10: the kernel gives every link with IPv6 on one of these by itself.
    pub fn is_ipv6_link_local(&self) -> bool {
        matches!(self.address, IpAddr::V6(ip) if ip.segments()[0] & 0xffc0 == 0xfe80)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(text: &str, broadcast: Option<Ipv4Addr>) -> Address {
        let (ip, prefix) = text.split_once('/').unwrap();
        Address {
            index: 1,
            address: ip.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
            broadcast,
        }
    }

    #[test]
    fn an_ipv4_address_goes_with_its_broadcast_and_an_ipv6_one_with_none() {
        let v4 = HostAddress::v4(Ipv4Addr::new(192, 168, 97, 1), 30);
        assert_eq!(v4.to_string(), "192.168.97.1/30 brd 192.168.97.3");
        assert_eq!(v4.guest(), Some(Ipv4Addr::new(192, 168, 97, 2)));
        let v6 = HostAddress {
            address: "fd00:cf::1".parse().unwrap(),
            prefix: 64,
        };
        assert_eq!(v6.to_string(), "fd00:cf::1/64");
        assert_eq!(
            (v6.broadcast(), v6.guest(), v6.ipv4_network()),
            (None, None, None)
        );
        assert_eq!(v6.network().to_string(), "fd00:cf::/64");
    }

    #[test]
    fn an_address_is_ours_only_with_the_same_prefix_and_broadcast() {
        let ours = HostAddress::v4(Ipv4Addr::new(192, 168, 98, 1), 24);
        let brd = Some(Ipv4Addr::new(192, 168, 98, 255));
        assert!(ours.is(&observed("192.168.98.1/24", brd)));
        assert!(!ours.is(&observed("192.168.98.1/24", None)));
        assert!(!ours.is(&observed(
            "192.168.98.1/25",
            Some(Ipv4Addr::new(192, 168, 98, 127))
        )));
        let v6 = HostAddress {
            address: "fd00:cf::1".parse().unwrap(),
            prefix: 64,
        };
        assert!(v6.is(&observed("fd00:cf::1/64", None)));
    }

    #[test]
    fn overlap_is_within_one_family() {
        let ours = HostAddress::v4(Ipv4Addr::new(192, 168, 98, 1), 24);
        assert!(ours.overlaps(&observed("192.168.0.0/16", None)));
        assert!(ours.overlaps(&observed("192.168.98.200/32", None)));
        assert!(!ours.overlaps(&observed("192.168.99.1/24", None)));
        assert!(!ours.overlaps(&observed("::ffff:192.168.98.1/128", None)));
        assert!(!ours.overlaps(&observed("::/0", None)));
    }

    #[test]
    fn only_fe80_slash_10_is_link_local() {
        assert!(observed("fe80::1/64", None).is_ipv6_link_local());
        assert!(observed("febf::1/64", None).is_ipv6_link_local());
        assert!(!observed("fec0::1/64", None).is_ipv6_link_local());
        assert!(!observed("fd00::1/64", None).is_ipv6_link_local());
        assert!(!observed("169.254.0.1/16", None).is_ipv6_link_local());
    }
}
