//! Grant tables, version 1 (public/grant_table.h): let another domain map
//! one of our pages, and take the permission back.
//!
//! An HVM/PVH guest gets its grant table by asking Xen to place grant frame
//! 0 in its physical memory (`XENMEM_add_to_physmap`, `XENMAPSPACE_grant_table`);
//! that frame holds 512 entries, of which the first 8 are reserved for the
//! toolstack (console, xenstore).

use core::sync::atomic::{fence, AtomicU16, AtomicU64, Ordering};

use crate::xen;
use crate::xen::abi::{GNTTAB_NR_RESERVED_ENTRIES, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING, XENMAPSPACE_GRANT_TABLE};
use crate::xen::page::alloc_page;

const ENTRIES: u32 = 4096 / 8;

static TABLE: AtomicU64 = AtomicU64::new(0);
/// One bit per entry in use (512 entries: 8 words).
static USED: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    NoMemory,
    Hypercall(i64),
    Full,
    /// The other domain still has the page mapped.
    InUse(u32),
    NotGranted(u32),
}

impl core::fmt::Display for GrantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GrantError::NoMemory => write!(f, "no memory for the grant table"),
            GrantError::Hypercall(rc) => write!(f, "mapping the grant table failed ({rc})"),
            GrantError::Full => write!(f, "no free grant reference"),
            GrantError::InUse(r) => write!(f, "grant {r} is still mapped by the other domain"),
            GrantError::NotGranted(r) => write!(f, "grant {r} is not ours to revoke"),
        }
    }
}

pub fn init() -> Result<(), GrantError> {
    if TABLE.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    let page = alloc_page().ok_or(GrantError::NoMemory)?;
    xen::add_to_physmap(XENMAPSPACE_GRANT_TABLE, 0, page >> 12).map_err(GrantError::Hypercall)?;
    TABLE.store(page, Ordering::Release);
    Ok(())
}

/// After a resume in a new domain: its grant frame at the frame the old
/// one was. The new table holds none of the old domain's grants; the
/// references handed out stay taken until their owners revoke them
/// (which then succeeds at once: nobody maps them).
pub fn remap() -> Result<(), GrantError> {
    let table = TABLE.load(Ordering::Acquire);
    if table == 0 {
        return Ok(());
    }
    xen::add_to_physmap(XENMAPSPACE_GRANT_TABLE, 0, table >> 12).map_err(GrantError::Hypercall)
}

/// Take the grant table out of RAM again (before a kernel gets the RAM):
/// the frame becomes ordinary memory. Every grant must be revoked first.
pub fn release() -> Result<(), i64> {
    let table = TABLE.swap(0, Ordering::AcqRel);
    if table == 0 {
        return Ok(());
    }
    for w in &USED {
        w.store(0, Ordering::Release);
    }
    xen::restore_ram(table >> 12)
}

fn entry(gref: u32) -> u64 {
    TABLE.load(Ordering::Acquire) + gref as u64 * 8
}

/// Let domain `domid` map the page at physical frame `pfn`. Returns the
/// grant reference to hand to that domain.
pub fn grant(domid: u16, pfn: u64, readonly: bool) -> Result<u32, GrantError> {
    if TABLE.load(Ordering::Acquire) == 0 {
        return Err(GrantError::NotGranted(0));
    }
    for gref in GNTTAB_NR_RESERVED_ENTRIES..ENTRIES {
        let (w, bit) = ((gref / 64) as usize, 1u64 << (gref % 64));
        if USED[w].fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            continue;
        }
        let e = entry(gref);
        // SAFETY: entry `gref` of the mapped grant frame, owned by us while
        // its flags are 0. Domain and frame go in first; the flags that
        // make them valid are published after (the order Xen requires).
        unsafe {
            core::ptr::write_volatile((e + 2) as *mut u16, domid);
            core::ptr::write_volatile((e + 4) as *mut u32, pfn as u32);
            fence(Ordering::Release);
            let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
            (*(e as *const AtomicU16)).store(flags, Ordering::Release);
        }
        return Ok(gref);
    }
    Err(GrantError::Full)
}

/// Take back grant `gref`, unless the other domain is using it right now.
pub fn revoke(gref: u32) -> Result<(), GrantError> {
    if !(GNTTAB_NR_RESERVED_ENTRIES..ENTRIES).contains(&gref) || TABLE.load(Ordering::Acquire) == 0 {
        return Err(GrantError::NotGranted(gref));
    }
    let (w, bit) = ((gref / 64) as usize, 1u64 << (gref % 64));
    if USED[w].load(Ordering::Acquire) & bit == 0 {
        return Err(GrantError::NotGranted(gref));
    }
    // SAFETY: entry `gref` of the mapped grant frame; Xen updates the
    // flags word atomically, so compare-exchange it.
    let flags = unsafe { &*(entry(gref) as *const AtomicU16) };
    let mut cur = flags.load(Ordering::Acquire);
    loop {
        if cur & (GTF_READING | GTF_WRITING) != 0 {
            return Err(GrantError::InUse(gref));
        }
        match flags.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    USED[w].fetch_and(!bit, Ordering::AcqRel);
    Ok(())
}
