//! Physical memory as the boot stages see it: a reader for memory the boot
//! handed over (checked, never a raw dereference in the parsers), address
//! ranges, and the search for free RAM that the heap uses.

use crate::arch::e820::{self, E820Entry};

pub const PAGE_SIZE: u64 = 4096;

/// Reads physical memory. On the PVH image this is the identity map; in
/// host tests a byte vector. `read` fails instead of touching memory
/// outside what the implementation can reach.
pub trait PhysMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfReach>;

    fn read_u64(&self, addr: u64) -> Result<u64, OutOfReach> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn read_u32(&self, addr: u64) -> Result<u32, OutOfReach> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// A [`PhysMem`] read touched memory the reader cannot reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfReach;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub const fn new(start: u64, end: u64) -> Self {
        Range { start, end }
    }
    /// `[addr, addr + len)`, or `None` if it wraps.
    pub fn sized(addr: u64, len: u64) -> Option<Self> {
        Some(Range { start: addr, end: addr.checked_add(len)? })
    }
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub fn overlaps(&self, o: &Range) -> bool {
        !self.is_empty() && !o.is_empty() && self.start < o.end && o.start < self.end
    }
    pub fn contains(&self, o: &Range) -> bool {
        self.start <= o.start && o.end <= self.end
    }
}

pub const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}
pub fn align_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? & !(a - 1))
}

/// Is `r` entirely covered by entries of a sanitised `map` (of any type)?
/// Used to check that what start_info points at exists at all.
pub fn covered_by_map(map: &[E820Entry], r: &Range) -> bool {
    if r.is_empty() {
        return true;
    }
    let mut at = r.start;
    // `map` is sorted and non-overlapping: walk it once.
    for e in map {
        let (s, end) = (e.addr, e.end());
        if end <= at {
            continue;
        }
        if s > at {
            return false;
        }
        at = end;
        if at >= r.end {
            return true;
        }
    }
    false
}

/// The largest page-aligned piece of RAM in `map` at or above `min_addr`
/// and below `max_addr` that overlaps none of `reserved`. Reservations are
/// widened to whole pages. `map` must be sanitised (sorted, no overlaps).
pub fn largest_free(map: &[E820Entry], reserved: &[Range], min_addr: u64, max_addr: u64) -> Option<Range> {
    let mut best: Option<Range> = None;
    for_each_free(map, reserved, min_addr, max_addr, |r| {
        if best.is_none_or(|b| r.len() > b.len()) {
            best = Some(r);
        }
    });
    best
}

/// `size` bytes (rounded up to pages) of free RAM in `[min_addr, max_addr)`:
/// the lowest place that fits, or with `highest` the highest. For buffers
/// that must not be where a kernel will be placed, and survive the boot.
pub fn fit_free(map: &[E820Entry], reserved: &[Range], size: u64, min_addr: u64, max_addr: u64, highest: bool) -> Option<Range> {
    let size = align_up(size, PAGE_SIZE)?;
    let mut best: Option<Range> = None;
    for_each_free(map, reserved, min_addr, max_addr, |r| {
        if r.len() < size {
            return;
        }
        let at = if highest { Range::new(r.end - size, r.end) } else { Range::new(r.start, r.start + size) };
        let better = match best {
            None => true,
            Some(b) => (highest && at.start > b.start) || (!highest && at.start < b.start),
        };
        if better {
            best = Some(at);
        }
    });
    best
}

/// Every maximal page-aligned run of RAM in `[min_addr, max_addr)` that no
/// reservation touches.
fn for_each_free(map: &[E820Entry], reserved: &[Range], min_addr: u64, max_addr: u64, mut f: impl FnMut(Range)) {
    // An empty reservation (a zero-length module, say) holds no byte: it
    // must not split free RAM once widened to its page.
    let reserved = || reserved.iter().filter(|r| !r.is_empty());
    for e in map.iter().filter(|e| e.type_ == e820::RAM) {
        // RAM in the last page of the address space has no aligned start:
        // skip that entry, not the whole search.
        let Some(lo) = align_up(e.addr.max(min_addr), PAGE_SIZE) else { continue };
        let hi = align_down(e.end().min(max_addr), PAGE_SIZE);
        if lo >= hi {
            continue;
        }
        // Candidate starts: the entry's start and the end of every reservation.
        let starts = core::iter::once(lo).chain(reserved().filter_map(|r| align_up(r.end, PAGE_SIZE)).filter(|&s| s > lo && s < hi));
        for s in starts {
            if reserved().any(|r| align_down(r.start, PAGE_SIZE) <= s && s < r.end) {
                continue; // inside a reservation
            }
            let end = reserved().map(|r| align_down(r.start, PAGE_SIZE)).filter(|&rs| rs > s).fold(hi, u64::min);
            if end > s {
                f(Range::new(s, end));
            }
        }
    }
}

#[cfg(test)]
pub mod test_mem {
    use super::PhysMem;

    /// Physical memory for host tests: `bytes` mapped at `base`.
    pub struct FakeMem {
        pub base: u64,
        pub bytes: Vec<u8>,
    }

    impl FakeMem {
        pub fn new(base: u64, size: usize) -> Self {
            FakeMem { base, bytes: vec![0; size] }
        }
        pub fn write(&mut self, addr: u64, data: &[u8]) {
            let off = (addr - self.base) as usize;
            self.bytes[off..off + data.len()].copy_from_slice(data);
        }
    }

    impl PhysMem for FakeMem {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), super::OutOfReach> {
            let off = addr.checked_sub(self.base).ok_or(super::OutOfReach)? as usize;
            let end = off.checked_add(buf.len()).ok_or(super::OutOfReach)?;
            buf.copy_from_slice(self.bytes.get(off..end).ok_or(super::OutOfReach)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::e820::{E820Entry, RAM, RESERVED};

    const MAP: [E820Entry; 3] =
        [E820Entry::new(0, 0x9fc00, RAM), E820Entry::new(0x9fc00, 0x400, RESERVED), E820Entry::new(0x100000, 0x1ff00000, RAM)];

    #[test]
    fn coverage() {
        assert!(covered_by_map(&MAP, &Range::new(0x1000, 0x2000)));
        assert!(covered_by_map(&MAP, &Range::new(0x9f000, 0xa0000))); // RAM then reserved
        assert!(!covered_by_map(&MAP, &Range::new(0x9f000, 0xa1000))); // into the hole
        assert!(!covered_by_map(&MAP, &Range::new(0x20000000, 0x20001000))); // past the end
        assert!(!covered_by_map(&MAP, &Range::new(0x1fffffff, 0x20000001)));
    }

    #[test]
    fn largest_free_avoids_reservations_and_is_page_aligned() {
        let reserved = [Range::new(0x100000, 0x180123), Range::new(0x1000_0000, 0x1000_0001)];
        let r = largest_free(&MAP, &reserved, 0x100000, u64::MAX).unwrap();
        assert_eq!(r, Range::new(0x1000_1000, 0x2000_0000));
        let r = largest_free(&MAP, &reserved, 0, 0x1000_0000).unwrap();
        assert_eq!(r, Range::new(0x181000, 0x1000_0000));
        // Below 1 MiB the RAM end at 0x9fc00 is rounded down.
        let r = largest_free(&MAP, &[], 0, 0x100000).unwrap();
        assert_eq!(r, Range::new(0, 0x9f000));
        // Nothing free.
        assert_eq!(largest_free(&MAP, &[Range::new(0, u64::MAX)], 0, u64::MAX), None);
    }

    #[test]
    fn empty_reservations_split_nothing() {
        // Found by fuzz/fuzz_targets/e820.rs: a zero-length reservation in
        // the middle of a page cut the free run at that page.
        let map = [E820Entry::new(0, 0x83300, RAM)];
        let r = largest_free(&map, &[Range::new(32, 32), Range::new(0x5008, 0x5008)], 0, 0x20_0000);
        assert_eq!(r, Some(Range::new(0, 0x83000)));
    }

    #[test]
    fn ram_in_the_last_page_does_not_end_the_search() {
        // A hostile map may end with RAM at 2^64 - 0xfff: rounding its start
        // up overflows, which used to make the whole search answer None.
        let map = [E820Entry::new(0x100000, 0x100000, RAM), E820Entry::new(u64::MAX - 0xffe, 0xffe, RAM)];
        assert_eq!(largest_free(&map, &[], 0, u64::MAX), Some(Range::new(0x100000, 0x200000)));
    }

    #[test]
    fn free_region_model_check() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..300 {
            let map = [E820Entry::new(0, 0x10000 + rnd(4) * 0x800, RAM), E820Entry::new(0x20000, 0x30000 + rnd(4) * 0x800, RAM)];
            let res: Vec<Range> = (0..rnd(5))
                .map(|_| {
                    let s = rnd(0x60000);
                    Range::new(s, s + 1 + rnd(0x8000))
                })
                .collect();
            let Some(r) = largest_free(&map, &res, 0, u64::MAX) else { continue };
            assert_eq!(r.start % PAGE_SIZE, 0);
            assert_eq!(r.end % PAGE_SIZE, 0);
            assert!(res.iter().all(|x| !x.overlaps(&r)), "{r:?} overlaps {res:?}");
            assert!(map.iter().any(|e| e.addr <= r.start && r.end <= e.end()));
            // No free page outside `r` forms a larger run.
            let free_page = |p: u64| {
                let pr = Range::new(p, p + PAGE_SIZE);
                map.iter().any(|e| e.addr <= p && p + PAGE_SIZE <= e.end()) && res.iter().all(|x| !x.overlaps(&pr))
            };
            let (mut run, mut longest) = (0, 0);
            for p in (0..0x60000).step_by(PAGE_SIZE as usize) {
                run = if free_page(p) { run + 1 } else { 0 };
                longest = longest.max(run);
            }
            assert_eq!(longest * PAGE_SIZE, r.len());
        }
    }

    #[test]
    fn fit_free_takes_the_lowest_or_highest_gap_that_fits() {
        let map = [E820Entry::new(0, 0x9f000, RAM), E820Entry::new(0x100000, 0x7f00000, RAM)];
        let res = [Range::new(0x100000, 0x180000), Range::new(0x1000000, 0x2000000), Range::new(0x7000000, 0x8000000)];
        // 8 MiB: not below 16 MiB (15.5 MiB free there? yes: 1.5..16 MiB), so the lowest is at 1.5 MiB.
        assert_eq!(fit_free(&map, &res, 8 << 20, 1 << 20, 4 << 30, false), Some(Range::new(0x180000, 0x980000)));
        // The highest: just below the top reservation.
        assert_eq!(fit_free(&map, &res, 8 << 20, 1 << 20, 4 << 30, true), Some(Range::new(0x6800000, 0x7000000)));
        // Sizes round up to pages; too big is None.
        assert_eq!(fit_free(&map, &res, 1, 1 << 20, 4 << 30, false), Some(Range::new(0x180000, 0x181000)));
        assert_eq!(fit_free(&map, &res, 0x6000000, 1 << 20, 4 << 30, false), None);
        // The limits hold.
        assert_eq!(fit_free(&map, &res, 8 << 20, 0x2000000, 0x3000000, true), Some(Range::new(0x2800000, 0x3000000)));
    }
}
