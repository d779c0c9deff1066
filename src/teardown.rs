//! Removing an attachment's objects: DEL, and the rollback of a failed ADD. Objects are found by
//! our marks, not by the configuration, so this works when the config changed since ADD or the
//! plugin was killed half-way. Best effort: every step runs, "already gone" is success, and the
//! errors that remain are reported together.

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mark::{Owner, TableRecord, LINK_GROUP};
use crate::netlink::route::Link;
use crate::plan::{Plan, SYSCTLS};

/// Removes everything `owner` created in the netns of `kernel`.
pub fn remove(kernel: &mut dyn Kernel, owner: &Owner) -> Result<()> {
    let mut errors = Vec::new();
    let table = kernel.nat_table()?;
    let record = table
        .as_ref()
        .and_then(|t| t.comment.as_deref())
        .and_then(TableRecord::from_comment)
        .filter(|r| r.owner == owner.tag());
    if let (Some(table), None) = (&table, &record) {
        log::info!(
            "leaving nftables table with comment {:?} alone: not ours for this attachment",
            table.comment
        );
    }

    // Order: sysctls, then links, then the table last, because the table holds the state record
    // a DEL interrupted here would need to finish the job.
    if let Some(record) = &record {
        for (name, before) in SYSCTLS.iter().zip(&record.sysctls_before) {
            let Some(before) = before else { continue };
            match kernel.read_sysctl(name) {
                Ok(Some(now)) if &now != before => collect(&mut errors, kernel.write_sysctl(name, before)),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
    }

    let links = kernel.links()?;
    let ours = owned_links(&links, owner, record.as_ref());
    let group_is_all_ours = links
        .iter()
        .filter(|l| l.group == LINK_GROUP)
        .all(|l| ours.iter().any(|o| o.index == l.index));
    if !ours.is_empty() && group_is_all_ours && ours.iter().all(|l| l.group == LINK_GROUP) {
        collect(&mut errors, kernel.delete_link_group());
    } else {
        for link in &ours {
            collect(&mut errors, kernel.delete_link(link));
        }
    }

    if let (Some(table), Some(_)) = (&table, &record) {
        collect(&mut errors, kernel.delete_nat_table(table.handle));
    }

    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Internal(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// The links `owner` created: those whose alias names it, plus, when our state record exists,
/// links of the recorded plan that have no alias yet (ADD killed between creating a link and
/// marking it; ADD checks that no such name exists before it writes the record).
pub fn owned_links(links: &[Link], owner: &Owner, record: Option<&TableRecord>) -> Vec<Link> {
    let planned: Vec<String> = record
        .map(|r| {
            let settings = Settings {
                instances: r.instances,
                base_instance: r.base_instance,
                tap_owner: None,
                tap_group: None,
            };
            Plan::new(&settings).link_names().map(str::to_string).collect()
        })
        .unwrap_or_default();
    links
        .iter()
        .filter(|l| match &l.alias {
            Some(alias) => owner.owns_alias(alias),
            None => planned.contains(&l.name) && matches!(l.kind.as_deref(), Some("tun" | "bridge")),
        })
        .cloned()
        .collect()
}

fn collect(errors: &mut Vec<Error>, result: Result<()>) {
    if let Err(e) = result {
        if e.is_not_found() {
            log::debug!("already gone: {e}");
        } else {
            errors.push(e);
        }
    }
}
