//! Quotas: the limits an unprivileged domain works within (dom0 is exempt,
//! as in xenstored), and what each domain's nodes use.

use alloc::collections::BTreeMap;

use super::path::Limits;
use super::{DomId, Errno};

/// The limits. [`Default`] is Xen 4.17's xenstored's defaults, plus the
/// bound on output queued for a connection that does not read its ring.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Nodes a domain may own.
    pub nodes: usize,
    /// Bytes of one node written by an unprivileged domain: value, child
    /// names (each with its NUL) and 4 a permission entry.
    pub node_size: usize,
    /// Path lengths, absolute and relative (before expansion).
    pub path: Limits,
    /// Watches a connection may hold.
    pub watches: usize,
    /// Transactions a connection may have open.
    pub transactions: usize,
    /// Permission entries a node may be given.
    pub perms: usize,
    /// Nodes one transaction may read or write.
    pub txn_nodes: usize,
    /// Replies queued and unread after which a connection's further
    /// requests wait (are not read) until it reads.
    pub outstanding: usize,
    /// Bytes of nodes a domain may own (paths, values, child names,
    /// permissions), its open transactions' changes included.
    pub memory: usize,
    /// Bytes queued for a connection's ring beyond which its watch events
    /// are dropped and its requests wait: what a connection that never
    /// reads can cost is this plus one reply.
    pub output: usize,
    /// Bytes all domains but dom0 may own together, each node counted with
    /// [`NODE_OVERHEAD`] ([`Usage::cost`]). Xen's xenstored has no such
    /// limit (`usize::MAX` here by default); a xenstore domain with a heap
    /// of a few MiB sets one below its heap, so that guests together cannot
    /// exhaust it.
    pub guests_memory: usize,
}

/// What a node costs beyond its bytes here: its map entry and its entry in
/// its parent's child list, with their allocations (about 200 bytes on
/// x86-64, measured with a counting allocator's totals over 1,000 nodes;
/// counted low, as 128). Only [`Config::guests_memory`] counts it: the
/// per-domain quota counts bytes, as Xen's does.
pub const NODE_OVERHEAD: usize = 128;

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 1000,
            node_size: 2048,
            path: Limits { abs: 3072, rel: 2048 },
            watches: 128,
            transactions: 10,
            perms: 5,
            txn_nodes: 1024,
            outstanding: 20,
            memory: 2560 * 1024,
            output: 64 * 1024,
            guests_memory: usize::MAX,
        }
    }
}

/// What one domain's nodes use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub nodes: usize,
    pub bytes: usize,
}

impl Usage {
    /// Bytes with each node's [`NODE_OVERHEAD`]: what
    /// [`Config::guests_memory`] bounds.
    pub fn cost(&self) -> usize {
        self.bytes.saturating_add(self.nodes.saturating_mul(NODE_OVERHEAD))
    }
}

/// Usage per owning domain; a domain that owns nothing has no entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts(BTreeMap<DomId, Usage>);

impl Accounts {
    pub fn get(&self, dom: DomId) -> Usage {
        self.0.get(&dom).copied().unwrap_or_default()
    }

    /// Count a node of `bytes` for `dom` (`add`) or stop counting it.
    pub fn charge(&mut self, dom: DomId, bytes: usize, add: bool) {
        let u = self.0.entry(dom).or_default();
        if add {
            u.nodes += 1;
            u.bytes += bytes;
        } else {
            // A release without its charge would be drift: a bug.
            debug_assert!(u.nodes >= 1 && u.bytes >= bytes, "accounting drift for dom{dom}");
            u.nodes = u.nodes.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(bytes);
        }
        if u.nodes == 0 && u.bytes == 0 {
            self.0.remove(&dom);
        }
    }

    /// What every domain but dom0 uses, together.
    pub fn guests(&self) -> Usage {
        self.0
            .iter()
            .filter(|(d, _)| **d != 0)
            .fold(Usage::default(), |a, (_, u)| Usage { nodes: a.nodes + u.nodes, bytes: a.bytes + u.bytes })
    }

    /// Every domain with nodes.
    pub fn iter(&self) -> impl Iterator<Item = (DomId, Usage)> + '_ {
        self.0.iter().map(|(d, u)| (*d, *u))
    }
}

impl Config {
    /// EQUOTA when `u`, what all guests would use together, is over
    /// [`Config::guests_memory`].
    pub fn check_guests(&self, u: Usage) -> Result<(), Errno> {
        if u.cost() > self.guests_memory {
            Err(Errno::EQUOTA)
        } else {
            Ok(())
        }
    }

    /// EQUOTA when `u` (a domain's usage after a change that grows it)
    /// is over the node or memory quota.
    pub fn check_usage(&self, u: Usage) -> Result<(), Errno> {
        if u.nodes > self.nodes || u.bytes > self.memory {
            Err(Errno::EQUOTA)
        } else {
            Ok(())
        }
    }

    /// EQUOTA when a node of `bytes` is too large.
    pub fn check_node_size(&self, bytes: usize) -> Result<(), Errno> {
        if bytes > self.node_size {
            Err(Errno::EQUOTA)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_xen_4_17s() {
        let c = Config::default();
        assert_eq!((c.nodes, c.node_size, c.path.abs, c.path.rel), (1000, 2048, 3072, 2048));
        assert_eq!((c.watches, c.transactions, c.perms, c.txn_nodes, c.outstanding), (128, 10, 5, 1024, 20));
        assert_eq!(c.memory, 2_621_440);
    }

    #[test]
    fn accounts_add_and_release_back_to_nothing() {
        let mut a = Accounts::default();
        a.charge(3, 10, true);
        a.charge(3, 5, true);
        assert_eq!(a.get(3), Usage { nodes: 2, bytes: 15 });
        a.charge(3, 10, false);
        a.charge(3, 5, false);
        assert_eq!(a, Accounts::default());
    }

    #[test]
    fn checks() {
        let c = Config { nodes: 2, memory: 100, node_size: 10, ..Config::default() };
        assert_eq!(c.check_usage(Usage { nodes: 2, bytes: 100 }), Ok(()));
        assert_eq!(c.check_usage(Usage { nodes: 3, bytes: 0 }), Err(Errno::EQUOTA));
        assert_eq!(c.check_usage(Usage { nodes: 1, bytes: 101 }), Err(Errno::EQUOTA));
        assert_eq!(c.check_node_size(11), Err(Errno::EQUOTA));
    }
}
