//! Node-unique numbers handed out to attachments: the vsock CIDs of `vsockCid: "auto"`, and the
//! instance numbers the previous release allocated for `baseInstance: "auto"` (kept so that its
//! pods are still released). A directory holds one file per number naming its holder, written
//! atomically under an exclusive lock on that directory, the way the reference host-local IPAM
//! keeps its leases. DEL releases an attachment's numbers, CNI GC releases those of attachments
//! no longer valid, a failed ADD releases its own.

use crate::atomic_file;
use crate::cni::Attachment;
use nix::fcntl::{Flock, FlockArg};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "lock";

/// Who holds a number: an attachment, and, in a directory that several networks share, the
/// network it belongs to (GC knows only the attachments of its own network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub attachment: Attachment,
    pub network: Option<String>,
}

/// An allocation directory, locked for the lifetime of this value.
pub struct Allocations {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Allocations {
    /// Opens (creating if needed) and locks an allocation directory.
    pub fn lock(dir: &Path) -> io::Result<Allocations> {
        fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(Allocations {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// Every allocated number with its holder.
    pub fn all(&self) -> io::Result<Vec<(u32, Holder)>> {
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

    /// The numbers `holder` holds, lowest first.
    pub fn held_by(&self, holder: &Holder) -> io::Result<Vec<u32>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|(_, h)| h == holder)
            .map(|(n, _)| n)
            .collect())
    }

    /// Allocates `count` contiguous numbers within `range` for `holder` and returns the first.
    /// A holder that already holds such a block (a runtime retrying ADD) gets it back.
    pub fn allocate(
        &self,
        holder: &Holder,
        count: u32,
        range: (u32, u32),
    ) -> io::Result<Result<u32, Exhausted>> {
        let held = self.held_by(holder)?;
        let (low, high) = range;
        let fits =
            held.first().is_some_and(|first| *first >= low) && held.last().is_some_and(|last| *last <= high);
        if held.len() == count as usize && fits && held.windows(2).all(|w| w[1] == w[0] + 1) {
            return Ok(Ok(held[0]));
        }
        self.release(holder)?;
        let taken: BTreeSet<u32> = self.all()?.into_iter().map(|(n, _)| n).collect();
        let Some(first) = first_free_block(&taken, count, range) else {
            return Ok(Err(Exhausted {
                taken: taken.range(low..=high).count(),
                dir: self.dir.clone(),
            }));
        };
        for number in first..first + count {
            self.write(number, holder)?;
        }
        Ok(Ok(first))
    }

    /// Releases every number `holder` holds.
    pub fn release(&self, holder: &Holder) -> io::Result<()> {
        for number in self.held_by(holder)? {
            atomic_file::remove(&self.dir.join(number.to_string()))?;
        }
        Ok(())
    }

    /// Releases every number whose holder `keep` refuses, and returns how many.
    pub fn retain(&self, keep: impl Fn(&Holder) -> bool) -> io::Result<usize> {
        let mut released = 0;
        for (number, holder) in self.all()? {
            if !keep(&holder) {
                atomic_file::remove(&self.dir.join(number.to_string()))?;
                released += 1;
            }
        }
        Ok(released)
    }

    /// Atomically (see `atomic_file`): a reader never sees a half-written allocation, and a
    /// crash leaves either no file or a whole one.
    fn write(&self, number: u32, holder: &Holder) -> io::Result<()> {
        let mut text = format!(
            "{}\n{}\n",
            holder.attachment.container_id, holder.attachment.ifname
        );
        if let Some(network) = &holder.network {
            text.push_str(network);
            text.push('\n');
        }
        Ok(atomic_file::write(
            &self.dir.join(number.to_string()),
            text.as_bytes(),
            0o644,
        )?)
    }
}

/// The lowest `first` with `first..first + count` inside `range` and free. Walks the taken
/// numbers, not the range, so a wide range costs nothing.
fn first_free_block(taken: &BTreeSet<u32>, count: u32, (low, high): (u32, u32)) -> Option<u32> {
    let mut first = u64::from(low);
    let end = |first: u64| first + u64::from(count) - 1;
    for &number in taken.range(low..=high) {
        if u64::from(number) > end(first) {
            break;
        }
        first = u64::from(number) + 1;
    }
    (end(first) <= u64::from(high)).then(|| u32::try_from(first).expect("first <= high"))
}

/// No contiguous block of the requested size is free.
#[derive(Debug)]
pub struct Exhausted {
    /// How many numbers of the range are taken.
    pub taken: usize,
    pub dir: PathBuf,
}

/// Two lines (container id, ifname) in the previous release's files, a third (network) in
/// files of a shared directory.
fn parse_holder(text: &str) -> Option<Holder> {
    let mut lines = text.lines();
    Some(Holder {
        attachment: Attachment {
            container_id: lines.next()?.to_string(),
            ifname: lines.next()?.to_string(),
        },
        network: lines.next().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str) -> Holder {
        Holder {
            attachment: Attachment {
                container_id: id.into(),
                ifname: "eth0".into(),
            },
            network: None,
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
        let a = Allocations::lock(&dir.join("net")).unwrap();
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
        let a = Allocations::lock(&dir.join("net")).unwrap();
        assert_eq!(a.allocate(&pod("x"), 1, (1, 128)).unwrap().unwrap(), 1);
        assert_eq!(a.allocate(&pod("y"), 2, (1, 128)).unwrap().unwrap(), 2);
        assert_eq!(a.allocate(&pod("y"), 2, (1, 128)).unwrap().unwrap(), 2);
        assert_eq!(a.all().unwrap().len(), 3);
        // Same container, other ifname: another attachment.
        let mut other = pod("y");
        other.attachment.ifname = "net1".into();
        assert_eq!(a.allocate(&other, 1, (1, 128)).unwrap().unwrap(), 4);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exhaustion_is_reported_and_allocates_nothing() {
        let dir = temp_dir("exhausted");
        let a = Allocations::lock(&dir.join("net")).unwrap();
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
        let a = Allocations::lock(&dir.join("net")).unwrap();
        a.allocate(&pod("live"), 1, (1, 128)).unwrap().unwrap();
        a.allocate(&pod("gone"), 2, (1, 128)).unwrap().unwrap();
        assert_eq!(a.retain(|h| *h == pod("live")).unwrap(), 2);
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
                        let a = Allocations::lock(&dir.join("net")).unwrap();
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

    #[test]
    fn the_top_of_the_cid_space_is_reachable_and_bounded() {
        let dir = temp_dir("top");
        let a = Allocations::lock(&dir.join("net")).unwrap();
        let top = (u32::MAX - 3, u32::MAX - 1);
        assert_eq!(a.allocate(&pod("a"), 2, top).unwrap().unwrap(), u32::MAX - 3);
        assert_eq!(a.allocate(&pod("b"), 2, top).unwrap().unwrap_err().taken, 2);
        assert_eq!(a.allocate(&pod("b"), 1, top).unwrap().unwrap(), u32::MAX - 1);
        // A wide range costs what is taken, not its width.
        assert_eq!(a.allocate(&pod("c"), 1, (3, u32::MAX - 1)).unwrap().unwrap(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_retry_outside_a_changed_range_gets_a_new_block() {
        let dir = temp_dir("moved");
        let a = Allocations::lock(&dir.join("net")).unwrap();
        assert_eq!(a.allocate(&pod("x"), 1, (3, 10)).unwrap().unwrap(), 3);
        assert_eq!(a.allocate(&pod("x"), 1, (20, 30)).unwrap().unwrap(), 20);
        assert_eq!(a.held_by(&pod("x")).unwrap(), [20]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn holders_of_a_shared_directory_name_their_network() {
        let dir = temp_dir("shared");
        let a = Allocations::lock(&dir.join("cids")).unwrap();
        let on = |network: &str| Holder {
            network: Some(network.into()),
            ..pod("p")
        };
        assert_eq!(a.allocate(&on("podman"), 1, (3, 10)).unwrap().unwrap(), 3);
        assert_eq!(a.allocate(&on("other"), 1, (3, 10)).unwrap().unwrap(), 4);
        assert_eq!(
            fs::read_to_string(dir.join("cids/3")).unwrap(),
            "p\neth0\npodman\n"
        );
        assert_eq!(a.retain(|h| h.network.as_deref() != Some("podman")).unwrap(), 1);
        assert_eq!(a.held_by(&on("other")).unwrap(), [4]);
        // The previous release's files have two lines and no network.
        fs::write(dir.join("cids/9"), "old\neth0\n").unwrap();
        assert!(a.all().unwrap().contains(&(9, pod("old"))));
        fs::remove_dir_all(&dir).unwrap();
    }
}
