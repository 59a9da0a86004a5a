//! hello-stubdom: the template for your own stubdomain.
//!
//! It publishes `data/hello = world` in its xenstore home, answers one kind
//! of request (dom0 writes `data/hello-request = NAME`, it answers
//! `data/hello-response = hello, NAME`), and follows the PV shutdown
//! protocol (`xl shutdown`, `xl reboot`). Off Xen it says so and powers off.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;

use hvmlite::platform::{self, Shutdown};
use hvmlite::xen::control::{self, Request};
use hvmlite::xen::evtchn;
use hvmlite::Boot;

hvmlite::app!(main);

fn main(boot: Boot) -> ! {
    log::info!("hello-stubdom: up on {} with {} KiB of heap", boot.hypervisor, boot.heap.len() / 1024);
    let Some(xs) = boot.xenstore() else {
        log::info!("hello-stubdom: no xenstore (not a Xen domU); powering off");
        platform::shutdown(Shutdown::Poweroff)
    };
    let fail = |what: &str, e: &dyn core::fmt::Display| -> ! { platform::fatal(format_args!("hello-stubdom: {what}: {e}")) };
    let mut xs = xs.unwrap_or_else(|e| fail("xenstore", &e));
    control::advertise(&mut xs).unwrap_or_else(|e| fail("control", &e));
    xs.write("data/hello", "world").unwrap_or_else(|e| fail("data/hello", &e));
    xs.watch("data/hello-request", "hello").unwrap_or_else(|e| fail("watch", &e));
    log::info!("hello-stubdom: ready");

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
        // Sleep until xenstored signals (or 10 s pass).
        evtchn::wait_any(&[xs.transport().port()], 10_000_000_000);
    }
}
