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
//!   powers off (or reboots).
//!
//! This layer sits on top: it uses `xen`, `net`, `platform` and `boot`.

pub mod executor;
pub mod time;
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
        /// How to hand back each frontend opened, newest last.
        closers: Vec<(alloc::string::String, Box<dyn FnOnce()>)>,
    }

    struct Local(RefCell<State>);
    // SAFETY: one vCPU, tasks run with interrupts off.
    unsafe impl Sync for Local {}
    static STATE: Local = Local(RefCell::new(State { store: None, requested: None, waiting: Vec::new(), closers: Vec::new() }));

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

    /// Follow the PV shutdown protocol: advertise, watch, acknowledge.
    async fn follow_control(xs: xs::Store) {
        let watch = async {
            for f in control::FEATURES {
                xs.write(f, "1").await?;
            }
            let mut w = xs.watch("control/shutdown").await?;
            loop {
                w.next().await?;
                let what = xs.try_read("control/shutdown").await?.unwrap_or_default();
                let how = match control::parse(what) {
                    Some(Request::Poweroff) => Shutdown::Poweroff,
                    Some(Request::Reboot) => Shutdown::Reboot,
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
