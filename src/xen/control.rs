//! The PV shutdown protocol (`xl shutdown`, `xl reboot`): the guest says
//! which requests it understands under `control/feature-*`, the toolstack
//! writes the request to `control/shutdown`, the guest clears the node to
//! acknowledge it and then does it.

use alloc::string::String;

use crate::xen::xenstore::{Transport, Xenstore, XsError};

/// The watch token [`advertise`] registers for `control/shutdown`.
pub const TOKEN: &str = "shutdown";

/// What the toolstack asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Poweroff,
    Reboot,
    /// `xl save`, `xl migrate`: suspend (only where `feature-suspend` was
    /// advertised; see [`SUSPEND_FEATURE`]).
    Suspend,
    /// Something this protocol version does not know.
    Unsupported(String),
}

/// Advertise poweroff and reboot and watch `control/shutdown` (events come
/// with [`TOKEN`]).
pub fn advertise<T: Transport>(xs: &mut Xenstore<T>) -> Result<(), XsError> {
    for f in FEATURES {
        xs.write(f, "1")?;
    }
    xs.watch("control/shutdown", TOKEN)
}

/// Read `control/shutdown` after its watch fired. `None`: nothing asked
/// (the node is empty, or gone); a supported request is acknowledged by
/// clearing the node, which the caller then carries out.
pub fn take_request<T: Transport>(xs: &mut Xenstore<T>) -> Result<Option<Request>, XsError> {
    let what = match xs.read("control/shutdown") {
        Ok(v) => v,
        Err(XsError::Errno(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let req = match parse(what) {
        None => return Ok(None), // our own acknowledgement, or nothing yet
        // Not acknowledged: only a caller that suspends may.
        Some(r @ (Request::Unsupported(_) | Request::Suspend)) => return Ok(Some(r)),
        Some(r) => r,
    };
    let _ = xs.write("control/shutdown", "");
    Ok(Some(req))
}

/// What `control/shutdown` asks for: `None` when empty (nothing asked, or
/// our own acknowledgement).
pub fn parse(what: String) -> Option<Request> {
    Some(match what.as_str() {
        "" => return None,
        "poweroff" | "halt" => Request::Poweroff,
        "reboot" => Request::Reboot,
        "suspend" => Request::Suspend,
        _ => Request::Unsupported(what),
    })
}

/// The `control/feature-*` keys [`advertise`] writes.
pub const FEATURES: [&str; 2] = ["control/feature-poweroff", "control/feature-reboot"];

/// Advertised by a guest that suspends and resumes (the task runtime):
/// `xl save` and `xl migrate` ask it through `control/shutdown`.
pub const SUSPEND_FEATURE: &str = "control/feature-suspend";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_the_toolstack_writes_them() {
        assert_eq!(parse(String::new()), None);
        assert_eq!(parse("poweroff".into()), Some(Request::Poweroff));
        assert_eq!(parse("halt".into()), Some(Request::Poweroff));
        assert_eq!(parse("reboot".into()), Some(Request::Reboot));
        assert_eq!(parse("suspend".into()), Some(Request::Suspend));
        assert_eq!(parse("crash".into()), Some(Request::Unsupported("crash".into())));
    }
}
