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
//! GRUB's blocklist of `/grub2/grubenv` (`disk::blocklist::xfs`, which
//! reads the superblock and the inode itself), for its inode and for the
//! root's: it never reads past the device, its runs lie inside the device
//! and add up to the 1024 bytes asked, and writing over them changes no
//! byte outside them; the view without the log answers or refuses in one
//! line.
#![no_main]

use hvmlite::disk::blocklist;
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

    let (mut raw, _, _) = sparse_input(data, 32);
    let ino = fs.inode_of("/grub2/grubenv").map(|(i, _)| i).unwrap_or(131);
    for ino in [ino, 128] {
        match blocklist::xfs::runs(&mut raw, ino, 1024) {
            Ok(runs) => {
                let size = raw.0.data().len() as u64;
                assert!(runs.iter().all(|r| r.offset + r.len as u64 <= size), "{runs:?}");
                assert_eq!(runs.iter().map(|r| r.len).sum::<usize>(), 1024);
                let before = raw.0.data().to_vec();
                if blocklist::write_runs(&mut raw.0, &runs, &[b'!'; 1024]).is_ok() {
                    let after = raw.0.data();
                    let inside = |i: usize| runs.iter().any(|r| (r.offset as usize..r.offset as usize + r.len).contains(&i));
                    assert!((0..before.len()).all(|i| before[i] == after[i] || inside(i)), "a byte outside the runs was written");
                }
            }
            Err(e) => one_line(&e),
        }
    }
    if let Err(e) = XfsFs::same_without_log(&mut raw, b"/grub2/grubenv", ino, &[0; 1024]) {
        one_line(&e);
    }
});
