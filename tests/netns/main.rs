//! Integration tests: the built plugin, executed with the CNI protocol behind the reference
//! `ptp` plugin, against network namespaces the tests create. Assertions read the kernel back
//! (`ip -j`, `nft -j`, sysfs, /proc/sys) and use a real capability-less process on the TAPs.
//! Needs root, iproute2, nftables, util-linux (setpriv) and containernetworking-plugins.

mod access;
mod cluster;
mod concurrency;
mod dhcp;
mod expect;
mod faults;
mod input;
mod instances;
mod lifecycle;
mod metrics;
mod ownership;
mod selection;
mod support;
