//! Suspend and resume: `xl save` / `xl restore`, `xl migrate`, and a
//! cancelled suspend (`xl save -c`, a checkpoint, a migration that failed).
//!
//! The toolstack writes `suspend` to `control/shutdown` (the runtime
//! advertises `control/feature-suspend`) and waits for the domain to call
//! `SCHEDOP_shutdown(SHUTDOWN_suspend)`. The runtime then, in its control
//! task while no other task runs:
//!
//! 1. acknowledges (clears the node) and holds new xenstore requests until
//!    those in flight are answered: a reply to a request made before the
//!    suspend would never come after it;
//! 2. notes the clock and stops the one-shot timer, then suspends;
//! 3. on return, tells a cancelled suspend (the same domain, everything
//!    still bound: nothing is redone, nothing bound twice) from a resume
//!    in a new domain, where every binding to Xen and to other domains is
//!    gone, and rebuilds them in order: Xen's shared info page and the
//!    callback vector, the clock (going on from where it stopped), the
//!    timer, the grant table's frame, the console's and xenstore's event
//!    channels from the HVM parameters, xenstore's watches, and the nodes
//!    the domain had written under its home;
//! 4. lets the held requests go, wakes every task (each looks at its
//!    device again) and counts the resume for [`super::resumed`].
//!
//! Frontends reconnect themselves in a new domain through what they
//! registered with [`super::on_resume`] (the block frontend puts the
//! requests that were in flight on its new ring). While a frontend that
//! registered none is open, a suspend request is declined (not
//! acknowledged, so the toolstack gives up and the domain runs on) with a
//! line saying which.

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use super::reactor;
use super::xs::Store;
use crate::xen::{self, console, gnttab, time, Resumed};

/// How long the xenstore requests in flight may take to be answered
/// before the suspend goes ahead without waiting more (the toolstack
/// gives the guest about a minute in all).
const QUIESCE: Duration = Duration::from_secs(2);

/// What came of one suspend request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not suspended: why.
    Declined(String),
    Cancelled,
    /// Running in a new domain; the old and new domain ids (as xenstore
    /// says them, `?` if it did not).
    Resumed {
        was: String,
        now: String,
        nodes: usize,
    },
}

/// Suspend this domain (the toolstack asked); `blockers` names the open
/// frontends that cannot come back yet (then the request is declined);
/// `devices` reconnects the others in a new domain, once xenstore is back
/// and before the tasks' requests go on.
pub async fn suspend(xs: &Store, blockers: &[String], devices: &mut dyn FnMut()) -> Outcome {
    if !blockers.is_empty() {
        return Outcome::Declined(format!("{} cannot be reconnected after a resume yet", blockers.join(", ")));
    }
    let was = xs.read("domid").await.unwrap_or_else(|_| "?".into());
    if let Err(e) = xs.write("control/shutdown", "").await {
        return Outcome::Declined(format!("acknowledging: {e}"));
    }
    if !xs.pause(QUIESCE).await {
        log::warn!("rt: xenstore requests still unanswered after {} s; suspending without them", QUIESCE.as_secs());
    }
    log::info!("rt: suspending (domain {was})");
    let before = time::now();
    let _ = xen::stop_singleshot_timer();
    let r = xen::suspend();
    let out = match r {
        Ok(Resumed::Cancelled) => Outcome::Cancelled,
        Ok(Resumed::New) => {
            // Xen's shared info first: the clock is read from it.
            if let Err(e) = reactor::resumed() {
                crate::platform::fatal(format_args!("rt: resumed, but event channels cannot be set up again: {e}"));
            }
            time::resumed(before);
            if let Err(e) = gnttab::remap() {
                crate::platform::fatal(format_args!("rt: resumed, but the grant table cannot be mapped again: {e}"));
            }
            console::init();
            let nodes = xs.reconnect().unwrap_or_else(|e| {
                log::warn!("rt: resumed, but xenstore: {e}");
                0
            });
            devices();
            let now = xs.blocking(|s| s.read("domid")).unwrap_or_else(|_| "?".into());
            Outcome::Resumed { was, now, nodes }
        }
        Err(rc) => Outcome::Declined(format!("Xen refused SCHEDOP_shutdown(SHUTDOWN_suspend) ({rc})")),
    };
    xs.resume();
    out
}
