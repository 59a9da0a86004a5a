//! Permissions: a node's list of entries like `r5`, the first naming the
//! owner (who always has full access) and the access of every domain
//! without an entry of its own; and who a caller is when they are checked.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use super::{wire, DomId, Errno};

/// What a domain may do with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

impl Access {
    pub const NONE: Access = Access { read: false, write: false };
    pub const BOTH: Access = Access { read: true, write: true };

    fn letter(self) -> char {
        match (self.read, self.write) {
            (false, false) => 'n',
            (true, false) => 'r',
            (false, true) => 'w',
            (true, true) => 'b',
        }
    }

    fn union(self, o: Access) -> Access {
        Access { read: self.read || o.read, write: self.write || o.write }
    }
}

/// One entry: a domain and its access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub dom: DomId,
    pub access: Access,
}

impl Perm {
    /// `n0`, `r5`, `w2`, `b3`; anything else is EINVAL.
    pub fn parse(s: &str) -> Result<Perm, Errno> {
        let mut chars = s.chars();
        let access = match chars.next() {
            Some('n') => Access::NONE,
            Some('r') => Access { read: true, write: false },
            Some('w') => Access { read: false, write: true },
            Some('b') => Access::BOTH,
            _ => return Err(Errno::EINVAL),
        };
        Ok(Perm { dom: wire::number(chars.as_str())?, access })
    }
}

/// A node's entries; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms(pub Vec<Perm>);

impl Perms {
    /// Owned by `dom`, no access for anyone else (`n<dom>`).
    pub fn owned_by(dom: DomId) -> Perms {
        Perms(alloc::vec![Perm { dom, access: Access::NONE }])
    }

    /// The entries of a SET_PERMS request: at least one.
    pub fn parse(entries: &[&str]) -> Result<Perms, Errno> {
        if entries.is_empty() {
            return Err(Errno::EINVAL);
        }
        entries.iter().map(|e| Perm::parse(e)).collect::<Result<Vec<_>, _>>().map(Perms)
    }

    pub fn owner(&self) -> DomId {
        self.0[0].dom
    }

    /// GET_PERMS' payload: each entry NUL-terminated.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut s = String::new();
        for p in &self.0 {
            let _ = write!(s, "{}{}\0", p.access.letter(), p.dom);
        }
        s.into_bytes()
    }

    /// The access of `dom` alone: full for the owner, else its own entry,
    /// else the default (the first entry's).
    fn of(&self, dom: DomId) -> Access {
        if dom == self.owner() {
            return Access::BOTH;
        }
        self.0[1..].iter().find(|p| p.dom == dom).map_or(self.0[0].access, |p| p.access)
    }

    /// Drop every mention of a domain that is gone, so a domain reusing
    /// its id inherits nothing (XSA-322): its entries go, and if it owned
    /// the node dom0 owns it now, with the same default access. True when
    /// anything changed.
    pub fn forget(&mut self, dom: DomId) -> bool {
        let before = self.0.len();
        let first = self.0[0];
        self.0.retain(|p| p.dom != dom);
        if first.dom == dom {
            self.0.insert(0, Perm { dom: 0, access: first.access });
        }
        first.dom == dom || self.0.len() != before
    }

    /// The bytes a node's entries take in accounting.
    pub fn bytes(&self) -> usize {
        self.0.len() * 4
    }
}

/// Who is asking: dom0 is privileged; a device model given a target by
/// SET_TARGET acts for it as well as for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub dom: DomId,
    pub target: Option<DomId>,
}

impl Caller {
    pub fn privileged(self) -> bool {
        self.dom == 0
    }

    /// The caller's access to a node with `perms`: everything for dom0;
    /// else its own, joined with its target's (SET_TARGET: "inherits all
    /// permissions granted to <tdomid>").
    pub fn access(self, perms: &Perms) -> Access {
        if self.privileged() {
            return Access::BOTH;
        }
        let own = perms.of(self.dom);
        self.target.map_or(own, |t| own.union(perms.of(t)))
    }

    /// The caller may change the node's permissions: it is dom0, the
    /// owner, or acts for the owner.
    pub fn owns(self, perms: &Perms) -> bool {
        self.privileged() || perms.owner() == self.dom || self.target == Some(perms.owner())
    }

    /// EACCES unless the caller may read.
    pub fn check_read(self, perms: &Perms) -> Result<(), Errno> {
        if self.access(perms).read {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// EACCES unless the caller may write.
    pub fn check_write(self, perms: &Perms) -> Result<(), Errno> {
        if self.access(perms).write {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(s: &[&str]) -> Perms {
        Perms::parse(s).unwrap()
    }

    const DOMU: Caller = Caller { dom: 5, target: None };

    #[test]
    fn parse_and_format_round_trip() {
        let p = perms(&["n0", "r1", "w2", "b3"]);
        assert_eq!(p.to_wire(), b"n0\0r1\0w2\0b3\0");
        for bad in ["", "x1", "r", "r-1", "r65536", "R1", "r 1"] {
            assert_eq!(Perm::parse(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(Perms::parse(&[]), Err(Errno::EINVAL));
    }

    #[test]
    fn owner_full_entry_then_default() {
        assert_eq!(DOMU.access(&perms(&["n5"])), Access::BOTH);
        assert_eq!(DOMU.access(&perms(&["n0"])), Access::NONE);
        assert_eq!(DOMU.access(&perms(&["r0"])), Access { read: true, write: false });
        assert_eq!(DOMU.access(&perms(&["b0", "n5"])), Access::NONE);
        assert_eq!(Caller { dom: 0, target: None }.access(&perms(&["n7"])), Access::BOTH);
    }

    #[test]
    fn a_device_model_acts_for_its_target() {
        let dm = Caller { dom: 9, target: Some(5) };
        assert_eq!(dm.access(&perms(&["n5"])), Access::BOTH);
        assert_eq!(dm.access(&perms(&["n0", "r5"])), Access { read: true, write: false });
        assert!(dm.owns(&perms(&["n5"])) && !dm.owns(&perms(&["n0"])));
    }

    #[test]
    fn forgetting_a_domain_leaves_dom0_owner_and_no_entry() {
        let mut p = perms(&["r5", "b5", "w6"]);
        assert!(p.forget(5));
        assert_eq!(p, perms(&["r0", "w6"]));
        assert!(!p.forget(7));
    }
}
