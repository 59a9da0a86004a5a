//! Read-only ext2/3/4 (`disk::fs::Ext4Fs`, ext4-view underneath) on a
//! fuzzed image.
//!
//! Input: a mode byte (bit 0: 4096-byte sectors; bits 1-2: the read-ahead
//! window, 4 KiB to 256 KiB), the disk's size in KiB (u16), then the image
//! from byte 0, zero-padded to that size (so a seed need not carry its
//! trailing zeros). Invariants: no panic and no hang; the device is never
//! asked for a sector past its end, whatever block numbers the image holds
//! (`CachedReader` refuses them first); `Ext4Fs::open` and every operation
//! on a few boot paths (`/vmlinuz`, a loop, `/boot/grub/grub.cfg`, `/`,
//! `/boot`) end in a value or a typed error that prints as one line; a file
//! read whole is exactly as long as `stat` says; listings hold no `.`,
//! `..` or empty names and are sorted; the read cap (1 MiB here) holds.
#![no_main]

use hvmlite::dev::block::{check_request, BlockDevice, BlockError, MemDisk};
use hvmlite::disk::fs::{Ext4Fs, FileKind, FsError};
use hvmlite::disk::Files;
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// A `MemDisk` that treats any request past its end as a finding.
struct StrictDisk(MemDisk);

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

const MAX_FILE: u64 = 1 << 20;

fn one_line(e: &FsError) {
    let msg = e.to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{e:?} -> {msg:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let ss: u32 = if mode & 1 == 1 { 4096 } else { 512 };
    let window = 4096 << (((mode >> 1) & 3) * 2);
    let size = (b.u16() as usize % 1024 + 1) * 1024;
    let mut image = b.rest().to_vec();
    image.truncate(size);
    image.resize(size.next_multiple_of(ss as usize), 0);
    let disk = StrictDisk(MemDisk::new(image, ss).unwrap());

    let mut fs = match Ext4Fs::open_with_window(disk, window) {
        Ok(fs) => fs,
        Err(e) => return one_line(&e),
    };
    fs.set_max_file(MAX_FILE);
    for path in ["/vmlinuz", "/boot/vmlinuz-6.1", "/loop-a", "/boot/grub/grub.cfg"] {
        let stat = fs.stat(path);
        match fs.read_file(path) {
            Ok(d) => {
                assert!(d.len() as u64 <= MAX_FILE);
                if let Ok(s) = stat {
                    assert_eq!(s.kind, FileKind::File);
                    assert_eq!(s.size, d.len() as u64, "{path}");
                }
            }
            Err(e) => one_line(&e),
        }
        for r in [fs.canonicalize(path).map(|_| ()), fs.read_link(path).map(|_| ()), fs.exists(path).map(|_| ())] {
            if let Err(e) = r {
                one_line(&e);
            }
        }
    }
    for dir in ["/", "/boot"] {
        match fs.list_dir(dir) {
            Ok(names) => {
                assert!(names.iter().all(|n| !n.is_empty() && n != "." && n != ".."), "{names:?}");
                assert!(names.windows(2).all(|w| w[0] <= w[1]));
            }
            Err(e) => one_line(&e),
        }
    }
    let files: &mut dyn Files<Error = FsError> = &mut fs;
    if let Err(e) = files.read("/boot/grub/grub.cfg") {
        assert_ne!(e, FsError::NotFound, "absent must be Ok(None)");
        one_line(&e);
    }
});
