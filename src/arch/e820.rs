//! The e820 memory map: entry layout (Linux `struct boot_e820_entry`) and the
//! sanitiser that turns whatever the boot handed over into a map a kernel can
//! trust: sorted, non-overlapping, neighbours merged, known types only.
//!
//! Runs before any heap exists, so it works in caller-provided buffers.

use core::fmt;

/// One e820 entry as the zero page stores it: 20 bytes, packed.
#[repr(C, packed)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub type_: u32,
}

impl E820Entry {
    pub const fn new(addr: u64, size: u64, type_: u32) -> Self {
        E820Entry { addr, size, type_ }
    }
    pub fn end(&self) -> u64 {
        self.addr + self.size
    }
}

impl fmt::Debug for E820Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, s, t) = (self.addr, self.size, self.type_);
        write!(f, "{a:#x}+{s:#x}:{t}")
    }
}

/// e820 types (Linux `enum e820_type`; Xen's `XEN_HVM_MEMMAP_TYPE_*` use
/// the same numbers).
pub const RAM: u32 = 1;
pub const RESERVED: u32 = 2;
pub const ACPI: u32 = 3;
pub const NVS: u32 = 4;
pub const UNUSABLE: u32 = 5;
pub const PMEM: u32 = 7;

/// The type a sanitised map uses for `t`: known types stay, anything else
/// (including Xen's `DISABLED`, 6) becomes reserved.
pub fn known_type(t: u32) -> u32 {
    match t {
        RAM | RESERVED | ACPI | NVS | UNUSABLE | PMEM => t,
        _ => RESERVED,
    }
}

/// Where two entries overlap, the more restrictive type wins. RAM is the
/// least restrictive; ACPI tables can be reclaimed once parsed; NVS must be
/// kept; persistent memory is not general RAM; reserved and unusable are
/// never to be touched.
fn restrictiveness(t: u32) -> u8 {
    match t {
        RAM => 0,
        ACPI => 1,
        NVS => 2,
        PMEM => 3,
        RESERVED => 4,
        _ => 5, // UNUSABLE
    }
}

pub fn type_name(t: u32) -> &'static str {
    match t {
        RAM => "ram",
        RESERVED => "reserved",
        ACPI => "acpi",
        NVS => "nvs",
        UNUSABLE => "unusable",
        PMEM => "pmem",
        _ => "unknown",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E820Error {
    /// The map has no entries at all.
    Empty,
    /// Entry `index` ends past 2^64.
    Wraps { index: usize, addr: u64, size: u64 },
    /// The scratch or output buffer is too small for `entries` entries.
    TooManyEntries { entries: usize, max: usize },
    /// Nothing in the map is RAM.
    NoRam,
}

impl fmt::Display for E820Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            E820Error::Empty => write!(f, "memory map is empty"),
            E820Error::Wraps { index, addr, size } => write!(f, "memory map entry {index} ({addr:#x}+{size:#x}) wraps past 2^64"),
            E820Error::TooManyEntries { entries, max } => {
                write!(f, "memory map has {entries} entries, more than the {max} supported")
            }
            E820Error::NoRam => write!(f, "memory map has no RAM"),
        }
    }
}

/// Scratch space [`sanitize`] needs for `entries` input entries: boundary
/// points (two per entry) and output entries (at most one per gap between
/// points).
pub const fn scratch_points(entries: usize) -> usize {
    entries * 2
}

/// Sanitise `input` into `out`, returning how many entries were written.
///
/// The result is sorted by address, has no overlaps (where input entries
/// overlap, the more restrictive type wins), no zero-length entries, merges
/// touching entries of the same type, and uses only known types. Addresses
/// are kept exactly as given (a kernel applies its own page rounding); holes
/// stay holes. `points` needs `2 * input.len()` slots and `out` at most as
/// many; an error says what did not fit.
pub fn sanitize(input: &[E820Entry], points: &mut [u64], out: &mut [E820Entry]) -> Result<usize, E820Error> {
    if input.is_empty() {
        return Err(E820Error::Empty);
    }
    let need = scratch_points(input.len());
    if points.len() < need {
        return Err(E820Error::TooManyEntries { entries: input.len(), max: points.len() / 2 });
    }

    // Every start and end is a point where the winning type may change.
    let mut np = 0;
    for (index, e) in input.iter().enumerate() {
        let (addr, size) = (e.addr, e.size);
        if size == 0 {
            continue;
        }
        let end = addr.checked_add(size).ok_or(E820Error::Wraps { index, addr, size })?;
        points[np] = addr;
        points[np + 1] = end;
        np += 2;
    }
    let points = &mut points[..np];
    // In place: this runs before the heap exists (crate::sort allocates).
    points.sort_unstable();
    let np = dedup_sorted(points);

    // For each elementary interval, the most restrictive covering type.
    let mut n = 0;
    let mut saw_ram = false;
    for w in points[..np].windows(2) {
        let (a, b) = (w[0], w[1]);
        let mut best: Option<u32> = None;
        for e in input {
            let (addr, size) = (e.addr, e.size);
            if size == 0 || addr > a || addr + size < b {
                continue;
            }
            let t = known_type(e.type_);
            if best.is_none_or(|cur| restrictiveness(t) > restrictiveness(cur)) {
                best = Some(t);
            }
        }
        let Some(t) = best else { continue }; // a hole
        saw_ram |= t == RAM;
        if n > 0 && out[n - 1].type_ == t && out[n - 1].end() == a {
            out[n - 1].size += b - a;
            continue;
        }
        if n == out.len() {
            return Err(E820Error::TooManyEntries { entries: input.len(), max: out.len() });
        }
        out[n] = E820Entry::new(a, b - a, t);
        n += 1;
    }
    if !saw_ram {
        return Err(E820Error::NoRam);
    }
    Ok(n)
}

fn dedup_sorted(v: &mut [u64]) -> usize {
    if v.is_empty() {
        return 0;
    }
    let mut w = 1;
    for r in 1..v.len() {
        if v[r] != v[w - 1] {
            v[w] = v[r];
            w += 1;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[E820Entry]) -> Result<Vec<E820Entry>, E820Error> {
        let mut points = vec![0; scratch_points(input.len())];
        let mut out = vec![E820Entry::default(); scratch_points(input.len())];
        let n = sanitize(input, &mut points, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    fn e(addr: u64, size: u64, t: u32) -> E820Entry {
        E820Entry::new(addr, size, t)
    }

    #[test]
    fn entry_is_20_bytes() {
        assert_eq!(core::mem::size_of::<E820Entry>(), 20);
    }

    #[test]
    fn sorted_input_from_qemu_is_kept_as_is() {
        // What QEMU's PVH path gives with -m 512 (see shared/PLATFORM.md).
        let m = [
            e(0, 0x9fc00, RAM),
            e(0x9fc00, 0x400, RESERVED),
            e(0xf0000, 0x10000, RESERVED),
            e(0x100000, 0x1ff00000, RAM),
            e(0xb0000000, 0x10000000, RESERVED),
            e(0xfed1c000, 0x4000, RESERVED),
            e(0xfeffc000, 0x4000, RESERVED),
            e(0xfffc0000, 0x40000, RESERVED),
        ];
        assert_eq!(run(&m).unwrap(), m.to_vec());
    }

    #[test]
    fn unsorted_input_is_sorted() {
        // xl create gives ACPI at 0xfc008000 before 0xfc000000.
        let m = [e(0, 0x2000000, RAM), e(0xfc008000, 0x1000, ACPI), e(0xfc000000, 0x8000, RESERVED), e(0xfeff8000, 0x8000, RESERVED)];
        assert_eq!(
            run(&m).unwrap(),
            vec![e(0, 0x2000000, RAM), e(0xfc000000, 0x8000, RESERVED), e(0xfc008000, 0x1000, ACPI), e(0xfeff8000, 0x8000, RESERVED),]
        );
    }

    #[test]
    fn overlaps_resolve_to_the_more_restrictive_type() {
        let m = [e(0, 0x100000, RAM), e(0x80000, 0x10000, RESERVED), e(0x88000, 0x10000, ACPI)];
        assert_eq!(
            run(&m).unwrap(),
            vec![e(0, 0x80000, RAM), e(0x80000, 0x10000, RESERVED), e(0x90000, 0x8000, ACPI), e(0x98000, 0x68000, RAM)]
        );
        // Order of the input does not matter.
        let mut rev = m;
        rev.reverse();
        assert_eq!(run(&m).unwrap(), run(&rev).unwrap());
        // Reserved beats RAM however they nest.
        assert_eq!(run(&[e(0x1000, 0x1000, RESERVED), e(0, 0x10000, RAM)]).unwrap().len(), 3);
        // Unusable beats everything.
        assert_eq!(
            run(&[e(0, 0x1000, RESERVED), e(0, 0x1000, UNUSABLE), e(0, 0x2000, RAM)]).unwrap(),
            vec![e(0, 0x1000, UNUSABLE), e(0x1000, 0x1000, RAM)]
        );
    }

    #[test]
    fn neighbours_and_duplicates_merge() {
        let m = [e(0, 0x1000, RAM), e(0x1000, 0x1000, RAM), e(0x1000, 0x1000, RAM), e(0x2000, 0x3000, RAM)];
        assert_eq!(run(&m).unwrap(), vec![e(0, 0x5000, RAM)]);
        // A hole keeps neighbours apart.
        let m = [e(0, 0x1000, RAM), e(0x2000, 0x1000, RAM)];
        assert_eq!(run(&m).unwrap(), m.to_vec());
    }

    #[test]
    fn zero_length_entries_are_dropped() {
        let m = [e(0x5000, 0, RESERVED), e(0, 0x10000, RAM), e(0x20000, 0, RAM)];
        assert_eq!(run(&m).unwrap(), vec![e(0, 0x10000, RAM)]);
    }

    #[test]
    fn unknown_types_become_reserved() {
        let m = [e(0, 0x10000, RAM), e(0x10000, 0x1000, 6), e(0x11000, 0x1000, 0xdead), e(0x12000, 0x1000, 0)];
        assert_eq!(run(&m).unwrap(), vec![e(0, 0x10000, RAM), e(0x10000, 0x3000, RESERVED)]);
        // ...and unknown never wins over a real reservation nor loses to RAM.
        let m = [e(0, 0x2000, RAM), e(0, 0x1000, 99)];
        assert_eq!(run(&m).unwrap(), vec![e(0, 0x1000, RESERVED), e(0x1000, 0x1000, RAM)]);
    }

    #[test]
    fn wrapping_entry_is_an_error() {
        let m = [e(0, 0x1000, RAM), e(u64::MAX - 0xfff, 0x2000, RAM)];
        assert_eq!(run(&m), Err(E820Error::Wraps { index: 1, addr: u64::MAX - 0xfff, size: 0x2000 }));
        // Ending exactly at 2^64 - 1 is fine.
        assert!(run(&[e(0, 0x1000, RAM), e(u64::MAX - 0xfff, 0xfff, RESERVED)]).is_ok());
    }

    #[test]
    fn empty_and_ramless_maps_are_errors() {
        assert_eq!(run(&[]), Err(E820Error::Empty));
        assert_eq!(run(&[e(0, 0x1000, RESERVED)]), Err(E820Error::NoRam));
        assert_eq!(run(&[e(0, 0, RAM)]), Err(E820Error::NoRam));
    }

    #[test]
    fn many_entries_survive_sanitising() {
        // 300 separate RAM pages with holes between them: more than the 128
        // a zero page holds, so the zero-page builder must spill them.
        let m: Vec<_> = (0..300u64).map(|i| e(i * 0x2000, 0x1000, RAM)).collect();
        let out = run(&m).unwrap();
        assert_eq!(out.len(), 300);
        assert!(out.windows(2).all(|w| w[0].end() < w[1].addr));
    }

    #[test]
    fn scratch_too_small_is_reported() {
        let m = [e(0, 0x1000, RAM), e(0x2000, 0x1000, RAM)];
        let mut points = [0u64; 3];
        let mut out = [E820Entry::default(); 4];
        assert_eq!(sanitize(&m, &mut points, &mut out), Err(E820Error::TooManyEntries { entries: 2, max: 1 }));
        let mut points = [0u64; 4];
        let mut out = [E820Entry::default(); 1];
        assert_eq!(sanitize(&m, &mut points, &mut out), Err(E820Error::TooManyEntries { entries: 2, max: 1 }));
    }

    /// Brute-force cross-check on a random sample: every byte's type in the
    /// output is the most restrictive input type covering it.
    #[test]
    fn matches_a_byte_model() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..500 {
            let n = 1 + rnd(8) as usize;
            let m: Vec<_> =
                (0..n).map(|_| e(rnd(64), rnd(24), [RAM, RESERVED, ACPI, NVS, UNUSABLE, PMEM, 6, 42][rnd(8) as usize])).collect();
            let got = match run(&m) {
                Ok(v) => v,
                Err(E820Error::NoRam) => continue,
                Err(err) => panic!("{err}"),
            };
            for x in 0..100u64 {
                let want =
                    m.iter().filter(|en| en.addr <= x && x < en.end()).map(|en| known_type(en.type_)).max_by_key(|t| restrictiveness(*t));
                let have = got.iter().find(|en| en.addr <= x && x < en.end()).map(|en| en.type_);
                assert_eq!(have, want, "byte {x} of {m:?} -> {got:?}");
            }
            assert!(got.windows(2).all(|w| w[0].end() <= w[1].addr && !(w[0].end() == w[1].addr && w[0].type_ == w[1].type_)));
        }
    }
}
