//! cuttlefish-cni: a chained CNI plugin that builds Android Cuttlefish's host network inside a
//! pod network namespace. See README.md for the design.

pub mod agent;
pub mod alloc;
pub mod atomic_file;
pub mod check;
pub mod cli;
pub mod cni;
pub mod config;
pub mod dhcp;
pub mod error;
#[cfg(test)]
mod fake_kernel_tests;
#[cfg(feature = "netns-tests")]
pub mod fault;
pub mod install;
pub mod instances;
pub mod kernel;
pub mod log_file;
pub mod logger;
pub mod mark;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod plan;
pub mod plugin;
pub mod result;
pub mod setup;
pub mod sysctl;
pub mod tap;
pub mod teardown;
