//! Node installation (`cuttlefish-cni-install`): copies the plugin binary into the host's CNI bin
//! dir and the CVD pods' seccomp profile into the kubelet's seccomp dir and, in chain mode,
//! appends the plugin to the node's primary conflist; uninstall undoes all three, leaving the
//! conflist byte-identical to what it was before.

pub mod binary;
pub mod chain;
mod conf_dir;
pub mod conflist;
mod error;
mod guarded_edit;
mod json_span;
pub mod options;
mod plugin_versions;
mod reconcile;
pub mod seccomp;

pub use error::InstallError;
pub use options::{parse, Command, Mode, Options, USAGE};
pub use reconcile::{run_once, watch};
