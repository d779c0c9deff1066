//! One resource's DevicePlugin service, as the kubelet calls it on our socket.

use super::api::device_plugin_server::DevicePlugin;
use super::api::{
    AllocateRequest, AllocateResponse, DevicePluginOptions, Empty, ListAndWatchResponse,
    PreStartContainerRequest, PreStartContainerResponse, PreferredAllocationRequest,
    PreferredAllocationResponse,
};
use super::resources::{AllocateError, Resource};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub struct Plugin {
    pub resource: Arc<Resource>,
    pub dev_root: PathBuf,
    pub health: watch::Receiver<bool>,
    /// Turns true (or closes) when this registration ends: open ListAndWatch streams end too.
    pub stop: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl DevicePlugin for Plugin {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(self.resource.options()))
    }

    type ListAndWatchStream = ReceiverStream<Result<ListAndWatchResponse, Status>>;

    /// The device list now, and again whenever the health of the host node changes.
    async fn list_and_watch(&self, _: Request<Empty>) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let (sender, receiver) = mpsc::channel(1);
        let resource = self.resource.clone();
        let mut health = self.health.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            while !*stop.borrow_and_update() {
                let healthy = *health.borrow_and_update();
                let list = ListAndWatchResponse {
                    devices: resource.devices(healthy),
                };
                tokio::select! {
                    sent = sender.send(Ok(list)) => if sent.is_err() { return },
                    _ = stop.changed() => return,
                }
                tokio::select! {
                    changed = health.changed() => if changed.is_err() { return },
                    _ = stop.changed() => return,
                    () = sender.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn get_preferred_allocation(
        &self,
        request: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        let container_responses = request
            .get_ref()
            .container_requests
            .iter()
            .map(|r| self.resource.preferred(r))
            .collect();
        Ok(Response::new(PreferredAllocationResponse { container_responses }))
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let metrics = &self.resource.metrics;
        metrics.allocate_calls.fetch_add(1, Ordering::Relaxed);
        let answer: Result<Vec<_>, AllocateError> = request
            .get_ref()
            .container_requests
            .iter()
            .map(|r| self.resource.allocate(&self.dev_root, r))
            .collect();
        match answer {
            Ok(container_responses) => {
                for response in &container_responses {
                    if let Some(cids) = response.envs.get("VSOCK_CIDS") {
                        log::info!("{}: allocated CIDs {cids}", self.resource.name);
                    }
                }
                Ok(Response::new(AllocateResponse { container_responses }))
            }
            Err(e) => {
                metrics.allocate_failures.fetch_add(1, Ordering::Relaxed);
                log::warn!("{}: Allocate refused: {e}", self.resource.name);
                Err(Status::invalid_argument(e.to_string()))
            }
        }
    }

    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}
