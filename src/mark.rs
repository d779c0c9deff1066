//! How we recognise our own objects. DEL, CHECK and GC find links by the alias we write and the
//! nft table by its comment, never by name alone: a user's own `cvd-ebr` is left alone.
//!
//! The table comment is also the attachment's state record. It is written first in ADD, in the
//! same atomic batch as the NAT rules, and holds what DEL needs to undo the rest: the forwarding
//! sysctl values found before ADD, by name, and the instance range (so a DEL after a crash
//! knows names).
//! The state lives in the pod netns and dies with it, so the plugin keeps nothing on the node.

use crate::cni::Attachment;
use crate::config::{Settings, MAX_INSTANCE};
use crate::model::Table;
use crate::plan::FORWARDING_SYSCTLS;

const PREFIX: &str = "cuttlefish-cni";

/// Every link we create carries this link group, so DEL can remove them in one kernel request.
pub const LINK_GROUP: u32 = 0xcf00;

/// An attachment's tag: short and stable, derived from container id and ifname. Our marks
/// carry it as `owner=<tag>`.
/// (Container ids have no length limit; aliases and nft comments do: 255 and 256 bytes.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentTag(String);

impl AttachmentTag {
    pub fn of(attachment: &Attachment) -> AttachmentTag {
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
        AttachmentTag(format!("{hash:016x}"))
    }

    pub fn as_str(&self) -> &str {
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

    /// True when `alias` names this attachment.
    pub fn named_in(&self, alias: &str) -> bool {
        field(alias, "owner") == Some(self.0.as_str())
    }

    /// True when the table's comment names this attachment, whether or not the rest of the
    /// record in it is intact.
    pub fn owns_table(&self, table: &Table) -> bool {
        table.comment.as_deref().and_then(attachment_of_comment) == Some(self.0.as_str())
    }
}

/// True when a link alias says the link was created by this plugin, for any attachment.
pub fn is_ours(alias: &str) -> bool {
    alias.split(' ').next() == Some(PREFIX) && field(alias, "owner").is_some()
}

/// The attachment a table comment of ours names, read on its own: a record whose other fields are
/// damaged still says whose table it is, so DEL can remove the table.
fn attachment_of_comment(comment: &str) -> Option<&str> {
    (comment.split(' ').next() == Some(PREFIX))
        .then(|| field(comment, "owner"))
        .flatten()
}

/// The state record kept in our nft table's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    /// The tag of the attachment the record belongs to.
    pub attachment: String,
    pub base_instance: u32,
    pub instances: u32,
    /// The forwarding sysctls before ADD, by name; None where the sysctl is absent (IPv6
    /// disabled on the node).
    pub sysctls_before: Vec<(&'static str, Option<String>)>,
}

/// Releases up to 0.2.0 wrote the values alone (`sysctls=0,-`), in this order.
const UNNAMED_SYSCTL_ORDER: [&str; 2] = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"];

/// Why a table comment is not a usable state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError(String);

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kernel keeps at most this much userdata per table (`NFT_USERDATA_MAXLEN`).
const MAX_COMMENT: usize = 256;
const KEYS: [&str; 4] = ["owner", "base", "instances", "sysctls"];

impl TableRecord {
    pub fn to_comment(&self) -> String {
        let sysctls: Vec<String> = self
            .sysctls_before
            .iter()
            .map(|(name, value)| format!("{name}:{}", value.as_deref().unwrap_or("-")))
            .collect();
        format!(
            "{PREFIX} owner={} base={} instances={} sysctls={}",
            self.attachment,
            self.base_instance,
            self.instances,
            sysctls.join(",")
        )
    }

    /// Reads a record back. The comment lives in the pod netns, where anyone with
    /// `CAP_NET_ADMIN` in the pod can rewrite it, so every field is checked: exactly the four
    /// keys once each, instance numbers within 1..=128, the sysctls as integers.
    pub fn parse(comment: &str) -> Result<TableRecord, RecordError> {
        let fail = |why: String| Err(RecordError(why));
        if comment.len() > MAX_COMMENT {
            return fail(format!("{} bytes, more than {MAX_COMMENT}", comment.len()));
        }
        let mut words = comment.split(' ');
        if words.next() != Some(PREFIX) {
            return fail(format!("does not start with {PREFIX:?}"));
        }
        let mut values: [Option<&str>; KEYS.len()] = [None; KEYS.len()];
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                return fail(format!("{word:?} is not key=value"));
            };
            let Some(slot) = KEYS.iter().position(|k| *k == key) else {
                return fail(format!("unknown key {key:?}"));
            };
            if values[slot].replace(value).is_some() {
                return fail(format!("{key} appears twice"));
            }
        }
        let [Some(owner), Some(base), Some(instances), Some(sysctls)] = values else {
            let missing: Vec<&str> = KEYS
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| *k)
                .collect();
            return fail(format!("missing {}", missing.join(", ")));
        };
        if owner.len() != 16
            || !owner
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return fail(format!("owner {owner:?} is not 16 hex digits"));
        }
        let base_instance = instance_number("base", base)?;
        let instances = instance_number("instances", instances)?;
        if base_instance + instances - 1 > MAX_INSTANCE {
            return fail(format!(
                "base {base_instance} with {instances} instances goes past {MAX_INSTANCE}"
            ));
        }
        let sysctls_before = sysctl_values(sysctls)?;
        Ok(TableRecord {
            attachment: owner.to_string(),
            base_instance,
            instances,
            sysctls_before,
        })
    }
}

/// `name:value,…`, each name one of ours at most once; or, as releases up to 0.2.0 wrote it,
/// `value,value` in [`UNNAMED_SYSCTL_ORDER`]. Values are integers or `-` (absent).
fn sysctl_values(text: &str) -> Result<Vec<(&'static str, Option<String>)>, RecordError> {
    let items: Vec<&str> = text.split(',').collect();
    let named = items.iter().any(|item| item.contains(':'));
    if !named && items.len() != UNNAMED_SYSCTL_ORDER.len() {
        return Err(RecordError(format!(
            "{} sysctl values, expected {}",
            items.len(),
            UNNAMED_SYSCTL_ORDER.len()
        )));
    }
    let mut values: Vec<(&'static str, Option<String>)> = Vec::new();
    for (position, item) in items.iter().enumerate() {
        let (name, value) = if named {
            let Some((name, value)) = item.split_once(':') else {
                return Err(RecordError(format!("sysctl {item:?} is not name:value")));
            };
            let Some(known) = FORWARDING_SYSCTLS.iter().find(|known| **known == name) else {
                return Err(RecordError(format!("sysctl {name:?} is not one ADD sets")));
            };
            (*known, value)
        } else {
            (UNNAMED_SYSCTL_ORDER[position], *item)
        };
        if values.iter().any(|(seen, _)| *seen == name) {
            return Err(RecordError(format!("sysctl {name} appears twice")));
        }
        let value = match value {
            "-" => None,
            _ => Some(
                value
                    .parse::<i32>()
                    .map_err(|_| RecordError(format!("sysctl value {value:?} is not an integer")))?
                    .to_string(),
            ),
        };
        values.push((name, value));
    }
    Ok(values)
}

/// An instance number or count of a record: 1..=128, digits only.
fn instance_number(key: &str, value: &str) -> Result<u32, RecordError> {
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse::<u32>().ok())
        .flatten()
        .filter(|n| (1..=MAX_INSTANCE).contains(n))
        .ok_or_else(|| RecordError(format!("{key} {value:?} is not a number in 1..={MAX_INSTANCE}")))
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
        let a = AttachmentTag::of(&attachment("abc", "eth0"));
        assert_eq!(a, AttachmentTag::of(&attachment("abc", "eth0")));
        assert_eq!(a.as_str().len(), 16);
        assert_ne!(a, AttachmentTag::of(&attachment("abc", "eth1")));
        assert_ne!(a, AttachmentTag::of(&attachment("abd", "eth0")));
        // "ab"+"ceth0" must not collide with "abc"+"eth0".
        assert_ne!(a, AttachmentTag::of(&attachment("ab", "ceth0")));
    }

    #[test]
    fn alias_round_trip() {
        let tag = AttachmentTag::of(&attachment("abc", "eth0"));
        let settings = Settings {
            instances: 2,
            base_instance: 5,
            vsock_cid: None,
            tap_owner: None,
            tap_group: None,
            clamp_mss: false,
            dns_redirect: None,
        };
        let alias = tag.link_alias(&settings);
        assert!(tag.named_in(&alias));
        assert!(is_ours(&alias));
        assert!(!AttachmentTag::of(&attachment("x", "eth0")).named_in(&alias));
        assert!(!is_ours("cuttlefish-cni"));
        assert!(!is_ours("my own bridge owner=1"));
    }

    #[test]
    fn alias_names_the_cid_when_one_was_allocated_and_old_aliases_still_parse() {
        let tag = AttachmentTag::of(&attachment("abc", "eth0"));
        let settings = Settings {
            instances: 1,
            base_instance: 1,
            vsock_cid: Some(1026),
            tap_owner: None,
            tap_group: None,
            clamp_mss: false,
            dns_redirect: None,
        };
        let alias = tag.link_alias(&settings);
        assert_eq!(
            alias,
            format!(
                "cuttlefish-cni owner={} base=1 instances=1 cid=1026",
                tag.as_str()
            )
        );
        assert!(tag.named_in(&alias) && is_ours(&alias));
        let previous_release = format!("cuttlefish-cni owner={} base=7 instances=2", tag.as_str());
        assert!(tag.named_in(&previous_release) && is_ours(&previous_release));
    }

    #[test]
    fn table_record_round_trip() {
        let record = TableRecord {
            attachment: "0123456789abcdef".into(),
            base_instance: 65,
            instances: 3,
            sysctls_before: vec![
                ("net/ipv4/ip_forward", Some("0".into())),
                ("net/ipv6/conf/all/forwarding", None),
            ],
        };
        let comment = record.to_comment();
        assert!(comment.ends_with("sysctls=net/ipv4/ip_forward:0,net/ipv6/conf/all/forwarding:-"));
        assert!(comment.len() < 256);
        assert_eq!(TableRecord::parse(&comment), Ok(record));
        assert!(TableRecord::parse("written by hand").is_err());
    }

    /// What release 0.1.0 wrote must keep parsing: DEL after an upgrade depends on it.
    #[test]
    fn a_record_of_release_0_1_0_parses() {
        let record =
            TableRecord::parse("cuttlefish-cni owner=c6e7cd092ede8833 base=1 instances=1 sysctls=0,-")
                .unwrap();
        assert_eq!(record.attachment, "c6e7cd092ede8833");
        assert_eq!((record.base_instance, record.instances), (1, 1));
        assert_eq!(
            record.sysctls_before,
            [
                ("net/ipv4/ip_forward", Some("0".to_string())),
                ("net/ipv6/conf/all/forwarding", None)
            ]
        );
    }

    /// The values are kept by name: a record lists them in any order, and restoring them does
    /// not depend on the order of `plan::FORWARDING_SYSCTLS`.
    #[test]
    fn sysctls_are_read_by_name() {
        let record = TableRecord::parse(
            "cuttlefish-cni owner=0123456789abcdef base=1 instances=1 \
             sysctls=net/ipv6/conf/all/forwarding:1,net/ipv4/ip_forward:0",
        )
        .unwrap();
        assert_eq!(
            record.sysctls_before,
            [
                ("net/ipv6/conf/all/forwarding", Some("1".to_string())),
                ("net/ipv4/ip_forward", Some("0".to_string()))
            ]
        );
    }

    #[test]
    fn tampered_records_are_refused_without_panicking() {
        let owner = "owner=0123456789abcdef";
        let tampered = [
            format!("cuttlefish-cni {owner} base=4294967295 instances=2 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=4294967295 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=4294967296 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=99999999999999999999999 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=0 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=0 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=129 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=100 instances=100 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=128 instances=2 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=-1 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=+1 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base= instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=1"),
            format!("cuttlefish-cni {owner} instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=1 sysctls=0,0"),
            "cuttlefish-cni base=1 instances=1 sysctls=0,0".to_string(),
            format!("cuttlefish-cni {owner}"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls="),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=0"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=0,0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=0,99999999999"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=1;reboot,/../x"),
            format!("cuttlefish-cni {owner} base=1 base=2 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=0,0 extra=1"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=0,0 garbage"),
            format!("cuttlefish-cni {owner}  base=1 instances=1 sysctls=0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=0,0 é=%"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=net/ipv4/ip_forward:0,0"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=kernel/panic:1"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=../../x:1"),
            format!(
                "cuttlefish-cni {owner} base=1 instances=1 sysctls=net/ipv4/ip_forward:0,net/ipv4/ip_forward:1"
            ),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=net/ipv4/ip_forward:x"),
            format!("cuttlefish-cni {owner} base=1 instances=1 sysctls=net/ipv4/ip_forward:"),
            "cuttlefish-cni owner=0123 base=1 instances=1 sysctls=0,0".to_string(),
            "cuttlefish-cni owner=0123456789ABCDEF base=1 instances=1 sysctls=0,0".to_string(),
            "cuttlefish-cni owner=../../../etc/pass base=1 instances=1 sysctls=0,0".to_string(),
            format!(
                "cuttlefish-cni {owner} base=1 instances=1 sysctls=0,0 {}",
                "x".repeat(4096)
            ),
            format!(
                "cuttlefish-cni {owner} base=1 instances=1 sysctls={}",
                "0,".repeat(2048)
            ),
            "x".repeat(4096),
            " ".repeat(4096),
            "=".repeat(4096),
            String::new(),
            "cuttlefish-cni".to_string(),
            "cuttlefish-cni ".to_string(),
        ];
        for comment in &tampered {
            assert!(
                TableRecord::parse(comment).is_err(),
                "accepted {:?}",
                &comment[..comment.len().min(100)]
            );
        }
    }

    #[test]
    fn the_boundaries_are_accepted() {
        for (base, instances) in [(1, 128), (128, 1), (64, 65)] {
            let comment = format!(
                "cuttlefish-cni owner=0123456789abcdef base={base} instances={instances} sysctls=1,-1"
            );
            let record = TableRecord::parse(&comment).unwrap();
            assert_eq!((record.base_instance, record.instances), (base, instances));
        }
    }

    #[test]
    fn the_owner_is_read_even_from_a_damaged_record() {
        let damaged = "cuttlefish-cni owner=0123456789abcdef base=99999999999 garbage";
        assert_eq!(attachment_of_comment(damaged), Some("0123456789abcdef"));
        assert_eq!(attachment_of_comment("someone owner=0123456789abcdef"), None);
        assert_eq!(attachment_of_comment("cuttlefish-cni base=1"), None);
        assert_eq!(attachment_of_comment(&"y".repeat(4096)), None);
    }
}
