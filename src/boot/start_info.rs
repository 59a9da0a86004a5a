//! Stage 2a: `struct hvm_start_info`, validated.
//!
//! Nothing from start_info is trusted: the header is checked (magic,
//! version, counts), every pointer is read through [`PhysMem`] (which refuses
//! what it cannot reach), and once the memory map is known every range
//! start_info names must lie inside it and outside hvmlite's own image.

use core::fmt;

use crate::arch::e820::E820Entry;
use crate::arch::memory::{covered_by_map, PhysMem, Range};
use crate::xen::abi::{HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, HVM_START_INFO_V0_SIZE, HVM_START_MAGIC};

/// Longest command line accepted, including its NUL (one page).
pub const MAX_CMDLINE: usize = 4096;
/// Most modules accepted.
pub const MAX_MODULES: u32 = 64;
/// Most start_info memmap entries accepted.
pub const MAX_MEMMAP_ENTRIES: u32 = 512;
/// Highest start_info version understood. Later versions only append
/// fields, but a loader that cannot see them should say so rather than guess.
pub const MAX_VERSION: u32 = 1;

/// What a handed-over range is, in the boot-memory list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Handover {
    StartInfo = 1,
    Memmap = 2,
    Cmdline = 3,
    Modlist = 4,
    Module = 5,
    ModuleCmdline = 6,
}

impl Handover {
    pub fn name(self) -> &'static str {
        match self {
            Handover::StartInfo => "start_info",
            Handover::Memmap => "memmap",
            Handover::Cmdline => "cmdline",
            Handover::Modlist => "modlist",
            Handover::Module => "module",
            Handover::ModuleCmdline => "module cmdline",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    NullPointer,
    Unreadable { what: Handover, index: u32, addr: u64, len: u64 },
    BadMagic(u32),
    UnsupportedVersion(u32),
    TooManyModules(u32),
    TooManyMemmapEntries(u32),
    NoModlist(u32),
    Wraps { what: Handover, index: u32, addr: u64, len: u64 },
    OutsideMemoryMap { what: Handover, index: u32, range: Range },
    OverlapsImage { what: Handover, index: u32, range: Range, image: Range },
    CmdlineUnterminated { what: Handover, index: u32, max: usize },
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StartInfoError::*;
        let label = |f: &mut fmt::Formatter<'_>, what: Handover, index: u32| match what {
            Handover::Module | Handover::ModuleCmdline => write!(f, "{} {}", what.name(), index),
            _ => write!(f, "{}", what.name()),
        };
        match *self {
            NullPointer => write!(f, "start_info pointer (%ebx) is NULL"),
            Unreadable { what, index, addr, len } => {
                label(f, what, index)?;
                write!(f, " at {addr:#x}+{len:#x} is outside addressable memory")
            }
            BadMagic(m) => write!(f, "bad start_info magic {m:#010x} (expected {HVM_START_MAGIC:#010x})"),
            UnsupportedVersion(v) => write!(f, "unsupported start_info version {v} (supported: 0..={MAX_VERSION})"),
            TooManyModules(n) => write!(f, "start_info has {n} modules (at most {MAX_MODULES} supported)"),
            TooManyMemmapEntries(n) => {
                write!(f, "start_info memmap has {n} entries (at most {MAX_MEMMAP_ENTRIES} supported)")
            }
            NoModlist(n) => write!(f, "start_info has {n} modules but no module list"),
            Wraps { what, index, addr, len } => {
                label(f, what, index)?;
                write!(f, " at {addr:#x}+{len:#x} wraps past 2^64")
            }
            OutsideMemoryMap { what, index, range } => {
                label(f, what, index)?;
                write!(f, " {:#x}-{:#x} lies outside the memory map", range.start, range.end)
            }
            OverlapsImage { what, index, range, image } => {
                label(f, what, index)?;
                write!(f, " {:#x}-{:#x} overlaps hvmlite's image {:#x}-{:#x}", range.start, range.end, image.start, image.end)
            }
            CmdlineUnterminated { what, index, max } => {
                label(f, what, index)?;
                write!(f, " is longer than {} bytes or not NUL-terminated", max - 1)
            }
        }
    }
}

/// The start_info header, checked for magic, version and sane counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    pub paddr: u64,
    pub raw: HvmStartInfo,
}

fn read_struct<M: PhysMem, T: Copy + Default>(mem: &M, addr: u64, what: Handover, index: u32, len: usize) -> Result<T, StartInfoError> {
    let mut v = T::default();
    assert!(len <= core::mem::size_of::<T>());
    // SAFETY: `T` is a plain-old-data `repr(C)` ABI struct (integers only),
    // so any byte pattern is a valid value, and we write at most its size.
    let bytes = unsafe { core::slice::from_raw_parts_mut(&mut v as *mut T as *mut u8, len) };
    Range::sized(addr, len as u64).ok_or(StartInfoError::Wraps { what, index, addr, len: len as u64 })?;
    mem.read(addr, bytes).map_err(|_| StartInfoError::Unreadable { what, index, addr, len: len as u64 })?;
    Ok(v)
}

impl StartInfo {
    /// Read and check the header at `paddr` (what PVH put in `%ebx`).
    pub fn read<M: PhysMem>(mem: &M, paddr: u64) -> Result<Self, StartInfoError> {
        if paddr == 0 {
            return Err(StartInfoError::NullPointer);
        }
        let mut raw: HvmStartInfo = read_struct(mem, paddr, Handover::StartInfo, 0, HVM_START_INFO_V0_SIZE)?;
        if raw.magic != HVM_START_MAGIC {
            return Err(StartInfoError::BadMagic(raw.magic));
        }
        if raw.version > MAX_VERSION {
            return Err(StartInfoError::UnsupportedVersion(raw.version));
        }
        if raw.version >= 1 {
            raw = read_struct(mem, paddr, Handover::StartInfo, 0, core::mem::size_of::<HvmStartInfo>())?;
            if raw.memmap_entries > MAX_MEMMAP_ENTRIES {
                return Err(StartInfoError::TooManyMemmapEntries(raw.memmap_entries));
            }
        }
        if raw.nr_modules > MAX_MODULES {
            return Err(StartInfoError::TooManyModules(raw.nr_modules));
        }
        if raw.nr_modules > 0 && raw.modlist_paddr == 0 {
            return Err(StartInfoError::NoModlist(raw.nr_modules));
        }
        Ok(StartInfo { paddr, raw })
    }

    pub fn size(&self) -> u64 {
        if self.raw.version >= 1 {
            core::mem::size_of::<HvmStartInfo>() as u64
        } else {
            HVM_START_INFO_V0_SIZE as u64
        }
    }

    /// Does start_info carry the memory map itself (version 1 with entries)?
    pub fn has_memmap(&self) -> bool {
        self.raw.version >= 1 && self.raw.memmap_entries > 0 && self.raw.memmap_paddr != 0
    }

    /// Copy the start_info memory map into `out` as e820 entries (types as
    /// given; the sanitiser normalises them). Returns the count.
    pub fn read_memmap<M: PhysMem>(&self, mem: &M, out: &mut [E820Entry]) -> Result<usize, StartInfoError> {
        let n = self.raw.memmap_entries as usize;
        if n > out.len() {
            return Err(StartInfoError::TooManyMemmapEntries(n as u32));
        }
        let esz = core::mem::size_of::<HvmMemmapEntry>() as u64;
        for (i, slot) in out[..n].iter_mut().enumerate() {
            let addr = self.raw.memmap_paddr.checked_add(i as u64 * esz).ok_or(StartInfoError::Wraps {
                what: Handover::Memmap,
                index: 0,
                addr: self.raw.memmap_paddr,
                len: n as u64 * esz,
            })?;
            let e: HvmMemmapEntry = read_struct(mem, addr, Handover::Memmap, 0, esz as usize)?;
            *slot = E820Entry::new(e.addr, e.size, e.type_);
        }
        Ok(n)
    }

    /// Module `i`'s list entry (unvalidated contents).
    fn modlist_entry<M: PhysMem>(&self, mem: &M, i: u32) -> Result<HvmModlistEntry, StartInfoError> {
        let esz = core::mem::size_of::<HvmModlistEntry>() as u64;
        let addr = self.raw.modlist_paddr + i as u64 * esz; // bounded: i < 64, checked below
        Range::sized(self.raw.modlist_paddr, self.raw.nr_modules as u64 * esz).ok_or(StartInfoError::Wraps {
            what: Handover::Modlist,
            index: 0,
            addr: self.raw.modlist_paddr,
            len: self.raw.nr_modules as u64 * esz,
        })?;
        read_struct(mem, addr, Handover::Modlist, 0, esz as usize)
    }

    /// Validate everything start_info points at against the sanitised
    /// memory `map` and hvmlite's `image`, copy the command line into
    /// `cmdline` (without its NUL), and list each handed-over range through
    /// `handed` — the caller reserves them.
    pub fn validate<M: PhysMem>(
        &self,
        mem: &M,
        map: &[E820Entry],
        image: Range,
        memmap_from_start_info: bool,
        cmdline: &mut [u8; MAX_CMDLINE],
        mut handed: impl FnMut(Handover, u32, Range),
    ) -> Result<Validated, StartInfoError> {
        let check = |what: Handover, index: u32, addr: u64, len: u64| -> Result<Range, StartInfoError> {
            let range = Range::sized(addr, len).ok_or(StartInfoError::Wraps { what, index, addr, len })?;
            if !covered_by_map(map, &range) {
                return Err(StartInfoError::OutsideMemoryMap { what, index, range });
            }
            if range.overlaps(&image) {
                return Err(StartInfoError::OverlapsImage { what, index, range, image });
            }
            Ok(range)
        };

        handed(Handover::StartInfo, 0, check(Handover::StartInfo, 0, self.paddr, self.size())?);
        if memmap_from_start_info {
            let len = self.raw.memmap_entries as u64 * core::mem::size_of::<HvmMemmapEntry>() as u64;
            handed(Handover::Memmap, 0, check(Handover::Memmap, 0, self.raw.memmap_paddr, len)?);
        }

        // A string's length is known only once read: read it only as far as
        // the map reaches (past the end of RAM may be MMIO), and check all
        // of it after.
        let read_string = |what: Handover, index: u32, addr: u64, buf: &mut [u8; MAX_CMDLINE]| {
            let room = covered_len(map, addr, MAX_CMDLINE);
            match read_cstr(mem, addr, what, index, &mut buf[..room])? {
                Some(len) => Ok(len),
                None if room == MAX_CMDLINE => Err(StartInfoError::CmdlineUnterminated { what, index, max: MAX_CMDLINE }),
                // The NUL, at best, lies past the end of the map (or of the
                // address space: the last byte is never in a map).
                None => match Range::sized(addr, room as u64 + 1) {
                    Some(range) => Err(StartInfoError::OutsideMemoryMap { what, index, range }),
                    None => Err(StartInfoError::Wraps { what, index, addr, len: room as u64 + 1 }),
                },
            }
        };

        let mut cmdline_len = 0;
        if self.raw.cmdline_paddr != 0 {
            cmdline_len = read_string(Handover::Cmdline, 0, self.raw.cmdline_paddr, cmdline)?;
            handed(Handover::Cmdline, 0, check(Handover::Cmdline, 0, self.raw.cmdline_paddr, cmdline_len as u64 + 1)?);
        }

        let mut initrd = None;
        if self.raw.nr_modules > 0 {
            let len = self.raw.nr_modules as u64 * core::mem::size_of::<HvmModlistEntry>() as u64;
            handed(Handover::Modlist, 0, check(Handover::Modlist, 0, self.raw.modlist_paddr, len)?);
            for i in 0..self.raw.nr_modules {
                let m = self.modlist_entry(mem, i)?;
                let r = check(Handover::Module, i, m.paddr, m.size)?;
                handed(Handover::Module, i, r);
                if i == 0 {
                    initrd = Some(r);
                }
                if m.cmdline_paddr != 0 {
                    let mut scratch = [0u8; MAX_CMDLINE];
                    let n = read_string(Handover::ModuleCmdline, i, m.cmdline_paddr, &mut scratch)?;
                    handed(Handover::ModuleCmdline, i, check(Handover::ModuleCmdline, i, m.cmdline_paddr, n as u64 + 1)?);
                }
            }
        }
        Ok(Validated { cmdline_len, initrd, rsdp: self.raw.rsdp_paddr })
    }
}

/// What [`StartInfo::validate`] established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validated {
    pub cmdline_len: usize,
    pub initrd: Option<Range>,
    pub rsdp: u64,
}

/// How many bytes from `addr` on a sanitised `map` covers without a gap,
/// at most `max`.
fn covered_len(map: &[E820Entry], addr: u64, max: usize) -> usize {
    let mut at = addr;
    for e in map {
        if e.addr <= at && at < e.end() {
            at = e.end();
        }
    }
    (at - addr).min(max as u64) as usize
}

/// Read a NUL-terminated string of at most `buf.len()` bytes including the
/// NUL into `buf`; returns its length without the NUL, or `None` if `buf`
/// holds no NUL.
fn read_cstr<M: PhysMem>(mem: &M, addr: u64, what: Handover, index: u32, buf: &mut [u8]) -> Result<Option<usize>, StartInfoError> {
    // Read in small chunks so a short string near the end of memory is fine.
    const CHUNK: usize = 64;
    let mut at = 0;
    while at < buf.len() {
        let n = CHUNK.min(buf.len() - at);
        let a = addr.checked_add(at as u64).ok_or(StartInfoError::Wraps { what, index, addr, len: at as u64 })?;
        // Byte-wise fallback at the edge of readable memory.
        if mem.read(a, &mut buf[at..at + n]).is_err() {
            for k in 0..n {
                mem.read(a + k as u64, &mut buf[at + k..at + k + 1]).map_err(|_| StartInfoError::Unreadable {
                    what,
                    index,
                    addr,
                    len: (at + k + 1) as u64,
                })?;
                if buf[at + k] == 0 {
                    return Ok(Some(at + k));
                }
            }
        }
        if let Some(p) = buf[at..at + n].iter().position(|&b| b == 0) {
            return Ok(Some(at + p));
        }
        at += n;
    }
    Ok(None)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::arch::e820::{self, E820Entry};
    use crate::arch::memory::test_mem::FakeMem;

    pub const SI: u64 = 0x1000;
    pub const MEMMAP: u64 = 0x1100;
    pub const CMDLINE: u64 = 0x2000;
    pub const MODLIST: u64 = 0x3000;
    pub const MOD0: u64 = 0x400000;
    pub const IMAGE: Range = Range::new(0x100000, 0x200000);

    pub fn as_bytes<T>(v: &T) -> &[u8] {
        // SAFETY: test helper over repr(C) ABI structs.
        unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
    }

    /// A QEMU-like boot: version 1, 3-entry memmap, a cmdline, one module.
    pub fn qemu_like() -> (FakeMem, HvmStartInfo) {
        let mut mem = FakeMem::new(0, 0x500000);
        let si = HvmStartInfo {
            magic: HVM_START_MAGIC,
            version: 1,
            flags: 0,
            nr_modules: 1,
            modlist_paddr: MODLIST,
            cmdline_paddr: CMDLINE,
            rsdp_paddr: 0xf5ab0,
            memmap_paddr: MEMMAP,
            memmap_entries: 3,
            reserved: 0,
        };
        mem.write(SI, as_bytes(&si));
        let mm = [
            HvmMemmapEntry { addr: 0, size: 0x9fc00, type_: 1, reserved: 0 },
            HvmMemmapEntry { addr: 0xf0000, size: 0x10000, type_: 2, reserved: 0 },
            HvmMemmapEntry { addr: 0x100000, size: 0x1ff00000, type_: 1, reserved: 0 },
        ];
        for (i, e) in mm.iter().enumerate() {
            mem.write(MEMMAP + 24 * i as u64, as_bytes(e));
        }
        mem.write(CMDLINE, b"console=hvc0 poweroff\0");
        let m = HvmModlistEntry { paddr: MOD0, size: 0x1234, cmdline_paddr: 0, reserved: 0 };
        mem.write(MODLIST, as_bytes(&m));
        (mem, si)
    }

    pub fn map_of(mem: &FakeMem, si: &StartInfo) -> Vec<E820Entry> {
        let mut raw = vec![E820Entry::default(); 16];
        let n = si.read_memmap(mem, &mut raw).unwrap();
        let mut pts = vec![0; 2 * n];
        let mut out = vec![E820Entry::default(); 2 * n];
        let k = e820::sanitize(&raw[..n], &mut pts, &mut out).unwrap();
        out.truncate(k);
        out
    }

    /// What validation gave: the result, the command line copied, the
    /// ranges named as handed over.
    type Outcome = (Validated, Vec<u8>, Vec<(Handover, u32, Range)>);

    fn validate(mem: &FakeMem, si: &StartInfo) -> Result<Outcome, StartInfoError> {
        let map = map_of(mem, si);
        let mut cmd = [0u8; MAX_CMDLINE];
        let mut handed = vec![];
        let v = si.validate(mem, &map, IMAGE, true, &mut cmd, |w, i, r| handed.push((w, i, r)))?;
        Ok((v, cmd[..v.cmdline_len].to_vec(), handed))
    }

    #[test]
    fn good_start_info_validates() {
        let (mem, _) = qemu_like();
        let si = StartInfo::read(&mem, SI).unwrap();
        assert!(si.has_memmap());
        let (v, cmd, handed) = validate(&mem, &si).unwrap();
        assert_eq!(cmd, b"console=hvc0 poweroff");
        assert_eq!(v.initrd, Some(Range::new(MOD0, MOD0 + 0x1234)));
        assert_eq!(v.rsdp, 0xf5ab0);
        assert_eq!(
            handed,
            vec![
                (Handover::StartInfo, 0, Range::new(SI, SI + 56)),
                (Handover::Memmap, 0, Range::new(MEMMAP, MEMMAP + 72)),
                (Handover::Cmdline, 0, Range::new(CMDLINE, CMDLINE + 22)),
                (Handover::Modlist, 0, Range::new(MODLIST, MODLIST + 32)),
                (Handover::Module, 0, Range::new(MOD0, MOD0 + 0x1234)),
            ]
        );
    }

    #[test]
    fn version_0_has_no_memmap_and_reads_only_40_bytes() {
        let (mut mem, mut si) = qemu_like();
        si.version = 0;
        mem.write(SI, &as_bytes(&si)[..40]);
        // Put the start_info right at the end of readable memory: a v0
        // reader must not touch the 16 bytes after it.
        let at = mem.bytes.len() as u64 - 40;
        mem.write(at, &as_bytes(&si)[..40]);
        let s = StartInfo::read(&mem, at).unwrap();
        assert!(!s.has_memmap());
        assert_eq!(s.size(), 40);
    }

    #[test]
    fn header_errors() {
        let (mut mem, si) = qemu_like();
        assert_eq!(StartInfo::read(&mem, 0), Err(StartInfoError::NullPointer));
        assert!(matches!(StartInfo::read(&mem, 0x10_0000_0000), Err(StartInfoError::Unreadable { .. })));
        let mut bad = si;
        bad.magic = 0xdeadbeef;
        mem.write(SI, as_bytes(&bad));
        assert_eq!(StartInfo::read(&mem, SI), Err(StartInfoError::BadMagic(0xdeadbeef)));
        let mut bad = si;
        bad.version = 7;
        mem.write(SI, as_bytes(&bad));
        assert_eq!(StartInfo::read(&mem, SI), Err(StartInfoError::UnsupportedVersion(7)));
        let mut bad = si;
        bad.memmap_entries = 0x4000_0000;
        mem.write(SI, as_bytes(&bad));
        assert_eq!(StartInfo::read(&mem, SI), Err(StartInfoError::TooManyMemmapEntries(0x4000_0000)));
        let mut bad = si;
        bad.nr_modules = 1000;
        mem.write(SI, as_bytes(&bad));
        assert_eq!(StartInfo::read(&mem, SI), Err(StartInfoError::TooManyModules(1000)));
        let mut bad = si;
        bad.modlist_paddr = 0;
        mem.write(SI, as_bytes(&bad));
        assert_eq!(StartInfo::read(&mem, SI), Err(StartInfoError::NoModlist(1)));
    }

    #[test]
    fn module_overlapping_the_image_is_refused() {
        let (mut mem, _) = qemu_like();
        let m = HvmModlistEntry { paddr: 0x180000, size: 0x1000, cmdline_paddr: 0, reserved: 0 };
        mem.write(MODLIST, as_bytes(&m));
        let si = StartInfo::read(&mem, SI).unwrap();
        let err = validate(&mem, &si).unwrap_err();
        assert_eq!(
            err,
            StartInfoError::OverlapsImage { what: Handover::Module, index: 0, range: Range::new(0x180000, 0x181000), image: IMAGE }
        );
        assert_eq!(err.to_string(), "module 0 0x180000-0x181000 overlaps hvmlite's image 0x100000-0x200000");
    }

    #[test]
    fn module_past_the_end_of_ram_is_refused() {
        let (mut mem, _) = qemu_like();
        let m = HvmModlistEntry { paddr: 0x1fff_f000, size: 0x2000, cmdline_paddr: 0, reserved: 0 };
        mem.write(MODLIST, as_bytes(&m));
        let si = StartInfo::read(&mem, SI).unwrap();
        assert!(matches!(validate(&mem, &si), Err(StartInfoError::OutsideMemoryMap { what: Handover::Module, .. })));
        // A wrapping module.
        let m = HvmModlistEntry { paddr: u64::MAX, size: 2, cmdline_paddr: 0, reserved: 0 };
        mem.write(MODLIST, as_bytes(&m));
        assert!(matches!(validate(&mem, &si), Err(StartInfoError::Wraps { what: Handover::Module, .. })));
    }

    #[test]
    fn strings_are_read_only_as_far_as_the_map_reaches() {
        // Found by fuzz/fuzz_targets/start_info.rs: a command line at the
        // end of the map was read in 64-byte chunks past it (where there
        // may be MMIO) before being refused.
        struct Logged(FakeMem, core::cell::Cell<u64>);
        impl PhysMem for Logged {
            fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), crate::arch::memory::OutOfReach> {
                self.1.set(self.1.get().max(addr + buf.len() as u64));
                self.0.read(addr, buf)
            }
        }
        let (mut mem, _) = qemu_like();
        mem.write(CMDLINE, b"0123456789abcdef\0"); // the NUL just past the map
        let mem = Logged(mem, Default::default());
        let si = StartInfo::read(&mem, SI).unwrap();
        let map = [E820Entry::new(0, CMDLINE + 16, e820::RAM)];
        let mut cmd = [0u8; MAX_CMDLINE];
        let err = si.validate(&mem, &map, IMAGE, true, &mut cmd, |_, _, _| {}).unwrap_err();
        let range = Range::new(CMDLINE, CMDLINE + 17);
        assert_eq!(err, StartInfoError::OutsideMemoryMap { what: Handover::Cmdline, index: 0, range });
        assert!(mem.1.get() <= CMDLINE + 16, "read up to {:#x}", mem.1.get());
    }

    #[test]
    fn a_string_at_the_last_address_wraps() {
        // Found by fuzz/fuzz_targets/start_info.rs: a command line at
        // 2^64 - 1 was refused as outside the map with an empty range
        // (0xffffffffffffffff-0xffffffffffffffff).
        let (mut mem, mut raw) = qemu_like();
        raw.cmdline_paddr = u64::MAX;
        mem.write(SI, as_bytes(&raw));
        let si = StartInfo::read(&mem, SI).unwrap();
        let err = validate(&mem, &si).unwrap_err();
        assert_eq!(err, StartInfoError::Wraps { what: Handover::Cmdline, index: 0, addr: u64::MAX, len: 1 });
        assert_eq!(err.to_string(), "cmdline at 0xffffffffffffffff+0x1 wraps past 2^64");
    }

    #[test]
    fn cmdline_bounds() {
        let (mut mem, _) = qemu_like();
        // Exactly MAX_CMDLINE - 1 characters: accepted.
        let mut long = vec![b'a'; MAX_CMDLINE - 1];
        long.push(0);
        mem.write(CMDLINE, &long);
        let si = StartInfo::read(&mem, SI).unwrap();
        assert_eq!(validate(&mem, &si).unwrap().1.len(), MAX_CMDLINE - 1);
        // One more: refused with a clear message.
        mem.write(CMDLINE, &vec![b'a'; MAX_CMDLINE + 10]);
        let err = validate(&mem, &si).unwrap_err();
        assert_eq!(err.to_string(), "cmdline is longer than 4095 bytes or not NUL-terminated");
        // Running into the end of memory without a NUL: unreadable, not a crash.
        let end = mem.bytes.len() as u64;
        mem.write(end - 3, b"abc");
        let mut raw = si.raw;
        raw.cmdline_paddr = end - 3;
        mem.write(SI, as_bytes(&raw));
        let si = StartInfo::read(&mem, SI).unwrap();
        assert!(matches!(validate(&mem, &si), Err(StartInfoError::Unreadable { what: Handover::Cmdline, .. })));
    }
}
