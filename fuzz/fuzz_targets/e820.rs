//! e820 sanitising and the heap search over its result.
//!
//! Input: a mode byte, an entry count, the entries, then reservations and
//! the heap window. In "small" mode addresses are built from bytes (pages
//! plus sub-page offsets below 2 MiB) so overlaps, touching neighbours and
//! unaligned edges are common, and the heap search is checked against an
//! exhaustive page model; in "wide" mode every field is a raw 64-bit value.
#![no_main]

use hvmlite::arch::e820::{self, E820Entry};
use hvmlite::arch::memory::{largest_free, Range};
use hvmlite_fuzz::{check_largest_free, check_sanitize_result, Bytes};
use libfuzzer_sys::fuzz_target;

const SMALL_TOP: u64 = 2 << 20;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let small = mode & 1 == 0;
    let n = (b.u8() % 65) as usize;
    let input: Vec<E820Entry> = (0..n)
        .map(|_| {
            if small {
                let (page, sub, len, ty) = (b.u8() as u64, b.u8() as u64, b.u8() as u64, b.u8() as u32);
                E820Entry::new(page * 0x1000 + (sub & 0xf) * 0x100, len * 0x1000 + (sub >> 4) * 0x100, ty % 9)
            } else {
                E820Entry::new(b.u64(), b.u64(), b.u32())
            }
        })
        .collect();

    // Room for the sanitiser: enough, or (rarely) a fuzzer-chosen amount.
    let (points, room) = match (mode >> 1) & 7 {
        1 => (2 * n, b.u8() as usize % (2 * n + 1)),
        2 => (b.u8() as usize % (2 * n + 1), 2 * n),
        _ => (2 * n, 2 * n),
    };
    let mut pts = vec![0u64; points];
    let mut out = vec![E820Entry::default(); room];
    let got = e820::sanitize(&input, &mut pts, &mut out);
    check_sanitize_result(&input, points, room, got.map(|k| &out[..k]));
    let Ok(k) = got else { return };
    let map = &out[..k];

    // The heap search over the sanitised map.
    let nres = (b.u8() % 9) as usize;
    let reserved: Vec<Range> = (0..nres)
        .map(|_| {
            if small {
                let s = b.u16() as u64 * 32;
                Range::new(s, s + b.u16() as u64 * 8)
            } else {
                let s = b.u64();
                Range::new(s, s.saturating_add(b.u64()))
            }
        })
        .collect();
    let (min, max) =
        if small { (b.u8() as u64 * 0x1000 + (b.u8() as u64 & 0xfff), SMALL_TOP - b.u8() as u64 * 0x1000) } else { (b.u64(), b.u64()) };
    let free = largest_free(map, &reserved, min, max);
    check_largest_free(map, &reserved, min, max, free, small.then_some(SMALL_TOP));
});
