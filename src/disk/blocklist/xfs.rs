//! Where a small file's bytes lie on an XFS device, from its inode: the
//! XFS half of GRUB's blocklist, for `save_env` into `grubenv` (Fedora
//! Server's, the RHEL family's `/boot`).
//!
//! From the on-disk format (the superblock's geometry, the inode core,
//! the data fork's extent records), read-only and bounded. It refuses
//! what would make an in-place write wrong: an inode that is not a
//! regular file in extent format, a reflinked inode (its blocks may be
//! another file's too), an unwritten extent or a hole, a realtime file, a
//! size other than the caller's, a sector larger than a block. The
//! caller checks that the blocks hold what the filesystem reads, and that
//! the view without the log agrees ([`super::super::xfs::XfsFs`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{read_bytes, Run};
use crate::dev::block::BlockDevice;

/// The most extents of the file followed (a 1024-byte grubenv has one).
const MAX_EXTENTS: u64 = 64;
const DIFLAG_REALTIME: u16 = 0x1;
const DIFLAG2_REFLINK: u64 = 1 << 1;
const DIFLAG2_NREXT64: u64 = 1 << 4;
const S_IFMT: u16 = 0xf000;
const S_IFREG: u16 = 0x8000;
const FORMAT_EXTENTS: u8 = 2;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// The geometry the walk needs, from the primary superblock.
pub struct Geometry {
    block: u64,
    ag_blocks: u64,
    ag_count: u64,
    ag_blk_log: u32,
    inode_size: u64,
    inop_log: u32,
    v5: bool,
    /// The internal log: its first byte and length.
    pub log: (u64, u64),
}

impl Geometry {
    pub fn read(dev: &mut dyn BlockDevice) -> Result<Self, String> {
        let sb = read_bytes(dev, 0, 512)?;
        if sb[..4] != *b"XFSB" {
            return Err("not XFS".into());
        }
        let (block, block_log) = (u64::from(be32(&sb, 4)), u32::from(sb[120]));
        let (inode_size, inode_log) = (u64::from(be16(&sb, 104)), u32::from(sb[122]));
        let (inop_block, inop_log) = (u64::from(be16(&sb, 106)), u32::from(sb[123]));
        let (ag_blocks, ag_count, ag_blk_log) = (u64::from(be32(&sb, 84)), u64::from(be32(&sb, 88)), u32::from(sb[124]));
        // A shift of 64 or more is no power of two here (and would panic).
        let pow2 = |log: u32| 1u64.checked_shl(log).unwrap_or(0);
        let sane = (9..=16).contains(&block_log)
            && block == pow2(block_log)
            && (8..=11).contains(&inode_log)
            && inode_size == pow2(inode_log)
            && inop_block == pow2(inop_log)
            && inop_block * inode_size == block
            && ag_count > 0
            && ag_blk_log < 32
            && ag_blocks > 0
            && ag_blocks <= 1 << ag_blk_log;
        if !sane {
            return Err("its superblock's geometry does not add up".into());
        }
        let mut g = Geometry { block, ag_blocks, ag_count, ag_blk_log, inode_size, inop_log, v5: be16(&sb, 100) & 0xf == 5, log: (0, 0) };
        // The internal log: inside one allocation group, as XFS keeps it
        // (start 0 is an external log's, which lamxfs refuses too).
        let (start, blocks) = (be64(&sb, 48), u64::from(be32(&sb, 96)));
        if start == 0 || blocks == 0 {
            return Err("it has no internal log".into());
        }
        let at = g.byte_of(start, blocks).map_err(|_| format!("its log (block {start}, {blocks} blocks) lies outside the filesystem"))?;
        g.log = (at, blocks * block);
        Ok(g)
    }

    /// The device byte of filesystem block `b` (AG number, block in it),
    /// checked against the geometry.
    fn byte_of(&self, b: u64, count: u64) -> Result<u64, String> {
        let (ag, bno) = (b >> self.ag_blk_log, b & ((1 << self.ag_blk_log) - 1));
        let outside = || format!("its block {b} (+{count}) lies outside the filesystem");
        if ag >= self.ag_count || bno.checked_add(count).is_none_or(|end| end > self.ag_blocks) {
            return Err(outside());
        }
        // In blocks, the end is at most 2^32 AGs of 2^31 blocks; in bytes
        // it may not fit, and then neither does the filesystem.
        let first = ag * self.ag_blocks + bno;
        (first + count).checked_mul(self.block).ok_or_else(outside)?;
        Ok(first * self.block)
    }
}

/// The byte runs of inode `ino`'s data, `len` bytes (its size).
pub fn runs(dev: &mut dyn BlockDevice, ino: u64, len: u64) -> Result<Vec<Run>, String> {
    let g = Geometry::read(dev)?;
    if u64::from(dev.sector_size()) > g.block {
        return Err(format!("the disk's {}-byte sectors are larger than its {}-byte blocks", dev.sector_size(), g.block));
    }
    let agino_bits = g.ag_blk_log + g.inop_log;
    let (ag, agino) = (ino >> agino_bits, ino & ((1 << agino_bits) - 1));
    let at = g.byte_of((ag << g.ag_blk_log) | (agino >> g.inop_log), 1)? + (agino & ((1 << g.inop_log) - 1)) * g.inode_size;
    let inode = read_bytes(dev, at, g.inode_size as usize)?;
    if inode[..2] != *b"IN" || be16(&inode, 2) & S_IFMT != S_IFREG {
        return Err(format!("inode {ino} is not a regular file's"));
    }
    let (core, flags2) = match inode[4] {
        3 if g.v5 => (176, be64(&inode, 120)),
        1 | 2 if !g.v5 => (100, 0),
        v => return Err(format!("inode {ino} has version {v}")),
    };
    if g.v5 && be64(&inode, 152) != ino {
        return Err(format!("inode {ino} says it is inode {}", be64(&inode, 152)));
    }
    if flags2 & DIFLAG2_REFLINK != 0 {
        return Err("its blocks may be shared with another file (reflink)".into());
    }
    if be16(&inode, 90) & DIFLAG_REALTIME != 0 {
        return Err("it is on the realtime device".into());
    }
    if inode[5] != FORMAT_EXTENTS {
        return Err(format!("its data fork is in format {}, not a list of extents", inode[5]));
    }
    if be64(&inode, 56) != len {
        return Err(format!("its inode says {} bytes, not {len}", be64(&inode, 56)));
    }
    let extents = if flags2 & DIFLAG2_NREXT64 != 0 { be64(&inode, 24) } else { u64::from(be32(&inode, 76)) };
    let fork_end = match inode[82] {
        0 => g.inode_size as usize,
        f => core + usize::from(f) * 8,
    };
    if extents == 0 || extents > MAX_EXTENTS || core + extents as usize * 16 > fork_end.min(g.inode_size as usize) {
        return Err(format!("{extents} extents do not fit its inode"));
    }
    let blocks = len.div_ceil(g.block);
    let mut runs = Vec::new();
    let mut next = 0;
    for i in 0..extents as usize {
        let (l0, l1) = (be64(&inode, core + 16 * i), be64(&inode, core + 16 * i + 8));
        let unwritten = l0 >> 63 != 0;
        let off = (l0 & !(1 << 63)) >> 9;
        let start = ((l0 & 0x1ff) << 43) | (l1 >> 21);
        let count = l1 & ((1 << 21) - 1);
        if next >= blocks {
            break;
        }
        if off != next || unwritten || count == 0 {
            return Err("it has a hole or an unwritten extent".into());
        }
        let take = count.min(blocks - next);
        let byte = g.byte_of(start, take)?;
        let bytes = (take * g.block).min(len - next * g.block);
        runs.push(Run { offset: byte, len: bytes as usize });
        next += take;
    }
    if next < blocks {
        return Err("its extents end before the file does".into());
    }
    Ok(runs)
}
