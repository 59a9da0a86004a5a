//! The tree: every node by its absolute path, with its value,
//! permissions, child names and generation count, and what each owning
//! domain's nodes use. Every change of a node goes through [`Tree::put`],
//! the one place usage is counted, so the counts cannot drift from the
//! nodes (XSA-440); [`Tree::audit`] recounts them to prove it.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use super::path;
use super::perms::Perms;
use super::quota::{Accounts, Usage};
use super::{DomId, Errno};

/// One node. There is no distinction between directories and leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Perms,
    /// The children's last components, in byte order (DIRECTORY_PART's
    /// offsets index this order, stable while `gen` stays the same).
    pub children: BTreeSet<String>,
    /// Changed whenever the node is (value, permissions, children): what a
    /// transaction's commit compares and DIRECTORY_PART reports.
    pub gen: u64,
}

impl Node {
    /// A node with no value or children.
    pub fn empty(perms: Perms) -> Node {
        Node { value: Vec::new(), perms, children: BTreeSet::new(), gen: 0 }
    }

    /// Its size for the node-size quota: value, child names with their
    /// NULs, permission entries.
    pub fn size(&self) -> usize {
        self.value.len() + self.children.iter().map(|c| c.len() + 1).sum::<usize>() + self.perms.bytes()
    }

    /// What it costs its owner: its size and its path.
    pub fn bytes(&self, path: &str) -> usize {
        path.len() + self.size()
    }
}

/// A view of the nodes the operations work on: the tree itself, or a
/// transaction's private view of it.
pub trait Store {
    /// The node at `path`. A transaction may refuse (EQUOTA) when it would
    /// touch too many nodes.
    fn get(&mut self, path: &str) -> Result<Option<&Node>, Errno>;
    /// Replace (or with None remove) the node at `path`; the node gets a
    /// fresh generation. Parents' child lists are the caller's business.
    fn put(&mut self, path: &str, node: Option<Node>);
    /// What `dom`'s nodes use, as this view sees them.
    fn usage(&self, dom: DomId) -> Usage;
    /// What all domains but dom0 use together, as this view sees them.
    fn guests(&self) -> Usage;
}

/// The nodes.
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    accounts: Accounts,
    gen: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// Only `/`, owned by dom0 with no access for others (XSA-353).
    pub fn new() -> Tree {
        let mut t = Tree { nodes: BTreeMap::new(), accounts: Accounts::default(), gen: 0 };
        t.put("/", Some(Node::empty(Perms::owned_by(0))));
        t
    }

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The generation of the node at `path`, None when there is none.
    pub fn gen_of(&self, path: &str) -> Option<u64> {
        self.nodes.get(path).map(|n| n.gen)
    }

    /// A generation number never given before.
    pub fn fresh_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Give dom0 what `dom` owned and drop its permission entries
    /// everywhere (XSA-322): a domain reusing the id inherits nothing.
    pub fn forget_domain(&mut self, dom: DomId) {
        let touched: Vec<String> =
            self.nodes.iter().filter(|(_, n)| n.perms.0.iter().any(|p| p.dom == dom)).map(|(k, _)| k.clone()).collect();
        for p in touched {
            let mut n = self.nodes[&p].clone();
            n.perms.forget(dom);
            self.put(&p, Some(n));
        }
    }

    /// Recount usage from the nodes and check the shape (every node's
    /// parent lists it, every listed child exists): what fuzzing and the
    /// `check` control command use to prove nothing drifted.
    pub fn audit(&self) -> Result<(), &'static str> {
        let mut recount = Accounts::default();
        for (p, n) in &self.nodes {
            recount.charge(n.perms.owner(), n.bytes(p), true);
            if p != "/" && !self.nodes.get(path::parent(p)).is_some_and(|d| d.children.contains(path::leaf(p))) {
                return Err("a node its parent does not list");
            }
            if n.children.iter().any(|c| !self.nodes.contains_key(&path::join(p, c))) {
                return Err("a listed child that does not exist");
            }
        }
        if recount != self.accounts {
            return Err("usage counts differ from the nodes");
        }
        Ok(())
    }
}

impl Store for Tree {
    fn get(&mut self, path: &str) -> Result<Option<&Node>, Errno> {
        Ok(self.nodes.get(path))
    }

    fn put(&mut self, path: &str, node: Option<Node>) {
        let gen = self.fresh_gen();
        let old = match node {
            Some(mut n) => {
                n.gen = gen;
                self.accounts.charge(n.perms.owner(), n.bytes(path), true);
                self.nodes.insert(String::from(path), n)
            }
            None => self.nodes.remove(path),
        };
        if let Some(o) = old {
            self.accounts.charge(o.perms.owner(), o.bytes(path), false);
        }
    }

    fn usage(&self, dom: DomId) -> Usage {
        self.accounts.get(dom)
    }

    fn guests(&self) -> Usage {
        self.accounts.guests()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(owner: DomId, value: &[u8]) -> Node {
        Node { value: value.into(), ..Node::empty(Perms::owned_by(owner)) }
    }

    #[test]
    fn put_counts_usage_and_gives_fresh_generations() {
        let mut t = Tree::new();
        let mut root = t.node("/").unwrap().clone();
        root.children.insert("a".into());
        t.put("/", Some(root));
        t.put("/a", Some(node(3, b"xy")));
        assert_eq!(t.usage(3), Usage { nodes: 1, bytes: 2 + 2 + 4 });
        let g = t.gen_of("/a").unwrap();
        t.put("/a", Some(node(3, b"xyz")));
        assert!(t.gen_of("/a").unwrap() > g);
        assert_eq!(t.usage(3).bytes, 2 + 3 + 4);
        t.audit().unwrap();
        t.forget_domain(3);
        assert_eq!((t.usage(3), t.usage(0).nodes), (Usage::default(), 2));
        t.audit().unwrap();
    }

    #[test]
    fn audit_finds_an_unlisted_node() {
        let mut t = Tree::new();
        t.put("/a", Some(node(0, b"")));
        assert!(t.audit().is_err());
    }
}
