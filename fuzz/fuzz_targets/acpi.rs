//! ACPI tables as shutdown reads them: the RSDP (given, or searched for in
//! the EBDA and the BIOS area), the XSDT or RSDT, the FADT and the DSDT's
//! `\_S5_` (`arch::acpi::find_rsdp` and `parse`).
//!
//! Input: a mode byte, then what it asks for, then the memory image:
//!   bit 0: search for the RSDP (else it is at the image base + a u16);
//!   bits 1-2: where the image lies: 0xe0000 (the BIOS area), 0 (the BIOS
//!   data area, whose word at 0x40e names the EBDA), a u32 on a 16-byte
//!   boundary, or any u64 (the top of the address space included);
//!   bit 3: before parsing, set the checksum byte of each table the
//!   pointers lead to (RSDP, root tables, FADT, DSDT) so that it sums to
//!   0, so mutations of fields and AML get past the checksums;
//!   bit 4 (the rest ignored): no image in the input but the tables' own
//!   bytes, laid out here with valid checksums at 0xe0000: a flags byte
//!   (bit 0: a revision 2 RSDP and an XSDT, else an RSDT; bit 1: the
//!   FADT's `X_DSDT` as given, else pointing to the DSDT), the FADT's
//!   length (116 + n % 161), its bytes after the header (its `DSDT` field
//!   made to point to the DSDT), then the DSDT's AML.
//! Nothing else is readable. Every table pointer is an absolute address,
//! so the seeds in fuzz/corpus/acpi lay the tables out that way.
//!
//! Invariants, each against a decoding of the bytes written here from the
//! specification, not hvmlite's: a search finds exactly the first
//! 16-byte position, EBDA then BIOS area, with the signature and a valid
//! checksum; a parse that succeeds names tables that lie inside the image,
//! carry their signatures and lengths and sum to 0, the ones the RSDP and
//! the root table point to; the FADT fields are the bytes at their offsets;
//! an `\_S5_` is a NameOp, `_S5_` and package at the address given, whose
//! SLP_TYP values are the package's bytes. Reads stay within a budget of a
//! few times the image; errors print as one line.
#![no_main]

use hvmlite::arch::acpi::{self, Acpi, Table};
use hvmlite::arch::memory::Range;
use hvmlite_fuzz::{Bytes, FakeMem};
use libfuzzer_sys::fuzz_target;

fn le(b: &[u8], at: usize, n: usize) -> u64 {
    b[at..at + n].iter().rev().fold(0, |v, &x| v << 8 | x as u64)
}

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
}

/// The bytes of `[addr, addr + len)`, when the image holds them all.
fn bytes(mem: &FakeMem, addr: u64, len: u64) -> Option<&[u8]> {
    mem.readable(addr, len).then(|| mem.slice(Range::new(addr, addr + len)))
}

/// An RSDP by the specification: signature and 20-byte checksum.
fn valid_rsdp(mem: &FakeMem, at: u64) -> bool {
    bytes(mem, at, 20).is_some_and(|b| &b[..8] == b"RSD PTR " && sum(b) == 0)
}

/// Where the specification says to look, in order.
fn search_model(mem: &FakeMem) -> Option<u64> {
    let mut areas = Vec::new();
    if let Some(seg) = bytes(mem, 0x40e, 2) {
        let ebda = le(seg, 0, 2) << 4;
        if (0x500..0xa0000).contains(&ebda) {
            areas.push((ebda, (ebda + 1024).min(0xa0000)));
        }
    }
    areas.push((0xe0000, 0x100000));
    areas.into_iter().flat_map(|(a, b)| (a..b).step_by(16)).find(|&p| valid_rsdp(mem, p))
}

/// A table that checks out: inside the image, signature, length, sum 0.
fn check_table<'m>(mem: &'m FakeMem, t: Table, sig: &[u8; 4], min: u32) -> &'m [u8] {
    assert!(t.len >= min.max(36) && t.len <= acpi::MAX_TABLE, "{t:?}");
    let b = bytes(mem, t.addr, t.len as u64).unwrap_or_else(|| panic!("{t:?} is not inside the image"));
    assert_eq!(&b[..4], sig, "{t:?}");
    assert_eq!(le(b, 4, 4), t.len as u64);
    assert_eq!(sum(b), 0, "{t:?} does not sum to 0");
    b
}

/// A port as a FADT field names one: non-zero, at most 0xffff.
fn port(v: u64) -> Option<u16> {
    (v != 0 && v <= 0xffff).then_some(v as u16)
}

/// A Generic Address Structure in I/O space (address space ID 1).
fn io_gas(f: &[u8], at: usize) -> Option<u16> {
    if f[at] == 1 {
        port(le(f, at + 4, 8))
    } else {
        None
    }
}

fn check_parse(mem: &FakeMem, rsdp: u64, a: &Acpi) {
    assert_eq!(a.rsdp, rsdp);
    let r = bytes(mem, rsdp, 20).expect("the RSDP is inside the image");
    assert!(valid_rsdp(mem, rsdp));

    // The root table is the one the RSDP names: the XSDT only from a
    // revision 2 RSDP whose extended checksum holds.
    let root = if a.xsdt {
        assert!(r[15] >= 2, "an XSDT from a revision {} RSDP", r[15]);
        let x = bytes(mem, rsdp, 36).expect("a v2 RSDP is 36 bytes");
        let len = le(x, 20, 4);
        assert!((36..=4096).contains(&len));
        assert_eq!(sum(bytes(mem, rsdp, len).expect("the extended RSDP")), 0);
        assert_eq!(a.root.addr, le(x, 24, 8));
        check_table(mem, a.root, b"XSDT", 36)
    } else {
        assert_eq!(a.root.addr, le(r, 16, 4));
        check_table(mem, a.root, b"RSDT", 36)
    };

    // The FADT is listed in it: the first entry leading to "FACP".
    let w = if a.xsdt { 8 } else { 4 };
    let entries: Vec<u64> = (0..(root.len() - 36) / w).take(acpi::MAX_ENTRIES as usize).map(|i| le(root, 36 + i * w, w)).collect();
    let first = entries.iter().find(|&&e| bytes(mem, e, 4).is_some_and(|s| s == b"FACP"));
    assert_eq!(first, Some(&a.fadt.addr), "the FADT is not the first FACP of {entries:x?}");
    let fadt = check_table(mem, a.fadt, b"FACP", acpi::FADT_MIN);

    // Its fields, the bytes at their offsets (zero past its end).
    let mut f = fadt.to_vec();
    f.resize(f.len().max(276), 0);
    let flags = le(&f, 112, 4) as u32;
    let fixed = |x: usize, legacy: usize| if flags & (1 << 20) != 0 { None } else { io_gas(&f, x).or(port(le(&f, legacy, 4))) };
    let p = a.power;
    assert_eq!(p.flags, flags);
    assert_eq!(p.pm1a_cnt, fixed(172, 64));
    assert_eq!(p.pm1b_cnt, fixed(184, 68));
    assert_eq!(p.pm_tmr, fixed(208, 76));
    assert_eq!(p.smi_cmd, if flags & (1 << 20) != 0 { None } else { port(le(&f, 48, 4)) });
    assert_eq!((p.pm1_cnt_len, p.acpi_enable), (f[89], f[52]));
    let reset = if flags & (1 << 10) != 0 { io_gas(&f, 116).map(|port| (port, f[128])) } else { None };
    assert_eq!(p.reset, reset);
    let x_dsdt = le(&f, 140, 8);
    assert_eq!(p.dsdt, if x_dsdt != 0 { x_dsdt } else { le(&f, 40, 4) });

    if let Some(d) = a.dsdt {
        assert_eq!(d.addr, p.dsdt);
        check_table(mem, d, b"DSDT", 36);
    }
    match a.s5 {
        Ok(s5) => {
            let d = a.dsdt.expect("an \\_S5_ without a DSDT");
            let dsdt = check_table(mem, d, b"DSDT", 36);
            assert!(s5.at >= d.addr + 36 && s5.at < d.addr + d.len as u64, "{s5:?} outside {d:?}");
            let (a_, b_) = decode_s5(&dsdt[(s5.at - d.addr) as usize..]).unwrap_or_else(|| panic!("no \\_S5_ package at {s5:?}"));
            assert_eq!((s5.slp_typ_a, s5.slp_typ_b), (a_, b_));
        }
        Err(e) => one_line(&e),
    }
}

/// `NameOp ['\' | '^'...] "_S5_" PackageOp PkgLength NumElements a b` at
/// the start of `aml` (which runs to the end of the DSDT): SLP_TYPa and
/// SLP_TYPb as ACPI 20.2.3/20.2.4 encode them (BytePrefix and a byte, or
/// Zero/One/a bare byte), inside the package.
fn decode_s5(aml: &[u8]) -> Option<(u8, u8)> {
    let mut i = 1;
    if aml[0] != 0x08 {
        return None;
    }
    while matches!(aml.get(i), Some(b'\\' | b'^')) {
        i += 1;
    }
    if aml.get(i..i + 5)? != b"_S5_\x12" {
        return None;
    }
    let pkg = i + 5;
    let lead = *aml.get(pkg)? as usize;
    let follow = lead >> 6;
    let mut len = if follow == 0 { lead & 0x3f } else { lead & 0x0f };
    for k in 0..follow {
        len += (*aml.get(pkg + 1 + k)? as usize) << (4 + 8 * k);
    }
    let mut at = pkg + 1 + follow;
    if *aml.get(at)? < 2 {
        return None;
    }
    at += 1;
    let mut v = [0u8; 2];
    for x in &mut v {
        *x = *aml.get(at)?;
        at += 1;
        if *x == 0x0a {
            *x = *aml.get(at)?;
            at += 1;
        }
    }
    (v[0] <= 7 && v[1] <= 7 && at <= pkg + len && pkg + len <= aml.len()).then_some((v[0], v[1]))
}

/// Make the table at `addr` (its length inside `img`) sum to 0 through
/// its checksum byte at 9; its bytes, when it has some.
fn fix_table(img: &mut [u8], base: u64, addr: u64) -> Option<Vec<u8>> {
    let off = addr.checked_sub(base)? as usize;
    let len = le(img.get(off..off.checked_add(8)?)?, 4, 4) as usize;
    let t = img.get_mut(off..off.checked_add(len)?).filter(|t| t.len() >= 36)?;
    t[9] = 0;
    t[9] = 0u8.wrapping_sub(sum(t));
    Some(t.to_vec())
}

/// Follow the pointers as the specification lays them out and fix each
/// checksum on the way (mode bit 3).
fn fix_checksums(img: &mut [u8], base: u64, rsdp: u64) {
    let Some(off) = rsdp.checked_sub(base).map(|o| o as usize) else { return };
    let Some(r) = img.get_mut(off..off.saturating_add(20)).filter(|r| r.len() == 20) else { return };
    r[8] = 0;
    r[8] = 0u8.wrapping_sub(sum(r));
    let (rev, rsdt) = (r[15], le(r, 16, 4));
    let mut roots = vec![(rsdt, 4)];
    if rev >= 2 {
        if let Some(x) = img.get(off..off.saturating_add(36)).filter(|x| x.len() == 36) {
            let (len, xsdt) = (le(x, 20, 4) as usize, le(x, 24, 8));
            roots.push((xsdt, 8));
            if let Some(x) = img.get_mut(off..off.saturating_add(len)).filter(|x| x.len() == len && len >= 33) {
                x[32] = 0;
                x[32] = 0u8.wrapping_sub(sum(x));
            }
        }
    }
    for (root, w) in roots {
        let Some(t) = fix_table(img, base, root) else { continue };
        for i in (0..(t.len() - 36) / w).take(acpi::MAX_ENTRIES as usize) {
            let e = le(&t, 36 + i * w, w);
            let facp = e.checked_sub(base).and_then(|o| img.get(o as usize..(o as usize).saturating_add(4))) == Some(b"FACP");
            if let Some(f) = facp.then(|| fix_table(img, base, e)).flatten() {
                let mut f = f;
                f.resize(f.len().max(148), 0);
                let x = le(&f, 140, 8);
                fix_table(img, base, if x != 0 { x } else { le(&f, 40, 4) });
                break;
            }
        }
    }
}

fn one_line(e: &acpi::AcpiError) {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'), "not one line: {s:?}");
}

/// A table with `sig`, its length, revision 1 and its checksum set.
fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = sig.to_vec();
    t.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
    t.extend_from_slice(&[1, 0]);
    t.extend_from_slice(b"HVMLTETESTTABL\x01\0\0\0HVML\x01\0\0\0");
    t.extend_from_slice(body);
    t[9] = 0u8.wrapping_sub(sum(&t));
    t
}

/// Mode bit 4: RSDP at 0xe0000, root table at 0xe0040, FADT at 0xe0100,
/// DSDT at 0xe0300.
fn built(b: &mut Bytes) -> Vec<u8> {
    let flags = b.u8();
    let flen = 116 + b.u8() as usize % 161;
    let mut f = b.take(flen - 36).to_vec();
    f.resize(flen - 36, 0);
    f[4..8].copy_from_slice(&0xe0300u32.to_le_bytes());
    if flags & 2 == 0 && f.len() >= 112 {
        f[104..112].copy_from_slice(&0xe0300u64.to_le_bytes());
    }
    let mut img = vec![0u8; 0x300];
    let mut rsdp = b"RSD PTR \0HVMLTE\0".to_vec();
    if flags & 1 != 0 {
        rsdp[15] = 2;
        rsdp.extend_from_slice(&0u32.to_le_bytes());
        rsdp.extend_from_slice(&36u32.to_le_bytes());
        rsdp.extend_from_slice(&0xe0040u64.to_le_bytes());
        rsdp.extend_from_slice(&[0; 4]);
        img[0x40..0x40 + 44].copy_from_slice(&table(b"XSDT", &0xe0100u64.to_le_bytes()));
    } else {
        rsdp.extend_from_slice(&0xe0040u32.to_le_bytes());
        img[0x40..0x40 + 40].copy_from_slice(&table(b"RSDT", &0xe0100u32.to_le_bytes()));
    }
    rsdp[8] = 0u8.wrapping_sub(sum(&rsdp[..20]));
    if rsdp.len() == 36 {
        rsdp[32] = 0u8.wrapping_sub(sum(&rsdp));
    }
    img[..rsdp.len()].copy_from_slice(&rsdp);
    img[0x100..0x100 + flen].copy_from_slice(&table(b"FACP", &f));
    img.extend_from_slice(&table(b"DSDT", b.rest()));
    img
}

/// Parse from `rsdp`, check what comes back, and that the reads stay in
/// their budget.
fn parse_and_check(mem: &FakeMem, rsdp: u64) {
    match acpi::parse(mem, rsdp) {
        Ok(a) => check_parse(mem, rsdp, &a),
        Err(e) => one_line(&e),
    }
    // Reads: the parse checks each of at most two root tables, two FADTs
    // and the DSDT once, searches the DSDT in windows that overlap by a
    // quarter, and reads the root tables' entries.
    let read: u64 = mem.reads.borrow().iter().map(|r| r.end - r.start).sum();
    let img = mem.bytes.len() as u64;
    assert!(read <= 8 * img + 2 * 1024 * 12 + 8192, "the parse read {read} bytes of a {img}-byte image");
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    if mode & 16 != 0 {
        let mem = FakeMem::new(0xe0000, built(&mut b));
        parse_and_check(&mem, 0xe0000);
        return;
    }
    let search = mode & 1 != 0;
    let base = match (mode >> 1) & 3 {
        0 => 0xe0000,
        1 => 0,
        2 => (b.u32() & !15) as u64,
        _ => b.u64(),
    };
    let given = base.wrapping_add(b.u16() as u64);
    let mut image = b.rest().to_vec();
    // An image that would run past 2^64 is cut where it would wrap.
    image.truncate((u64::MAX - base).min(image.len() as u64) as usize);
    if mode & 8 != 0 && !search {
        fix_checksums(&mut image, base, given);
    }
    let mem = FakeMem::new(base, image);

    let rsdp = if search {
        let found = acpi::find_rsdp(&mem);
        assert_eq!(found, search_model(&mem));
        found
    } else {
        Some(given)
    };
    let searched: u64 = mem.reads.borrow().iter().map(|r| r.end - r.start).sum();
    mem.reads.borrow_mut().clear();
    // The search looks at 8 bytes a position and checks what has the
    // signature.
    assert!(searched <= 48 * 8448 + 4096, "the search read {searched} bytes");
    if let Some(rsdp) = rsdp {
        parse_and_check(&mem, rsdp);
    }
});
