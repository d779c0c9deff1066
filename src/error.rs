//! The plugin's one error type. Every variant maps to a CNI error code, and every message names
//! the step and the object, so one line in a kubelet event is enough to act on.

use crate::agent::client;
use crate::check::Drift;
use crate::config::DecodeError;
use std::io;
use std::path::PathBuf;

/// Plugin-specific codes (the spec reserves 0–99 for itself).
pub const CODE_CONFLICT: u32 = 100;
pub const CODE_KERNEL: u32 = 101;
pub const CODE_CHECK_FAILED: u32 = 102;
pub const CODE_AGENT_REFUSED: u32 = 103;
/// libcni's code for an internal error.
pub const CODE_INTERNAL: u32 = 999;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    IncompatibleVersion(String),
    #[error("{var}: {reason}")]
    BadEnvironment { var: &'static str, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("decoding the network configuration: {0}")]
    Decode(#[from] DecodeError),
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
    #[error("CHECK found {} difference(s): {}", .0.len(), join(.0))]
    CheckFailed(Vec<Drift>),
    #[error("try again later: {0}")]
    TryAgainLater(String),
    #[error("try again later: {0}")]
    AgentUnavailable(#[from] client::CallError),
    #[error("the DHCP agent at {} refused the pod: {reason}", socket.display())]
    AgentRefused { socket: PathBuf, reason: String },
    #[error("plugin not available: {0}")]
    PluginNotAvailable(String),
    #[error("internal error: link {0} vanished right after it was created")]
    LinkVanished(String),
    #[error("internal error: the netns worker thread panicked")]
    WorkerPanicked,
    /// Steps that all run even after one fails (DEL, the rollback of ADD) and failed more than
    /// once. Built by `Error::all`, so never fewer than two.
    #[error("{} failures: {}", .0.len(), join(.0))]
    Several(Vec<Error>),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The CNI error code of this error (SPEC.md "Error" section and libcni's `types.go`).
    pub fn code(&self) -> u32 {
        match self {
            Error::IncompatibleVersion(_) => 1,
            Error::BadEnvironment { .. } => 4,
            Error::Io { .. } => 5,
            Error::Decode(_) => 6,
            Error::InvalidConfig { .. } => 7,
            Error::InvalidNetns { .. } => 8,
            Error::Conflict { .. } => CODE_CONFLICT,
            Error::Kernel { .. } => CODE_KERNEL,
            Error::CheckFailed(_) => CODE_CHECK_FAILED,
            Error::TryAgainLater(_) | Error::AgentUnavailable(_) => 11,
            Error::AgentRefused { .. } => CODE_AGENT_REFUSED,
            Error::PluginNotAvailable(_) => 50,
            Error::LinkVanished(_) | Error::WorkerPanicked => CODE_INTERNAL,
            Error::Several(errors) => errors.first().map_or(CODE_INTERNAL, Error::code),
        }
    }

    pub fn invalid(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// For `map_err`: an I/O error of the step or object `what` names.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    pub fn kernel(step: impl Into<String>, source: io::Error) -> Self {
        Error::Kernel {
            step: step.into(),
            source,
        }
    }

    /// The outcome of steps that all run even after one fails (DEL, the rollback of ADD):
    /// success when none failed, the failure when one did.
    pub fn all(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Several(errors)),
        }
    }

    /// True when the kernel said the object does not exist, which DEL treats as success.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kernel { source, .. }
            if matches!(source.raw_os_error(), Some(nix::libc::ENODEV | nix::libc::ENOENT)))
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(step: &str, errno: i32) -> Error {
        Error::kernel(step, io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn each_kind_of_error_has_its_cni_code() {
        let io = || io::Error::from_raw_os_error(nix::libc::EACCES);
        let cases = [
            (Error::IncompatibleVersion("0.2.0".into()), 1),
            (
                Error::BadEnvironment {
                    var: "CNI_COMMAND",
                    reason: "missing".into(),
                },
                4,
            ),
            (Error::io("reading stdin")(io()), 5),
            (Error::Decode(DecodeError::NotAnObject), 6),
            (Error::invalid("instances", 0, "must be at least 1"), 7),
            (
                Error::InvalidNetns {
                    path: "/x".into(),
                    reason: "does not exist".into(),
                },
                8,
            ),
            (
                Error::Conflict {
                    object: "link cvd-ebr".into(),
                    reason: "not ours".into(),
                },
                100,
            ),
            (kernel("creating link cvd-ebr", nix::libc::EEXIST), 101),
            (
                Error::CheckFailed(vec![Drift::LinkMissing {
                    link: "cvd-ebr".into(),
                }]),
                102,
            ),
            (Error::TryAgainLater("no free CIDs".into()), 11),
            (
                Error::AgentUnavailable(client::CallError::Unreachable {
                    socket: "/run/agent.sock".into(),
                    source: io(),
                }),
                11,
            ),
            (
                Error::AgentRefused {
                    socket: "/run/agent.sock".into(),
                    reason: "recording the registration: read-only".into(),
                },
                103,
            ),
            (Error::PluginNotAvailable("/dev/net/tun".into()), 50),
            (Error::LinkVanished("cvd-ebr".into()), 999),
            (Error::WorkerPanicked, 999),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn an_agent_refusal_names_the_agent_and_its_reason() {
        let refused = Error::AgentRefused {
            socket: "/run/cuttlefish-cni/agent.sock".into(),
            reason: "recording the registration: read-only".into(),
        };
        assert_eq!(
            refused.to_string(),
            "the DHCP agent at /run/cuttlefish-cni/agent.sock refused the pod: \
             recording the registration: read-only"
        );
    }

    #[test]
    fn no_failure_is_success_and_one_failure_is_itself() {
        assert!(Error::all(Vec::new()).is_ok());
        let one = Error::all(vec![kernel("deleting link cvd-ebr", nix::libc::EBUSY)]).unwrap_err();
        assert!(matches!(one, Error::Kernel { .. }), "{one:?}");
        assert_eq!(one.code(), CODE_KERNEL);
    }

    #[test]
    fn two_kernel_failures_report_the_kernel_code_not_internal_error() {
        let two = Error::all(vec![
            kernel("deleting link cvd-ebr", nix::libc::EBUSY),
            kernel("deleting nftables table ip cuttlefish_nat", nix::libc::EPERM),
        ])
        .unwrap_err();
        assert_eq!(two.code(), CODE_KERNEL, "{two}");
    }

    #[test]
    fn several_failures_have_the_code_of_the_first_and_name_every_one() {
        let errors = vec![
            kernel("deleting link cvd-ebr", nix::libc::EBUSY),
            Error::invalid("instances", 0, "must be at least 1"),
        ];
        let several = Error::all(errors).unwrap_err();
        assert_eq!(several.code(), CODE_KERNEL);
        assert_eq!(
            several.to_string(),
            "2 failures: deleting link cvd-ebr: Device or resource busy (os error 16); \
             instances = 0: must be at least 1"
        );
    }
}
