//! Disks for tasks: reads, writes and flushes of the PV block frontend as
//! futures, many in flight at once (from one long transfer split into
//! requests, and from several tasks).
//!
//! Each request takes a slot of the frontend (its bounce pages); a task
//! that finds none free waits for a completion. A disk task takes the
//! backend's responses each time its event channel fires and wakes the
//! tasks waiting. A backend that answers nothing for [`TIMEOUT`] ends the
//! device: every request then fails.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::{Poll, Waker};
use core::time::Duration;

use crate::dev::block::{check_request, BlockError};
use crate::payload::disk::vdev_name;
use crate::rt::{reactor, time};
use crate::xen::blkfront::{BlkFront, Info, OP_FLUSH_DISKCACHE, OP_READ, OP_WRITE};
use crate::xen::xenbus;

/// How long a request may wait for the backend.
pub const TIMEOUT: Duration = Duration::from_secs(30);

struct Inner {
    name: String,
    info: Info,
    /// The event channel (a new one after a resume).
    port: Cell<u32>,
    dev: RefCell<Option<BlkFront>>,
    /// Tasks waiting for a completion or a free slot.
    waiting: RefCell<Vec<Waker>>,
}

impl Inner {
    fn wake_all(&self) {
        let w = core::mem::take(&mut *self.waiting.borrow_mut());
        w.into_iter().for_each(Waker::wake);
    }

    fn with<R>(&self, f: impl FnOnce(&mut BlkFront) -> Result<R, BlockError>) -> Result<R, BlockError> {
        match self.dev.borrow_mut().as_mut() {
            Some(d) => f(d),
            None => Err(BlockError::Stopped),
        }
    }
}

/// One disk (cheap to clone).
#[derive(Clone)]
pub struct Disk(Rc<Inner>);

/// Open every disk the toolstack gave the domain (`disk = [...]`),
/// sorted by virtual device; the runtime hands them back at shutdown.
pub async fn disks() -> Result<Vec<Disk>, String> {
    let Some(xs) = crate::rt::xenstore() else { return Err(String::from("no xenstore (not a Xen domU), so no disk")) };
    let devs = xs.blocking(|s| xenbus::devices(s, "vbd")).map_err(|e| format!("disks: {e}"))?;
    let mut out = Vec::new();
    for dev in devs {
        let name = vdev_name(dev.id);
        let bf = xs.blocking(|s| BlkFront::open(s, dev)).map_err(|e| format!("{name}: {e}"))?;
        let d = Disk(Rc::new(Inner {
            name: name.clone(),
            info: bf.info(),
            port: Cell::new(bf.port()),
            dev: RefCell::new(Some(bf)),
            waiting: RefCell::new(Vec::new()),
        }));
        let (inner, xs2) = (d.0.clone(), xs.clone());
        crate::rt::on_shutdown(name.clone(), move || {
            if let Some(bf) = inner.dev.borrow_mut().take() {
                if let Err(e) = xs2.blocking(|s| bf.close(s)) {
                    log::warn!("blk: {}: close: {e}", inner.name);
                }
                reactor::forget(inner.port.get());
            }
        });
        let (inner, xs2) = (d.0.clone(), xs.clone());
        crate::rt::on_resume(name, move || resume(&inner, &xs2));
        crate::rt::spawn(drive(d.0.clone()));
        out.push(d);
    }
    Ok(out)
}

/// In a new domain: connect to the new backend, the requests in flight
/// sent again (their tasks go on waiting for them).
fn resume(d: &Inner, xs: &crate::rt::xs::Store) -> Result<String, String> {
    let mut dev = d.dev.borrow_mut();
    let Some(bf) = dev.as_mut() else { return Ok(String::from(" (closed)")) };
    match xs.blocking(|s| bf.reconnect(s)) {
        Ok(n) => {
            d.port.set(bf.port());
            Ok(format!(", {n} requests sent again"))
        }
        Err(e) => {
            let e = bf.explain(&e);
            // The device is over: its tasks' requests fail.
            dev.take();
            drop(dev);
            d.wake_all();
            Err(e)
        }
    }
}

/// The disk's task: responses in, waiters woken.
async fn drive(d: Rc<Inner>) {
    loop {
        reactor::port_event(d.port.get()).await;
        let r = d.with(|f| f.take_responses());
        d.wake_all();
        if r.is_err() || d.dev.borrow().is_none() {
            return;
        }
    }
}

/// Requests of a transfer still out.
struct Flight(Rc<Inner>, Vec<(usize, usize)>);

impl Drop for Flight {
    fn drop(&mut self) {
        if let Some(f) = self.0.dev.borrow_mut().as_mut() {
            self.1.iter().for_each(|&(id, _)| f.abandon(id));
        }
    }
}

impl Disk {
    /// `xvda`, …
    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn info(&self) -> Info {
        self.0.info
    }

    /// What ended the device, if something did, with `e`.
    pub fn explain(&self, e: impl core::fmt::Display) -> String {
        match self.0.dev.borrow().as_ref() {
            Some(d) => d.explain(e),
            None => format!("{e}"),
        }
    }

    /// Read `buf.len() / sector_size` sectors from `sector`.
    pub async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let unit = self.check(sector, buf.len())?;
        self.transfer(OP_READ, unit, buf.len(), |_, _| &[], |at, data| buf[at..at + data.len()].copy_from_slice(data)).await
    }

    /// Write `buf.len() / sector_size` sectors at `sector`.
    pub async fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let unit = self.check(sector, buf.len())?;
        if self.0.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        self.transfer(OP_WRITE, unit, buf.len(), |at, n| &buf[at..at + n], |_, _| {}).await
    }

    /// Make every completed write durable.
    pub async fn flush(&self) -> Result<(), BlockError> {
        if !self.0.info.flush {
            return Err(BlockError::Unsupported);
        }
        self.transfer(OP_FLUSH_DISKCACHE, 0, 0, |_, _| &[], |_, _| {}).await
    }

    fn check(&self, sector: u64, len: usize) -> Result<u64, BlockError> {
        let i = self.0.info;
        check_request(i.sector_size, i.sectors, sector, len)?;
        Ok(sector * (i.sector_size as u64 / 512))
    }

    /// `len` bytes from 512-byte unit `unit`, as requests of at most
    /// [`BlkFront::slot_bytes`] all in flight together as slots allow. `data(at, n)`
    /// gives a write's bytes; `done(at, bytes)` takes a read's.
    async fn transfer<'b>(
        &self,
        op: u8,
        unit: u64,
        len: usize,
        data: impl Fn(usize, usize) -> &'b [u8],
        mut done: impl FnMut(usize, &[u8]),
    ) -> Result<(), BlockError> {
        let d = &self.0;
        if len == 0 && op != OP_FLUSH_DISKCACHE {
            return Ok(());
        }
        // (slot, offset in the transfer); what is still out if the caller
        // gives up is released when it finishes.
        let mut flight = Flight(d.clone(), Vec::new());
        let flight = &mut flight.1;
        let mut sent = 0usize;
        let mut first = true;
        let work = poll_fn(|cx| {
            loop {
                // Start what fits.
                while sent < len || first {
                    let n = match d.with(|f| Ok(f.slot_bytes())) {
                        Ok(max) => (len - sent).min(max),
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    let bytes = (op == OP_WRITE).then(|| data(sent, n));
                    match d.with(|f| f.try_start(op, unit + (sent / 512) as u64, n, bytes)) {
                        Ok(Some(id)) => {
                            flight.push((id, sent));
                            sent += n;
                            first = false;
                        }
                        Ok(None) => break,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                if let Err(e) = d.with(|f| f.take_responses()) {
                    d.wake_all();
                    return Poll::Ready(Err(e));
                }
                // Collect ours.
                let mut progress = false;
                let mut i = 0;
                while i < flight.len() {
                    let (id, at) = flight[i];
                    let fin = d.with(|f| Ok(f.finished(id)));
                    match fin {
                        Ok(Some(Ok(()))) => {
                            if op == OP_READ {
                                let _ = d.with(|f| {
                                    done(at, f.slot_data(id));
                                    Ok(())
                                });
                            }
                            let _ = d.with(|f| {
                                f.release(id);
                                Ok(())
                            });
                            flight.swap_remove(i);
                            progress = true;
                        }
                        Ok(Some(Err(e))) | Err(e) => return Poll::Ready(Err(e)),
                        Ok(None) => i += 1,
                    }
                }
                if progress {
                    // Slots came free: others may be waiting for one.
                    d.wake_all();
                }
                if flight.is_empty() && sent >= len && !first {
                    return Poll::Ready(Ok(()));
                }
                if !progress {
                    d.waiting.borrow_mut().push(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        });
        match time::timeout(TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => {
                let e = d.with(|f| Err::<(), _>(f.time_out()));
                d.wake_all();
                e
            }
        }
    }
}
