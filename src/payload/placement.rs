//! Stage 4b: where the kernel goes (pure).
//!
//! The kernel needs `span` bytes of e820 RAM from its load address, which
//! must be a multiple of `align`, at or above `min_addr` (a relocatable
//! bzImage's decompressor moves itself up to `pref_address` anyway when it
//! is loaded lower, so anything lower would be overwritten behind the
//! loader's back). Nothing reserved may be touched: hvmlite's image, the
//! zero page with its command line and `setup_data`, the initrd, every
//! range the boot handed over, the heap (which holds the page tables the
//! kernel starts on). The lowest such address wins, so a kernel lands at
//! its preferred address whenever that is free.

use core::fmt;

use crate::arch::e820::{self, E820Entry};
use crate::arch::memory::{align_up, Range};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub span: u64,
    pub align: u64,
    pub min_addr: u64,
    pub relocatable: bool,
    /// The kernel's end must not pass this (4 GiB for kernels that cannot
    /// live above it).
    pub max_end: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// A non-relocatable kernel's one address is taken or not RAM.
    FixedAddressBusy { at: Range, blocker: Option<Range> },
    /// Nowhere in RAM is big enough.
    NoRoom { span: u64, align: u64, min_addr: u64, max_end: u64 },
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlaceError::FixedAddressBusy { at, blocker: Some(b) } => write!(
                f,
                "the kernel is not relocatable and its range {:#x}-{:#x} overlaps {:#x}-{:#x}, which is in use",
                at.start, at.end, b.start, b.end
            ),
            PlaceError::FixedAddressBusy { at, blocker: None } => {
                write!(f, "the kernel is not relocatable and its range {:#x}-{:#x} is not all RAM", at.start, at.end)
            }
            PlaceError::NoRoom { span, align, min_addr, max_end } => write!(
                f,
                "no room for the kernel: it needs {span:#x} bytes of free RAM at an address aligned to {align:#x} \
                 between {min_addr:#x} and {max_end:#x}"
            ),
        }
    }
}

/// The RAM entry holding all of `r`, if one does (`map` is sanitised:
/// touching RAM entries are merged, so one entry is enough).
fn in_ram(map: &[E820Entry], r: &Range) -> bool {
    map.iter().any(|e| e.type_ == e820::RAM && e.addr <= r.start && r.end <= e.end())
}

/// Choose the load address: the lowest one that satisfies `req`.
pub fn place(map: &[E820Entry], reserved: &[Range], req: &Request) -> Result<u64, PlaceError> {
    let fits = |at: u64| -> Result<Range, Option<Range>> {
        let r = Range::sized(at, req.span).ok_or(None)?;
        if r.end > req.max_end || !in_ram(map, &r) {
            return Err(None);
        }
        match reserved.iter().filter(|x| !x.is_empty() && x.overlaps(&r)).max_by_key(|x| x.end) {
            Some(x) => Err(Some(*x)),
            None => Ok(r),
        }
    };
    if !req.relocatable {
        return match fits(req.min_addr) {
            Ok(_) => Ok(req.min_addr),
            Err(blocker) => {
                Err(PlaceError::FixedAddressBusy { at: Range::new(req.min_addr, req.min_addr.saturating_add(req.span)), blocker })
            }
        };
    }
    let no_room = PlaceError::NoRoom { span: req.span, align: req.align, min_addr: req.min_addr, max_end: req.max_end };
    for e in map.iter().filter(|e| e.type_ == e820::RAM && e.end() > req.min_addr) {
        let Some(mut at) = align_up(e.addr.max(req.min_addr), req.align) else { continue };
        while at.checked_add(req.span).is_some_and(|end| end <= e.end()) {
            match fits(at) {
                Ok(_) => return Ok(at),
                // Skip past whatever is in the way.
                Err(Some(x)) => match align_up(x.end, req.align) {
                    Some(next) if next > at => at = next,
                    _ => break,
                },
                Err(None) => break,
            }
        }
    }
    Err(no_room)
}

/// The rule the hand-off keeps: everything a kernel reads before it has
/// its own page tables and GDT (here: ours) lies below its load address,
/// where a bzImage's decompressor never moves itself (it picks addresses
/// from the load address up). Returns the first range that breaks it.
pub fn handoff_state_is_clear(load: u64, state: &[Range]) -> Result<(), Range> {
    match state.iter().find(|r| r.end > load) {
        Some(r) => Err(*r),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::e820::{RAM, RESERVED};

    const M: u64 = 1 << 20;
    const MAP: [E820Entry; 4] = [
        E820Entry::new(0, 0x9fc00, RAM),
        E820Entry::new(0x9fc00, 0x400, RESERVED),
        E820Entry::new(M, 511 * M - 0x20000, RAM),
        E820Entry::new(0x1_0000_0000, 1024 * M, RAM),
    ];

    fn req(span: u64) -> Request {
        Request { span, align: 2 * M, min_addr: 16 * M, relocatable: true, max_end: u64::MAX }
    }

    #[test]
    fn preferred_address_when_free() {
        assert_eq!(place(&MAP, &[Range::new(M, 2 * M)], &req(64 * M)), Ok(16 * M));
    }

    #[test]
    fn skips_reservations_and_keeps_alignment() {
        let res = [Range::new(M, 2 * M), Range::new(20 * M, 20 * M + 1), Range::new(90 * M + 5, 91 * M)];
        // 16..80 hits 20 MiB; 22..86 is free.
        assert_eq!(place(&MAP, &res, &req(64 * M)), Ok(22 * M));
        // 70 MiB from 22 would hit 90: the next slot is 92 MiB.
        assert_eq!(place(&MAP, &res, &req(70 * M)), Ok(92 * M));
    }

    #[test]
    fn only_ram_and_above_the_minimum() {
        // Too big for low RAM: goes above 4 GiB.
        assert_eq!(place(&MAP, &[], &req(600 * M)), Ok(0x1_0000_0000));
        // ...unless the kernel cannot live there.
        let low = Request { max_end: 1 << 32, ..req(600 * M) };
        assert!(matches!(place(&MAP, &[], &low), Err(PlaceError::NoRoom { .. })));
        // Never below min_addr, even with room there.
        let r = place(&MAP, &[], &Request { min_addr: 0x1234567, ..req(M) }).unwrap();
        assert_eq!(r, 20 * M);
        let tiny = [E820Entry::new(0, 32 * M, RAM)];
        assert!(matches!(place(&tiny, &[], &req(64 * M)), Err(PlaceError::NoRoom { .. })));
    }

    #[test]
    fn non_relocatable_gets_exactly_its_address_or_an_error() {
        let fixed = Request { relocatable: false, ..req(8 * M) };
        assert_eq!(place(&MAP, &[], &fixed), Ok(16 * M));
        let e = place(&MAP, &[Range::new(17 * M, 18 * M)], &fixed).unwrap_err();
        assert_eq!(e, PlaceError::FixedAddressBusy { at: Range::new(16 * M, 24 * M), blocker: Some(Range::new(17 * M, 18 * M)) });
        let e = place(&MAP, &[], &Request { min_addr: 510 * M, ..fixed }).unwrap_err();
        assert!(matches!(e, PlaceError::FixedAddressBusy { blocker: None, .. }));
    }

    #[test]
    fn placement_model_check() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let k = 4096u64;
        for _ in 0..300 {
            let map = [E820Entry::new(0, (40 + rnd(40)) * k, RAM), E820Entry::new(100 * k, (20 + rnd(60)) * k, RAM)];
            let res: Vec<Range> = (0..rnd(6))
                .map(|_| {
                    let s = rnd(200) * k + rnd(k);
                    Range::new(s, s + 1 + rnd(10 * k))
                })
                .collect();
            let rq = Request { span: (1 + rnd(30)) * k, align: k << rnd(3), min_addr: rnd(50) * k, relocatable: true, max_end: u64::MAX };
            let ok = |a: u64| {
                let r = Range::new(a, a + rq.span);
                a.is_multiple_of(rq.align) && a >= rq.min_addr && in_ram(&map, &r) && res.iter().all(|x| !x.overlaps(&r))
            };
            let want = (0..300 * k).step_by(rq.align as usize).find(|&a| ok(a));
            assert_eq!(place(&map, &res, &rq).ok(), want, "{map:?} {res:?} {rq:?}");
        }
    }

    #[test]
    fn handoff_state_must_lie_below_the_kernel() {
        // hvmlite's image at 1 MiB, a kernel at 16 MiB: clear.
        let image = [Range::new(0x100000, 0x148000), Range::new(0x10b000, 0x10b040)];
        assert_eq!(handoff_state_is_clear(0x1000000, &image), Ok(()));
        // Tables at the top of RAM (where the heap is): the fault the
        // KASLR decompressor hit.
        let heap_tables = Range::new(0x0f00_0000, 0x0f00_6000);
        assert_eq!(handoff_state_is_clear(0x1000000, &[image[0], heap_tables]), Err(heap_tables));
        // Touching the load address from below is fine; crossing it is not.
        assert_eq!(handoff_state_is_clear(0x1000000, &[Range::new(0xfff000, 0x1000000)]), Ok(()));
        assert!(handoff_state_is_clear(0x1000000, &[Range::new(0xfff000, 0x1000001)]).is_err());
    }
}
