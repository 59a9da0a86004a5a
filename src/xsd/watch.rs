//! Watches and the events they are sent: an event on a path reaches every
//! watch on that path or above it, and, when the event is a removal, every
//! watch below it too (reported as the watch's own path, as xenstore.txt
//! says). A watcher is sent only events on nodes it may read (XSA-115).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::path::{self, Resolved};
use super::perms::Perms;
use super::wire::{self, Type, PAYLOAD_MAX};
use super::{DomId, Errno};

/// Something changed at `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The absolute path (or special name) that changed.
    pub path: String,
    /// Its permissions, which decide who is told.
    pub perms: Perms,
    /// For a removal: every node removed (the path and all below it) with
    /// the permissions it had, for the watches below `path`. Else empty.
    pub removed: BTreeMap<String, Perms>,
}

impl Event {
    pub fn changed(path: &str, perms: Perms) -> Event {
        Event { path: String::from(path), perms, removed: BTreeMap::new() }
    }
}

/// One watch of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub at: Resolved,
    pub token: Vec<u8>,
}

/// The longest token accepted: one whose event, for any path up to the
/// absolute limit, still fits a payload (XSA-324). Longer: E2BIG.
pub fn max_token(abs_path_max: usize) -> usize {
    PAYLOAD_MAX.saturating_sub(abs_path_max + 2)
}

impl Watch {
    /// The path this watch reports `ev` as and the permissions that decide
    /// whether its watcher (domain `dom`) is told; None when it does not
    /// match.
    pub fn report<'e>(&'e self, ev: &'e Event, dom: DomId) -> Option<(&'e str, &'e Perms)> {
        if path::is_child(&ev.path, &self.at.abs) {
            let shown = if self.at.relative { path::relative_to(&ev.path, dom) } else { &ev.path };
            return Some((shown, &ev.perms));
        }
        if ev.removed.is_empty() || !path::is_child(&self.at.abs, &ev.path) {
            return None;
        }
        // Removed above the watch: the deepest removed node at or above
        // the watched path decides, and the watch's own path is reported.
        let mut p = self.at.abs.as_str();
        loop {
            if let Some(perms) = ev.removed.get(p) {
                return Some((self.given(dom), perms));
            }
            p = path::parent(p);
        }
    }

    /// The path as the watcher gave it.
    pub fn given(&self, dom: DomId) -> &str {
        if self.at.relative {
            path::relative_to(&self.at.abs, dom)
        } else {
            &self.at.abs
        }
    }

    /// A WATCH_EVENT message for `shown` (`path|token|`).
    pub fn message(&self, shown: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(shown.len() + self.token.len() + 2);
        body.extend_from_slice(shown.as_bytes());
        body.push(0);
        body.extend_from_slice(&self.token);
        body.push(0);
        wire::message(Type::WatchEvent as u32, 0, 0, &body)
    }
}

/// Check a new watch against a connection's list: a duplicate (same path
/// and token) is EEXIST, a token too long E2BIG, one too many EQUOTA (when
/// `max` applies).
pub fn admit(list: &[Watch], w: &Watch, max: Option<usize>, abs_path_max: usize) -> Result<(), Errno> {
    if w.token.len() > max_token(abs_path_max) {
        return Err(Errno::E2BIG);
    }
    if list.iter().any(|x| x.at.abs == w.at.abs && x.token == w.token) {
        return Err(Errno::EEXIST);
    }
    if max.is_some_and(|m| list.len() >= m) {
        return Err(Errno::EQUOTA);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsd::path::Limits;

    const LIM: Limits = Limits { abs: 3072, rel: 2048 };

    fn watch(p: &str, dom: DomId) -> Watch {
        Watch { at: path::resolve(p, dom, LIM).unwrap(), token: b"tok".to_vec() }
    }

    fn removal(top: &str, below: &[&str]) -> Event {
        let mut ev = Event::changed(top, Perms::owned_by(0));
        ev.removed.insert(top.into(), Perms::owned_by(0));
        for b in below {
            ev.removed.insert((*b).into(), Perms::owned_by(7));
        }
        ev
    }

    #[test]
    fn events_at_and_below_the_watch_match() {
        let w = watch("/a", 1);
        let ev = Event::changed("/a/b", Perms::owned_by(0));
        assert_eq!(w.report(&ev, 1).map(|r| r.0), Some("/a/b"));
        assert_eq!(w.report(&Event::changed("/ab", Perms::owned_by(0)), 1), None);
        assert_eq!(w.report(&Event::changed("/", Perms::owned_by(0)), 1), None);
    }

    #[test]
    fn relative_watches_see_relative_paths() {
        let w = watch("data", 4);
        let ev = Event::changed("/local/domain/4/data/x", Perms::owned_by(4));
        assert_eq!(w.report(&ev, 4).map(|r| r.0), Some("data/x"));
        assert_eq!(w.given(4), "data");
    }

    #[test]
    fn removal_above_reports_the_watch_path_with_the_nearest_removed_perms() {
        let w = watch("/a/b/c/d", 1);
        let ev = removal("/a", &["/a/b", "/a/b/c"]);
        let (shown, perms) = w.report(&ev, 1).unwrap();
        assert_eq!((shown, perms.owner()), ("/a/b/c/d", 7));
        assert_eq!(watch("/a/b/c/d", 1).report(&Event::changed("/a", Perms::owned_by(0)), 1), None);
    }

    #[test]
    fn message_is_path_token_with_nuls() {
        let m = watch("/a", 1).message("/a/b");
        assert_eq!(&m[wire::HEADER..], b"/a/b\0tok\0");
        assert_eq!(wire::Header::parse(&m).ty, Type::WatchEvent as u32);
    }

    #[test]
    fn admission() {
        let w = watch("/a", 1);
        assert_eq!(admit(&[], &w, Some(1), 3072), Ok(()));
        assert_eq!(admit(core::slice::from_ref(&w), &w, None, 3072), Err(Errno::EEXIST));
        assert_eq!(admit(&[watch("/b", 1)], &w, Some(1), 3072), Err(Errno::EQUOTA));
        let long = Watch { token: alloc::vec![b'x'; 1023], ..w.clone() };
        assert_eq!(admit(&[], &long, None, 3072), Err(Errno::E2BIG));
        assert_eq!(max_token(3072), 1022);
    }
}
