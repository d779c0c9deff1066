//! Atomic file replacement: a temporary file in the same directory, fsync, rename, fsync of the
//! directory. A reader of the file, or a runtime exec'ing it, sees the old or the new contents,
//! never a mix, and a crash leaves one of the two.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failed step, naming the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{step} {}: {source}", path.display())]
pub struct Error {
    pub step: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Error {
    fn at(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error { step, path, source }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.source.kind(), e)
    }
}

/// Replaces (or creates) `path` with `contents` in `mode`, whatever the umask.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let temporary = temporary_path(path);
    let written = write_synced(&temporary, contents, mode)
        .and_then(|()| fs::rename(&temporary, path).map_err(Error::at("renaming over", path)));
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
    pub fn read(path: &Path) -> Result<Snapshot, Error> {
        let mut file = File::open(path).map_err(Error::at("reading", path))?;
        let mut bytes = Vec::new();
        let metadata = file
            .metadata()
            .and_then(|metadata| file.read_to_end(&mut bytes).map(|_| metadata))
            .map_err(Error::at("reading", path))?;
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
pub fn replace_unless_changed(path: &Path, before: &Snapshot, contents: &[u8]) -> Result<bool, Error> {
    let temporary = temporary_path(path);
    let replaced = write_synced(&temporary, contents, before.mode)
        .and_then(|()| Snapshot::read(path))
        .and_then(|now| {
            if now != *before {
                return Ok(false);
            }
            fs::rename(&temporary, path)
                .map(|()| true)
                .map_err(Error::at("renaming over", path))
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
pub fn remove(path: &Path) -> Result<bool, Error> {
    match fs::remove_file(path) {
        Ok(()) => sync_directory(path).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::at("removing", path)(e)),
    }
}

/// A hidden name ending in `.tmp`: no runtime loading a conf dir (`.conf`, `.conflist`,
/// `.json`), no agent loading its state (`.json`) and no allocation directory (numbers) takes
/// it for one of its files while it is half-written.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(Error::at("creating", path))?;
    // The mode given at creation is filtered through the umask; this one is not.
    file.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(Error::at("writing", path))
}

/// Makes a change of `path`'s directory entry durable.
pub fn sync_directory(path: &Path) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::at("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cfcni-atomic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_gives_the_file_its_mode_and_leaves_no_temporary_file() {
        let dir = temp_dir("write");
        let path = dir.join("f");
        write(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        write(&path, b"two", 0o755).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&dir), ["f"]);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_file_and_names_the_target() {
        let dir = temp_dir("fail");
        let path = dir.join("d");
        fs::create_dir_all(path.join("inside")).unwrap();
        let error = write(&path, b"x", 0o644).unwrap_err();
        assert_eq!(
            (error.step, error.path.as_path()),
            ("renaming over", path.as_path())
        );
        assert_eq!(names(&dir), ["d"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
