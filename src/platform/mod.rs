//! Leaving: clean poweroff and crash, on every hypervisor hvmlite knows.
//!
//! - Xen: `SCHEDOP_shutdown` with `SHUTDOWN_poweroff`, `SHUTDOWN_reboot` or
//!   `SHUTDOWN_crash`, so the toolstack (or Xen, for dom0) sees the real
//!   reason.
//! - QEMU: the `isa-debug-exit` device at port 0x501 when present; QEMU then
//!   exits with `(code << 1) | 1`: 1 for poweroff (and reboot), 3 for a crash.
//! - Anything else (QEMU without that device, KVM hosts, hardware): ACPI, as
//!   an OS does it, in images that ask for it ([`enable_acpi`]: every app on
//!   the task runtime; the loader leaves it out, 4 KiB smaller). Poweroff enters S5: the FADT's PM1 control ports get the
//!   DSDT's `\_S5_` sleep type with SLP_EN (after `ACPI_ENABLE` to
//!   `SMI_CMD` when SCI_EN is clear). Reboot tries the FADT's reset
//!   register, then the keyboard controller, then port 0xcf9. A crash
//!   does none of this.
//! - When nothing answers: the CPU halts with interrupts off, after saying so.

pub mod console;

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Once;

use crate::arch::acpi::{self, AcpiError, Fadt, S5};
use crate::arch::cpu;
use crate::arch::hypervisor::Hypervisor;
use crate::arch::memory::{OutOfReach, PhysMem};
use crate::arch::paging::{self, HeapTables};
use crate::xen;

static HYPERVISOR: AtomicU32 = AtomicU32::new(Hypervisor::None as u32);
static RSDP: AtomicU64 = AtomicU64::new(0);
/// The BIOS data area's EBDA segment, read while page 0 is still mapped.
static EBDA_SEGMENT: AtomicU32 = AtomicU32::new(0);
/// How to leave off Xen when isa-debug-exit did not end the run: set by
/// [`enable_acpi`], so an image that never asks carries no ACPI code.
static LEAVE_OFF_XEN: Once<fn(Shutdown)> = Once::new();

pub const QEMU_EXIT_PORT: u16 = 0x501;
/// Codes written to isa-debug-exit (QEMU exits with `code * 2 + 1`).
pub const QEMU_EXIT_POWEROFF: u8 = 0;
pub const QEMU_EXIT_CRASH: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Poweroff,
    /// On Xen: the toolstack restarts the domain. On QEMU with
    /// isa-debug-exit: as poweroff. Elsewhere: a reset.
    Reboot,
    Crash,
}

pub fn set_hypervisor(hv: Hypervisor) {
    HYPERVISOR.store(hv as u32, Ordering::Release);
}

pub fn hypervisor() -> Hypervisor {
    Hypervisor::from_u32(HYPERVISOR.load(Ordering::Acquire))
}

/// Where the boot says the RSDP is (the zero page's `acpi_rsdp_addr`; 0:
/// nowhere), and the EBDA segment from the BIOS data area, which the boot
/// reads while page 0 is mapped (the runtime tables leave it unmapped).
/// Just two stores: the search, if one is needed, is [`enable_acpi`]'s.
pub fn set_acpi_rsdp(addr: u64, ebda_segment: u16) {
    RSDP.store(addr, Ordering::Release);
    EBDA_SEGMENT.store(ebda_segment as u32, Ordering::Release);
}

/// Off Xen, let [`shutdown`] power off (S5) or reset through ACPI when
/// isa-debug-exit did not end the run. The task runtime calls it for
/// every app; an app of its own loop calls it once at start. The loader
/// image does not (it would grow by 4 KiB): off Xen, without
/// isa-debug-exit, it halts.
pub fn enable_acpi() {
    LEAVE_OFF_XEN.call_once(|| leave_by_acpi);
}

pub fn shutdown(how: Shutdown) -> ! {
    let name = match how {
        Shutdown::Poweroff => "poweroff",
        Shutdown::Reboot => "reboot",
        Shutdown::Crash => "crash",
    };
    console::line(format_args!("shutdown: {name}"));
    if hypervisor() == Hypervisor::Xen {
        let reason = match how {
            Shutdown::Poweroff => xen_sys::SHUTDOWN_poweroff,
            Shutdown::Reboot => xen_sys::SHUTDOWN_reboot,
            Shutdown::Crash => xen_sys::SHUTDOWN_crash,
        };
        let rc = xen::shutdown(reason);
        console::line(format_args!("Xen refused SCHEDOP_shutdown ({rc})"));
    }
    let code = match how {
        Shutdown::Poweroff | Shutdown::Reboot => QEMU_EXIT_POWEROFF,
        Shutdown::Crash => QEMU_EXIT_CRASH,
    };
    // SAFETY: isa-debug-exit ends QEMU; where no device is there (Xen,
    // other hypervisors) the write is dropped.
    unsafe { cpu::outb(QEMU_EXIT_PORT, code) };
    if how != Shutdown::Crash && hypervisor() != Hypervisor::Xen {
        if let Some(leave) = LEAVE_OFF_XEN.get() {
            leave(how);
        }
    }
    console::line(format_args!("no shutdown device answered; halting"));
    cpu::halt_forever()
}

/// Physical memory below 4 GiB as the live page tables map it: a read
/// touches only pages that are present and identity-mapped, so a table
/// pointer into the NULL page or a stack guard is refused, not a fault
/// inside shutdown.
struct Mapped;

impl PhysMem for Mapped {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfReach> {
        let end = addr.checked_add(buf.len() as u64).filter(|&e| e <= 4 << 30).ok_or(OutOfReach)?;
        let root = x86_64::registers::control::Cr3::read().0.start_address().as_u64();
        let mut page = addr;
        while page < end {
            // Page tables are identity-mapped (the early ones in hvmlite's
            // image, the runtime ones on its heap): HeapTables reads any.
            match paging::translate(&mut HeapTables, root, page) {
                Some(leaf) if leaf.paddr == page => page = (page | (leaf.page_size - 1)) + 1,
                _ => return Err(OutOfReach),
            }
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: every page of [addr, end) was just found present and
            // identity-mapped; volatile, byte-wise: firmware memory.
            *b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
        }
        Ok(())
    }
}

/// [`Mapped`], with the BIOS data area's EBDA segment as read at startup
/// (page 0 is unmapped by now).
struct WithEbda {
    segment: u16,
}

impl PhysMem for WithEbda {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfReach> {
        if addr == acpi::BDA_EBDA_SEGMENT && buf.len() == 2 {
            buf.copy_from_slice(&self.segment.to_le_bytes());
            return Ok(());
        }
        Mapped.read(addr, buf)
    }
}

/// PM1 control (ACPI 4.8.3.2.1): SCI_EN, SLP_TYPx, SLP_EN.
const SCI_EN: u16 = 1;
const SLP_TYP: u16 = 7 << 10;
const SLP_EN: u16 = 1 << 13;

/// Off Xen, when isa-debug-exit did not end the run: power off (S5) or
/// reset as the ACPI tables say. Returns only when the machine still runs.
fn leave_by_acpi(how: Shutdown) {
    x86_64::instructions::interrupts::disable();
    let mut rsdp = RSDP.load(Ordering::Acquire);
    if rsdp == 0 {
        let bda = WithEbda { segment: EBDA_SEGMENT.load(Ordering::Acquire) as u16 };
        rsdp = acpi::find_rsdp(&bda).unwrap_or(0);
    }
    let tables = if rsdp == 0 { Err(AcpiError::NoRsdp(0)) } else { acpi::parse(&Mapped, rsdp) };
    if let Err(e) = &tables {
        console::line(format_args!("acpi: {e}"));
    }
    let fadt = tables.as_ref().ok().map(|t| t.power);
    if how == Shutdown::Reboot {
        reset(fadt);
        return;
    }
    if let Ok(t) = tables {
        match t.s5 {
            Ok(s5) => soft_off(&t.power, s5),
            Err(e) => console::line(format_args!("acpi: {e}")),
        }
    }
}

/// Enter S5: enable ACPI if the firmware has not, then write SLP_TYP with
/// SLP_EN to PM1a control (and PM1b's, when there is one), keeping the
/// registers' other bits.
fn soft_off(p: &Fadt, s5: S5) {
    let Some(a) = p.pm1a_cnt.filter(|_| p.pm1_cnt_len >= 2) else {
        console::line(format_args!("acpi: no PM1a control port"));
        return;
    };
    // SAFETY: PM1 control, SMI_CMD and the PM timer as the FADT names
    // them, used as ACPI defines; the machine is being switched off.
    unsafe {
        if cpu::inw(a) & SCI_EN == 0 {
            if let Some(smi) = p.smi_cmd.filter(|_| p.acpi_enable != 0) {
                cpu::outb(smi, p.acpi_enable);
                wait(p.pm_tmr, 1000, &mut || cpu::inw(a) & SCI_EN != 0);
            }
        }
        console::line(format_args!("acpi: S5, SLP_TYP {} to PM1a_CNT {a:#x}", s5.slp_typ_a));
        cpu::outw(a, (cpu::inw(a) & !(SLP_TYP | SLP_EN)) | (s5.slp_typ_a as u16) << 10 | SLP_EN);
        if let Some(b) = p.pm1b_cnt {
            cpu::outw(b, (cpu::inw(b) & !(SLP_TYP | SLP_EN)) | (s5.slp_typ_b as u16) << 10 | SLP_EN);
        }
    }
    wait(p.pm_tmr, 2000, &mut || false);
    console::line(format_args!("acpi: still running after S5"));
}

/// Reset: the FADT's reset register, the keyboard controller's pulse of
/// the reset line, then the chipset's reset control at 0xcf9, each given
/// half a second to take.
fn reset(p: Option<Fadt>) {
    let tmr = p.and_then(|p| p.pm_tmr);
    // SAFETY: each write asks for a reset, which is what is wanted; the
    // reset register is the FADT's; 0x64 and 0xcf9 are the PC's.
    unsafe {
        if let Some((port, value)) = p.and_then(|p| p.reset) {
            console::line(format_args!("reset: ACPI reset register {port:#x}"));
            cpu::outb(port, value);
            wait(tmr, 500, &mut || false);
        }
        console::line(format_args!("reset: keyboard controller"));
        wait(tmr, 100, &mut || cpu::inb(0x64) & 2 == 0);
        cpu::outb(0x64, 0xfe);
        wait(tmr, 500, &mut || false);
        console::line(format_args!("reset: port 0xcf9"));
        cpu::outb(0xcf9, 0x02);
        cpu::outb(0xcf9, 0x06);
    }
    wait(tmr, 500, &mut || false);
}

/// Wait `ms` milliseconds (at most 4000), or until `done`: on the ACPI PM
/// timer (3.579545 MHz, counted 24 bits wide) when there is one, else by
/// reading port 0x80 (about a microsecond a read on a PC). Bounded either
/// way.
#[inline(never)]
fn wait(pm_tmr: Option<u16>, ms: u32, done: &mut dyn FnMut() -> bool) {
    match pm_tmr {
        Some(p) => {
            // SAFETY: reading the PM timer changes nothing.
            let now = || unsafe { cpu::inl(p) };
            let t0 = now();
            for _ in 0..ms as u64 * 20_000 {
                if done() || now().wrapping_sub(t0) & 0xff_ffff >= ms * 3580 {
                    return;
                }
            }
        }
        None => {
            for _ in 0..ms * 1000 {
                if done() {
                    return;
                }
                // SAFETY: reading the POST port changes nothing.
                unsafe { cpu::inb(0x80) };
            }
        }
    }
}

/// Say what went wrong in one line, then shut down with the crash reason.
pub fn fatal(args: fmt::Arguments) -> ! {
    console::line(format_args!("FATAL: {args}"));
    shutdown(Shutdown::Crash)
}

/// Every panic: one `FATAL` line (the message, then where), then the crash
/// shutdown.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => fatal(format_args!("panic: {} at {}:{}", info.message(), l.file(), l.line())),
        None => fatal(format_args!("panic: {}", info.message())),
    }
}
