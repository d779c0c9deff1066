//! Which instance numbers and vsock CIDs an attachment uses. Instance numbers are 1..n unless
//! the pod or the plugin key names another first one. With `vsockCid: "auto"`, ADD allocates
//! the pod's CIDs in `<dataDir>/_vsock-cids/`, one directory for every network of the node,
//! since CIDs are node-wide. The previous release's `baseInstance: "auto"` allocated instance
//! numbers in `<dataDir>/<network>/`: CHECK still reads them for the pods it built, and DEL and
//! GC still release them. Both are released by attachment, so the pod's state record (the nft
//! table comment, see `mark`) needs no CID: a DEL after a crash finds them all the same.

use crate::alloc::{Allocations, Holder, LOCK_FILE};
use crate::check::Drift;
use crate::cni::Attachment;
use crate::config::{NetConf, Settings};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The CID allocations of every network on the node. Network names cannot start with `_`.
const CID_DIR: &str = "_vsock-cids";

/// ADD: the settings to build, allocating CIDs with `vsockCid: "auto"`.
pub fn acquire(conf: &NetConf, attachment: &Attachment) -> Result<Settings> {
    let base = conf.request.base;
    if !conf.allocation.vsock_cid {
        return Ok(conf.request.settings(base, None));
    }
    let dir = cid_dir(conf);
    let range = conf.allocation.cid_range;
    let instances = conf.request.instances;
    let allocated = lock(&dir)?
        .allocate(&cid_holder(conf, attachment), instances, range)
        .map_err(|e| io_error(&dir, e))?;
    match allocated {
        Ok(cid) => {
            log::info!("allocated vsock CIDs {cid}..{}", cid + instances - 1);
            Ok(conf.request.settings(base, Some(cid)))
        }
        Err(exhausted) => Err(Error::TryAgainLater(format!(
            "no {instances} contiguous free vsock CIDs in cidRange [{}, {}]: {} are taken (holders: one file per CID in {})",
            range.0,
            range.1,
            exhausted.taken,
            exhausted.dir.display()
        ))),
    }
}

/// CHECK: the settings ADD built. A pod the previous release built with `baseInstance: "auto"`
/// runs the instance numbers it was allocated, whatever the configuration says now.
pub fn current(conf: &NetConf, attachment: &Attachment) -> Result<Settings> {
    let instances = conf.request.instances as usize;
    let legacy = held_if_present(&legacy_dir(conf), &legacy_holder(attachment))?;
    let base = match legacy.first() {
        None => conf.request.base,
        Some(first) if legacy.len() == instances => *first,
        Some(_) => {
            return Err(Error::CheckFailed(vec![Drift::InstanceNumbers {
                held: legacy,
                expected: instances,
            }]))
        }
    };
    let cids = held_if_present(&cid_dir(conf), &cid_holder(conf, attachment))?;
    let cid = match cids.first() {
        Some(first) if cids.len() == instances => Some(*first),
        None if !conf.allocation.vsock_cid => None,
        _ => {
            return Err(Error::CheckFailed(vec![Drift::VsockCids {
                held: cids,
                expected: instances,
            }]))
        }
    };
    Ok(conf.request.settings(base, cid))
}

/// DEL and a failed ADD: release whatever the attachment holds, whatever the config says now.
pub fn release(conf: &NetConf, attachment: &Attachment) -> Result<()> {
    let legacy = legacy_dir(conf);
    if let Some(allocations) = lock_existing(&legacy)? {
        allocations
            .release(&legacy_holder(attachment))
            .map_err(|e| io_error(&legacy, e))?;
    }
    let cids = cid_dir(conf);
    if let Some(allocations) = lock_existing(&cids)? {
        allocations
            .release(&cid_holder(conf, attachment))
            .map_err(|e| io_error(&cids, e))?;
    }
    Ok(())
}

/// GC: release the CIDs, and the previous release's instance numbers, of this network's
/// attachments that are not in the valid list.
pub fn gc(conf: &NetConf) -> Result<()> {
    let Some(valid) = &conf.valid_attachments else {
        log::warn!("GC without cni.dev/valid-attachments: releasing nothing");
        return Ok(());
    };
    let legacy = legacy_dir(conf);
    if let Some(allocations) = lock_existing(&legacy)? {
        let released = allocations
            .retain(|h| valid.contains(&h.attachment))
            .map_err(|e| io_error(&legacy, e))?;
        log::info!(
            "GC: released {released} instance number(s) of baseInstance \"auto\" (an earlier release)"
        );
    }
    let cids = cid_dir(conf);
    if let Some(allocations) = lock_existing(&cids)? {
        let network = Some(&conf.name);
        let released = allocations
            .retain(|h| h.network.as_ref() != network || valid.contains(&h.attachment))
            .map_err(|e| io_error(&cids, e))?;
        log::info!(
            "GC: {} valid attachment(s); released {released} vsock CID(s)",
            valid.len()
        );
    }
    Ok(())
}

fn cid_dir(conf: &NetConf) -> PathBuf {
    conf.allocation.data_dir.join(CID_DIR)
}

fn cid_holder(conf: &NetConf, attachment: &Attachment) -> Holder {
    Holder {
        attachment: attachment.clone(),
        network: Some(conf.name.clone()),
    }
}

/// Where the previous release kept the instance numbers of `baseInstance: "auto"`.
fn legacy_dir(conf: &NetConf) -> PathBuf {
    conf.allocation.data_dir.join(&conf.name)
}

fn legacy_holder(attachment: &Attachment) -> Holder {
    Holder {
        attachment: attachment.clone(),
        network: None,
    }
}

/// What `holder` holds in `dir`, without creating the directory when it is not there.
fn held_if_present(dir: &Path, holder: &Holder) -> Result<Vec<u32>> {
    match lock_existing(dir)? {
        Some(allocations) => allocations.held_by(holder).map_err(|e| io_error(dir, e)),
        None => Ok(Vec::new()),
    }
}

fn lock(dir: &Path) -> Result<Allocations> {
    Allocations::lock(dir).map_err(|e| io_error(dir, e))
}

/// The allocations in `dir` when an allocator ever used it (its lock file exists); reading or
/// releasing never creates a directory.
fn lock_existing(dir: &Path) -> Result<Option<Allocations>> {
    if dir.join(LOCK_FILE).exists() {
        lock(dir).map(Some)
    } else {
        Ok(None)
    }
}

fn io_error(dir: &Path, e: std::io::Error) -> Error {
    Error::Io {
        what: format!("allocations in {}", dir.display()),
        source: e,
    }
}
