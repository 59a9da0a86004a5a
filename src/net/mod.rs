//! TCP/IP for apps: smoltcp (ARP, IPv4, ICMP echo, UDP, TCP, DHCPv4) on
//! any [`NetDevice`]. This folder sees only `dev`, never Xen: the same
//! code runs on the Xen netfront and on a [`Loopback`](crate::dev::net::Loopback)
//! pair in host tests.
//!
//! - [`Phy`] lends a `NetDevice` to smoltcp as its `phy::Device`: the
//!   tokens pass straight through, so a frame is read where the device
//!   received it and written where the device sends it from.
//! - [`Stack`]: one interface and its sockets, with the address from a
//!   static [`IpConfig`] or from DHCPv4, and time given by the caller in
//!   microseconds (the app reads its clock; this folder has none).
//! - [`Backlog`]: an accept queue of a fixed size on a port, as a Unix
//!   `listen(backlog)`: connections are taken with [`Backlog::accept`];
//!   while `backlog` of them wait, a new SYN is dropped unanswered (the
//!   peer sends it again a second later, as with Linux's full queue).

use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;

pub use smoltcp;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress, IpCidr, Ipv4Address,
    Ipv4Cidr,
};

use crate::dev::net::{NetDevice, RxToken, TxToken};

/// A [`NetDevice`] as smoltcp's `phy::Device`. For each guarded port, a
/// budget of SYNs (its listening sockets): a SYN past the budget is
/// dropped, so smoltcp never answers it with a reset.
pub struct Phy<'d, D: NetDevice>(pub &'d mut D, pub &'d [(u16, Cell<usize>)]);

pub struct PhyRx<'p, T>(T, &'p [(u16, Cell<usize>)]);
pub struct PhyTx<T>(T);

impl<T: RxToken> phy::RxToken for PhyRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let budget = self.1;
        self.0.consume(|b| {
            let over = syn_to(b).and_then(|p| budget.iter().find(|(q, _)| *q == p)).is_some_and(|(_, left)| {
                let n = left.get();
                left.set(n.saturating_sub(1));
                n == 0
            });
            // A dropped frame reaches smoltcp empty: too short to parse, it
            // is discarded without an answer.
            if over {
                f(&[])
            } else {
                f(b)
            }
        })
    }
}

/// The destination port of an IPv4 TCP SYN (without ACK) in an Ethernet
/// frame; `None` for anything else, or anything too short to tell.
pub fn syn_to(frame: &[u8]) -> Option<u16> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = smoltcp::wire::Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != smoltcp::wire::IpProtocol::Tcp || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = smoltcp::wire::TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| tcp.dst_port())
}

impl<T: TxToken> phy::TxToken for PhyTx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.consume(len, f)
    }
}

impl<D: NetDevice> phy::Device for Phy<'_, D> {
    type RxToken<'a>
        = PhyRx<'a, D::Rx<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = PhyTx<D::Tx<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let budget = self.1;
        self.0.receive().map(|(r, t)| (PhyRx(r, budget), PhyTx(t)))
    }
    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit().map(PhyTx)
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.0.max_frame();
        if self.0.rx_checksums_checked() {
            // Compute TCP/UDP checksums on what we send, do not check them
            // again on what the device already checked.
            c.checksum.tcp = Checksum::Tx;
            c.checksum.udp = Checksum::Tx;
        }
        c
    }
}

/// A static address: `ADDR/PREFIX[,GATEWAY]`, as on the command line
/// (`hvmlite.ip=`) or in a vif's `ip` key (where a bare address means /24).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpConfig {
    pub cidr: Ipv4Cidr,
    pub gateway: Option<Ipv4Address>,
}

impl IpConfig {
    /// `10.0.0.2/24`, `10.0.0.2/24,10.0.0.1`, or `10.0.0.2` (/`default_prefix`).
    pub fn parse(s: &str, default_prefix: Option<u8>) -> Option<IpConfig> {
        let (cidr, gw) = match s.trim().split_once(',') {
            Some((c, g)) => (c, Some(g.trim().parse::<Ipv4Address>().ok()?)),
            None => (s.trim(), None),
        };
        let (addr, prefix) = match cidr.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().ok()?),
            None => (cidr, default_prefix?),
        };
        let addr: Ipv4Address = addr.parse().ok()?;
        if prefix > 32 || addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            return None;
        }
        Some(IpConfig { cidr: Ipv4Cidr::new(addr, prefix), gateway: gw })
    }

    /// A vif's `ip` key: one or more addresses separated by spaces; the
    /// first is ours.
    pub fn from_vif(s: &str) -> Option<IpConfig> {
        IpConfig::parse(s.split_whitespace().next()?, Some(24))
    }
}

/// One interface, its sockets, and its address.
pub struct Stack {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    config: Option<IpConfig>,
    /// Ports with an accept queue ([`Backlog`]): a SYN to one of them
    /// is dropped when no socket listens there, not reset.
    pub guarded: Vec<u16>,
}

/// What changed in a [`Stack::poll`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Sockets may have data or changed state.
    pub sockets: bool,
    /// DHCP gave (`Some`) or took away (`None` inside) an address.
    pub dhcp: Option<Option<IpConfig>>,
}

impl Stack {
    /// A stack on `dev` at `now_us`: with `config`, that address; without,
    /// a DHCPv4 client asks for one. `seed` seeds TCP's initial sequence
    /// numbers and ports.
    pub fn new<D: NetDevice>(dev: &mut D, config: Option<IpConfig>, now_us: i64, seed: u64) -> Stack {
        let mut c = Config::new(HardwareAddress::Ethernet(EthernetAddress(dev.mac())));
        c.random_seed = seed;
        let iface = Interface::new(c, &mut Phy(dev, &[]), Instant::from_micros(now_us));
        let mut s = Stack { iface, sockets: SocketSet::new(vec![]), dhcp: None, config: None, guarded: Vec::new() };
        match config {
            Some(cfg) => s.set_config(Some(cfg)),
            None => s.dhcp = Some(s.sockets.add(dhcpv4::Socket::new())),
        }
        s
    }

    pub fn config(&self) -> Option<IpConfig> {
        self.config
    }

    fn set_config(&mut self, cfg: Option<IpConfig>) {
        self.iface.update_ip_addrs(|a| {
            a.clear();
            if let Some(c) = cfg {
                let _ = a.push(IpCidr::Ipv4(c.cidr));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = cfg.and_then(|c| c.gateway) {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.config = cfg;
    }

    /// Say on the wire that our address is here: a gratuitous ARP request
    /// (sender and target both our address). A peer that was already
    /// trying to reach us (its neighbour entry waiting for an ARP reply)
    /// sends at once instead of at its next ARP retry, up to a second
    /// later. `false`: no address yet, or no room to send.
    pub fn announce<D: NetDevice>(&self, dev: &mut D) -> bool {
        let Some(c) = self.config else { return false };
        let mac = EthernetAddress(dev.mac());
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: c.cidr.address(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: c.cidr.address(),
        };
        let eth = EthernetRepr { src_addr: mac, dst_addr: EthernetAddress::BROADCAST, ethertype: EthernetProtocol::Arp };
        let Some(tx) = dev.transmit() else { return false };
        tx.consume(eth.buffer_len() + arp.buffer_len(), |buf| {
            let mut frame = EthernetFrame::new_unchecked(buf);
            eth.emit(&mut frame);
            arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        });
        true
    }

    /// Move packets between the device and the sockets, and run DHCP.
    pub fn poll<D: NetDevice>(&mut self, dev: &mut D, now_us: i64) -> Polled {
        let now = Instant::from_micros(now_us);
        let budget: Vec<(u16, Cell<usize>)> = self.guarded.iter().map(|&p| (p, Cell::new(self.listening(p)))).collect();
        let changed = self.iface.poll(now, &mut Phy(dev, &budget), &mut self.sockets);
        let mut p = Polled { sockets: changed == smoltcp::iface::PollResult::SocketStateChanged, dhcp: None };
        if let Some(h) = self.dhcp {
            match self.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
                Some(dhcpv4::Event::Configured(c)) => {
                    let cfg = IpConfig { cidr: c.address, gateway: c.router };
                    self.set_config(Some(cfg));
                    p.dhcp = Some(Some(cfg));
                }
                Some(dhcpv4::Event::Deconfigured) => {
                    self.set_config(None);
                    p.dhcp = Some(None);
                }
                None => {}
            }
        }
        p
    }

    /// How long until the stack needs polling again (a retransmission, a
    /// delayed ACK, DHCP), in microseconds; `None`: only when a packet
    /// arrives.
    pub fn poll_delay_us(&mut self, now_us: i64) -> Option<u64> {
        self.iface.poll_delay(Instant::from_micros(now_us), &self.sockets).map(|d| d.total_micros())
    }

    /// TCP sockets listening on `port`.
    pub fn listening(&self, port: u16) -> usize {
        self.sockets
            .iter()
            .filter(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(t) if t.is_listening() && t.listen_endpoint().port == port))
            .count()
    }

    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}

/// A TCP socket with `rx`/`tx` bytes of buffer, or `None` when the heap
/// has no room for them (the caller refuses the connection instead of
/// the domain dying).
pub fn try_tcp_socket(rx: usize, tx: usize) -> Option<tcp::Socket<'static>> {
    let buf = |n: usize| -> Option<Vec<u8>> {
        let mut v = Vec::new();
        v.try_reserve_exact(n).ok()?;
        v.resize(n, 0);
        Some(v)
    };
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(buf(rx)?), tcp::SocketBuffer::new(buf(tx)?));
    s.set_nagle_enabled(false);
    s.set_ack_delay(Some(Duration::from_millis(1)));
    // A peer that vanishes does not hold a socket for ever.
    s.set_timeout(Some(Duration::from_secs(60)));
    s.set_keep_alive(Some(Duration::from_secs(20)));
    Some(s)
}

/// A port's accept queue: `backlog` sockets not yet accepted, each
/// listening, in its handshake, or connected and waiting for
/// [`accept`](Self::accept). While none of them listens, SYNs to the
/// port are dropped ([`Stack::guarded`]) and the peers retry.
pub struct Backlog {
    pub port: u16,
    waiting: Vec<SocketHandle>,
    backlog: usize,
    rx: usize,
    tx: usize,
}

impl Backlog {
    pub fn new(stack: &mut Stack, port: u16, backlog: usize, rx: usize, tx: usize) -> Backlog {
        let mut b = Backlog { port, waiting: Vec::new(), backlog: backlog.max(1), rx, tx };
        stack.guarded.push(port);
        b.maintain(stack);
        b
    }

    /// Fill the queue up to `backlog` with listening sockets (as far as
    /// the heap allows), and put sockets a peer reset back to listening.
    pub fn maintain(&mut self, stack: &mut Stack) {
        self.maintain_within(stack, true);
    }

    /// [`maintain`](Self::maintain), adding sockets only if `grow` (the
    /// caller's memory reserve allows it).
    pub fn maintain_within(&mut self, stack: &mut Stack, grow: bool) {
        for &h in &self.waiting {
            let s = stack.tcp(h);
            if !s.is_open() {
                let _ = s.listen(self.port);
            }
        }
        while grow && self.waiting.len() < self.backlog {
            let Some(mut s) = try_tcp_socket(self.rx, self.tx) else { break };
            let _ = s.listen(self.port);
            self.waiting.push(stack.sockets.add(s));
        }
    }

    /// A connection that completed its handshake, taken out of the queue
    /// (the caller owns the socket from now on, and refills the queue with
    /// [`maintain`](Self::maintain)).
    pub fn accept(&mut self, stack: &mut Stack) -> Option<SocketHandle> {
        let i = self.waiting.iter().position(|&h| {
            let s = stack.tcp(h);
            s.is_active() && !matches!(s.state(), tcp::State::Listen | tcp::State::SynReceived | tcp::State::SynSent)
        })?;
        Some(self.waiting.swap_remove(i))
    }

    /// Every socket of the queue, for registering wakers on them.
    pub fn handles(&self) -> &[SocketHandle] {
        &self.waiting
    }

    /// Close the queue: its sockets leave the stack.
    pub fn close(self, stack: &mut Stack) {
        for h in self.waiting {
            stack.tcp(h).abort();
            stack.sockets.remove(h);
        }
        if let Some(i) = stack.guarded.iter().position(|&p| p == self.port) {
            stack.guarded.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::net::Loopback;

    #[test]
    fn addresses_parse_and_refuse() {
        let c = IpConfig::parse("10.1.2.3/16,10.1.0.1", None).unwrap();
        assert_eq!(c.cidr, Ipv4Cidr::new(Ipv4Address::new(10, 1, 2, 3), 16));
        assert_eq!(c.gateway, Some(Ipv4Address::new(10, 1, 0, 1)));
        assert_eq!(IpConfig::parse("10.1.2.3", None), None);
        assert_eq!(IpConfig::from_vif("192.168.7.2 192.168.7.3").unwrap().cidr.prefix_len(), 24);
        for bad in ["", "10.1.2.3/33", "x/24", "0.0.0.0/8", "10.1.2.3/24,junk", "255.255.255.255/32"] {
            assert_eq!(IpConfig::parse(bad, Some(24)), None, "{bad}");
        }
    }

    #[test]
    fn an_address_is_announced_by_gratuitous_arp() {
        let mut d = Loopback::new([2, 0, 0, 0, 0, 9]);
        assert!(!Stack::new(&mut d, None, 0, 1).announce(&mut d), "no address, nothing to announce");
        let s = Stack::new(&mut d, IpConfig::parse("10.0.0.9/24", None), 0, 1);
        assert!(s.announce(&mut d));
        let sent = d.take_sent();
        let f = EthernetFrame::new_checked(&sent[sent.len() - 1][..]).unwrap();
        assert_eq!((f.dst_addr(), f.ethertype()), (EthernetAddress::BROADCAST, EthernetProtocol::Arp));
        let a = ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap();
        let ip = Ipv4Address::new(10, 0, 0, 9);
        assert_eq!(
            a,
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
                source_protocol_addr: ip,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: ip,
            }
        );
    }

    /// Two stacks on a loopback wire: `a` at 10.0.0.1, `b` at 10.0.0.2.
    struct Wire {
        da: Loopback,
        db: Loopback,
        a: Stack,
        b: Stack,
    }

    impl Wire {
        fn new() -> Wire {
            let mut da = Loopback::new([2, 0, 0, 0, 0, 1]);
            let mut db = Loopback::new([2, 0, 0, 0, 0, 2]);
            let a = Stack::new(&mut da, IpConfig::parse("10.0.0.1/24", None), 0, 1);
            let b = Stack::new(&mut db, IpConfig::parse("10.0.0.2/24", None), 0, 2);
            Wire { da, db, a, b }
        }
        /// A TCP client on `a`, connecting to `b`'s `port`.
        fn client(&mut self, port: u16) -> SocketHandle {
            self.client_from(port, 40000)
        }
        fn client_from(&mut self, port: u16, local: u16) -> SocketHandle {
            let a = &mut self.a;
            let client = a.sockets.add(tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 8192]), tcp::SocketBuffer::new(vec![0; 8192])));
            a.sockets.get_mut::<tcp::Socket>(client).connect(a.iface.context(), (Ipv4Address::new(10, 0, 0, 2), port), local).unwrap();
            client
        }
        /// Both stacks polled at `t` and what they sent carried across.
        fn tick(&mut self, t: i64) {
            self.a.poll(&mut self.da, t);
            self.b.poll(&mut self.db, t);
            Loopback::exchange(&mut self.da, &mut self.db);
        }
        /// Whatever `client` (on `a`) has received, appended to `got`.
        fn receive(&mut self, client: SocketHandle, got: &mut Vec<u8>) {
            let c = self.a.tcp(client);
            if c.can_recv() {
                c.recv(|buf| {
                    got.extend_from_slice(buf);
                    (buf.len(), ())
                })
                .unwrap();
            }
        }
    }

    /// Two stacks on a loopback wire: a TCP echo across it, byte for byte.
    #[test]
    fn tcp_echo_over_a_loopback_wire() {
        let mut w = Wire::new();
        let mut server = Backlog::new(&mut w.b, 7, 2, 4096, 4096);
        let client = w.client(7);
        let mut conns = Vec::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        let mut t = 0i64;
        while got.len() < data.len() {
            t += 1000;
            assert!(t < 60_000_000, "echo stalled at {} of {} bytes", got.len(), data.len());
            w.tick(t);
            let c = w.a.tcp(client);
            if c.can_send() && sent < data.len() {
                sent += c.send_slice(&data[sent..]).unwrap();
            }
            w.receive(client, &mut got);
            conns.extend(server.accept(&mut w.b));
            for &h in &conns {
                let s = w.b.tcp(h);
                let mut tmp = [0u8; 2048];
                while s.can_recv() && s.send_capacity() - s.send_queue() > 0 {
                    let room = (s.send_capacity() - s.send_queue()).min(tmp.len());
                    let n = s.recv_slice(&mut tmp[..room]).unwrap();
                    if n == 0 {
                        break;
                    }
                    s.send_slice(&tmp[..n]).unwrap();
                }
            }
            server.maintain(&mut w.b);
        }
        assert_eq!(got, data);
        assert_eq!(conns.len(), 1);
        // The queue was refilled: both its sockets listen again.
        assert_eq!(server.handles().iter().filter(|&&h| w.b.tcp(h).is_listening()).count(), 2);
    }

    /// A queue of 2 and 6 clients at once: two connect; the others' SYNs
    /// are dropped (never reset) while nobody accepts, and each connects
    /// on a retry once the first are accepted.
    #[test]
    fn a_full_backlog_drops_syns_and_the_peers_get_in_later() {
        let mut w = Wire::new();
        let mut server = Backlog::new(&mut w.b, 7, 2, 1024, 1024);
        let clients: Vec<SocketHandle> = (0..6).map(|i| w.client_from(7, 41000 + i)).collect();
        let mut t = 0;
        let established = |w: &mut Wire| clients.iter().filter(|&&c| w.a.tcp(c).state() == tcp::State::Established).count();
        for _ in 0..200 {
            t += 1000;
            w.tick(t);
            server.maintain(&mut w.b);
        }
        assert_eq!(established(&mut w), 2, "exactly the backlog got in");
        assert!(clients.iter().all(|&c| w.a.tcp(c).is_open()), "nobody was reset");
        assert_eq!(w.b.listening(7), 0);
        let mut accepted = Vec::new();
        for _ in 0..20_000 {
            t += 1000;
            w.tick(t);
            while let Some(h) = server.accept(&mut w.b) {
                accepted.push(h);
            }
            server.maintain(&mut w.b);
            if accepted.len() == 6 {
                break;
            }
        }
        assert_eq!(accepted.len(), 6, "every client got in after retrying");
        assert_eq!(established(&mut w), 6);
        assert_eq!(w.b.listening(7), 2);
    }

    #[test]
    fn syns_are_told_apart_from_everything_else() {
        let mut w = Wire::new();
        let _ = w.client(80);
        let mut syns = Vec::new();
        for t in 1..50 {
            w.a.poll(&mut w.da, t * 1000);
            w.b.poll(&mut w.db, t * 1000);
            let (fa, fb) = (w.da.take_sent(), w.db.take_sent());
            syns.extend(fa.iter().map(|f| syn_to(f)));
            syns.extend(fb.iter().map(|f| syn_to(f)));
            fa.into_iter().for_each(|f| w.db.deliver(f));
            fb.into_iter().for_each(|f| w.da.deliver(f));
        }
        // ARP both ways, the SYN, and b's reset (nobody listens on 80).
        assert_eq!(syns.iter().filter(|s| s.is_some()).collect::<Vec<_>>(), [&Some(80)], "{syns:?}");
        assert!(syns.len() >= 4, "{syns:?}");
        assert_eq!(syn_to(&[]), None);
        assert_eq!(syn_to(&[0u8; 60]), None);
    }

    /// A server that answers and closes at once (HTTP/1.0): the answer
    /// and the FIN reach the peer, which had already closed its side.
    #[test]
    fn answer_then_close_reaches_the_peer() {
        let mut w = Wire::new();
        let mut server = Backlog::new(&mut w.b, 80, 3, 2048, 4096);
        let mut conns = Vec::new();
        let client = w.client(80);
        let mut t = 0;
        let mut sent = false;
        let mut got = Vec::new();
        let mut answered = false;
        for _ in 0..2000 {
            t += 1000;
            w.tick(t);
            let c = w.a.tcp(client);
            if c.may_send() && !sent {
                c.send_slice(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                c.close();
                sent = true;
            }
            w.receive(client, &mut got);
            conns.extend(server.accept(&mut w.b));
            for &h in &conns {
                let s = w.b.tcp(h);
                if s.can_recv() && !answered {
                    let mut tmp = [0u8; 512];
                    assert!(s.recv_slice(&mut tmp).unwrap() > 0);
                    s.send_slice(&[b'x'; 254]).unwrap();
                    s.close();
                    answered = true;
                }
            }
            server.maintain(&mut w.b);
        }
        assert_eq!(got.len(), 254);
    }
}
