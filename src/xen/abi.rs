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

// ---- Virtual IRQs — public/xen.h -------------------------------------------

/// `VIRQ_DOM_EXC` — public/xen.h: a domain shut down or died (global VIRQ,
/// delivered to the one domain it is routed to: dom0, or the xenstore
/// domain after `init-xenstore-domain`).
pub const VIRQ_DOM_EXC: u32 = 3;

// ---- Grant mapping — public/grant_table.h ----------------------------------

/// `GNTTABOP_map_grant_ref`, `GNTTABOP_unmap_grant_ref` — public/grant_table.h
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// `GNTMAP_host_map`: map for the CPU (for an HVM/PVH guest, `host_addr` is
/// the guest-physical address where Xen puts the frame).
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`
pub const GNTMAP_READONLY: u32 = 1 << 2;

/// `struct gnttab_map_grant_ref` — public/grant_table.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabMapGrantRef {
    // In.
    pub host_addr: u64,
    pub flags: u32,
    pub gref: u32,
    pub dom: u16,
    // Out.
    pub status: i16,
    pub handle: u32,
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref` — public/grant_table.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GnttabUnmapGrantRef {
    // In.
    pub host_addr: u64,
    pub dev_bus_addr: u64,
    pub handle: u32,
    // Out.
    pub status: i16,
}

/// `GNTST_*` — public/grant_table.h: the per-operation status.
pub mod gntst {
    pub const OKAY: i16 = 0;
    pub const GENERAL_ERROR: i16 = -1;
    pub const BAD_DOMAIN: i16 = -2;
    pub const BAD_GNTREF: i16 = -3;
    pub const BAD_HANDLE: i16 = -4;
    pub const BAD_VIRT_ADDR: i16 = -5;
    pub const BAD_DEV_ADDR: i16 = -6;
    pub const NO_DEVICE_SPACE: i16 = -7;
    pub const PERMISSION_DENIED: i16 = -8;
    pub const BAD_PAGE: i16 = -9;
    pub const BAD_COPY_ARG: i16 = -10;
    pub const ADDRESS_TOO_BIG: i16 = -11;
    pub const EAGAIN: i16 = -12;
    pub const NO_SPACE: i16 = -13;

    /// The header's name for a status, and what it means.
    pub fn name(status: i16) -> (&'static str, &'static str) {
        match status {
            OKAY => ("GNTST_okay", "done"),
            GENERAL_ERROR => ("GNTST_general_error", "undefined error"),
            BAD_DOMAIN => ("GNTST_bad_domain", "unrecognised domain id"),
            BAD_GNTREF => ("GNTST_bad_gntref", "invalid grant reference"),
            BAD_HANDLE => ("GNTST_bad_handle", "invalid mapping handle"),
            BAD_VIRT_ADDR => ("GNTST_bad_virt_addr", "invalid host address"),
            BAD_DEV_ADDR => ("GNTST_bad_dev_addr", "invalid device address"),
            NO_DEVICE_SPACE => ("GNTST_no_device_space", "no spare translation slot in the I/O MMU"),
            PERMISSION_DENIED => ("GNTST_permission_denied", "permission denied"),
            BAD_PAGE => ("GNTST_bad_page", "bad page"),
            BAD_COPY_ARG => ("GNTST_bad_copy_arg", "copy arguments cross a page boundary"),
            ADDRESS_TOO_BIG => ("GNTST_address_too_big", "page address too large"),
            EAGAIN => ("GNTST_eagain", "not done; try again"),
            NO_SPACE => ("GNTST_no_space", "out of space (maptrack handles)"),
            _ => ("GNTST_?", "unknown status"),
        }
    }
}

// ---- Domain control — public/domctl.h ---------------------------------------

/// `XEN_DOMCTL_INTERFACE_VERSION` of the Xen releases whose
/// `struct xen_domctl_getdomaininfo` has the layout below: 0x15 on 4.17,
/// 0x16 on 4.18, 0x17 on 4.19 and 4.20. Xen refuses any other with -EACCES.
pub const XEN_DOMCTL_INTERFACE_VERSIONS: [u32; 3] = [0x15, 0x16, 0x17];
/// `XEN_DOMCTL_getdomaininfo` — public/domctl.h
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;

/// `XEN_DOMINF_*` — public/domctl.h: `xen_domctl_getdomaininfo.flags`.
pub mod dominf {
    pub const DYING: u32 = 1 << 0;
    pub const HVM_GUEST: u32 = 1 << 1;
    pub const SHUTDOWN: u32 = 1 << 2;
    pub const PAUSED: u32 = 1 << 3;
    pub const BLOCKED: u32 = 1 << 4;
    pub const RUNNING: u32 = 1 << 5;
    pub const DEBUGGED: u32 = 1 << 6;
    pub const XS_DOMAIN: u32 = 1 << 7;
    pub const HAP: u32 = 1 << 8;
    /// The guest's shutdown code (`SHUTDOWN_*`, public/sched.h) when
    /// `SHUTDOWN` is set: `(flags >> SHUTDOWN_SHIFT) & SHUTDOWN_MASK`.
    pub const SHUTDOWN_SHIFT: u32 = 16;
    pub const SHUTDOWN_MASK: u32 = 255;
}

/// `SHUTDOWN_*` — public/sched.h: why a domain shut down.
pub mod shutdown_reason {
    pub const POWEROFF: u8 = 0;
    pub const REBOOT: u8 = 1;
    pub const SUSPEND: u8 = 2;
    pub const CRASH: u8 = 3;
    pub const WATCHDOG: u8 = 4;
    pub const SOFT_RESET: u8 = 5;
}

/// `struct xen_arch_domainconfig` — public/arch-x86/xen.h
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenArchDomainconfig {
    pub emulation_flags: u32,
    pub misc_flags: u32,
}

/// `struct xen_domctl_getdomaininfo` — public/domctl.h (the same from 4.16
/// to 4.20).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenDomctlGetdomaininfo {
    pub domain: u16,
    pub pad1: u16,
    pub flags: u32,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub shr_pages: u64,
    pub paged_pages: u64,
    pub shared_info_frame: u64,
    pub cpu_time: u64,
    pub nr_online_vcpus: u32,
    pub max_vcpu_id: u32,
    pub ssidref: u32,
    pub handle: [u8; 16],
    pub cpupool: u32,
    pub gpaddr_bits: u8,
    pub pad2: [u8; 7],
    pub arch_config: XenArchDomainconfig,
}

/// `struct xen_domctl` — public/domctl.h: the header, then a union of
/// every sub-operation's struct padded to 128 bytes (8-byte aligned).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XenDomctl {
    pub cmd: u32,
    pub interface_version: u32,
    pub domain: u16,
    pub _pad: [u16; 3],
    pub u: XenDomctlUnion,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union XenDomctlUnion {
    pub getdomaininfo: XenDomctlGetdomaininfo,
    pub pad: [u64; 16],
}

impl XenDomctl {
    pub fn new(cmd: u32, interface_version: u32, domain: u16) -> Self {
        XenDomctl { cmd, interface_version, domain, _pad: [0; 3], u: XenDomctlUnion { pad: [0; 16] } }
    }
}

#[cfg(test)]
mod gnt_domctl_layout_tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn grant_map_structs_match_grant_table_h() {
        assert_eq!(size_of::<GnttabMapGrantRef>(), 32);
        assert_eq!(offset_of!(GnttabMapGrantRef, flags), 8);
        assert_eq!(offset_of!(GnttabMapGrantRef, gref), 12);
        assert_eq!(offset_of!(GnttabMapGrantRef, dom), 16);
        assert_eq!(offset_of!(GnttabMapGrantRef, status), 18);
        assert_eq!(offset_of!(GnttabMapGrantRef, handle), 20);
        assert_eq!(offset_of!(GnttabMapGrantRef, dev_bus_addr), 24);
        assert_eq!(size_of::<GnttabUnmapGrantRef>(), 24);
        assert_eq!(offset_of!(GnttabUnmapGrantRef, dev_bus_addr), 8);
        assert_eq!(offset_of!(GnttabUnmapGrantRef, handle), 16);
        assert_eq!(offset_of!(GnttabUnmapGrantRef, status), 20);
    }

    #[test]
    fn gntst_names() {
        assert_eq!(gntst::name(gntst::BAD_GNTREF).0, "GNTST_bad_gntref");
        assert_eq!(gntst::name(-13).0, "GNTST_no_space");
        assert_eq!(gntst::name(0).0, "GNTST_okay");
        assert_eq!(gntst::name(-99).0, "GNTST_?");
        for s in -13..=0 {
            assert_ne!(gntst::name(s).0, "GNTST_?", "{s}");
        }
    }

    #[test]
    fn domctl_structs_match_domctl_h() {
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, flags), 4);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, tot_pages), 8);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, shared_info_frame), 48);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, cpu_time), 56);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, nr_online_vcpus), 64);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, ssidref), 72);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, handle), 76);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, cpupool), 92);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, gpaddr_bits), 96);
        assert_eq!(offset_of!(XenDomctlGetdomaininfo, arch_config), 104);
        assert_eq!(size_of::<XenDomctlGetdomaininfo>(), 112);
        // The union is 128 bytes at offset 16: 144 in all.
        assert_eq!(offset_of!(XenDomctl, domain), 8);
        assert_eq!(offset_of!(XenDomctl, u), 16);
        assert_eq!(size_of::<XenDomctl>(), 144);
        assert_eq!(align_of::<XenDomctl>(), 8);
        assert_eq!(XEN_DOMCTL_INTERFACE_VERSIONS[0], 0x15);
    }
}
