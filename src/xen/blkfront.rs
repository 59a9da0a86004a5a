//! The PV block frontend: a disk the toolstack gave this domain
//! (`disk = [...]` in xl), as a [`BlockDevice`].
//!
//! Set-up follows xenbus ([`xenbus`]): the ring in granted pages (as many
//! as hold a request for every slot, within the backend's
//! `max-ring-page-order`: one for now), an event channel, then
//! `Initialised` → the backend's `Connected` → its size and features. Data
//! moves through bounce buffers granted once: [`SLOTS`] requests of up to
//! [`MAX_SEGMENTS`] pages each, all in flight at once, so a long read
//! streams instead of waiting on every request; with a backend that takes
//! indirect requests (`feature-max-indirect-segments`, Linux's blkback),
//! [`INDIRECT_SLOTS`] of up to [`INDIRECT_SEGMENTS`] pages, each with its
//! own granted page of segments.
//!
//! The backend is not trusted (see [`blkif`]): a response for a request
//! not outstanding, with the wrong operation or a failed status, or a ring
//! index out of bounds ends the device (every later request fails with the
//! same error, kept in [`BlkFront::error`]); data is copied out only of the
//! slot a valid response names, and only as long as that request was.
//! A backend that goes silent ends in [`BlkfrontError::Timeout`].
//!
//! [`BlkFront::close`] hands the disk back so that a kernel's own frontend
//! can connect to it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::dev::block::{check_request, valid_sector_size, BlockDevice, BlockError};
use crate::xen::blkif::{self, BlkifError, FrontRing, Outstanding, Segment, MAX_SEGMENTS};
pub use crate::xen::blkif::{OP_FLUSH_DISKCACHE, OP_READ, OP_WRITE};
use crate::xen::events;
use crate::xen::evtchn::{self, EvtchnError};
use crate::xen::gnttab::{self, GrantError};
use crate::xen::page::{alloc_pages, free_pages, SharedPage};
use crate::xen::store::Store;
use crate::xen::time;
use crate::xen::xenbus::{Device, State, Step, XenbusError};

/// Requests in flight at once, each with its own bounce pages.
pub const SLOTS: usize = 32;
/// With indirect requests: fewer, larger requests in about the same
/// grants (one table frame holds 504). Under `-icount` (docs/benchmarks.md),
/// the disk boot's 12.8 MB read took 31.5 ms of the host's instruction
/// clock against 34.6 with 32 plain requests of 11 pages: most of a read's
/// cost is per page, in dom0, not per request.
pub const INDIRECT_SLOTS: usize = 5;
pub const INDIRECT_SEGMENTS: usize = 64;
/// How long one wait for the backend may last, and how many waits without
/// a single response end the device.
const WAIT: core::time::Duration = core::time::Duration::from_secs(5);
const MAX_IDLE_WAITS: u32 = 6;

#[derive(Debug)]
pub enum BlkfrontError {
    Xenbus(XenbusError),
    Grant(GrantError),
    Evtchn(EvtchnError),
    NoMemory,
    /// The backend's `sector-size` or `sectors` cannot describe a disk.
    BadGeometry {
        sectors: u64,
        sector_size: u32,
    },
    /// The backend broke the ring protocol or failed a request.
    Protocol(BlkifError),
    /// No response within the bounded wait.
    Timeout {
        in_flight: usize,
    },
    /// After a resume: a request in flight has more pages than the new
    /// backend takes in one request.
    TooLarge {
        pages: usize,
        max: usize,
    },
}

impl fmt::Display for BlkfrontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlkfrontError::Xenbus(e) => e.fmt(f),
            BlkfrontError::Grant(e) => e.fmt(f),
            BlkfrontError::Evtchn(e) => e.fmt(f),
            BlkfrontError::NoMemory => f.write_str("no memory for the ring and buffers"),
            BlkfrontError::BadGeometry { sectors, sector_size } => {
                write!(f, "backend reports {sectors} sectors of {sector_size} bytes")
            }
            BlkfrontError::Protocol(e) => e.fmt(f),
            BlkfrontError::Timeout { in_flight } => {
                write!(f, "backend answered none of {in_flight} requests in {} s", MAX_IDLE_WAITS as u64 * WAIT.as_secs())
            }
            BlkfrontError::TooLarge { pages, max } => {
                write!(f, "a request in flight has {pages} pages; the new backend takes at most {max} a request")
            }
        }
    }
}

impl From<XenbusError> for BlkfrontError {
    fn from(e: XenbusError) -> Self {
        BlkfrontError::Xenbus(e)
    }
}
impl From<GrantError> for BlkfrontError {
    fn from(e: GrantError) -> Self {
        BlkfrontError::Grant(e)
    }
}

/// What the backend says about the disk.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// Bytes per sector (`sector-size`).
    pub sector_size: u32,
    /// Sectors of `sector_size` bytes.
    pub sectors: u64,
    pub read_only: bool,
    pub cdrom: bool,
    pub flush: bool,
    pub ring_pages: usize,
}

/// Bounce pages for one request, granted to the backend for the device's
/// life.
struct Slot {
    base: u64,
    grefs: Vec<u32>,
    /// The page an indirect request's segments go in (0: none) and its
    /// grant.
    indirect: (u64, u32),
    /// For a read in flight: where its data goes in the caller's buffer.
    target: (usize, usize),
    /// The request in flight (operation, 512-byte unit; its length is
    /// `target.1`), to send again after a resume.
    req: (u8, u64),
}

impl Slot {
    /// Every grant the slot holds: its pages', then its indirect page's.
    fn grants(&self) -> impl Iterator<Item = u32> + '_ {
        self.grefs.iter().copied().chain((self.indirect.0 != 0).then_some(self.indirect.1))
    }
}

pub struct BlkFront {
    dev: Device,
    ring: FrontRing,
    ring_mem: SharedPage,
    ring_base: u64,
    ring_grefs: Vec<u32>,
    port: u32,
    slots: Vec<Slot>,
    /// Pages a request may carry now: the slots' size, or fewer if a new
    /// backend (after a resume) takes fewer.
    seg_max: usize,
    out: Outstanding<SLOTS>,
    info: Info,
    error: Option<String>,
    /// Slots whose request finished and whose data the caller has not
    /// collected yet (bit per slot; see [`BlkFront::try_start`]).
    held: u64,
    /// Slots whose caller gave up: not held when they finish.
    abandoned: u64,
    /// Totals, for the report.
    pub bytes_read: u64,
}

impl BlkFront {
    /// Connect to `dev` (a `vbd` from [`crate::xen::xenbus::devices`]).
    pub fn open(xs: &mut Store, dev: Device) -> Result<BlkFront, BlkfrontError> {
        gnttab::init()?;
        let (max_order, indirect) = backend_features(xs, &dev)?;
        let (nslots, seg_max) = if indirect >= 2 * MAX_SEGMENTS { (INDIRECT_SLOTS, indirect) } else { (SLOTS, MAX_SEGMENTS) };
        let order = blkif::ring_order(nslots, max_order);
        let pages = 1usize << order;
        let ring_base = alloc_pages(pages).ok_or(BlkfrontError::NoMemory)?;
        // SAFETY: fresh heap pages, identity-mapped, used only as this ring.
        let ring_mem = unsafe { SharedPage::region(ring_base, pages * 4096) };
        let ring = FrontRing::init(&ring_mem, blkif::ring_entries(pages));
        // The bounce pages, granted for the device's life: the grants are
        // persistent whether or not the backend keeps them mapped.
        let mut slots = Vec::with_capacity(nslots);
        for _ in 0..nslots {
            let base = alloc_pages(seg_max).ok_or(BlkfrontError::NoMemory)?;
            let page = if seg_max > MAX_SEGMENTS { alloc_pages(1).ok_or(BlkfrontError::NoMemory)? } else { 0 };
            slots.push(Slot { base, grefs: alloc::vec![0; seg_max], indirect: (page, 0), target: (0, 0), req: (0, 0) });
        }
        let info = Info { sector_size: 512, sectors: 0, read_only: false, cdrom: false, flush: false, ring_pages: pages };
        let mut f = BlkFront {
            dev,
            ring,
            ring_mem,
            ring_base,
            ring_grefs: Vec::new(),
            port: 0,
            slots,
            seg_max,
            out: Outstanding::default(),
            info,
            error: None,
            held: 0,
            abandoned: 0,
            bytes_read: 0,
        };
        f.info = f.connect(xs, order)?;
        Ok(f)
    }

    /// Grant the ring (order `order`, its pages allocated) and the bounce
    /// pages, bind an event channel, and take the device to `Connected`:
    /// what the backend says about the disk.
    fn connect(&mut self, xs: &mut Store, order: u32) -> Result<Info, BlkfrontError> {
        let be = self.dev.backend_id;
        let pages = 1usize << order;
        self.ring_grefs.clear();
        for i in 0..pages {
            self.ring_grefs.push(gnttab::grant(be, (self.ring_base >> 12) + i as u64, false)?);
        }
        self.ring = FrontRing::init(&self.ring_mem, blkif::ring_entries(pages));
        self.port = evtchn::alloc_unbound(be).map_err(BlkfrontError::Evtchn)?;
        for slot in &mut self.slots {
            for (i, g) in slot.grefs.iter_mut().enumerate() {
                *g = gnttab::grant(be, (slot.base >> 12) + i as u64, false)?;
            }
            if slot.indirect.0 != 0 {
                // Writable, though the backend only reads it: blkback maps
                // every persistent grant read-write.
                slot.indirect.1 = gnttab::grant(be, slot.indirect.0 >> 12, false)?;
            }
        }

        // Everything we set up, `Initialised`, and what a connected backend
        // says about the disk: one round trip.
        let mut step = Step::new();
        if order == 0 {
            step = step.write("ring-ref", self.ring_grefs[0]);
        } else {
            step = step.write("ring-page-order", order);
            for (i, g) in self.ring_grefs.iter().enumerate() {
                step = step.write(&format!("ring-ref{i}"), g);
            }
        }
        step = step.write("event-channel", self.port).write("protocol", "x86_64-abi").write("feature-persistent", 1);
        const DISK: [&str; 4] = ["sector-size", "sectors", "info", "feature-flush-cache"];
        let step = step.state(State::Initialised).reads(&DISK);
        let seen = self.dev.step(xs, step)?;
        let seen = self.dev.wait_backend(xs, seen, "Connected", |s| s == State::Connected, |s| s >= State::Closing, &DISK)?;

        let sector_size = seen.parse::<u32>("sector-size")?.unwrap_or(512);
        // `sectors` counts 512-byte units whatever the sector size.
        let units = seen.parse::<u64>("sectors")?.unwrap_or(0);
        if !valid_sector_size(sector_size) {
            return Err(BlkfrontError::BadGeometry { sectors: units, sector_size });
        }
        let info_bits = seen.parse::<u32>("info")?.unwrap_or(0);
        let info = Info {
            sector_size,
            sectors: units / (sector_size as u64 / 512),
            read_only: info_bits & blkif::VDISK_READONLY != 0,
            cdrom: info_bits & blkif::VDISK_CDROM != 0,
            flush: seen.feature("feature-flush-cache")?,
            ring_pages: pages,
        };
        self.dev.step(xs, Step::new().state(State::Connected).unfollow())?;
        Ok(info)
    }

    /// The domain was resumed in a new domain (`xl restore`, the end of a
    /// migration): the backend is a new one, the grant table and the
    /// event channel are gone. Grant everything again, connect to the new
    /// backend (the same disk, as the toolstack says: its sector size must
    /// not change), and put the requests that were in flight on the new
    /// ring again (their data is still in their bounce pages): a write
    /// acknowledged before the suspend was done; one in flight is done
    /// after the resume. Returns how many requests went out again.
    pub fn reconnect(&mut self, xs: &mut Store) -> Result<usize, BlkfrontError> {
        // The new table holds none of the old grants: free the references.
        for g in self.ring_grefs.drain(..) {
            let _ = gnttab::revoke(g);
        }
        for g in self.slots.iter().flat_map(Slot::grants) {
            let _ = gnttab::revoke(g);
        }
        self.dev = self.dev.again(xs)?;
        let (max_order, indirect) = backend_features(xs, &self.dev)?;
        let order = blkif::ring_order(self.slots.len(), max_order);
        // The new backend may take fewer pages a request; a request in
        // flight that it cannot take ends the device.
        let slot_pages = self.slots[0].grefs.len();
        self.seg_max = if slot_pages > MAX_SEGMENTS { indirect.clamp(MAX_SEGMENTS, slot_pages) } else { MAX_SEGMENTS };
        let pages = 1usize << order;
        if pages != self.info.ring_pages {
            // Another backend, another ring size: new pages.
            let base = alloc_pages(pages).ok_or(BlkfrontError::NoMemory)?;
            // SAFETY: the old ring's grants are gone with the old domain.
            unsafe { free_pages(self.ring_base, self.info.ring_pages) };
            self.ring_base = base;
            // SAFETY: fresh heap pages, identity-mapped, used only as this ring.
            self.ring_mem = unsafe { SharedPage::region(base, pages * 4096) };
        }
        let info = self.connect(xs, order)?;
        if info.sector_size != self.info.sector_size {
            return Err(BlkfrontError::BadGeometry { sectors: info.sectors, sector_size: info.sector_size });
        }
        self.info = info;
        let mut again = 0;
        for id in 0..self.slots.len() {
            if self.out.is_free(id) {
                continue;
            }
            let (op, unit) = self.slots[id].req;
            let len = self.slots[id].target.1;
            // As many entries as slots: there is room.
            self.post(id, op, unit, len).map_err(|_| BlkfrontError::TooLarge { pages: len.div_ceil(4096), max: self.seg_max })?;
            again += 1;
        }
        if again > 0 && self.ring.publish(&self.ring_mem) {
            let _ = evtchn::notify(self.port);
        }
        Ok(again)
    }

    pub fn info(&self) -> Info {
        self.info
    }
    /// The event channel: the backend signals it when requests finish.
    pub fn port(&self) -> u32 {
        self.port
    }
    pub fn device(&self) -> &Device {
        &self.dev
    }
    /// What ended the device, if something did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// `e` (an error from a request to this device, or from what read
    /// through it) with what ended the device, if something did: a
    /// [`BlockError`] alone cannot say.
    pub fn explain(&self, e: impl fmt::Display) -> String {
        match self.error() {
            Some(why) => format!("{e} ({why})"),
            None => format!("{e}"),
        }
    }

    /// End the device with `e`: a failed status is the device's own
    /// error; anything else (a protocol violation, silence) stops it.
    fn fail(&mut self, e: BlkfrontError) -> BlockError {
        let status = match &e {
            BlkfrontError::Protocol(BlkifError::Status { status, .. }) => Some(*status as i32),
            _ => None,
        };
        if self.error.is_none() {
            self.error = Some(format!("{}: {e}", self.dev.frontend));
        }
        status.map_or(BlockError::Stopped, BlockError::Device)
    }

    /// Run one transfer: `len` bytes from 512-byte unit `unit`, split into
    /// slot-sized requests kept in flight together. `fill` puts a write's
    /// data into a slot; `drain` takes a read's out.
    fn transfer(
        &mut self,
        op: u8,
        unit: u64,
        len: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
        mut drain: impl FnMut(usize, &[u8]),
    ) -> Result<(), BlockError> {
        if self.error.is_some() {
            return Err(BlockError::Stopped);
        }
        let mut sent = 0usize;
        let mut idle = 0;
        while sent < len || self.out.busy() > 0 {
            // Fill every free slot.
            let mut queued = false;
            while sent < len {
                let Some(id) = self.free_slot() else { break };
                let n = (len - sent).min(self.slot_bytes());
                let slot = &mut self.slots[id];
                if op == OP_WRITE {
                    // SAFETY: the slot's own pages (`n` ≤ slot_bytes), ours;
                    // the backend may write them too, which only changes
                    // bytes.
                    fill(sent, unsafe { core::slice::from_raw_parts_mut(slot.base as *mut u8, n) });
                }
                slot.target = (sent, n);
                if !self.post(id, op, unit + (sent / 512) as u64, n)? {
                    break;
                }
                self.out.start(id, op);
                sent += n;
                queued = true;
            }
            if queued && self.ring.publish(&self.ring_mem) {
                let _ = evtchn::notify(self.port);
            }
            let mut drain_slot = |slot: &Slot| {
                if op == OP_READ {
                    let (at, n) = slot.target;
                    // SAFETY: the slot's pages; `n` ≤ slot_bytes was set
                    // when sent.
                    drain(at, unsafe { core::slice::from_raw_parts(slot.base as *const u8, n) });
                }
            };
            self.reap(&mut idle, &mut drain_slot)?;
        }
        Ok(())
    }

    /// Take every response there is, each checked and handed to `done`
    /// with its slot; when none came and requests are out, wait for the
    /// backend (bounded: [`MAX_IDLE_WAITS`] silent waits in a row, counted
    /// in `idle`, end the device).
    fn reap(&mut self, idle: &mut u32, done: &mut dyn FnMut(&Slot)) -> Result<(), BlockError> {
        let mut got = false;
        loop {
            let r = match self.ring.next_response(&self.ring_mem) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => return Err(self.fail(BlkfrontError::Protocol(e))),
            };
            let id = match self.out.complete(&r) {
                Ok(id) => id,
                Err(e) => return Err(self.fail(BlkfrontError::Protocol(e))),
            };
            got = true;
            let slot = &self.slots[id];
            if r.op == OP_READ {
                self.bytes_read += slot.target.1 as u64;
            }
            done(slot);
        }
        if got {
            *idle = 0;
        } else if self.out.busy() > 0 && !events::wait(&[self.port], Some(time::now() + WAIT)).any_port() {
            *idle += 1;
            if *idle >= MAX_IDLE_WAITS {
                let busy = self.out.busy();
                return Err(self.fail(BlkfrontError::Timeout { in_flight: busy }));
            }
        }
        Ok(())
    }

    /// A slot neither in flight nor held.
    fn free_slot(&self) -> Option<usize> {
        (0..self.slots.len()).find(|&i| self.out.is_free(i) && self.held & (1 << i) == 0)
    }

    /// The most one request carries now.
    pub fn slot_bytes(&self) -> usize {
        self.seg_max * 4096
    }

    /// Put request `id` (`op`, `len` bytes of its slot at 512-byte unit
    /// `unit`) on the ring, an indirect one when it has more pages than a
    /// plain request carries. `false`: the ring is full.
    fn post(&mut self, id: usize, op: u8, unit: u64, len: usize) -> Result<bool, BlockError> {
        let handle = self.dev.id as u16;
        let seg_max = self.seg_max;
        let slot = &mut self.slots[id];
        slot.req = (op, unit);
        let req = if op == OP_FLUSH_DISKCACHE {
            blkif::encode_request(op, handle, id as u64, unit, &[])
        } else {
            let mut segs = [Segment { gref: 0, first: 0, last: 0 }; INDIRECT_SEGMENTS];
            let n = blkif::segments_into(0, len, &slot.grefs, &mut segs[..seg_max])
                .map_err(|_| BlockError::Unaligned { len, sector_size: 512 })?;
            if n <= MAX_SEGMENTS {
                blkif::encode_request(op, handle, id as u64, unit, &segs[..n])
            } else {
                // SAFETY: the slot's indirect page, ours; the backend only
                // reads it.
                let page = unsafe { core::slice::from_raw_parts_mut(slot.indirect.0 as *mut u8, 4096) };
                blkif::encode_segments(&segs[..n], page);
                blkif::encode_indirect(op, handle, id as u64, unit, n, &[slot.indirect.1])
            }
        };
        Ok(self.ring.push(&self.ring_mem, &req))
    }

    /// Start one request without waiting, for callers that do not block
    /// (the task runtime): `op` ([`OP_READ`], [`OP_WRITE`] with `data`,
    /// or [`OP_FLUSH_DISKCACHE`]) of `len` bytes (whole 512-byte units, at
    /// most [`SLOT_BYTES`]) at 512-byte unit `unit`. `Ok(None)`: no slot
    /// or ring entry is free now; try again after a completion. When the
    /// request finishes, its slot is held (data readable with
    /// [`slot_data`](Self::slot_data)) until [`release`](Self::release).
    /// The caller has checked the request against the disk's size.
    pub fn try_start(&mut self, op: u8, unit: u64, len: usize, data: Option<&[u8]>) -> Result<Option<usize>, BlockError> {
        if self.error.is_some() {
            return Err(BlockError::Stopped);
        }
        let Some(id) = self.free_slot() else { return Ok(None) };
        if op != OP_FLUSH_DISKCACHE && len > self.slot_bytes() {
            return Err(BlockError::Unaligned { len, sector_size: 512 });
        }
        let slot = &mut self.slots[id];
        if let Some(d) = data {
            let d = d.get(..len).ok_or(BlockError::Unaligned { len: d.len(), sector_size: 512 })?;
            // SAFETY: the slot's own pages (`len` ≤ slot_bytes, checked
            // above), ours until the request is posted.
            unsafe { core::slice::from_raw_parts_mut(slot.base as *mut u8, len) }.copy_from_slice(d);
        }
        slot.target = (0, len);
        if !self.post(id, op, unit, len)? {
            return Ok(None);
        }
        self.out.start(id, op);
        if self.ring.publish(&self.ring_mem) {
            let _ = evtchn::notify(self.port);
        }
        Ok(Some(id))
    }

    /// Take every response there is (never waits); each finished request's
    /// slot is held for its caller. How many finished.
    pub fn take_responses(&mut self) -> Result<usize, BlockError> {
        let mut n = 0;
        loop {
            let r = match self.ring.next_response(&self.ring_mem) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(n),
                Err(e) => return Err(self.fail(BlkfrontError::Protocol(e))),
            };
            let id = self.out.complete(&r).map_err(|e| self.fail(BlkfrontError::Protocol(e)))?;
            if r.op == OP_READ {
                self.bytes_read += self.slots[id].target.1 as u64;
            }
            if self.abandoned & (1 << id) != 0 {
                self.abandoned &= !(1 << id);
            } else {
                self.held |= 1 << id;
            }
            n += 1;
        }
    }

    /// Has request `id` finished? `Some(Err)` once the device has ended.
    pub fn finished(&self, id: usize) -> Option<Result<(), BlockError>> {
        if self.held & (1 << id) != 0 {
            Some(Ok(()))
        } else if self.error.is_some() {
            Some(Err(BlockError::Stopped))
        } else {
            None
        }
    }

    /// A finished read's data.
    pub fn slot_data(&self, id: usize) -> &[u8] {
        let slot = &self.slots[id];
        // SAFETY: the slot's own pages; `target.1` ≤ slot_bytes was set
        // when the request was started, and the request is over.
        unsafe { core::slice::from_raw_parts(slot.base as *const u8, slot.target.1) }
    }

    /// The caller is done with finished request `id`: its slot is free.
    pub fn release(&mut self, id: usize) {
        self.held &= !(1 << id);
    }

    /// The caller of request `id` gave up: its slot comes free when the
    /// request finishes (at once if it has).
    pub fn abandon(&mut self, id: usize) {
        if self.held & (1 << id) != 0 {
            self.held &= !(1 << id);
        } else if !self.out.is_free(id) {
            self.abandoned |= 1 << id;
        }
    }

    /// Stop the device: the backend did not answer in time.
    pub fn time_out(&mut self) -> BlockError {
        let busy = self.out.busy();
        self.fail(BlkfrontError::Timeout { in_flight: busy })
    }

    /// Hand the disk back: close the connection, take back every grant,
    /// close the event channel, and leave the device `Initialising` with the
    /// backend waiting (`InitWait`) for the next frontend.
    pub fn close(self, xs: &mut Store) -> Result<(), BlkfrontError> {
        self.dev.close(xs)?;
        // The backend has let go (Closed): nothing of ours is mapped.
        let mut keys: Vec<String> =
            ["ring-ref", "ring-page-order", "event-channel", "protocol", "feature-persistent"].iter().map(|s| String::from(*s)).collect();
        for (i, g) in self.ring_grefs.iter().enumerate() {
            keys.push(format!("ring-ref{i}"));
            gnttab::revoke(*g)?;
        }
        for g in self.slots.iter().flat_map(Slot::grants) {
            gnttab::revoke(g)?;
        }
        let _ = evtchn::close(self.port);
        let key_refs: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        self.dev.reset(xs, &key_refs)?;
        // SAFETY: every grant on these pages is revoked and the backend is
        // disconnected; they are ours again.
        unsafe {
            free_pages(self.ring_base, self.ring_grefs.len());
            for s in &self.slots {
                free_pages(s.base, s.grefs.len());
                if s.indirect.0 != 0 {
                    free_pages(s.indirect.0, 1);
                }
            }
        }
        Ok(())
    }
}

/// Wait for the backend to publish its features (`InitWait`): the largest
/// ring order it takes, and how many segments an indirect request may have (0:
/// none).
fn backend_features(xs: &mut Store, dev: &Device) -> Result<(u32, usize), BlkfrontError> {
    const KEYS: [&str; 2] = ["max-ring-page-order", "feature-max-indirect-segments"];
    let seen = dev.step(xs, Step::new().follow().reads(&KEYS))?;
    let seen = dev.wait_backend(xs, seen, "InitWait", |s| s == State::InitWait, |s| s >= State::Closing, &KEYS)?;
    // More than 2^4 pages would be more entries than requests in flight
    // many times over: the cap keeps a lying backend's number small.
    let max_order = seen.parse::<u32>(KEYS[0])?.unwrap_or(0).min(4);
    let indirect = seen.parse::<u32>(KEYS[1])?.unwrap_or(0) as usize;
    Ok((max_order, indirect.min(INDIRECT_SEGMENTS)))
}

impl BlockDevice for BlkFront {
    fn sector_size(&self) -> u32 {
        self.info.sector_size
    }
    fn sectors(&self) -> u64 {
        self.info.sectors
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.info.sector_size, self.info.sectors, sector, buf.len())?;
        let unit = sector * (self.info.sector_size as u64 / 512);
        let len = buf.len();
        self.transfer(OP_READ, unit, len, |_, _| {}, |at, data| buf[at..at + data.len()].copy_from_slice(data))
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(self.info.sector_size, self.info.sectors, sector, buf.len())?;
        if self.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        let unit = sector * (self.info.sector_size as u64 / 512);
        self.transfer(OP_WRITE, unit, buf.len(), |at, slot| slot.copy_from_slice(&buf[at..at + slot.len()]), |_, _| {})
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        if !self.info.flush {
            return Err(BlockError::Unsupported);
        }
        if self.error.is_some() {
            return Err(BlockError::Stopped);
        }
        let Some(id) = self.free_slot() else { return Err(BlockError::Busy) };
        self.slots[id].req = (OP_FLUSH_DISKCACHE, 0);
        self.slots[id].target = (0, 0);
        let req = blkif::encode_request(OP_FLUSH_DISKCACHE, self.dev.id as u16, id as u64, 0, &[]);
        if !self.ring.push(&self.ring_mem, &req) {
            return Err(BlockError::Busy);
        }
        self.out.start(id, OP_FLUSH_DISKCACHE);
        if self.ring.publish(&self.ring_mem) {
            let _ = evtchn::notify(self.port);
        }
        let mut idle = 0;
        while self.out.busy() > 0 {
            self.reap(&mut idle, &mut |_| {})?;
        }
        Ok(())
    }
}
