//! The plugin's one error type. Every variant maps to a CNI error code, and every message names
//! the step and the object, so one line in a kubelet event is enough to act on.

use crate::check::Drift;
use std::io;

/// Plugin-specific codes (the spec reserves 0–99 for itself).
pub const CODE_CONFLICT: u32 = 100;
pub const CODE_KERNEL: u32 = 101;
pub const CODE_CHECK_FAILED: u32 = 102;
/// libcni's code for an internal error.
pub const CODE_INTERNAL: u32 = 999;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    IncompatibleVersion(String),
    #[error("{var}: {reason}")]
    BadEnvironment { var: &'static str, reason: String },
    #[error("{0}")]
    Io(String),
    #[error("decoding the network configuration: {0}")]
    Decode(String),
    #[error("{field} = {value}: {reason}")]
    InvalidConfig {
        field: String,
        value: String,
        reason: String,
    },
    #[error("CNI_NETNS {path}: {reason}")]
    InvalidNetns { path: String, reason: String },
    #[error("{object}: {reason}")]
    Conflict { object: String, reason: String },
    #[error("{step}: {source}")]
    Kernel {
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("CHECK found {} difference(s): {}", .0.len(), joined(.0))]
    CheckFailed(Vec<Drift>),
    #[error("try again later: {0}")]
    TryAgainLater(String),
    #[error("plugin not available: {0}")]
    PluginNotAvailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The CNI error code of this error (SPEC.md "Error" section and libcni's `types.go`).
    pub fn code(&self) -> u32 {
        match self {
            Error::IncompatibleVersion(_) => 1,
            Error::BadEnvironment { .. } => 4,
            Error::Io(_) => 5,
            Error::Decode(_) => 6,
            Error::InvalidConfig { .. } => 7,
            Error::InvalidNetns { .. } => 8,
            Error::Conflict { .. } => CODE_CONFLICT,
            Error::Kernel { .. } => CODE_KERNEL,
            Error::CheckFailed(_) => CODE_CHECK_FAILED,
            Error::TryAgainLater(_) => 11,
            Error::PluginNotAvailable(_) => 50,
            Error::Internal(_) => CODE_INTERNAL,
        }
    }

    pub fn invalid(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub fn kernel(step: impl Into<String>, source: io::Error) -> Self {
        Error::Kernel {
            step: step.into(),
            source,
        }
    }

    /// True when the kernel said the object does not exist, which DEL treats as success.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kernel { source, .. }
            if matches!(source.raw_os_error(), Some(nix::libc::ENODEV | nix::libc::ENOENT)))
    }
}

fn joined(drifts: &[Drift]) -> String {
    drifts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
