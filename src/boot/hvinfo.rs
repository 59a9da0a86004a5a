//! hvmlite's hypervisor-info record: what the zero page carries so that
//! everything after the PVH entry knows, from its first instruction, which
//! hypervisor it runs on and how it was entered.
//!
//! The record is reached two ways (both documented in the README):
//! `boot_params.hdr.hardware_subarch_data` holds its physical address, and
//! it is the payload of a `setup_data` node of type [`SETUP_HVINFO`].

use crate::arch::hypervisor::{Detected, Hypervisor};

/// `setup_data` type of the hypervisor-info node ("HVL1" read big-endian).
/// Linux's own types are small integers and bit 31 is `SETUP_INDIRECT`, so
/// this value collides with neither.
pub const SETUP_HVINFO: u32 = 0x4856_4c31;
/// `setup_data` type of the boot-memory node ("HVL2"): the ranges the boot
/// handed over (start_info, memmap, cmdline, module list, modules), which
/// must not be reused while anything may still read them.
pub const SETUP_BOOTMEM: u32 = 0x4856_4c32;

/// Magic at the start of the record: "HVIR" in memory.
pub const HVINFO_MAGIC: u32 = u32::from_le_bytes(*b"HVIR");
pub const HVINFO_VERSION: u16 = 1;

/// `hvinfo.entry`: how hvmlite was entered.
pub const ENTRY_PVH: u32 = 1;

/// `hvinfo.flags`
pub const HVINFO_F_MEMMAP_FROM_HYPERCALL: u32 = 1 << 0;

/// The hypervisor-info record (version 1, 64 bytes, little-endian).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvInfo {
    /// [`HVINFO_MAGIC`]
    pub magic: u32,
    /// [`HVINFO_VERSION`]; later versions only append fields.
    pub version: u16,
    /// Size of the record in bytes.
    pub size: u16,
    /// [`Hypervisor`] as a number.
    pub hypervisor: u32,
    /// CPUID leaf of the hypervisor's signature (0 if none).
    pub cpuid_base: u32,
    /// EAX of that leaf.
    pub cpuid_max_leaf: u32,
    /// The 12-byte CPUID signature.
    pub signature: [u8; 12],
    /// How hvmlite was entered: [`ENTRY_PVH`].
    pub entry: u32,
    /// `HVINFO_F_*`.
    pub flags: u32,
    /// Physical address of `struct hvm_start_info`.
    pub start_info_paddr: u64,
    /// Its `version` field.
    pub start_info_version: u32,
    /// Its `flags` field (`SIF_PRIVILEGED`, `SIF_INITDOMAIN`).
    pub start_info_flags: u32,
    pub reserved: [u32; 2],
}

impl HvInfo {
    pub fn new(d: &Detected, start_info_paddr: u64, start_info_version: u32, start_info_flags: u32, flags: u32) -> Self {
        HvInfo {
            magic: HVINFO_MAGIC,
            version: HVINFO_VERSION,
            size: core::mem::size_of::<HvInfo>() as u16,
            hypervisor: d.kind as u32,
            cpuid_base: d.base,
            cpuid_max_leaf: d.max_leaf,
            signature: d.signature,
            entry: ENTRY_PVH,
            flags,
            start_info_paddr,
            start_info_version,
            start_info_flags,
            reserved: [0; 2],
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: repr(C), integer fields only, no padding (checked by a test).
        unsafe { core::slice::from_raw_parts(self as *const Self as *const u8, core::mem::size_of::<Self>()) }
    }

    /// Parse a record from bytes; `None` if magic, version or size are off.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < core::mem::size_of::<HvInfo>() {
            return None;
        }
        // SAFETY: length checked; every bit pattern is a valid HvInfo.
        let v: HvInfo = unsafe { core::ptr::read_unaligned(b.as_ptr() as *const HvInfo) };
        (v.magic == HVINFO_MAGIC && v.version >= 1 && v.size as usize >= core::mem::size_of::<HvInfo>()).then_some(v)
    }

    pub fn kind(&self) -> Hypervisor {
        Hypervisor::from_u32(self.hypervisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn record_layout() {
        assert_eq!(size_of::<HvInfo>(), 64);
        assert_eq!(offset_of!(HvInfo, hypervisor), 8);
        assert_eq!(offset_of!(HvInfo, cpuid_base), 12);
        assert_eq!(offset_of!(HvInfo, signature), 20);
        assert_eq!(offset_of!(HvInfo, entry), 32);
        assert_eq!(offset_of!(HvInfo, flags), 36);
        assert_eq!(offset_of!(HvInfo, start_info_paddr), 40);
        assert_eq!(offset_of!(HvInfo, start_info_version), 48);
        assert_eq!(offset_of!(HvInfo, start_info_flags), 52);
        assert_eq!(&HVINFO_MAGIC.to_le_bytes(), b"HVIR");
        assert_eq!(&SETUP_HVINFO.to_be_bytes(), b"HVL1");
    }

    #[test]
    fn record_round_trips() {
        let d = Detected { kind: Hypervisor::Xen, base: 0x4000_0000, max_leaf: 0x4000_0005, signature: *b"XenVMMXenVMM" };
        let r = HvInfo::new(&d, 0x1234, 1, 3, HVINFO_F_MEMMAP_FROM_HYPERCALL);
        let b = r.as_bytes();
        assert_eq!(&b[0..4], b"HVIR");
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 1);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 1); // xen
        assert_eq!(&b[20..32], b"XenVMMXenVMM");
        assert_eq!(HvInfo::from_bytes(b), Some(r));
        let mut bad = b.to_vec();
        bad[0] = b'X';
        assert_eq!(HvInfo::from_bytes(&bad), None);
        assert_eq!(HvInfo::from_bytes(&b[..32]), None);
    }
}
