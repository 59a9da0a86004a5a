//! Transactions: a private view of the tree. The first time a transaction
//! touches a path it copies the node (or notes its absence) with the
//! tree's generation for it; reads and writes then use the copy. A commit
//! succeeds only if no touched path changed in the tree meanwhile (else
//! EAGAIN), and then writes the changed copies through [`Tree::put`], so
//! usage is counted once, at commit, for what the transaction's end state
//! holds: a node created and deleted inside it costs nothing (XSA-421),
//! and a failed or abandoned transaction changes no count (XSA-440).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::quota::Usage;
use super::tree::{Node, Store, Tree};
use super::watch::Event;
use super::{DomId, Errno};

/// A touched path.
struct Entry {
    /// The tree's generation for it when first touched (None: absent).
    base: Option<u64>,
    node: Option<Node>,
    dirty: bool,
}

/// What one domain's usage changes by.
#[derive(Clone, Copy, Default)]
struct Delta {
    nodes: isize,
    bytes: isize,
}

/// An open transaction.
#[derive(Default)]
pub struct Txn {
    entries: BTreeMap<String, Entry>,
    delta: BTreeMap<DomId, Delta>,
    /// Watch events to fire if it commits.
    pub events: Vec<Event>,
}

impl Txn {
    /// Paths touched so far.
    pub fn touched(&self) -> usize {
        self.entries.len()
    }

    /// Something a touched path held has changed in the tree.
    pub fn conflicts(&self, tree: &Tree) -> bool {
        self.entries.iter().any(|(p, e)| tree.gen_of(p) != e.base)
    }

    /// The domains whose usage the commit grows.
    pub fn growing(&self) -> impl Iterator<Item = DomId> + '_ {
        self.delta.iter().filter(|(_, d)| d.nodes > 0 || d.bytes > 0).map(|(dom, _)| *dom)
    }

    /// Write the changed nodes into the tree (after [`Txn::conflicts`]
    /// said no) and hand back the events to fire.
    pub fn apply(self, tree: &mut Tree) -> Vec<Event> {
        for (p, e) in self.entries {
            if e.dirty {
                tree.put(&p, e.node);
            }
        }
        self.events
    }

    /// What `dom`'s nodes use as this transaction sees the tree.
    pub fn usage(&self, tree: &Tree, dom: DomId) -> Usage {
        let u = tree.usage(dom);
        let d = self.delta.get(&dom).copied().unwrap_or_default();
        Usage { nodes: u.nodes.saturating_add_signed(d.nodes), bytes: u.bytes.saturating_add_signed(d.bytes) }
    }

    /// What all domains but dom0 would use with this transaction's
    /// changes.
    pub fn guests(&self, tree: &Tree) -> Usage {
        let u = tree.guests();
        let (n, b) = self.delta.iter().filter(|(d, _)| **d != 0).fold((0, 0), |(n, b), (_, d)| (n + d.nodes, b + d.bytes));
        Usage { nodes: u.nodes.saturating_add_signed(n), bytes: u.bytes.saturating_add_signed(b) }
    }

    fn count(&mut self, node: &Option<Node>, path: &str, sign: isize) {
        if let Some(n) = node {
            let d = self.delta.entry(n.perms.owner()).or_default();
            d.nodes += sign;
            d.bytes += sign * n.bytes(path) as isize;
        }
    }
}

/// A transaction seen through the tree: the [`Store`] operations inside
/// one use. `limit` bounds the paths it may touch (None: dom0's).
pub struct View<'a> {
    pub tree: &'a mut Tree,
    pub txn: &'a mut Txn,
    pub limit: Option<usize>,
}

impl View<'_> {
    fn load(&mut self, path: &str) -> Result<&mut Entry, Errno> {
        if !self.txn.entries.contains_key(path) {
            if self.limit.is_some_and(|l| self.txn.entries.len() >= l) {
                return Err(Errno::EQUOTA);
            }
            let node = self.tree.node(path).cloned();
            self.txn.entries.insert(String::from(path), Entry { base: node.as_ref().map(|n| n.gen), node, dirty: false });
        }
        Ok(self.txn.entries.get_mut(path).expect("just loaded"))
    }
}

impl Store for View<'_> {
    fn get(&mut self, path: &str) -> Result<Option<&Node>, Errno> {
        Ok(self.load(path)?.node.as_ref())
    }

    /// Only for paths already touched: the operations read a node (or
    /// its absence) before they change it.
    fn put(&mut self, path: &str, node: Option<Node>) {
        let gen = self.tree.fresh_gen();
        let e = self.txn.entries.get_mut(path).expect("put of a path the transaction never read");
        let old = core::mem::replace(&mut e.node, node.map(|n| Node { gen, ..n }));
        e.dirty = true;
        let new = e.node.clone();
        self.txn.count(&old, path, -1);
        self.txn.count(&new, path, 1);
    }

    fn usage(&self, dom: DomId) -> Usage {
        self.txn.usage(self.tree, dom)
    }

    fn guests(&self) -> Usage {
        self.txn.guests(self.tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsd::perms::Perms;

    fn with_child(t: &mut Tree, name: &str) {
        let mut root = t.node("/").unwrap().clone();
        root.children.insert(name.into());
        t.put("/", Some(root));
        t.put(&alloc::format!("/{name}"), Some(Node::empty(Perms::owned_by(4))));
    }

    #[test]
    fn reads_see_the_copy_and_a_change_meanwhile_conflicts() {
        let mut tree = Tree::new();
        with_child(&mut tree, "a");
        let mut txn = Txn::default();
        View { tree: &mut tree, txn: &mut txn, limit: None }.get("/a").unwrap();
        assert!(!txn.conflicts(&tree));
        let n = tree.node("/a").unwrap().clone();
        tree.put("/a", Some(n));
        assert!(txn.conflicts(&tree));
    }

    #[test]
    fn create_then_delete_inside_costs_nothing() {
        let mut tree = Tree::new();
        let mut txn = Txn::default();
        let mut v = View { tree: &mut tree, txn: &mut txn, limit: None };
        v.get("/b").unwrap();
        v.put("/b", Some(Node::empty(Perms::owned_by(4))));
        assert_eq!(v.usage(4).nodes, 1);
        v.put("/b", None);
        assert_eq!(v.usage(4), Usage::default());
        assert_eq!(txn.growing().count(), 0);
        txn.apply(&mut tree);
        assert_eq!(tree.usage(4), Usage::default());
        tree.audit().unwrap();
    }

    #[test]
    fn touching_more_than_the_limit_is_equota() {
        let mut tree = Tree::new();
        let mut txn = Txn::default();
        let mut v = View { tree: &mut tree, txn: &mut txn, limit: Some(2) };
        v.get("/a").unwrap();
        v.get("/b").unwrap();
        v.get("/a").unwrap();
        assert_eq!(v.get("/c").err(), Some(Errno::EQUOTA));
    }
}
