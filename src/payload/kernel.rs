//! Stage 4a: what a Linux kernel image asks of its loader (pure).
//!
//! Two forms are understood, both booted through the Linux **64-bit boot
//! protocol** (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"):
//!
//! - a **bzImage**: the setup header ("HdrS", protocol ≥ 2.12, so the
//!   header has `xloadflags`, `init_size` and `pref_address`) with
//!   `XLF_KERNEL_64`; the protected-mode part (after `setup_sects`) is
//!   loaded at an address aligned to `kernel_alignment`, with `init_size`
//!   bytes free from there, and entered at load address + 0x200;
//! - an uncompressed **vmlinux**: an ELF64 x86-64 executable whose PT_LOAD
//!   segments go at their physical addresses (`p_paddr`), shifted as a
//!   whole by a multiple of 2 MiB if the loader wants (the kernel's
//!   `startup_64` corrects for its physical load address), entered at
//!   `e_entry`. It must carry a note owned by "Linux" (every vmlinux since
//!   2.6 has one), so an arbitrary ELF is never mistaken for a kernel.
//!
//! A vmlinux may also name its own 32-bit PVH entry in a `"Xen"` note
//! (`XEN_ELFNOTE_PHYS32_ENTRY`, [`xen_pvh_entry`]): the second hand-off
//! (`crate::payload::pvh`) enters it there.
//!
//! Both come out as a [`Kernel`]: segments at offsets from a load address,
//! how much memory from there the kernel needs, the alignment, the lowest
//! address it accepts, and the entry offset. Nothing here touches memory.

use core::fmt;

use crate::arch::memory::Range;
use crate::boot::zero_page::{BootParams, LOADED_HIGH};

/// "HdrS" — the setup header's magic at 0x202.
pub const HDRS: u32 = 0x5372_6448;
/// Oldest protocol with `xloadflags`, `pref_address` and `init_size` (2.12).
pub const MIN_PROTOCOL: u16 = 0x020c;
/// `xloadflags` bit 0: the kernel has the 64-bit entry at +0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `xloadflags` bit 1: kernel, zero page, command line and initrd may lie above 4 GiB.
pub const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
/// Offset of the 64-bit entry from the start of the protected-mode part.
pub const BZIMAGE_ENTRY64: u64 = 0x200;
/// Where the setup header starts, in a bzImage and in the zero page.
pub const SETUP_HEADER_START: usize = 0x1f1;
/// A vmlinux may be moved only by whole 2 MiB pages (`startup_64` checks).
pub const VMLINUX_ALIGN: u64 = 2 << 20;
/// Most PT_LOAD segments taken from a vmlinux (Linux has 4 or 5).
pub const MAX_SEGMENTS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    BzImage,
    Vmlinux,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::BzImage => "bzImage",
            Format::Vmlinux => "vmlinux",
        }
    }
}

/// Bytes to put at `offset` from the load address; `mem_size - data.len()`
/// zero bytes follow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub offset: u64,
    pub data: &'a [u8],
    pub mem_size: u64,
}

/// A kernel image, as its loader must treat it.
#[derive(Clone, Copy, Debug)]
pub struct Kernel<'a> {
    pub format: Format,
    segments: [Segment<'a>; MAX_SEGMENTS],
    nseg: usize,
    /// Bytes from the load address the kernel uses while it starts
    /// (`init_size` for a bzImage; the span of the segments for a vmlinux).
    pub span: u64,
    /// The load address must be a multiple of this (a power of two).
    pub align: u64,
    /// The lowest load address the kernel accepts; it prefers exactly this.
    pub min_addr: u64,
    /// Whether it may be loaded anywhere else at all.
    pub relocatable: bool,
    /// Whether the kernel may sit above 4 GiB.
    pub above_4g: bool,
    /// Entry point, as an offset from the load address.
    pub entry_offset: u64,
    /// The setup header (bytes 0x1f1 up to its end), for a bzImage.
    pub setup_header: Option<&'a [u8]>,
    /// The kernel's own 32-bit PVH entry (`XEN_ELFNOTE_PHYS32_ENTRY`), a
    /// physical address valid when the kernel lies at `min_addr`: for a
    /// vmlinux that carries the note. A bzImage's notes are inside its
    /// compressed payload, out of sight.
    pub pvh_entry: Option<u64>,
}

impl<'a> Kernel<'a> {
    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments[..self.nseg]
    }
    /// The kernel's version string from a bzImage's header, if it has one.
    pub fn version(&self, image: &'a [u8]) -> Option<&'a str> {
        if self.format != Format::BzImage {
            return None;
        }
        let at = u16le(image, 0x20e)? as usize + 0x200;
        let tail = image.get(at..)?;
        let s = &tail[..tail.iter().position(|&b| b == 0)?];
        core::str::from_utf8(s).ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// Neither a bzImage nor an ELF64 vmlinux.
    NotLinux,
    /// An ELF, but not an x86-64 executable with a Linux note.
    NotLinuxElf(&'static str),
    /// The file ends before what its own header describes.
    Truncated { what: &'static str, need: u64, have: u64 },
    /// A bzImage older than boot protocol 2.12.
    OldProtocol(u16),
    /// A bzImage without the 64-bit entry.
    No64BitEntry,
    /// Something in the header cannot be right.
    Bad(&'static str),
}

impl core::error::Error for KernelError {}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KernelError::NotLinux => write!(f, "not a Linux kernel: neither a bzImage (no \"HdrS\" header) nor an ELF64 vmlinux"),
            KernelError::NotLinuxElf(why) => write!(f, "not a Linux kernel: ELF {why}"),
            KernelError::Truncated { what, need, have } => {
                write!(f, "kernel is truncated: {what} needs {need:#x} bytes, the image has {have:#x}")
            }
            KernelError::OldProtocol(v) => {
                write!(f, "bzImage speaks boot protocol {}.{:02}; 2.12 or later is needed for the 64-bit entry", v >> 8, v & 0xff)
            }
            KernelError::No64BitEntry => write!(f, "bzImage has no 64-bit entry (XLF_KERNEL_64 clear)"),
            KernelError::Bad(why) => write!(f, "bad kernel header: {why}"),
        }
    }
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Recognise and parse a kernel image.
pub fn parse(image: &[u8]) -> Result<Kernel<'_>, KernelError> {
    if image.starts_with(b"\x7fELF") {
        parse_vmlinux(image)
    } else if u32le(image, 0x202) == Some(HDRS) {
        parse_bzimage(image)
    } else {
        Err(KernelError::NotLinux)
    }
}

fn empty<'a>() -> [Segment<'a>; MAX_SEGMENTS] {
    [Segment { offset: 0, data: &[], mem_size: 0 }; MAX_SEGMENTS]
}

/// The end of the setup header: 0x202 plus the jump offset at 0x201.
pub fn setup_header_end(image: &[u8]) -> Option<usize> {
    Some(0x202 + *image.get(0x201)? as usize)
}

pub fn parse_bzimage(image: &[u8]) -> Result<Kernel<'_>, KernelError> {
    let have = image.len() as u64;
    let hdr_end = setup_header_end(image).ok_or(KernelError::NotLinux)?;
    if image.len() < hdr_end.max(0x26c) {
        return Err(KernelError::Truncated { what: "the setup header", need: hdr_end.max(0x26c) as u64, have });
    }
    if u16le(image, 0x1fe) != Some(0xaa55) || u32le(image, 0x202) != Some(HDRS) {
        return Err(KernelError::NotLinux);
    }
    let version = u16le(image, 0x206).unwrap();
    if version < MIN_PROTOCOL {
        return Err(KernelError::OldProtocol(version));
    }
    let xloadflags = u16le(image, 0x236).unwrap();
    if xloadflags & XLF_KERNEL_64 == 0 {
        return Err(KernelError::No64BitEntry);
    }
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => n as u64,
    };
    let setup_size = (setup_sects + 1) * 512;
    let pm_size = u32le(image, 0x1f4).unwrap() as u64 * 16; // syssize, in 16-byte units
    let need = setup_size + pm_size;
    if pm_size == 0 {
        return Err(KernelError::Bad("syssize is 0"));
    }
    // The 64-bit entry is at +0x200 of the protected-mode part: it must be
    // code hvmlite loads, never bytes past it.
    if pm_size <= BZIMAGE_ENTRY64 {
        return Err(KernelError::Bad("the protected-mode part ends before its 64-bit entry at +0x200"));
    }
    if have < need {
        return Err(KernelError::Truncated { what: "setup_sects + syssize", need, have });
    }
    let payload_end = u32le(image, 0x248).unwrap() as u64 + u32le(image, 0x24c).unwrap() as u64;
    if payload_end > pm_size {
        return Err(KernelError::Truncated { what: "payload_offset + payload_length", need: setup_size + payload_end, have: need });
    }
    let align = u32le(image, 0x230).unwrap() as u64;
    let relocatable = image[0x234] != 0;
    if relocatable && (!align.is_power_of_two() || align < 4096) {
        return Err(KernelError::Bad("kernel_alignment is not a power of two of at least 4 KiB"));
    }
    let init_size = u32le(image, 0x260).unwrap() as u64;
    let mut segments = empty();
    segments[0] = Segment { offset: 0, data: &image[setup_size as usize..need as usize], mem_size: pm_size };
    Ok(Kernel {
        format: Format::BzImage,
        segments,
        nseg: 1,
        span: init_size.max(pm_size),
        align: if relocatable { align } else { 4096 },
        min_addr: u64le(image, 0x258).unwrap(),
        relocatable,
        above_4g: xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G != 0,
        entry_offset: BZIMAGE_ENTRY64,
        setup_header: Some(&image[SETUP_HEADER_START..hdr_end]),
        pvh_entry: None,
    })
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;

pub fn parse_vmlinux(image: &[u8]) -> Result<Kernel<'_>, KernelError> {
    let have = image.len() as u64;
    let trunc = |what, need: u64| KernelError::Truncated { what, need, have };
    if image.len() < 64 {
        return Err(trunc("the ELF header", 64));
    }
    if image[4] != 2 || image[5] != 1 {
        return Err(KernelError::NotLinuxElf("is not 64-bit little-endian"));
    }
    if u16le(image, 18) != Some(EM_X86_64) || u16le(image, 16) != Some(ET_EXEC) {
        return Err(KernelError::NotLinuxElf("is not an x86-64 executable"));
    }
    let entry = u64le(image, 24).unwrap();
    let phoff = u64le(image, 32).unwrap();
    let phentsize = u16le(image, 54).unwrap() as u64;
    let phnum = u16le(image, 56).unwrap() as u64;
    if phentsize < 56 {
        return Err(KernelError::NotLinuxElf("has a malformed program header table"));
    }
    let ph_end = phoff.checked_add(phentsize * phnum).ok_or(KernelError::NotLinuxElf("has a malformed program header table"))?;
    if ph_end > have {
        return Err(trunc("the program header table", ph_end));
    }
    let mut segments = empty();
    let mut nseg = 0;
    let (mut base, mut top) = (u64::MAX, 0u64);
    let mut align = VMLINUX_ALIGN;
    let mut linux_note = false;
    let mut pvh_entry = None;
    let mut loads = [(0u64, 0u64, 0u64, 0u64, 0u64); MAX_SEGMENTS]; // paddr, vaddr, offset, filesz, memsz
    for i in 0..phnum {
        let p = (phoff + i * phentsize) as usize;
        let ty = u32le(image, p).unwrap();
        let (off, vaddr, paddr) = (u64le(image, p + 8).unwrap(), u64le(image, p + 16).unwrap(), u64le(image, p + 24).unwrap());
        let (filesz, memsz, palign) = (u64le(image, p + 32).unwrap(), u64le(image, p + 40).unwrap(), u64le(image, p + 48).unwrap());
        let end = off.checked_add(filesz).ok_or(KernelError::NotLinuxElf("has a segment that wraps"))?;
        if ty == PT_NOTE && end <= have {
            let notes = &image[off as usize..end as usize];
            linux_note |= has_linux_note(notes);
            if let Some(e) = xen_pvh_entry(notes)? {
                pvh_entry = Some(e);
            }
        }
        if ty != PT_LOAD || memsz == 0 {
            continue;
        }
        if end > have {
            return Err(trunc("a PT_LOAD segment", end));
        }
        if filesz > memsz {
            return Err(KernelError::NotLinuxElf("has a segment with p_filesz > p_memsz"));
        }
        if nseg == MAX_SEGMENTS {
            return Err(KernelError::NotLinuxElf("has too many PT_LOAD segments"));
        }
        let pend = paddr.checked_add(memsz).ok_or(KernelError::NotLinuxElf("has a segment that wraps"))?;
        loads[nseg] = (paddr, vaddr, off, filesz, memsz);
        nseg += 1;
        base = base.min(paddr);
        top = top.max(pend);
        if palign.is_power_of_two() && palign > align {
            align = palign;
        }
    }
    if nseg == 0 {
        return Err(KernelError::NotLinuxElf("has no PT_LOAD segment"));
    }
    if !linux_note {
        return Err(KernelError::NotLinuxElf("has no \"Linux\" note"));
    }
    if base % VMLINUX_ALIGN != 0 {
        return Err(KernelError::Bad("vmlinux's lowest physical address is not 2 MiB-aligned"));
    }
    for (i, &(paddr, _, off, filesz, memsz)) in loads[..nseg].iter().enumerate() {
        for &(p2, _, _, _, m2) in &loads[..i] {
            if paddr < p2 + m2 && p2 < paddr + memsz {
                return Err(KernelError::NotLinuxElf("has overlapping PT_LOAD segments"));
            }
        }
        segments[i] = Segment { offset: paddr - base, data: &image[off as usize..(off + filesz) as usize], mem_size: memsz };
    }
    // e_entry is physical in Linux's vmlinux; accept a virtual one too.
    let entry_offset = if (base..top).contains(&entry) {
        entry - base
    } else {
        loads[..nseg]
            .iter()
            .find(|&&(_, v, _, _, m)| v <= entry && entry - v < m)
            .map(|&(p, v, _, _, _)| p - base + (entry - v))
            .ok_or(KernelError::NotLinuxElf("entry point lies in no PT_LOAD segment"))?
    };
    // The PVH entry is physical, for the kernel at its p_paddr: it must lie
    // in a segment, or the note is not this kernel's.
    if let Some(e) = pvh_entry {
        if !loads[..nseg].iter().any(|&(p, _, _, _, m)| p <= e && e - p < m) {
            return Err(KernelError::Bad("XEN_ELFNOTE_PHYS32_ENTRY lies in no PT_LOAD segment"));
        }
    }
    Ok(Kernel {
        format: Format::Vmlinux,
        segments,
        nseg,
        span: top - base,
        align,
        min_addr: base,
        relocatable: true,
        above_4g: true,
        entry_offset,
        setup_header: None,
        pvh_entry,
    })
}

/// `XEN_ELFNOTE_PHYS32_ENTRY` — public/elfnote.h: the physical address of
/// a 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// The PVH entry a PT_NOTE segment's contents name: the `"Xen"` note of
/// type [`XEN_ELFNOTE_PHYS32_ENTRY`], whose descriptor is the address as a
/// 4-byte (Linux's `.long`) or 8-byte (hvmlite's `.quad`) little-endian
/// number. `Ok(None)` when there is none; malformed notes stop the walk
/// (as Xen's own reader does), but a PHYS32_ENTRY note of another size, or
/// two that disagree, is an error.
pub fn xen_pvh_entry(mut notes: &[u8]) -> Result<Option<u64>, KernelError> {
    let pad = |x: usize| (x + 3) & !3;
    let mut found = None;
    while notes.len() >= 12 {
        let namesz = u32le(notes, 0).unwrap() as usize;
        let descsz = u32le(notes, 4).unwrap() as usize;
        let ty = u32le(notes, 8).unwrap();
        let desc_at = 12usize.saturating_add(pad(namesz));
        let next = desc_at.saturating_add(pad(descsz));
        if namesz > notes.len() || descsz > notes.len() || next > notes.len() {
            break;
        }
        if &notes[12..12 + namesz] == b"Xen\0" && ty == XEN_ELFNOTE_PHYS32_ENTRY {
            let d = &notes[desc_at..desc_at + descsz];
            let e = match descsz {
                4 => u32le(d, 0).unwrap() as u64,
                8 => u64le(d, 0).unwrap(),
                _ => return Err(KernelError::Bad("XEN_ELFNOTE_PHYS32_ENTRY is neither 4 nor 8 bytes")),
            };
            if found.is_some_and(|f| f != e) {
                return Err(KernelError::Bad("two XEN_ELFNOTE_PHYS32_ENTRY notes disagree"));
            }
            found = Some(e);
        }
        notes = &notes[next..];
    }
    Ok(found)
}

/// Whether a PT_NOTE's contents hold a note owned by "Linux".
fn has_linux_note(mut notes: &[u8]) -> bool {
    let pad = |x: usize| (x + 3) & !3;
    while notes.len() >= 12 {
        let namesz = u32le(notes, 0).unwrap() as usize;
        let descsz = u32le(notes, 4).unwrap() as usize;
        let Some(name) = notes.get(12..12 + namesz) else { return false };
        if name == b"Linux\0" {
            return true;
        }
        let next = 12 + pad(namesz) + pad(descsz);
        if next > notes.len() {
            return false;
        }
        notes = &notes[next..];
    }
    false
}

/// `loadflags` bits a loader may not leave set: CAN_USE_HEAP (no real-mode
/// heap here), QUIET_FLAG and KEEP_SEGMENTS (obsolete).
const LOADFLAGS_LOADER_CLEARS: u8 = 0x80 | 0x40 | 0x20;
/// COMMAND_LINE_SIZE - 1 on x86 when a kernel has no header to say.
pub const DEFAULT_CMDLINE_SIZE: u32 = 2047;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoverError {
    CmdlineTooLong { len: usize, max: u32 },
    InitrdTooHigh { initrd: Range, max: u64 },
    BadSetupHeader(usize),
}

impl fmt::Display for HandoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HandoverError::CmdlineTooLong { len, max } => {
                write!(f, "the kernel command line is {len} bytes; this kernel takes at most {max}")
            }
            HandoverError::InitrdTooHigh { initrd, max } => write!(
                f,
                "initrd does not fit: it lies at {:#x}-{:#x}, above the kernel's initrd_addr_max {max:#x}",
                initrd.start, initrd.end
            ),
            HandoverError::BadSetupHeader(n) => write!(f, "setup header of {n} bytes does not fit the zero page"),
        }
    }
}

/// The zero page the kernel gets: hvmlite's (`base`: e820, ACPI, the
/// hypervisor record and `setup_data`), with the kernel's own setup header
/// copied over it as the boot protocol asks (bytes 0x1f1 to the header's
/// end), and then the fields the loader owns set again: `type_of_loader`,
/// `loadflags` (LOADED_HIGH; no heap), the initrd, the command line,
/// `hardware_subarch(_data)` and `setup_data`. Everything else in the
/// header (`version`, `init_size`, `cmdline_size`, …) is the kernel's.
pub fn linux_zero_page(
    base: &BootParams,
    setup_header: Option<&[u8]>,
    cmdline: (u64, usize),
    initrd: Option<Range>,
) -> Result<BootParams, HandoverError> {
    let mut zp = *base;
    let mut bytes = [0u8; 4096];
    bytes.copy_from_slice(zp.as_bytes());
    if let Some(h) = setup_header {
        if h.len() < 0x264 - SETUP_HEADER_START || SETUP_HEADER_START + h.len() > 0x290 {
            return Err(HandoverError::BadSetupHeader(h.len()));
        }
        bytes[SETUP_HEADER_START..SETUP_HEADER_START + h.len()].copy_from_slice(h);
        zp = BootParams::from_bytes(&bytes);
    }
    let max = if setup_header.is_some() { zp.hdr.cmdline_size } else { DEFAULT_CMDLINE_SIZE };
    if cmdline.1 > max as usize {
        return Err(HandoverError::CmdlineTooLong { len: cmdline.1, max });
    }
    let above_4g = setup_header.is_none() || { zp.hdr.xloadflags } & XLF_CAN_BE_LOADED_ABOVE_4G != 0;
    let h = &mut zp.hdr;
    h.type_of_loader = base.hdr.type_of_loader;
    h.loadflags = (h.loadflags | LOADED_HIGH) & !LOADFLAGS_LOADER_CLEARS;
    h.heap_end_ptr = 0;
    h.ext_loader_ver = 0;
    h.ext_loader_type = 0;
    h.hardware_subarch = base.hdr.hardware_subarch;
    h.hardware_subarch_data = base.hdr.hardware_subarch_data;
    h.setup_data = base.hdr.setup_data;
    if setup_header.is_none() {
        h.cmdline_size = DEFAULT_CMDLINE_SIZE;
    }
    h.cmd_line_ptr = cmdline.0 as u32;
    zp.ext_cmd_line_ptr = (cmdline.0 >> 32) as u32;
    let (image, size) = match initrd {
        Some(r) => {
            let max = { zp.hdr.initrd_addr_max } as u64;
            if !above_4g && max != 0 && r.end - 1 > max {
                return Err(HandoverError::InitrdTooHigh { initrd: r, max });
            }
            (r.start, r.len())
        }
        None => (0, 0),
    };
    zp.hdr.ramdisk_image = image as u32;
    zp.ext_ramdisk_image = (image >> 32) as u32;
    zp.hdr.ramdisk_size = size as u32;
    zp.ext_ramdisk_size = (size >> 32) as u32;
    Ok(zp)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A small but well-formed bzImage header around `pm` bytes of
    /// protected-mode code.
    pub fn fake_bzimage(pm: &[u8], version: u16, xlf: u16) -> Vec<u8> {
        let setup_sects = 3u8;
        let mut b = vec![0u8; 4 * 512];
        b[0x1f1] = setup_sects;
        b[0x1f4..0x1f8].copy_from_slice(&((pm.len() as u32).div_ceil(16)).to_le_bytes());
        b[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        b[0x200] = 0xeb;
        b[0x201] = 0x6a;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        b[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        b[0x300..0x30a].copy_from_slice(b"6.1.0-test");
        b[0x230..0x234].copy_from_slice(&0x200000u32.to_le_bytes());
        b[0x234] = 1;
        b[0x236..0x238].copy_from_slice(&xlf.to_le_bytes());
        b[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&0x10u32.to_le_bytes());
        b[0x258..0x260].copy_from_slice(&0x1000000u64.to_le_bytes());
        b[0x260..0x264].copy_from_slice(&0x3f98000u32.to_le_bytes());
        b.extend_from_slice(pm);
        b.resize(4 * 512 + (pm.len().div_ceil(16)) * 16, 0);
        b
    }

    /// One ELF note: owner, type, descriptor (each padded to 4 bytes).
    pub fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(name.len() as u32).to_le_bytes());
        b.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(name);
        b.resize(b.len().div_ceil(4) * 4, 0);
        b.extend_from_slice(desc);
        b.resize(b.len().div_ceil(4) * 4, 0);
        b
    }

    /// The notes every fake vmlinux carries: a Xen note that is no entry,
    /// then Linux's.
    pub fn linux_notes() -> Vec<u8> {
        let mut n = note(b"Xen\0", 1, &0u32.to_le_bytes());
        n.extend(note(b"Linux\0", 0x100, &[1, 2, 3, 4]));
        n
    }

    /// An ELF64 vmlinux with the given PT_LOADs (paddr, vaddr, data, memsz)
    /// and, if `note`, a "Linux" note.
    pub fn fake_vmlinux(entry: u64, loads: &[(u64, u64, &[u8], u64)], note: bool) -> Vec<u8> {
        fake_vmlinux_notes(entry, loads, if note { Some(linux_notes()) } else { None })
    }

    /// An ELF64 vmlinux with the given PT_LOADs and one PT_NOTE holding `notes`.
    pub fn fake_vmlinux_notes(entry: u64, loads: &[(u64, u64, &[u8], u64)], notes: Option<Vec<u8>>) -> Vec<u8> {
        let phnum = loads.len() + notes.is_some() as usize;
        let mut b = vec![0u8; 64 + 56 * phnum];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut ph = 64;
        let mut put = |b: &mut Vec<u8>, ty: u32, off: u64, vaddr: u64, paddr: u64, filesz: u64, memsz: u64| {
            b[ph..ph + 4].copy_from_slice(&ty.to_le_bytes());
            for (k, v) in [off, vaddr, paddr, filesz, memsz, 0x200000].iter().enumerate() {
                b[ph + 8 + 8 * k..ph + 16 + 8 * k].copy_from_slice(&v.to_le_bytes());
            }
            ph += 56;
        };
        for &(paddr, vaddr, data, memsz) in loads {
            let off = b.len() as u64;
            b.extend_from_slice(data);
            put(&mut b, PT_LOAD, off, vaddr, paddr, data.len() as u64, memsz);
        }
        if let Some(n) = notes {
            let off = b.len() as u64;
            b.extend_from_slice(&n);
            let len = n.len() as u64;
            put(&mut b, PT_NOTE, off, 0, 0, len, len);
        }
        b
    }

    #[test]
    fn pvh_entry_is_read_from_the_xen_note() {
        let text = [0xccu8; 300];
        let loads: &[(u64, u64, &[u8], u64)] = &[(0x1000000, 0xffffffff81000000, &text, 0x1000)];
        let with = |desc: &[u8]| {
            let mut n = linux_notes();
            n.extend(note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY, desc));
            fake_vmlinux_notes(0x1000000, loads, Some(n))
        };
        // Linux's .long, hvmlite's .quad.
        assert_eq!(parse(&with(&0x1000850u32.to_le_bytes())).unwrap().pvh_entry, Some(0x1000850));
        assert_eq!(parse(&with(&0x1000850u64.to_le_bytes())).unwrap().pvh_entry, Some(0x1000850));
        assert_eq!(parse(&fake_vmlinux(0x1000000, loads, true)).unwrap().pvh_entry, None);
        // An entry outside the kernel, or of an odd size, is refused.
        assert_eq!(
            parse(&with(&0x5000000u32.to_le_bytes())).unwrap_err(),
            KernelError::Bad("XEN_ELFNOTE_PHYS32_ENTRY lies in no PT_LOAD segment")
        );
        assert!(matches!(parse(&with(&[1, 2])), Err(KernelError::Bad(_))));
        // Another owner's type 18 is not Xen's.
        let mut n = linux_notes();
        n.extend(note(b"Linux\0", XEN_ELFNOTE_PHYS32_ENTRY, &0x1000850u32.to_le_bytes()));
        assert_eq!(parse(&fake_vmlinux_notes(0x1000000, loads, Some(n))).unwrap().pvh_entry, None);
        // A bzImage's notes are out of sight.
        assert_eq!(parse(&fake_bzimage(&[0x90; 1000], 0x020f, XLF_KERNEL_64)).unwrap().pvh_entry, None);
    }

    #[test]
    fn xen_note_walk_refusals_and_truncation() {
        let e = |v: u32| note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY, &v.to_le_bytes());
        assert_eq!(xen_pvh_entry(&e(0x1234)), Ok(Some(0x1234)));
        assert_eq!(xen_pvh_entry(&[]), Ok(None));
        // Two that agree are one; two that disagree are an error.
        assert_eq!(xen_pvh_entry(&[e(7), e(7)].concat()), Ok(Some(7)));
        assert!(xen_pvh_entry(&[e(7), e(8)].concat()).is_err());
        // Every cut of a note list is read without panicking, and a cut
        // note is never taken for a whole one.
        let all = [note(b"GNU\0", 3, &[9; 20]), e(0x1000850)].concat();
        for cut in 0..all.len() {
            assert_eq!(xen_pvh_entry(&all[..cut]), Ok(None), "cut at {cut}");
        }
        // Huge sizes stop the walk, they do not wrap.
        let mut huge = e(5);
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(xen_pvh_entry(&huge), Ok(None));
        huge[0..4].copy_from_slice(&4u32.to_le_bytes());
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(xen_pvh_entry(&huge), Ok(None));
    }

    #[test]
    fn bzimage_header_is_read() {
        let img = fake_bzimage(&[0x90; 1000], 0x020f, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
        let k = parse(&img).unwrap();
        assert_eq!(k.format, Format::BzImage);
        assert_eq!(k.segments().len(), 1);
        assert_eq!(k.segments()[0].data.len(), 1008);
        assert_eq!(&k.segments()[0].data[..1000], &[0x90; 1000][..]);
        assert_eq!((k.span, k.align, k.min_addr, k.entry_offset), (0x3f98000, 0x200000, 0x1000000, 0x200));
        assert!(k.relocatable && k.above_4g);
        assert_eq!(k.setup_header.unwrap().len(), 0x26c - 0x1f1);
        assert_eq!(k.version(&img), Some("6.1.0-test"));
    }

    #[test]
    fn bzimage_refusals() {
        let good = fake_bzimage(&[1; 0x240], 0x020f, XLF_KERNEL_64);
        assert_eq!(parse(&fake_bzimage(&[1; 0x240], 0x020b, 1)).unwrap_err(), KernelError::OldProtocol(0x020b));
        assert_eq!(parse(&fake_bzimage(&[1; 0x240], 0x020f, 0)).unwrap_err(), KernelError::No64BitEntry);
        assert!(matches!(parse(&good[..good.len() - 1]), Err(KernelError::Truncated { .. })));
        assert!(matches!(parse(&good[..0x240]), Err(KernelError::Truncated { .. })));
        assert_eq!(parse(&[0u8; 4096]).unwrap_err(), KernelError::NotLinux);
        assert_eq!(parse(b"").unwrap_err(), KernelError::NotLinux);
        let mut odd = good.clone();
        odd[0x230..0x234].copy_from_slice(&0x3000u32.to_le_bytes());
        assert!(matches!(parse(&odd), Err(KernelError::Bad(_))));
        let mut nonreloc = good.clone();
        nonreloc[0x234] = 0;
        let k = parse(&nonreloc).unwrap();
        assert!(!k.relocatable);
        // A signature appended after syssize (as signed kernels have) is not loaded.
        let mut signed = good.clone();
        signed.extend_from_slice(&[0xee; 100]);
        assert_eq!(parse(&signed).unwrap().segments()[0].data.len(), 0x240);
    }

    /// Found by the `kernel` fuzz target: a protected-mode part shorter than
    /// 0x200 bytes put the 64-bit entry past everything loaded.
    #[test]
    fn bzimage_whose_entry_lies_past_its_code_is_refused() {
        let img = fake_bzimage(&[0x90; 0x200], 0x020f, XLF_KERNEL_64);
        assert_eq!(parse_bzimage(&img).unwrap_err(), KernelError::Bad("the protected-mode part ends before its 64-bit entry at +0x200"));
        assert!(parse_bzimage(&fake_bzimage(&[0x90; 0x210], 0x020f, XLF_KERNEL_64)).is_ok());
    }

    #[test]
    fn vmlinux_segments_are_relative_to_the_lowest_paddr() {
        let text = [0xccu8; 300];
        let data = [7u8; 10];
        let img = fake_vmlinux(0x1000000, &[(0x1000000, 0xffffffff81000000, &text, 0x1000), (0x1400000, 0, &data, 0x800000)], true);
        let k = parse(&img).unwrap();
        assert_eq!(k.format, Format::Vmlinux);
        assert_eq!(k.segments().len(), 2);
        assert_eq!(k.segments()[1].offset, 0x400000);
        assert_eq!(k.segments()[1].data, &data);
        assert_eq!(k.segments()[1].mem_size, 0x800000);
        assert_eq!((k.span, k.align, k.min_addr, k.entry_offset), (0xc00000, 0x200000, 0x1000000, 0));
        // A virtual entry point is translated through its segment.
        let img = fake_vmlinux(0xffffffff81000040, &[(0x1000000, 0xffffffff81000000, &text, 0x1000)], true);
        assert_eq!(parse(&img).unwrap().entry_offset, 0x40);
    }

    #[test]
    fn vmlinux_refusals() {
        let text = [0xccu8; 300];
        let ok = fake_vmlinux(0x1000000, &[(0x1000000, 0x1000000, &text, 0x1000)], true);
        assert!(parse(&ok).is_ok());
        let no_note = fake_vmlinux(0x1000000, &[(0x1000000, 0x1000000, &text, 0x1000)], false);
        assert_eq!(parse(&no_note).unwrap_err(), KernelError::NotLinuxElf("has no \"Linux\" note"));
        // Cut inside the first segment's data.
        assert!(matches!(parse(&ok[..64 + 56 * 2 + 100]), Err(KernelError::Truncated { .. })));
        assert!(matches!(parse(&ok[..70]), Err(KernelError::Truncated { .. })));
        let bad_entry = fake_vmlinux(0x5000000, &[(0x1000000, 0x1000000, &text, 0x1000)], true);
        assert!(matches!(parse(&bad_entry), Err(KernelError::NotLinuxElf(_))));
        let overlap = fake_vmlinux(0x1000000, &[(0x1000000, 0, &text, 0x1000), (0x1000800, 0, &text, 0x1000)], true);
        assert!(matches!(parse(&overlap), Err(KernelError::NotLinuxElf(_))));
        let mut i386 = ok.clone();
        i386[18] = 3;
        assert!(matches!(parse(&i386), Err(KernelError::NotLinuxElf(_))));
    }

    #[test]
    fn zero_page_gets_the_kernel_header_and_the_loader_fields() {
        let mut base = BootParams::zeroed();
        base.hdr.type_of_loader = 0x90;
        base.hdr.hardware_subarch = 2;
        base.hdr.hardware_subarch_data = 0x1234;
        base.hdr.setup_data = 0x5678;
        base.e820_entries = 3;
        base.acpi_rsdp_addr = 0xf0000;
        let mut img = fake_bzimage(&[0; 0x240], 0x020f, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
        img[0x211] = 0x81; // LOADED_HIGH | CAN_USE_HEAP
        img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
        img[0x22c..0x230].copy_from_slice(&0x7fffffffu32.to_le_bytes());
        let k = parse(&img).unwrap();
        let initrd = Range::new(0x1_2000_0000, 0x1_2010_0000);
        let zp = linux_zero_page(&base, k.setup_header, (0x1_0000_0800, 100), Some(initrd)).unwrap();
        let b = zp.as_bytes();
        // The kernel's header bytes...
        assert_eq!(&b[0x202..0x206], b"HdrS");
        assert_eq!(u16::from_le_bytes([b[0x206], b[0x207]]), 0x020f);
        assert_eq!({ zp.hdr.init_size }, 0x3f98000);
        assert_eq!({ zp.hdr.pref_address }, 0x1000000);
        assert_eq!({ zp.hdr.cmdline_size }, 2047);
        // ...and the loader's fields.
        assert_eq!(zp.hdr.type_of_loader, 0x90);
        assert_eq!(zp.hdr.loadflags, 0x01);
        assert_eq!(({ zp.hdr.hardware_subarch }, { zp.hdr.hardware_subarch_data }, { zp.hdr.setup_data }), (2, 0x1234, 0x5678));
        assert_eq!(zp.cmd_line_ptr(), 0x1_0000_0800);
        assert_eq!(zp.initrd(), Some(initrd));
        // What hvmlite built outside the header is untouched.
        assert_eq!((zp.e820_entries, { zp.acpi_rsdp_addr }), (3, 0xf0000));
        assert_eq!(zp.sentinel, 0);
    }

    #[test]
    fn zero_page_refusals() {
        let base = BootParams::zeroed();
        let img = fake_bzimage(&[0; 0x240], 0x020f, XLF_KERNEL_64);
        let mut img2 = img.clone();
        img2[0x238..0x23c].copy_from_slice(&10u32.to_le_bytes());
        img2[0x22c..0x230].copy_from_slice(&0x7fffffffu32.to_le_bytes());
        let k = parse(&img2).unwrap();
        assert_eq!(
            linux_zero_page(&base, k.setup_header, (0x1000, 11), None).err(),
            Some(HandoverError::CmdlineTooLong { len: 11, max: 10 })
        );
        let high = Range::new(0x8000_0000, 0x8000_1000);
        assert!(matches!(linux_zero_page(&base, k.setup_header, (0x1000, 1), Some(high)), Err(HandoverError::InitrdTooHigh { .. })));
        // Without a header (a bare vmlinux): Linux's own limits.
        let zp = linux_zero_page(&base, None, (0x1000, 2047), Some(high)).unwrap();
        assert_eq!({ zp.hdr.cmdline_size }, DEFAULT_CMDLINE_SIZE);
        assert!(linux_zero_page(&base, None, (0x1000, 2048), None).is_err());
        assert!(matches!(linux_zero_page(&base, Some(&[0; 10]), (0, 0), None), Err(HandoverError::BadSetupHeader(10))));
    }
}
