//! The rules we write, as nf_tables expressions, and their recognition in a dumped rule. What
//! `nft --debug=netlink` shows for each:
//!
//! `ip saddr <subnet> masquerade` (postrouting):
//!   payload load 4b @ network header + 12 => reg 1
//!   bitwise reg 1 = (reg 1 & <mask>) ^ 0          (omitted for a /32)
//!   cmp eq reg 1 <network>
//!   masq
//!
//! `tcp flags syn / syn,rst tcp option maxseg size set rt mtu` (forward):
//!   meta load l4proto => reg 1 ; cmp eq reg 1 6
//!   payload load 1b @ transport header + 13 => reg 1
//!   bitwise reg 1 = (reg 1 & 0x06) ^ 0 ; cmp eq reg 1 0x02
//!   rt load tcpmss => reg 1 ; byteorder reg 1 = hton(reg 1, 2, 2)
//!   exthdr write tcpopt reg 1 => 2b @ 2 + 2
//!
//! `iifname "cvd-*" <udp|tcp> dport 53 dnat to <server>` (prerouting):
//!   meta load iifname => reg 1 ; cmp eq reg 1 "cvd-"   (a prefix: 4 bytes, no NUL)
//!   meta load l4proto => reg 1 ; cmp eq reg 1 <17|6>
//!   payload load 2b @ transport header + 2 => reg 1 ; cmp eq reg 1 53
//!   immediate reg 1 <server> ; nat dnat ip addr_min reg 1
//!
//! In the inet filter table's forward chain:
//!
//! `iifname "<bridge>" oifname "<bridge>" accept`:
//!   meta load iifname => reg 1 ; cmp eq reg 1 "<bridge>"   (a whole name: 16 bytes, NUL-padded)
//!   meta load oifname => reg 1 ; cmp eq reg 1 "<bridge>"
//!   immediate reg 0 accept
//!
//! `iifname "<link>" ip saddr <source> accept`:
//!   meta load iifname => reg 1 ; cmp eq reg 1 "<link>"
//!   meta load nfproto => reg 1 ; cmp eq reg 1 2      (the dependency `ip saddr` needs in inet)
//!   payload load 4b @ network header + 12 => reg 1
//!   bitwise reg 1 = (reg 1 & <mask>) ^ 0             (omitted for a /32)
//!   cmp eq reg 1 <network>
//!   immediate reg 0 accept
//!
//! `iifname "cvd-*" drop`:
//!   meta load iifname => reg 1 ; cmp eq reg 1 "cvd-"
//!   immediate reg 0 drop

use super::attr::{self, AttrList, Attrs};
use crate::model::{IfName, Protocol, Rule, DNS_PORT, IFNAME_PREFIX};
use ipnetwork::Ipv4Network;
use std::net::Ipv4Addr;

/// IPPROTO_UDP, IPPROTO_TCP.
fn ip_protocol(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Udp => 17,
        Protocol::Tcp => 6,
    }
}

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_REG_1: u32 = 1;

const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFTA_RT_DREG: u16 = 1;
const NFTA_RT_KEY: u16 = 2;
const NFT_RT_TCPMSS: u32 = 3;
const NFTA_BYTEORDER_SREG: u16 = 1;
const NFTA_BYTEORDER_DREG: u16 = 2;
const NFTA_BYTEORDER_OP: u16 = 3;
const NFTA_BYTEORDER_LEN: u16 = 4;
const NFTA_BYTEORDER_SIZE: u16 = 5;
const NFT_BYTEORDER_HTON: u32 = 1;
const NFTA_EXTHDR_TYPE: u16 = 2;
const NFTA_EXTHDR_OFFSET: u16 = 3;
const NFTA_EXTHDR_LEN: u16 = 4;
const NFTA_EXTHDR_OP: u16 = 6;
const NFTA_EXTHDR_SREG: u16 = 7;
const NFT_EXTHDR_OP_TCPOPT: u32 = 1;
const TCPOPT_MAXSEG: u8 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFT_NAT_DNAT: u32 = 1;
const NFPROTO_IPV4: u32 = 2;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFT_REG_VERDICT: u32 = 0;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// Offset of the source address in the IPv4 header, of the flags in the TCP header, of the
/// destination port in the UDP and TCP headers.
const IPV4_SADDR_OFFSET: u32 = 12;
const TCP_FLAGS_OFFSET: u32 = 13;
const L4_DPORT_OFFSET: u32 = 2;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;

/// `NFTA_RULE_EXPRESSIONS` for one of our rules.
pub fn encode(rule: &Rule) -> Attrs {
    let exprs = match rule {
        Rule::Masquerade(subnet) => {
            let mut e = saddr_in(subnet);
            e.push(expr("masq", None));
            e
        }
        Rule::Bridged(bridge) => vec![
            meta(NFT_META_IIFNAME),
            cmp_eq(bridge.padded()),
            meta(NFT_META_OIFNAME),
            cmp_eq(bridge.padded()),
            verdict(NF_ACCEPT),
        ],
        Rule::GuestSource { iifname, source } => {
            let mut e = vec![
                meta(NFT_META_IIFNAME),
                cmp_eq(iifname.padded()),
                meta(NFT_META_NFPROTO),
                cmp_eq(&[NFPROTO_IPV4 as u8]),
            ];
            e.extend(saddr_in(source));
            e.push(verdict(NF_ACCEPT));
            e
        }
        Rule::DropOtherGuestTraffic => vec![
            meta(NFT_META_IIFNAME),
            cmp_eq(IFNAME_PREFIX.as_bytes()),
            verdict(NF_DROP),
        ],
        Rule::ClampMss => vec![
            meta(NFT_META_L4PROTO),
            cmp_eq(&[ip_protocol(Protocol::Tcp)]),
            payload(NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFFSET, 1),
            bitwise(&[TCP_SYN | TCP_RST]),
            cmp_eq(&[TCP_SYN]),
            expr(
                "rt",
                Some(
                    Attrs::new()
                        .be32(NFTA_RT_DREG, NFT_REG_1)
                        .be32(NFTA_RT_KEY, NFT_RT_TCPMSS),
                ),
            ),
            expr(
                "byteorder",
                Some(
                    Attrs::new()
                        .be32(NFTA_BYTEORDER_SREG, NFT_REG_1)
                        .be32(NFTA_BYTEORDER_DREG, NFT_REG_1)
                        .be32(NFTA_BYTEORDER_OP, NFT_BYTEORDER_HTON)
                        .be32(NFTA_BYTEORDER_LEN, 2)
                        .be32(NFTA_BYTEORDER_SIZE, 2),
                ),
            ),
            expr(
                "exthdr",
                Some(
                    Attrs::new()
                        .be32(NFTA_EXTHDR_SREG, NFT_REG_1)
                        .bytes(NFTA_EXTHDR_TYPE, &[TCPOPT_MAXSEG])
                        .be32(NFTA_EXTHDR_OFFSET, 2)
                        .be32(NFTA_EXTHDR_LEN, 2)
                        .be32(NFTA_EXTHDR_OP, NFT_EXTHDR_OP_TCPOPT),
                ),
            ),
        ],
        Rule::RedirectDns { protocol, server } => vec![
            meta(NFT_META_IIFNAME),
            cmp_eq(IFNAME_PREFIX.as_bytes()),
            meta(NFT_META_L4PROTO),
            cmp_eq(&[ip_protocol(*protocol)]),
            payload(NFT_PAYLOAD_TRANSPORT_HEADER, L4_DPORT_OFFSET, 2),
            cmp_eq(&DNS_PORT.to_be_bytes()),
            expr(
                "immediate",
                Some(
                    Attrs::new()
                        .be32(NFTA_IMMEDIATE_DREG, NFT_REG_1)
                        .nested(NFTA_IMMEDIATE_DATA, data(&server.octets())),
                ),
            ),
            expr(
                "nat",
                Some(
                    Attrs::new()
                        .be32(NFTA_NAT_TYPE, NFT_NAT_DNAT)
                        .be32(NFTA_NAT_FAMILY, NFPROTO_IPV4)
                        .be32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1),
                ),
            ),
        ],
    };
    exprs
        .into_iter()
        .fold(Attrs::new(), |list, e| list.nested(NFTA_LIST_ELEM, e))
}

/// `ip saddr <subnet>`: the source address, masked unless the subnet is a single address.
fn saddr_in(subnet: &Ipv4Network) -> Vec<Attrs> {
    let mut e = vec![payload(NFT_PAYLOAD_NETWORK_HEADER, IPV4_SADDR_OFFSET, 4)];
    if subnet.prefix() < 32 {
        e.push(bitwise(&subnet.mask().octets()));
    }
    e.push(cmp_eq(&subnet.network().octets()));
    e
}

fn verdict(code: u32) -> Attrs {
    expr(
        "immediate",
        Some(Attrs::new().be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT).nested(
            NFTA_IMMEDIATE_DATA,
            Attrs::new().nested(NFTA_DATA_VERDICT, Attrs::new().be32(NFTA_VERDICT_CODE, code)),
        )),
    )
}

fn expr(name: &str, body: Option<Attrs>) -> Attrs {
    let e = Attrs::new().string(NFTA_EXPR_NAME, name);
    match body {
        Some(body) => e.nested(NFTA_EXPR_DATA, body),
        None => e,
    }
}

fn data(value: &[u8]) -> Attrs {
    Attrs::new().bytes(NFTA_DATA_VALUE, value)
}

fn payload(base: u32, offset: u32, len: u32) -> Attrs {
    expr(
        "payload",
        Some(
            Attrs::new()
                .be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
                .be32(NFTA_PAYLOAD_BASE, base)
                .be32(NFTA_PAYLOAD_OFFSET, offset)
                .be32(NFTA_PAYLOAD_LEN, len),
        ),
    )
}

fn bitwise(mask: &[u8]) -> Attrs {
    expr(
        "bitwise",
        Some(
            Attrs::new()
                .be32(NFTA_BITWISE_SREG, NFT_REG_1)
                .be32(NFTA_BITWISE_DREG, NFT_REG_1)
                .be32(NFTA_BITWISE_LEN, mask.len() as u32)
                .nested(NFTA_BITWISE_MASK, data(mask))
                .nested(NFTA_BITWISE_XOR, data(&vec![0; mask.len()])),
        ),
    )
}

fn cmp_eq(value: &[u8]) -> Attrs {
    expr(
        "cmp",
        Some(
            Attrs::new()
                .be32(NFTA_CMP_SREG, NFT_REG_1)
                .be32(NFTA_CMP_OP, NFT_CMP_EQ)
                .nested(NFTA_CMP_DATA, data(value)),
        ),
    )
}

fn meta(key: u32) -> Attrs {
    expr(
        "meta",
        Some(
            Attrs::new()
                .be32(NFTA_META_DREG, NFT_REG_1)
                .be32(NFTA_META_KEY, key),
        ),
    )
}

/// One dumped expression: its name and attributes.
struct Expr<'a> {
    name: String,
    attrs: AttrList<'a>,
}

impl Expr<'_> {
    fn be32(&self, kind: u16) -> Option<u32> {
        attr::get_be32(&self.attrs, kind)
    }

    fn nested_value(&self, kind: u16) -> Option<&[u8]> {
        attr::get(&attr::parse(attr::get(&self.attrs, kind)?), NFTA_DATA_VALUE)
    }

    fn is_payload(&self, base: u32, offset: u32, len: u32) -> bool {
        self.name == "payload"
            && self.be32(NFTA_PAYLOAD_BASE) == Some(base)
            && self.be32(NFTA_PAYLOAD_OFFSET) == Some(offset)
            && self.be32(NFTA_PAYLOAD_LEN) == Some(len)
    }

    fn is_cmp_eq(&self, value: &[u8]) -> bool {
        self.cmp_eq_value() == Some(value)
    }

    fn cmp_eq_value(&self) -> Option<&[u8]> {
        (self.name == "cmp" && self.be32(NFTA_CMP_OP) == Some(NFT_CMP_EQ))
            .then(|| self.nested_value(NFTA_CMP_DATA))?
    }

    fn is_meta(&self, key: u32) -> bool {
        self.name == "meta" && self.be32(NFTA_META_KEY) == Some(key)
    }

    /// The verdict code of an `immediate reg 0 <verdict>`.
    fn verdict(&self) -> Option<u32> {
        if self.name != "immediate" || self.be32(NFTA_IMMEDIATE_DREG) != Some(NFT_REG_VERDICT) {
            return None;
        }
        let data = attr::parse(attr::get(&self.attrs, NFTA_IMMEDIATE_DATA)?);
        attr::get_be32(
            &attr::parse(attr::get(&data, NFTA_DATA_VERDICT)?),
            NFTA_VERDICT_CODE,
        )
    }

    /// The interface of a `meta load <key>` + `cmp eq <whole name>` pair.
    fn ifname(&self, cmp: &Expr, key: u32) -> Option<IfName> {
        self.is_meta(key)
            .then(|| IfName::from_padded(cmp.cmp_eq_value()?))?
    }

    /// The mask of a `(reg & mask) ^ 0` bitwise expression.
    fn and_mask(&self) -> Option<&[u8]> {
        let xor = self.nested_value(NFTA_BITWISE_XOR)?;
        (self.name == "bitwise" && xor.iter().all(|b| *b == 0))
            .then(|| self.nested_value(NFTA_BITWISE_MASK))?
    }
}

/// Which of our rules a dumped `NFTA_RULE_EXPRESSIONS` is, or None for any other rule.
pub fn parse(expressions: &[u8]) -> Option<Rule> {
    let exprs: Vec<Expr> = attr::parse(expressions)
        .into_iter()
        .filter(|(kind, _)| *kind == NFTA_LIST_ELEM)
        .map(|(_, elem)| {
            let fields = attr::parse(elem);
            Expr {
                name: attr::get_string(&fields, NFTA_EXPR_NAME).unwrap_or_default(),
                attrs: attr::get(&fields, NFTA_EXPR_DATA)
                    .map(attr::parse)
                    .unwrap_or_default(),
            }
        })
        .collect();
    let names: Vec<&str> = exprs.iter().map(|e| e.name.as_str()).collect();
    match names.as_slice() {
        ["payload", "bitwise", "cmp", "masq"] => {
            saddr_match(&exprs[0], Some(&exprs[1]), &exprs[2]).map(Rule::Masquerade)
        }
        ["payload", "cmp", "masq"] => saddr_match(&exprs[0], None, &exprs[1]).map(Rule::Masquerade),
        ["meta", "cmp", "meta", "cmp", "immediate"] if exprs[2].is_meta(NFT_META_OIFNAME) => {
            let [iif, iif_name, oif, oif_name, accept] = exprs.as_slice() else {
                return None;
            };
            let bridge = iif.ifname(iif_name, NFT_META_IIFNAME)?;
            (oif.ifname(oif_name, NFT_META_OIFNAME)? == bridge && accept.verdict()? == NF_ACCEPT)
                .then_some(Rule::Bridged(bridge))
        }
        ["meta", "cmp", "meta", "cmp", "payload", "bitwise", "cmp", "immediate"]
        | ["meta", "cmp", "meta", "cmp", "payload", "cmp", "immediate"] => {
            let (mask, cmp, accept) = match &exprs[5..] {
                [mask, cmp, accept] => (Some(mask), cmp, accept),
                [cmp, accept] => (None, cmp, accept),
                _ => return None,
            };
            let iifname = exprs[0].ifname(&exprs[1], NFT_META_IIFNAME)?;
            let ipv4 = exprs[2].is_meta(NFT_META_NFPROTO) && exprs[3].is_cmp_eq(&[NFPROTO_IPV4 as u8]);
            let source = saddr_match(&exprs[4], mask, cmp)?;
            (ipv4 && accept.verdict()? == NF_ACCEPT).then_some(Rule::GuestSource { iifname, source })
        }
        ["meta", "cmp", "immediate"] => {
            let [iif, prefix, drop] = exprs.as_slice() else {
                return None;
            };
            let ok = iif.is_meta(NFT_META_IIFNAME)
                && prefix.is_cmp_eq(IFNAME_PREFIX.as_bytes())
                && drop.verdict()? == NF_DROP;
            ok.then_some(Rule::DropOtherGuestTraffic)
        }
        ["meta", "cmp", "payload", "bitwise", "cmp", "rt", "byteorder", "exthdr"] => {
            let [l4, tcp, flags, mask, syn, rt, order, exthdr] = exprs.as_slice() else {
                return None;
            };
            let ok = l4.is_meta(NFT_META_L4PROTO)
                && tcp.is_cmp_eq(&[ip_protocol(Protocol::Tcp)])
                && flags.is_payload(NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFFSET, 1)
                && mask.and_mask() == Some(&[TCP_SYN | TCP_RST])
                && syn.is_cmp_eq(&[TCP_SYN])
                && rt.be32(NFTA_RT_KEY) == Some(NFT_RT_TCPMSS)
                && order.be32(NFTA_BYTEORDER_OP) == Some(NFT_BYTEORDER_HTON)
                && exthdr.be32(NFTA_EXTHDR_OP) == Some(NFT_EXTHDR_OP_TCPOPT)
                && attr::get(&exthdr.attrs, NFTA_EXTHDR_TYPE) == Some(&[TCPOPT_MAXSEG][..])
                && exthdr.be32(NFTA_EXTHDR_OFFSET) == Some(2)
                && exthdr.be32(NFTA_EXTHDR_LEN) == Some(2)
                && attr::get(&exthdr.attrs, NFTA_EXTHDR_SREG).is_some();
            ok.then_some(Rule::ClampMss)
        }
        ["meta", "cmp", "meta", "cmp", "payload", "cmp", "immediate", "nat"] => {
            let [iif, prefix, l4, proto, dport, port, imm, nat] = exprs.as_slice() else {
                return None;
            };
            let protocol = [Protocol::Udp, Protocol::Tcp]
                .into_iter()
                .find(|p| proto.cmp_eq_value() == Some(&[ip_protocol(*p)][..]))?;
            let server: [u8; 4] = imm.nested_value(NFTA_IMMEDIATE_DATA)?.try_into().ok()?;
            let ok = iif.is_meta(NFT_META_IIFNAME)
                && prefix.is_cmp_eq(IFNAME_PREFIX.as_bytes())
                && l4.is_meta(NFT_META_L4PROTO)
                && dport.is_payload(NFT_PAYLOAD_TRANSPORT_HEADER, L4_DPORT_OFFSET, 2)
                && port.is_cmp_eq(&DNS_PORT.to_be_bytes())
                && nat.be32(NFTA_NAT_TYPE) == Some(NFT_NAT_DNAT)
                && nat.be32(NFTA_NAT_FAMILY) == Some(NFPROTO_IPV4);
            ok.then_some(Rule::RedirectDns {
                protocol,
                server: Ipv4Addr::from(server),
            })
        }
        _ => None,
    }
}

/// The subnet of an `ip saddr <subnet>` match (see `saddr_in`).
fn saddr_match(payload: &Expr, mask: Option<&Expr>, cmp: &Expr) -> Option<Ipv4Network> {
    if !payload.is_payload(NFT_PAYLOAD_NETWORK_HEADER, IPV4_SADDR_OFFSET, 4) {
        return None;
    }
    let prefix = match mask {
        None => 32,
        Some(bitwise) => {
            let mask = u32::from_be_bytes(bitwise.and_mask()?.try_into().ok()?);
            let prefix = mask.leading_ones();
            if mask.checked_shl(prefix).unwrap_or(0) != 0 {
                return None;
            }
            prefix as u8
        }
    };
    let network: [u8; 4] = cmp.cmp_eq_value()?.try_into().ok()?;
    Ipv4Network::new(Ipv4Addr::from(network), prefix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_we_encode_is_recognised() {
        let rules = [
            Rule::Masquerade("192.168.97.0/30".parse().unwrap()),
            Rule::Masquerade("192.168.98.0/24".parse().unwrap()),
            Rule::Masquerade("10.1.2.3/32".parse().unwrap()),
            Rule::ClampMss,
            Rule::RedirectDns {
                protocol: Protocol::Udp,
                server: Ipv4Addr::new(10, 96, 0, 10),
            },
            Rule::RedirectDns {
                protocol: Protocol::Tcp,
                server: Ipv4Addr::new(10, 96, 0, 10),
            },
            Rule::Bridged(IfName::new("cvd-ebr").unwrap()),
            Rule::GuestSource {
                iifname: IfName::new("cvd-mtap-01").unwrap(),
                source: "192.168.97.2/32".parse().unwrap(),
            },
            Rule::GuestSource {
                iifname: IfName::new("cvd-wifiap-128").unwrap(),
                source: "192.168.95.254/32".parse().unwrap(),
            },
            Rule::GuestSource {
                iifname: IfName::new("cvd-ebr").unwrap(),
                source: "192.168.98.0/24".parse().unwrap(),
            },
            Rule::DropOtherGuestTraffic,
        ];
        for rule in rules {
            assert_eq!(parse(&encode(&rule).into_bytes()), Some(rule), "{rule}");
        }
    }

    #[test]
    fn other_rules_are_not_taken_for_ours() {
        let only_masq = Attrs::new()
            .nested(NFTA_LIST_ELEM, expr("masq", None))
            .into_bytes();
        assert_eq!(parse(&only_masq), None);
        assert_eq!(parse(&[]), None);
        // A redirect of port 54 is not our DNS redirect.
        let mut bytes = encode(&Rule::RedirectDns {
            protocol: Protocol::Udp,
            server: Ipv4Addr::LOCALHOST,
        })
        .into_bytes();
        let at = bytes
            .windows(2)
            .position(|w| w == DNS_PORT.to_be_bytes())
            .unwrap();
        bytes[at + 1] = 54;
        assert_eq!(parse(&bytes), None);
    }

    fn rule_of(exprs: Vec<Attrs>) -> Vec<u8> {
        exprs
            .into_iter()
            .fold(Attrs::new(), |list, e| list.nested(NFTA_LIST_ELEM, e))
            .into_bytes()
    }

    #[test]
    fn guard_rules_that_differ_are_not_taken_for_ours() {
        let ebr = IfName::new("cvd-ebr").unwrap();
        let wbr = IfName::new("cvd-wbr").unwrap();
        let mtap = IfName::new("cvd-mtap-01").unwrap();
        let guest_source = |iif: &[u8], nfproto: u8, verdict_code: u32| {
            let mut e = vec![
                meta(NFT_META_IIFNAME),
                cmp_eq(iif),
                meta(NFT_META_NFPROTO),
                cmp_eq(&[nfproto]),
            ];
            e.extend(saddr_in(&"192.168.97.2/32".parse().unwrap()));
            e.push(verdict(verdict_code));
            rule_of(e)
        };
        assert!(parse(&guest_source(mtap.padded(), 2, NF_ACCEPT)).is_some());
        assert_eq!(parse(&guest_source(mtap.padded(), 10, NF_ACCEPT)), None, "IPv6");
        assert_eq!(parse(&guest_source(mtap.padded(), 2, NF_DROP)), None, "drop");
        assert_eq!(parse(&guest_source(b"cvd-", 2, NF_ACCEPT)), None, "a prefix");
        let bridged = |iif: IfName, oif: IfName, verdict_code: u32| {
            rule_of(vec![
                meta(NFT_META_IIFNAME),
                cmp_eq(iif.padded()),
                meta(NFT_META_OIFNAME),
                cmp_eq(oif.padded()),
                verdict(verdict_code),
            ])
        };
        assert_eq!(parse(&bridged(ebr, ebr, NF_ACCEPT)), Some(Rule::Bridged(ebr)));
        assert_eq!(parse(&bridged(ebr, wbr, NF_ACCEPT)), None, "another bridge out");
        assert_eq!(parse(&bridged(ebr, ebr, NF_DROP)), None, "drop");
        let drop_from = |prefix: &[u8], verdict_code: u32| {
            rule_of(vec![
                meta(NFT_META_IIFNAME),
                cmp_eq(prefix),
                verdict(verdict_code),
            ])
        };
        assert_eq!(parse(&drop_from(b"cvd-", NF_ACCEPT)), None, "accept");
        assert_eq!(parse(&drop_from(b"cvd", NF_DROP)), None, "another prefix");
        assert_eq!(
            parse(&drop_from(b"cvd-", NF_DROP)),
            Some(Rule::DropOtherGuestTraffic)
        );
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(IfName::new("cvd-wifiap-128").is_some());
        assert!(IfName::new("123456789012345").is_some());
        assert!(IfName::new("1234567890123456").is_none());
        assert!(IfName::new("").is_none());
        assert!(IfName::new("a\0b").is_none());
        assert_eq!(IfName::new("cvd-ebr").unwrap().to_string(), "cvd-ebr");
        assert_eq!(IfName::from_padded(b"cvd-ebr"), None, "a prefix is not a name");
    }
}
