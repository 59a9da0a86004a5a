//! Page tables: the runtime identity map `startup_64` switches to once it
//! knows the memory map (the 32-bit entry's early map covers only the first
//! 4 GiB, with everything writable and executable).
//!
//! The runtime map identity-maps `[0, top)` with 2 MiB pages, non-executable
//! and writable, and then refines, with 4 KiB pages, every 2 MiB chunk that
//! holds a special region: hvmlite's text (read-only, executable), rodata
//! (read-only), data (writable) and unmapped holes (the NULL page, the stack
//! guard). No page is ever both writable and executable.
//!
//! Building is pure: tables come from a [`TableAlloc`], so host tests build
//! into ordinary memory and read the result back with [`translate`].

use x86_64::structures::paging::{PageTable, PageTableFlags as F};
use x86_64::PhysAddr;

use crate::arch::memory::{Range, PAGE_SIZE};

pub const SIZE_2M: u64 = 2 << 20;
pub const SIZE_1G: u64 = 1 << 30;

/// Where page tables come from. `alloc` returns the physical address of a
/// zeroed, 4 KiB-aligned table; `table` gives access to one by address.
pub trait TableAlloc {
    fn alloc(&mut self) -> Option<u64>;
    fn table(&mut self, paddr: u64) -> &mut PageTable;
}

/// How a region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// Not mapped at all: accesses fault.
    None,
    /// Read-only, executable (text).
    ReadExec,
    /// Read-only, not executable (rodata).
    Read,
    /// Writable, not executable (data, bss, stacks, heap, everything else).
    ReadWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub range: Range,
    pub perm: Perm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    OutOfTables,
    Misaligned(Range),
    TooHigh(u64),
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PagingError::OutOfTables => write!(f, "out of memory for page tables"),
            PagingError::Misaligned(r) => write!(f, "region {:#x}-{:#x} is not page-aligned", r.start, r.end),
            PagingError::TooHigh(t) => write!(f, "cannot identity-map up to {t:#x} (beyond 512 GiB)"),
        }
    }
}

fn flags(perm: Perm, nx: bool) -> F {
    let nx = if nx { F::NO_EXECUTE } else { F::empty() };
    match perm {
        Perm::None => F::empty(),
        Perm::ReadExec => F::PRESENT,
        Perm::Read => F::PRESENT | nx,
        Perm::ReadWrite => F::PRESENT | F::WRITABLE | nx,
    }
}

/// The permission of the page at `addr`: the last region naming it wins,
/// [`Perm::ReadWrite`] where none does.
fn perm_at(regions: &[Region], addr: u64) -> Perm {
    regions.iter().rev().find(|r| r.range.start <= addr && addr < r.range.end).map_or(Perm::ReadWrite, |r| r.perm)
}

/// Build an identity map of `[0, top)` (rounded up to 2 MiB) refined by
/// `regions` (4 KiB-aligned; later ones win where they overlap). `nx` says
/// whether EFER.NXE is on: without it, non-executable cannot be expressed
/// and the NX bit must stay clear. Returns the PML4's physical address.
pub fn build_identity(alloc: &mut impl TableAlloc, top: u64, regions: &[Region], nx: bool) -> Result<u64, PagingError> {
    for r in regions {
        if r.range.start % PAGE_SIZE != 0 || r.range.end % PAGE_SIZE != 0 {
            return Err(PagingError::Misaligned(r.range));
        }
    }
    let top = top.checked_add(SIZE_2M - 1).ok_or(PagingError::TooHigh(top))? & !(SIZE_2M - 1);
    if top > 512 * SIZE_1G {
        return Err(PagingError::TooHigh(top));
    }
    let pml4 = alloc.alloc().ok_or(PagingError::OutOfTables)?;
    let table_flags = F::PRESENT | F::WRITABLE; // leaves decide the real permissions
    let mut pdpt = 0;
    let mut pd = 0;
    let mut chunk = 0;
    while chunk < top {
        if chunk % (512 * SIZE_1G) == 0 {
            pdpt = alloc.alloc().ok_or(PagingError::OutOfTables)?;
            let i = (chunk / (512 * SIZE_1G)) as usize;
            alloc.table(pml4)[i].set_addr(PhysAddr::new(pdpt), table_flags);
        }
        if chunk % SIZE_1G == 0 {
            pd = alloc.alloc().ok_or(PagingError::OutOfTables)?;
            let i = ((chunk / SIZE_1G) % 512) as usize;
            alloc.table(pdpt)[i].set_addr(PhysAddr::new(pd), table_flags);
        }
        let i = ((chunk / SIZE_2M) % 512) as usize;
        let c = Range::new(chunk, chunk + SIZE_2M);
        if regions.iter().any(|r| r.range.overlaps(&c)) {
            let pt = alloc.alloc().ok_or(PagingError::OutOfTables)?;
            for k in 0..512u64 {
                let page = chunk + k * PAGE_SIZE;
                let f = flags(perm_at(regions, page), nx);
                if !f.is_empty() {
                    alloc.table(pt)[k as usize].set_addr(PhysAddr::new(page), f);
                }
            }
            alloc.table(pd)[i].set_addr(PhysAddr::new(pt), table_flags);
        } else {
            let f = flags(Perm::ReadWrite, nx) | F::HUGE_PAGE;
            alloc.table(pd)[i].set_addr(PhysAddr::new(chunk), f);
        }
        chunk += SIZE_2M;
    }
    Ok(pml4)
}

/// Add an identity mapping of `range` (2 MiB-aligned), writable and
/// non-executable, to the live tables rooted at `pml4`, with 2 MiB pages:
/// for a window outside RAM that Xen fills later (grant mappings). Chunks
/// already identity-mapped writable are left as they are; a chunk mapped
/// any other way is refused, and nothing is changed then.
pub fn map_identity(alloc: &mut impl TableAlloc, pml4: u64, range: Range, nx: bool) -> Result<(), PagingError> {
    if !range.start.is_multiple_of(SIZE_2M) || !range.end.is_multiple_of(SIZE_2M) {
        return Err(PagingError::Misaligned(range));
    }
    if range.end > 512 * SIZE_1G {
        return Err(PagingError::TooHigh(range.end));
    }
    // First check, so that a refusal leaves the tables untouched.
    let mut chunk = range.start;
    while chunk < range.end {
        // Something at the 2 MiB level (a large page or a table): every
        // page of the chunk must be identity-mapped writable already.
        let mut table = pml4;
        let mut present = true;
        for i in [(chunk >> 39) & 511, (chunk >> 30) & 511, (chunk >> 21) & 511] {
            let e = &alloc.table(table)[i as usize];
            if !e.flags().contains(F::PRESENT) {
                present = false;
                break;
            }
            if e.flags().contains(F::HUGE_PAGE) {
                break;
            }
            table = e.addr().as_u64();
        }
        if present {
            let whole = (0..SIZE_2M)
                .step_by(PAGE_SIZE as usize)
                .all(|o| translate(alloc, pml4, chunk + o).is_some_and(|m| m.paddr == chunk + o && m.writable && !m.executable));
            if !whole {
                return Err(PagingError::Misaligned(Range::new(chunk, chunk + SIZE_2M)));
            }
        }
        chunk += SIZE_2M;
    }
    let table_flags = F::PRESENT | F::WRITABLE;
    let mut chunk = range.start;
    while chunk < range.end {
        let idx = [(chunk >> 39) & 511, (chunk >> 30) & 511, (chunk >> 21) & 511];
        let mut table = pml4;
        for &i in &idx[..2] {
            let e = &alloc.table(table)[i as usize];
            let next = if e.flags().contains(F::PRESENT) {
                e.addr().as_u64()
            } else {
                let t = alloc.alloc().ok_or(PagingError::OutOfTables)?;
                alloc.table(table)[i as usize].set_addr(PhysAddr::new(t), table_flags);
                t
            };
            table = next;
        }
        let e = &mut alloc.table(table)[idx[2] as usize];
        if !e.flags().contains(F::PRESENT) {
            e.set_addr(PhysAddr::new(chunk), flags(Perm::ReadWrite, nx) | F::HUGE_PAGE);
        }
        chunk += SIZE_2M;
    }
    Ok(())
}

/// A leaf mapping as the MMU sees it: where `vaddr` goes and with which
/// effective permissions (writable/executable only if every level allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub paddr: u64,
    pub writable: bool,
    pub executable: bool,
    pub page_size: u64,
}

/// Walk the tables rooted at `pml4` for `vaddr`.
pub fn translate(alloc: &mut impl TableAlloc, pml4: u64, vaddr: u64) -> Option<Leaf> {
    let idx = [(vaddr >> 39) & 511, (vaddr >> 30) & 511, (vaddr >> 21) & 511, (vaddr >> 12) & 511];
    let mut table = pml4;
    let (mut w, mut x) = (true, true);
    for (level, &i) in idx.iter().enumerate() {
        let e = &alloc.table(table)[i as usize];
        let f = e.flags();
        if !f.contains(F::PRESENT) {
            return None;
        }
        w &= f.contains(F::WRITABLE);
        x &= !f.contains(F::NO_EXECUTE);
        let size = match level {
            1 if f.contains(F::HUGE_PAGE) => Some(SIZE_1G),
            2 if f.contains(F::HUGE_PAGE) => Some(SIZE_2M),
            3 => Some(PAGE_SIZE),
            _ => None,
        };
        if let Some(size) = size {
            let paddr = e.addr().as_u64() + (vaddr & (size - 1));
            return Some(Leaf { paddr, writable: w, executable: x, page_size: size });
        }
        table = e.addr().as_u64();
    }
    None
}

/// What [`audit`] found in a whole address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// Bytes mapped.
    pub mapped: u64,
    /// Bytes both writable and executable (must be 0).
    pub writable_and_executable: u64,
    /// Bytes executable.
    pub executable: u64,
}

/// Walk every present leaf of the tables rooted at `pml4` (all 256 TiB of
/// the lower half and the upper half) and add up what is mapped how.
pub fn audit(alloc: &mut impl TableAlloc, pml4: u64) -> Audit {
    fn walk(alloc: &mut impl TableAlloc, table: u64, level: u8, w: bool, x: bool, a: &mut Audit) {
        for i in 0..512 {
            let (f, addr) = {
                let e = &alloc.table(table)[i];
                (e.flags(), e.addr().as_u64())
            };
            if !f.contains(F::PRESENT) {
                continue;
            }
            let (w, x) = (w && f.contains(F::WRITABLE), x && !f.contains(F::NO_EXECUTE));
            let size = match level {
                1 if f.contains(F::HUGE_PAGE) => Some(SIZE_1G),
                2 if f.contains(F::HUGE_PAGE) => Some(SIZE_2M),
                3 => Some(PAGE_SIZE),
                _ => None,
            };
            match size {
                Some(sz) => {
                    a.mapped += sz;
                    if x {
                        a.executable += sz;
                        if w {
                            a.writable_and_executable += sz;
                        }
                    }
                }
                None => walk(alloc, addr, level + 1, w, x, a),
            }
        }
    }
    let mut a = Audit::default();
    walk(alloc, pml4, 0, true, true, &mut a);
    a
}

/// Page tables from the heap; identity-mapped, so a table's address is its
/// physical address.
pub struct HeapTables;

impl TableAlloc for HeapTables {
    fn alloc(&mut self) -> Option<u64> {
        let layout = core::alloc::Layout::new::<PageTable>();
        // SAFETY: a non-zero-sized layout; a zeroed PageTable is all
        // non-present entries. The table is never freed.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        (!p.is_null()).then_some(p as u64)
    }
    fn table(&mut self, paddr: u64) -> &mut PageTable {
        // SAFETY: `paddr` came from `alloc` above: a leaked, live PageTable
        // that only the builder touches.
        unsafe { &mut *(paddr as *mut PageTable) }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Tables in host memory, named by made-up physical addresses far away
    /// from anything mapped.
    #[derive(Default)]
    pub struct HostTables {
        pub tables: HashMap<u64, Box<PageTable>>,
        pub limit: usize,
    }

    impl TableAlloc for HostTables {
        fn alloc(&mut self) -> Option<u64> {
            if self.limit != 0 && self.tables.len() == self.limit {
                return None;
            }
            let paddr = 0x7f00_0000_0000 + self.tables.len() as u64 * PAGE_SIZE;
            self.tables.insert(paddr, Box::new(PageTable::new()));
            Some(paddr)
        }
        fn table(&mut self, paddr: u64) -> &mut PageTable {
            self.tables.get_mut(&paddr).expect("no such table")
        }
    }

    const TEXT: Range = Range::new(0x100000, 0x108000);
    const RODATA: Range = Range::new(0x108000, 0x10a000);
    const DATA: Range = Range::new(0x10a000, 0x140000);
    const GUARD: Range = Range::new(0x120000, 0x121000);

    fn layout() -> Vec<Region> {
        vec![
            Region { range: Range::new(0, PAGE_SIZE), perm: Perm::None },
            Region { range: TEXT, perm: Perm::ReadExec },
            Region { range: RODATA, perm: Perm::Read },
            Region { range: DATA, perm: Perm::ReadWrite },
            Region { range: GUARD, perm: Perm::None },
        ]
    }

    #[test]
    fn image_sections_get_their_permissions() {
        let mut t = HostTables::default();
        let root = build_identity(&mut t, 6 << 30, &layout(), true).unwrap();
        let at = |t: &mut HostTables, a| translate(t, root, a);
        assert_eq!(at(&mut t, 0), None, "NULL page unmapped");
        assert_eq!(at(&mut t, 0xfff), None);
        assert_eq!(at(&mut t, 0x1000), Some(Leaf { paddr: 0x1000, writable: true, executable: false, page_size: PAGE_SIZE }));
        assert_eq!(at(&mut t, 0x100123), Some(Leaf { paddr: 0x100123, writable: false, executable: true, page_size: PAGE_SIZE }));
        assert_eq!(at(&mut t, 0x109000), Some(Leaf { paddr: 0x109000, writable: false, executable: false, page_size: PAGE_SIZE }));
        assert_eq!(at(&mut t, 0x10a000).map(|l| (l.writable, l.executable)), Some((true, false)));
        assert_eq!(at(&mut t, 0x120800), None, "stack guard unmapped");
        assert_eq!(at(&mut t, 0x121000).map(|l| (l.writable, l.executable)), Some((true, false)));
        // Away from the image: 2 MiB pages, identity, NX.
        assert_eq!(at(&mut t, 0x4020_1234), Some(Leaf { paddr: 0x4020_1234, writable: true, executable: false, page_size: SIZE_2M }));
        // RAM above 4 GiB is reachable.
        assert_eq!(at(&mut t, 0x1_7fff_ffff).map(|l| l.paddr), Some(0x1_7fff_ffff));
        assert_eq!(at(&mut t, 0x1_8000_0000), None, "nothing past top");
    }

    #[test]
    fn no_page_is_writable_and_executable() {
        let mut t = HostTables::default();
        let root = build_identity(&mut t, 1 << 30, &layout(), true).unwrap();
        let mut exec = 0;
        for page in (0..(1u64 << 30)).step_by(PAGE_SIZE as usize) {
            if let Some(l) = translate(&mut t, root, page) {
                assert!(!(l.writable && l.executable), "W+X at {page:#x}");
                exec += l.executable as u32;
            }
        }
        assert_eq!(exec, (TEXT.len() / PAGE_SIZE) as u32, "only text is executable");
    }

    #[test]
    fn audit_counts_what_the_walk_sees() {
        let mut t = HostTables::default();
        let root = build_identity(&mut t, 4 << 30, &layout(), true).unwrap();
        let a = audit(&mut t, root);
        // 4 GiB minus the NULL page and the guard page.
        assert_eq!(a.mapped, (4 << 30) - 2 * PAGE_SIZE);
        assert_eq!(a.executable, TEXT.len());
        assert_eq!(a.writable_and_executable, 0);
        // Without NX everything is executable, and writable data is W+X:
        // the audit must say so.
        let mut t = HostTables::default();
        let root = build_identity(&mut t, 1 << 30, &layout(), false).unwrap();
        let a = audit(&mut t, root);
        assert_eq!(a.executable, a.mapped);
        assert!(a.writable_and_executable > 0);
    }

    #[test]
    fn without_nx_the_bit_stays_clear() {
        let mut t = HostTables::default();
        let root = build_identity(&mut t, 1 << 30, &layout(), false).unwrap();
        for tbl in t.tables.values() {
            for e in tbl.iter() {
                assert!(!e.flags().contains(F::NO_EXECUTE));
            }
        }
        assert!(translate(&mut t, root, 0x10a000).unwrap().writable);
    }

    #[test]
    fn map_identity_adds_a_window_past_the_map() {
        let mut t = HostTables::default();
        let root = build_identity(&mut t, 4 << 30, &layout(), true).unwrap();
        let w = Range::new((4 << 30) + SIZE_2M, (4 << 30) + 5 * SIZE_2M);
        assert_eq!(translate(&mut t, root, w.start), None);
        map_identity(&mut t, root, w, true).unwrap();
        for a in [w.start, w.start + 0x1234, w.end - 1] {
            assert_eq!(translate(&mut t, root, a), Some(Leaf { paddr: a, writable: true, executable: false, page_size: SIZE_2M }));
        }
        assert_eq!(translate(&mut t, root, w.start - 1), None);
        assert_eq!(translate(&mut t, root, w.end), None);
        // Again, and over chunks the map had already: nothing changes.
        let n = t.tables.len();
        map_identity(&mut t, root, w, true).unwrap();
        map_identity(&mut t, root, Range::new(0x4000_0000, 0x4040_0000), true).unwrap();
        assert_eq!(t.tables.len(), n);
        let a = audit(&mut t, root);
        assert_eq!(a.mapped, (4 << 30) - 2 * PAGE_SIZE + w.len());
        assert_eq!(a.writable_and_executable, 0);
        // The image's chunk (4 KiB pages with text and holes) is refused;
        // so are unaligned and too-high windows.
        assert!(matches!(map_identity(&mut t, root, Range::new(0, SIZE_2M), true), Err(PagingError::Misaligned(_))));
        assert!(matches!(map_identity(&mut t, root, Range::new(0x1000, SIZE_2M), true), Err(PagingError::Misaligned(_))));
        assert!(matches!(map_identity(&mut t, root, Range::new(1 << 40, (1 << 40) + SIZE_2M), true), Err(PagingError::TooHigh(_))));
    }

    #[test]
    fn table_count_and_errors() {
        let mut t = HostTables::default();
        build_identity(&mut t, 4 << 30, &layout(), true).unwrap();
        // PML4 + PDPT + 4 PDs + 1 PT for the chunk holding the image.
        assert_eq!(t.tables.len(), 7);
        let mut t = HostTables { limit: 3, ..Default::default() };
        assert_eq!(build_identity(&mut t, 4 << 30, &layout(), true), Err(PagingError::OutOfTables));
        let mut t = HostTables::default();
        let bad = [Region { range: Range::new(0x1001, 0x2000), perm: Perm::None }];
        assert!(matches!(build_identity(&mut t, 1 << 30, &bad, true), Err(PagingError::Misaligned(_))));
        assert!(matches!(build_identity(&mut t, 1 << 40, &[], true), Err(PagingError::TooHigh(_))));
    }
}
