//! hello-stubdom: the template for your own stubdomain.
//!
//! It publishes `data/hello = world` in its xenstore home, answers one kind
//! of request (dom0 writes `data/hello-request = NAME`, it answers
//! `data/hello-response = hello, NAME`), publishes `data/uptime` (seconds
//! since boot, from the monotonic clock) and `data/wallclock` (Unix
//! seconds) once a second, and follows the PV shutdown protocol
//! (`xl shutdown`, `xl reboot`). In between it sleeps in Xen: one
//! `events::wait` for xenstore's event channel or the next second.
//! Off Xen it times one second on the clock and powers off.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use core::time::Duration;

use hvmlite::platform::{self, Shutdown};
use hvmlite::xen::control::{self, Request};
use hvmlite::xen::time::{self, Every};
use hvmlite::xen::{events, store::Store};
use hvmlite::Boot;

hvmlite::app!(main);

fn main(boot: Boot) -> ! {
    log::info!("hello-stubdom: up on {} with {} KiB of heap", boot.hypervisor, boot.heap.len() / 1024);
    let Some(xs) = boot.xenstore() else { off_xen() };
    let fail = |what: &str, e: &dyn core::fmt::Display| -> ! { platform::fatal(format_args!("hello-stubdom: {what}: {e}")) };
    let mut xs = xs.unwrap_or_else(|e| fail("xenstore", &e));
    control::advertise(&mut xs).unwrap_or_else(|e| fail("control", &e));
    xs.write("data/hello", "world").unwrap_or_else(|e| fail("data/hello", &e));
    xs.watch("data/hello-request", "hello").unwrap_or_else(|e| fail("watch", &e));
    publish_time(&mut xs);
    log::info!("hello-stubdom: ready");

    let mut tick = Every::new(time::now(), Duration::from_secs(1));
    loop {
        while let Some(ev) = xs.poll_event().unwrap_or_else(|e| fail("xenstore", &e)) {
            if ev.token == control::TOKEN {
                match control::take_request(&mut xs) {
                    Ok(Some(Request::Poweroff)) => platform::shutdown(Shutdown::Poweroff),
                    Ok(Some(Request::Reboot)) => platform::shutdown(Shutdown::Reboot),
                    _ => {}
                }
            } else if let Ok(name) = xs.read("data/hello-request") {
                if !name.is_empty() {
                    log::info!("hello-stubdom: hello, {name}");
                    let _ = xs.write("data/hello-response", &format!("hello, {name}"));
                }
            }
        }
        if tick.due(time::now()) {
            publish_time(&mut xs);
        }
        // Sleep in Xen until xenstored signals or the next second is due.
        events::wait(&[xs.transport().port()], Some(tick.next()));
    }
}

/// `data/uptime` = seconds since boot (ms precision), `data/wallclock` =
/// Unix seconds.
fn publish_time(xs: &mut Store) {
    let up = time::since_boot();
    let _ = xs.write("data/uptime", &format!("{}.{:03}", up.as_secs(), up.subsec_millis()));
    if let Some(wall) = time::wall() {
        let _ = xs.write("data/wallclock", &format!("{}", wall.secs));
    }
}

/// No Xen: time one second on the monotonic clock, then power off.
fn off_xen() -> ! {
    log::info!("hello-stubdom: no xenstore (not a Xen domU); timing 1 s on the clock");
    let t0 = time::now();
    events::sleep_until(t0 + Duration::from_secs(1));
    let hz = time::tsc_hz();
    log::info!("hello-stubdom: clock: {} ms passed (TSC {} MHz); powering off", (time::now() - t0).as_millis(), hz / 1_000_000);
    platform::shutdown(Shutdown::Poweroff)
}
