//! The xenstore daemon's core (`hvmlite::xsd::Server`) driven by several
//! domains at once from a script: requests built from a dictionary of
//! paths, permissions and words (or raw bytes), any type and tx_id, bytes
//! fed in any split (never more than `room()`), rings read partially or
//! not at all, domains introduced, shut down and gone.
//!
//! Invariants: never panics; the host is asked to introduce only a domain
//! not mapped and to release only one that is, exactly once; every
//! connection's queued output stays within the bound (`output` plus one
//! whole message) and `room()` within one message; what each connection
//! is sent parses as whole messages, header length equal to the body,
//! at most 4096 bytes, of a reply, error or event type, errors and events
//! NUL-terminated; the usage counts always equal a recount of the nodes
//! (`audit`); and when every domain is gone only dom0 owns anything.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use hvmlite::xsd::conn::INPUT_MAX;
use hvmlite::xsd::wire::{self, Header, Type, HEADER, PAYLOAD_MAX};
use hvmlite::xsd::{Config, DomId, Errno, Host, Server};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

const DOMS: [DomId; 4] = [0, 1, 2, 3];

const PATHS: &[&[u8]] = &[
    b"/",
    b"/a",
    b"/a/b",
    b"/a/b/c",
    b"a",
    b"a/b",
    b"data",
    b"/local/domain",
    b"/local/domain/1",
    b"/local/domain/2/x",
    b"/local/domain/3/data/y",
    b"/tool/xenstored",
    b"@releaseDomain",
    b"@introduceDomain",
    b"/a//b",
    b"",
];

const WORDS: &[&[u8]] = &[
    b"T", b"F", b"n0", b"r1", b"b2", b"w3", b"n1", b"n2", b"0", b"1", b"2", b"3", b"9", b"tok", b"print", b"quota", b"check", b"-1",
    b"4096",
];

#[derive(Default)]
struct FuzzHost {
    mapped: BTreeSet<DomId>,
}

impl Host for FuzzHost {
    fn introduce(&mut self, domid: DomId, _gfn: u64, _port: u32) -> Result<(), Errno> {
        assert!(domid != 0 && self.mapped.insert(domid), "introduce of dom{domid}, mapped already");
        Ok(())
    }
    fn release(&mut self, domid: DomId) {
        assert!(self.mapped.remove(&domid), "release of dom{domid}, not mapped");
    }
}

fn config(small: bool) -> Config {
    if !small {
        return Config::default();
    }
    let mut c = Config {
        nodes: 12,
        node_size: 200,
        watches: 3,
        transactions: 2,
        perms: 3,
        txn_nodes: 10,
        outstanding: 3,
        memory: 3000,
        output: 300,
        ..Config::default()
    };
    c.path.abs = 200;
    c.path.rel = 100;
    c
}

/// A request payload: a few fields from the dictionaries or raw bytes,
/// NUL-separated, the last NUL sometimes left off.
fn body(b: &mut Bytes) -> Vec<u8> {
    let n = b.u8() % 5;
    let mut out = Vec::new();
    for _ in 0..n {
        let k = b.u8() as usize;
        if k < PATHS.len() * 4 {
            out.extend_from_slice(PATHS[k % PATHS.len()]);
        } else if k < PATHS.len() * 4 + WORDS.len() * 3 {
            out.extend_from_slice(WORDS[k % WORDS.len()]);
        } else {
            let len = (k % 16) + if k > 250 { 3000 } else { 0 };
            out.extend(std::iter::repeat(b.u8()).take(len));
        }
        out.push(0);
    }
    if b.u8() & 1 == 0 {
        out.pop();
    }
    out.truncate(PAYLOAD_MAX);
    out
}

/// What a domain has read from its ring: whole messages are checked and
/// dropped, a partial one waits for the rest.
fn check_stream(stream: &mut Vec<u8>) {
    loop {
        if stream.len() < HEADER {
            return;
        }
        let h = Header::parse(stream);
        let len = h.len as usize;
        assert!(len <= PAYLOAD_MAX, "reply of {len} bytes");
        if stream.len() < HEADER + len {
            return;
        }
        let body = &stream[HEADER..HEADER + len];
        let ty = Type::from_u32(h.ty).expect("a known reply type");
        if ty == Type::Error || ty == Type::WatchEvent {
            assert_eq!(body.last(), Some(&0), "{ty:?} without its NUL");
        }
        if ty == Type::WatchEvent {
            assert_eq!((h.req_id, h.tx_id), (0, 0));
            assert_eq!(body.iter().filter(|&&c| c == 0).count(), 2);
        }
        stream.drain(..HEADER + len);
    }
}

struct World {
    s: Server,
    host: FuzzHost,
    streams: BTreeMap<DomId, Vec<u8>>,
    bound: usize,
}

impl World {
    /// Read up to `n` bytes of `dom`'s output, as its ring would.
    fn read(&mut self, dom: DomId, n: usize) {
        let out = self.s.output(dom);
        let n = n.min(out.len());
        self.streams.entry(dom).or_default().extend_from_slice(&out[..n]);
        self.s.advance(dom, n);
        check_stream(self.streams.get_mut(&dom).unwrap());
    }

    fn feed(&mut self, dom: DomId, bytes: &[u8]) {
        let room = self.s.room(dom);
        assert!(room <= INPUT_MAX);
        let bytes = &bytes[..bytes.len().min(room)];
        self.s.receive(dom, bytes, &mut self.host);
    }

    /// A connection that went away starts a fresh stream if it comes back.
    fn gone(&mut self, dom: DomId) {
        if dom != 0 && !self.s.domains().contains(&dom) {
            self.streams.remove(&dom);
        }
    }

    fn queues(&self) -> BTreeMap<DomId, usize> {
        DOMS.iter().map(|&d| (d, self.s.queued(d))).collect()
    }

    /// A connection whose queue was full before a step in which it sent
    /// nothing got no more output (its watch events were dropped).
    fn check_full(&self, before: &BTreeMap<DomId, usize>, acting: Option<DomId>) {
        for (&d, &q) in before {
            if Some(d) != acting && acting.is_some() && q >= self.s.config().output {
                assert!(self.s.queued(d) <= q, "dom{d}'s full queue grew from {q} to {}", self.s.queued(d));
            }
        }
    }

    fn check(&self) {
        for d in DOMS {
            assert!(self.s.queued(d) <= self.bound, "dom{d} has {} bytes queued", self.s.queued(d));
        }
        let connected: BTreeSet<DomId> = self.s.domains().into_iter().collect();
        assert_eq!(connected, self.host.mapped);
        self.s.audit().unwrap();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let cfg = config(b.u8() & 1 == 1);
    let mut w =
        World { s: Server::new(cfg), host: FuzzHost::default(), streams: BTreeMap::new(), bound: cfg.output + HEADER + PAYLOAD_MAX };
    let mut steps = 0;
    while !b.is_empty() && steps < 400 {
        steps += 1;
        let op = b.u8();
        let dom = DOMS[(op >> 4) as usize % DOMS.len()];
        let before = w.queues();
        // The domain whose requests this step may answer (None: any).
        let acting = match op % 8 {
            5 => Some(0),
            6 => Some(u16::MAX),
            7 => None,
            _ => Some(dom),
        };
        match op % 8 {
            0 | 1 | 2 => {
                let ty = match b.u8() {
                    t @ 0..=27 => t as u32,
                    28..=250 => (b.u8() % 23) as u32,
                    _ => b.u32(),
                };
                let tx = match b.u8() % 4 {
                    0 | 1 => 0,
                    2 => (b.u8() % 4) as u32,
                    _ => b.u32(),
                };
                let m = wire::message(ty, b.u32(), tx, &body(&mut b));
                let cut = (b.u8() as usize).min(m.len());
                let split = if op & 8 == 0 { m.len() } else { cut };
                w.feed(dom, &m[..split]);
                w.feed(dom, &m[split..]);
                // dom0, the toolstack, mostly reads its replies at once.
                if dom == 0 && op & 0x80 == 0 {
                    w.read(0, usize::MAX);
                }
            }
            3 => {
                let n = b.u8() as usize;
                let mut m = b.take(n).to_vec();
                if op & 8 != 0 && m.len() >= HEADER {
                    m[12..16].copy_from_slice(&(PAYLOAD_MAX as u32 + 1 + (op as u32 >> 6)).to_le_bytes());
                }
                w.feed(dom, &m);
                w.gone(dom);
            }
            4 => {
                let n = if op & 8 == 0 { usize::MAX } else { b.u16() as usize };
                w.read(dom, n);
            }
            5 => {
                // As xl does: introduce, then give the domain its home.
                let home = format!("/local/domain/{dom}\0");
                let msgs = [
                    (Type::Introduce, format!("{dom}\0{}\0{}\0", b.u8(), b.u8())),
                    (Type::Mkdir, home.clone()),
                    (Type::SetPerms, format!("{home}n{dom}\0r0\0")),
                ];
                for (ty, m) in msgs {
                    w.feed(0, &wire::message(ty as u32, 1, 0, m.as_bytes()));
                    w.read(0, usize::MAX);
                }
            }
            6 => {
                if op & 8 == 0 {
                    w.s.domain_shutdown(dom);
                } else {
                    w.s.domain_gone(dom, &mut w.host);
                    w.gone(dom);
                }
            }
            _ => {
                for d in w.s.held().collect::<Vec<_>>() {
                    w.s.receive(d, &[], &mut w.host);
                }
            }
        }
        w.check();
        w.check_full(&before, acting);
    }
    // Every domain goes: only dom0 owns anything then, and nothing drifted.
    let owners: Vec<DomId> = w.s.usage().map(|(d, _)| d).chain(w.s.domains()).filter(|&d| d != 0).collect();
    for d in owners {
        w.s.domain_gone(d, &mut w.host);
    }
    assert!(w.host.mapped.is_empty());
    assert!(w.s.usage().all(|(d, _)| d == 0), "usage left for a gone domain");
    w.s.audit().unwrap();
    w.read(0, usize::MAX);
});
