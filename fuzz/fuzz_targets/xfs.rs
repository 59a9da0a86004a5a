//! Read-only XFS (`disk::xfs::XfsFs`, lamxfs underneath) on a fuzzed
//! image.
//!
//! Input: a mode byte (bit 0: 4096-byte sectors; bits 1-2: the read-ahead
//! window), the disk's size in MiB (u8, 1 to 32), then sparse sectors:
//! records of a sector number (u32) and a count (u8) followed by that many
//! 512-byte sectors (an XFS image is mostly zeros: a 20 MiB seed holds
//! about 120 sectors that are not). Invariants: no panic and no hang; the
//! device is never asked for a sector past its end, whatever block
//! numbers the image holds (`CachedReader` refuses them first); open and
//! every operation on boot paths end in a value or a typed error that
//! prints as one line; a file read whole is exactly as long as `file_len`
//! says and within the read cap (1 MiB here); listings hold no `.`, `..`
//! or empty names and are sorted; `Files` says absent as `Ok(None)`.
#![no_main]

use hvmlite::dev::block::MemDisk;
use hvmlite::disk::fs::FsError;
use hvmlite::disk::xfs::XfsFs;
use hvmlite::disk::Files;
use hvmlite_fuzz::{check_listing, one_line, StrictDisk};
use libfuzzer_sys::fuzz_target;

const MAX_FILE: u64 = 1 << 20;

fn disk(data: &[u8]) -> (StrictDisk, usize) {
    let mode = data.first().copied().unwrap_or(0);
    let ss: u32 = if mode & 1 == 1 { 4096 } else { 512 };
    let window = 4096 << (((mode >> 1) & 3) * 2);
    let mib = usize::from(data.get(1).copied().unwrap_or(0) % 32) + 1;
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
    (StrictDisk(MemDisk::new(image, ss).unwrap()), window)
}

fuzz_target!(|data: &[u8]| {
    let (mut dev, window) = disk(data);
    match XfsFs::looks_like_xfs(&mut dev) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return one_line(&e),
    }
    let mut fs = match XfsFs::open_with_window(Box::new(dev), window) {
        Ok(fs) => fs,
        Err(e) => return one_line(&e),
    };
    fs.set_max_file(MAX_FILE);
    for path in ["/vmlinuz", "/boot/vmlinuz", "/loop", "/grub2/grub.cfg", "/boot/grub2/grubenv", "/a/../b"] {
        let len = fs.file_len(path);
        match fs.read_file(path) {
            Ok(d) => {
                assert!(d.len() as u64 <= MAX_FILE);
                if let Ok(l) = len {
                    assert_eq!(l, d.len(), "{path}");
                }
            }
            Err(e) => one_line(&e),
        }
        if let Err(e) = fs.exists(path) {
            one_line(&e);
        }
    }
    for dir in ["/", "/grub2", "/loader/entries"] {
        check_listing(fs.list_dir(dir));
    }
    let files: &mut dyn Files<Error = FsError> = &mut fs;
    if let Err(e) = files.read("/grub2/grub.cfg") {
        assert_ne!(e, FsError::NotFound, "absent must be Ok(None)");
        one_line(&e);
    }
});
