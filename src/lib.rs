//! hvmlite: a Xen PVH loader and stubdomain runtime.
//!
//! The boot flow, one module a stage:
//! 1. `entry.s` (pulled into the image by `main.rs`) — the 32-bit PVH
//!    entry: stack, early page tables, long mode;
//! 2. [`pvh`] — start_info ([`start_info`]) → zero page ([`zero_page`]),
//!    with the hypervisor type ([`hvinfo`]) and a sanitised map ([`e820`]);
//! 3. [`startup`] — `startup_64(boot_params)`: the common 64-bit entry that
//!    knows only the zero page: heap, page tables ([`paging`]), console,
//!    boot report;
//! 4. what runs then: [`loader`] — start a Linux kernel from a payload
//!    bundle ([`bundle`]): parse it ([`kernel`]), place it ([`placement`]),
//!    jump (`handoff.s`); or [`stubdom`] — the stubdomain service on a Xen
//!    domU (xenstore, event channels, PV console, grants, shutdown);
//! 5. [`xen`] — Xen-specific set-up (hypercall page, console, memory map,
//!    shutdown); [`platform`] — poweroff and crash everywhere.
//!
//! Pure logic builds for the host and is unit-tested there; modules that
//! touch hardware build only for `x86_64-unknown-none`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bundle;
pub mod disk;
pub mod e820;
pub mod hvinfo;
pub mod kernel;
pub mod memory;
pub mod paging;
pub mod ring;
pub mod placement;
pub mod start_info;
pub mod xen_abi;
pub mod xenstore;
pub mod zero_page;

#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod cpu;
#[cfg(target_os = "none")]
pub mod evtchn;
#[cfg(target_os = "none")]
pub mod gnttab;
#[cfg(target_os = "none")]
pub mod loader;
#[cfg(target_os = "none")]
pub mod platform;
#[cfg(target_os = "none")]
pub mod pvh;
#[cfg(target_os = "none")]
pub mod pvconsole;
#[cfg(target_os = "none")]
pub mod shared_page;
#[cfg(target_os = "none")]
pub mod startup;
#[cfg(target_os = "none")]
pub mod stubdom;
#[cfg(target_os = "none")]
pub mod traps;
#[cfg(target_os = "none")]
pub mod xen;
