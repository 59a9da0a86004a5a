//! Stage 4b: the second hand-off — a kernel entered at its own PVH entry
//! (`XEN_ELFNOTE_PHYS32_ENTRY`) the way Xen enters it, with a
//! `struct hvm_start_info` that hvmlite writes (pure; `handoff.s` jumps).
//!
//! Which hand-off ([`choose`]): `hvmlite.handoff=pvh|linux64` on the
//! command line, else the PVH entry when the boot says this is the initial
//! domain (`SIF_INITDOMAIN`: a Linux entered through its 64-bit boot
//! protocol cannot learn that) and the kernel has one, else the 64-bit
//! zero-page path.
//!
//! The start_info page ([`build_start_info`]), version 1,
//! public/arch-x86/hvm/start_info.h:
//!
//! ```text
//! +0     struct hvm_start_info (56 bytes)
//! +64    struct hvm_modlist_entry[1]: the initrd (module 0), if any
//! +128   struct hvm_memmap_table_entry[n]: hvmlite's sanitised map, with
//!        every range the kernel must not reuse (`keep`) marked reserved
//! ```
//!
//! The command line lives in a page of its own (the loader's, shared with
//! the 64-bit path); `flags` are the boot's start_info flags, passed on.

use core::fmt;

use crate::arch::e820::{self, E820Entry};
use crate::arch::memory::Range;
use crate::xen::abi::{HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, HVM_START_MAGIC, SIF_INITDOMAIN};

/// The start_info version hvmlite writes (1: it has the memmap).
pub const START_INFO_VERSION: u32 = 1;
/// Where the module list starts in the start_info page.
pub const MODLIST_OFFSET: usize = 64;
/// Where the memmap starts in the start_info page.
pub const MEMMAP_OFFSET: usize = 128;
/// Most memmap entries handed over: Linux's PVH entry copies the memmap
/// into its zero page's 128-entry table and stops on more
/// (`init_pvh_bootparams`, `E820_MAX_ENTRIES_ZEROPAGE`).
pub const MAX_MEMMAP: usize = 128;
/// Most input entries (map + kept ranges) [`build_start_info`] takes.
pub const MAX_INPUT: usize = 256;

/// How the kernel is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// The Linux 64-bit boot protocol: long mode, `%rsi` = zero page.
    Linux64,
    /// The kernel's PVH entry: 32-bit protected mode, paging off, `%ebx` =
    /// `struct hvm_start_info`.
    Pvh,
}

impl Handoff {
    pub fn name(self) -> &'static str {
        match self {
            Handoff::Linux64 => "linux64",
            Handoff::Pvh => "pvh",
        }
    }
}

/// Why a hand-off cannot be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceError<'a> {
    /// `hvmlite.handoff=` names neither hand-off.
    Unknown(&'a str),
    /// PVH was asked for and the kernel has no PVH entry.
    NoPvhEntry,
    /// PVH was asked for, the kernel has an entry (recorded in the bundle),
    /// but it is a compressed bzImage: the code at the entry does not exist
    /// until the kernel has decompressed itself.
    Compressed(u64),
}

impl fmt::Display for ChoiceError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChoiceError::Unknown(v) => write!(f, "hvmlite.handoff={v}: the hand-offs are pvh and linux64"),
            ChoiceError::NoPvhEntry => {
                write!(f, "hvmlite.handoff=pvh, but the kernel has no PVH entry (no XEN_ELFNOTE_PHYS32_ENTRY note)")
            }
            ChoiceError::Compressed(e) => write!(
                f,
                "hvmlite.handoff=pvh, but the kernel is a compressed bzImage: its PVH entry {e:#x} exists only once it is \
                 decompressed (pack it without --bzimage)"
            ),
        }
    }
}

/// Pick the hand-off. `cmdline` is the boot's command line (its last
/// `hvmlite.handoff=` wins), `start_info_flags` the boot's start_info
/// flags, `entry` the kernel's PVH entry if known, `compressed` whether the
/// kernel is a bzImage (which hvmlite does not decompress). Returns the
/// hand-off and why, in words for the report.
pub fn choose(
    cmdline: &str,
    start_info_flags: u32,
    entry: Option<u64>,
    compressed: bool,
) -> Result<(Handoff, &'static str), ChoiceError<'_>> {
    let asked = cmdline.split_ascii_whitespace().filter_map(|a| a.strip_prefix("hvmlite.handoff=")).next_back();
    let usable = entry.filter(|_| !compressed);
    match asked {
        Some("pvh") => match (entry, compressed) {
            (None, _) => Err(ChoiceError::NoPvhEntry),
            (Some(e), true) => Err(ChoiceError::Compressed(e)),
            (Some(_), false) => Ok((Handoff::Pvh, "asked for")),
        },
        Some("linux64") => Ok((Handoff::Linux64, "asked for")),
        Some(other) => Err(ChoiceError::Unknown(other)),
        None if start_info_flags & SIF_INITDOMAIN == 0 => Ok((Handoff::Linux64, "not the initial domain")),
        None if usable.is_some() => Ok((Handoff::Pvh, "initial domain, and the kernel has a PVH entry")),
        None if entry.is_some() => Ok((Handoff::Linux64, "initial domain, but the kernel is compressed: its PVH entry is out of reach")),
        None => Ok((Handoff::Linux64, "initial domain, but the kernel has no PVH entry")),
    }
}

/// What goes into the start_info page.
#[derive(Clone, Copy, Debug)]
pub struct StartInfoSpec<'a> {
    /// `SIF_*` flags, as the boot's own start_info had them.
    pub flags: u32,
    /// Physical address of the NUL-terminated command line (0: none).
    pub cmdline_paddr: u64,
    /// The RSDP (0: none).
    pub rsdp_paddr: u64,
    /// The initrd, handed over as module 0.
    pub initrd: Option<Range>,
    /// The sanitised memory map.
    pub map: &'a [E820Entry],
    /// Ranges the kernel must not reuse: reported as reserved.
    pub keep: &'a [Range],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// More map entries and kept ranges than [`MAX_INPUT`].
    TooMuchInput(usize),
    /// The map the kernel would get has more than [`MAX_MEMMAP`] entries.
    TooManyEntries(usize),
    /// The map would not sanitise (empty, wrapping).
    Map(e820::E820Error),
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StartInfoError::TooMuchInput(n) => write!(f, "start_info: {n} map entries and kept ranges (at most {MAX_INPUT})"),
            StartInfoError::TooManyEntries(n) => {
                write!(f, "start_info: the memory map would have {n} entries (Linux takes at most {MAX_MEMMAP})")
            }
            StartInfoError::Map(e) => write!(f, "start_info: memory map: {e}"),
        }
    }
}

fn put(page: &mut [u8], at: usize, v: &[u8]) {
    page[at..at + v.len()].copy_from_slice(v);
}

/// The map the kernel gets: `map` with every `keep` range reserved,
/// sanitised (sorted, merged, the more restrictive type winning). Returns
/// how many entries went to `out`.
pub fn kernel_map(map: &[E820Entry], keep: &[Range], out: &mut [E820Entry; MAX_INPUT]) -> Result<usize, StartInfoError> {
    let n = map.len() + keep.len();
    if n > MAX_INPUT {
        return Err(StartInfoError::TooMuchInput(n));
    }
    let mut input = [E820Entry::default(); MAX_INPUT];
    input[..map.len()].copy_from_slice(map);
    for (d, k) in input[map.len()..n].iter_mut().zip(keep) {
        *d = E820Entry::new(k.start, k.len(), e820::RESERVED);
    }
    let mut points = [0u64; e820::scratch_points(MAX_INPUT)];
    e820::sanitize(&input[..n], &mut points, out).map_err(StartInfoError::Map)
}

/// Write the start_info page (`page`, which will lie at `page_paddr`):
/// `struct hvm_start_info` version 1, the module list, the memmap. Returns
/// the number of memmap entries. Nothing is written on error.
pub fn build_start_info(page: &mut [u8; 4096], page_paddr: u64, spec: &StartInfoSpec) -> Result<usize, StartInfoError> {
    let mut map = [E820Entry::default(); MAX_INPUT];
    let n = kernel_map(spec.map, spec.keep, &mut map)?;
    if n > MAX_MEMMAP {
        return Err(StartInfoError::TooManyEntries(n));
    }
    page.fill(0);
    let nr_modules = spec.initrd.is_some() as u32;
    // struct hvm_start_info, at the offsets of the public header.
    put(page, 0, &HVM_START_MAGIC.to_le_bytes());
    put(page, 4, &START_INFO_VERSION.to_le_bytes());
    put(page, 8, &spec.flags.to_le_bytes());
    put(page, 12, &nr_modules.to_le_bytes());
    put(page, 16, &(if nr_modules != 0 { page_paddr + MODLIST_OFFSET as u64 } else { 0 }).to_le_bytes());
    put(page, 24, &spec.cmdline_paddr.to_le_bytes());
    put(page, 32, &spec.rsdp_paddr.to_le_bytes());
    put(page, 40, &(page_paddr + MEMMAP_OFFSET as u64).to_le_bytes());
    put(page, 48, &(n as u32).to_le_bytes());
    // struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved.
    if let Some(r) = spec.initrd {
        put(page, MODLIST_OFFSET, &r.start.to_le_bytes());
        put(page, MODLIST_OFFSET + 8, &r.len().to_le_bytes());
    }
    // struct hvm_memmap_table_entry: addr, size, type, reserved.
    let esize = core::mem::size_of::<HvmMemmapEntry>();
    for (i, e) in map[..n].iter().enumerate() {
        let at = MEMMAP_OFFSET + i * esize;
        put(page, at, &{ e.addr }.to_le_bytes());
        put(page, at + 8, &{ e.size }.to_le_bytes());
        put(page, at + 16, &{ e.type_ }.to_le_bytes());
    }
    const _: () = assert!(core::mem::size_of::<HvmStartInfo>() <= MODLIST_OFFSET);
    const _: () = assert!(MODLIST_OFFSET + core::mem::size_of::<HvmModlistEntry>() <= MEMMAP_OFFSET);
    const _: () = assert!(MEMMAP_OFFSET + MAX_MEMMAP * 24 <= 4096);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::abi::SIF_PRIVILEGED;

    fn u32at(p: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(p[at..at + 4].try_into().unwrap())
    }
    fn u64at(p: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(p[at..at + 8].try_into().unwrap())
    }

    /// QEMU's -m 512 map, as hvmlite sanitised it.
    fn qemu_map() -> [E820Entry; 5] {
        [
            E820Entry::new(0, 0x9fc00, e820::RAM),
            E820Entry::new(0x9fc00, 0x400, e820::RESERVED),
            E820Entry::new(0xf0000, 0x10000, e820::RESERVED),
            E820Entry::new(0x100000, 0x1ff00000, e820::RAM),
            E820Entry::new(0xfeffc000, 0x4000, e820::RESERVED),
        ]
    }

    #[test]
    fn start_info_bytes_at_the_public_header_offsets() {
        let mut page = [0xeeu8; 4096];
        let keep = [Range::new(0x120000, 0x121000), Range::new(0x122000, 0x123000)];
        let initrd = Range::new(0x1e000000, 0x1e123457);
        let map = qemu_map();
        let spec = StartInfoSpec {
            flags: SIF_PRIVILEGED | SIF_INITDOMAIN,
            cmdline_paddr: 0x122000,
            rsdp_paddr: 0xf5a20,
            initrd: Some(initrd),
            map: &map,
            keep: &keep,
        };
        let n = build_start_info(&mut page, 0x120000, &spec).unwrap();
        // struct hvm_start_info (start_info.h): magic, version, flags, nr_modules,
        // modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr, memmap_entries.
        assert_eq!(u32at(&page, 0), 0x336e_c578);
        assert_eq!(u32at(&page, 4), 1);
        assert_eq!(u32at(&page, 8), 3);
        assert_eq!(u32at(&page, 12), 1);
        assert_eq!(u64at(&page, 16), 0x120000 + 64);
        assert_eq!(u64at(&page, 24), 0x122000);
        assert_eq!(u64at(&page, 32), 0xf5a20);
        assert_eq!(u64at(&page, 40), 0x120000 + 128);
        assert_eq!(u32at(&page, 48) as usize, n);
        assert_eq!(u32at(&page, 52), 0);
        // struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved.
        assert_eq!((u64at(&page, 64), u64at(&page, 72), u64at(&page, 80), u64at(&page, 88)), (0x1e000000, 0x123457, 0, 0));
        // struct hvm_memmap_table_entry: addr, size, type, reserved — the
        // map with the kept pages reserved inside the RAM above 1 MiB.
        let got: Vec<(u64, u64, u32, u32)> = (0..n)
            .map(|i| 128 + 24 * i)
            .map(|a| (u64at(&page, a), u64at(&page, a + 8), u32at(&page, a + 16), u32at(&page, a + 20)))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0x9fc00, 1, 0),
                (0x9fc00, 0x400, 2, 0),
                (0xf0000, 0x10000, 2, 0),
                (0x100000, 0x20000, 1, 0),
                (0x120000, 0x1000, 2, 0),
                (0x121000, 0x1000, 1, 0),
                (0x122000, 0x1000, 2, 0),
                (0x123000, 0x1ff00000 - 0x23000, 1, 0),
                (0xfeffc000, 0x4000, 2, 0),
            ]
        );
        // Nothing past the memmap.
        assert!(page[128 + 24 * n..].iter().all(|&b| b == 0));
    }

    #[test]
    fn without_initrd_or_flags() {
        let mut page = [0u8; 4096];
        let map = qemu_map();
        let spec = StartInfoSpec { flags: 0, cmdline_paddr: 0, rsdp_paddr: 0, initrd: None, map: &map, keep: &[] };
        assert_eq!(build_start_info(&mut page, 0x5000, &spec), Ok(5));
        assert_eq!((u32at(&page, 8), u32at(&page, 12), u64at(&page, 16), u64at(&page, 24)), (0, 0, 0, 0));
        assert!(page[64..128].iter().all(|&b| b == 0));
    }

    #[test]
    fn kept_ranges_never_come_out_ram() {
        // Kept ranges across entry boundaries, in holes, touching each other.
        let map = qemu_map();
        let keep = [Range::new(0x9f000, 0x101000), Range::new(0x1fff0000, 0x20200000), Range::new(0x101000, 0x102000)];
        let mut out = [E820Entry::default(); MAX_INPUT];
        let n = kernel_map(&map, &keep, &mut out).unwrap();
        let out = &out[..n];
        for w in out.windows(2) {
            assert!(w[0].end() <= w[1].addr);
        }
        for k in keep {
            for a in (k.start..k.end).step_by(0x1000) {
                assert!(!out.iter().any(|e| e.type_ == e820::RAM && e.addr <= a && a < e.end()), "{a:#x} came out RAM: {out:?}");
            }
        }
        // RAM outside the kept ranges stays RAM.
        assert!(out.iter().any(|e| e.type_ == e820::RAM && e.addr == 0x102000));
    }

    #[test]
    fn too_many_entries_are_refused_and_nothing_is_written() {
        let map: Vec<E820Entry> = (0..130).map(|i| E820Entry::new(i * 0x2000, 0x1000, e820::RAM)).collect();
        let mut page = [0x55u8; 4096];
        let spec = StartInfoSpec { flags: 0, cmdline_paddr: 0, rsdp_paddr: 0, initrd: None, map: &map, keep: &[] };
        assert_eq!(build_start_info(&mut page, 0, &spec), Err(StartInfoError::TooManyEntries(130)));
        assert!(page.iter().all(|&b| b == 0x55));
        let big: Vec<E820Entry> = (0..600).map(|i| E820Entry::new(i * 0x2000, 0x1000, e820::RAM)).collect();
        assert_eq!(kernel_map(&big, &[], &mut [E820Entry::default(); MAX_INPUT]), Err(StartInfoError::TooMuchInput(600)));
    }

    #[test]
    fn choice() {
        let dom0 = SIF_PRIVILEGED | SIF_INITDOMAIN;
        let e = Some(0x1000850);
        assert_eq!(choose("", dom0, e, false).unwrap().0, Handoff::Pvh);
        assert_eq!(choose("", 0, e, false).unwrap().0, Handoff::Linux64);
        assert_eq!(choose("", dom0, None, false).unwrap().0, Handoff::Linux64);
        assert_eq!(choose("", dom0, e, true).unwrap().0, Handoff::Linux64);
        assert_eq!(choose("quiet hvmlite.handoff=pvh", 0, e, false).unwrap(), (Handoff::Pvh, "asked for"));
        assert_eq!(choose("hvmlite.handoff=linux64", dom0, e, false).unwrap(), (Handoff::Linux64, "asked for"));
        assert_eq!(choose("hvmlite.handoff=pvh hvmlite.handoff=linux64", dom0, e, false).unwrap().0, Handoff::Linux64);
        assert_eq!(choose("hvmlite.handoff=pvh", 0, None, false), Err(ChoiceError::NoPvhEntry));
        assert_eq!(choose("hvmlite.handoff=pvh", 0, e, true), Err(ChoiceError::Compressed(0x1000850)));
        assert_eq!(choose("hvmlite.handoff=32", 0, e, false), Err(ChoiceError::Unknown("32")));
        for err in [ChoiceError::NoPvhEntry, ChoiceError::Compressed(1), ChoiceError::Unknown("x")] {
            assert!(!err.to_string().contains('\n'));
        }
    }
}
