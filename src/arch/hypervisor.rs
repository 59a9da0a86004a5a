//! Which hypervisor this is, from CPUID alone: what the console and the
//! shutdown path need before anything else is known.

use core::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(sig: &[u8; 12], eax: u32) -> (u32, u32, u32, u32) {
        let w = |i: usize| u32::from_le_bytes(sig[i..i + 4].try_into().unwrap());
        (eax, w(0), w(4), w(8))
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
}
