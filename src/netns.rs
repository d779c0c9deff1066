//! Network namespaces: validate a path or a received descriptor, then run work inside it on a
//! dedicated thread.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread, and every socket, `/dev/net/tun` open
//! and `/proc/sys/net` file opened afterwards is bound to that namespace. So all kernel work for
//! a pod runs on a thread that enters the pod netns once and never goes back; the main thread
//! never leaves the namespace it started in.

use crate::error::Error;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::thread::JoinHandle;

/// `NS_GET_NSTYPE` from `linux/nsfs.h`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: nix::libc::c_ulong = 0xb703;

/// An open handle on a network namespace, validated to be one.
pub struct Netns {
    file: File,
    path: String,
}

/// Which namespace a handle or a path is: its nsfs device and inode, as `stat` shows them.
/// Two handles with the same identity are the same namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsId {
    pub dev: u64,
    pub ino: u64,
}

impl NetnsId {
    /// What `path` names now (through bind mounts and `/proc/*/ns/net` links), without opening
    /// it.
    pub fn of_path(path: &str) -> std::io::Result<NetnsId> {
        let meta = std::fs::metadata(path)?;
        Ok(NetnsId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// Why a netns path could not be used.
#[derive(Debug)]
pub enum OpenError {
    /// The path does not exist, or is no longer a namespace (a netns file whose bind mount is
    /// gone reads as an empty regular file): for DEL, the pod is already gone.
    Gone(Error),
    /// Anything else: the path is not something we may act on.
    Invalid(Error),
}

impl OpenError {
    pub fn into_error(self) -> Error {
        match self {
            OpenError::Gone(e) | OpenError::Invalid(e) => e,
        }
    }
}

impl Netns {
    pub fn open(path: &str) -> Result<Netns, OpenError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OpenError::Gone(invalid(path, "does not exist".into())),
            _ => OpenError::Invalid(invalid(path, format!("cannot be opened: {e}"))),
        })?;
        Netns::checked(file, path)
    }

    /// A descriptor that came from another process (the plugin's register request), checked as
    /// `open` checks a path; `label` names it in errors.
    pub fn from_fd(fd: OwnedFd, label: &str) -> Result<Netns, Error> {
        Netns::checked(File::from(fd), label).map_err(OpenError::into_error)
    }

    fn checked(file: File, path: &str) -> Result<Netns, OpenError> {
        let fs = fstatfs(&file).map_err(|e| OpenError::Invalid(invalid(path, format!("statfs: {e}"))))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(OpenError::Gone(invalid(
                path,
                "is not a namespace (not on nsfs)".into(),
            )));
        }
        // SAFETY: NS_GET_NSTYPE takes no argument and only returns the namespace type of a
        // valid nsfs file descriptor, which `file` is for the duration of the call.
        let ns_type = unsafe { nix::libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if ns_type != CloneFlags::CLONE_NEWNET.bits() {
            return Err(OpenError::Invalid(invalid(
                path,
                "is a namespace, but not a network namespace".into(),
            )));
        }
        Ok(Netns {
            file,
            path: path.to_string(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn id(&self) -> Result<NetnsId, Error> {
        let stat = fstat(&self.file)
            .map_err(std::io::Error::from)
            .map_err(Error::io(format!("fstat on the netns {}", self.path)))?;
        Ok(NetnsId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }

    /// True when this is the namespace the process runs in (its main thread's), i.e. for the
    /// plugin the node's: a chained plugin must never build anything there.
    pub fn is_own(&self) -> Result<bool, Error> {
        let own = NetnsId::of_path("/proc/self/ns/net").map_err(Error::io("/proc/self/ns/net"))?;
        Ok(self.id()? == own)
    }

    /// Moves the calling thread into this namespace, for good.
    fn enter(&self) -> Result<(), Error> {
        setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::InvalidNetns {
            path: self.path.clone(),
            reason: format!("setns: {e}"),
        })
    }

    /// Runs `work` on a new thread that has entered this namespace, and returns its result.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> Result<T, Error> + Send) -> Result<T, Error> {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                self.enter()?;
                work()
            });
            handle.join().unwrap_or(Err(Error::WorkerPanicked))
        })
    }

    /// Starts a long-lived thread (a server) that enters this namespace, closes its handle on
    /// it, and runs `work`. The thread alone then holds the namespace, until it ends.
    pub fn spawn<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<Result<T, Error>>, Error> {
        let netns = Netns {
            file: self
                .file
                .try_clone()
                .map_err(Error::io(format!("duplicating the netns {}", self.path)))?,
            path: self.path.clone(),
        };
        std::thread::Builder::new()
            .spawn(move || {
                netns.enter()?;
                drop(netns);
                Ok(work())
            })
            .map_err(Error::io(format!(
                "starting a thread for the netns {}",
                self.path
            )))
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn invalid(path: &str, reason: String) -> Error {
    Error::InvalidNetns {
        path: path.to_string(),
        reason,
    }
}
