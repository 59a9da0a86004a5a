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
//! - [`Listeners`]: keep enough TCP sockets listening on a port that every
//!   connection finds one (smoltcp has no accept queue: one listening
//!   socket takes one connection).

use alloc::vec;
use alloc::vec::Vec;

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

/// A [`NetDevice`] as smoltcp's `phy::Device`.
pub struct Phy<'d, D: NetDevice>(pub &'d mut D);

pub struct PhyRx<T>(T);
pub struct PhyTx<T>(T);

impl<T: RxToken> phy::RxToken for PhyRx<T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        self.0.consume(|b| f(b))
    }
}

impl<T: TxToken> phy::TxToken for PhyTx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.consume(len, f)
    }
}

impl<D: NetDevice> phy::Device for Phy<'_, D> {
    type RxToken<'a>
        = PhyRx<D::Rx<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = PhyTx<D::Tx<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0.receive().map(|(r, t)| (PhyRx(r), PhyTx(t)))
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
        let iface = Interface::new(c, &mut Phy(dev), Instant::from_micros(now_us));
        let mut s = Stack { iface, sockets: SocketSet::new(vec![]), dhcp: None, config: None };
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
        let changed = self.iface.poll(now, &mut Phy(dev), &mut self.sockets);
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

    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}

/// TCP sockets listening on one port: a pool that grows up to `max`, each
/// with its own `rx`/`tx` buffers, and at least `spare` listening at any
/// time so that a burst of connections all find a socket.
pub struct Listeners {
    pub port: u16,
    pub handles: Vec<SocketHandle>,
    rx: usize,
    tx: usize,
    spare: usize,
    max: usize,
}

impl Listeners {
    pub fn new(stack: &mut Stack, port: u16, rx: usize, tx: usize, spare: usize, max: usize) -> Listeners {
        let mut l = Listeners { port, handles: Vec::new(), rx, tx, spare, max };
        l.maintain(stack);
        l
    }

    fn add(&mut self, stack: &mut Stack) {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; self.rx]), tcp::SocketBuffer::new(vec![0; self.tx]));
        s.set_nagle_enabled(false);
        s.set_ack_delay(Some(Duration::from_millis(1)));
        // A peer that vanishes does not hold a socket for ever.
        s.set_timeout(Some(Duration::from_secs(60)));
        let _ = s.listen(self.port);
        self.handles.push(stack.sockets.add(s));
    }

    /// Listen again on every closed socket; a socket in TIME-WAIT (our
    /// side closed first: the peer has everything) is reused at once;
    /// grow the pool while fewer than `spare` listen.
    pub fn maintain(&mut self, stack: &mut Stack) {
        let mut listening = 0;
        for &h in &self.handles {
            let s = stack.tcp(h);
            if s.state() == tcp::State::TimeWait {
                s.abort();
            }
            if !s.is_open() {
                let _ = s.listen(self.port);
            }
            if s.is_listening() {
                listening += 1;
            }
        }
        while listening < self.spare && self.handles.len() < self.max {
            self.add(stack);
            listening += 1;
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
            let a = &mut self.a;
            let client = a.sockets.add(tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 8192]), tcp::SocketBuffer::new(vec![0; 8192])));
            a.sockets.get_mut::<tcp::Socket>(client).connect(a.iface.context(), (Ipv4Address::new(10, 0, 0, 2), port), 40000).unwrap();
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
        let mut server = Listeners::new(&mut w.b, 7, 4096, 4096, 2, 4);
        let client = w.client(7);
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
            for &h in &server.handles {
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
        // The one socket in use and the spares: at least two listen still.
        assert!(server.handles.iter().filter(|&&h| w.b.tcp(h).is_listening()).count() >= 2);
    }

    /// A server that answers and closes at once (HTTP/1.0): the answer
    /// and the FIN reach the peer, which had already closed its side.
    #[test]
    fn answer_then_close_reaches_the_peer() {
        let mut w = Wire::new();
        let mut server = Listeners::new(&mut w.b, 80, 2048, 4096, 3, 6);
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
            for &h in &server.handles {
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
