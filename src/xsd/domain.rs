//! Domains: INTRODUCE, RELEASE, RESUME, SET_TARGET and the questions about
//! them, and what happens when a domain shuts down or is gone. Only dom0
//! may change which domains are connected (EACCES for others).

use alloc::vec::Vec;

use super::conn::Conn;
use super::server::{ok, Host, Pending, Server};
use super::watch::Event;
use super::wire::{self, Args};
use super::{DomId, Errno};

/// The first of Xen's special domain ids (DOMID_FIRST_RESERVED).
const DOMID_FIRST_RESERVED: DomId = 0x7ff0;

/// A domid argument naming a real domain other than dom0 (EINVAL else).
fn real_domain(a: &mut Args) -> Result<DomId, Errno> {
    let d: DomId = wire::number(a.text()?)?;
    if d == 0 || d >= DOMID_FIRST_RESERVED {
        return Err(Errno::EINVAL);
    }
    Ok(d)
}

/// INTRODUCE's gfn: signed decimal (xenstore.txt), taken as its 64-bit
/// pattern; advisory only (the ring is grant 1).
fn gfn(s: &str) -> Result<u64, Errno> {
    match s.strip_prefix('-') {
        Some(n) => Ok(wire::number::<u64>(n)?.wrapping_neg()),
        None => wire::number(s),
    }
}

impl Server {
    fn privileged(&mut self, dom: DomId) -> Result<(), Errno> {
        if self.conn(dom)?.caller().privileged() {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// A special event (`@introduceDomain`, `@releaseDomain`).
    fn fire_special(&mut self, name: &str) {
        let perms = self.specials[name].clone();
        self.pending.push(Pending::Fire(Event::changed(name, perms)));
    }

    /// INTRODUCE: the host maps the ring and binds the port, then the
    /// domain has a connection and `@introduceDomain` fires. Introducing a
    /// connected domain again changes nothing.
    pub(super) fn introduce(&mut self, dom: DomId, a: &mut Args, host: &mut dyn Host) -> Result<Vec<u8>, Errno> {
        self.privileged(dom)?;
        let d = real_domain(a)?;
        let frame = gfn(a.text()?)?;
        let port: u32 = wire::number(a.text()?)?;
        if let alloc::collections::btree_map::Entry::Vacant(e) = self.conns.entry(d) {
            host.introduce(d, frame, port)?;
            e.insert(Conn::new(d));
            self.fire_special("@introduceDomain");
        }
        Ok(ok())
    }

    /// RELEASE: as if the domain were gone.
    pub(super) fn release(&mut self, dom: DomId, a: &mut Args, host: &mut dyn Host) -> Result<Vec<u8>, Errno> {
        self.privileged(dom)?;
        let d = real_domain(a)?;
        if !self.conns.contains_key(&d) {
            return Err(Errno::ENOENT);
        }
        self.forget(d, host);
        Ok(ok())
    }

    pub(super) fn is_domain_introduced(&mut self, a: &mut Args) -> Result<Vec<u8>, Errno> {
        let d: DomId = wire::number(a.text()?)?;
        Ok(Vec::from(if self.conns.contains_key(&d) { &b"T\0"[..] } else { &b"F\0"[..] }))
    }

    /// RESUME: the next shutdown fires `@releaseDomain` again.
    pub(super) fn resume(&mut self, dom: DomId, a: &mut Args) -> Result<Vec<u8>, Errno> {
        self.privileged(dom)?;
        let d = real_domain(a)?;
        self.conns.get_mut(&d).ok_or(Errno::ENOENT)?.shutdown_fired = false;
        Ok(ok())
    }

    /// SET_TARGET: `domid` (a device model) acts for `tdomid` as well.
    pub(super) fn set_target(&mut self, dom: DomId, a: &mut Args) -> Result<Vec<u8>, Errno> {
        self.privileged(dom)?;
        let d = real_domain(a)?;
        let t = real_domain(a)?;
        self.conns.get_mut(&d).ok_or(Errno::ENOENT)?.target = Some(t);
        Ok(ok())
    }

    /// Introduced domains, dom0 excepted.
    pub fn domains(&self) -> Vec<DomId> {
        self.conns.keys().copied().filter(|&d| d != 0).collect()
    }

    /// The domain has shut down or crashed but still exists: fire
    /// `@releaseDomain`, once until RESUME.
    pub fn domain_shutdown(&mut self, domid: DomId) {
        let Some(c) = self.conns.get_mut(&domid).filter(|c| c.dom != 0 && !c.shutdown_fired) else { return };
        c.shutdown_fired = true;
        self.fire_special("@releaseDomain");
        self.flush();
    }

    /// The domain is dying or gone: see [`Server::forget`].
    pub fn domain_gone(&mut self, domid: DomId, host: &mut dyn Host) {
        if domid != 0 {
            self.forget(domid, host);
            self.flush();
        }
    }

    /// Forget a domain: its connection (watches, transactions, queued
    /// output) goes and the host releases its ring; the nodes it owned
    /// become dom0's and its permission entries and target roles vanish,
    /// so a domain reusing the id inherits nothing (XSA-322); and, if it
    /// was connected, `@releaseDomain` fires.
    pub(super) fn forget(&mut self, domid: DomId, host: &mut dyn Host) {
        let connected = self.conns.remove(&domid).is_some();
        if connected {
            host.release(domid);
        }
        self.tree.forget_domain(domid);
        for p in self.specials.values_mut() {
            p.forget(domid);
        }
        for c in self.conns.values_mut().filter(|c| c.target == Some(domid)) {
            c.target = None;
        }
        if connected {
            self.fire_special("@releaseDomain");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_arguments() {
        assert_eq!(real_domain(&mut Args::new(b"5\0")), Ok(5));
        for bad in [&b"0\0"[..], b"32752\0", b"x\0", b"5"] {
            assert_eq!(real_domain(&mut Args::new(bad)), Err(Errno::EINVAL));
        }
        assert_eq!(gfn("-1"), Ok(u64::MAX));
        assert_eq!(gfn("4096"), Ok(4096));
        assert_eq!(gfn("--1"), Err(Errno::EINVAL));
    }
}
