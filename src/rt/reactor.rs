//! Waiting on Xen: event channels for tasks, and the idle loop.
//!
//! The idle loop ([`park`]) is the only place that blocks. It takes every
//! pending port through the 2-level selector (any number of ports: a
//! xenstore domain has one per guest), wakes the tasks waiting on each,
//! and when nothing fired and no timer is due it arms the one-shot
//! `VIRQ_TIMER` for the earliest deadline and executes `sti; hlt`. Xen
//! raises the event callback vector when a port becomes pending (the
//! stub in boot/traps.rs acknowledges it), which ends the `hlt`; the vCPU
//! uses no host CPU in between.
//!
//! A port that fires while nobody waits on it is remembered: the next
//! [`port_event`] on it is ready at once, so no event is lost between a
//! task's look at its ring and its wait.

use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

use crate::arch::hypervisor::Hypervisor;
use crate::boot::traps::{self, XEN_CALLBACK_VECTOR};
use crate::platform;
use crate::rt::wake_margin::WakeMargin;
use crate::xen::evtchn::{self, MAX_PORTS};
use crate::xen::{self, events, time};

struct Reactor {
    /// Ports that fired since a task last looked (bit per port).
    fired: [u64; (MAX_PORTS / 64) as usize],
    /// Tasks waiting, with their ports (a task once per port).
    waiting: Vec<(u32, Waker)>,
    /// Ports unmasked once (a port's mask bit keeps its events from the
    /// selector that [`park`] reads).
    unmasked: [u64; (MAX_PORTS / 64) as usize],
    /// Ports taken, for the report.
    pub events: u64,
    /// Times the vCPU slept in `hlt`.
    pub sleeps: u64,
}

struct Local(RefCell<Reactor>);
// SAFETY: one vCPU; interrupts are off while tasks run and the callback
// stub touches none of this.
unsafe impl Sync for Local {}

static REACTOR: Local = Local(RefCell::new(Reactor {
    fired: [0; (MAX_PORTS / 64) as usize],
    waiting: Vec::new(),
    unmasked: [0; (MAX_PORTS / 64) as usize],
    events: 0,
    sleeps: 0,
}));

fn with<R>(f: impl FnOnce(&mut Reactor) -> R) -> R {
    f(&mut REACTOR.0.borrow_mut())
}

/// Is this a Xen guest with event channels?
pub fn on_xen() -> bool {
    platform::hypervisor() == Hypervisor::Xen && evtchn::shared_info().is_some()
}

/// Set up event delivery for the idle loop: the shared info page, the
/// callback vector (so Xen raises it), `VIRQ_TIMER`.
pub fn init() {
    if platform::hypervisor() != Hypervisor::Xen || evtchn::init().is_err() {
        return;
    }
    let _ = evtchn::set_callback_vector(XEN_CALLBACK_VECTOR);
    let _ = events::timer_port();
}

/// The domain runs again in a new domain (after `xl restore` or a
/// migration): Xen's shared info page and the callback vector again, the
/// timer bound again; every port number known here belongs to the old
/// domain, so all is forgotten and every waiting task woken, to look at
/// its device again (and wait on the port it has now).
pub fn resumed() -> Result<(), evtchn::EvtchnError> {
    evtchn::remap_shared_info()?;
    let _ = evtchn::set_callback_vector(XEN_CALLBACK_VECTOR);
    events::forget_timer();
    let _ = events::timer_port();
    GENERATION.fetch_add(1, Ordering::Relaxed);
    let wakers = with(|r| {
        r.fired = [0; (MAX_PORTS / 64) as usize];
        r.unmasked = [0; (MAX_PORTS / 64) as usize];
        core::mem::take(&mut r.waiting)
    });
    wakers.into_iter().for_each(|(_, k)| k.wake());
    Ok(())
}

/// Resumes in a new domain so far: a wait begun before one is over (its
/// port number meant something in the old domain only).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Ready when `port` has fired (since the last time a task saw it fire),
/// or when the domain has resumed in a new domain since this was made
/// (the task then looks at its device, and waits on its new port).
pub fn port_event(port: u32) -> PortEvent {
    PortEvent { port, generation: GENERATION.load(Ordering::Relaxed) }
}

pub struct PortEvent {
    port: u32,
    generation: u64,
}

impl Future for PortEvent {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let p = self.port;
        if p >= MAX_PORTS || self.generation != GENERATION.load(Ordering::Relaxed) {
            return Poll::Ready(());
        }
        let (w, b) = ((p / 64) as usize, 1u64 << (p % 64));
        let ready = with(|r| {
            if r.fired[w] & b != 0 {
                r.fired[w] &= !b;
                return true;
            }
            if r.unmasked[w] & b == 0 {
                r.unmasked[w] |= b;
                if evtchn::is_masked(p) {
                    let _ = evtchn::unmask(p);
                }
            }
            if !r.waiting.iter().any(|(q, k)| *q == p && k.will_wake(cx.waker())) {
                r.waiting.push((p, cx.waker().clone()));
            }
            false
        });
        // Pending already (the selector has not been read since): take it.
        if ready || evtchn::take_pending(p) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

fn dispatch(port: u32) {
    let wakers = with(|r| {
        r.events += 1;
        let (w, b) = ((port / 64) as usize, 1u64 << (port % 64));
        r.fired[w] |= b;
        r.waiting.extract_if(.., |(q, _)| *q == port).map(|(_, k)| k).collect::<Vec<_>>()
    });
    for k in wakers {
        k.wake();
    }
}

/// Forget what is known of `port` (it was closed; its number may be
/// reused for another channel).
pub fn forget(port: u32) {
    if port < MAX_PORTS {
        with(|r| {
            let (w, b) = ((port / 64) as usize, 1u64 << (port % 64));
            r.fired[w] &= !b;
            r.unmasked[w] &= !b;
            r.waiting.retain(|(q, _)| *q != port);
        });
    }
}

/// (ports taken, sleeps in `hlt`) so far.
pub fn counts() -> (u64, u64) {
    with(|r| (r.events, r.sleeps))
}

/// The executor's idle: return when a port fired (its tasks woken) or
/// `deadline` (ns of system time) has passed; sleep in between. Returns
/// the clock read on waking, if it was read.
pub fn park(deadline: Option<u64>) -> Option<u64> {
    if !on_xen() {
        // No events off Xen: only the clock can wake a task.
        let Some(d) = deadline else {
            platform::fatal(format_args!("rt: every task waits for an event, and off Xen none can come"));
        };
        loop {
            let t = time::now().as_ns();
            if t >= d {
                return Some(t);
            }
            core::hint::spin_loop();
        }
    }
    let timer = events::timer_port();
    let mut woke = None;
    // Where the one-shot timer was last armed, to learn how late Xen
    // wakes the vCPU after it.
    let mut armed = None;
    loop {
        // Acknowledge first: a port that becomes pending after the scan
        // raises the callback again, and `hlt` ends at once.
        evtchn::ack_upcall();
        // VIRQ_TIMER only ends the `hlt`; any other port is a task's.
        let mut others = 0;
        evtchn::take_all_pending(|p| {
            others += usize::from(Some(p) != timer);
            dispatch(p)
        });
        if others > 0 {
            return woke;
        }
        let Some(d) = deadline else {
            let _ = xen::stop_singleshot_timer();
            woke = Some(sleep());
            continue;
        };
        if let Some(t) = woke {
            // Only a wake-up at or after the armed time says how late
            // Xen was; an earlier one came for something else.
            if let Some(a) = armed.take().filter(|&a| t >= a) {
                learn(t - a);
            }
            // The run loop read the clock just before the first round: a
            // deadline that has passed since is armed all the same, and
            // Xen fires it at once. After a wake-up the clock read says.
            if t >= d {
                return woke;
            }
            // Woken early on purpose: too close to sleep again.
            if d - t <= slack() {
                return Some(spin_until(d));
            }
        }
        // Early by how late Xen's wake-ups have come lately, so that the
        // task runs at its deadline rather than that much after it.
        let a = d.saturating_sub(slack());
        let _ = xen::set_singleshot_timer(time::xen_ns(a));
        armed = Some(a);
        woke = Some(sleep());
    }
}

/// `sti; hlt` until Xen raises the callback vector; the clock then.
fn sleep() -> u64 {
    with(|r| r.sleeps += 1);
    // A callback already raised ends the `hlt` (or comes before it, and
    // the stub steps over it); the stub only clears
    // `evtchn_upcall_pending`. Interrupts are off again before any task
    // runs.
    traps::idle();
    let t = time::now().as_ns();
    LAST_WAKE.store(t, Ordering::Relaxed);
    t
}

/// Read the clock until `d` (ns of system time), or until a port other
/// than the timer's fires (its tasks are woken); the last reading.
fn spin_until(d: u64) -> u64 {
    let timer = events::timer_port();
    loop {
        let t = time::now().as_ns();
        let mut others = 0;
        evtchn::take_all_pending(|p| {
            others += usize::from(Some(p) != timer);
            dispatch(p)
        });
        if t >= d || others > 0 {
            return t;
        }
        core::hint::spin_loop();
    }
}

/// How late Xen has been waking the vCPU after the one-shot timer's time
/// ([`WakeMargin`]): the idle loop arms the timer that much early and
/// reads the clock for the rest.
static LATE_MEAN: AtomicU64 = AtomicU64::new(0);
static LATE_DEV: AtomicU64 = AtomicU64::new(0);

fn margin() -> WakeMargin {
    WakeMargin { mean: LATE_MEAN.load(Ordering::Relaxed), dev: LATE_DEV.load(Ordering::Relaxed) }
}

fn slack() -> u64 {
    margin().ns()
}

fn learn(late: u64) {
    let m = margin().learn(late);
    LATE_MEAN.store(m.mean, Ordering::Relaxed);
    LATE_DEV.store(m.dev, Ordering::Relaxed);
}

/// The idle loop's current early margin for timers (ns), for reports.
pub fn timer_slack() -> u64 {
    slack()
}

/// When the vCPU last came out of `hlt` (Xen system time, ns).
static LAST_WAKE: AtomicU64 = AtomicU64::new(0);

/// When Xen last woke this vCPU from the idle loop's `hlt` (ns of system
/// time): what came after it is the runtime's own time, what came before
/// is Xen's (and, nested, the host's).
pub fn last_wake() -> u64 {
    LAST_WAKE.load(Ordering::Relaxed)
}
