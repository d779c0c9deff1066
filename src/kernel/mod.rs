//! The narrow interface between the plugin's logic (setup, teardown, check) and the kernel, in
//! the model's vocabulary, and its real implementation. Every error names the step and the
//! object.

#[cfg(test)]
pub mod fake;

use crate::error::{Error, Result};
use crate::model::{Address, Change, Link, Observed, Table};
use crate::netlink::route::RouteSocket;
use crate::nft::NftSocket;
use crate::{sysctl, tap};

pub trait Kernel {
    fn links(&mut self) -> Result<Vec<Link>>;
    fn addresses(&mut self) -> Result<Vec<Address>>;
    /// Those of our tables (`model::TABLES`, by family and name) that exist.
    fn tables(&mut self) -> Result<Vec<Table>>;
    /// None when the kernel has no such sysctl (IPv6 disabled on the node).
    fn sysctl(&mut self, name: &str) -> Result<Option<String>>;
    fn apply(&mut self, change: &Change) -> Result<()>;

    /// The whole namespace, with the values of `sysctls`.
    fn observe(&mut self, sysctls: &[String]) -> Result<Observed> {
        let mut observed = Observed {
            links: self.links()?,
            addresses: self.addresses()?,
            tables: self.tables()?,
            ..Observed::default()
        };
        for name in sysctls {
            let value = self.sysctl(name)?;
            observed.sysctls.insert(name.clone(), value);
        }
        Ok(observed)
    }
}

/// The kernel of one pod netns. Create it on the netns worker thread: its sockets belong to the
/// namespace of the thread that opens them.
pub struct NetnsKernel {
    route: RouteSocket,
    nft: NftSocket,
    netns: String,
}

impl NetnsKernel {
    pub fn open(netns: &str) -> Result<NetnsKernel> {
        let step = |what: &str| format!("opening a {what} netlink socket in {netns}");
        Ok(NetnsKernel {
            route: RouteSocket::open().map_err(|e| Error::kernel(step("route"), e))?,
            nft: NftSocket::open().map_err(|e| Error::kernel(step("netfilter"), e))?,
            netns: netns.to_string(),
        })
    }

    fn step(&self, what: impl std::fmt::Display) -> String {
        format!("{what} in {}", self.netns)
    }

    fn send(&mut self, change: &Change) -> std::io::Result<()> {
        match change {
            Change::CreateTables { comment, rules } => self.nft.create(comment, rules),
            Change::DeleteTable { table, handle } => self.nft.delete(*table, *handle),
            Change::WriteSysctl { name, value } => sysctl::write(name, value),
            Change::CreateBridge { name, group } => self.route.create_bridge(name, *group),
            Change::CreateTap(spec) => tap::create_persistent(&spec.name, spec.owner, spec.group),
            Change::ConfigureLink {
                name,
                alias,
                group,
                master,
            } => self.route.configure(name, alias, *group, *master),
            Change::AddAddress { index, address, .. } => self.route.add_address(*index, *address),
            Change::DeleteLink { index, .. } => self.route.delete_link(*index),
            Change::DeleteLinkGroup(group) => self.route.delete_group(*group),
        }
    }
}

impl Kernel for NetnsKernel {
    fn links(&mut self) -> Result<Vec<Link>> {
        self.route
            .links()
            .map_err(|e| Error::kernel(self.step("listing links"), e))
    }

    fn addresses(&mut self) -> Result<Vec<Address>> {
        self.route
            .addresses()
            .map_err(|e| Error::kernel(self.step("listing addresses"), e))
    }

    fn tables(&mut self) -> Result<Vec<Table>> {
        self.nft
            .tables()
            .map_err(|e| Error::kernel(self.step("reading our nftables tables"), e))
    }

    fn sysctl(&mut self, name: &str) -> Result<Option<String>> {
        sysctl::read(name).map_err(|e| Error::kernel(self.step(format!("reading sysctl {name}")), e))
    }

    fn apply(&mut self, change: &Change) -> Result<()> {
        self.send(change).map_err(|e| Error::kernel(self.step(change), e))
    }
}
