//! The stubdomain service: what hvmlite runs as a Xen domU when nothing
//! else is asked of it, and the template for your own stubdomain.
//!
//! 1. find xenstore and the PV console (HVM params), map shared info;
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

use crate::evtchn;
use crate::gnttab;
use crate::platform::{self, Shutdown};
use crate::pvconsole;
use crate::shared_page::{alloc_page, SharedPage};
use crate::xen;
use crate::xen_abi::{HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_CALLBACK_TYPE_VECTOR, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use crate::xenstore::{Transport, Xenstore, XsError};

/// How long one wait for xenstored lasts before the request fails.
const XS_TIMEOUT_NS: u64 = 5_000_000_000;
/// Idle wake-up period (nothing is done on it; it only bounds a lost wake-up).
const IDLE_NS: u64 = 10_000_000_000;

/// The xenstore ring and its event channel.
pub struct XsRing {
    page: SharedPage,
    port: u32,
}

impl Transport for XsRing {
    type Mem = SharedPage;
    fn mem(&self) -> &SharedPage {
        &self.page
    }
    fn notify(&mut self) {
        let _ = evtchn::notify(self.port);
    }
    fn wait(&mut self) -> bool {
        evtchn::wait_any(&[self.port], XS_TIMEOUT_NS) != 0
    }
}

/// Is there a xenstore to talk to? (Not for dom0, not off Xen.)
pub fn available() -> bool {
    matches!(xen::hvm_get_param(HVM_PARAM_STORE_PFN), Ok(pfn) if pfn != 0)
}

/// What the boot report says, for xenstore.
pub struct Summary<'a> {
    pub hypervisor: &'a str,
    pub start_info_version: u32,
    pub e820_entries: usize,
    pub cmdline: &'a str,
    pub modules: usize,
    pub heap_kib: u64,
}

fn fail(what: &str, e: impl core::fmt::Display) -> ! {
    platform::fatal(format_args!("stubdom: {what}: {e}"))
}

pub fn run(summary: &Summary) -> ! {
    evtchn::init().unwrap_or_else(|e| fail("shared info", e));
    // Tell the toolstack there is a PV-aware guest here (libxl looks at the
    // callback parameter for HVM-type guests). The vector never fires:
    // interrupts stay off and upcalls are masked.
    let _ = xen::hvm_set_param(HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_CALLBACK_TYPE_VECTOR | crate::traps::XEN_CALLBACK_VECTOR as u64);

    let pfn = xen::hvm_get_param(HVM_PARAM_STORE_PFN).unwrap_or_else(|e| fail("HVM_PARAM_STORE_PFN", e));
    let port = xen::hvm_get_param(HVM_PARAM_STORE_EVTCHN).unwrap_or_else(|e| fail("HVM_PARAM_STORE_EVTCHN", e)) as u32;
    let port = evtchn::check_port(port).unwrap_or_else(|e| fail("xenstore event channel", e));
    if pfn == 0 || pfn >= (1 << 20) {
        fail("xenstore page", format_args!("frame {pfn:#x} out of reach"));
    }
    // SAFETY: the xenstore page the toolstack set up for us, identity-mapped
    // below 4 GiB; only the ring code touches it.
    let page = unsafe { SharedPage::new(pfn << 12) };
    let mut xs = Xenstore::new(XsRing { page, port });

    let domid: u32 = xs.read("domid").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fail("read domid", "missing or not a number"));
    let name = xs.read("name").unwrap_or_default();
    let vm = xs.read("vm").unwrap_or_default();
    let home = xs.get_domain_path(domid).unwrap_or_else(|e| fail("get domain path", e));
    log::info!("xenstore: domid {domid} name \"{name}\" home {home} vm {vm}");

    for f in ["control/feature-poweroff", "control/feature-reboot"] {
        xs.write(f, "1").unwrap_or_else(|e| fail(f, e));
    }
    let report = [
        ("hypervisor", String::from(summary.hypervisor)),
        ("start_info_version", format!("{}", summary.start_info_version)),
        ("e820_entries", format!("{}", summary.e820_entries)),
        ("cmdline", String::from(summary.cmdline)),
        ("modules", format!("{}", summary.modules)),
        ("heap_kib", format!("{}", summary.heap_kib)),
    ];
    for (k, v) in report {
        xs.write(&format!("data/hvmlite/report/{k}"), &v).unwrap_or_else(|e| fail("write report", e));
    }
    xs.watch("control/shutdown", "shutdown").unwrap_or_else(|e| fail("watch control/shutdown", e));
    xs.watch("data/hvmlite/request", "request").unwrap_or_else(|e| fail("watch data/hvmlite/request", e));
    xs.write("data/hvmlite/state", "ready").unwrap_or_else(|e| fail("write state", e));
    log::info!("stubdom: ready, serving data/hvmlite/request");

    let mut svc = Service { domid, granted: None, input: [0; 128], input_len: 0 };
    loop {
        loop {
            match xs.poll_event() {
                Ok(Some(ev)) if ev.token == "shutdown" => svc.shutdown_requested(&mut xs),
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
        evtchn::wait_any(&ports[..n], IDLE_NS);
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
    /// The PV shutdown protocol: read the request, acknowledge it by
    /// clearing the node, then do it.
    fn shutdown_requested(&mut self, xs: &mut Xenstore<XsRing>) {
        let what = match xs.read("control/shutdown") {
            Ok(v) => v,
            Err(XsError::Errno(_)) => return,
            Err(e) => fail("read control/shutdown", e),
        };
        let how = match what.as_str() {
            "" => return, // our own acknowledgement, or nothing yet
            "poweroff" | "halt" => Shutdown::Poweroff,
            "reboot" => Shutdown::Reboot,
            other => {
                log::warn!("control/shutdown: \"{other}\" is not supported");
                return;
            }
        };
        let _ = xs.write("control/shutdown", "");
        log::info!("control/shutdown: {what}");
        platform::shutdown(how)
    }

    fn request(&mut self, xs: &mut Xenstore<XsRing>) {
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
                crate::console::detach_pv_console();
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
