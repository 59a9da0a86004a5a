//! What the filesystem targets share, and the `fat` target's body.
//!
//! The `fat` target: read-only FAT12/16/32 (`disk::fat::FatFs`, lamfat
//! underneath) on a fuzzed image: an ESP holding BLS entries, as the disk
//! boot reads one.
//!
//! Input: [`fs_input`]'s. Invariants:
//! no panic and no hang, whatever the cluster chains say (each operation
//! reads at most its budget: 256 KiB here past the file's size); the
//! device is never asked for a sector past its end, nor written; `open`
//! and every operation on the paths the disk boot reads end in a value or
//! a typed error that prints as one line; a file read whole is as long as
//! `file_len` says and within the read cap; listings hold no `.`, `..` or
//! empty names and are sorted; `Files` says absent as `Ok(None)`.

use hvmlite::dev::block::{check_request, BlockDevice, BlockError, MemDisk};
use hvmlite::disk::fat::FatFs;
use hvmlite::disk::fs::FsError;
use hvmlite::disk::nofollow::NoFollow;
use hvmlite::disk::Files;

/// A `MemDisk` that treats any request past its end, or any write, as a
/// finding: the filesystems must refuse bad block numbers themselves.
pub struct StrictDisk(pub MemDisk);

impl BlockDevice for StrictDisk {
    fn sector_size(&self) -> u32 {
        self.0.sector_size()
    }
    fn sectors(&self) -> u64 {
        self.0.sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        if let Err(e) = check_request(self.sector_size(), self.sectors(), sector, buf.len()) {
            panic!("read past the device: {e}");
        }
        self.0.read(sector, buf)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), BlockError> {
        panic!("a read-only filesystem wrote");
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
}

/// The filesystem targets' input: a mode byte (bit 0: 4096-byte sectors;
/// bits 1-2: the read-ahead window, 4 KiB to 256 KiB), the disk's size in
/// KiB (u16), then the image from byte 0, zero-padded to that size (so a
/// seed need not carry its trailing zeros).
pub fn fs_input(data: &[u8]) -> (StrictDisk, usize) {
    let mode = data.first().copied().unwrap_or(0);
    let ss: u32 = if mode & 1 == 1 { 4096 } else { 512 };
    let window = 4096 << (((mode >> 1) & 3) * 2);
    let kib = u16::from_le_bytes([data.get(1).copied().unwrap_or(0), data.get(2).copied().unwrap_or(0)]);
    let size = (kib as usize % 1024 + 1) * 1024;
    let mut image = data.get(3..).unwrap_or(&[]).to_vec();
    image.truncate(size);
    image.resize(size.next_multiple_of(ss as usize), 0);
    (StrictDisk(MemDisk::new(image, ss).unwrap()), window)
}

/// The large-filesystem targets' input (`xfs`, `btrfs`: their images are
/// mostly zeros): a mode byte (bit 0: 4096-byte sectors; bits 1-2: the
/// read-ahead window, 4 KiB to 256 KiB; the rest is the target's), the
/// disk's size in MiB - 1 (modulo `max_mib`), then records of a sector
/// number (u32) and a count (u8) followed by that many 512-byte sectors.
/// Returns the disk, the window and the mode byte.
pub fn sparse_input(data: &[u8], max_mib: usize) -> (StrictDisk, usize, u8) {
    let mode = data.first().copied().unwrap_or(0);
    let ss: u32 = if mode & 1 == 1 { 4096 } else { 512 };
    let window = 4096 << (((mode >> 1) & 3) * 2);
    let mib = usize::from(data.get(1).copied().unwrap_or(0)) % max_mib + 1;
    // Zeroed pages are not touched until written: a large sparse disk is cheap.
    let mut image = vec![0u8; mib << 20];
    let mut rest = data.get(2..).unwrap_or(&[]);
    while rest.len() >= 5 {
        let sector = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let n = usize::from(rest[4]);
        rest = &rest[5..];
        let bytes = &rest[..(n * 512).min(rest.len())];
        rest = &rest[bytes.len()..];
        let at = sector.saturating_mul(512);
        if at < image.len() {
            let end = (at + bytes.len()).min(image.len());
            image[at..end].copy_from_slice(&bytes[..end - at]);
        }
    }
    (StrictDisk(MemDisk::new(image, ss).unwrap()), window, mode)
}

/// A reader that follows no symlinks itself (`xfs`, `btrfs`), on boot
/// paths: a file read whole is within `max` and as long as `file_len`
/// said, `exists` and listings answer or fail in one line, and `Files`
/// says absent as `Ok(None)` when reading `cfg`.
pub fn check_nofollow<F: NoFollow + Files<Error = FsError>>(fs: &mut F, max: u64, paths: &[&str], dirs: &[&str], cfg: &str) {
    for &path in paths {
        let len = fs.file_len(path);
        match fs.read_file(path) {
            Ok(d) => {
                assert!(d.len() as u64 <= max);
                if let Ok(l) = len {
                    assert_eq!(l, d.len(), "{path}");
                }
            }
            Err(e) => one_line(&e),
        }
        if let Err(e) = NoFollow::exists(fs, path) {
            one_line(&e);
        }
    }
    for dir in dirs {
        check_listing(fs.list_dir(dir));
    }
    if let Err(e) = Files::read(fs, cfg) {
        assert_ne!(e, FsError::NotFound, "absent must be Ok(None)");
        one_line(&e);
    }
}

/// A listing holds no `.`, `..` or empty names and is sorted; an error
/// prints as one line.
pub fn check_listing(r: Result<Vec<String>, FsError>) {
    match r {
        Ok(names) => {
            assert!(names.iter().all(|n| !n.is_empty() && n != "." && n != ".."), "{names:?}");
            assert!(names.windows(2).all(|w| w[0] <= w[1]));
        }
        Err(e) => one_line(&e),
    }
}

/// An error must print as one non-empty line.
pub fn one_line(e: &dyn std::fmt::Display) {
    let msg = e.to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
}

const MAX_FILE: u64 = 1 << 20;

/// One input of the `fat` target (see the top of this file).
pub fn fat(data: &[u8]) {
    let (disk, window) = fs_input(data);
    let mut fs = match FatFs::open_with_window(disk, window) {
        Ok(fs) => fs,
        Err(e) => return one_line(&e),
    };
    fs.set_max_file(MAX_FILE);
    fs.set_meta_budget(256 << 10);
    for path in ["/vmlinuz", "/loader/loader.conf", "/loader/entries/debian-6.1.conf", "/EFI/BOOT/../x", "/a/b/c/d"] {
        let len = fs.file_len(path);
        match fs.read_file(path) {
            Ok(d) => {
                assert!(d.len() as u64 <= MAX_FILE);
                assert_eq!(len.ok(), Some(d.len()), "{path}");
            }
            Err(e) => one_line(&e),
        }
        if let Err(e) = fs.exists(path) {
            one_line(&e);
        }
    }
    for dir in ["/", "/loader/entries", "/loader/entries/"] {
        check_listing(fs.list_dir(dir));
    }
    let files: &mut dyn Files<Error = FsError> = &mut fs;
    for path in ["/loader/loader.conf", "/loader/entries"] {
        if let Err(e) = files.read(path) {
            assert_ne!(e, FsError::NotFound, "absent must be Ok(None)");
            one_line(&e);
        }
    }
}
