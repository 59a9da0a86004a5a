//! `XEN_DOMCTL_getdomaininfo` (public/domctl.h): the state of another
//! domain, for a xenstore domain watching the guests it serves.
//!
//! Who may ask: dom0, and the xenstore domain (Xen's XSM default lets a
//! domain created with `XEN_DOMCTL_CDF_xs_domain` read any domain's info);
//! any other domain gets -EPERM.
//!
//! The domctl interface version must be the running Xen's exactly (Xen
//! answers -EACCES otherwise, before looking at anything else). The layout
//! of this sub-operation is the same for 0x15 (4.17), 0x16 (4.18) and
//! 0x17 (4.19, 4.20): by default the first call tries them in that order
//! and keeps the first Xen accepts; [`set_interface_version`] fixes one.
//!
//! Xen 4.17 answers for the *next* existing domain at or after the one
//! asked (4.18 on answer only for that one): [`getdomaininfo`] checks the
//! domain id that comes back, and [`next_domain`] exposes the 4.17
//! behaviour for walking every domain (on newer Xen it finds only exact
//! ids).

use crate::xen::abi::{dominf, shutdown_reason, XenDomctlGetdomaininfo};

/// What a xenstore daemon needs to know about a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    pub domid: u16,
    /// Being destroyed: its resources are going (`XEN_DOMINF_dying`).
    pub dying: bool,
    /// Shut down, with the guest's `SHUTDOWN_*` code (public/sched.h).
    pub shutdown: Option<u8>,
    /// Shut down with `SHUTDOWN_crash`.
    pub crashed: bool,
    pub paused: bool,
    pub blocked: bool,
    pub running: bool,
    pub hvm: bool,
    /// Created as the xenstore domain (`XEN_DOMCTL_CDF_xs_domain`).
    pub xs_domain: bool,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub online_vcpus: u32,
    /// The raw `XEN_DOMINF_*` flags.
    pub flags: u32,
}

impl DomainInfo {
    /// Decode what Xen wrote.
    pub fn from_raw(r: &XenDomctlGetdomaininfo) -> Self {
        let f = r.flags;
        let shutdown = (f & dominf::SHUTDOWN != 0).then_some(((f >> dominf::SHUTDOWN_SHIFT) & dominf::SHUTDOWN_MASK) as u8);
        DomainInfo {
            domid: r.domain,
            dying: f & dominf::DYING != 0,
            shutdown,
            crashed: shutdown == Some(shutdown_reason::CRASH),
            paused: f & dominf::PAUSED != 0,
            blocked: f & dominf::BLOCKED != 0,
            running: f & dominf::RUNNING != 0,
            hvm: f & dominf::HVM_GUEST != 0,
            xs_domain: f & dominf::XS_DOMAIN != 0,
            tot_pages: r.tot_pages,
            max_pages: r.max_pages,
            online_vcpus: r.nr_online_vcpus,
            flags: f,
        }
    }
}

impl core::fmt::Display for DomainInfo {
    /// `domain 3: running, shutdown(crash), 2048 pages` and the like.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "domain {}:", self.domid)?;
        if !(self.running || self.blocked || self.paused || self.dying) && self.shutdown.is_none() {
            f.write_str(" runnable")?;
        }
        for (on, name) in [
            (self.running, " running"),
            (self.blocked, " blocked"),
            (self.paused, " paused"),
            (self.dying, " dying"),
            (self.hvm, " hvm"),
            (self.xs_domain, " xs_domain"),
        ] {
            if on {
                f.write_str(name)?;
            }
        }
        if let Some(r) = self.shutdown {
            let name = match r {
                shutdown_reason::POWEROFF => "poweroff",
                shutdown_reason::REBOOT => "reboot",
                shutdown_reason::SUSPEND => "suspend",
                shutdown_reason::CRASH => "crash",
                shutdown_reason::WATCHDOG => "watchdog",
                shutdown_reason::SOFT_RESET => "soft_reset",
                _ => "?",
            };
            write!(f, " shutdown({name})")?;
        }
        write!(f, ", {} pages, {} vcpus", self.tot_pages, self.online_vcpus)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomctlError {
    /// -EACCES: Xen takes none of the interface versions tried (the last
    /// one is named).
    Version(u32),
    /// -EPERM: this domain may not ask (neither dom0 nor the xenstore
    /// domain).
    Denied,
    /// -EINVAL: a reserved domain id (`DOMID_SELF` and above).
    BadDomid(u16),
    /// Any other failure, as Xen returned it.
    Hypercall(i64),
    /// Not on Xen (no hypercall page).
    NotXen,
}

impl core::fmt::Display for DomctlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DomctlError::Version(v) => write!(f, "Xen refused domctl interface version {v:#x} (EACCES): not a Xen 4.17 to 4.20?"),
            DomctlError::Denied => write!(f, "getdomaininfo not permitted (EPERM): not dom0 or the xenstore domain"),
            DomctlError::BadDomid(d) => write!(f, "domain id {d:#x} is reserved (EINVAL)"),
            DomctlError::Hypercall(rc) => write!(f, "domctl failed ({rc})"),
            DomctlError::NotXen => write!(f, "not on Xen"),
        }
    }
}

/// Errno values Xen returns (x86 Linux numbering, public/errno.h).
const EPERM: i64 = 1;
const ESRCH: i64 = 3;
const EACCES: i64 = 13;
const EINVAL: i64 = 22;

/// What one domctl call came to, before deciding on versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
enum Outcome {
    Info(DomainInfo),
    NoneFrom,
    WrongVersion,
    Err(DomctlError),
}

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn outcome(rc: i64, asked: u16, raw: &XenDomctlGetdomaininfo) -> Outcome {
    match rc {
        0 => Outcome::Info(DomainInfo::from_raw(raw)),
        rc if rc == -ESRCH => Outcome::NoneFrom,
        rc if rc == -EACCES => Outcome::WrongVersion,
        rc if rc == -EPERM => Outcome::Err(DomctlError::Denied),
        rc if rc == -EINVAL => Outcome::Err(DomctlError::BadDomid(asked)),
        rc => Outcome::Err(DomctlError::Hypercall(rc)),
    }
}

/// Keep only the domain asked for (4.17 answers with the next one).
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn exact(asked: u16, next: Option<DomainInfo>) -> Option<DomainInfo> {
    next.filter(|i| i.domid == asked)
}

#[cfg(target_os = "none")]
pub use imp::*;

#[cfg(target_os = "none")]
mod imp {
    use core::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::xen::abi::{XenDomctl, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSIONS};

    /// The interface version Xen accepted (0: not known yet).
    static VERSION: AtomicU32 = AtomicU32::new(0);

    /// Use domctl interface version `v` from now on (0: find it again).
    pub fn set_interface_version(v: u32) {
        VERSION.store(v, Ordering::Release);
    }

    /// The interface version in use, once a call has succeeded or it was set.
    pub fn interface_version() -> Option<u32> {
        Some(VERSION.load(Ordering::Acquire)).filter(|&v| v != 0)
    }

    fn call(version: u32, domid: u16) -> Outcome {
        let mut d = XenDomctl::new(XEN_DOMCTL_GETDOMAININFO, version, domid);
        // SAFETY: Xen reads and writes one `struct xen_domctl` at `d`.
        let rc = unsafe { xen_sys::hypercall_1(xen_sys::__HYPERVISOR_domctl, &mut d as *mut XenDomctl as u64) };
        // SAFETY: every bit pattern is a valid `XenDomctlGetdomaininfo`.
        let raw = unsafe { d.u.getdomaininfo };
        outcome(rc, domid, &raw)
    }

    /// The first existing domain whose id is `from` or more (Xen 4.17; from
    /// 4.18 on only `from` itself), `None` when there is none.
    pub fn next_domain(from: u16) -> Result<Option<DomainInfo>, DomctlError> {
        if !crate::xen::hypercalls_ready() {
            return Err(DomctlError::NotXen);
        }
        let fixed = VERSION.load(Ordering::Acquire);
        let fixed = [fixed];
        let versions: &[u32] = if fixed[0] != 0 { &fixed } else { &XEN_DOMCTL_INTERFACE_VERSIONS };
        let mut last = versions[0];
        for &v in versions {
            last = v;
            match call(v, from) {
                Outcome::WrongVersion => continue,
                other => {
                    VERSION.store(v, Ordering::Release);
                    return match other {
                        Outcome::Info(i) => Ok(Some(i)),
                        Outcome::NoneFrom => Ok(None),
                        Outcome::Err(e) => Err(e),
                        Outcome::WrongVersion => unreachable!(),
                    };
                }
            }
        }
        Err(DomctlError::Version(last))
    }

    /// Domain `domid`'s state; `None` when it does not exist (any more).
    pub fn getdomaininfo(domid: u16) -> Result<Option<DomainInfo>, DomctlError> {
        Ok(exact(domid, next_domain(domid)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::abi::XenDomctlGetdomaininfo;

    fn raw(domain: u16, flags: u32) -> XenDomctlGetdomaininfo {
        XenDomctlGetdomaininfo { domain, flags, tot_pages: 2048, nr_online_vcpus: 1, ..Default::default() }
    }

    #[test]
    fn flags_decode() {
        let i = DomainInfo::from_raw(&raw(3, dominf::SHUTDOWN | (3 << 16) | dominf::HVM_GUEST | dominf::PAUSED));
        assert_eq!(i.domid, 3);
        assert_eq!(i.shutdown, Some(3));
        assert!(i.crashed && i.paused && i.hvm && !i.dying && !i.running);
        assert_eq!(i.to_string(), "domain 3: paused hvm shutdown(crash), 2048 pages, 1 vcpus");
        let i = DomainInfo::from_raw(&raw(1, dominf::SHUTDOWN | dominf::DYING));
        assert_eq!((i.shutdown, i.crashed, i.dying), (Some(0), false, true));
        // The code only counts with the shutdown flag.
        let i = DomainInfo::from_raw(&raw(0, (3 << 16) | dominf::RUNNING | dominf::XS_DOMAIN));
        assert_eq!((i.shutdown, i.crashed, i.running, i.xs_domain), (None, false, true, true));
    }

    #[test]
    fn errors_and_the_next_domain() {
        let r = raw(5, dominf::BLOCKED);
        assert!(matches!(outcome(0, 4, &r), Outcome::Info(i) if i.domid == 5));
        assert_eq!(outcome(-3, 4, &r), Outcome::NoneFrom);
        assert_eq!(outcome(-13, 4, &r), Outcome::WrongVersion);
        assert_eq!(outcome(-1, 4, &r), Outcome::Err(DomctlError::Denied));
        assert_eq!(outcome(-22, 0x7ff0, &r), Outcome::Err(DomctlError::BadDomid(0x7ff0)));
        assert_eq!(outcome(-14, 4, &r), Outcome::Err(DomctlError::Hypercall(-14)));
        // 4.17 answered for domain 5 when asked for 4: 4 does not exist.
        let five = DomainInfo::from_raw(&r);
        assert_eq!(exact(4, Some(five)), None);
        assert_eq!(exact(5, Some(five)), Some(five));
        assert_eq!(exact(5, None), None);
    }
}
