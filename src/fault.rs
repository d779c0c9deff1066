//! Test-only fault injection, compiled only with the `netns-tests` feature (never in a release
//! build). `CUTTLEFISH_CNI_FAULT=fail:N` makes the N-th kernel change of the invocation fail
//! instead of running; `kill:N` sends the plugin SIGKILL right after the N-th change. The
//! integration tests walk N over every change of an ADD to prove rollback and crash safety.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::netlink::route::{Address, Link};
use crate::nft;
use crate::plan::{HostAddress, TapPlan};

pub const ENV: &str = "CUTTLEFISH_CNI_FAULT";

#[derive(Clone, Copy)]
enum Fault {
    Fail(usize),
    Kill(usize),
}

pub struct Faulty<K> {
    inner: K,
    fault: Option<Fault>,
    changes: usize,
}

impl<K: Kernel> Faulty<K> {
    pub fn from_env(inner: K) -> Faulty<K> {
        let fault = std::env::var(ENV).ok().and_then(|spec| {
            let (kind, n) = spec.split_once(':')?;
            let n = n.parse().ok()?;
            match kind {
                "fail" => Some(Fault::Fail(n)),
                "kill" => Some(Fault::Kill(n)),
                _ => None,
            }
        });
        Faulty {
            inner,
            fault,
            changes: 0,
        }
    }

    fn change<T>(&mut self, what: &str, op: impl FnOnce(&mut K) -> Result<T>) -> Result<T> {
        self.changes += 1;
        match self.fault {
            Some(Fault::Fail(n)) if n == self.changes => Err(Error::kernel(
                format!("{what} (injected fault at change {n})"),
                std::io::Error::other("injected"),
            )),
            Some(Fault::Kill(n)) if n == self.changes => {
                let result = op(&mut self.inner);
                let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
                result
            }
            _ => op(&mut self.inner),
        }
    }
}

impl<K: Kernel> Kernel for Faulty<K> {
    fn links(&mut self) -> Result<Vec<Link>> {
        self.inner.links()
    }
    fn addresses(&mut self) -> Result<Vec<Address>> {
        self.inner.addresses()
    }
    fn nft_tables(&mut self) -> Result<Vec<nft::Table>> {
        self.inner.nft_tables()
    }
    fn read_sysctl(&mut self, name: &str) -> Result<Option<String>> {
        self.inner.read_sysctl(name)
    }
    fn write_sysctl(&mut self, name: &str, value: &str) -> Result<()> {
        self.change("write_sysctl", |k| k.write_sysctl(name, value))
    }
    fn create_nft_tables(&mut self, comment: &str, rules: &[(nft::Rule, String)]) -> Result<()> {
        self.change("create_nft_tables", |k| k.create_nft_tables(comment, rules))
    }
    fn delete_nft_table(&mut self, table: nft::TableId, handle: u64) -> Result<()> {
        self.change("delete_nft_table", |k| k.delete_nft_table(table, handle))
    }
    fn create_bridge(&mut self, name: &str) -> Result<()> {
        self.change("create_bridge", |k| k.create_bridge(name))
    }
    fn create_tap(&mut self, tap: &TapPlan) -> Result<()> {
        self.change("create_tap", |k| k.create_tap(tap))
    }
    fn configure_link(&mut self, name: &str, alias: &str, master: Option<u32>) -> Result<()> {
        self.change("configure_link", |k| k.configure_link(name, alias, master))
    }
    fn add_address(&mut self, link: &Link, address: HostAddress) -> Result<()> {
        self.change("add_address", |k| k.add_address(link, address))
    }
    fn delete_link(&mut self, link: &Link) -> Result<()> {
        self.change("delete_link", |k| k.delete_link(link))
    }
    fn delete_link_group(&mut self) -> Result<()> {
        self.change("delete_link_group", |k| k.delete_link_group())
    }
}
