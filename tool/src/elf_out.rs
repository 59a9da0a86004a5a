//! Writing the small ELF64 files the tool makes: a header, the program
//! headers, then each segment's bytes; no section headers.

use object::elf;
use object::endian::{LittleEndian as LE, U16, U32, U64};

/// One program header and the file bytes behind it.
pub struct Segment<'a> {
    pub p_type: u32,
    pub flags: u32,
    pub paddr: u64,
    pub data: &'a [u8],
    pub mem_size: u64,
    /// `p_align`; the file offset is placed congruent to `paddr` modulo it
    /// (at most 4 KiB).
    pub align: u64,
}

/// An x86-64 executable ELF with `entry` and `segments`, in their order.
pub fn write(entry: u64, segments: &[Segment]) -> Vec<u8> {
    let n = segments.len();
    let mut out = vec![0u8; 64 + 56 * n];
    let mut phdrs = Vec::with_capacity(n);
    for s in segments {
        if s.data.is_empty() {
            phdrs.push(phdr(s, 0));
            continue;
        }
        let align = s.align.clamp(1, 4096) as usize;
        let want = (s.paddr % align as u64) as usize;
        let at = (out.len() - want).div_ceil(align) * align + want;
        out.resize(at, 0);
        out.extend_from_slice(s.data);
        phdrs.push(phdr(s, at as u64));
    }
    let fh = elf::FileHeader64::<LE> {
        e_ident: elf::Ident {
            magic: elf::ELFMAG,
            class: elf::ELFCLASS64,
            data: elf::ELFDATA2LSB,
            version: elf::EV_CURRENT,
            os_abi: 0,
            abi_version: 0,
            padding: [0; 7],
        },
        e_type: U16::new(LE, elf::ET_EXEC),
        e_machine: U16::new(LE, elf::EM_X86_64),
        e_version: U32::new(LE, elf::EV_CURRENT as u32),
        e_entry: U64::new(LE, entry),
        e_phoff: U64::new(LE, 64),
        e_shoff: U64::new(LE, 0),
        e_flags: U32::new(LE, 0),
        e_ehsize: U16::new(LE, 64),
        e_phentsize: U16::new(LE, 56),
        e_phnum: U16::new(LE, n as u16),
        e_shentsize: U16::new(LE, 64),
        e_shnum: U16::new(LE, 0),
        e_shstrndx: U16::new(LE, 0),
    };
    out[..64].copy_from_slice(object::bytes_of(&fh));
    for (i, p) in phdrs.iter().enumerate() {
        out[64 + 56 * i..64 + 56 * (i + 1)].copy_from_slice(object::bytes_of(p));
    }
    out
}

fn phdr(s: &Segment, offset: u64) -> elf::ProgramHeader64<LE> {
    elf::ProgramHeader64::<LE> {
        p_type: U32::new(LE, s.p_type),
        p_flags: U32::new(LE, s.flags),
        p_offset: U64::new(LE, offset),
        p_vaddr: U64::new(LE, s.paddr),
        p_paddr: U64::new(LE, s.paddr),
        p_filesz: U64::new(LE, s.data.len() as u64),
        p_memsz: U64::new(LE, s.mem_size),
        p_align: U64::new(LE, s.align),
    }
}
