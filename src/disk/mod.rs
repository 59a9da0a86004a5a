//! From a block device to a kernel: partition tables ([`part`]), read-only
//! ext2/3/4 ([`fs`]), XFS ([`xfs`]), btrfs ([`btrfs`]) and FAT ([`fat`],
//! for an ESP or XBOOTLDR partition), and the boot entries found there ([`bootcfg`]), for
//! booting the kernel that lives on a guest's own disk. Pure `no_std` +
//! `alloc`; everything the disk says is checked.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::dev::block::BlockDevice;
use btrfs::BtrfsFs;
use fat::FatFs;
use fs::{Ext4Fs, FsError, ReadStats};
use nofollow::NoFollow;
use xfs::XfsFs;

pub mod blocklist;
pub mod bootcfg;
pub mod btrfs;
pub mod fat;
pub mod fs;
pub mod nofollow;
pub mod part;
pub mod xfs;

#[cfg(test)]
mod testimg;

/// The little-endian `u16` at byte `at` of an on-disk structure (the
/// caller has checked that `b` holds it).
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The little-endian `u32` at byte `at` (as [`le16`]).
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reading files by absolute path, for code that only needs that much
/// (the boot-config parsers): a filesystem, or a fake in tests.
///
/// `Ok(None)` means the path does not exist; every other failure (a
/// corrupt filesystem, a device error, a directory where a file was asked
/// for) is an `Err`, so "absent" and "unreadable" are never confused.
pub trait Files {
    type Error;
    /// The whole file at `path`, symlinks followed.
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, Self::Error>;
    /// The names in directory `dir` (no `.` or `..`).
    fn list(&mut self, dir: &str) -> Result<Option<Vec<String>>, Self::Error>;
    /// Whether `path` exists (GRUB's `[ -f … ]`, Debian's symlinks): a
    /// filesystem answers without reading the file.
    fn exists(&mut self, path: &str) -> Result<bool, Self::Error> {
        Ok(self.read(path)?.is_some())
    }
    /// Start paths at `s` from now on, on a filesystem with subvolumes
    /// (btrfs); the others have one tree and ignore it. An error when the
    /// subvolume named does not exist.
    fn set_subvol(&mut self, _s: &Subvol) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Whether the default subvolume is another tree than the top level
    /// (btrfs after `btrfs subvolume set-default`, as snapper leaves it).
    fn default_subvol_differs(&mut self) -> bool {
        false
    }
    /// The filesystem's UUID as `blkid` prints it, when it has one.
    fn fs_uuid(&mut self) -> Option<String> {
        None
    }
    /// The names of the subvolumes in the top level's root directory
    /// (btrfs), sorted; none elsewhere.
    fn top_subvols(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Which tree of a btrfs filesystem paths start at, as GRUB decides it
/// from its variables when it opens a file: the top level unless
/// `btrfs_relative_path` starts with `y` or `1`; then the subvolume
/// `btrfs_subvol` names (a path from the top level), else the one
/// `btrfs_subvolid` names, else the default subvolume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Subvol {
    #[default]
    Top,
    Default,
    Path(String),
    Id(u64),
}

/// A partition's filesystem: ext2/3/4, XFS, btrfs or FAT (boxed: the
/// larger).
pub enum Volume {
    Ext4(Ext4Fs),
    Xfs(Box<XfsFs>),
    Btrfs(Box<BtrfsFs>),
    Fat(Box<FatFs<Box<dyn BlockDevice>>>),
}

/// Each [`Volume`] kind's answer to the same call.
macro_rules! each {
    ($v:expr, $fs:ident => $e:expr) => {
        match $v {
            Volume::Ext4($fs) => $e,
            Volume::Xfs($fs) => $e,
            Volume::Btrfs($fs) => $e,
            Volume::Fat($fs) => $e,
        }
    };
}

impl Volume {
    /// What `dev()` holds, with `window`-byte read-ahead: ext2/3/4 if its
    /// superblock magic is there, else XFS or btrfs if its magic is, else FAT if its
    /// first sector is a FAT boot sector, else `Ok(None)`. Past that first look, whatever is
    /// wrong is an error, never "some other filesystem".
    pub fn open<D: BlockDevice + 'static>(mut dev: impl FnMut() -> D, window: usize) -> Result<Option<Volume>, FsError> {
        match Ext4Fs::open_with_window(dev(), window) {
            Ok(fs) => return Ok(Some(Volume::Ext4(fs))),
            Err(FsError::NotExt) => {}
            Err(e) => return Err(e),
        }
        let mut d = dev();
        if XfsFs::looks_like_xfs(&mut d)? {
            return Ok(Some(Volume::Xfs(Box::new(XfsFs::open_with_window(Box::new(d), window)?))));
        }
        if BtrfsFs::looks_like_btrfs(&mut d)? {
            return Ok(Some(Volume::Btrfs(Box::new(BtrfsFs::open_with_window(Box::new(d), window)?))));
        }
        match FatFs::open_with_window(Box::new(dev()) as Box<dyn BlockDevice>, window) {
            Ok(fs) => Ok(Some(Volume::Fat(Box::new(fs)))),
            Err(FsError::NotFat) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The size of the file at `path`, refused above the read limit.
    pub fn file_len(&self, path: &str) -> Result<usize, FsError> {
        each!(self, fs => fs.file_len(path))
    }

    /// Read the file at `path` into `dst`, exactly as long as the file.
    pub fn read_file_into(&self, path: &str, dst: &mut [u8]) -> Result<(), FsError> {
        each!(self, fs => fs.read_file_into(path, dst))
    }

    /// Replace the bytes of the file at `path`, which must read as `old`
    /// now, with `new` (as long), in place on `dev` (the device this
    /// filesystem is on): only the file's own blocks are written, nothing
    /// is allocated, no metadata changes (GRUB's `save_env`). ext2/3/4,
    /// XFS (whose log, if not replayed yet, must not change the file) and
    /// FAT (the file's cluster chain; its directory entry's times are left
    /// as they are, as GRUB leaves them); every doubt is a refusal, with why.
    pub fn rewrite_in_place(&mut self, dev: &mut dyn BlockDevice, path: &str, old: &[u8], new: &[u8]) -> Result<(), String> {
        if old.len() != new.len() {
            return Err(alloc::format!("{} new bytes for a file of {}", new.len(), old.len()));
        }
        match Files::read(self, path) {
            Ok(Some(b)) if b == old => {}
            Ok(_) => return Err("it changed since it was read".into()),
            Err(e) => return Err(alloc::format!("{e}")),
        }
        let runs = match self {
            Volume::Ext4(_) => blocklist::ext4(dev, path, old.len() as u64)?,
            Volume::Xfs(fs) => {
                let (ino, p) = fs.inode_of(path).map_err(|e| alloc::format!("{e}"))?;
                XfsFs::same_without_log(dev, &p, ino, old)?;
                blocklist::xfs::runs(dev, ino, old.len() as u64)?
            }
            Volume::Fat(fs) => fs.runs(path, old.len()).map_err(|e| alloc::format!("{e}"))?,
            // GRUB does not write it there either (its blocks are
            // checksummed, maybe compressed, maybe shared with a snapshot).
            Volume::Btrfs(_) => return Err("it is on btrfs, where GRUB does not write it either".into()),
        };
        if blocklist::read_runs(dev, &runs)? != old {
            return Err("its blocks on the device do not hold what the filesystem reads".into());
        }
        blocklist::write_runs(dev, &runs, new)?;
        if blocklist::read_runs(dev, &runs)? != new {
            return Err("reading it back gave other bytes".into());
        }
        Ok(())
    }

    pub fn read_stats(&self) -> ReadStats {
        each!(self, fs => fs.read_stats())
    }
}

impl Files for Volume {
    type Error = FsError;

    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        fs::absent_is_none(each!(self, fs => fs.read_file(path)))
    }

    fn list(&mut self, dir: &str) -> Result<Option<Vec<String>>, FsError> {
        fs::absent_is_none(each!(self, fs => fs.list_dir(dir)))
    }

    fn exists(&mut self, path: &str) -> Result<bool, FsError> {
        each!(self, fs => fs.exists(path))
    }

    fn set_subvol(&mut self, s: &Subvol) -> Result<(), FsError> {
        match self {
            Volume::Btrfs(fs) => fs.set_subvol(s),
            _ => Ok(()),
        }
    }

    fn default_subvol_differs(&mut self) -> bool {
        match self {
            Volume::Btrfs(fs) => Files::default_subvol_differs(&mut **fs),
            _ => false,
        }
    }

    fn fs_uuid(&mut self) -> Option<String> {
        match self {
            Volume::Btrfs(fs) => fs.uuid(),
            _ => None,
        }
    }

    fn top_subvols(&mut self) -> Vec<String> {
        match self {
            Volume::Btrfs(fs) => fs.top_subvols(),
            _ => Vec::new(),
        }
    }
}
