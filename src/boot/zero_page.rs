//! Stage 2b: the Linux zero page (`struct boot_params`,
//! arch/x86/include/uapi/asm/bootparam.h; Documentation/arch/x86/boot.rst
//! and zero-page.rst) built from what start_info said, and read back by
//! `startup_64`, which receives nothing else.
//!
//! Extensions, all reachable with the stock Linux protocol:
//! - `hdr.hardware_subarch` = `X86_SUBARCH_XEN` on Xen, `X86_SUBARCH_PC`
//!   elsewhere; `hdr.hardware_subarch_data` = physical address of the
//!   hypervisor-info record ([`crate::boot::hvinfo::HvInfo`]);
//! - a `setup_data` node [`SETUP_HVINFO`] holding the same record;
//! - a `setup_data` node [`SETUP_BOOTMEM`] listing what the boot handed over;
//! - e820 entries past 128 in a `SETUP_E820_EXT` node, as Linux expects.

use core::fmt;
use core::mem::size_of;

use crate::arch::e820::E820Entry;
use crate::arch::hypervisor::Hypervisor;
use crate::arch::memory::{PhysMem, Range};
use crate::boot::hvinfo::{HvInfo, SETUP_BOOTMEM, SETUP_HVINFO};

pub const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;
pub const X86_SUBARCH_PC: u32 = 0;
pub const X86_SUBARCH_XEN: u32 = 2;
/// `SETUP_E820_EXT` — bootparam.h
pub const SETUP_E820_EXT: u32 = 1;
/// `type_of_loader`: 0x9 "Xen" in the boot protocol's table of loader IDs,
/// as Linux's own PVH entry sets it.
pub const LOADER_TYPE_XEN: u8 = 0x90;
pub const BOOT_FLAG: u16 = 0xaa55;
pub const HDRS_MAGIC: u32 = 0x5372_6448; // "HdrS"
/// Boot protocol version whose fields this zero page fills (2.15).
pub const BOOT_PROTOCOL_VERSION: u16 = 0x020f;
/// `loadflags`: LOADED_HIGH — the protected-mode part is not at 0x10000.
pub const LOADED_HIGH: u8 = 1 << 0;

/// `struct setup_header` — bootparam.h. At offset 0x1f1 of the zero page.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct SetupHeader {
    pub setup_sects: u8,
    pub root_flags: u16,
    pub syssize: u32,
    pub ram_size: u16,
    pub vid_mode: u16,
    pub root_dev: u16,
    pub boot_flag: u16,
    pub jump: u16,
    pub header: u32,
    pub version: u16,
    pub realmode_swtch: u32,
    pub start_sys_seg: u16,
    pub kernel_version: u16,
    pub type_of_loader: u8,
    pub loadflags: u8,
    pub setup_move_size: u16,
    pub code32_start: u32,
    pub ramdisk_image: u32,
    pub ramdisk_size: u32,
    pub bootsect_kludge: u32,
    pub heap_end_ptr: u16,
    pub ext_loader_ver: u8,
    pub ext_loader_type: u8,
    pub cmd_line_ptr: u32,
    pub initrd_addr_max: u32,
    pub kernel_alignment: u32,
    pub relocatable_kernel: u8,
    pub min_alignment: u8,
    pub xloadflags: u16,
    pub cmdline_size: u32,
    pub hardware_subarch: u32,
    pub hardware_subarch_data: u64,
    pub payload_offset: u32,
    pub payload_length: u32,
    pub setup_data: u64,
    pub pref_address: u64,
    pub init_size: u32,
    pub handover_offset: u32,
    pub kernel_info_offset: u32,
}

/// `struct boot_params` — bootparam.h: exactly one 4 KiB page.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct BootParams {
    pub screen_info: [u8; 0x40],
    pub apm_bios_info: [u8; 0x14],
    pub _pad2: [u8; 4],
    pub tboot_addr: u64,
    pub ist_info: [u8; 0x10],
    pub acpi_rsdp_addr: u64,
    pub _pad3: [u8; 8],
    pub hd0_info: [u8; 16],
    pub hd1_info: [u8; 16],
    pub sys_desc_table: [u8; 16],
    pub olpc_ofw_header: [u8; 16],
    pub ext_ramdisk_image: u32,
    pub ext_ramdisk_size: u32,
    pub ext_cmd_line_ptr: u32,
    pub _pad4: [u8; 112],
    pub cc_blob_address: u32,
    pub edid_info: [u8; 0x80],
    pub efi_info: [u8; 0x20],
    pub alt_mem_k: u32,
    pub scratch: u32,
    pub e820_entries: u8,
    pub eddbuf_entries: u8,
    pub edd_mbr_sig_buf_entries: u8,
    pub kbd_status: u8,
    pub secure_boot: u8,
    pub _pad5: [u8; 2],
    pub sentinel: u8,
    pub _pad6: [u8; 1],
    pub hdr: SetupHeader,
    pub _pad7: [u8; 0x290 - 0x1f1 - size_of::<SetupHeader>()],
    pub edd_mbr_sig_buffer: [u32; 16],
    pub e820_table: [E820Entry; E820_MAX_ENTRIES_ZEROPAGE],
    pub _pad8: [u8; 48],
    pub eddbuf: [u8; 6 * 82],
    pub _pad9: [u8; 276],
}

impl BootParams {
    pub const fn zeroed() -> Self {
        // SAFETY: integers and byte arrays only; all-zero is valid and is
        // what the boot protocol wants for every field not set.
        unsafe { core::mem::zeroed() }
    }
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: packed, integer-only, exactly 4096 bytes (tested).
        unsafe { core::slice::from_raw_parts(self as *const Self as *const u8, size_of::<Self>()) }
    }
    pub fn from_bytes(b: &[u8; 4096]) -> Self {
        // SAFETY: any bit pattern is valid; the struct is align 1.
        unsafe { core::ptr::read_unaligned(b.as_ptr() as *const Self) }
    }
    pub fn initrd(&self) -> Option<Range> {
        let addr = self.hdr.ramdisk_image as u64 | (self.ext_ramdisk_image as u64) << 32;
        let size = self.hdr.ramdisk_size as u64 | (self.ext_ramdisk_size as u64) << 32;
        (size != 0).then(|| Range::sized(addr, size)).flatten()
    }
    pub fn cmd_line_ptr(&self) -> u64 {
        self.hdr.cmd_line_ptr as u64 | (self.ext_cmd_line_ptr as u64) << 32
    }
}

/// One entry of the [`SETUP_BOOTMEM`] node: a range the boot handed over.
/// `kind` is [`crate::boot::start_info::Handover`] as a number, `index` the
/// module number where that applies.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootMemEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
    pub index: u32,
}

/// `struct setup_data` header — bootparam.h; `len` bytes of data follow.
pub const SETUP_DATA_HEADER: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroPageError {
    /// The setup_data area is too small for the nodes.
    SetupAreaFull { need: usize, have: usize },
    /// A zero-page pointer field cannot hold the address.
    CmdlineTooHigh(u64),
    /// Reading a zero page back: something in it is unreadable or corrupt.
    Corrupt(&'static str),
}

impl fmt::Display for ZeroPageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ZeroPageError::SetupAreaFull { need, have } => {
                write!(f, "setup_data needs {need} bytes but only {have} are set aside")
            }
            ZeroPageError::CmdlineTooHigh(a) => write!(f, "command line at {a:#x} is out of the zero page's reach"),
            ZeroPageError::Corrupt(what) => write!(f, "zero page is corrupt: {what}"),
        }
    }
}

/// What goes into the zero page.
pub struct ZeroPageSpec<'a> {
    /// Sanitised e820 map.
    pub e820: &'a [E820Entry],
    /// Physical address of the NUL-terminated command line (0 = none).
    pub cmdline_paddr: u64,
    /// `cmdline_size`: the longest command line the buffer holds, without NUL.
    pub cmdline_size: u32,
    pub initrd: Option<Range>,
    pub rsdp: u64,
    pub hvinfo: HvInfo,
    pub bootmem: &'a [BootMemEntry],
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Fill `zp` from `spec`. `setup` is the memory for the `setup_data` nodes,
/// at physical address `setup_paddr` (8-byte aligned).
pub fn build(zp: &mut BootParams, setup: &mut [u8], setup_paddr: u64, spec: &ZeroPageSpec) -> Result<(), ZeroPageError> {
    *zp = BootParams::zeroed();
    let hvinfo_len = size_of::<HvInfo>();
    let bootmem_len = core::mem::size_of_val(spec.bootmem);
    let ext = spec.e820.len().saturating_sub(E820_MAX_ENTRIES_ZEROPAGE);
    let ext_len = ext * size_of::<E820Entry>();
    let align8 = |x: usize| (x + 7) & !7;
    let mut nodes = [(SETUP_HVINFO, hvinfo_len, 0usize), (SETUP_BOOTMEM, bootmem_len, 0), (SETUP_E820_EXT, ext_len, 0)];
    let count = if ext > 0 { 3 } else { 2 };
    let mut at = 0;
    for n in nodes[..count].iter_mut() {
        n.2 = at;
        at = align8(at + SETUP_DATA_HEADER + n.1);
    }
    if at > setup.len() {
        return Err(ZeroPageError::SetupAreaFull { need: at, have: setup.len() });
    }
    setup[..at].fill(0);
    for (i, &(ty, len, off)) in nodes[..count].iter().enumerate() {
        let next = if i + 1 < count { setup_paddr + nodes[i + 1].2 as u64 } else { 0 };
        put(setup, off, &next.to_le_bytes());
        put(setup, off + 8, &ty.to_le_bytes());
        put(setup, off + 12, &(len as u32).to_le_bytes());
        let data = off + SETUP_DATA_HEADER;
        match ty {
            SETUP_HVINFO => put(setup, data, spec.hvinfo.as_bytes()),
            SETUP_BOOTMEM => {
                for (k, e) in spec.bootmem.iter().enumerate() {
                    let o = data + k * size_of::<BootMemEntry>();
                    put(setup, o, &e.addr.to_le_bytes());
                    put(setup, o + 8, &e.size.to_le_bytes());
                    put(setup, o + 16, &e.kind.to_le_bytes());
                    put(setup, o + 20, &e.index.to_le_bytes());
                }
            }
            _ => {
                for (k, e) in spec.e820[E820_MAX_ENTRIES_ZEROPAGE..].iter().enumerate() {
                    let o = data + k * size_of::<E820Entry>();
                    put(setup, o, &{ e.addr }.to_le_bytes());
                    put(setup, o + 8, &{ e.size }.to_le_bytes());
                    put(setup, o + 16, &{ e.type_ }.to_le_bytes());
                }
            }
        }
    }

    let n = spec.e820.len().min(E820_MAX_ENTRIES_ZEROPAGE);
    zp.e820_table[..n].copy_from_slice(&spec.e820[..n]);
    zp.e820_entries = n as u8;
    zp.acpi_rsdp_addr = spec.rsdp;

    let h = &mut zp.hdr;
    h.boot_flag = BOOT_FLAG;
    h.header = HDRS_MAGIC;
    h.version = BOOT_PROTOCOL_VERSION;
    h.type_of_loader = LOADER_TYPE_XEN;
    h.loadflags = LOADED_HIGH;
    h.hardware_subarch = match spec.hvinfo.kind() {
        Hypervisor::Xen => X86_SUBARCH_XEN,
        _ => X86_SUBARCH_PC,
    };
    h.hardware_subarch_data = setup_paddr + (nodes[0].2 + SETUP_DATA_HEADER) as u64;
    h.setup_data = setup_paddr;
    if spec.cmdline_paddr != 0 {
        h.cmd_line_ptr = spec.cmdline_paddr as u32;
        zp.ext_cmd_line_ptr = (spec.cmdline_paddr >> 32) as u32;
        zp.hdr.cmdline_size = spec.cmdline_size;
    }
    if let Some(r) = spec.initrd {
        zp.hdr.ramdisk_image = r.start as u32;
        zp.ext_ramdisk_image = (r.start >> 32) as u32;
        zp.hdr.ramdisk_size = r.len() as u32;
        zp.ext_ramdisk_size = (r.len() >> 32) as u32;
    }
    Ok(())
}

/// One `setup_data` node as found by [`for_each_setup_data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupNode {
    pub paddr: u64,
    pub type_: u32,
    pub len: u32,
}

impl SetupNode {
    pub fn data(&self) -> u64 {
        self.paddr + SETUP_DATA_HEADER as u64
    }
    pub fn range(&self) -> Range {
        Range::new(self.paddr, self.data() + self.len as u64)
    }
}

/// Most nodes walked: a corrupt or cyclic list ends in an error.
pub const MAX_SETUP_NODES: usize = 64;

/// Walk the `setup_data` list starting at `head`.
pub fn for_each_setup_data<M: PhysMem>(mem: &M, head: u64, mut f: impl FnMut(SetupNode)) -> Result<(), ZeroPageError> {
    let mut at = head;
    for _ in 0..MAX_SETUP_NODES {
        if at == 0 {
            return Ok(());
        }
        let next = mem.read_u64(at).map_err(|_| ZeroPageError::Corrupt("setup_data node unreadable"))?;
        let type_ = mem.read_u32(at + 8).map_err(|_| ZeroPageError::Corrupt("setup_data node unreadable"))?;
        let len = mem.read_u32(at + 12).map_err(|_| ZeroPageError::Corrupt("setup_data node unreadable"))?;
        f(SetupNode { paddr: at, type_, len });
        at = next;
    }
    Err(ZeroPageError::Corrupt("setup_data list too long or cyclic"))
}

/// Everything `startup_64` learns from a zero page.
pub struct ZeroPageInfo {
    pub hvinfo: Option<HvInfo>,
    pub e820_entries: usize,
    pub setup_nodes: usize,
}

/// Read the e820 map (zero page plus any `SETUP_E820_EXT` node) into `out`.
pub fn read_e820<M: PhysMem>(mem: &M, zp: &BootParams, out: &mut [E820Entry]) -> Result<usize, ZeroPageError> {
    let n = (zp.e820_entries as usize).min(E820_MAX_ENTRIES_ZEROPAGE);
    if n > out.len() {
        return Err(ZeroPageError::Corrupt("more e820 entries than room"));
    }
    out[..n].copy_from_slice(&zp.e820_table[..n]);
    let mut total = n;
    let mut err = None;
    for_each_setup_data(mem, zp.hdr.setup_data, |node| {
        if node.type_ != SETUP_E820_EXT || err.is_some() {
            return;
        }
        let k = node.len as usize / size_of::<E820Entry>();
        for i in 0..k {
            let mut b = [0u8; 20];
            if total == out.len() || mem.read(node.data() + (i * 20) as u64, &mut b).is_err() {
                err = Some(ZeroPageError::Corrupt("e820 extension unreadable or too long"));
                return;
            }
            out[total] = E820Entry::new(
                u64::from_le_bytes(b[0..8].try_into().unwrap()),
                u64::from_le_bytes(b[8..16].try_into().unwrap()),
                u32::from_le_bytes(b[16..20].try_into().unwrap()),
            );
            total += 1;
        }
    })?;
    err.map_or(Ok(total), Err)
}

/// The hypervisor-info record the zero page points at, if it is one.
pub fn read_hvinfo<M: PhysMem>(mem: &M, zp: &BootParams) -> Option<HvInfo> {
    let mut b = [0u8; size_of::<HvInfo>()];
    mem.read(zp.hdr.hardware_subarch_data, &mut b).ok()?;
    HvInfo::from_bytes(&b)
}

/// Call `f` for each boot-memory range of the [`SETUP_BOOTMEM`] node.
pub fn for_each_bootmem<M: PhysMem>(mem: &M, zp: &BootParams, mut f: impl FnMut(BootMemEntry)) -> Result<(), ZeroPageError> {
    let mut bad = false;
    for_each_setup_data(mem, zp.hdr.setup_data, |node| {
        if node.type_ != SETUP_BOOTMEM || bad {
            return;
        }
        // Stop at the first unreadable entry: a corrupt `len` (up to 4 GiB)
        // must not turn into hundreds of millions of failing reads.
        for i in 0..node.len as usize / size_of::<BootMemEntry>() {
            let at = node.data() + (i * size_of::<BootMemEntry>()) as u64;
            match (mem.read_u64(at), mem.read_u64(at + 8), mem.read_u32(at + 16), mem.read_u32(at + 20)) {
                (Ok(addr), Ok(size), Ok(kind), Ok(index)) => f(BootMemEntry { addr, size, kind, index }),
                _ => {
                    bad = true;
                    return;
                }
            }
        }
    })?;
    if bad {
        return Err(ZeroPageError::Corrupt("boot-memory node unreadable"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::e820::{RAM, RESERVED};
    use crate::arch::hypervisor::Detected;
    use crate::arch::memory::test_mem::FakeMem;
    use crate::boot::hvinfo::HVINFO_F_MEMMAP_FROM_HYPERCALL;
    use core::mem::offset_of;

    #[test]
    fn offsets_match_the_boot_protocol() {
        assert_eq!(size_of::<BootParams>(), 4096);
        assert_eq!(size_of::<SetupHeader>(), 0x7b);
        assert_eq!(offset_of!(BootParams, acpi_rsdp_addr), 0x070);
        assert_eq!(offset_of!(BootParams, ext_ramdisk_image), 0x0c0);
        assert_eq!(offset_of!(BootParams, ext_ramdisk_size), 0x0c4);
        assert_eq!(offset_of!(BootParams, ext_cmd_line_ptr), 0x0c8);
        assert_eq!(offset_of!(BootParams, cc_blob_address), 0x13c);
        assert_eq!(offset_of!(BootParams, alt_mem_k), 0x1e0);
        assert_eq!(offset_of!(BootParams, e820_entries), 0x1e8);
        assert_eq!(offset_of!(BootParams, sentinel), 0x1ef);
        assert_eq!(offset_of!(BootParams, hdr), 0x1f1);
        assert_eq!(offset_of!(BootParams, edd_mbr_sig_buffer), 0x290);
        assert_eq!(offset_of!(BootParams, e820_table), 0x2d0);
        assert_eq!(offset_of!(BootParams, eddbuf), 0xd00);
        let h = |o: usize| 0x1f1 + o;
        assert_eq!(h(offset_of!(SetupHeader, boot_flag)), 0x1fe);
        assert_eq!(h(offset_of!(SetupHeader, header)), 0x202);
        assert_eq!(h(offset_of!(SetupHeader, version)), 0x206);
        assert_eq!(h(offset_of!(SetupHeader, type_of_loader)), 0x210);
        assert_eq!(h(offset_of!(SetupHeader, loadflags)), 0x211);
        assert_eq!(h(offset_of!(SetupHeader, code32_start)), 0x214);
        assert_eq!(h(offset_of!(SetupHeader, ramdisk_image)), 0x218);
        assert_eq!(h(offset_of!(SetupHeader, ramdisk_size)), 0x21c);
        assert_eq!(h(offset_of!(SetupHeader, cmd_line_ptr)), 0x228);
        assert_eq!(h(offset_of!(SetupHeader, initrd_addr_max)), 0x22c);
        assert_eq!(h(offset_of!(SetupHeader, kernel_alignment)), 0x230);
        assert_eq!(h(offset_of!(SetupHeader, relocatable_kernel)), 0x234);
        assert_eq!(h(offset_of!(SetupHeader, xloadflags)), 0x236);
        assert_eq!(h(offset_of!(SetupHeader, cmdline_size)), 0x238);
        assert_eq!(h(offset_of!(SetupHeader, hardware_subarch)), 0x23c);
        assert_eq!(h(offset_of!(SetupHeader, hardware_subarch_data)), 0x240);
        assert_eq!(h(offset_of!(SetupHeader, payload_offset)), 0x248);
        assert_eq!(h(offset_of!(SetupHeader, setup_data)), 0x250);
        assert_eq!(h(offset_of!(SetupHeader, pref_address)), 0x258);
        assert_eq!(h(offset_of!(SetupHeader, init_size)), 0x260);
        assert_eq!(h(offset_of!(SetupHeader, kernel_info_offset)), 0x268);
        assert_eq!(size_of::<BootMemEntry>(), 24);
    }

    fn le32(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn le64(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    const SETUP: u64 = 0x20_0000;
    const ZP: u64 = 0x10_0000;

    fn xen() -> HvInfo {
        let d = Detected { kind: Hypervisor::Xen, base: 0x4000_0000, max_leaf: 0x4000_0005, signature: *b"XenVMMXenVMM" };
        HvInfo::new(&d, 0x7000, 0, 3, HVINFO_F_MEMMAP_FROM_HYPERCALL)
    }

    /// Build into fake memory: zero page at ZP, setup_data at SETUP.
    fn build_in(spec: &ZeroPageSpec) -> (FakeMem, BootParams) {
        let mut zp = BootParams::zeroed();
        let mut setup = vec![0u8; 16384];
        build(&mut zp, &mut setup, SETUP, spec).unwrap();
        let mut mem = FakeMem::new(0, 0x30_0000);
        mem.write(ZP, zp.as_bytes());
        mem.write(SETUP, &setup);
        (mem, zp)
    }

    #[test]
    fn bytes_at_documented_offsets() {
        let e820 = [E820Entry::new(0, 0x9fc00, RAM), E820Entry::new(0x100000, 0x3f00000, RAM)];
        let bootmem = [BootMemEntry { addr: 0x7000, size: 40, kind: 1, index: 0 }];
        let spec = ZeroPageSpec {
            e820: &e820,
            cmdline_paddr: 0x1_2345_6000,
            cmdline_size: 4095,
            initrd: Some(Range::new(0x1_0000_0000, 0x1_0123_4567)),
            rsdp: 0xfc00_8000,
            hvinfo: xen(),
            bootmem: &bootmem,
        };
        let (_, zp) = build_in(&spec);
        let b = zp.as_bytes();
        assert_eq!(le64(b, 0x070), 0xfc00_8000);
        assert_eq!(b[0x1e8], 2);
        assert_eq!(le64(b, 0x2d0), 0);
        assert_eq!(le64(b, 0x2d8), 0x9fc00);
        assert_eq!(le32(b, 0x2e0), RAM);
        assert_eq!(le64(b, 0x2e4), 0x100000);
        assert_eq!(u16::from_le_bytes([b[0x1fe], b[0x1ff]]), 0xaa55);
        assert_eq!(&b[0x202..0x206], b"HdrS");
        assert_eq!(b[0x210], 0x90);
        assert_eq!(le32(b, 0x228), 0x2345_6000);
        assert_eq!(le32(b, 0x0c8), 1);
        assert_eq!(le32(b, 0x238), 4095);
        assert_eq!(le32(b, 0x218), 0);
        assert_eq!(le32(b, 0x0c0), 1);
        assert_eq!(le32(b, 0x21c), 0x0123_4567);
        assert_eq!(le32(b, 0x0c4), 0);
        assert_eq!(le32(b, 0x23c), X86_SUBARCH_XEN);
        assert_eq!(le64(b, 0x240), SETUP + 16); // record right after the first node header
        assert_eq!(le64(b, 0x250), SETUP);
        assert_eq!(b[0x1ef], 0, "sentinel must stay 0");
        assert_eq!(zp.initrd(), Some(Range::new(0x1_0000_0000, 0x1_0123_4567)));
    }

    #[test]
    fn setup_data_nodes_walk_and_carry_the_record() {
        let e820 = [E820Entry::new(0, 0x9fc00, RAM)];
        let bootmem =
            [BootMemEntry { addr: 0x7000, size: 40, kind: 1, index: 0 }, BootMemEntry { addr: 0x40_0000, size: 0x1000, kind: 5, index: 0 }];
        let spec = ZeroPageSpec { e820: &e820, cmdline_paddr: 0, cmdline_size: 0, initrd: None, rsdp: 0, hvinfo: xen(), bootmem: &bootmem };
        let (mem, zp) = build_in(&spec);
        let mut nodes = vec![];
        for_each_setup_data(&mem, zp.hdr.setup_data, |n| nodes.push(n)).unwrap();
        assert_eq!(nodes.len(), 2, "no E820_EXT node for a short map");
        assert_eq!((nodes[0].type_, nodes[0].len), (SETUP_HVINFO, 64));
        assert_eq!((nodes[1].type_, nodes[1].len), (SETUP_BOOTMEM, 48));
        assert_eq!(nodes[1].paddr % 8, 0);
        assert_eq!(read_hvinfo(&mem, &zp), Some(xen()));
        let mut got = vec![];
        for_each_bootmem(&mem, &zp, |e| got.push(e)).unwrap();
        assert_eq!(got, bootmem.to_vec());
        assert_eq!({ zp.hdr.cmd_line_ptr }, 0);
        assert_eq!({ zp.hdr.cmdline_size }, 0);
        assert_eq!(zp.initrd(), None);
    }

    #[test]
    fn long_maps_spill_into_e820_ext() {
        let e820: Vec<_> = (0..300u64).map(|i| E820Entry::new(i * 0x2000, 0x1000, if i % 2 == 0 { RAM } else { RESERVED })).collect();
        let spec = ZeroPageSpec { e820: &e820, cmdline_paddr: 0, cmdline_size: 0, initrd: None, rsdp: 0, hvinfo: xen(), bootmem: &[] };
        let (mem, zp) = build_in(&spec);
        assert_eq!(zp.e820_entries, 128);
        let mut nodes = vec![];
        for_each_setup_data(&mem, zp.hdr.setup_data, |n| nodes.push(n)).unwrap();
        assert_eq!(nodes.iter().map(|n| n.type_).collect::<Vec<_>>(), vec![SETUP_HVINFO, SETUP_BOOTMEM, SETUP_E820_EXT]);
        assert_eq!(nodes[2].len as usize, 172 * 20);
        let mut back = vec![E820Entry::default(); 400];
        let n = read_e820(&mem, &zp, &mut back).unwrap();
        assert_eq!(&back[..n], &e820[..]);
    }

    #[test]
    fn setup_area_too_small_is_an_error() {
        let e820: Vec<_> = (0..300u64).map(|i| E820Entry::new(i * 0x2000, 0x1000, RAM)).collect();
        let spec = ZeroPageSpec { e820: &e820, cmdline_paddr: 0, cmdline_size: 0, initrd: None, rsdp: 0, hvinfo: xen(), bootmem: &[] };
        let mut zp = BootParams::zeroed();
        let mut small = [0u8; 256];
        assert!(matches!(build(&mut zp, &mut small, SETUP, &spec), Err(ZeroPageError::SetupAreaFull { .. })));
    }

    #[test]
    fn corrupt_bootmem_length_stops_at_the_first_unreadable_entry() {
        // Found by fuzz/fuzz_targets/zero_page.rs: a BOOTMEM node whose len
        // is 0xffffffff kept the reader busy with 178 million failing reads
        // (64 times over when the node is linked to itself).
        let mut mem = FakeMem::new(0x10000, 0x40);
        mem.write(0x10008, &SETUP_BOOTMEM.to_le_bytes());
        mem.write(0x1000c, &u32::MAX.to_le_bytes());
        struct Counting(FakeMem, core::cell::Cell<u32>);
        impl PhysMem for Counting {
            fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), crate::arch::memory::OutOfReach> {
                self.1.set(self.1.get() + 1);
                self.0.read(addr, buf)
            }
        }
        let mem = Counting(mem, Default::default());
        let mut zp = BootParams::zeroed();
        zp.hdr.setup_data = 0x10000;
        let mut seen = 0;
        let r = for_each_bootmem(&mem, &zp, |_| seen += 1);
        assert_eq!(r, Err(ZeroPageError::Corrupt("boot-memory node unreadable")));
        assert_eq!(seen, 2, "the two readable entries, then stop");
        assert!(mem.1.get() <= 16, "{} reads", mem.1.get());
    }

    #[test]
    fn non_xen_is_subarch_pc_and_cyclic_lists_end() {
        let d = Detected { kind: Hypervisor::Tcg, base: 0x4000_0000, max_leaf: 0x4000_0001, signature: *b"TCGTCGTCGTCG" };
        let e820 = [E820Entry::new(0, 0x9fc00, RAM)];
        let spec = ZeroPageSpec {
            e820: &e820,
            cmdline_paddr: 0,
            cmdline_size: 0,
            initrd: None,
            rsdp: 0,
            hvinfo: HvInfo::new(&d, 1, 1, 0, 0),
            bootmem: &[],
        };
        let (mut mem, zp) = build_in(&spec);
        assert_eq!({ zp.hdr.hardware_subarch }, X86_SUBARCH_PC);
        assert_eq!(read_hvinfo(&mem, &zp).unwrap().kind(), Hypervisor::Tcg);
        // Point the last node back at the first.
        let mut last = SETUP;
        for_each_setup_data(&mem, SETUP, |n| last = n.paddr).unwrap();
        mem.write(last, &SETUP.to_le_bytes());
        assert_eq!(for_each_setup_data(&mem, SETUP, |_| {}), Err(ZeroPageError::Corrupt("setup_data list too long or cyclic")));
    }
}
