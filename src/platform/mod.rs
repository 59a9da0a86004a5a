//! Leaving: clean poweroff and crash, on every hypervisor hvmlite knows.
//!
//! - Xen: `SCHEDOP_shutdown` with `SHUTDOWN_poweroff` or `SHUTDOWN_crash`,
//!   so the toolstack (or Xen, for dom0) sees the real reason.
//! - QEMU: the `isa-debug-exit` device at port 0x501 when present; QEMU then
//!   exits with `(code << 1) | 1`: 1 for poweroff, 3 for a crash.
//! - Anything else: the CPU halts with interrupts off, after saying so.

pub mod console;

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::cpu;
use crate::arch::hypervisor::Hypervisor;
use crate::xen;

static HYPERVISOR: AtomicU32 = AtomicU32::new(Hypervisor::None as u32);

pub const QEMU_EXIT_PORT: u16 = 0x501;
/// Codes written to isa-debug-exit (QEMU exits with `code * 2 + 1`).
pub const QEMU_EXIT_POWEROFF: u8 = 0;
pub const QEMU_EXIT_CRASH: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Poweroff,
    /// On Xen: the toolstack restarts the domain. Elsewhere: as poweroff.
    Reboot,
    Crash,
}

pub fn set_hypervisor(hv: Hypervisor) {
    HYPERVISOR.store(hv as u32, Ordering::Release);
}

pub fn hypervisor() -> Hypervisor {
    Hypervisor::from_u32(HYPERVISOR.load(Ordering::Acquire))
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
    console::line(format_args!("no shutdown device answered; halting"));
    cpu::halt_forever()
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
