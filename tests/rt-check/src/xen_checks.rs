//! rt-check's checks of the Xen side a xenstore domain stands on
//! (tests/xen_xsdomain.rs):
//!
//! - `gntmap=DOMID:REF,REF,...`: map every grant at once (the pages dom0's
//!   `gntshare` wrote a pattern into), print what each holds; map and
//!   unmap the first 200 times (slots are reused: the window's use stays
//!   at one slot); map a grant that does not exist (a named `GNTST_`
//!   status back); then write an answer into each page and unmap them.
//! - `xs-domain`: run as the xenstore domain by `init-xenstore-domain`:
//!   the `--event PORT` it was given, `getdomaininfo` of every domain (and
//!   of one that does not exist), dom0's xenstore ring through grant
//!   reference 1 (what `init-xenstore-domain` is blocked on), and the
//!   event channel to dom0 bound.

use alloc::vec::Vec;
use core::time::Duration;

use hvmlite::platform;
use hvmlite::rt::time;
use hvmlite::xen::{domctl, evtchn, gntmap};

fn fail(args: core::fmt::Arguments) -> ! {
    platform::fatal(format_args!("rt-check: {args}"))
}

/// The NUL-terminated text at `addr` (at most `max` bytes, printable only).
fn text_at(addr: u64, max: usize) -> alloc::string::String {
    let mut s = alloc::string::String::new();
    for i in 0..max {
        // SAFETY: `addr` is a mapped grant page; `max` stays inside it.
        let b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
        if b == 0 {
            break;
        }
        s.push(if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' });
    }
    s
}

/// Where dom0's `gntshare` looks for the answer in each page.
const ANSWER_AT: u64 = 2048;

pub fn gntmap(spec: &str) {
    let (dom, refs) = spec.split_once(':').unwrap_or_else(|| fail(format_args!("gntmap: expected DOMID:REF,...: {spec}")));
    let dom: u16 = dom.parse().unwrap_or_else(|_| fail(format_args!("gntmap: bad domid {dom}")));
    let refs: Vec<u32> = refs.split(',').map(|r| r.parse().unwrap_or_else(|_| fail(format_args!("gntmap: bad grant {r}")))).collect();
    let w = gntmap::window().unwrap_or_else(|e| fail(format_args!("gntmap: {e}")));
    log::info!("rt-check: gntmap: window {:#x}-{:#x}", w.start, w.end);

    // All at once.
    let maps: Vec<gntmap::Mapping> = refs
        .iter()
        .map(|&r| gntmap::map(dom, r, false).unwrap_or_else(|e| fail(format_args!("gntmap: grant {r} of domain {dom}: {e}"))))
        .collect();
    for m in &maps {
        log::info!("rt-check: gntmap: grant {} at {:#x} (slot {}, handle {}): {}", m.gref, m.addr, m.slot(), m.handle, text_at(m.addr, 64));
    }
    let mut addrs: Vec<u64> = maps.iter().map(|m| m.addr).collect();
    addrs.sort_unstable();
    addrs.dedup();
    log::info!("rt-check: gntmap: {} mapped at once at {} addresses, {} slots in use", maps.len(), addrs.len(), gntmap::in_use());

    // 200 times over, read-only every other time.
    let first = maps[0].gref;
    let want = text_at(maps[0].addr, 64);
    let before = gntmap::in_use();
    let mut slots = Vec::new();
    for i in 0..200 {
        let m = gntmap::map(dom, first, i % 2 == 1).unwrap_or_else(|e| fail(format_args!("gntmap: cycle {i}: {e}")));
        if text_at(m.addr, 64) != want {
            fail(format_args!("gntmap: cycle {i}: read {:?}, not {want:?}", text_at(m.addr, 64)));
        }
        if !slots.contains(&m.slot()) {
            slots.push(m.slot());
        }
        gntmap::unmap(m).unwrap_or_else(|e| fail(format_args!("gntmap: cycle {i}: {e}")));
    }
    log::info!(
        "rt-check: gntmap: 200 map/unmap cycles of grant {first}: {} distinct slot(s), {} in use before and {} after",
        slots.len(),
        before,
        gntmap::in_use()
    );

    // A grant that does not exist.
    match gntmap::map(dom, 0xf_ffff, false) {
        Ok(_) => fail(format_args!("gntmap: grant 0xfffff mapped")),
        Err(e) => log::info!("rt-check: gntmap: grant 0xfffff refused: {e}"),
    }

    // Answer in each page, then unmap all.
    for (i, m) in maps.iter().enumerate() {
        let answer = alloc::format!("answer-{i}-from-domU");
        for (k, b) in answer.bytes().chain(core::iter::once(0)).enumerate() {
            // SAFETY: a writable grant page, offset inside it.
            unsafe { core::ptr::write_volatile((m.addr + ANSWER_AT + k as u64) as *mut u8, b) };
        }
    }
    for m in maps {
        gntmap::unmap(m).unwrap_or_else(|e| fail(format_args!("gntmap: unmap: {e}")));
    }
    log::info!("rt-check: gntmap: answered and unmapped, {} slots in use", gntmap::in_use());
}

pub async fn xs_domain(args: &[&str]) {
    let port: u32 = args
        .windows(2)
        .find(|w| w[0] == "--event")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or_else(|| fail(format_args!("xs-domain: no --event PORT on the command line: {args:?}")));
    log::info!("rt-check: xs-domain: --event {port}");
    let mut me = None;
    let mut from = 0u16;
    loop {
        match domctl::next_domain(from) {
            Ok(Some(i)) => {
                log::info!("rt-check: xs-domain: {i}");
                if i.xs_domain {
                    me = Some(i.domid);
                }
                from = i.domid + 1;
            }
            Ok(None) => break,
            Err(e) => fail(format_args!("xs-domain: getdomaininfo from {from}: {e}")),
        }
    }
    log::info!("rt-check: xs-domain: domctl interface version {:#x}", domctl::interface_version().unwrap_or(0));
    let me = me.unwrap_or_else(|| fail(format_args!("xs-domain: no domain has XEN_DOMINF_xs_domain")));
    log::info!("rt-check: xs-domain: I am domain {me}");
    match domctl::getdomaininfo(0) {
        Ok(Some(i)) => log::info!("rt-check: xs-domain: dom0: {i}"),
        other => fail(format_args!("xs-domain: getdomaininfo(0): {other:?}")),
    }
    match domctl::getdomaininfo(me + 7) {
        Ok(None) => log::info!("rt-check: xs-domain: domain {}: none", me + 7),
        other => fail(format_args!("xs-domain: getdomaininfo({}): {other:?}", me + 7)),
    }
    // dom0's ring: grant reference 1 (GNTTAB_RESERVED_XENSTORE).
    let m = gntmap::map(0, 1, false).unwrap_or_else(|e| fail(format_args!("xs-domain: mapping dom0's ring: {e}")));
    let word = |off: u64| {
        // SAFETY: inside the mapped ring page.
        unsafe { core::ptr::read_volatile((m.addr + off) as *const u32) }
    };
    // struct xenstore_domain_interface: req[1024], rsp[1024], then
    // req_cons, req_prod, rsp_cons, rsp_prod; a request starts with
    // type, req_id, tx_id, len.
    // init-xenstore-domain writes its first request after unpausing us.
    let t0 = time::now();
    while word(2052) == 0 && time::now() - t0 < Duration::from_secs(5) {
        time::sleep(Duration::from_millis(10)).await;
    }
    let (cons, prod) = (word(2048), word(2052));
    let (ty, len) = (word(0), word(12));
    log::info!("rt-check: xs-domain: dom0's ring: req_cons {cons} req_prod {prod}, first request type {ty} len {len}");
    gntmap::unmap(m).unwrap_or_else(|e| fail(format_args!("xs-domain: unmapping dom0's ring: {e}")));
    let local = evtchn::bind_interdomain(0, port).unwrap_or_else(|e| fail(format_args!("xs-domain: binding dom0's port {port}: {e}")));
    log::info!("rt-check: xs-domain: bound dom0's port {port} as {local}");
}
