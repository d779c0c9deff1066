//! The four resources the agent advertises, and what Allocate hands out for each: every vsock
//! CID of the range as a device of its own, and the host device nodes a CVD needs as shared
//! devices (many pods may hold one at once).

use super::api::{
    ContainerAllocateRequest, ContainerAllocateResponse, ContainerPreferredAllocationRequest,
    ContainerPreferredAllocationResponse, Device, DevicePluginOptions, DeviceSpec, HEALTHY, UNHEALTHY,
};
use super::cids::{self, CidRange};
use crate::agent::metrics::ResourceMetrics;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const VSOCK_CID: &str = "cuttlefish.dev/vsock-cid";
/// At most this many holders of a shared device: a node runs a few hundred pods at most.
pub const MAX_SHARED_CAPACITY: u32 = 10_000;

/// Why Allocate refuses a container's devices; each names the resource and the ID, escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    #[error("no {0} device requested")]
    NoDevice(&'static str),
    #[error("unknown {resource} device ID \"{}\" (valid: {valid})", id.escape_debug())]
    UnknownId {
        resource: &'static str,
        id: String,
        valid: String,
    },
    #[error("{resource} device ID \"{}\" requested twice", id.escape_debug())]
    RequestedTwice { resource: &'static str, id: String },
}

#[derive(Debug)]
pub enum Kind {
    /// One device per CID, ID = the CID in decimal.
    VsockCid(CidRange),
    /// `capacity` interchangeable devices `<prefix>-0` … `<prefix>-(capacity-1)`.
    Shared { prefix: &'static str, capacity: u32 },
}

#[derive(Debug)]
pub struct Resource {
    /// The extended resource name pods request.
    pub name: &'static str,
    /// The plugin's socket, in the device-plugins directory.
    pub socket: &'static str,
    /// The host device node, relative to the dev root; the container sees it at `/dev/<node>`.
    pub node: &'static str,
    pub kind: Kind,
    pub metrics: Arc<ResourceMetrics>,
}

/// The resources: vsock CIDs out of `cids`, and `shared_capacity` holders of each shared node.
pub fn all(cids: CidRange, shared_capacity: u32) -> Vec<Arc<Resource>> {
    let shared = |name, socket, node, prefix| Resource {
        name,
        socket,
        node,
        kind: Kind::Shared {
            prefix,
            capacity: shared_capacity,
        },
        metrics: Arc::new(ResourceMetrics::new(name)),
    };
    vec![
        Resource {
            name: VSOCK_CID,
            socket: "cuttlefish-vsock-cid.sock",
            node: "vhost-vsock",
            kind: Kind::VsockCid(cids),
            metrics: Arc::new(ResourceMetrics::new(VSOCK_CID)),
        },
        shared("cuttlefish.dev/kvm", "cuttlefish-kvm.sock", "kvm", "kvm"),
        shared("cuttlefish.dev/tun", "cuttlefish-tun.sock", "net/tun", "tun"),
        shared(
            "cuttlefish.dev/vhost-net",
            "cuttlefish-vhost-net.sock",
            "vhost-net",
            "vhost-net",
        ),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

impl Resource {
    pub fn options(&self) -> DevicePluginOptions {
        DevicePluginOptions {
            pre_start_required: false,
            get_preferred_allocation_available: matches!(self.kind, Kind::VsockCid(_)),
        }
    }

    pub fn host_node(&self, dev_root: &Path) -> PathBuf {
        dev_root.join(self.node)
    }

    pub fn device_count(&self) -> u32 {
        match &self.kind {
            Kind::VsockCid(range) => range.count(),
            Kind::Shared { capacity, .. } => *capacity,
        }
    }

    /// The device list of ListAndWatch; all devices share the health of the host node.
    pub fn devices(&self, healthy: bool) -> Vec<Device> {
        let health = if healthy { HEALTHY } else { UNHEALTHY };
        let device = |id: String| Device {
            id,
            health: health.into(),
            topology: None,
        };
        match &self.kind {
            Kind::VsockCid(range) => range.iter().map(|cid| device(cid.to_string())).collect(),
            Kind::Shared { prefix, capacity } => {
                (0..*capacity).map(|i| device(format!("{prefix}-{i}"))).collect()
            }
        }
    }

    /// The kubelet's choice is final for shared devices, which are all alike; for CIDs, a block.
    pub fn preferred(
        &self,
        request: &ContainerPreferredAllocationRequest,
    ) -> ContainerPreferredAllocationResponse {
        let size = usize::try_from(request.allocation_size).unwrap_or(0);
        let device_ids = match &self.kind {
            Kind::VsockCid(range) => {
                let parse =
                    |ids: &[String]| -> Vec<u32> { ids.iter().filter_map(|id| range.parse_id(id)).collect() };
                cids::preferred(
                    &parse(&request.available_device_ids),
                    &parse(&request.must_include_device_ids),
                    size,
                )
                .into_iter()
                .map(|cid| cid.to_string())
                .collect()
            }
            Kind::Shared { .. } => {
                let mut ids = request.must_include_device_ids.clone();
                for id in &request.available_device_ids {
                    if ids.len() >= size {
                        break;
                    }
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
                ids
            }
        };
        ContainerPreferredAllocationResponse { device_ids }
    }

    /// What one container gets for the devices the kubelet allocated to it. Unknown or repeated
    /// device IDs are refused: the kubelet only ever sends IDs we advertised.
    pub fn allocate(
        &self,
        dev_root: &Path,
        request: &ContainerAllocateRequest,
    ) -> Result<ContainerAllocateResponse, AllocateError> {
        if request.devices_ids.is_empty() {
            return Err(AllocateError::NoDevice(self.name));
        }
        let mut envs = HashMap::new();
        match &self.kind {
            Kind::VsockCid(range) => {
                let cids = distinct(
                    &request.devices_ids,
                    |id| range.parse_id(id),
                    || format!("CIDs {}-{}", range.first, range.last),
                    self.name,
                )?;
                let list: Vec<String> = cids.iter().map(u32::to_string).collect();
                envs.insert("VSOCK_CID".into(), list[0].clone());
                envs.insert("VSOCK_CIDS".into(), list.join(","));
            }
            Kind::Shared { prefix, capacity } => {
                let parse = |id: &str| {
                    id.strip_prefix(prefix)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .and_then(cids::parse_decimal)
                        .filter(|n| n < capacity)
                };
                distinct(
                    &request.devices_ids,
                    parse,
                    || format!("{prefix}-0 to {prefix}-{}", capacity - 1),
                    self.name,
                )?;
            }
        }
        Ok(ContainerAllocateResponse {
            envs,
            devices: vec![DeviceSpec {
                container_path: format!("/dev/{}", self.node),
                host_path: self.host_node(dev_root).to_string_lossy().into_owned(),
                permissions: "rw".into(),
            }],
            ..Default::default()
        })
    }
}

/// Parses every ID; an unknown or repeated one is an error naming it and what is valid.
fn distinct(
    ids: &[String],
    parse: impl Fn(&str) -> Option<u32>,
    valid: impl Fn() -> String,
    resource: &'static str,
) -> Result<BTreeSet<u32>, AllocateError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        let value = parse(id).ok_or_else(|| AllocateError::UnknownId {
            resource,
            id: id.clone(),
            valid: valid(),
        })?;
        if !seen.insert(value) {
            return Err(AllocateError::RequestedTwice {
                resource,
                id: id.clone(),
            });
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Vec<Arc<Resource>> {
        all("10-19".parse().unwrap(), 3)
    }

    fn allocate(resource: &Resource, ids: &[&str]) -> Result<ContainerAllocateResponse, AllocateError> {
        let request = ContainerAllocateRequest {
            devices_ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        resource.allocate(Path::new("/test/dev"), &request)
    }

    #[test]
    fn every_cid_of_the_range_is_a_device_with_the_node_health() {
        let vsock = &resources()[0];
        let devices = vsock.devices(true);
        let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["10", "11", "12", "13", "14", "15", "16", "17", "18", "19"]);
        assert!(devices.iter().all(|d| d.health == "Healthy"));
        assert!(vsock.devices(false).iter().all(|d| d.health == "Unhealthy"));
        assert!(vsock.options().get_preferred_allocation_available);
        assert!(!vsock.options().pre_start_required);
    }

    #[test]
    fn shared_devices_have_the_capacity_and_no_preference() {
        let names: Vec<(&str, &str, Vec<String>)> = resources()[1..]
            .iter()
            .map(|r| {
                assert!(!r.options().get_preferred_allocation_available);
                (
                    r.name,
                    r.node,
                    r.devices(true).into_iter().map(|d| d.id).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (
                    "cuttlefish.dev/kvm",
                    "kvm",
                    vec!["kvm-0".to_string(), "kvm-1".into(), "kvm-2".into()]
                ),
                (
                    "cuttlefish.dev/tun",
                    "net/tun",
                    vec!["tun-0".into(), "tun-1".into(), "tun-2".into()]
                ),
                (
                    "cuttlefish.dev/vhost-net",
                    "vhost-net",
                    vec!["vhost-net-0".into(), "vhost-net-1".into(), "vhost-net-2".into()]
                ),
            ]
        );
    }

    #[test]
    fn allocating_cids_gives_the_lowest_and_all_of_them_and_the_vsock_device() {
        let vsock = &resources()[0];
        let response = allocate(vsock, &["17", "12", "13"]).unwrap();
        assert_eq!(response.envs["VSOCK_CID"], "12");
        assert_eq!(response.envs["VSOCK_CIDS"], "12,13,17");
        assert_eq!(response.envs.len(), 2);
        assert_eq!(
            response.devices,
            [DeviceSpec {
                container_path: "/dev/vhost-vsock".into(),
                host_path: "/test/dev/vhost-vsock".into(),
                permissions: "rw".into(),
            }]
        );
        assert!(response.mounts.is_empty() && response.annotations.is_empty());
    }

    #[test]
    fn unknown_or_repeated_device_ids_are_refused() {
        let all = resources();
        for (resource, ids, says) in [
            (
                &all[0],
                &["9"][..],
                "unknown cuttlefish.dev/vsock-cid device ID \"9\" (valid: CIDs 10-19)",
            ),
            (&all[0], &["10", "20"], "\"20\""),
            (&all[0], &["kvm-0"], "\"kvm-0\""),
            (&all[0], &["11", "11"], "\"11\" requested twice"),
            (&all[0], &["1\n2"], "\"1\\n2\""),
            (&all[0], &[], "no cuttlefish.dev/vsock-cid device requested"),
            (&all[1], &["kvm-3"], "valid: kvm-0 to kvm-2"),
            (&all[1], &["kvm-01"], "\"kvm-01\""),
            (&all[1], &["tun-0"], "\"tun-0\""),
            (&all[1], &["kvm"], "\"kvm\""),
            (&all[1], &["kvm-1", "kvm-1"], "requested twice"),
            (&all[3], &["vhost-net-x"], "\"vhost-net-x\""),
        ] {
            let err = allocate(resource, ids).unwrap_err().to_string();
            assert!(err.contains(says), "{ids:?}: {err}");
        }
    }

    #[test]
    fn allocating_a_shared_device_maps_its_host_node() {
        let all = resources();
        for (resource, id, container, host) in [
            (&all[1], "kvm-2", "/dev/kvm", "/test/dev/kvm"),
            (&all[2], "tun-0", "/dev/net/tun", "/test/dev/net/tun"),
            (&all[3], "vhost-net-1", "/dev/vhost-net", "/test/dev/vhost-net"),
        ] {
            let response = allocate(resource, &[id]).unwrap();
            assert!(response.envs.is_empty());
            assert_eq!(response.devices.len(), 1);
            assert_eq!(response.devices[0].container_path, container);
            assert_eq!(response.devices[0].host_path, host);
            assert_eq!(response.devices[0].permissions, "rw");
        }
    }

    #[test]
    fn preferences_for_cids_are_blocks_and_ignore_foreign_ids() {
        let vsock = &resources()[0];
        let ask = |available: &[&str], must: &[&str], size| {
            let strings = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
            vsock
                .preferred(&ContainerPreferredAllocationRequest {
                    available_device_ids: strings(available),
                    must_include_device_ids: strings(must),
                    allocation_size: size,
                })
                .device_ids
        };
        assert_eq!(ask(&["10", "12", "13", "14", "19"], &[], 3), ["12", "13", "14"]);
        assert_eq!(ask(&["10", "11", "12", "13"], &["13"], 2), ["12", "13"]);
        assert_eq!(ask(&["10", "x", "99", "11"], &[], 2), ["10", "11"]);
        assert_eq!(ask(&["10", "11"], &[], -1), Vec::<String>::new());
    }

    #[test]
    fn preferences_for_shared_devices_keep_the_kubelet_order() {
        let kvm = &resources()[1];
        let response = kvm.preferred(&ContainerPreferredAllocationRequest {
            available_device_ids: vec!["kvm-2".into(), "kvm-0".into(), "kvm-1".into()],
            must_include_device_ids: vec!["kvm-1".into()],
            allocation_size: 2,
        });
        assert_eq!(response.device_ids, ["kvm-1", "kvm-2"]);
    }
}
