//! The PV console (public/io/console.h): the ring `xl console` reads and
//! writes through xenconsoled. Output goes to `out`, input comes from `in`.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use core::time::Duration;

use crate::xen;
use crate::xen::abi::{
    CONS_IN, CONS_IN_CONS, CONS_IN_PROD, CONS_IN_SIZE, CONS_OUT, CONS_OUT_CONS, CONS_OUT_PROD, CONS_OUT_SIZE, HVM_PARAM_CONSOLE_EVTCHN,
    HVM_PARAM_CONSOLE_PFN,
};
use crate::xen::page::SharedPage;
use crate::xen::ring::Ring;
use crate::xen::{events, evtchn, time};

const OUT: Ring = Ring { data: CONS_OUT, size: CONS_OUT_SIZE, cons: CONS_OUT_CONS, prod: CONS_OUT_PROD };
const IN: Ring = Ring { data: CONS_IN, size: CONS_IN_SIZE, cons: CONS_IN_CONS, prod: CONS_IN_PROD };

static PAGE: AtomicU64 = AtomicU64::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);
/// Set once either ring was found corrupt: the console is not touched again.
static BROKEN: AtomicBool = AtomicBool::new(false);

/// Find the console ring from the HVM parameters the toolstack set.
/// Returns false where there is none (dom0, QEMU).
pub fn init() -> bool {
    let (Ok(pfn), Ok(port)) = (xen::hvm_get_param(HVM_PARAM_CONSOLE_PFN), xen::hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN)) else {
        return false;
    };
    // The page must lie below 4 GiB, where hvmlite's identity map surely reaches.
    if pfn == 0 || pfn >= (1 << 20) || evtchn::check_port(port as u32).is_err() {
        return false;
    }
    PORT.store(port as u32, Ordering::Release);
    PAGE.store(pfn << 12, Ordering::Release);
    true
}

pub fn port() -> Option<u32> {
    let p = PORT.load(Ordering::Acquire);
    (p != 0).then_some(p)
}

fn page() -> Option<SharedPage> {
    if BROKEN.load(Ordering::Acquire) {
        return None;
    }
    let base = PAGE.load(Ordering::Acquire);
    // SAFETY: the console page the toolstack gave us, identity-mapped.
    (base != 0).then(|| unsafe { SharedPage::new(base) })
}

/// Write `bytes`, waiting (bounded) for xenconsoled to drain a full ring.
/// Output is dropped rather than hanging when the peer is gone. A corrupt
/// ring is reported once (the error) and the console is dropped for good.
pub fn write(bytes: &[u8]) -> Result<(), crate::xen::ring::Corrupt> {
    let (Some(p), Some(port)) = (page(), port()) else { return Ok(()) };
    let mut off = 0;
    let mut stalls = 0;
    while off < bytes.len() {
        match OUT.produce(&p, &bytes[off..]) {
            Ok(0) => {
                let _ = evtchn::notify(port);
                stalls += 1;
                if stalls > 50 || !events::wait(&[port], Some(time::now() + Duration::from_millis(100))).any_port() && stalls > 3 {
                    return Ok(());
                }
            }
            Ok(n) => off += n,
            Err(c) => {
                BROKEN.store(true, Ordering::Release);
                return Err(c);
            }
        }
    }
    let _ = evtchn::notify(port);
    Ok(())
}

/// Take console input typed into `xl console`.
pub fn read(buf: &mut [u8]) -> Result<usize, crate::xen::ring::Corrupt> {
    let (Some(p), Some(port)) = (page(), port()) else { return Ok(0) };
    let n = IN.consume(&p, buf).inspect_err(|_| BROKEN.store(true, Ordering::Release))?;
    if n > 0 {
        let _ = evtchn::notify(port);
    }
    Ok(n)
}
