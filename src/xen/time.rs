//! Time: Xen's per-vCPU clock (`struct vcpu_time_info`, public/xen.h) and
//! wall clock (`shared_info.wc_*`), read with the pvclock protocol.
//!
//! Xen keeps, for each vCPU, its system time (ns since Xen booted) at some
//! TSC value and the factor that turns TSC ticks into ns. A reader takes
//! the record and the TSC between two reads of `version`; an odd version,
//! or one that changed, means Xen was writing, and the read is retried, a
//! bounded number of times ([`MAX_TRIES`]): a record that never settles is
//! an error ([`Unsettled`]), never a hang.
//!
//! The pure part (the reader over a [`TimeMem`], the 128-bit scaling,
//! [`Instant`]) builds for the host and is tested there and fuzzed
//! (`fuzz/fuzz_targets/time_info.rs`). The hardware part ([`now`], [`wall`],
//! [`since_boot`]) reads the real shared info page; off Xen it scales the
//! TSC, calibrated once against the PIT, with the same arithmetic.

use core::ops::{Add, Sub};
use core::sync::atomic::{fence, Ordering};
use core::time::Duration;

use crate::xen::abi::{SHARED_INFO_WC_NSEC, SHARED_INFO_WC_SEC, SHARED_INFO_WC_SEC_HI, SHARED_INFO_WC_VERSION};

/// How many times a read is tried while Xen is updating the record.
pub const MAX_TRIES: u32 = 1000;

/// Offsets inside `struct vcpu_time_info` (see [`crate::xen::abi::VcpuTimeInfo`]).
const VERSION: usize = 0;
const TSC_TIMESTAMP: usize = 8;
const SYSTEM_TIME: usize = 16;
const MUL: usize = 24;
const SHIFT_FLAGS: usize = 28;

/// Where the time records live, and the TSC. The real one reads the shared
/// info page with volatile loads; tests and the fuzzer script the values.
pub trait TimeMem {
    fn load32(&self, off: usize) -> u32;
    fn load64(&self, off: usize) -> u64;
    /// The TSC, read between the two version reads.
    fn tsc(&self) -> u64;
}

/// The record never settled: its version stayed odd, or kept changing,
/// for [`MAX_TRIES`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsettled {
    pub version: u32,
}

impl core::fmt::Display for Unsettled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "time record never settled after {MAX_TRIES} reads (version {:#x})", self.version)
    }
}

/// One settled `vcpu_time_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeInfo {
    pub version: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
}

/// `((delta << shift) * mul) >> 32` (a negative shift shifts `delta`
/// right first, as Xen and Linux do), computed in 128 bits so nothing is
/// lost to overflow; a result beyond `u64::MAX` saturates.
pub fn scale(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift < 0 { delta.checked_shr(shift.unsigned_abs() as u32).unwrap_or(0) } else { delta };
    // Below 2^96: exact in 128 bits.
    let p = d as u128 * mul as u128;
    let s = shift.max(0) as u32;
    if p == 0 {
        return 0;
    }
    if s >= p.leading_zeros() {
        // p << s needs more than 128 bits: far beyond u64 after >> 32.
        return u64::MAX;
    }
    u64::try_from((p << s) >> 32).unwrap_or(u64::MAX)
}

impl TimeInfo {
    /// System time (ns) at `tsc`. The TSC delta is taken modulo 2^64, as
    /// Xen and Linux take it: a domain's TSC starts near 0 when it is
    /// created, and Xen may write the first record before that, with a
    /// timestamp just below 2^64. A delta of 2^63 or more is a TSC before
    /// the timestamp (skew between CPUs) and counts as the timestamp
    /// itself, so for one record the result never decreases as `tsc`
    /// grows from the timestamp.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        let delta = if delta >> 63 != 0 { 0 } else { delta };
        self.system_time.saturating_add(scale(delta, self.tsc_to_system_mul, self.tsc_shift))
    }

    /// A record for a TSC of `hz` ticks a second that reads `system_time`
    /// at `tsc`: the factor Xen itself computes (`set_time_scale`, a 32-bit
    /// fraction of a second per tick with a power-of-two shift). For the
    /// clock off Xen.
    pub fn for_tsc_hz(hz: u64, tsc: u64, system_time: u64) -> Option<TimeInfo> {
        const NS: u64 = 1_000_000_000;
        if hz == 0 {
            return None;
        }
        let mut tps = hz;
        let mut shift: i32 = 0;
        while tps > 2 * NS {
            tps >>= 1;
            shift -= 1;
        }
        while tps <= NS {
            tps <<= 1;
            shift += 1;
        }
        // NS < tps <= 2 NS: the fraction NS / tps is below 1.
        let mul = ((NS as u128) << 32) / tps as u128;
        Some(TimeInfo {
            version: 0,
            tsc_timestamp: tsc,
            system_time,
            tsc_to_system_mul: mul as u32,
            tsc_shift: shift.clamp(-128, 127) as i8,
            flags: 0,
        })
    }
}

/// Read the `vcpu_time_info` at offset `at` of `m` and the TSC, settled:
/// the version even and the same before and after the record's fields.
///
/// The TSC is read once, in the first window that starts on an even
/// version; a retry re-reads only the record. A record Xen wrote since
/// then is as good a basis: it extrapolates the same clock, and a TSC
/// before its timestamp reads as the timestamp ([`TimeInfo::ns_at`]), a
/// moment inside this call. Reading the TSC once matters where Xen
/// emulates it (a host whose TSC it does not trust, such as QEMU's TCG on
/// the test host): there every `rdtsc` is a VM exit, after which Xen has
/// often rewritten the record, so a reader that took the TSC again on
/// each try took it about four times a reading (about 600 times in a
/// disk boot's 145 readings, against 145 now).
pub fn read_time<M: TimeMem>(m: &M, at: usize) -> Result<(TimeInfo, u64), Unsettled> {
    let mut version = 0;
    let mut tsc = None;
    for _ in 0..MAX_TRIES {
        let v = m.load32(at + VERSION);
        fence(Ordering::Acquire);
        if v & 1 != 0 {
            version = v;
            core::hint::spin_loop();
            continue;
        }
        let sf = m.load32(at + SHIFT_FLAGS);
        let info = TimeInfo {
            version: v,
            tsc_timestamp: m.load64(at + TSC_TIMESTAMP),
            system_time: m.load64(at + SYSTEM_TIME),
            tsc_to_system_mul: m.load32(at + MUL),
            tsc_shift: sf as u8 as i8,
            flags: (sf >> 8) as u8,
        };
        let t = *tsc.get_or_insert_with(|| m.tsc());
        fence(Ordering::Acquire);
        version = m.load32(at + VERSION);
        if version == v {
            return Ok((info, t));
        }
    }
    Err(Unsettled { version })
}

/// The wall clock (seconds and ns since the Unix epoch) at system time 0:
/// `shared_info.wc_*`, settled like [`read_time`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    pub sec: u64,
    pub nsec: u32,
}

impl WallClock {
    /// ns since the Unix epoch at system time `system_ns`.
    pub fn at(&self, system_ns: u64) -> u128 {
        self.sec as u128 * 1_000_000_000 + self.nsec as u128 + system_ns as u128
    }
}

/// Read `wc_sec_hi:wc_sec` and `wc_nsec` from the shared info page `m`.
pub fn read_wallclock<M: TimeMem>(m: &M) -> Result<WallClock, Unsettled> {
    let mut version = 0;
    for _ in 0..MAX_TRIES {
        let v = m.load32(SHARED_INFO_WC_VERSION);
        fence(Ordering::Acquire);
        if v & 1 != 0 {
            version = v;
            core::hint::spin_loop();
            continue;
        }
        let sec = m.load32(SHARED_INFO_WC_SEC) as u64 | (m.load32(SHARED_INFO_WC_SEC_HI) as u64) << 32;
        let nsec = m.load32(SHARED_INFO_WC_NSEC);
        fence(Ordering::Acquire);
        version = m.load32(SHARED_INFO_WC_VERSION);
        if version == v {
            return Ok(WallClock { sec, nsec });
        }
    }
    Err(Unsettled { version })
}

/// A point on the monotonic clock: Xen system time in ns (the time base of
/// `SCHEDOP_poll` and the singleshot timer); off Xen, ns since the clock
/// was first read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    pub const fn from_ns(ns: u64) -> Instant {
        Instant(ns)
    }
    pub const fn as_ns(self) -> u64 {
        self.0
    }
    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: a deadline far enough away is "never".
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(ns(d)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.since(earlier)
    }
}

/// Wall-clock time: seconds and ns since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallTime {
    pub secs: u64,
    pub nanos: u32,
}

impl WallTime {
    pub fn from_ns(ns: u128) -> WallTime {
        WallTime { secs: u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX), nanos: (ns % 1_000_000_000) as u32 }
    }
}

/// A periodic deadline for an event loop: `next()` is when the period is
/// next due; `due(now)` says whether it is, and moves `next()` on by whole
/// periods (so a late loop skips, never bursts).
#[derive(Clone, Copy, Debug)]
pub struct Every {
    next: Instant,
    period: Duration,
}

impl Every {
    /// First due one `period` after `now`.
    pub fn new(now: Instant, period: Duration) -> Every {
        Every { next: now + period, period: period.max(Duration::from_nanos(1)) }
    }
    pub fn next(&self) -> Instant {
        self.next
    }
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        let p = ns(self.period);
        let late = now.as_ns() - self.next.as_ns();
        self.next = Instant(self.next.as_ns().saturating_add((late / p + 1).saturating_mul(p)));
        true
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

    use super::{read_time, read_wallclock, Instant, TimeInfo, TimeMem, Unsettled, WallTime};
    use crate::arch::tsc;
    use crate::xen::abi::VCPU0_TIME;
    use crate::xen::evtchn;

    /// The shared info page, read with volatile loads.
    struct SharedInfo(u64);

    impl TimeMem for SharedInfo {
        fn load32(&self, off: usize) -> u32 {
            assert!(off + 4 <= 4096);
            // SAFETY: inside the mapped shared info page, aligned.
            unsafe { core::ptr::read_volatile((self.0 + off as u64) as *const u32) }
        }
        fn load64(&self, off: usize) -> u64 {
            assert!(off + 8 <= 4096);
            // SAFETY: as above.
            unsafe { core::ptr::read_volatile((self.0 + off as u64) as *const u64) }
        }
        fn tsc(&self) -> u64 {
            tsc::rdtsc()
        }
    }

    /// Off Xen: the TSC frequency (Hz) once calibrated, and the TSC then.
    static TSC_HZ: AtomicU64 = AtomicU64::new(0);
    static TSC_ZERO: AtomicU64 = AtomicU64::new(0);
    /// The latest time handed out: the clock never goes back, even when Xen
    /// rewrites the record with a slightly earlier extrapolation.
    static LAST: AtomicU64 = AtomicU64::new(0);
    /// [`now`] when the app first asked, for [`since_boot`].
    static BOOT: AtomicU64 = AtomicU64::new(u64::MAX);

    fn shared_info() -> Option<SharedInfo> {
        if !crate::xen::hypercalls_ready() {
            return None;
        }
        evtchn::init().ok()?;
        Some(SharedInfo(evtchn::shared_info()?))
    }

    /// What the monotonic clock adds to Xen's system time (ns; 0 until a
    /// resume). Each host's Xen counts from its own boot: after `xl
    /// restore` or a migration the clock goes on from where it stopped,
    /// as Linux's does (the time spent saved is not counted; the wall
    /// clock, from the new host's Xen, still tells it).
    static OFFSET: AtomicI64 = AtomicI64::new(0);

    /// Xen's system time now (ns), without [`OFFSET`].
    fn xen_now(si: &SharedInfo) -> Result<u64, Unsettled> {
        let (info, tsc) = read_time(si, VCPU0_TIME)?;
        Ok(info.ns_at(tsc))
    }

    /// A time of the monotonic clock as Xen's system time, for Xen's
    /// timers and poll timeouts (at least 1: 0 means "none" to them).
    pub fn xen_ns(t: u64) -> u64 {
        let off = OFFSET.load(Ordering::Acquire);
        let x = if off >= 0 { t.saturating_sub(off as u64) } else { t.saturating_add(off.unsigned_abs()) };
        x.max(1)
    }

    /// The domain runs again in a new domain (maybe on another host): go
    /// on from `before`, the clock's last reading before the suspend.
    pub fn resumed(before: Instant) {
        if let Some(x) = shared_info().and_then(|si| xen_now(&si).ok()) {
            OFFSET.store((before.as_ns() as i64).wrapping_sub(x as i64), Ordering::Release);
        }
    }

    /// The monotonic clock, or why it cannot be read.
    pub fn try_now() -> Result<Instant, Unsettled> {
        let ns = match shared_info() {
            Some(si) => xen_now(&si)?.wrapping_add(OFFSET.load(Ordering::Acquire) as u64),
            None => {
                let mut hz = TSC_HZ.load(Ordering::Acquire);
                if hz == 0 {
                    // 1 GHz if the PIT does not answer: time still moves.
                    let f = tsc::calibrate_hz().unwrap_or(1_000_000_000);
                    TSC_ZERO.store(tsc::rdtsc(), Ordering::Release);
                    TSC_HZ.store(f, Ordering::Release);
                    hz = f;
                }
                let info = TimeInfo::for_tsc_hz(hz, TSC_ZERO.load(Ordering::Acquire), 0).unwrap_or_default();
                info.ns_at(tsc::rdtsc())
            }
        };
        let prev = LAST.fetch_max(ns, Ordering::AcqRel);
        Ok(Instant::from_ns(ns.max(prev)))
    }

    /// The monotonic clock: Xen system time in ns on Xen. If Xen's record
    /// never settles (see [`super::MAX_TRIES`]) it returns the last time
    /// it handed out rather than wait.
    pub fn now() -> Instant {
        try_now().unwrap_or_else(|_| Instant::from_ns(LAST.load(Ordering::Acquire)))
    }

    /// Time since the app first read the clock (the first call returns
    /// zero; `Boot` reads it before the app runs).
    pub fn since_boot() -> core::time::Duration {
        let now = now();
        let _ = BOOT.compare_exchange(u64::MAX, now.as_ns(), Ordering::AcqRel, Ordering::Acquire);
        now.since(Instant::from_ns(BOOT.load(Ordering::Acquire)))
    }

    /// Start the clock [`since_boot`] counts from.
    pub fn start() {
        let _ = since_boot();
    }

    /// Wall-clock time from Xen's `wc_*` plus system time; `None` off Xen,
    /// or when Xen leaves the wall clock at zero.
    pub fn wall() -> Option<WallTime> {
        let si = shared_info()?;
        let wc = read_wallclock(&si).ok()?;
        if wc.sec == 0 && wc.nsec == 0 {
            return None;
        }
        Some(WallTime::from_ns(wc.at(xen_now(&si).ok()?)))
    }

    /// Off Xen: the calibrated TSC frequency in Hz (0 on Xen or before the
    /// first read).
    pub fn tsc_hz() -> u64 {
        TSC_HZ.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::{Cell, RefCell};

    /// A time record whose version reads follow a script, then settle.
    struct Scripted {
        info: TimeInfo,
        versions: RefCell<Vec<u32>>,
        tsc: u64,
        loads: Cell<u32>,
        /// How many times the TSC was read.
        tscs: Cell<u32>,
    }

    impl TimeMem for Scripted {
        fn load32(&self, off: usize) -> u32 {
            self.loads.set(self.loads.get() + 1);
            match off {
                VERSION | SHARED_INFO_WC_VERSION => {
                    let mut v = self.versions.borrow_mut();
                    if v.len() > 1 {
                        v.remove(0)
                    } else {
                        v[0]
                    }
                }
                MUL => self.info.tsc_to_system_mul,
                SHIFT_FLAGS => self.info.tsc_shift as u8 as u32 | (self.info.flags as u32) << 8,
                SHARED_INFO_WC_SEC => 1_700_000_000,
                SHARED_INFO_WC_SEC_HI => 1,
                SHARED_INFO_WC_NSEC => 5,
                _ => panic!("load32 at {off}"),
            }
        }
        fn load64(&self, off: usize) -> u64 {
            match off {
                TSC_TIMESTAMP => self.info.tsc_timestamp,
                SYSTEM_TIME => self.info.system_time,
                _ => panic!("load64 at {off}"),
            }
        }
        fn tsc(&self) -> u64 {
            self.tscs.set(self.tscs.get() + 1);
            self.tsc
        }
    }

    fn rec(versions: &[u32]) -> Scripted {
        let info = TimeInfo::for_tsc_hz(3_000_000_000, 1000, 5_000_000).unwrap();
        Scripted { info, versions: RefCell::new(versions.to_vec()), tsc: 1000 + 3_000_000_000, loads: Cell::new(0), tscs: Cell::new(0) }
    }

    #[test]
    fn a_settled_record_reads_at_once() {
        let m = rec(&[2]);
        let (info, tsc) = read_time(&m, 0).unwrap();
        assert_eq!(info.version, 2);
        // 1 s of a 3 GHz TSC after system time 5 ms.
        assert!(info.ns_at(tsc).abs_diff(1_005_000_000) <= 1, "{}", info.ns_at(tsc));
    }

    #[test]
    fn odd_and_changing_versions_are_retried() {
        let m = rec(&[3, 3, 4, 6, 6]);
        // 3, 3: odd; 4 then 6: changed; 6, 6: settled.
        assert_eq!(read_time(&m, 0).unwrap().0.version, 6);
        assert_eq!(m.tscs.get(), 1, "the TSC is read once, not on every try");
    }

    #[test]
    fn a_record_that_never_settles_is_an_error_not_a_hang() {
        let m = rec(&[7]);
        assert_eq!(read_time(&m, 0), Err(Unsettled { version: 7 }));
        assert!(m.loads.get() <= MAX_TRIES * 6);
        // Always changing, always even.
        let m = rec(&(0..10_000).map(|i| 2 * i).collect::<Vec<_>>());
        assert!(read_time(&m, 0).is_err());
        let m = rec(&[9]);
        assert_eq!(read_wallclock(&m), Err(Unsettled { version: 9 }));
    }

    #[test]
    fn wall_clock_joins_the_high_word_and_adds_system_time() {
        let m = rec(&[1, 2]);
        let wc = read_wallclock(&m).unwrap();
        assert_eq!(wc, WallClock { sec: (1 << 32) + 1_700_000_000, nsec: 5 });
        assert_eq!(wc.at(1_999_999_995), ((1u128 << 32) + 1_700_000_002) * 1_000_000_000);
        assert_eq!(WallTime::from_ns(wc.at(0)).secs, (1 << 32) + 1_700_000_000);
    }

    #[test]
    fn scaling_matches_a_128_bit_reference_and_never_overflows() {
        // Xen's factor for a 2.4 GHz TSC: shift -1, mul = 2^32 * 1e9 / 1.2e9.
        let info = TimeInfo::for_tsc_hz(2_400_000_000, 0, 0).unwrap();
        assert_eq!(info.tsc_shift, -1);
        assert!(info.ns_at(2_400_000_000).abs_diff(1_000_000_000) <= 1);
        let cases = [
            (u64::MAX, u32::MAX, 31, u64::MAX),
            (u64::MAX, u32::MAX, 0, ((u64::MAX as u128 * u32::MAX as u128) >> 32) as u64),
            (u64::MAX, 1, -63, 0),
            (u64::MAX, 1 << 31, -63, 0),
            (u64::MAX, u32::MAX, -32, u32::MAX as u64 - 1),
            (1, u32::MAX, -64, 0),
            (1, 1, 32, 1),
            (1, 1, 95, 1 << 63),
            (1, 1, 96, u64::MAX),
            (12345, 7, 127, u64::MAX),
            (0, u32::MAX, 127, 0),
        ];
        for (delta, mul, shift, want) in cases {
            assert_eq!(scale(delta, mul, shift), want, "{delta} {mul} {shift}");
        }
        // A TSC before the timestamp reads as the timestamp.
        let info = TimeInfo { tsc_timestamp: 100, system_time: 7, tsc_to_system_mul: 1 << 31, ..Default::default() };
        assert_eq!(info.ns_at(50), 7);
        assert_eq!(info.ns_at(100 + (1 << 62)), 7 + (1 << 61));
        assert_eq!(info.ns_at(100 + (1 << 63)), 7);
    }

    #[test]
    fn a_timestamp_from_before_the_domains_tsc_started() {
        // The first record an `xl create`d PVH domU saw on the test Xen
        // host: the timestamp is just below 2^64, the TSC already small.
        // Taking TSC < timestamp as "before" froze the clock until Xen
        // rewrote the record about a second later.
        let info = TimeInfo {
            version: 2,
            tsc_timestamp: 18446744072546808106,
            system_time: 6776667509,
            tsc_to_system_mul: 3308742114,
            tsc_shift: -1,
            flags: 0,
        };
        let delta = 710480120u64.wrapping_sub(info.tsc_timestamp);
        assert_eq!(delta, 1_873_223_630);
        assert_eq!(info.ns_at(710480120), 6776667509 + (((delta / 2) as u128 * 3308742114u128) >> 32) as u64);
        assert!(info.ns_at(982091513) > info.ns_at(710480120));
    }

    #[test]
    fn tsc_factors_for_slow_and_fast_clocks() {
        for hz in [1u64, 1000, 32_768, 1_000_000_000, 1_000_000_001, 3_700_000_000, 100_000_000_000] {
            let info = TimeInfo::for_tsc_hz(hz, 0, 0).unwrap();
            let got = info.ns_at(hz);
            assert!(got.abs_diff(1_000_000_000) <= 1 + 1_000_000_000 / hz.min(1_000_000_000) / 2, "{hz} Hz: {got}");
        }
        assert_eq!(TimeInfo::for_tsc_hz(0, 0, 0), None);
    }

    #[test]
    fn instants_and_periods() {
        let t = Instant::from_ns(10);
        assert_eq!((t + Duration::from_secs(1)).as_ns(), 1_000_000_010);
        assert_eq!(t + Duration::MAX, Instant::from_ns(u64::MAX));
        assert_eq!(t - Instant::from_ns(20), Duration::ZERO);
        let mut e = Every::new(Instant::from_ns(0), Duration::from_nanos(100));
        assert!(!e.due(Instant::from_ns(99)));
        assert!(e.due(Instant::from_ns(100)));
        assert_eq!(e.next(), Instant::from_ns(200));
        // Late by 3.5 periods: due once, next on the grid after now.
        assert!(e.due(Instant::from_ns(550)));
        assert_eq!(e.next(), Instant::from_ns(600));
        assert!(!e.due(Instant::from_ns(599)));
    }
}
