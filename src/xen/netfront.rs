//! The PV network frontend: a vif the toolstack gave this domain
//! (`vif = [...]` in xl), as a [`NetDevice`].
//!
//! Set-up follows xenbus ([`xenbus`]) and public/io/netif.h: the MAC from
//! our own `mac` key, one TX and one RX ring page, an event channel for
//! each ring when the backend offers `feature-split-event-channels` (as
//! Linux's netfront does; one for both otherwise; docs/network.md says
//! why), `request-rx-copy` (the backend copies each packet into a page we
//! posted) and `feature-rx-notify`. No scatter-gather and no GSO: one
//! packet, one page, at most [`MAX_FRAME`] bytes.
//!
//! Checksums are validated here, by the flags, as Linux's netfront does:
//! a packet the backend marks `data_validated` (checked on its way in) or
//! `csum_blank` (made in the backend's domain, never on a wire) goes up as
//! it is; any other TCP/UDP packet has its checksum checked here and is
//! dropped when wrong. The stack above then never checks TCP/UDP checksums
//! again ([`NetDevice::rx_checksums_checked`]) and never drops a packet
//! for a blank one. What we send carries full checksums (smoltcp computes
//! them) and says so (`NETTXF_data_validated`), so the backend's domain
//! need not check them either.
//!
//! Buffers are granted once, at connect, and reused: [`RX_BUFFERS`] pages
//! posted to the RX ring, [`TX_BUFFERS`] half pages for frames to send.
//! The hot path takes and gives back ids in fixed pools (`netif::Pool`)
//! and never allocates.
//!
//! The backend is not trusted ([`netif`]): a bad response costs its
//! packet and is counted ([`Stats`]); a corrupt ring index ends the device
//! ([`NetFront::broken`]) — nothing ever reads outside a buffer or waits
//! without a bound.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::dev::net::{NetDevice, RxToken, TxToken, MAX_FRAME};
use crate::xen::evtchn::{self, EvtchnError};
use crate::xen::gnttab::{self, GrantError};
use crate::xen::netif::{self, FrontRing, NetifError, Pool, NETTXF_DATA_VALIDATED, RX_ENTRY, TX_ENTRY};
use crate::xen::page::{alloc_pages, free_pages, SharedPage};
use crate::xen::store::Store;
use crate::xen::xenbus::{Device, State, Step, XenbusError};

/// Pages posted for received packets.
pub const RX_BUFFERS: usize = 64;
/// Frames in flight to the backend, two to a page.
pub const TX_BUFFERS: usize = 64;
const TX_BUF: usize = 2048;
/// How many bad responses are logged one by one (all are counted).
const LOGGED_ERRORS: u64 = 8;

#[derive(Debug)]
pub enum NetfrontError {
    Xenbus(XenbusError),
    Grant(GrantError),
    Evtchn(EvtchnError),
    NoMemory,
    /// The backend cannot copy into our pages (`feature-rx-copy`).
    NoRxCopy,
    /// Our `mac` key is missing or not six hex bytes.
    BadMac(Option<String>),
}

impl fmt::Display for NetfrontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetfrontError::Xenbus(e) => e.fmt(f),
            NetfrontError::Grant(e) => e.fmt(f),
            NetfrontError::Evtchn(e) => e.fmt(f),
            NetfrontError::NoMemory => f.write_str("no memory for the rings and buffers"),
            NetfrontError::NoRxCopy => f.write_str("the backend does not offer feature-rx-copy"),
            NetfrontError::BadMac(m) => write!(f, "mac key {m:?} is not a MAC address"),
        }
    }
}

impl From<XenbusError> for NetfrontError {
    fn from(e: XenbusError) -> Self {
        NetfrontError::Xenbus(e)
    }
}
impl From<GrantError> for NetfrontError {
    fn from(e: GrantError) -> Self {
        NetfrontError::Grant(e)
    }
}
impl From<EvtchnError> for NetfrontError {
    fn from(e: EvtchnError) -> Self {
        NetfrontError::Evtchn(e)
    }
}

/// `aa:bb:cc:dd:ee:ff`
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Counters, for the app's status and the tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// TCP/UDP packets neither validated nor blank, checked here.
    pub rx_csum_checked: u64,
    /// Packets dropped: a bad response, a failed status, a wrong checksum.
    pub rx_dropped: u64,
    pub tx_errors: u64,
    /// Responses that broke the protocol (ids, offsets, flags).
    pub bad_responses: u64,
}

struct Rx {
    ring: FrontRing,
    mem: SharedPage,
    pool: Pool<RX_BUFFERS>,
    base: u64,
    grefs: Vec<u32>,
}

struct Tx {
    ring: FrontRing,
    mem: SharedPage,
    pool: Pool<TX_BUFFERS>,
    base: u64,
    grefs: Vec<u32>,
}

/// What both halves share: the ports, the counters, the first fatal error.
struct Shared {
    name: String,
    /// The TX ring's event channel.
    port: u32,
    /// The RX ring's: `port` again without split event channels.
    rx_port: u32,
    stats: Stats,
    broken: Option<NetifError>,
}

impl Shared {
    fn bad(&mut self, e: NetifError) {
        if e.is_fatal() {
            if self.broken.is_none() {
                log::warn!("netfront: {}: {e}; the device is stopped", self.name);
                self.broken = Some(e);
            }
            return;
        }
        if !matches!(e, NetifError::Status { .. }) {
            self.stats.bad_responses += 1;
        }
        let n = self.stats.bad_responses + self.stats.tx_errors + self.stats.rx_dropped;
        if n <= LOGGED_ERRORS {
            log::warn!("netfront: {}: {e}; packet dropped", self.name);
        }
    }
}

pub struct NetFront {
    dev: Device,
    mac: [u8; 6],
    rx: Rx,
    tx: Tx,
    sh: Shared,
    rx_ring_base: u64,
    tx_ring_base: u64,
    rx_ring_gref: u32,
    tx_ring_gref: u32,
    /// The backend's `ip` key (xl's `vif = ['ip=…']`), if any.
    pub ip: Option<String>,
}

impl NetFront {
    /// Connect to `dev` (a `vif` from [`crate::xen::xenbus::devices`]).
    pub fn open(xs: &mut Store, dev: Device) -> Result<NetFront, NetfrontError> {
        gnttab::init()?;
        let mac_key = xs.read(&format!("{}/mac", dev.frontend)).map_err(|_| NetfrontError::BadMac(None))?;
        let mac = parse_mac(&mac_key).ok_or(NetfrontError::BadMac(Some(mac_key)))?;
        let tx_ring_base = alloc_pages(1).ok_or(NetfrontError::NoMemory)?;
        let rx_ring_base = alloc_pages(1).ok_or(NetfrontError::NoMemory)?;
        // SAFETY: fresh heap pages, identity-mapped, used only as these rings.
        let (tx_mem, rx_mem) = unsafe { (SharedPage::new(tx_ring_base), SharedPage::new(rx_ring_base)) };
        let rx_base = alloc_pages(RX_BUFFERS).ok_or(NetfrontError::NoMemory)?;
        let tx_base = alloc_pages(TX_BUFFERS * TX_BUF / 4096).ok_or(NetfrontError::NoMemory)?;
        let mut nf = NetFront {
            sh: Shared { name: format!("vif/{}", dev.id), port: 0, rx_port: 0, stats: Stats::default(), broken: None },
            dev,
            mac,
            rx: Rx { ring: FrontRing::init(&rx_mem, "rx", RX_ENTRY), mem: rx_mem, pool: Pool::default(), base: rx_base, grefs: Vec::new() },
            tx: Tx { ring: FrontRing::init(&tx_mem, "tx", TX_ENTRY), mem: tx_mem, pool: Pool::default(), base: tx_base, grefs: Vec::new() },
            rx_ring_base,
            tx_ring_base,
            rx_ring_gref: 0,
            tx_ring_gref: 0,
            ip: None,
        };
        nf.connect(xs)?;
        Ok(nf)
    }

    /// Wait for the backend's features, grant the rings and the buffers,
    /// bind an event channel, take the vif to `Connected` and, once the
    /// backend is too, post every RX buffer.
    fn connect(&mut self, xs: &mut Store) -> Result<(), NetfrontError> {
        let be = self.dev.backend_id;
        const FEATURES: [&str; 3] = ["feature-rx-copy", "feature-split-event-channels", "ip"];
        let seen = self.dev.step(xs, Step::new().follow().reads(&FEATURES))?;
        let seen = self.dev.wait_backend(xs, seen, "InitWait", |s| s == State::InitWait, |s| s >= State::Closing, &FEATURES)?;
        if !seen.feature("feature-rx-copy")? {
            return Err(NetfrontError::NoRxCopy);
        }
        self.ip = seen.key("ip").map(String::from);

        self.tx_ring_gref = gnttab::grant(be, self.tx_ring_base >> 12, false)?;
        self.rx_ring_gref = gnttab::grant(be, self.rx_ring_base >> 12, false)?;
        self.tx.ring = FrontRing::init(&self.tx.mem, "tx", TX_ENTRY);
        self.rx.ring = FrontRing::init(&self.rx.mem, "rx", RX_ENTRY);
        self.rx.pool = Pool::default();
        self.tx.pool = Pool::default();
        self.rx.grefs.clear();
        for i in 0..RX_BUFFERS {
            self.rx.grefs.push(gnttab::grant(be, (self.rx.base >> 12) + i as u64, false)?);
        }
        self.tx.grefs.clear();
        for i in 0..TX_BUFFERS * TX_BUF / 4096 {
            // The backend only reads what we send.
            self.tx.grefs.push(gnttab::grant(be, (self.tx.base >> 12) + i as u64, true)?);
        }
        self.sh.port = evtchn::alloc_unbound(be)?;
        let split = seen.feature("feature-split-event-channels")?;
        self.sh.rx_port = if split { evtchn::alloc_unbound(be)? } else { self.sh.port };
        let step = Step::new().write("tx-ring-ref", self.tx_ring_gref).write("rx-ring-ref", self.rx_ring_gref);
        let step = if split {
            step.write("event-channel-tx", self.sh.port).write("event-channel-rx", self.sh.rx_port)
        } else {
            step.write("event-channel", self.sh.port)
        };
        let step = step
            .write("request-rx-copy", 1)
            .write("feature-rx-notify", 1)
            .write("feature-sg", 0)
            .write("feature-gso-tcpv4", 0)
            .state(State::Connected);
        let seen = self.dev.step(xs, step)?;
        self.dev.wait_backend(xs, seen, "Connected", |s| s == State::Connected, |s| s >= State::Closing, &[])?;
        self.dev.step(xs, Step::new().unfollow())?;
        // The RX buffers only now that the backend is connected: Linux's
        // netback starts its RX thread before it stores the channel's
        // irq, and that thread ends the late EOI of an event that found
        // RX work (posted buffers) on whatever irq is stored by then. With
        // an empty ring, the event Xen raises when netback binds finds no
        // work and is ended at once, on its own irq. (On its own this did
        // not stop the masked-channel failures docs/network.md tells of;
        // split channels did.)
        self.refill();
        Ok(())
    }

    /// The domain was resumed in a new domain (`xl restore`, the end of a
    /// migration): the backend is a new one, the grant table and the
    /// event channel are gone. Connect to the new backend with fresh
    /// rings; the frames that were in flight either way are lost, as on a
    /// wire (TCP sends its own again). The MAC stays what it was.
    pub fn reconnect(&mut self, xs: &mut Store) -> Result<(), NetfrontError> {
        // The new table holds none of the old grants: free the references.
        let old = [self.tx_ring_gref, self.rx_ring_gref];
        for g in old.into_iter().chain(self.rx.grefs.drain(..)).chain(self.tx.grefs.drain(..)) {
            let _ = gnttab::revoke(g);
        }
        self.dev = self.dev.again(xs)?;
        self.sh.broken = None;
        self.connect(xs)
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    /// The event channels (TX, RX; the same one twice without split
    /// channels): wait on both with `events::wait`.
    pub fn ports(&self) -> [u32; 2] {
        [self.sh.port, self.sh.rx_port]
    }
    pub fn device(&self) -> &Device {
        &self.dev
    }
    pub fn stats(&self) -> Stats {
        self.sh.stats
    }
    /// The error that stopped the device (a corrupt ring index), if any.
    pub fn broken(&self) -> Option<&NetifError> {
        self.sh.broken.as_ref()
    }

    /// Post every free RX buffer.
    fn refill(&mut self) {
        let rx = &mut self.rx;
        let mut posted = false;
        while let Some(id) = rx.pool.take() {
            if !rx.ring.push(&rx.mem, &netif::encode_rx_request(id, rx.grefs[id as usize])) {
                rx.pool.put_back(id);
                break;
            }
            posted = true;
        }
        if posted && rx.ring.publish(&rx.mem) {
            let _ = evtchn::notify(self.sh.rx_port);
        }
    }

    /// Take back every TX buffer the backend is done with.
    fn reap_tx(&mut self) {
        let mut e = [0u8; TX_ENTRY];
        while self.sh.broken.is_none() {
            match self.tx.ring.next_response(&self.tx.mem, &mut e, true) {
                Ok(false) => break,
                Ok(true) => {
                    let r = netif::decode_tx_response(&e);
                    if let Err(err) = netif::complete_tx(&mut self.tx.pool, &r) {
                        if matches!(err, NetifError::Status { .. }) {
                            self.sh.stats.tx_errors += 1;
                        }
                        self.sh.bad(err);
                    }
                }
                Err(err) => self.sh.bad(err),
            }
        }
    }

    /// The next good RX packet: `(id, offset, len)` in its page. Bad ones
    /// are dropped (their buffers posted again) on the way.
    fn next_packet(&mut self) -> Option<(u16, usize, usize)> {
        let mut e = [0u8; RX_ENTRY];
        while self.sh.broken.is_none() {
            match self.rx.ring.next_response(&self.rx.mem, &mut e, true) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(err) => {
                    self.sh.bad(err);
                    return None;
                }
            }
            let r = netif::decode_rx_response(&e);
            match netif::complete_rx(&mut self.rx.pool, &r) {
                Ok(p) => {
                    if !(p.csum_blank || p.validated) {
                        // SAFETY: a whole page of ours; the packet lies
                        // inside it (checked by complete_rx).
                        let page = unsafe { self.rx.page(p.id) };
                        match netif::checksum_ok(&page[p.offset..p.offset + p.len]) {
                            Some(false) => {
                                self.sh.stats.rx_dropped += 1;
                                self.refill();
                                continue;
                            }
                            Some(true) => self.sh.stats.rx_csum_checked += 1,
                            None => {}
                        }
                    }
                    if p.len > MAX_FRAME {
                        self.sh.stats.rx_dropped += 1;
                        self.refill();
                        continue;
                    }
                    // Take the id back out: it is lent to the token and
                    // posted again when the token is done.
                    // (The pool is a stack: the id just retired is the
                    // one taken.)
                    let id = self.rx.pool.take().filter(|&id| id == p.id)?;
                    return Some((id, p.offset, p.len));
                }
                Err((id, err)) => {
                    self.sh.stats.rx_dropped += 1;
                    self.sh.bad(err);
                    if id.is_some() {
                        self.refill();
                    }
                }
            }
        }
        None
    }

    /// Hand the vif back: close the connection, take back every grant,
    /// close the event channel. A grant the backend still maps (it should
    /// not, once Closed) is left, and its page with it.
    pub fn close(self, xs: &mut Store) -> Result<(), NetfrontError> {
        self.dev.close(xs)?;
        // The domain is going: no reset for a next frontend, only the watch.
        let _ = self.dev.step(xs, Step::new().unfollow());
        let mut leaked = false;
        let mut revoke = |g: u32| {
            if gnttab::revoke(g).is_err() {
                leaked = true;
            }
        };
        revoke(self.tx_ring_gref);
        revoke(self.rx_ring_gref);
        self.rx.grefs.iter().chain(self.tx.grefs.iter()).for_each(|&g| revoke(g));
        let _ = evtchn::close(self.sh.port);
        if self.sh.rx_port != self.sh.port {
            let _ = evtchn::close(self.sh.rx_port);
        }
        if !leaked {
            // SAFETY: every grant on these pages is revoked and the backend
            // is disconnected; they are ours again.
            unsafe {
                free_pages(self.tx_ring_base, 1);
                free_pages(self.rx_ring_base, 1);
                free_pages(self.rx.base, RX_BUFFERS);
                free_pages(self.tx.base, TX_BUFFERS * TX_BUF / 4096);
            }
        }
        Ok(())
    }
}

impl Rx {
    /// # Safety
    /// `id` < RX_BUFFERS; the page is shared with the backend, which may
    /// write it at any time (that changes bytes, never bounds).
    #[allow(clippy::mut_from_ref)]
    unsafe fn page(&self, id: u16) -> &mut [u8] {
        assert!((id as usize) < RX_BUFFERS);
        // SAFETY: inside the RX buffer pages, as the caller promises.
        unsafe { core::slice::from_raw_parts_mut((self.base + id as u64 * 4096) as *mut u8, 4096) }
    }
}

/// A received packet, lent to the stack; its page is posted again after.
pub struct NetRx<'a> {
    rx: &'a mut Rx,
    port: u32,
    id: u16,
    offset: usize,
    len: usize,
}

impl RxToken for NetRx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        // SAFETY: the id came from the pool; offset + len ≤ 4096.
        let page = unsafe { self.rx.page(self.id) };
        let r = f(&mut page[self.offset..self.offset + self.len]);
        let rx = self.rx;
        if rx.ring.push(&rx.mem, &netif::encode_rx_request(self.id, rx.grefs[self.id as usize])) {
            if rx.ring.publish(&rx.mem) {
                let _ = evtchn::notify(self.port);
            }
        } else {
            rx.pool.put_back(self.id);
        }
        r
    }
}

/// Room for one frame in a TX buffer.
pub struct NetTx<'a> {
    tx: &'a mut Tx,
    sh: &'a mut Shared,
}

impl TxToken for NetTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(TX_BUF);
        let tx = self.tx;
        let id = tx.pool.take().expect("a TxToken is handed out only with a free buffer");
        let at = tx.base + id as u64 * TX_BUF as u64;
        // SAFETY: buffer `id` of the TX pages: ours until the backend
        // answers the request we are about to post.
        let buf = unsafe { core::slice::from_raw_parts_mut(at as *mut u8, len) };
        let r = f(buf);
        let (page, offset) = (id as usize * TX_BUF / 4096, id as usize * TX_BUF % 4096);
        // smoltcp computed every checksum: the backend's domain need not
        // check them.
        let req = netif::encode_tx_request(tx.grefs[page], offset as u16, NETTXF_DATA_VALIDATED, id, len as u16);
        if tx.ring.push(&tx.mem, &req) {
            self.sh.stats.tx_packets += 1;
            self.sh.stats.tx_bytes += len as u64;
            if tx.ring.publish(&tx.mem) {
                let _ = evtchn::notify(self.sh.port);
            }
        } else {
            tx.pool.put_back(id);
            self.sh.stats.tx_errors += 1;
        }
        r
    }
}

impl NetDevice for NetFront {
    type Rx<'a> = NetRx<'a>;
    type Tx<'a> = NetTx<'a>;

    fn receive(&mut self) -> Option<(NetRx<'_>, NetTx<'_>)> {
        self.reap_tx();
        if self.tx.pool.free_count() == 0 {
            return None;
        }
        let (id, offset, len) = self.next_packet()?;
        self.sh.stats.rx_packets += 1;
        self.sh.stats.rx_bytes += len as u64;
        let port = self.sh.rx_port;
        Some((NetRx { rx: &mut self.rx, port, id, offset, len }, NetTx { tx: &mut self.tx, sh: &mut self.sh }))
    }

    fn transmit(&mut self) -> Option<NetTx<'_>> {
        if self.sh.broken.is_some() {
            return None;
        }
        if self.tx.pool.free_count() == 0 {
            self.reap_tx();
        }
        if self.tx.pool.free_count() == 0 {
            return None;
        }
        Some(NetTx { tx: &mut self.tx, sh: &mut self.sh })
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn rx_checksums_checked(&self) -> bool {
        true
    }
}
