//! The narrow interface between the plugin's logic (setup, teardown, check) and the kernel, and
//! its real implementation. Every error names the step and the object.

use crate::error::{Error, Result};
use crate::mark::LINK_GROUP;
use crate::netlink::route::{Address, Link, RouteSocket};
use crate::nft::{self, NftSocket, Rule};
use crate::plan::{HostAddress, TapPlan};
use crate::{sysctl, tap};

pub trait Kernel {
    fn links(&mut self) -> Result<Vec<Link>>;
    fn addresses(&mut self) -> Result<Vec<Address>>;
    /// Those of our nft tables (`nft::TABLES`, by family and name) that exist.
    fn nft_tables(&mut self) -> Result<Vec<nft::Table>>;
    fn read_sysctl(&mut self, name: &str) -> Result<Option<String>>;
    fn write_sysctl(&mut self, name: &str, value: &str) -> Result<()>;
    /// Creates the tables the rules need, each with `comment`, their chains and the rules,
    /// atomically.
    fn create_nft_tables(&mut self, comment: &str, rules: &[(Rule, String)]) -> Result<()>;
    fn delete_nft_table(&mut self, table: nft::TableId, handle: u64) -> Result<()>;
    /// Creates a bridge in our link group, STP off, forward_delay 0, down (`configure_link`
    /// brings it up).
    fn create_bridge(&mut self, name: &str) -> Result<()>;
    /// Creates a persistent TAP with the plan's flags and owner/group.
    fn create_tap(&mut self, tap: &TapPlan) -> Result<()>;
    /// Puts a link in our link group with our alias, sets its master, brings it up.
    fn configure_link(&mut self, name: &str, alias: &str, master: Option<u32>) -> Result<()>;
    fn add_address(&mut self, link: &Link, address: HostAddress) -> Result<()>;
    fn delete_link(&mut self, link: &Link) -> Result<()>;
    /// Deletes every link in our link group with one request.
    fn delete_link_group(&mut self) -> Result<()>;
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

    fn nft_tables(&mut self) -> Result<Vec<nft::Table>> {
        self.nft
            .tables()
            .map_err(|e| Error::kernel(self.step("reading our nftables tables"), e))
    }

    fn read_sysctl(&mut self, name: &str) -> Result<Option<String>> {
        sysctl::read(name).map_err(|e| Error::kernel(self.step(format!("reading sysctl {name}")), e))
    }

    fn write_sysctl(&mut self, name: &str, value: &str) -> Result<()> {
        sysctl::write(name, value)
            .map_err(|e| Error::kernel(self.step(format!("setting sysctl {name}={value}")), e))
    }

    fn create_nft_tables(&mut self, comment: &str, rules: &[(Rule, String)]) -> Result<()> {
        let kinds: Vec<Rule> = rules.iter().map(|(r, _)| *r).collect();
        let names: Vec<String> = nft::tables_for(&kinds).iter().map(ToString::to_string).collect();
        self.nft.create(comment, rules).map_err(|e| {
            Error::kernel(
                self.step(format!("creating nftables tables {}", names.join(" and "))),
                e,
            )
        })
    }

    fn delete_nft_table(&mut self, table: nft::TableId, handle: u64) -> Result<()> {
        self.nft
            .delete(table, handle)
            .map_err(|e| Error::kernel(self.step(format!("deleting nftables table {table}")), e))
    }

    fn create_bridge(&mut self, name: &str) -> Result<()> {
        self.route
            .create_bridge(name, LINK_GROUP)
            .map_err(|e| Error::kernel(self.step(format!("creating bridge {name}")), e))
    }

    fn create_tap(&mut self, tap: &TapPlan) -> Result<()> {
        tap::create_persistent(&tap.name, tap.owner, tap.group)
            .map_err(|e| Error::kernel(self.step(format!("creating TAP {}", tap.name)), e))
    }

    fn configure_link(&mut self, name: &str, alias: &str, master: Option<u32>) -> Result<()> {
        self.route
            .configure(name, alias, LINK_GROUP, master)
            .map_err(|e| Error::kernel(self.step(format!("configuring link {name}")), e))
    }

    fn add_address(&mut self, link: &Link, address: HostAddress) -> Result<()> {
        self.route
            .add_address(link.index, address)
            .map_err(|e| Error::kernel(self.step(format!("adding {address} to {}", link.name)), e))
    }

    fn delete_link(&mut self, link: &Link) -> Result<()> {
        self.route
            .delete_link(link.index)
            .map_err(|e| Error::kernel(self.step(format!("deleting link {}", link.name)), e))
    }

    fn delete_link_group(&mut self) -> Result<()> {
        self.route
            .delete_group(LINK_GROUP)
            .map_err(|e| Error::kernel(self.step(format!("deleting link group {LINK_GROUP}")), e))
    }
}
