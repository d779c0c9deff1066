//! Read, modify, write of a file that another program writes too (the primary CNI rewrites its
//! conflist whenever it likes): the file is re-read right before the rename, and when it has
//! changed the edit starts over from the new contents, so the other program's change is kept.

use super::error::InstallError;
use crate::atomic_file::{self, Snapshot};
use std::path::Path;

/// Attempts before giving up on a file that changes under every one of them.
pub const ATTEMPTS: usize = 5;

/// What an edit makes of the text it was given.
pub enum Edit<T> {
    /// Nothing to write.
    Keep(T),
    /// Write this text, then the edit's outcome is `T`.
    Write(String, T),
}

/// Runs `edit` on the contents of `path` and writes its result back atomically, in the file's
/// mode, unless the file changed meanwhile; then again, up to [`ATTEMPTS`] times. `edit` may
/// take its time (it may run other programs): each call gets the contents as they are then.
pub fn edit<T>(
    path: &Path,
    mut edit: impl FnMut(&str) -> Result<Edit<T>, InstallError>,
) -> Result<T, InstallError> {
    for _ in 0..ATTEMPTS {
        let before = Snapshot::read(path)?;
        let text = std::str::from_utf8(&before.bytes).map_err(|e| {
            InstallError::io("reading", path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        match edit(text)? {
            Edit::Keep(outcome) => return Ok(outcome),
            Edit::Write(text, outcome) => {
                if atomic_file::replace_unless_changed(path, &before, text.as_bytes())? {
                    return Ok(outcome);
                }
                log::info!(
                    "{} changed while being edited; editing its new contents",
                    path.display()
                );
            }
        }
    }
    Err(InstallError::KeptChanging {
        path: path.to_path_buf(),
        attempts: ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("guarded-edit-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }

        fn listing(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_change_made_during_the_edit_is_edited_too() {
        let dir = TempDir::new("retry");
        let path = dir.0.join("list");
        fs::write(&path, "a").unwrap();
        let mut seen = Vec::new();
        let outcome = edit(&path, |text| {
            seen.push(text.to_string());
            if seen.len() == 1 {
                // The other writer, by rename, after this edit read the file.
                fs::write(dir.0.join("staged"), "b").unwrap();
                fs::rename(dir.0.join("staged"), &path).unwrap();
            }
            Ok(Edit::Write(format!("{text}+ours"), seen.len()))
        })
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(outcome, 2);
        assert_eq!(fs::read_to_string(&path).unwrap(), "b+ours");
        assert_eq!(dir.listing(), ["list"]);
    }

    #[test]
    fn a_change_of_mode_alone_counts_and_the_new_mode_is_kept() {
        let dir = TempDir::new("mode");
        let path = dir.0.join("list");
        fs::write(&path, "a").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut calls = 0;
        edit(&path, |text| {
            calls += 1;
            if calls == 1 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
            Ok(Edit::Write(format!("{text}+ours"), ()))
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn a_file_that_changes_every_time_is_given_up_and_left_to_its_writer() {
        let dir = TempDir::new("give-up");
        let path = dir.0.join("list");
        fs::write(&path, "0").unwrap();
        let mut calls = 0;
        let error = edit(&path, |text| {
            calls += 1;
            fs::write(&path, calls.to_string()).unwrap();
            Ok(Edit::Write(format!("{text}+ours"), ()))
        })
        .unwrap_err();
        assert!(
            matches!(
                error,
                InstallError::KeptChanging {
                    attempts: ATTEMPTS,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(calls, ATTEMPTS);
        assert_eq!(fs::read_to_string(&path).unwrap(), ATTEMPTS.to_string());
        assert_eq!(dir.listing(), ["list"]);
    }

    #[test]
    fn keep_writes_nothing() {
        let dir = TempDir::new("keep");
        let path = dir.0.join("list");
        fs::write(&path, "a").unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(edit(&path, |_| Ok(Edit::Keep(7))).unwrap(), 7);
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    }
}
