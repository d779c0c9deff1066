//! nf_tables over netlink, without libnftnl or the `nft` binary: the plugin must run on a node
//! that has nothing but a libc. We own two tables, `ip cuttlefish_nat` (NAT, MSS clamping, DNS
//! redirection) and `inet cuttlefish_filter` (what guests may send through the pod), and
//! change them only in atomic batches: created whole, together (tables, chains, every rule),
//! and deleted whole.

mod attr;
mod expr;

use crate::model::{chains_for, tables_for, Chain, Family, ListedRule, Rule, Table, TableId, TABLES};
use crate::netlink::socket::{
    frame, NetlinkSocket, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use attr::Attrs;
use std::io;

/// NFPROTO_*.
fn family_number(family: Family) -> u8 {
    match family {
        Family::Inet => 1,
        Family::Ip => 2,
    }
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFPROTO_UNSPEC: u8 = 0;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_HANDLE: u16 = 4;
const NFTA_TABLE_USERDATA: u16 = 6;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
/// nft's userdata TLV type for a comment (table and rule alike).
const UDATA_COMMENT: u8 = 0;

pub struct NftSocket(NetlinkSocket);

impl NftSocket {
    pub fn open() -> io::Result<NftSocket> {
        NetlinkSocket::open(netlink_sys::protocols::NETLINK_NETFILTER).map(NftSocket)
    }

    /// Those of our tables (by family and name) that exist, as the kernel has them.
    pub fn tables(&mut self) -> io::Result<Vec<Table>> {
        let mut tables: Vec<Table> = self
            .0
            .dump(|seq| message(NFT_MSG_GETTABLE, NLM_F_DUMP, seq, NFPROTO_UNSPEC, Attrs::new()))?
            .iter()
            .filter_map(|m| {
                let attrs = attr::parse(body(m.payload()));
                let (family, name) = (family_of(m.payload()), attr::get_string(&attrs, NFTA_TABLE_NAME));
                let id = TABLES
                    .into_iter()
                    .find(|t| Some(family_number(t.family)) == family && Some(t.name) == name.as_deref())?;
                Some(Table {
                    id,
                    handle: attr::get_be64(&attrs, NFTA_TABLE_HANDLE).unwrap_or(0),
                    comment: attr::get(&attrs, NFTA_TABLE_USERDATA).and_then(comment_from_udata),
                    chains: Vec::new(),
                    rules: Vec::new(),
                })
            })
            .collect();
        for table in &mut tables {
            let family = family_number(table.id.family);
            for m in self
                .0
                .dump(|seq| message(NFT_MSG_GETCHAIN, NLM_F_DUMP, seq, family, Attrs::new()))?
            {
                let attrs = attr::parse(body(m.payload()));
                if attr::get_string(&attrs, NFTA_CHAIN_TABLE).as_deref() != Some(table.id.name) {
                    continue;
                }
                let hook = attr::get(&attrs, NFTA_CHAIN_HOOK)
                    .map(attr::parse)
                    .unwrap_or_default();
                table.chains.push(Chain {
                    name: attr::get_string(&attrs, NFTA_CHAIN_NAME).unwrap_or_default(),
                    chain_type: attr::get_string(&attrs, NFTA_CHAIN_TYPE),
                    hook: attr::get_be32(&hook, NFTA_HOOK_HOOKNUM),
                    priority: attr::get_be32(&hook, NFTA_HOOK_PRIORITY).map(|p| p as i32),
                });
            }
            let filter = || Attrs::new().string(NFTA_RULE_TABLE, table.id.name);
            for m in self
                .0
                .dump(|seq| message(NFT_MSG_GETRULE, NLM_F_DUMP, seq, family, filter()))?
            {
                let attrs = attr::parse(body(m.payload()));
                if attr::get_string(&attrs, NFTA_RULE_TABLE).as_deref() != Some(table.id.name) {
                    continue;
                }
                table.rules.push(ListedRule {
                    chain: attr::get_string(&attrs, NFTA_RULE_CHAIN).unwrap_or_default(),
                    kind: attr::get(&attrs, NFTA_RULE_EXPRESSIONS).and_then(expr::parse),
                });
            }
        }
        Ok(tables)
    }

    /// Creates the tables `rules` need (failing if any table of those names exists), each with
    /// `comment`, their chains and the rules, each with its comment, in one transaction: all
    /// of it or nothing.
    pub fn create(&mut self, comment: &str, rules: &[Rule]) -> io::Result<()> {
        let mut batch = Vec::new();
        for table in tables_for(rules) {
            batch.push((
                NFT_MSG_NEWTABLE,
                NLM_F_CREATE | NLM_F_EXCL,
                family_number(table.family),
                Attrs::new()
                    .string(NFTA_TABLE_NAME, table.name)
                    .bytes(NFTA_TABLE_USERDATA, &udata_comment(comment)),
            ));
        }
        for chain in chains_for(rules) {
            batch.push((
                NFT_MSG_NEWCHAIN,
                NLM_F_CREATE | NLM_F_EXCL,
                family_number(chain.table.family),
                Attrs::new()
                    .string(NFTA_CHAIN_TABLE, chain.table.name)
                    .string(NFTA_CHAIN_NAME, chain.name)
                    .nested(
                        NFTA_CHAIN_HOOK,
                        Attrs::new()
                            .be32(NFTA_HOOK_HOOKNUM, chain.hook.number())
                            .be32(NFTA_HOOK_PRIORITY, chain.priority as u32),
                    )
                    .string(NFTA_CHAIN_TYPE, &chain.chain_type.to_string()),
            ));
        }
        for rule in rules {
            let chain = rule.chain();
            batch.push((
                NFT_MSG_NEWRULE,
                NLM_F_CREATE | NLM_F_APPEND,
                family_number(chain.table.family),
                Attrs::new()
                    .string(NFTA_RULE_TABLE, chain.table.name)
                    .string(NFTA_RULE_CHAIN, chain.name)
                    .nested(NFTA_RULE_EXPRESSIONS, expr::encode(rule))
                    .bytes(NFTA_RULE_USERDATA, &udata_comment(&rule.comment())),
            ));
        }
        self.commit(batch)
    }

    /// Deletes the table with this handle (and so its chains and rules). The handle makes sure
    /// we delete the table we looked at, not one recreated under the same name since.
    pub fn delete(&mut self, table: TableId, handle: u64) -> io::Result<()> {
        self.commit(vec![(
            NFT_MSG_DELTABLE,
            0,
            family_number(table.family),
            Attrs::new()
                .string(NFTA_TABLE_NAME, table.name)
                .be64(NFTA_TABLE_HANDLE, handle),
        )])
    }

    /// Sends messages as one nfnetlink batch (a single transaction) and waits for every ack.
    fn commit(&mut self, messages: Vec<(u16, u16, u8, Attrs)>) -> io::Result<()> {
        let mut bytes = batch_marker(NFNL_MSG_BATCH_BEGIN, self.0.next_seq());
        let mut seqs = Vec::new();
        for (kind, flags, family, attrs) in messages {
            let seq = self.0.next_seq();
            seqs.push(seq);
            bytes.extend(message(kind, flags | NLM_F_ACK, seq, family, attrs));
        }
        bytes.extend(batch_marker(NFNL_MSG_BATCH_END, self.0.next_seq()));
        self.0.make_room_for_acks(seqs.len())?;
        self.0.send(&bytes)?;
        self.0.wait_acks(&seqs)
    }
}

/// An nf_tables message: nfgenmsg (family, version 0, res_id 0), then the attributes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, attrs: Attrs) -> Vec<u8> {
    let mut payload = vec![family, 0, 0, 0];
    payload.extend(attrs.into_bytes());
    frame(
        (NFNL_SUBSYS_NFTABLES << 8) | kind,
        NLM_F_REQUEST | flags,
        seq,
        &payload,
    )
}

/// Batch begin/end: family unspecified, res_id = the nf_tables subsystem (big-endian).
fn batch_marker(kind: u16, seq: u32) -> Vec<u8> {
    let mut payload = vec![0, 0];
    payload.extend(NFNL_SUBSYS_NFTABLES.to_be_bytes());
    frame(kind, NLM_F_REQUEST, seq, &payload)
}

/// The family in a message's nfgenmsg header.
fn family_of(payload: &[u8]) -> Option<u8> {
    payload.first().copied()
}

/// The attributes after the 4-byte nfgenmsg header.
fn body(payload: &[u8]) -> &[u8] {
    payload.get(4..).unwrap_or_default()
}

fn udata_comment(comment: &str) -> Vec<u8> {
    let len = u8::try_from(comment.len() + 1).expect("comments are built short");
    let mut out = vec![UDATA_COMMENT, len];
    out.extend_from_slice(comment.as_bytes());
    out.push(0);
    out
}

fn comment_from_udata(mut udata: &[u8]) -> Option<String> {
    while udata.len() >= 2 {
        let (kind, len) = (udata[0], udata[1] as usize);
        let value = udata.get(2..2 + len)?;
        if kind == UDATA_COMMENT {
            let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
            return String::from_utf8(value[..end].to_vec()).ok();
        }
        udata = &udata[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_udata_round_trip() {
        let udata = udata_comment("cuttlefish-cni owner=1");
        assert_eq!(
            comment_from_udata(&udata).as_deref(),
            Some("cuttlefish-cni owner=1")
        );
        assert_eq!(comment_from_udata(&[1, 2, 0, 0]), None);
        assert_eq!(comment_from_udata(&[0, 200, 1]), None);
    }
}
