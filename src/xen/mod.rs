//! Xen: the ABI hvmlite needs beyond `xen-sys` ([`abi`], each struct naming
//! its public header) and the guest side of Xen's interfaces. Nothing here
//! knows about the boot flow or payloads.
//!
//! - [`hypercall`]: the hypercall page and the calls hvmlite makes
//!   (re-exported here: `xen::hvm_get_param(…)`);
//! - [`evtchn`]: event channels (2-level ABI);
//! - [`time`]: the monotonic and wall clocks (`vcpu_time_info`, `wc_*`);
//! - [`events`]: the event core — wait for ports or a deadline, blocking
//!   in `SCHEDOP_poll` with a one-shot `VIRQ_TIMER`;
//! - [`gnttab`]: grant table v1, granting pages to another domain;
//!   [`gntmap`]: mapping pages other domains grant us, in a window above
//!   the domain's e820;
//! - [`domctl`]: `XEN_DOMCTL_getdomaininfo`, another domain's state (for
//!   dom0 and the xenstore domain);
//! - [`ring`]: byte rings shared with an untrusted peer;
//! - [`xenstore`]: the xenstore wire protocol over such a ring, and
//!   [`store`]: this domain's own xenstore connection;
//! - [`console`]: the PV console ring;
//! - [`xenbus`]: finding PV devices and the frontend state machine, shared
//!   by every device; [`blkif`] and [`blkfront`]: the PV block device;
//!   [`netif`] and [`netfront`]: the PV network device.

pub mod abi;
pub mod blkif;
pub mod control;
pub mod domctl;
pub mod gntmap;
pub mod netif;
pub mod ring;
pub mod time;
pub mod xenbus;
pub mod xenstore;

#[cfg(target_os = "none")]
pub mod blkfront;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod events;
#[cfg(target_os = "none")]
pub mod evtchn;
#[cfg(target_os = "none")]
pub mod gnttab;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod netfront;
#[cfg(target_os = "none")]
pub mod page;
#[cfg(target_os = "none")]
pub mod store;

#[cfg(target_os = "none")]
pub use hypercall::*;
