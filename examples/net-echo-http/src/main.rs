//! net-echo-http: the template for a network stubdomain, as tasks on the
//! hvmlite runtime. On every vif: echo on TCP and UDP port 7; HTTP on port
//! 80 (`/` the boot report, `/status` JSON). The runtime does addresses,
//! DHCP, `xl shutdown`, closing. Listen right after `net::up` (no await).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::{format, rc::Rc, string::String};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use core::time::Duration;

use hvmlite::rt::net::{self, TcpStream, Vif};
use hvmlite::rt::{self, http};
use hvmlite::{platform, xen, Boot};

hvmlite::main!(main);

static SERVED: AtomicU64 = AtomicU64::new(0);
static ECHOED: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

async fn main(boot: Boot) {
    let domid: u32 = rt::xenstore().unwrap().read("domid").await.ok().and_then(|d| d.parse().ok()).unwrap_or(0);
    let mut report = String::new();
    boot.report_to(&mut |l| report += &format!("hvmlite: {l}\n"));
    let page = Rc::new((report, domid));
    let vifs = net::up(&boot).await.unwrap_or_else(|e| platform::fatal(format_args!("net-echo-http: {e}")));
    for vif in vifs {
        rt::spawn(vif.listen_with(7, 8, 32 << 10, 32 << 10).serve(echo));
        let mut udp = vif.udp(7, 8).unwrap_or_else(|e| platform::fatal(format_args!("net-echo-http: udp: {e}")));
        rt::spawn(async move {
            let mut buf = [0u8; 1472];
            loop {
                let (n, from) = udp.recv_from(&mut buf).await;
                let _ = udp.send_to(&buf[..n], from).await;
            }
        });
        let p = page.clone();
        rt::spawn(vif.listen_with(80, 32, 2048, 4096).serve(move |s| serve_http(s, vif.clone(), p.clone())));
    }
    log::info!("net-echo-http: ready: echo on port 7, http on port 80");
    rt::shutdown_requested().await;
}

async fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = s.read(&mut buf).await {
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
        ECHOED.fetch_add(n as u64, Relaxed);
        SERVED.fetch_add(n as u64, Relaxed);
    }
}

/// One request (10 s to send it), one answer, close.
async fn serve_http(mut s: TcpStream, vif: Vif, page: Rc<(String, u32)>) {
    let Some(req) = http::read_request::<2048>(&mut s, Duration::from_secs(10)).await else { return };
    REQUESTS.fetch_add(1, Relaxed);
    let (status, ctype, body) = match req.as_ref().map(|r| (r.method.as_str(), r.path.as_str())) {
        Ok(("GET", "/")) => ("200 OK", "text/plain", page.0.clone()),
        Ok(("GET", "/status")) => ("200 OK", "application/json", status(&vif, page.1)),
        Ok(("GET", _)) => ("404 Not Found", "text/plain", String::from("not found\n")),
        _ => ("400 Bad Request", "text/plain", String::from("bad request\n")),
    };
    if let Ok(n) = http::respond(&mut s, status, ctype, &body).await {
        SERVED.fetch_add(n as u64, Relaxed);
    }
}

fn status(vif: &Vif, domid: u32) -> String {
    let (s, ip) = (vif.stats(), vif.address().map(|c| format!("{}", c.cidr.address())).unwrap_or_default());
    let (up, served, echoed) = (xen::time::since_boot().as_millis(), SERVED.load(Relaxed), ECHOED.load(Relaxed));
    format!(
        "{{\"domid\":{domid},\"uptime_ms\":{up},\"ip\":\"{ip}\",\"bytes_served\":{served},\"echo_bytes\":{echoed},\"http_requests\":{},\"rx_packets\":{},\"tx_packets\":{},\"rx_dropped\":{},\"bad_responses\":{}}}\n",
        REQUESTS.load(Relaxed), s.rx_packets, s.tx_packets, s.rx_dropped, s.bad_responses
    )
}
