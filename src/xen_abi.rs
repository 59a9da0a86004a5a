//! The parts of the Xen public ABI that `xen-sys` does not carry.
//!
//! `xen-sys` has `public/xen.h`, `sched.h`, `event_channel.h` and the ELF
//! note numbers; everything HVM/PVH-specific that hvmlite needs is declared
//! here, each item naming the public header it comes from. Layouts are
//! checked by unit tests.

/// `XEN_HVM_START_MAGIC_VALUE` — public/arch-x86/hvm/start_info.h
pub const HVM_START_MAGIC: u32 = 0x336e_c578;

/// `struct hvm_start_info` — public/arch-x86/hvm/start_info.h.
///
/// Version 0 ends after `rsdp_paddr` (40 bytes); version 1 adds the memory
/// map (56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmStartInfo {
    pub magic: u32,
    pub version: u32,
    pub flags: u32,
    pub nr_modules: u32,
    pub modlist_paddr: u64,
    pub cmdline_paddr: u64,
    pub rsdp_paddr: u64,
    // Version >= 1:
    pub memmap_paddr: u64,
    pub memmap_entries: u32,
    pub reserved: u32,
}

/// Size of the version-0 part of `hvm_start_info`.
pub const HVM_START_INFO_V0_SIZE: usize = 40;

/// `SIF_PRIVILEGED` — public/xen.h: the domain may use privileged operations.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN` — public/xen.h: this is the initial control domain.
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// `struct hvm_modlist_entry` — public/arch-x86/hvm/start_info.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmModlistEntry {
    pub paddr: u64,
    pub size: u64,
    pub cmdline_paddr: u64,
    pub reserved: u64,
}

/// `struct hvm_memmap_table_entry` — public/arch-x86/hvm/start_info.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmMemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub type_: u32,
    pub reserved: u32,
}

/// `XEN_HVM_MEMMAP_TYPE_*` — public/arch-x86/hvm/start_info.h. The values
/// are those of the e820 types they mirror.
pub mod memmap_type {
    pub const RAM: u32 = 1;
    pub const RESERVED: u32 = 2;
    pub const ACPI: u32 = 3;
    pub const NVS: u32 = 4;
    pub const UNUSABLE: u32 = 5;
    pub const DISABLED: u32 = 6;
    pub const PMEM: u32 = 7;
}

/// `XENMEM_memory_map` — public/memory.h: the domain's pseudo-physical e820.
pub const XENMEM_MEMORY_MAP: u32 = 9;
/// `XENMEM_add_to_physmap` — public/memory.h
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;

/// `struct xen_memory_map` — public/memory.h. `buffer` is a guest handle to
/// an array of packed 20-byte e820 entries; `nr_entries` is the capacity on
/// the way in and the count on the way out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenMemoryMap {
    pub nr_entries: u32,
    pub _pad: u32,
    pub buffer: u64,
}

/// `struct sched_shutdown` — public/sched.h (xen-sys has the constants, but
/// its `sched_op` wrapper passes the reason by value, while x86 Xen expects
/// a pointer to this struct).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedShutdown {
    pub reason: u32,
}

/// CPUID leaf offsets inside Xen's range — public/arch-x86/cpuid.h:
/// base + 2 gives EAX = hypercall pages, EBX = MSR to write the page address to.
pub const XEN_CPUID_LEAF_HYPERCALL: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn start_info_layout_matches_the_public_header() {
        assert_eq!(size_of::<HvmStartInfo>(), 56);
        assert_eq!(offset_of!(HvmStartInfo, modlist_paddr), 16);
        assert_eq!(offset_of!(HvmStartInfo, cmdline_paddr), 24);
        assert_eq!(offset_of!(HvmStartInfo, rsdp_paddr), 32);
        assert_eq!(offset_of!(HvmStartInfo, memmap_paddr), HVM_START_INFO_V0_SIZE);
        assert_eq!(offset_of!(HvmStartInfo, memmap_entries), 48);
        assert_eq!(size_of::<HvmModlistEntry>(), 32);
        assert_eq!(size_of::<HvmMemmapEntry>(), 24);
        assert_eq!(offset_of!(HvmMemmapEntry, type_), 16);
        assert_eq!(size_of::<XenMemoryMap>(), 16);
        assert_eq!(offset_of!(XenMemoryMap, buffer), 8);
    }
}
