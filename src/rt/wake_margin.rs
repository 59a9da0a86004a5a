//! How early the idle loop arms Xen's one-shot timer: by how late Xen has
//! lately woken the vCPU after the armed time, learnt the way TCP learns
//! its retransmission timeout (RFC 6298). A smoothed mean of the wake-ups'
//! lateness (an eighth per wake-up) and of their deviation from it (a
//! quarter); the margin is the mean plus four deviations, so that nearly
//! every wake-up comes before the deadline, not only the average one, and
//! the clock is read for the rest (`rt::reactor`).
//!
//! On hardware Xen wakes within microseconds, and the margin is that. On
//! the TCG test host a wake-up is 0.2–1.5 ms late and the margin 1–2 ms:
//! a mean alone, capped at 0.5 ms, left 0.41–1.09 ms of lateness at the
//! 95th percentile of tests/xen_timers.rs (ten runs), with the deviation
//! 0.22–0.71 ms (ten runs interleaved with those). A sample counts at most
//! [`MAX_MARGIN`], and so does the margin: a wake-up the host delayed
//! (QEMU not scheduled for milliseconds) cannot make the loop read the
//! clock for longer than that.

/// The most a sample, and the margin, counts (ns).
pub const MAX_MARGIN: u64 = 2_000_000;

/// The learnt lateness (ns): smoothed mean and mean deviation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeMargin {
    pub mean: u64,
    pub dev: u64,
}

impl WakeMargin {
    /// After one more wake-up `late` ns after the armed time.
    pub fn learn(self, late: u64) -> WakeMargin {
        let x = late.min(MAX_MARGIN);
        WakeMargin { mean: (self.mean * 7 + x) / 8, dev: (self.dev * 3 + x.abs_diff(self.mean)) / 4 }
    }

    /// How early to arm the timer (ns).
    pub fn ns(self) -> u64 {
        (self.mean + 4 * self.dev).min(MAX_MARGIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(samples: impl IntoIterator<Item = u64>) -> WakeMargin {
        samples.into_iter().fold(WakeMargin::default(), WakeMargin::learn)
    }

    #[test]
    fn steady_wake_ups_give_their_lateness_and_no_more() {
        let m = after([20_000; 100]);
        assert!(m.mean.abs_diff(20_000) <= 8, "{m:?}");
        assert!(m.dev <= 8, "{m:?}");
        assert!(m.ns().abs_diff(20_000) <= 40, "{m:?}");
    }

    #[test]
    fn spread_wake_ups_get_a_margin_above_most_of_them() {
        // Alternately 0.2 and 1.0 ms late: the mean is 0.6 ms, the margin
        // covers the late half as well.
        let m = after((0..200).map(|i| if i % 2 == 0 { 200_000 } else { 1_000_000 }));
        assert!(m.mean.abs_diff(600_000) < 60_000, "{m:?}");
        assert!(m.ns() >= 1_000_000 && m.ns() <= MAX_MARGIN, "{m:?}");
    }

    #[test]
    fn a_delayed_wake_up_counts_at_most_the_cap_and_fades() {
        let m = after([10_000; 100]);
        let hit = m.learn(5_000_000_000);
        assert_eq!(hit.ns(), MAX_MARGIN, "{hit:?}");
        assert!(hit.mean <= 10_000 + MAX_MARGIN / 8, "{hit:?}");
        // Back under twice the usual lateness within 50 ordinary wake-ups.
        let back = (0..50).fold(hit, |m, _| m.learn(10_000));
        assert!(back.ns() < 20_000, "{back:?}");
        // Never above the cap, whatever comes.
        assert_eq!(after([u64::MAX; 50]).ns(), MAX_MARGIN);
    }
}
