//! How we recognise our own objects. DEL, CHECK and GC find links by the alias we write and the
//! nft table by its comment, never by name alone: a user's own `cvd-ebr` is left alone.
//!
//! The table comment is also the attachment's state record. It is written first in ADD, in the
//! same atomic batch as the NAT rules, and holds what DEL needs to undo the rest: the forwarding
//! sysctl values found before ADD, and the instance range (so a DEL after a crash knows names).
//! The state lives in the pod netns and dies with it, so the plugin keeps nothing on the node.

use crate::cni::Attachment;
use crate::config::Settings;

const PREFIX: &str = "cuttlefish-cni";

/// Every link we create carries this link group, so DEL can remove them in one kernel request.
pub const LINK_GROUP: u32 = 0xcf00;

/// The owner of an attachment: a short stable tag derived from container id and ifname.
/// (Container ids have no length limit; aliases and nft comments do: 255 and 256 bytes.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    pub fn of(attachment: &Attachment) -> Owner {
        // FNV-1a, 64 bit: stable across releases and platforms, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = attachment
            .container_id
            .bytes()
            .chain([0])
            .chain(attachment.ifname.bytes());
        for byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Owner(format!("{hash:016x}"))
    }

    pub fn tag(&self) -> &str {
        &self.0
    }

    /// The alias of every link we create: `/sys/class/net/<link>/ifalias` shows it to anyone,
    /// so the pod reads its first vsock CID there (`cid=`, with `vsockCid: "auto"` only).
    pub fn link_alias(&self, settings: &Settings) -> String {
        let alias = format!(
            "{PREFIX} owner={} base={} instances={}",
            self.0, settings.base_instance, settings.instances
        );
        match settings.vsock_cid {
            Some(cid) => format!("{alias} cid={cid}"),
            None => alias,
        }
    }

    pub fn owns_alias(&self, alias: &str) -> bool {
        field(alias, "owner") == Some(self.0.as_str())
    }
}

/// True when a link alias says the link was created by this plugin, for any owner.
pub fn is_ours(alias: &str) -> bool {
    alias.split(' ').next() == Some(PREFIX) && field(alias, "owner").is_some()
}

/// The state record kept in our nft table's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    pub owner: String,
    pub base_instance: u32,
    pub instances: u32,
    /// The forwarding sysctls before ADD, in `plan::SYSCTLS` order; None where the sysctl is
    /// absent (IPv6 disabled on the node).
    pub sysctls_before: Vec<Option<String>>,
}

impl TableRecord {
    pub fn to_comment(&self) -> String {
        let sysctls: Vec<String> = self
            .sysctls_before
            .iter()
            .map(|v| v.clone().unwrap_or_else(|| "-".into()))
            .collect();
        format!(
            "{PREFIX} owner={} base={} instances={} sysctls={}",
            self.owner,
            self.base_instance,
            self.instances,
            sysctls.join(",")
        )
    }

    /// None when the comment is not one of ours.
    pub fn from_comment(comment: &str) -> Option<TableRecord> {
        if comment.split(' ').next() != Some(PREFIX) {
            return None;
        }
        let number = |key| field(comment, key)?.parse().ok();
        Some(TableRecord {
            owner: field(comment, "owner")?.to_string(),
            base_instance: number("base")?,
            instances: number("instances")?,
            sysctls_before: field(comment, "sysctls")?
                .split(',')
                .map(|v| (v != "-").then(|| v.to_string()))
                .collect(),
        })
    }
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(' ')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: ifname.into(),
        }
    }

    #[test]
    fn owner_is_stable_and_distinguishes_attachments() {
        let a = Owner::of(&attachment("abc", "eth0"));
        assert_eq!(a, Owner::of(&attachment("abc", "eth0")));
        assert_eq!(a.tag().len(), 16);
        assert_ne!(a, Owner::of(&attachment("abc", "eth1")));
        assert_ne!(a, Owner::of(&attachment("abd", "eth0")));
        // "ab"+"ceth0" must not collide with "abc"+"eth0".
        assert_ne!(a, Owner::of(&attachment("ab", "ceth0")));
    }

    #[test]
    fn alias_round_trip() {
        let owner = Owner::of(&attachment("abc", "eth0"));
        let settings = Settings {
            instances: 2,
            base_instance: 5,
            vsock_cid: None,
            tap_owner: None,
            tap_group: None,
            clamp_mss: false,
            dns_redirect: None,
        };
        let alias = owner.link_alias(&settings);
        assert!(owner.owns_alias(&alias));
        assert!(is_ours(&alias));
        assert!(!Owner::of(&attachment("x", "eth0")).owns_alias(&alias));
        assert!(!is_ours("cuttlefish-cni"));
        assert!(!is_ours("my own bridge owner=1"));
    }

    #[test]
    fn alias_names_the_cid_when_one_was_allocated_and_old_aliases_still_parse() {
        let owner = Owner::of(&attachment("abc", "eth0"));
        let settings = Settings {
            instances: 1,
            base_instance: 1,
            vsock_cid: Some(1026),
            tap_owner: None,
            tap_group: None,
            clamp_mss: false,
            dns_redirect: None,
        };
        let alias = owner.link_alias(&settings);
        assert_eq!(
            alias,
            format!("cuttlefish-cni owner={} base=1 instances=1 cid=1026", owner.tag())
        );
        assert!(owner.owns_alias(&alias) && is_ours(&alias));
        let previous_release = format!("cuttlefish-cni owner={} base=7 instances=2", owner.tag());
        assert!(owner.owns_alias(&previous_release) && is_ours(&previous_release));
    }

    #[test]
    fn table_record_round_trip() {
        let record = TableRecord {
            owner: "0123456789abcdef".into(),
            base_instance: 65,
            instances: 3,
            sysctls_before: vec![Some("0".into()), None],
        };
        let comment = record.to_comment();
        assert!(comment.len() < 256);
        assert_eq!(TableRecord::from_comment(&comment), Some(record));
        assert_eq!(TableRecord::from_comment("written by hand"), None);
    }
}
