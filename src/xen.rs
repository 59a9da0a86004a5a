//! Xen-specific set-up: the hypercall page, the hypervisor console, the
//! memory map hypercall and shutdown.
//!
//! Hypercalls go through `xen-sys`'s `hypercall_N` wrappers, which call
//! into the `HYPERCALL_PAGE` symbol defined here. Two of its helpers are
//! avoided on purpose: `sched_op` passes the shutdown reason by value where
//! x86 Xen expects a pointer to `struct sched_shutdown`, and `hypercall_5`
//! puts the fifth argument in %r9 instead of %r8.

use core::sync::atomic::{AtomicBool, Ordering};

use xen_sys::{__HYPERVISOR_console_io, __HYPERVISOR_memory_op, __HYPERVISOR_sched_op, CONSOLEIO_write, SCHEDOP_shutdown};

use crate::cpu;
use crate::e820::E820Entry;
use crate::xen_abi::{SchedShutdown, XenMemoryMap, XENMEM_MEMORY_MAP, XEN_CPUID_LEAF_HYPERCALL};

// One page of code that Xen fills in with the right hypercall instruction
// (VMCALL or VMMCALL) for each hypercall number, 32 bytes apart. Until it
// does, every byte is int3, so a too-early call traps instead of running
// garbage.
core::arch::global_asm!(
    ".section .text.hypercall_page, \"ax\"",
    ".balign 4096",
    ".globl HYPERCALL_PAGE",
    "HYPERCALL_PAGE:",
    ".fill 4096, 1, 0xcc",
);

extern "C" {
    static HYPERCALL_PAGE: u8;
}

static READY: AtomicBool = AtomicBool::new(false);

/// Ask Xen to fill in the hypercall page: CPUID leaf `base + 2` names the
/// MSR to which the page's physical address is written (public/arch-x86/cpuid.h).
pub fn init_hypercall_page(cpuid_base: u32) {
    let (pages, msr, _, _) = cpu::cpuid(cpuid_base + XEN_CPUID_LEAF_HYPERCALL);
    if pages == 0 {
        return;
    }
    // SAFETY: the image is identity-mapped, so the symbol's address is its
    // physical address; writing it to Xen's MSR only makes Xen fill the page.
    unsafe {
        let page = core::ptr::addr_of!(HYPERCALL_PAGE) as u64;
        cpu::wrmsr(msr, page);
    }
    READY.store(true, Ordering::Release);
}

pub fn hypercalls_ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// `CONSOLEIO_write` to Xen's console. Returns Xen's result (negative errno
/// when refused, as for an unprivileged domU on a release build).
pub fn console_write(bytes: &[u8]) -> i64 {
    if !hypercalls_ready() {
        return -1;
    }
    // SAFETY: the page is initialised; Xen reads `len` bytes from `bytes`.
    unsafe { xen_sys::hypercall_3(__HYPERVISOR_console_io, CONSOLEIO_write as u64, bytes.len() as u64, bytes.as_ptr() as u64) }
}

/// `XENMEM_memory_map`: the domain's e820, as the toolstack or Xen set it.
pub fn memory_map(out: &mut [E820Entry]) -> Result<usize, i64> {
    if !hypercalls_ready() {
        return Err(-38); // -ENOSYS
    }
    let mut map = XenMemoryMap { nr_entries: out.len() as u32, _pad: 0, buffer: out.as_mut_ptr() as u64 };
    // SAFETY: `map.buffer` points to `out`, which has room for `nr_entries`
    // packed 20-byte entries; Xen writes no more than that.
    let rc = unsafe { xen_sys::hypercall_2(__HYPERVISOR_memory_op, XENMEM_MEMORY_MAP as u64, &mut map as *mut _ as u64) };
    if rc < 0 {
        return Err(rc);
    }
    Ok((map.nr_entries as usize).min(out.len()))
}

/// `SCHEDOP_shutdown` with `reason` (`SHUTDOWN_poweroff`, `SHUTDOWN_crash`, …).
/// Returns only if Xen refused.
pub fn shutdown(reason: u32) -> i64 {
    if !hypercalls_ready() {
        return -1;
    }
    let arg = SchedShutdown { reason };
    // SAFETY: Xen reads one `struct sched_shutdown` from `arg`.
    unsafe { xen_sys::hypercall_2(__HYPERVISOR_sched_op, SCHEDOP_shutdown as u64, &arg as *const _ as u64) }
}
