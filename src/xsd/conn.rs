//! A connection: the bytes a domain sent that are not a whole message
//! yet, the messages queued for its response ring, its watches and open
//! transactions. Memory is bounded both ways: input by one maximal
//! message, output by [`Config::output`](super::Config) plus one reply,
//! because a connection whose queue is full has its requests wait (they
//! stay in its ring) and its watch events dropped.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::perms::Caller;
use super::txn::Txn;
use super::watch::Watch;
use super::wire::{Header, HEADER, PAYLOAD_MAX};
use super::{Config, DomId};

/// Bytes of input held at most: one maximal message.
pub const INPUT_MAX: usize = HEADER + PAYLOAD_MAX;

/// A message queued for the ring.
struct Out {
    bytes: Vec<u8>,
    reply: bool,
}

/// What the input holds next.
pub enum Next {
    /// Not a whole message yet.
    Partial,
    /// A whole message, taken from the input.
    Message(Header, Vec<u8>),
    /// A header announcing more than `PAYLOAD_MAX` bytes.
    TooLong(Header),
}

/// One domain's connection.
pub struct Conn {
    pub dom: DomId,
    /// SET_TARGET's target: this domain acts for it too.
    pub target: Option<DomId>,
    input: Vec<u8>,
    /// Payload bytes still to be thrown away (dom0's oversized message).
    skip: usize,
    out: VecDeque<Out>,
    /// Bytes of the head message already written.
    head: usize,
    out_bytes: usize,
    replies: usize,
    pub watches: Vec<Watch>,
    pub txns: BTreeMap<u32, Txn>,
    last_tx: u32,
    /// @releaseDomain was fired for its shutdown (until RESUME).
    pub shutdown_fired: bool,
}

impl Conn {
    pub fn new(dom: DomId) -> Conn {
        Conn {
            dom,
            target: None,
            input: Vec::new(),
            skip: 0,
            out: VecDeque::new(),
            head: 0,
            out_bytes: 0,
            replies: 0,
            watches: Vec::new(),
            txns: BTreeMap::new(),
            last_tx: 0,
            shutdown_fired: false,
        }
    }

    pub fn caller(&self) -> Caller {
        Caller { dom: self.dom, target: self.target }
    }

    /// Request bytes it may still send.
    pub fn room(&self) -> usize {
        INPUT_MAX.saturating_sub(self.input.len())
    }

    /// Take in bytes from its ring.
    pub fn take_in(&mut self, mut bytes: &[u8]) {
        let skipped = self.skip.min(bytes.len());
        self.skip -= skipped;
        bytes = &bytes[skipped..];
        self.input.extend_from_slice(bytes);
    }

    /// Throw away the next `n` payload bytes (the body of a message
    /// refused without reading it).
    pub fn skip(&mut self, n: usize) {
        let now = n.min(self.input.len());
        self.input.drain(..now);
        self.skip = n - now;
    }

    /// Input holds a whole message (perhaps waiting for room to reply).
    pub fn has_message(&self) -> bool {
        self.input.len() >= HEADER && {
            let len = Header::parse(&self.input).len as usize;
            len > PAYLOAD_MAX || self.input.len() >= HEADER + len
        }
    }

    /// The next message, if whole.
    pub fn take_message(&mut self) -> Next {
        if !self.has_message() {
            return Next::Partial;
        }
        let h = Header::parse(&self.input);
        if h.len as usize > PAYLOAD_MAX {
            self.input.drain(..HEADER);
            return Next::TooLong(h);
        }
        let body = self.input[HEADER..HEADER + h.len as usize].to_vec();
        self.input.drain(..HEADER + h.len as usize);
        Next::Message(h, body)
    }

    /// Its queue is full: further requests wait until it reads.
    pub fn stalled(&self, cfg: &Config) -> bool {
        self.replies >= cfg.outstanding || self.out_bytes >= cfg.output
    }

    /// Queue a reply (always: the stall check before reading the request
    /// bounds them).
    pub fn push_reply(&mut self, m: Vec<u8>) {
        self.replies += 1;
        self.push(Out { bytes: m, reply: true });
    }

    /// Queue a watch event unless the queue is full; false when dropped.
    pub fn push_event(&mut self, m: Vec<u8>, cfg: &Config) -> bool {
        if self.out_bytes >= cfg.output {
            return false;
        }
        self.push(Out { bytes: m, reply: false });
        true
    }

    fn push(&mut self, o: Out) {
        self.out_bytes += o.bytes.len();
        self.out.push_back(o);
    }

    /// What is waiting for the ring, head first (the rest of the head
    /// message).
    pub fn output(&self) -> &[u8] {
        self.out.front().map_or(&[], |o| &o.bytes[self.head..])
    }

    /// `n` bytes of [`Conn::output`] were written.
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.output().len());
        self.head += n;
        self.out_bytes -= n;
        if self.out.front().is_some_and(|o| self.head == o.bytes.len()) {
            let o = self.out.pop_front().expect("front exists");
            self.replies -= o.reply as usize;
            self.head = 0;
        }
    }

    /// Bytes queued for the ring.
    pub fn queued(&self) -> usize {
        self.out_bytes
    }

    /// An id for a new transaction: never 0, never one in use.
    pub fn new_tx_id(&mut self) -> u32 {
        loop {
            self.last_tx = self.last_tx.wrapping_add(1);
            if self.last_tx != 0 && !self.txns.contains_key(&self.last_tx) {
                return self.last_tx;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsd::wire::message;

    #[test]
    fn messages_are_framed_across_any_split() {
        let mut c = Conn::new(1);
        let m = message(2, 9, 0, b"/a\0");
        for b in &m[..m.len() - 1] {
            c.take_in(core::slice::from_ref(b));
            assert!(matches!(c.take_message(), Next::Partial));
        }
        c.take_in(&m[m.len() - 1..]);
        assert!(matches!(c.take_message(), Next::Message(h, body) if h.req_id == 9 && body == b"/a\0"));
        assert_eq!(c.room(), INPUT_MAX);
    }

    #[test]
    fn an_oversized_header_is_reported_and_its_body_can_be_skipped() {
        let mut c = Conn::new(0);
        let mut m = message(2, 1, 0, b"");
        m[12..16].copy_from_slice(&4097u32.to_le_bytes());
        c.take_in(&m);
        assert!(matches!(c.take_message(), Next::TooLong(h) if h.len == 4097));
        c.skip(4097);
        c.take_in(&[0; 4000]);
        c.take_in(&[0; 97]);
        c.take_in(&message(2, 2, 0, b"x\0"));
        assert!(matches!(c.take_message(), Next::Message(h, _) if h.req_id == 2));
    }

    #[test]
    fn output_is_written_in_pieces_and_the_queue_bounds_events() {
        let cfg = Config { output: 40, outstanding: 2, ..Config::default() };
        let mut c = Conn::new(1);
        c.push_reply(message(2, 1, 0, b"0123456789"));
        assert!(c.push_event(message(15, 0, 0, b"a\0b\0"), &cfg));
        assert!(!c.push_event(message(15, 0, 0, b"a\0b\0"), &cfg));
        assert!(c.stalled(&cfg));
        c.advance(5);
        assert_eq!(c.output().len(), 21);
        c.advance(21);
        assert_eq!((c.output().len(), c.queued()), (20, 20));
        assert!(!c.stalled(&cfg));
        c.advance(100);
        assert_eq!(c.queued(), 0);
    }

    #[test]
    fn tx_ids_skip_zero_and_ids_in_use() {
        let mut c = Conn::new(1);
        c.last_tx = u32::MAX - 1;
        let a = c.new_tx_id();
        c.txns.insert(a, Txn::default());
        c.txns.insert(1, Txn::default());
        assert_eq!((a, c.new_tx_id()), (u32::MAX, 2));
    }
}
