//! Removing an attachment's objects: DEL, and the rollback of a failed ADD. Objects are found by
//! our marks, not by the configuration, so this works when the config changed since ADD or the
//! plugin was killed half-way. Best effort: every step runs, "already gone" is success, and the
//! errors that remain are reported together.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mark::{AttachmentTag, TableRecord, LINK_GROUP};
use crate::model::{Change, Link, Table};
use crate::plan;

/// Removes everything the attachment `tag` names created in the netns of `kernel`.
pub fn remove(kernel: &mut dyn Kernel, tag: &AttachmentTag) -> Result<()> {
    let mut errors = Vec::new();
    let tables: Vec<Table> = kernel
        .tables()?
        .into_iter()
        .filter(|table| {
            let ours = tag.owns_table(table);
            if !ours {
                log::info!(
                    "leaving nftables table {} with comment {:?} alone: not ours for this attachment",
                    table.id,
                    table.comment
                );
            }
            ours
        })
        .collect();
    // Every table of ours carries the same record; one that still parses is enough.
    let mut damaged = Vec::new();
    let record = tables.iter().find_map(|table| {
        match TableRecord::parse(table.comment.as_deref().unwrap_or_default()) {
            Ok(record) => Some(record),
            Err(e) => {
                damaged.push(format!("{}: {e}", table.id));
                None
            }
        }
    });
    if record.is_none() && !damaged.is_empty() {
        // Removing what carries our mark needs no record; restoring the sysctls and finding
        // links ADD created but never marked do.
        log::warn!(
            "the state record in our nftables tables is damaged ({}): removing our tables and \
             marked links, leaving the forwarding sysctls as they are",
            damaged.join("; ")
        );
    }

    if let Some(record) = &record {
        for (name, before) in &record.sysctls_before {
            let Some(before) = before else { continue };
            match kernel.sysctl(name) {
                Ok(Some(now)) if &now != before => keep_unless_gone(
                    &mut errors,
                    kernel.apply(&Change::WriteSysctl {
                        name: name.to_string(),
                        value: before.clone(),
                    }),
                ),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
    }

    let links = kernel.links()?;
    let ours = owned_links(&links, tag, record.as_ref());
    // The tables go before the links when every link of ours carries its mark: nf_tables
    // destroys a deleted table after an RCU grace period, and closing our netlink socket waits
    // for it, so deleting them first lets that grace period pass during the link deletion. While
    // some link is still unmarked (ADD was killed between creating and marking it), the tables'
    // record is what names it: then the tables go last, so an interrupted DEL can finish.
    let all_marked = ours.iter().all(|l| l.alias.is_some());
    let delete_tables = |kernel: &mut dyn Kernel, errors: &mut Vec<Error>| {
        for table in &tables {
            let change = Change::DeleteTable {
                table: table.id,
                handle: table.handle,
            };
            keep_unless_gone(errors, kernel.apply(&change));
        }
    };
    if all_marked {
        delete_tables(kernel, &mut errors);
    }
    let group_is_all_ours = links
        .iter()
        .filter(|l| l.group == LINK_GROUP)
        .all(|l| ours.iter().any(|o| o.index == l.index));
    if !ours.is_empty() && group_is_all_ours && ours.iter().all(|l| l.group == LINK_GROUP) {
        keep_unless_gone(&mut errors, kernel.apply(&Change::DeleteLinkGroup(LINK_GROUP)));
    } else {
        for link in &ours {
            let change = Change::DeleteLink {
                name: link.name.clone(),
                index: link.index,
            };
            keep_unless_gone(&mut errors, kernel.apply(&change));
        }
    }
    if !all_marked {
        delete_tables(kernel, &mut errors);
    }

    Error::all(errors)
}

/// The links the attachment `tag` names created: those whose alias names it, plus, when our state record exists,
/// links of the recorded plan that have no alias yet (ADD killed between creating a link and
/// marking it; ADD checks that no such name exists before it writes the record).
pub fn owned_links(links: &[Link], tag: &AttachmentTag, record: Option<&TableRecord>) -> Vec<Link> {
    let planned = record
        .map(|r| plan::link_names(r.base_instance, r.instances))
        .unwrap_or_default();
    links
        .iter()
        .filter(|l| match &l.alias {
            Some(alias) => tag.named_in(alias),
            None => planned.contains(&l.name) && matches!(l.kind.as_deref(), Some("tun" | "bridge")),
        })
        .cloned()
        .collect()
}

/// Adds a failure to `errors`, unless the kernel said the object is already gone.
fn keep_unless_gone(errors: &mut Vec<Error>, result: Result<()>) {
    if let Err(e) = result {
        if e.is_not_found() {
            log::debug!("already gone: {e}");
        } else {
            errors.push(e);
        }
    }
}
