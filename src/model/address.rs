//! An address we put on one of our links.

use ipnetwork::Ipv4Network;
use std::net::Ipv4Addr;

/// An IPv4 address on one of our links, always with its broadcast (`ip addr add … brd +`):
/// assemble_cvd rejects a tap whose broadcast equals its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddress {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl HostAddress {
    pub fn network(&self) -> Ipv4Network {
        let net = Ipv4Network::new(self.address, self.prefix).expect("prefix <= 32");
        Ipv4Network::new(net.network(), self.prefix).expect("prefix <= 32")
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        self.network().broadcast()
    }

    /// The guest side of a routed /30: the host address + 1 (cuttlefish-net.md §1.2). None for
    /// any other prefix.
    pub fn guest(&self) -> Option<Ipv4Addr> {
        (self.prefix == 30).then(|| Ipv4Addr::from(u32::from(self.address) + 1))
    }
}

impl std::fmt::Display for HostAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} brd {}", self.address, self.prefix, self.broadcast())
    }
}
