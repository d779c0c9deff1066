//! The plugin binary in the host's CNI bin dir.

use super::conflist::PLUGIN_TYPE;
use super::error::InstallError;
use crate::atomic_file;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq)]
pub enum Copied {
    Yes,
    AlreadyIdentical,
}

pub fn installed_path(bin_dir: &Path) -> PathBuf {
    bin_dir.join(PLUGIN_TYPE)
}

/// Copies `source` to `<bin_dir>/cuttlefish-cni` unless the contents there are the same. The
/// rename keeps a runtime exec'ing the old binary from seeing a partial one (or ETXTBSY).
pub fn install(source: &Path, bin_dir: &Path) -> Result<Copied, InstallError> {
    let new = fs::read(source).map_err(InstallError::io("reading the plugin binary", source))?;
    let target = installed_path(bin_dir);
    match fs::read(&target) {
        Ok(current) if current == new => return Ok(Copied::AlreadyIdentical),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(InstallError::io("reading the installed binary", &target)(e)),
    }
    atomic_file::write(&target, &new, 0o755)?;
    Ok(Copied::Yes)
}

/// `false` when there was nothing to remove.
pub fn remove(bin_dir: &Path) -> Result<bool, InstallError> {
    Ok(atomic_file::remove(&installed_path(bin_dir))?)
}
