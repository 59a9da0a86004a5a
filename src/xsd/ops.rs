//! The node operations (READ, WRITE, MKDIR, RM, DIRECTORY,
//! DIRECTORY_PART, GET_PERMS, SET_PERMS) on a [`Store`]: the tree, or a
//! transaction's view, alike. Each one checks everything (permissions,
//! quotas, a transaction's touched-node limit) before it changes anything,
//! so a refused request leaves no partial change (XSA-414/415); trees are
//! walked with a work list, never recursion (XSA-418).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::path::{self, Resolved};
use super::perms::{Caller, Perms};
use super::quota::Usage;
use super::tree::{Node, Store};
use super::watch::Event;
use super::wire::PAYLOAD_MAX;
use super::{Config, DomId, Errno};

/// Who asks, under which limits.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub caller: Caller,
    pub cfg: &'a Config,
}

impl Ctx<'_> {
    /// A request's path, resolved for the caller.
    pub fn path(&self, raw: &str) -> Result<Resolved, Errno> {
        path::resolve(raw, self.caller.dom, self.cfg.path)
    }

    /// A request's path that must name a node (not `@…`): EINVAL else.
    pub fn node_path(&self, raw: &str) -> Result<String, Errno> {
        let r = self.path(raw)?;
        if r.is_special() {
            return Err(Errno::EINVAL);
        }
        Ok(r.abs)
    }
}

/// A change about to be made: the node before (None: created) and after.
type Change<'n> = (&'n str, Option<&'n Node>, &'n Node);

/// Refuse (EQUOTA) a change by an unprivileged caller that makes a node
/// too large or grows a domain other than dom0 past its node or memory
/// quota. Changes that shrink usage are never refused.
fn admit(s: &dyn Store, cx: Ctx, changes: &[Change]) -> Result<(), Errno> {
    if cx.caller.privileged() {
        return Ok(());
    }
    let mut grow: BTreeMap<DomId, (isize, isize)> = BTreeMap::new();
    for &(p, old, new) in changes {
        cx.cfg.check_node_size(new.size())?;
        let g = grow.entry(new.perms.owner()).or_default();
        *g = (g.0 + 1, g.1 + new.bytes(p) as isize);
        if let Some(o) = old {
            let g = grow.entry(o.perms.owner()).or_default();
            *g = (g.0 - 1, g.1 - o.bytes(p) as isize);
        }
    }
    let (mut all_n, mut all_b) = (0, 0);
    for (dom, (n, b)) in grow {
        if dom != 0 && (n > 0 || b > 0) {
            let u = s.usage(dom);
            cx.cfg.check_usage(Usage { nodes: u.nodes.saturating_add_signed(n), bytes: u.bytes.saturating_add_signed(b) })?;
        }
        if dom != 0 {
            (all_n, all_b) = (all_n + n, all_b + b);
        }
    }
    if all_n > 0 || all_b > 0 {
        let u = s.guests();
        cx.cfg.check_guests(Usage { nodes: u.nodes.saturating_add_signed(all_n), bytes: u.bytes.saturating_add_signed(all_b) })?;
    }
    Ok(())
}

/// The node at `p`, copied; ENOENT when there is none.
fn existing(s: &mut dyn Store, p: &str) -> Result<Node, Errno> {
    s.get(p)?.cloned().ok_or(Errno::ENOENT)
}

/// A readable node, copied.
fn readable(s: &mut dyn Store, cx: Ctx, p: &str) -> Result<Node, Errno> {
    let n = existing(s, p)?;
    cx.caller.check_read(&n.perms)?;
    Ok(n)
}

/// A new node's permissions: its parent's, owned by the creating domain
/// unless that is dom0 (whose new nodes keep the parent's owner).
fn inherit(parent: &Perms, caller: Caller) -> Perms {
    let mut p = parent.clone();
    if !caller.privileged() {
        p.0[0].dom = caller.dom;
    }
    p
}

/// Create `p` with `value` and any missing parents (empty): write access
/// to the nearest existing ancestor is what it takes.
fn create(s: &mut dyn Store, cx: Ctx, p: &str, value: Vec<u8>) -> Result<Event, Errno> {
    let mut missing = alloc::vec![String::from(p)];
    let mut up = String::from(path::parent(p));
    // The missing parents' paths are allocated before the quotas are
    // checked: a deep path of a guest is refused while what it would
    // cost is still small (a 3 KiB path of 1,500 levels is 2 MiB of paths).
    let mut cost = Usage { nodes: 1, bytes: p.len() };
    let anc = loop {
        if let Some(n) = s.get(&up)? {
            break n.clone();
        }
        cost = Usage { nodes: cost.nodes + 1, bytes: cost.bytes + up.len() };
        if !cx.caller.privileged() && cx.cfg.check_usage(cost).is_err() {
            return Err(Errno::EQUOTA);
        }
        let next = String::from(path::parent(&up));
        missing.push(core::mem::replace(&mut up, next));
    };
    cx.caller.check_write(&anc.perms)?;
    let perms = inherit(&anc.perms, cx.caller);
    missing.reverse();
    let mut new_anc = anc.clone();
    new_anc.children.insert(String::from(path::leaf(&missing[0])));
    let nodes: Vec<Node> = (0..missing.len())
        .map(|i| {
            let mut n = Node::empty(perms.clone());
            match missing.get(i + 1) {
                Some(child) => drop(n.children.insert(String::from(path::leaf(child)))),
                None => n.value = value.clone(),
            }
            n
        })
        .collect();
    let mut changes: Vec<Change> = alloc::vec![(up.as_str(), Some(&anc), &new_anc)];
    changes.extend(missing.iter().zip(&nodes).map(|(m, n)| (m.as_str(), None, n)));
    admit(s, cx, &changes)?;
    s.put(&up, Some(new_anc));
    for (m, n) in missing.iter().zip(nodes) {
        s.put(m, Some(n));
    }
    Ok(Event::changed(p, perms))
}

/// READ: the value.
pub fn read(s: &mut dyn Store, cx: Ctx, p: &str) -> Result<Vec<u8>, Errno> {
    Ok(readable(s, cx, p)?.value)
}

/// WRITE: set the value, creating the node and its parents if need be.
pub fn write(s: &mut dyn Store, cx: Ctx, p: &str, value: &[u8]) -> Result<Event, Errno> {
    let Some(old) = s.get(p)?.cloned() else {
        return create(s, cx, p, value.to_vec());
    };
    cx.caller.check_write(&old.perms)?;
    let new = Node { value: value.to_vec(), ..old.clone() };
    admit(s, cx, &[(p, Some(&old), &new)])?;
    let ev = Event::changed(p, new.perms.clone());
    s.put(p, Some(new));
    Ok(ev)
}

/// MKDIR: make sure the node exists (an existing one must be writable).
pub fn mkdir(s: &mut dyn Store, cx: Ctx, p: &str) -> Result<Option<Event>, Errno> {
    match s.get(p)? {
        Some(n) => cx.caller.check_write(&n.perms).map(|_| None),
        None => create(s, cx, p, Vec::new()).map(Some),
    }
}

/// RM: remove the node and everything below it. A missing node is fine
/// if its parent exists (ENOENT else); `/` cannot go (EINVAL).
pub fn rm(s: &mut dyn Store, cx: Ctx, p: &str) -> Result<Option<Event>, Errno> {
    if p == "/" {
        return Err(Errno::EINVAL);
    }
    let Some(top) = s.get(p)?.cloned() else {
        return if s.get(path::parent(p))?.is_some() { Ok(None) } else { Err(Errno::ENOENT) };
    };
    cx.caller.check_write(&top.perms)?;
    let mut removed = BTreeMap::new();
    let mut work = alloc::vec![String::from(p)];
    while let Some(q) = work.pop() {
        let n = existing(s, &q)?;
        work.extend(n.children.iter().map(|c| path::join(&q, c)));
        removed.insert(q, n.perms);
    }
    let mut parent = existing(s, path::parent(p))?;
    parent.children.remove(path::leaf(p));
    for q in removed.keys() {
        s.put(q, None);
    }
    s.put(path::parent(p), Some(parent));
    Ok(Some(Event { path: String::from(p), perms: top.perms, removed }))
}

/// The child names, each with its NUL.
fn names(n: &Node) -> Vec<u8> {
    let mut v = Vec::new();
    for c in &n.children {
        v.extend_from_slice(c.as_bytes());
        v.push(0);
    }
    v
}

/// DIRECTORY: the child names; E2BIG when they do not fit a payload (the
/// client should use DIRECTORY_PART).
pub fn directory(s: &mut dyn Store, cx: Ctx, p: &str) -> Result<Vec<u8>, Errno> {
    let v = names(&readable(s, cx, p)?);
    if v.len() > PAYLOAD_MAX {
        return Err(Errno::E2BIG);
    }
    Ok(v)
}

/// DIRECTORY_PART: the node's generation, then the child names from byte
/// `offset` of the whole list, whole names only, as many as fit; when the
/// list's end is reached an empty name (one more NUL) marks it. An offset
/// past the end is EINVAL.
pub fn directory_part(s: &mut dyn Store, cx: Ctx, p: &str, offset: usize) -> Result<Vec<u8>, Errno> {
    let n = readable(s, cx, p)?;
    let list = names(&n);
    let rest = list.get(offset..).ok_or(Errno::EINVAL)?;
    let mut out = format!("{}\0", n.gen).into_bytes();
    let budget = PAYLOAD_MAX - out.len() - 1;
    if rest.len() <= budget {
        out.extend_from_slice(rest);
        out.push(0);
    } else {
        let cut = rest[..budget].iter().rposition(|&b| b == 0).ok_or(Errno::E2BIG)?;
        out.extend_from_slice(&rest[..=cut]);
    }
    Ok(out)
}

/// GET_PERMS: the entries.
pub fn get_perms(s: &mut dyn Store, cx: Ctx, p: &str) -> Result<Vec<u8>, Errno> {
    Ok(readable(s, cx, p)?.perms.to_wire())
}

/// Check a SET_PERMS by `caller` on a node (or special path) whose entries
/// are `old`: only its owner (or dom0, or the owner's device model) may
/// (EACCES); an unprivileged caller may not give it away (EPERM, XSA-352)
/// or set more than the quota of entries (EQUOTA).
pub fn may_set_perms(cx: Ctx, old: &Perms, new: &Perms) -> Result<(), Errno> {
    if !cx.caller.owns(old) {
        return Err(Errno::EACCES);
    }
    if cx.caller.privileged() {
        return Ok(());
    }
    if new.owner() != old.owner() {
        return Err(Errno::EPERM);
    }
    if new.0.len() > cx.cfg.perms {
        return Err(Errno::EQUOTA);
    }
    Ok(())
}

/// SET_PERMS on a node.
pub fn set_perms(s: &mut dyn Store, cx: Ctx, p: &str, perms: Perms) -> Result<Event, Errno> {
    let old = existing(s, p)?;
    may_set_perms(cx, &old.perms, &perms)?;
    let new = Node { perms: perms.clone(), ..old.clone() };
    admit(s, cx, &[(p, Some(&old), &new)])?;
    s.put(p, Some(new));
    Ok(Event::changed(p, perms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsd::tree::Tree;

    const DOM0: Caller = Caller { dom: 0, target: None };
    const DOM5: Caller = Caller { dom: 5, target: None };

    fn cx(caller: Caller, cfg: &Config) -> Ctx<'_> {
        Ctx { caller, cfg }
    }

    /// A tree with /d owned by dom5 (`n5`).
    fn tree_with_d5(cfg: &Config) -> Tree {
        let mut t = Tree::new();
        write(&mut t, cx(DOM0, cfg), "/d", b"").unwrap();
        set_perms(&mut t, cx(DOM0, cfg), "/d", Perms::owned_by(5)).unwrap();
        t
    }

    #[test]
    fn write_creates_parents_which_inherit_with_the_creator_as_owner() {
        let cfg = Config::default();
        let mut t = tree_with_d5(&cfg);
        write(&mut t, cx(DOM5, &cfg), "/d/a/b", b"v").unwrap();
        assert_eq!(read(&mut t, cx(DOM5, &cfg), "/d/a/b").unwrap(), b"v");
        assert_eq!(read(&mut t, cx(DOM5, &cfg), "/d/a").unwrap(), b"");
        assert_eq!(t.node("/d/a").unwrap().perms, Perms::owned_by(5));
        assert_eq!(directory(&mut t, cx(DOM0, &cfg), "/d").unwrap(), b"a\0");
        // dom0 writing below a domain's node keeps that owner.
        write(&mut t, cx(DOM0, &cfg), "/d/z", b"").unwrap();
        assert_eq!(t.node("/d/z").unwrap().perms.owner(), 5);
        t.audit().unwrap();
    }

    #[test]
    fn another_domain_is_refused() {
        let cfg = Config::default();
        let mut t = tree_with_d5(&cfg);
        let dom6 = cx(Caller { dom: 6, target: None }, &cfg);
        assert_eq!(read(&mut t, dom6, "/d"), Err(Errno::EACCES));
        assert_eq!(write(&mut t, dom6, "/d/x", b"").err(), Some(Errno::EACCES));
        assert_eq!(write(&mut t, dom6, "/d", b"").err(), Some(Errno::EACCES));
        assert_eq!(rm(&mut t, dom6, "/d"), Err(Errno::EACCES));
        assert_eq!(directory(&mut t, dom6, "/d"), Err(Errno::EACCES));
        assert_eq!(get_perms(&mut t, dom6, "/d"), Err(Errno::EACCES));
        assert_eq!(read(&mut t, dom6, "/nothing"), Err(Errno::ENOENT));
    }

    #[test]
    fn rm_takes_the_subtree_and_reports_it() {
        let cfg = Config::default();
        let mut t = tree_with_d5(&cfg);
        write(&mut t, cx(DOM5, &cfg), "/d/a/b/c", b"v").unwrap();
        let ev = rm(&mut t, cx(DOM5, &cfg), "/d/a").unwrap().unwrap();
        assert_eq!(ev.removed.keys().collect::<Vec<_>>(), ["/d/a", "/d/a/b", "/d/a/b/c"]);
        assert_eq!(read(&mut t, cx(DOM0, &cfg), "/d/a/b"), Err(Errno::ENOENT));
        assert_eq!(rm(&mut t, cx(DOM5, &cfg), "/d/a"), Ok(None));
        assert_eq!(rm(&mut t, cx(DOM5, &cfg), "/d/a/b"), Err(Errno::ENOENT));
        assert_eq!(rm(&mut t, cx(DOM0, &cfg), "/"), Err(Errno::EINVAL));
        assert_eq!(t.usage(5).nodes, 1);
        t.audit().unwrap();
    }

    #[test]
    fn deep_trees_are_walked_without_recursion() {
        let cfg = Config::default();
        let mut t = Tree::new();
        let deep: String = (0..1500).map(|_| "/a").collect();
        write(&mut t, cx(DOM0, &cfg), &deep, b"x").unwrap();
        assert_eq!(t.len(), 1501);
        assert_eq!(rm(&mut t, cx(DOM0, &cfg), "/a").unwrap().unwrap().removed.len(), 1500);
        t.audit().unwrap();
    }

    #[test]
    fn mkdir_keeps_an_existing_value() {
        let cfg = Config::default();
        let mut t = Tree::new();
        write(&mut t, cx(DOM0, &cfg), "/a", b"v").unwrap();
        assert_eq!(mkdir(&mut t, cx(DOM0, &cfg), "/a"), Ok(None));
        assert!(mkdir(&mut t, cx(DOM0, &cfg), "/a/b/c").unwrap().is_some());
        assert_eq!(read(&mut t, cx(DOM0, &cfg), "/a").unwrap(), b"v");
    }

    #[test]
    fn set_perms_rules() {
        let cfg = Config::default();
        let mut t = tree_with_d5(&cfg);
        let p = |s: &[&str]| Perms::parse(s).unwrap();
        // Take ownership: refused (XSA-352); give it away: refused too.
        let dom6 = cx(Caller { dom: 6, target: None }, &cfg);
        assert_eq!(set_perms(&mut t, dom6, "/d", p(&["n6"])).err(), Some(Errno::EACCES));
        assert_eq!(set_perms(&mut t, cx(DOM5, &cfg), "/d", p(&["n6"])).err(), Some(Errno::EPERM));
        assert_eq!(set_perms(&mut t, cx(DOM5, &cfg), "/d", p(&["n5", "r1", "r2", "r3", "r4", "r6"])).err(), Some(Errno::EQUOTA));
        set_perms(&mut t, cx(DOM5, &cfg), "/d", p(&["n5", "r6"])).unwrap();
        assert_eq!(read(&mut t, dom6, "/d"), Ok(Vec::new()));
        assert_eq!(get_perms(&mut t, dom6, "/d").unwrap(), b"n5\0r6\0");
        assert_eq!(set_perms(&mut t, cx(DOM5, &cfg), "/", p(&["b5"])).err(), Some(Errno::EACCES));
    }

    #[test]
    fn quotas_give_equota_and_change_nothing() {
        let cfg = Config { nodes: 3, node_size: 64, ..Config::default() };
        let mut t = tree_with_d5(&cfg);
        let d5 = cx(DOM5, &cfg);
        assert_eq!(write(&mut t, d5, "/d/a/b/c", b"").err(), Some(Errno::EQUOTA));
        assert_eq!(read(&mut t, d5, "/d/a"), Err(Errno::ENOENT));
        write(&mut t, d5, "/d/a/b", b"").unwrap();
        assert_eq!(write(&mut t, d5, "/d/a/b", &[b'x'; 61]).err(), Some(Errno::EQUOTA));
        write(&mut t, d5, "/d/a/b", &[b'x'; 60]).unwrap();
        let mem = Config { memory: t.usage(5).bytes + 3, ..cfg };
        assert_eq!(write(&mut t, cx(DOM5, &mem), "/d/a/c", b"").err(), Some(Errno::EQUOTA));
        t.audit().unwrap();
    }

    #[test]
    fn directory_part_chunks_and_ends_with_an_empty_name() {
        let cfg = Config::default();
        let mut t = Tree::new();
        for i in 0..600 {
            write(&mut t, cx(DOM0, &cfg), &format!("/big/child{i:04}"), b"").unwrap();
        }
        assert_eq!(directory(&mut t, cx(DOM0, &cfg), "/big"), Err(Errno::E2BIG));
        let gen = format!("{}", t.node("/big").unwrap().gen);
        let (mut all, mut off) = (Vec::new(), 0);
        loop {
            let r = directory_part(&mut t, cx(DOM0, &cfg), "/big", off).unwrap();
            assert!(r.len() <= PAYLOAD_MAX && r.starts_with(gen.as_bytes()));
            let part = &r[gen.len() + 1..];
            if part.ends_with(b"\0\0") || part == b"\0" {
                all.extend_from_slice(&part[..part.len() - 1]);
                break;
            }
            all.extend_from_slice(part);
            off += part.len();
        }
        assert_eq!(all, names(t.node("/big").unwrap()));
        assert_eq!(directory_part(&mut t, cx(DOM0, &cfg), "/big", all.len() + 1), Err(Errno::EINVAL));
    }
}
