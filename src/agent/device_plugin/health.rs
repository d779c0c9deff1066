//! The health of each resource: its host device node exists under the dev root as a character
//! device. Polled, because a dev root may be any directory (tests use their own nodes) where
//! devtmpfs events do not reach.

use super::resources::Resource;
use super::POLL;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;

pub struct Monitor {
    watched: Vec<(Arc<Resource>, PathBuf, watch::Sender<bool>)>,
}

fn present(node: &Path) -> bool {
    std::fs::metadata(node).is_ok_and(|m| m.file_type().is_char_device())
}

impl Monitor {
    /// The monitor and, per resource in the same order, the receiver of its health.
    pub fn new(dev_root: &Path, resources: &[Arc<Resource>]) -> (Monitor, Vec<watch::Receiver<bool>>) {
        let mut watched = Vec::new();
        let mut receivers = Vec::new();
        for resource in resources {
            let node = resource.host_node(dev_root);
            let healthy = present(&node);
            if !healthy {
                log::warn!(
                    "{}: {} is missing: devices unhealthy",
                    resource.name,
                    node.display()
                );
            }
            resource
                .metrics
                .devices
                .store(resource.device_count().into(), Ordering::Relaxed);
            record(resource, healthy);
            let (sender, receiver) = watch::channel(healthy);
            watched.push((resource.clone(), node, sender));
            receivers.push(receiver);
        }
        (Monitor { watched }, receivers)
    }

    pub async fn run(self) {
        let mut ticks = tokio::time::interval(POLL);
        loop {
            ticks.tick().await;
            for (resource, node, sender) in &self.watched {
                let healthy = present(node);
                sender.send_if_modified(|current| {
                    if *current == healthy {
                        return false;
                    }
                    let now = if healthy {
                        "appeared: healthy"
                    } else {
                        "is gone: unhealthy"
                    };
                    log::info!("{}: {} {now}", resource.name, node.display());
                    *current = healthy;
                    record(resource, healthy);
                    true
                });
            }
        }
    }
}

fn record(resource: &Resource, healthy: bool) {
    let count = if healthy { resource.device_count() } else { 0 };
    resource
        .metrics
        .healthy_devices
        .store(count.into(), Ordering::Relaxed);
}
