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

use hvmlite::disk::xfs::XfsFs;
use hvmlite_fuzz::{check_nofollow, one_line, sparse_input};
use libfuzzer_sys::fuzz_target;

const MAX_FILE: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let (mut dev, window, _) = sparse_input(data, 32);
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
    let paths = ["/vmlinuz", "/boot/vmlinuz", "/loop", "/grub2/grub.cfg", "/boot/grub2/grubenv", "/a/../b"];
    check_nofollow(&mut fs, MAX_FILE, &paths, &["/", "/grub2", "/loader/entries"], "/grub2/grub.cfg");
});
