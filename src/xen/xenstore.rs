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
/// `wait()` calls one request (or one `poll_event`) may make. An honest
/// xenstored needs about one per ring-full of traffic, and a request's
/// traffic is bounded (at most `MAX_STRAY + MAX_QUEUED_EVENTS + 1` messages
/// of at most 16 + 4096 bytes: about 330 ring-fulls), so a peer that keeps
/// signalling without ever completing the reply ends in `Timeout`, not a
/// livelock.
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

/// The errno names xenstored sends in `XS_ERROR` replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl Errno {
    fn parse(b: &[u8]) -> Self {
        let name = b.split(|&c| c == 0).next().unwrap_or(b);
        match name {
            b"ENOENT" => Errno::Enoent,
            b"EACCES" => Errno::Eacces,
            b"EAGAIN" => Errno::Eagain,
            b"EINVAL" => Errno::Einval,
            b"EEXIST" => Errno::Eexist,
            b"EISDIR" => Errno::Eisdir,
            b"ENOSPC" => Errno::Enospc,
            b"EIO" => Errno::Eio,
            b"EBUSY" => Errno::Ebusy,
            b"EROFS" => Errno::Erofs,
            b"E2BIG" => Errno::E2big,
            b"EPERM" => Errno::Eperm,
            b"ENOMEM" => Errno::Enomem,
            b"EQUOTA" => Errno::Equota,
            _ => Errno::Other,
        }
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
    /// What is left of [`MAX_WAITS`] for the current request.
    waits_left: u32,
}

struct Header {
    ty: u32,
    id: u32,
    len: usize,
}

impl<T: Transport> Xenstore<T> {
    pub fn new(t: T) -> Self {
        Xenstore { t, next_id: 1, events: VecDeque::new(), dropped_events: 0, waits_left: MAX_WAITS }
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.t
    }

    /// Wait for xenstored, within the request's budget.
    fn wait(&mut self) -> Result<(), XsError> {
        if self.waits_left == 0 || !self.t.wait() {
            return Err(XsError::Timeout);
        }
        self.waits_left -= 1;
        Ok(())
    }

    fn send_all(&mut self, data: &[u8]) -> Result<(), XsError> {
        let mut off = 0;
        while off < data.len() {
            let n = REQ.produce(self.t.mem(), &data[off..])?;
            off += n;
            self.t.notify();
            if n == 0 {
                self.wait()?;
            }
        }
        Ok(())
    }

    fn recv_exact(&mut self, buf: &mut [u8]) -> Result<(), XsError> {
        let mut off = 0;
        while off < buf.len() {
            let n = RSP.consume(self.t.mem(), &mut buf[off..])?;
            off += n;
            if n > 0 {
                self.t.notify(); // space freed for xenstored
            } else {
                self.wait()?;
            }
        }
        Ok(())
    }

    fn recv_msg(&mut self) -> Result<(Header, Vec<u8>), XsError> {
        let mut h = [0u8; XS_HEADER];
        self.recv_exact(&mut h)?;
        let w = |i: usize| u32::from_le_bytes(h[i * 4..i * 4 + 4].try_into().unwrap());
        let hdr = Header { ty: w(0), id: w(1), len: w(3) as usize };
        if hdr.len > XS_PAYLOAD_MAX {
            return Err(XsError::Protocol("reply longer than XENSTORE_PAYLOAD_MAX"));
        }
        let mut body = alloc::vec![0u8; hdr.len];
        self.recv_exact(&mut body)?;
        Ok((hdr, body))
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

    /// Send one request made of `parts` and return the reply's payload.
    pub fn request(&mut self, ty: u32, tx: u32, parts: &[&[u8]]) -> Result<Vec<u8>, XsError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > XS_PAYLOAD_MAX {
            return Err(XsError::BadArgument);
        }
        self.waits_left = MAX_WAITS;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let mut msg = Vec::with_capacity(XS_HEADER + len);
        for v in [ty, id, tx, len as u32] {
            msg.extend_from_slice(&v.to_le_bytes());
        }
        for p in parts {
            msg.extend_from_slice(p);
        }
        self.send_all(&msg)?;
        for _ in 0..=MAX_STRAY + MAX_QUEUED_EVENTS {
            let (h, body) = self.recv_msg()?;
            if h.ty == xs_type::WATCH_EVENT {
                self.queue_event(&body);
                continue;
            }
            if h.id != id {
                continue; // a stray reply: skip, within bounds
            }
            if h.ty == xs_type::ERROR {
                return Err(XsError::Errno(Errno::parse(&body)));
            }
            if h.ty != ty {
                return Err(XsError::Protocol("reply type does not match the request"));
            }
            return Ok(body);
        }
        Err(XsError::Protocol("too many messages that are not our reply"))
    }

    fn path(p: &str) -> Result<Vec<u8>, XsError> {
        if p.as_bytes().contains(&0) || p.len() >= XS_PAYLOAD_MAX {
            return Err(XsError::BadArgument);
        }
        let mut v = Vec::from(p.as_bytes());
        v.push(0);
        Ok(v)
    }

    fn text(body: Vec<u8>) -> Result<String, XsError> {
        String::from_utf8(body).map_err(|_| XsError::Protocol("reply is not UTF-8"))
    }

    pub fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.read_tx(0, path)
    }

    pub fn read_tx(&mut self, tx: u32, path: &str) -> Result<String, XsError> {
        let p = Self::path(path)?;
        let mut body = self.request(xs_type::READ, tx, &[&p])?;
        if body.last() == Some(&0) {
            body.pop();
        }
        Self::text(body)
    }

    pub fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        self.write_tx(0, path, value)
    }

    pub fn write_tx(&mut self, tx: u32, path: &str, value: &str) -> Result<(), XsError> {
        let p = Self::path(path)?;
        self.request(xs_type::WRITE, tx, &[&p, value.as_bytes()]).map(|_| ())
    }

    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        let p = Self::path(path)?;
        self.request(xs_type::MKDIR, 0, &[&p]).map(|_| ())
    }

    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        let p = Self::path(path)?;
        self.request(xs_type::RM, 0, &[&p]).map(|_| ())
    }

    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let p = Self::path(path)?;
        let body = self.request(xs_type::DIRECTORY, 0, &[&p])?;
        body.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8(s.to_vec()).map_err(|_| XsError::Protocol("directory entry is not UTF-8")))
            .collect()
    }

    pub fn get_domain_path(&mut self, domid: u32) -> Result<String, XsError> {
        let id = Self::path(&alloc::format!("{domid}"))?;
        let mut body = self.request(xs_type::GET_DOMAIN_PATH, 0, &[&id])?;
        if body.last() == Some(&0) {
            body.pop();
        }
        Self::text(body)
    }

    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let (p, t) = (Self::path(path)?, Self::path(token)?);
        self.request(xs_type::WATCH, 0, &[&p, &t]).map(|_| ())
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let (p, t) = (Self::path(path)?, Self::path(token)?);
        self.request(xs_type::UNWATCH, 0, &[&p, &t]).map(|_| ())
    }

    /// Start a transaction; returns its id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        let body = self.request(xs_type::TRANSACTION_START, 0, &[b"\0"])?;
        let s = Self::text(body)?;
        s.trim_end_matches('\0').parse().map_err(|_| XsError::Protocol("transaction id is not a number"))
    }

    /// End a transaction: `Err(Errno(Eagain))` means it must be retried.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(xs_type::TRANSACTION_END, tx, &[arg]).map(|_| ())
    }

    /// A queued watch event, or one already waiting on the ring (does not block).
    pub fn poll_event(&mut self) -> Result<Option<WatchEvent>, XsError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        self.waits_left = MAX_WAITS;
        let mut stray = 0;
        while RSP.available(self.t.mem())? as usize >= XS_HEADER {
            let (h, body) = self.recv_msg()?;
            if h.ty == xs_type::WATCH_EVENT {
                self.queue_event(&body);
                return Ok(self.events.pop_front());
            }
            stray += 1;
            if stray > MAX_STRAY {
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
        pub backend: Option<BackendHook>,
    }

    /// A fake backend: (path, value written, what it writes in reply).
    pub type BackendHook = fn(&str, &str, &mut Vec<(String, String)>);

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
    fn wrong_reply_type_is_refused() {
        let mut f = Fake::new();
        f.store.insert("k".into(), "v".into());
        f.evil = Some(|_, m| m[0..4].copy_from_slice(&xs_type::WRITE.to_le_bytes()));
        let mut xs = Xenstore::new(f);
        assert_eq!(xs.read("k"), Err(XsError::Protocol("reply type does not match the request")));
    }
}
