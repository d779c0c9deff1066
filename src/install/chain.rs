//! Chain mode on disk: which conflist is the primary, and adding our entry to it or taking it
//! out again.
//!
//! Why textual edits plus a version note, rather than a copy of the original file: removing
//! exactly the text that was inserted restores the original bytes, and keeps working after the
//! primary CNI rewrites the file, when a saved copy would be stale and restoring it would undo
//! the primary's own change. The one thing the edited text cannot tell is the `cniVersion` it
//! had before the upgrade; that is noted beside the conflist in a hidden file whose name runtimes
//! ignore (no `.conf`, `.conflist` or `.json` extension).

use super::conf_dir;
use super::conflist::{self, Entry};
use super::error::InstallError;
use super::guarded_edit::{self, Edit};
use super::plugin_versions;
use crate::atomic_file;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq)]
pub enum Chained {
    Added(VersionChange),
    AlreadyPresent,
}

#[derive(Debug, PartialEq)]
pub enum VersionChange {
    Upgraded {
        from: String,
    },
    /// Older than [`conflist::UPGRADED_VERSION`], kept because a plugin does not accept that: `reason`.
    Kept {
        version: String,
        reason: String,
    },
    None,
}

#[derive(Debug, PartialEq)]
pub enum Unchained {
    Removed { restored_version: Option<String> },
    NotPresent,
}

/// `<conf_dir>/<name>`, or by default the conflist the runtime uses ([`conf_dir`]).
pub fn primary_conflist(conf_dir: &Path, name: Option<&str>) -> Result<PathBuf, InstallError> {
    match name {
        Some(name) => Ok(conf_dir.join(name)),
        None => conf_dir::runtime_choice(conf_dir),
    }
}

/// The hidden file holding the `cniVersion` the conflist had before the upgrade.
pub fn version_note_path(conflist: &Path) -> PathBuf {
    let name = conflist.file_name().unwrap_or_default().to_string_lossy();
    conflist.with_file_name(format!(".{name}.cuttlefish-cni-version"))
}

/// Appends our entry, and upgrades `cniVersion` when every other plugin of the list, asked
/// through its binary in `bin_dir`, accepts [`conflist::UPGRADED_VERSION`]. Another program
/// rewriting the conflist meanwhile is no harm: see [`guarded_edit`].
pub fn add(conflist: &Path, entry: &Entry, bin_dir: &Path) -> Result<Chained, InstallError> {
    let as_conflist_error = |source| InstallError::Conflist {
        path: conflist.to_path_buf(),
        source,
    };
    let note = version_note_path(conflist);
    let note_before = read_note(&note)?;
    let mut note_written = false;
    let chained = guarded_edit::edit(conflist, |text| {
        let Some(mut text) = conflist::add_entry(text, entry).map_err(as_conflist_error)? else {
            return Ok(Edit::Keep(Chained::AlreadyPresent));
        };
        let mut change = VersionChange::None;
        if let Some(upgrade) = conflist::upgrade_version(&text).map_err(as_conflist_error)? {
            let others = conflist::other_plugin_types(&text).map_err(as_conflist_error)?;
            change = match plugin_versions::all_accept_upgrade(bin_dir, &others, &upgrade.from) {
                Ok(()) => {
                    text = upgrade.text;
                    VersionChange::Upgraded { from: upgrade.from }
                }
                Err(not_accepted) => VersionChange::Kept {
                    version: upgrade.from,
                    reason: not_accepted.to_string(),
                },
            };
        }
        // The note is written first: a crash in between leaves a note too many, never one too few.
        match &change {
            VersionChange::Upgraded { from } => atomic_file::write(&note, from.as_bytes(), 0o644)?,
            _ => {
                atomic_file::remove(&note)?;
            }
        }
        note_written = true;
        Ok(Edit::Write(text, Chained::Added(change)))
    });
    if note_written && !matches!(chained, Ok(Chained::Added(_))) {
        // An attempt that lost to another writer wrote it: the note must not outlive it.
        restore_note(&note, note_before.as_deref())?;
    }
    chained
}

pub fn remove(conflist: &Path) -> Result<Unchained, InstallError> {
    let as_conflist_error = |source| InstallError::Conflist {
        path: conflist.to_path_buf(),
        source,
    };
    let note = version_note_path(conflist);
    let unchained = guarded_edit::edit(conflist, |text| {
        let Some(mut text) = conflist::remove_entries(text).map_err(as_conflist_error)? else {
            // The primary rewrote the file since: its version is its own again.
            return Ok(Edit::Keep(Unchained::NotPresent));
        };
        let mut restored_version = None;
        if let Some(original) = read_note(&note)? {
            if let Some(restored) = conflist::restore_version(&text, &original).map_err(as_conflist_error)? {
                text = restored;
                restored_version = Some(original);
            }
        }
        Ok(Edit::Write(text, Unchained::Removed { restored_version }))
    })?;
    atomic_file::remove(&note)?;
    Ok(unchained)
}

fn restore_note(note: &Path, version: Option<&str>) -> Result<(), InstallError> {
    match version {
        Some(version) => atomic_file::write(note, version.as_bytes(), 0o644)?,
        None => drop(atomic_file::remove(note)?),
    }
    Ok(())
}

fn read_note(note: &Path) -> Result<Option<String>, InstallError> {
    match fs::read_to_string(note) {
        Ok(version) => Ok(Some(version)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InstallError::io("reading", note)(e)),
    }
}
