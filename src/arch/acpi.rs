//! ACPI tables, as far as leaving needs them: from the RSDP through the
//! RSDT or XSDT to the FADT (the PM1 control ports, the SMI command that
//! enables ACPI, the PM timer, the reset register) and the DSDT's `\_S5_`
//! package (the sleep type that means soft-off).
//!
//! Written from the ACPI specification (6.5: 5.2.5 RSDP, 5.2.6 table
//! header, 5.2.7/5.2.8 RSDT/XSDT, 5.2.9 FADT, 5.2.3.2 Generic Address
//! Structure, 4.8.3.2 PM1 control, 20.2 AML encoding). Nothing read is
//! trusted: every table's length is bounded and its checksum checked, every
//! read goes through [`PhysMem`] (which refuses what it cannot reach), and
//! every loop has a bound. Pure: the host tests and the fuzz target feed it
//! byte buffers.

use core::fmt;

use crate::arch::memory::PhysMem;

/// Largest table accepted (the DSDTs of large servers run to a few hundred
/// KiB; QEMU's is 8 KiB).
pub const MAX_TABLE: u32 = 4 << 20;
/// Most RSDT/XSDT entries looked at.
pub const MAX_ENTRIES: u32 = 1024;
/// A table header: signature, length, revision, checksum, OEM fields.
pub const HEADER: u32 = 36;
/// Where the BIOS data area keeps the EBDA's segment.
pub const BDA_EBDA_SEGMENT: u64 = 0x40e;
/// The BIOS read-only area the RSDP may lie in.
pub const BIOS_AREA: (u64, u64) = (0xe0000, 0x100000);
/// FADT flags (5.2.9, table 5.10).
pub const FADT_RESET_REG_SUP: u32 = 1 << 10;
pub const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// The ACPI 1.0 FADT's length: every field this reads before the reset
/// register lies inside it.
pub const FADT_MIN: u32 = 116;
/// The FADT bytes looked at (through `X_PM_TMR_BLK`, 208 + 12).
const FADT_READ: usize = 220;

/// A Generic Address Structure's address space for I/O ports.
const GAS_SYSTEM_IO: u8 = 1;

/// A table's signature, as this file names the ones it looks for.
pub type Sig = &'static str;

const RSDT: Sig = "RSDT";
const XSDT: Sig = "XSDT";
const FACP: Sig = "FACP";
const DSDT: Sig = "DSDT";

/// Why the tables say nothing usable; each names the address concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No valid RSDP at this address (0: none given, none found in the
    /// EBDA or the BIOS area).
    NoRsdp(u64),
    /// A table (or its header) is not all readable.
    Unreadable(Sig, u64),
    /// A table declares a length shorter than its fixed part or over
    /// [`MAX_TABLE`].
    Length(Sig, u64, u32),
    Checksum(Sig, u64),
    /// A pointer to this table leads to another signature.
    NotThere(Sig, u64),
    /// The root table at this address (0: none) lists no valid FADT.
    NoFadt(u64),
    /// The FADT at this address names no DSDT.
    NoDsdt(u64),
    /// The DSDT at this address holds no `\_S5_` package this understands.
    NoS5(u64),
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sig, what, addr) = match *self {
            AcpiError::NoRsdp(a) => (None, "no valid RSDP at", a),
            AcpiError::Unreadable(s, a) => (Some(s), " out of reach at", a),
            AcpiError::Length(s, a, _) => (Some(s), " of a bad length at", a),
            AcpiError::Checksum(s, a) => (Some(s), " with a bad checksum at", a),
            AcpiError::NotThere(s, a) => (Some(s), " not found at", a),
            AcpiError::NoFadt(a) => (None, "no FADT in the root table at", a),
            AcpiError::NoDsdt(a) => (None, "no DSDT named by the FADT at", a),
            AcpiError::NoS5(a) => (None, "no \\_S5_ package in the DSDT at", a),
        };
        write!(f, "{}{what} {addr:#x}", sig.unwrap_or(""))
    }
}

/// A table that passed the checks: `[addr, addr + len)` readable, its
/// signature, a length from [`HEADER`] to [`MAX_TABLE`], bytes summing to 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub addr: u64,
    pub len: u32,
}

/// What the FADT says about leaving. Ports are I/O ports: a register
/// elsewhere (memory, PCI configuration space), or above 0xffff, is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fadt {
    /// `X_PM1a_CNT_BLK` when it is an I/O port, else `PM1a_CNT_BLK`.
    pub pm1a_cnt: Option<u16>,
    pub pm1b_cnt: Option<u16>,
    /// `PM1_CNT_LEN`: at least 2 for the 16-bit accesses PM1 control takes.
    pub pm1_cnt_len: u8,
    /// `X_PM_TMR_BLK` or `PM_TMR_BLK`: the 3.579545 MHz timer.
    pub pm_tmr: Option<u16>,
    /// `SMI_CMD`, and the value written there to hand the fixed hardware
    /// to the OS (`ACPI_ENABLE`; 0 where there is nothing to enable).
    pub smi_cmd: Option<u16>,
    pub acpi_enable: u8,
    /// `RESET_REG` (when `RESET_REG_SUP` and in I/O space) and
    /// `RESET_VALUE`.
    pub reset: Option<(u16, u8)>,
    pub flags: u32,
    /// `X_DSDT` when non-zero, else `DSDT`.
    pub dsdt: u64,
}

/// The `\_S5_` package: where its `NameOp` lies and the SLP_TYP values
/// for PM1a and PM1b control (3 bits each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S5 {
    pub at: u64,
    pub slp_typ_a: u8,
    pub slp_typ_b: u8,
}

/// Everything [`parse`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acpi {
    pub rsdp: u64,
    /// The root table: the XSDT when `xsdt`, else the RSDT.
    pub root: Table,
    pub xsdt: bool,
    pub fadt: Table,
    pub power: Fadt,
    pub dsdt: Option<Table>,
    /// The soft-off sleep type, or why there is none (a reset needs only
    /// the FADT).
    pub s5: Result<S5, AcpiError>,
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u32_at(b, at) as u64 | (u32_at(b, at + 4) as u64) << 32
}

/// An I/O port address, when it is one.
fn port(a: u64) -> Option<u16> {
    (a != 0 && a <= 0xffff).then_some(a as u16)
}

/// The port a Generic Address Structure at `at` names, when it is in I/O
/// space.
fn gas_port(b: &[u8], at: usize) -> Option<u16> {
    if b[at] == GAS_SYSTEM_IO {
        port(u64_at(b, at + 4))
    } else {
        None
    }
}

/// A fixed-hardware register of the FADT: its `X_` form at `x` when that
/// is an I/O port, else the 32-bit port field at `legacy`; none on
/// hardware-reduced ACPI, which has no fixed hardware.
#[inline(never)]
fn fixed_port(b: &[u8; FADT_READ], x: usize, legacy: usize) -> Option<u16> {
    if u32_at(b, 112) & FADT_HW_REDUCED_ACPI != 0 {
        return None;
    }
    gas_port(b, x).or(port(u32_at(b, legacy) as u64))
}

/// The byte sum of `[addr, addr + len)`, read 64 bytes at a time.
fn sum<M: PhysMem + ?Sized>(mem: &M, addr: u64, len: u32) -> Option<u8> {
    let mut buf = [0u8; 64];
    let mut s = 0u8;
    let mut off = 0;
    while off < len {
        let n = (len - off).min(64) as usize;
        mem.read(addr.checked_add(off as u64)?, &mut buf[..n]).ok()?;
        s = buf[..n].iter().fold(s, |s, &b| s.wrapping_add(b));
        off += n as u32;
    }
    Some(s)
}

/// The RSDP at `addr`: the RSDT's address, and the XSDT's when the RSDP is
/// revision 2 or later with a valid extended checksum (else 0).
pub fn rsdp<M: PhysMem + ?Sized>(mem: &M, addr: u64) -> Result<(u32, u64), AcpiError> {
    let bad = AcpiError::NoRsdp(addr);
    let mut b = [0u8; 36];
    mem.read(addr, &mut b[..20]).map_err(|_| bad)?;
    if &b[..8] != b"RSD PTR " || sum(mem, addr, 20) != Some(0) {
        return Err(bad);
    }
    let rsdt = u32_at(&b, 16);
    let mut xsdt = 0;
    if b[15] >= 2 && mem.read(addr, &mut b).is_ok() {
        let len = u32_at(&b, 20);
        if (36..=4096).contains(&len) && sum(mem, addr, len) == Some(0) {
            xsdt = u64_at(&b, 24);
        }
    }
    Ok((rsdt, xsdt))
}

/// Look for the RSDP where the specification puts it (5.2.5.1): the first
/// KiB of the EBDA (its segment at 0x40e of the BIOS data area), then
/// 0xe0000-0xfffff, on 16-byte boundaries.
pub fn find_rsdp<M: PhysMem + ?Sized>(mem: &M) -> Option<u64> {
    let mut seg = [0u8; 2];
    let ebda = match mem.read(BDA_EBDA_SEGMENT, &mut seg) {
        // The EBDA lies in conventional memory, below the video area.
        Ok(()) => Some((u16::from_le_bytes(seg) as u64) << 4).filter(|&a| (0x500..0xa0000).contains(&a)),
        Err(_) => None,
    };
    let areas = [ebda.map(|a| (a, (a + 1024).min(0xa0000))), Some(BIOS_AREA)];
    areas.into_iter().flatten().find_map(|(start, end)| {
        (start..end).step_by(16).find(|&a| {
            let mut sig = [0u8; 8];
            mem.read(a, &mut sig).is_ok() && &sig == b"RSD PTR " && rsdp(mem, a).is_ok()
        })
    })
}

/// The table at `addr`, checked: signature `sig`, a length from `min` to
/// [`MAX_TABLE`] that lies wholly in readable memory, checksum 0.
pub fn table<M: PhysMem + ?Sized>(mem: &M, addr: u64, sig: Sig, min: u32) -> Result<Table, AcpiError> {
    let mut h = [0u8; 8];
    mem.read(addr, &mut h).map_err(|_| AcpiError::Unreadable(sig, addr))?;
    if h[..4] != *sig.as_bytes() {
        return Err(AcpiError::NotThere(sig, addr));
    }
    let len = u32_at(&h, 4);
    if len < min.max(HEADER) || len > MAX_TABLE {
        return Err(AcpiError::Length(sig, addr, len));
    }
    match sum(mem, addr, len) {
        None => Err(AcpiError::Unreadable(sig, addr)),
        Some(0) => Ok(Table { addr, len }),
        Some(_) => Err(AcpiError::Checksum(sig, addr)),
    }
}

/// The FADT the root table lists (entries of 4 bytes in the RSDT, 8 in
/// the XSDT): the first entry that leads to the signature `FACP` decides,
/// so a hostile list costs one table's checks, not one per entry. Entries
/// that lead nowhere readable or to another table are passed over.
fn find_fadt<M: PhysMem + ?Sized>(mem: &M, root: Table, wide: bool) -> Result<Table, AcpiError> {
    let w = if wide { 8 } else { 4 };
    let n = ((root.len - HEADER) / w).min(MAX_ENTRIES);
    for i in 0..n {
        let mut e = [0u8; 8];
        if mem.read(root.addr + (HEADER + i * w) as u64, &mut e[..w as usize]).is_err() {
            continue;
        }
        let at = u64_at(&e, 0);
        let mut sig = [0u8; 4];
        if mem.read(at, &mut sig).is_ok() && sig == *FACP.as_bytes() {
            return table(mem, at, FACP, FADT_MIN);
        }
    }
    Err(AcpiError::NoFadt(root.addr))
}

/// The FADT's fields about leaving. Fields past its length read as 0:
/// absent.
fn read_fadt<M: PhysMem + ?Sized>(mem: &M, t: Table) -> Result<Fadt, AcpiError> {
    let mut b = [0u8; FADT_READ];
    let n = (t.len as usize).min(FADT_READ);
    mem.read(t.addr, &mut b[..n]).map_err(|_| AcpiError::Unreadable(FACP, t.addr))?;
    let flags = u32_at(&b, 112);
    let x_dsdt = u64_at(&b, 140);
    Ok(Fadt {
        pm1a_cnt: fixed_port(&b, 172, 64),
        pm1b_cnt: fixed_port(&b, 184, 68),
        pm1_cnt_len: b[89],
        pm_tmr: fixed_port(&b, 208, 76),
        // SMI_CMD has no X_ form: offset 0 is the signature, never I/O space.
        smi_cmd: fixed_port(&b, 0, 48),
        acpi_enable: b[52],
        reset: gas_port(&b, 116).filter(|_| flags & FADT_RESET_REG_SUP != 0).map(|p| (p, b[128])),
        flags,
        dsdt: if x_dsdt != 0 { x_dsdt } else { u32_at(&b, 40) as u64 },
    })
}

/// Bytes of a checked table, read 64 at a time, each offset bounded by
/// the table's length. A refill starts 16 bytes before the byte asked
/// for, so the look back from `_S5_` to its NameOp stays in the window.
struct Window<'m, M: ?Sized> {
    mem: &'m M,
    t: Table,
    at: u32,
    n: u32,
    buf: [u8; 64],
}

impl<M: PhysMem + ?Sized> Window<'_, M> {
    fn byte(&mut self, off: u32) -> Option<u8> {
        if off >= self.t.len {
            return None;
        }
        if off < self.at || off >= self.at + self.n {
            let at = off.saturating_sub(16);
            let n = (self.t.len - at).min(64);
            self.n = 0;
            self.mem.read(self.t.addr + at as u64, &mut self.buf[..n as usize]).ok()?;
            (self.at, self.n) = (at, n);
        }
        Some(self.buf[(off - self.at) as usize])
    }
}

/// AML encodings (20.2.x).
const NAME_OP: u8 = 0x08;
const PACKAGE_OP: u8 = 0x12;
const BYTE_PREFIX: u8 = 0x0a;
const ROOT_CHAR: u8 = b'\\';
const PARENT_PREFIX: u8 = b'^';
/// The most `^` (or one `\`) looked back over between NameOp and `_S5_`.
const MAX_PREFIX: u32 = 8;

/// Read `\_S5_` whose NameSeg starts at `name` in the DSDT: `NameOp`,
/// optional `\` or `^` prefixes, `_S5_`, `PackageOp`, `PkgLength` (1 to 4
/// bytes), `NumElements` (at least 2), then SLP_TYPa and SLP_TYPb, each a
/// `BytePrefix` and its byte, or a ZeroOp (0) / OneOp (1) / bare byte that
/// is its own value; both must fit the 3-bit field and lie inside the
/// package, the package inside the table.
fn s5_at<M: PhysMem + ?Sized>(w: &mut Window<M>, name: u32) -> Option<S5> {
    let mut op = name.checked_sub(1)?;
    let mut prefixes = 0;
    while matches!(w.byte(op)?, ROOT_CHAR | PARENT_PREFIX) && prefixes < MAX_PREFIX {
        op = op.checked_sub(1)?;
        prefixes += 1;
    }
    if op < HEADER || w.byte(op)? != NAME_OP || w.byte(name + 4)? != PACKAGE_OP {
        return None;
    }
    // PkgLength counts from its own first byte: bits 7-6 of that byte say
    // how many follow; one byte alone gives 6 bits, with followers it
    // gives the low 4 and each follower 8 more.
    let lead = w.byte(name + 5)?;
    let follow = (lead >> 6) as u32;
    let mut len = (lead & if follow == 0 { 0x3f } else { 0x0f }) as u32;
    let mut at = name + 6;
    for i in 0..follow {
        len |= (w.byte(at)? as u32) << (4 + 8 * i);
        at += 1;
    }
    let end = name + 5 + len;
    if w.byte(at)? < 2 {
        return None;
    }
    at += 1;
    let mut typ = [0u8; 2];
    for t in &mut typ {
        let mut v = w.byte(at)?;
        at += 1;
        if v == BYTE_PREFIX {
            v = w.byte(at)?;
            at += 1;
        }
        if v > 7 {
            return None;
        }
        *t = v;
    }
    (at <= end && end <= w.t.len).then_some(S5 { at: w.t.addr + op as u64, slp_typ_a: typ[0], slp_typ_b: typ[1] })
}

/// The first `\_S5_` package in the DSDT's AML (after its header) that
/// [`s5_at`] accepts. A plain search for the name, as firmware puts the
/// object at the top level; a match that is not a package is passed over.
pub fn find_s5<M: PhysMem + ?Sized>(mem: &M, dsdt: Table) -> Result<S5, AcpiError> {
    let mut w = Window { mem, t: dsdt, at: 0, n: 0, buf: [0; 64] };
    // The last four bytes read, the newest in the top byte.
    let mut last = 0u32;
    for off in HEADER..dsdt.len {
        last = last >> 8 | (w.byte(off).ok_or(AcpiError::NoS5(dsdt.addr))? as u32) << 24;
        if last == u32::from_le_bytes(*b"_S5_") && off >= HEADER + 3 {
            if let Some(s5) = s5_at(&mut w, off - 3) {
                return Ok(s5);
            }
        }
    }
    Err(AcpiError::NoS5(dsdt.addr))
}

/// The root table at `addr` (the XSDT when `wide`) and the FADT it lists.
fn root_and_fadt<M: PhysMem + ?Sized>(mem: &M, addr: u64, wide: bool) -> Result<(Table, Table), AcpiError> {
    if addr == 0 {
        return Err(AcpiError::NoFadt(0));
    }
    let root = table(mem, addr, if wide { XSDT } else { RSDT }, HEADER)?;
    Ok((root, find_fadt(mem, root, wide)?))
}

/// From the RSDP at `rsdp_addr` to the FADT and the DSDT's `\_S5_`. The
/// XSDT is preferred where the RSDP names a valid one (revision 2 or
/// later), the RSDT otherwise or when the XSDT fails its checks.
pub fn parse<M: PhysMem + ?Sized>(mem: &M, rsdp_addr: u64) -> Result<Acpi, AcpiError> {
    let (rsdt, xsdt) = rsdp(mem, rsdp_addr)?;
    let mut wide = true;
    let (root, fadt) = match root_and_fadt(mem, xsdt, true) {
        Ok(found) => found,
        Err(e) => {
            wide = false;
            // Keep the XSDT's reason when the RSDT has no better answer.
            root_and_fadt(mem, rsdt as u64, false).map_err(|r| if xsdt != 0 { e } else { r })?
        }
    };
    let power = read_fadt(mem, fadt)?;
    let dsdt = if power.dsdt == 0 { Err(AcpiError::NoDsdt(fadt.addr)) } else { table(mem, power.dsdt, DSDT, HEADER) };
    let s5 = dsdt.and_then(|t| find_s5(mem, t));
    Ok(Acpi { rsdp: rsdp_addr, root, xsdt: wide, fadt, power, dsdt: dsdt.ok(), s5 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::memory::test_mem::FakeMem;

    /// A table: header with `sig`, revision `rev`, then `body`; checksum
    /// set.
    fn tab(sig: &[u8; 4], rev: u8, body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(sig);
        t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        t.push(rev);
        t.push(0);
        t.extend_from_slice(b"HVMLTE");
        t.extend_from_slice(b"TESTTABL");
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(b"HVML");
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(body);
        fix(&mut t, 9);
        t
    }

    /// Set the checksum byte at `at` so that `t` sums to 0.
    fn fix(t: &mut [u8], at: usize) {
        t[at] = 0;
        let s = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        t[at] = 0u8.wrapping_sub(s);
    }

    fn rsdp_v1(rsdt: u32) -> Vec<u8> {
        let mut r = b"RSD PTR ".to_vec();
        r.push(0);
        r.extend_from_slice(b"HVMLTE");
        r.push(0);
        r.extend_from_slice(&rsdt.to_le_bytes());
        fix(&mut r, 8);
        r
    }

    fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut r = rsdp_v1(rsdt);
        r[15] = 2;
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&xsdt.to_le_bytes());
        r.extend_from_slice(&[0; 4]);
        fix(&mut r[..20], 8);
        fix(&mut r, 32);
        r
    }

    fn gas_io(port: u16) -> [u8; 12] {
        let mut g = [0u8; 12];
        g[0] = 1;
        g[1] = 16;
        g[4..6].copy_from_slice(&port.to_le_bytes());
        g
    }

    /// An FADT body (after the header) of `len` total bytes, as QEMU's q35
    /// fills it: SMI_CMD 0xb2, ACPI_ENABLE 2, PM1a_CNT 0x604, PM timer
    /// 0x608, reset register 0xcf9 / 0x0f.
    fn fadt(len: usize, dsdt: u32, x_dsdt: u64) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[40..44].copy_from_slice(&dsdt.to_le_bytes());
        f[48..52].copy_from_slice(&0xb2u32.to_le_bytes());
        f[52] = 2;
        f[64..68].copy_from_slice(&0x604u32.to_le_bytes());
        f[76..80].copy_from_slice(&0x608u32.to_le_bytes());
        f[89] = 2;
        f[91] = 4;
        if len >= 129 {
            f[112..116].copy_from_slice(&(FADT_RESET_REG_SUP | 0xa5).to_le_bytes());
            f[116..128].copy_from_slice(&gas_io(0xcf9));
            f[128] = 0x0f;
        }
        if len >= 148 {
            f[140..148].copy_from_slice(&x_dsdt.to_le_bytes());
        }
        f[36..].to_vec()
    }

    /// QEMU's `Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero })` with
    /// some AML before it.
    const QEMU_S5: &[u8] = &[0x10, 0x05, b'_', b'S', b'B', b'_', 0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0];

    fn dsdt(aml: &[u8]) -> Vec<u8> {
        tab(b"DSDT", 2, aml)
    }

    /// Memory from 0xe0000 to 0x110000 with an RSDP at 0xf5a00 and the
    /// tables from 0x100000.
    struct Layout {
        mem: FakeMem,
    }

    const RSDP_AT: u64 = 0xf5a00;
    const ROOT_AT: u64 = 0x100000;
    const FADT_AT: u64 = 0x101000;
    const DSDT_AT: u64 = 0x102000;

    impl Layout {
        fn new() -> Self {
            Layout { mem: FakeMem::new(0xe0000, 0x30000) }
        }
        fn put(mut self, at: u64, b: &[u8]) -> Self {
            self.mem.write(at, b);
            self
        }
        /// RSDP v1 + RSDT listing an APIC table and the FADT, FADT of
        /// `fadt_len` bytes, DSDT with `aml`.
        fn v1(fadt_len: usize, aml: &[u8]) -> Self {
            let mut entries = Vec::new();
            entries.extend_from_slice(&0x103000u32.to_le_bytes());
            entries.extend_from_slice(&(FADT_AT as u32).to_le_bytes());
            Layout::new()
                .put(RSDP_AT, &rsdp_v1(ROOT_AT as u32))
                .put(ROOT_AT, &tab(b"RSDT", 1, &entries))
                .put(0x103000, &tab(b"APIC", 1, &[0; 8]))
                .put(FADT_AT, &tab(b"FACP", 3, &fadt(fadt_len, DSDT_AT as u32, 0)))
                .put(DSDT_AT, &dsdt(aml))
        }
    }

    #[test]
    fn qemu_q35_like_rsdp_v1_and_rsdt() {
        let l = Layout::v1(244, QEMU_S5);
        let a = parse(&l.mem, RSDP_AT).unwrap();
        assert_eq!(a.root, Table { addr: ROOT_AT, len: 44 });
        assert!(!a.xsdt);
        assert_eq!(a.fadt, Table { addr: FADT_AT, len: 244 });
        let p = a.power;
        assert_eq!((p.pm1a_cnt, p.pm1b_cnt, p.pm1_cnt_len, p.pm_tmr), (Some(0x604), None, 2, Some(0x608)));
        assert_eq!((p.smi_cmd, p.acpi_enable, p.reset, p.dsdt), (Some(0xb2), 2, Some((0xcf9, 0x0f)), DSDT_AT));
        assert_eq!(a.dsdt, Some(Table { addr: DSDT_AT, len: 36 + QEMU_S5.len() as u32 }));
        assert_eq!(a.s5, Ok(S5 { at: DSDT_AT + 36 + 6, slp_typ_a: 0, slp_typ_b: 0 }));
        assert_eq!(find_rsdp(&l.mem), Some(RSDP_AT));
    }

    #[test]
    fn acpi_1_fadt_has_no_reset_register() {
        // QEMU's pc (PIIX4): a 116-byte revision 1 FADT.
        let a = parse(&Layout::v1(116, QEMU_S5).mem, RSDP_AT).unwrap();
        assert_eq!((a.fadt.len, a.power.reset, a.power.pm1a_cnt), (116, None, Some(0x604)));
        assert!(a.s5.is_ok());
    }

    #[test]
    fn xsdt_is_preferred_and_x_fields_win() {
        let mut f = fadt(276, 0x104000, DSDT_AT);
        f[172 - 36..184 - 36].copy_from_slice(&gas_io(0x404));
        f[184 - 36..196 - 36].copy_from_slice(&gas_io(0x408));
        let aml = [0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x06, 0x00, 0x00];
        let l = Layout::new()
            .put(RSDP_AT, &rsdp_v2(0x105000, ROOT_AT))
            .put(ROOT_AT, &tab(b"XSDT", 1, &FADT_AT.to_le_bytes()))
            // The RSDT leads elsewhere: it must not be used.
            .put(0x105000, &tab(b"RSDT", 1, &0x106000u32.to_le_bytes()))
            .put(FADT_AT, &tab(b"FACP", 6, &f))
            .put(DSDT_AT, &dsdt(&aml));
        let a = parse(&l.mem, RSDP_AT).unwrap();
        assert!(a.xsdt);
        assert_eq!(a.root.addr, ROOT_AT);
        assert_eq!((a.power.pm1a_cnt, a.power.pm1b_cnt, a.power.dsdt), (Some(0x404), Some(0x408), DSDT_AT));
        assert_eq!(a.s5, Ok(S5 { at: DSDT_AT + 36, slp_typ_a: 5, slp_typ_b: 6 }));
    }

    #[test]
    fn bad_xsdt_falls_back_to_the_rsdt() {
        let l = Layout::v1(244, QEMU_S5).put(RSDP_AT, &rsdp_v2(ROOT_AT as u32, 0x10f000));
        let a = parse(&l.mem, RSDP_AT).unwrap();
        assert!(!a.xsdt);
        assert_eq!(a.root.addr, ROOT_AT);
        // A v2 RSDP whose extended checksum fails is taken as v1.
        let mut r = rsdp_v2(ROOT_AT as u32, 0x10f000);
        r[33] ^= 1;
        let l = Layout::v1(244, QEMU_S5).put(RSDP_AT, &r);
        assert_eq!(rsdp(&l.mem, RSDP_AT), Ok((ROOT_AT as u32, 0)));
        assert!(parse(&l.mem, RSDP_AT).is_ok());
    }

    #[test]
    fn x_registers_outside_io_space_are_not_ports() {
        let mut f = fadt(276, DSDT_AT as u32, 0);
        let mut mmio = gas_io(0x604);
        mmio[0] = 0; // system memory
        f[172 - 36..184 - 36].copy_from_slice(&mmio);
        f[116 - 36] = 0; // the reset register in memory space
        let l = Layout::v1(244, QEMU_S5).put(FADT_AT, &tab(b"FACP", 6, &f));
        let a = parse(&l.mem, RSDP_AT).unwrap();
        // PM1a_CNT_BLK stands; the reset register is absent.
        assert_eq!((a.power.pm1a_cnt, a.power.reset), (Some(0x604), None));
    }

    #[test]
    fn hardware_reduced_acpi_has_no_fixed_ports() {
        let mut f = fadt(276, DSDT_AT as u32, 0);
        f[112 - 36..116 - 36].copy_from_slice(&(FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP).to_le_bytes());
        let l = Layout::v1(244, QEMU_S5).put(FADT_AT, &tab(b"FACP", 6, &f));
        let p = parse(&l.mem, RSDP_AT).unwrap().power;
        assert_eq!((p.pm1a_cnt, p.pm_tmr, p.smi_cmd, p.reset), (None, None, None, Some((0xcf9, 0x0f))));
    }

    fn s5_of(aml: &[u8]) -> Result<S5, AcpiError> {
        let l = Layout::new().put(DSDT_AT, &dsdt(aml));
        find_s5(&l.mem, Table { addr: DSDT_AT, len: 36 + aml.len() as u32 })
    }

    #[test]
    fn each_s5_encoding() {
        let s5 = |a, b| Ok(S5 { at: DSDT_AT + 36, slp_typ_a: a, slp_typ_b: b });
        // BytePrefix + byte.
        assert_eq!(s5_of(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 0x07, 0x0a, 0x07, 0, 0]), s5(7, 7));
        // ZeroOp / OneOp.
        assert_eq!(s5_of(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x01, 0x00, 0, 0]), s5(1, 0));
        // Bare bytes, two elements.
        assert_eq!(s5_of(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x02, 0x05, 0x05]), s5(5, 5));
        // Root char and parent prefixes before the name.
        assert_eq!(s5_of(&[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x05, 0x02, 0x0a, 0x07, 0x00]), s5(7, 0));
        assert_eq!(s5_of(&[0x08, b'^', b'^', b'_', b'S', b'5', b'_', 0x12, 0x05, 0x02, 0x0a, 0x07, 0x00]), s5(7, 0));
        // Two-byte PkgLength (bits 7-6 = 1): 0x47 0x00 = 7 | 0 << 4.
        assert_eq!(s5_of(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x47, 0x00, 0x02, 0x0a, 0x06, 0x0a, 0x06]), s5(6, 6));
        // Four-byte PkgLength (bits 7-6 = 3): 0xc7 0 0 0 = 7.
        assert_eq!(s5_of(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0xc7, 0, 0, 0, 0x02, 0x00, 0x01]), s5(0, 1));
        // A PkgLength whose upper bytes count: 0x40 0x01 = 16 (and the
        // package ends before the table does).
        let mut long = vec![0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x01, 0x04, 0x0a, 0x02, 0x0a, 0x03];
        long.resize(long.len() + 9, 0);
        assert_eq!(s5_of(&long), s5(2, 3));
        // QEMU's, after other AML.
        assert_eq!(s5_of(QEMU_S5), Ok(S5 { at: DSDT_AT + 36 + 6, slp_typ_a: 0, slp_typ_b: 0 }));
    }

    #[test]
    fn s5_lookalikes_are_passed_over() {
        // A reference to \_S5_ inside a method (no NameOp), then the real one.
        let mut aml = vec![0x70, b'\\', b'_', b'S', b'5', b'_', 0x60];
        aml.extend_from_slice(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x05, 0x02, 0x0a, 0x03, 0x01]);
        assert_eq!(s5_of(&aml), Ok(S5 { at: DSDT_AT + 36 + 7, slp_typ_a: 3, slp_typ_b: 1 }));
        // Not a package; too few elements; a value over 7; a WordConst
        // (iasl writes small integers as Zero, One or BytePrefix); a package
        // longer than the table; elements past the package's end; the
        // name at the very end.
        for aml in [
            &[0x08, b'_', b'S', b'5', b'_', 0x0a, 0x05][..],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x03, 0x01, 0x0a, 0x05],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x08, 0x0a, 0x00],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x05, 0x0b, 0x05, 0x00],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x3f, 0x02, 0x00, 0x00],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x03, 0x02, 0x0a, 0x01, 0x0a, 0x01],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x01, 0x0a],
            &[0x08, b'_', b'S', b'5', b'_'],
            &[b'_', b'S', b'5', b'_', 0x12, 0x04, 0x02, 0x00, 0x00],
        ] {
            assert_eq!(s5_of(aml), Err(AcpiError::NoS5(DSDT_AT)), "{aml:x?}");
        }
    }

    #[test]
    fn bad_checksums_are_refused() {
        let l = Layout::v1(244, QEMU_S5);
        let mut r = rsdp_v1(ROOT_AT as u32);
        r[10] ^= 0x40;
        assert_eq!(parse(&Layout::v1(244, QEMU_S5).put(RSDP_AT, &r).mem, RSDP_AT), Err(AcpiError::NoRsdp(RSDP_AT)));
        let flip = |at: u64| {
            let mut l = Layout::v1(244, QEMU_S5);
            let off = (at - l.mem.base) as usize;
            l.mem.bytes[off] ^= 0x10;
            l
        };
        assert_eq!(parse(&flip(ROOT_AT + 40).mem, RSDP_AT), Err(AcpiError::Checksum(RSDT, ROOT_AT)));
        assert_eq!(parse(&flip(FADT_AT + 64).mem, RSDP_AT), Err(AcpiError::Checksum(FACP, FADT_AT)));
        let a = parse(&flip(DSDT_AT + 40).mem, RSDP_AT).unwrap();
        assert_eq!((a.dsdt, a.s5), (None, Err(AcpiError::Checksum(DSDT, DSDT_AT))));
        assert_eq!(a.power.reset, Some((0xcf9, 0x0f)), "a reset needs only the FADT");
        // Found by a scan only with a valid checksum.
        assert_eq!(find_rsdp(&Layout::new().put(RSDP_AT, &r).mem), None);
        assert_eq!(find_rsdp(&l.mem), Some(RSDP_AT));
    }

    #[test]
    fn lengths_outside_memory_or_bounds_are_refused() {
        // Memory ends at 0x110000: a DSDT claiming to run past it.
        let mut d = dsdt(QEMU_S5);
        d[4..8].copy_from_slice(&0x10000u32.to_le_bytes());
        let a = parse(&Layout::v1(244, QEMU_S5).put(DSDT_AT, &d).mem, RSDP_AT).unwrap();
        assert_eq!(a.s5, Err(AcpiError::Unreadable(DSDT, DSDT_AT)));
        // Lengths under the header, over MAX_TABLE, an FADT under 116.
        for (len, at, sig) in [(20u32, ROOT_AT, RSDT), (MAX_TABLE + 1, ROOT_AT, RSDT), (100, FADT_AT, FACP)] {
            let mut l = Layout::v1(244, QEMU_S5);
            let off = (at - l.mem.base) as usize;
            l.mem.bytes[off + 4..off + 8].copy_from_slice(&len.to_le_bytes());
            assert_eq!(parse(&l.mem, RSDP_AT), Err(AcpiError::Length(sig, at, len)));
        }
        // Tables wholly outside memory, or past 2^64.
        assert_eq!(
            parse(&Layout::v1(244, QEMU_S5).put(RSDP_AT, &rsdp_v1(0x2000_0000)).mem, RSDP_AT),
            Err(AcpiError::Unreadable(RSDT, 0x2000_0000))
        );
        let l = Layout::new().put(RSDP_AT, &rsdp_v2(0, u64::MAX - 3));
        assert_eq!(parse(&l.mem, RSDP_AT), Err(AcpiError::Unreadable(XSDT, u64::MAX - 3)));
        // An RSDP at the very end of memory, or not in memory at all.
        assert_eq!(parse(&Layout::new().mem, 0x10fff0), Err(AcpiError::NoRsdp(0x10fff0)));
        assert_eq!(parse(&Layout::new().mem, u64::MAX), Err(AcpiError::NoRsdp(u64::MAX)));
    }

    #[test]
    fn truncated_tables_are_refused() {
        // Each table cut at the end of memory.
        for (at, sig) in [(ROOT_AT, RSDT), (FADT_AT, FACP)] {
            let l = Layout::v1(244, QEMU_S5);
            let cut = (at + 40 - l.mem.base) as usize;
            let mem = FakeMem { base: l.mem.base, bytes: l.mem.bytes[..cut].to_vec() };
            assert_eq!(parse(&mem, RSDP_AT), Err(AcpiError::Unreadable(sig, at)));
        }
        // The first entry signed FACP decides, even when a later one is
        // valid.
        let mut entries = Vec::new();
        for at in [0x104000u32, FADT_AT as u32] {
            entries.extend_from_slice(&at.to_le_bytes());
        }
        let mut bad = tab(b"FACP", 3, &fadt(244, DSDT_AT as u32, 0));
        bad[100] ^= 1;
        let l = Layout::v1(244, QEMU_S5).put(ROOT_AT, &tab(b"RSDT", 1, &entries)).put(0x104000, &bad);
        assert_eq!(parse(&l.mem, RSDP_AT), Err(AcpiError::Checksum(FACP, 0x104000)));
        // An RSDT whose FADT entry leads to another table: no FADT.
        let l = Layout::v1(244, QEMU_S5).put(FADT_AT, b"APIC");
        assert_eq!(parse(&l.mem, RSDP_AT), Err(AcpiError::NoFadt(ROOT_AT)));
        // An FADT naming no DSDT.
        let l = Layout::v1(244, QEMU_S5).put(FADT_AT, &tab(b"FACP", 3, &fadt(244, 0, 0)));
        assert_eq!(parse(&l.mem, RSDP_AT).unwrap().s5, Err(AcpiError::NoDsdt(FADT_AT)));
    }

    #[test]
    fn the_ebda_is_searched_first() {
        let mut mem = FakeMem::new(0, 0x110000);
        mem.write(BDA_EBDA_SEGMENT, &0x9fc0u16.to_le_bytes());
        mem.write(0x9fc00 + 0x30, &rsdp_v1(0x100000));
        mem.write(0xf0000, &rsdp_v1(0x100000));
        assert_eq!(find_rsdp(&mem), Some(0x9fc30));
        // Past its first KiB it is not looked at; a segment in the video
        // area is not an EBDA.
        let mut mem = FakeMem::new(0, 0x110000);
        mem.write(BDA_EBDA_SEGMENT, &0x9fc0u16.to_le_bytes());
        mem.write(0x9fc00 + 0x400, &rsdp_v1(0x100000));
        assert_eq!(find_rsdp(&mem), None);
        mem.write(BDA_EBDA_SEGMENT, &0xa000u16.to_le_bytes());
        mem.write(0xa0000, &rsdp_v1(0x100000));
        assert_eq!(find_rsdp(&mem), None);
        // Not on a 16-byte boundary.
        let mut mem = FakeMem::new(0xe0000, 0x20000);
        mem.write(0xe0008, &rsdp_v1(0x100000));
        assert_eq!(find_rsdp(&mem), None);
    }

    #[test]
    fn errors_are_one_line() {
        for e in [
            AcpiError::NoRsdp(0),
            AcpiError::NoRsdp(0xf5a00),
            AcpiError::Unreadable(RSDT, 1),
            AcpiError::Length(FACP, 2, 3),
            AcpiError::Checksum(DSDT, 4),
            AcpiError::NotThere(XSDT, 5),
            AcpiError::NoFadt(0),
            AcpiError::NoDsdt(6),
            AcpiError::NoS5(7),
        ] {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n') && !s.contains('\0'), "{s:?}");
        }
    }
}
