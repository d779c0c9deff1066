//! What the DHCP server reads from a client's message: a few fixed fields and the three options
//! it acts on. Every byte comes from a guest, so it is read with checked slicing only.
//! dhcproto's decoder is not used here: it decodes every option, asserts some option lengths
//! (so a debug build panics) and subtracts from others unchecked.

use super::pool::Mac;
use dhcproto::v4::MessageType;
use std::net::Ipv4Addr;

/// op, htype, hlen, hops, xid, secs, flags, four addresses, chaddr, sname, file: RFC 2131 §2.
const FIXED: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const BOOTREQUEST: u8 = 1;
/// The hardware address length of Ethernet, the only kind on a Cuttlefish bridge.
const ETHERNET: u8 = 6;
const PAD: u8 = 0;
const END: u8 = 255;
const REQUESTED_ADDRESS: u8 = 50;
const MESSAGE_TYPE: u8 = 53;
const SERVER_IDENTIFIER: u8 = 54;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub mac: Mac,
    pub kind: Option<MessageType>,
    pub requested: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
}

/// The message in `datagram`, or None when it is not a DHCP BOOTREQUEST from an Ethernet
/// address: too short, no magic cookie, another `op` or `hlen`, an option running past the end,
/// or one of the three options with a wrong length.
pub fn parse(datagram: &[u8]) -> Option<ClientMessage> {
    let (fixed, rest) = datagram.split_first_chunk::<FIXED>()?;
    let (cookie, mut options) = rest.split_first_chunk::<4>()?;
    if fixed[0] != BOOTREQUEST || fixed[2] != ETHERNET || *cookie != MAGIC_COOKIE {
        return None;
    }
    let mut message = ClientMessage {
        xid: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        flags: u16::from_be_bytes([fixed[10], fixed[11]]),
        ciaddr: Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]),
        giaddr: Ipv4Addr::new(fixed[24], fixed[25], fixed[26], fixed[27]),
        mac: [fixed[28], fixed[29], fixed[30], fixed[31], fixed[32], fixed[33]],
        kind: None,
        requested: None,
        server_id: None,
    };
    // Options are code, length, value; PAD and END are single bytes. A message may stop without
    // END. Options in `sname` and `file` (option overload) are not read: none of ours is there.
    loop {
        match options {
            [] | [END, ..] => return Some(message),
            [PAD, rest @ ..] => options = rest,
            [code, len, rest @ ..] => {
                let (value, rest) = rest.split_at_checked(usize::from(*len))?;
                options = rest;
                match (*code, value) {
                    (MESSAGE_TYPE, [kind]) => message.kind = Some(MessageType::from(*kind)),
                    (REQUESTED_ADDRESS, [a, b, c, d]) => {
                        message.requested = Some(Ipv4Addr::new(*a, *b, *c, *d))
                    }
                    (SERVER_IDENTIFIER, [a, b, c, d]) => {
                        message.server_id = Some(Ipv4Addr::new(*a, *b, *c, *d))
                    }
                    (MESSAGE_TYPE | REQUESTED_ADDRESS | SERVER_IDENTIFIER, _) => return None,
                    _ => {}
                }
            }
            [_] => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{DhcpOption, Message};
    use dhcproto::{Encodable, Encoder};

    fn request() -> Vec<u8> {
        let mut m = Message::new_with_id(
            0x0102_0304,
            Ipv4Addr::new(192, 168, 98, 9),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 0, 0, 1),
            &[2, 0, 0, 0, 0, 7],
        );
        m.set_flags(0x8000.into());
        let opts = m.opts_mut();
        opts.insert(DhcpOption::MessageType(MessageType::Request));
        opts.insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 168, 98, 5)));
        opts.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 98, 1)));
        opts.insert(DhcpOption::Hostname("guest".into()));
        let mut bytes = Vec::new();
        m.encode(&mut Encoder::new(&mut bytes)).unwrap();
        bytes
    }

    #[test]
    fn reads_what_dhcproto_wrote() {
        assert_eq!(
            parse(&request()),
            Some(ClientMessage {
                xid: 0x0102_0304,
                flags: 0x8000,
                ciaddr: Ipv4Addr::new(192, 168, 98, 9),
                giaddr: Ipv4Addr::new(10, 0, 0, 1),
                mac: [2, 0, 0, 0, 0, 7],
                kind: Some(MessageType::Request),
                requested: Some(Ipv4Addr::new(192, 168, 98, 5)),
                server_id: Some(Ipv4Addr::new(192, 168, 98, 1)),
            })
        );
    }

    #[test]
    fn every_truncation_inside_the_header_or_an_option_is_refused() {
        let whole = request();
        let ends: Vec<usize> = (0..=whole.len())
            .filter(|n| parse(&whole[..*n]).is_some())
            .collect();
        // After the cookie (no options yet), between options, and the whole message.
        assert!(ends.iter().all(|n| *n >= FIXED + 4), "{ends:?}");
        assert!(
            ends.contains(&(FIXED + 4)) && ends.contains(&whole.len()),
            "{ends:?}"
        );
        assert!(ends.len() < 8, "only at option boundaries: {ends:?}");
    }

    #[test]
    fn only_ethernet_bootrequests_with_the_cookie() {
        for hlen in (0..=255u8).filter(|h| *h != 6) {
            let mut m = request();
            m[2] = hlen;
            assert_eq!(parse(&m), None, "hlen {hlen}");
        }
        let mut reply = request();
        reply[0] = 2;
        assert_eq!(parse(&reply), None, "a BOOTREPLY");
        let mut bootp = request();
        bootp[FIXED] = 0;
        assert_eq!(parse(&bootp), None, "no magic cookie");
    }

    #[test]
    fn options_we_act_on_must_have_their_length_and_others_are_skipped() {
        let header = &request()[..FIXED + 4];
        let with = |options: &[u8]| parse(&[header, options].concat());
        assert_eq!(with(&[53, 2, 1, 1, 255]), None);
        assert_eq!(with(&[50, 3, 192, 168, 98, 255]), None);
        assert_eq!(with(&[54, 5, 192, 168, 98, 1, 0, 255]), None);
        assert_eq!(with(&[12, 200, 1, 2]), None, "runs past the end");
        assert_eq!(with(&[53]), None, "a code without its length");
        let skipped = with(&[0, 0, 81, 0, 80, 1, 0, 53, 1, 1, 255, 53, 1, 3]).unwrap();
        assert_eq!(
            skipped.kind,
            Some(MessageType::Discover),
            "nothing after END is read"
        );
        assert_eq!(
            with(&[53, 1, 7]).unwrap().kind,
            Some(MessageType::Release),
            "no END"
        );
    }
}
