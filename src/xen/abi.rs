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

// ---- HVM parameters — public/hvm/params.h, public/hvm/hvm_op.h ----------

/// `HVMOP_set_param` / `HVMOP_get_param` — public/hvm/hvm_op.h
pub const HVMOP_SET_PARAM: u32 = 0;
pub const HVMOP_GET_PARAM: u32 = 1;

/// `struct xen_hvm_param` — public/hvm/hvm_op.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenHvmParam {
    pub domid: u16,
    pub _pad: u16,
    pub index: u32,
    pub value: u64,
}

/// `HVM_PARAM_*` — public/hvm/params.h
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
pub const HVM_PARAM_STORE_PFN: u32 = 1;
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// `HVM_PARAM_CALLBACK_TYPE_VECTOR << 56 | vector` — public/hvm/params.h
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2 << 56;

/// `DOMID_SELF` — public/xen.h
pub const DOMID_SELF: u16 = 0x7ff0;

// ---- Memory — public/memory.h ---------------------------------------------

/// `struct xen_add_to_physmap` — public/memory.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenAddToPhysmap {
    pub domid: u16,
    pub size: u16,
    pub space: u32,
    pub idx: u64,
    pub gpfn: u64,
}
/// `XENMEM_populate_physmap`, `XENMEM_remove_from_physmap` — public/memory.h
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
/// `struct xen_memory_reservation` — public/memory.h (x86_64: the handle
/// is a pointer to `xen_pfn_t`s).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenMemoryReservation {
    pub extent_start: u64,
    pub nr_extents: u64,
    pub extent_order: u32,
    pub mem_flags: u32,
    pub domid: u16,
}
/// `struct xen_remove_from_physmap` — public/memory.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenRemoveFromPhysmap {
    pub domid: u16,
    pub gpfn: u64,
}
/// `XENMAPSPACE_*` — public/memory.h
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

// ---- shared_info — public/xen.h -------------------------------------------

/// Offsets into `struct shared_info` on x86_64 (32 legacy `vcpu_info`s of
/// 64 bytes, then the 2-level event channel bitmaps).
pub const SHARED_INFO_EVTCHN_PENDING: usize = 32 * 64;
pub const SHARED_INFO_EVTCHN_MASK: usize = SHARED_INFO_EVTCHN_PENDING + 64 * 8;
/// `struct vcpu_time_info` inside `vcpu_info[0]` — public/xen.h
pub const VCPU0_TIME: usize = 32;

/// `struct vcpu_time_info` — public/xen.h: Xen's system time (ns since
/// Xen booted) at `tsc_timestamp`, and how to scale TSC ticks since then:
/// `ns = system_time + (((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32`
/// (a negative shift shifts right). `version` is odd while Xen updates it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    pub version: u32,
    pub pad0: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_TSC_STABLE_BIT` (1), `XEN_PVCLOCK_GUEST_STOPPED` (2).
    pub flags: u8,
    pub pad1: [u8; 2],
}

/// `shared_info.wc_version`, `wc_sec`, `wc_nsec`, `wc_sec_hi` — public/xen.h
/// (x86_64: right after the two event channel bitmaps). The wall-clock time
/// (seconds since the Unix epoch) at system time 0, versioned like
/// `vcpu_time_info`.
pub const SHARED_INFO_WC_VERSION: usize = SHARED_INFO_EVTCHN_MASK + 64 * 8;
pub const SHARED_INFO_WC_SEC: usize = SHARED_INFO_WC_VERSION + 4;
pub const SHARED_INFO_WC_NSEC: usize = SHARED_INFO_WC_VERSION + 8;
pub const SHARED_INFO_WC_SEC_HI: usize = SHARED_INFO_WC_VERSION + 12;

// ---- vCPU timers — public/vcpu.h, public/xen.h ----------------------------

/// `VCPUOP_*` — public/vcpu.h (the `vcpu_op` hypercall, number 24).
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;

/// `struct vcpu_set_singleshot_timer` — public/vcpu.h: fire `VIRQ_TIMER`
/// once when system time reaches `timeout_abs_ns`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuSetSingleshotTimer {
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_future` (1): fail with -ETIME if the time has passed;
    /// 0: a time in the past fires at once.
    pub flags: u32,
    pub _pad: u32,
}

/// `VIRQ_TIMER` — public/xen.h: the per-vCPU timer (singleshot and periodic).
pub const VIRQ_TIMER: u32 = 0;

// ---- Event channels — public/event_channel.h ------------------------------

pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
pub const EVTCHNOP_CLOSE: u32 = 3;
pub const EVTCHNOP_SEND: u32 = 4;
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
pub const EVTCHNOP_UNMASK: u32 = 9;

/// `struct evtchn_bind_virq` — public/event_channel.h: bind virtual IRQ
/// `virq` of vCPU `vcpu` to a fresh port (out).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindVirq {
    pub virq: u32,
    pub vcpu: u32,
    pub port: u32,
}

/// `struct sched_poll` — public/sched.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedPoll {
    pub ports: u64,
    pub nr_ports: u32,
    pub _pad: u32,
    pub timeout: u64,
}
pub const SCHEDOP_POLL: u32 = 3;

// ---- Grant tables — public/grant_table.h ----------------------------------

/// `struct grant_entry_v1` — public/grant_table.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GrantEntryV1 {
    pub flags: u16,
    pub domid: u16,
    pub frame: u32,
}
pub const GTF_PERMIT_ACCESS: u16 = 1;
pub const GTF_READONLY: u16 = 1 << 2;
pub const GTF_READING: u16 = 1 << 3;
pub const GTF_WRITING: u16 = 1 << 4;
/// `GNTTAB_NR_RESERVED_ENTRIES` — public/grant_table.h (console, xenstore).
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;

// ---- xenstore wire — public/io/xs_wire.h ----------------------------------

/// `struct xsd_sockmsg` header: type, req_id, tx_id, len (then `len` bytes).
pub const XS_HEADER: usize = 16;
/// `XENSTORE_PAYLOAD_MAX`
pub const XS_PAYLOAD_MAX: usize = 4096;
/// `enum xsd_sockmsg_type`
pub mod xs_type {
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TRANSACTION_START: u32 = 6;
    pub const TRANSACTION_END: u32 = 7;
    pub const INTRODUCE: u32 = 8;
    pub const RELEASE: u32 = 9;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const SET_PERMS: u32 = 14;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
}
/// `struct xenstore_domain_interface`: req[1024], rsp[1024], then indexes.
pub const XS_RING_SIZE: u32 = 1024;
pub const XS_REQ: usize = 0;
pub const XS_RSP: usize = 1024;
pub const XS_REQ_CONS: usize = 2048;
pub const XS_REQ_PROD: usize = 2052;
pub const XS_RSP_CONS: usize = 2056;
pub const XS_RSP_PROD: usize = 2060;

// ---- PV console — public/io/console.h -------------------------------------

/// `struct xencons_interface`: in[1024], out[2048], then indexes.
pub const CONS_IN: usize = 0;
pub const CONS_IN_SIZE: u32 = 1024;
pub const CONS_OUT: usize = 1024;
pub const CONS_OUT_SIZE: u32 = 2048;
pub const CONS_IN_CONS: usize = 3072;
pub const CONS_IN_PROD: usize = 3076;
pub const CONS_OUT_CONS: usize = 3080;
pub const CONS_OUT_PROD: usize = 3084;

#[cfg(test)]
mod more_layout_tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn hvm_memory_grant_layouts() {
        assert_eq!(size_of::<XenHvmParam>(), 16);
        assert_eq!(offset_of!(XenHvmParam, index), 4);
        assert_eq!(offset_of!(XenHvmParam, value), 8);
        assert_eq!(size_of::<XenAddToPhysmap>(), 24);
        assert_eq!(offset_of!(XenAddToPhysmap, idx), 8);
        assert_eq!(size_of::<GrantEntryV1>(), 8);
        assert_eq!(size_of::<SchedPoll>(), 24);
        assert_eq!(offset_of!(SchedPoll, timeout), 16);
        assert_eq!(SHARED_INFO_EVTCHN_PENDING, 2048);
        assert_eq!(SHARED_INFO_EVTCHN_MASK, 2560);
    }

    #[test]
    fn time_and_timer_layouts() {
        assert_eq!(size_of::<VcpuTimeInfo>(), 32);
        assert_eq!(offset_of!(VcpuTimeInfo, tsc_timestamp), 8);
        assert_eq!(offset_of!(VcpuTimeInfo, system_time), 16);
        assert_eq!(offset_of!(VcpuTimeInfo, tsc_to_system_mul), 24);
        assert_eq!(offset_of!(VcpuTimeInfo, tsc_shift), 28);
        assert_eq!(offset_of!(VcpuTimeInfo, flags), 29);
        // vcpu_info: upcall pending/mask, pad, evtchn_pending_sel (8), arch (16).
        assert_eq!(VCPU0_TIME, 32);
        assert_eq!(SHARED_INFO_WC_VERSION, 3072);
        assert_eq!(SHARED_INFO_WC_SEC_HI, 3084);
        assert_eq!(size_of::<VcpuSetSingleshotTimer>(), 16);
        assert_eq!(size_of::<EvtchnBindVirq>(), 12);
    }
}
