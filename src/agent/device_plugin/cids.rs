//! The vsock CIDs the agent hands out as `cuttlefish.dev/vsock-cid` devices, and the choice of a
//! block of them. A device ID is the CID in decimal.

use std::collections::BTreeSet;
use std::str::FromStr;

/// At most this many CIDs: every one is a device in each ListAndWatch message, and those must
/// stay far below gRPC's 4 MiB message limit.
pub const MAX_CIDS: u32 = 16384;

/// An inclusive range of CIDs, `FIRST-LAST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidRange {
    pub first: u32,
    pub last: u32,
}

/// Why a text is not a `CidRange`; each names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidRangeError {
    #[error("{0:?} is not FIRST-LAST")]
    NotARange(String),
    #[error("{number:?} in {range:?} is not a decimal CID")]
    NotDecimal { number: String, range: String },
    #[error("{0:?}: CIDs below 3 are reserved")]
    Reserved(String),
    #[error("{0:?}: {any} is VMADDR_CID_ANY", any = u32::MAX)]
    Any(String),
    #[error("{0:?}: LAST is below FIRST")]
    Reversed(String),
    #[error("{0:?}: more than {MAX_CIDS} CIDs")]
    TooMany(String),
}

impl FromStr for CidRange {
    type Err = CidRangeError;

    fn from_str(text: &str) -> Result<CidRange, CidRangeError> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| CidRangeError::NotARange(text.into()))?;
        let number = |s: &str| {
            parse_decimal(s).ok_or_else(|| CidRangeError::NotDecimal {
                number: s.into(),
                range: text.into(),
            })
        };
        let range = CidRange {
            first: number(first)?,
            last: number(last)?,
        };
        // 0, 1 and 2 are the hypervisor, loopback and the host; u32::MAX is VMADDR_CID_ANY.
        if range.first < 3 {
            return Err(CidRangeError::Reserved(text.into()));
        }
        if range.last == u32::MAX {
            return Err(CidRangeError::Any(text.into()));
        }
        if range.last < range.first {
            return Err(CidRangeError::Reversed(text.into()));
        }
        if range.last - range.first >= MAX_CIDS {
            return Err(CidRangeError::TooMany(text.into()));
        }
        Ok(range)
    }
}

/// Digits only, without a sign or leading zeros, so every CID has exactly one device ID.
pub(super) fn parse_decimal(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

impl CidRange {
    pub fn count(&self) -> u32 {
        self.last - self.first + 1
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> {
        self.first..=self.last
    }

    /// The CID a device ID names, if it is one of ours.
    pub fn parse_id(&self, id: &str) -> Option<u32> {
        parse_decimal(id).filter(|cid| (self.first..=self.last).contains(cid))
    }
}

/// `size` CIDs out of `available`, holding every one of `must_include`: the lowest contiguous
/// block when there is one, so that a pod's instances get consecutive CIDs; otherwise
/// `must_include` and the lowest others. Ascending.
pub fn preferred(available: &[u32], must_include: &[u32], size: usize) -> Vec<u32> {
    let must: BTreeSet<u32> = must_include.iter().copied().collect();
    let pool: BTreeSet<u32> = available.iter().copied().chain(must.iter().copied()).collect();
    if must.len() >= size {
        return must.into_iter().collect();
    }
    if let Some(start) = lowest_block(&pool, &must, size as u64) {
        return (start..start + size as u32).collect();
    }
    let mut chosen = must.clone();
    chosen.extend(pool.difference(&must).take(size - must.len()));
    chosen.into_iter().collect()
}

/// The lowest start of `size` consecutive CIDs in `pool` that covers `must`.
fn lowest_block(pool: &BTreeSet<u32>, must: &BTreeSet<u32>, size: u64) -> Option<u32> {
    let span = must.first().zip(must.last());
    let mut cids = pool.iter().map(|&c| u64::from(c)).peekable();
    while let Some(run_start) = cids.next() {
        let mut run_end = run_start;
        while cids.peek() == Some(&(run_end + 1)) {
            run_end = cids.next().unwrap();
        }
        let start = match span {
            None => run_start,
            Some((&low, &high)) => {
                let (low, high) = (u64::from(low), u64::from(high));
                if low < run_start || high > run_end {
                    continue;
                }
                run_start.max((high + 1).saturating_sub(size))
            }
        };
        let fits_must = span.is_none_or(|(&low, _)| start <= u64::from(low));
        if fits_must && start + size - 1 <= run_end {
            return Some(start as u32);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ones_name_the_problem() {
        assert_eq!(
            "3-1026".parse::<CidRange>(),
            Ok(CidRange { first: 3, last: 1026 })
        );
        assert_eq!("3-1026".parse::<CidRange>().unwrap().count(), 1024);
        assert_eq!("7-7".parse::<CidRange>().unwrap().count(), 1);
        for (bad, says) in [
            ("", "not FIRST-LAST"),
            ("5", "not FIRST-LAST"),
            ("2-10", "reserved"),
            ("10-5", "below FIRST"),
            ("a-5", "not a decimal CID"),
            ("3-+5", "not a decimal CID"),
            ("3- 5", "not a decimal CID"),
            ("03-5", "not a decimal CID"),
            ("3-4294967295", "VMADDR_CID_ANY"),
            ("3-4294967296", "not a decimal CID"),
            ("3-16387", "more than 16384"),
        ] {
            let err = bad.parse::<CidRange>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        assert_eq!("3-16386".parse::<CidRange>().unwrap().count(), MAX_CIDS);
    }

    #[test]
    fn device_ids_are_canonical_decimal_cids_in_range() {
        let range: CidRange = "10-20".parse().unwrap();
        assert_eq!(range.parse_id("10"), Some(10));
        assert_eq!(range.parse_id("20"), Some(20));
        for bad in ["9", "21", "010", "+10", "10 ", "", "kvm-0", "99999999999"] {
            assert_eq!(range.parse_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_lowest_contiguous_block_is_preferred() {
        let available = [3, 4, 6, 7, 8, 9, 12];
        assert_eq!(preferred(&available, &[], 1), vec![3]);
        assert_eq!(preferred(&available, &[], 2), vec![3, 4]);
        assert_eq!(preferred(&available, &[], 3), vec![6, 7, 8]);
        assert_eq!(preferred(&available, &[], 4), vec![6, 7, 8, 9]);
        // No block of 5: the lowest five.
        assert_eq!(preferred(&available, &[], 5), vec![3, 4, 6, 7, 8]);
        assert_eq!(preferred(&available, &[], 0), Vec::<u32>::new());
        assert_eq!(preferred(&[], &[], 2), Vec::<u32>::new());
        // Unsorted input with duplicates.
        assert_eq!(preferred(&[9, 8, 3, 8, 7], &[], 3), vec![7, 8, 9]);
    }

    #[test]
    fn a_block_covers_the_must_include_cids() {
        let available = [3, 4, 5, 6, 7, 8, 9];
        assert_eq!(preferred(&available, &[7], 3), vec![5, 6, 7]);
        assert_eq!(preferred(&available, &[3], 3), vec![3, 4, 5]);
        assert_eq!(preferred(&available, &[4, 6], 3), vec![4, 5, 6]);
        assert_eq!(preferred(&available, &[9], 2), vec![8, 9]);
        // Too far apart for one block: the must-include ones plus the lowest others.
        assert_eq!(preferred(&available, &[3, 9], 3), vec![3, 4, 9]);
        // More must-include than asked for: all of them.
        assert_eq!(preferred(&available, &[3, 5, 7], 2), vec![3, 5, 7]);
        // A must-include CID in a short run: no block, the lowest others join it.
        assert_eq!(preferred(&[3, 4, 10, 11, 12], &[3], 3), vec![3, 4, 10]);
        assert_eq!(preferred(&[3, 10, 11, 12], &[11], 3), vec![10, 11, 12]);
    }

    #[test]
    fn blocks_at_the_top_of_the_cid_space_do_not_overflow() {
        let top = u32::MAX - 1;
        assert_eq!(preferred(&[top - 1, top], &[], 2), vec![top - 1, top]);
        assert_eq!(preferred(&[top - 1, top], &[top], 2), vec![top - 1, top]);
        assert_eq!(preferred(&[top], &[], 3), vec![top]);
    }
}
