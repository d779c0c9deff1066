//! Which instance numbers an attachment uses: the configured ones, or, with
//! `baseInstance: "auto"`, the ones allocated to it on the node (see `alloc`).

use crate::alloc::Allocations;
use crate::cni::Attachment;
use crate::config::{BaseInstance, NetConf, Settings};
use crate::error::{Error, Result};

/// ADD: the settings to build, allocating numbers when the base is "auto".
pub fn acquire(conf: &NetConf, attachment: &Attachment) -> Result<Settings> {
    let BaseInstance::Number(base) = conf.request.base else {
        let allocations = lock(conf)?;
        let range = conf.allocation.range;
        let allocated = allocations
            .allocate(attachment, conf.request.instances, range)
            .map_err(|e| io_error(conf, e))?;
        return match allocated {
            Ok(base) => {
                log::info!("allocated instances {base}..{}", base + conf.request.instances - 1);
                Ok(conf.request.settings(base))
            }
            Err(exhausted) => Err(Error::TryAgainLater(format!(
                "no {} contiguous free instance numbers in instanceRange [{}, {}]: {} are taken (holders: one file per number in {})",
                conf.request.instances,
                range.0,
                range.1,
                exhausted.taken,
                exhausted.dir.display()
            ))),
        };
    };
    Ok(conf.request.settings(base))
}

/// CHECK: the settings ADD built, from the allocation when the base is "auto".
pub fn current(conf: &NetConf, attachment: &Attachment) -> Result<Settings> {
    let BaseInstance::Number(base) = conf.request.base else {
        let held = lock(conf)?.held_by(attachment).map_err(|e| io_error(conf, e))?;
        return match held.first() {
            Some(base) if held.len() == conf.request.instances as usize => Ok(conf.request.settings(*base)),
            _ => Err(Error::CheckFailed(vec![format!(
                "the attachment holds instance numbers {held:?}, expected {} of them",
                conf.request.instances
            )])),
        };
    };
    Ok(conf.request.settings(base))
}

/// DEL and a failed ADD: release whatever the attachment holds, whatever the config says now.
pub fn release(conf: &NetConf, attachment: &Attachment) -> Result<()> {
    if !conf.allocation.data_dir.join(&conf.name).exists() {
        return Ok(());
    }
    lock(conf)?.release(attachment).map_err(|e| io_error(conf, e))
}

/// GC: release the numbers of attachments that are not in the valid list.
pub fn collect(conf: &NetConf) -> Result<()> {
    let Some(valid) = &conf.valid_attachments else {
        log::warn!("GC without cni.dev/valid-attachments: releasing nothing");
        return Ok(());
    };
    if !conf.allocation.data_dir.join(&conf.name).exists() {
        return Ok(());
    }
    let released = lock(conf)?.retain(valid).map_err(|e| io_error(conf, e))?;
    log::info!(
        "GC: {} valid attachment(s); released {released} instance number(s)",
        valid.len()
    );
    Ok(())
}

fn lock(conf: &NetConf) -> Result<Allocations> {
    Allocations::lock(&conf.allocation.data_dir, &conf.name).map_err(|e| io_error(conf, e))
}

fn io_error(conf: &NetConf, e: std::io::Error) -> Error {
    Error::Io(format!(
        "instance allocations in {}: {e}",
        conf.allocation.data_dir.join(&conf.name).display()
    ))
}
