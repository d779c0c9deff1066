//! Chain mode on disk: which conflist is the primary, and adding our entry to it or taking it
//! out again.
//!
//! Why textual edits plus a version note, rather than a copy of the original file: removing
//! exactly the text that was inserted restores the original bytes, and keeps working after the
//! primary CNI rewrites the file, when a saved copy would be stale and restoring it would undo
//! the primary's own change. The one thing the edited text cannot tell is the `cniVersion` it
//! had before the upgrade; that is noted beside the conflist in a hidden file whose name runtimes
//! ignore (no `.conf`, `.conflist` or `.json` extension).

use super::atomic;
use super::conflist::{self, Entry};
use super::error::InstallError;
use super::plugin_versions;
use std::fs;
use std::os::unix::fs::PermissionsExt;
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

/// `<conf_dir>/<name>`, or by default the first `*.conflist` in lexical order.
pub fn primary_conflist(conf_dir: &Path, name: Option<&str>) -> Result<PathBuf, InstallError> {
    if let Some(name) = name {
        return Ok(conf_dir.join(name));
    }
    let mut names: Vec<String> = fs::read_dir(conf_dir)
        .map_err(InstallError::io("listing", conf_dir))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".conflist") && !name.starts_with('.'))
        .collect();
    names.sort();
    names
        .first()
        .map(|name| conf_dir.join(name))
        .ok_or_else(|| InstallError::NoPrimaryConflist {
            dir: conf_dir.to_path_buf(),
        })
}

/// The hidden file holding the `cniVersion` the conflist had before the upgrade.
pub fn version_note_path(conflist: &Path) -> PathBuf {
    let name = conflist.file_name().unwrap_or_default().to_string_lossy();
    conflist.with_file_name(format!(".{name}.cuttlefish-cni-version"))
}

/// Appends our entry, and upgrades `cniVersion` when every other plugin of the list, asked
/// through its binary in `bin_dir`, accepts [`conflist::UPGRADED_VERSION`].
pub fn add(conflist: &Path, entry: &Entry, bin_dir: &Path) -> Result<Chained, InstallError> {
    let text = read(conflist)?;
    let as_conflist_error = |source| InstallError::Conflist {
        path: conflist.to_path_buf(),
        source,
    };
    let Some(mut text) = conflist::add_entry(&text, entry).map_err(as_conflist_error)? else {
        return Ok(Chained::AlreadyPresent);
    };
    let mut change = VersionChange::None;
    if let Some(upgrade) = conflist::upgrade_version(&text).map_err(as_conflist_error)? {
        let others = conflist::other_plugin_types(&text).map_err(as_conflist_error)?;
        change = match plugin_versions::all_accept_upgrade(bin_dir, &others, &upgrade.from) {
            Ok(()) => {
                text = upgrade.text;
                VersionChange::Upgraded { from: upgrade.from }
            }
            Err(reason) => VersionChange::Kept {
                version: upgrade.from,
                reason,
            },
        };
    }
    let note = version_note_path(conflist);
    // The note is written first: a crash in between leaves a note too many, never one too few.
    match &change {
        VersionChange::Upgraded { from } => atomic::write_atomically(&note, from.as_bytes(), 0o644)?,
        _ => {
            atomic::remove(&note)?;
        }
    }
    atomic::write_atomically(conflist, text.as_bytes(), mode_of(conflist)?)?;
    Ok(Chained::Added(change))
}

pub fn remove(conflist: &Path) -> Result<Unchained, InstallError> {
    let text = read(conflist)?;
    let as_conflist_error = |source| InstallError::Conflist {
        path: conflist.to_path_buf(),
        source,
    };
    let note = version_note_path(conflist);
    let Some(mut text) = conflist::remove_entries(&text).map_err(as_conflist_error)? else {
        // The primary rewrote the file since: its version is its own again.
        atomic::remove(&note)?;
        return Ok(Unchained::NotPresent);
    };
    let mut restored_version = None;
    if let Some(original) = read_note(&note)? {
        if let Some(restored) = conflist::restore_version(&text, &original).map_err(as_conflist_error)? {
            text = restored;
            restored_version = Some(original);
        }
    }
    atomic::write_atomically(conflist, text.as_bytes(), mode_of(conflist)?)?;
    atomic::remove(&note)?;
    Ok(Unchained::Removed { restored_version })
}

fn read(conflist: &Path) -> Result<String, InstallError> {
    fs::read_to_string(conflist).map_err(InstallError::io("reading", conflist))
}

fn read_note(note: &Path) -> Result<Option<String>, InstallError> {
    match fs::read_to_string(note) {
        Ok(version) => Ok(Some(version)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InstallError::io("reading", note)(e)),
    }
}

fn mode_of(path: &Path) -> Result<u32, InstallError> {
    let metadata = fs::metadata(path).map_err(InstallError::io("reading the mode of", path))?;
    Ok(metadata.permissions().mode() & 0o7777)
}
