//! The network for tasks: per vif, one stack task moves packets between
//! the netfront and smoltcp; apps use sockets.
//!
//! - [`up`] opens every vif the toolstack gave the domain, takes its
//!   address (the vif's `ip=`; else, for the first vif, `hvmlite.ip=` on
//!   the command line; else DHCPv4), publishes it at `data/net/N/ip`, and
//!   hands the vif to the runtime, which closes it at shutdown;
//! - [`Vif::listen`] gives a [`TcpListener`] with an accept queue of
//!   `backlog` connections (while it is full, SYNs are dropped and the
//!   peers retry, as with Linux); [`TcpListener::accept`] a [`TcpStream`],
//!   which implements `embedded-io-async`'s `Read` and `Write`;
//! - [`Vif::udp`] gives a [`UdpSocket`].
//!
//! The stack task sleeps until the vif's event channel fires, smoltcp's
//! next timer is due, or a task wrote to a socket.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Poll, Waker};
use core::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::IpEndpoint;

use crate::boot::Boot;
use crate::net::{Backlog, IpConfig, Stack};
use crate::platform;
use crate::rt::{reactor, time, xs};
use crate::xen::netfront::{NetFront, Stats};
use crate::xen::xenbus;

/// Buffers of a [`Vif::listen`]ed connection, each way.
pub const TCP_BUFFER: usize = 16 * 1024;

/// Heap kept free before a listener takes on another connection: the
/// connection's task and what it allocates come out of it.
pub const HEAP_RESERVE: usize = 128 * 1024;

/// May a listener take on another connection (the heap keeps its reserve)?
fn heap_room() -> bool {
    crate::boot::startup::heap_free() >= HEAP_RESERVE
}

/// Why a socket operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer reset the connection, or it timed out.
    Reset,
    /// Writing after our side was closed.
    Closed,
    /// No room in the heap for the socket's buffers.
    NoMemory,
    /// The port is taken.
    InUse,
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NetError::Reset => "connection reset",
            NetError::Closed => "connection closed",
            NetError::NoMemory => "no memory for the socket",
            NetError::InUse => "port in use",
        })
    }
}

impl core::error::Error for NetError {}

impl embedded_io_async::Error for NetError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        match self {
            NetError::Reset => embedded_io_async::ErrorKind::ConnectionReset,
            NetError::Closed => embedded_io_async::ErrorKind::NotConnected,
            NetError::NoMemory => embedded_io_async::ErrorKind::OutOfMemory,
            NetError::InUse => embedded_io_async::ErrorKind::AddrInUse,
        }
    }
}

struct Inner {
    name: String,
    index: usize,
    /// The event channels, TX and RX (new ones after a resume).
    ports: Cell<[u32; 2]>,
    dev: RefCell<Option<NetFront>>,
    stack: RefCell<Stack>,
    /// A task changed a socket: the stack should run.
    poked: Cell<bool>,
    driver: RefCell<Option<Waker>>,
    /// Streams dropped, still closing: removed once closed.
    closing: RefCell<Vec<SocketHandle>>,
    backlogs: RefCell<Vec<Backlog>>,
    /// Tasks waiting for an address.
    addr_waiters: RefCell<Vec<Waker>>,
}

impl Inner {
    fn poke(&self) {
        self.poked.set(true);
        if let Some(w) = self.driver.borrow_mut().take() {
            w.wake();
        }
    }
    fn with_tcp<R>(&self, h: SocketHandle, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> R {
        f(self.stack.borrow_mut().tcp(h))
    }
}

/// One vif, up: cheap to clone.
#[derive(Clone)]
pub struct Vif(Rc<Inner>);

/// Open every vif (see the module's text). No vif at all is an error.
/// Make the listeners before the next `.await`: the vifs' stack tasks
/// first run then, and a connection that comes before its listener is
/// reset.
pub async fn up(boot: &Boot) -> Result<Vec<Vif>, String> {
    let Some(xs) = crate::rt::xenstore() else { return Err(String::from("no xenstore (not a Xen domU), so no vif")) };
    let cmdline_ip = boot.args().find_map(|a| a.strip_prefix("hvmlite.ip="));
    let devs = xs.blocking(|s| xenbus::devices(s, "vif")).map_err(|e| format!("vif: {e}"))?;
    if devs.is_empty() {
        return Err(String::from("no vif: give the domain one (vif = [...] in its xl config)"));
    }
    let mut out = Vec::new();
    for (i, dev) in devs.into_iter().enumerate() {
        let name = format!("vif/{}", dev.id);
        let mut nf = xs.blocking(|s| NetFront::open(s, dev)).map_err(|e| format!("{name}: {e}"))?;
        let (config, source) = match nf.ip.as_deref().map(|s| (s, IpConfig::from_vif(s))) {
            Some((_, Some(c))) => (Some(c), "vif ip"),
            Some((s, None)) => return Err(format!("{name}: the vif's ip {s:?} is not an IPv4 address")),
            None => match cmdline_ip.filter(|_| i == 0) {
                Some(s) => {
                    (Some(IpConfig::parse(s, None).ok_or_else(|| format!("hvmlite.ip: {s:?} is not ADDR/PREFIX[,GATEWAY]"))?), "hvmlite.ip")
                }
                None => (None, "dhcp"),
            },
        };
        let m = nf.mac();
        let now = time::now();
        let seed = now.as_ns() ^ ((i as u64) << 48);
        let stack = Stack::new(&mut nf, config, (now.as_ns() / 1000) as i64, seed);
        let addr = config.map_or(String::from("from DHCP (waiting)"), |c| format!("{} ({source})", c.cidr));
        log::info!("net: {name}: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, address {addr}", m[0], m[1], m[2], m[3], m[4], m[5]);
        let ports = nf.ports();
        let vif = Vif(Rc::new(Inner {
            name: name.clone(),
            index: i,
            ports: Cell::new(ports),
            dev: RefCell::new(Some(nf)),
            stack: RefCell::new(stack),
            poked: Cell::new(false),
            driver: RefCell::new(None),
            closing: RefCell::new(Vec::new()),
            backlogs: RefCell::new(Vec::new()),
            addr_waiters: RefCell::new(Vec::new()),
        }));
        if let Some(c) = config {
            vif.configured(&xs, c).await;
        }
        let v = vif.0.clone();
        let xs2 = xs.clone();
        crate::rt::on_shutdown(name.clone(), move || close(&v, &xs2));
        let (v, xs2) = (vif.0.clone(), xs.clone());
        crate::rt::on_resume(name, move || resume(&v, &xs2));
        out.push(vif);
    }
    // The stack tasks start now: they first run when the caller next
    // waits, so listeners made before that are there for the first SYN
    // (an early one would otherwise be reset).
    for v in &out {
        crate::rt::spawn(drive(v.0.clone(), xs.clone()));
    }
    Ok(out)
}

/// Hand the vif back to its backend.
fn close(v: &Inner, xs: &xs::Store) {
    let Some(nf) = v.dev.borrow_mut().take() else { return };
    let s = nf.stats();
    match xs.blocking(|x| nf.close(x)) {
        Ok(()) => log::info!(
            "net: {}: closed ({} packets in, {} out, {} dropped, {} bad responses)",
            v.name,
            s.rx_packets,
            s.tx_packets,
            s.rx_dropped,
            s.bad_responses
        ),
        Err(e) => log::warn!("net: {}: close: {e}", v.name),
    }
    v.ports.get().into_iter().for_each(reactor::forget);
}

/// In a new domain: connect to the new backend, then say where our
/// address is now (a gratuitous ARP: the bridge learns the new port, and
/// peers waiting on us send at once). The sockets keep their state: TCP
/// sends again what was lost on the way.
fn resume(v: &Inner, xs: &xs::Store) -> Result<String, String> {
    let mut dev = v.dev.borrow_mut();
    let Some(nf) = dev.as_mut() else { return Ok(String::from(" (closed)")) };
    if let Err(e) = xs.blocking(|s| nf.reconnect(s)) {
        // The device is over: its stack task ends.
        dev.take();
        drop(dev);
        v.poke();
        return Err(format!("{e}"));
    }
    v.ports.set(nf.ports());
    let announced = v.stack.borrow().announce(nf);
    drop(dev);
    v.poke();
    Ok(String::from(if announced { ", address announced" } else { "" }))
}

/// The vif's stack task.
async fn drive(v: Rc<Inner>, xs: xs::Store) {
    loop {
        let now_us = (time::round_now().as_ns() / 1000) as i64;
        let delay = {
            let mut dev = v.dev.borrow_mut();
            let Some(nf) = dev.as_mut() else { return };
            let mut stack = v.stack.borrow_mut();
            v.poked.set(false);
            let p = stack.poll(nf, now_us);
            if let Some(e) = nf.broken() {
                platform::fatal(format_args!("net: {}: {e}", v.name));
            }
            if let Some(cfg) = p.dhcp {
                match cfg {
                    Some(c) => {
                        log::info!("net: {}: address {} (dhcp)", v.name, c.cidr);
                        stack.announce(nf);
                        let (xs, v2) = (xs.clone(), Vif(v.clone()));
                        crate::rt::spawn(async move { v2.configured(&xs, c).await });
                    }
                    None => log::info!("net: {}: dhcp lease lost", v.name),
                }
            }
            v.closing.borrow_mut().retain(|&h| {
                let s = stack.tcp(h);
                if s.state() == tcp::State::TimeWait {
                    s.abort();
                }
                if s.is_open() {
                    return true;
                }
                stack.sockets.remove(h);
                false
            });
            // Another connection only while the heap keeps a reserve for
            // its task and the sockets' traffic: beyond, SYNs wait.
            let room = heap_room();
            for b in v.backlogs.borrow_mut().iter_mut() {
                b.maintain_within(&mut stack, room);
            }
            stack.poll_delay_us(now_us).unwrap_or(10_000_000).min(10_000_000)
        };
        if v.poked.get() {
            continue;
        }
        let [tx, rx] = v.ports.get();
        let (mut tx_ev, mut rx_ev) = (pin!(reactor::port_event(tx)), pin!(reactor::port_event(rx)));
        let mut sleep = pin!(time::sleep(Duration::from_micros(delay)));
        poll_fn(|cx| {
            // Both polled: each registers its waker.
            let (t, r) = (tx_ev.as_mut().poll(cx).is_ready(), rx_ev.as_mut().poll(cx).is_ready());
            if v.poked.get() || t || r || sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            *v.driver.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

impl Vif {
    /// `vif/N`.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The netfront's counters.
    pub fn stats(&self) -> Stats {
        self.0.dev.borrow().as_ref().map(|d| d.stats()).unwrap_or_default()
    }

    /// The address, once there is one.
    pub fn address(&self) -> Option<IpConfig> {
        self.0.stack.borrow().config()
    }

    /// Wait for an address (DHCP).
    pub async fn address_ready(&self) -> IpConfig {
        poll_fn(|cx| match self.address() {
            Some(c) => Poll::Ready(c),
            None => {
                self.0.addr_waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    async fn configured(&self, xs: &xs::Store, c: IpConfig) {
        {
            let mut dev = self.0.dev.borrow_mut();
            if let Some(nf) = dev.as_mut() {
                self.0.stack.borrow().announce(nf);
            }
        }
        self.0.addr_waiters.take().into_iter().for_each(Waker::wake);
        let _ = xs.write(&format!("data/net/{}/ip", self.0.index), &format!("{}", c.cidr.address())).await;
    }

    /// Listen on `port` with an accept queue of `backlog` connections,
    /// each with [`TCP_BUFFER`] bytes of buffer each way.
    pub fn listen(&self, port: u16, backlog: usize) -> TcpListener {
        self.listen_with(port, backlog, TCP_BUFFER, TCP_BUFFER)
    }

    /// [`listen`](Self::listen) with `rx`/`tx` bytes of buffer per
    /// connection (the receive buffer is the TCP window).
    pub fn listen_with(&self, port: u16, backlog: usize, rx: usize, tx: usize) -> TcpListener {
        let b = Backlog::new(&mut self.0.stack.borrow_mut(), port, backlog, rx, tx);
        self.0.backlogs.borrow_mut().push(b);
        self.0.poke();
        TcpListener { vif: self.clone(), port }
    }

    /// A UDP socket bound to `port`, with room for `packets` datagrams of
    /// up to 1472 bytes each way.
    pub fn udp(&self, port: u16, packets: usize) -> Result<UdpSocket, NetError> {
        let buf = || udp::PacketBuffer::new(alloc::vec![udp::PacketMetadata::EMPTY; packets], alloc::vec![0u8; packets * 1472]);
        let mut s = udp::Socket::new(buf(), buf());
        s.bind(port).map_err(|_| NetError::InUse)?;
        let h = self.0.stack.borrow_mut().sockets.add(s);
        Ok(UdpSocket { vif: self.clone(), h })
    }
}

/// Connections to one port, taken from its accept queue.
pub struct TcpListener {
    vif: Vif,
    port: u16,
}

impl TcpListener {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve every connection with a task of its own, made by `f`; never
    /// returns (spawn it).
    pub async fn serve<F: Future<Output = ()> + 'static>(self, mut f: impl FnMut(TcpStream) -> F) {
        loop {
            crate::rt::spawn(f(self.accept().await));
        }
    }

    /// The next connection that completed its handshake.
    pub async fn accept(&self) -> TcpStream {
        let v = &self.vif.0;
        poll_fn(|cx| {
            let mut stack = v.stack.borrow_mut();
            let mut backlogs = v.backlogs.borrow_mut();
            let Some(b) = backlogs.iter_mut().find(|b| b.port == self.port) else { return Poll::Pending };
            if let Some(h) = b.accept(&mut stack) {
                b.maintain_within(&mut stack, heap_room());
                drop((stack, backlogs));
                v.poke();
                return Poll::Ready(TcpStream { vif: self.vif.clone(), h, done: false });
            }
            for &h in b.handles() {
                stack.tcp(h).register_recv_waker(cx.waker());
            }
            Poll::Pending
        })
        .await
    }
}

/// One TCP connection. Dropping it closes our side (FIN) and the runtime
/// lets the socket go once the close is done.
pub struct TcpStream {
    vif: Vif,
    h: SocketHandle,
    done: bool,
}

impl TcpStream {
    /// Read what has arrived (at least one byte, waiting for it); `Ok(0)`
    /// once the peer has closed its side and everything was read.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        let v = &self.vif.0;
        let r = poll_fn(|cx| {
            v.with_tcp(self.h, |s| match s.recv_slice(buf) {
                Ok(0) if !buf.is_empty() => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
                Ok(n) => Poll::Ready(Ok(n)),
                Err(tcp::RecvError::Finished) => Poll::Ready(Ok(0)),
                Err(tcp::RecvError::InvalidState) => Poll::Ready(Err(NetError::Reset)),
            })
        })
        .await;
        // The window opened: let the stack say so.
        v.poke();
        r
    }

    /// Queue some of `buf` for sending (waiting for room); how much.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        let v = &self.vif.0;
        let r = poll_fn(|cx| {
            v.with_tcp(self.h, |s| {
                if !s.may_send() {
                    return Poll::Ready(Err(if s.is_open() { NetError::Closed } else { NetError::Reset }));
                }
                match s.send_slice(buf) {
                    Ok(0) if !buf.is_empty() => {
                        s.register_send_waker(cx.waker());
                        Poll::Pending
                    }
                    Ok(n) => Poll::Ready(Ok(n)),
                    Err(_) => Poll::Ready(Err(NetError::Reset)),
                }
            })
        })
        .await;
        v.poke();
        r
    }

    /// Queue all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> Result<(), NetError> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Wait until everything written has been acknowledged.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        let v = &self.vif.0;
        poll_fn(|cx| {
            v.with_tcp(self.h, |s| {
                if s.send_queue() == 0 {
                    Poll::Ready(Ok(()))
                } else if !s.is_open() {
                    Poll::Ready(Err(NetError::Reset))
                } else {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Close our side: what was written still goes, then a FIN.
    pub fn close(mut self) {
        self.finish();
    }

    /// Drop the connection at once with a reset.
    pub fn abort(mut self) {
        self.vif.0.with_tcp(self.h, |s| s.abort());
        self.finish();
    }

    pub fn remote(&self) -> Option<IpEndpoint> {
        self.vif.0.with_tcp(self.h, |s| s.remote_endpoint())
    }

    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.vif.0.with_tcp(self.h, |s| s.close());
        self.vif.0.closing.borrow_mut().push(self.h);
        self.vif.0.poke();
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.finish();
    }
}

impl embedded_io_async::ErrorType for TcpStream {
    type Error = NetError;
}

impl embedded_io_async::Read for TcpStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        TcpStream::read(self, buf).await
    }
}

impl embedded_io_async::Write for TcpStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        TcpStream::write(self, buf).await
    }
    async fn flush(&mut self) -> Result<(), NetError> {
        TcpStream::flush(self).await
    }
}

/// A UDP socket.
pub struct UdpSocket {
    vif: Vif,
    h: SocketHandle,
}

impl UdpSocket {
    /// The next datagram that fits `buf`: its length and sender.
    pub async fn recv_from(&mut self, buf: &mut [u8]) -> (usize, IpEndpoint) {
        let v = &self.vif.0;
        poll_fn(|cx| {
            let mut stack = v.stack.borrow_mut();
            let s = stack.sockets.get_mut::<udp::Socket>(self.h);
            loop {
                match s.recv_slice(buf) {
                    Ok((n, meta)) => return Poll::Ready((n, meta.endpoint)),
                    // Longer than `buf`: dropped, as a datagram socket does.
                    Err(udp::RecvError::Truncated) => continue,
                    Err(udp::RecvError::Exhausted) => {
                        s.register_recv_waker(cx.waker());
                        return Poll::Pending;
                    }
                }
            }
        })
        .await
    }

    /// Send one datagram to `to` (waiting for room).
    pub async fn send_to(&mut self, data: &[u8], to: IpEndpoint) -> Result<(), NetError> {
        let v = &self.vif.0;
        let r = poll_fn(|cx| {
            let mut stack = v.stack.borrow_mut();
            let s = stack.sockets.get_mut::<udp::Socket>(self.h);
            match s.send_slice(data, to) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(udp::SendError::BufferFull) => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(NetError::Closed)),
            }
        })
        .await;
        v.poke();
        r
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.vif.0.stack.borrow_mut().sockets.remove(self.h);
    }
}
