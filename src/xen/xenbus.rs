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
//! finds the device as a fresh one): `Closed`, wait for the backend to
//! disconnect and say `Closed`, then `Initialising`, which makes the
//! backend go back to `InitWait` ("prepare for reconnect" in Linux's
//! blkback). No `Closing` first: nothing is in flight by then, and
//! `Closing` only makes a backend say `Closing` too (one more round trip
//! through dom0); Linux's own xenbus core takes a removed frontend
//! straight to `Closed` the same way.
//!
//! Each step of the protocol (our keys and state, a watch, the backend's
//! state and keys) is one pipelined xenstore batch ([`Step`]): a round trip
//! to dom0's xenstored costs milliseconds, a step about one.
//!
//! Everything the backend writes is untrusted: states outside the enum,
//! ids that do not parse, a backend path outside `/local/domain/<id>/backend/`
//! are typed errors. Every wait is bounded.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::xen::xenstore::{Errno, Op, Reply, Transport, Xenstore, XsError, MAX_BATCH};

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
    // Every device's backend and backend-id, in batches.
    let mut replies = Vec::new();
    for chunk in ids.chunks(MAX_BATCH / 2) {
        let mut ops = Vec::new();
        for name in chunk {
            ops.push(Op::read(&format!("{dir}/{name}/backend")));
            ops.push(Op::read(&format!("{dir}/{name}/backend-id")));
        }
        replies.extend(xs.batch(&ops)?);
    }
    let mut replies = replies.into_iter();
    let mut out = Vec::new();
    for name in ids {
        let frontend = format!("{dir}/{name}");
        let id = name.parse::<u32>().map_err(|_| XenbusError::BadKey { path: frontend.clone(), value: None })?;
        let path = format!("{frontend}/backend");
        let backend = value(&path, replies.next())?.ok_or(XenbusError::BadKey { path, value: None })?;
        let path = format!("{frontend}/backend-id");
        let backend_id = parse(&path, value(&path, replies.next())?)?.ok_or(XenbusError::BadKey { path, value: None })?;
        // The backend lives in its domain's backend tree; anything else is
        // a toolstack bug or a lie, and we would write and watch there.
        if !backend.starts_with(&format!("/local/domain/{backend_id}/backend/{class}/")) {
            return Err(XenbusError::BadKey { path: format!("{frontend}/backend"), value: Some(backend) });
        }
        out.push(Device { class: class.into(), id, frontend, backend, backend_id });
    }
    crate::sort::sort_by_key(&mut out, |d| d.id);
    Ok(out)
}

/// A key's value from its reply: `None` when absent.
fn value(path: &str, reply: Option<Reply>) -> Result<Option<String>, XenbusError> {
    match reply {
        Some(Ok(mut v)) => {
            if v.last() == Some(&0) {
                v.pop();
            }
            String::from_utf8(v).map(Some).map_err(|_| XenbusError::BadKey { path: path.into(), value: None })
        }
        Some(Err(Errno::Enoent)) => Ok(None),
        Some(Err(e)) => Err(XsError::Errno(e).into()),
        None => Err(XsError::Protocol("a reply is missing").into()),
    }
}

/// A present value that must parse.
fn parse<V: core::str::FromStr>(path: &str, v: Option<String>) -> Result<Option<V>, XenbusError> {
    match v {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| XenbusError::BadKey { path: path.into(), value: Some(v) }),
    }
}

/// One step of the protocol, sent as one xenstore batch: our writes and
/// removals, then our new state, then a read of the backend's state and of
/// the backend keys the step needs. xenstored answers in order, so what is
/// read was the backend's after our writes. One step costs one round trip
/// to dom0, where one request at a time would cost one each.
#[derive(Default)]
pub struct Step {
    writes: Vec<(String, String)>,
    removes: Vec<String>,
    state: Option<State>,
    reads: Vec<String>,
    watch: Option<bool>,
}

impl Step {
    pub fn new() -> Step {
        Step::default()
    }
    /// Write one of our keys.
    pub fn write(mut self, key: &str, value: impl fmt::Display) -> Step {
        self.writes.push((key.into(), value.to_string()));
        self
    }
    /// Remove one of our keys (absent is fine).
    pub fn remove(mut self, key: &str) -> Step {
        self.removes.push(key.into());
        self
    }
    /// Say `state` after the writes.
    pub fn state(mut self, state: State) -> Step {
        self.state = Some(state);
        self
    }
    /// Read a backend key (see [`Seen`]).
    pub fn read(mut self, key: &str) -> Step {
        self.reads.push(key.into());
        self
    }
    /// Read each of `keys`.
    pub fn reads(self, keys: &[&str]) -> Step {
        keys.iter().fold(self, |st, k| st.read(k))
    }
    /// Start following the backend's state: a watch that [`Device::wait_backend`]
    /// blocks on, until a step with [`unfollow`](Self::unfollow).
    pub fn follow(mut self) -> Step {
        self.watch = Some(true);
        self
    }
    pub fn unfollow(mut self) -> Step {
        self.watch = Some(false);
        self
    }
}

/// What a [`Step`] read: the backend's state and keys.
#[derive(Clone, Debug)]
pub struct Seen {
    pub state: State,
    backend: String,
    values: Vec<(String, Option<String>)>,
}

impl Seen {
    /// A backend key read by the step, `None` when absent (or not read).
    pub fn key(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }
    /// A backend key that must parse when present.
    pub fn parse<V: core::str::FromStr>(&self, key: &str) -> Result<Option<V>, XenbusError> {
        parse(&format!("{}/{key}", self.backend), self.key(key).map(String::from))
    }
    /// A backend feature flag (`feature-…` = "1").
    pub fn feature(&self, key: &str) -> Result<bool, XenbusError> {
        Ok(self.parse::<u32>(key)?.unwrap_or(0) == 1)
    }
}

impl Device {
    fn token(&self) -> String {
        format!("xenbus:{}", self.frontend)
    }

    /// Run one [`Step`]: one batch, one round trip.
    pub fn step<T: Transport>(&self, xs: &mut Xenstore<T>, step: Step) -> Result<Seen, XenbusError> {
        let state_path = format!("{}/state", self.backend);
        let mut ops = Vec::new();
        for (k, v) in &step.writes {
            ops.push(Op::write(&format!("{}/{k}", self.frontend), v));
        }
        for k in &step.removes {
            ops.push(Op::rm(&format!("{}/{k}", self.frontend)));
        }
        if let Some(s) = step.state {
            ops.push(Op::write(&format!("{}/state", self.frontend), &(s as u8).to_string()));
        }
        match step.watch {
            Some(true) => ops.push(Op::watch(&state_path, &self.token())),
            Some(false) => ops.push(Op::unwatch(&state_path, &self.token())),
            None => {}
        }
        let acks = ops.len();
        ops.push(Op::read(&state_path));
        for k in &step.reads {
            ops.push(Op::read(&format!("{}/{k}", self.backend)));
        }
        let replies = xs.batch(&ops)?;
        for (i, r) in replies[..acks].iter().enumerate() {
            match r {
                Ok(_) => {}
                // Removing what is not there is fine.
                Err(Errno::Enoent) if i >= step.writes.len() && i < step.writes.len() + step.removes.len() => {}
                Err(e) => return Err(XsError::Errno(*e).into()),
            }
        }
        let mut rest = replies.into_iter().skip(acks);
        let state = match value(&state_path, rest.next())? {
            // A backend directory being torn down reads as Closed.
            None => State::Closed,
            Some(v) => State::parse(&v).ok_or(XenbusError::BadState { path: state_path, value: v })?,
        };
        let mut values = Vec::new();
        for k in step.reads {
            let v = value(&format!("{}/{k}", self.backend), rest.next())?;
            values.push((k, v));
        }
        Ok(Seen { state, backend: self.backend.clone(), values })
    }

    /// Wait, following the backend's state (a [`Step::follow`] must be in
    /// force), until `done` accepts it; a state `bad` accepts is an error at
    /// once. Each time the watch fires the state is read again, with
    /// `reads` (the [`Seen`] returned holds them, read with the state). At most [`MAX_WAITS`] bounded blocks without the state
    /// arriving.
    pub fn wait_backend<T: Transport>(
        &self,
        xs: &mut Xenstore<T>,
        mut seen: Seen,
        waiting_for: &'static str,
        done: impl Fn(State) -> bool,
        bad: impl Fn(State) -> bool,
        reads: &[&str],
    ) -> Result<Seen, XenbusError> {
        let token = self.token();
        let mut waits = 0;
        loop {
            let s = seen.state;
            if done(s) {
                // `reads` must come from the same look as the state.
                if reads.iter().all(|k| seen.values.iter().any(|(have, _)| have == k)) {
                    return Ok(seen);
                }
                seen = self.step(xs, Step::new().reads(reads))?;
                continue;
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
            seen = self.step(xs, Step::new().reads(reads))?;
        }
    }

    /// This device as the toolstack describes it now: after a resume in
    /// a new domain the backend is a new one (maybe in another domain).
    pub fn again<T: Transport>(&self, xs: &mut Xenstore<T>) -> Result<Device, XenbusError> {
        devices(xs, &self.class)?
            .into_iter()
            .find(|d| d.id == self.id)
            .ok_or_else(|| XenbusError::BadKey { path: self.frontend.clone(), value: None })
    }

    /// Hand the device back: `Closed`, and the backend disconnects and
    /// says `Closed` (see the module's text for why not `Closing` first).
    /// The caller must have nothing in flight; it then revokes its grants
    /// (each revoke fails while the backend still maps the page) and
    /// closes its event channel, and calls [`reset`](Self::reset).
    pub fn close<T: Transport>(&self, xs: &mut Xenstore<T>) -> Result<(), XenbusError> {
        let seen = self.step(xs, Step::new().state(State::Closed).follow())?;
        self.wait_backend(xs, seen, "Closed", |s| s == State::Closed || s <= State::InitWait, |_| false, &[])?;
        Ok(())
    }

    /// After [`close`](Self::close) and the caller's clean-up: forget what
    /// we published and say `Initialising`, so the backend prepares for the
    /// next frontend (it goes back to `InitWait`); stop following it.
    pub fn reset<T: Transport>(&self, xs: &mut Xenstore<T>, keys: &[&str]) -> Result<(), XenbusError> {
        let step = keys.iter().fold(Step::new(), |st, k| st.remove(k)).state(State::Initialising);
        let seen = self.step(xs, step)?;
        self.wait_backend(xs, seen, "InitWait", |s| s == State::InitWait, |_| false, &[])?;
        self.step(xs, Step::new().unfollow()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::xenstore::fake::Fake;

    const BE: &str = "/local/domain/0/backend/vbd/5/51712";

    std::thread_local! {
        /// Every state the frontend wrote, in order (this thread's test).
        static SAID: core::cell::RefCell<Vec<String>> = const { core::cell::RefCell::new(Vec::new()) };
    }

    /// A fake blkback: follows the frontend's state as Linux's does.
    fn backend(path: &str, value: &str, store: &mut Vec<(String, String)>) {
        if path != "device/vbd/51712/state" {
            return;
        }
        SAID.with(|s| s.borrow_mut().push(value.to_string()));
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
    fn more_devices_than_one_batch_holds() {
        let mut xs = disk();
        for id in 0..70u32 {
            let fe = format!("device/vbd/{}", 51712 + 16 * (id + 1));
            xs.transport().store.insert(format!("{fe}/backend"), format!("/local/domain/0/backend/vbd/5/{}", 51712 + 16 * (id + 1)));
            xs.transport().store.insert(format!("{fe}/backend-id"), "0".into());
        }
        let d = devices(&mut xs, "vbd").unwrap();
        assert_eq!(d.len(), 71);
        assert!(d.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(d[70].backend, format!("/local/domain/0/backend/vbd/5/{}", 51712 + 16 * 70));
    }

    #[test]
    fn connect_close_and_reset() {
        let mut xs = disk();
        let d = devices(&mut xs, "vbd").unwrap().remove(0);
        let seen = d.step(&mut xs, Step::new().follow().read("sectors").read("sector-size")).unwrap();
        assert_eq!(seen.state, State::InitWait);
        assert_eq!(seen.parse::<u64>("sectors").unwrap(), Some(2048));
        assert_eq!(seen.parse::<u64>("sector-size").unwrap(), None);
        let seen = d.step(&mut xs, Step::new().write("ring-ref", 8).state(State::Initialised)).unwrap();
        let seen = d.wait_backend(&mut xs, seen, "Connected", |s| s == State::Connected, |s| s > State::Connected, &["sectors"]).unwrap();
        assert_eq!((seen.state, seen.key("sectors")), (State::Connected, Some("2048")));
        d.step(&mut xs, Step::new().state(State::Connected).unfollow()).unwrap();
        assert!(xs.transport().watches.is_empty());
        d.close(&mut xs).unwrap();
        assert_eq!(xs.transport().store[&format!("{BE}/state")], "6", "the backend closed");
        // Straight from Connected to Closed, as Linux's xenbus core hands
        // back a removed frontend: no Closing round trip.
        assert_eq!(SAID.with(|s| s.borrow().clone()), ["3", "4", "6"]);
        d.reset(&mut xs, &["ring-ref", "never-written"]).unwrap();
        assert_eq!(d.step(&mut xs, Step::new()).unwrap().state, State::InitWait);
        assert!(!xs.transport().store.contains_key("device/vbd/51712/ring-ref"));
        assert_eq!(xs.transport().store["device/vbd/51712/state"], "1");
        assert!(xs.transport().watches.is_empty(), "the watch ends with the reset");
    }

    #[test]
    fn a_silent_or_lying_backend_is_an_error() {
        let mut xs = disk();
        xs.transport().backend = None; // never answers
        let d = devices(&mut xs, "vbd").unwrap().remove(0);
        let seen = d.step(&mut xs, Step::new().state(State::Initialised).follow()).unwrap();
        let e = d.wait_backend(&mut xs, seen, "Connected", |s| s == State::Connected, |s| s > State::Connected, &[]).unwrap_err();
        assert!(matches!(e, XenbusError::Timeout { state: State::InitWait, .. }), "{e:?}");
        xs.transport().store.insert(format!("{BE}/state"), "42".into());
        assert!(matches!(d.step(&mut xs, Step::new()), Err(XenbusError::BadState { .. })));
        xs.transport().store.insert(format!("{BE}/state"), "6".into());
        let seen = d.step(&mut xs, Step::new()).unwrap();
        let e = d.wait_backend(&mut xs, seen, "Connected", |s| s == State::Connected, |s| s > State::Connected, &[]).unwrap_err();
        assert!(matches!(e, XenbusError::Unexpected { state: State::Closed, .. }), "{e}");
        xs.transport().store.insert(format!("{BE}/sectors"), "lots".into());
        let seen = d.step(&mut xs, Step::new().read("sectors")).unwrap();
        assert!(matches!(seen.parse::<u64>("sectors"), Err(XenbusError::BadKey { .. })));
        // A write xenstored refuses is an error, not ignored.
        xs.transport().store.insert("device/vbd/51712/backend".into(), "/ro/x".into());
        let ro = Device { frontend: "/ro/vbd".into(), ..d.clone() };
        assert!(matches!(ro.step(&mut xs, Step::new().write("ring-ref", 1)), Err(XenbusError::Xenstore(XsError::Errno(Errno::Eacces)))));
    }
}
