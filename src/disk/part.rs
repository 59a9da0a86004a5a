//! Partition tables: MBR (four primaries, and logical partitions in an
//! extended partition's EBR chain), GPT behind a protective MBR, and a disk
//! with no table at all that holds one filesystem whole.
//!
//! Everything here comes from the disk, so everything is checked before it
//! is believed: every partition returned lies on the disk, inside the
//! header's usable range (GPT) or its extended partition (logicals), covers
//! no table sector and overlaps no other partition. A table that breaks one
//! of these is refused as a whole, with an error naming the partition and
//! the rule, rather than trimmed: a loader that boots "partition 2" must not
//! guess which of two overlapping ranges was meant. The EBR chain is walked
//! at most [`MAX_LOGICAL`] links and a link back to an EBR already read is
//! [`PartError::EbrLoop`]; the GPT entry array is read only if it is at most
//! [`MAX_GPT_ARRAY_BYTES`]. Every read goes through the [`BlockDevice`]
//! bounds checks, so a wild LBA is an error, never a read elsewhere.
//!
//! Partition numbers are Linux's: MBR primaries 1–4 by slot, logicals from
//! 5 in chain order, GPT entry index + 1.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use gpt_disk_types::crc::Crc;
use gpt_disk_types::{
    BlockSize, Crc32, GptHeader, GptHeaderRevision, GptHeaderSignature, GptPartitionAttributes, GptPartitionEntry, GptPartitionEntryArray,
    GptPartitionName, GptPartitionType, Guid, LbaLe, U32Le, U64Le,
};

use crate::dev::block::{check_request, valid_sector_size, BlockDevice, BlockError, Partition};
use crate::disk::le32;

/// The most logical partitions an EBR chain may hold (Linux stops at a
/// few more; no real disk comes near).
pub const MAX_LOGICAL: usize = 128;

/// The largest GPT entry array read: 8192 entries of 128 bytes. The spec's
/// minimum (and every tool's default) is 16 KiB; this bounds the memory a
/// forged header can ask for.
pub const MAX_GPT_ARRAY_BYTES: u64 = 1 << 20;

/// The GPT header's size as written by every tool (UEFI: at least this,
/// at most a sector; the CRC covers `header_size` bytes).
const GPT_HEADER_MIN: u32 = 92;

/// MBR partition types of an extended partition (CHS, LBA, Linux).
const EXTENDED_TYPES: [u8; 3] = [0x05, 0x0f, 0x85];
/// The protective MBR's type: the disk is GPT.
const GPT_PROTECTIVE: u8 = 0xee;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// No table: the whole disk is one filesystem.
    Whole,
    Mbr,
    Gpt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// The whole disk (no table).
    Whole,
    Mbr {
        os_type: u8,
        bootable: bool,
        logical: bool,
    },
    Gpt {
        type_guid: Guid,
        unique_guid: Guid,
        attributes: u64,
        name: String,
    },
}

/// One partition: `sectors` device sectors from `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Linux's number (see the module doc); 0 for the whole disk.
    pub number: u32,
    pub start: u64,
    pub sectors: u64,
    pub kind: PartitionKind,
}

impl PartitionInfo {
    /// One past the last sector (checked not to overflow when read).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.sectors)
    }

    /// This partition of `dev` as a device of its own.
    pub fn open<D: BlockDevice>(&self, dev: D) -> Result<Partition<D>, BlockError> {
        Partition::new(dev, self.start, self.sectors)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTable {
    pub kind: TableKind,
    pub sector_size: u32,
    pub disk_sectors: u64,
    /// Data partitions (not the extended container), in number order.
    pub partitions: Vec<PartitionInfo>,
    /// GPT only: why the primary header was not used when the backup was.
    pub primary_gpt_error: Option<GptError>,
}

impl PartitionTable {
    pub fn get(&self, number: u32) -> Option<&PartitionInfo> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

/// What is wrong with a GPT header or its entry array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptError {
    /// The header's sector could not be read.
    Device(BlockError),
    /// No "EFI PART" signature.
    Signature,
    /// `header_size` below 92 or above the sector size.
    HeaderSize(u32),
    HeaderCrc {
        stored: u32,
        computed: u32,
    },
    /// The header does not say it is where it was read.
    MyLba {
        expected: u64,
        found: u64,
    },
    /// The usable range is empty, reversed or past the disk's end.
    UsableRange {
        first: u64,
        last: u64,
    },
    /// An entry size that is not 128 × 2ⁿ.
    EntrySize(u32),
    /// The entry array is larger than [`MAX_GPT_ARRAY_BYTES`], reaches past
    /// the disk or into the usable range.
    EntryArray {
        lba: u64,
        entries: u32,
        entry_size: u32,
    },
    EntriesCrc {
        stored: u32,
        computed: u32,
    },
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GptError::Device(e) => write!(f, "unreadable: {e}"),
            GptError::Signature => f.write_str("no GPT signature"),
            GptError::HeaderSize(n) => write!(f, "header size {n} outside 92..=sector size"),
            GptError::HeaderCrc { stored, computed } => {
                write!(f, "bad header CRC (stored {stored:#010x}, computed {computed:#010x})")
            }
            GptError::MyLba { expected, found } => write!(f, "header at LBA {expected} says it is at LBA {found}"),
            GptError::UsableRange { first, last } => write!(f, "usable range {first}..={last} is empty or off the disk"),
            GptError::EntrySize(n) => write!(f, "entry size {n} is not 128 x 2^n"),
            GptError::EntryArray { lba, entries, entry_size } => {
                write!(f, "entry array of {entries} x {entry_size} bytes at LBA {lba} is too large, off the disk or in the usable range")
            }
            GptError::EntriesCrc { stored, computed } => {
                write!(f, "bad entry array CRC (stored {stored:#010x}, computed {computed:#010x})")
            }
        }
    }
}

/// Why a disk's partition table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartError {
    /// Reading the table failed (sector 0, an EBR, a GPT entry array).
    Device(BlockError),
    /// The device's sector size is not one the block layer handles.
    SectorSize(u32),
    /// Partition `number` reaches past the last sector.
    PastEnd { number: u32, start: u64, sectors: u64, disk_sectors: u64 },
    /// Partitions `a` and `b` share sectors.
    Overlap { a: u32, b: u32 },
    /// Partition `number` covers a table sector (the MBR or an EBR).
    CoversTable { number: u32, sector: u64 },
    /// An EBR, or logical partition `number` (0 for the EBR itself), lies
    /// outside the extended partition.
    OutsideExtended { number: u32, sector: u64 },
    /// The EBR chain links back to the EBR at `sector`.
    EbrLoop { sector: u64 },
    /// The EBR chain goes on past [`MAX_LOGICAL`] links.
    TooManyLogical,
    /// The EBR at `sector` has no 0x55aa signature.
    BadEbr { sector: u64 },
    /// The MBR holds more than one extended partition.
    TwoExtended,
    /// A GPT entry ends before it starts.
    Reversed { number: u32, start: u64, end: u64 },
    /// A GPT entry lies outside the header's usable range.
    OutsideUsable { number: u32, first_usable: u64, last_usable: u64 },
    /// A protective MBR, but neither GPT header is valid.
    Gpt { primary: GptError, backup: GptError },
}

impl From<BlockError> for PartError {
    fn from(e: BlockError) -> Self {
        PartError::Device(e)
    }
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PartError::Device(e) => write!(f, "reading the partition table: {e}"),
            PartError::SectorSize(s) => write!(f, "sector size {s} is not supported"),
            PartError::PastEnd { number, start, sectors, disk_sectors } => {
                write!(f, "partition {number} ({sectors} sectors at {start}) reaches past the end of the {disk_sectors}-sector disk")
            }
            PartError::Overlap { a, b } => write!(f, "partitions {a} and {b} overlap"),
            PartError::CoversTable { number, sector } => {
                write!(f, "partition {number} covers the partition table at sector {sector}")
            }
            PartError::OutsideExtended { number: 0, sector } => {
                write!(f, "the EBR at sector {sector} lies outside the extended partition")
            }
            PartError::OutsideExtended { number, sector } => {
                write!(f, "logical partition {number} at sector {sector} lies outside the extended partition")
            }
            PartError::EbrLoop { sector } => write!(f, "the EBR chain loops back to sector {sector}"),
            PartError::TooManyLogical => write!(f, "the EBR chain is longer than {MAX_LOGICAL} links"),
            PartError::BadEbr { sector } => write!(f, "the EBR at sector {sector} has no boot signature"),
            PartError::TwoExtended => f.write_str("the MBR holds two extended partitions"),
            PartError::Reversed { number, start, end } => {
                write!(f, "GPT partition {number} ends (LBA {end}) before it starts (LBA {start})")
            }
            PartError::OutsideUsable { number, first_usable, last_usable } => {
                write!(f, "GPT partition {number} lies outside the usable LBAs {first_usable}..={last_usable}")
            }
            PartError::Gpt { primary, backup } => {
                write!(f, "no valid GPT header: primary: {primary}; backup: {backup}")
            }
        }
    }
}

impl core::error::Error for PartError {}

/// Read the partition table of `dev`: GPT if the MBR is protective, else
/// the MBR's partitions, else (no MBR signature, or status bytes an MBR
/// never has: a filesystem's boot sector) the whole disk as one partition.
pub fn read_table<D: BlockDevice + ?Sized>(dev: &mut D) -> Result<PartitionTable, PartError> {
    let ss = dev.sector_size();
    if !valid_sector_size(ss) {
        return Err(PartError::SectorSize(ss));
    }
    let disk_sectors = dev.sectors();
    let mut table =
        PartitionTable { kind: TableKind::Whole, sector_size: ss, disk_sectors, partitions: Vec::new(), primary_gpt_error: None };
    let whole = PartitionInfo { number: 0, start: 0, sectors: disk_sectors, kind: PartitionKind::Whole };
    if disk_sectors == 0 {
        return Ok(table);
    }
    let mbr = read_sectors(dev, 0, 1)?;
    let Some(records) = mbr_records(&mbr) else {
        table.partitions.push(whole);
        return Ok(table);
    };
    if records.iter().any(|r| r.os_type == GPT_PROTECTIVE) {
        let (parts, primary_error) = read_gpt(dev)?;
        table.kind = TableKind::Gpt;
        table.partitions = parts;
        table.primary_gpt_error = primary_error;
    } else {
        table.kind = TableKind::Mbr;
        table.partitions = read_mbr(dev, &records)?;
    }
    Ok(table)
}

/// Read `count` sectors from `lba` (the caller bounds `count`). The range
/// is checked here too, so a device is never even asked for sectors it
/// does not have (found by the `partitions` fuzz target: a protective MBR
/// on a one-sector disk sent a read of sector 1 to the device).
fn read_sectors<D: BlockDevice + ?Sized>(dev: &mut D, lba: u64, count: usize) -> Result<Vec<u8>, BlockError> {
    let len = count * dev.sector_size() as usize;
    check_request(dev.sector_size(), dev.sectors(), lba, len)?;
    let mut buf = vec![0u8; len];
    dev.read(lba, &mut buf)?;
    Ok(buf)
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

#[derive(Clone, Copy, Debug)]
struct MbrRecord {
    status: u8,
    os_type: u8,
    start: u32,
    size: u32,
}

impl MbrRecord {
    fn is_empty(&self) -> bool {
        self.os_type == 0 || self.size == 0
    }
}

/// The four records of an MBR or EBR sector, if it is one: the 0x55aa
/// signature and status bytes of 0x00 or 0x80 only.
fn mbr_records(sector: &[u8]) -> Option<[MbrRecord; 4]> {
    if sector[510] != 0x55 || sector[511] != 0xaa {
        return None;
    }
    let records = core::array::from_fn(|i| {
        let r = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        MbrRecord { status: r[0], os_type: r[4], start: le32(r, 8), size: le32(r, 12) }
    });
    records.iter().all(|r: &MbrRecord| r.status == 0 || r.status == 0x80).then_some(records)
}

fn read_mbr<D: BlockDevice + ?Sized>(dev: &mut D, records: &[MbrRecord; 4]) -> Result<Vec<PartitionInfo>, PartError> {
    let disk_sectors = dev.sectors();
    let mut parts = Vec::new();
    // The extended container takes part in the primaries' overlap check
    // but is not a partition a filesystem lives on.
    let mut extended: Option<PartitionInfo> = None;
    for (i, r) in records.iter().enumerate() {
        if r.is_empty() {
            continue;
        }
        let p = PartitionInfo {
            number: i as u32 + 1,
            start: u64::from(r.start),
            sectors: u64::from(r.size),
            kind: PartitionKind::Mbr { os_type: r.os_type, bootable: r.status == 0x80, logical: false },
        };
        check_on_disk(&p, disk_sectors)?;
        if EXTENDED_TYPES.contains(&r.os_type) {
            if extended.is_some() {
                return Err(PartError::TwoExtended);
            }
            extended = Some(p);
        } else {
            parts.push(p);
        }
    }
    let mut table_sectors = vec![0u64];
    if let Some(ext) = &extended {
        let mut all: Vec<&PartitionInfo> = parts.iter().collect();
        all.push(ext);
        check_overlaps(&all)?;
        let logical = read_ebr_chain(dev, ext, &mut table_sectors)?;
        parts.extend(logical);
    }
    check_overlaps(&parts.iter().collect::<Vec<_>>())?;
    for p in &parts {
        if let Some(&sector) = table_sectors.iter().find(|&&s| s >= p.start && s < p.end()) {
            return Err(PartError::CoversTable { number: p.number, sector });
        }
    }
    Ok(parts)
}

/// Walk the EBR chain of `ext`: each EBR's first record is a logical
/// partition (relative to that EBR), its second the link to the next EBR
/// (relative to the extended partition's start).
fn read_ebr_chain<D: BlockDevice + ?Sized>(
    dev: &mut D,
    ext: &PartitionInfo,
    table_sectors: &mut Vec<u64>,
) -> Result<Vec<PartitionInfo>, PartError> {
    let mut parts = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    let mut next = Some(ext.start);
    while let Some(ebr) = next {
        if seen.contains(&ebr) {
            return Err(PartError::EbrLoop { sector: ebr });
        }
        if seen.len() >= MAX_LOGICAL {
            return Err(PartError::TooManyLogical);
        }
        if ebr < ext.start || ebr >= ext.end() {
            return Err(PartError::OutsideExtended { number: 0, sector: ebr });
        }
        seen.push(ebr);
        table_sectors.push(ebr);
        let sector = read_sectors(dev, ebr, 1)?;
        let records = mbr_records(&sector).ok_or(PartError::BadEbr { sector: ebr })?;
        let [data, link, ..] = records;
        if !data.is_empty() {
            let number = 5 + parts.len() as u32;
            // ebr < ext.end() <= disk_sectors < 2^64 and data.start < 2^32:
            // the sum cannot overflow, and the end is checked against the
            // extended partition, which lies on the disk.
            let p = PartitionInfo {
                number,
                start: ebr + u64::from(data.start),
                sectors: u64::from(data.size),
                kind: PartitionKind::Mbr { os_type: data.os_type, bootable: data.status == 0x80, logical: true },
            };
            if p.start < ext.start || p.start.checked_add(p.sectors).is_none_or(|end| end > ext.end()) {
                return Err(PartError::OutsideExtended { number, sector: p.start });
            }
            parts.push(p);
        }
        next = (!link.is_empty() && EXTENDED_TYPES.contains(&link.os_type)).then(|| ext.start + u64::from(link.start));
    }
    Ok(parts)
}

fn check_on_disk(p: &PartitionInfo, disk_sectors: u64) -> Result<(), PartError> {
    match p.start.checked_add(p.sectors) {
        Some(end) if end <= disk_sectors => Ok(()),
        _ => Err(PartError::PastEnd { number: p.number, start: p.start, sectors: p.sectors, disk_sectors }),
    }
}

/// No two of `parts` share a sector (each is already checked to lie on
/// the disk, so `end()` is exact).
fn check_overlaps(parts: &[&PartitionInfo]) -> Result<(), PartError> {
    let mut sorted: Vec<&PartitionInfo> = parts.iter().copied().filter(|p| p.sectors > 0).collect();
    crate::sort::sort_by_key(&mut sorted, |p| (p.start, p.number));
    // In start order, a partition overlaps an earlier one exactly when it
    // starts before the furthest end seen so far.
    let mut furthest: Option<&PartitionInfo> = None;
    for p in sorted {
        if let Some(f) = furthest {
            if p.start < f.end() {
                return Err(PartError::Overlap { a: f.number.min(p.number), b: f.number.max(p.number) });
            }
        }
        if furthest.is_none_or(|f| p.end() > f.end()) {
            furthest = Some(p);
        }
    }
    Ok(())
}

/// The primary GPT (LBA 1), or if it is bad the backup (the primary's
/// `alternate_lba`, then the disk's last sector). Returns the partitions
/// and, when the backup was used, what was wrong with the primary.
fn read_gpt<D: BlockDevice + ?Sized>(dev: &mut D) -> Result<(Vec<PartitionInfo>, Option<GptError>), PartError> {
    let last = dev.sectors() - 1;
    let primary = match read_gpt_header(dev, 1) {
        Ok(h) => return Ok((gpt_partitions(dev, &h)?, None)),
        Err((e, alternate)) => (e, alternate),
    };
    let mut candidates = vec![last];
    if let Some(alt) = primary.1 {
        if alt != last && alt > 1 && alt < last {
            candidates.insert(0, alt);
        }
    }
    let mut backup_error = GptError::Signature;
    for lba in candidates {
        match read_gpt_header(dev, lba) {
            Ok(h) => return Ok((gpt_partitions(dev, &h)?, Some(primary.0))),
            Err((e, _)) => backup_error = e,
        }
    }
    Err(PartError::Gpt { primary: primary.0, backup: backup_error })
}

/// A checked GPT header: its own CRC, location, usable range and entry
/// array (including the array's CRC), with the array's bytes.
struct Gpt {
    header: GptHeader,
    entries: Vec<u8>,
}

/// Read and check the header at `lba`. On failure also returns the
/// header's `alternate_lba` if its signature was right (where to look for
/// the backup).
fn read_gpt_header<D: BlockDevice + ?Sized>(dev: &mut D, lba: u64) -> Result<Gpt, (GptError, Option<u64>)> {
    let ss = dev.sector_size();
    let b = read_sectors(dev, lba, 1).map_err(|e| (GptError::Device(e), None))?;
    let header = parse_gpt_header(&b);
    if !header.is_signature_valid() {
        return Err((GptError::Signature, None));
    }
    let alternate = Some(header.alternate_lba.to_u64());
    let fail = |e| Err((e, alternate));
    let size = header.header_size.to_u32();
    if size < GPT_HEADER_MIN || size > ss {
        return fail(GptError::HeaderSize(size));
    }
    let mut covered = b[..size as usize].to_vec();
    covered[16..20].fill(0);
    let computed = Crc::<u32>::new(&Crc32::ALGORITHM).checksum(&covered);
    let stored = header.header_crc32.0.to_u32();
    if computed != stored {
        return fail(GptError::HeaderCrc { stored, computed });
    }
    let my_lba = header.my_lba.to_u64();
    if my_lba != lba {
        return fail(GptError::MyLba { expected: lba, found: my_lba });
    }
    let (first, last) = (header.first_usable_lba.to_u64(), header.last_usable_lba.to_u64());
    if first == 0 || first > last || last >= dev.sectors() || (first..=last).contains(&lba) {
        return fail(GptError::UsableRange { first, last });
    }
    let entry_size = header.size_of_partition_entry.to_u32();
    let Ok(layout) = header.get_partition_entry_array_layout() else {
        return fail(GptError::EntrySize(entry_size));
    };
    let array_error = GptError::EntryArray { lba: layout.start_lba.to_u64(), entries: layout.num_entries, entry_size };
    // A valid sector size is a valid GPT block size.
    let block_size = BlockSize::new(ss).expect("sector size checked by read_table");
    let (Some(bytes), Some(blocks)) = (layout.num_bytes_exact(), layout.num_blocks(block_size)) else {
        return fail(array_error);
    };
    let start = layout.start_lba.to_u64();
    let array_end = start.checked_add(blocks);
    let on_disk = array_end.is_some_and(|end| end <= dev.sectors());
    let clear_of_usable = array_end.is_some_and(|end| end <= first || start > last);
    if bytes > MAX_GPT_ARRAY_BYTES || !on_disk || !clear_of_usable || start == lba {
        return fail(array_error);
    }
    let mut entries = match read_sectors(dev, start, blocks as usize) {
        Ok(e) => e,
        Err(e) => return fail(GptError::Device(e)),
    };
    let array = match GptPartitionEntryArray::new(layout, block_size, &mut entries) {
        Ok(a) => a,
        Err(_) => return fail(array_error),
    };
    let computed = array.calculate_crc32().0.to_u32();
    let stored = header.partition_entry_array_crc32.0.to_u32();
    if computed != stored {
        return fail(GptError::EntriesCrc { stored, computed });
    }
    entries.truncate(bytes as usize);
    Ok(Gpt { header, entries })
}

/// The header's fields, little-endian at their UEFI offsets.
fn parse_gpt_header(b: &[u8]) -> GptHeader {
    GptHeader {
        signature: GptHeaderSignature(U64Le(arr(b, 0))),
        revision: GptHeaderRevision(U32Le(arr(b, 8))),
        header_size: U32Le(arr(b, 12)),
        header_crc32: Crc32(U32Le(arr(b, 16))),
        reserved: U32Le(arr(b, 20)),
        my_lba: LbaLe(U64Le(arr(b, 24))),
        alternate_lba: LbaLe(U64Le(arr(b, 32))),
        first_usable_lba: LbaLe(U64Le(arr(b, 40))),
        last_usable_lba: LbaLe(U64Le(arr(b, 48))),
        disk_guid: Guid::from_bytes(arr(b, 56)),
        partition_entry_lba: LbaLe(U64Le(arr(b, 72))),
        number_of_partition_entries: U32Le(arr(b, 80)),
        size_of_partition_entry: U32Le(arr(b, 84)),
        partition_entry_array_crc32: Crc32(U32Le(arr(b, 88))),
    }
}

fn parse_gpt_entry(e: &[u8]) -> GptPartitionEntry {
    GptPartitionEntry {
        partition_type_guid: GptPartitionType(Guid::from_bytes(arr(e, 0))),
        unique_partition_guid: Guid::from_bytes(arr(e, 16)),
        starting_lba: LbaLe(U64Le(arr(e, 32))),
        ending_lba: LbaLe(U64Le(arr(e, 40))),
        attributes: GptPartitionAttributes(U64Le(arr(e, 48))),
        name: GptPartitionName(arr(e, 56)),
    }
}

fn gpt_partitions<D: BlockDevice + ?Sized>(dev: &mut D, gpt: &Gpt) -> Result<Vec<PartitionInfo>, PartError> {
    let h = &gpt.header;
    let (first, last) = (h.first_usable_lba.to_u64(), h.last_usable_lba.to_u64());
    // Checked in read_gpt_header: a power of two >= 128.
    let entry_size = h.size_of_partition_entry.to_u32() as usize;
    let mut parts = Vec::new();
    for (i, raw) in gpt.entries.chunks_exact(entry_size).enumerate() {
        let e = parse_gpt_entry(raw);
        if !e.is_used() {
            continue;
        }
        let number = i as u32 + 1;
        let (start, end) = (e.starting_lba.to_u64(), e.ending_lba.to_u64());
        if e.lba_range().is_none() {
            return Err(PartError::Reversed { number, start, end });
        }
        if end >= dev.sectors() {
            let sectors = (end - start).saturating_add(1);
            return Err(PartError::PastEnd { number, start, sectors, disk_sectors: dev.sectors() });
        }
        let p = PartitionInfo {
            number,
            start,
            // start <= end < the disk's sector count: no overflow.
            sectors: end - start + 1,
            kind: PartitionKind::Gpt {
                type_guid: e.partition_type_guid.0,
                unique_guid: e.unique_partition_guid,
                attributes: e.attributes.0.to_u64(),
                name: e.name.chars().collect(),
            },
        };
        if start < first || end > last {
            return Err(PartError::OutsideUsable { number, first_usable: first, last_usable: last });
        }
        parts.push(p);
    }
    check_overlaps(&parts.iter().collect::<Vec<_>>())?;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::block::MemDisk;
    use crate::disk::testimg::{Img, StrictDisk, EFI_SYSTEM, LINUX_FS};

    /// The table of `img`, on a disk that panics if asked past its end.
    fn table(img: &Img) -> Result<PartitionTable, PartError> {
        read_table(&mut StrictDisk(MemDisk::new(img.data.clone(), img.ss as u32).unwrap()))
    }

    fn spans(t: &PartitionTable) -> Vec<(u32, u64, u64)> {
        t.partitions.iter().map(|p| (p.number, p.start, p.sectors)).collect()
    }

    /// Two primaries, then an extended partition holding two logicals.
    fn mbr_disk(ss: usize) -> Img {
        let mut img = Img::new(ss, 4096);
        img.mbr(0, &[(0x80, 0x83, 64, 512), (0, 0x82, 576, 256), (0, 0x05, 1024, 2048)]);
        // First EBR: logical 5 one sector in, link to the next EBR at +1024.
        img.mbr(1024, &[(0, 0x83, 1, 511), (0, 0x05, 1024, 1024)]);
        img.mbr(2048, &[(0, 0x83, 8, 1016)]);
        img
    }

    #[test]
    fn mbr_primaries_and_logicals() {
        for ss in [512, 4096] {
            let t = table(&mbr_disk(ss)).unwrap();
            assert_eq!(t.kind, TableKind::Mbr);
            assert_eq!((t.sector_size, t.disk_sectors), (ss as u32, 4096));
            assert_eq!(spans(&t), [(1, 64, 512), (2, 576, 256), (5, 1025, 511), (6, 2056, 1016)]);
            assert_eq!(t.get(1).unwrap().kind, PartitionKind::Mbr { os_type: 0x83, bootable: true, logical: false });
            assert_eq!(t.get(6).unwrap().kind, PartitionKind::Mbr { os_type: 0x83, bootable: false, logical: true });
            assert!(t.get(3).is_none());
        }
    }

    #[test]
    fn gpt_two_partitions() {
        for ss in [512, 4096] {
            let mut img = Img::new(ss, 2048);
            img.gpt(&[(EFI_SYSTEM, 40, 99, "EFI"), (LINUX_FS, 100, 1999, "root")]);
            let t = table(&img).unwrap();
            assert_eq!(t.kind, TableKind::Gpt);
            assert_eq!(t.primary_gpt_error, None);
            assert_eq!(spans(&t), [(1, 40, 60), (2, 100, 1900)]);
            let PartitionKind::Gpt { type_guid, name, .. } = &t.get(2).unwrap().kind else { panic!() };
            assert_eq!(name, "root");
            assert_eq!(type_guid.to_string(), "0fc63daf-8483-4772-8e79-3d69d8477de4");
            let PartitionKind::Gpt { type_guid, .. } = &t.get(1).unwrap().kind else { panic!() };
            assert_eq!(*type_guid, gpt_disk_types::GptPartitionType::EFI_SYSTEM.0);
        }
    }

    #[test]
    fn no_table_is_the_whole_disk() {
        // An ext4 image starts with 1 KiB of zeros: no MBR signature.
        let img = Img::new(512, 100);
        let t = table(&img).unwrap();
        assert_eq!(t.kind, TableKind::Whole);
        assert_eq!(t.partitions, [PartitionInfo { number: 0, start: 0, sectors: 100, kind: PartitionKind::Whole }]);
        // A FAT boot sector has the signature but code where the MBR keeps
        // status bytes: not a partition table either.
        let mut img = Img::new(512, 100);
        img.mbr(0, &[(0x12, 0x83, 1, 10)]);
        assert_eq!(table(&img).unwrap().kind, TableKind::Whole);
        // An MBR with no partitions is an empty table, not a filesystem.
        let mut img = Img::new(512, 100);
        img.mbr(0, &[]);
        let t = table(&img).unwrap();
        assert_eq!((t.kind, t.partitions.len()), (TableKind::Mbr, 0));
        let t = read_table(&mut MemDisk::new(vec![], 512).unwrap()).unwrap();
        assert!(t.partitions.is_empty());
    }

    #[test]
    fn partition_past_the_end() {
        let mut img = Img::new(512, 1000);
        img.mbr(0, &[(0, 0x83, 10, 100), (0, 0x83, 900, 101)]);
        assert_eq!(table(&img), Err(PartError::PastEnd { number: 2, start: 900, sectors: 101, disk_sectors: 1000 }));
        let mut img = Img::new(512, 2048);
        img.gpt(&[(LINUX_FS, 40, 99, "a"), (LINUX_FS, 100, 5000, "b")]);
        assert_eq!(table(&img), Err(PartError::PastEnd { number: 2, start: 100, sectors: 4901, disk_sectors: 2048 }));
        // Inside the disk but over the backup GPT.
        let mut img = Img::new(512, 2048);
        img.gpt(&[(LINUX_FS, 40, 2047, "a")]);
        assert_eq!(table(&img), Err(PartError::OutsideUsable { number: 1, first_usable: 34, last_usable: 2014 }));
        let mut img = Img::new(512, 2048);
        img.gpt(&[(LINUX_FS, 100, 99, "a")]);
        assert_eq!(table(&img), Err(PartError::Reversed { number: 1, start: 100, end: 99 }));
    }

    #[test]
    fn overlapping_partitions() {
        let mut img = Img::new(512, 1000);
        img.mbr(0, &[(0, 0x83, 10, 100), (0, 0x83, 500, 100), (0, 0x83, 109, 10)]);
        assert_eq!(table(&img), Err(PartError::Overlap { a: 1, b: 3 }));
        // One long partition over two later ones: caught past its neighbour.
        let mut img = Img::new(512, 1000);
        img.mbr(0, &[(0, 0x83, 10, 500), (0, 0x83, 20, 10), (0, 0x83, 400, 10)]);
        assert_eq!(table(&img), Err(PartError::Overlap { a: 1, b: 2 }));
        let mut img = Img::new(512, 2048);
        img.gpt(&[(LINUX_FS, 40, 99, "a"), (LINUX_FS, 1000, 1100, "b"), (LINUX_FS, 99, 200, "c")]);
        assert_eq!(table(&img), Err(PartError::Overlap { a: 1, b: 3 }));
        // A primary inside the extended partition.
        let mut img = mbr_disk(512);
        img.mbr(0, &[(0x80, 0x83, 64, 512), (0, 0x82, 2000, 10), (0, 0x05, 1024, 2048)]);
        assert_eq!(table(&img), Err(PartError::Overlap { a: 2, b: 3 }));
        // Two logicals over each other.
        let mut img = mbr_disk(512);
        img.mbr(2048, &[(0, 0x83, 0x10000, 1), (0, 0, 0, 0)]);
        img.mbr(2048, &[(0, 0x83, 1, 1016)]);
        img.mbr(1024, &[(0, 0x83, 1, 1100), (0, 0x05, 1024, 1024)]);
        assert_eq!(table(&img), Err(PartError::Overlap { a: 5, b: 6 }));
    }

    #[test]
    fn partitions_over_table_sectors() {
        let mut img = Img::new(512, 1000);
        img.mbr(0, &[(0, 0x83, 0, 100)]);
        assert_eq!(table(&img), Err(PartError::CoversTable { number: 1, sector: 0 }));
        // Logical 5 runs over the second EBR.
        let mut img = mbr_disk(512);
        img.mbr(1024, &[(0, 0x83, 1, 1024), (0, 0x05, 1024, 1024)]);
        assert_eq!(table(&img), Err(PartError::CoversTable { number: 5, sector: 2048 }));
    }

    #[test]
    fn ebr_chain_faults() {
        // The second EBR links back to the first.
        let mut img = mbr_disk(512);
        img.mbr(2048, &[(0, 0x83, 8, 1016), (0, 0x05, 0, 1024)]);
        assert_eq!(table(&img), Err(PartError::EbrLoop { sector: 1024 }));
        // An EBR linking to itself.
        let mut img = mbr_disk(512);
        img.mbr(1024, &[(0, 0x83, 1, 511), (0, 0x0f, 0, 1)]);
        assert_eq!(table(&img), Err(PartError::EbrLoop { sector: 1024 }));
        // A link out of the extended partition.
        let mut img = mbr_disk(512);
        img.mbr(1024, &[(0, 0x83, 1, 511), (0, 0x05, 4000, 10)]);
        assert_eq!(table(&img), Err(PartError::OutsideExtended { number: 0, sector: 5024 }));
        // A logical reaching out of the extended partition.
        let mut img = mbr_disk(512);
        img.mbr(2048, &[(0, 0x83, 8, 1100)]);
        assert_eq!(table(&img), Err(PartError::OutsideExtended { number: 6, sector: 2056 }));
        // A link to a sector without an EBR.
        let mut img = mbr_disk(512);
        img.put(2048, &[0u8; 512]);
        assert_eq!(table(&img), Err(PartError::BadEbr { sector: 2048 }));
        // Two extended partitions.
        let mut img = mbr_disk(512);
        img.mbr(0, &[(0, 0x05, 64, 512), (0, 0x85, 1024, 2048)]);
        assert_eq!(table(&img), Err(PartError::TwoExtended));
    }

    #[test]
    fn ebr_chain_is_bounded() {
        // MAX_LOGICAL + 1 EBRs, each with a one-sector logical: refused
        // after MAX_LOGICAL without reading further.
        let mut img = Img::new(512, 4 * (MAX_LOGICAL as u64 + 2) + 8);
        let ext_start = 4u64;
        img.mbr(0, &[(0, 0x05, ext_start as u32, (img.sectors() - ext_start) as u32)]);
        for i in 0..=MAX_LOGICAL as u64 {
            img.mbr(ext_start + 4 * i, &[(0, 0x83, 1, 1), (0, 0x05, 4 * (i as u32 + 1), 4)]);
        }
        assert_eq!(table(&img), Err(PartError::TooManyLogical));
        // One fewer link is fine.
        img.mbr(ext_start + 4 * (MAX_LOGICAL as u64 - 1), &[(0, 0x83, 1, 1)]);
        let t = table(&img).unwrap();
        assert_eq!(t.partitions.len(), MAX_LOGICAL);
        assert_eq!(t.partitions.last().unwrap().number, 4 + MAX_LOGICAL as u32);
    }

    #[test]
    fn bad_gpt_crcs() {
        let good = {
            let mut img = Img::new(512, 2048);
            img.gpt(&[(LINUX_FS, 40, 99, "a"), (LINUX_FS, 100, 1999, "b")]);
            img
        };
        // A flipped bit in the primary header: the backup is used, and the
        // table says why.
        let mut img = Img { ss: 512, data: good.data.clone() };
        img.data[512 + 40] ^= 1;
        let t = table(&img).unwrap();
        assert_eq!(spans(&t), [(1, 40, 60), (2, 100, 1900)]);
        assert!(matches!(t.primary_gpt_error, Some(GptError::HeaderCrc { .. })));
        // Both headers bad.
        img.data[2047 * 512 + 40] ^= 1;
        let err = table(&img).unwrap_err();
        assert!(matches!(err, PartError::Gpt { primary: GptError::HeaderCrc { .. }, backup: GptError::HeaderCrc { .. } }), "{err:?}");
        assert!(err.to_string().contains("bad header CRC"), "{err}");
        // Both entry arrays changed (headers intact).
        let mut img = Img { ss: 512, data: good.data.clone() };
        img.data[2 * 512 + 33] ^= 0x80;
        img.data[(2047 - 32) * 512 + 33] ^= 0x80;
        assert!(matches!(table(&img), Err(PartError::Gpt { primary: GptError::EntriesCrc { .. }, backup: GptError::EntriesCrc { .. } })));
        // A protective MBR and no GPT at all.
        let mut img = Img::new(512, 2048);
        img.mbr(0, &[(0, 0xee, 1, 2047)]);
        assert_eq!(table(&img), Err(PartError::Gpt { primary: GptError::Signature, backup: GptError::Signature }));
    }

    #[test]
    fn forged_gpt_headers_are_refused_before_reading() {
        let good = {
            let mut img = Img::new(512, 2048);
            img.gpt(&[(LINUX_FS, 40, 99, "a")]);
            img
        };
        let forge = |at: usize, bytes: &[u8]| {
            let mut img = Img { ss: 512, data: good.data.clone() };
            for lba in [1u64, 2047] {
                let o = lba as usize * 512 + at;
                img.data[o..o + bytes.len()].copy_from_slice(bytes);
                img.reseal_gpt_header(lba);
            }
            table(&img).unwrap_err()
        };
        let primary = |e: PartError| match e {
            PartError::Gpt { primary, .. } => primary,
            other => panic!("{other:?}"),
        };
        // A huge entry count, an entry array past the disk, a bad size.
        assert!(matches!(primary(forge(80, &u32::MAX.to_le_bytes())), GptError::EntryArray { .. }));
        assert!(matches!(primary(forge(72, &(1u64 << 40).to_le_bytes())), GptError::EntryArray { .. }));
        assert_eq!(primary(forge(84, &100u32.to_le_bytes())), GptError::EntrySize(100));
        assert_eq!(primary(forge(12, &1000u32.to_le_bytes())), GptError::HeaderSize(1000));
        assert_eq!(primary(forge(24, &7u64.to_le_bytes())), GptError::MyLba { expected: 1, found: 7 });
        assert!(matches!(primary(forge(48, &5000u64.to_le_bytes())), GptError::UsableRange { .. }));
        // The entry array inside the usable range.
        assert!(matches!(primary(forge(72, &100u64.to_le_bytes())), GptError::EntryArray { .. }));
    }

    /// Found by the `partitions` fuzz target: a protective MBR on a disk
    /// of one sector asked the device for sector 1.
    #[test]
    fn protective_mbr_on_a_one_sector_disk() {
        let mut img = Img::new(512, 1);
        img.mbr(0, &[(0, 0xee, 1, 1)]);
        let err = table(&img).unwrap_err();
        assert!(matches!(err, PartError::Gpt { primary: GptError::Device(BlockError::OutOfRange { .. }), .. }), "{err:?}");
    }

    #[test]
    fn errors_print_as_one_line() {
        let errs = [
            PartError::PastEnd { number: 2, start: 1, sectors: 2, disk_sectors: 3 },
            PartError::Overlap { a: 1, b: 2 },
            PartError::EbrLoop { sector: 9 },
            PartError::Gpt { primary: GptError::HeaderCrc { stored: 1, computed: 2 }, backup: GptError::Signature },
        ];
        for e in errs {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s}");
        }
    }
}
