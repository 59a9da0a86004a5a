//! net-echo-http: the template for a network stubdomain.
//!
//! For each vif the toolstack gave it (`vif = [...]`) it connects a
//! netfront, takes an address (the vif's `ip=`; else, for the first vif,
//! `hvmlite.ip=ADDR/PREFIX[,GATEWAY]` on the command line; else DHCPv4),
//! answers ping, and serves:
//!
//! - TCP echo on port 7;
//! - HTTP on port 80: `/` is the boot report, `/status` is JSON (domid,
//!   uptime from the monotonic clock, bytes served, packet counters).
//!
//! It follows the PV shutdown protocol: on `xl shutdown` it closes its
//! frontends (the backends see `Closed`) and powers off. In between it
//! sleeps in Xen: one `events::wait` for xenstore's and the vifs' event
//! channels, or smoltcp's next timer.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::time::Duration;

use hvmlite::net::smoltcp::socket::tcp;
use hvmlite::net::{IpConfig, Listeners, Stack};
use hvmlite::platform::{self, Shutdown};
use hvmlite::xen::control::{self, Request};
use hvmlite::xen::netfront::NetFront;
use hvmlite::xen::{events, store::Store, time, xenbus};
use hvmlite::Boot;

hvmlite::app!(main);

const ECHO_PORT: u16 = 7;
const HTTP_PORT: u16 = 80;
/// Sockets kept listening per port: smoltcp has no accept queue, so a
/// burst of N connections needs N listening sockets.
const HTTP_SPARE: usize = 40;
const ECHO_SPARE: usize = 4;
/// A request line and headers larger than this are refused.
const MAX_REQUEST: usize = 2048;

fn fail(what: &str, e: &dyn core::fmt::Display) -> ! {
    platform::fatal(format_args!("net-echo-http: {what}: {e}"))
}

fn now_us() -> i64 {
    (time::now().as_ns() / 1000) as i64
}

/// One HTTP connection's request so far and its answer.
#[derive(Default)]
struct Http {
    req: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
}

struct Vif {
    nf: NetFront,
    stack: Stack,
    echo: Listeners,
    http: Listeners,
    conns: Vec<Http>,
    name: String,
}

/// What the app counts, for `/status`.
#[derive(Default)]
struct Counters {
    bytes_served: u64,
    echo_bytes: u64,
    http_requests: u64,
}

fn main(boot: Boot) -> ! {
    log::info!("net-echo-http: up on {} with {} KiB of heap", boot.hypervisor, boot.heap.len() / 1024);
    let Some(xs) = boot.xenstore() else { off_xen() };
    let mut xs = xs.unwrap_or_else(|e| fail("xenstore", &e));
    control::advertise(&mut xs).unwrap_or_else(|e| fail("control", &e));
    let domid = xs.read("domid").unwrap_or_default();
    let mut report = String::new();
    boot.report_to(&mut |line| {
        let _ = writeln!(report, "hvmlite: {line}");
    });

    let cmdline_ip = boot.args().find_map(|a| a.strip_prefix("hvmlite.ip="));
    let devs = xenbus::devices(&mut xs, "vif").unwrap_or_else(|e| fail("vif", &e));
    if devs.is_empty() {
        fail("vif", &"no vif: give the domain one (vif = [...] in its xl config)");
    }
    let mut vifs = Vec::new();
    for (i, dev) in devs.into_iter().enumerate() {
        let name = format!("vif/{}", dev.id);
        let mut nf = NetFront::open(&mut xs, dev).unwrap_or_else(|e| fail(&name, &e));
        let (config, source) = match nf.ip.as_deref().map(|s| (s, IpConfig::from_vif(s))) {
            Some((_, Some(c))) => (Some(c), "vif ip"),
            Some((s, None)) => fail(&name, &format_args!("the vif's ip {s:?} is not an IPv4 address")),
            None => match cmdline_ip.filter(|_| i == 0) {
                Some(s) => (
                    Some(
                        IpConfig::parse(s, None).unwrap_or_else(|| fail("hvmlite.ip", &format_args!("{s:?} is not ADDR/PREFIX[,GATEWAY]"))),
                    ),
                    "hvmlite.ip",
                ),
                None => (None, "dhcp"),
            },
        };
        let m = nf.mac();
        let seed = time::now().as_ns() ^ ((i as u64) << 48);
        let mut stack = Stack::new(&mut nf, config, now_us(), seed);
        let echo = Listeners::new(&mut stack, ECHO_PORT, 32 * 1024, 32 * 1024, ECHO_SPARE, 2 * ECHO_SPARE);
        let http = Listeners::new(&mut stack, HTTP_PORT, MAX_REQUEST, 4096, HTTP_SPARE, 2 * HTTP_SPARE);
        let addr = match config {
            Some(c) => format!("{} ({source})", c.cidr),
            None => String::from("from DHCP (waiting)"),
        };
        log::info!(
            "net-echo-http: {name}: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, address {addr}",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5]
        );
        if let Some(c) = config {
            let _ = xs.write(&format!("data/net/{}/ip", i), &format!("{}", c.cidr.address()));
            stack.announce(&mut nf);
        }
        vifs.push(Vif { nf, stack, echo, http, conns: Vec::new(), name });
    }
    let _ = xs.write("data/net/state", "ready");
    log::info!("net-echo-http: ready: echo on port {ECHO_PORT}, http on port {HTTP_PORT}");

    let mut ports: Vec<u32> = vifs.iter().map(|v| v.nf.port()).collect();
    ports.push(xs.transport().port());
    let mut c = Counters::default();
    loop {
        // Move packets and serve until nothing more happens.
        for round in 0..64 {
            let mut busy = false;
            for (i, v) in vifs.iter_mut().enumerate() {
                let p = v.stack.poll(&mut v.nf, now_us());
                busy |= p.sockets;
                if let Some(cfg) = p.dhcp {
                    match cfg {
                        Some(cfg) => {
                            log::info!("net-echo-http: {}: address {} (dhcp)", v.name, cfg.cidr);
                            v.stack.announce(&mut v.nf);
                            let _ = xs.write(&format!("data/net/{i}/ip"), &format!("{}", cfg.cidr.address()));
                        }
                        None => log::info!("net-echo-http: {}: dhcp lease lost", v.name),
                    }
                }
                busy |= serve_echo(v, &mut c);
                busy |= serve_http(v, &mut c, &report, &domid);
                v.echo.maintain(&mut v.stack);
                v.http.maintain(&mut v.stack);
                if let Some(e) = v.nf.broken() {
                    fail(&v.name, e);
                }
            }
            if !busy || round == 63 {
                break;
            }
        }
        while let Some(ev) = xs.poll_event().unwrap_or_else(|e| fail("xenstore", &e)) {
            if ev.token == control::TOKEN {
                let how = match control::take_request(&mut xs) {
                    Ok(Some(Request::Poweroff)) => Shutdown::Poweroff,
                    Ok(Some(Request::Reboot)) => Shutdown::Reboot,
                    _ => continue,
                };
                close_all(vifs, &mut xs);
                platform::shutdown(how);
            }
        }
        let now = now_us();
        let delay = vifs.iter_mut().filter_map(|v| v.stack.poll_delay_us(now)).min().unwrap_or(10_000_000).min(10_000_000);
        events::wait(&ports, Some(time::now() + Duration::from_micros(delay)));
    }
}

/// Hand every vif back to its backend before powering off.
fn close_all(vifs: Vec<Vif>, xs: &mut Store) {
    for v in vifs {
        let s = v.nf.stats();
        match v.nf.close(xs) {
            Ok(()) => log::info!(
                "net-echo-http: {}: closed ({} packets in, {} out, {} dropped, {} bad responses)",
                v.name,
                s.rx_packets,
                s.tx_packets,
                s.rx_dropped,
                s.bad_responses
            ),
            Err(e) => log::warn!("net-echo-http: {}: close: {e}", v.name),
        }
    }
}

/// Port 7: send back what arrives; close when the peer has closed and
/// everything went back.
fn serve_echo(v: &mut Vif, c: &mut Counters) -> bool {
    let mut work = false;
    let mut tmp = [0u8; 4096];
    for &h in &v.echo.handles {
        let s = v.stack.tcp(h);
        while s.can_recv() {
            let room = (s.send_capacity() - s.send_queue()).min(tmp.len());
            if room == 0 {
                break;
            }
            let n = s.recv_slice(&mut tmp[..room]).unwrap_or(0);
            if n == 0 {
                break;
            }
            let _ = s.send_slice(&tmp[..n]);
            c.echo_bytes += n as u64;
            c.bytes_served += n as u64;
            work = true;
        }
        if s.state() == tcp::State::CloseWait && s.recv_queue() == 0 && s.send_queue() == 0 {
            s.close();
            work = true;
        }
    }
    work
}

/// Port 80: read one request, answer it, close.
fn serve_http(v: &mut Vif, c: &mut Counters, report: &str, domid: &str) -> bool {
    let mut work = false;
    v.conns.resize_with(v.http.handles.len(), Http::default);
    let cfg = v.stack.config();
    for (i, &h) in v.http.handles.iter().enumerate() {
        let s = v.stack.sockets.get_mut::<tcp::Socket>(h);
        let conn = &mut v.conns[i];
        if !s.is_active() {
            if !conn.req.is_empty() || !conn.out.is_empty() {
                *conn = Http::default();
            }
            continue;
        }
        if conn.out.is_empty() {
            while s.can_recv() && conn.req.len() < MAX_REQUEST {
                let mut tmp = [0u8; 512];
                let room = (MAX_REQUEST - conn.req.len()).min(tmp.len());
                let n = s.recv_slice(&mut tmp[..room]).unwrap_or(0);
                if n == 0 {
                    break;
                }
                conn.req.extend_from_slice(&tmp[..n]);
                work = true;
            }
            let complete = conn.req.windows(4).any(|w| w == b"\r\n\r\n") || conn.req.windows(2).any(|w| w == b"\n\n");
            // The peer closed its side (CLOSE-WAIT): answer what came, if
            // anything. (Not `!may_recv()`: that is also true while the
            // handshake is still on.)
            let peer_done = s.state() == tcp::State::CloseWait;
            if complete || conn.req.len() >= MAX_REQUEST || (peer_done && !conn.req.is_empty()) {
                let stats = v.nf.stats();
                c.http_requests += 1;
                conn.out = answer(&conn.req, report, domid, c, &stats, cfg);
                conn.sent = 0;
            } else if peer_done {
                s.close();
                continue;
            }
        }
        if !conn.out.is_empty() {
            while conn.sent < conn.out.len() && s.can_send() {
                let n = s.send_slice(&conn.out[conn.sent..]).unwrap_or(0);
                if n == 0 {
                    break;
                }
                conn.sent += n;
                c.bytes_served += n as u64;
                work = true;
            }
            if conn.sent == conn.out.len() && s.may_send() {
                s.close();
                work = true;
            }
        }
    }
    work
}

/// The whole response to one request.
fn answer(req: &[u8], report: &str, domid: &str, c: &Counters, stats: &hvmlite::xen::netfront::Stats, cfg: Option<IpConfig>) -> Vec<u8> {
    let line = req.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = core::str::from_utf8(line).unwrap_or("").trim_end();
    let mut words = line.split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path) {
        ("GET", "/") => ("200 OK", "text/plain", String::from(report)),
        ("GET", "/status") => {
            let up = time::since_boot();
            let ip = cfg.map(|c| format!("{}", c.cidr.address())).unwrap_or_default();
            let body = format!(
                "{{\"domid\":{},\"uptime_ms\":{},\"ip\":\"{}\",\"bytes_served\":{},\"echo_bytes\":{},\"http_requests\":{},\"rx_packets\":{},\"tx_packets\":{},\"rx_dropped\":{},\"bad_responses\":{}}}\n",
                domid.parse::<u32>().unwrap_or(0),
                up.as_millis(),
                ip,
                c.bytes_served,
                c.echo_bytes,
                c.http_requests,
                stats.rx_packets,
                stats.tx_packets,
                stats.rx_dropped,
                stats.bad_responses
            );
            ("200 OK", "application/json", body)
        }
        ("GET", _) => ("404 Not Found", "text/plain", String::from("not found\n")),
        _ => ("400 Bad Request", "text/plain", String::from("bad request\n")),
    };
    let mut out =
        format!("HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// No Xen, no vif: say so and power off.
fn off_xen() -> ! {
    log::info!("net-echo-http: no xenstore (not a Xen domU), so no vif; powering off");
    platform::shutdown(Shutdown::Poweroff)
}
