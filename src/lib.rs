//! hvmlite: a Xen PVH loader and stubdomain runtime, as a library that apps
//! are built on.
//!
//! Xen (or QEMU) enters an image at its PVH entry; the library does the
//! boot and then calls the app's `main` with a [`Boot`] that holds what the
//! boot established. An app is a `no_std` binary crate:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! hvmlite::app!(main);
//! fn main(boot: hvmlite::Boot) -> ! {
//!     boot.report();
//!     hvmlite::platform::shutdown(hvmlite::platform::Shutdown::Poweroff)
//! }
//! ```
//!
//! with `hvmlite::build::link()` in its `build.rs` (the link layout and the
//! PVH note come from the library).
//!
//! The folders are layers; each imports only from the ones above it here:
//! - [`arch`]: the x86-64 machine — CPU, physical memory ranges, the e820
//!   map, page tables, which hypervisor this is;
//! - [`xen`]: Xen's ABI and the guest side of its interfaces — hypercalls,
//!   event channels, grant tables, shared rings, xenstore, the PV console;
//! - [`platform`]: the console and the way out (shutdown, `FATAL`), on Xen
//!   and elsewhere;
//! - [`boot`]: the boot flow, one file a stage — `entry.s` (PVH entry),
//!   [`boot::pvh`] (start_info → zero page), [`boot::startup`]
//!   (`startup_64`: the common 64-bit entry, then the app);
//! - [`payload`]: starting a Linux kernel from a payload bundle.
//!
//! Beside them, for what is built on devices: [`dev`], the small traits a
//! device implements (a block device, a network device), imports nothing; [`disk`] —
//! partitions and filesystems — and [`net`] — TCP/IP on smoltcp — see
//! only those traits, never Xen.
//!
//! On top of them all, [`rt`]: the task runtime — apps as `async` tasks,
//! an executor that owns the event loop, xenstore, network and disk as
//! futures, shutdown handled for the app.
//!
//! Pure logic builds for the host and is unit-tested there; what touches
//! hardware builds only for `x86_64-unknown-none`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod dev;
pub mod disk;
pub mod net;
pub mod payload;
#[cfg(target_os = "none")]
pub mod platform;
pub mod rt;
pub mod sort;
pub mod xen;
pub mod xsd;

#[cfg(not(target_os = "none"))]
pub mod build;

#[cfg(target_os = "none")]
pub use boot::Boot;

/// Name the app's entry: `hvmlite::app!(main)` with `fn main(boot: Boot) -> !`.
///
/// `startup_64` calls it once, at the end of the boot, on the boot stack,
/// with interrupts off.
#[macro_export]
macro_rules! app {
    ($main:path) => {
        #[no_mangle]
        extern "Rust" fn __hvmlite_app_main(boot: $crate::Boot) -> ! {
            let main: fn($crate::Boot) -> ! = $main;
            main(boot)
        }
    };
}

/// `hvmlite::main!(main)` with `async fn main(boot: Boot)`: the app runs
/// as a task on the runtime ([`rt::run`](crate::rt::run)); when it
/// returns, the domain powers off.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        $crate::app!(__hvmlite_async_main);
        fn __hvmlite_async_main(boot: $crate::Boot) -> ! {
            $crate::rt::run(boot, $main)
        }
    };
}
