//! Node-unique instance numbers for `baseInstance: "auto"`. A CVD's vsock CID is its instance
//! number + 2 and `/dev/vhost-vsock` is node-wide, so two pods on a node must not both run
//! instance 1. Allocations live in `<dataDir>/<network name>/`, one file per number holding the
//! container id and ifname, written atomically under an exclusive lock on that directory, the
//! way the reference host-local IPAM keeps its leases. DEL releases an attachment's numbers, CNI
//! GC releases those of attachments no longer valid, a failed ADD releases its own.

use crate::cni::Attachment;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "lock";

/// An allocation directory, locked for the lifetime of this value.
pub struct Allocations {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Allocations {
    /// Opens (creating if needed) and locks the allocation directory of one network.
    pub fn lock(data_dir: &Path, network: &str) -> io::Result<Allocations> {
        let dir = data_dir.join(network);
        fs::create_dir_all(&dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(Allocations { dir, _lock: lock })
    }

    /// Every allocated number with its holder.
    pub fn all(&self) -> io::Result<Vec<(u32, Attachment)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(number) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(holder) = parse_holder(&fs::read_to_string(entry.path())?) {
                out.push((number, holder));
            }
        }
        out.sort_by_key(|(n, _)| *n);
        Ok(out)
    }

    /// The numbers `attachment` holds, lowest first.
    pub fn held_by(&self, attachment: &Attachment) -> io::Result<Vec<u32>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|(_, h)| h == attachment)
            .map(|(n, _)| n)
            .collect())
    }

    /// Allocates `count` contiguous numbers within `range` for `attachment` and returns the
    /// first. An attachment that already holds numbers (a runtime retrying ADD) gets them back.
    pub fn allocate(
        &self,
        attachment: &Attachment,
        count: u32,
        range: (u32, u32),
    ) -> io::Result<Result<u32, Exhausted>> {
        let held = self.held_by(attachment)?;
        if held.len() == count as usize && held.windows(2).all(|w| w[1] == w[0] + 1) {
            return Ok(Ok(held[0]));
        }
        self.release(attachment)?;
        let taken: Vec<u32> = self.all()?.into_iter().map(|(n, _)| n).collect();
        let (low, high) = range;
        let Some(base) = (low..=high.saturating_sub(count - 1))
            .find(|base| (*base..base + count).all(|n| !taken.contains(&n)))
        else {
            return Ok(Err(Exhausted {
                taken: taken.len(),
                dir: self.dir.clone(),
            }));
        };
        for number in base..base + count {
            self.write_atomically(number, attachment)?;
        }
        Ok(Ok(base))
    }

    /// Releases every number `attachment` holds.
    pub fn release(&self, attachment: &Attachment) -> io::Result<()> {
        for number in self.held_by(attachment)? {
            remove_if_present(&self.dir.join(number.to_string()))?;
        }
        Ok(())
    }

    /// Releases every number whose holder is not in `valid`, and returns how many.
    pub fn retain(&self, valid: &[Attachment]) -> io::Result<usize> {
        let mut released = 0;
        for (number, holder) in self.all()? {
            if !valid.contains(&holder) {
                remove_if_present(&self.dir.join(number.to_string()))?;
                released += 1;
            }
        }
        Ok(released)
    }

    /// Write to a temporary file in the same directory, fsync, rename: a reader never sees a
    /// half-written allocation, and a crash leaves either no file or a whole one.
    fn write_atomically(&self, number: u32, attachment: &Attachment) -> io::Result<()> {
        let tmp = self.dir.join(format!(".{number}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(format!("{}\n{}\n", attachment.container_id, attachment.ifname).as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(number.to_string()))?;
        File::open(&self.dir)?.sync_all()
    }
}

/// No contiguous block of the requested size is free.
#[derive(Debug)]
pub struct Exhausted {
    pub taken: usize,
    pub dir: PathBuf,
}

fn parse_holder(text: &str) -> Option<Attachment> {
    let mut lines = text.lines();
    Some(Attachment {
        container_id: lines.next()?.to_string(),
        ifname: lines.next()?.to_string(),
    })
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: "eth0".into(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cfcni-alloc-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn contiguous_blocks_lowest_first_and_reused_after_release() {
        let dir = temp_dir("contiguous");
        let a = Allocations::lock(&dir, "net").unwrap();
        assert_eq!(a.allocate(&pod("a"), 2, (1, 128)).unwrap().unwrap(), 1);
        assert_eq!(a.allocate(&pod("b"), 3, (1, 128)).unwrap().unwrap(), 3);
        assert_eq!(a.allocate(&pod("c"), 1, (1, 128)).unwrap().unwrap(), 6);
        a.release(&pod("a")).unwrap();
        // A block of 3 does not fit in the hole 1..=2; a block of 2 does.
        assert_eq!(a.allocate(&pod("d"), 3, (1, 128)).unwrap().unwrap(), 7);
        assert_eq!(a.allocate(&pod("e"), 2, (1, 128)).unwrap().unwrap(), 1);
        assert_eq!(a.held_by(&pod("b")).unwrap(), [3, 4, 5]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_retry_gets_the_same_numbers() {
        let dir = temp_dir("retry");
        let a = Allocations::lock(&dir, "net").unwrap();
        assert_eq!(a.allocate(&pod("x"), 1, (1, 128)).unwrap().unwrap(), 1);
        assert_eq!(a.allocate(&pod("y"), 2, (1, 128)).unwrap().unwrap(), 2);
        assert_eq!(a.allocate(&pod("y"), 2, (1, 128)).unwrap().unwrap(), 2);
        assert_eq!(a.all().unwrap().len(), 3);
        // Same container, other ifname: another attachment.
        let other = Attachment {
            container_id: "y".into(),
            ifname: "net1".into(),
        };
        assert_eq!(a.allocate(&other, 1, (1, 128)).unwrap().unwrap(), 4);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exhaustion_is_reported_and_allocates_nothing() {
        let dir = temp_dir("exhausted");
        let a = Allocations::lock(&dir, "net").unwrap();
        assert_eq!(a.allocate(&pod("a"), 2, (10, 12)).unwrap().unwrap(), 10);
        let err = a.allocate(&pod("b"), 2, (10, 12)).unwrap().unwrap_err();
        assert_eq!(err.taken, 2);
        assert!(a.held_by(&pod("b")).unwrap().is_empty());
        assert_eq!(a.allocate(&pod("b"), 1, (10, 12)).unwrap().unwrap(), 12);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retain_releases_attachments_that_are_no_longer_valid() {
        let dir = temp_dir("gc");
        let a = Allocations::lock(&dir, "net").unwrap();
        a.allocate(&pod("live"), 1, (1, 128)).unwrap().unwrap();
        a.allocate(&pod("gone"), 2, (1, 128)).unwrap().unwrap();
        assert_eq!(a.retain(&[pod("live")]).unwrap(), 2);
        assert_eq!(a.all().unwrap().iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lock_serialises_allocators() {
        let dir = temp_dir("lock");
        let bases: Vec<u32> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let dir = dir.clone();
                    s.spawn(move || {
                        let a = Allocations::lock(&dir, "net").unwrap();
                        a.allocate(&pod(&format!("p{i}")), 2, (1, 128)).unwrap().unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = bases.clone();
        sorted.sort();
        assert_eq!(sorted, (0..16).map(|i| 1 + 2 * i).collect::<Vec<_>>());
        fs::remove_dir_all(&dir).unwrap();
    }
}
