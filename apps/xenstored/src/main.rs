//! xenstored as an hvmlite app: the xenstore domain.
//!
//! Xen's tools start it the way they start any xenstore domain:
//! `init-xenstore-domain --kernel xenstored.elf --memory 4` builds it (PVH),
//! has dom0's Linux grant its xenstore ring as grant ref 1 and allocate an
//! event channel for it (`IOCTL_XENBUS_BACKEND_SETUP`), and passes that
//! port as `--event N` on the command line. From then on this domain is
//! the store: dom0's tools reach it through dom0's kernel, each guest
//! through the ring `XS_INTRODUCE` names.
//!
//! The protocol — tree, permissions, transactions, watches, quotas — is
//! `hvmlite::xsd`, plain Rust tested on the host. This app moves bytes:
//! one task per connection waits on that guest's event channel, feeds
//! what the guest wrote to the server and writes back whatever the server
//! queued for anyone ([`ring`]); [`host`] maps guests' rings and binds
//! their channels as the server asks; one more task follows
//! `VIRQ_DOM_EXC`, so a domain that dies is released at once.
#![no_std]
#![no_main]

extern crate alloc;

mod host;
mod ring;

use hvmlite::rt::reactor;
use hvmlite::xen::{domctl, evtchn};
use hvmlite::xsd::{Config, DomId, Server};
use hvmlite::{platform, Boot};

use host::Shared;

hvmlite::main!(main);

/// `VIRQ_DOM_EXC` (xen/include/public/xen.h): a domain died, or shut
/// down. Only the domain Xen routes it to sees it: init-xenstore-domain
/// routes it here.
const VIRQ_DOM_EXC: u32 = 3;
/// dom0, whose tools and kernel talk to the store through one ring.
const MASTER: DomId = 0;

fn fail(args: core::fmt::Arguments) -> ! {
    platform::fatal(format_args!("xenstored: {args}"))
}

async fn main(boot: Boot) {
    let Some(port) = event_arg(&boot) else {
        fail(format_args!("no --event PORT on the command line: start me with init-xenstore-domain"))
    };
    let shared = Shared::new(Server::new(limits(boot.heap.len() as usize)));
    // dom0's ring: grant ref 1 of dom0 (GNTTAB_RESERVED_XENSTORE), and the
    // port dom0's kernel allocated for us.
    if let Err(e) = shared.connect(MASTER, port) {
        fail(format_args!("dom0's ring (grant 1, port {port}): {e}"));
    }
    let exc = evtchn::bind_virq(VIRQ_DOM_EXC, 0).unwrap_or_else(|e| fail(format_args!("VIRQ_DOM_EXC: {e}")));
    let c = *shared.server.borrow().config();
    log::info!(
        "xenstored: serving dom0 on port {port}, {} KiB of heap; guests may own {} KiB, one {} KiB",
        boot.heap.len() / 1024,
        c.guests_memory / 1024,
        c.memory / 1024
    );
    loop {
        reactor::port_event(exc).await;
        check_domains(&shared);
    }
}

/// Xen 4.17's quotas, within what this domain's heap holds: guests
/// together may own 3/8 of it (so that no number of hostile guests can
/// exhaust it), one guest a sixteenth at most (never more than Xen's 2.5
/// MiB), and what waits for a ring that is not read is bounded by a
/// 128th (8–64 KiB). The rest is dom0's, the connections' buffers and
/// transactions'.
fn limits(heap: usize) -> Config {
    let d = Config::default();
    Config { guests_memory: heap / 8 * 3, memory: d.memory.min(heap / 16), output: (heap / 128).clamp(8 << 10, d.output), ..d }
}

/// `--event N`: the port dom0's kernel allocated for this domain.
fn event_arg(boot: &Boot) -> Option<u32> {
    let mut args = boot.args();
    while let Some(a) = args.next() {
        if a == "--event" {
            return args.next().and_then(|n| n.parse().ok());
        }
        if let Some(n) = a.strip_prefix("--event=") {
            return n.parse().ok();
        }
    }
    None
}

/// After `VIRQ_DOM_EXC`: ask Xen about every introduced domain. A domain
/// that shut down or crashed gets its `@releaseDomain` (xl waits for it);
/// one that is dying or gone is released: ring unmapped, port closed, its
/// watches and transactions dropped.
fn check_domains(shared: &Shared) {
    let domains = shared.server.borrow().domains();
    for d in domains {
        match domctl::getdomaininfo(d) {
            Ok(Some(info)) if info.dying => shared.domain_gone(d),
            Ok(Some(info)) if info.shutdown.is_some() || info.crashed => shared.server.borrow_mut().domain_shutdown(d),
            Ok(Some(_)) => {}
            Ok(None) => shared.domain_gone(d),
            Err(e) => log::warn!("xenstored: domain {d}: getdomaininfo: {e}"),
        }
    }
    ring::flush_all(shared);
}
