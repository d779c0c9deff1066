//! The kubelet device plugin of the agent (Device Plugin API v1beta1, gRPC over Unix sockets in
//! the kubelet's device-plugins directory). It advertises the node's vsock CIDs one device per
//! CID, and `/dev/kvm`, `/dev/net/tun` and `/dev/vhost-net` as shared devices, each resource on
//! a socket of its own. See README.md, "Device plugin".

pub mod api;
pub mod cids;
mod health;
mod kubelet;
pub mod resources;
mod service;

use cids::CidRange;
use resources::Resource;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_DIR: &str = "/var/lib/kubelet/device-plugins";
pub const DEFAULT_DEV_ROOT: &str = "/dev";
pub const DEFAULT_CID_RANGE: &str = "3-1026";
/// The kubelet's default `maxPods`: every pod on the node may hold each shared device.
pub const DEFAULT_SHARED_CAPACITY: u32 = 110;
/// How often the device nodes and the kubelet's socket are looked at: a change is seen within
/// this, well inside the 5 s the kubelet's side may wait.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Config {
    /// The kubelet's device-plugins directory: `kubelet.sock` and our sockets.
    pub dir: PathBuf,
    /// Where the host's device nodes are looked up, and the host path handed to the runtime.
    pub dev_root: PathBuf,
    pub cids: CidRange,
    pub shared_capacity: u32,
}

/// Why the device plugin stopped.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("a task panicked")]
    TaskPanicked,
    #[error("a task ended")]
    TaskEnded,
}

/// Serves every resource and watches the device nodes. The tasks never end on their own; when
/// one does (a panic included), everything stops and the error is returned, for the supervisor
/// to start it all again.
pub async fn run(config: Arc<Config>, resources: &[Arc<Resource>]) -> Result<(), Stopped> {
    let (monitor, health) = health::Monitor::new(&config.dev_root, resources);
    let mut tasks = tokio::task::JoinSet::new();
    for (resource, health) in resources.iter().zip(health) {
        tasks.spawn(kubelet::serve(config.clone(), resource.clone(), health));
    }
    tasks.spawn(monitor.run());
    let ended = tasks.join_next().await;
    tasks.shutdown().await;
    match ended {
        Some(Err(e)) if e.is_panic() => Err(Stopped::TaskPanicked),
        _ => Err(Stopped::TaskEnded),
    }
}
