//! Test-only fault injection, compiled only with the `netns-tests` feature (never in a release
//! build). `CUTTLEFISH_CNI_FAULT=fail:N` makes the N-th kernel change of the invocation fail
//! instead of running; `kill:N` sends the plugin SIGKILL right after the N-th change. The
//! integration tests walk N over every change of an ADD to prove rollback and crash safety.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::model::{Address, Change, Link, Table};

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
}

impl<K: Kernel> Kernel for Faulty<K> {
    fn links(&mut self) -> Result<Vec<Link>> {
        self.inner.links()
    }
    fn addresses(&mut self) -> Result<Vec<Address>> {
        self.inner.addresses()
    }
    fn tables(&mut self) -> Result<Vec<Table>> {
        self.inner.tables()
    }
    fn sysctl(&mut self, name: &str) -> Result<Option<String>> {
        self.inner.sysctl(name)
    }
    fn apply(&mut self, change: &Change) -> Result<()> {
        self.changes += 1;
        match self.fault {
            Some(Fault::Fail(n)) if n == self.changes => Err(Error::kernel(
                format!("{change} (injected fault at change {n})"),
                std::io::Error::other("injected"),
            )),
            Some(Fault::Kill(n)) if n == self.changes => {
                let result = self.inner.apply(change);
                let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
                result
            }
            _ => self.inner.apply(change),
        }
    }
}
