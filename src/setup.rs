//! ADD: build the plan in the pod netns. Everything is checked before the first change; the
//! state record (our nft table) is written first; on any failure, everything this call created
//! is removed again through the same path as DEL, and the original error is returned.

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mark::{self, Owner, TableRecord};
use crate::netlink::route::{Address, Link};
use crate::nft;
use crate::plan::{BridgePlan, Plan, SYSCTLS};
use crate::teardown;
use ipnetwork::Ipv4Network;

/// Builds `plan` for `owner` and returns the links as the kernel now has them.
pub fn build(kernel: &mut dyn Kernel, plan: &Plan, owner: &Owner, settings: &Settings) -> Result<Vec<Link>> {
    let mut found = Found::read(kernel)?;
    if found.has_leftovers_of(owner) {
        // A runtime may retry ADD after a failure without DEL; objects of this same attachment
        // are then removed first rather than reported as conflicts.
        log::warn!("objects of this attachment are already present; removing them before ADD");
        teardown::remove(kernel, owner)?;
        found = Found::read(kernel)?;
    }
    ensure_no_conflicts(&found, plan)?;
    let sysctls_before = SYSCTLS
        .iter()
        .map(|name| kernel.read_sysctl(name))
        .collect::<Result<Vec<_>>>()?;
    let record = TableRecord {
        owner: owner.tag().to_string(),
        base_instance: settings.base_instance,
        instances: settings.instances,
        sysctls_before,
    };
    match create_all(kernel, plan, owner, settings, &record) {
        Ok(links) => Ok(links),
        Err(error) => {
            if let Err(cleanup) = teardown::remove(kernel, owner) {
                log::error!("rolling back the failed ADD also failed: {cleanup}");
            }
            Err(error)
        }
    }
}

/// What the pod netns holds before ADD changes anything.
struct Found {
    tables: Vec<nft::Table>,
    links: Vec<Link>,
    addresses: Vec<Address>,
}

impl Found {
    fn read(kernel: &mut dyn Kernel) -> Result<Found> {
        Ok(Found {
            tables: kernel.nft_tables()?,
            links: kernel.links()?,
            addresses: kernel.addresses()?,
        })
    }

    fn has_leftovers_of(&self, owner: &Owner) -> bool {
        let table_is_ours = self
            .tables
            .iter()
            .any(|t| t.comment.as_deref().and_then(mark::owner_of_comment) == Some(owner.tag()));
        table_is_ours
            || self
                .links
                .iter()
                .any(|l| l.alias.as_deref().is_some_and(|a| owner.owns_alias(a)))
    }
}

fn ensure_no_conflicts(found: &Found, plan: &Plan) -> Result<()> {
    if let Some(table) = found.tables.first() {
        return Err(Error::Conflict {
            object: format!("nftables table {}", table.id),
            reason: format!(
                "already exists in the pod (comment {:?}) and was not created for this attachment",
                table.comment.as_deref().unwrap_or_default()
            ),
        });
    }
    let links = &found.links;
    for name in plan.link_names() {
        if let Some(link) = links.iter().find(|l| l.name == name) {
            let owner = match link.alias.as_deref() {
                Some(alias) if mark::is_ours(alias) => "another attachment".to_string(),
                Some(alias) => format!("someone else (alias {alias:?})"),
                None => "someone else".to_string(),
            };
            return Err(Error::Conflict {
                object: format!("link {name}"),
                reason: format!("already exists in the pod, created by {owner}"),
            });
        }
    }
    for existing in &found.addresses {
        let Ok(net) = Ipv4Network::new(existing.address, existing.prefix) else {
            continue;
        };
        if let Some((link, planned)) = plan.addresses().find(|(_, a)| a.network().overlaps(net)) {
            let holder = links
                .iter()
                .find(|l| l.index == existing.index)
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
        if kernel.read_sysctl(first)?.is_none() {
            log::info!("IPv6 is off on this node: {} gets no IPv6 settings", bridge.name);
            return Ok(());
        }
    }
    for (name, value) in sysctls {
        kernel.write_sysctl(&name, value)?;
    }
    Ok(())
}

fn create_all(
    kernel: &mut dyn Kernel,
    plan: &Plan,
    owner: &Owner,
    settings: &Settings,
    record: &TableRecord,
) -> Result<Vec<Link>> {
    let rules: Vec<(nft::Rule, String)> = plan
        .nft_rules
        .iter()
        .map(|rule| (*rule, format!("cuttlefish-cni {}", rule.label())))
        .collect();
    kernel.create_nft_tables(&record.to_comment(), &rules)?;

    for (name, before) in SYSCTLS.iter().zip(&record.sysctls_before) {
        if before.as_deref().is_some_and(|v| v != "1") {
            kernel.write_sysctl(name, "1")?;
        }
    }

    let alias = owner.link_alias(settings);
    for bridge in &plan.bridges {
        kernel.create_bridge(bridge.name)?;
        enable_ipv6(kernel, bridge)?;
        kernel.configure_link(bridge.name, &alias, None)?;
    }
    let links = kernel.links()?;
    let index_of = |links: &[Link], name: &str| -> Result<Link> {
        links
            .iter()
            .find(|l| l.name == name)
            .cloned()
            .ok_or_else(|| Error::LinkVanished(name.to_string()))
    };
    for tap in &plan.taps {
        let master = match tap.bridge {
            Some(bridge) => Some(index_of(&links, bridge)?.index),
            None => None,
        };
        kernel.create_tap(tap)?;
        kernel.configure_link(&tap.name, &alias, master)?;
    }

    let links = kernel.links()?;
    for (name, address) in plan.addresses() {
        let link = index_of(&links, name)?;
        kernel.add_address(&link, address)?;
    }
    Ok(links)
}
