//! The event core: wait for "any of these event channels, or this
//! deadline", and wake on whichever comes first, without using the CPU
//! in between.
//!
//! [`wait`] blocks the vCPU in Xen (`SCHEDOP_poll` on the ports and this
//! vCPU's `VIRQ_TIMER` port), with the deadline given twice: as the poll's
//! own timeout and as a one-shot timer (`VCPUOP_set_singleshot_timer`),
//! whose event wakes the poll too. It returns which ports fired (their
//! pending bits are cleared) and whether the deadline has passed. An app's
//! loop is:
//!
//! ```ignore
//! let mut tick = time::Every::new(time::now(), Duration::from_secs(1));
//! loop {
//!     let w = events::wait(&[xs_port], Some(tick.next()));
//!     if w.port(0) { /* xenstore: drain its events */ }
//!     if tick.due(time::now()) { /* once a second */ }
//! }
//! ```
//!
//! Off Xen there are no event channels and nothing to block in: [`wait`]
//! only waits for the deadline, spinning on the clock.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::xen;
use crate::xen::abi::VIRQ_TIMER;
use crate::xen::evtchn;
use crate::xen::time::{self, Instant};

/// How many ports one [`wait`] takes (bits of [`Woken`]).
pub const MAX_PORTS: usize = 63;

/// What ended a [`wait`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Woken {
    /// Bit i: `ports[i]` was pending (and is now cleared).
    pub ports: u64,
    /// The deadline has passed.
    pub deadline: bool,
}

impl Woken {
    /// Did `ports[i]` fire?
    pub fn port(&self, i: usize) -> bool {
        i < 64 && self.ports & (1 << i) != 0
    }
    /// Did any port fire?
    pub fn any_port(&self) -> bool {
        self.ports != 0
    }
}

/// `VIRQ_TIMER`'s port: 0 before the first wait, `u32::MAX` if binding
/// failed (then the poll's own timeout is the only wake-up by time).
static TIMER_PORT: AtomicU32 = AtomicU32::new(0);

/// This vCPU's timer port, bound on first use (and Xen's default periodic
/// timer stopped, so the port fires only for our deadlines).
pub fn timer_port() -> Option<u32> {
    match TIMER_PORT.load(Ordering::Acquire) {
        0 => {}
        u32::MAX => return None,
        p => return Some(p),
    }
    let port = evtchn::init().ok().and_then(|()| evtchn::bind_virq(VIRQ_TIMER, 0).ok());
    match port {
        Some(p) => {
            let _ = xen::stop_periodic_timer();
            TIMER_PORT.store(p, Ordering::Release);
        }
        // Not logged: the console's own waits come through here.
        None => TIMER_PORT.store(u32::MAX, Ordering::Release),
    }
    port
}

/// Give `VIRQ_TIMER` back: stop the one-shot timer and close its port, so
/// that a kernel this vCPU is handed to can bind it (Linux's timer does,
/// and Xen refuses a second binding). A later [`wait`] binds it again.
pub fn release_timer() {
    let p = TIMER_PORT.swap(0, Ordering::AcqRel);
    if p != 0 && p != u32::MAX {
        let _ = xen::stop_singleshot_timer();
        let _ = evtchn::close(p);
    }
}

/// After a resume in a new domain: the old `VIRQ_TIMER` binding is gone
/// (nothing to close); the next use binds it again.
pub fn forget_timer() {
    TIMER_PORT.store(0, Ordering::Release);
}

/// Block until one of `ports` is pending or `deadline` passes (`None`:
/// no deadline). At most [`MAX_PORTS`] ports. Pending bits of the ports
/// that fired are cleared; an event that arrives while the caller works
/// stays pending and ends the next wait at once, so none is lost.
pub fn wait(ports: &[u32], deadline: Option<Instant>) -> Woken {
    assert!(ports.len() <= MAX_PORTS, "events::wait: {} ports, at most {MAX_PORTS}", ports.len());
    if evtchn::shared_info().is_none() {
        return spin_until(deadline);
    }
    let timer = deadline.and_then(|_| timer_port());
    let mut list = [0u32; MAX_PORTS + 1];
    list[..ports.len()].copy_from_slice(ports);
    let mut n = ports.len();
    if let Some(t) = timer {
        list[n] = t;
        n += 1;
    }
    loop {
        let mut fired = 0u64;
        for (i, &p) in ports.iter().enumerate() {
            if evtchn::take_pending(p) {
                fired |= 1 << i;
            }
        }
        if let Some(t) = timer {
            // A timer event only says "look at the clock".
            evtchn::take_pending(t);
        }
        let late = deadline.is_some_and(|d| time::now() >= d);
        if fired != 0 || late {
            return Woken { ports: fired, deadline: late };
        }
        if let (Some(d), Some(_)) = (deadline, timer) {
            let _ = xen::set_singleshot_timer(time::xen_ns(d.as_ns()));
        }
        // SCHEDOP_poll's timeout 0 means none.
        let timeout = deadline.map_or(0, |d| time::xen_ns(d.as_ns()));
        if xen::sched_poll(&list[..n], timeout).is_err() {
            // Polling refused (a bad port?): yield rather than spin.
            // SAFETY: SCHEDOP_yield takes no argument.
            unsafe { xen_sys::hypercall_2(xen_sys::__HYPERVISOR_sched_op, xen_sys::SCHEDOP_yield as u64, 0) };
        }
    }
}

/// Block until `deadline`.
pub fn sleep_until(deadline: Instant) {
    wait(&[], Some(deadline));
}

/// Off Xen: only the clock can end a wait.
fn spin_until(deadline: Option<Instant>) -> Woken {
    loop {
        if deadline.is_some_and(|d| time::now() >= d) {
            return Woken { ports: 0, deadline: true };
        }
        core::hint::spin_loop();
    }
}
