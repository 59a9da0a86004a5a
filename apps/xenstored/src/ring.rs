//! Moving bytes between a guest's xenstore ring and the server.
//!
//! The ring page (`struct xenstore_domain_interface`, xs_wire.h) is the
//! guest's: requests come in on `req` (we own `req_cons`), replies and
//! watch events go out on `rsp` (we own `rsp_prod`). `hvmlite::xen::ring`
//! reads each index once and checks it, so a guest that writes nonsense
//! into its indexes gets its connection dropped, never an access outside
//! the page.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use hvmlite::rt::reactor::{self, PortEvent};
use hvmlite::xen::evtchn;
use hvmlite::xen::page::SharedPage;
use hvmlite::xen::ring::Corrupt;
use hvmlite::xen::xenstore::{REQ, RSP};
use hvmlite::xsd::DomId;

use crate::host::{Closed, Conn, Shared};

/// Serve `domid` until its connection is given back: after each event on
/// its channel take what it wrote, and write out what is queued.
pub async fn serve(shared: Rc<Shared>, domid: DomId, port: u32, closed: Rc<Closed>) {
    loop {
        pump(&shared, domid);
        flush_all(&shared);
        if !(Wait { port: reactor::port_event(port), closed: &closed }).await {
            return;
        }
    }
}

/// The ring's page, as mapped for `c`.
fn page(c: &Conn) -> SharedPage {
    // SAFETY: the mapping stays in place while the connection is open, and
    // every caller looks the connection up afresh.
    unsafe { SharedPage::new(c.mapping.addr) }
}

/// Take requests from `domid`'s ring while the server has room for them.
fn pump(shared: &Shared, domid: DomId) {
    // Requests held back while this guest's output was full go first.
    shared.receive(domid, &[]);
    let mut buf = [0u8; 1024];
    let mut took = false;
    loop {
        let room = shared.server.borrow().room(domid).min(buf.len());
        if room == 0 {
            break;
        }
        let Some(got) = shared.with_conn(domid, |c| REQ.consume(&page(c), &mut buf[..room])) else { return };
        match got {
            Ok(0) => break,
            Ok(n) => {
                took = true;
                shared.receive(domid, &buf[..n]);
            }
            Err(e) => return drop_corrupt(shared, domid, e),
        }
    }
    if took {
        // The guest may wait for room in its request ring.
        shared.with_conn(domid, |c| evtchn::notify(c.port));
    }
}

/// Write what the server queued for every connection into its ring, as
/// far as each ring has room.
pub fn flush_all(shared: &Shared) {
    let waiting: Vec<DomId> = shared.server.borrow().with_output().collect();
    for d in waiting {
        match flush(shared, d) {
            Some(Ok(n)) if n > 0 => {
                let _ = shared.with_conn(d, |c| evtchn::notify(c.port));
            }
            Some(Err(e)) => drop_corrupt(shared, d, e),
            _ => {}
        }
    }
}

/// Write `d`'s output until it is all out or the ring is full: how much.
fn flush(shared: &Shared, d: DomId) -> Option<Result<usize, Corrupt>> {
    shared.with_conn(d, |c| {
        let page = page(c);
        let mut total = 0;
        loop {
            let n = {
                let server = shared.server.borrow();
                let out = server.output(d);
                if out.is_empty() {
                    break;
                }
                RSP.produce(&page, out)?
            };
            if n == 0 {
                break;
            }
            shared.server.borrow_mut().advance(d, n);
            total += n;
        }
        Ok(total)
    })
}

/// A guest whose ring indexes are impossible loses its connection; the
/// others go on.
fn drop_corrupt(shared: &Shared, domid: DomId, e: Corrupt) {
    log::warn!("xenstored: domain {domid}: {e}; dropping its connection");
    shared.drop_connection(domid);
}

/// An event on the connection's channel (`true`), or its end (`false`).
struct Wait<'a> {
    port: PortEvent,
    closed: &'a Closed,
}

impl Future for Wait<'_> {
    type Output = bool;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if self.closed.flag.get() {
            return Poll::Ready(false);
        }
        *self.closed.waker.borrow_mut() = Some(cx.waker().clone());
        Pin::new(&mut self.port).poll(cx).map(|()| true)
    }
}
