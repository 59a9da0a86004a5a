//! Stage 4: the loader role — start a stock Linux kernel from a payload
//! bundle ([`crate::payload::bundle`]) with the zero page hvmlite built.
//!
//! Called by `startup_64` after the boot report. The payload is either
//! embedded in the image (a self-contained hvmlite ELF made by
//! `hvmlite pack --elf`: the pack tool fills in [`EMBEDDED`]) or the first
//! PVH module, when that module is a bundle (any other module stays an
//! ordinary initrd, and hvmlite ends its run as before). Then:
//!
//! 1. parse the bundle and the kernel ([`crate::payload::kernel`]);
//! 2. build hand-off page tables (an identity map of all RAM, executable)
//!    in the heap;
//! 3. place the kernel ([`crate::payload::placement`]) clear of everything reserved;
//! 4. copy its segments there, zero-fill the rest (unless the ELF loader
//!    already put them in place: a self-contained ELF's preloaded kernel);
//! 5. give the zero page the kernel's setup header, the payload's initrd
//!    (in place inside the bundle; for an embedded bundle without one, the
//!    boot's first module) and command line (the bundle's, then the boot's);
//! 6. jump (`handoff.s`): through the Linux 64-bit boot protocol with the
//!    zero page, or — when the boot is the initial domain and the kernel has
//!    a PVH entry, or `hvmlite.handoff=pvh` asks — through the kernel's own
//!    PVH entry with a `struct hvm_start_info` ([`crate::payload::pvh`]).
//!
//! The kernel entered at its PVH entry must lie at its own physical address
//! (Linux 6.1's PVH entry code is not relocatable); when the boot's module
//! (the bundle) lies there, as Xen puts a dom0's modules right after its
//! kernel (hvmlite), the bundle is first moved clear of it.
//!
//! Every failure is one `FATAL` line and the crash shutdown.

use crate::arch::cell::{BootCell, Page};
use crate::arch::memory::Range;
use crate::arch::paging;
use crate::arch::paging::TableAlloc;
use crate::boot::image::{embedded_range, preloaded_kernel_range};
use crate::boot::pvh::EarlyMem;
use crate::boot::start_info::Handover;
use crate::boot::zero_page::{self, BootParams};
use crate::boot::Boot;
use crate::payload::bundle::{self, Verify};
use crate::payload::kernel::{self, Format, Kernel};
use crate::payload::placement::{self, Request};
use crate::payload::pvh::{self, Handoff, StartInfoSpec};
use crate::platform;
use crate::platform::console::Quoted;
use x86_64::structures::paging::PageTable;

core::arch::global_asm!(
    include_str!("handoff.s"),
    BOOT_CS = const 0x10,
    BOOT_DS = const 0x18,
    PVH_CS32 = const 0x08,
    PVH_DS = const 0x18,
    options(att_syntax)
);

extern "C" {
    fn hvmlite_handoff(entry: u64, boot_params: u64, cr3: u64) -> !;
    fn hvmlite_handoff_pvh(entry: u64, start_info: u64, cr3: u64) -> !;
    /// TSC at the 32-bit entry (entry.s).
    static entry_tsc: u64;
}

/// The kernel's zero page and command line.
static LINUX_ZP: BootCell<Page<BootParams>> = BootCell::new(Page(BootParams::zeroed()));
static LINUX_CMDLINE: BootCell<Page<[u8; 4096]>> = BootCell::new(Page([0; 4096]));
/// The start_info page of the PVH hand-off (start_info, module list, memmap).
static PVH_START_INFO: BootCell<Page<[u8; 4096]>> = BootCell::new(Page([0; 4096]));

macro_rules! fatal {
    ($($t:tt)*) => { platform::fatal(format_args!("payload: {}", format_args!($($t)*))) };
}

/// Bytes of identity-mapped, reserved RAM.
///
/// # Safety
/// `r` must be RAM that the runtime page tables map and that nothing
/// writes while the slice lives.
unsafe fn phys_slice(r: Range) -> &'static [u8] {
    // SAFETY: forwarded to the caller.
    unsafe { core::slice::from_raw_parts(r.start as *const u8, r.len() as usize) }
}

/// Start the payload, if there is one; return if there is none.
///
/// Everything comes from what the boot established: the zero page
/// `startup_64` got, its e820 map, everything that must survive (the heap
/// included), the end of the identity map, the command line hvmlite was
/// given.
pub fn start(boot: &Boot) {
    let zp = boot.zero_page;
    let boot_cmdline = boot.cmdline.unwrap_or("");
    let (range, source) = match (embedded_range(), zp.initrd()) {
        (Some(r), _) => (r, "embedded"),
        (None, Some(r)) => (r, "module"),
        (None, None) => return,
    };
    // SAFETY: the embedded bundle is a segment of our own image and the
    // module lies in RAM (start_info validation checked it against the
    // map); both are reserved, so nothing writes them; the runtime page
    // tables map all RAM.
    let bytes = unsafe { phys_slice(range) };
    if !bundle::is_bundle(bytes) {
        if source == "embedded" {
            fatal!("the embedded payload at {:#x} is not a bundle", range.start);
        }
        return; // an ordinary initrd: not ours to start
    }
    // The kernel's and initrd's CRCs cost more than the rest of hvmlite
    // under emulation: checked on request (`hvmlite.verify`) only.
    let verify = if boot_cmdline.split_ascii_whitespace().any(|a| a == "hvmlite.verify") { Verify::All } else { Verify::Small };
    let mut b = bundle::parse(bytes, verify).unwrap_or_else(|e| fatal!("{e}"));
    log::info!("payload: bundle v{} from {} at {:#x} size {:#x}", b.version, source, range.start, b.total_size);
    let mut k = kernel::parse(b.kernel).unwrap_or_else(|e| fatal!("{e}"));
    let preloaded = match (k.format, b.kernel_format) {
        (Format::BzImage, bundle::FORMAT_BZIMAGE) | (Format::Vmlinux, bundle::FORMAT_VMLINUX) => None,
        (Format::Vmlinux, bundle::FORMAT_VMLINUX_PRELOADED) => {
            // Only an embedded bundle can say where its kernel was loaded,
            // and the record must describe exactly this kernel.
            let at = preloaded_kernel_range().filter(|_| source == "embedded");
            let want = Range::sized(k.min_addr, k.span);
            if at.is_none() || at != want || k.segments().iter().any(|s| !s.data.is_empty()) {
                fatal!("the bundle's preloaded kernel does not match where the image says it was loaded");
            }
            at
        }
        (f, n) => fatal!("the bundle says kernel format {n} but the kernel is a {}", f.name()),
    };
    // The PVH entry: the kernel's own note, else the one the pack tool
    // recorded (a compressed bzImage hides its notes).
    let pvh_entry = match (k.pvh_entry, b.pvh_entry) {
        (Some(own), Some(rec)) if own != rec => fatal!("the bundle records PVH entry {rec:#x}, the kernel's note says {own:#x}"),
        (own, rec) => own.or(rec),
    };
    // The PVH entry wants the kernel at its own address: move a module
    // bundle that lies there out of the way first (`launch` chooses the
    // hand-off again, the same way, and says so).
    let mut moved = None;
    if handoff(boot, &k, pvh_entry) == Some(Handoff::Pvh) && preloaded.is_none() && source == "module" {
        let want = Range::sized(k.min_addr, k.span).unwrap_or_else(|| fatal!("the kernel's range wraps"));
        if want.overlaps(&range) {
            let to = move_bundle(boot, range, want, b.total_size);
            log::info!("payload: bundle moved to {:#x}-{:#x}, clear of the kernel's {:#x}-{:#x}", to.start, to.end, want.start, want.end);
            // SAFETY: `to` is free RAM the runtime tables map, just written.
            let bytes = unsafe { phys_slice(to) };
            b = bundle::parse(bytes, Verify::Small).unwrap_or_else(|e| fatal!("the moved bundle: {e}"));
            k = kernel::parse(b.kernel).unwrap_or_else(|e| fatal!("{e}"));
            moved = Some(to);
        }
    }
    // The bundle's initrd, in place; an embedded bundle without one takes
    // the boot's first module (xl's `ramdisk=`, QEMU's `-initrd`).
    let initrd = match b.initrd {
        Some(i) => Range::sized(i.as_ptr() as u64, i.len() as u64),
        None if source == "embedded" => zp.initrd(),
        None => None,
    };
    let occupied = moved.as_slice();
    let (image, setup_header, cmdline) = (b.kernel, b.setup_header, b.cmdline);
    let vacated = moved.map(|_| range);
    launch(boot, &Payload { image, kernel: k, setup_header, preloaded, initrd, cmdline, occupied, pvh_entry, vacated })
}

/// The hand-off `launch` will choose, when it will not refuse.
fn handoff(boot: &Boot, k: &Kernel, pvh_entry: Option<u64>) -> Option<Handoff> {
    let flags = boot.hvinfo.as_ref().map_or(0, |h| h.start_info_flags);
    pvh::choose(boot.cmdline.unwrap_or(""), flags, pvh_entry, k.format == Format::BzImage).ok().map(|(h, _)| h)
}

/// A kernel to start, wherever it came from (a bundle, a disk).
pub struct Payload<'a> {
    /// The kernel file, and what [`kernel::parse`] made of it.
    pub image: &'a [u8],
    pub kernel: Kernel<'a>,
    /// A bzImage's setup header kept beside a vmlinux made from it.
    pub setup_header: Option<&'a [u8]>,
    /// Where the kernel already lies, loaded in place (a self-contained
    /// image's), if it does.
    pub preloaded: Option<Range>,
    pub initrd: Option<Range>,
    /// The payload's own command line; the boot's follows it.
    pub cmdline: &'a str,
    /// Memory the payload lies in that is not among the boot's reserved
    /// ranges (buffers a disk was read into): placement avoids it too.
    pub occupied: &'a [Range],
    /// The kernel's PVH entry (`XEN_ELFNOTE_PHYS32_ENTRY`), when known.
    pub pvh_entry: Option<u64>,
    /// Memory the payload lay in and left (a bundle moved away): the
    /// boot's reserved ranges inside it need not be avoided.
    pub vacated: Option<Range>,
}

/// Ranges placement must avoid: the boot's reserved ones and the
/// payload's own, less `except` (a preloaded kernel's own spot).
const MAX_AVOID: usize = 272;

/// Start `p` with the zero page hvmlite built. Never returns: every failure
/// is a `FATAL` line and the crash shutdown.
pub fn launch(boot: &Boot, p: &Payload) -> ! {
    let (zp, map, top) = (boot.zero_page, boot.e820, boot.map_top);
    let boot_cmdline = boot.cmdline.unwrap_or("");
    let k = &p.kernel;
    match k.version(p.image) {
        Some(v) => log::info!("payload: kernel {} {} ({:#x} bytes)", k.format.name(), Quoted(v), p.image.len()),
        None => log::info!("payload: kernel {} ({:#x} bytes)", k.format.name(), p.image.len()),
    }
    // Which hand-off (`pvh::choose`): the boot's start_info flags come
    // through the hypervisor record.
    let si_flags = boot.hvinfo.as_ref().map_or(0, |h| h.start_info_flags);
    let (handoff, why) = pvh::choose(boot_cmdline, si_flags, p.pvh_entry, k.format == Format::BzImage).unwrap_or_else(|e| fatal!("{e}"));
    match (handoff, p.pvh_entry) {
        (Handoff::Pvh, Some(e)) => log::info!("payload: handoff pvh, entry {e:#x} ({why})"),
        _ => log::info!("payload: handoff {} ({why})", handoff.name()),
    }
    let is_pvh = handoff == Handoff::Pvh;
    match p.initrd {
        Some(r) => log::info!("payload: initrd {:#x} size {:#x}", r.start, r.len()),
        None => log::info!("payload: initrd none"),
    }

    // The command line: the payload's, then the boot's.
    // SAFETY: launch runs once; these statics are its own.
    let (linux_zp, cmdline) = unsafe { (&mut LINUX_ZP.get().0, &mut LINUX_CMDLINE.get().0) };
    let sep = if !p.cmdline.is_empty() && !boot_cmdline.is_empty() { " " } else { "" };
    let len = p.cmdline.len() + sep.len() + boot_cmdline.len();
    if len >= cmdline.len() {
        fatal!("the kernel command line would be {len} bytes (at most {})", cmdline.len() - 1);
    }
    for (dst, src) in cmdline.iter_mut().zip(p.cmdline.bytes().chain(sep.bytes()).chain(boot_cmdline.bytes())) {
        *dst = src;
    }
    cmdline[len] = 0;
    let text = core::str::from_utf8(&cmdline[..len]).unwrap_or("");
    log::info!("payload: cmdline {}", Quoted(text));

    let header = k.setup_header.or(p.setup_header);
    let built = kernel::linux_zero_page(zp, header, (cmdline.as_ptr() as u64, len), p.initrd);
    *linux_zp = built.unwrap_or_else(|e| fatal!("{e}"));

    // Tables the kernel starts on: RAM identity-mapped and executable
    // (hvmlite's own map is W^X, which a kernel's first instructions are
    // not). They live in hvmlite's image, below any kernel: see
    // `HandoffTables`.
    let mapped = top.min(HANDOFF_MAP_LIMIT);
    // SAFETY: launch runs once; the pool is its own.
    let mut tables = HandoffTables { pool: unsafe { &mut HANDOFF_POOL.get().0 }, used: 0 };
    let cr3 = paging::build_identity(&mut tables, mapped, &[], false).unwrap_or_else(|e| fatal!("page tables: {e}"));

    let req = Request {
        span: k.span,
        align: k.align,
        min_addr: k.min_addr,
        // A preloaded kernel stays where it is: only check that spot. So
        // does one entered at its PVH entry, whose code is linked there.
        relocatable: k.relocatable && p.preloaded.is_none() && !is_pvh,
        max_end: if k.above_4g { mapped } else { mapped.min(1 << 32) },
    };
    // Its own range is reserved (startup_64 kept it from the heap); what
    // else is reserved must not overlap it. Where a moved bundle was is
    // free now. For the PVH hand-off, which needs the kernel at its own
    // address, so is what the boot handed over besides modules
    // (start_info, memmap, command lines, module list: Xen puts them right
    // after a dom0's modules): all that was read and copied by now, and the
    // kernel gets a start_info of hvmlite's own.
    let mut spent = [Range::new(0, 0); 16];
    let mut nspent = 0;
    if is_pvh {
        let walk = zero_page::for_each_bootmem(&EarlyMem, zp, |e| {
            if e.kind != Handover::Module as u32 && nspent < spent.len() {
                spent[nspent] = Range::sized(e.addr, e.size).unwrap_or_default();
                nspent += 1;
            }
        });
        walk.unwrap_or_else(|e| fatal!("{e}"));
    }
    let spent = &spent[..nspent];
    let free_now = |r: &Range| p.vacated.is_some_and(|v| v.contains(r)) || spent.iter().any(|s| s.contains(r));
    let mut avoid = [Range::new(0, 0); MAX_AVOID];
    let others = boot.reserved.iter().filter(|r| !free_now(r)).chain(p.occupied).filter(|r| Some(**r) != p.preloaded);
    let n = others.zip(avoid.iter_mut()).map(|(r, b)| *b = *r).count();
    if n == MAX_AVOID {
        fatal!("more than {MAX_AVOID} ranges to keep clear of the kernel");
    }
    let load = placement::place(map, &avoid[..n], &req).unwrap_or_else(|e| fatal!("{e}"));
    let entry = load + k.entry_offset;
    let how = if p.preloaded.is_some() { " (preloaded)" } else { "" };
    log::info!("payload: load {:#x}-{:#x} entry {:#x}{}", load, load + k.span, entry, how);
    // What the kernel reads before it has its own tables must lie where
    // it cannot land while it moves itself (see `placement::handoff_state_is_clear`).
    let state = [tables.range(), Range::new(handoff_gdt(), handoff_gdt() + 64)];
    if let Err(r) = placement::handoff_state_is_clear(load, &state) {
        fatal!("hand-off state {:#x}-{:#x} lies above the kernel's load address {load:#x}", r.start, r.end);
    }

    // A preloaded kernel's segments (and their zero fill) are in place.
    let copy = if p.preloaded.is_some() { &[][..] } else { k.segments() };
    for s in copy {
        let dst = load + s.offset;
        // SAFETY: [load, load + span) is RAM that overlaps nothing reserved
        // or occupied (placement checked), so neither the bytes we copy
        // from nor anything hvmlite still uses; the runtime tables map it
        // writable.
        unsafe {
            core::ptr::copy_nonoverlapping(s.data.as_ptr(), dst as *mut u8, s.data.len());
            core::ptr::write_bytes((dst + s.data.len() as u64) as *mut u8, 0, (s.mem_size - s.data.len() as u64) as usize);
        }
    }
    // SAFETY: written once by entry.s before anything else ran.
    let t0 = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(entry_tsc)) };
    // On Xen, the e820 the kernel gets calls every frame of RAM RAM: Xen's
    // pages hvmlite mapped over RAM (shared info, the grant table) go, and
    // RAM comes back in their place. Left there, a kernel that puts itself
    // over them (a bzImage's decompressor with KASLR picks a random spot)
    // would have Xen writing into its code. And the kernel binds VIRQ_TIMER
    // itself, which Xen allows once. The event callback hvmlite set
    // (`Boot::xenstore`) goes too: Xen starts a domain with none, and a
    // kernel sets its own once it has an IDT entry for it, so no upcall
    // can reach it at a vector it did not choose.
    if crate::xen::hypercalls_ready() {
        let _ = crate::xen::evtchn::release_callback();
        crate::xen::events::release_timer();
        crate::xen::evtchn::release_shared_info().unwrap_or_else(|e| fatal!("giving the shared info frame back as RAM failed ({e})"));
        crate::xen::gnttab::release().unwrap_or_else(|e| fatal!("giving the grant table frame back as RAM failed ({e})"));
    }
    if let (Handoff::Pvh, Some(e)) = (handoff, p.pvh_entry) {
        // The PVH entry is physical for the kernel at min_addr (where it is).
        let entry = e + (load - k.min_addr);
        // SAFETY: launch runs once; this static is its own.
        let si = unsafe { &mut PVH_START_INFO.get().0 };
        let si_paddr = si.as_ptr() as u64;
        let cmdline_paddr = cmdline.as_ptr() as u64;
        // Both pages are in hvmlite's image, which placement kept the
        // kernel clear of; the kernel reads them before it allocates
        // anything, and the memmap says they are reserved all the same.
        let keep = [Range::new(si_paddr, si_paddr + 4096), Range::new(cmdline_paddr, cmdline_paddr + 4096)];
        let spec = StartInfoSpec { flags: si_flags, cmdline_paddr, rsdp_paddr: zp.acpi_rsdp_addr, initrd: p.initrd, map, keep: &keep };
        let n = pvh::build_start_info(si, si_paddr, &spec).unwrap_or_else(|e| fatal!("{e}"));
        if entry >> 32 != 0 || si_paddr >> 32 != 0 {
            fatal!("the PVH entry {entry:#x} and start_info {si_paddr:#x} must lie below 4 GiB");
        }
        log::info!(
            "handoff: pvh entry {:#x} start_info {:#x} cmdline {:#x} ({} memmap entries), tsc {} since entry",
            entry,
            si_paddr,
            cmdline_paddr,
            n,
            rdtsc().wrapping_sub(t0)
        );
        // SAFETY: the entry lies in the kernel just put in place; start_info,
        // the command line, the trampoline and its GDT are in hvmlite's
        // image (below 4 GiB and below the kernel, identity-mapped by `cr3`).
        unsafe { hvmlite_handoff_pvh(entry, si_paddr, cr3) }
    }
    let zp_paddr = linux_zp as *const BootParams as u64;
    let t1 = rdtsc();
    log::info!("handoff: zero page {:#x}, tsc {} since entry", zp_paddr, t1.wrapping_sub(t0));
    // SAFETY: the kernel is in place; the zero page, command line, page
    // tables and GDT are in hvmlite's image, below the kernel (checked
    // above), and `cr3` maps all of it.
    unsafe { hvmlite_handoff(entry, zp_paddr, cr3) }
}

/// How far the hand-off tables identity-map RAM: 64 GiB with 2 MiB pages
/// takes 1 + 1 + 64 tables. The kernel, its zero page, command line and
/// initrd are placed below this; the kernel maps the rest itself.
const HANDOFF_MAP_LIMIT: u64 = 64 << 30;
const HANDOFF_TABLES: usize = 2 + (HANDOFF_MAP_LIMIT >> 30) as usize;

/// The hand-off page tables, in hvmlite's image.
///
/// A kernel entered at its 64-bit entry runs on them until it has built
/// its own, and a bzImage's decompressor meanwhile moves itself (with
/// KASLR, to a random address above its load address, avoiding only the
/// zero page, command line, initrd, `setup_data` and itself). hvmlite's
/// image lies at 1 MiB, below every kernel it places, where nothing the
/// kernel does before then can land; tables in the heap, at the top of
/// RAM, would be only as safe as the kernel's own bookkeeping keeps them.
static HANDOFF_POOL: BootCell<Page<[PageTable; HANDOFF_TABLES]>> = BootCell::new(Page([const { PageTable::new() }; HANDOFF_TABLES]));

struct HandoffTables {
    pool: &'static mut [PageTable; HANDOFF_TABLES],
    used: usize,
}

impl HandoffTables {
    fn range(&self) -> Range {
        let base = self.pool.as_ptr() as u64;
        Range::new(base, base + (HANDOFF_TABLES * 4096) as u64)
    }
}

impl TableAlloc for HandoffTables {
    fn alloc(&mut self) -> Option<u64> {
        let t = self.pool.get_mut(self.used)?;
        self.used += 1;
        Some(t as *mut PageTable as u64)
    }
    fn table(&mut self, paddr: u64) -> &mut PageTable {
        let i = ((paddr - self.pool.as_ptr() as u64) / 4096) as usize;
        &mut self.pool[i]
    }
}

fn handoff_gdt() -> u64 {
    extern "C" {
        static boot_gdt: u8;
    }
    // An entry.s symbol: only its address is taken.
    core::ptr::addr_of!(boot_gdt) as u64
}

/// Copy the module bundle at `from` (`size` bytes of it) to free RAM clear
/// of `avoid` and of everything reserved; return where it went.
fn move_bundle(boot: &Boot, from: Range, avoid: Range, size: u64) -> Range {
    let mut buf = [Range::new(0, 0); MAX_AVOID];
    let n = boot.reserved.iter().chain(core::iter::once(&avoid)).zip(buf.iter_mut()).map(|(r, b)| *b = *r).count();
    if n == buf.len() {
        fatal!("more than {MAX_AVOID} reserved ranges");
    }
    // The old place is reserved (a module), so the new one cannot overlap it.
    let free =
        crate::arch::memory::largest_free(boot.e820, &buf[..n], 1 << 20, boot.map_top).filter(|f| f.len() >= size).unwrap_or_else(|| {
            fatal!("no room to move the bundle ({size:#x} bytes) clear of the kernel's {:#x}-{:#x}", avoid.start, avoid.end)
        });
    let to = Range::new(free.start, free.start + size);
    // SAFETY: `from` is the reserved module (readable, mapped); `to` is free
    // RAM the runtime tables map writable; they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(from.start as *const u8, to.start as *mut u8, size as usize) };
    to
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}
