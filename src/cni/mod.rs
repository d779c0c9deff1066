//! The CNI protocol: environment and stdin in, a typed command out; results and errors back to
//! stdout. Nothing here touches the kernel.

mod env;
mod version;

pub use env::{ifname_problem, is_valid_name, parse_cni_args, Attachment, Command, Invocation, NAME_PATTERN};
pub use version::{Version, SUPPORTED_VERSIONS};

use crate::error::Error;
use serde_json::{json, Value};

/// The error JSON the spec defines, printed on stdout by `main`.
pub fn error_json(version: &str, err: &Error) -> Value {
    json!({
        "cniVersion": version,
        "code": err.code(),
        "msg": err.to_string(),
    })
}

/// The answer to VERSION.
pub fn version_json(version: &str) -> Value {
    json!({
        "cniVersion": version,
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}
