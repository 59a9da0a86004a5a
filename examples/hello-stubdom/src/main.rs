//! hello-stubdom: the template for your own stubdomain, as tasks on the
//! hvmlite runtime.
//!
//! It publishes `data/hello = world` in its xenstore home, answers one kind
//! of request (dom0 writes `data/hello-request = NAME`, it answers
//! `data/hello-response = hello, NAME`), and publishes `data/uptime`
//! (seconds since boot, from the monotonic clock) and `data/wallclock`
//! (Unix seconds) once a second. The runtime follows the PV shutdown
//! protocol: `main` returns when `xl shutdown` or `xl reboot` asks, and
//! the runtime does what was asked. Off Xen it times one second on the
//! clock and powers off.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use core::time::Duration;

use hvmlite::rt::time::{self, select, Either, Interval};
use hvmlite::rt::{self, xs::Store};
use hvmlite::{platform, xen, Boot};

hvmlite::main!(main);

async fn main(boot: Boot) {
    log::info!("hello-stubdom: up on {} with {} KiB of heap", boot.hypervisor, boot.heap.len() / 1024);
    let Some(xs) = rt::xenstore() else { return off_xen().await };
    let fail = |what: &str, e: &dyn core::fmt::Display| -> ! { platform::fatal(format_args!("hello-stubdom: {what}: {e}")) };
    xs.write("data/hello", "world").await.unwrap_or_else(|e| fail("data/hello", &e));
    let mut requests = xs.watch("data/hello-request").await.unwrap_or_else(|e| fail("watch", &e));
    publish_time(&xs).await;
    log::info!("hello-stubdom: ready");

    // A task of its own for the clock; this one answers requests.
    let clock = xs.clone();
    rt::spawn(async move {
        let mut tick = Interval::new(Duration::from_secs(1));
        loop {
            tick.tick().await;
            publish_time(&clock).await;
        }
    });
    loop {
        match select(requests.next(), rt::shutdown_requested()).await {
            Either::Left(Ok(_)) => {
                if let Ok(Some(name)) = xs.try_read("data/hello-request").await {
                    if !name.is_empty() {
                        log::info!("hello-stubdom: hello, {name}");
                        let _ = xs.write("data/hello-response", &format!("hello, {name}")).await;
                    }
                }
            }
            Either::Left(Err(e)) => fail("xenstore", &e),
            Either::Right(_) => return,
        }
    }
}

/// `data/uptime` = seconds since boot (ms precision), `data/wallclock` =
/// Unix seconds.
async fn publish_time(xs: &Store) {
    let up = xen::time::since_boot();
    let _ = xs.write("data/uptime", &format!("{}.{:03}", up.as_secs(), up.subsec_millis())).await;
    if let Some(wall) = xen::time::wall() {
        let _ = xs.write("data/wallclock", &format!("{}", wall.secs)).await;
    }
}

/// No Xen: time one second on the monotonic clock, then power off.
async fn off_xen() {
    log::info!("hello-stubdom: no xenstore (not a Xen domU); timing 1 s on the clock");
    let t0 = time::now();
    time::sleep(Duration::from_secs(1)).await;
    let hz = xen::time::tsc_hz();
    log::info!("hello-stubdom: clock: {} ms passed (TSC {} MHz); powering off", (time::now() - t0).as_millis(), hz / 1_000_000);
}
