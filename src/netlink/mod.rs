//! Netlink: a thin synchronous layer, one socket per protocol, opened inside the pod netns.
//! `socket` frames requests and reads answers; `route` speaks rtnetlink through
//! netlink-packet-route; `nft` (crate::nft) speaks nf_tables on the same socket type.

pub mod route;
pub mod socket;
