//! Atomic file replacement: a temporary file in the same directory, fsync, rename, fsync of the
//! directory. A runtime reading the file, or exec'ing it, sees the old or the new contents,
//! never a mix.

use super::error::InstallError;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
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

fn sync_directory(path: &Path) -> Result<(), InstallError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(InstallError::io("syncing directory", dir))
}
