//! What the server asks of Xen: a guest's ring mapped and its event
//! channel bound (`XS_INTRODUCE`), and both given back (`XS_RELEASE`, a
//! domain's death, a hostile guest dropped).

use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::task::Waker;

use hvmlite::boot::startup;
use hvmlite::rt::{self, reactor};
use hvmlite::xen::evtchn::{self, EvtchnError};
use hvmlite::xen::gntmap::{self, MapError, Mapping};
use hvmlite::xsd::{DomId, Errno, Host, Server};

use crate::ring;

/// Where every domain's xenstore ring is granted (`GNTTAB_RESERVED_XENSTORE`,
/// xen/include/public/grant_table.h); the toolstack sets it up.
const XENSTORE_GREF: u32 = 1;

/// The server and the connections it serves.
pub struct Shared {
    me: Weak<Shared>,
    pub server: RefCell<Server>,
    conns: RefCell<Vec<Conn>>,
}

/// One domain's ring, mapped, and its event channel, bound.
pub struct Conn {
    pub domid: DomId,
    pub port: u32,
    pub mapping: Mapping,
    /// Set when the connection is given back: its task ends.
    pub closed: Rc<Closed>,
}

/// The end of a connection, as its task sees it.
#[derive(Default)]
pub struct Closed {
    pub flag: Cell<bool>,
    pub waker: RefCell<Option<Waker>>,
}

#[derive(Debug)]
pub enum OpenError {
    Map(MapError),
    Bind(EvtchnError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Map(e) => write!(f, "mapping the ring: {e}"),
            OpenError::Bind(e) => write!(f, "binding the event channel: {e}"),
        }
    }
}

impl Shared {
    pub fn new(server: Server) -> Rc<Shared> {
        Rc::new_cyclic(|me| Shared { me: me.clone(), server: RefCell::new(server), conns: RefCell::new(Vec::new()) })
    }

    /// Map `domid`'s ring, bind its `port`, and serve it in a task of its
    /// own.
    pub fn connect(&self, domid: DomId, port: u32) -> Result<(), OpenError> {
        let mapping = gntmap::map(domid, XENSTORE_GREF, false).map_err(OpenError::Map)?;
        let local = match evtchn::bind_interdomain(domid, port) {
            Ok(p) => p,
            Err(e) => {
                let _ = gntmap::unmap(mapping);
                return Err(OpenError::Bind(e));
            }
        };
        let closed = Rc::new(Closed::default());
        self.conns.borrow_mut().push(Conn { domid, port: local, mapping, closed: closed.clone() });
        if let Some(me) = self.me.upgrade() {
            rt::spawn(ring::serve(me, domid, local, closed));
        }
        Ok(())
    }

    /// With `domid`'s connection, if it is still open.
    pub fn with_conn<R>(&self, domid: DomId, f: impl FnOnce(&Conn) -> R) -> Option<R> {
        self.conns.borrow().iter().find(|c| c.domid == domid).map(f)
    }

    /// Let the server handle `bytes` from `domid`, with Xen at hand.
    pub fn receive(&self, domid: DomId, bytes: &[u8]) {
        self.server.borrow_mut().receive(domid, bytes, &mut Hands(self));
    }

    /// The domain is dying or gone: the server forgets it, and its ring
    /// and channel are given back.
    pub fn domain_gone(&self, domid: DomId) {
        self.server.borrow_mut().domain_gone(domid, &mut Hands(self));
    }

    /// A guest that broke the protocol below the server (its ring's
    /// indexes): dropped as the server drops one whose message is too
    /// long, as if it were gone (its watches, transactions and nodes'
    /// ownership go, `@releaseDomain` fires); the domain itself lives on,
    /// unserved, until the toolstack destroys it.
    pub fn drop_connection(&self, domid: DomId) {
        self.domain_gone(domid);
        self.close(domid);
    }

    /// Give back `domid`'s ring and channel, and end its task.
    fn close(&self, domid: DomId) {
        let conn = {
            let mut conns = self.conns.borrow_mut();
            let Some(at) = conns.iter().position(|c| c.domid == domid) else { return };
            conns.swap_remove(at)
        };
        let Conn { port, mapping, closed, .. } = conn;
        let _ = evtchn::close(port);
        reactor::forget(port);
        if let Err(e) = gntmap::unmap(mapping) {
            log::warn!("xenstored: domain {domid}: unmapping its ring: {e}");
        }
        closed.flag.set(true);
        let waker = closed.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
        log::info!("xenstored: domain {domid} released; {} rings mapped", gntmap::in_use());
    }
}

/// The server's hands on Xen while it handles a message.
struct Hands<'a>(&'a Shared);

impl Host for Hands<'_> {
    /// Heap kept free for what the store does not hold for long (requests
    /// being read, replies and events waiting for a ring, a transaction's
    /// commit): an eighth of it. Below that the server refuses what would
    /// keep more instead of failing an allocation, which would crash the
    /// domain and every guest's store with it: 20 guests' worth of dom0's
    /// own nodes did that in 3 MiB.
    fn memory_low(&self) -> bool {
        startup::heap_free() < startup::heap_size() / 8
    }

    fn introduce(&mut self, domid: DomId, _gfn: u64, port: u32) -> Result<(), Errno> {
        self.0.connect(domid, port).map_err(|e| {
            log::warn!("xenstored: introducing domain {domid}: {e}");
            Errno::EINVAL
        })
    }

    fn release(&mut self, domid: DomId) {
        self.0.close(domid);
    }

    fn log(&mut self, line: &str) {
        log::info!("xenstored: {line}");
    }
}
