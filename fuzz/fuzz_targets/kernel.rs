//! bzImage / vmlinux payload headers (`kernel::parse`), then the kernel's
//! zero page built from what was accepted (`kernel::linux_zero_page`).
//!
//! Input: raw image bytes. Invariants on an accepted kernel: every slice it
//! hands out lies inside the input; the segments fit the span the kernel
//! says it needs; the alignment is a power of two of at least 4 KiB; the
//! entry lies inside the span; a bzImage keeps its setup header. Errors are
//! typed and print as one line. The zero page built from it keeps the
//! loader's fields (command line, initrd) whatever the header says. A PVH
//! entry (`XEN_ELFNOTE_PHYS32_ENTRY`) is only ever a vmlinux's and lies
//! inside one of its segments; the note walker run on the raw bytes never
//! panics, and an entry it finds is spelled out in those bytes.
#![no_main]

use hvmlite::arch::memory::Range;
use hvmlite::boot::zero_page::BootParams;
use hvmlite::payload::kernel::{self, Format};
use libfuzzer_sys::fuzz_target;

fn inside(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fuzz_target!(|data: &[u8]| {
    match kernel::xen_pvh_entry(data) {
        Ok(Some(e)) => {
            let (l4, l8) = ((e as u32).to_le_bytes(), e.to_le_bytes());
            assert!(data.windows(8).any(|w| w == l8) || (e >> 32 == 0 && data.windows(4).any(|w| w == l4)), "{e:#x} not in the notes");
        }
        Ok(None) => {}
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
    let k = match kernel::parse(data) {
        Ok(k) => k,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{e:?} -> {msg:?}");
            return;
        }
    };
    assert!(k.align.is_power_of_two() && k.align >= 4096, "{k:?}");
    assert!(k.entry_offset < k.span, "entry outside the span: {k:?}");
    assert!(!k.segments().is_empty(), "{k:?}");
    for s in k.segments() {
        assert!(inside(data, s.data), "segment bytes outside the image");
        assert!(s.data.len() as u64 <= s.mem_size, "{s:?}");
        assert!(s.offset.checked_add(s.mem_size).is_some_and(|end| end <= k.span), "segment past the span: {k:?}");
    }
    if let Some(h) = k.setup_header {
        assert!(inside(data, h), "setup header outside the image");
    }
    assert_eq!(k.setup_header.is_some(), k.format == Format::BzImage, "{k:?}");
    if let Some(e) = k.pvh_entry {
        assert_eq!(k.format, Format::Vmlinux, "{k:?}");
        assert!(e >= k.min_addr && e - k.min_addr < k.span, "PVH entry outside the kernel: {k:?}");
    }
    let _ = k.version(data);

    // The zero page the kernel would get: the loader's fields survive any header.
    let base = BootParams::zeroed();
    let initrd = Some(Range::new(0x4000_0000, 0x4012_3457));
    if let Ok(zp) = kernel::linux_zero_page(&base, k.setup_header, (0x1_2345_6000, 100), initrd) {
        assert_eq!(zp.cmd_line_ptr(), 0x1_2345_6000);
        assert_eq!(zp.initrd(), initrd);
    }
});
