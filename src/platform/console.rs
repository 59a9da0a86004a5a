//! The console, chosen by hypervisor type, behind the `log` facade.
//!
//! - Xen: the `console_io` hypercall when Xen accepts it (dom0, debug
//!   builds), and port 0xe9, which Xen prints as `(dN) …` with
//!   `guest_loglvl=all`.
//! - Elsewhere: port 0xe9 (QEMU `-debugcon`) and the 16550 UART at COM1.
//!
//! Every line is written whole (one hypercall per line on Xen) and starts
//! with `hvmlite: `, so a reader can pick hvmlite's lines out of a shared
//! console. The README documents the boot report built from these lines.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::cpu;
use crate::arch::hypervisor::Hypervisor;
use crate::xen;

const SINK_E9: u32 = 1 << 0;
const SINK_COM1: u32 = 1 << 1;
const SINK_XEN: u32 = 1 << 2;
const SINK_PV: u32 = 1 << 3;

static SINKS: AtomicU32 = AtomicU32::new(SINK_E9);
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

const COM1: u16 = 0x3f8;
const DEBUGCON: u16 = 0xe9;

/// Pick the console for `hv` and install the logger (idempotent).
///
/// On Xen, hvmlite prefers the `console_io` hypercall whenever Xen accepts
/// it (a zero-length write tells): its output is always shown, while port
/// 0xe9 output is shown only with `guest_loglvl=all`. The two are not used
/// together, as Xen would print every line twice.
pub fn init(hv: Hypervisor) {
    let sinks = match hv {
        Hypervisor::Xen if xen::console_write(b"") >= 0 => SINK_XEN,
        Hypervisor::Xen => SINK_E9,
        _ => {
            init_com1();
            SINK_E9 | SINK_COM1
        }
    };
    SINKS.store(sinks, Ordering::Release);
    static LOGGER: Logger = Logger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Add the PV console (what `xl console` shows) once it is set up.
pub fn attach_pv_console() {
    SINKS.fetch_or(SINK_PV, Ordering::AcqRel);
}

/// Stop using the PV console (its ring is corrupt).
pub fn detach_pv_console() {
    SINKS.fetch_and(!SINK_PV, Ordering::AcqRel);
}

/// Apply `hvmlite.console=LIST` from the command line: a comma-separated
/// choice of `xen` (console_io), `e9` and `com1`. Unknown names are
/// reported and the console stays as it was.
pub fn select(list: &str) {
    let mut sinks = 0;
    for name in list.split(',') {
        sinks |= match name {
            "xen" => SINK_XEN,
            "e9" => SINK_E9,
            "com1" => {
                init_com1();
                SINK_COM1
            }
            _ => {
                log::warn!("hvmlite.console: unknown console {name:?} (use xen, e9, com1)");
                return;
            }
        };
    }
    if sinks & SINK_XEN != 0 && !(xen::hypercalls_ready() && xen::console_write(b"") >= 0) {
        log::warn!("hvmlite.console: Xen refuses console_io here; using e9");
        sinks = (sinks & !SINK_XEN) | SINK_E9;
    }
    SINKS.store(sinks, Ordering::Release);
}

fn init_com1() {
    // SAFETY: programming the standard 16550 at COM1: 115200 8N1, FIFOs on,
    // interrupts off. With no UART there, the writes go nowhere.
    unsafe {
        cpu::outb(COM1 + 1, 0x00);
        cpu::outb(COM1 + 3, 0x80);
        cpu::outb(COM1, 0x01);
        cpu::outb(COM1 + 1, 0x00);
        cpu::outb(COM1 + 3, 0x03);
        cpu::outb(COM1 + 2, 0xc7);
        cpu::outb(COM1 + 4, 0x03);
    }
}

fn emit(bytes: &[u8]) {
    let sinks = SINKS.load(Ordering::Acquire);
    if sinks & SINK_XEN != 0 {
        xen::console_write(bytes);
    }
    if sinks & SINK_PV != 0 {
        if let Err(c) = crate::xen::console::write(bytes) {
            // The other end broke the ring: stop using it, say so elsewhere.
            SINKS.fetch_and(!SINK_PV, Ordering::AcqRel);
            let mut l = Line { buf: [0; 256], len: 0 };
            let _ = writeln!(l, "hvmlite: warning: PV console output ring corrupt ({c}); console dropped");
            emit(&l.buf[..l.len]);
        }
    }
    if sinks & SINK_E9 != 0 {
        // SAFETY: port 0xe9 is a write-only debug port (QEMU debugcon,
        // Xen's HVM debug port); absent, the writes are ignored.
        unsafe { cpu::outsb(DEBUGCON, bytes) };
    }
    for &b in bytes {
        if sinks & SINK_COM1 != 0 {
            // SAFETY: COM1's line status and data registers. The wait is
            // bounded: a missing UART reads 0xff, i.e. "ready".
            unsafe {
                for _ in 0..100_000 {
                    if cpu::inb(COM1 + 5) & 0x20 != 0 {
                        break;
                    }
                }
                cpu::outb(COM1, b);
            }
        }
    }
}

/// A string as the boot report quotes it: in double quotes, with `"` and
/// `\` escaped and anything not printable ASCII as `\xNN`.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' | '\\' => write!(f, "\\{c}")?,
                ' '..='~' => write!(f, "{c}")?,
                _ => write!(f, "\\x{:02x}", c as u32)?,
            }
        }
        f.write_str("\"")
    }
}

/// Collects one line so each reaches the sinks in one piece.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn flush(&mut self) {
        emit(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Print one `hvmlite: `-prefixed line. Safe to call before `init` (port
/// 0xe9 only) and from the fatal path (it does not wait forever for a lock
/// a crashed holder may keep).
pub fn line(args: fmt::Arguments) {
    let _guard = (0..1_000_000).find_map(|_| LOCK.try_lock());
    let mut l = Line { buf: [0; 256], len: 0 };
    let _ = writeln!(l, "hvmlite: {args}");
    if l.len > 0 {
        l.flush();
    }
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        match r.level() {
            log::Level::Error => line(format_args!("error: {}", r.args())),
            log::Level::Warn => line(format_args!("warning: {}", r.args())),
            _ => line(*r.args()),
        }
    }
    fn flush(&self) {}
}
