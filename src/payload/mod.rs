//! Starting a Linux kernel: the payload bundle that carries it ([`bundle`]),
//! the kernel formats ([`kernel`]), where it goes ([`placement`]) and the
//! hand-off through the 64-bit boot protocol ([`loader`], `handoff.s`), and
//! where a kernel comes from besides a bundle: the domain's own disk
//! ([`disk`]).

pub mod bundle;
pub mod kernel;
pub mod placement;

#[cfg(target_os = "none")]
pub mod disk;
#[cfg(target_os = "none")]
pub mod loader;
