//! Fuzzes what the node agent's DHCP server answers to a guest: a sequence of datagrams, with
//! time passing between them, against one bridge's pool, through the same `Responder::answer`
//! the socket loop calls. It must never panic, and every answer must be a reply to that request
//! with an address from the pool. The fuzzer builds with debug assertions and overflow checks.
//!
//! The input is a list of records: `advance kind len_hi len_lo body[len]`. `advance` moves the
//! clock by that many half minutes (offers are held for one minute, leases last an hour). An
//! even `kind` sends `body` as it is; an odd one builds a well-formed message from it (type,
//! one of eight clients, options) and then maybe breaks it, so the pool's logic is reached too.
#![no_main]

use cuttlefish_cni::agent::protocol::BridgeSpec;
use cuttlefish_cni::agent::server::{Counters, Responder};
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 98, 1);
const POOL_SIZE: usize = 253;

fuzz_target!(|data: &[u8]| {
    let bridge = BridgeSpec {
        name: "cvd-ebr".into(),
        gateway: GATEWAY,
    };
    let mut responder = Responder::new(bridge, vec![Ipv4Addr::new(8, 8, 8, 8)]);
    let counters = Counters::default();
    let mut now = Instant::now();
    let mut rest = data;
    while let [advance, kind, len_hi, len_lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_secs(30 * u64::from(*advance));
        let datagram = if kind & 1 == 0 {
            body.to_vec()
        } else {
            well_formed(body)
        };
        if let Some((reply, to)) = responder.answer(&datagram, now, &counters) {
            // Only a BOOTREQUEST from an Ethernet address, with the magic cookie, is answered.
            assert_eq!(datagram[0], 1);
            assert_eq!(datagram[2], 6);
            assert_eq!(datagram.get(236..240), Some(&[99, 130, 83, 99][..]));
            let reply = Message::decode(&mut Decoder::new(&reply)).expect("the reply decodes");
            assert_eq!(reply.opcode(), Opcode::BootReply);
            assert_eq!(reply.xid().to_be_bytes()[..], datagram[4..8]);
            assert_eq!(reply.chaddr(), &datagram[28..34]);
            let yiaddr = reply.yiaddr().octets();
            assert!(
                reply.yiaddr().is_unspecified()
                    || (yiaddr[..3] == [192, 168, 98] && (2..=254).contains(&yiaddr[3])),
                "{} is not in the pool",
                reply.yiaddr()
            );
            assert_eq!(to.port(), 68);
        }
        assert!(responder.leases_active(now) <= POOL_SIZE);
    }
});

/// A client message from `body`: its type, client (one of eight), requested address, server
/// identifier and ciaddr; then, on request, a wrong hlen, a truncation or bytes after the end.
fn well_formed(body: &[u8]) -> Vec<u8> {
    let byte = |i: usize| body.get(i).copied().unwrap_or(0);
    let flags = byte(2);
    let in_pool = |b: u8| Ipv4Addr::new(192, 168, 98, b);
    let ciaddr = if flags & 8 != 0 {
        in_pool(byte(4))
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    let xid = u32::from_be_bytes([byte(5), byte(6), byte(7), byte(8)]);
    let unspec = Ipv4Addr::UNSPECIFIED;
    let mut message =
        Message::new_with_id(xid, ciaddr, unspec, unspec, unspec, &[2, 0, 0, 0, 0, byte(1) % 8]);
    let opts = message.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::from(byte(0) % 9 + 1)));
    if flags & 1 != 0 {
        opts.insert(DhcpOption::RequestedIpAddress(in_pool(byte(3))));
    }
    if flags & 2 != 0 {
        let server = if flags & 4 != 0 {
            GATEWAY
        } else {
            Ipv4Addr::new(10, 0, 0, 1)
        };
        opts.insert(DhcpOption::ServerIdentifier(server));
    }
    let mut bytes = Vec::new();
    message
        .encode(&mut Encoder::new(&mut bytes))
        .expect("a well-formed message encodes");
    if flags & 16 != 0 {
        bytes[2] = byte(9);
    }
    if flags & 32 != 0 {
        bytes.truncate(usize::from(byte(10)) * 2);
    }
    if flags & 64 != 0 {
        bytes.extend_from_slice(body.get(11..).unwrap_or_default());
    }
    bytes
}
