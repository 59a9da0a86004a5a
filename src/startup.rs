//! Stage 3: `startup_64(boot_params)` — the common 64-bit entry.
//!
//! It receives a zero page and nothing else: no start_info, no state from
//! the PVH stage. The hypervisor comes from the zero page (the record at
//! `hardware_subarch_data`, or CPUID when a zero page has none), the memory
//! map from `e820_table` + `SETUP_E820_EXT`, what must not be reused from
//! the `setup_data` list. It sets up the heap, the runtime page tables and
//! the console, prints the boot report, and runs the command line.


use linked_list_allocator::LockedHeap;
use x86_64::structures::paging::{PageTable, PhysFrame};
use x86_64::PhysAddr;

use crate::console::Quoted;
use crate::e820::{self, E820Entry};
use crate::hvinfo::{self, HvInfo, Hypervisor};
use crate::memory::{self, PhysMem, Range, PAGE_SIZE};
use crate::paging::{self, Perm, Region, TableAlloc};
use crate::platform::{self, Shutdown};
use crate::pvh::{image_range, BootCell, EarlyMem, EARLY_MAP_LIMIT};
use crate::start_info::Handover;
use crate::zero_page::{self, BootParams, X86_SUBARCH_XEN};
use crate::{console, cpu, evtchn, loader, pvconsole, stubdom, traps, xen};

extern crate alloc;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// The heap takes at most this much, from the top of the largest free RAM
/// region: the rest, and low memory in particular, stays free for a
/// payload (a Linux kernel prefers 16 MiB and needs tens of MiB from
/// there). So far the heap holds only page tables.
const HEAP_MAX: u64 = 16 << 20;
const MAX_E820: usize = 1024;
const MAX_RESERVED: usize = 256;

static E820_RAW: BootCell<[E820Entry; MAX_E820]> = BootCell::new([E820Entry::new(0, 0, 0); MAX_E820]);
static E820_POINTS: BootCell<[u64; 2 * MAX_E820]> = BootCell::new([0; 2 * MAX_E820]);
static E820_MAP: BootCell<[E820Entry; 2 * MAX_E820]> = BootCell::new([E820Entry::new(0, 0, 0); 2 * MAX_E820]);
static RESERVED: BootCell<[Range; MAX_RESERVED]> = BootCell::new([Range::new(0, 0); MAX_RESERVED]);

macro_rules! report {
    ($($t:tt)*) => { log::info!($($t)*) };
}

/// Fixed-capacity list of reserved ranges.
struct Reserved<'a> {
    list: &'a mut [Range],
    n: usize,
}

impl Reserved<'_> {
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
    let zp = BootParams::from_bytes(&page);

    // Which hypervisor: the zero page's record, else ask the CPU.
    let hv = zero_page::read_hvinfo(&mem, &zp);
    let (kind, cpuid_base) = match &hv {
        Some(r) => (r.kind(), r.cpuid_base),
        None => {
            let d = hvinfo::detect(cpu::cpuid);
            (d.kind, d.base)
        }
    };
    platform::set_hypervisor(kind);
    if kind == Hypervisor::Xen {
        xen::init_hypercall_page(cpuid_base);
    }
    console::init(kind);

    // SAFETY: startup_64 runs once; these statics are its own.
    let (raw, points, e820_buf, reserved_buf) = unsafe { (E820_RAW.get(), E820_POINTS.get(), E820_MAP.get(), RESERVED.get()) };
    let n = zero_page::read_e820(&mem, &zp, raw).unwrap_or_else(|e| platform::fatal(format_args!("{e}")));
    // Any loader may hand startup_64 a zero page: sanitise its map before
    // placing anything by it (for hvmlite's own zero page this changes
    // nothing: it is sanitised already).
    let n = e820::sanitize(&raw[..n], points, e820_buf).unwrap_or_else(|e| platform::fatal(format_args!("zero page e820: {e}")));
    let map = &e820_buf[..n];

    // Everything that must survive: hvmlite, the zero page and what it
    // points to, and every range the boot handed over.
    let mut res = Reserved { list: reserved_buf, n: 0 };
    res.add(image_range());
    res.add(Range::new(zp_paddr, zp_paddr + 4096));
    let cmdline = read_cmdline(&mem, &zp);
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
    let mut modules = [Range::new(0, 0); 8];
    let mut nmod = 0usize;
    let bm = zero_page::for_each_bootmem(&mem, &zp, |b| {
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
    res.add(loader::embedded_range().unwrap_or_default());
    res.add(loader::preloaded_kernel_range().unwrap_or_default());

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
    let root = paging::build_identity(&mut HeapTables, top, &layout, nx)
        .unwrap_or_else(|e| platform::fatal(format_args!("page tables: {e}")));
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
            Ok(()) => console::attach_pv_console(),
            Err(e) => log::warn!("PV console not used: {e}"),
        }
    }

    boot_report(&zp, zp_paddr, hv.as_ref(), kind, map, cmdline, &modules[..nmod], heap, top, nx);
    let summary = stubdom::Summary {
        hypervisor: kind.name(),
        start_info_version: hv.as_ref().map_or(0, |r| r.start_info_version),
        e820_entries: map.len(),
        cmdline: cmdline.map(|(_, s)| s).unwrap_or(""),
        modules: nmod,
        heap_kib: heap.len() / 1024,
    };
    let cmdline = summary.cmdline;
    run(cmdline);
    // Stage 4: a payload, if the boot brought one, never comes back.
    loader::start(&zp, map, res.all(), top, cmdline);
    // A Xen domU with a xenstore runs the stubdomain service until the
    // toolstack shuts it down; elsewhere the run is over.
    if kind == Hypervisor::Xen && stubdom::available() {
        stubdom::run(&summary);
    }
    platform::shutdown(Shutdown::Poweroff)
}

/// Read the live page tables back (from CR3) and report what they allow:
/// no byte may be writable and executable, the NULL page and the stack
/// guard must be unmapped, text executable and read-only.
fn paging_audit() {
    let (frame, _) = x86_64::registers::control::Cr3::read();
    let root = frame.start_address().as_u64();
    let a = paging::audit(&mut LiveTables, root);
    let layout = image_layout();
    let at = |addr: u64| paging::translate(&mut LiveTables, root, addr);
    let text = at(layout[1].range.start);
    report!(
        "paging audit: {} MiB mapped, {} KiB executable, {} bytes writable+executable, NULL {}, stack guards {}, text {}",
        a.mapped >> 20,
        a.executable >> 10,
        a.writable_and_executable,
        if at(0).is_none() { "unmapped" } else { "MAPPED" },
        if at(layout[3].range.start).is_none() && at(layout[4].range.start).is_none() { "unmapped" } else { "MAPPED" },
        match text {
            Some(l) if l.executable && !l.writable => "rx",
            _ => "WRONG",
        }
    );
}

/// The page tables in use, read through the identity map.
struct LiveTables;

impl TableAlloc for LiveTables {
    fn alloc(&mut self) -> Option<u64> {
        None
    }
    fn table(&mut self, paddr: u64) -> &mut PageTable {
        // SAFETY: `paddr` comes from a present entry of the live tables,
        // which are identity-mapped heap pages; the audit only reads.
        unsafe { &mut *(paddr as *mut PageTable) }
    }
}

/// hvmlite's own sections, as the runtime page tables map them.
fn image_layout() -> [Region; 5] {
    extern "C" {
        static __image_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static boot_stack_guard: u8;
        static fault_stack_guard: u8;
    }
    // Linker-script and entry.s symbols: only their addresses are taken.
    let (start, text_end, rodata_end, guard, fault_guard) = (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__text_end) as u64,
        core::ptr::addr_of!(__rodata_end) as u64,
        core::ptr::addr_of!(boot_stack_guard) as u64,
        core::ptr::addr_of!(fault_stack_guard) as u64,
    );
    [
        Region { range: Range::new(0, PAGE_SIZE), perm: Perm::None },
        Region { range: Range::new(start, text_end), perm: Perm::ReadExec },
        Region { range: Range::new(text_end, rodata_end), perm: Perm::Read },
        Region { range: Range::new(guard, guard + PAGE_SIZE), perm: Perm::None },
        Region { range: Range::new(fault_guard, fault_guard + PAGE_SIZE), perm: Perm::None },
    ]
}

/// Page tables from the heap; identity-mapped, so a table's address is its
/// physical address.
pub(crate) struct HeapTables;

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


#[allow(clippy::too_many_arguments)]
fn boot_report(
    zp: &BootParams,
    zp_paddr: u64,
    hv: Option<&HvInfo>,
    kind: Hypervisor,
    map: &[E820Entry],
    cmdline: Option<(u64, &str)>,
    modules: &[Range],
    heap: Range,
    top: u64,
    nx: bool,
) {
    report!("hvmlite {} startup_64: zero page at {:#x}", env!("CARGO_PKG_VERSION"), zp_paddr);
    match hv {
        Some(r) => {
            report!("entry: {}", if r.entry == hvinfo::ENTRY_PVH { "pvh" } else { "unknown" });
            let sig = core::str::from_utf8(&r.signature).unwrap_or("?").trim_end_matches('\0');
            report!("hypervisor: {} (cpuid base {:#x}, signature {})", kind, r.cpuid_base, Quoted(sig));
        }
        None => {
            report!("entry: unknown (zero page has no hypervisor record)");
            report!("hypervisor: {}", kind);
        }
    }
    let subarch = { zp.hdr.hardware_subarch };
    report!("subarch: {} ({})", subarch, if subarch == X86_SUBARCH_XEN { "xen" } else { "pc" });
    if let Some(r) = hv {
        report!(
            "start_info: version {} at {:#x} flags {:#x}",
            r.start_info_version,
            r.start_info_paddr,
            r.start_info_flags
        );
    }
    let source = match hv {
        Some(r) if r.flags & hvinfo::HVINFO_F_MEMMAP_FROM_HYPERCALL != 0 => "hypercall",
        Some(_) => "start_info",
        None => "zero page",
    };
    report!("e820: {} entries from {}", map.len(), source);
    for (i, e) in map.iter().enumerate() {
        let (addr, end, t) = (e.addr, e.end(), e.type_);
        report!("e820[{}]: {:#018x}-{:#018x} {}", i, addr, end, e820::type_name(t));
    }
    match cmdline {
        Some((_, s)) => report!("cmdline: {}", Quoted(s)),
        None => report!("cmdline: none"),
    }
    report!("modules: {}", modules.len());
    for (i, m) in modules.iter().enumerate() {
        report!("module[{}]: {:#x}-{:#x} size {:#x}", i, m.start, m.end, m.len());
    }
    match zp.initrd() {
        Some(r) => report!("initrd: {:#x} size {:#x}", r.start, r.len()),
        None => report!("initrd: none"),
    }
    let rsdp = { zp.acpi_rsdp_addr };
    report!("rsdp: {:#x}", rsdp);
    report!("heap: {:#x}-{:#x} ({} KiB)", heap.start, heap.end, heap.len() / 1024);
    report!("paging: identity 0-{:#x}, text rx, rodata r, data nx{}", top, if nx { "" } else { " (no NX on this CPU)" });
    paging_audit();
    report!("ready");
}

/// What the command line asks for (the README lists the options):
/// `poweroff`: power off after the report; `hvmlite.crash=KIND`: fail on
/// purpose (`panic`, `null`, `stack`), to see the crash path work.
fn run(cmdline: &str) {
    for arg in cmdline.split_ascii_whitespace() {
        match arg {
            "poweroff" => platform::shutdown(Shutdown::Poweroff),
            "hvmlite.crash=panic" => panic!("crash requested on the command line"),
            "hvmlite.crash=null" => {
                // SAFETY: deliberately not: reading address 0 must fault,
                // and the fault handler must report it.
                let v = unsafe { core::ptr::read_volatile(core::hint::black_box(0usize) as *const u64) };
                panic!("reading NULL returned {v:#x}: the NULL page is mapped");
            }
            "hvmlite.crash=stack" => {
                let depth = recurse(0);
                panic!("recursion ended at depth {depth}: no stack guard");
            }
            _ => {}
        }
    }
}


/// Unbounded recursion with a real frame per call, for `hvmlite.crash=stack`.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = core::hint::black_box([n; 32]);
    recurse(n + 1) + frame[7]
}
