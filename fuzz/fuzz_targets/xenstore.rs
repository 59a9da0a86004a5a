//! The xenstore client against a fuzzer-driven xenstored.
//!
//! The input is a script: a byte picks each client call (read, write,
//! directory, watch, transactions, poll_event, ...), and every time the
//! client notifies or waits, the peer runs script actions until one yields:
//! honest replies to the last request (with fuzzer-chosen type, id and
//! length), raw bytes, arbitrary index values on either ring, consuming the
//! request, timing out, or a storm of signals that never brings data.
//!
//! A batch's requests are answered oldest first.
//!
//! Calls also take the task runtime's path: requests `start`ed and
//! collected later with `poll_reply`, `pump` (never waits), a watcher with
//! a queue of its own drained with `poll_watch`, requests abandoned.
//!
//! Invariants: every call returns (Ok or a typed error) within a bounded
//! number of `wait()` calls (`pump`: none), never panics, a watcher never
//! holds more than its bound of events, and the client touches only
//! the four index words (storing only its own two: req_prod, rsp_cons),
//! reads only the response ring and writes only the request ring.
#![no_main]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use hvmlite::xen::abi::*;
use hvmlite::xen::ring::RingMem;
use std::task::{Context, Poll, Waker};

use hvmlite::xen::xenstore::{Op, Transport, Xenstore, XsError, MAX_BATCH, MAX_WAITS, REQ, RSP};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// Most `wait()` calls one client call may make: the client's own budget.
const WAIT_BOUND: u32 = MAX_WAITS;

struct Page {
    bytes: RefCell<Vec<u8>>,
    /// Accesses are the peer's (unchecked) rather than the client's.
    peer: Cell<bool>,
}

impl Page {
    fn check(&self, what: &str, off: usize, len: usize) {
        if self.peer.get() {
            return;
        }
        let r = off..off + len;
        let inside = |a: usize, n: usize| a <= r.start && r.end <= a + n;
        let ok = match what {
            "load" => [XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD].contains(&off),
            "store" => off == XS_REQ_PROD || off == XS_RSP_CONS,
            "read" => inside(XS_RSP, XS_RING_SIZE as usize),
            _ => inside(XS_REQ, XS_RING_SIZE as usize),
        };
        assert!(ok, "client {what} at {off:#x}+{len:#x}");
    }
}

impl RingMem for Page {
    fn load32(&self, off: usize) -> u32 {
        self.check("load", off, 4);
        u32::from_le_bytes(self.bytes.borrow()[off..off + 4].try_into().unwrap())
    }
    fn store32(&self, off: usize, v: u32) {
        self.check("store", off, 4);
        self.bytes.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        self.check("read", off, buf.len());
        buf.copy_from_slice(&self.bytes.borrow()[off..off + buf.len()]);
    }
    fn write(&self, off: usize, data: &[u8]) {
        self.check("write", off, data.len());
        self.bytes.borrow_mut()[off..off + data.len()].copy_from_slice(data);
    }
}

struct Peer<'a> {
    page: Page,
    script: Bytes<'a>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// (type, id) of the requests seen and not yet answered, oldest first
    /// (a batch sends several), and of the last one seen.
    pending: VecDeque<(u32, u32)>,
    last: (u32, u32),
    storm: bool,
    waits: u32,
}

impl Peer<'_> {
    fn set32(&self, off: usize, v: u32) {
        self.page.bytes.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn take_requests(&mut self) {
        let mut tmp = [0u8; 1024];
        if let Ok(n) = REQ.consume(&self.page, &mut tmp) {
            self.inbuf.extend_from_slice(&tmp[..n]);
        }
        while self.inbuf.len() >= XS_HEADER {
            let w = |i: usize| u32::from_le_bytes(self.inbuf[i * 4..i * 4 + 4].try_into().unwrap());
            let len = w(3) as usize;
            if self.inbuf.len() < XS_HEADER + len {
                break;
            }
            self.last = (w(0), w(1));
            if self.pending.len() < 128 {
                self.pending.push_back(self.last);
            }
            self.inbuf.drain(..XS_HEADER + len);
        }
    }
    fn flush(&mut self) {
        if let Ok(n) = RSP.produce(&self.page, &self.outbuf) {
            self.outbuf.drain(..n);
        }
    }
    /// Run script actions until one yields; returns what `wait()` says.
    fn act(&mut self) -> bool {
        self.page.peer.set(true);
        let r = loop {
            if self.storm {
                break true;
            }
            if self.script.is_empty() {
                break false;
            }
            match self.script.u8() % 12 {
                0 => break true,
                1 => break false,
                2 | 3 => {
                    // A reply to the oldest request not yet answered
                    // (else the last one), mostly honest.
                    self.take_requests();
                    let (lty, lid) = self.pending.pop_front().unwrap_or(self.last);
                    let f = self.script.u8();
                    let ty = if f & 1 == 0 {
                        lty
                    } else if f & 2 == 0 {
                        xs_type::ERROR
                    } else {
                        self.script.u32() % 20
                    };
                    let id = if f & 4 == 0 { lid } else { self.script.u32() };
                    let n = self.script.u16() as usize % 96;
                    let body = self.script.take(n).to_vec();
                    let len = if f & 8 == 0 { body.len() as u32 } else { self.script.u32() % 5000 };
                    for v in [ty, id, 0, len] {
                        self.outbuf.extend_from_slice(&v.to_le_bytes());
                    }
                    self.outbuf.extend_from_slice(&body);
                    self.flush();
                }
                4 => {
                    let n = self.script.u8() as usize;
                    let raw = self.script.take(n).to_vec();
                    self.outbuf.extend_from_slice(&raw);
                    self.flush();
                }
                5 => self.flush(),
                6 => self.take_requests(),
                7 => {
                    let off = [XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD][self.script.u8() as usize % 4];
                    let v = self.script.u32();
                    self.set32(off, v);
                }
                8 => {
                    // A watch event.
                    let n = self.script.u8() as usize;
                    let body = self.script.take(n).to_vec();
                    for v in [xs_type::WATCH_EVENT, 0, 0, body.len() as u32] {
                        self.outbuf.extend_from_slice(&v.to_le_bytes());
                    }
                    self.outbuf.extend_from_slice(&body);
                    self.flush();
                }
                9 => {
                    // Scribble on the response ring's data.
                    let at = XS_RSP + self.script.u16() as usize % 1000;
                    let junk = self.script.take(24).to_vec();
                    self.page.bytes.borrow_mut()[at..at + junk.len()].copy_from_slice(&junk);
                }
                10 => {
                    if self.script.u8() == 0x5a {
                        self.storm = true;
                    }
                }
                _ => {}
            }
        };
        self.page.peer.set(false);
        r
    }
}

impl Transport for Peer<'_> {
    type Mem = Page;
    fn mem(&self) -> &Page {
        &self.page
    }
    fn notify(&mut self) {
        self.act();
    }
    fn wait(&mut self) -> bool {
        self.waits += 1;
        assert!(self.waits <= WAIT_BOUND, "the client waited {} times in one call", self.waits);
        self.act()
    }
}

fn one_line(e: &XsError) {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'));
}

fuzz_target!(|data: &[u8]| {
    let peer = Peer {
        page: Page { bytes: RefCell::new(vec![0; 4096]), peer: Cell::new(false) },
        script: Bytes::new(data),
        inbuf: vec![],
        outbuf: vec![],
        pending: VecDeque::new(),
        last: (0, 0),
        storm: false,
        waits: 0,
    };
    let mut xs = Xenstore::new(peer);
    let mut started: Vec<u32> = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..8 {
        if xs.transport().script.is_empty() {
            break;
        }
        xs.transport().waits = 0;
        let call = xs.transport().script.u8();
        let res: Result<(), XsError> = match call % 16 {
            0 => xs.read("device/vif/0/state").map(|s| assert!(s.len() <= XS_PAYLOAD_MAX)),
            1 => xs.write("data/hvmlite/state", "ready"),
            2 => xs.directory("device").map(|v| assert!(v.iter().map(|s| s.len() + 1).sum::<usize>() <= XS_PAYLOAD_MAX + 1)),
            3 => xs.watch("control/shutdown", "shutdown"),
            4 => xs.transaction_start().map(|_| ()),
            5 => xs.transaction_end(1, true),
            6 => xs.get_domain_path(7).map(|_| ()),
            7 => xs.mkdir("data/x"),
            8 => xs.rm("data/x"),
            9 => {
                // A batch: as many answers as requests, each one bounded.
                let n = xs.transport().script.u8() as usize % (MAX_BATCH + 1);
                let ops: Vec<Op> = (0..n)
                    .map(|i| if i % 2 == 0 { Op::read("device/vbd/51712/state") } else { Op::write("device/vbd/51712/ring-ref", "8") })
                    .collect();
                xs.batch(&ops).map(|r| {
                    assert_eq!(r.len(), n);
                    assert!(r.iter().all(|a| a.as_ref().map_or(true, |b| b.len() <= XS_PAYLOAD_MAX)));
                })
            }
            11 => xs.start(&Op::read("data/x")).map(|id| started.push(id)),
            12 => {
                let r = xs.pump().map(|_| ());
                assert_eq!(xs.transport().waits, 0, "pump waited");
                for id in std::mem::take(&mut started) {
                    match xs.poll_reply(id, &mut cx) {
                        Poll::Ready(r) => assert!(r.map_or(true, |b| b.len() <= XS_PAYLOAD_MAX)),
                        Poll::Pending => started.push(id),
                    }
                }
                r
            }
            13 => {
                xs.add_watcher("rt:0", "control/shutdown");
                let r = xs.pump().map(|_| ());
                let mut n = 0;
                while let Poll::Ready(Some(p)) = xs.poll_watch("rt:0", &mut cx) {
                    assert!(p.len() <= XS_PAYLOAD_MAX);
                    n += 1;
                    assert!(n <= 65, "a watcher held more than its bound");
                }
                r
            }
            14 => {
                if let Some(id) = started.pop() {
                    xs.abandon(id);
                }
                Ok(())
            }
            // A resume: whatever the peer left on the ring is skipped
            // (never more than the ring holds), every request waiting
            // fails, the watches are sent again.
            15 => xs.reconnect().map(|_| {
                for id in std::mem::take(&mut started) {
                    assert!(!matches!(xs.poll_reply(id, &mut cx), Poll::Pending), "a request outlived the reconnect");
                }
            }),
            _ => xs.poll_event().map(|e| {
                if let Some(e) = e {
                    assert!(e.path.len() + e.token.len() <= 3 * XS_PAYLOAD_MAX);
                }
            }),
        };
        if let Err(e) = &res {
            one_line(e);
        }
    }
});
