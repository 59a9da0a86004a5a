//! The zero page: built from a fuzzer-chosen spec and read back, or read
//! back from fuzzer-chosen bytes.
//!
//! Mode byte even — build: a spec (e820 map of up to 400 entries, so past
//! the 128 the zero page holds; boot-memory list; command line; initrd;
//! RSDP; hypervisor record) and a setup_data area of fuzzer-chosen size and
//! address. `zero_page::build` must write nothing past the nodes it reports
//! (a canary fills the rest) or fail with `SetupAreaFull` having written
//! nothing; `read_e820`, `read_hvinfo`, `for_each_bootmem` and
//! `for_each_setup_data` must give the spec back exactly.
//!
//! Mode byte odd — read: a zero page and one memory region of raw bytes;
//! the readers must end (bounded reads) with a value or a typed error.
#![no_main]

use std::cell::Cell;

use hvmlite::arch::e820::E820Entry;
use hvmlite::arch::hypervisor::{Detected, Hypervisor};
use hvmlite::arch::memory::{PhysMem, Range};
use hvmlite::boot::hvinfo::{HvInfo, SETUP_BOOTMEM, SETUP_HVINFO};
use hvmlite::boot::zero_page::{
    self, BootMemEntry, BootParams, ZeroPageError, ZeroPageSpec, E820_MAX_ENTRIES_ZEROPAGE, MAX_SETUP_NODES, SETUP_E820_EXT,
};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// Memory made of separate regions; a read must lie inside one of them.
/// Counts reads, so a reader that loops on garbage shows up.
struct Regions {
    regions: Vec<(u64, Vec<u8>)>,
    reads: Cell<u64>,
}

impl PhysMem for Regions {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), hvmlite::arch::memory::OutOfReach> {
        self.reads.set(self.reads.get() + 1);
        for (base, bytes) in &self.regions {
            let Some(off) = addr.checked_sub(*base) else { continue };
            let Some(end) = off.checked_add(buf.len() as u64) else { continue };
            if end <= bytes.len() as u64 {
                buf.copy_from_slice(&bytes[off as usize..end as usize]);
                return Ok(());
            }
        }
        Err(hvmlite::arch::memory::OutOfReach)
    }
}

const ZP: u64 = 0x7000;
const CANARY: u8 = 0xa5;

fn build_and_read_back(b: &mut Bytes) {
    let ne820 = b.u16() as usize % 400;
    let e820: Vec<E820Entry> = (0..ne820).map(|_| E820Entry::new(b.u64(), b.u64(), b.u32())).collect();
    let nboot = b.u8() as usize % 140;
    let bootmem: Vec<BootMemEntry> =
        (0..nboot).map(|_| BootMemEntry { addr: b.u64(), size: b.u64(), kind: b.u32(), index: b.u32() }).collect();
    let cmdline_paddr = b.u64();
    let cmdline_size = b.u32();
    let initrd = (b.u8() & 1 == 1).then(|| Range::new(b.u64(), b.u64()));
    let rsdp = b.u64();
    let mut signature = [0u8; 12];
    signature.copy_from_slice(&b.take(12).iter().copied().chain([0; 12]).take(12).collect::<Vec<_>>());
    let d = Detected { kind: Hypervisor::from_u32(b.u8() as u32), base: b.u32(), max_leaf: b.u32(), signature };
    let hvinfo = HvInfo::new(&d, b.u64(), b.u32(), b.u32(), b.u32());
    let setup_len = b.u16() as usize;
    // Anywhere 8-byte aligned, not 0 (which ends the list) and clear of
    // the zero page.
    let mut setup_paddr = (b.u64() >> 1) & !7;
    if setup_paddr == 0 || Range::sized(setup_paddr, setup_len as u64 + 16).unwrap().overlaps(&Range::new(ZP, ZP + 4096)) {
        setup_paddr = ZP + 4096;
    }
    let spec = ZeroPageSpec { e820: &e820, cmdline_paddr, cmdline_size, initrd, rsdp, hvinfo, bootmem: &bootmem };

    let mut zp = BootParams::zeroed();
    let mut setup = vec![CANARY; setup_len];
    let align8 = |x: usize| (x + 7) & !7;
    let ext = ne820.saturating_sub(E820_MAX_ENTRIES_ZEROPAGE);
    let need = align8(16 + 64) + align8(16 + 24 * nboot) + if ext > 0 { align8(16 + 20 * ext) } else { 0 };
    match zero_page::build(&mut zp, &mut setup, setup_paddr, &spec) {
        Err(ZeroPageError::SetupAreaFull { need: n, have }) => {
            assert_eq!((n, have), (need, setup_len));
            assert!(need > setup_len);
            assert!(setup.iter().all(|&c| c == CANARY), "a failed build wrote into the setup area");
            return;
        }
        Err(e) => panic!("build failed with {e:?}"),
        Ok(()) => {}
    }
    assert!(need <= setup_len);
    assert!(setup[need..].iter().all(|&c| c == CANARY), "build wrote past the {need} bytes of its nodes");

    // The header fields, as the boot protocol places them.
    assert_eq!(zp.e820_entries as usize, ne820.min(E820_MAX_ENTRIES_ZEROPAGE));
    assert_eq!(zp.sentinel, 0);
    assert_eq!({ zp.acpi_rsdp_addr }, rsdp);
    let h = zp.hdr;
    assert_eq!(({ h.boot_flag }, { h.header }, { h.version }, h.type_of_loader, h.loadflags), (0xaa55, 0x5372_6448, 0x020f, 0x90, 1));
    assert_eq!({ h.hardware_subarch }, if d.kind == Hypervisor::Xen { 2 } else { 0 });
    assert_eq!({ h.hardware_subarch_data }, setup_paddr + 16);
    assert_eq!({ h.setup_data }, setup_paddr);
    assert_eq!(zp.cmd_line_ptr(), cmdline_paddr);
    assert_eq!({ h.cmdline_size }, if cmdline_paddr != 0 { cmdline_size } else { 0 });
    assert_eq!(zp.initrd(), initrd.filter(|r| !r.is_empty()));

    // Read everything back through memory holding the zero page and nodes.
    let mem = Regions { regions: vec![(ZP, zp.as_bytes().to_vec()), (setup_paddr, setup[..need].to_vec())], reads: Cell::new(0) };
    let mut nodes = vec![];
    zero_page::for_each_setup_data(&mem, setup_paddr, |n| nodes.push(n)).unwrap();
    let types: Vec<u32> = nodes.iter().map(|n| n.type_).collect();
    let mut want = vec![SETUP_HVINFO, SETUP_BOOTMEM];
    if ext > 0 {
        want.push(SETUP_E820_EXT);
    }
    assert_eq!(types, want);
    for n in &nodes {
        assert!(n.paddr % 8 == 0 && Range::sized(setup_paddr, need as u64).unwrap().contains(&n.range()), "{n:?} outside the area");
    }
    assert_eq!(zero_page::read_hvinfo(&mem, &zp), Some(hvinfo));
    let mut back = vec![];
    zero_page::for_each_bootmem(&mem, &zp, |e| back.push(e)).unwrap();
    assert_eq!(back, bootmem);
    let mut out = vec![E820Entry::default(); 400];
    let n = zero_page::read_e820(&mem, &zp, &mut out).unwrap();
    assert_eq!(&out[..n], &e820[..]);
    if ne820 > 0 {
        let mut short = vec![E820Entry::default(); ne820 - 1];
        assert!(matches!(zero_page::read_e820(&mem, &zp, &mut short), Err(ZeroPageError::Corrupt(_))));
    }
}

fn read_garbage(b: &mut Bytes) {
    let zp_bytes: Vec<u8> = b.take(4096).iter().copied().chain(std::iter::repeat(0)).take(4096).collect();
    let zp = BootParams::from_bytes(zp_bytes.as_slice().try_into().unwrap());
    let base = b.u32() as u64;
    let bytes = b.rest().to_vec();
    let len = bytes.len() as u64;
    let mem = Regions { regions: vec![(base, bytes)], reads: Cell::new(0) };
    // A bound on what honest readers need: every node visited once per
    // allowed step, and each readable entry of it read once.
    let per_node = len / 20 + 1;
    let bound = 3 * MAX_SETUP_NODES as u64 * (1 + 4 * per_node) + 16;

    let mut nodes = 0;
    let head = zp.hdr.setup_data;
    let walk = zero_page::for_each_setup_data(&mem, head, |_| nodes += 1);
    assert!(nodes <= MAX_SETUP_NODES);
    if let Err(e) = walk {
        assert!(!e.to_string().contains('\n'));
    }

    mem.reads.set(0);
    let mut out = vec![E820Entry::default(); 600];
    if let Ok(n) = zero_page::read_e820(&mem, &zp, &mut out) {
        assert!(n <= out.len());
        let k = (zp.e820_entries as usize).min(E820_MAX_ENTRIES_ZEROPAGE);
        assert_eq!(&out[..k], &zp.e820_table[..k]);
    }
    assert!(mem.reads.get() <= bound, "read_e820 read {} times", mem.reads.get());

    mem.reads.set(0);
    let _ = zero_page::read_hvinfo(&mem, &zp);
    assert!(mem.reads.get() <= 1);

    mem.reads.set(0);
    let mut entries = 0u64;
    let _ = zero_page::for_each_bootmem(&mem, &zp, |_| entries += 1);
    assert!(mem.reads.get() <= bound, "for_each_bootmem read {} times for {len} bytes of memory", mem.reads.get());
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    if b.u8() & 1 == 0 {
        build_and_read_back(&mut b);
    } else {
        read_garbage(&mut b);
    }
});
