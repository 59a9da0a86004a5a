//! Read-only FAT12/16/32 (`disk::fat::FatFs`, lamfat underneath) on a
//! fuzzed image. Input and invariants: `hvmlite_fuzz_disk`
//! (fuzz/disk/src/lib.rs), where the body lives so that lamfat is compiled
//! as the PVH build compiles it (fuzz/disk/Cargo.toml).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hvmlite_fuzz_disk::fat(data));
