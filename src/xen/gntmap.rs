//! Mapping pages other domains grant us (public/grant_table.h,
//! `GNTTABOP_map_grant_ref` / `GNTTABOP_unmap_grant_ref`): what a backend
//! or a xenstore domain does with a guest's ring.
//!
//! For an HVM/PVH guest `host_addr` is a guest-physical address: Xen puts
//! the foreign frame into our physical address space there (a grant entry
//! in our p2m) and takes it out again on unmap. That address must not be
//! RAM (Xen would replace the RAM page, and the page would be lost to us)
//! nor anything else the domain uses, so mappings go into a **window**:
//!
//! - `WINDOW_SLOTS` pages (16 MiB), one slot per mapping, slots reused
//!   after unmap;
//! - placed at the first 1 GiB boundary at or above both 4 GiB and the end
//!   of every entry of the domain's e820 (`XENMEM_memory_map`, the map Xen
//!   holds for it: RAM, `maxmem` RAM not populated, reserved ranges). Below
//!   4 GiB an xl PVH domU has its ACPI tables, special pages and the LAPIC,
//!   and `init-xenstore-domain` lists RAM up to 0xfee00000 with `--maxmem`;
//!   above everything listed nothing lives, and Xen gives the window p2m
//!   entries only while a page is mapped there;
//! - identity-mapped (writable, non-executable, 2 MiB pages) in the live
//!   page tables the first time it is used: the runtime map covers RAM and
//!   the first 4 GiB only.
//!
//! A slot whose unmap fails is never handed out again (Xen may still have
//! a page there).

use crate::arch::e820::E820Entry;
use crate::arch::memory::{align_up, Range, PAGE_SIZE};
use crate::xen::abi::gntst;

/// Mappings that can exist at once.
pub const WINDOW_SLOTS: usize = 4096;
const WORDS: usize = WINDOW_SLOTS / 64;

/// Where the window goes for a domain whose e820 is `map`: the first
/// 1 GiB boundary at or above 4 GiB and every entry's end.
pub fn window_for(map: &[E820Entry]) -> Option<Range> {
    let top = map.iter().filter(|e| e.size != 0).map(|e| e.addr.saturating_add(e.size)).fold(4u64 << 30, u64::max);
    let base = align_up(top, 1 << 30)?;
    let end = base.checked_add(WINDOW_SLOTS as u64 * PAGE_SIZE)?;
    Some(Range::new(base, end))
}

/// Which slots are in use: one bit each.
#[derive(Debug)]
pub struct Slots {
    used: [u64; WORDS],
}

impl Default for Slots {
    fn default() -> Self {
        Slots { used: [0; WORDS] }
    }
}

impl Slots {
    /// Take the lowest free slot.
    pub fn take(&mut self) -> Option<usize> {
        let w = self.used.iter().position(|&w| w != u64::MAX)?;
        let b = (!self.used[w]).trailing_zeros() as usize;
        self.used[w] |= 1 << b;
        Some(w * 64 + b)
    }
    pub fn give_back(&mut self, slot: usize) {
        if slot < WINDOW_SLOTS {
            self.used[slot / 64] &= !(1u64 << (slot % 64));
        }
    }
    pub fn in_use(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// Why a map or unmap failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Xen refused this operation: its `GNTST_*` status.
    Status { op: &'static str, status: i16 },
    /// The hypercall itself failed (negative errno).
    Hypercall(i64),
    /// Every slot of the window is in use.
    NoSlot,
    /// The window could not be set up: no e820 from Xen, or no room in the
    /// page tables (`what` says which).
    NoWindow(&'static str),
    /// Not on Xen.
    NotXen,
}

impl MapError {
    /// The `GNTST_*` status, when Xen gave one.
    pub fn status(&self) -> Option<i16> {
        match self {
            MapError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::Status { op, status } => {
                let (name, what) = gntst::name(*status);
                write!(f, "{op}: {name} ({status}: {what})")
            }
            MapError::Hypercall(rc) => write!(f, "grant table hypercall failed ({rc})"),
            MapError::NoSlot => write!(f, "all {WINDOW_SLOTS} grant mapping slots are in use"),
            MapError::NoWindow(what) => write!(f, "no grant mapping window: {what}"),
            MapError::NotXen => write!(f, "not on Xen"),
        }
    }
}

#[cfg(target_os = "none")]
pub use imp::*;

#[cfg(target_os = "none")]
mod imp {
    use core::cell::RefCell;

    use x86_64::registers::control::Cr3;

    use super::*;
    use crate::arch::{cpu, paging};
    use crate::xen::abi::{
        GnttabMapGrantRef, GnttabUnmapGrantRef, GNTMAP_HOST_MAP, GNTMAP_READONLY, GNTTABOP_MAP_GRANT_REF, GNTTABOP_UNMAP_GRANT_REF,
    };

    struct State {
        window: Option<Range>,
        slots: Slots,
    }

    struct Global(RefCell<State>);
    // SAFETY: hvmlite runs one vCPU with interrupts off outside its idle
    // `hlt`, and nothing here runs from an interrupt handler.
    unsafe impl Sync for Global {}

    static STATE: Global = Global(RefCell::new(State { window: None, slots: Slots { used: [0; WORDS] } }));

    fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut STATE.0.borrow_mut())
    }

    /// A page of another domain, mapped at `addr` (identity: virtual =
    /// guest-physical) until [`unmap`] or drop.
    #[derive(Debug)]
    pub struct Mapping {
        /// Where the page is, readable (and writable unless `readonly`).
        pub addr: u64,
        /// Xen's handle for the mapping.
        pub handle: u32,
        pub domid: u16,
        pub gref: u32,
        pub readonly: bool,
        slot: usize,
    }

    impl Mapping {
        /// Which window slot holds it.
        pub fn slot(&self) -> usize {
            self.slot
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            if let Err(e) = unmap_slot(self) {
                log::warn!("gntmap: unmapping grant {} of domain {}: {e}; slot {} kept out of use", self.gref, self.domid, self.slot);
            }
        }
    }

    /// The window, set up on first use: placed by the domain's e820 and
    /// added to the live page tables.
    pub fn window() -> Result<Range, MapError> {
        if let Some(w) = with(|s| s.window) {
            return Ok(w);
        }
        if !crate::xen::hypercalls_ready() {
            return Err(MapError::NotXen);
        }
        let mut map = [E820Entry::new(0, 0, 0); 128];
        let n = crate::xen::memory_map(&mut map).map_err(|_| MapError::NoWindow("XENMEM_memory_map failed"))?;
        let w = window_for(&map[..n]).ok_or(MapError::NoWindow("no address space above the e820"))?;
        let (frame, flags) = Cr3::read();
        let root = frame.start_address().as_u64();
        paging::map_identity(&mut paging::HeapTables, root, w, cpu::nx_enabled())
            .map_err(|_| MapError::NoWindow("cannot map it in the page tables"))?;
        // New entries only (nothing cached is wrong), but reload anyway.
        // SAFETY: the same root; everything mapped stays mapped.
        unsafe { Cr3::write(frame, flags) };
        with(|s| s.window = Some(w));
        log::debug!("gntmap: window {:#x}-{:#x}", w.start, w.end);
        Ok(w)
    }

    /// Mappings in place now.
    pub fn in_use() -> usize {
        with(|s| s.slots.in_use())
    }

    /// Map grant `gref` of domain `domid` (read-only if `readonly`).
    pub fn map(domid: u16, gref: u32, readonly: bool) -> Result<Mapping, MapError> {
        let w = window()?;
        let slot = with(|s| s.slots.take()).ok_or(MapError::NoSlot)?;
        let addr = w.start + slot as u64 * PAGE_SIZE;
        let flags = GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 };
        let mut op = GnttabMapGrantRef { host_addr: addr, flags, gref, dom: domid, ..Default::default() };
        // SAFETY: Xen reads and writes one `struct gnttab_map_grant_ref`;
        // the frame goes to `addr`, a window slot nothing else uses.
        let rc = unsafe {
            xen_sys::hypercall_3(xen_sys::__HYPERVISOR_grant_table_op, GNTTABOP_MAP_GRANT_REF as u64, &mut op as *mut _ as u64, 1)
        };
        let err = if rc < 0 {
            Some(MapError::Hypercall(rc))
        } else if op.status != gntst::OKAY {
            Some(MapError::Status { op: "GNTTABOP_map_grant_ref", status: op.status })
        } else {
            None
        };
        if let Some(e) = err {
            with(|s| s.slots.give_back(slot));
            return Err(e);
        }
        Ok(Mapping { addr, handle: op.handle, domid, gref, readonly, slot })
    }

    fn unmap_slot(m: &Mapping) -> Result<(), MapError> {
        let mut op = GnttabUnmapGrantRef { host_addr: m.addr, dev_bus_addr: 0, handle: m.handle, status: 0 };
        // SAFETY: Xen reads and writes one `struct gnttab_unmap_grant_ref`.
        let rc = unsafe {
            xen_sys::hypercall_3(xen_sys::__HYPERVISOR_grant_table_op, GNTTABOP_UNMAP_GRANT_REF as u64, &mut op as *mut _ as u64, 1)
        };
        if rc < 0 {
            return Err(MapError::Hypercall(rc));
        }
        if op.status != gntst::OKAY {
            return Err(MapError::Status { op: "GNTTABOP_unmap_grant_ref", status: op.status });
        }
        with(|s| s.slots.give_back(m.slot));
        Ok(())
    }

    /// Unmap `m`, its slot free again. On failure the slot stays out of use.
    pub fn unmap(m: Mapping) -> Result<(), MapError> {
        let r = unmap_slot(&m);
        core::mem::forget(m);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::e820::{RAM, RESERVED};

    #[test]
    fn the_window_lies_above_everything_the_e820_lists() {
        // An xl PVH domU: RAM from 0, ACPI and special pages below 4 GiB.
        let domu = [
            E820Entry::new(0, 32 << 20, RAM),
            E820Entry::new(0xfc00_0000, 0x8000, RESERVED),
            E820Entry::new(0xfeff_8000, 0x8000, RESERVED),
        ];
        assert_eq!(window_for(&domu), Some(Range::new(4 << 30, (4 << 30) + (16 << 20))));
        // init-xenstore-domain: RAM to 0xfee00000 and an empty entry at
        // 4 GiB, or RAM above 4 GiB with --maxmem.
        let xs = [E820Entry::new(0, 0xfee0_0000, RAM), E820Entry::new(0xfeff_8000, 0x8000, RESERVED), E820Entry::new(4 << 30, 0, RAM)];
        assert_eq!(window_for(&xs).map(|w| w.start), Some(4 << 30));
        let big = [E820Entry::new(0, 0xfee0_0000, RAM), E820Entry::new(4 << 30, (1 << 30) + 1, RAM)];
        assert_eq!(window_for(&big).map(|w| w.start), Some(6 << 30));
        assert_eq!(window_for(&[E820Entry::new(0, u64::MAX, RAM)]), None);
        let w = window_for(&domu).unwrap();
        assert_eq!(w.len(), WINDOW_SLOTS as u64 * PAGE_SIZE);
        assert!(domu.iter().all(|e| !Range::new(e.addr, e.addr + e.size).overlaps(&w)));
    }

    #[test]
    fn slots_are_reused_lowest_first() {
        let mut s = Slots::default();
        assert_eq!((s.take(), s.take(), s.take()), (Some(0), Some(1), Some(2)));
        s.give_back(1);
        assert_eq!(s.take(), Some(1));
        for _ in 3..WINDOW_SLOTS {
            assert!(s.take().is_some());
        }
        assert_eq!(s.in_use(), WINDOW_SLOTS);
        assert_eq!(s.take(), None);
        s.give_back(4000);
        assert_eq!(s.take(), Some(4000));
        s.give_back(WINDOW_SLOTS + 5); // ignored
        assert_eq!(s.in_use(), WINDOW_SLOTS);
    }

    #[test]
    fn errors_name_the_status() {
        let e = MapError::Status { op: "GNTTABOP_map_grant_ref", status: -3 };
        assert_eq!(e.to_string(), "GNTTABOP_map_grant_ref: GNTST_bad_gntref (-3: invalid grant reference)");
        assert_eq!(e.status(), Some(-3));
        assert_eq!(MapError::NoSlot.status(), None);
    }
}
