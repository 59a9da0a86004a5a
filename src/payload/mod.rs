//! Starting a Linux kernel: the payload bundle that carries it ([`bundle`]),
//! the kernel formats ([`kernel`]), where it goes ([`placement`]), the
//! start_info and the choice for the PVH hand-off ([`pvh`]), the hand-off
//! itself, through the 64-bit boot protocol or the kernel's own PVH entry
//! ([`loader`], `handoff.s`), and where a kernel comes from besides a
//! bundle: the domain's own disk ([`disk`]), chosen in a console menu
//! ([`menu`]).

pub mod bundle;
pub mod kernel;
pub mod placement;
pub mod pvh;

#[cfg(target_os = "none")]
pub mod disk;
#[cfg(target_os = "none")]
pub mod loader;
#[cfg(target_os = "none")]
pub mod menu;
