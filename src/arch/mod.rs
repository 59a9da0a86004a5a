//! The x86-64 machine, knowing nothing of hypervisors' interfaces or boot
//! protocols: CPU instructions, physical memory and its e820 map, page
//! tables, CPUID's hypervisor signature, single-CPU statics, the TSC, the
//! ACPI tables that say how to power off and reset.

pub mod acpi;
pub mod cell;
pub mod e820;
pub mod hypervisor;
pub mod memory;
pub mod paging;

#[cfg(target_os = "none")]
pub mod cpu;
#[cfg(target_os = "none")]
pub mod tsc;
