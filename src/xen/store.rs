//! This domain's own xenstore: the ring page and event channel the
//! toolstack set up (HVM params), and a [`Xenstore`] client over them.

use core::time::Duration;

use crate::xen::abi::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use crate::xen::evtchn::{self, EvtchnError};
use crate::xen::hvm_get_param;
use crate::xen::page::SharedPage;
use crate::xen::xenstore::{Transport, Xenstore};
use crate::xen::{events, time};

/// How long one wait for xenstored lasts before the request fails.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The xenstore ring and its event channel.
pub struct XsRing {
    page: SharedPage,
    port: u32,
}

impl XsRing {
    /// The event channel xenstored signals: wait on it with others.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// After a resume in a new domain: the same ring frame, and the event
    /// channel the toolstack bound for the new domain.
    pub fn rebind(&mut self) -> Result<(), OpenError> {
        let port = hvm_get_param(HVM_PARAM_STORE_EVTCHN).map_err(|e| OpenError::Param("HVM_PARAM_STORE_EVTCHN", e))?;
        self.port = evtchn::check_port(port as u32).map_err(OpenError::Evtchn)?;
        Ok(())
    }
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
        events::wait(&[self.port], Some(time::now() + TIMEOUT)).any_port()
    }
}

/// This domain's xenstore connection.
pub type Store = Xenstore<XsRing>;

/// Is there a xenstore to talk to? (Not for dom0, not off Xen, not for
/// the xenstore domain itself: init-xenstore-domain gives it a ring
/// frame but event channel 0. A domU has both; a frame of 0 is refused
/// when the ring is opened.)
pub fn available() -> bool {
    matches!(hvm_get_param(HVM_PARAM_STORE_EVTCHN), Ok(port) if port != 0)
}

/// Why the xenstore connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Mapping the shared info page (event channels) failed.
    SharedInfo(EvtchnError),
    Param(&'static str, i64),
    Evtchn(EvtchnError),
    /// The ring's frame is 0 (no xenstore) or beyond the early identity map.
    Frame(u64),
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::SharedInfo(e) => write!(f, "shared info: {e}"),
            OpenError::Param(p, e) => write!(f, "{p}: {e}"),
            OpenError::Evtchn(e) => write!(f, "xenstore event channel: {e}"),
            OpenError::Frame(pfn) => write!(f, "xenstore page: frame {pfn:#x} out of reach"),
        }
    }
}

/// Connect to this domain's xenstore. Event channels must be set up
/// ([`evtchn::init`]).
pub fn open() -> Result<Store, OpenError> {
    let pfn = hvm_get_param(HVM_PARAM_STORE_PFN).map_err(|e| OpenError::Param("HVM_PARAM_STORE_PFN", e))?;
    let port = hvm_get_param(HVM_PARAM_STORE_EVTCHN).map_err(|e| OpenError::Param("HVM_PARAM_STORE_EVTCHN", e))?;
    let port = evtchn::check_port(port as u32).map_err(OpenError::Evtchn)?;
    if pfn == 0 || pfn >= (1 << 20) {
        return Err(OpenError::Frame(pfn));
    }
    // SAFETY: the xenstore page the toolstack set up for us, identity-mapped
    // below 4 GiB; only the ring code touches it.
    let page = unsafe { SharedPage::new(pfn << 12) };
    Ok(Xenstore::new(XsRing { page, port }))
}
