//! Read-only XFS on a [`BlockDevice`], through the `lamxfs` crate (v4 and
//! v5 with CRCs checked, `nrext64`, sparse inodes, `ftype`, reflink,
//! rmapbt, bigtime, shortform/block/leaf/node directories, B+tree extent
//! maps, a dirty log replayed in memory only): Fedora Server's, the RHEL
//! family's and Amazon Linux's `/boot`.
//!
//! What hvmlite adds around it, as for ext4 ([`super::fs`]): the same
//! read-ahead ([`CachedReader`]) between lamxfs's byte reads and the
//! device, and requests past the device refused before the device is
//! asked; symlinks, `..` and the read limit as for every reader that
//! follows none ([`NoFollow`]: a link's size is checked before its target
//! is read, so a forged size cannot make lamxfs allocate its 256 MiB
//! cap); and lamxfs's error tokens as [`FsError`]s.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use lamxfs::{BlockRead, Error as XfsError, Path, SuperblockReason, Xfs};

use super::fs::{absent_is_none, files_by_path, CachedReader, FileKind, FsError, ReadStats};
use super::nofollow::{kind, NoFollow};
use super::Files;
use crate::dev::block::{BlockDevice, BlockError};

/// `XFSB`, big-endian, at byte 0 of the superblock.
const MAGIC: [u8; 4] = *b"XFSB";

/// lamxfs's byte reads, through the read-ahead; with `hide` (the
/// internal log's first byte and length) the log reads as zeros, so
/// lamxfs finds nothing to replay and shows what is on the disk itself.
/// One type for both views, so lamxfs is compiled once.
struct Reader<'d> {
    dev: CachedReader<Box<dyn BlockDevice + 'd>>,
    hide: Option<(u64, u64)>,
}

impl BlockRead for Reader<'_> {
    type Error = BlockError;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.dev.read_at(offset, buf)?;
        if let Some((start, len)) = self.hide {
            // In range: the read above succeeded.
            let (a, b) = (offset.max(start), (offset + buf.len() as u64).min(start.saturating_add(len)));
            if a < b {
                buf[(a - offset) as usize..(b - offset) as usize].fill(0);
            }
        }
        Ok(())
    }
}

impl From<XfsError> for FsError {
    fn from(e: XfsError) -> Self {
        match e {
            XfsError::NotFound { .. } => FsError::NotFound,
            XfsError::NotARegularFile => FsError::NotAFile,
            XfsError::FileTooLarge { size, max } => FsError::TooLarge { size, limit: max },
            XfsError::UnsupportedFeature(f) => FsError::Unsupported(format!("XFS feature {f}")),
            XfsError::BadSuperblock(
                r @ (SuperblockReason::ExternalLog | SuperblockReason::RealtimeDevice | SuperblockReason::DirtyLog),
            ) => FsError::Unsupported(format!("XFS: {}", XfsError::BadSuperblock(r))),
            XfsError::Io { token, offset } => FsError::Other(format!("XFS: reading byte {offset} ({token}) failed")),
            other => FsError::Corrupt(format!("XFS: {other}")),
        }
    }
}

/// An opened XFS filesystem. Paths are absolute, inside the filesystem;
/// symlinks are followed within it.
pub struct XfsFs {
    fs: RefCell<Xfs<Reader<'static>>>,
    stats: Rc<Cell<ReadStats>>,
    max_file: u64,
}

impl XfsFs {
    /// Whether `dev` holds XFS: its superblock magic. `Ok(false)` for a
    /// device too small to hold one.
    pub fn looks_like_xfs(dev: &mut dyn BlockDevice) -> Result<bool, BlockError> {
        let ss = dev.sector_size() as usize;
        if dev.sectors() == 0 {
            return Ok(false);
        }
        let mut sector = vec![0u8; ss];
        dev.read(0, &mut sector)?;
        Ok(sector[..4] == MAGIC)
    }

    /// Open the XFS on `dev` with `window`-byte read-ahead (the caller has
    /// seen the magic).
    pub fn open_with_window(dev: Box<dyn BlockDevice>, window: usize) -> Result<Self, FsError> {
        let size = dev.size_bytes();
        let reader = CachedReader::new(dev, window)?;
        let stats = reader.shared_stats();
        let fs = Xfs::open(Reader { dev: reader, hide: None }, size)?;
        Ok(XfsFs { fs: RefCell::new(fs), stats, max_file: size })
    }

    /// The largest file read; by default the device's size.
    pub fn set_max_file(&mut self, limit: u64) {
        self.max_file = limit;
    }

    /// The inode number of the file at `path` (symlinks followed), and
    /// the path with none in it.
    pub fn inode_of(&self, path: &str) -> Result<(u64, Vec<u8>), FsError> {
        let p = self.resolve(path, true)?;
        let ino = self.fs.borrow_mut().resolve(Path::new(&p))?;
        Ok((ino.ino, p))
    }

    /// Whether the filesystem without its log (what is on `dev` itself,
    /// nothing replayed) has the same inode `ino` at `p`, holding `old`:
    /// a log that changed them makes an in-place write of their blocks
    /// wrong, and is refused.
    pub fn same_without_log(dev: &mut dyn BlockDevice, p: &[u8], ino: u64, old: &[u8]) -> Result<(), String> {
        let g = crate::disk::blocklist::xfs::Geometry::read(dev)?;
        let size = dev.size_bytes();
        let cached = CachedReader::new(Box::new(dev) as Box<dyn BlockDevice + '_>, 64 << 10).map_err(|e| format!("{e}"))?;
        let mut raw =
            Xfs::open(Reader { dev: cached, hide: Some(g.log) }, size).map_err(|e| format!("without its log: {}", FsError::from(e)))?;
        let unlogged = raw.resolve(Path::new(p)).map_err(|e| format!("without its log: {}", FsError::from(e)))?;
        if unlogged.ino != ino {
            return Err("its log (not replayed yet) changes which inode it is".into());
        }
        let mut bytes = vec![0u8; old.len()];
        let n = raw.read_file_at(&unlogged, 0, &mut bytes).map_err(|e| format!("without its log: {}", FsError::from(e)))?;
        if n != old.len() || bytes != old {
            return Err("its log (not replayed yet) changes what it holds".into());
        }
        Ok(())
    }

    /// The volume label, if it has one.
    pub fn label(&self) -> String {
        self.fs.borrow().label().unwrap_or("").to_string()
    }

    pub fn read_stats(&self) -> ReadStats {
        self.stats.get()
    }
}

impl NoFollow for XfsFs {
    fn lstat_raw(&self, p: &[u8]) -> Result<(FileKind, u64), FsError> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.resolve(Path::new(p))?;
        let m = fs.metadata(&ino)?;
        Ok((kind(m.is_symlink(), m.is_dir(), m.is_file()), m.size()))
    }

    fn link_raw(&self, p: &[u8]) -> Result<Vec<u8>, FsError> {
        Ok(self.fs.borrow_mut().read_link(Path::new(p))?)
    }

    fn read_raw(&self, p: &[u8], dst: &mut [u8]) -> Result<(), FsError> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.resolve(Path::new(p))?;
        let n = fs.read_file_at(&ino, 0, dst)?;
        if n != dst.len() {
            return Err(FsError::Corrupt(format!("read {n} bytes of a {}-byte file", dst.len())));
        }
        Ok(())
    }

    fn names_raw(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, FsError> {
        Ok(self.fs.borrow_mut().read_dir(Path::new(p))?.into_iter().map(|e| e.name).collect())
    }

    fn max_file(&self) -> u64 {
        self.max_file
    }
}

files_by_path!([] XfsFs, NoFollow::exists);

#[cfg(test)]
#[path = "../../tests/support/xfs_image.rs"]
mod xfs_image;

#[cfg(test)]
mod tests {
    use super::xfs_image::mkfs_xfs;
    use super::*;
    use crate::dev::block::MemDisk;
    use crate::disk::blocklist;

    fn open(img: &[u8], ss: u32) -> XfsFs {
        let mut dev = MemDisk::new(img.to_vec(), ss).unwrap();
        assert!(XfsFs::looks_like_xfs(&mut dev).unwrap());
        XfsFs::open_with_window(Box::new(dev), 64 << 10).unwrap()
    }

    fn big(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    #[test]
    fn reads_a_fedora_server_boot() {
        let kernel = big(3_000_000);
        let mut files = vec![
            ("/vmlinuz-6.8.5-301.fc40.x86_64", kernel.clone()),
            ("/loader/entries/abc-6.8.5-301.fc40.x86_64.conf", b"title Fedora\nlinux /vmlinuz-6.8.5-301.fc40.x86_64\n".to_vec()),
            ("/grub2/grub.cfg", b"blscfg\n".to_vec()),
        ];
        // Enough names that /grub2 is a leaf or node directory.
        for i in 0..400 {
            files.push((Box::leak(format!("/grub2/i386-pc/module-number-{i}.mod").into_boxed_str()), vec![1]));
        }
        let img = mkfs_xfs(64, &files, &[("/vmlinuz", "vmlinuz-6.8.5-301.fc40.x86_64"), ("/loop", "loop"), ("/abs", "/grub2/../vmlinuz")]);
        for ss in [512, 4096] {
            let mut fs = open(&img, ss);
            assert_eq!(fs.read_file("/vmlinuz-6.8.5-301.fc40.x86_64").unwrap(), kernel);
            assert_eq!(fs.read_file("/abs").unwrap(), kernel, "symlinks followed here");
            assert_eq!(fs.file_len("/vmlinuz").unwrap(), kernel.len());
            assert_eq!(fs.read_file("/grub2/i386-pc/module-number-399.mod").unwrap(), [1]);
            assert_eq!(fs.list_dir("/grub2/i386-pc").unwrap().len(), 400);
            assert_eq!(fs.list_dir("/loader/entries").unwrap(), ["abc-6.8.5-301.fc40.x86_64.conf"]);
            assert_eq!(fs.read_file("/loop"), Err(FsError::SymlinkLoop));
            assert_eq!(fs.read_file("/nope"), Err(FsError::NotFound));
            assert_eq!(fs.read_file("/grub2"), Err(FsError::IsADirectory));
            assert_eq!(Files::read(&mut fs, "/nope"), Ok(None));
            assert!(fs.exists("/grub2/grub.cfg").unwrap());
            fs.set_max_file(1000);
            assert!(matches!(fs.read_file("/vmlinuz"), Err(FsError::TooLarge { .. })));
        }
    }

    fn grubenv(vars: &str) -> Vec<u8> {
        let mut b = alloc::format!("# GRUB Environment Block\n{vars}").into_bytes();
        b.resize(1024, b'#');
        b
    }

    /// GRUB's `save_env` on Fedora Server's `/boot`: only the file's own
    /// bytes change, through a symlink too; a file that changed, or a
    /// size that is not the file's, is refused.
    #[test]
    fn grubenv_written_in_place() {
        let (old, new) = (grubenv("saved_entry=a\nboot_success=1\n"), grubenv("saved_entry=a\nboot_success=0\n"));
        let files = [("/grub2/grubenv", old.clone()), ("/vmlinuz", big(100_000)), ("/grub2/grub.cfg", b"blscfg\n".to_vec())];
        let img = mkfs_xfs(32, &files, &[("/grub2/env-link", "grubenv")]);
        for ss in [512, 4096] {
            let mut vol = crate::disk::Volume::Xfs(Box::new(open(&img, ss)));
            let mut dev = MemDisk::new(img.clone(), ss).unwrap();
            vol.rewrite_in_place(&mut dev, "/grub2/env-link", &old, &new).unwrap();
            let after = dev.into_inner();
            assert_eq!(open(&after, ss).read_file("/grub2/grubenv").unwrap(), new);
            let changed: Vec<usize> = (0..img.len()).filter(|&i| img[i] != after[i]).collect();
            assert_eq!(changed.len(), 1, "one byte differs between the two grubenvs");
            let e = vol.rewrite_in_place(&mut MemDisk::new(img.clone(), ss).unwrap(), "/grub2/grubenv", &new, &old).unwrap_err();
            assert_eq!(e, "it changed since it was read");
            let e = vol.rewrite_in_place(&mut MemDisk::new(img.clone(), ss).unwrap(), "/vmlinuz", &old, &new).unwrap_err();
            assert_eq!(e, "it changed since it was read");
        }
        // The inode walk on its own: the runs hold the file, a wrong size
        // or a directory's inode is refused.
        let vol = open(&img, 512);
        let (ino, _) = vol.inode_of("/grub2/grubenv").unwrap();
        let mut dev = MemDisk::new(img.clone(), 512).unwrap();
        let runs = blocklist::xfs::runs(&mut dev, ino, 1024).unwrap();
        assert_eq!(blocklist::read_runs(&mut dev, &runs).unwrap(), old);
        assert!(blocklist::xfs::runs(&mut dev, ino, 1000).unwrap_err().contains("not 1000"));
        let (dir, _) = vol.inode_of("/grub2").unwrap();
        assert!(blocklist::xfs::runs(&mut dev, dir, 1024).unwrap_err().contains("not a regular file"));
    }

    /// A crash right after `grub2-editenv` renamed a new grubenv into
    /// place: the log holds the rename, the disk the old directory. The
    /// filesystem reads the new file (its log replayed in memory); writing
    /// it in place is refused, since its inode is not yet the directory's
    /// on the disk.
    #[test]
    fn grubenv_not_written_while_the_log_changes_it() {
        let (old, new) = (grubenv("saved_entry=a\n"), grubenv("saved_entry=b\nnext_entry=c\n"));
        let img = mkfs_xfs(32, &[("/grub2/grubenv", old), ("/grub2/grub.cfg", b"blscfg\n".to_vec())], &[]);
        let crashed = super::xfs_image::rewrite_then_crash(&img, "/grub2/grubenv", &new);
        let fs = open(&crashed, 512);
        assert_eq!(fs.read_file("/grub2/grubenv").unwrap(), new, "the log replayed in memory");
        let mut vol = crate::disk::Volume::Xfs(Box::new(fs));
        let mut dev = MemDisk::new(crashed.clone(), 512).unwrap();
        let e = vol.rewrite_in_place(&mut dev, "/grub2/grubenv", &new, &grubenv("saved_entry=b\n")).unwrap_err();
        assert!(e.starts_with("its log (not replayed yet) changes"), "{e}");
        assert_eq!(dev.into_inner(), crashed, "nothing written");
    }

    #[test]
    fn not_xfs_and_corrupt_superblocks() {
        let mut dev = MemDisk::new(vec![0; 1 << 20], 512).unwrap();
        assert!(!XfsFs::looks_like_xfs(&mut dev).unwrap());
        let img = mkfs_xfs(32, &[("/a", vec![1])], &[]);
        let mut bad = img.clone();
        bad[40] ^= 0xff; // its UUID, under the superblock CRC
        let e = XfsFs::open_with_window(Box::new(MemDisk::new(bad, 512).unwrap()), 4096).err().unwrap();
        assert!(matches!(e, FsError::Corrupt(_)), "{e:?}");
    }

    /// The geometry the grubenv write reads from the superblock itself
    /// (no CRC checked there): a log start or a shift that does not fit
    /// is refused, never computed with overflow (the fuzz target's seed
    /// `regress-log-start-overflows`: a log start near 2^64).
    #[test]
    fn write_geometry_refuses_a_log_or_shift_that_does_not_fit() {
        use crate::disk::blocklist::xfs::Geometry;
        let img = mkfs_xfs(32, &[("/a", vec![1])], &[]);
        let g = Geometry::read(&mut MemDisk::new(img.clone(), 512).unwrap()).unwrap();
        assert!(g.log.0 > 0 && g.log.0 + g.log.1 <= img.len() as u64, "{:?}", g.log);
        let with = |at: usize, bytes: &[u8]| {
            let mut bad = img.clone();
            bad[at..at + bytes.len()].copy_from_slice(bytes);
            Geometry::read(&mut MemDisk::new(bad, 512).unwrap()).err().unwrap()
        };
        assert!(with(48, &[0xff; 8]).starts_with("its log (block 18446744073709551615,"), "sb_logstart");
        assert_eq!(with(48, &[0; 8]), "it has no internal log");
        assert_eq!(with(96, &[0; 4]), "it has no internal log");
        assert!(with(96, &[0xff; 4]).ends_with("lies outside the filesystem"), "sb_logblocks");
        assert_eq!(with(123, &[200]), "its superblock's geometry does not add up", "sb_inopblog");
    }
}
