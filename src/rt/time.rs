//! Time for tasks: [`sleep`], [`sleep_until`], [`Interval`] and the
//! deadline combinator [`timeout`]. All of them sit on the executor's one
//! timer queue; the idle loop sleeps until its earliest deadline (on Xen:
//! a one-shot `VIRQ_TIMER` at exactly that system time).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::rt::context;
use crate::rt::executor::TimerKey;
use crate::xen::time::Instant;

/// The monotonic clock (Xen system time on Xen), read now.
pub fn now() -> Instant {
    Instant::from_ns(context::shared().read_clock())
}

/// The clock as the run loop last read it: at most one round old, and
/// free (a fresh read can be dear: Xen may emulate the TSC). What
/// [`sleep`] and [`timeout`] count from.
pub fn round_now() -> Instant {
    Instant::from_ns(context::shared().last_seen())
}

/// A future that is ready at a deadline. It always goes through the
/// executor's timer queue — even when the deadline has passed already —
/// so timers fire in deadline order across tasks: one whose deadline
/// passed while an earlier one still waited in the queue does not
/// overtake it.
pub struct Sleep {
    at: Instant,
    key: Option<TimerKey>,
    done: bool,
}

/// Ready once `at` has passed.
pub fn sleep_until(at: Instant) -> Sleep {
    Sleep { at, key: None, done: false }
}

/// Ready `d` from now (from [`round_now`]).
pub fn sleep(d: Duration) -> Sleep {
    sleep_until(round_now() + d)
}

impl Sleep {
    pub fn deadline(&self) -> Instant {
        self.at
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let sh = context::shared();
        match self.key {
            // Still queued: wait (with this waker).
            Some(k) if sh.update_timer(k, cx.waker()) => Poll::Pending,
            // The queue fired it: in deadline order with every other.
            Some(_) => {
                self.key = None;
                self.done = true;
                Poll::Ready(())
            }
            None => {
                self.key = Some(sh.add_timer(self.at.as_ns(), cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            context::shared().remove_timer(k);
        }
    }
}

/// The deadline passed before the future finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl core::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("timed out")
    }
}

/// `fut`, or [`Elapsed`] if it has not finished by `at`.
pub struct Timeout<F> {
    fut: F,
    sleep: Sleep,
}

/// Run `fut` for at most `d` (from [`round_now`]).
pub fn timeout<F: Future>(d: Duration, fut: F) -> Timeout<F> {
    Timeout { fut, sleep: sleep(d) }
}

/// Run `fut` until `at` at the latest.
pub fn timeout_at<F: Future>(at: Instant, fut: F) -> Timeout<F> {
    Timeout { fut, sleep: sleep_until(at) }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the fields are never moved out of the pinned struct.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: `fut` stays where it is.
        if let Poll::Ready(v) = unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks every `period` on a fixed grid: a late tick does not shift the
/// ones after it, and ticks missed altogether are skipped.
pub struct Interval {
    every: crate::xen::time::Every,
}

impl Interval {
    /// The first tick is one period from now.
    pub fn new(period: Duration) -> Interval {
        Interval { every: crate::xen::time::Every::new(now(), period) }
    }

    /// Wait for the next tick; returns its deadline.
    pub async fn tick(&mut self) -> Instant {
        let at = self.every.next();
        sleep_until(at).await;
        self.every.due(Instant::from_ns(context::shared().last_seen()));
        at
    }
}

/// Poll `a` and `b` together; the first to finish wins (`a` on a tie).
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    core::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// Poll `a` and `b` together until both have finished.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (core::pin::pin!(a), core::pin::pin!(b));
    match select(a.as_mut(), b.as_mut()).await {
        Either::Left(x) => (x, b.await),
        Either::Right(y) => (a.await, y),
    }
}

/// Poll every future of `fs` together until all have finished; their
/// outputs in the same order.
pub async fn join_all<F: Future>(fs: impl IntoIterator<Item = F>) -> alloc::vec::Vec<F::Output> {
    let mut fs: alloc::vec::Vec<core::pin::Pin<alloc::boxed::Box<F>>> = fs.into_iter().map(alloc::boxed::Box::pin).collect();
    let mut out: alloc::vec::Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    core::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in fs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Which of two futures finished first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::executor::Executor;
    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use core::cell::{Cell, RefCell};

    std::thread_local! {
        static CLOCK: Cell<u64> = const { Cell::new(0) };
    }
    fn clock() -> u64 {
        CLOCK.with(|c| c.get())
    }
    fn park(d: Option<u64>) -> Option<u64> {
        CLOCK.with(|c| c.set(c.get().max(d.expect("nothing to wait for"))));
        None
    }
    fn run<F: Future>(f: F) -> F::Output {
        CLOCK.with(|c| c.set(1_000));
        let mut ex = Executor::new(clock, park);
        context::set(Some(ex.shared.clone()));
        let out = ex.block_on(f);
        context::set(None);
        out
    }

    #[test]
    fn timeout_gives_up_at_its_deadline_and_cleans_up() {
        run(async {
            let t0 = now();
            let r = timeout(Duration::from_millis(5), sleep(Duration::from_secs(1))).await;
            assert_eq!(r, Err(Elapsed));
            assert_eq!(now() - t0, Duration::from_millis(5));
            let r = timeout(Duration::from_secs(1), async { 7 }).await;
            assert_eq!(r, Ok(7));
            assert_eq!(context::shared().timers_queued(), 0);
        });
    }

    #[test]
    fn join_all_runs_every_future_together_and_keeps_their_order() {
        run(async {
            let t0 = now();
            let out = join_all([30u64, 10, 20].map(|ms| async move {
                sleep(Duration::from_millis(ms)).await;
                ms
            }))
            .await;
            assert_eq!(out, [30, 10, 20]);
            assert_eq!(now() - t0, Duration::from_millis(30), "together, not one after another");
            assert!(join_all(core::iter::empty::<core::future::Ready<u8>>()).await.is_empty());
        });
    }

    #[test]
    fn intervals_keep_their_grid_and_interleave_in_order() {
        let seen: Rc<RefCell<Vec<(u32, u64)>>> = Rc::new(RefCell::new(Vec::new()));
        let s2 = seen.clone();
        run(async move {
            let t0 = now();
            for i in 1..=20u32 {
                let s = s2.clone();
                context::shared().spawn(async move {
                    let mut iv = Interval::new(Duration::from_micros(100 * i as u64 + 1));
                    for _ in 0..3 {
                        let at = iv.tick().await;
                        assert_eq!(now(), at, "woken exactly at the deadline");
                        s.borrow_mut().push((i, (at - t0).as_micros() as u64));
                    }
                });
            }
            sleep(Duration::from_secs(1)).await;
        });
        let seen = seen.borrow();
        assert_eq!(seen.len(), 60);
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "fired out of order: {seen:?}");
        assert_eq!(seen[0], (1, 101));
    }

    /// A task that reads the clock late in a round and then sleeps until a
    /// deadline already past must not overtake a timer still queued with
    /// an earlier deadline: the order is the queue's.
    #[test]
    fn a_sleep_already_due_does_not_overtake_an_earlier_timer() {
        let order: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(Vec::new()));
        let o = order.clone();
        run(async move {
            let t0 = now().as_ns();
            let at = move |us: u64| Instant::from_ns(t0 + us * 1000);
            let o2 = o.clone();
            context::shared().spawn(async move {
                sleep_until(at(108)).await;
                o2.borrow_mut().push(108);
            });
            sleep_until(at(100)).await;
            o.borrow_mut().push(100);
            // A long computation: the clock has moved to 112 µs.
            CLOCK.with(|c| c.set(t0 + 112_000));
            let _ = now();
            // Due already, but after the 108 still queued.
            sleep_until(at(110)).await;
            o.borrow_mut().push(110);
            sleep(Duration::from_millis(1)).await;
        });
        assert_eq!(*order.borrow(), [100, 108, 110]);
    }

    #[test]
    fn select_takes_the_first_and_join_waits_for_both() {
        run(async {
            let r = select(sleep(Duration::from_millis(2)), async {
                sleep(Duration::from_millis(1)).await;
                9
            })
            .await;
            assert_eq!(r, Either::Right(9));
            let t0 = now();
            let (x, y) = join(async { 1 }, async {
                sleep(Duration::from_millis(3)).await;
                2
            })
            .await;
            assert_eq!((x, y, now() - t0), (1, 2, Duration::from_millis(3)));
        });
    }
}
