//! Event channels (2-level ABI, public/event_channel.h) over the shared
//! info page, and waiting for them without burning a host CPU.
//!
//! hvmlite takes no event upcalls: interrupts stay off and
//! `vcpu_info[0].evtchn_upcall_mask` is set. It waits with `SCHEDOP_poll`,
//! which blocks the vCPU in Xen until one of the ports is pending or a
//! deadline passes, then tests and clears the pending bits itself.

use core::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};

use crate::xen;
use crate::xen::abi::{
    EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_CLOSE, EVTCHNOP_SEND, EVTCHNOP_UNMASK, SHARED_INFO_EVTCHN_MASK, SHARED_INFO_EVTCHN_PENDING,
    VCPU0_TIME, XENMAPSPACE_SHARED_INFO,
};
use crate::xen::page::alloc_page;

/// Ports of the 2-level ABI on 64-bit: 64 words of 64 bits.
pub const MAX_PORTS: u32 = 64 * 64;

static SHARED_INFO: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug)]
pub enum EvtchnError {
    NoSharedInfo,
    Hypercall(i64),
    BadPort(u32),
}

impl core::fmt::Display for EvtchnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EvtchnError::NoSharedInfo => write!(f, "no memory for the shared info page"),
            EvtchnError::Hypercall(rc) => write!(f, "event channel hypercall failed ({rc})"),
            EvtchnError::BadPort(p) => write!(f, "event channel port {p} out of range"),
        }
    }
}

/// Map the shared info page (once) and turn upcalls off.
pub fn init() -> Result<(), EvtchnError> {
    if SHARED_INFO.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    let page = alloc_page().ok_or(EvtchnError::NoSharedInfo)?;
    xen::add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, page >> 12).map_err(EvtchnError::Hypercall)?;
    // SAFETY: `page` now shows Xen's shared info; byte 1 of vcpu_info[0] is
    // evtchn_upcall_mask.
    unsafe { (*((page + 1) as *const AtomicU8)).store(1, Ordering::SeqCst) };
    SHARED_INFO.store(page, Ordering::Release);
    Ok(())
}

fn word(array: usize, port: u32) -> Option<&'static AtomicU64> {
    let si = SHARED_INFO.load(Ordering::Acquire);
    if si == 0 || port >= MAX_PORTS {
        return None;
    }
    // SAFETY: inside the mapped shared info page, 8-byte aligned; Xen
    // updates these words atomically, and so do we.
    Some(unsafe { &*((si + (array + (port / 64) as usize * 8) as u64) as *const AtomicU64) })
}

pub fn check_port(port: u32) -> Result<u32, EvtchnError> {
    if port == 0 || port >= MAX_PORTS {
        Err(EvtchnError::BadPort(port))
    } else {
        Ok(port)
    }
}

/// Test and clear `port`'s pending bit.
pub fn take_pending(port: u32) -> bool {
    word(SHARED_INFO_EVTCHN_PENDING, port)
        .is_some_and(|w| w.fetch_and(!(1u64 << (port % 64)), Ordering::AcqRel) & (1u64 << (port % 64)) != 0)
}

pub fn is_masked(port: u32) -> bool {
    word(SHARED_INFO_EVTCHN_MASK, port).is_some_and(|w| w.load(Ordering::Acquire) & (1u64 << (port % 64)) != 0)
}

/// `EVTCHNOP_send`
pub fn notify(port: u32) -> Result<(), EvtchnError> {
    let mut p = port;
    xen::event_channel_op(EVTCHNOP_SEND, &mut p).map_err(EvtchnError::Hypercall)
}

/// `EVTCHNOP_unmask`
pub fn unmask(port: u32) -> Result<(), EvtchnError> {
    let mut p = port;
    xen::event_channel_op(EVTCHNOP_UNMASK, &mut p).map_err(EvtchnError::Hypercall)
}

/// `EVTCHNOP_close`
pub fn close(port: u32) -> Result<(), EvtchnError> {
    let mut p = port;
    xen::event_channel_op(EVTCHNOP_CLOSE, &mut p).map_err(EvtchnError::Hypercall)
}

/// `EVTCHNOP_alloc_unbound`: a fresh port that domain `remote` may bind to.
pub fn alloc_unbound(remote: u16) -> Result<u32, EvtchnError> {
    #[repr(C)]
    struct AllocUnbound {
        dom: u16,
        remote_dom: u16,
        port: u32,
    }
    let mut a = AllocUnbound { dom: crate::xen::abi::DOMID_SELF, remote_dom: remote, port: 0 };
    xen::event_channel_op(EVTCHNOP_ALLOC_UNBOUND, &mut a).map_err(EvtchnError::Hypercall)?;
    Ok(a.port)
}

/// Xen system time in ns, from `vcpu_info[0].time` (the pvclock protocol:
/// retry while the version is odd or changes under us).
pub fn now_ns() -> u64 {
    let si = SHARED_INFO.load(Ordering::Acquire);
    if si == 0 {
        return 0;
    }
    let t = si + VCPU0_TIME as u64;
    loop {
        // SAFETY: `struct vcpu_time_info` inside the mapped shared info page.
        unsafe {
            let version = core::ptr::read_volatile(t as *const u32);
            fence(Ordering::Acquire);
            let tsc_timestamp = core::ptr::read_volatile((t + 8) as *const u64);
            let system_time = core::ptr::read_volatile((t + 16) as *const u64);
            let mul = core::ptr::read_volatile((t + 24) as *const u32);
            let shift = core::ptr::read_volatile((t + 28) as *const i8);
            let tsc = core::arch::x86_64::_rdtsc();
            fence(Ordering::Acquire);
            if version & 1 != 0 || core::ptr::read_volatile(t as *const u32) != version {
                continue;
            }
            let mut delta = tsc.wrapping_sub(tsc_timestamp);
            delta = if shift >= 0 { delta << shift } else { delta >> (-shift) };
            return system_time.wrapping_add(((delta as u128 * mul as u128) >> 32) as u64);
        }
    }
}

/// Block until one of `ports` is pending (cleared and reported as a bit
/// set: bit i for `ports[i]`) or `timeout_ns` passes (returns 0).
pub fn wait_any(ports: &[u32], timeout_ns: u64) -> u32 {
    let deadline = now_ns().saturating_add(timeout_ns);
    loop {
        let mut hit = 0;
        for (i, &p) in ports.iter().enumerate() {
            if take_pending(p) {
                hit |= 1 << i;
            }
        }
        if hit != 0 {
            return hit;
        }
        if now_ns() >= deadline {
            return 0;
        }
        if xen::sched_poll(ports, deadline).is_err() {
            // Polling refused: yield rather than spin on the CPU.
            // SAFETY: SCHEDOP_yield takes no argument.
            unsafe { xen_sys::hypercall_2(xen_sys::__HYPERVISOR_sched_op, xen_sys::SCHEDOP_yield as u64, 0) };
        }
    }
}

/// `EVTCHNOP_bind_interdomain`: connect to port `remote_port` that domain
/// `remote` allocated for us; returns our end.
pub fn bind_interdomain(remote: u16, remote_port: u32) -> Result<u32, EvtchnError> {
    #[repr(C)]
    struct BindInterdomain {
        remote_dom: u16,
        _pad: u16,
        remote_port: u32,
        local_port: u32,
    }
    let mut b = BindInterdomain { remote_dom: remote, _pad: 0, remote_port, local_port: 0 };
    xen::event_channel_op(crate::xen::abi::EVTCHNOP_BIND_INTERDOMAIN, &mut b).map_err(EvtchnError::Hypercall)?;
    Ok(b.local_port)
}
