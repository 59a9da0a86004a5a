//! The hypervisor type, and hvmlite's hypervisor-info record: what the zero
//! page carries so that everything after the PVH entry knows, from its first
//! instruction, which hypervisor it runs on and how it was entered.
//!
//! The record is reached two ways (both documented in the README):
//! `boot_params.hdr.hardware_subarch_data` holds its physical address, and
//! it is the payload of a `setup_data` node of type [`SETUP_HVINFO`].

use core::fmt;

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

/// Which hypervisor, as found through CPUID leaves 0x40000000 + n·0x100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Hypervisor {
    None = 0,
    Xen = 1,
    Kvm = 2,
    /// QEMU's TCG accelerator.
    Tcg = 3,
    HyperV = 4,
    Vmware = 5,
    Other = 0xff,
}

impl Hypervisor {
    pub fn from_signature(sig: &[u8; 12]) -> Self {
        match sig {
            b"XenVMMXenVMM" => Hypervisor::Xen,
            b"KVMKVMKVM\0\0\0" => Hypervisor::Kvm,
            b"TCGTCGTCGTCG" => Hypervisor::Tcg,
            b"Microsoft Hv" => Hypervisor::HyperV,
            b"VMwareVMware" => Hypervisor::Vmware,
            _ => Hypervisor::Other,
        }
    }
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => Hypervisor::None,
            1 => Hypervisor::Xen,
            2 => Hypervisor::Kvm,
            3 => Hypervisor::Tcg,
            4 => Hypervisor::HyperV,
            5 => Hypervisor::Vmware,
            _ => Hypervisor::Other,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Hypervisor::None => "none",
            Hypervisor::Xen => "xen",
            Hypervisor::Kvm => "kvm",
            Hypervisor::Tcg => "tcg",
            Hypervisor::HyperV => "hyperv",
            Hypervisor::Vmware => "vmware",
            Hypervisor::Other => "other",
        }
    }
}

impl fmt::Display for Hypervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What CPUID said about the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected {
    pub kind: Hypervisor,
    /// The leaf the signature was found at (0 when none).
    pub base: u32,
    /// EAX of that leaf: the highest leaf in its range.
    pub max_leaf: u32,
    pub signature: [u8; 12],
}

/// Find the hypervisor through `cpuid(leaf) -> (eax, ebx, ecx, edx)`.
///
/// Hypervisors place their signature at 0x40000000, or further up in steps
/// of 0x100 when they also emulate another (Xen with Viridian enabled puts
/// Hyper-V's at 0x40000000 and its own at 0x40000100). Xen wins wherever
/// it is, since that is what hvmlite can use; otherwise the first known
/// signature does. Nothing is trusted unless CPUID.1:ECX bit 31 says a
/// hypervisor is present.
pub fn detect(cpuid: impl Fn(u32) -> (u32, u32, u32, u32)) -> Detected {
    let none = Detected { kind: Hypervisor::None, base: 0, max_leaf: 0, signature: [0; 12] };
    let (_, _, ecx, _) = cpuid(1);
    if ecx & (1 << 31) == 0 {
        return none;
    }
    let mut first: Option<Detected> = None;
    for base in (0x4000_0000u32..0x4001_0000).step_by(0x100) {
        let (eax, ebx, ecx, edx) = cpuid(base);
        let mut sig = [0u8; 12];
        sig[0..4].copy_from_slice(&ebx.to_le_bytes());
        sig[4..8].copy_from_slice(&ecx.to_le_bytes());
        sig[8..12].copy_from_slice(&edx.to_le_bytes());
        // A range must cover at least its own leaf + 1 to be meaningful.
        if eax < base || eax.wrapping_sub(base) >= 0x100 {
            continue;
        }
        let d = Detected { kind: Hypervisor::from_signature(&sig), base, max_leaf: eax, signature: sig };
        if d.kind == Hypervisor::Xen {
            return d;
        }
        if first.is_none() {
            first = Some(d);
        }
    }
    first.unwrap_or(Detected { kind: Hypervisor::Other, ..none })
}

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

    fn regs(sig: &[u8; 12], eax: u32) -> (u32, u32, u32, u32) {
        let w = |i: usize| u32::from_le_bytes(sig[i..i + 4].try_into().unwrap());
        (eax, w(0), w(4), w(8))
    }

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
    fn detects_xen_at_the_base_leaf() {
        let d = detect(|leaf| match leaf {
            1 => (0, 0, 1 << 31, 0),
            0x4000_0000 => regs(b"XenVMMXenVMM", 0x4000_0005),
            _ => (0, 0, 0, 0),
        });
        assert_eq!((d.kind, d.base, d.max_leaf), (Hypervisor::Xen, 0x4000_0000, 0x4000_0005));
    }

    #[test]
    fn xen_behind_viridian_is_still_xen() {
        let d = detect(|leaf| match leaf {
            1 => (0, 0, 1 << 31, 0),
            0x4000_0000 => regs(b"Microsoft Hv", 0x4000_0006),
            0x4000_0100 => regs(b"XenVMMXenVMM", 0x4000_0105),
            _ => (0, 0, 0, 0),
        });
        assert_eq!((d.kind, d.base), (Hypervisor::Xen, 0x4000_0100));
    }

    #[test]
    fn kvm_tcg_and_none() {
        let kvm = detect(|leaf| match leaf {
            1 => (0, 0, 1 << 31, 0),
            0x4000_0000 => regs(b"KVMKVMKVM\0\0\0", 0x4000_0001),
            _ => (0, 0, 0, 0),
        });
        assert_eq!(kvm.kind, Hypervisor::Kvm);
        let tcg = detect(|leaf| match leaf {
            1 => (0, 0, 1 << 31, 0),
            0x4000_0000 => regs(b"TCGTCGTCGTCG", 0x4000_0001),
            _ => (0, 0, 0, 0),
        });
        assert_eq!(tcg.kind, Hypervisor::Tcg);
        // The hypervisor bit off: leaves above 0x40000000 are not looked at.
        let none = detect(|leaf| match leaf {
            0x4000_0000 => regs(b"XenVMMXenVMM", 0x4000_0005),
            _ => (0, 0, 0, 0),
        });
        assert_eq!(none.kind, Hypervisor::None);
        // The bit on but no valid range: some hypervisor we cannot name.
        let other = detect(|leaf| if leaf == 1 { (0, 0, 1 << 31, 0) } else { (0x12, 1, 2, 3) });
        assert_eq!(other.kind, Hypervisor::Other);
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
