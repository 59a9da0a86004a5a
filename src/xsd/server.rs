//! The server: the tree, the connections, and the dispatch of each
//! request to its operation. Replies and watch events are queued on the
//! connections; the app moves them to the rings ([`Server::output`],
//! [`Server::advance`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::conn::{Conn, Next};
use super::ops::{self, Ctx};
use super::perms::Perms;
use super::tree::{Store, Tree};
use super::txn::{Txn, View};
use super::watch::{self, Event, Watch};
use super::wire::{self, Args, Header, Type, PAYLOAD_MAX};
use super::{Config, DomId, Errno};

/// What the server asks of the app around it.
pub trait Host {
    /// XS_INTRODUCE(domid, gfn, port) from a privileged connection: map
    /// that domain's ring (grant ref 1; the gfn is advisory) and bind its
    /// event channel. Ok → the server creates the connection for `domid`.
    fn introduce(&mut self, domid: DomId, gfn: u64, port: u32) -> Result<(), Errno>;
    /// The server is done with `domid`'s connection (XS_RELEASE, domain
    /// gone, or a hostile client dropped): unmap, unbind.
    fn release(&mut self, domid: DomId);
    /// A line for the log (CONTROL `print`). By default dropped.
    fn log(&mut self, _line: &str) {}
    /// Is the store's memory nearly gone? Then requests that would keep
    /// more of it (writes, new nodes, permissions, watches, transactions,
    /// new domains) are refused with ENOMEM, from dom0 too, and reads,
    /// removals and releases go on: a store that runs out refuses, it
    /// does not crash. By default never.
    fn memory_low(&self) -> bool {
        false
    }
}

/// Work a request left for after its reply.
pub(super) enum Pending {
    /// A change to match against every watch.
    Fire(Event),
    /// One message for one connection (a new watch's first event).
    To(DomId, Vec<u8>),
}

/// The xenstore daemon's state.
pub struct Server {
    pub(super) cfg: Config,
    pub(super) tree: Tree,
    pub(super) conns: BTreeMap<DomId, Conn>,
    /// The permissions of `@introduceDomain` and `@releaseDomain`, which
    /// decide which unprivileged domains get those events.
    pub(super) specials: BTreeMap<String, Perms>,
    pub(super) pending: Vec<Pending>,
}

/// The `OK` reply payload.
pub(super) fn ok() -> Vec<u8> {
    Vec::from(&b"OK\0"[..])
}

impl Server {
    /// The base tree (`/`, `/local`, `/local/domain`, `/tool`,
    /// `/tool/xenstored`, all dom0's with no access for others) and
    /// dom0's connection.
    pub fn new(cfg: Config) -> Self {
        let mut s = Server { cfg, tree: Tree::new(), conns: BTreeMap::new(), specials: BTreeMap::new(), pending: Vec::new() };
        let dom0 = Ctx { caller: super::perms::Caller { dom: 0, target: None }, cfg: &cfg };
        for p in ["/local/domain", "/tool/xenstored"] {
            ops::mkdir(&mut s.tree, dom0, p).expect("dom0 creates the base tree");
        }
        for p in ["@introduceDomain", "@releaseDomain"] {
            s.specials.insert(String::from(p), Perms::owned_by(0));
        }
        s.conns.insert(0, Conn::new(0));
        s
    }

    /// The limits it runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Bytes read from `domid`'s request ring, in any split: whole
    /// messages are handled, the rest is kept. Requests wait (stay
    /// buffered) while the connection's output is full; call again, with
    /// no bytes if need be, for the connections [`Server::held`] names.
    /// The caller passes at most [`Server::room`] bytes. A payload over
    /// 4096 bytes drops a domain's connection (xenstore.txt); dom0's is
    /// kept, the message refused with E2BIG and its payload skipped.
    pub fn receive(&mut self, domid: DomId, bytes: &[u8], host: &mut dyn Host) {
        let Some(c) = self.conns.get_mut(&domid) else { return };
        c.take_in(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&domid) else { return };
            if c.stalled(&self.cfg) {
                return;
            }
            match c.take_message() {
                Next::Partial => return,
                Next::Message(h, body) => self.handle(domid, h, &body, host),
                Next::TooLong(h) if domid == 0 => {
                    c.skip(h.len as usize);
                    c.push_reply(wire::message(Type::Error as u32, h.req_id, h.tx_id, &wire::error_body(Errno::E2BIG)));
                }
                Next::TooLong(_) => {
                    self.forget(domid, host);
                    self.flush();
                    return;
                }
            }
        }
    }

    /// How many request bytes `domid` may still send.
    pub fn room(&self, domid: DomId) -> usize {
        self.conns.get(&domid).map_or(0, |c| c.room())
    }

    /// Output waiting for `domid`'s response ring, head first (perhaps
    /// only a prefix of what is queued).
    pub fn output(&self, domid: DomId) -> &[u8] {
        self.conns.get(&domid).map_or(&[], |c| c.output())
    }

    /// `n` bytes of [`Server::output`] were written to the ring.
    pub fn advance(&mut self, domid: DomId, n: usize) {
        if let Some(c) = self.conns.get_mut(&domid) {
            c.advance(n);
        }
    }

    /// Connections with output waiting.
    pub fn with_output(&self) -> impl Iterator<Item = DomId> + '_ {
        self.conns.values().filter(|c| !c.output().is_empty()).map(|c| c.dom)
    }

    /// Connections holding a whole request that waited for their output
    /// to drain and may go on now: call `receive(d, &[], host)` for each.
    pub fn held(&self) -> impl Iterator<Item = DomId> + '_ {
        self.conns.values().filter(|c| c.has_message() && !c.stalled(&self.cfg)).map(|c| c.dom)
    }

    /// Bytes queued for `domid`'s ring.
    pub fn queued(&self, domid: DomId) -> usize {
        self.conns.get(&domid).map_or(0, |c| c.queued())
    }

    /// Check that the usage counts match the nodes and the tree's shape
    /// holds (for tests, fuzzing and CONTROL `check`).
    pub fn audit(&self) -> Result<(), &'static str> {
        self.tree.audit()
    }

    /// Nodes and bytes each domain owns (domains owning nothing absent).
    pub fn usage(&self) -> impl Iterator<Item = (DomId, super::quota::Usage)> + '_ {
        self.tree.accounts().iter()
    }

    /// Reply to one request, then deliver the events it caused.
    fn handle(&mut self, dom: DomId, h: Header, body: &[u8], host: &mut dyn Host) {
        let result = self.dispatch(dom, h, body, host).and_then(|b| if b.len() > PAYLOAD_MAX { Err(Errno::E2BIG) } else { Ok(b) });
        let msg = match result {
            Ok(b) => wire::message(h.ty, h.req_id, h.tx_id, &b),
            Err(e) => wire::message(Type::Error as u32, h.req_id, h.tx_id, &wire::error_body(e)),
        };
        if let Some(c) = self.conns.get_mut(&dom) {
            c.push_reply(msg);
        }
        self.flush();
    }

    /// Deliver the pending events: each matching watch whose domain may
    /// read the node gets one, unless its queue is full.
    pub(super) fn flush(&mut self) {
        for p in core::mem::take(&mut self.pending) {
            match p {
                Pending::To(dom, m) => {
                    if let Some(c) = self.conns.get_mut(&dom) {
                        c.push_event(m, &self.cfg);
                    }
                }
                Pending::Fire(ev) => {
                    for c in self.conns.values_mut() {
                        let caller = c.caller();
                        let msgs: Vec<Vec<u8>> = c
                            .watches
                            .iter()
                            .filter_map(|w| {
                                w.report(&ev, c.dom).filter(|(_, perms)| caller.access(perms).read).map(|(shown, _)| w.message(shown))
                            })
                            .collect();
                        for m in msgs {
                            c.push_event(m, &self.cfg);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn conn(&mut self, dom: DomId) -> Result<&mut Conn, Errno> {
        self.conns.get_mut(&dom).ok_or(Errno::EIO)
    }

    fn dispatch(&mut self, dom: DomId, h: Header, body: &[u8], host: &mut dyn Host) -> Result<Vec<u8>, Errno> {
        let ty = Type::from_u32(h.ty).ok_or(Errno::ENOSYS)?;
        let a = &mut Args::new(body);
        let tx = h.tx_id;
        let grows = matches!(
            ty,
            Type::Write | Type::Mkdir | Type::SetPerms | Type::Watch | Type::TransactionStart | Type::Introduce | Type::SetTarget
        );
        if grows && host.memory_low() {
            return Err(Errno::ENOMEM);
        }
        match ty {
            Type::Read => self.query(dom, tx, |s, cx| ops::read(s, cx, &cx.node_path(a.text()?)?)),
            Type::Directory => self.query(dom, tx, |s, cx| ops::directory(s, cx, &cx.node_path(a.text()?)?)),
            Type::DirectoryPart => self.query(dom, tx, |s, cx| {
                let p = cx.node_path(a.text()?)?;
                ops::directory_part(s, cx, &p, wire::number(a.last_text()?)?)
            }),
            Type::Write => self.change(dom, tx, |s, cx| {
                let p = cx.node_path(a.text()?)?;
                ops::write(s, cx, &p, a.rest()).map(Some)
            }),
            Type::Mkdir => self.change(dom, tx, |s, cx| ops::mkdir(s, cx, &cx.node_path(a.text()?)?)),
            Type::Rm => self.change(dom, tx, |s, cx| ops::rm(s, cx, &cx.node_path(a.text()?)?)),
            Type::GetPerms => self.get_perms(dom, tx, a),
            Type::SetPerms => self.set_perms(dom, tx, a),
            Type::Watch => self.watch(dom, a),
            Type::Unwatch => self.unwatch(dom, a),
            Type::ResetWatches => self.reset_watches(dom, tx),
            Type::TransactionStart => self.transaction_start(dom, tx),
            Type::TransactionEnd => self.transaction_end(dom, tx, a.text()?),
            Type::Introduce => self.introduce(dom, a, host),
            Type::Release => self.release(dom, a, host),
            Type::IsDomainIntroduced => self.is_domain_introduced(a),
            Type::GetDomainPath => Ok(format!("{}\0", super::path::domain_path(wire::number(a.text()?)?)).into_bytes()),
            Type::Resume => self.resume(dom, a),
            Type::SetTarget => self.set_target(dom, a),
            Type::Control => self.control(dom, a, host),
            Type::WatchEvent | Type::Error => Err(Errno::EINVAL),
        }
    }

    /// Run `f` on the tree (`tx` 0) or on transaction `tx` of `dom`
    /// (ENOENT when it has none such).
    fn on_store<R>(&mut self, dom: DomId, tx: u32, f: impl FnOnce(&mut dyn Store, Ctx) -> Result<R, Errno>) -> Result<R, Errno> {
        let c = self.conns.get_mut(&dom).ok_or(Errno::EIO)?;
        let cx = Ctx { caller: c.caller(), cfg: &self.cfg };
        if tx == 0 {
            return f(&mut self.tree, cx);
        }
        let txn = c.txns.get_mut(&tx).ok_or(Errno::ENOENT)?;
        let limit = (!cx.caller.privileged()).then_some(self.cfg.txn_nodes);
        f(&mut View { tree: &mut self.tree, txn, limit }, cx)
    }

    /// A request that reads.
    fn query(&mut self, dom: DomId, tx: u32, f: impl FnOnce(&mut dyn Store, Ctx) -> Result<Vec<u8>, Errno>) -> Result<Vec<u8>, Errno> {
        self.on_store(dom, tx, f)
    }

    /// A request that changes nodes: its event fires now, or with its
    /// transaction's commit.
    fn change(
        &mut self,
        dom: DomId,
        tx: u32,
        f: impl FnOnce(&mut dyn Store, Ctx) -> Result<Option<Event>, Errno>,
    ) -> Result<Vec<u8>, Errno> {
        if let Some(ev) = self.on_store(dom, tx, f)? {
            match self.conns.get_mut(&dom).and_then(|c| c.txns.get_mut(&tx)) {
                Some(t) => t.events.push(ev),
                None => self.pending.push(Pending::Fire(ev)),
            }
        }
        Ok(ok())
    }

    /// The permissions of a special path (ENOENT for an unknown one).
    fn special(&self, name: &str) -> Result<&Perms, Errno> {
        self.specials.get(name).ok_or(Errno::ENOENT)
    }

    fn get_perms(&mut self, dom: DomId, tx: u32, a: &mut Args) -> Result<Vec<u8>, Errno> {
        let caller = self.conn(dom)?.caller();
        let at = super::path::resolve(a.text()?, dom, self.cfg.path)?;
        if at.is_special() {
            let p = self.special(&at.abs)?;
            caller.check_read(p)?;
            return Ok(p.to_wire());
        }
        self.query(dom, tx, |s, cx| ops::get_perms(s, cx, &at.abs))
    }

    fn set_perms(&mut self, dom: DomId, tx: u32, a: &mut Args) -> Result<Vec<u8>, Errno> {
        let caller = self.conn(dom)?.caller();
        let at = super::path::resolve(a.text()?, dom, self.cfg.path)?;
        let perms = Perms::parse(&a.strings()?)?;
        if at.is_special() {
            ops::may_set_perms(Ctx { caller, cfg: &self.cfg }, self.special(&at.abs)?, &perms)?;
            self.specials.insert(at.abs, perms);
            return Ok(ok());
        }
        self.change(dom, tx, |s, cx| ops::set_perms(s, cx, &at.abs, perms).map(Some))
    }

    /// WATCH: the tx_id is ignored (xenstore.txt); the watch fires once
    /// at once, after the reply.
    fn watch(&mut self, dom: DomId, a: &mut Args) -> Result<Vec<u8>, Errno> {
        let at = super::path::resolve(a.text()?, dom, self.cfg.path)?;
        let w = Watch { at, token: a.string()?.to_vec() };
        let (max, abs) = (self.cfg.watches, self.cfg.path.abs);
        let c = self.conn(dom)?;
        watch::admit(&c.watches, &w, (!c.caller().privileged()).then_some(max), abs)?;
        let first = w.message(w.given(dom));
        c.watches.push(w);
        self.pending.push(Pending::To(dom, first));
        Ok(ok())
    }

    fn unwatch(&mut self, dom: DomId, a: &mut Args) -> Result<Vec<u8>, Errno> {
        let at = super::path::resolve(a.text()?, dom, self.cfg.path)?;
        let token = a.string()?;
        let c = self.conn(dom)?;
        let i = c.watches.iter().position(|w| w.at.abs == at.abs && w.token == token).ok_or(Errno::ENOENT)?;
        c.watches.remove(i);
        Ok(ok())
    }

    /// RESET_WATCHES: drop every watch and transaction of the caller; not
    /// from inside a transaction (EBUSY), which it would end under itself.
    fn reset_watches(&mut self, dom: DomId, tx: u32) -> Result<Vec<u8>, Errno> {
        if tx != 0 {
            return Err(Errno::EBUSY);
        }
        let c = self.conn(dom)?;
        c.watches.clear();
        c.txns.clear();
        Ok(ok())
    }

    /// TRANSACTION_START: from outside a transaction only (EBUSY), at most
    /// the quota open (EQUOTA).
    fn transaction_start(&mut self, dom: DomId, tx: u32) -> Result<Vec<u8>, Errno> {
        if tx != 0 {
            return Err(Errno::EBUSY);
        }
        let max = self.cfg.transactions;
        let c = self.conn(dom)?;
        if !c.caller().privileged() && c.txns.len() >= max {
            return Err(Errno::EQUOTA);
        }
        let id = c.new_tx_id();
        c.txns.insert(id, Txn::default());
        Ok(format!("{id}\0").into_bytes())
    }

    /// TRANSACTION_END: `F` abandons, `T` commits: EAGAIN if anything it
    /// touched changed meanwhile, EQUOTA if the result is over a quota
    /// now. Either way the transaction is over.
    fn transaction_end(&mut self, dom: DomId, tx: u32, how: &str) -> Result<Vec<u8>, Errno> {
        let commit = match how {
            "T" => true,
            "F" => false,
            _ => return Err(Errno::EINVAL),
        };
        let c = self.conn(dom)?;
        let txn = c.txns.remove(&tx).ok_or(Errno::ENOENT)?;
        let caller = c.caller();
        if !commit {
            return Ok(ok());
        }
        if txn.conflicts(&self.tree) {
            return Err(Errno::EAGAIN);
        }
        if !caller.privileged() {
            for d in txn.growing().filter(|&d| d != 0) {
                self.cfg.check_usage(txn.usage(&self.tree, d))?;
            }
            if txn.growing().any(|d| d != 0) {
                self.cfg.check_guests(txn.guests(&self.tree))?;
            }
        }
        for ev in txn.apply(&mut self.tree) {
            self.pending.push(Pending::Fire(ev));
        }
        Ok(ok())
    }
}
