//! What the plugin and the agent say to each other over the agent's Unix socket: one JSON
//! request per connection, one JSON response, each on one line. A register request carries the
//! pod's netns as an open descriptor (SCM_RIGHTS) with its line; `netns` is only its path.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A pod whose bridges need DHCP. The agent serves the netns whose descriptor comes with the
/// request, and `netns` must name that same namespace: the agent watches the path to notice
/// the pod is gone, and reopens it after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub bridges: Vec<BridgeSpec>,
    pub dns: Vec<Ipv4Addr>,
}

/// A bridge to serve: its name and gateway (`.1` of its /24; the pool is `.2`–`.254`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeSpec {
    pub name: String,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub container_id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Register(Registration),
    Unregister {
        network: String,
        attachment: AttachmentRef,
    },
    /// Drop this network's registrations whose attachment is not in `valid`.
    Gc {
        network: String,
        valid: Vec<AttachmentRef>,
    },
    Status,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// Counters an operator reads with `cuttlefish-cni-agent status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pods_served: usize,
    pub leases_active: usize,
    pub leases_given: u64,
    pub errors: u64,
    /// Connections refused because the peer's uid is not allowed (SO_PEERCRED).
    #[serde(default)]
    pub peers_refused: u64,
    /// Guest datagrams dropped unread by the per-bridge rate limit.
    #[serde(default)]
    pub rate_limited: u64,
    pub pods: Vec<PodStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodStatus {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub leases_active: usize,
    #[serde(default)]
    pub rate_limited: u64,
}
