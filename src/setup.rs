//! ADD: build the plan in the pod netns. Everything is checked before the first change; the
//! state record (our nft tables' comment) is written first; on any failure, everything this
//! call created is removed again through the same path as DEL, and the original error is
//! returned.

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mark::{self, AttachmentTag, TableRecord, LINK_GROUP};
use crate::model::{Change, Link, Observed};
use crate::plan::{BridgePlan, Plan, FORWARDING_SYSCTLS};
use crate::teardown;

/// Builds `plan` for the attachment `tag` names and returns the links as the kernel now has them.
pub fn build(
    kernel: &mut dyn Kernel,
    plan: &Plan,
    tag: &AttachmentTag,
    settings: &Settings,
) -> Result<Vec<Link>> {
    let mut found = kernel.observe(&[])?;
    if has_leftovers_of(&found, tag) {
        // A runtime may retry ADD after a failure without DEL; objects of this same attachment
        // are then removed first rather than reported as conflicts.
        log::warn!("objects of this attachment are already present; removing them before ADD");
        teardown::remove(kernel, tag)?;
        found = kernel.observe(&[])?;
    }
    ensure_no_conflicts(&found, plan)?;
    let mut sysctls_before = Vec::new();
    for name in FORWARDING_SYSCTLS {
        sysctls_before.push((name, kernel.sysctl(name)?));
    }
    let record = TableRecord {
        attachment: tag.as_str().to_string(),
        base_instance: settings.base_instance,
        instances: settings.instances,
        sysctls_before,
    };
    match create_all(kernel, plan, tag, settings, &record) {
        Ok(links) => Ok(links),
        Err(error) => {
            if let Err(cleanup) = teardown::remove(kernel, tag) {
                log::error!("rolling back the failed ADD also failed: {cleanup}");
            }
            Err(error)
        }
    }
}

fn has_leftovers_of(found: &Observed, tag: &AttachmentTag) -> bool {
    found.tables.iter().any(|t| tag.owns_table(t))
        || found
            .links
            .iter()
            .any(|l| l.alias.as_deref().is_some_and(|a| tag.named_in(a)))
}

fn ensure_no_conflicts(found: &Observed, plan: &Plan) -> Result<()> {
    if let Some(table) = found.tables.first() {
        return Err(Error::Conflict {
            object: format!("nftables table {}", table.id),
            reason: format!(
                "already exists in the pod (comment {:?}) and was not created for this attachment",
                table.comment.as_deref().unwrap_or_default()
            ),
        });
    }
    for name in plan.link_names() {
        if let Some(link) = found.link(name) {
            let creator = match link.alias.as_deref() {
                Some(alias) if mark::is_ours(alias) => "another attachment".to_string(),
                Some(alias) => format!("someone else (alias {alias:?})"),
                None => "someone else".to_string(),
            };
            return Err(Error::Conflict {
                object: format!("link {name}"),
                reason: format!("already exists in the pod, created by {creator}"),
            });
        }
    }
    for existing in &found.addresses {
        if let Some((link, planned)) = plan.addresses().find(|(_, a)| a.overlaps(existing)) {
            let holder = found
                .link_by_index(existing.index)
                .map_or("?", |l| l.name.as_str());
            return Err(Error::Conflict {
                object: format!("address {}/{} on {holder}", existing.address, existing.prefix),
                reason: format!("overlaps {planned} planned for {link}"),
            });
        }
    }
    Ok(())
}

/// Writes the bridge's IPv6 sysctls while it is still down: the kernel picks the link-local
/// address's generation mode when the link comes up. A new link takes the pod's
/// `net.ipv6.conf.default` values, which may have IPv6 off. Neither `disable_ipv6` nor
/// `autoconf` has a netlink setter (`IFLA_INET6_CONF` is read-only), so all three go through
/// /proc/sys. On a node booted with `ipv6.disable=1` they do not exist and nothing is written.
fn enable_ipv6(kernel: &mut dyn Kernel, bridge: &BridgePlan) -> Result<()> {
    let mut sysctls = bridge.ipv6_sysctls().peekable();
    if let Some((first, _)) = sysctls.peek() {
        if kernel.sysctl(first)?.is_none() {
            log::info!("IPv6 is off on this node: {} gets no IPv6 settings", bridge.name);
            return Ok(());
        }
    }
    for (name, value) in sysctls {
        kernel.apply(&Change::WriteSysctl {
            name,
            value: value.to_string(),
        })?;
    }
    Ok(())
}

fn create_all(
    kernel: &mut dyn Kernel,
    plan: &Plan,
    tag: &AttachmentTag,
    settings: &Settings,
    record: &TableRecord,
) -> Result<Vec<Link>> {
    kernel.apply(&Change::CreateTables {
        comment: record.to_comment(),
        rules: plan.nft_rules.clone(),
    })?;

    for (name, before) in &record.sysctls_before {
        if before.as_deref().is_some_and(|v| v != "1") {
            kernel.apply(&Change::WriteSysctl {
                name: name.to_string(),
                value: "1".into(),
            })?;
        }
    }

    let alias = tag.link_alias(settings);
    let configure = |name: &str, master: Option<u32>| Change::ConfigureLink {
        name: name.to_string(),
        alias: alias.clone(),
        group: LINK_GROUP,
        master,
    };
    for bridge in &plan.bridges {
        kernel.apply(&Change::CreateBridge {
            name: bridge.name.to_string(),
            group: LINK_GROUP,
        })?;
        enable_ipv6(kernel, bridge)?;
        kernel.apply(&configure(bridge.name, None))?;
    }
    let links = kernel.links()?;
    for tap in &plan.taps {
        let master = match tap.bridge {
            Some(bridge) => Some(just_created(&links, bridge)?.index),
            None => None,
        };
        kernel.apply(&Change::CreateTap(tap.spec()))?;
        kernel.apply(&configure(&tap.name, master))?;
    }

    let links = kernel.links()?;
    for (name, address) in plan.addresses() {
        let link = just_created(&links, name)?;
        kernel.apply(&Change::AddAddress {
            link: link.name.clone(),
            index: link.index,
            address,
        })?;
    }
    Ok(links)
}

fn just_created<'a>(links: &'a [Link], name: &str) -> Result<&'a Link> {
    links
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| Error::LinkVanished(name.to_string()))
}
