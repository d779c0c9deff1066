//! `cuttlefish-cni-agent`: DHCP on `cvd-ebr` and `cvd-wbr` of the pods that ask for it, the job
//! dnsmasq does on a bare-metal Cuttlefish host. A one-shot CNI plugin cannot host a server and
//! the CVD container must not need NET_ADMIN, so a node daemon serves every pod, the way the
//! reference `dhcp` plugin's daemon serves clients. Beside DHCP it runs a kubelet device plugin
//! (`device_plugin`) and a Prometheus endpoint (`metrics`); `supervise` keeps the three apart.

pub mod client;
pub mod client_message;
pub mod daemon;
pub mod device_plugin;
pub mod metrics;
pub mod pool;
pub mod protocol;
pub mod rate_limit;
pub mod server;
pub mod socket;
pub mod state;
pub mod supervise;
pub mod validate;
