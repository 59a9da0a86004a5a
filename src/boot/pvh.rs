//! Stage 2: from `struct hvm_start_info` to the zero page.
//!
//! Called by the 32-bit entry (`entry.s`) in long mode on the early page
//! tables (identity map of the first 4 GiB). Detects the hypervisor, reads
//! and validates start_info, gets the memory map (from start_info, or from
//! Xen by hypercall when start_info has none), sanitises it, and builds the
//! zero page. Then it calls `startup_64` with the zero page and nothing else.
//! Any failure is one clear line and a crash shutdown.

use core::fmt;

use crate::arch::cell::{BootCell, Page};
use crate::arch::cpu;
use crate::arch::e820::{self, E820Entry, E820Error};
use crate::arch::hypervisor::{self, Detected, Hypervisor};
use crate::arch::memory::{OutOfReach, PhysMem};
use crate::boot::hvinfo::{HvInfo, HVINFO_F_MEMMAP_FROM_HYPERCALL};
use crate::boot::image::image_range;
use crate::boot::start_info::{StartInfo, StartInfoError, MAX_CMDLINE, MAX_MEMMAP_ENTRIES, MAX_MODULES};
use crate::boot::startup;
use crate::boot::traps;
use crate::boot::zero_page::{self, BootMemEntry, BootParams, ZeroPageError, ZeroPageSpec};
use crate::platform;
use crate::platform::console;
use crate::xen;

/// Room for the setup_data nodes: the hypervisor record, the boot-memory
/// list and an e820 extension for the largest map the sanitiser can emit.
const SETUP_AREA_SIZE: usize = 32 * 1024;
const MAX_MAP: usize = e820::scratch_points(MAX_MEMMAP_ENTRIES as usize);
const MAX_BOOTMEM: usize = 4 + 2 * MAX_MODULES as usize;

static ZERO_PAGE: BootCell<Page<BootParams>> = BootCell::new(Page(BootParams::zeroed()));
static CMDLINE: BootCell<Page<[u8; MAX_CMDLINE]>> = BootCell::new(Page([0; MAX_CMDLINE]));
static SETUP_AREA: BootCell<Page<[u8; SETUP_AREA_SIZE]>> = BootCell::new(Page([0; SETUP_AREA_SIZE]));
static RAW_MAP: BootCell<[E820Entry; MAX_MEMMAP_ENTRIES as usize]> = BootCell::new([E820Entry::new(0, 0, 0); MAX_MEMMAP_ENTRIES as usize]);
static POINTS: BootCell<[u64; MAX_MAP]> = BootCell::new([0; MAX_MAP]);
static MAP: BootCell<[E820Entry; MAX_MAP]> = BootCell::new([E820Entry::new(0, 0, 0); MAX_MAP]);
static BOOTMEM: BootCell<[BootMemEntry; MAX_BOOTMEM]> = BootCell::new([BootMemEntry { addr: 0, size: 0, kind: 0, index: 0 }; MAX_BOOTMEM]);

/// Limit of the early identity map built by `entry.s`.
pub const EARLY_MAP_LIMIT: u64 = 4 << 30;

/// Physical memory through the early identity map: reads below 4 GiB only.
pub struct EarlyMem;

impl PhysMem for EarlyMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfReach> {
        let end = addr.checked_add(buf.len() as u64).ok_or(OutOfReach)?;
        if end > EARLY_MAP_LIMIT {
            return Err(OutOfReach);
        }
        // SAFETY: [addr, end) lies inside the identity map, which maps every
        // address below 4 GiB; `buf` is ours. Volatile, byte-wise: the
        // source may be any kind of memory.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
        }
        Ok(())
    }
}

pub enum BootError {
    StartInfo(StartInfoError),
    E820(E820Error),
    ZeroPage(ZeroPageError),
    NoMemoryMap(Hypervisor),
    MemoryMapHypercall(i64),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::StartInfo(e) => e.fmt(f),
            BootError::E820(e) => e.fmt(f),
            BootError::ZeroPage(e) => e.fmt(f),
            BootError::NoMemoryMap(hv) => {
                write!(f, "no memory map: start_info has none and the hypervisor ({hv}) is not Xen")
            }
            BootError::MemoryMapHypercall(rc) => write!(f, "XENMEM_memory_map failed ({rc})"),
        }
    }
}

impl From<StartInfoError> for BootError {
    fn from(e: StartInfoError) -> Self {
        BootError::StartInfo(e)
    }
}
impl From<E820Error> for BootError {
    fn from(e: E820Error) -> Self {
        BootError::E820(e)
    }
}
impl From<ZeroPageError> for BootError {
    fn from(e: ZeroPageError) -> Self {
        BootError::ZeroPage(e)
    }
}

/// Called by `entry.s` with `%ebx` of the PVH entry.
#[no_mangle]
pub extern "C" fn pvh_start64(start_info_paddr: u64) -> ! {
    traps::init();
    let hv = hypervisor::detect(cpu::cpuid);
    platform::set_hypervisor(hv.kind);
    if hv.kind == Hypervisor::Xen {
        xen::init_hypercall_page(hv.base);
    }
    console::init(hv.kind);
    // SAFETY: this is the only call; nothing else holds these statics yet.
    match unsafe { build_zero_page(start_info_paddr, &hv) } {
        Ok(zp) => startup::startup_64(zp),
        Err(e) => platform::fatal(format_args!("{e}")),
    }
}

/// # Safety
/// Call once: takes the boot statics.
unsafe fn build_zero_page(start_info_paddr: u64, hv: &Detected) -> Result<*const BootParams, BootError> {
    // SAFETY: forwarded: the one and only user of these statics.
    let (zp, cmdline, setup, raw, points, map, bootmem) = unsafe {
        (&mut ZERO_PAGE.get().0, &mut CMDLINE.get().0, &mut SETUP_AREA.get().0, RAW_MAP.get(), POINTS.get(), MAP.get(), BOOTMEM.get())
    };
    let mem = EarlyMem;
    let si = StartInfo::read(&mem, start_info_paddr)?;

    let mut flags = 0;
    let raw_n = if si.has_memmap() {
        si.read_memmap(&mem, raw)?
    } else if hv.kind == Hypervisor::Xen {
        flags |= HVINFO_F_MEMMAP_FROM_HYPERCALL;
        xen::memory_map(raw).map_err(BootError::MemoryMapHypercall)?
    } else {
        return Err(BootError::NoMemoryMap(hv.kind));
    };
    let n = e820::sanitize(&raw[..raw_n], points, map)?;
    let map = &map[..n];

    let mut nb = 0;
    let v = si.validate(&mem, map, image_range(), si.has_memmap(), cmdline, |what, index, r| {
        // validate() names at most MAX_BOOTMEM ranges (4 + 2 per module).
        bootmem[nb] = BootMemEntry { addr: r.start, size: r.len(), kind: what as u32, index };
        nb += 1;
    })?;
    cmdline[v.cmdline_len] = 0;

    let spec = ZeroPageSpec {
        e820: map,
        cmdline_paddr: if si.raw.cmdline_paddr != 0 { cmdline.as_ptr() as u64 } else { 0 },
        cmdline_size: (MAX_CMDLINE - 1) as u32,
        initrd: v.initrd,
        rsdp: v.rsdp,
        hvinfo: HvInfo::new(hv, start_info_paddr, si.raw.version, si.raw.flags, flags),
        bootmem: &bootmem[..nb],
    };
    let setup_paddr = setup.as_ptr() as u64;
    zero_page::build(zp, setup, setup_paddr, &spec)?;
    Ok(zp as *const BootParams)
}
