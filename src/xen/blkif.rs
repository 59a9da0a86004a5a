//! The block-device ring protocol (public/io/blkif.h, public/io/ring.h),
//! as pure logic: the shared ring's indexes, requests as bytes, and the
//! checks every response passes. `blkfront` puts it on granted pages.
//!
//! The backend is not trusted. Its producer index is read once per batch
//! and must stay within one ring of ours; every response must name a
//! request that is outstanding, with the operation that request had.
//! Anything else is a typed error, never a read outside the ring or a
//! completion of the wrong buffer.

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use crate::xen::ring::RingMem;

/// `BLKIF_OP_*`
pub const OP_READ: u8 = 0;
pub const OP_WRITE: u8 = 1;
pub const OP_FLUSH_DISKCACHE: u8 = 3;

/// `BLKIF_OP_INDIRECT`: a read or write whose segments are in granted
/// pages the request names (backends that publish
/// `feature-max-indirect-segments`).
pub const OP_INDIRECT: u8 = 6;
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`: pages one request can carry.
pub const MAX_SEGMENTS: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`
pub const MAX_INDIRECT_PAGES: usize = 8;
/// `struct blkif_request_segment`s (8 bytes each) in one indirect page.
pub const SEGMENTS_PER_INDIRECT_PAGE: usize = 4096 / 8;
/// `BLKIF_RSP_*`
pub const RSP_OKAY: i16 = 0;
pub const RSP_ERROR: i16 = -1;
pub const RSP_EOPNOTSUPP: i16 = -2;

/// `VDISK_*` bits of the backend's `info` key.
pub const VDISK_CDROM: u32 = 1;
pub const VDISK_REMOVABLE: u32 = 2;
pub const VDISK_READONLY: u32 = 4;

/// Offsets in the shared ring page (`struct blkif_sring`, x86_64 ABI):
/// four indexes, 48 bytes of padding, then the entries.
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
const ENTRIES: usize = 64;
/// `union blkif_sring_entry`: a request (112 bytes on x86_64) or a
/// response (16).
pub const ENTRY_SIZE: usize = 112;
pub const RESPONSE_SIZE: usize = 16;

/// Entries in a ring of `pages` pages: what fits after the header,
/// rounded down to a power of two (`__RING_SIZE`).
pub const fn ring_entries(pages: usize) -> u32 {
    let n = (pages * 4096 - ENTRIES) / ENTRY_SIZE;
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The ring order for `slots` requests in flight, within the backend's
/// `max-ring-page-order`: the smallest ring that holds them all, one page
/// (32 entries) for blkfront's 32 plain and 5 indirect slots alike, as more
/// entries than requests in flight are never used. A bigger ring costs
/// the backend: Linux's blkback keeps 32 request structures a ring page,
/// each with room for 256 segments (about 8,000 allocations a page), made
/// on connect and freed on close. Counted under `-icount`
/// (docs/benchmarks.md), the disk boot's own part was 75.3 M instructions
/// with one page against 86.8 M with four (connect 7.4 M against 14.2 M,
/// the wait for the backend's `Closed` 2.8 M against 7.6 M), the read the
/// same 31 ms.
pub fn ring_order(slots: usize, backend_max: u32) -> u32 {
    let mut order = 0;
    while order < backend_max && (ring_entries(1 << order) as usize) < slots {
        order += 1;
    }
    order
}

/// One page of a request: grant `gref`, sectors `first..=last` (in
/// 512-byte units) of that page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub gref: u32,
    pub first: u8,
    pub last: u8,
}

/// `struct blkif_request` as bytes (x86_64: operation, nr_segments, handle,
/// 4 bytes pad, id, sector_number, then 8 bytes a segment).
pub fn encode_request(op: u8, handle: u16, id: u64, sector: u64, segs: &[Segment]) -> [u8; ENTRY_SIZE] {
    assert!(segs.len() <= MAX_SEGMENTS, "at most {MAX_SEGMENTS} segments a request");
    let mut b = [0u8; ENTRY_SIZE];
    b[0] = op;
    b[1] = segs.len() as u8;
    b[2..4].copy_from_slice(&handle.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    for (i, s) in segs.iter().enumerate() {
        let o = 24 + i * 8;
        b[o..o + 4].copy_from_slice(&s.gref.to_le_bytes());
        b[o + 4] = s.first;
        b[o + 5] = s.last;
    }
    b
}

/// `struct blkif_request_indirect` as bytes (x86_64: operation
/// `BLKIF_OP_INDIRECT`, the real operation, `nseg` as u16, 4 bytes pad,
/// id, sector_number, handle, 2 bytes pad, then the indirect pages'
/// grants).
pub fn encode_indirect(op: u8, handle: u16, id: u64, sector: u64, nseg: usize, pages: &[u32]) -> [u8; ENTRY_SIZE] {
    assert!(pages.len() <= MAX_INDIRECT_PAGES && nseg <= pages.len() * SEGMENTS_PER_INDIRECT_PAGE && nseg > 0);
    let mut b = [0u8; ENTRY_SIZE];
    b[0] = OP_INDIRECT;
    b[1] = op;
    b[2..4].copy_from_slice(&(nseg as u16).to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&sector.to_le_bytes());
    b[24..26].copy_from_slice(&handle.to_le_bytes());
    for (i, g) in pages.iter().enumerate() {
        b[28 + i * 4..32 + i * 4].copy_from_slice(&g.to_le_bytes());
    }
    b
}

/// Segments as an indirect page holds them (`struct
/// blkif_request_segment`: gref, first_sect, last_sect, 2 bytes pad).
pub fn encode_segments(segs: &[Segment], page: &mut [u8]) {
    for (s, b) in segs.iter().zip(page.chunks_exact_mut(8)) {
        b[0..4].copy_from_slice(&s.gref.to_le_bytes());
        b[4] = s.first;
        b[5] = s.last;
        b[6] = 0;
        b[7] = 0;
    }
}

/// `struct blkif_response`: id (8), operation (1), pad, status (i16 at 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u64,
    pub op: u8,
    pub status: i16,
}

pub fn decode_response(b: &[u8; RESPONSE_SIZE]) -> Response {
    Response { id: u64::from_le_bytes(b[0..8].try_into().unwrap()), op: b[8], status: i16::from_le_bytes(b[10..12].try_into().unwrap()) }
}

/// What a backend can get wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkifError {
    /// `rsp_prod` ran ahead of ours by more than the requests in flight
    /// (or behind ours, which wraps to the same).
    RingIndexes { rsp_prod: u32, rsp_cons: u32, in_flight: u32 },
    /// A response for a request id we never sent or already completed.
    UnknownId(u64),
    /// A response whose operation is not the one its request had.
    WrongOperation { id: u64, sent: u8, got: u8 },
    /// The backend failed the request (`BLKIF_RSP_*`).
    Status { id: u64, op: u8, status: i16 },
}

impl fmt::Display for BlkifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlkifError::RingIndexes { rsp_prod, rsp_cons, in_flight } => {
                write!(
                    f,
                    "backend's response index {rsp_prod:#x} is past ours ({rsp_cons:#x}) by more than the {in_flight} requests in flight"
                )
            }
            BlkifError::UnknownId(id) => write!(f, "backend answered request id {id:#x}, which is not outstanding"),
            BlkifError::WrongOperation { id, sent, got } => {
                write!(f, "backend answered request {id} (operation {sent}) with operation {got}")
            }
            BlkifError::Status { id, op, status } => {
                let what = match status {
                    RSP_ERROR => "error",
                    RSP_EOPNOTSUPP => "not supported",
                    _ => "unknown status",
                };
                write!(f, "backend failed request {id} (operation {op}): {what} ({status})")
            }
        }
    }
}

/// Our side of a ring: the requests we produced and the responses we
/// consumed (`struct blkif_front_ring`).
pub struct FrontRing {
    size: u32,
    req_prod_pvt: u32,
    rsp_cons: u32,
}

impl FrontRing {
    /// A fresh ring of `size` entries (a power of two): zero the indexes
    /// and ask to be told of the first response.
    pub fn init(m: &impl RingMem, size: u32) -> FrontRing {
        assert!(size.is_power_of_two());
        for off in [REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT] {
            m.store32(off, 0);
        }
        m.store32(REQ_EVENT, 1);
        m.store32(RSP_EVENT, 1);
        FrontRing { size, req_prod_pvt: 0, rsp_cons: 0 }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Requests sent and not yet answered, as far as the ring goes.
    pub fn in_flight(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Queue a request (not yet visible to the backend). `false`: full.
    pub fn push(&mut self, m: &impl RingMem, req: &[u8; ENTRY_SIZE]) -> bool {
        if self.in_flight() >= self.size {
            return false;
        }
        let slot = (self.req_prod_pvt & (self.size - 1)) as usize;
        m.write(ENTRIES + slot * ENTRY_SIZE, req);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        true
    }

    /// Make queued requests visible; `true` when the backend asked to be
    /// notified of them (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn publish(&mut self, m: &impl RingMem) -> bool {
        let old = m.load32(REQ_PROD);
        let new = self.req_prod_pvt;
        // Requests before the index that publishes them.
        fence(Ordering::Release);
        m.store32(REQ_PROD, new);
        fence(Ordering::SeqCst);
        let event = m.load32(REQ_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// The next response, if the backend produced one. Checks the index,
    /// never the contents (see [`Outstanding::complete`]).
    pub fn next_response(&mut self, m: &impl RingMem) -> Result<Option<Response>, BlkifError> {
        let prod = m.load32(RSP_PROD);
        fence(Ordering::Acquire);
        let ahead = prod.wrapping_sub(self.rsp_cons);
        // The backend can answer only what we asked.
        if ahead > self.in_flight() {
            return Err(BlkifError::RingIndexes { rsp_prod: prod, rsp_cons: self.rsp_cons, in_flight: self.in_flight() });
        }
        if ahead == 0 {
            // Ask for an event at the next response, then look once more
            // (`RING_FINAL_CHECK_FOR_RESPONSES`).
            m.store32(RSP_EVENT, self.rsp_cons.wrapping_add(1));
            fence(Ordering::SeqCst);
            if m.load32(RSP_PROD) == self.rsp_cons {
                return Ok(None);
            }
            return self.next_response(m);
        }
        let slot = (self.rsp_cons & (self.size - 1)) as usize;
        let mut b = [0u8; RESPONSE_SIZE];
        m.read(ENTRIES + slot * ENTRY_SIZE, &mut b);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(decode_response(&b)))
    }
}

/// Which request ids are outstanding and with which operation: ids are
/// slot numbers `0..N`, each at most once in flight.
pub struct Outstanding<const N: usize> {
    op: [Option<u8>; N],
}

impl<const N: usize> Default for Outstanding<N> {
    fn default() -> Self {
        Outstanding { op: [None; N] }
    }
}

impl<const N: usize> Outstanding<N> {
    /// A free id, if any.
    pub fn free(&self) -> Option<usize> {
        self.op.iter().position(|o| o.is_none())
    }
    pub fn busy(&self) -> usize {
        self.op.iter().filter(|o| o.is_some()).count()
    }
    pub fn is_free(&self, id: usize) -> bool {
        self.op.get(id).is_some_and(|o| o.is_none())
    }
    pub fn start(&mut self, id: usize, op: u8) {
        assert!(self.op[id].is_none(), "request id {id} is already in flight");
        self.op[id] = Some(op);
    }
    /// Check a response against what was sent and retire its id. A failed
    /// status retires the id too (the request is over) and is returned as
    /// an error.
    pub fn complete(&mut self, r: &Response) -> Result<usize, BlkifError> {
        let id = usize::try_from(r.id).ok().filter(|&i| i < N).ok_or(BlkifError::UnknownId(r.id))?;
        let sent = self.op[id].ok_or(BlkifError::UnknownId(r.id))?;
        if sent != r.op {
            return Err(BlkifError::WrongOperation { id: r.id, sent, got: r.op });
        }
        self.op[id] = None;
        if r.status != RSP_OKAY {
            return Err(BlkifError::Status { id: r.id, op: r.op, status: r.status });
        }
        Ok(id)
    }
}

/// The pieces of a transfer of `len` bytes at byte `offset` of a page-run
/// buffer, written to `out`: for each page, the 512-byte sectors
/// `first..=last` it covers. `offset` and `len` are multiples of 512 and
/// the run fits `out` (`MAX_SEGMENTS` for a plain request, more for an
/// indirect one). How many.
pub fn segments_into(offset: usize, len: usize, grefs: &[u32], out: &mut [Segment]) -> Result<usize, &'static str> {
    if !offset.is_multiple_of(512) || !len.is_multiple_of(512) || len == 0 {
        return Err("transfer not in whole 512-byte sectors");
    }
    let end = offset.checked_add(len).ok_or("transfer too long")?;
    let pages = end.div_ceil(4096) - offset / 4096;
    if pages > out.len() || offset / 4096 + pages > grefs.len() {
        return Err("transfer needs more pages than a request carries");
    }
    for (i, seg) in out.iter_mut().enumerate().take(pages) {
        let page = offset / 4096 + i;
        let lo = offset.max(page * 4096) - page * 4096;
        let hi = end.min((page + 1) * 4096) - page * 4096;
        *seg = Segment { gref: grefs[page], first: (lo / 512) as u8, last: (hi / 512 - 1) as u8 };
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::ring::tests::Page;

    #[test]
    fn the_ring_holds_every_slot_and_no_more() {
        assert_eq!(ring_order(5, 4), 0);
        assert_eq!(ring_order(32, 4), 0);
        assert_eq!(ring_order(33, 4), 1);
        assert_eq!(ring_order(100, 4), 2);
        // Never beyond what the backend takes.
        assert_eq!(ring_order(100, 1), 1);
        assert_eq!(ring_order(33, 0), 0);
    }

    #[test]
    fn ring_sizes_match_the_c_macros() {
        // __RING_SIZE for blkif on x86_64: 32 entries in one page, 512 in 16.
        assert_eq!(ring_entries(1), 32);
        assert_eq!(ring_entries(2), 64);
        assert_eq!(ring_entries(16), 512);
    }

    #[test]
    fn requests_have_the_abi_layout() {
        let segs = [Segment { gref: 0x1234, first: 1, last: 7 }, Segment { gref: 9, first: 0, last: 3 }];
        let b = encode_request(OP_WRITE, 0xca00, 0x0102030405060708, 0x1122334455667788, &segs);
        assert_eq!(b[0], OP_WRITE);
        assert_eq!(b[1], 2);
        assert_eq!(&b[2..4], &0xca00u16.to_le_bytes());
        assert_eq!(&b[8..16], &0x0102030405060708u64.to_le_bytes());
        assert_eq!(&b[16..24], &0x1122334455667788u64.to_le_bytes());
        assert_eq!(&b[24..28], &0x1234u32.to_le_bytes());
        assert_eq!((b[28], b[29]), (1, 7));
        assert_eq!(&b[32..36], &9u32.to_le_bytes());
        let r = decode_response(&[8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xfe, 0xff, 0, 0, 0, 0]);
        assert_eq!(r, Response { id: 8, op: 1, status: -2 });
    }

    #[test]
    fn indirect_requests_have_the_abi_layout() {
        // struct blkif_request_indirect on x86_64: operation, indirect_op,
        // nr_segments (u16), pad to 8, id, sector_number, handle (24),
        // pad, indirect_grefs from 28.
        let b = encode_indirect(OP_READ, 0xca00, 0x0102030405060708, 0x1122334455667788, 300, &[0x51, 0x52]);
        assert_eq!((b[0], b[1]), (OP_INDIRECT, OP_READ));
        assert_eq!(&b[2..4], &300u16.to_le_bytes());
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[8..16], &0x0102030405060708u64.to_le_bytes());
        assert_eq!(&b[16..24], &0x1122334455667788u64.to_le_bytes());
        assert_eq!(&b[24..26], &0xca00u16.to_le_bytes());
        assert_eq!(&b[28..32], &0x51u32.to_le_bytes());
        assert_eq!(&b[32..36], &0x52u32.to_le_bytes());
        assert!(b[36..].iter().all(|&x| x == 0));
        // struct blkif_request_segment: 8 bytes, gref then first and last.
        let mut page = [0xffu8; 24];
        encode_segments(&[Segment { gref: 0x1234, first: 1, last: 7 }, Segment { gref: 9, first: 0, last: 3 }], &mut page);
        assert_eq!(&page[..16], &[0x34, 0x12, 0, 0, 1, 7, 0, 0, 9, 0, 0, 0, 0, 3, 0, 0]);
        assert_eq!(&page[16..], &[0xff; 8], "past the segments: untouched");
        // A run of 64 pages at an offset: segments_into splits it.
        let grefs: Vec<u32> = (100..165).collect();
        let mut out = [Segment { gref: 0, first: 0, last: 0 }; 64];
        assert_eq!(segments_into(1024, 63 * 4096, &grefs, &mut out), Ok(64));
        assert_eq!(out[0], Segment { gref: 100, first: 2, last: 7 });
        assert_eq!(out[63], Segment { gref: 163, first: 0, last: 1 });
        assert!(segments_into(0, 65 * 4096, &grefs, &mut out).is_err(), "more pages than the request holds");
    }

    /// The backend's side, for tests: answer every request in order.
    fn answer(m: &Page, size: u32, status: i16, tamper: impl Fn(&mut [u8; 16])) {
        let prod = m.load32(REQ_PROD);
        let mut rsp = m.load32(RSP_PROD);
        while rsp != prod {
            let at = ENTRIES + (rsp & (size - 1)) as usize * ENTRY_SIZE;
            let mut req = [0u8; 16];
            m.read(at, &mut req);
            let mut r = [0u8; 16];
            r[0..8].copy_from_slice(&req[8..16]);
            r[8] = req[0];
            r[10..12].copy_from_slice(&status.to_le_bytes());
            tamper(&mut r);
            m.write(at, &r);
            rsp = rsp.wrapping_add(1);
        }
        m.store32(RSP_PROD, rsp);
    }

    #[test]
    fn requests_go_round_and_responses_are_checked() {
        let m = Page::new();
        let mut ring = FrontRing::init(&m, 32);
        let mut out = Outstanding::<64>::default();
        // Three times round the ring.
        for round in 0..100u64 {
            let id = out.free().unwrap();
            out.start(id, OP_READ);
            assert!(ring.push(&m, &encode_request(OP_READ, 0, id as u64, round, &[])));
            assert!(ring.publish(&m) || round > 0);
            assert_eq!(ring.next_response(&m).unwrap(), None);
            answer(&m, 32, RSP_OKAY, |_| {});
            let r = ring.next_response(&m).unwrap().unwrap();
            assert_eq!(out.complete(&r), Ok(id));
        }
        assert_eq!(out.busy(), 0);
        // A full ring refuses more.
        for i in 0..32 {
            assert!(ring.push(&m, &encode_request(OP_READ, 0, i, 0, &[])));
        }
        assert!(!ring.push(&m, &encode_request(OP_READ, 0, 99, 0, &[])));
    }

    #[test]
    fn a_lying_backend_is_caught() {
        let m = Page::new();
        let mut ring = FrontRing::init(&m, 32);
        let mut out = Outstanding::<32>::default();
        out.start(3, OP_READ);
        ring.push(&m, &encode_request(OP_READ, 0, 3, 0, &[]));
        ring.publish(&m);
        // An id never sent.
        answer(&m, 32, RSP_OKAY, |r| r[0] = 7);
        let r = ring.next_response(&m).unwrap().unwrap();
        assert_eq!(out.complete(&r), Err(BlkifError::UnknownId(7)));
        // The right id with the wrong operation, then with an error status.
        assert_eq!(
            out.complete(&Response { id: 3, op: OP_WRITE, status: 0 }),
            Err(BlkifError::WrongOperation { id: 3, sent: OP_READ, got: OP_WRITE })
        );
        assert_eq!(out.complete(&Response { id: 3, op: OP_READ, status: RSP_ERROR }), Err(BlkifError::Status { id: 3, op: 0, status: -1 }));
        // Completed once: a second answer is unknown.
        assert_eq!(out.complete(&Response { id: 3, op: OP_READ, status: 0 }), Err(BlkifError::UnknownId(3)));
        assert_eq!(out.complete(&Response { id: u64::MAX, op: 0, status: 0 }), Err(BlkifError::UnknownId(u64::MAX)));
        // A producer index past what was asked.
        m.store32(RSP_PROD, 0x4000_0000);
        assert!(matches!(ring.next_response(&m), Err(BlkifError::RingIndexes { .. })));
    }

    /// A plain request's segments.
    fn segments(offset: usize, len: usize, grefs: &[u32]) -> Result<([Segment; MAX_SEGMENTS], usize), &'static str> {
        let mut out = [Segment { gref: 0, first: 0, last: 0 }; MAX_SEGMENTS];
        let n = segments_into(offset, len, grefs, &mut out)?;
        Ok((out, n))
    }

    #[test]
    fn segments_cover_exactly_the_transfer() {
        let grefs: [u32; 12] = core::array::from_fn(|i| 100 + i as u32);
        let (s, n) = segments(0, 4096, &grefs).unwrap();
        assert_eq!((n, s[0]), (1, Segment { gref: 100, first: 0, last: 7 }));
        let (s, n) = segments(3584, 1024, &grefs).unwrap();
        assert_eq!(n, 2);
        assert_eq!((s[0], s[1]), (Segment { gref: 100, first: 7, last: 7 }, Segment { gref: 101, first: 0, last: 0 }));
        let (_, n) = segments(0, 11 * 4096, &grefs).unwrap();
        assert_eq!(n, 11);
        assert!(segments(512, 11 * 4096, &grefs).is_err());
        assert!(segments(100, 512, &grefs).is_err());
        assert!(segments(0, 0, &grefs).is_err());
    }
}
