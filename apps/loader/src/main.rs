//! The loader image, `hvmlite.elf`: the app `make` builds and every test
//! boots.
//!
//! 1. the boot report;
//! 2. what the command line asks for (`poweroff`, `hvmlite.crash=…`);
//! 3. a payload bundle (embedded, or the first module) → start that kernel;
//! 4. on a Xen domU, the domain's own disks (`xvda` first) → the kernel
//!    their boot entries name ([`disk`]);
//! 5. a Xen domU with nothing to start → the stubdomain service
//!    ([`service`]) until the toolstack shuts it down;
//! 6. otherwise: power off.
#![no_std]
#![no_main]

extern crate alloc;

mod service;

use hvmlite::arch::hypervisor::Hypervisor;
use hvmlite::payload::{disk, loader};
use hvmlite::platform::{self, Shutdown};
use hvmlite::Boot;

hvmlite::app!(main);

fn main(boot: Boot) -> ! {
    boot.report();
    boot.obey_cmdline();
    // A payload, if the boot brought one, never comes back.
    loader::start(&boot);
    if boot.hypervisor == Hypervisor::Xen {
        if let Some(xs) = boot.xenstore() {
            let mut xs = xs.unwrap_or_else(|e| platform::fatal(format_args!("stubdom: {e}")));
            disk::boot(&boot, &mut xs);
            service::run(&boot, xs);
        }
    }
    platform::shutdown(Shutdown::Poweroff)
}
