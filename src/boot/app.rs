//! Stage 4: the app. `startup_64` ends by calling the app's `main` (named
//! with [`crate::app!`]) with a [`Boot`]: everything the boot established.
//! The runtime never names an app; the app picks what it needs from here.

use crate::arch::e820::{self, E820Entry};
use crate::arch::hypervisor::Hypervisor;
use crate::arch::memory::Range;
use crate::arch::paging::{self, TableAlloc};
use crate::boot::hvinfo::{self, HvInfo};
use crate::boot::image::image_layout;
use crate::boot::traps::XEN_CALLBACK_VECTOR;
use crate::boot::zero_page::{BootParams, X86_SUBARCH_XEN};
use crate::platform::console::Quoted;
use crate::platform::{self, Shutdown};
use crate::xen::evtchn;
use crate::xen::store::{self, OpenError, Store};
use x86_64::structures::paging::PageTable;

macro_rules! report {
    ($($t:tt)*) => { log::info!($($t)*) };
}

/// What the boot established, handed to the app's `main`.
pub struct Boot {
    /// The zero page `startup_64` was given (a copy in hvmlite's image).
    pub zero_page: &'static BootParams,
    /// Where the zero page lay when `startup_64` got it.
    pub zero_page_paddr: u64,
    /// hvmlite's hypervisor-info record, when the zero page carried one.
    pub hvinfo: Option<HvInfo>,
    pub hypervisor: Hypervisor,
    /// The sanitised memory map.
    pub e820: &'static [E820Entry],
    /// What must survive: hvmlite's image, the zero page and all it points
    /// to, the ranges the boot handed over, the heap.
    pub reserved: &'static [Range],
    /// The boot's modules (PVH modules: QEMU `-initrd`, xl `ramdisk=`).
    pub modules: &'static [Range],
    /// The command line, when there is one (valid UTF-8).
    pub cmdline: Option<&'static str>,
    /// The heap behind `alloc` (also reserved).
    pub heap: Range,
    /// End of the identity map: all RAM (and the first 4 GiB) is mapped.
    pub map_top: u64,
    /// Whether the page tables can mark pages no-execute.
    pub nx: bool,
}

/// Call the app. Only `startup_64` does, once.
pub(crate) fn start(boot: Boot) -> ! {
    extern "Rust" {
        /// Defined by the app through `hvmlite::app!(main)`.
        fn __hvmlite_app_main(boot: Boot) -> !;
    }
    // SAFETY: `app!` defines the symbol with exactly this signature; an
    // image without an app does not link.
    unsafe { __hvmlite_app_main(boot) }
}

impl Boot {
    /// The command line's words.
    pub fn args(&self) -> core::str::SplitAsciiWhitespace<'static> {
        self.cmdline.unwrap_or("").split_ascii_whitespace()
    }

    /// This domain's xenstore, on a Xen domU (`None` elsewhere, and on
    /// dom0, which has no xenstore ring of its own at boot).
    pub fn xenstore(&self) -> Option<Result<Store, OpenError>> {
        if self.hypervisor != Hypervisor::Xen || !store::available() {
            return None;
        }
        if let Err(e) = evtchn::init() {
            return Some(Err(OpenError::SharedInfo(e)));
        }
        // Tell the toolstack there is a PV-aware guest here (libxl looks at
        // the callback parameter of HVM-type guests). The vector arrives
        // only while the task runtime idles in `sti; hlt` (rt/reactor.rs);
        // everywhere else interrupts are off.
        let _ = evtchn::set_callback_vector(XEN_CALLBACK_VECTOR);
        Some(store::open())
    }

    /// Print the boot report (docs/report.md): what hvmlite found, line by
    /// line, ending with `ready`.
    pub fn report(&self) {
        self.report_to(&mut |line| report!("{line}"));
        paging_audit();
        report!("ready");
    }

    /// The boot report's lines up to the paging line, each handed to `out`
    /// (an app serving the report over the network writes them into a
    /// page; [`report`](Self::report) logs them).
    pub fn report_to(&self, out: &mut dyn FnMut(core::fmt::Arguments)) {
        macro_rules! report {
            ($($t:tt)*) => { out(format_args!($($t)*)) };
        }
        report!("hvmlite {} startup_64: zero page at {:#x}", env!("CARGO_PKG_VERSION"), self.zero_page_paddr);
        match &self.hvinfo {
            Some(r) => {
                report!("entry: {}", if r.entry == hvinfo::ENTRY_PVH { "pvh" } else { "unknown" });
                let sig = core::str::from_utf8(&r.signature).unwrap_or("?").trim_end_matches('\0');
                report!("hypervisor: {} (cpuid base {:#x}, signature {})", self.hypervisor, r.cpuid_base, Quoted(sig));
            }
            None => {
                report!("entry: unknown (zero page has no hypervisor record)");
                report!("hypervisor: {}", self.hypervisor);
            }
        }
        let subarch = { self.zero_page.hdr.hardware_subarch };
        report!("subarch: {} ({})", subarch, if subarch == X86_SUBARCH_XEN { "xen" } else { "pc" });
        if let Some(r) = &self.hvinfo {
            report!("start_info: version {} at {:#x} flags {:#x}", r.start_info_version, r.start_info_paddr, r.start_info_flags);
        }
        let source = match &self.hvinfo {
            Some(r) if r.flags & hvinfo::HVINFO_F_MEMMAP_FROM_HYPERCALL != 0 => "hypercall",
            Some(_) => "start_info",
            None => "zero page",
        };
        report!("e820: {} entries from {}", self.e820.len(), source);
        for (i, e) in self.e820.iter().enumerate() {
            let (addr, end, t) = (e.addr, e.end(), e.type_);
            report!("e820[{}]: {:#018x}-{:#018x} {}", i, addr, end, e820::type_name(t));
        }
        match self.cmdline {
            Some(s) => report!("cmdline: {}", Quoted(s)),
            None => report!("cmdline: none"),
        }
        report!("modules: {}", self.modules.len());
        for (i, m) in self.modules.iter().enumerate() {
            report!("module[{}]: {:#x}-{:#x} size {:#x}", i, m.start, m.end, m.len());
        }
        match self.zero_page.initrd() {
            Some(r) => report!("initrd: {:#x} size {:#x}", r.start, r.len()),
            None => report!("initrd: none"),
        }
        let rsdp = { self.zero_page.acpi_rsdp_addr };
        report!("rsdp: {:#x}", rsdp);
        report!("heap: {:#x}-{:#x} ({} KiB)", self.heap.start, self.heap.end, self.heap.len() / 1024);
        report!("paging: identity 0-{:#x}, text rx, rodata r, data nx{}", self.map_top, if self.nx { "" } else { " (no NX on this CPU)" });
    }

    /// What the command line asks for (the README lists the options):
    /// `poweroff`: power off after the report; `hvmlite.crash=KIND`: fail on
    /// purpose (`panic`, `null`, `stack`), to see the crash path work.
    pub fn obey_cmdline(&self) {
        for arg in self.args() {
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
}

/// Unbounded recursion with a real frame per call, for `hvmlite.crash=stack`.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = core::hint::black_box([n; 32]);
    recurse(n + 1) + frame[7]
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
