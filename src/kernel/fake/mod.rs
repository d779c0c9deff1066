//! An in-memory [`Kernel`] for tests that need no root: one pod netns as an [`Observed`], to
//! which every [`Change`] is applied as the kernel applies it (see `apply`), with the failures a
//! test injects (see `faults`). It records the changes it applied, in order.

mod apply;
mod faults;
mod tests;

pub use faults::Read;

use super::Kernel;
use crate::error::{Error, Result};
use crate::model::{Address, Change, Link, Observed, Table};
use apply::Numbers;
use faults::Faults;
use std::io;

pub struct FakeKernel {
    /// Everything in the namespace. `sysctls` holds every sysctl that exists, each `Some`.
    pub state: Observed,
    /// The changes applied, in order.
    pub journal: Vec<Change>,
    numbers: Numbers,
    faults: Faults,
}

/// The IPv6 settings a new namespace gives `default`, and so every new link.
const IPV6_DEFAULTS: [(&str, &str); 3] = [("disable_ipv6", "0"), ("addr_gen_mode", "0"), ("autoconf", "1")];

impl FakeKernel {
    /// A new netns: `lo`, forwarding off, and IPv6 (`::1` on `lo`) unless the node booted with
    /// `ipv6.disable=1` (`ipv6: false`), in which case no `net/ipv6` sysctl exists.
    pub fn new_netns(ipv6: bool) -> FakeKernel {
        let mut kernel = FakeKernel {
            state: Observed::default(),
            journal: Vec::new(),
            numbers: Numbers::new(),
            faults: Faults::default(),
        };
        kernel.set_sysctl("net/ipv4/ip_forward", "0");
        if ipv6 {
            kernel.set_sysctl("net/ipv6/conf/all/forwarding", "0");
            for (key, value) in IPV6_DEFAULTS {
                kernel.set_sysctl(&format!("net/ipv6/conf/all/{key}"), value);
                kernel.set_sysctl(&format!("net/ipv6/conf/default/{key}"), value);
            }
        }
        let lo = kernel.add_link(Link {
            name: "lo".into(),
            up: true,
            ..Link::default()
        });
        kernel.state.addresses.push(Address {
            index: lo,
            address: [127, 0, 0, 1].into(),
            prefix: 8,
            broadcast: None,
        });
        if ipv6 {
            kernel.state.addresses.push(Address {
                index: lo,
                address: std::net::Ipv6Addr::LOCALHOST.into(),
                prefix: 128,
                broadcast: None,
            });
        }
        kernel
    }

    /// Adds a link someone else created, under a new index; returns the index.
    pub fn add_link(&mut self, link: Link) -> u32 {
        apply::create_link(&mut self.state, &mut self.numbers, link)
    }

    /// Creates or sets a sysctl, as a tenant or the node would.
    pub fn set_sysctl(&mut self, name: &str, value: &str) {
        self.state.sysctls.insert(name.into(), Some(value.into()));
    }

    pub fn link_mut(&mut self, name: &str) -> &mut Link {
        self.state
            .links
            .iter_mut()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no link {name}"))
    }

    /// The journal so far, which starts over empty.
    pub fn take_journal(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.journal)
    }

    /// The `n`-th change from now fails with `errno` and is not applied.
    pub fn fail_change(&mut self, n: usize, errno: i32) {
        self.faults.fail_at(n, errno);
    }

    /// Every change `filter` selects fails with `errno` and is not applied.
    pub fn fail_changes_where(&mut self, filter: impl Fn(&Change) -> bool + 'static, errno: i32) {
        self.faults.fail_where(Box::new(filter), errno);
    }

    /// Every `read` fails with `errno`.
    pub fn fail_read(&mut self, read: Read, errno: i32) {
        self.faults.fail_read(read, errno);
    }

    /// The plugin is killed right after the `n`-th change from now: that change is applied,
    /// and it and every later call fail with [`Killed`], until [`FakeKernel::restart`].
    pub fn kill_after(&mut self, n: usize) {
        self.faults.kill_after(n);
    }

    /// True when the plugin was killed since the last [`FakeKernel::restart`].
    pub fn killed(&self) -> bool {
        self.faults.killed()
    }

    /// The next invocation, a new process: no fault is armed.
    pub fn restart(&mut self) {
        self.faults = Faults::default();
    }

    fn alive(&self, step: &str) -> Result<()> {
        match self.faults.killed() {
            true => Err(Error::kernel(step, io::Error::other(Killed))),
            false => Ok(()),
        }
    }

    fn read<T>(&self, read: Read, step: &str, value: impl FnOnce(&Observed) -> T) -> Result<T> {
        self.alive(step)?;
        match self.faults.read_refusal(read) {
            Some(errno) => Err(Error::kernel(step, io::Error::from_raw_os_error(errno))),
            None => Ok(value(&self.state)),
        }
    }
}

impl Kernel for FakeKernel {
    fn links(&mut self) -> Result<Vec<Link>> {
        self.read(Read::Links, "listing links", |ns| ns.links.clone())
    }

    fn addresses(&mut self) -> Result<Vec<Address>> {
        self.read(Read::Addresses, "listing addresses", |ns| ns.addresses.clone())
    }

    fn tables(&mut self) -> Result<Vec<Table>> {
        self.read(Read::Tables, "reading our nftables tables", |ns| {
            ns.tables.clone()
        })
    }

    fn sysctl(&mut self, name: &str) -> Result<Option<String>> {
        let step = format!("reading sysctl {name}");
        self.read(Read::Sysctls, &step, |ns| ns.sysctl(name).map(str::to_string))
    }

    fn apply(&mut self, change: &Change) -> Result<()> {
        let step = change.to_string();
        self.alive(&step)?;
        let result = match self.faults.refusal(change) {
            Some(errno) => Err(errno),
            None => apply::apply(&mut self.state, &mut self.numbers, change),
        };
        if result.is_ok() {
            self.journal.push(change.clone());
        }
        if self.faults.dies_now() {
            return Err(Error::kernel(step, io::Error::other(Killed)));
        }
        result.map_err(|errno| Error::kernel(step, io::Error::from_raw_os_error(errno)))
    }
}

/// The plugin was killed: what every call of a killed invocation fails with.
#[derive(Debug)]
pub struct Killed;

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the plugin was killed (fake kernel)")
    }
}

impl std::error::Error for Killed {}

/// True when `error` is the one a killed invocation gets.
pub fn is_killed(error: &Error) -> bool {
    matches!(error, Error::Kernel { source, .. } if source.get_ref().is_some_and(|e| e.is::<Killed>()))
}
