//! A hostile xenstore client: a guest that attacks the store from its own
//! ring, one XSA class after another (tests/xen_xenstored.rs runs it
//! against the xenstore domain and against Xen's xenstored).
//!
//! Each case prints one line, `xs-hostile: CASE: ...`, saying what the
//! store answered: `refused EQUOTA after 1000`, `error EINVAL`, `ok`. The
//! store must refuse, never crash, and keep serving everyone else. Then
//! the last argument, if any, is a case that ends this guest's connection
//! (the store should drop it, and the domain is destroyed from dom0):
//! - `flood`: watch a node and write it without end, never reading the
//!   replies or events: what the store queues for this guest must stay
//!   bounded;
//! - `oversized`: a header that announces 4097 bytes;
//! - `corrupt`: `req_prod` set 64 KiB past `req_cons`.
//!
//! Written against the blocking client with no task runtime, so that this
//! guest alone reads its ring.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hvmlite::platform::{self, Shutdown};
use hvmlite::xen::abi::{xs_type, XS_REQ_CONS, XS_REQ_PROD};
use hvmlite::xen::ring::RingMem;
use hvmlite::xen::store::Store;
use hvmlite::xen::xenstore::{Transport, XsError, REQ, RSP};
use hvmlite::Boot;

hvmlite::app!(main);

fn say(args: core::fmt::Arguments) {
    log::info!("xs-hostile: {args}");
}

fn main(boot: Boot) -> ! {
    let Some(Ok(mut xs)) = boot.xenstore() else { platform::fatal(format_args!("xs-hostile: no xenstore")) };
    let home = xs.read("domid").map(|d| format!("/local/domain/{d}")).unwrap_or_default();
    say(format_args!("up, home {home}"));
    let mut end = None;
    for arg in boot.args() {
        match arg {
            "flood" | "oversized" | "corrupt" => end = Some(arg),
            _ => {}
        }
    }
    nodes(&mut xs);
    node_size(&mut xs);
    path_length(&mut xs);
    deep(&mut xs);
    watches(&mut xs);
    transactions(&mut xs);
    token(&mut xs);
    missing_nul(&mut xs);
    unknown_type(&mut xs);
    others(&mut xs);
    owner(&mut xs, &home);
    reset_in_transaction(&mut xs);
    say(format_args!("cases done"));
    match end {
        Some("flood") => flood(&mut xs),
        Some("oversized") => oversized(&mut xs),
        Some("corrupt") => corrupt(&mut xs),
        _ => platform::shutdown(Shutdown::Poweroff),
    }
}

fn errno(e: &XsError) -> String {
    match e {
        XsError::Errno(e) => format!("{e:?}"),
        e => format!("{e}"),
    }
}

/// `refused ERRNO after N` or `never refused (N)`.
fn until_refused(what: &str, max: usize, mut f: impl FnMut(usize) -> Result<(), XsError>) -> Option<usize> {
    for i in 0..max {
        if let Err(e) = f(i) {
            say(format_args!("{what}: refused {} after {i}", errno(&e)));
            return Some(i);
        }
    }
    say(format_args!("{what}: never refused ({max})"));
    None
}

/// XSA-326 class: more nodes than a domain may own.
fn nodes(xs: &mut Store) {
    let made = until_refused("nodes", 1500, |i| xs.write(&format!("data/n{i}"), "x")).unwrap_or(1500);
    for i in 0..made {
        let _ = xs.rm(&format!("data/n{i}"));
    }
}

fn node_size(xs: &mut Store) {
    let big: String = core::iter::repeat_n('v', 3000).collect();
    result("node-size", xs.write("data/big", &big));
}

/// XSA-323 class: a path longer than any the store takes.
fn path_length(xs: &mut Store) {
    let long = format!("data/{}", "p".repeat(3100));
    result("path-length", xs.write(&long, "x"));
}

/// XSA-418 class: a deep tree, then removed at once (no recursion in the
/// store may overflow).
fn deep(xs: &mut Store) {
    let path = format!("data/{}", ["d"; 1000].join("/"));
    result("deep-write", xs.write(&path, "x"));
    result("deep-rm", xs.rm("data/d"));
}

fn watches(xs: &mut Store) {
    let n = until_refused("watches", 300, |i| xs.watch("data", &format!("w{i}"))).unwrap_or(300);
    for i in 0..n {
        let _ = xs.unwatch("data", &format!("w{i}"));
    }
}

fn transactions(xs: &mut Store) {
    let mut open = Vec::new();
    until_refused("transactions", 50, |_| xs.transaction_start().map(|t| open.push(t)));
    for t in open {
        let _ = xs.transaction_end(t, false);
    }
}

/// XSA-324 class: a token so long that its events could not be sent.
fn token(xs: &mut Store) {
    let t = "t".repeat(4000);
    result("token", xs.watch("data", &t));
    let _ = xs.unwatch("data", &t);
}

/// A WRITE whose payload has no NUL between path and value.
fn missing_nul(xs: &mut Store) {
    answer("missing-nul", raw(xs, xs_type::WRITE, 0, b"data/nonul"));
}

fn unknown_type(xs: &mut Store) {
    answer("unknown-type", raw(xs, 999, 0, b"data\0"));
}

/// XSA-115 class: a node of dom0's (`/hostile-secret`, perms `n0`, made
/// by the test) and another domain's home.
fn others(xs: &mut Store) {
    result("read-secret", xs.read("/hostile-secret").map(|_| ()));
    result("write-secret", xs.write("/hostile-secret", "mine"));
    result("read-dom0", xs.directory("/local/domain/0").map(|_| ()));
}

/// XSA-352 class: give a node of ours to dom0 (a change of owner), and
/// set permissions on dom0's node.
fn owner(xs: &mut Store, home: &str) {
    let _ = xs.write("data/mine", "x");
    answer("set-perms-owner", raw(xs, xs_type::SET_PERMS, 0, format!("{home}/data/mine\0n0\0").as_bytes()));
    answer("set-perms-secret", raw(xs, xs_type::SET_PERMS, 0, format!("/hostile-secret\0n{}\0", &home[14..]).as_bytes()));
}

/// XSA-484 class: RESET_WATCHES (type 21, `XS_SET_TARGET + 2` in
/// xs_wire.h) inside a transaction.
fn reset_in_transaction(xs: &mut Store) {
    let Ok(t) = xs.transaction_start() else { return say(format_args!("reset-in-tx: no transaction")) };
    answer("reset-in-tx", raw(xs, 21, t, b""));
    let _ = xs.transaction_end(t, false);
}

fn result(what: &str, r: Result<(), XsError>) {
    match r {
        Ok(()) => say(format_args!("{what}: ok")),
        Err(e) => say(format_args!("{what}: error {}", errno(&e))),
    }
}

fn answer(what: &str, r: Option<(u32, Vec<u8>)>) {
    match r {
        Some((xs_type::ERROR, body)) => {
            let name: String = body.iter().take_while(|&&c| c != 0).map(|&c| c as char).collect();
            say(format_args!("{what}: error {name}"))
        }
        Some((ty, _)) => say(format_args!("{what}: ok (type {ty})")),
        None => say(format_args!("{what}: no answer")),
    }
}

/// One message as given, on the ring itself; its answer (type, payload),
/// or `None` when none came in 5 s.
fn raw(xs: &mut Store, ty: u32, tx: u32, payload: &[u8]) -> Option<(u32, Vec<u8>)> {
    const ID: u32 = 0x7357;
    let mut msg = Vec::new();
    for v in [ty, ID, tx, payload.len() as u32] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend_from_slice(payload);
    send(xs, &msg);
    let head = receive(xs, 16)?;
    let word = |i: usize| u32::from_le_bytes(head[i * 4..i * 4 + 4].try_into().unwrap_or_default());
    let body = receive(xs, word(3) as usize)?;
    if word(1) != ID {
        say(format_args!("raw: answer to request {:#x}, not ours", word(1)));
    }
    Some((word(0), body))
}

fn send(xs: &mut Store, mut msg: &[u8]) {
    let t = xs.transport();
    while !msg.is_empty() {
        let n = REQ.produce(t.mem(), msg).unwrap_or_else(|e| platform::fatal(format_args!("xs-hostile: {e}")));
        msg = &msg[n..];
        t.notify();
        if n == 0 && !t.wait() {
            platform::fatal(format_args!("xs-hostile: the request ring stays full"));
        }
    }
}

fn receive(xs: &mut Store, len: usize) -> Option<Vec<u8>> {
    let t = xs.transport();
    let mut out = alloc::vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = RSP.consume(t.mem(), &mut out[got..]).ok()?;
        got += n;
        if n > 0 {
            t.notify();
        } else if !t.wait() {
            return None;
        }
    }
    Some(out)
}

/// Watch `data/flood` and write it without end, never reading a reply or
/// an event again.
fn flood(xs: &mut Store) -> ! {
    let _ = xs.watch("data/flood", "flood");
    say(format_args!("flood: writing, never reading"));
    let mut msg = Vec::new();
    for v in [xs_type::WRITE, 1, 0, 13] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend_from_slice(b"data/flood\0xx");
    let t = xs.transport();
    let mut sent = 0u64;
    loop {
        if REQ.produce(t.mem(), &msg).is_ok_and(|n| n == msg.len()) {
            sent += 1;
            t.notify();
            if sent.is_multiple_of(1000) {
                say(format_args!("flood: {sent} requests sent"));
            }
        } else {
            t.wait();
        }
    }
}

/// A header announcing a 4097-byte payload (the most is 4096).
fn oversized(xs: &mut Store) -> ! {
    let mut msg = Vec::new();
    for v in [xs_type::WRITE, 1, 0, 4097] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    send(xs, &msg);
    send(xs, &[b'x'; 1000]);
    say(format_args!("oversized: sent"));
    idle(xs)
}

/// `req_prod` 64 KiB past `req_cons`: the indexes cannot be.
fn corrupt(xs: &mut Store) -> ! {
    let t = xs.transport();
    let cons = t.mem().load32(XS_REQ_CONS);
    t.mem().store32(XS_REQ_PROD, cons.wrapping_add(0x10000));
    t.notify();
    say(format_args!("corrupt: req_prod {:#x}, req_cons {cons:#x}", cons.wrapping_add(0x10000)));
    idle(xs)
}

/// Wait to be destroyed.
fn idle(xs: &mut Store) -> ! {
    loop {
        xs.transport().wait();
    }
}
