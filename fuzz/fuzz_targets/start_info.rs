//! start_info as one memory image, through the whole of stage 2's checks:
//! `StartInfo::read`, `read_memmap`, `e820::sanitize`, `validate`, and the
//! heap search over what was handed over.
//!
//! Input: a 16-byte control block, then the memory image, readable at
//! physical address 0 (nothing else is). The control block:
//!   u32 start_info paddr, u32 hvmlite image start, u32 image length,
//!   u32 end of the RAM the "hypercall" map reports when start_info has
//!   no memmap (as Xen's dom0 path does).
//! Every pointer in start_info is an absolute address, so the seeds in
//! fuzz/corpus/start_info lay out QEMU's and Xen's start_info this way.
#![no_main]

use hvmlite::arch::e820::{self, E820Entry};
use hvmlite::arch::memory::{largest_free, Range};
use hvmlite::boot::start_info::{Handover, StartInfo, StartInfoError, MAX_CMDLINE, MAX_MEMMAP_ENTRIES, MAX_MODULES, MAX_VERSION};
use hvmlite::xen::abi::{HVM_START_INFO_V0_SIZE, HVM_START_MAGIC};
use hvmlite_fuzz::{check_largest_free, check_sanitize_result, Bytes, FakeMem};
use libfuzzer_sys::fuzz_target;

/// Is `r` covered by the sanitised `map` (restated, not `covered_by_map`)?
fn in_map(map: &[E820Entry], r: Range) -> bool {
    if r.is_empty() {
        return true;
    }
    let mut at = r.start;
    for e in map {
        if e.addr <= at && at < e.end() {
            at = e.end();
        }
    }
    at >= r.end
}

fn one_line(e: &StartInfoError) {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'), "not one line: {s:?}");
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// The error must be true of the memory it names.
fn check_error(mem: &FakeMem, map: Option<&[E820Entry]>, image: Range, e: &StartInfoError) {
    one_line(e);
    match *e {
        StartInfoError::Unreadable { addr, len, .. } => assert!(!mem.readable(addr, len), "{e:?} is readable"),
        StartInfoError::Wraps { addr, len, .. } => assert!(addr.checked_add(len).is_none(), "{e:?} does not wrap"),
        StartInfoError::OutsideMemoryMap { range, .. } => {
            assert!(!in_map(map.expect("OutsideMemoryMap before the map exists"), range), "{e:?} is in the map")
        }
        StartInfoError::OverlapsImage { range, image: i, .. } => {
            assert_eq!(i, image);
            assert!(range.overlaps(&image), "{e:?} does not overlap")
        }
        StartInfoError::CmdlineUnterminated { max, .. } => assert_eq!(max, MAX_CMDLINE),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let si_paddr = b.u32() as u64;
    let image = Range::sized(b.u32() as u64, b.u32() as u64 & 0xf_ffff).unwrap();
    let hyper_ram_end = b.u32() as u64;
    let mem = FakeMem::new(0, b.rest().to_vec());

    // 1. The header.
    let si = match StartInfo::read(&mem, si_paddr) {
        Ok(si) => si,
        Err(e) => {
            check_error(&mem, None, image, &e);
            match e {
                StartInfoError::NullPointer => assert_eq!(si_paddr, 0),
                StartInfoError::BadMagic(m) => assert_eq!(m, le32(&mem.bytes, si_paddr as usize)),
                StartInfoError::UnsupportedVersion(v) => assert!(v > MAX_VERSION),
                StartInfoError::TooManyModules(n) => assert!(n > MAX_MODULES),
                StartInfoError::TooManyMemmapEntries(n) => assert!(n > MAX_MEMMAP_ENTRIES),
                StartInfoError::NoModlist(n) => assert!(n > 0),
                StartInfoError::Unreadable { .. } => {}
                other => panic!("header read gave {other:?}"),
            }
            return;
        }
    };
    let raw = si.raw;
    let hdr = mem.slice(Range::sized(si_paddr, si.size()).unwrap());
    assert_eq!(raw.magic, HVM_START_MAGIC);
    assert!(raw.version <= MAX_VERSION && raw.nr_modules <= MAX_MODULES);
    assert_eq!(si.size(), if raw.version == 0 { HVM_START_INFO_V0_SIZE as u64 } else { 56 });
    assert_eq!((raw.nr_modules, raw.modlist_paddr, raw.cmdline_paddr), (le32(hdr, 12), le64(hdr, 16), le64(hdr, 24)));
    if raw.version >= 1 {
        assert!(raw.memmap_entries <= MAX_MEMMAP_ENTRIES);
        assert_eq!((raw.memmap_paddr, raw.memmap_entries), (le64(hdr, 40), le32(hdr, 48)));
    }

    // 2. The memory map: start_info's, or the one a hypercall would give.
    let mut rawmap = vec![E820Entry::default(); MAX_MEMMAP_ENTRIES as usize];
    let from_si = si.has_memmap();
    let n = if from_si {
        match si.read_memmap(&mem, &mut rawmap) {
            Ok(n) => {
                assert_eq!(n, raw.memmap_entries as usize);
                for (i, e) in rawmap[..n].iter().enumerate() {
                    let at = (raw.memmap_paddr + 24 * i as u64) as usize;
                    let (a, s, t) = (e.addr, e.size, e.type_);
                    assert_eq!((a, s, t), (le64(&mem.bytes, at), le64(&mem.bytes, at + 8), le32(&mem.bytes, at + 16)));
                }
                n
            }
            Err(e) => {
                check_error(&mem, None, image, &e);
                assert!(
                    matches!(
                        e,
                        StartInfoError::Unreadable { what: Handover::Memmap, .. } | StartInfoError::Wraps { what: Handover::Memmap, .. }
                    ),
                    "{e:?}"
                );
                return;
            }
        }
    } else {
        rawmap[0] = E820Entry::new(0, 0x9fc00, e820::RAM);
        rawmap[1] = E820Entry::new(0xf0000, 0x10000, e820::RESERVED);
        rawmap[2] = E820Entry::new(0x100000, hyper_ram_end, e820::RAM);
        3
    };
    let input = &rawmap[..n];
    let mut pts = vec![0; 2 * n];
    let mut out = vec![E820Entry::default(); 2 * n];
    let got = e820::sanitize(input, &mut pts, &mut out);
    check_sanitize_result(input, pts.len(), out.len(), got.map(|k| &out[..k]));
    let Ok(k) = got else { return };
    let map = &out[..k];

    // 3. Everything start_info points at. Once the map is known, nothing
    //    outside it is read: past the end of RAM may be MMIO.
    let mut cmdline = [0u8; MAX_CMDLINE];
    let mut handed: Vec<(Handover, u32, Range)> = vec![];
    mem.reads.borrow_mut().clear();
    let res = si.validate(&mem, map, image, from_si, &mut cmdline, |w, i, r| handed.push((w, i, r)));
    for r in mem.reads.borrow().iter() {
        assert!(in_map(map, *r), "validate read {r:?}, outside the map {map:?} ({res:?})");
    }
    let v = match res {
        Ok(v) => v,
        Err(e) => {
            check_error(&mem, Some(map), image, &e);
            return;
        }
    };

    // Every handed-over range exists in the map, misses hvmlite, and what
    // was read lies inside readable memory.
    for &(what, i, r) in &handed {
        assert!(in_map(map, r), "{what:?} {i} {r:?} outside the map");
        assert!(!r.overlaps(&image), "{what:?} {i} {r:?} overlaps the image {image:?}");
        if what != Handover::Module {
            assert!(mem.range().contains(&r), "{what:?} {i} {r:?} was read but is outside memory");
        }
    }
    // ...and the list is exactly what start_info names, in order.
    let mut want = vec![(Handover::StartInfo, 0, Range::sized(si_paddr, si.size()).unwrap())];
    if from_si {
        want.push((Handover::Memmap, 0, Range::sized(raw.memmap_paddr, 24 * raw.memmap_entries as u64).unwrap()));
    }
    if raw.cmdline_paddr != 0 {
        let r = Range::sized(raw.cmdline_paddr, v.cmdline_len as u64 + 1).unwrap();
        let s = mem.slice(r);
        assert_eq!(s.last(), Some(&0));
        assert!(!s[..v.cmdline_len].contains(&0));
        assert_eq!(&cmdline[..v.cmdline_len], &s[..v.cmdline_len]);
        want.push((Handover::Cmdline, 0, r));
    } else {
        assert_eq!(v.cmdline_len, 0);
    }
    if raw.nr_modules > 0 {
        want.push((Handover::Modlist, 0, Range::sized(raw.modlist_paddr, 32 * raw.nr_modules as u64).unwrap()));
        for i in 0..raw.nr_modules {
            let e = (raw.modlist_paddr + 32 * i as u64) as usize;
            let (addr, size, cmd) = (le64(&mem.bytes, e), le64(&mem.bytes, e + 8), le64(&mem.bytes, e + 16));
            want.push((Handover::Module, i, Range::sized(addr, size).unwrap()));
            if i == 0 {
                assert_eq!(v.initrd, Range::sized(addr, size));
            }
            if cmd != 0 {
                let len = mem.bytes[cmd as usize..].iter().position(|&c| c == 0).unwrap();
                want.push((Handover::ModuleCmdline, i, Range::sized(cmd, len as u64 + 1).unwrap()));
            }
        }
    } else {
        assert_eq!(v.initrd, None);
    }
    assert_eq!(handed, want);
    assert_eq!(v.rsdp, raw.rsdp_paddr);

    // 4. The heap search as startup_64 runs it: above 1 MiB, below 4 GiB,
    //    clear of hvmlite and of everything handed over.
    let mut reserved: Vec<Range> = handed.iter().map(|h| h.2).collect();
    reserved.push(image);
    let heap = largest_free(map, &reserved, 1 << 20, 4 << 30);
    check_largest_free(map, &reserved, 1 << 20, 4 << 30, heap, None);
});
