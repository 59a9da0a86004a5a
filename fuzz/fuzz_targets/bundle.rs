//! The payload bundle format (`bundle::parse`).
//!
//! Mode 0: raw bytes. Mode 1: a well-formed bundle built with
//! `bundle::write` from fuzzer-chosen parts, then (maybe) one byte flipped.
//! Invariants: every slice a parsed bundle hands out lies inside the input
//! and inside `total_size`; the command line is text without NUL; errors
//! are typed and print as one line. An untouched bundle parses back to
//! exactly its parts; a flipped byte inside a CRC-covered section is never
//! accepted under `Verify::All`. A PVH entry section, when written, comes
//! back as the same value.
#![no_main]

use hvmlite::payload::bundle::{self, write::Part, Verify, KIND_CMDLINE, KIND_INITRD, KIND_KERNEL, KIND_PVH_ENTRY};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fn inside(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn check(data: &[u8], verify: Verify) -> Option<bundle::Bundle<'_>> {
    match bundle::parse(data, verify) {
        Ok(b) => {
            assert!(b.total_size as usize <= data.len());
            let within = &data[..b.total_size as usize];
            assert!(inside(within, b.kernel) && !b.kernel.is_empty());
            if let Some(i) = b.initrd {
                assert!(inside(within, i));
            }
            if let Some(h) = b.setup_header {
                assert!(inside(within, h));
            }
            assert!(!b.cmdline.contains('\0'));
            Some(b)
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{e:?} -> {msg:?}");
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    if b.u8() & 1 == 0 {
        let raw = b.rest();
        check(raw, Verify::All);
        check(raw, Verify::Small);
        return;
    }
    let (kn, inn, cn) = (1 + b.u8() as usize, b.u16() as usize % 9000, b.u8() as usize);
    let mut kernel = b.take(kn).to_vec();
    if kernel.is_empty() {
        kernel.push(0); // an empty kernel is refused (NoKernel); build a real one
    }
    let initrd = b.take(inn).to_vec();
    let cmdline: String = b.take(cn).iter().map(|&c| char::from(b'a' + c % 26)).collect();
    let flip = b.u32() as usize;
    let pvh = (cn & 1 == 1).then(|| (b.u32() as u64) << 32 | b.u32() as u64);
    let pvh_bytes = pvh.map(u64::to_le_bytes);
    let mut parts = vec![Part { kind: KIND_KERNEL, format: bundle::FORMAT_BZIMAGE, data: &kernel }];
    if !initrd.is_empty() {
        parts.push(Part { kind: KIND_INITRD, format: 0, data: &initrd });
    }
    parts.push(Part { kind: KIND_CMDLINE, format: 0, data: cmdline.as_bytes() });
    if let Some(p) = &pvh_bytes {
        parts.push(Part { kind: KIND_PVH_ENTRY, format: 0, data: p });
    }
    let mut img = bundle::write::build(&parts);

    let good = check(&img, Verify::All).expect("a freshly written bundle must parse");
    assert_eq!(good.kernel, &kernel[..]);
    assert_eq!(good.initrd.unwrap_or_default(), &initrd[..]);
    assert_eq!(good.cmdline, cmdline);
    assert_eq!(good.pvh_entry, pvh);

    // Where each covered section lies in the image, before any flip.
    let span = |s: &[u8]| {
        let at = s.as_ptr() as usize - img.as_ptr() as usize;
        at..at + s.len()
    };
    let covered = [Some(span(good.kernel)), good.initrd.map(span), Some(span(good.cmdline.as_bytes()))];
    let at = flip % (img.len() + 1);
    if at == img.len() {
        return;
    }
    img[at] ^= 1 << (flip >> 29);
    let parsed = check(&img, Verify::All);
    if covered.iter().flatten().any(|r| r.contains(&at)) {
        assert!(parsed.is_none(), "a flipped byte at {at:#x} inside a section was accepted");
    }
});
