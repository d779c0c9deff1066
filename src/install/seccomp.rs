//! The CVD pods' seccomp profile in the kubelet's seccomp directory, where a pod names it as
//! `localhostProfile: cuttlefish/cvd.json`. The profile is built into the installer from
//! `install/seccomp/cuttlefish-cvd.json`, the one copy in the repository, so an image cannot
//! ship an installer and a profile that disagree.
//!
//! Every pass writes it, atomically, when the file on the node differs, so an edit on the node
//! is undone and an upgraded image brings its profile. Uninstall removes it, and its directory
//! too when the installer created that directory (a marker inside records it) and nothing else
//! is left in it.

use super::error::InstallError;
use crate::atomic_file;
use std::fs;
use std::path::Path;

pub const PROFILE: &str = include_str!("../../install/seccomp/cuttlefish-cvd.json");
/// Hidden: the kubelet only opens the profiles pods name.
const CREATED_MARKER: &str = ".created-by-cuttlefish-cni-install";

#[derive(Debug, PartialEq)]
pub enum Written {
    Yes,
    AlreadyCurrent,
}

pub fn install(path: &Path) -> Result<Written, InstallError> {
    create_directory(directory(path))?;
    match fs::read(path) {
        Ok(current) if current == PROFILE.as_bytes() => return Ok(Written::AlreadyCurrent),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(InstallError::io("reading the installed seccomp profile", path)(e)),
    }
    atomic_file::write(path, PROFILE.as_bytes(), 0o644)?;
    Ok(Written::Yes)
}

/// `false` when there was no profile to remove.
pub fn remove(path: &Path) -> Result<bool, InstallError> {
    let removed = atomic_file::remove(path)?;
    let dir = directory(path);
    let marker = dir.join(CREATED_MARKER);
    if marker.exists() && holds_only_the_marker(dir)? {
        atomic_file::remove(&marker)?;
        match fs::remove_dir(dir) {
            Ok(()) => atomic_file::sync_directory(dir)?,
            // Something arrived meanwhile: it is no longer ours alone to remove.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {}
            Err(e) => return Err(InstallError::io("removing", dir)(e)),
        }
    }
    Ok(removed)
}

fn directory(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

/// Creates `dir`, but not its parent: a missing parent is the kubelet's seccomp directory not
/// mounted, which creating it in the container would hide.
fn create_directory(dir: &Path) -> Result<(), InstallError> {
    match fs::create_dir(dir) {
        Ok(()) => {
            atomic_file::write(&dir.join(CREATED_MARKER), b"", 0o644)?;
            Ok(atomic_file::sync_directory(dir)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(InstallError::io("creating the seccomp profile's directory", dir)(
            e,
        )),
    }
}

fn holds_only_the_marker(dir: &Path) -> Result<bool, InstallError> {
    let listing_error = InstallError::io("listing", dir);
    let mut entries = fs::read_dir(dir).map_err(listing_error)?;
    Ok(entries.all(|entry| entry.is_ok_and(|entry| entry.file_name() == CREATED_MARKER)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profile_is_a_json_object() {
        let profile: serde_json::Value = serde_json::from_str(PROFILE).unwrap();
        assert!(profile.is_object());
    }
}
