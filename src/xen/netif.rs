//! The network-device ring protocol (public/io/netif.h, public/io/ring.h),
//! as pure logic: the TX and RX rings' indexes, requests as bytes, and the
//! checks every response passes. `netfront` puts it on granted pages.
//!
//! The backend is not trusted. Its producer index is read once per
//! response and must stay within what we posted; every response must name
//! a buffer that is posted and outstanding; an RX response's `offset +
//! size` must lie inside its page, its status must be a length or a known
//! error, and it must not carry flags we never negotiated (`more_data`,
//! `extra_info`: netfront asks for neither scatter-gather nor GSO). A bad
//! response costs the packet and is counted — and the buffer is reused
//! whenever its id is one we posted — never a read outside a page or the
//! release of a buffer the backend may still write.

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use crate::xen::ring::RingMem;

/// `NETTXF_*`: flags of a TX request.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_*`: flags of an RX response.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETIF_RSP_*`
pub const RSP_DROPPED: i16 = -2;
pub const RSP_ERROR: i16 = -1;
pub const RSP_OKAY: i16 = 0;
pub const RSP_NULL: i16 = 1;

pub const PAGE: usize = 4096;

/// Offsets in a shared ring page (`__RING_HEADER`): four indexes, then
/// padding to 64 bytes, then the entries.
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
const ENTRIES: usize = 64;

/// `union netif_tx_sring_entry`: a request (`struct netif_tx_request`, 12
/// bytes), a response (4) or an extra-info slot (12).
pub const TX_ENTRY: usize = 12;
/// `union netif_rx_sring_entry`: a request (8) or a response (8).
pub const RX_ENTRY: usize = 8;

/// Entries in one ring page for entries of `entry` bytes, rounded down to
/// a power of two (`__RING_SIZE`): 256 for both rings.
pub const fn ring_entries(entry: usize) -> u32 {
    let n = (PAGE - ENTRIES) / entry;
    1 << (usize::BITS - 1 - n.leading_zeros())
}
pub const TX_RING_SIZE: u32 = ring_entries(TX_ENTRY);
pub const RX_RING_SIZE: u32 = ring_entries(RX_ENTRY);

/// `struct netif_tx_request`: gref, offset, flags, id, size.
pub fn encode_tx_request(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> [u8; TX_ENTRY] {
    let mut b = [0u8; TX_ENTRY];
    b[0..4].copy_from_slice(&gref.to_le_bytes());
    b[4..6].copy_from_slice(&offset.to_le_bytes());
    b[6..8].copy_from_slice(&flags.to_le_bytes());
    b[8..10].copy_from_slice(&id.to_le_bytes());
    b[10..12].copy_from_slice(&size.to_le_bytes());
    b
}

/// `struct netif_rx_request`: id, pad, gref.
pub fn encode_rx_request(id: u16, gref: u32) -> [u8; RX_ENTRY] {
    let mut b = [0u8; RX_ENTRY];
    b[0..2].copy_from_slice(&id.to_le_bytes());
    b[4..8].copy_from_slice(&gref.to_le_bytes());
    b
}

/// `struct netif_tx_response`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxResponse {
    pub id: u16,
    pub status: i16,
}

pub fn decode_tx_response(b: &[u8; TX_ENTRY]) -> TxResponse {
    TxResponse { id: u16::from_le_bytes([b[0], b[1]]), status: i16::from_le_bytes([b[2], b[3]]) }
}

/// `struct netif_rx_response`: `status` > 0 is the packet's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxResponse {
    pub id: u16,
    pub offset: u16,
    pub flags: u16,
    pub status: i16,
}

pub fn decode_rx_response(b: &[u8; RX_ENTRY]) -> RxResponse {
    RxResponse {
        id: u16::from_le_bytes([b[0], b[1]]),
        offset: u16::from_le_bytes([b[2], b[3]]),
        flags: u16::from_le_bytes([b[4], b[5]]),
        status: i16::from_le_bytes([b[6], b[7]]),
    }
}

/// What a backend can get wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetifError {
    /// `rsp_prod` ran ahead of the requests we posted, or behind ours.
    RingIndexes { ring: &'static str, rsp_prod: u32, rsp_cons: u32 },
    /// A response naming a buffer id we never posted, or one already
    /// answered.
    UnknownId { ring: &'static str, id: u16 },
    /// The backend failed or dropped a request (`NETIF_RSP_*`).
    Status { ring: &'static str, id: u16, status: i16 },
    /// An RX packet reaching outside its page.
    OutOfPage { id: u16, offset: u16, size: u16 },
    /// An RX response with flags we never negotiated (a fragment chain or
    /// extra info).
    Flags { id: u16, flags: u16 },
}

impl NetifError {
    /// Whether the error ends the device: a corrupt index means nothing
    /// more on that ring can be trusted; the others cost one packet.
    pub fn is_fatal(&self) -> bool {
        matches!(self, NetifError::RingIndexes { .. })
    }
}

impl fmt::Display for NetifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NetifError::RingIndexes { ring, rsp_prod, rsp_cons } => {
                write!(f, "backend's {ring} response index {rsp_prod:#x} is not within what was posted ahead of ours ({rsp_cons:#x})")
            }
            NetifError::UnknownId { ring, id } => write!(f, "backend answered {ring} buffer {id}, which is not outstanding"),
            NetifError::Status { ring, id, status } => {
                let what = match status {
                    RSP_DROPPED => "dropped",
                    RSP_ERROR => "error",
                    RSP_NULL => "null (an extra-info slot we never sent)",
                    _ => "unknown status",
                };
                write!(f, "backend failed {ring} buffer {id}: {what} ({status})")
            }
            NetifError::OutOfPage { id, offset, size } => {
                write!(f, "backend put {size} bytes at offset {offset} of rx buffer {id}, outside its page")
            }
            NetifError::Flags { id, flags } => write!(f, "backend set flags {flags:#x} on rx buffer {id}, which were never negotiated"),
        }
    }
}

/// Our side of one ring (`struct netif_tx_front_ring` or `_rx_`): requests
/// produced, responses consumed. `entry` is the union's size.
pub struct FrontRing {
    name: &'static str,
    entry: usize,
    size: u32,
    req_prod_pvt: u32,
    rsp_cons: u32,
}

impl FrontRing {
    /// A fresh ring: zero the indexes and ask to be told of the first
    /// response.
    pub fn init(m: &impl RingMem, name: &'static str, entry: usize) -> FrontRing {
        let size = ring_entries(entry);
        for off in [REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT] {
            m.store32(off, 0);
        }
        m.store32(REQ_EVENT, 1);
        m.store32(RSP_EVENT, 1);
        FrontRing { name, entry, size, req_prod_pvt: 0, rsp_cons: 0 }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Requests posted and not yet answered.
    pub fn in_flight(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Queue a request (not yet visible). `false`: the ring is full.
    pub fn push(&mut self, m: &impl RingMem, req: &[u8]) -> bool {
        assert_eq!(req.len(), self.entry, "a request fills one entry");
        if self.in_flight() >= self.size {
            return false;
        }
        let slot = (self.req_prod_pvt & (self.size - 1)) as usize;
        m.write(ENTRIES + slot * self.entry, req);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        true
    }

    /// Make queued requests visible; `true` when the backend asked to be
    /// notified (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn publish(&mut self, m: &impl RingMem) -> bool {
        let old = m.load32(REQ_PROD);
        let new = self.req_prod_pvt;
        if old == new {
            return false;
        }
        fence(Ordering::Release);
        m.store32(REQ_PROD, new);
        fence(Ordering::SeqCst);
        let event = m.load32(REQ_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// Copy the next response into `out` (`out.len()` bytes of the entry),
    /// if the backend produced one. Checks the index, not the contents.
    /// With `arm`, an empty ring asks for an event at the next response
    /// (`RING_FINAL_CHECK_FOR_RESPONSES`).
    pub fn next_response(&mut self, m: &impl RingMem, out: &mut [u8], arm: bool) -> Result<bool, NetifError> {
        assert!(out.len() <= self.entry);
        let mut prod = m.load32(RSP_PROD);
        fence(Ordering::Acquire);
        if prod == self.rsp_cons && arm {
            m.store32(RSP_EVENT, self.rsp_cons.wrapping_add(1));
            fence(Ordering::SeqCst);
            prod = m.load32(RSP_PROD);
            fence(Ordering::Acquire);
        }
        let ahead = prod.wrapping_sub(self.rsp_cons);
        // The backend can answer only what we posted.
        if ahead > self.in_flight() {
            return Err(NetifError::RingIndexes { ring: self.name, rsp_prod: prod, rsp_cons: self.rsp_cons });
        }
        if ahead == 0 {
            return Ok(false);
        }
        let slot = (self.rsp_cons & (self.size - 1)) as usize;
        m.read(ENTRIES + slot * self.entry, out);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(true)
    }
}

/// A fixed pool of buffer ids `0..N`: which are free (a stack, so taking
/// and giving back never allocate) and which are out with the backend.
pub struct Pool<const N: usize> {
    free: [u16; N],
    nfree: usize,
    out: [bool; N],
}

impl<const N: usize> Default for Pool<N> {
    fn default() -> Self {
        assert!(N <= u16::MAX as usize);
        Pool { free: core::array::from_fn(|i| (N - 1 - i) as u16), nfree: N, out: [false; N] }
    }
}

impl<const N: usize> Pool<N> {
    /// Take a free id and mark it out with the backend.
    pub fn take(&mut self) -> Option<u16> {
        if self.nfree == 0 {
            return None;
        }
        self.nfree -= 1;
        let id = self.free[self.nfree];
        self.out[id as usize] = true;
        Some(id)
    }
    /// Give back an id that was taken but never handed to the backend.
    pub fn put_back(&mut self, id: u16) {
        assert!(self.out[id as usize], "buffer {id} is not taken");
        self.out[id as usize] = false;
        self.free[self.nfree] = id;
        self.nfree += 1;
    }
    /// The backend answered `id`: it must be out. Frees it.
    pub fn retire(&mut self, ring: &'static str, id: u16) -> Result<(), NetifError> {
        if !self.is_out(id) {
            return Err(NetifError::UnknownId { ring, id });
        }
        self.put_back(id);
        Ok(())
    }
    pub fn is_out(&self, id: u16) -> bool {
        (id as usize) < N && self.out[id as usize]
    }
    pub fn free_count(&self) -> usize {
        self.nfree
    }
    pub fn out_count(&self) -> usize {
        N - self.nfree
    }
}

/// Check a TX response and retire its id: `Ok(id)` when the packet went,
/// `Err(Status)` (id retired too) when the backend failed it,
/// `Err(UnknownId)` when it names nothing we sent.
pub fn complete_tx<const N: usize>(pool: &mut Pool<N>, r: &TxResponse) -> Result<u16, NetifError> {
    pool.retire("tx", r.id)?;
    if r.status != RSP_OKAY {
        return Err(NetifError::Status { ring: "tx", id: r.id, status: r.status });
    }
    Ok(r.id)
}

/// A good RX packet: buffer `id`, bytes `offset..offset + len` of its
/// page, and whether the backend vouches for its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxPacket {
    pub id: u16,
    pub offset: usize,
    pub len: usize,
    pub csum_blank: bool,
    pub validated: bool,
}

/// Check an RX response. The id must be posted (then it is retired
/// either way and the caller posts the buffer again); `Ok` only for a
/// packet that lies inside its page, with a length, and no flags we did
/// not negotiate. `Err((Some(id), e))`: a bad response for a buffer
/// that is ours again; `Err((None, e))`: an id we cannot trust.
pub fn complete_rx<const N: usize>(pool: &mut Pool<N>, r: &RxResponse) -> Result<RxPacket, (Option<u16>, NetifError)> {
    pool.retire("rx", r.id).map_err(|e| (None, e))?;
    let id = Some(r.id);
    if r.status <= 0 {
        let status = if r.status == 0 { RSP_ERROR } else { r.status };
        return Err((id, NetifError::Status { ring: "rx", id: r.id, status }));
    }
    let (offset, len) = (r.offset as usize, r.status as usize);
    if offset + len > PAGE {
        return Err((id, NetifError::OutOfPage { id: r.id, offset: r.offset, size: r.status as u16 }));
    }
    if r.flags & (NETRXF_MORE_DATA | NETRXF_EXTRA_INFO) != 0 {
        return Err((id, NetifError::Flags { id: r.id, flags: r.flags }));
    }
    Ok(RxPacket { id: r.id, offset, len, csum_blank: r.flags & NETRXF_CSUM_BLANK != 0, validated: r.flags & NETRXF_DATA_VALIDATED != 0 })
}

/// An IPv4 TCP or UDP frame's checksum: where its field is, the protocol,
/// and the one's-complement sum of the pseudo-header and the segment, with
/// the field counted as zero when `zero_field`. `None` when the frame is
/// not IPv4 TCP/UDP, is a later fragment, or is cut short.
fn transport_sum(frame: &[u8], zero_field: bool) -> Option<(usize, u8, u16)> {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH..];
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || ETH + total > frame.len() {
        return None;
    }
    // A fragment other than the first carries no transport header.
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
        return None;
    }
    let proto = ip[9];
    let field = match proto {
        6 => 16,
        17 => 6,
        _ => return None,
    };
    let seg_len = total - ihl;
    if seg_len < field + 2 {
        return None;
    }
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&ip[12..20]);
    add(&[0, proto]);
    add(&(seg_len as u16).to_be_bytes());
    let seg = &ip[ihl..total];
    add(&seg[..field]);
    if !zero_field {
        add(&seg[field..field + 2]);
    }
    add(&seg[field + 2..]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    Some((ETH + ihl + field, proto, sum as u16))
}

/// Fill in the TCP or UDP checksum of an IPv4 frame whose checksum field
/// the sender left blank (`NETRXF_csum_blank`: it holds only the
/// pseudo-header sum, or anything). `false` when the frame is not IPv4
/// TCP/UDP or is cut short.
pub fn fill_checksum(frame: &mut [u8]) -> bool {
    let Some((at, proto, sum)) = transport_sum(frame, true) else { return false };
    let mut c = !sum;
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Whether an IPv4 TCP or UDP frame's checksum is right (a UDP checksum
/// of 0 means none); `None` for anything else (smoltcp checks those).
pub fn checksum_ok(frame: &[u8]) -> Option<bool> {
    let (at, proto, sum) = transport_sum(frame, false)?;
    Some(sum == 0xffff || (proto == 17 && frame[at..at + 2] == [0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::ring::tests::Page;

    #[test]
    fn ring_sizes_and_layouts_match_the_c_headers() {
        assert_eq!(TX_RING_SIZE, 256);
        assert_eq!(RX_RING_SIZE, 256);
        let t = encode_tx_request(0x01020304, 0x0506, NETTXF_DATA_VALIDATED, 0x0708, 1514);
        assert_eq!(t, [4, 3, 2, 1, 6, 5, 2, 0, 8, 7, 0xea, 5]);
        assert_eq!(encode_rx_request(9, 0x11223344), [9, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]);
        let mut b = [0u8; TX_ENTRY];
        b[..4].copy_from_slice(&[3, 0, 0xfe, 0xff]);
        assert_eq!(decode_tx_response(&b), TxResponse { id: 3, status: -2 });
        assert_eq!(decode_rx_response(&[5, 0, 10, 0, 1, 0, 0xdc, 5]), RxResponse { id: 5, offset: 10, flags: 1, status: 1500 });
    }

    /// The backend's side of an RX ring, for tests: answer every posted
    /// request, `tamper` shaping each response from (id, slot).
    fn answer_rx(m: &Page, tamper: impl Fn(u16) -> RxResponse) {
        let prod = m.load32(REQ_PROD);
        let mut rsp = m.load32(RSP_PROD);
        while rsp != prod {
            let at = ENTRIES + (rsp & (RX_RING_SIZE - 1)) as usize * RX_ENTRY;
            let mut req = [0u8; RX_ENTRY];
            m.read(at, &mut req);
            let r = tamper(u16::from_le_bytes([req[0], req[1]]));
            let mut b = [0u8; RX_ENTRY];
            b[0..2].copy_from_slice(&r.id.to_le_bytes());
            b[2..4].copy_from_slice(&r.offset.to_le_bytes());
            b[4..6].copy_from_slice(&r.flags.to_le_bytes());
            b[6..8].copy_from_slice(&r.status.to_le_bytes());
            m.write(at, &b);
            rsp = rsp.wrapping_add(1);
        }
        m.store32(RSP_PROD, rsp);
    }

    fn next_rx(ring: &mut FrontRing, m: &Page) -> Option<RxResponse> {
        let mut b = [0u8; RX_ENTRY];
        ring.next_response(m, &mut b, true).unwrap().then(|| decode_rx_response(&b))
    }

    #[test]
    fn rx_buffers_go_round_and_come_back() {
        let m = Page::new();
        let mut ring = FrontRing::init(&m, "rx", RX_ENTRY);
        let mut pool = Pool::<64>::default();
        while let Some(id) = pool.take() {
            assert!(ring.push(&m, &encode_rx_request(id, 100 + id as u32)));
        }
        assert!(ring.publish(&m));
        assert_eq!(next_rx(&mut ring, &m), None);
        // Ten rounds of the pool, many times round the 256-entry ring.
        for round in 0..10 {
            answer_rx(&m, |id| RxResponse { id, offset: 0, flags: NETRXF_DATA_VALIDATED, status: 60 + round });
            let mut n = 0;
            while let Some(r) = next_rx(&mut ring, &m) {
                let p = complete_rx(&mut pool, &r).unwrap();
                assert_eq!((p.len, p.validated, p.csum_blank), (60 + round as usize, true, false));
                let id = pool.take().unwrap();
                assert!(ring.push(&m, &encode_rx_request(id, 100 + id as u32)));
                n += 1;
            }
            assert_eq!(n, 64);
            ring.publish(&m);
            assert_eq!(pool.out_count(), 64);
        }
    }

    #[test]
    fn a_lying_rx_backend_costs_packets_only() {
        let m = Page::new();
        let mut ring = FrontRing::init(&m, "rx", RX_ENTRY);
        let mut pool = Pool::<8>::default();
        for _ in 0..5 {
            let id = pool.take().unwrap();
            ring.push(&m, &encode_rx_request(id, 8));
        }
        ring.publish(&m);
        answer_rx(&m, |id| match id {
            0 => RxResponse { id: 0, offset: 4000, flags: 0, status: 100 },
            1 => RxResponse { id: 1, offset: 0, flags: NETRXF_MORE_DATA, status: 100 },
            2 => RxResponse { id: 2, offset: 0, flags: 0, status: RSP_DROPPED },
            3 => RxResponse { id: 7, offset: 0, flags: 0, status: 60 },
            _ => RxResponse { id: 0, offset: 0, flags: 0, status: 60 },
        });
        let r = next_rx(&mut ring, &m).unwrap();
        assert_eq!(complete_rx(&mut pool, &r), Err((Some(0), NetifError::OutOfPage { id: 0, offset: 4000, size: 100 })));
        let r = next_rx(&mut ring, &m).unwrap();
        assert!(matches!(complete_rx(&mut pool, &r), Err((Some(1), NetifError::Flags { .. }))));
        let r = next_rx(&mut ring, &m).unwrap();
        assert!(matches!(complete_rx(&mut pool, &r), Err((Some(2), NetifError::Status { status: RSP_DROPPED, .. }))));
        // An id that was never posted, then one already answered.
        let r = next_rx(&mut ring, &m).unwrap();
        assert_eq!(complete_rx(&mut pool, &r), Err((None, NetifError::UnknownId { ring: "rx", id: 7 })));
        let r = next_rx(&mut ring, &m).unwrap();
        assert_eq!(complete_rx(&mut pool, &r), Err((None, NetifError::UnknownId { ring: "rx", id: 0 })));
        assert_eq!(next_rx(&mut ring, &m), None);
        // A producer index past what was posted.
        m.store32(RSP_PROD, 0x1000);
        let e = ring.next_response(&m, &mut [0u8; RX_ENTRY], true).unwrap_err();
        assert!(e.is_fatal(), "{e}");
    }

    #[test]
    fn tx_responses_retire_exactly_what_was_sent() {
        let m = Page::new();
        let mut ring = FrontRing::init(&m, "tx", TX_ENTRY);
        let mut pool = Pool::<4>::default();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        ring.push(&m, &encode_tx_request(8, 0, 0, a, 60));
        ring.push(&m, &encode_tx_request(9, 2048, 0, b, 60));
        assert!(ring.publish(&m));
        assert_eq!(complete_tx(&mut pool, &TxResponse { id: a, status: RSP_OKAY }), Ok(a));
        assert_eq!(complete_tx(&mut pool, &TxResponse { id: a, status: RSP_OKAY }), Err(NetifError::UnknownId { ring: "tx", id: a }));
        assert_eq!(complete_tx(&mut pool, &TxResponse { id: 99, status: RSP_OKAY }), Err(NetifError::UnknownId { ring: "tx", id: 99 }));
        assert!(matches!(complete_tx(&mut pool, &TxResponse { id: b, status: RSP_ERROR }), Err(NetifError::Status { .. })));
        assert_eq!(pool.free_count(), 4);
        // A full pool refuses, a full ring refuses.
        let ids: Vec<u16> = (0..4).map(|_| pool.take().unwrap()).collect();
        assert_eq!(pool.take(), None);
        for id in ids {
            pool.put_back(id);
        }
        for i in 0..TX_RING_SIZE - 2 {
            assert!(ring.push(&m, &encode_tx_request(8, 0, 0, i as u16, 60)));
        }
        assert!(!ring.push(&m, &encode_tx_request(8, 0, 0, 0, 60)));
    }

    /// An IPv4 UDP frame with a checksum, built by hand.
    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[8, 0]);
        let total = 20 + 8 + payload.len();
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip.extend_from_slice(&[0x12, 0x34, 0, 7, 0, (8 + payload.len()) as u8, 0, 0]);
        ip.extend_from_slice(payload);
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn blank_checksums_are_filled_in() {
        let mut f = udp_frame(b"hello, world!");
        assert!(fill_checksum(&mut f));
        let c = u16::from_be_bytes([f[40], f[41]]);
        // Summing the segment with the pseudo-header now gives all ones.
        let mut sum: u32 = 0;
        for w in [0x0a00u32, 0x0001, 0x0a00, 0x0002, 17, 21] {
            sum += w;
        }
        for ch in f[34..].chunks(2) {
            sum += u32::from(u16::from_be_bytes([ch[0], *ch.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff, "checksum {c:#x}");
        assert_eq!(checksum_ok(&f), Some(true));
        f[50] ^= 1;
        assert_eq!(checksum_ok(&f), Some(false));
        f[50] ^= 1;
        let mut none = f.clone();
        none[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(checksum_ok(&none), Some(true), "UDP without a checksum");
        // Not IPv4, cut short, or a later fragment: refused.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[8, 6]);
        assert!(!fill_checksum(&mut arp));
        assert_eq!(checksum_ok(&arp), None);
        assert!(!fill_checksum(&mut f[..30].to_vec()));
        let mut frag = f.clone();
        frag[14 + 7] = 1;
        assert!(!fill_checksum(&mut frag));
    }
}
