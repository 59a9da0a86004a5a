//! What the fuzz targets share: a byte cursor over the fuzzer's input,
//! physical memory backed by a byte vector, a ring page that checks the
//! frontend's every access, the filesystem targets' disk (from
//! fuzz/disk), and the invariant checks of a
//! sanitised e820 map and of the heap search, each written against an
//! independent model rather than against hvmlite's own helpers.

use std::cell::RefCell;

use hvmlite::arch::e820::{self, E820Entry};
use hvmlite::arch::memory::{PhysMem, Range, PAGE_SIZE};

/// Reads integers off the fuzzer's input; past its end everything is 0.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
    fn int<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let t = self.take(N);
        b[..t.len()].copy_from_slice(t);
        b
    }
    pub fn u8(&mut self) -> u8 {
        self.int::<1>()[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.int())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.int())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.int())
    }
}

/// Physical memory for the fuzzer: `bytes` at `base`, nothing else
/// readable. Every read asked for, readable or not, is logged.
pub struct FakeMem {
    pub base: u64,
    pub bytes: Vec<u8>,
    pub reads: RefCell<Vec<Range>>,
}

impl FakeMem {
    pub fn new(base: u64, bytes: Vec<u8>) -> Self {
        FakeMem { base, bytes, reads: RefCell::new(vec![]) }
    }
    pub fn range(&self) -> Range {
        Range::new(self.base, self.base + self.bytes.len() as u64)
    }
    pub fn slice(&self, r: Range) -> &[u8] {
        &self.bytes[(r.start - self.base) as usize..(r.end - self.base) as usize]
    }
    /// Can `[addr, addr + len)` be read?
    pub fn readable(&self, addr: u64, len: u64) -> bool {
        Range::sized(addr, len).is_some_and(|r| self.range().contains(&r))
    }
}

impl PhysMem for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), hvmlite::arch::memory::OutOfReach> {
        self.reads.borrow_mut().push(Range::new(addr, addr.saturating_add(buf.len() as u64)));
        if !self.readable(addr, buf.len() as u64) {
            return Err(hvmlite::arch::memory::OutOfReach);
        }
        let off = (addr - self.base) as usize;
        buf.copy_from_slice(&self.bytes[off..off + buf.len()]);
        Ok(())
    }
}

/// A sanitiser's precedence, restated: higher wins an overlap.
pub fn rank(t: u32) -> u8 {
    match t {
        e820::RAM => 0,
        e820::ACPI => 1,
        e820::NVS => 2,
        e820::PMEM => 3,
        e820::UNUSABLE => 5,
        _ => 4, // reserved, and every unknown type (made reserved)
    }
}

fn known(t: u32) -> bool {
    matches!(t, e820::RAM | e820::RESERVED | e820::ACPI | e820::NVS | e820::UNUSABLE | e820::PMEM)
}

/// The non-empty, non-wrapping input entries as (start, end, type).
fn spans(input: &[E820Entry]) -> Vec<(u64, u64, u32)> {
    input.iter().filter(|e| e.size != 0).filter_map(|e| Some((e.addr, e.addr.checked_add(e.size)?, e.type_))).collect()
}

/// The type the model gives the byte range `[a, b)` (whose bytes all share
/// one set of covering entries): the highest-ranked covering input type,
/// unknown types counted as reserved; `None` for a hole.
fn model_type(spans: &[(u64, u64, u32)], a: u64, b: u64) -> Option<u32> {
    spans.iter().filter(|&&(s, e, _)| s <= a && b <= e).map(|&(_, _, t)| if known(t) { t } else { e820::RESERVED }).max_by_key(|&t| rank(t))
}

/// Check a sanitised map against its input: sorted, non-overlapping, no
/// zero-length entries, known types only, touching neighbours of one type
/// merged, and every byte typed exactly as the model says (so the union of
/// the inputs is covered exactly, holes stay holes, and no byte any input
/// marks non-RAM comes out as RAM).
pub fn check_sanitized(input: &[E820Entry], out: &[E820Entry]) {
    for e in out {
        assert!(e.size != 0, "zero-length output entry {e:?}");
        assert!(e.addr.checked_add(e.size).is_some(), "output entry wraps {e:?}");
        assert!(known(e.type_), "unknown type in output {e:?}");
    }
    for w in out.windows(2) {
        assert!(w[0].end() <= w[1].addr, "unsorted or overlapping: {:?} {:?}", w[0], w[1]);
        assert!(!(w[0].end() == w[1].addr && w[0].type_ == w[1].type_), "unmerged neighbours {:?} {:?}", w[0], w[1]);
    }
    let spans = spans(input);
    let mut pts: Vec<u64> = spans.iter().flat_map(|&(s, e, _)| [s, e]).collect();
    pts.extend(out.iter().flat_map(|e| [e.addr, e.end()]));
    pts.sort_unstable();
    pts.dedup();
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let want = model_type(&spans, a, b);
        let have: Vec<u32> = out.iter().filter(|e| e.addr <= a && b <= e.end()).map(|e| e.type_).collect();
        assert!(have.len() <= 1, "{a:#x}-{b:#x} covered twice");
        assert_eq!(have.first().copied(), want, "{a:#x}-{b:#x}: input {input:?} output {out:?}");
        if have.first() == Some(&e820::RAM) {
            assert!(
                spans.iter().all(|&(s, e, t)| t == e820::RAM || e <= a || b <= s),
                "{a:#x}-{b:#x} made RAM although an input entry marks it otherwise"
            );
        }
    }
}

/// What the sanitiser must answer for `input`, given room for `points`
/// boundary points and `out` entries, according to the model.
pub fn check_sanitize_result(input: &[E820Entry], points: usize, room: usize, got: Result<&[E820Entry], e820::E820Error>) {
    use e820::E820Error::*;
    let first_wrap = input.iter().position(|e| e.size != 0 && e.addr.checked_add(e.size).is_none());
    match got {
        Ok(out) => {
            assert!(!input.is_empty() && points >= 2 * input.len() && first_wrap.is_none());
            assert!(out.len() <= room);
            check_sanitized(input, out);
            assert!(out.iter().any(|e| e.type_ == e820::RAM), "accepted a map without RAM");
        }
        Err(Empty) => assert!(input.is_empty()),
        Err(Wraps { index, addr, size }) => {
            assert_eq!(Some(index), first_wrap);
            assert_eq!((addr, size), (input[index].addr, input[index].size));
        }
        Err(TooManyEntries { entries, max }) => {
            assert_eq!(entries, input.len());
            assert!(points < 2 * input.len() || room < 2 * input.len(), "TooManyEntries with enough room");
            assert!(max == points / 2 || max == room);
        }
        Err(NoRam) => {
            assert!(first_wrap.is_none());
            // No byte of the model is RAM.
            let spans = spans(input);
            let mut pts: Vec<u64> = spans.iter().flat_map(|&(s, e, _)| [s, e]).collect();
            pts.sort_unstable();
            pts.dedup();
            assert!(pts.windows(2).all(|w| model_type(&spans, w[0], w[1]) != Some(e820::RAM)), "NoRam for {input:?}");
        }
    }
    if let Err(e) = got {
        let s = e.to_string();
        assert!(!s.is_empty() && !s.contains('\n'), "error is not one line: {s:?}");
    }
}

/// Check `memory::largest_free(map, reserved, min, max)`'s answer: page
/// aligned, non-empty, inside one RAM entry and `[min, max)`, overlapping no
/// reservation (each widened to whole pages) — and, when `exhaustive` (small
/// address spaces only), that no longer run of free pages exists.
pub fn check_largest_free(map: &[E820Entry], reserved: &[Range], min: u64, max: u64, got: Option<Range>, exhaustive: Option<u64>) {
    let widened = |r: &Range| Range::new(r.start & !(PAGE_SIZE - 1), r.end.checked_next_multiple_of(PAGE_SIZE).unwrap_or(u64::MAX));
    let free_page = |p: u64| {
        let pr = Range::new(p, p + PAGE_SIZE);
        p >= min
            && p + PAGE_SIZE <= max
            && map.iter().any(|e| e.type_ == e820::RAM && e.addr <= p && p + PAGE_SIZE <= e.end())
            && reserved.iter().filter(|r| !r.is_empty()).all(|r| !widened(r).overlaps(&pr))
    };
    if let Some(r) = got {
        assert!(r.start % PAGE_SIZE == 0 && r.end % PAGE_SIZE == 0, "{r:?} not page aligned");
        assert!(r.start < r.end, "{r:?} empty");
        assert!(min <= r.start && r.end <= max, "{r:?} outside {min:#x}-{max:#x}");
        assert!(
            map.iter().any(|e| e.type_ == e820::RAM && e.addr <= r.start && r.end <= e.end()),
            "{r:?} not inside one RAM entry of {map:?}"
        );
        for res in reserved.iter().filter(|x| !x.is_empty()) {
            assert!(!widened(res).overlaps(&r), "{r:?} overlaps reservation {res:?}");
        }
    }
    if let Some(top) = exhaustive {
        let (mut run, mut longest) = (0u64, 0u64);
        for p in (0..top).step_by(PAGE_SIZE as usize) {
            run = if free_page(p) { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        assert_eq!(
            longest * PAGE_SIZE,
            got.map_or(0, |r| r.len()),
            "map {map:?} reserved {reserved:?} min {min:#x} max {max:#x}: got {got:?}"
        );
    }
}

/// A front ring's shared pages as the fuzz targets hand them to the
/// frontend, checking every access it makes: inside the pages, index loads
/// and stores only in the header, entry reads at slot boundaries and
/// entry writes of whole slots (`entry` bytes each, after the 64-byte
/// header).
pub struct CheckedRing {
    pub entry: usize,
    pub bytes: RefCell<Vec<u8>>,
}

impl CheckedRing {
    pub fn new(pages: usize, entry: usize) -> Self {
        CheckedRing { entry, bytes: RefCell::new(vec![0; pages * 4096]) }
    }
    fn check(&self, off: usize, len: usize) {
        let size = self.bytes.borrow().len();
        assert!(off + len <= size, "access {off:#x}+{len} outside the ring");
    }
}

impl hvmlite::xen::ring::RingMem for CheckedRing {
    fn load32(&self, off: usize) -> u32 {
        self.check(off, 4);
        assert!(off < 16, "index loads only from the header: {off:#x}");
        u32::from_le_bytes(self.bytes.borrow()[off..off + 4].try_into().unwrap())
    }
    fn store32(&self, off: usize, v: u32) {
        self.check(off, 4);
        assert!(off < 16, "index stores only to the header: {off:#x}");
        self.bytes.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        self.check(off, buf.len());
        assert!(off >= 64 && (off - 64) % self.entry == 0, "entry reads start at a slot: {off:#x}");
        buf.copy_from_slice(&self.bytes.borrow()[off..off + buf.len()]);
    }
    fn write(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        assert!(off >= 64 && (off - 64) % self.entry == 0 && data.len() == self.entry, "requests fill whole slots: {off:#x}");
        self.bytes.borrow_mut()[off..off + data.len()].copy_from_slice(data);
    }
}

pub use hvmlite_fuzz_disk::{check_listing, check_nofollow, fs_input, one_line, sparse_input, StrictDisk};
