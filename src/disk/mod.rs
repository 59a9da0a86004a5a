//! From a block device to a kernel: partition tables ([`part`]), read-only
//! ext2/3/4 ([`fs`]) and the boot entries found there ([`bootcfg`]), for
//! booting the kernel that lives on a guest's own disk. Pure `no_std` +
//! `alloc`; everything the disk says is checked.

use alloc::string::String;
use alloc::vec::Vec;

pub mod bootcfg;
pub mod fs;
pub mod part;

#[cfg(test)]
mod testimg;

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
}
