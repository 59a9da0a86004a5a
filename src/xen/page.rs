//! Pages shared with another domain, accessed only with volatile reads
//! and writes at offsets checked against their size (see `ring.rs`).

use crate::xen::ring::RingMem;

pub struct SharedPage {
    base: u64,
    len: usize,
}

impl SharedPage {
    /// # Safety
    /// `base` must be a 4 KiB page that stays mapped (identity) for the rest
    /// of the run and that nothing else in hvmlite uses as ordinary memory.
    pub unsafe fn new(base: u64) -> Self {
        SharedPage { base, len: 4096 }
    }
    /// Several contiguous pages (a multi-page ring).
    ///
    /// # Safety
    /// As [`new`](Self::new), for all of `[base, base + len)`.
    pub unsafe fn region(base: u64, len: usize) -> Self {
        SharedPage { base, len }
    }
    fn at(&self, off: usize, len: usize) -> *mut u8 {
        assert!(off.checked_add(len).is_some_and(|end| end <= self.len), "shared page access out of bounds");
        (self.base + off as u64) as *mut u8
    }
}

impl RingMem for SharedPage {
    fn load32(&self, off: usize) -> u32 {
        // SAFETY: inside the page (checked by `at`), 4-byte aligned offsets.
        unsafe { core::ptr::read_volatile(self.at(off, 4) as *const u32) }
    }
    fn store32(&self, off: usize, v: u32) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(self.at(off, 4) as *mut u32, v) }
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        let p = self.at(off, buf.len());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: inside the page.
            *b = unsafe { core::ptr::read_volatile(p.add(i)) };
        }
    }
    fn write(&self, off: usize, data: &[u8]) {
        let p = self.at(off, data.len());
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: inside the page.
            unsafe { core::ptr::write_volatile(p.add(i), b) };
        }
    }
}

/// A fresh zeroed page from the heap, never freed: for pages handed to Xen
/// (shared info, grant frames) and pages granted to other domains.
pub fn alloc_page() -> Option<u64> {
    alloc_pages(1)
}

/// `n` fresh, zeroed, contiguous pages from the heap (identity-mapped, so
/// physically contiguous too).
pub fn alloc_pages(n: usize) -> Option<u64> {
    let layout = core::alloc::Layout::from_size_align(n.checked_mul(4096)?, 4096).ok()?;
    if n == 0 {
        return None;
    }
    // SAFETY: non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    (!p.is_null()).then_some(p as u64)
}

/// Give back pages from [`alloc_pages`].
///
/// # Safety
/// `base` came from `alloc_pages(n)` and no other domain can still reach
/// the pages (their grants are revoked).
pub unsafe fn free_pages(base: u64, n: usize) {
    let layout = core::alloc::Layout::from_size_align(n * 4096, 4096).expect("a valid page layout");
    // SAFETY: forwarded to the caller.
    unsafe { alloc::alloc::dealloc(base as *mut u8, layout) }
}
