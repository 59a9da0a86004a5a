//! Event channels (2-level ABI, public/event_channel.h) over the shared
//! info page.
//!
//! Two ways to wait use this:
//!
//! - [`crate::xen::events`] blocks in `SCHEDOP_poll` on a few ports, then
//!   tests and clears their pending bits here ([`take_pending`]);
//! - the task runtime (`crate::rt`) sleeps with `sti; hlt` until Xen raises
//!   the event callback vector, then takes every pending port at once
//!   through the 2-level selector ([`take_all_pending`]): any number of
//!   ports, one scan of the words that changed.
//!
//! Interrupts are otherwise off, so the callback never arrives elsewhere.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::xen;
use crate::xen::abi::{
    EvtchnBindVirq, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE, EVTCHNOP_SEND, EVTCHNOP_UNMASK, HVM_PARAM_CALLBACK_IRQ,
    HVM_PARAM_CALLBACK_TYPE_VECTOR, SHARED_INFO_EVTCHN_MASK, SHARED_INFO_EVTCHN_PENDING, XENMAPSPACE_SHARED_INFO,
};
use crate::xen::page::alloc_page;

/// Ports of the 2-level ABI on 64-bit: 64 words of 64 bits.
pub const MAX_PORTS: u32 = 64 * 64;

/// Where the shared info page is mapped (0: not yet). The event callback
/// stub (boot/traps.rs) reads it to acknowledge the upcall.
pub static SHARED_INFO: AtomicU64 = AtomicU64::new(0);

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

/// Map the shared info page (once) and set `evtchn_upcall_mask` (the PV
/// convention; an HVM guest's callback vector goes by its interrupt flag,
/// which stays clear except in the runtime's idle `hlt`).
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

/// After a resume in a new domain: Xen's shared info page again, at the
/// frame it was (the RAM there now holds the old domain's copy).
pub fn remap_shared_info() -> Result<(), EvtchnError> {
    let Some(page) = shared_info() else { return init() };
    xen::add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, page >> 12).map_err(EvtchnError::Hypercall)?;
    // SAFETY: as in `init`.
    unsafe { (*((page + 1) as *const AtomicU8)).store(1, Ordering::SeqCst) };
    Ok(())
}

/// Take the shared info page out of RAM again (before a kernel gets the
/// RAM): the frame becomes ordinary memory, and event channels and the
/// clock stop working here.
pub fn release_shared_info() -> Result<(), i64> {
    let si = SHARED_INFO.swap(0, Ordering::AcqRel);
    if si == 0 {
        return Ok(());
    }
    xen::restore_ram(si >> 12)
}

/// Have Xen raise `vector` on this vCPU when an event is pending
/// (`HVM_PARAM_CALLBACK_IRQ`, vector type). libxl also takes a callback
/// as the sign of a PV-aware HVM-type guest.
pub fn set_callback_vector(vector: u8) -> Result<(), i64> {
    xen::hvm_set_param(HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_CALLBACK_TYPE_VECTOR | vector as u64)
}

/// No callback, as Xen starts a domain (before a kernel gets the vCPU: it
/// sets its own once it has an IDT entry for it).
pub fn release_callback() -> Result<(), i64> {
    xen::hvm_set_param(HVM_PARAM_CALLBACK_IRQ, 0)
}

/// Where the shared info page is mapped, once [`init`] has run.
pub fn shared_info() -> Option<u64> {
    let si = SHARED_INFO.load(Ordering::Acquire);
    (si != 0).then_some(si)
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

/// `vcpu_info[0].evtchn_pending_sel`: bit i says word i of the pending
/// bitmap may have a new pending port.
const PENDING_SEL: u64 = 8;

/// Take every pending, unmasked port that the selector names: clear the
/// selector, then each named word's pending bits, and call `f` with each
/// port that was pending. Ports that become pending afterwards set the
/// selector (and `evtchn_upcall_pending`) again, so none is missed by the
/// next call. Returns how many ports were taken.
pub fn take_all_pending(mut f: impl FnMut(u32)) -> usize {
    let si = SHARED_INFO.load(Ordering::Acquire);
    if si == 0 {
        return 0;
    }
    // SAFETY: vcpu_info[0] lies at the start of the mapped shared info
    // page; Xen sets the selector's bits atomically, and we clear them so.
    let sel = unsafe { &*((si + PENDING_SEL) as *const AtomicU64) }.swap(0, Ordering::AcqRel);
    let mut n = 0;
    let mut words = sel;
    while words != 0 {
        let w = words.trailing_zeros();
        words &= words - 1;
        let (Some(pending), Some(mask)) = (word(SHARED_INFO_EVTCHN_PENDING, w * 64), word(SHARED_INFO_EVTCHN_MASK, w * 64)) else {
            continue;
        };
        let mut bits = pending.load(Ordering::Acquire) & !mask.load(Ordering::Acquire);
        if bits == 0 {
            continue;
        }
        bits = pending.fetch_and(!bits, Ordering::AcqRel) & bits;
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            n += 1;
            f(w * 64 + b);
        }
    }
    n
}

/// Clear `vcpu_info[0].evtchn_upcall_pending`, so that the next port to
/// become pending raises the event callback again.
pub fn ack_upcall() {
    if let Some(si) = shared_info() {
        // SAFETY: byte 0 of vcpu_info[0], in the mapped shared info page.
        unsafe { (*(si as *const AtomicU8)).store(0, Ordering::SeqCst) };
    }
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

/// `EVTCHNOP_bind_virq`: a fresh port for virtual IRQ `virq` of vCPU `vcpu`.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, EvtchnError> {
    let mut b = EvtchnBindVirq { virq, vcpu, port: 0 };
    xen::event_channel_op(EVTCHNOP_BIND_VIRQ, &mut b).map_err(EvtchnError::Hypercall)?;
    check_port(b.port)
}
