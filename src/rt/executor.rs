//! The executor: tasks are boxed futures, woken by index; one run loop
//! polls what is ready, fires due timers, and otherwise parks until the
//! next deadline (on Xen: `sti; hlt` until an event channel fires).
//!
//! Single-threaded by construction (one vCPU, interrupts off while tasks
//! run), so the shared state is `RefCell`s behind `Rc`, and a [`Waker`] is
//! an `Rc` of the task's header. The executor also keeps the timer queue,
//! so that "sleep until" and "wake on deadline" are one structure.
//!
//! Pure logic: built and unit-tested on the host with a mock clock.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What a task's waker points at: which task, and the queue it goes on.
struct Header {
    id: usize,
    queued: Cell<bool>,
    ready: Rc<RefCell<VecDeque<usize>>>,
}

fn header_waker(h: Rc<Header>) -> Waker {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    unsafe fn clone(p: *const ()) -> RawWaker {
        // SAFETY: `p` came from `Rc::into_raw` of a Header.
        unsafe { Rc::increment_strong_count(p as *const Header) };
        RawWaker::new(p, &VTABLE)
    }
    unsafe fn wake(p: *const ()) {
        // SAFETY: as in `clone`; this consumes the waker's count.
        let h = unsafe { Rc::from_raw(p as *const Header) };
        schedule(&h);
    }
    unsafe fn wake_by_ref(p: *const ()) {
        // SAFETY: as in `clone`; the count stays with the waker.
        schedule(unsafe { &*(p as *const Header) });
    }
    unsafe fn drop(p: *const ()) {
        // SAFETY: as in `wake`.
        unsafe { Rc::decrement_strong_count(p as *const Header) };
    }
    // SAFETY: the vtable keeps the Rc's count right; wakers never leave
    // the one vCPU that runs tasks.
    unsafe { Waker::from_raw(RawWaker::new(Rc::into_raw(h) as *const (), &VTABLE)) }
}

fn schedule(h: &Header) {
    if !h.queued.replace(true) {
        h.ready.borrow_mut().push_back(h.id);
    }
}

struct Task {
    fut: BoxFuture,
    header: Rc<Header>,
    waker: Waker,
}

/// A timer's place in the queue: its deadline (ns) and a sequence number
/// that keeps equal deadlines apart and in order.
pub type TimerKey = (u64, u64);

/// The executor's state that tasks reach while they run: new tasks and
/// timers.
pub struct Shared {
    spawned: RefCell<Vec<BoxFuture>>,
    /// Timers, latest deadline first: the next to fire is the last, and
    /// one is found by binary search. (A map took 9 KiB of every app's
    /// image; a list is a tenth of that.)
    timers: RefCell<Vec<(TimerKey, Waker)>>,
    next_timer: Cell<u64>,
    /// The clock, in ns.
    clock: fn() -> u64,
    /// The clock as last read: what timers are checked against. A read
    /// can be dear (under Xen with an emulated TSC, tens of µs), so the
    /// run loop reads it once a round and sleeps compare with that.
    seen: Cell<u64>,
}

impl Shared {
    /// Read the clock (ns), and remember it as the round's time.
    pub fn read_clock(&self) -> u64 {
        let t = (self.clock)();
        self.seen.set(self.seen.get().max(t));
        t
    }

    /// The clock as last read (by the run loop, or by anyone through
    /// [`read_clock`](Self::read_clock)): at most one round old.
    pub fn last_seen(&self) -> u64 {
        self.seen.get()
    }

    /// Start `fut` as a task of its own; it runs from the next round.
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        self.spawned.borrow_mut().push(Box::pin(fut));
    }

    /// Wake `waker` at `at` (ns); the key removes it again.
    pub fn add_timer(&self, at: u64, waker: Waker) -> TimerKey {
        let seq = self.next_timer.get();
        self.next_timer.set(seq + 1);
        let mut t = self.timers.borrow_mut();
        let at_ = find(&t, (at, seq)).unwrap_or_else(|i| i);
        t.insert(at_, ((at, seq), waker));
        (at, seq)
    }

    /// Replace the waker of a timer still queued (`false`: it has fired).
    pub fn update_timer(&self, key: TimerKey, waker: &Waker) -> bool {
        let mut t = self.timers.borrow_mut();
        match find(&t, key) {
            Ok(i) => {
                if !t[i].1.will_wake(waker) {
                    t[i].1 = waker.clone();
                }
                true
            }
            Err(_) => false,
        }
    }

    pub fn remove_timer(&self, key: TimerKey) {
        let mut t = self.timers.borrow_mut();
        if let Ok(i) = find(&t, key) {
            t.remove(i);
        }
    }

    /// The earliest deadline queued.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.borrow().last().map(|(k, _)| k.0)
    }

    /// Wake every timer due at `now`; how many were.
    fn fire_timers(&self, now: u64) -> usize {
        let mut n = 0;
        loop {
            let due = {
                let mut t = self.timers.borrow_mut();
                match t.last() {
                    Some((k, _)) if k.0 <= now => t.pop(),
                    _ => None,
                }
            };
            let Some((_, w)) = due else { return n };
            w.wake();
            n += 1;
        }
    }

    pub fn timers_queued(&self) -> usize {
        self.timers.borrow().len()
    }
}

/// Where `key` is, or would go, in a list sorted latest first.
fn find(t: &[(TimerKey, Waker)], key: TimerKey) -> Result<usize, usize> {
    t.binary_search_by(|(k, _)| key.cmp(k))
}

/// How the run loop sleeps: until `deadline` (ns) or until something may
/// have become ready, whichever is first. It may return early. It returns
/// the clock if it read it on waking (saving the run loop a read).
pub type Park = fn(deadline: Option<u64>) -> Option<u64>;

pub struct Executor {
    pub shared: Rc<Shared>,
    ready: Rc<RefCell<VecDeque<usize>>>,
    tasks: Vec<Option<Task>>,
    free: Vec<usize>,
    park: Park,
    /// Tasks polled, for the tests and the curious.
    pub polls: u64,
}

/// The id of the future passed to [`Executor::block_on`].
const MAIN: usize = usize::MAX;

impl Executor {
    pub fn new(clock: fn() -> u64, park: Park) -> Executor {
        Executor {
            shared: Rc::new(Shared {
                spawned: RefCell::new(Vec::new()),
                timers: RefCell::new(Vec::new()),
                next_timer: Cell::new(0),
                clock,
                seen: Cell::new(clock()),
            }),
            ready: Rc::new(RefCell::new(VecDeque::new())),
            tasks: Vec::new(),
            free: Vec::new(),
            park,
            polls: 0,
        }
    }

    /// Tasks alive (spawned and not finished), `main` not counted.
    pub fn live_tasks(&self) -> usize {
        self.tasks.len() - self.free.len() + self.shared.spawned.borrow().len()
    }

    fn header(&self, id: usize) -> Rc<Header> {
        Rc::new(Header { id, queued: Cell::new(false), ready: self.ready.clone() })
    }

    fn adopt_spawned(&mut self) {
        let new: Vec<BoxFuture> = core::mem::take(&mut *self.shared.spawned.borrow_mut());
        for fut in new {
            let id = self.free.pop().unwrap_or_else(|| {
                self.tasks.push(None);
                self.tasks.len() - 1
            });
            let header = self.header(id);
            let waker = header_waker(header.clone());
            schedule(&header);
            self.tasks[id] = Some(Task { fut, header, waker });
        }
    }

    fn poll_task(&mut self, id: usize) {
        let Some(task) = self.tasks.get_mut(id).and_then(|t| t.as_mut()) else { return };
        task.header.queued.set(false);
        let waker = task.waker.clone();
        self.polls += 1;
        if task.fut.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
            self.tasks[id] = None;
            self.free.push(id);
        }
    }

    /// Run `main` and every task it spawns until `main` finishes; return
    /// its output. Tasks still alive then stay in the executor (the caller
    /// decides what happens to them).
    pub fn block_on<F: Future>(&mut self, main: F) -> F::Output {
        let mut main = core::pin::pin!(main);
        let main_header = self.header(MAIN);
        let main_waker = header_waker(main_header.clone());
        schedule(&main_header);
        loop {
            self.adopt_spawned();
            // One round: everything ready now (what it wakes runs next round).
            let round = self.ready.borrow().len();
            for _ in 0..round {
                let Some(id) = self.ready.borrow_mut().pop_front() else { break };
                if id == MAIN {
                    main_header.queued.set(false);
                    self.polls += 1;
                    if let Poll::Ready(out) = main.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                        return out;
                    }
                } else {
                    self.poll_task(id);
                }
                self.adopt_spawned();
            }
            let now = self.shared.read_clock();
            self.shared.fire_timers(now);
            if self.ready.borrow().is_empty() && self.shared.spawned.borrow().is_empty() {
                let now = match (self.park)(self.shared.next_deadline()) {
                    Some(t) => {
                        self.shared.seen.set(self.shared.seen.get().max(t));
                        t
                    }
                    None => self.shared.read_clock(),
                };
                self.shared.fire_timers(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use core::cell::RefCell as StdRefCell;
    use std::thread_local;

    thread_local! {
        static CLOCK: Cell<u64> = const { Cell::new(0) };
        static LOG: StdRefCell<Vec<String>> = const { StdRefCell::new(Vec::new()) };
    }

    fn now() -> u64 {
        CLOCK.with(|c| c.get())
    }
    /// The mock idle: time jumps to the deadline; no deadline is a hang.
    fn park(deadline: Option<u64>) -> Option<u64> {
        let d = deadline.expect("parked with nothing to wait for: the test would hang");
        CLOCK.with(|c| c.set(c.get().max(d)));
        None
    }

    /// A sleep on the executor's timer queue, as `rt::time` builds it.
    struct Sleep {
        shared: Rc<Shared>,
        at: u64,
        key: Option<TimerKey>,
    }
    impl Future for Sleep {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.shared.last_seen() >= self.at {
                return Poll::Ready(());
            }
            match self.key {
                Some(k) if self.shared.update_timer(k, cx.waker()) => {}
                _ => {
                    let k = self.shared.add_timer(self.at, cx.waker().clone());
                    self.key = Some(k);
                }
            }
            Poll::Pending
        }
    }
    impl Drop for Sleep {
        fn drop(&mut self) {
            if let Some(k) = self.key {
                self.shared.remove_timer(k);
            }
        }
    }

    fn log(s: String) {
        LOG.with(|l| l.borrow_mut().push(s));
    }

    #[test]
    fn timers_fire_in_deadline_order_at_their_deadline() {
        CLOCK.with(|c| c.set(0));
        let mut ex = Executor::new(now, park);
        let sh = ex.shared.clone();
        for (i, period) in [7u64, 3, 5, 1, 9].into_iter().enumerate() {
            let sh2 = sh.clone();
            sh.spawn(async move {
                for k in 1..=3 {
                    Sleep { shared: sh2.clone(), at: period * k * 1000, key: None }.await;
                    log(alloc::format!("{i}@{}", now()));
                }
            });
        }
        let sh2 = sh.clone();
        ex.block_on(Sleep { shared: sh2, at: 100_000, key: None });
        let got = LOG.with(|l| l.take());
        // Each wake happened exactly at its deadline, in deadline order.
        let times: Vec<u64> = got.iter().map(|s| s.split('@').nth(1).unwrap().parse().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
        assert_eq!(got.len(), 15);
        assert!(got.contains(&String::from("3@1000")) && got.contains(&String::from("4@27000")), "{got:?}");
        assert_eq!(ex.live_tasks(), 0);
        assert_eq!(sh.timers_queued(), 0);
    }

    #[test]
    fn a_dropped_sleep_leaves_no_timer_behind() {
        CLOCK.with(|c| c.set(0));
        let mut ex = Executor::new(now, park);
        let sh = ex.shared.clone();
        let out = ex.block_on(async move {
            for _ in 0..1000 {
                let mut s = Sleep { shared: sh.clone(), at: 1_000_000_000, key: None };
                // Poll once (registers), then drop it.
                let w = core::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll(cx).is_pending())).await;
                assert!(w);
            }
            sh.timers_queued()
        });
        assert_eq!(out, 0);
    }

    #[test]
    fn wakes_reach_the_right_task_once() {
        CLOCK.with(|c| c.set(0));
        let mut ex = Executor::new(now, park);
        let sh = ex.shared.clone();
        let slots: Rc<RefCell<Vec<Option<Waker>>>> = Rc::new(RefCell::new((0..300).map(|_| None).collect()));
        let woke: Rc<RefCell<Vec<usize>>> = Rc::new(RefCell::new(Vec::new()));
        for i in 0..300 {
            let (slots, woke) = (slots.clone(), woke.clone());
            sh.spawn(async move {
                let mut first = true;
                core::future::poll_fn(|cx| {
                    if first {
                        first = false;
                        slots.borrow_mut()[i] = Some(cx.waker().clone());
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
                woke.borrow_mut().push(i);
            });
        }
        let (sh2, slots2, woke2) = (sh.clone(), slots.clone(), woke.clone());
        ex.block_on(async move {
            Sleep { shared: sh2.clone(), at: 10, key: None }.await;
            // Wake them in a scrambled order, twice each: each runs once.
            let order: Vec<usize> = (0..300).map(|i| (i * 7919) % 300).collect();
            for &i in &order {
                let w = slots2.borrow_mut()[i].take().unwrap();
                w.wake_by_ref();
                w.wake();
            }
            Sleep { shared: sh2, at: 20, key: None }.await;
            assert_eq!(*woke2.borrow(), order);
        });
        assert_eq!(woke.borrow().len(), 300);
        assert_eq!(ex.live_tasks(), 0);
    }
}
