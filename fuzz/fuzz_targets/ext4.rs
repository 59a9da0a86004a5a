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
//! GRUB's blocklist of `/boot/grub/grubenv` (`disk::blocklist`, which
//! walks the structures itself): it never reads past the device, its runs
//! lie inside the device and add up to at most 1024 bytes, and writing
//! over them changes no byte outside them.
#![no_main]

use hvmlite::disk::blocklist;
use hvmlite::disk::fs::{Ext4Fs, FileKind, FsError};
use hvmlite::disk::Files;
use hvmlite_fuzz::{check_listing, fs_input, one_line};
use libfuzzer_sys::fuzz_target;

const MAX_FILE: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let (mut raw, _) = fs_input(data);
    match blocklist::ext4(&mut raw, "/boot/grub/grubenv", 1024) {
        Ok(runs) => {
            let size = raw.0.data().len() as u64;
            assert!(runs.iter().all(|r| r.offset + r.len as u64 <= size), "{runs:?}");
            let total: usize = runs.iter().map(|r| r.len).sum();
            assert!(total <= 1024);
            let before = raw.0.data().to_vec();
            if blocklist::write_runs(&mut raw.0, &runs, &vec![b'!'; total]).is_ok() {
                let after = raw.0.data();
                let inside = |i: usize| runs.iter().any(|r| (r.offset as usize..r.offset as usize + r.len).contains(&i));
                assert!((0..before.len()).all(|i| before[i] == after[i] || inside(i)), "a byte outside the runs was written");
            }
        }
        Err(e) => one_line(&e),
    }

    let (disk, window) = fs_input(data);

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
        check_listing(fs.list_dir(dir));
    }
    let files: &mut dyn Files<Error = FsError> = &mut fs;
    if let Err(e) = files.read("/boot/grub/grub.cfg") {
        assert_ne!(e, FsError::NotFound, "absent must be Ok(None)");
        one_line(&e);
    }
});
