//! Partition tables (`disk::part::read_table`): MBR, EBR chains, GPT.
//!
//! Input: a mode byte (bit 0: 4096-byte sectors), the disk's size in
//! sectors (u32 or, with bit 1, a raw u64 up to 2^40), a u16 `head`
//! length, then bytes: the first `head` of them are the disk from sector 0
//! on, the rest its last sectors (where the backup GPT lives); everything
//! else reads as zeros, so a disk can be far larger than the input.
//! Invariants: no panic; the device is never asked for a sector past its
//! end, and at most `MAX_LOGICAL + 8` reads are made (the EBR chain is
//! bounded); an accepted table's partitions lie on the disk, are not empty,
//! have distinct numbers, overlap neither each other nor sector 0 (MBR and
//! GPT), and each opens as a `Partition` whose first and last sectors read;
//! a whole-disk table is exactly one partition, the disk; errors print as
//! one line.
#![no_main]

use std::collections::BTreeMap;

use hvmlite::dev::block::{check_request, BlockDevice, BlockError};
use hvmlite::disk::part::{read_table, PartitionKind, TableKind, MAX_LOGICAL};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// A disk of `sectors` sectors that holds `chunks` (sector → bytes) and
/// zeros elsewhere. Any request past the end is a finding: the code under
/// test must check before it asks.
struct SparseDisk {
    ss: u32,
    sectors: u64,
    chunks: BTreeMap<u64, Vec<u8>>,
    reads: usize,
}

impl BlockDevice for SparseDisk {
    fn sector_size(&self) -> u32 {
        self.ss
    }
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.reads += 1;
        let count = check_request(self.ss, self.sectors, sector, buf.len()).unwrap_or_else(|e| panic!("read past the device: {e}"));
        let ss = self.ss as usize;
        for i in 0..count as usize {
            let out = &mut buf[i * ss..(i + 1) * ss];
            match self.chunks.get(&(sector + i as u64)) {
                Some(d) => out.copy_from_slice(d),
                None => out.fill(0),
            }
        }
        Ok(())
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), BlockError> {
        Err(BlockError::ReadOnly)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let ss: u32 = if mode & 1 == 1 { 4096 } else { 512 };
    let sectors = if mode & 2 == 2 { b.u64() % (1 << 40) } else { u64::from(b.u32()) };
    let head = b.u16() as usize;
    let head_bytes = b.take(head);
    let tail_bytes = b.rest();
    let mut chunks = BTreeMap::new();
    let mut place = |first: u64, bytes: &[u8]| {
        for (i, c) in bytes.chunks(ss as usize).enumerate() {
            let lba = first + i as u64;
            if lba < sectors {
                let mut s = vec![0u8; ss as usize];
                s[..c.len()].copy_from_slice(c);
                chunks.insert(lba, s);
            }
        }
    };
    place(0, head_bytes);
    let tail_sectors = tail_bytes.len().div_ceil(ss as usize) as u64;
    place(sectors.saturating_sub(tail_sectors), tail_bytes);
    let mut disk = SparseDisk { ss, sectors, chunks, reads: 0 };

    let table = match read_table(&mut disk) {
        Ok(t) => t,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{e:?} -> {msg:?}");
            assert!(disk.reads <= MAX_LOGICAL + 8, "{} reads", disk.reads);
            return;
        }
    };
    assert!(disk.reads <= MAX_LOGICAL + 8, "{} reads", disk.reads);
    assert_eq!((table.sector_size, table.disk_sectors), (ss, sectors));
    let parts = &table.partitions;
    if table.kind == TableKind::Whole {
        if sectors > 0 {
            assert_eq!(parts.len(), 1);
            assert_eq!((parts[0].start, parts[0].sectors, &parts[0].kind), (0, sectors, &PartitionKind::Whole));
        } else {
            assert!(parts.is_empty());
        }
    }
    for (i, p) in parts.iter().enumerate() {
        assert!(p.sectors > 0, "{p:?}");
        let end = p.start.checked_add(p.sectors).expect("partition end wraps");
        assert!(end <= sectors, "{p:?} past the {sectors}-sector disk");
        if table.kind != TableKind::Whole {
            assert!(p.start >= 1, "{p:?} covers the MBR");
            assert!(p.number >= 1);
        }
        for q in &parts[i + 1..] {
            assert_ne!(p.number, q.number);
            assert!(end <= q.start || q.start + q.sectors <= p.start, "{p:?} overlaps {q:?}");
        }
    }
    for p in parts {
        let mut part = p.open(&mut disk).expect("an accepted partition opens");
        let mut sector = vec![0u8; ss as usize];
        part.read(0, &mut sector).unwrap();
        part.read(p.sectors - 1, &mut sector).unwrap();
        assert!(part.read(p.sectors, &mut sector).is_err());
    }
});
