//! The failures a test injects into the fake kernel: a change the kernel refuses, a read that
//! fails, and the plugin killed right after a change (what `CUTTLEFISH_CNI_FAULT=fail:N` and
//! `kill:N` do to the real one).

use crate::model::Change;

/// What the plugin reads from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Links,
    Addresses,
    Tables,
    Sysctls,
}

type ChangeFilter = Box<dyn Fn(&Change) -> bool>;

/// The faults of one plugin invocation. Changes are counted from when a count-based fault is
/// armed, the first being change 1.
#[derive(Default)]
pub struct Faults {
    changes: usize,
    fail_at: Option<(usize, i32)>,
    fail_where: Vec<(ChangeFilter, i32)>,
    fail_reads: Vec<(Read, i32)>,
    kill_after: Option<usize>,
    killed: bool,
}

impl Faults {
    pub fn fail_at(&mut self, n: usize, errno: i32) {
        self.changes = 0;
        self.fail_at = Some((n, errno));
    }

    pub fn fail_where(&mut self, filter: ChangeFilter, errno: i32) {
        self.fail_where.push((filter, errno));
    }

    pub fn fail_read(&mut self, read: Read, errno: i32) {
        self.fail_reads.push((read, errno));
    }

    pub fn kill_after(&mut self, n: usize) {
        self.changes = 0;
        self.kill_after = Some(n);
    }

    pub fn killed(&self) -> bool {
        self.killed
    }

    /// Counts `change`; the errno it fails with instead of being applied, if any.
    pub fn refusal(&mut self, change: &Change) -> Option<i32> {
        self.changes += 1;
        match self.fail_at {
            Some((n, errno)) if n == self.changes => Some(errno),
            _ => self
                .fail_where
                .iter()
                .find(|(filter, _)| filter(change))
                .map(|(_, errno)| *errno),
        }
    }

    /// True when the plugin dies right after the change just counted.
    pub fn dies_now(&mut self) -> bool {
        self.killed = self.kill_after == Some(self.changes);
        self.killed
    }

    /// The errno `read` fails with, if any.
    pub fn read_refusal(&self, read: Read) -> Option<i32> {
        self.fail_reads
            .iter()
            .find(|(r, _)| *r == read)
            .map(|(_, errno)| *errno)
    }
}
