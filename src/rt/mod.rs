//! The task runtime: apps as `async` tasks on an executor that owns the
//! event loop.
//!
//! ```ignore
//! hvmlite::main!(main);
//! async fn main(boot: hvmlite::Boot) {
//!     hvmlite::rt::spawn(async { /* another task */ });
//!     hvmlite::rt::time::sleep(Duration::from_secs(1)).await;
//! }   // returning powers the domain off
//! ```
//!
//! - [`executor`]: tasks (boxed futures), wakers, the timer queue, the
//!   run loop; [`time`]: sleeps, intervals, [`time::timeout`];
//! - [`reactor`] (Xen): event channels for tasks, and the idle loop — the
//!   only place that blocks (`sti; hlt` until a port fires or the next
//!   timer is due);
//! - [`xs`]: xenstore requests as futures, watches as streams;
//! - [`net`]: per vif a stack task; `TcpListener` with a real backlog,
//!   `TcpStream` (embedded-io-async), `UdpSocket`; [`http`]: one request
//!   read through `httparse`, one answer; [`blk`]: disk requests as
//!   futures;
//! - shutdown: the runtime follows `control/shutdown`; apps may await
//!   [`shutdown_requested`]. When `main` returns, or a grace period after
//!   the toolstack asked, the runtime closes every frontend it opened and
//!   powers off (or reboots);
//! - [`suspend`]: `xl save`, `xl restore`, `xl migrate` — the runtime
//!   suspends the domain when asked and rebuilds what a new domain lacks;
//!   apps may await [`resumed`] but need no code for it.
//!
//! This layer sits on top: it uses `xen`, `net`, `platform` and `boot`.

pub mod executor;
pub mod time;
pub mod wake_margin;
pub mod xs;

mod context;

#[cfg(target_os = "none")]
pub mod blk;
pub mod http;
#[cfg(target_os = "none")]
pub mod net;
#[cfg(target_os = "none")]
pub mod reactor;
#[cfg(target_os = "none")]
pub mod suspend;

#[cfg(target_os = "none")]
pub use hw::*;

/// Start `fut` as a task of its own (from the runtime or any task).
pub fn spawn(fut: impl core::future::Future<Output = ()> + 'static) {
    context::shared().spawn(fut);
}

/// Let the other ready tasks run before this one goes on.
pub async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            core::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        }
    })
    .await
}

#[cfg(target_os = "none")]
mod hw {
    use alloc::boxed::Box;
    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    use core::future::Future;
    use core::task::{Poll, Waker};
    use core::time::Duration;

    use super::executor::Executor;
    use super::time::{select, sleep, Either};
    use super::{context, reactor, xs};
    use crate::boot::Boot;
    use crate::platform::{self, Shutdown};
    use crate::xen::control::{self, Request};

    /// How long the app has to finish after the toolstack asked for a
    /// shutdown before the runtime closes everything anyway.
    pub const GRACE: Duration = Duration::from_secs(5);

    /// What only the runtime's own tasks and `run` touch.
    struct State {
        store: Option<xs::Store>,
        requested: Option<Shutdown>,
        waiting: Vec<Waker>,
        /// Resumes in a new domain so far, and the tasks awaiting the next.
        resumes: u32,
        resume_waiting: Vec<Waker>,
        /// How to hand back each frontend opened, newest last.
        closers: Vec<(alloc::string::String, Box<dyn FnOnce()>)>,
        /// How to reconnect each frontend in a new domain, by name.
        resumers: Vec<(alloc::string::String, Resumer)>,
    }

    type Resumer = Rc<dyn Fn() -> Result<alloc::string::String, alloc::string::String>>;

    struct Local(RefCell<State>);
    // SAFETY: one vCPU, tasks run with interrupts off.
    unsafe impl Sync for Local {}
    static STATE: Local = Local(RefCell::new(State {
        store: None,
        requested: None,
        waiting: Vec::new(),
        resumes: 0,
        resume_waiting: Vec::new(),
        closers: Vec::new(),
        resumers: Vec::new(),
    }));

    fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut STATE.0.borrow_mut())
    }

    /// This domain's xenstore, on a Xen domU (`None` elsewhere).
    pub fn xenstore() -> Option<xs::Store> {
        with(|s| s.store.clone())
    }

    /// Register how to close a frontend when the domain goes away; `name`
    /// is for the log.
    pub fn on_shutdown(name: alloc::string::String, close: impl FnOnce() + 'static) {
        with(|s| s.closers.push((name, Box::new(close))));
    }

    /// Register how to reconnect frontend `name` (as named to
    /// [`on_shutdown`]) when the domain resumes in a new domain: what it
    /// says on success goes to the log, an error too (the device is then
    /// ended). A frontend open without one makes suspend requests fail.
    pub fn on_resume(name: alloc::string::String, f: impl Fn() -> Result<alloc::string::String, alloc::string::String> + 'static) {
        with(|s| s.resumers.push((name, Rc::new(f))));
    }

    /// Ask for a shutdown from inside (as if the toolstack had).
    pub fn request_shutdown(how: Shutdown) {
        let wake = with(|s| {
            if s.requested.is_some() {
                return Vec::new();
            }
            s.requested = Some(how);
            core::mem::take(&mut s.waiting)
        });
        wake.into_iter().for_each(Waker::wake);
    }

    /// Ready when a shutdown was asked for (`xl shutdown`, `xl reboot`, or
    /// [`request_shutdown`]): what was asked. The app then has [`GRACE`]
    /// to finish its `main`.
    pub async fn shutdown_requested() -> Shutdown {
        core::future::poll_fn(|cx| {
            with(|s| match s.requested {
                Some(h) => Poll::Ready(h),
                None => {
                    if !s.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                        s.waiting.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// How many times this domain has resumed in a new domain (`xl
    /// restore`, a migration); a cancelled suspend does not count.
    pub fn resumes() -> u32 {
        with(|s| s.resumes)
    }

    /// Ready when the domain next resumes in a new domain. Nothing needs
    /// to wait for it (the runtime reconnects what it owns); an app may
    /// want to log it, or to say something again that it only said once.
    pub async fn resumed() {
        let at = resumes();
        core::future::poll_fn(|cx| {
            with(|s| {
                if s.resumes != at {
                    return Poll::Ready(());
                }
                if !s.resume_waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    s.resume_waiting.push(cx.waker().clone());
                }
                Poll::Pending
            })
        })
        .await
    }

    /// `xl save` / `xl migrate` asked: suspend, and say what came of it.
    async fn suspend_requested(xs: &xs::Store) {
        let (blockers, resumers) = with(|s| {
            let b: Vec<alloc::string::String> =
                s.closers.iter().filter(|(n, _)| !s.resumers.iter().any(|(r, _)| r == n)).map(|(n, _)| n.clone()).collect();
            (b, s.resumers.clone())
        });
        let mut devices = || {
            for (name, f) in &resumers {
                match f() {
                    Ok(what) => log::info!("rt: {name}: reconnected{what}"),
                    Err(e) => log::warn!("rt: {name}: cannot reconnect after the resume: {e}"),
                }
            }
        };
        match super::suspend::suspend(xs, &blockers, &mut devices).await {
            super::suspend::Outcome::Declined(why) => log::warn!("rt: suspend declined: {why}"),
            super::suspend::Outcome::Cancelled => log::info!("rt: the suspend was cancelled; running on, everything still bound"),
            super::suspend::Outcome::Resumed { was, now, nodes } => {
                log::info!("rt: resumed as domain {now} (was {was}); {nodes} xenstore nodes written again");
                let wake = with(|s| {
                    s.resumes += 1;
                    core::mem::take(&mut s.resume_waiting)
                });
                wake.into_iter().for_each(Waker::wake);
            }
        }
    }

    /// Follow the PV shutdown protocol: advertise, watch, acknowledge.
    async fn follow_control(xs: xs::Store) {
        let watch = async {
            for f in control::FEATURES.iter().chain([&control::SUSPEND_FEATURE]) {
                xs.write(f, "1").await?;
            }
            let mut w = xs.watch("control/shutdown").await?;
            loop {
                w.next().await?;
                let what = xs.try_read("control/shutdown").await?.unwrap_or_default();
                let how = match control::parse(what) {
                    Some(Request::Poweroff) => Shutdown::Poweroff,
                    Some(Request::Reboot) => Shutdown::Reboot,
                    Some(Request::Suspend) => {
                        suspend_requested(&xs).await;
                        continue;
                    }
                    Some(Request::Unsupported(w)) => {
                        log::warn!("rt: control/shutdown asks for {w:?}, which this runtime does not do");
                        continue;
                    }
                    None => continue,
                };
                xs.write("control/shutdown", "").await?;
                log::info!("rt: the toolstack asks for {}", if how == Shutdown::Reboot { "a reboot" } else { "a poweroff" });
                request_shutdown(how);
                return Ok(());
            }
        };
        let r: Result<(), crate::xen::xenstore::XsError> = watch.await;
        if let Err(e) = r {
            log::warn!("rt: control/shutdown: {e}; xl shutdown will not reach this domain");
        }
    }

    /// Run `main(boot)` as the first task, with the runtime's own tasks
    /// beside it, until it returns (then power off) or the toolstack asks
    /// for a shutdown and the grace period ends. Either way every frontend
    /// opened through the runtime is handed back first.
    pub fn run<F, Fut>(boot: Boot, main: F) -> !
    where
        F: FnOnce(Boot) -> Fut,
        Fut: Future<Output = ()>,
    {
        // Off Xen, leaving powers off through ACPI (plain QEMU, KVM hosts).
        crate::platform::enable_acpi();
        reactor::init();
        let mut ex = Executor::new(|| crate::xen::time::now().as_ns(), reactor::park);
        context::set(Some(ex.shared.clone()));
        match boot.xenstore() {
            Some(Ok(store)) => {
                let store = xs::Xs::new(store);
                xs::spawn_pump(&store);
                super::spawn(follow_control(store.clone()));
                with(|s| s.store = Some(store));
            }
            Some(Err(e)) => log::warn!("rt: no xenstore: {e}"),
            None => {}
        }
        let forced = async {
            let how = shutdown_requested().await;
            sleep(GRACE).await;
            log::warn!("rt: the app did not finish within {} s of the shutdown request; closing anyway", GRACE.as_secs());
            how
        };
        let how = match ex.block_on(select(main(boot), forced)) {
            Either::Left(()) => with(|s| s.requested).unwrap_or(Shutdown::Poweroff),
            Either::Right(how) => how,
        };
        finish(how)
    }

    /// Close every frontend (newest first), then leave.
    fn finish(how: Shutdown) -> ! {
        loop {
            let Some((name, close)) = with(|s| s.closers.pop()) else { break };
            log::info!("rt: closing {name}");
            close();
        }
        platform::shutdown(how)
    }
}
