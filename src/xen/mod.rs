//! Xen: the ABI hvmlite needs beyond `xen-sys` ([`abi`], each struct naming
//! its public header) and the guest side of Xen's interfaces. Nothing here
//! knows about the boot flow or payloads.
//!
//! - [`hypercall`]: the hypercall page and the calls hvmlite makes
//!   (re-exported here: `xen::hvm_get_param(…)`);
//! - [`evtchn`]: event channels (2-level ABI), waiting in `SCHEDOP_poll`;
//! - [`gnttab`]: grant table v1, granting pages to another domain;
//! - [`ring`]: byte rings shared with an untrusted peer;
//! - [`xenstore`]: the xenstore wire protocol over such a ring, and
//!   [`store`]: this domain's own xenstore connection;
//! - [`console`]: the PV console ring;
//! - [`xenbus`]: finding PV devices and the frontend state machine, shared
//!   by every device; [`blkif`]: the PV block ring protocol.

pub mod abi;
pub mod blkif;
pub mod control;
pub mod ring;
pub mod xenbus;
pub mod xenstore;

#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod evtchn;
#[cfg(target_os = "none")]
pub mod gnttab;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod page;
#[cfg(target_os = "none")]
pub mod store;

#[cfg(target_os = "none")]
pub use hypercall::*;
