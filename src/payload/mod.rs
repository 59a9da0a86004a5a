//! Starting a Linux kernel: the payload bundle that carries it ([`bundle`]),
//! the kernel formats ([`kernel`]), where it goes ([`placement`]) and the
//! hand-off through the 64-bit boot protocol ([`loader`], `handoff.s`).

pub mod bundle;
pub mod kernel;
pub mod placement;
pub mod pvh;

#[cfg(target_os = "none")]
pub mod loader;
