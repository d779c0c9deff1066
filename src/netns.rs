//! Network namespaces: validate a path, then run work inside it on a dedicated thread.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread, and every socket, `/dev/net/tun` open
//! and `/proc/sys/net` file opened afterwards is bound to that namespace. So all kernel work for
//! a pod runs on a fresh thread that enters the pod netns once and then ends; the main thread
//! never leaves the runtime's namespace, and no thread goes back to it.

use crate::error::Error;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};
use std::fs::File;
use std::os::fd::AsRawFd;

/// `NS_GET_NSTYPE` from `linux/nsfs.h`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: nix::libc::c_ulong = 0xb703;

/// An open handle on a network namespace, validated to be one.
pub struct Netns {
    file: File,
    path: String,
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
        let invalid = |reason: String| Error::InvalidNetns {
            path: path.to_string(),
            reason,
        };
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OpenError::Gone(invalid("does not exist".into())),
            _ => OpenError::Invalid(invalid(format!("cannot be opened: {e}"))),
        })?;
        let fs = fstatfs(&file).map_err(|e| OpenError::Invalid(invalid(format!("statfs: {e}"))))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(OpenError::Gone(invalid(
                "is not a namespace (not on nsfs)".into(),
            )));
        }
        // SAFETY: NS_GET_NSTYPE takes no argument and only returns the namespace type of a
        // valid nsfs file descriptor, which `file` is for the duration of the call.
        let ns_type = unsafe { nix::libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if ns_type != CloneFlags::CLONE_NEWNET.bits() {
            return Err(OpenError::Invalid(invalid(
                "is a namespace, but not a network namespace".into(),
            )));
        }
        Ok(Netns {
            file,
            path: path.to_string(),
        })
    }

    /// True when this is the namespace the plugin itself runs in, i.e. the node's: a chained
    /// plugin must never build anything there.
    pub fn is_own(&self) -> Result<bool, Error> {
        let own =
            File::open("/proc/self/ns/net").map_err(|e| Error::Io(format!("/proc/self/ns/net: {e}")))?;
        let (a, b) = (fstat(&self.file), fstat(&own));
        match (a, b) {
            (Ok(a), Ok(b)) => Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino),
            (Err(e), _) | (_, Err(e)) => Err(Error::Io(format!("fstat on a netns: {e}"))),
        }
    }

    /// Runs `work` on a new thread that has entered this namespace, and returns its result.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> Result<T, Error> + Send) -> Result<T, Error> {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::InvalidNetns {
                    path: self.path.clone(),
                    reason: format!("setns: {e}"),
                })?;
                work()
            });
            handle
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the netns worker thread panicked".into())))
        })
    }
}
