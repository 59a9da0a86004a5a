//! The payload bundle: a kernel, an initrd and a kernel command line in one
//! blob (pure; the README documents the format).
//!
//! A bundle reaches hvmlite as the first PVH module (`qemu -initrd`, xl's
//! `ramdisk=`, a dom0 module), or embedded in a self-contained hvmlite ELF
//! as an extra PT_LOAD segment. Layout, version 1, little-endian:
//!
//! ```text
//! 0x00  u8  magic[8]      "HVLBNDL\0"
//! 0x08  u16 version       1 (a reader refuses versions it does not know)
//! 0x0a  u16 header_size   64
//! 0x0c  u16 entry_size    32
//! 0x0e  u16 entry_count
//! 0x10  u64 total_size    bytes of the whole bundle
//! 0x18  u32 header_crc    CRC-32 (IEEE) of header + table, this field as 0
//! 0x1c  u32 flags         0
//! 0x20  u8  reserved[32]  0
//! 0x40  entries[entry_count]:
//!       u32 kind   1 kernel, 2 initrd, 3 cmdline, 4 setup header,
//!                  5 PVH entry (u64: the kernel's XEN_ELFNOTE_PHYS32_ENTRY)
//!       u32 format kernel: 1 bzImage, 2 vmlinux (ELF64), 3 vmlinux whose
//!                  segments are already in place (embedded only); else 0
//!       u64 offset from the bundle's start (kernel and initrd: 4 KiB-aligned)
//!       u64 size
//!       u32 crc    CRC-32 (IEEE) of the section's bytes
//!       u32 reserved
//! ```
//!
//! Exactly one kernel; at most one of the others. The command line is text
//! without NUL. The setup header (bytes 0x1f1.. of the bzImage it came
//! from) rides along when the kernel is stored as a vmlinux decompressed
//! from that bzImage, so the zero page still gets the kernel's own header.
//! The PVH entry (kind 5, 8 bytes) is what the kernel's own ELF note says,
//! recorded at pack time so that a kernel whose notes are out of sight (a
//! bzImage kept compressed) still names it; an older reader skips it.
//! Unknown kinds are skipped: later versions of the format may add some.

use core::fmt;

pub const MAGIC: [u8; 8] = *b"HVLBNDL\0";
pub const VERSION: u16 = 1;
pub const HEADER_SIZE: usize = 64;
pub const ENTRY_SIZE: usize = 32;
pub const MAX_ENTRIES: usize = 16;
/// Alignment of the kernel and initrd inside a bundle.
pub const SECTION_ALIGN: u64 = 4096;

pub const KIND_KERNEL: u32 = 1;
pub const KIND_INITRD: u32 = 2;
pub const KIND_CMDLINE: u32 = 3;
pub const KIND_SETUP_HEADER: u32 = 4;
/// The kernel's 32-bit PVH entry, a `u64` (from its `XEN_ELFNOTE_PHYS32_ENTRY`).
pub const KIND_PVH_ENTRY: u32 = 5;
/// Size of a [`KIND_PVH_ENTRY`] section.
pub const PVH_ENTRY_SIZE: usize = 8;

/// The record an image keeps for an embedded bundle (`hvmlite pack --elf`
/// fills it in).
pub use crate::boot::image::{EMBED_MAGIC, EMBED_RECORD_SIZE};

pub const FORMAT_BZIMAGE: u32 = 1;
pub const FORMAT_VMLINUX: u32 = 2;
/// A vmlinux whose PT_LOAD segments the ELF loader already put at their
/// `p_paddr` (a self-contained hvmlite ELF carries them as its own
/// segments): the section holds the ELF headers and notes only, every
/// PT_LOAD with `p_filesz` 0. Nothing is copied at boot.
pub const FORMAT_VMLINUX_PRELOADED: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: u32,
    pub format: u32,
    pub offset: u64,
    pub size: u64,
    pub crc: u32,
}

/// A bundle's parts, as byte slices of the bundle.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    pub version: u16,
    pub total_size: u64,
    pub kernel: &'a [u8],
    pub kernel_format: u32,
    pub kernel_crc: u32,
    pub initrd: Option<&'a [u8]>,
    pub initrd_crc: u32,
    pub cmdline: &'a str,
    pub setup_header: Option<&'a [u8]>,
    /// The kernel's PVH entry, when the pack tool saw one.
    pub pvh_entry: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Too short for a header or wrong magic: not a bundle at all.
    NotABundle,
    UnsupportedVersion(u16),
    BadHeader(&'static str),
    HeaderCrc {
        stored: u32,
        computed: u32,
    },
    /// Fewer bytes than `total_size` says.
    Truncated {
        need: u64,
        have: u64,
    },
    SectionOutside {
        kind: u32,
        end: u64,
        total: u64,
    },
    SectionCrc {
        kind: u32,
    },
    NoKernel,
    Duplicate(u32),
    CmdlineNotText,
}

pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_KERNEL => "kernel",
        KIND_INITRD => "initrd",
        KIND_CMDLINE => "cmdline",
        KIND_SETUP_HEADER => "setup header",
        KIND_PVH_ENTRY => "PVH entry",
        _ => "unknown",
    }
}

impl core::error::Error for BundleError {}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BundleError::NotABundle => write!(f, "not a payload bundle (no \"HVLBNDL\" magic)"),
            BundleError::UnsupportedVersion(v) => write!(f, "bundle version {v} is not supported (this hvmlite reads {VERSION})"),
            BundleError::BadHeader(why) => write!(f, "bundle header is malformed: {why}"),
            BundleError::HeaderCrc { stored, computed } => {
                write!(f, "bundle header is corrupt: CRC {computed:#010x}, stored {stored:#010x}")
            }
            BundleError::Truncated { need, have } => {
                write!(f, "bundle is truncated: its header says {need:#x} bytes, only {have:#x} arrived")
            }
            BundleError::SectionOutside { kind, end, total } => {
                write!(f, "bundle {} ends at {end:#x}, past the bundle's {total:#x} bytes", kind_name(kind))
            }
            BundleError::SectionCrc { kind } => write!(f, "bundle {} is corrupt (CRC mismatch)", kind_name(kind)),
            BundleError::NoKernel => write!(f, "bundle has no kernel"),
            BundleError::Duplicate(kind) => write!(f, "bundle has more than one {}", kind_name(kind)),
            BundleError::CmdlineNotText => write!(f, "bundle command line is not UTF-8 text without NUL"),
        }
    }
}

/// Whether `b` starts like a bundle (the magic); says nothing about the rest.
pub fn is_bundle(b: &[u8]) -> bool {
    b.len() >= MAGIC.len() && b[..MAGIC.len()] == MAGIC
}

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn rd64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The header's total_size, once the magic matched (to learn how much of
/// memory to look at before parsing).
pub fn total_size(b: &[u8]) -> Option<u64> {
    (is_bundle(b) && b.len() >= HEADER_SIZE).then(|| rd64(b, 0x10))
}

/// Which sections' CRCs to check: all of them (host tools), or only the
/// small ones (the boot path, where checking tens of MiB under emulation
/// would cost more than the rest of hvmlite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    All,
    Small,
}

/// Parse and check a bundle. `b` may extend past the bundle's end.
pub fn parse(b: &[u8], verify: Verify) -> Result<Bundle<'_>, BundleError> {
    if !is_bundle(b) {
        return Err(BundleError::NotABundle);
    }
    if b.len() < HEADER_SIZE {
        return Err(BundleError::Truncated { need: HEADER_SIZE as u64, have: b.len() as u64 });
    }
    let version = rd16(b, 8);
    if version != VERSION {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let (hsize, esize, count) = (rd16(b, 0x0a) as usize, rd16(b, 0x0c) as usize, rd16(b, 0x0e) as usize);
    if hsize != HEADER_SIZE || esize != ENTRY_SIZE {
        return Err(BundleError::BadHeader("unexpected header or entry size"));
    }
    if count > MAX_ENTRIES {
        return Err(BundleError::BadHeader("too many entries"));
    }
    let table_end = HEADER_SIZE + count * ENTRY_SIZE;
    let total = rd64(b, 0x10);
    if (b.len() as u64) < total || b.len() < table_end {
        return Err(BundleError::Truncated { need: total.max(table_end as u64), have: b.len() as u64 });
    }
    if total < table_end as u64 {
        return Err(BundleError::BadHeader("total_size is smaller than the header"));
    }
    let stored = rd32(b, 0x18);
    let computed = crc32_with_hole(&b[..table_end], 0x18);
    if stored != computed {
        return Err(BundleError::HeaderCrc { stored, computed });
    }
    let mut out = Bundle {
        version,
        total_size: total,
        kernel: &[],
        kernel_format: 0,
        kernel_crc: 0,
        initrd: None,
        initrd_crc: 0,
        cmdline: "",
        setup_header: None,
        pvh_entry: None,
    };
    let mut seen = [false; 6];
    for i in 0..count {
        let e = HEADER_SIZE + i * ENTRY_SIZE;
        let s = Section { kind: rd32(b, e), format: rd32(b, e + 4), offset: rd64(b, e + 8), size: rd64(b, e + 16), crc: rd32(b, e + 24) };
        let end = s.offset.checked_add(s.size).filter(|&end| end <= total);
        let Some(end) = end else {
            return Err(BundleError::SectionOutside { kind: s.kind, end: s.offset.saturating_add(s.size), total });
        };
        let data = &b[s.offset as usize..end as usize];
        if !(1..=5).contains(&s.kind) {
            continue;
        }
        if core::mem::replace(&mut seen[s.kind as usize], true) {
            return Err(BundleError::Duplicate(s.kind));
        }
        let small = matches!(s.kind, KIND_CMDLINE | KIND_SETUP_HEADER | KIND_PVH_ENTRY);
        if (verify == Verify::All || small) && crc32(data) != s.crc {
            return Err(BundleError::SectionCrc { kind: s.kind });
        }
        match s.kind {
            KIND_KERNEL => {
                out.kernel = data;
                out.kernel_format = s.format;
                out.kernel_crc = s.crc;
            }
            KIND_INITRD => {
                out.initrd = Some(data);
                out.initrd_crc = s.crc;
            }
            KIND_CMDLINE => {
                out.cmdline = core::str::from_utf8(data).map_err(|_| BundleError::CmdlineNotText)?;
                if data.contains(&0) {
                    return Err(BundleError::CmdlineNotText);
                }
            }
            KIND_PVH_ENTRY => {
                let v: [u8; PVH_ENTRY_SIZE] =
                    data.try_into().map_err(|_| BundleError::BadHeader("the PVH entry section is not 8 bytes"))?;
                out.pvh_entry = Some(u64::from_le_bytes(v));
            }
            _ => out.setup_header = Some(data),
        }
    }
    if !seen[KIND_KERNEL as usize] || out.kernel.is_empty() {
        return Err(BundleError::NoKernel);
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, as zlib and `crc32(1)` compute it), one 1 KiB
/// table.
const CRC32: crc::Crc<u32, crc::Table<1>> = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE 802.3, as zlib and `crc32(1)` compute it).
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

/// CRC-32 of `data` with the 4 bytes at `hole` taken as zero.
fn crc32_with_hole(data: &[u8], hole: usize) -> u32 {
    let mut d = CRC32.digest();
    d.update(&data[..hole]);
    d.update(&[0; 4]);
    d.update(&data[hole + 4..]);
    d.finalize()
}

/// Writing bundles (host tools and tests; needs `alloc`).
pub mod write {
    extern crate alloc;
    use super::*;
    use alloc::vec::Vec;

    /// One section to write: kind, format, bytes.
    pub struct Part<'a> {
        pub kind: u32,
        pub format: u32,
        pub data: &'a [u8],
    }

    /// Lay the parts out (header, table, small parts, then 4 KiB-aligned
    /// big parts) and fill in sizes and CRCs.
    pub fn build(parts: &[Part]) -> Vec<u8> {
        assert!(parts.len() <= MAX_ENTRIES);
        let table_end = HEADER_SIZE + parts.len() * ENTRY_SIZE;
        let mut out = alloc::vec![0u8; table_end];
        let mut entries = Vec::new();
        // Small parts first, right after the table; big ones page-aligned.
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by_key(|&i| matches!(parts[i].kind, KIND_KERNEL | KIND_INITRD));
        let mut placed = alloc::vec![(0u64, 0u64); parts.len()];
        for i in order {
            let p = &parts[i];
            if matches!(p.kind, KIND_KERNEL | KIND_INITRD) {
                let aligned = (out.len() as u64).div_ceil(SECTION_ALIGN) * SECTION_ALIGN;
                out.resize(aligned as usize, 0);
            }
            placed[i] = (out.len() as u64, p.data.len() as u64);
            out.extend_from_slice(p.data);
        }
        for (i, p) in parts.iter().enumerate() {
            entries.push(Section { kind: p.kind, format: p.format, offset: placed[i].0, size: placed[i].1, crc: crc32(p.data) });
        }
        let total = out.len() as u64;
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[0x0a..0x0c].copy_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
        out[0x0c..0x0e].copy_from_slice(&(ENTRY_SIZE as u16).to_le_bytes());
        out[0x0e..0x10].copy_from_slice(&(parts.len() as u16).to_le_bytes());
        out[0x10..0x18].copy_from_slice(&total.to_le_bytes());
        for (i, s) in entries.iter().enumerate() {
            let e = HEADER_SIZE + i * ENTRY_SIZE;
            out[e..e + 4].copy_from_slice(&s.kind.to_le_bytes());
            out[e + 4..e + 8].copy_from_slice(&s.format.to_le_bytes());
            out[e + 8..e + 16].copy_from_slice(&s.offset.to_le_bytes());
            out[e + 16..e + 24].copy_from_slice(&s.size.to_le_bytes());
            out[e + 24..e + 28].copy_from_slice(&s.crc.to_le_bytes());
        }
        let crc = crc32_with_hole(&out[..table_end], 0x18);
        out[0x18..0x1c].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::write::{build, Part};
    use super::*;

    fn sample() -> Vec<u8> {
        build(&[
            Part { kind: KIND_KERNEL, format: FORMAT_VMLINUX, data: &[0xaa; 5000] },
            Part { kind: KIND_INITRD, format: 0, data: &[0xbb; 3000] },
            Part { kind: KIND_CMDLINE, format: 0, data: b"console=ttyS0 quiet" },
            Part { kind: KIND_SETUP_HEADER, format: 0, data: &[0xcc; 0x7b] },
            Part { kind: KIND_PVH_ENTRY, format: 0, data: &0x1000850u64.to_le_bytes() },
        ])
    }

    #[test]
    fn pvh_entry_section() {
        assert_eq!(parse(&sample(), Verify::Small).unwrap().pvh_entry, Some(0x1000850));
        let none = build(&[Part { kind: KIND_KERNEL, format: 1, data: b"a" }]);
        assert_eq!(parse(&none, Verify::All).unwrap().pvh_entry, None);
        let short =
            build(&[Part { kind: KIND_KERNEL, format: 1, data: b"a" }, Part { kind: KIND_PVH_ENTRY, format: 0, data: &[1, 2, 3, 4] }]);
        assert_eq!(parse(&short, Verify::All).unwrap_err(), BundleError::BadHeader("the PVH entry section is not 8 bytes"));
        let two = build(&[
            Part { kind: KIND_KERNEL, format: 1, data: b"a" },
            Part { kind: KIND_PVH_ENTRY, format: 0, data: &[0; 8] },
            Part { kind: KIND_PVH_ENTRY, format: 0, data: &[0; 8] },
        ]);
        assert_eq!(parse(&two, Verify::All).unwrap_err(), BundleError::Duplicate(KIND_PVH_ENTRY));
    }

    /// Found by the `bundle` fuzz target: an empty kernel section passed.
    #[test]
    fn empty_kernel_section_is_no_kernel() {
        let b = build(&[Part { kind: KIND_KERNEL, format: FORMAT_VMLINUX, data: &[] }]);
        assert_eq!(parse(&b, Verify::All).unwrap_err(), BundleError::NoKernel);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let p = parse(&b, Verify::All).unwrap();
        assert_eq!(p.kernel, &[0xaa; 5000][..]);
        assert_eq!(p.kernel_format, FORMAT_VMLINUX);
        assert_eq!(p.initrd, Some(&[0xbb; 3000][..]));
        assert_eq!(p.cmdline, "console=ttyS0 quiet");
        assert_eq!(p.setup_header, Some(&[0xcc; 0x7b][..]));
        assert_eq!(p.total_size, b.len() as u64);
        // Big sections are page-aligned within the bundle.
        let k = p.kernel.as_ptr() as usize - b.as_ptr() as usize;
        let i = p.initrd.unwrap().as_ptr() as usize - b.as_ptr() as usize;
        assert_eq!((k % 4096, i % 4096), (0, 0));
        // Extra bytes after the bundle (a module rounded up) are fine.
        let mut longer = b.clone();
        longer.extend_from_slice(&[0; 100]);
        assert!(parse(&longer, Verify::All).is_ok());
    }

    #[test]
    fn refusals() {
        let b = sample();
        assert_eq!(parse(b"HVLBNDL", Verify::All).unwrap_err(), BundleError::NotABundle);
        assert_eq!(parse(&[0u8; 100], Verify::All).unwrap_err(), BundleError::NotABundle);
        assert!(matches!(parse(&b[..b.len() - 1], Verify::All), Err(BundleError::Truncated { .. })));
        assert!(matches!(parse(&b[..40], Verify::All), Err(BundleError::Truncated { .. })));
        let mut v = b.clone();
        v[8] = 2;
        assert_eq!(parse(&v, Verify::All).unwrap_err(), BundleError::UnsupportedVersion(2));
        let mut h = b.clone();
        h[0x40 + 16] ^= 1; // kernel size
        assert!(matches!(parse(&h, Verify::All), Err(BundleError::HeaderCrc { .. })));
        let mut k = b.clone();
        let last = k.len() - 1;
        k[last] ^= 1; // inside the last big section
        assert!(matches!(parse(&k, Verify::All), Err(BundleError::SectionCrc { .. })));
        assert!(parse(&k, Verify::Small).is_ok(), "the boot path skips big sections");
        let no_kernel = build(&[Part { kind: KIND_CMDLINE, format: 0, data: b"x" }]);
        assert_eq!(parse(&no_kernel, Verify::All).unwrap_err(), BundleError::NoKernel);
        let two = build(&[Part { kind: KIND_KERNEL, format: 1, data: b"a" }, Part { kind: KIND_KERNEL, format: 1, data: b"b" }]);
        assert_eq!(parse(&two, Verify::All).unwrap_err(), BundleError::Duplicate(KIND_KERNEL));
        let nul = build(&[Part { kind: KIND_KERNEL, format: 1, data: b"a" }, Part { kind: KIND_CMDLINE, format: 0, data: b"a\0b" }]);
        assert_eq!(parse(&nul, Verify::All).unwrap_err(), BundleError::CmdlineNotText);
        // Unknown kinds are skipped.
        let future = build(&[Part { kind: KIND_KERNEL, format: 1, data: b"a" }, Part { kind: 99, format: 0, data: b"?" }]);
        assert!(parse(&future, Verify::All).is_ok());
    }
}
