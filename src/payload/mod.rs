//! Starting a Linux kernel: the payload bundle that carries it ([`bundle`]),
//! the kernel formats ([`kernel`]), where it goes ([`placement`]), the
//! start_info and the choice for the PVH hand-off ([`pvh`]), and the
//! hand-off itself, through the 64-bit boot protocol or the kernel's own
//! PVH entry ([`loader`], `handoff.s`).

pub mod bundle;
pub mod kernel;
pub mod placement;
pub mod pvh;

#[cfg(target_os = "none")]
pub mod loader;
