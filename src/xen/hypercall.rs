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

use crate::arch::cpu;
use crate::arch::e820::E820Entry;
use crate::xen::abi::{SchedShutdown, XenMemoryMap, XENMEM_MEMORY_MAP, XEN_CPUID_LEAF_HYPERCALL};

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
    check(rc)?;
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

/// What came of [`suspend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// In a new domain (`xl restore`, the end of a migration): every
    /// binding to Xen and to other domains is gone.
    New,
    /// The suspend was cancelled (`xl save -c`, a failed migration): the
    /// same domain, everything still bound.
    Cancelled,
}

/// `SCHEDOP_shutdown(SHUTDOWN_suspend)`: the toolstack saves this domain's
/// memory; the call returns when it runs again. An HVM/PVH guest's
/// hypercall returns 0 in a new domain, 1 when the toolstack resumed the
/// old one (it sets the return register so); below 0, Xen refused.
pub fn suspend() -> Result<Resumed, i64> {
    match shutdown(u32::from(crate::xen::abi::shutdown_reason::SUSPEND)) {
        0 => Ok(Resumed::New),
        1 => Ok(Resumed::Cancelled),
        rc => Err(rc),
    }
}

// ---- HVM parameters, physmap, event channels, polling ---------------------

use crate::xen::abi::{
    SchedPoll, XenAddToPhysmap, XenHvmParam, XenMemoryReservation, XenRemoveFromPhysmap, DOMID_SELF, HVMOP_GET_PARAM, HVMOP_SET_PARAM,
    SCHEDOP_POLL, XENMEM_ADD_TO_PHYSMAP, XENMEM_POPULATE_PHYSMAP, XENMEM_REMOVE_FROM_PHYSMAP,
};
use xen_sys::{__HYPERVISOR_event_channel_op, __HYPERVISOR_hvm_op};

fn check(rc: i64) -> Result<(), i64> {
    if rc < 0 {
        Err(rc)
    } else {
        Ok(())
    }
}

/// `HVMOP_get_param` for this domain.
pub fn hvm_get_param(index: u32) -> Result<u64, i64> {
    let mut p = XenHvmParam { domid: DOMID_SELF, _pad: 0, index, value: 0 };
    // SAFETY: Xen reads and writes one `struct xen_hvm_param` at `p`.
    check(unsafe { xen_sys::hypercall_2(__HYPERVISOR_hvm_op, HVMOP_GET_PARAM as u64, &mut p as *mut _ as u64) })?;
    Ok(p.value)
}

/// `HVMOP_set_param` for this domain.
pub fn hvm_set_param(index: u32, value: u64) -> Result<(), i64> {
    let mut p = XenHvmParam { domid: DOMID_SELF, _pad: 0, index, value };
    // SAFETY: Xen reads one `struct xen_hvm_param` at `p`.
    check(unsafe { xen_sys::hypercall_2(__HYPERVISOR_hvm_op, HVMOP_SET_PARAM as u64, &mut p as *mut _ as u64) })
}

/// `XENMEM_add_to_physmap`: put Xen's page `idx` of `space` at guest frame `gpfn`.
pub fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), i64> {
    let mut a = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space, idx, gpfn };
    // SAFETY: Xen reads one `struct xen_add_to_physmap`; the frame at
    // `gpfn` is a page the caller owns and gives up to Xen's mapping.
    check(unsafe { xen_sys::hypercall_2(__HYPERVISOR_memory_op, XENMEM_ADD_TO_PHYSMAP as u64, &mut a as *mut _ as u64) })
}

/// Put ordinary RAM back at guest frame `gpfn`, where
/// [`add_to_physmap`] had put one of Xen's pages (shared info, a grant
/// frame): `XENMEM_remove_from_physmap`, then `XENMEM_populate_physmap` of
/// one page there. Adding Xen's page gave up the RAM page, so the domain
/// stays within its allocation.
pub fn restore_ram(gpfn: u64) -> Result<(), i64> {
    let mut r = XenRemoveFromPhysmap { domid: DOMID_SELF, gpfn };
    // SAFETY: Xen reads one `struct xen_remove_from_physmap`; nothing of
    // ours lives in the frame (the caller stopped using Xen's page there).
    check(unsafe { xen_sys::hypercall_2(__HYPERVISOR_memory_op, XENMEM_REMOVE_FROM_PHYSMAP as u64, &mut r as *mut _ as u64) })?;
    let mut frame = gpfn;
    let mut m = XenMemoryReservation {
        extent_start: &mut frame as *mut u64 as u64,
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    // SAFETY: Xen reads the reservation and the one frame number it points
    // at; it returns how many extents it populated.
    let rc = unsafe { xen_sys::hypercall_2(__HYPERVISOR_memory_op, XENMEM_POPULATE_PHYSMAP as u64, &mut m as *mut _ as u64) };
    match rc {
        1 => Ok(()),
        rc if rc < 0 => Err(rc),
        _ => Err(-12), // -ENOMEM: nothing populated
    }
}

/// `HYPERVISOR_event_channel_op(cmd, arg)` with `arg` a `repr(C)` struct.
pub fn event_channel_op<T>(cmd: u32, arg: &mut T) -> Result<(), i64> {
    // SAFETY: `arg` is the operation's argument struct, owned by the caller.
    check(unsafe { xen_sys::hypercall_2(__HYPERVISOR_event_channel_op, cmd as u64, arg as *mut T as u64) })
}

/// `SCHEDOP_poll`: block until one of `ports` is pending or system time
/// reaches `deadline_ns` (0: no timeout).
pub fn sched_poll(ports: &[u32], deadline_ns: u64) -> Result<(), i64> {
    let mut p = SchedPoll { ports: ports.as_ptr() as u64, nr_ports: ports.len() as u32, _pad: 0, timeout: deadline_ns };
    // SAFETY: Xen reads `nr_ports` ports from `ports` and the struct itself.
    check(unsafe { xen_sys::hypercall_2(__HYPERVISOR_sched_op, SCHEDOP_POLL as u64, &mut p as *mut _ as u64) })
}

/// `XENMEM_current_reservation` — public/memory.h: pages this domain has.
pub fn current_reservation() -> Result<u64, i64> {
    let mut dom: u16 = DOMID_SELF;
    // SAFETY: Xen reads one domid_t.
    let rc = unsafe { xen_sys::hypercall_2(__HYPERVISOR_memory_op, 3, &mut dom as *mut _ as u64) };
    check(rc)?;
    Ok(rc as u64)
}

// ---- vCPU timers — public/vcpu.h ------------------------------------------

use crate::xen::abi::{VcpuSetSingleshotTimer, VCPUOP_SET_SINGLESHOT_TIMER, VCPUOP_STOP_PERIODIC_TIMER, VCPUOP_STOP_SINGLESHOT_TIMER};
use xen_sys::__HYPERVISOR_vcpu_op;

/// `VCPUOP_set_singleshot_timer` for vCPU 0: `VIRQ_TIMER` fires once when
/// system time reaches `abs_ns` (at once if it already has).
pub fn set_singleshot_timer(abs_ns: u64) -> Result<(), i64> {
    let mut t = VcpuSetSingleshotTimer { timeout_abs_ns: abs_ns, flags: 0, _pad: 0 };
    // SAFETY: Xen reads one `struct vcpu_set_singleshot_timer`.
    check(unsafe { xen_sys::hypercall_3(__HYPERVISOR_vcpu_op, VCPUOP_SET_SINGLESHOT_TIMER as u64, 0, &mut t as *mut _ as u64) })
}

/// `VCPUOP_stop_periodic_timer` for vCPU 0 (so `VIRQ_TIMER` fires only
/// when asked).
pub fn stop_periodic_timer() -> Result<(), i64> {
    // SAFETY: takes no argument struct.
    check(unsafe { xen_sys::hypercall_3(__HYPERVISOR_vcpu_op, VCPUOP_STOP_PERIODIC_TIMER as u64, 0, 0) })
}

/// `VCPUOP_stop_singleshot_timer` for vCPU 0.
pub fn stop_singleshot_timer() -> Result<(), i64> {
    // SAFETY: takes no argument struct.
    check(unsafe { xen_sys::hypercall_3(__HYPERVISOR_vcpu_op, VCPUOP_STOP_SINGLESHOT_TIMER as u64, 0, 0) })
}
