//! xenstore for tasks: requests as futures, watches as streams.
//!
//! One connection ([`Xenstore`], the same client the blocking code uses)
//! is shared: a task's request is queued and answered by id, so requests
//! of many tasks are in flight together, and a blocking exchange made in
//! between (a device's xenbus handshake) hands back whatever it reads
//! that belongs to them. Watch events go to the [`Watch`] whose token
//! they carry, queued while nobody reads them; when more pile up than a
//! watch keeps, the watched path is delivered once more ("look again"),
//! so no change goes unnoticed. On Xen a pump task moves the ring each
//! time xenstored signals ([`spawn_pump`]).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use crate::rt::time;
use crate::xen::xenstore::{Errno, Op, Transport, Xenstore, XsError};

/// How long a request may wait for its reply.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A shared xenstore connection for tasks (cheap to clone).
pub struct Xs<T: Transport> {
    inner: Rc<RefCell<Xenstore<T>>>,
    broken: Rc<RefCell<Option<XsError>>>,
    next_token: Rc<Cell<u32>>,
    /// A pump stopped at its bound with more to read: the pump task goes
    /// on without waiting for xenstored's next signal.
    more: Rc<Cell<bool>>,
    pump_task: Rc<Cell<Option<Waker>>>,
    /// Held while the domain suspends: new requests wait (see
    /// [`Xs::pause`]).
    paused: Rc<RefCell<Option<Vec<Waker>>>>,
    /// What this domain wrote in its own home, to write again in a new
    /// domain (see [`Published`]).
    published: Rc<RefCell<Published>>,
}

impl<T: Transport> Clone for Xs<T> {
    fn clone(&self) -> Self {
        Xs {
            inner: self.inner.clone(),
            broken: self.broken.clone(),
            next_token: self.next_token.clone(),
            more: self.more.clone(),
            pump_task: self.pump_task.clone(),
            paused: self.paused.clone(),
            published: self.published.clone(),
        }
    }
}

/// The nodes the domain wrote under its own home (relative paths), last
/// value each: xenstored keeps a domain's nodes in the domain it serves,
/// and a restored or migrated domain is a new one with only what the
/// toolstack writes. The runtime writes these again there, so that what
/// an app published (and `control/feature-*`) is there after a resume
/// without code in the app. Bounded: past [`Published::MAX`] nodes the
/// oldest are not written again (and a warning says so once).
#[derive(Default)]
pub struct Published {
    nodes: Vec<(String, String)>,
    warned: bool,
}

impl Published {
    pub const MAX: usize = 512;

    /// The toolstack's request node: written only to acknowledge.
    fn ours(path: &str) -> bool {
        !path.starts_with('/') && path != "control/shutdown"
    }

    fn write(&mut self, path: &str, value: &str) {
        if !Self::ours(path) {
            return;
        }
        self.nodes.retain(|(p, _)| p != path);
        if self.nodes.len() == Self::MAX {
            self.nodes.remove(0);
            if !core::mem::replace(&mut self.warned, true) {
                log::warn!("xenstore: more than {} nodes written; the oldest will not be written again after a resume", Self::MAX);
            }
        }
        self.nodes.push((path.into(), value.into()));
    }

    fn rm(&mut self, path: &str) {
        let under = format!("{}/", path.trim_end_matches('/'));
        self.nodes.retain(|(p, _)| p != path && !p.starts_with(&under));
    }

    /// Oldest first.
    pub fn nodes(&self) -> &[(String, String)] {
        &self.nodes
    }
}

/// A request in flight: resolves to its reply.
struct Reply<'a, T: Transport> {
    xs: &'a Xs<T>,
    id: u32,
    done: bool,
}

impl<T: Transport> Future for Reply<'_, T> {
    type Output = Result<Vec<u8>, XsError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = match self.xs.pump() {
            Err(e) => Poll::Ready(Err(e)),
            Ok(()) => self.xs.inner.borrow_mut().poll_reply(self.id, cx).map(|r| r.map_err(XsError::Errno)),
        };
        if r.is_ready() {
            self.done = true;
        }
        r
    }
}

impl<T: Transport> Drop for Reply<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            self.xs.inner.borrow_mut().abandon(self.id);
        }
    }
}

impl<T: Transport> Xs<T> {
    pub fn new(xs: Xenstore<T>) -> Xs<T> {
        Xs {
            inner: Rc::new(RefCell::new(xs)),
            broken: Rc::new(RefCell::new(None)),
            next_token: Rc::new(Cell::new(0)),
            more: Rc::new(Cell::new(false)),
            pump_task: Rc::new(Cell::new(None)),
            paused: Rc::new(RefCell::new(None)),
            published: Rc::new(RefCell::new(Published::default())),
        }
    }

    /// Hold new requests (they wait until [`Xs::resume`]); `true` once
    /// nothing is in flight any more, `false` if that did not come within
    /// `within` (held all the same).
    pub async fn pause(&self, within: Duration) -> bool {
        self.paused.borrow_mut().get_or_insert_with(Vec::new);
        let idle = async {
            loop {
                self.pump()?;
                if self.inner.borrow().is_idle() {
                    return Ok::<(), XsError>(());
                }
                // Rare and short: a look every few ms is enough.
                time::sleep(Duration::from_millis(2)).await;
            }
        };
        matches!(time::timeout(within, idle).await, Ok(Ok(())))
    }

    /// Let held requests go (see [`Xs::pause`]).
    pub fn resume(&self) {
        if let Some(w) = self.paused.borrow_mut().take() {
            w.into_iter().for_each(Waker::wake);
        }
    }

    /// Ready when requests may be made (not paused).
    async fn unpaused(&self) {
        core::future::poll_fn(|cx| match self.paused.borrow_mut().as_mut() {
            None => Poll::Ready(()),
            Some(w) => {
                if !w.iter().any(|k| k.will_wake(cx.waker())) {
                    w.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }

    /// What was written under the home, for writing it again after a
    /// resume.
    pub fn published(&self) -> core::cell::Ref<'_, Published> {
        self.published.borrow()
    }

    /// The connection for blocking use (a device handshake). Inside a task
    /// this blocks every task until it returns: keep it short.
    pub fn blocking<R>(&self, f: impl FnOnce(&mut Xenstore<T>) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }

    /// Move the ring (a bounded amount: when more may be waiting, the pump
    /// task is asked to go on); a broken connection stays broken.
    pub fn pump(&self) -> Result<(), XsError> {
        self.pump_some().map(|more| {
            if more {
                self.more.set(true);
                if let Some(w) = self.pump_task.take() {
                    w.wake();
                }
            }
        })
    }

    /// One bounded pump: `Ok(true)` when more may be waiting.
    fn pump_some(&self) -> Result<bool, XsError> {
        if let Some(e) = self.broken.borrow().clone() {
            return Err(e);
        }
        let r = self.inner.borrow_mut().pump();
        if let Err(e) = &r {
            *self.broken.borrow_mut() = Some(e.clone());
        }
        r
    }

    /// Send one request and wait for its reply (at most [`TIMEOUT`]).
    pub async fn request(&self, op: Op) -> Result<Vec<u8>, XsError> {
        self.unpaused().await;
        self.pump()?;
        let id = self.inner.borrow_mut().start(&op)?;
        match time::timeout(TIMEOUT, Reply { xs: self, id, done: false }).await {
            Ok(r) => r,
            Err(_) => Err(XsError::Timeout),
        }
    }

    pub async fn read(&self, path: &str) -> Result<String, XsError> {
        Xenstore::<T>::value(self.request(Op::read(path)).await?)
    }

    /// A key's value, `None` when it does not exist.
    pub async fn try_read(&self, path: &str) -> Result<Option<String>, XsError> {
        match self.read(path).await {
            Ok(v) => Ok(Some(v)),
            Err(XsError::Errno(Errno::Enoent)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn write(&self, path: &str, value: &str) -> Result<(), XsError> {
        self.request(Op::write(path, value)).await?;
        self.published.borrow_mut().write(path, value);
        Ok(())
    }

    pub async fn mkdir(&self, path: &str) -> Result<(), XsError> {
        self.request(Op::mkdir(path)).await.map(|_| ())
    }

    pub async fn rm(&self, path: &str) -> Result<(), XsError> {
        self.request(Op::rm(path)).await?;
        self.published.borrow_mut().rm(path);
        Ok(())
    }

    pub async fn directory(&self, path: &str) -> Result<Vec<String>, XsError> {
        Xenstore::<T>::entries(self.request(Op::directory(path)).await?)
    }

    /// Run `body` in a transaction, again while xenstored answers `EAGAIN`
    /// (another writer came first), at most `tries` times.
    pub async fn transaction<R, F, Fut>(&self, tries: u32, mut body: F) -> Result<R, XsError>
    where
        F: FnMut(Tx<T>) -> Fut,
        Fut: Future<Output = Result<R, XsError>>,
    {
        for _ in 0..tries.max(1) {
            let id = Xenstore::<T>::transaction_id(self.request(Op::transaction_start()).await?)?;
            let done = Rc::new(RefCell::new(Vec::new()));
            match body(Tx { xs: self.clone(), id, done: done.clone() }).await {
                Ok(r) => match self.request(Op::transaction_end(id, true)).await {
                    Ok(_) => {
                        let mut p = self.published.borrow_mut();
                        for (path, value) in done.take() {
                            match value {
                                Some(v) => p.write(&path, &v),
                                None => p.rm(&path),
                            }
                        }
                        return Ok(r);
                    }
                    Err(XsError::Errno(Errno::Eagain)) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    let _ = self.request(Op::transaction_end(id, false)).await;
                    return Err(e);
                }
            }
        }
        Err(XsError::Errno(Errno::Eagain))
    }

    /// Watch `path` (absolute, or relative to this domain's home). The
    /// first event comes at once, as xenstored sends it for every new
    /// watch.
    pub async fn watch(&self, path: &str) -> Result<Watch<T>, XsError> {
        let n = self.next_token.get();
        self.next_token.set(n + 1);
        let token = format!("rt:{n}");
        self.inner.borrow_mut().add_watcher(&token, path);
        let w = Watch { xs: self.clone(), path: path.into(), token };
        self.request(Op::watch(path, &w.token)).await?;
        Ok(w)
    }
}

/// A write (`Some`) or a removal (`None`) made in a transaction.
type TxChange = (String, Option<String>);

/// A transaction's requests (see [`Xs::transaction`]).
pub struct Tx<T: Transport> {
    xs: Xs<T>,
    id: u32,
    /// Writes (`Some`) and removals made, kept as published once the
    /// transaction commits.
    done: Rc<RefCell<Vec<TxChange>>>,
}

impl<T: Transport> Tx<T> {
    pub async fn read(&self, path: &str) -> Result<String, XsError> {
        Xenstore::<T>::value(self.xs.request(Op::read(path).in_tx(self.id)).await?)
    }
    pub async fn write(&self, path: &str, value: &str) -> Result<(), XsError> {
        self.xs.request(Op::write(path, value).in_tx(self.id)).await?;
        self.done.borrow_mut().push((path.into(), Some(value.into())));
        Ok(())
    }
    pub async fn rm(&self, path: &str) -> Result<(), XsError> {
        self.xs.request(Op::rm(path).in_tx(self.id)).await?;
        self.done.borrow_mut().push((path.into(), None));
        Ok(())
    }
}

/// A watch: a stream of the paths that changed under it.
pub struct Watch<T: Transport> {
    xs: Xs<T>,
    path: String,
    token: String,
}

impl<T: Transport> Watch<T> {
    /// The next path that changed (`Err` when the connection broke).
    pub async fn next(&mut self) -> Result<String, XsError> {
        core::future::poll_fn(|cx| {
            if let Err(e) = self.xs.pump() {
                return Poll::Ready(Err(e));
            }
            match self.xs.inner.borrow_mut().poll_watch(&self.token, cx) {
                Poll::Ready(Some(p)) => Poll::Ready(Ok(p)),
                Poll::Ready(None) => Poll::Ready(Err(XsError::Protocol("watch gone"))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<T: Transport> Drop for Watch<T> {
    /// The watch ends: xenstored is told (its answer is not waited for).
    fn drop(&mut self) {
        let mut xs = self.xs.inner.borrow_mut();
        xs.remove_watcher(&self.token);
        if let Ok(id) = xs.start(&Op::unwatch(&self.path, &self.token)) {
            xs.abandon(id);
        }
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::*;
    use crate::rt::reactor;
    use crate::xen::store::XsRing;

    /// This domain's xenstore, for tasks.
    pub type Store = Xs<XsRing>;

    impl Store {
        /// After a resume in a new domain: the new event channel, a fresh
        /// start on the ring (see [`Xenstore::reconnect`]: watches
        /// registered again), and every node the domain had written under
        /// its home ([`Published`]) written again. Requests stay held
        /// until [`Xs::resume`]. Returns how many nodes were written.
        pub fn reconnect(&self) -> Result<usize, String> {
            let failed = self.blocking(|s| -> Result<usize, String> {
                s.transport().rebind().map_err(|e| format!("{e}"))?;
                s.reconnect().map_err(|e| format!("{e}"))
            })?;
            if failed > 0 {
                log::warn!("xenstore: {failed} requests in flight across the suspend failed");
            }
            // A connection the old xenstored broke is a new one now.
            *self.broken.borrow_mut() = None;
            let ops: Vec<Op> = self.published().nodes().iter().map(|(p, v)| Op::write(p, v)).collect();
            for chunk in ops.chunks(crate::xen::xenstore::MAX_BATCH) {
                let replies = self.blocking(|s| s.batch(chunk)).map_err(|e| format!("writing the home again: {e}"))?;
                if let Some(e) = replies.iter().find_map(|r| r.as_ref().err()) {
                    log::warn!("xenstore: writing a node again after the resume: {e:?}");
                }
            }
            // The pump task looks at its (new) port.
            if let Some(w) = self.pump_task.take() {
                w.wake();
            }
            Ok(ops.len())
        }
    }

    /// Keep the ring moving: each time xenstored signals, hand what came
    /// to the tasks waiting for it (and send what waited for room).
    pub fn spawn_pump(xs: &Store) {
        let mut port = xs.blocking(|s| s.transport().port());
        let xs = xs.clone();
        crate::rt::spawn(async move {
            let mut ev = core::pin::pin!(reactor::port_event(port));
            loop {
                core::future::poll_fn(|cx| {
                    if xs.more.replace(false) {
                        return Poll::Ready(());
                    }
                    // A resume gave the connection a new event channel.
                    let now = xs.blocking(|s| s.transport().port());
                    if now != port {
                        port = now;
                        ev.set(reactor::port_event(port));
                        return Poll::Ready(());
                    }
                    if ev.as_mut().poll(cx).is_ready() {
                        ev.set(reactor::port_event(port));
                        return Poll::Ready(());
                    }
                    xs.pump_task.set(Some(cx.waker().clone()));
                    Poll::Pending
                })
                .await;
                match xs.pump_some() {
                    Ok(false) => {}
                    Ok(true) => {
                        // More to read: after the other tasks have run.
                        xs.more.set(true);
                        crate::rt::yield_now().await;
                    }
                    Err(e) => {
                        log::warn!("xenstore: {e}; requests fail from now on");
                        return;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::context;
    use crate::rt::executor::Executor;
    use crate::xen::xenstore::fake::Fake;

    fn run<F: Future>(f: F) -> F::Output {
        fn now() -> u64 {
            0
        }
        // The fake serves on every notify and wait: nothing ever needs
        // the clock to move.
        fn park(_: Option<u64>) -> Option<u64> {
            None
        }
        let mut ex = Executor::new(now, park);
        context::set(Some(ex.shared.clone()));
        let out = ex.block_on(f);
        context::set(None);
        out
    }

    /// Let the fake answer what is on the ring.
    fn serve(xs: &Xs<Fake>) {
        xs.blocking(|s| s.transport().wait());
        xs.pump().unwrap();
    }

    /// What a resume writes again: the latest value of each node the
    /// domain wrote under its home, in order, removals forgotten, the
    /// toolstack's request node and absolute paths never, a committed
    /// transaction's writes but not an aborted one's.
    #[test]
    fn published_nodes_are_the_latest_of_each_under_the_home() {
        let xs = Xs::new(Xenstore::new(Fake::new()));
        run(async {
            xs.write("data/a", "1").await.unwrap();
            xs.write("data/dir/x", "x").await.unwrap();
            xs.write("data/b", "2").await.unwrap();
            xs.write("data/a", "3").await.unwrap();
            xs.write("control/shutdown", "").await.unwrap();
            let _ = xs.write("/local/domain/0/x", "no").await;
            xs.rm("data/dir").await.unwrap();
            xs.transaction(1, |tx| async move { tx.write("data/t", "in").await }).await.unwrap();
            let aborted: Result<(), XsError> = xs
                .transaction(1, |tx| async move {
                    tx.write("data/u", "no").await?;
                    Err(XsError::Errno(Errno::Einval))
                })
                .await;
            assert!(aborted.is_err());
        });
        let published = xs.published();
        let got: Vec<(&str, &str)> = published.nodes().iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
        assert_eq!(got, [("data/b", "2"), ("data/a", "3"), ("data/t", "in")]);
    }

    #[test]
    fn requests_of_many_tasks_are_answered_by_id() {
        let xs = Xs::new(Xenstore::new(Fake::new()));
        let out = run({
            let xs = xs.clone();
            async move {
                let done = Rc::new(Cell::new(0));
                for i in 0..20 {
                    let (xs, done) = (xs.clone(), done.clone());
                    context::shared().spawn(async move {
                        xs.write(&format!("data/k{i}"), &format!("v{i}")).await.unwrap();
                        assert_eq!(xs.read(&format!("data/k{i}")).await.unwrap(), format!("v{i}"));
                        done.set(done.get() + 1);
                    });
                }
                while done.get() < 20 {
                    serve(&xs);
                    yield_once().await;
                }
                xs.directory("data").await.map(|d| d.len())
            }
        });
        assert_eq!(out.unwrap(), 20);
    }

    async fn yield_once() {
        let mut y = false;
        core::future::poll_fn(|cx| {
            if y {
                Poll::Ready(())
            } else {
                y = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn watch_events_reach_their_stream_even_while_a_blocking_exchange_runs() {
        let xs = Xs::new(Xenstore::new(Fake::new()));
        run({
            let xs = xs.clone();
            async move {
                let mut w = {
                    let f = xs.watch("data/x");
                    let mut f = core::pin::pin!(f);
                    loop {
                        serve(&xs);
                        if let Poll::Ready(r) = core::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await {
                            break r.unwrap();
                        }
                    }
                };
                // The initial event, as xenstored sends one per new watch.
                assert_eq!(w.next().await.unwrap(), "data/x");
                // Events that come during a blocking request go to the
                // stream, not to the blocking caller's queue.
                xs.blocking(|s| {
                    s.transport().event("data/x/a", "rt:0");
                    s.write("data/y", "1").unwrap();
                });
                assert_eq!(w.next().await.unwrap(), "data/x/a");
                // A flood: more than the stream keeps; the last word is
                // the watched path, "look again".
                xs.blocking(|s| {
                    for i in 0..100 {
                        s.transport().event(&format!("data/x/{i}"), "rt:0");
                        s.transport().wait();
                        s.pump().unwrap();
                    }
                });
                let mut got = Vec::new();
                for _ in 0..65 {
                    got.push(w.next().await.unwrap());
                }
                assert_eq!(got[0], "data/x/0");
                assert_eq!(got[63], "data/x/63");
                assert_eq!(got[64], "data/x/64", "the overflow is signalled with a path that changed");
                assert!(xs.blocking(|s| s.poll_event().unwrap()).is_none(), "nothing leaked to the blocking queue");
            }
        });
    }
}
