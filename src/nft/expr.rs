//! The one rule shape we write, `ip saddr <subnet> masquerade`, as nf_tables expressions, and
//! its recognition in a dumped rule. What `nft` compiles that rule to:
//!   payload load 4b @ network header + 12 => reg 1
//!   bitwise reg 1 = (reg 1 & <mask>) ^ 0          (omitted for a /32)
//!   cmp eq reg 1 <network>
//!   masq

use super::attr::{self, Attrs};
use ipnetwork::Ipv4Network;
use std::net::Ipv4Addr;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;

const NFT_REG_1: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
/// Offset of the source address in the IPv4 header.
const IPV4_SADDR_OFFSET: u32 = 12;

/// `NFTA_RULE_EXPRESSIONS` for `ip saddr <subnet> masquerade`.
pub fn masquerade_from(subnet: Ipv4Network) -> Attrs {
    let mut list = Attrs::new().nested(
        NFTA_LIST_ELEM,
        expr(
            "payload",
            Attrs::new()
                .be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
                .be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER)
                .be32(NFTA_PAYLOAD_OFFSET, IPV4_SADDR_OFFSET)
                .be32(NFTA_PAYLOAD_LEN, 4),
        ),
    );
    if subnet.prefix() < 32 {
        list = list.nested(
            NFTA_LIST_ELEM,
            expr(
                "bitwise",
                Attrs::new()
                    .be32(NFTA_BITWISE_SREG, NFT_REG_1)
                    .be32(NFTA_BITWISE_DREG, NFT_REG_1)
                    .be32(NFTA_BITWISE_LEN, 4)
                    .nested(NFTA_BITWISE_MASK, data(&subnet.mask().octets()))
                    .nested(NFTA_BITWISE_XOR, data(&[0; 4])),
            ),
        );
    }
    list.nested(
        NFTA_LIST_ELEM,
        expr(
            "cmp",
            Attrs::new()
                .be32(NFTA_CMP_SREG, NFT_REG_1)
                .be32(NFTA_CMP_OP, NFT_CMP_EQ)
                .nested(NFTA_CMP_DATA, data(&subnet.network().octets())),
        ),
    )
    .nested(NFTA_LIST_ELEM, Attrs::new().string(NFTA_EXPR_NAME, "masq"))
}

fn expr(name: &str, body: Attrs) -> Attrs {
    Attrs::new()
        .string(NFTA_EXPR_NAME, name)
        .nested(NFTA_EXPR_DATA, body)
}

fn data(value: &[u8]) -> Attrs {
    Attrs::new().bytes(NFTA_DATA_VALUE, value)
}

/// The subnet of a dumped `ip saddr <subnet> masquerade` rule, or None for any other rule.
pub fn parse_masquerade(expressions: &[u8]) -> Option<Ipv4Network> {
    let exprs: Vec<(String, attr::AttrList)> = attr::parse(expressions)
        .into_iter()
        .filter(|(kind, _)| *kind == NFTA_LIST_ELEM)
        .map(|(_, elem)| {
            let fields = attr::parse(elem);
            let name = attr::get_string(&fields, NFTA_EXPR_NAME).unwrap_or_default();
            let body = attr::get(&fields, NFTA_EXPR_DATA)
                .map(attr::parse)
                .unwrap_or_default();
            (name, body)
        })
        .collect();
    let names: Vec<&str> = exprs.iter().map(|(n, _)| n.as_str()).collect();
    let (payload, mask, cmp) = match names.as_slice() {
        ["payload", "bitwise", "cmp", "masq"] => (&exprs[0].1, Some(&exprs[1].1), &exprs[2].1),
        ["payload", "cmp", "masq"] => (&exprs[0].1, None, &exprs[1].1),
        _ => return None,
    };
    let reads_saddr = attr::get_be32(payload, NFTA_PAYLOAD_BASE) == Some(NFT_PAYLOAD_NETWORK_HEADER)
        && attr::get_be32(payload, NFTA_PAYLOAD_OFFSET) == Some(IPV4_SADDR_OFFSET)
        && attr::get_be32(payload, NFTA_PAYLOAD_LEN) == Some(4);
    if !reads_saddr || attr::get_be32(cmp, NFTA_CMP_OP) != Some(NFT_CMP_EQ) {
        return None;
    }
    let prefix = match mask {
        None => 32,
        Some(bitwise) => {
            let xor = nested_value(bitwise, NFTA_BITWISE_XOR)?;
            if xor.iter().any(|b| *b != 0) {
                return None;
            }
            let mask = u32::from_be_bytes(nested_value(bitwise, NFTA_BITWISE_MASK)?.try_into().ok()?);
            let prefix = mask.leading_ones();
            if mask.checked_shl(prefix).unwrap_or(0) != 0 {
                return None;
            }
            prefix as u8
        }
    };
    let network: [u8; 4] = nested_value(cmp, NFTA_CMP_DATA)?.try_into().ok()?;
    Ipv4Network::new(Ipv4Addr::from(network), prefix).ok()
}

fn nested_value<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attr::get(&attr::parse(attr::get(attrs, kind)?), NFTA_DATA_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_rules_are_recognised() {
        for text in ["192.168.97.0/30", "192.168.98.0/24", "10.1.2.3/32"] {
            let net: Ipv4Network = text.parse().unwrap();
            let bytes = masquerade_from(net).into_bytes();
            assert_eq!(parse_masquerade(&bytes), Some(net), "{text}");
        }
    }

    #[test]
    fn other_rules_are_not_taken_for_ours() {
        let only_masq = Attrs::new()
            .nested(NFTA_LIST_ELEM, Attrs::new().string(NFTA_EXPR_NAME, "masq"))
            .into_bytes();
        assert_eq!(parse_masquerade(&only_masq), None);
        assert_eq!(parse_masquerade(&[]), None);
    }
}
