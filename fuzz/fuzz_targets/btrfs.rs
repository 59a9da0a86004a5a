//! Read-only btrfs (`disk::btrfs::BtrfsFs`, lambutter underneath) on a
//! fuzzed image.
//!
//! Input: a mode byte (bit 0: 4096-byte sectors; bits 1-2: the read-ahead
//! window; bits 3-4: which tree paths start at: the default subvolume, the
//! top level, subvolume id 256, or the path `@`), the disk's size in MiB
//! - 1 (u8, up to 128: mkfs.btrfs makes nothing under 114), then sparse
//! sectors: records of a sector number (u32) and a count (u8) followed by
//! that many 512-byte sectors. Invariants: no panic and no hang; the
//! device is never asked for a sector past its end, whatever the chunk
//! tree maps (`CachedReader` refuses them first); open and every
//! operation on boot paths end in a value or a typed error that prints as
//! one line; a file read whole is exactly as long as `file_len` says and
//! within the read cap (1 MiB here); listings hold no `.`, `..` or empty
//! names and are sorted; `Files` says absent as `Ok(None)`; at most
//! `MAX_TREES` trees are open however many are asked for; looking for
//! boot entries on it ends in entries or a one-line error.
#![no_main]

use hvmlite::disk::bootcfg;
use hvmlite::disk::btrfs::BtrfsFs;
use hvmlite::disk::Subvol;
use hvmlite_fuzz::{check_nofollow, one_line, sparse_input};
use libfuzzer_sys::fuzz_target;

const MAX_FILE: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let (mut dev, window, mode) = sparse_input(data, 128);
    let tree = [Subvol::Default, Subvol::Top, Subvol::Id(256), Subvol::Path("@".into())][usize::from((mode >> 3) & 3)].clone();
    match BtrfsFs::looks_like_btrfs(&mut dev) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return one_line(&e),
    }
    let mut fs = match BtrfsFs::open_with_window(Box::new(dev), window) {
        Ok(fs) => fs,
        Err(e) => return one_line(&e),
    };
    fs.set_max_file(MAX_FILE);
    for name in fs.top_subvols() {
        assert!(!name.is_empty() && !name.contains('/'), "{name:?}");
    }
    for id in 250..262 {
        if let Err(e) = fs.set_subvol(&Subvol::Id(id)) {
            one_line(&e);
        }
    }
    if let Err(e) = fs.set_subvol(&tree) {
        return one_line(&e);
    }
    let paths = ["/vmlinuz", "/boot/vmlinuz", "/loop", "/boot/grub2/grub.cfg", "/boot/grub2/grubenv", "/a/../b", "/@/boot/vmlinuz-linux"];
    check_nofollow(&mut fs, MAX_FILE, &paths, &["/", "/boot", "/boot/grub2", "/.snapshots"], "/boot/grub2/grub.cfg");
    match bootcfg::find(&mut fs, None) {
        Ok(found) => assert!(found.selected < found.entries.len()),
        Err(e) => one_line(&e),
    }
});
