//! The xenbus frontend protocol (public/io/xenbus.h), shared by every PV
//! device: find the devices the toolstack gave this domain under
//! `device/<class>/<id>`, follow the two-sided state machine with bounded
//! waits on a watch, and hand a device back cleanly.
//!
//! Connecting: the frontend starts `Initialising`; the backend reaches
//! `InitWait` and publishes its features; the frontend writes what it set
//! up (ring grants, event channel) and says `Initialised`; the backend
//! maps it and says `Connected`; the frontend reads what it needs
//! (`sectors`, …) and says `Connected`.
//!
//! Handing back (before a kernel is started, so that its own frontend
//! finds the device as a fresh one): `Closing`, wait for the backend to
//! close, `Closed`, then `Initialising`, which makes the backend go back to
//! `InitWait` ("prepare for reconnect" in Linux's blkback).
//!
//! Everything the backend writes is untrusted: states outside the enum,
//! ids that do not parse, a backend path outside `/local/domain/<id>/backend/`
//! are typed errors. Every wait is bounded.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::xen::xenstore::{Errno, Transport, Xenstore, XsError};

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    Unknown = 0,
    Initialising = 1,
    InitWait = 2,
    Initialised = 3,
    Connected = 4,
    Closing = 5,
    Closed = 6,
    Reconfiguring = 7,
    Reconfigured = 8,
}

impl State {
    pub fn parse(s: &str) -> Option<State> {
        Some(match s.trim().parse::<u32>().ok()? {
            0 => State::Unknown,
            1 => State::Initialising,
            2 => State::InitWait,
            3 => State::Initialised,
            4 => State::Connected,
            5 => State::Closing,
            6 => State::Closed,
            7 => State::Reconfiguring,
            8 => State::Reconfigured,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            State::Unknown => "Unknown",
            State::Initialising => "Initialising",
            State::InitWait => "InitWait",
            State::Initialised => "Initialised",
            State::Connected => "Connected",
            State::Closing => "Closing",
            State::Closed => "Closed",
            State::Reconfiguring => "Reconfiguring",
            State::Reconfigured => "Reconfigured",
        }
    }
}

/// How many times a wait for the backend may block on xenstore (each
/// block is bounded by the transport, 5 s on Xen) without the state it
/// waits for arriving.
pub const MAX_WAITS: u32 = 6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XenbusError {
    Xenstore(XsError),
    /// A key the protocol needs is missing or does not parse.
    BadKey {
        path: String,
        value: Option<String>,
    },
    /// The backend's state is not a `xenbus_state`.
    BadState {
        path: String,
        value: String,
    },
    /// The backend went somewhere the protocol does not allow from here.
    Unexpected {
        device: String,
        state: State,
        waiting_for: &'static str,
    },
    /// The backend did not reach the state in time.
    Timeout {
        device: String,
        state: State,
        waiting_for: &'static str,
    },
}

impl fmt::Display for XenbusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XenbusError::Xenstore(e) => e.fmt(f),
            XenbusError::BadKey { path, value: None } => write!(f, "{path} is missing"),
            XenbusError::BadKey { path, value: Some(v) } => write!(f, "{path} = \"{v}\" is not valid"),
            XenbusError::BadState { path, value } => write!(f, "{path} = \"{value}\" is not a xenbus state"),
            XenbusError::Unexpected { device, state, waiting_for } => {
                write!(f, "{device}: backend went {} while waiting for {waiting_for}", state.name())
            }
            XenbusError::Timeout { device, state, waiting_for } => {
                write!(f, "{device}: backend still {} after waiting for {waiting_for}", state.name())
            }
        }
    }
}

impl From<XsError> for XenbusError {
    fn from(e: XsError) -> Self {
        XenbusError::Xenstore(e)
    }
}

/// One PV device of this domain, as the toolstack described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// `vbd`, `vif`, …
    pub class: String,
    /// The id under `device/<class>/` (for a disk, its virtual device number).
    pub id: u32,
    /// Our directory: `device/<class>/<id>` (relative to our home).
    pub frontend: String,
    /// The backend's directory (absolute).
    pub backend: String,
    /// The backend's domain.
    pub backend_id: u16,
}

/// The devices of `class`, sorted by id. No `device/<class>` directory
/// means none.
pub fn devices<T: Transport>(xs: &mut Xenstore<T>, class: &str) -> Result<Vec<Device>, XenbusError> {
    let dir = format!("device/{class}");
    let ids = match xs.directory(&dir) {
        Ok(ids) => ids,
        Err(XsError::Errno(Errno::Enoent)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for name in ids {
        let frontend = format!("{dir}/{name}");
        let id = name.parse::<u32>().map_err(|_| XenbusError::BadKey { path: frontend.clone(), value: None })?;
        let backend = read_key(xs, &format!("{frontend}/backend"))?;
        let backend_id = parse_key(xs, &format!("{frontend}/backend-id"))?;
        // The backend lives in its domain's backend tree; anything else is
        // a toolstack bug or a lie, and we would write and watch there.
        if !backend.starts_with(&format!("/local/domain/{backend_id}/backend/{class}/")) {
            return Err(XenbusError::BadKey { path: format!("{frontend}/backend"), value: Some(backend) });
        }
        out.push(Device { class: class.into(), id, frontend, backend, backend_id });
    }
    out.sort_by_key(|d| d.id);
    Ok(out)
}

fn read_key<T: Transport>(xs: &mut Xenstore<T>, path: &str) -> Result<String, XenbusError> {
    match xs.read(path) {
        Ok(v) => Ok(v),
        Err(XsError::Errno(Errno::Enoent)) => Err(XenbusError::BadKey { path: path.into(), value: None }),
        Err(e) => Err(e.into()),
    }
}

fn parse_key<T: Transport, V: core::str::FromStr>(xs: &mut Xenstore<T>, path: &str) -> Result<V, XenbusError> {
    let v = read_key(xs, path)?;
    v.trim().parse().map_err(|_| XenbusError::BadKey { path: path.into(), value: Some(v) })
}

impl Device {
    /// A backend key, `None` when absent.
    pub fn backend_key<T: Transport>(&self, xs: &mut Xenstore<T>, key: &str) -> Result<Option<String>, XenbusError> {
        match xs.read(&format!("{}/{key}", self.backend)) {
            Ok(v) => Ok(Some(v)),
            Err(XsError::Errno(Errno::Enoent)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A backend key that must parse when present.
    pub fn backend_parse<T: Transport, V: core::str::FromStr>(&self, xs: &mut Xenstore<T>, key: &str) -> Result<Option<V>, XenbusError> {
        match self.backend_key(xs, key)? {
            None => Ok(None),
            Some(v) => {
                v.trim().parse().map(Some).map_err(|_| XenbusError::BadKey { path: format!("{}/{key}", self.backend), value: Some(v) })
            }
        }
    }

    /// A backend feature flag (`feature-…` = "1").
    pub fn backend_feature<T: Transport>(&self, xs: &mut Xenstore<T>, key: &str) -> Result<bool, XenbusError> {
        Ok(self.backend_parse::<T, u32>(xs, key)?.unwrap_or(0) == 1)
    }

    /// Write one of our own keys.
    pub fn write<T: Transport>(&self, xs: &mut Xenstore<T>, key: &str, value: &str) -> Result<(), XenbusError> {
        Ok(xs.write(&format!("{}/{key}", self.frontend), value)?)
    }

    /// Remove one of our own keys (absent is fine).
    pub fn remove<T: Transport>(&self, xs: &mut Xenstore<T>, key: &str) -> Result<(), XenbusError> {
        match xs.rm(&format!("{}/{key}", self.frontend)) {
            Ok(()) | Err(XsError::Errno(Errno::Enoent)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn set_state<T: Transport>(&self, xs: &mut Xenstore<T>, s: State) -> Result<(), XenbusError> {
        self.write(xs, "state", &(s as u8).to_string())
    }

    pub fn backend_state<T: Transport>(&self, xs: &mut Xenstore<T>) -> Result<State, XenbusError> {
        let path = format!("{}/state", self.backend);
        match xs.read(&path) {
            // A backend directory being torn down reads as Closed.
            Err(XsError::Errno(Errno::Enoent)) => Ok(State::Closed),
            Err(e) => Err(e.into()),
            Ok(v) => State::parse(&v).ok_or(XenbusError::BadState { path, value: v }),
        }
    }

    /// Wait until the backend's state is one `done` accepts; a state `bad`
    /// accepts is an error at once. Blocks on a watch of the backend's
    /// state, at most [`MAX_WAITS`] times.
    pub fn wait_backend<T: Transport>(
        &self,
        xs: &mut Xenstore<T>,
        waiting_for: &'static str,
        done: impl Fn(State) -> bool,
        bad: impl Fn(State) -> bool,
    ) -> Result<State, XenbusError> {
        let path = format!("{}/state", self.backend);
        let token = format!("xenbus:{}", self.frontend);
        xs.watch(&path, &token)?;
        let result = self.wait_watched(xs, &token, waiting_for, done, bad);
        let _ = xs.unwatch(&path, &token);
        result
    }

    fn wait_watched<T: Transport>(
        &self,
        xs: &mut Xenstore<T>,
        token: &str,
        waiting_for: &'static str,
        done: impl Fn(State) -> bool,
        bad: impl Fn(State) -> bool,
    ) -> Result<State, XenbusError> {
        let mut waits = 0;
        loop {
            let s = self.backend_state(xs)?;
            if done(s) {
                return Ok(s);
            }
            if bad(s) {
                return Err(XenbusError::Unexpected { device: self.frontend.clone(), state: s, waiting_for });
            }
            // Sleep until some watch fires; ours is checked by re-reading.
            let mut ours = false;
            while !ours {
                match xs.poll_event()? {
                    Some(ev) => ours = ev.token == token,
                    None => {
                        if waits == MAX_WAITS || !xs.transport().wait() {
                            return Err(XenbusError::Timeout { device: self.frontend.clone(), state: s, waiting_for });
                        }
                        waits += 1;
                    }
                }
            }
        }
    }

    /// Hand the device back: `Closing`, the backend closes, `Closed`, then
    /// `Initialising`, and the backend is back in `InitWait` for the next
    /// frontend. Call after revoking nothing: the caller revokes its grants
    /// and closes its event channel once the backend has let go (Closed).
    pub fn close<T: Transport>(&self, xs: &mut Xenstore<T>) -> Result<(), XenbusError> {
        self.set_state(xs, State::Closing)?;
        self.wait_backend(xs, "Closing or Closed", |s| s >= State::Closing || s <= State::InitWait, |_| false)?;
        self.set_state(xs, State::Closed)?;
        self.wait_backend(xs, "Closed", |s| s == State::Closed || s <= State::InitWait, |_| false)?;
        Ok(())
    }

    /// After [`close`](Self::close) and the caller's clean-up: forget what
    /// we published and say `Initialising`, so the backend prepares for the
    /// next frontend (it goes back to `InitWait`).
    pub fn reset<T: Transport>(&self, xs: &mut Xenstore<T>, keys: &[&str]) -> Result<(), XenbusError> {
        for k in keys {
            self.remove(xs, k)?;
        }
        self.set_state(xs, State::Initialising)?;
        self.wait_backend(xs, "InitWait", |s| s == State::InitWait, |_| false).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::xenstore::fake::Fake;

    const BE: &str = "/local/domain/0/backend/vbd/5/51712";

    /// A fake blkback: follows the frontend's state as Linux's does.
    fn backend(path: &str, value: &str, store: &mut Vec<(String, String)>) {
        if path != "device/vbd/51712/state" {
            return;
        }
        let next = match value {
            "3" => "4", // Initialised -> Connected
            "5" => "5", // Closing -> Closing
            "6" => "6", // Closed -> Closed
            "1" => "2", // Initialising (after Closed) -> InitWait
            _ => return,
        };
        store.push((format!("{BE}/state"), next.into()));
    }

    fn disk() -> Xenstore<Fake> {
        let mut f = Fake::new();
        for (k, v) in [
            ("device/vbd/51712/backend", BE),
            ("device/vbd/51712/backend-id", "0"),
            ("device/vbd/51712/state", "1"),
            ("/local/domain/0/backend/vbd/5/51712/state", "2"),
            ("/local/domain/0/backend/vbd/5/51712/sectors", "2048"),
        ] {
            f.store.insert(k.into(), v.into());
        }
        f.backend = Some(backend);
        Xenstore::new(f)
    }

    #[test]
    fn states_parse_and_refuse() {
        assert_eq!(State::parse("4"), Some(State::Connected));
        assert_eq!(State::parse(" 2\n"), Some(State::InitWait));
        assert_eq!(State::parse("9"), None);
        assert_eq!(State::parse("x"), None);
    }

    #[test]
    fn devices_are_found_and_checked() {
        let mut xs = disk();
        let d = devices(&mut xs, "vbd").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].id, d[0].backend.as_str(), d[0].backend_id), (51712, BE, 0));
        assert_eq!(devices(&mut xs, "vif").unwrap(), vec![]);
        // A backend path outside the backend domain's tree is refused.
        xs.transport().store.insert("device/vbd/51712/backend".into(), "/local/domain/7/data".into());
        assert!(matches!(devices(&mut xs, "vbd"), Err(XenbusError::BadKey { .. })));
    }

    #[test]
    fn connect_close_and_reset() {
        let mut xs = disk();
        let d = devices(&mut xs, "vbd").unwrap().remove(0);
        assert_eq!(d.backend_state(&mut xs).unwrap(), State::InitWait);
        assert_eq!(d.backend_parse::<_, u64>(&mut xs, "sectors").unwrap(), Some(2048));
        assert_eq!(d.backend_parse::<_, u64>(&mut xs, "sector-size").unwrap(), None);
        d.write(&mut xs, "ring-ref", "8").unwrap();
        d.set_state(&mut xs, State::Initialised).unwrap();
        assert_eq!(d.wait_backend(&mut xs, "Connected", |s| s == State::Connected, |s| s > State::Connected).unwrap(), State::Connected);
        d.close(&mut xs).unwrap();
        d.reset(&mut xs, &["ring-ref"]).unwrap();
        assert_eq!(d.backend_state(&mut xs).unwrap(), State::InitWait);
        assert!(!xs.transport().store.contains_key("device/vbd/51712/ring-ref"));
        assert_eq!(xs.transport().store["device/vbd/51712/state"], "1");
    }

    #[test]
    fn a_silent_or_lying_backend_is_an_error() {
        let mut xs = disk();
        xs.transport().backend = None; // never answers
        let d = devices(&mut xs, "vbd").unwrap().remove(0);
        d.set_state(&mut xs, State::Initialised).unwrap();
        let e = d.wait_backend(&mut xs, "Connected", |s| s == State::Connected, |s| s > State::Connected).unwrap_err();
        assert!(matches!(e, XenbusError::Timeout { state: State::InitWait, .. }), "{e:?}");
        xs.transport().store.insert(format!("{BE}/state"), "42".into());
        assert!(matches!(d.backend_state(&mut xs), Err(XenbusError::BadState { .. })));
        xs.transport().store.insert(format!("{BE}/state"), "6".into());
        let e = d.wait_backend(&mut xs, "Connected", |s| s == State::Connected, |s| s > State::Connected).unwrap_err();
        assert!(matches!(e, XenbusError::Unexpected { state: State::Closed, .. }), "{e}");
        xs.transport().store.insert(format!("{BE}/sectors"), "lots".into());
        assert!(matches!(d.backend_parse::<_, u64>(&mut xs, "sectors"), Err(XenbusError::BadKey { .. })));
    }
}
