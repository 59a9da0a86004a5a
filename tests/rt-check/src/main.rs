//! rt-check: the task runtime measured from inside a domain, for
//! tests/xen_runtime.rs. The command line names the checks:
//!
//! - `timers`: after 2 s (dom0 settles), 20 tasks, each with an interval
//!   of its own period (3 ms apart, from 7 ms), 20 ticks each. Every tick records its deadline
//!   and when the task ran (the runtime's clock, Xen system time), and
//!   when Xen last woke the vCPU from the idle loop's `hlt`. One line: how
//!   many fired, whether in deadline order, how late (median, p95, max),
//!   and how much of that was the runtime's own (after the wake-up).
//! - `ports`: 300 event channels bound to this domain itself (300 pairs:
//!   an unbound port and the port bound to it), one task waiting on each
//!   bound end. The channels are signalled one at a time in a scrambled
//!   order; after each, exactly the task of that channel must have run.
//!
//! - `ignore-shutdown`: never return, whatever the toolstack asks: the
//!   runtime must power off all the same after its grace period.
//! - `gntmap=DOMID:REF,...` and `xs-domain`: grant mapping and the
//!   xenstore domain's view of Xen ([`xen_checks`], tests/xen_xsdomain.rs).
//!
//! Each check prints `rt-check: NAME: ...`; a failure is a FATAL line.
#![no_std]
#![no_main]

extern crate alloc;

mod xen_checks;

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::time::Duration;

use hvmlite::rt::time::{self, Interval};
use hvmlite::rt::{self, reactor};
use hvmlite::xen::evtchn;
use hvmlite::{platform, Boot};

hvmlite::main!(main);

fn fail(args: core::fmt::Arguments) -> ! {
    platform::fatal(format_args!("rt-check: {args}"))
}

async fn main(boot: Boot) {
    let args: Vec<&str> = boot.args().collect();
    for check in boot.args() {
        match check {
            "xs-domain" => xen_checks::xs_domain(&args).await,
            c if c.starts_with("gntmap=") => xen_checks::gntmap(&c[7..]),
            "timers" => timers().await,
            "ports" => ports().await,
            "ignore-shutdown" => {
                log::info!("rt-check: ignore-shutdown: never returning");
                core::future::pending::<()>().await
            }
            _ => {}
        }
    }
}

async fn timers() {
    const TASKS: u64 = 20;
    const TICKS: usize = 20;
    // Let dom0 finish `xl create` first: a busy dom0 delays this domain's
    // wake-ups, and that is Xen's scheduling, not the runtime's timers.
    time::sleep(Duration::from_secs(2)).await;
    // (deadline, ran at, woken from hlt at) in ns, in the order the
    // ticks ran.
    let log: Rc<RefCell<Vec<(u64, u64, u64)>>> = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(Cell::new(0));
    for i in 0..TASKS {
        let (log, done) = (log.clone(), done.clone());
        rt::spawn(async move {
            let mut iv = Interval::new(Duration::from_millis(7 + 3 * i));
            for _ in 0..TICKS {
                let at = iv.tick().await;
                log.borrow_mut().push((at.as_ns(), time::now().as_ns(), reactor::last_wake()));
            }
            done.set(done.get() + 1);
        });
    }
    while done.get() < TASKS {
        time::sleep(Duration::from_millis(50)).await;
    }
    let log = log.borrow();
    let in_order = log.windows(2).all(|w| w[0].0 <= w[1].0);
    // What one read of the clock costs here (pvclock and a TSC read, which
    // Xen may emulate).
    let t0 = time::now();
    for _ in 0..1000 {
        core::hint::black_box(time::now());
    }
    let clock_ns = (time::now() - t0).as_nanos() / 1000;
    let early = log.iter().filter(|&&(d, r, _)| r < d).count();
    // Late in all, and late by the runtime's own doing: from the deadline,
    // or from Xen waking the vCPU if that came after it.
    let mut late: Vec<u64> = log.iter().map(|&(d, r, _)| r.saturating_sub(d) / 1000).collect();
    let mut own: Vec<u64> = log.iter().map(|&(d, r, w)| r.saturating_sub(d.max(w)) / 1000).collect();
    late.sort_unstable();
    own.sort_unstable();
    let pct = |v: &[u64], p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
    log::info!(
        "rt-check: timers: {} fired, in order {in_order}, early {early}, late median {} us, p95 {} us, max {} us; own median {} us, p95 {} us, max {} us; a clock read {clock_ns} ns, timer slack {} us",
        log.len(),
        pct(&late, 50),
        pct(&late, 95),
        pct(&late, 100),
        pct(&own, 50),
        pct(&own, 95),
        pct(&own, 100),
        reactor::timer_slack() / 1000
    );
}

async fn ports() {
    const N: usize = 300;
    let xs = rt::xenstore().unwrap_or_else(|| fail(format_args!("ports: no xenstore")));
    let me: u16 = xs.read("domid").await.ok().and_then(|d| d.parse().ok()).unwrap_or_else(|| fail(format_args!("ports: no domid")));
    let mut pairs = Vec::new();
    for i in 0..N {
        let a = evtchn::alloc_unbound(me).unwrap_or_else(|e| fail(format_args!("ports: channel {i}: {e}")));
        let b = evtchn::bind_interdomain(me, a).unwrap_or_else(|e| fail(format_args!("ports: binding channel {i}: {e}")));
        // Binding sets the bound end pending (Xen's fix-up for signals sent
        // to the unbound port): clear it, so only the signals below count.
        evtchn::take_pending(b);
        pairs.push((a, b));
    }
    let woke: Rc<RefCell<Vec<usize>>> = Rc::new(RefCell::new(Vec::new()));
    for (i, &(_, b)) in pairs.iter().enumerate() {
        let woke = woke.clone();
        rt::spawn(async move {
            reactor::port_event(b).await;
            woke.borrow_mut().push(i);
        });
    }
    rt::yield_now().await; // every task waits now
    let highest = pairs.iter().map(|p| p.1).max().unwrap_or(0);
    for k in 0..N {
        let i = (k * 7919) % N;
        let _ = evtchn::notify(pairs[i].0);
        let t0 = time::now();
        while woke.borrow().len() == k {
            if time::now() - t0 > Duration::from_secs(2) {
                fail(format_args!("ports: channel {i} (port {}) signalled, no task ran within 2 s", pairs[i].1));
            }
            time::sleep(Duration::from_micros(100)).await;
        }
        let w = woke.borrow();
        if w.len() != k + 1 || w[k] != i {
            fail(format_args!("ports: channel {i} signalled, tasks {:?} ran", &w[k..]));
        }
    }
    log::info!("rt-check: ports: {N} channels up to port {highest}, each woke its own task once");
    for (a, b) in pairs {
        let _ = evtchn::close(b);
        let _ = evtchn::close(a);
    }
}
