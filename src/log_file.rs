//! Opens `logFile` for appending without trusting what is at its path: the file itself is never
//! followed through a symlink and must be a regular file, and missing directories are created
//! only below one root (/var/log), one at a time, never through a symlink. The plugin runs as
//! root, so a path that led elsewhere would let whoever controls it append to any file.

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

/// The only directory under which missing log directories are created.
pub const CREATABLE_UNDER: &str = "/var/log";

#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The path breaks a rule above: the configuration is wrong.
    Refused(String),
    /// The file system refused (permissions, a read-only or full disk).
    Io(Errno),
}

/// `path` is absolute and ends in a file name without `.` or `..` components (the config checks
/// that); `creatable_under` is [`CREATABLE_UNDER`] except in tests.
pub fn open(path: &Path, creatable_under: &Path) -> Result<File, OpenError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(OpenError::Refused("does not name a file".into()));
    };
    let dir_fd = match open_dir(dir) {
        Err(Errno::ENOENT) => create_dirs(dir, creatable_under)?,
        other => other.map_err(OpenError::Io)?,
    };
    match stat::fstatat(&dir_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(found) => require_regular(&found)?,
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(OpenError::Io(e)),
    }
    // O_NOFOLLOW and the check after opening close the race with a swap after the fstatat;
    // O_NONBLOCK and O_NOCTTY keep a FIFO or a terminal swapped in from blocking or attaching.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match fcntl::openat(&dir_fd, name, flags, Mode::from_bits_truncate(0o644)) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err(OpenError::Refused(SYMLINK.into())),
        Err(Errno::ENXIO) => return Err(OpenError::Refused(NOT_REGULAR.into())),
        Err(e) => return Err(OpenError::Io(e)),
    };
    require_regular(&stat::fstat(&fd).map_err(OpenError::Io)?)?;
    Ok(File::from(fd))
}

const SYMLINK: &str = "is a symlink; the log file is never opened through one";
const NOT_REGULAR: &str = "is not a regular file";

fn require_regular(found: &FileStat) -> Result<(), OpenError> {
    match SFlag::from_bits_truncate(found.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => Ok(()),
        SFlag::S_IFLNK => Err(OpenError::Refused(SYMLINK.into())),
        _ => Err(OpenError::Refused(NOT_REGULAR.into())),
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd, Errno> {
    fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Creates the missing directories of `dir` below `root`, walking from `root` one component at
/// a time and refusing to pass through a symlink.
fn create_dirs(dir: &Path, root: &Path) -> Result<OwnedFd, OpenError> {
    let Ok(below) = dir.strip_prefix(root) else {
        return Err(OpenError::Refused(format!(
            "its directory {} does not exist, and directories are created only under {}",
            dir.display(),
            root.display()
        )));
    };
    let mut current = open_dir(root).map_err(OpenError::Io)?;
    let mut walked = root.to_path_buf();
    for component in below.components() {
        let Component::Normal(name) = component else {
            return Err(OpenError::Refused("has a . or .. component".into()));
        };
        walked.push(name);
        match stat::mkdirat(&current, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(OpenError::Io(e)),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        current = match fcntl::openat(&current, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(OpenError::Refused(format!(
                    "{} is a symlink or not a directory, and log directories are created only through real directories",
                    walked.display()
                )))
            }
            Err(e) => return Err(OpenError::Io(e)),
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A directory of this test under the system temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("cuttlefish-cni-log-file-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("root")).unwrap();
            Scratch(dir)
        }

        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn refused(result: Result<File, OpenError>) -> String {
        match result {
            Err(OpenError::Refused(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn appends_to_a_regular_file_and_creates_it() {
        let scratch = Scratch::new("regular");
        let path = scratch.root().join("cf.log");
        open(&path, &scratch.root()).unwrap().write_all(b"one\n").unwrap();
        open(&path, &scratch.root()).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    }

    #[test]
    fn a_symlink_is_refused_and_not_written_through() {
        let scratch = Scratch::new("symlink");
        let target = scratch.0.join("target");
        std::fs::write(&target, "").unwrap();
        let link = scratch.root().join("cf.log");
        symlink(&target, &link).unwrap();
        assert!(refused(open(&link, &scratch.root())).contains("symlink"));
        let dangling = scratch.root().join("dangling.log");
        symlink(scratch.0.join("nothing"), &dangling).unwrap();
        assert!(refused(open(&dangling, &scratch.root())).contains("symlink"));
        assert!(!scratch.0.join("nothing").exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused_without_blocking() {
        let scratch = Scratch::new("special");
        let fifo = scratch.root().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        for path in [fifo, scratch.root(), PathBuf::from("/dev/null")] {
            assert_eq!(
                refused(open(&path, &scratch.root())),
                NOT_REGULAR,
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn directories_are_created_only_under_the_root_and_never_through_a_symlink() {
        let scratch = Scratch::new("dirs");
        let nested = scratch.root().join("a/b/cf.log");
        open(&nested, &scratch.root()).unwrap();
        assert!(nested.is_file());

        let outside = scratch.0.join("elsewhere/cf.log");
        assert!(refused(open(&outside, &scratch.root())).contains("does not exist"));
        assert!(!scratch.0.join("elsewhere").exists());

        std::fs::create_dir(scratch.0.join("target")).unwrap();
        symlink(scratch.0.join("target"), scratch.root().join("link")).unwrap();
        let through = scratch.root().join("link/new/cf.log");
        assert!(refused(open(&through, &scratch.root())).contains("link is a symlink"));
        assert!(!scratch.0.join("target/new").exists());
        // An existing directory reached through a symlink is used as it is: nothing is created.
        let existing = scratch.root().join("link/cf.log");
        open(&existing, &scratch.root()).unwrap();
        assert!(scratch.0.join("target/cf.log").is_file());
    }
}
