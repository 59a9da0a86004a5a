//! The stubdomain service: what the loader image runs as a Xen domU when
//! it has no kernel to start (`examples/hello-stubdom` is the smaller
//! template for your own stubdomain).
//!
//! 1. connect to xenstore ([`Boot::xenstore`]);
//! 2. read who we are (`domid`, `name`, `vm`, our home path);
//! 3. advertise the PV shutdown protocol (`control/feature-poweroff`,
//!    `control/feature-reboot`) and watch `control/shutdown`;
//! 4. publish the boot report under `data/hvmlite/report/` and
//!    `data/hvmlite/state = ready`;
//! 5. serve requests: a dom0 tool writes `data/hvmlite/request` =
//!    `ID COMMAND [ARG]`, hvmlite answers in `data/hvmlite/response` =
//!    `ID RESULT` (see README for the commands);
//! 6. otherwise sleep in `SCHEDOP_poll` on the xenstore and console event
//!    channels until told to shut down (`xl shutdown`, `xl reboot`).

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use hvmlite::boot::Boot;
use hvmlite::platform::console;
use hvmlite::platform::{self, Shutdown};
use hvmlite::xen::console as pvconsole;
use hvmlite::xen::control::{self, Request};
use hvmlite::xen::page::alloc_page;
use hvmlite::xen::store::Store;
use hvmlite::xen::{events, gnttab, time};

/// The longest the service sleeps without looking at its rings.
const IDLE: Duration = Duration::from_secs(10);

fn fail(what: &str, e: impl core::fmt::Display) -> ! {
    platform::fatal(format_args!("stubdom: {what}: {e}"))
}

pub fn run(boot: &Boot, mut xs: Store) -> ! {
    let port = xs.transport().port();
    let domid: u32 = xs.read("domid").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fail("read domid", "missing or not a number"));
    let name = xs.read("name").unwrap_or_default();
    let vm = xs.read("vm").unwrap_or_default();
    let home = xs.get_domain_path(domid).unwrap_or_else(|e| fail("get domain path", e));
    log::info!("xenstore: domid {domid} name \"{name}\" home {home} vm {vm}");

    control::advertise(&mut xs).unwrap_or_else(|e| fail("control/shutdown", e));
    let report = [
        ("hypervisor", String::from(boot.hypervisor.name())),
        ("start_info_version", format!("{}", boot.hvinfo.as_ref().map_or(0, |r| r.start_info_version))),
        ("e820_entries", format!("{}", boot.e820.len())),
        ("cmdline", String::from(boot.cmdline.unwrap_or(""))),
        ("modules", format!("{}", boot.modules.len())),
        ("heap_kib", format!("{}", boot.heap.len() / 1024)),
    ];
    for (k, v) in report {
        xs.write(&format!("data/hvmlite/report/{k}"), &v).unwrap_or_else(|e| fail("write report", e));
    }
    xs.watch("data/hvmlite/request", "request").unwrap_or_else(|e| fail("watch data/hvmlite/request", e));
    xs.write("data/hvmlite/state", "ready").unwrap_or_else(|e| fail("write state", e));
    log::info!("stubdom: ready, serving data/hvmlite/request");

    let mut svc = Service { domid, granted: None, input: [0; 128], input_len: 0 };
    loop {
        loop {
            match xs.poll_event() {
                Ok(Some(ev)) if ev.token == control::TOKEN => svc.shutdown_requested(&mut xs),
                Ok(Some(ev)) if ev.token == "request" => svc.request(&mut xs),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => fail("xenstore", e),
            }
        }
        svc.console_input();
        let mut ports = [port, 0];
        let n = match pvconsole::port() {
            Some(c) => {
                ports[1] = c;
                2
            }
            None => 1,
        };
        // Woken by xenstore or the console, or after IDLE at the latest: a
        // peer that corrupts a ring and then goes silent sends no event,
        // and only the next look at the ring finds it.
        events::wait(&ports[..n], Some(time::now() + IDLE));
    }
}

struct Service {
    domid: u32,
    /// The page currently granted to dom0, and its reference.
    granted: Option<(u64, u32)>,
    input: [u8; 128],
    input_len: usize,
}

impl Service {
    /// The PV shutdown protocol: the request is acknowledged, then done.
    fn shutdown_requested(&mut self, xs: &mut Store) {
        let how = match control::take_request(xs) {
            Ok(None) => return,
            Ok(Some(Request::Poweroff)) => (Shutdown::Poweroff, "poweroff"),
            Ok(Some(Request::Reboot)) => (Shutdown::Reboot, "reboot"),
            Ok(Some(Request::Suspend)) => {
                log::warn!("control/shutdown: \"suspend\" is not supported by the loader's service mode");
                return;
            }
            Ok(Some(Request::Unsupported(other))) => {
                log::warn!("control/shutdown: \"{other}\" is not supported");
                return;
            }
            Err(e) => fail("read control/shutdown", e),
        };
        log::info!("control/shutdown: {}", how.1);
        platform::shutdown(how.0)
    }

    fn request(&mut self, xs: &mut Store) {
        let req = match xs.read("data/hvmlite/request") {
            Ok(r) if !r.is_empty() => r,
            _ => return,
        };
        let mut words = req.splitn(3, ' ');
        let (id, cmd, arg) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
        let result = self.handle(cmd, arg);
        log::info!("request {id} {cmd}: {result}");
        if let Err(e) = xs.write("data/hvmlite/response", &format!("{id} {result}")) {
            log::warn!("writing the response failed: {e}");
        }
    }

    fn handle(&mut self, cmd: &str, arg: &str) -> String {
        match cmd {
            "ping" => "pong".into(),
            "echo" => arg.into(),
            "domid" => format!("{}", self.domid),
            // Grant dom0 (or ARG) read access to a page that says who we are.
            "grant" => {
                if self.granted.is_some() {
                    return "error: a page is already granted".into();
                }
                let to: u16 = arg.parse().unwrap_or(0);
                if let Err(e) = gnttab::init() {
                    return format!("error: {e}");
                }
                let Some(page) = alloc_page() else { return "error: no memory".into() };
                let text = format!("hvmlite grant page from domain {}\n", self.domid);
                // SAFETY: a fresh page of ours; the text is far shorter than it.
                unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), page as *mut u8, text.len()) };
                match gnttab::grant(to, page >> 12, true) {
                    Ok(gref) => {
                        self.granted = Some((page, gref));
                        format!("{gref}")
                    }
                    Err(e) => format!("error: {e}"),
                }
            }
            "revoke" => match self.granted {
                Some((_, gref)) => match gnttab::revoke(gref) {
                    Ok(()) => {
                        self.granted = None;
                        "revoked".into()
                    }
                    Err(e) => format!("error: {e}"),
                },
                None => "error: nothing granted".into(),
            },
            "crash" => panic!("crash requested through xenstore"),
            _ => format!("error: unknown command \"{cmd}\""),
        }
    }

    /// Lines typed into `xl console`: echoed back, `poweroff` honoured.
    fn console_input(&mut self) {
        let mut buf = [0u8; 64];
        let n = match pvconsole::read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                // Reported once: the console is dropped and not read again.
                console::detach_pv_console();
                log::warn!("PV console input ring corrupt ({e}); console dropped, still serving");
                return;
            }
        };
        for &b in &buf[..n] {
            if b == b'\r' || b == b'\n' {
                let line = core::str::from_utf8(&self.input[..self.input_len]).unwrap_or("?");
                log::info!("console: \"{line}\"");
                if line.trim() == "poweroff" {
                    platform::shutdown(Shutdown::Poweroff);
                }
                self.input_len = 0;
            } else if self.input_len < self.input.len() {
                self.input[self.input_len] = b;
                self.input_len += 1;
            }
        }
    }
}
