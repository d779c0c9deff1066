//! The agent's counters in the Prometheus text format (version 0.0.4), served over HTTP by
//! `http`. Series are prefixed `cuttlefish_`.

pub mod http;

use super::protocol::Status;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One device-plugin resource's series, labelled `resource="<name>"`.
#[derive(Debug)]
pub struct ResourceMetrics {
    pub name: &'static str,
    /// Devices in the list the plugin serves, and how many of them are healthy.
    pub devices: AtomicU64,
    pub healthy_devices: AtomicU64,
    pub allocate_calls: AtomicU64,
    pub allocate_failures: AtomicU64,
    pub registrations: AtomicU64,
}

impl ResourceMetrics {
    pub fn new(name: &'static str) -> ResourceMetrics {
        ResourceMetrics {
            name,
            devices: AtomicU64::new(0),
            healthy_devices: AtomicU64::new(0),
            allocate_calls: AtomicU64::new(0),
            allocate_failures: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
        }
    }
}

/// Where the DHCP numbers come from: the agent's status, once the DHCP service is up.
pub type DhcpStatus = Box<dyn Fn() -> Option<Status> + Send + Sync>;

pub struct Metrics {
    /// The vsock CID resource comes first.
    pub resources: Vec<Arc<ResourceMetrics>>,
    pub dhcp: DhcpStatus,
}

enum Type {
    Gauge,
    Counter,
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: Type, help: &str) {
        let kind = match kind {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
        };
        let _ = writeln!(
            self.0,
            "# HELP cuttlefish_{name} {help}\n# TYPE cuttlefish_{name} {kind}"
        );
    }

    fn sample(&mut self, name: &str, labels: &str, value: u64) {
        let _ = writeln!(self.0, "cuttlefish_{name}{labels} {value}");
    }

    fn per_resource(
        &mut self,
        resources: &[Arc<ResourceMetrics>],
        name: &str,
        kind: Type,
        help: &str,
        value: impl Fn(&ResourceMetrics) -> &AtomicU64,
    ) {
        self.family(name, kind, help);
        for r in resources {
            // Resource names are our own constants: nothing to escape.
            let labels = format!("{{resource=\"{}\"}}", r.name);
            self.sample(name, &labels, value(r).load(Ordering::Relaxed));
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut text = Text(String::new());
        if let Some(vsock) = self.resources.first() {
            text.family(
                "vsock_cids_advertised",
                Type::Gauge,
                "vsock CIDs in the device list the device plugin serves the kubelet.",
            );
            text.sample("vsock_cids_advertised", "", vsock.devices.load(Ordering::Relaxed));
            text.family(
                "vsock_cids_healthy",
                Type::Gauge,
                "Advertised vsock CIDs that are healthy (the host's vhost-vsock node exists).",
            );
            text.sample(
                "vsock_cids_healthy",
                "",
                vsock.healthy_devices.load(Ordering::Relaxed),
            );
        }
        let resources = &self.resources;
        text.per_resource(
            resources,
            "device_plugin_devices",
            Type::Gauge,
            "Devices advertised, per resource.",
            |r| &r.devices,
        );
        text.per_resource(
            resources,
            "device_plugin_healthy_devices",
            Type::Gauge,
            "Advertised devices that are healthy, per resource.",
            |r| &r.healthy_devices,
        );
        text.per_resource(
            resources,
            "device_plugin_allocate_calls_total",
            Type::Counter,
            "Allocate calls from the kubelet, per resource.",
            |r| &r.allocate_calls,
        );
        text.per_resource(
            resources,
            "device_plugin_allocate_failures_total",
            Type::Counter,
            "Allocate calls refused (unknown or repeated device IDs), per resource.",
            |r| &r.allocate_failures,
        );
        text.per_resource(
            resources,
            "kubelet_registrations_total",
            Type::Counter,
            "Successful registrations with the kubelet, per resource.",
            |r| &r.registrations,
        );
        if let Some(status) = (self.dhcp)() {
            for (name, kind, help, value) in [
                (
                    "dhcp_pods_served",
                    Type::Gauge,
                    "Pods whose bridges the agent serves DHCP on.",
                    status.pods_served as u64,
                ),
                (
                    "dhcp_leases_active",
                    Type::Gauge,
                    "Unexpired DHCP leases, all pods together.",
                    status.leases_active as u64,
                ),
                (
                    "dhcp_leases_given_total",
                    Type::Counter,
                    "DHCP leases granted (ACKs).",
                    status.leases_given,
                ),
                (
                    "dhcp_errors_total",
                    Type::Counter,
                    "DHCP errors: unusable datagrams, refused requests, failed sends, caught panics.",
                    status.errors,
                ),
                (
                    "dhcp_rate_limited_total",
                    Type::Counter,
                    "Guest datagrams dropped unread by the per-bridge rate limit.",
                    status.rate_limited,
                ),
                (
                    "agent_peers_refused_total",
                    Type::Counter,
                    "Connections to the agent's socket refused for their uid (SO_PEERCRED).",
                    status.peers_refused,
                ),
            ] {
                text.family(name, kind, help);
                text.sample(name, "", value);
            }
        }
        text.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(dhcp: Option<Status>) -> Metrics {
        let vsock = Arc::new(ResourceMetrics::new("cuttlefish.dev/vsock-cid"));
        vsock.devices.store(1024, Ordering::Relaxed);
        vsock.healthy_devices.store(1024, Ordering::Relaxed);
        vsock.allocate_calls.store(5, Ordering::Relaxed);
        vsock.allocate_failures.store(1, Ordering::Relaxed);
        vsock.registrations.store(2, Ordering::Relaxed);
        let kvm = Arc::new(ResourceMetrics::new("cuttlefish.dev/kvm"));
        kvm.devices.store(110, Ordering::Relaxed);
        Metrics {
            resources: vec![vsock, kvm],
            dhcp: Box::new(move || dhcp.clone()),
        }
    }

    /// Every sample line, as (series with labels, value).
    fn samples(text: &str) -> Vec<(String, u64)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_string(), value.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn every_series_has_help_and_type_and_the_expected_value() {
        let status = Status {
            pods_served: 3,
            leases_active: 4,
            leases_given: 9,
            errors: 2,
            rate_limited: 7,
            peers_refused: 1,
            pods: Vec::new(),
        };
        let text = metrics(Some(status)).render();
        let found = samples(&text);
        for (series, value) in [
            ("cuttlefish_vsock_cids_advertised", 1024),
            ("cuttlefish_vsock_cids_healthy", 1024),
            (
                "cuttlefish_device_plugin_devices{resource=\"cuttlefish.dev/kvm\"}",
                110,
            ),
            (
                "cuttlefish_device_plugin_healthy_devices{resource=\"cuttlefish.dev/kvm\"}",
                0,
            ),
            (
                "cuttlefish_device_plugin_allocate_calls_total{resource=\"cuttlefish.dev/vsock-cid\"}",
                5,
            ),
            (
                "cuttlefish_device_plugin_allocate_failures_total{resource=\"cuttlefish.dev/vsock-cid\"}",
                1,
            ),
            (
                "cuttlefish_kubelet_registrations_total{resource=\"cuttlefish.dev/vsock-cid\"}",
                2,
            ),
            ("cuttlefish_dhcp_pods_served", 3),
            ("cuttlefish_dhcp_leases_active", 4),
            ("cuttlefish_dhcp_leases_given_total", 9),
            ("cuttlefish_dhcp_errors_total", 2),
            ("cuttlefish_dhcp_rate_limited_total", 7),
            ("cuttlefish_agent_peers_refused_total", 1),
        ] {
            assert!(
                found.contains(&(series.to_string(), value)),
                "{series} {value} in:\n{text}"
            );
        }
        for (series, _) in &found {
            let family = series.split('{').next().unwrap();
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
            let kind = if family.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            assert!(text.contains(&format!("# TYPE {family} {kind}\n")), "{family}");
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn without_the_dhcp_service_there_are_no_dhcp_series() {
        let text = metrics(None).render();
        assert!(!text.contains("dhcp"), "{text}");
        assert!(text.contains("cuttlefish_vsock_cids_advertised 1024\n"));
    }
}
