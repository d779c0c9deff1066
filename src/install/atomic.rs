//! Atomic file replacement: a temporary file in the same directory, fsync, rename, fsync of the
//! directory. A runtime reading the file, or exec'ing it, sees the old or the new contents,
//! never a mix.

use super::error::InstallError;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), InstallError> {
    let temporary = temporary_path(path);
    let written = write_synced(&temporary, contents, mode)
        .and_then(|()| fs::rename(&temporary, path).map_err(InstallError::io("renaming over", path)));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_directory(path)
}

/// A file's bytes and permission bits, read through one descriptor.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl Snapshot {
    pub fn read(path: &Path) -> Result<Snapshot, InstallError> {
        let step = InstallError::io("reading", path);
        let mut file = File::open(path).map_err(InstallError::io("reading", path))?;
        let mut bytes = Vec::new();
        let metadata = file
            .metadata()
            .and_then(|metadata| file.read_to_end(&mut bytes).map(|_| metadata))
            .map_err(step)?;
        Ok(Snapshot {
            bytes,
            mode: metadata.permissions().mode() & 0o7777,
        })
    }
}

/// Replaces `path`, which held `before` when it was read, with `contents` in `before`'s mode,
/// unless it no longer holds `before`: `false` then, and `path` is left as it is. The check
/// comes after the new contents are written and synced, right before the rename, so a
/// concurrent writer's change is lost only if it lands in the moment between the two.
pub fn replace_unless_changed(path: &Path, before: &Snapshot, contents: &[u8]) -> Result<bool, InstallError> {
    let temporary = temporary_path(path);
    let replaced = write_synced(&temporary, contents, before.mode)
        .and_then(|()| Snapshot::read(path))
        .and_then(|now| {
            if now != *before {
                return Ok(false);
            }
            fs::rename(&temporary, path)
                .map(|()| true)
                .map_err(InstallError::io("renaming over", path))
        });
    if !matches!(replaced, Ok(true)) {
        let _ = fs::remove_file(&temporary);
    }
    if replaced? {
        sync_directory(path)?;
        return Ok(true);
    }
    Ok(false)
}

/// Removes `path`; `false` when it was not there.
pub fn remove(path: &Path) -> Result<bool, InstallError> {
    match fs::remove_file(path) {
        Ok(()) => sync_directory(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(InstallError::io("removing", path)(e)),
    }
}

/// A hidden name without a `.conf`, `.conflist` or `.json` extension: runtimes loading the
/// conf dir never pick it up half-written.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.cuttlefish-cni-install-{}", std::process::id()))
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<(), InstallError> {
    let step = InstallError::io("writing", path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(InstallError::io("creating", path))?;
    // The mode given at creation is filtered through the umask; this one is not.
    file.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(step)
}

/// Makes a change of `path`'s directory entry durable.
pub fn sync_directory(path: &Path) -> Result<(), InstallError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(InstallError::io("syncing directory", dir))
}
