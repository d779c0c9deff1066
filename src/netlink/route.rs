//! rtnetlink, one method per kernel operation, with typed results. Requests are built with
//! netlink-packet-route and sent on a [`NetlinkSocket`] created inside the pod netns.

use super::socket::{NetlinkSocket, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use crate::model::{Address, BridgeInfo, HostAddress, IpFamily, Link, TunInfo};
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::io;

/// Attributes of a tun/tap link (`IFLA_TUN_*` in `linux/if_link.h`); netlink-packet-route
/// leaves them undecoded.
const IFLA_TUN_OWNER: u16 = 1;
const IFLA_TUN_GROUP: u16 = 2;
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PI: u16 = 4;
const IFLA_TUN_VNET_HDR: u16 = 5;
const IFLA_TUN_PERSIST: u16 = 6;
const IFLA_TUN_MULTI_QUEUE: u16 = 7;
const IFF_TAP: u8 = 2;

pub struct RouteSocket(NetlinkSocket);

impl RouteSocket {
    pub fn open() -> io::Result<RouteSocket> {
        NetlinkSocket::open(netlink_sys::protocols::NETLINK_ROUTE).map(RouteSocket)
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let messages = self.0.dump(|seq| {
            encode(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
                seq,
            )
        })?;
        messages
            .iter()
            .filter_map(|m| decode(&m.bytes).transpose())
            .map(|r| {
                r.map(|msg| match msg {
                    RouteNetlinkMessage::NewLink(link) => Some(parse_link(&link)),
                    _ => None,
                })
            })
            .filter_map(Result::transpose)
            .collect()
    }

    /// The IPv4 and IPv6 addresses, one dump per family: an `AF_UNSPEC` dump would also return
    /// those of families netlink-packet-route cannot decode (MCTP, Phonet), and fail on them.
    pub fn addresses(&mut self) -> io::Result<Vec<Address>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut request = AddressMessage::default();
            request.header.family = family;
            let messages = self
                .0
                .dump(|seq| encode(RouteNetlinkMessage::GetAddress(request.clone()), NLM_F_DUMP, seq))?;
            for message in &messages {
                if let Some(RouteNetlinkMessage::NewAddress(addr)) = decode(&message.bytes)? {
                    out.extend(parse_address(&addr));
                }
            }
        }
        Ok(out)
    }

    /// Creates a bridge with STP off and forward_delay 0, in our link group, down.
    pub fn create_bridge(&mut self, name: &str, group: u32) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Group(group),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Bridge),
                LinkInfo::Data(InfoData::Bridge(vec![
                    InfoBridge::ForwardDelay(0),
                    InfoBridge::StpState(BridgeStpState::Disabled),
                ])),
            ]),
        ];
        self.0
            .request(|seq| encode(RouteNetlinkMessage::NewLink(link), NLM_F_CREATE | NLM_F_EXCL, seq))
    }

    /// Sets alias, group, master and the up flag of an existing link, found by name.
    pub fn configure(&mut self, name: &str, alias: &str, group: u32, master: Option<u32>) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        link.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::IfAlias(alias.to_string()),
            LinkAttribute::Group(group),
        ];
        if let Some(master) = master {
            link.attributes.push(LinkAttribute::Controller(master));
        }
        self.0
            .request(|seq| encode(RouteNetlinkMessage::SetLink(link), 0, seq))
    }

    pub fn add_address(&mut self, index: u32, address: HostAddress) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = match address.family() {
            IpFamily::V4 => AddressFamily::Inet,
            IpFamily::V6 => AddressFamily::Inet6,
        };
        msg.header.prefix_len = address.prefix;
        msg.header.index = index;
        msg.attributes = vec![
            AddressAttribute::Local(address.address),
            AddressAttribute::Address(address.address),
        ];
        msg.attributes
            .extend(address.broadcast().map(AddressAttribute::Broadcast));
        self.0.request(|seq| {
            encode(
                RouteNetlinkMessage::NewAddress(msg),
                NLM_F_CREATE | NLM_F_EXCL,
                seq,
            )
        })
    }

    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        self.0
            .request(|seq| encode(RouteNetlinkMessage::DelLink(link), 0, seq))
    }

    /// Deletes every link of `group` in one request. Each link deletion otherwise waits for
    /// its own RCU grace period; the kernel batches a group delete into one.
    pub fn delete_group(&mut self, group: u32) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.attributes = vec![LinkAttribute::Group(group)];
        self.0
            .request(|seq| encode(RouteNetlinkMessage::DelLink(link), 0, seq))
    }
}

fn encode(message: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

fn decode(bytes: &[u8]) -> io::Result<Option<RouteNetlinkMessage>> {
    let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("rtnetlink: {e}")))?;
    Ok(match message.payload {
        NetlinkPayload::InnerMessage(inner) => Some(inner),
        _ => None,
    })
}

fn parse_link(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        up: message.header.flags.contains(LinkFlags::Up),
        ..Link::default()
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::IfAlias(alias) => link.alias = Some(alias.clone()),
            LinkAttribute::Group(group) => link.group = *group,
            LinkAttribute::Controller(master) => link.master = Some(*master),
            LinkAttribute::Address(mac) => link.mac = Some(format_mac(mac)),
            LinkAttribute::LinkInfo(infos) => parse_link_info(infos, &mut link),
            _ => {}
        }
    }
    link
}

fn parse_link_info(infos: &[LinkInfo], link: &mut Link) {
    for info in infos {
        match info {
            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
            LinkInfo::Data(InfoData::Bridge(attrs)) => {
                let mut bridge = BridgeInfo::default();
                for attr in attrs {
                    match attr {
                        InfoBridge::StpState(state) => {
                            bridge.stp_enabled = *state != BridgeStpState::Disabled
                        }
                        InfoBridge::ForwardDelay(delay) => bridge.forward_delay = *delay,
                        _ => {}
                    }
                }
                link.bridge = Some(bridge);
            }
            LinkInfo::Data(InfoData::Tun(attrs)) => {
                let mut tun = TunInfo::default();
                for attr in attrs {
                    let mut value = vec![0; attr.value_len()];
                    attr.emit_value(&mut value);
                    let flag = value.first().is_some_and(|b| *b != 0);
                    let number = value
                        .get(..4)
                        .map(|v| u32::from_ne_bytes(v.try_into().expect("4 bytes")));
                    match attr.kind() {
                        IFLA_TUN_OWNER => tun.owner = number,
                        IFLA_TUN_GROUP => tun.group = number,
                        IFLA_TUN_TYPE => tun.is_tap = value.first() == Some(&IFF_TAP),
                        IFLA_TUN_PI => tun.packet_info = flag,
                        IFLA_TUN_VNET_HDR => tun.vnet_hdr = flag,
                        IFLA_TUN_PERSIST => tun.persist = flag,
                        IFLA_TUN_MULTI_QUEUE => tun.multi_queue = flag,
                        _ => {}
                    }
                }
                link.tun = Some(tun);
            }
            _ => {}
        }
    }
}

fn parse_address(message: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut broadcast = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) if local.is_none() => local = Some(*ip),
            AddressAttribute::Broadcast(ip) => broadcast = Some(*ip),
            _ => {}
        }
    }
    Some(Address {
        index: message.header.index,
        address: local?,
        prefix: message.header.prefix_len,
        broadcast,
    })
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
