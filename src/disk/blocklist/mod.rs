//! Where a small file's bytes lie on an ext2/3/4 device (here) or an XFS
//! one ([`xfs`]), and writing them there in place: GRUB's blocklist, for
//! `save_env` into `grubenv`.
//!
//! The reader ([`super::fs`], through `ext4-view`) has no block map to
//! give, so this walks the on-disk structures itself, read-only and
//! bounded: the superblock, the group descriptor of each inode, the
//! directories on the path (linear scan of their blocks, which an htree
//! directory's leaves are too) and the file's extent tree (or an ext2/3
//! file's direct blocks). It refuses whatever would make an in-place
//! write wrong or unsafe: a journal that still needs recovery (the block
//! may be newer in the journal, and would be replayed over the write),
//! `meta_bg`, inline data, encryption, a hole or an unwritten extent, a
//! symlink on the path, a sector larger than a block.
//!
//! Nothing here allocates more than one block per step; every count read
//! from the disk is bounded before it is used.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::dev::block::BlockDevice;
use crate::disk::{le16, le32};

pub mod xfs;

/// Bytes of the device that hold part of the file, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub offset: u64,
    pub len: usize,
}

/// The most blocks of one directory scanned.
const MAX_DIR_BLOCKS: u64 = 4096;
/// Extent trees are at most 5 levels deep (Linux's limit).
const MAX_EXTENT_DEPTH: u16 = 5;
const ROOT_INODE: u32 = 2;

const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
const FL_ENCRYPT: u32 = 0x800;
const FL_EXTENTS: u32 = 0x8_0000;
const FL_INLINE_DATA: u32 = 0x1000_0000;
const S_IFMT: u16 = 0xf000;
const S_IFDIR: u16 = 0x4000;
const S_IFREG: u16 = 0x8000;
const S_IFLNK: u16 = 0xa000;

/// `len` bytes at byte `offset` of `dev`, through whole-sector reads.
pub fn read_bytes(dev: &mut dyn BlockDevice, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    let ss = u64::from(dev.sector_size());
    let end = offset.checked_add(len as u64).ok_or("a read past the end of the device")?;
    if end > dev.size_bytes() {
        return Err(format!("{len} bytes at {offset} reach past the end of the device"));
    }
    let first = offset / ss;
    let span = (end.div_ceil(ss) - first) * ss;
    let mut buf = vec![0u8; span as usize];
    dev.read(first, &mut buf).map_err(|e| format!("reading {len} bytes at {offset}: {e}"))?;
    let at = (offset - first * ss) as usize;
    Ok(buf[at..at + len].to_vec())
}

struct Ext<'d> {
    dev: &'d mut dyn BlockDevice,
    bs: u64,
    blocks: u64,
    inodes: u32,
    inodes_per_group: u32,
    inode_size: usize,
    desc_size: usize,
    gdt: u64,
    filetype: bool,
}

/// The byte runs of the regular file at absolute `path` (no symlinks on
/// the way), which must be at most `max_len` bytes long.
pub fn ext4(dev: &mut dyn BlockDevice, path: &str, max_len: u64) -> Result<Vec<Run>, String> {
    let sb = read_bytes(dev, 1024, 1024)?;
    if le16(&sb, 0x38) != 0xef53 {
        return Err("not ext2/3/4".into());
    }
    let log = le32(&sb, 0x18);
    if log > 6 {
        return Err(format!("block size 2^(10 + {log})"));
    }
    let bs = 1024u64 << log;
    let incompat = le32(&sb, 0x60);
    if incompat & INCOMPAT_RECOVER != 0 {
        return Err("its journal needs recovery (the filesystem was not unmounted cleanly)".into());
    }
    if incompat & (INCOMPAT_META_BG | INCOMPAT_JOURNAL_DEV) != 0 {
        return Err(format!("filesystem features {incompat:#x} (meta_bg or a journal device)"));
    }
    let wide = incompat & INCOMPAT_64BIT != 0;
    let blocks = u64::from(le32(&sb, 0x4)) | if wide { u64::from(le32(&sb, 0x150)) << 32 } else { 0 };
    if blocks.checked_mul(bs).is_none_or(|b| b > dev.size_bytes()) {
        return Err(format!("{blocks} blocks of {bs} bytes are more than the device holds"));
    }
    let inode_size = if le32(&sb, 0x4c) == 0 { 128 } else { usize::from(le16(&sb, 0x58)) };
    if !(128..=bs as usize).contains(&inode_size) || !inode_size.is_power_of_two() {
        return Err(format!("inode size {inode_size}"));
    }
    let desc_size = if wide { usize::from(le16(&sb, 0xfe)) } else { 32 };
    if !(32..=1024).contains(&desc_size) || !desc_size.is_power_of_two() {
        return Err(format!("group descriptor size {desc_size}"));
    }
    let ss = u64::from(dev.sector_size());
    if ss > bs {
        return Err(format!("its {bs}-byte blocks are smaller than the disk's {ss}-byte sectors"));
    }
    let mut fs = Ext {
        dev,
        bs,
        blocks,
        inodes: le32(&sb, 0x0),
        inodes_per_group: le32(&sb, 0x28),
        inode_size,
        desc_size,
        gdt: (u64::from(le32(&sb, 0x14)) + 1) * bs,
        filetype: incompat & INCOMPAT_FILETYPE != 0,
    };
    if fs.inodes_per_group == 0 {
        return Err("0 inodes per group".into());
    }
    let mut ino = ROOT_INODE;
    let names: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, name) in names.iter().enumerate() {
        let dir = fs.inode(ino)?;
        if le16(&dir, 0) & S_IFMT != S_IFDIR {
            return Err(format!("/{} is not a directory", names[..i].join("/")));
        }
        ino = fs.lookup(&dir, name.as_bytes())?.ok_or_else(|| format!("no {name} in /{}", names[..i].join("/")))?;
    }
    let file = fs.inode(ino)?;
    match le16(&file, 0) & S_IFMT {
        S_IFREG => {}
        S_IFLNK => return Err(format!("{path} is a symlink")),
        _ => return Err(format!("{path} is not a regular file")),
    }
    let size = u64::from(le32(&file, 0x4)) | u64::from(le32(&file, 0x6c)) << 32;
    if size > max_len {
        return Err(format!("{path} is {size} bytes, more than {max_len}"));
    }
    let mut runs: Vec<Run> = Vec::new();
    for lbn in 0..size.div_ceil(bs) {
        let Some(phys) = fs.map(&file, lbn as u32)? else {
            return Err(format!("{path} has a hole at block {lbn}"));
        };
        let len = (size - lbn * bs).min(bs) as usize;
        let offset = phys * bs;
        match runs.last_mut() {
            Some(r) if r.offset + r.len as u64 == offset => r.len += len,
            _ => runs.push(Run { offset, len }),
        }
    }
    Ok(runs)
}

impl Ext<'_> {
    fn block(&mut self, n: u64) -> Result<Vec<u8>, String> {
        if n == 0 || n >= self.blocks {
            return Err(format!("block {n} is outside the filesystem"));
        }
        read_bytes(self.dev, n * self.bs, self.bs as usize)
    }

    /// Inode `n`'s bytes (at least 128), refused when encrypted or inline.
    fn inode(&mut self, n: u32) -> Result<Vec<u8>, String> {
        if n == 0 || n > self.inodes {
            return Err(format!("inode {n} is outside the filesystem"));
        }
        let (group, index) = (u64::from((n - 1) / self.inodes_per_group), u64::from((n - 1) % self.inodes_per_group));
        let desc = read_bytes(self.dev, self.gdt + group * self.desc_size as u64, self.desc_size)?;
        let table = u64::from(le32(&desc, 0x8)) | if self.desc_size >= 64 { u64::from(le32(&desc, 0x28)) << 32 } else { 0 };
        if table == 0 || table >= self.blocks {
            return Err(format!("group {group}'s inode table at block {table} is outside the filesystem"));
        }
        let at = table * self.bs + index * self.inode_size as u64;
        if at + self.inode_size as u64 > self.blocks * self.bs {
            return Err(format!("inode {n} lies outside the filesystem"));
        }
        let inode = read_bytes(self.dev, at, self.inode_size)?;
        let flags = le32(&inode, 0x20);
        if flags & FL_ENCRYPT != 0 {
            return Err(format!("inode {n} is encrypted"));
        }
        if flags & FL_INLINE_DATA != 0 {
            return Err(format!("inode {n} keeps its data inline"));
        }
        Ok(inode)
    }

    /// The filesystem block holding logical block `lbn` of `inode`;
    /// `None` for a hole.
    fn map(&mut self, inode: &[u8], lbn: u32) -> Result<Option<u64>, String> {
        let iblock = &inode[0x28..0x28 + 60];
        if le32(inode, 0x20) & FL_EXTENTS == 0 {
            // ext2/3: the first 12 blocks are direct.
            if lbn >= 12 {
                return Err("an ext2/3 file past its 12 direct blocks".into());
            }
            let b = u64::from(le32(iblock, lbn as usize * 4));
            return Ok((b != 0).then_some(b));
        }
        let mut node = iblock.to_vec();
        let mut expect_depth = None;
        loop {
            if node.len() < 12 || le16(&node, 0) != 0xf30a {
                return Err("an extent node without its magic".into());
            }
            let entries = usize::from(le16(&node, 2)).min((node.len() - 12) / 12);
            let depth = le16(&node, 6);
            if depth > MAX_EXTENT_DEPTH || expect_depth.is_some_and(|d| d != depth) {
                return Err(format!("an extent node at depth {depth}"));
            }
            let entry = |i: usize| &node[12 + 12 * i..24 + 12 * i];
            if depth == 0 {
                for i in 0..entries {
                    let e = entry(i);
                    let (first, len) = (le32(e, 0), le16(e, 4));
                    let start = u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8));
                    let (len, unwritten) = if len > 32768 { (len - 32768, true) } else { (len, false) };
                    if lbn >= first && u64::from(lbn) < u64::from(first) + u64::from(len) {
                        if unwritten {
                            return Err("an unwritten extent".into());
                        }
                        let b = start + u64::from(lbn - first);
                        if b == 0 || b >= self.blocks {
                            return Err(format!("block {b} is outside the filesystem"));
                        }
                        return Ok(Some(b));
                    }
                }
                return Ok(None);
            }
            // The last index whose first block is at or before lbn.
            let Some(i) = (0..entries).rev().find(|&i| le32(entry(i), 0) <= lbn) else { return Ok(None) };
            let e = entry(i);
            let leaf = u64::from(le16(e, 8)) << 32 | u64::from(le32(e, 4));
            node = self.block(leaf)?;
            expect_depth = Some(depth - 1);
        }
    }

    /// The inode of `name` in directory `dir`, scanning every block.
    fn lookup(&mut self, dir: &[u8], name: &[u8]) -> Result<Option<u32>, String> {
        let size = u64::from(le32(dir, 0x4)) | u64::from(le32(dir, 0x6c)) << 32;
        let nblocks = size.div_ceil(self.bs);
        if nblocks > MAX_DIR_BLOCKS {
            return Err(format!("a directory of {nblocks} blocks"));
        }
        for lbn in 0..nblocks {
            let Some(b) = self.map(dir, lbn as u32)? else { continue };
            let data = self.block(b)?;
            let mut at = 0;
            while at + 8 <= data.len() {
                let ino = le32(&data, at);
                let rec_len = usize::from(le16(&data, at + 4));
                let name_len = if self.filetype { usize::from(data[at + 6]) } else { usize::from(le16(&data, at + 6)) };
                if rec_len < 8 || at + rec_len > data.len() || 8 + name_len > rec_len {
                    break; // the rest of a block a checksum tail or damage ends
                }
                if ino != 0 && &data[at + 8..at + 8 + name_len] == name {
                    return Ok(Some(ino));
                }
                at += rec_len;
            }
        }
        Ok(None)
    }
}

/// Write `data` over `runs` (as [`ext4`] found them), reading and
/// rewriting only the sectors the runs cover, then flush.
pub fn write_runs(dev: &mut dyn BlockDevice, runs: &[Run], data: &[u8]) -> Result<(), String> {
    if runs.iter().map(|r| r.len).sum::<usize>() != data.len() {
        return Err("the new bytes are not as long as the file".into());
    }
    let ss = u64::from(dev.sector_size());
    let mut from = 0;
    for r in runs {
        let first = r.offset / ss;
        let end = (r.offset + r.len as u64).div_ceil(ss);
        let mut buf = read_bytes(dev, first * ss, ((end - first) * ss) as usize)?;
        let at = (r.offset - first * ss) as usize;
        buf[at..at + r.len].copy_from_slice(&data[from..from + r.len]);
        dev.write(first, &buf).map_err(|e| format!("writing sector {first}: {e}"))?;
        from += r.len;
    }
    dev.flush().map_err(|e| format!("flushing: {e}"))
}

/// The bytes `runs` hold now, concatenated.
pub fn read_runs(dev: &mut dyn BlockDevice, runs: &[Run]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for r in runs {
        out.extend(read_bytes(dev, r.offset, r.len)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::block::MemDisk;
    use crate::disk::testimg::mkfs_ext4;
    use std::path::Path;

    const HEAD: &[u8] = b"# GRUB Environment Block\nsaved_entry=0\n";

    fn env(fill: u8) -> Vec<u8> {
        let mut v = HEAD.to_vec();
        v.resize(1024, fill);
        v
    }

    /// /boot/grub with grubenv among enough files that the directory is
    /// an htree, and a large file next to it.
    fn fill(root: &Path) {
        let grub = root.join("boot/grub");
        std::fs::create_dir_all(&grub).unwrap();
        for i in 0..300 {
            std::fs::write(grub.join(format!("module-with-a-long-name-{i}.mod")), b"x").unwrap();
        }
        std::fs::write(grub.join("grubenv"), env(b'#')).unwrap();
        std::fs::write(root.join("big"), vec![7u8; 300_000]).unwrap();
        std::os::unix::fs::symlink("grub/grubenv", root.join("boot/l")).unwrap();
    }

    #[test]
    fn finds_grubenv_and_writes_only_its_bytes() {
        let cases: [(&[&str], u32); 3] = [(&["-b", "4096"], 512), (&["-t", "ext3", "-b", "1024"], 512), (&["-b", "4096"], 4096)];
        for (opts, ss) in cases {
            let img = mkfs_ext4(8 << 10, opts, fill);
            let mut disk = MemDisk::new(img.clone(), ss).unwrap();
            let runs = ext4(&mut disk, "/boot/grub/grubenv", 1024).unwrap();
            assert_eq!(runs.iter().map(|r| r.len).sum::<usize>(), 1024, "{opts:?}");
            assert_eq!(read_runs(&mut disk, &runs).unwrap(), env(b'#'), "{opts:?}");
            write_runs(&mut disk, &runs, &env(b'!')).unwrap();
            let after = disk.data().to_vec();
            // Exactly the file's changed bytes changed, all inside the runs.
            let changed: Vec<usize> = (0..img.len()).filter(|&i| img[i] != after[i]).collect();
            assert_eq!(changed.len(), 1024 - HEAD.len(), "{opts:?}");
            assert!(changed.iter().all(|&i| runs.iter().any(|r| (r.offset as usize..r.offset as usize + r.len).contains(&i))));
            let fs = crate::disk::fs::Ext4Fs::open(MemDisk::new(after, ss).unwrap()).unwrap();
            assert_eq!(fs.read_file("/boot/grub/grubenv").unwrap(), env(b'!'), "{opts:?}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_write_in_place() {
        let img = mkfs_ext4(8 << 10, &[], fill);
        let mut disk = MemDisk::new(img.clone(), 512).unwrap();
        assert_eq!(ext4(&mut disk, "/boot/l", 1024).unwrap_err(), "/boot/l is a symlink");
        assert_eq!(ext4(&mut disk, "/boot/x", 1024).unwrap_err(), "no x in /boot");
        assert_eq!(ext4(&mut disk, "/big/x", 1024).unwrap_err(), "/big is not a directory");
        assert_eq!(ext4(&mut disk, "/big", 1024).unwrap_err(), "/big is 300000 bytes, more than 1024");
        // A journal that needs recovery.
        let mut dirty = img.clone();
        dirty[1024 + 0x60] |= 0x4;
        let e = ext4(&mut MemDisk::new(dirty, 512).unwrap(), "/boot/grub/grubenv", 1024).unwrap_err();
        assert!(e.contains("journal needs recovery"), "{e}");
        // Blocks smaller than sectors.
        let img = mkfs_ext4(8 << 10, &["-b", "1024"], fill);
        let e = ext4(&mut MemDisk::new(img, 4096).unwrap(), "/boot/grub/grubenv", 1024).unwrap_err();
        assert!(e.contains("smaller than the disk's 4096-byte sectors"), "{e}");
    }
}
