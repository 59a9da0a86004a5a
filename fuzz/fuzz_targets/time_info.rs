//! `time.rs`'s reader of `vcpu_time_info` and the wall clock, racing a
//! writer the input drives, and its 128-bit scaling.
//!
//! The writer runs between the reader's loads. An honest writer follows
//! the protocol (version to odd, fields one at a time, version to even);
//! a hostile one also stalls with an odd version, bumps the version
//! without writing, or writes fields without touching the version.
//! Invariants:
//! - the reader never panics and gives up after a bounded number of loads
//!   (at most `MAX_TRIES` attempts of 6 loads);
//! - with an honest writer, a settled reading is exactly one of the records
//!   the writer published whole (never a mix of two), with an even
//!   version; the TSC is read once at most, in the first window that
//!   starts on an even version;
//! - a writer stuck on an odd version gives `Unsettled`, never a reading;
//! - for one settled record, time never goes back as the TSC grows from
//!   the timestamp (modulo 2^64), and a TSC before it reads as it;
//! - `scale` matches a reference computed another way.
#![no_main]

use std::cell::{Cell, RefCell};

use hvmlite::xen::abi::{SHARED_INFO_WC_NSEC, SHARED_INFO_WC_SEC, SHARED_INFO_WC_SEC_HI, SHARED_INFO_WC_VERSION};
use hvmlite::xen::time::{read_time, read_wallclock, scale, TimeMem, MAX_TRIES};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// The record at offset 0, as four 64-bit words (version+pad, tsc_timestamp,
/// system_time, mul+shift+flags), and the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
struct Rec {
    ts: u64,
    sys: u64,
    mul: u32,
    shift: i8,
    flags: u8,
}

struct Mem<'a> {
    input: RefCell<Bytes<'a>>,
    version: Cell<u32>,
    cur: Cell<Rec>,
    /// What the writer is writing now (fields copied one at a time).
    next: Cell<Option<(Rec, u8)>>,
    /// Every record the writer published whole (version back to even).
    published: RefCell<Vec<Rec>>,
    honest: bool,
    stuck_odd: bool,
    loads: Cell<u32>,
    tsc: Cell<u64>,
    /// The TSC values handed out, and the loads at which they were.
    tscs: RefCell<Vec<u64>>,
    wc: Cell<(u32, u32, u32)>,
}

impl Mem<'_> {
    /// One step of the writer, between two of the reader's loads.
    fn step(&self) {
        let mut b = self.input.borrow_mut();
        if self.stuck_odd {
            self.version.set(self.version.get() | 1);
            return;
        }
        let op = b.u8();
        match (op % 4, self.next.get()) {
            (0, None) => {
                // Start an update: version odd, then fields.
                let r = Rec { ts: b.u64(), sys: b.u64(), mul: b.u32(), shift: b.u8() as i8, flags: b.u8() };
                self.version.set(self.version.get().wrapping_add(1) | 1);
                self.next.set(Some((r, 0)));
            }
            (1, Some((r, k))) => {
                // One more field.
                let mut c = self.cur.get();
                match k {
                    0 => c.ts = r.ts,
                    1 => c.sys = r.sys,
                    2 => c.mul = r.mul,
                    _ => {
                        c.shift = r.shift;
                        c.flags = r.flags;
                    }
                }
                self.cur.set(c);
                if k >= 3 {
                    // Published: version even again.
                    self.version.set(self.version.get().wrapping_add(1) & !1);
                    self.published.borrow_mut().push(c);
                    self.next.set(None);
                } else {
                    self.next.set(Some((r, k + 1)));
                }
            }
            (2, _) if !self.honest => self.version.set(self.version.get().wrapping_add(b.u8() as u32)),
            (3, _) if !self.honest => {
                let mut c = self.cur.get();
                c.sys = b.u64();
                self.cur.set(c);
            }
            _ => {}
        }
        let (v, s, n) = self.wc.get();
        if op & 0x80 != 0 {
            self.wc.set((v.wrapping_add(1), s ^ b.u8() as u32, n));
        }
    }
}

impl TimeMem for Mem<'_> {
    fn load32(&self, off: usize) -> u32 {
        self.loads.set(self.loads.get() + 1);
        assert!(self.loads.get() <= MAX_TRIES * 6, "the reader does not give up");
        self.step();
        let c = self.cur.get();
        let (wv, ws, wn) = self.wc.get();
        match off {
            0 => self.version.get(),
            24 => c.mul,
            28 => c.shift as u8 as u32 | (c.flags as u32) << 8,
            o if o == SHARED_INFO_WC_VERSION => wv,
            o if o == SHARED_INFO_WC_SEC => ws,
            o if o == SHARED_INFO_WC_SEC_HI => 0,
            o if o == SHARED_INFO_WC_NSEC => wn,
            _ => panic!("load32 at {off}"),
        }
    }
    fn load64(&self, off: usize) -> u64 {
        self.loads.set(self.loads.get() + 1);
        assert!(self.loads.get() <= MAX_TRIES * 6, "the reader does not give up");
        self.step();
        let c = self.cur.get();
        match off {
            8 => c.ts,
            16 => c.sys,
            _ => panic!("load64 at {off}"),
        }
    }
    fn tsc(&self) -> u64 {
        let t = self.tsc.get().wrapping_add(self.input.borrow_mut().u16() as u64);
        self.tsc.set(t);
        self.tscs.borrow_mut().push(t);
        t
    }
}

/// floor(d * mul * 2^shift / 2^32), saturated to u64, with the negative
/// shift applied to `delta` first: computed by cases on the shift.
fn reference(delta: u64, mul: u32, shift: i8) -> u64 {
    let p = if shift < 0 {
        let s = -(shift as i32) as u32;
        (if s >= 64 { 0 } else { delta >> s }) as u128 * mul as u128
    } else {
        delta as u128 * mul as u128
    };
    let s = shift.max(0) as u32;
    let v: Option<u128> = if s <= 32 {
        Some(p >> (32 - s))
    } else {
        // p * 2^(s-32), if it fits.
        let k = s - 32;
        if p == 0 {
            Some(0)
        } else if k >= 128 || p > (u128::MAX >> k) {
            None
        } else {
            Some(p << k)
        }
    };
    v.map_or(u64::MAX, |v| v.min(u64::MAX as u128) as u64)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let first = Rec { ts: b.u64(), sys: b.u64(), mul: b.u32(), shift: b.u8() as i8, flags: b.u8() };
    let (d, m, s) = (b.u64(), b.u32(), b.u8() as i8);
    assert_eq!(scale(d, m, s), reference(d, m, s), "scale({d}, {m}, {s})");

    let mem = Mem {
        input: RefCell::new(b),
        version: Cell::new(2),
        cur: Cell::new(first),
        next: Cell::new(None),
        published: RefCell::new(vec![first]),
        honest: mode & 1 == 0,
        stuck_odd: mode & 6 == 6,
        loads: Cell::new(0),
        tsc: Cell::new(first.ts),
        tscs: RefCell::new(vec![]),
        wc: Cell::new((0, 1_700_000_000, 0)),
    };
    let got = read_time(&mem, 0);
    // Each `rdtsc` may be a VM exit: a reading takes the TSC once at most.
    assert!(mem.tscs.borrow().len() <= 1, "the TSC read {} times", mem.tscs.borrow().len());
    match got {
        Ok((info, tsc)) => {
            assert!(!mem.stuck_odd, "a reading from a record whose version never went even");
            assert_eq!(info.version & 1, 0, "an odd version settled");
            assert!(mem.tscs.borrow().contains(&tsc), "the TSC came from elsewhere");
            if mem.honest {
                let got = Rec {
                    ts: info.tsc_timestamp,
                    sys: info.system_time,
                    mul: info.tsc_to_system_mul,
                    shift: info.tsc_shift,
                    flags: info.flags,
                };
                assert!(mem.published.borrow().contains(&got), "a torn reading {got:?}, published {:?}", mem.published.borrow());
            }
            // One record: time does not go back as the TSC grows from the
            // timestamp (deltas are taken modulo 2^64, up to 2^63).
            let mut b = mem.input.borrow_mut();
            let (d1, step) = (b.u64() >> 1, b.u64() >> 1);
            let d2 = d1.saturating_add(step).min((1 << 63) - 1);
            let (t1, t2) = (info.tsc_timestamp.wrapping_add(d1), info.tsc_timestamp.wrapping_add(d2));
            assert!(info.ns_at(t1) <= info.ns_at(t2), "{info:?}: ns_at({t1}) > ns_at({t2})");
            assert!(info.ns_at(t1) >= info.system_time);
            // A TSC before the timestamp reads as the timestamp.
            assert_eq!(info.ns_at(info.tsc_timestamp.wrapping_sub(1 + d1)), info.system_time);
            assert_eq!(info.ns_at(info.tsc_timestamp), info.system_time);
        }
        Err(_) => {}
    }
    mem.loads.set(0);
    if let Ok(wc) = read_wallclock(&mem) {
        assert!(wc.nsec == 0 && wc.sec >> 32 == 0);
    }
});
