//! Stage 3: `startup_64(boot_params)` — the common 64-bit entry.
//!
//! It receives a zero page and nothing else: no start_info, no state from
//! the PVH stage. The hypervisor comes from the zero page (the record at
//! `hardware_subarch_data`, or CPUID when a zero page has none), the memory
//! map from `e820_table` + `SETUP_E820_EXT`, what must not be reused from
//! the `setup_data` list. It sets up the heap, the runtime page tables and
//! the console, then hands everything it established to the app
//! ([`crate::boot::app`]).

use linked_list_allocator::LockedHeap;
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use crate::arch::cell::BootCell;
use crate::arch::cpu;
use crate::arch::e820::{self, E820Entry};
use crate::arch::hypervisor::{self, Hypervisor};
use crate::arch::memory::{self, PhysMem, Range, PAGE_SIZE};
use crate::arch::paging::{self, HeapTables};
use crate::boot::app::{self, Boot};
use crate::boot::image::{embedded_range, image_layout, image_range, preloaded_kernel_range};
use crate::boot::pvh::{EarlyMem, EARLY_MAP_LIMIT};
use crate::boot::start_info::Handover;
use crate::boot::traps;
use crate::boot::zero_page::{self, BootParams};
use crate::platform::{self, console};
use crate::xen;
use crate::xen::{console as pvconsole, evtchn};

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Bytes of the heap not allocated now (a server keeps a reserve before
/// taking on another client).
pub fn heap_free() -> usize {
    HEAP.lock().free()
}

/// Bytes of the heap in all.
pub fn heap_size() -> usize {
    HEAP.lock().size()
}

/// The heap takes at most this much, from the top of the largest free RAM
/// region: the rest, and low memory in particular, stays free for a
/// payload (a Linux kernel prefers 16 MiB and needs tens of MiB from
/// there). So far the heap holds only page tables.
const HEAP_MAX: u64 = 16 << 20;
const MAX_E820: usize = 1024;
const MAX_RESERVED: usize = 256;
/// Modules the app is told about (more are reserved, not listed).
const MAX_MODULES: usize = 8;

static E820_RAW: BootCell<[E820Entry; MAX_E820]> = BootCell::new([E820Entry::new(0, 0, 0); MAX_E820]);
static E820_POINTS: BootCell<[u64; 2 * MAX_E820]> = BootCell::new([0; 2 * MAX_E820]);
static E820_MAP: BootCell<[E820Entry; 2 * MAX_E820]> = BootCell::new([E820Entry::new(0, 0, 0); 2 * MAX_E820]);
static RESERVED: BootCell<[Range; MAX_RESERVED]> = BootCell::new([Range::new(0, 0); MAX_RESERVED]);
static MODULES: BootCell<[Range; MAX_MODULES]> = BootCell::new([Range::new(0, 0); MAX_MODULES]);
static ZERO_PAGE: BootCell<BootParams> = BootCell::new(BootParams::zeroed());

/// Fixed-capacity list of reserved ranges.
struct Reserved {
    list: &'static mut [Range],
    n: usize,
}

impl Reserved {
    fn add(&mut self, r: Range) {
        if r.is_empty() {
            return;
        }
        if self.n == self.list.len() {
            platform::fatal(format_args!("more than {} reserved ranges", self.list.len()));
        }
        self.list[self.n] = r;
        self.n += 1;
    }
    fn all(&self) -> &[Range] {
        &self.list[..self.n]
    }
    fn into_slice(self) -> &'static [Range] {
        &self.list[..self.n]
    }
}

/// The common 64-bit entry: takes the zero page's physical address only.
pub extern "C" fn startup_64(boot_params: *const BootParams) -> ! {
    traps::init();
    let zp_paddr = boot_params as u64;
    let mem = EarlyMem;
    let mut page = [0u8; 4096];
    if mem.read(zp_paddr, &mut page).is_err() {
        platform::fatal(format_args!("zero page at {zp_paddr:#x} is out of reach"));
    }
    // SAFETY: startup_64 runs once; the cell is its own.
    let zp_cell = unsafe { ZERO_PAGE.get() };
    *zp_cell = BootParams::from_bytes(&page);
    let zp: &'static BootParams = zp_cell;

    // Which hypervisor: the zero page's record, else ask the CPU.
    let hv = zero_page::read_hvinfo(&mem, zp);
    let (kind, cpuid_base) = match &hv {
        Some(r) => (r.kind(), r.cpuid_base),
        None => {
            let d = hypervisor::detect(cpu::cpuid);
            (d.kind, d.base)
        }
    };
    platform::set_hypervisor(kind);
    if kind == Hypervisor::Xen {
        xen::init_hypercall_page(cpuid_base);
    }
    console::init(kind);
    // For leaving through ACPI off Xen: the RSDP, and the BIOS data area's
    // EBDA segment (where to look for one) while these tables map page 0.
    let mut ebda = [0u8; 2];
    if kind != Hypervisor::Xen {
        let _ = mem.read(crate::arch::acpi::BDA_EBDA_SEGMENT, &mut ebda);
    }
    platform::set_acpi_rsdp(zp.acpi_rsdp_addr, u16::from_le_bytes(ebda));

    // SAFETY: startup_64 runs once; these statics are its own.
    let (raw, points, e820_buf, reserved_buf, modules) =
        unsafe { (E820_RAW.get(), E820_POINTS.get(), E820_MAP.get(), RESERVED.get(), MODULES.get()) };
    let n = zero_page::read_e820(&mem, zp, raw).unwrap_or_else(|e| platform::fatal(format_args!("{e}")));
    // Any loader may hand startup_64 a zero page: sanitise its map before
    // placing anything by it (for hvmlite's own zero page this changes
    // nothing: it is sanitised already).
    let n = e820::sanitize(&raw[..n], points, e820_buf).unwrap_or_else(|e| platform::fatal(format_args!("zero page e820: {e}")));
    let map: &'static [E820Entry] = &e820_buf[..n];

    // Everything that must survive: hvmlite, the zero page and what it
    // points to, and every range the boot handed over.
    let mut res = Reserved { list: reserved_buf, n: 0 };
    res.add(image_range());
    res.add(Range::new(zp_paddr, zp_paddr + 4096));
    let cmdline = read_cmdline(&mem, zp);
    let args = || cmdline.map(|(_, s)| s).unwrap_or("").split_ascii_whitespace();
    if let Some(list) = args().find_map(|a| a.strip_prefix("hvmlite.console=")) {
        console::select(list);
    }
    if let Some((addr, s)) = cmdline {
        res.add(Range::new(addr, addr + s.len() as u64 + 1));
    }
    if let Some(r) = zp.initrd() {
        res.add(r);
    }
    let walk = zero_page::for_each_setup_data(&mem, zp.hdr.setup_data, |node| res.add(node.range()));
    walk.unwrap_or_else(|e| platform::fatal(format_args!("{e}")));
    let mut nmod = 0usize;
    let bm = zero_page::for_each_bootmem(&mem, zp, |b| {
        if let Some(r) = Range::sized(b.addr, b.size) {
            res.add(r);
            if b.kind == Handover::Module as u32 && (b.index as usize) < modules.len() {
                modules[b.index as usize] = r;
                nmod = nmod.max(b.index as usize + 1);
            }
        }
    });
    bm.unwrap_or_else(|e| platform::fatal(format_args!("{e}")));

    // An embedded payload lies past hvmlite's image (and a preloaded
    // kernel where it belongs): keep them too.
    res.add(embedded_range().unwrap_or_default());
    res.add(preloaded_kernel_range().unwrap_or_default());

    // The heap: the top of the largest free RAM above 1 MiB the early map
    // reaches. On Xen the map may list more RAM than the domain has
    // (`maxmem` above `memory`: the rest is for ballooning and not backed),
    // so stay below what Xen says is populated; domains are populated from
    // the bottom. The reservation also counts pages outside RAM (special
    // pages, ACPI tables): keep 1 MiB clear of the estimate.
    let mut heap_limit = EARLY_MAP_LIMIT;
    if kind == Hypervisor::Xen {
        if let Ok(pages) = xen::current_reservation() {
            heap_limit = heap_limit.min(pages.saturating_sub(256).saturating_mul(PAGE_SIZE));
        }
    }
    let heap = memory::largest_free(map, res.all(), 1 << 20, heap_limit)
        .unwrap_or_else(|| platform::fatal(format_args!("no free RAM for the heap")));
    let heap = Range::new(heap.end - heap.len().min(HEAP_MAX), heap.end);
    // SAFETY: `heap` is RAM per the e820 map, identity-mapped, page-aligned
    // and overlaps no reserved range; it is given to the allocator once.
    unsafe { HEAP.lock().init(heap.start as *mut u8, heap.len() as usize) };
    res.add(heap);

    // Runtime page tables: all of RAM (and the first 4 GiB, for MMIO),
    // text RX, rodata R, everything else NX; NULL and the stack guards unmapped.
    // Reserved entries can sit far up (QEMU lists the AMD HyperTransport
    // hole just below 1 TiB); only memory needs mapping beyond 4 GiB.
    let top = map
        .iter()
        .filter(|e| matches!(e.type_, e820::RAM | e820::ACPI | e820::NVS | e820::PMEM))
        .map(|e| e.end())
        .fold(EARLY_MAP_LIMIT, u64::max);
    let layout = image_layout();
    let nx = cpu::nx_enabled();
    let root =
        paging::build_identity(&mut HeapTables, top, &layout, nx).unwrap_or_else(|e| platform::fatal(format_args!("page tables: {e}")));
    // SAFETY: the new tables identity-map everything the old ones did
    // (and more), with hvmlite's text still executable and the stack and
    // data still writable, so execution continues unchanged.
    unsafe {
        let (_, flags) = x86_64::registers::control::Cr3::read();
        x86_64::registers::control::Cr3::write(PhysFrame::containing_address(PhysAddr::new(root)), flags);
    }

    // A Xen domU has a PV console (what `xl console` shows): use it from the
    // boot report on.
    if kind == Hypervisor::Xen && pvconsole::init() {
        match evtchn::init() {
            Ok(()) => {
                console::attach_pv_console();
                // The shared info page is mapped: start the clock that
                // `time::since_boot` counts from.
                xen::time::start();
            }
            Err(e) => log::warn!("PV console not used: {e}"),
        }
    }

    app::start(Boot {
        zero_page: zp,
        zero_page_paddr: zp_paddr,
        hvinfo: hv,
        hypervisor: kind,
        e820: map,
        reserved: res.into_slice(),
        modules: {
            let modules: &'static [Range] = modules;
            &modules[..nmod]
        },
        cmdline: cmdline.map(|(_, s)| s),
        heap,
        map_top: top,
        nx,
    })
}

/// The command line the zero page points at, if it is valid UTF-8 within
/// `cmdline_size` (anything else is reported and ignored).
fn read_cmdline(mem: &EarlyMem, zp: &BootParams) -> Option<(u64, &'static str)> {
    let addr = zp.cmd_line_ptr();
    if addr == 0 {
        return None;
    }
    let max = { zp.hdr.cmdline_size }.min(65535) as u64;
    let mut len = 0;
    let mut b = [0u8; 1];
    while len <= max {
        mem.read(addr + len, &mut b).ok()?;
        if b[0] == 0 {
            // SAFETY: [addr, addr + len) was just read through the identity
            // map, is reserved for the rest of the run and never written.
            let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) };
            return match core::str::from_utf8(bytes) {
                Ok(s) => Some((addr, s)),
                Err(_) => {
                    log::warn!("command line is not UTF-8; ignored");
                    None
                }
            };
        }
        len += 1;
    }
    log::warn!("command line not terminated within cmdline_size; ignored");
    None
}
