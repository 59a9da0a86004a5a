//! Network devices: the one trait every Ethernet device implements (the
//! Xen netfront, [`Loopback`] in tests), in the shape smoltcp's `Device`
//! and embassy-net's `Driver` have: a device hands out tokens, and a token
//! lends its frame buffer to a closure. Nothing is allocated on the way:
//! a received frame is read where the device put it, and a frame to send
//! is written straight into the device's own buffer.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

/// The largest Ethernet frame without scatter-gather: 1500 bytes of
/// payload and the 14-byte header (no FCS, no VLAN tag).
pub const MAX_FRAME: usize = 1514;

/// A received frame, lent until `consume` returns; the device takes its
/// buffer back afterwards.
pub trait RxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R;
}

/// Room for one frame to send: `consume(len, f)` lends `len` bytes for `f`
/// to fill, then sends them.
pub trait TxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R;
}

/// An Ethernet device.
pub trait NetDevice {
    type Rx<'a>: RxToken
    where
        Self: 'a;
    type Tx<'a>: TxToken
    where
        Self: 'a;
    /// The next received frame, with room to answer it (a TCP ACK), or
    /// `None` when nothing was received or there is no room to send.
    fn receive(&mut self) -> Option<(Self::Rx<'_>, Self::Tx<'_>)>;
    /// Room for one frame to send, if there is any.
    fn transmit(&mut self) -> Option<Self::Tx<'_>>;
    /// The hardware address.
    fn mac(&self) -> [u8; 6];
    /// The largest frame, header included.
    fn max_frame(&self) -> usize {
        MAX_FRAME
    }
    /// Whether every TCP and UDP frame handed up has a checksum already
    /// known to be right (checked by the device, or vouched for by the
    /// path it came on), so the stack need not check it again.
    fn rx_checksums_checked(&self) -> bool {
        false
    }
}

/// Two ends of a wire in memory, for host tests: what one end sends, the
/// other receives. Frames are copied (this is a test device).
pub struct Loopback {
    mac: [u8; 6],
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    /// At most this many frames wait in `rx`.
    pub capacity: usize,
}

impl Loopback {
    pub fn new(mac: [u8; 6]) -> Self {
        Loopback { mac, rx: VecDeque::new(), tx: Vec::new(), capacity: 256 }
    }
    /// Frames this end sent since the last call.
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.tx)
    }
    /// Deliver a frame to this end (dropped when the queue is full).
    pub fn deliver(&mut self, frame: Vec<u8>) {
        if self.rx.len() < self.capacity {
            self.rx.push_back(frame);
        }
    }
    /// Move every sent frame of `a` to `b` and back; the number moved.
    pub fn exchange(a: &mut Loopback, b: &mut Loopback) -> usize {
        let (fa, fb) = (a.take_sent(), b.take_sent());
        let n = fa.len() + fb.len();
        fa.into_iter().for_each(|f| b.deliver(f));
        fb.into_iter().for_each(|f| a.deliver(f));
        n
    }
}

pub struct LoopRx(Vec<u8>);
pub struct LoopTx<'a>(&'a mut Vec<Vec<u8>>);

impl RxToken for LoopRx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        f(&mut self.0)
    }
}

impl TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0u8; len];
        let r = f(&mut b);
        self.0.push(b);
        r
    }
}

impl NetDevice for Loopback {
    type Rx<'a> = LoopRx;
    type Tx<'a> = LoopTx<'a>;
    fn receive(&mut self) -> Option<(LoopRx, LoopTx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((LoopRx(f), LoopTx(&mut self.tx)))
    }
    fn transmit(&mut self) -> Option<LoopTx<'_>> {
        Some(LoopTx(&mut self.tx))
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
}
