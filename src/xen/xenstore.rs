//! A xenstore client over the shared ring (public/io/xs_wire.h).
//!
//! Generic over its [`Transport`] (the ring page, the event channel and a
//! bounded wait), so the protocol is unit-tested on the host against a fake
//! xenstored, including a hostile one. Every reply is checked: its length
//! against `XENSTORE_PAYLOAD_MAX`, its id against the request, its type;
//! waiting is bounded, and so is the number of stray messages skipped, so
//! a bad peer gives an error, never an endless loop or an overrun.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::task::{Context, Poll, Waker};

use crate::xen::abi::{
    xs_type, XS_HEADER, XS_PAYLOAD_MAX, XS_REQ, XS_REQ_CONS, XS_REQ_PROD, XS_RING_SIZE, XS_RSP, XS_RSP_CONS, XS_RSP_PROD,
};
use crate::xen::ring::{Corrupt, Ring, RingMem};

pub const REQ: Ring = Ring { data: XS_REQ, size: XS_RING_SIZE, cons: XS_REQ_CONS, prod: XS_REQ_PROD };
pub const RSP: Ring = Ring { data: XS_RSP, size: XS_RING_SIZE, cons: XS_RSP_CONS, prod: XS_RSP_PROD };

/// Watch events kept while waiting for a reply; more are dropped (and
/// counted), as a watch only says "look again".
const MAX_QUEUED_EVENTS: usize = 64;
/// Messages that are neither our reply nor a watch event, skipped before
/// the peer is declared broken.
const MAX_STRAY: usize = 16;
/// `wait()` calls one exchange (a request, a [`Xenstore::batch`], or one
/// `poll_event`) may make. An honest xenstored needs about one per
/// ring-full of traffic, and an exchange's traffic is bounded (at most
/// `MAX_BATCH` requests and replies and `MAX_STRAY + MAX_QUEUED_EVENTS`
/// other messages, each of at most 16 + 4096 bytes: about 870 ring-fulls),
/// so a peer that keeps signalling without ever completing the replies
/// ends in `Timeout`, not a livelock.
pub const MAX_WAITS: u32 = 1024;

/// What the client needs from its surroundings.
pub trait Transport {
    type Mem: RingMem;
    fn mem(&self) -> &Self::Mem;
    /// Tell xenstored there is something to look at.
    fn notify(&mut self);
    /// Block until xenstored signals, or a bounded time passes; `false` if
    /// the time passed with no signal.
    fn wait(&mut self) -> bool;
}

/// The errno names xenstored sends in `XS_ERROR` replies, in the order of
/// [`NAMES`] (which `parse` relies on).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Errno {
    Enoent,
    Eacces,
    Eagain,
    Einval,
    Eexist,
    Eisdir,
    Enospc,
    Eio,
    Ebusy,
    Erofs,
    E2big,
    Eperm,
    Enomem,
    Equota,
    Other,
}

/// The names on the wire, six bytes each (NUL-padded) as little-endian
/// words: a table of slices, or a `match` over byte strings, costs the
/// loader's image 300 bytes more.
const NAMES: [u64; 15] = {
    let names: [&[u8]; 15] = [
        b"ENOENT", b"EACCES", b"EAGAIN", b"EINVAL", b"EEXIST", b"EISDIR", b"ENOSPC", b"EIO", b"EBUSY", b"EROFS", b"E2BIG", b"EPERM",
        b"ENOMEM", b"EQUOTA", b"E?",
    ];
    let mut words = [0u64; 15];
    let mut i = 0;
    while i < names.len() {
        let mut j = 0;
        while j < names[i].len() {
            words[i] |= (names[i][j] as u64) << (8 * j);
            j += 1;
        }
        i += 1;
    }
    words
};

impl Errno {
    // One copy for every caller: the loader's image is counted in bytes.
    #[inline(never)]
    fn parse(b: &[u8]) -> Self {
        let name = b.split(|&c| c == 0).next().unwrap_or(b);
        let mut word = 0u64;
        for (i, &c) in name.iter().enumerate() {
            if i == 6 {
                return Errno::Other;
            }
            word |= (c as u64) << (8 * i);
        }
        match NAMES.iter().position(|&n| n == word) {
            // SAFETY: Errno is repr(u8) with its variants in NAMES' order,
            // 0 to 14; `i` is an index of NAMES.
            Some(i) => unsafe { core::mem::transmute::<u8, Errno>(i as u8) },
            None => Errno::Other,
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name as xenstored sends it (`ENOENT`); `E?` for any other.
        let bytes = NAMES[*self as usize].to_le_bytes();
        bytes.iter().take_while(|&&c| c != 0).try_for_each(|&c| fmt::Write::write_char(f, c as char))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsError {
    /// xenstored answered with an error (`EAGAIN` on a transaction end means
    /// "retry the transaction").
    Errno(Errno),
    /// No answer in time.
    Timeout,
    /// The ring's indexes are impossible.
    Ring(Corrupt),
    /// The peer broke the protocol.
    Protocol(&'static str),
    /// A path or value we were asked to send is too long or has a NUL.
    BadArgument,
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Errno(e) => write!(f, "xenstore error {e:?}"),
            XsError::Timeout => write!(f, "xenstore did not answer in time"),
            XsError::Ring(c) => write!(f, "xenstore ring corrupt: {c}"),
            XsError::Protocol(w) => write!(f, "xenstore protocol violation: {w}"),
            XsError::BadArgument => write!(f, "xenstore request too long or containing NUL"),
        }
    }
}

impl From<Corrupt> for XsError {
    fn from(c: Corrupt) -> Self {
        XsError::Ring(c)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

pub struct Xenstore<T: Transport> {
    t: T,
    next_id: u32,
    events: VecDeque<WatchEvent>,
    pub dropped_events: u64,
    /// What is left of [`MAX_WAITS`] for the current exchange.
    waits_left: u32,
    /// The part of a message read so far (never more than one message).
    rx: Vec<u8>,
    /// Whole requests not yet on the ring, oldest first: every sender
    /// (a blocking [`batch`](Self::batch) and the requests [`start`]ed
    /// for tasks) queues here, so their bytes never interleave.
    ///
    /// [`start`]: Self::start
    tx: Vec<u8>,
    /// Requests [`start`](Self::start)ed and not yet collected, by id
    /// (a few at a time: a list is smaller in the image than a map).
    started: Vec<(u32, Started)>,
    /// Watch tokens whose events have a queue of their own.
    watchers: Vec<(String, Watcher)>,
    /// Replies to no request of ours since the last good one.
    strays: usize,
    /// Hands a task its reply or watch event ([`Xenstore::for_tasks`]).
    /// `None` until a task first uses the connection, so an image that
    /// never does (the loader) carries none of that code.
    tasks: Option<Router<T>>,
}

/// Hands a message to a task (see [`Xenstore::for_tasks`]).
type Router<T> = fn(&mut Xenstore<T>, &Header, &mut Vec<u8>) -> bool;

/// A request started for a task: its type, and its reply once it came.
struct Started {
    ty: u32,
    reply: Option<Reply>,
    waker: Option<Waker>,
    /// Nobody waits any more (the task gave up): the reply is dropped.
    abandoned: bool,
}

/// The events of one watch token, kept for the task that reads them.
#[derive(Default)]
struct Watcher {
    /// What is watched, to register it again with a new xenstored
    /// connection ([`Xenstore::reconnect`]).
    path: String,
    /// Oldest first (at most [`MAX_QUEUED_EVENTS`]: a list is smaller in
    /// the image than a second kind of deque).
    paths: Vec<String>,
    waker: Option<Waker>,
    /// More events came than [`MAX_QUEUED_EVENTS`]: the first path not
    /// queued is delivered after the queue, meaning "look again".
    overflow: Option<String>,
}

struct Header {
    ty: u32,
    id: u32,
    len: usize,
}

/// Most messages one [`Xenstore::pump`] handles.
pub const MAX_PUMP: usize = 256;

/// Most requests one [`Xenstore::batch`] carries.
pub const MAX_BATCH: usize = 64;

/// One request of a [`Xenstore::batch`].
#[derive(Clone, Debug)]
pub struct Op {
    ty: u32,
    tx: u32,
    payload: Vec<u8>,
    /// A path or token too long or holding a NUL.
    bad: bool,
}

/// The answer to one request of a batch: its payload, or the error
/// xenstored gave for it.
pub type Reply = Result<Vec<u8>, Errno>;

impl Op {
    pub(crate) fn new(ty: u32, tx: u32, strings: &[&str], value: Option<&str>) -> Op {
        let mut payload = Vec::new();
        let mut bad = false;
        for s in strings {
            bad |= s.as_bytes().contains(&0);
            payload.extend_from_slice(s.as_bytes());
            payload.push(0);
        }
        if let Some(v) = value {
            payload.extend_from_slice(v.as_bytes());
        }
        bad |= payload.len() > XS_PAYLOAD_MAX;
        Op { ty, tx, payload, bad }
    }
    pub fn read(path: &str) -> Op {
        Op::new(xs_type::READ, 0, &[path], None)
    }
    pub fn write(path: &str, value: &str) -> Op {
        Op::new(xs_type::WRITE, 0, &[path], Some(value))
    }
    pub fn rm(path: &str) -> Op {
        Op::new(xs_type::RM, 0, &[path], None)
    }
    pub fn directory(path: &str) -> Op {
        Op::new(xs_type::DIRECTORY, 0, &[path], None)
    }
    pub fn mkdir(path: &str) -> Op {
        Op::new(xs_type::MKDIR, 0, &[path], None)
    }
    pub fn transaction_start() -> Op {
        Op::new(xs_type::TRANSACTION_START, 0, &[""], None)
    }
    pub fn transaction_end(tx: u32, commit: bool) -> Op {
        Op::new(xs_type::TRANSACTION_END, tx, &[if commit { "T" } else { "F" }], None)
    }
    pub fn watch(path: &str, token: &str) -> Op {
        Op::new(xs_type::WATCH, 0, &[path, token], None)
    }
    pub fn unwatch(path: &str, token: &str) -> Op {
        Op::new(xs_type::UNWATCH, 0, &[path, token], None)
    }
    /// The same request inside transaction `tx`.
    pub fn in_tx(mut self, tx: u32) -> Op {
        self.tx = tx;
        self
    }
}

impl<T: Transport> Xenstore<T> {
    pub fn new(t: T) -> Self {
        Xenstore {
            t,
            next_id: 1,
            events: VecDeque::new(),
            dropped_events: 0,
            waits_left: MAX_WAITS,
            rx: Vec::new(),
            tx: Vec::new(),
            started: Vec::new(),
            watchers: Vec::new(),
            strays: 0,
            tasks: None,
        }
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.t
    }

    /// Wait for xenstored, within the exchange's budget.
    fn wait(&mut self) -> Result<(), XsError> {
        if self.waits_left == 0 || !self.t.wait() {
            return Err(XsError::Timeout);
        }
        self.waits_left -= 1;
        Ok(())
    }

    /// The next whole message on the response ring, if one has arrived;
    /// what there is of a longer one is kept for the next call. Reads only
    /// what the current message still lacks, so `rx` holds at most one.
    fn take_msg(&mut self) -> Result<Option<(Header, Vec<u8>)>, XsError> {
        loop {
            let mut need = XS_HEADER - self.rx.len().min(XS_HEADER);
            if need == 0 {
                let w = |i: usize| u32::from_le_bytes(self.rx[i * 4..i * 4 + 4].try_into().unwrap());
                let hdr = Header { ty: w(0), id: w(1), len: w(3) as usize };
                if hdr.len > XS_PAYLOAD_MAX {
                    self.rx.clear();
                    return Err(XsError::Protocol("reply longer than XENSTORE_PAYLOAD_MAX"));
                }
                need = XS_HEADER + hdr.len - self.rx.len();
                if need == 0 {
                    let body = self.rx.split_off(XS_HEADER);
                    self.rx.clear();
                    return Ok(Some((hdr, body)));
                }
            }
            let mut buf = [0u8; XS_RING_SIZE as usize];
            let n = RSP.consume(self.t.mem(), &mut buf[..need.min(XS_RING_SIZE as usize)])?;
            if n == 0 {
                return Ok(None);
            }
            self.rx.extend_from_slice(&buf[..n]);
            self.t.notify(); // space freed for xenstored
        }
    }

    fn queue_event(&mut self, body: &[u8]) {
        let mut parts = body.split(|&c| c == 0);
        let path = parts.next().unwrap_or_default();
        let token = parts.next().unwrap_or_default();
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.dropped_events += 1;
            return;
        }
        self.events
            .push_back(WatchEvent { path: String::from_utf8_lossy(path).into_owned(), token: String::from_utf8_lossy(token).into_owned() });
    }

    /// Queue one request's bytes; returns its id.
    fn queue(&mut self, op: &Op) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        for v in [op.ty, id, op.tx, op.payload.len() as u32] {
            self.tx.extend_from_slice(&v.to_le_bytes());
        }
        self.tx.extend_from_slice(&op.payload);
        id
    }

    /// Put as much of the queued requests on the ring as fits; `true` if
    /// anything went.
    fn flush(&mut self) -> Result<bool, XsError> {
        let mut any = false;
        while !self.tx.is_empty() {
            let n = REQ.produce(self.t.mem(), &self.tx)?;
            if n == 0 {
                break;
            }
            self.tx.drain(..n);
            any = true;
        }
        if any {
            self.t.notify();
        }
        Ok(any)
    }

    /// A message for a task: a reply to a [`start`](Self::start)ed
    /// request, kept for its task, or an event of a watch with a queue of
    /// its own ([`add_watcher`](Self::add_watcher)). `false`: not one.
    fn for_tasks(&mut self, h: &Header, body: &mut Vec<u8>) -> bool {
        if h.ty == xs_type::WATCH_EVENT {
            let mut parts = body.split(|&c| c == 0);
            let path = parts.next().unwrap_or_default();
            let token = parts.next().unwrap_or_default();
            let Some((_, w)) = self.watchers.iter_mut().find(|(t, _)| t.as_bytes() == token) else { return false };
            let path = String::from_utf8_lossy(path).into_owned();
            if w.paths.len() < MAX_QUEUED_EVENTS {
                w.paths.push(path);
            } else {
                self.dropped_events += 1;
                w.overflow.get_or_insert(path);
            }
            if let Some(k) = w.waker.take() {
                k.wake();
            }
            return true;
        }
        let Some(at) = self.started.iter().position(|(id, _)| *id == h.id) else { return false };
        let s = &mut self.started[at].1;
        if s.abandoned {
            self.started.swap_remove(at);
            return true;
        }
        s.reply = Some(if h.ty == xs_type::ERROR {
            Err(Errno::parse(body))
        } else if h.ty != s.ty {
            Err(Errno::Eio)
        } else {
            Ok(core::mem::take(body))
        });
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        true
    }

    /// Hand `h` to a task if it is for one (see [`Self::tasks`]).
    fn route(&mut self, h: &Header, body: &mut Vec<u8>) -> bool {
        self.tasks.is_some_and(|f| f(self, h, body))
    }

    /// Start a request for a task without waiting: its bytes are queued
    /// (and put on the ring as it has room); [`poll_reply`](Self::poll_reply)
    /// collects the answer after [`pump`](Self::pump) has seen it.
    pub fn start(&mut self, op: &Op) -> Result<u32, XsError> {
        if op.bad {
            return Err(XsError::BadArgument);
        }
        self.tasks = Some(Self::for_tasks);
        let id = self.queue(op);
        self.started.push((id, Started { ty: op.ty, reply: None, waker: None, abandoned: false }));
        self.flush()?;
        Ok(id)
    }

    /// The reply to started request `id`, or `Pending` with `cx`'s waker
    /// kept for when it comes.
    pub fn poll_reply(&mut self, id: u32, cx: &mut Context<'_>) -> Poll<Reply> {
        let Some(at) = self.started.iter().position(|(i, _)| *i == id) else { return Poll::Ready(Err(Errno::Other)) };
        let s = &mut self.started[at].1;
        match s.reply.take() {
            Some(r) => {
                self.started.swap_remove(at);
                Poll::Ready(r)
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Nobody waits for started request `id` any more.
    pub fn abandon(&mut self, id: u32) {
        if let Some(at) = self.started.iter().position(|(i, _)| *i == id) {
            let s = &mut self.started[at].1;
            if s.reply.is_some() {
                self.started.swap_remove(at);
            } else {
                s.abandoned = true;
                s.waker = None;
            }
        }
    }

    /// Give watch `token` (of `path`) a queue of its own (see
    /// [`poll_watch`](Self::poll_watch)).
    pub fn add_watcher(&mut self, token: &str, path: &str) {
        self.tasks = Some(Self::for_tasks);
        self.remove_watcher(token);
        self.watchers.push((token.into(), Watcher { path: path.into(), ..Watcher::default() }));
    }

    /// Nothing in flight: no request waits to go out or for its reply,
    /// no message is half read. (A suspend waits for this: replies to
    /// requests made before it would never come after a resume.)
    pub fn is_idle(&self) -> bool {
        self.tx.is_empty() && self.rx.is_empty() && self.started.iter().all(|(_, s)| s.reply.is_some() || s.abandoned)
    }

    /// The domain was resumed (after `xl restore` or a migration): the
    /// same ring page, but a new xenstored connection (the transport has
    /// its new event channel). What was left unread on the response ring
    /// belongs to the old one and is skipped; a request still waiting gets
    /// `EIO`; every watch of a task is registered again (xenstored then
    /// sends each its first event, "look again"). Returns how many
    /// requests failed.
    pub fn reconnect(&mut self) -> Result<usize, XsError> {
        self.rx.clear();
        self.tx.clear();
        let stale = RSP.available(self.t.mem())?;
        let mut skip = [0u8; XS_RING_SIZE as usize];
        RSP.consume(self.t.mem(), &mut skip[..stale as usize])?;
        let mut failed = 0;
        self.started.retain_mut(|(_, s)| {
            if s.abandoned {
                return false;
            }
            if s.reply.is_none() {
                s.reply = Some(Err(Errno::Eio));
                failed += 1;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
            true
        });
        let again: Vec<(String, String)> = self.watchers.iter().map(|(t, w)| (w.path.clone(), t.clone())).collect();
        for (path, token) in again {
            let id = self.queue(&Op::watch(&path, &token));
            self.started.push((id, Started { ty: xs_type::WATCH, reply: None, waker: None, abandoned: true }));
        }
        self.flush()?;
        Ok(failed)
    }

    pub fn remove_watcher(&mut self, token: &str) {
        self.watchers.retain(|(t, _)| t != token);
    }

    /// The next event of watch `token`, or `Pending` with `cx`'s waker kept.
    pub fn poll_watch(&mut self, token: &str, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let Some((_, w)) = self.watchers.iter_mut().find(|(t, _)| t == token) else { return Poll::Ready(None) };
        let first = (!w.paths.is_empty()).then(|| w.paths.remove(0));
        if let Some(p) = first.or_else(|| w.overflow.take()) {
            return Poll::Ready(Some(p));
        }
        w.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Move what can move: queued requests onto the ring, whole messages
    /// off it to the requests and watches waiting for them. Never blocks,
    /// and handles at most [`MAX_PUMP`] messages: `Ok(true)` when more may
    /// be waiting (call again after letting others run: a peer that writes
    /// as fast as we read cannot hold the caller). Replies that no request
    /// waits for are skipped, within bounds.
    pub fn pump(&mut self) -> Result<bool, XsError> {
        self.flush()?;
        for _ in 0..MAX_PUMP {
            let Some((h, mut body)) = self.take_msg()? else { return Ok(false) };
            let routed = self.route(&h, &mut body);
            if h.ty == xs_type::WATCH_EVENT {
                if !routed {
                    self.queue_event(&body);
                }
            } else if routed {
                self.strays = 0;
            } else {
                self.strays += 1;
                if self.strays > MAX_STRAY {
                    return Err(XsError::Protocol("replies to requests never made"));
                }
            }
            self.flush()?;
        }
        Ok(true)
    }

    /// Send `ops` together and collect their replies, in order: xenstored
    /// answers them one after the other, so a batch costs about one wait
    /// where one request at a time costs one wait each. Requests go out as
    /// the ring has room while replies are taken as they come (xenstored
    /// stops reading a domain whose replies pile up). Watch events that
    /// arrive meanwhile are queued; messages that are neither are skipped,
    /// within bounds. A reply of the wrong type fails the whole batch.
    pub fn batch(&mut self, ops: &[Op]) -> Result<Vec<Reply>, XsError> {
        if ops.len() > MAX_BATCH || ops.iter().any(|o| o.bad) {
            return Err(XsError::BadArgument);
        }
        self.waits_left = MAX_WAITS;
        let ids: Vec<u32> = ops.iter().map(|op| self.queue(op)).collect();
        let mut replies: Vec<Option<Reply>> = ops.iter().map(|_| None).collect();
        let (mut left, mut others) = (ops.len(), 0);
        while left > 0 {
            let mut progress = self.flush()?;
            while left > 0 {
                let Some((h, mut body)) = self.take_msg()? else { break };
                progress = true;
                let ours = ids.iter().position(|&id| id == h.id).filter(|&k| replies[k].is_none());
                match ours {
                    Some(k) if h.ty != xs_type::WATCH_EVENT => {
                        replies[k] = Some(if h.ty == xs_type::ERROR {
                            Err(Errno::parse(&body))
                        } else if h.ty != ops[k].ty {
                            return Err(XsError::Protocol("reply type does not match the request"));
                        } else {
                            Ok(body)
                        });
                        left -= 1;
                        continue;
                    }
                    // A task's request answered meanwhile: kept for it.
                    _ if h.ty != xs_type::WATCH_EVENT && self.route(&h, &mut body) => continue,
                    // A watch event, for a task's watch or for the queue.
                    _ if h.ty == xs_type::WATCH_EVENT && !self.route(&h, &mut body) => self.queue_event(&body),
                    _ => {} // a task's watch event, or a stray reply: skipped, within bounds
                }
                others += 1;
                if others > MAX_STRAY + MAX_QUEUED_EVENTS {
                    return Err(XsError::Protocol("too many messages that are not our reply"));
                }
            }
            if left > 0 && !progress {
                self.wait()?;
            }
        }
        Ok(replies.into_iter().map(|r| r.unwrap_or(Err(Errno::Other))).collect())
    }

    /// Send one request and return its reply's payload.
    fn request(&mut self, op: Op) -> Result<Vec<u8>, XsError> {
        let reply = self.batch(core::slice::from_ref(&op))?.pop().unwrap_or(Err(Errno::Other));
        reply.map_err(XsError::Errno)
    }

    fn text(body: Vec<u8>) -> Result<String, XsError> {
        String::from_utf8(body).map_err(|_| XsError::Protocol("reply is not UTF-8"))
    }

    pub fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.read_tx(0, path)
    }

    pub fn read_tx(&mut self, tx: u32, path: &str) -> Result<String, XsError> {
        Self::value(self.request(Op::read(path).in_tx(tx))?)
    }

    pub fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        self.write_tx(0, path, value)
    }

    pub fn write_tx(&mut self, tx: u32, path: &str, value: &str) -> Result<(), XsError> {
        self.request(Op::write(path, value).in_tx(tx)).map(|_| ())
    }

    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        self.request(Op::mkdir(path)).map(|_| ())
    }

    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.request(Op::rm(path)).map(|_| ())
    }

    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let body = self.request(Op::directory(path))?;
        Self::entries(body)
    }

    /// The names in a `DIRECTORY` reply.
    pub fn entries(body: Vec<u8>) -> Result<Vec<String>, XsError> {
        body.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8(s.to_vec()).map_err(|_| XsError::Protocol("directory entry is not UTF-8")))
            .collect()
    }

    pub fn get_domain_path(&mut self, domid: u32) -> Result<String, XsError> {
        let mut body = self.request(Op::new(xs_type::GET_DOMAIN_PATH, 0, &[&alloc::format!("{domid}")], None))?;
        if body.last() == Some(&0) {
            body.pop();
        }
        Self::text(body)
    }

    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.request(Op::watch(path, token)).map(|_| ())
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.request(Op::unwatch(path, token)).map(|_| ())
    }

    /// Start a transaction; returns its id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        let body = self.request(Op::transaction_start())?;
        Self::transaction_id(body)
    }

    /// End a transaction: `Err(Errno(Eagain))` means it must be retried.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        self.request(Op::transaction_end(tx, commit)).map(|_| ())
    }

    /// The id in a `TRANSACTION_START` reply.
    pub fn transaction_id(body: Vec<u8>) -> Result<u32, XsError> {
        let s = Self::text(body)?;
        s.trim_end_matches('\0').parse().map_err(|_| XsError::Protocol("transaction id is not a number"))
    }

    /// A `READ` reply as text (a trailing NUL dropped).
    pub fn value(mut body: Vec<u8>) -> Result<String, XsError> {
        if body.last() == Some(&0) {
            body.pop();
        }
        Self::text(body)
    }

    /// A queued watch event, or one already waiting on the ring (does not
    /// block; part of a message is kept for later).
    pub fn poll_event(&mut self) -> Result<Option<WatchEvent>, XsError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        self.waits_left = MAX_WAITS;
        let mut stray = 0;
        while let Some((h, mut body)) = self.take_msg()? {
            // A task's reply or event is handed over and counted with the
            // strays (more of them are allowed): the loop stays bounded.
            let routed = self.route(&h, &mut body);
            if h.ty == xs_type::WATCH_EVENT && !routed {
                self.queue_event(&body);
                if let Some(e) = self.events.pop_front() {
                    return Ok(Some(e));
                }
                continue;
            }
            stray += 1;
            if stray > MAX_STRAY + if routed { MAX_QUEUED_EVENTS } else { 0 } {
                return Err(XsError::Protocol("unsolicited messages"));
            }
        }
        Ok(None)
    }
}

/// A tiny xenstored for host tests of everything that talks to xenstore.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use crate::xen::ring::tests::Page;
    use std::collections::BTreeMap;

    /// A tiny xenstored: serves the ring whenever the client waits or
    /// notifies, buffering partial messages both ways as a real one does.
    pub struct Fake {
        pub page: Page,
        pub inbuf: Vec<u8>,
        pub outbuf: Vec<u8>,
        pub store: BTreeMap<String, String>,
        pub watches: Vec<(String, String)>,
        pub next_tx: u32,
        pub fail_tx_end_once: bool,
        /// Misbehaviour to inject into the next reply.
        pub evil: Option<fn(&Page, &mut Vec<u8>)>,
        pub waits: u32,
        /// A backend's side: called after each client write with the path
        /// and value; what it pushes is written too (firing watches).
        pub backend: Option<Backend>,
    }

    /// A backend's reaction to a client write (see [`Fake::backend`]):
    /// path, value, and the writes it makes in turn.
    pub type Backend = fn(&str, &str, &mut Vec<(String, String)>);

    impl Fake {
        pub fn new() -> Self {
            Fake {
                page: Page::new(),
                inbuf: vec![],
                outbuf: vec![],
                store: BTreeMap::new(),
                watches: vec![],
                next_tx: 1,
                fail_tx_end_once: false,
                evil: None,
                waits: 0,
                backend: None,
            }
        }
        fn reply(&mut self, ty: u32, id: u32, tx: u32, body: &[u8]) {
            let mut m = vec![];
            for v in [ty, id, tx, body.len() as u32] {
                m.extend_from_slice(&v.to_le_bytes());
            }
            m.extend_from_slice(body);
            if let Some(evil) = self.evil.take() {
                evil(&self.page, &mut m);
            }
            self.outbuf.extend_from_slice(&m);
        }
        fn fire(&mut self, p: &str) {
            for (wp, tok) in self.watches.clone() {
                if p.starts_with(&wp) {
                    self.event(p, &tok);
                }
            }
        }
        pub fn event(&mut self, path: &str, token: &str) {
            let b = format!("{path}\0{token}\0");
            self.reply(xs_type::WATCH_EVENT, 0, 0, b.as_bytes());
        }
        fn serve(&mut self) {
            let mut tmp = [0u8; 4096];
            if let Ok(n) = REQ.consume(&self.page, &mut tmp) {
                self.inbuf.extend_from_slice(&tmp[..n]);
            }
            while self.inbuf.len() >= XS_HEADER {
                let w = |b: &[u8], i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
                let (ty, id, tx, len) = (w(&self.inbuf, 0), w(&self.inbuf, 1), w(&self.inbuf, 2), w(&self.inbuf, 3) as usize);
                if self.inbuf.len() < XS_HEADER + len {
                    break;
                }
                let body: Vec<u8> = self.inbuf.drain(..XS_HEADER + len).skip(XS_HEADER).collect();
                self.handle(ty, id, tx, &body);
            }
            if !self.outbuf.is_empty() {
                if let Ok(n) = RSP.produce(&self.page, &self.outbuf) {
                    self.outbuf.drain(..n);
                }
            }
        }
        fn handle(&mut self, ty: u32, id: u32, tx: u32, body: &[u8]) {
            let args: Vec<String> = body.split(|&c| c == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
            match ty {
                xs_type::READ => match self.store.get(&args[0]).cloned() {
                    Some(v) => self.reply(ty, id, tx, v.as_bytes()),
                    None => self.reply(xs_type::ERROR, id, tx, b"ENOENT\0"),
                },
                xs_type::WRITE => {
                    let nul = body.iter().position(|&c| c == 0).unwrap();
                    let (p, v) = (args[0].clone(), String::from_utf8_lossy(&body[nul + 1..]).into_owned());
                    if p.starts_with("/ro/") {
                        self.reply(xs_type::ERROR, id, tx, b"EACCES\0");
                        return;
                    }
                    self.store.insert(p.clone(), v.clone());
                    self.reply(ty, id, tx, b"OK\0");
                    self.fire(&p);
                    let mut more = Vec::new();
                    if let Some(be) = self.backend {
                        be(&p, &v, &mut more);
                    }
                    for (bp, bv) in more {
                        self.store.insert(bp.clone(), bv);
                        self.fire(&bp);
                    }
                }
                xs_type::DIRECTORY => {
                    let pre = format!("{}/", args[0]);
                    let mut kids: Vec<String> =
                        self.store.keys().filter_map(|k| k.strip_prefix(&pre)).map(|k| k.split('/').next().unwrap().to_string()).collect();
                    kids.dedup();
                    let mut b = vec![];
                    for k in kids {
                        b.extend_from_slice(k.as_bytes());
                        b.push(0);
                    }
                    self.reply(ty, id, tx, &b);
                }
                xs_type::WATCH => {
                    self.watches.push((args[0].clone(), args[1].clone()));
                    self.reply(ty, id, tx, b"OK\0");
                    // xenstored fires every new watch once.
                    let (p, t) = (args[0].clone(), args[1].clone());
                    self.event(&p, &t);
                }
                xs_type::UNWATCH => {
                    let w = (args[0].clone(), args[1].clone());
                    match self.watches.iter().position(|x| *x == w) {
                        Some(i) => {
                            self.watches.remove(i);
                            self.reply(ty, id, tx, b"OK\0");
                        }
                        None => self.reply(xs_type::ERROR, id, tx, b"ENOENT\0"),
                    }
                }
                xs_type::TRANSACTION_START => {
                    let t = self.next_tx;
                    self.next_tx += 1;
                    self.reply(ty, id, tx, format!("{t}\0").as_bytes());
                }
                xs_type::TRANSACTION_END => {
                    if std::mem::take(&mut self.fail_tx_end_once) {
                        self.reply(xs_type::ERROR, id, tx, b"EAGAIN\0");
                    } else {
                        self.reply(ty, id, tx, b"OK\0");
                    }
                }
                xs_type::RM => {
                    let (p, pre) = (args[0].clone(), format!("{}/", args[0]));
                    let had = self.store.len();
                    self.store.retain(|k, _| *k != p && !k.starts_with(&pre));
                    if self.store.len() == had {
                        self.reply(xs_type::ERROR, id, tx, b"ENOENT\0");
                    } else {
                        self.reply(ty, id, tx, b"OK\0");
                        self.fire(&p);
                    }
                }
                _ => self.reply(ty, id, tx, b"OK\0"),
            }
        }
    }

    impl Transport for Fake {
        type Mem = Page;
        fn mem(&self) -> &Page {
            &self.page
        }
        fn notify(&mut self) {
            self.serve();
        }
        fn wait(&mut self) -> bool {
            self.waits += 1;
            self.serve();
            self.waits < 1000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Fake;
    use super::*;
    use crate::xen::ring::tests::Page;

    #[test]
    fn read_write_directory() {
        let mut xs = Xenstore::new(Fake::new());
        assert_eq!(xs.read("name"), Err(XsError::Errno(Errno::Enoent)));
        xs.write("data/hvmlite/state", "ready").unwrap();
        xs.write("data/hvmlite/report/hypervisor", "xen").unwrap();
        assert_eq!(xs.read("data/hvmlite/state").unwrap(), "ready");
        assert_eq!(xs.directory("data/hvmlite").unwrap(), vec!["report", "state"]);
        assert_eq!(xs.write("/ro/x", "1"), Err(XsError::Errno(Errno::Eacces)));
    }

    #[test]
    fn long_values_cross_the_ring_in_pieces() {
        let mut xs = Xenstore::new(Fake::new());
        let long: String = (0..3000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        xs.write("k", &long).unwrap();
        assert_eq!(xs.read("k").unwrap(), long);
        assert_eq!(xs.write("k", &"x".repeat(5000)), Err(XsError::BadArgument));
    }

    #[test]
    fn watches_are_queued_while_waiting_for_replies() {
        let mut xs = Xenstore::new(Fake::new());
        xs.watch("control/shutdown", "shutdown").unwrap();
        xs.write("control/shutdown", "poweroff").unwrap();
        xs.read("control/shutdown").unwrap();
        let first = xs.poll_event().unwrap().unwrap();
        assert_eq!(first, WatchEvent { path: "control/shutdown".into(), token: "shutdown".into() });
        let second = xs.poll_event().unwrap().unwrap();
        assert_eq!(second.token, "shutdown");
        assert_eq!(xs.poll_event().unwrap(), None);
    }

    /// After a resume: the reply left on the ring belongs to the old
    /// connection (skipped; its request fails with EIO), and the new
    /// xenstored gets every task's watch again, which fires at once.
    #[test]
    fn reconnect_skips_stale_replies_fails_their_requests_and_watches_again() {
        let mut xs = Xenstore::new(Fake::new());
        xs.add_watcher("rt:0", "control/shutdown");
        let id = xs.start(&Op::read("name")).unwrap();
        assert!(RSP.available(xs.t.mem()).unwrap() > 0, "the old reply waits on the ring");
        xs.t.watches.clear();
        assert_eq!(xs.reconnect(), Ok(1));
        let mut cx = Context::from_waker(core::task::Waker::noop());
        assert_eq!(xs.poll_reply(id, &mut cx), Poll::Ready(Err(Errno::Eio)));
        assert_eq!(xs.t.watches, [("control/shutdown".to_string(), "rt:0".to_string())]);
        xs.pump().unwrap();
        assert_eq!(xs.poll_watch("rt:0", &mut cx), Poll::Ready(Some("control/shutdown".to_string())));
        assert!(xs.is_idle());
        // The connection goes on.
        xs.write("data/x", "1").unwrap();
        assert_eq!(xs.read("data/x").unwrap(), "1");
    }

    #[test]
    fn transactions_surface_eagain() {
        let mut f = Fake::new();
        f.fail_tx_end_once = true;
        let mut xs = Xenstore::new(f);
        let t = xs.transaction_start().unwrap();
        assert_eq!(t, 1);
        xs.write_tx(t, "a", "1").unwrap();
        assert_eq!(xs.transaction_end(t, true), Err(XsError::Errno(Errno::Eagain)));
        let t = xs.transaction_start().unwrap();
        assert_eq!(xs.transaction_end(t, true), Ok(()));
    }

    #[test]
    fn oversized_reply_is_a_protocol_error() {
        let mut f = Fake::new();
        f.store.insert("k".into(), "v".into());
        f.evil = Some(|_, m| m[12..16].copy_from_slice(&(1u32 << 20).to_le_bytes()));
        let mut xs = Xenstore::new(f);
        assert_eq!(xs.read("k"), Err(XsError::Protocol("reply longer than XENSTORE_PAYLOAD_MAX")));
    }

    #[test]
    fn corrupt_ring_indexes_are_an_error_not_an_overrun() {
        let mut f = Fake::new();
        f.evil = Some(|p, _| p.store32(XS_RSP_PROD, 0x7fff_0000));
        let mut xs = Xenstore::new(f);
        assert!(matches!(xs.read("k"), Err(XsError::Ring(_))));
    }

    #[test]
    fn silent_peer_times_out() {
        struct Mute(Page);
        impl Transport for Mute {
            type Mem = Page;
            fn mem(&self) -> &Page {
                &self.0
            }
            fn notify(&mut self) {}
            fn wait(&mut self) -> bool {
                false
            }
        }
        let mut xs = Xenstore::new(Mute(Page::new()));
        assert_eq!(xs.read("k"), Err(XsError::Timeout));
    }

    #[test]
    fn a_signal_storm_without_data_times_out() {
        // Found by fuzz/fuzz_targets/xenstore.rs: a peer that signals
        // forever but never answers kept the client waiting forever.
        struct Storm(Page, u32);
        impl Transport for Storm {
            type Mem = Page;
            fn mem(&self) -> &Page {
                &self.0
            }
            fn notify(&mut self) {}
            fn wait(&mut self) -> bool {
                self.1 += 1;
                assert!(self.1 <= MAX_WAITS, "waited {} times", self.1);
                true
            }
        }
        let mut xs = Xenstore::new(Storm(Page::new(), 0));
        assert_eq!(xs.read("k"), Err(XsError::Timeout));
        assert_eq!(xs.transport().1, MAX_WAITS);
        // The budget is per request.
        xs.transport().1 = 0;
        assert_eq!(xs.read("k"), Err(XsError::Timeout));
    }

    #[test]
    fn a_batch_crosses_the_ring_both_ways_and_keeps_each_answer() {
        let mut f = Fake::new();
        f.store.insert("k".into(), "v".into());
        let mut xs = Xenstore::new(f);
        xs.watch("device", "dev").unwrap();
        assert!(xs.poll_event().unwrap().is_some()); // the watch's first firing
        let val: String = "x".repeat(60);
        let mut ops = vec![Op::read("missing"), Op::write("/ro/x", "1")];
        for i in 0..30 {
            ops.push(Op::write(&format!("device/vbd/51712/ring-ref{i}"), &val));
        }
        ops.push(Op::read("device/vbd/51712/ring-ref29"));
        ops.push(Op::directory("device/vbd/51712"));
        ops.push(Op::read("k"));
        // Far more than one ring-full (1024 bytes) each way.
        assert!(ops.iter().map(|o| o.payload.len() + XS_HEADER).sum::<usize>() > 3000);
        let r = xs.batch(&ops).unwrap();
        assert_eq!(r.len(), ops.len());
        assert_eq!(r[0], Err(Errno::Enoent));
        assert_eq!(r[1], Err(Errno::Eacces));
        assert!(r[2..32].iter().all(|w| w.as_deref() == Ok(&b"OK\0"[..])));
        assert_eq!(r[32].as_deref(), Ok(val.as_bytes()));
        assert_eq!(Xenstore::<Fake>::entries(r[33].clone().unwrap()).unwrap().len(), 30);
        assert_eq!(r[34].as_deref(), Ok(&b"v"[..]));
        // Each write fired the watch: the events were kept (up to the bound).
        let mut n = 0;
        while xs.poll_event().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n as u64 + xs.dropped_events, 30);
        // The client goes on after the batch as before.
        assert_eq!(xs.read("k").unwrap(), "v");
    }

    #[test]
    fn a_batch_skips_strays_and_refuses_what_it_cannot_send() {
        let mut f = Fake::new();
        f.store.insert("k".into(), "v".into());
        // Before the real reply, a reply to an id that was never sent.
        f.evil = Some(|_, m| {
            let mut stray = m.clone();
            stray[4..8].copy_from_slice(&0x7777u32.to_le_bytes());
            stray.extend_from_slice(m);
            *m = stray;
        });
        let mut xs = Xenstore::new(f);
        let r = xs.batch(&[Op::read("k"), Op::read("k")]).unwrap();
        assert_eq!(r, vec![Ok(b"v".to_vec()), Ok(b"v".to_vec())]);
        let many: Vec<Op> = (0..=MAX_BATCH).map(|_| Op::read("k")).collect();
        assert_eq!(xs.batch(&many), Err(XsError::BadArgument));
        assert_eq!(xs.batch(&[Op::read("a\0b")]), Err(XsError::BadArgument));
        assert_eq!(xs.batch(&[]), Ok(vec![]));
    }

    #[test]
    fn errno_names_parse_to_their_variant_and_print_as_sent() {
        let all = [
            ("ENOENT", Errno::Enoent),
            ("EACCES", Errno::Eacces),
            ("EAGAIN", Errno::Eagain),
            ("EINVAL", Errno::Einval),
            ("EEXIST", Errno::Eexist),
            ("EISDIR", Errno::Eisdir),
            ("ENOSPC", Errno::Enospc),
            ("EIO", Errno::Eio),
            ("EBUSY", Errno::Ebusy),
            ("EROFS", Errno::Erofs),
            ("E2BIG", Errno::E2big),
            ("EPERM", Errno::Eperm),
            ("ENOMEM", Errno::Enomem),
            ("EQUOTA", Errno::Equota),
        ];
        for (name, e) in all {
            assert_eq!(Errno::parse(format!("{name}\0").as_bytes()), e);
            assert_eq!(format!("{e:?}"), name);
        }
        for other in [&b""[..], b"E", b"ENOENTX", b"EIO2", b"E?", b"\0ENOENT", b"enoent"] {
            assert_eq!(Errno::parse(other), Errno::Other, "{other:?}");
        }
        assert_eq!(format!("{:?}", Errno::Other), "E?");
    }

    #[test]
    fn wrong_reply_type_is_refused() {
        let mut f = Fake::new();
        f.store.insert("k".into(), "v".into());
        f.evil = Some(|_, m| m[0..4].copy_from_slice(&xs_type::WRITE.to_le_bytes()));
        let mut xs = Xenstore::new(f);
        assert_eq!(xs.read("k"), Err(XsError::Protocol("reply type does not match the request")));
    }
}
