//! Integration tests: the built plugin, executed with the CNI protocol behind the reference
//! `ptp` plugin, against network namespaces the tests create. Assertions read the kernel back
//! (`ip -j`, `nft -j`, sysfs, /proc/sys) and use a real capability-less process on the TAPs.
//! Needs root, iproute2, nftables, util-linux (setpriv, unshare), containernetworking-plugins,
//! busybox and strace.

mod access;
mod agent_registration;
mod cluster;
mod concurrency;
mod dhcp;
mod expect;
mod faults;
mod input;
mod ipv6;
mod lifecycle;
mod logging;
mod metrics;
mod ownership;
mod selection;
mod settings;
mod spoof;
mod support;
mod tamper;
mod upgrade;
mod vsock_cid;
