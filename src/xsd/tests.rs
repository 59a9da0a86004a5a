//! The server as a client sees it: requests in, replies and watch events
//! out, for every message type, quota, permission rule and hostile input.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::wire::{self, Header, Type, HEADER};
use super::{Config, DomId, Errno, Host, Server};

#[derive(Default)]
struct FakeHost {
    introduced: Vec<(DomId, u64, u32)>,
    released: Vec<DomId>,
    refuse: bool,
    low: bool,
    log: Vec<String>,
}

impl Host for FakeHost {
    fn introduce(&mut self, domid: DomId, gfn: u64, port: u32) -> Result<(), Errno> {
        if self.refuse {
            return Err(Errno::EIO);
        }
        self.introduced.push((domid, gfn, port));
        Ok(())
    }
    fn release(&mut self, domid: DomId) {
        self.released.push(domid);
    }
    fn log(&mut self, line: &str) {
        self.log.push(line.to_string());
    }
    fn memory_low(&self) -> bool {
        self.low
    }
}

/// A server, its host, and what each domain has been sent but not looked
/// at yet.
struct H {
    s: Server,
    host: FakeHost,
    req: u32,
    inbox: BTreeMap<DomId, Vec<(Header, Vec<u8>)>>,
}

type Reply = Result<Vec<u8>, String>;

impl H {
    fn new() -> H {
        H::with(Config::default())
    }

    fn with(cfg: Config) -> H {
        H { s: Server::new(cfg), host: FakeHost::default(), req: 0, inbox: BTreeMap::new() }
    }

    /// Move everything queued for `dom` into its inbox, as its ring would.
    fn drain(&mut self, dom: DomId) {
        let mut bytes = Vec::new();
        loop {
            let out = self.s.output(dom).to_vec();
            if out.is_empty() {
                break;
            }
            bytes.extend_from_slice(&out);
            self.s.advance(dom, out.len());
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let h = Header::parse(rest);
            assert!(h.len as usize <= wire::PAYLOAD_MAX);
            let body = rest[HEADER..HEADER + h.len as usize].to_vec();
            self.inbox.entry(dom).or_default().push((h, body));
            rest = &rest[HEADER + h.len as usize..];
        }
    }

    fn send(&mut self, dom: DomId, ty: u32, tx: u32, body: &[u8]) -> u32 {
        self.req += 1;
        let m = wire::message(ty, self.req, tx, body);
        self.s.receive(dom, &m, &mut self.host);
        self.req
    }

    /// Send a request and take its reply: Ok(payload) or Err(error name).
    fn call_raw(&mut self, dom: DomId, ty: u32, tx: u32, body: &[u8]) -> Reply {
        let id = self.send(dom, ty, tx, body);
        self.drain(dom);
        let inbox = self.inbox.entry(dom).or_default();
        let i = inbox.iter().position(|(h, _)| h.req_id == id && h.ty != Type::WatchEvent as u32).expect("a reply");
        let (h, body) = inbox.remove(i);
        assert_eq!(h.tx_id, tx, "tx_id echoed");
        if h.ty == Type::Error as u32 {
            assert_eq!(body.last(), Some(&0));
            return Err(String::from_utf8(body[..body.len() - 1].to_vec()).unwrap());
        }
        assert_eq!(h.ty, ty);
        Ok(body)
    }

    fn call(&mut self, dom: DomId, ty: Type, tx: u32, body: &[u8]) -> Reply {
        self.call_raw(dom, ty as u32, tx, body)
    }

    fn events(&mut self, dom: DomId) -> Vec<String> {
        self.drain(dom);
        let inbox = self.inbox.entry(dom).or_default();
        let evs: Vec<String> = inbox
            .iter()
            .filter(|(h, _)| h.ty == Type::WatchEvent as u32)
            .map(|(h, b)| {
                assert_eq!((h.req_id, h.tx_id), (0, 0));
                String::from_utf8(b.clone()).unwrap().replace('\0', "|")
            })
            .collect();
        inbox.retain(|(h, _)| h.ty != Type::WatchEvent as u32);
        evs
    }

    fn write(&mut self, dom: DomId, path: &str, value: &str) -> Reply {
        self.call(dom, Type::Write, 0, format!("{path}\0{value}").as_bytes())
    }

    fn read(&mut self, dom: DomId, path: &str) -> Result<String, String> {
        self.call(dom, Type::Read, 0, format!("{path}\0").as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    fn perms(&mut self, dom: DomId, path: &str, perms: &[&str]) -> Reply {
        let mut b = format!("{path}\0");
        for p in perms {
            b.push_str(p);
            b.push('\0');
        }
        self.call(dom, Type::SetPerms, 0, b.as_bytes())
    }

    fn watch(&mut self, dom: DomId, path: &str, token: &str) -> Reply {
        self.call(dom, Type::Watch, 0, format!("{path}\0{token}\0").as_bytes())
    }

    fn start(&mut self, dom: DomId) -> u32 {
        let r = self.call(dom, Type::TransactionStart, 0, b"\0").unwrap();
        core::str::from_utf8(&r[..r.len() - 1]).unwrap().parse().unwrap()
    }

    fn end(&mut self, dom: DomId, tx: u32, commit: bool) -> Reply {
        self.call(dom, Type::TransactionEnd, tx, if commit { b"T\0" } else { b"F\0" })
    }

    /// Introduce `d` and give it `/local/domain/<d>`, owned by it.
    fn domain(&mut self, d: DomId) {
        assert_eq!(self.call(0, Type::Introduce, 0, format!("{d}\0{}\0{}\0", 0x1000 + d as u32, 10 + d as u32).as_bytes()), ok());
        let home = format!("/local/domain/{d}");
        self.write(0, &home, "").unwrap();
        self.perms(0, &home, &[&format!("n{d}")]).unwrap();
    }

    fn check(&self) {
        self.s.audit().unwrap();
    }
}

fn ok() -> Reply {
    Ok(b"OK\0".to_vec())
}

fn err<T>(e: &str) -> Result<T, String> {
    Err(e.to_string())
}

#[test]
fn the_base_tree_is_dom0s() {
    let mut h = H::new();
    for p in ["/", "/local", "/local/domain", "/tool", "/tool/xenstored"] {
        assert_eq!(h.call(0, Type::GetPerms, 0, format!("{p}\0").as_bytes()), Ok(b"n0\0".to_vec()), "{p}");
    }
    assert_eq!(h.call(0, Type::Directory, 0, b"/\0"), Ok(b"local\0tool\0".to_vec()));
    assert!(h.s.domains().is_empty());
    h.check();
}

#[test]
fn read_write_mkdir_rm_directory() {
    let mut h = H::new();
    assert_eq!(h.write(0, "/a/b", "hello"), ok());
    assert_eq!(h.read(0, "/a/b"), Ok("hello".into()));
    assert_eq!(h.call(0, Type::Write, 0, b"/a/bin\0x\0y\0"), ok());
    assert_eq!(h.call(0, Type::Read, 0, b"/a/bin\0"), Ok(b"x\0y\0".to_vec()));
    assert_eq!(h.call(0, Type::Mkdir, 0, b"/a/c/d\0"), ok());
    assert_eq!(h.call(0, Type::Directory, 0, b"/a\0"), Ok(b"b\0bin\0c\0".to_vec()));
    assert_eq!(h.call(0, Type::Rm, 0, b"/a/c\0"), ok());
    assert_eq!(h.read(0, "/a/c/d"), err("ENOENT"));
    assert_eq!(h.call(0, Type::Rm, 0, b"/a/c\0"), ok());
    assert_eq!(h.call(0, Type::Rm, 0, b"/a/c/d\0"), err("ENOENT"));
    let r = h.call(0, Type::DirectoryPart, 0, b"/a\x000\0").unwrap();
    assert!(r.ends_with(b"\0b\0bin\0\0"), "{r:?}");
    assert_eq!(h.call(0, Type::GetDomainPath, 0, b"7\0"), Ok(b"/local/domain/7\0".to_vec()));
    h.check();
}

#[test]
fn hostile_payloads_get_einval() {
    let mut h = H::new();
    assert_eq!(h.call(0, Type::Read, 0, b"/a"), err("EINVAL"), "no NUL");
    assert_eq!(h.call(0, Type::Write, 0, b"/a"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Watch, 0, b"/a\0tok"), err("EINVAL"));
    assert_eq!(h.call(0, Type::SetPerms, 0, b"/\0n0\0r1"), err("EINVAL"));
    assert_eq!(h.call(0, Type::SetPerms, 0, b"/\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Read, 0, b"/a//b\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Read, 0, b"@releaseDomain\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Read, 0, b"/\xff\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::TransactionEnd, 0, b"T\0"), err("ENOENT"));
    assert_eq!(h.call(0, Type::GetDomainPath, 0, b"x\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::WatchEvent, 0, b"/\0t\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Error, 0, b""), err("EINVAL"));
    for ty in [20, 23, 24, 25, 26, 27, 0xffff, u32::MAX] {
        assert_eq!(h.call_raw(0, ty, 0, b""), err("ENOSYS"), "type {ty}");
    }
    h.check();
}

#[test]
fn a_bad_transaction_id_is_enoent() {
    let mut h = H::new();
    assert_eq!(h.call(0, Type::Read, 77, b"/\0"), err("ENOENT"));
    assert_eq!(h.call(0, Type::Write, 77, b"/x\0v"), err("ENOENT"));
    assert_eq!(h.call(0, Type::TransactionEnd, 77, b"T\0"), err("ENOENT"));
    assert_eq!(h.read(0, "/x"), err("ENOENT"));
}

#[test]
fn a_watch_fires_at_once_after_its_reply_then_on_changes_below() {
    let mut h = H::new();
    let id = h.send(0, Type::Watch as u32, 0, b"/a\0tok\0");
    h.drain(0);
    let inbox = &h.inbox[&0];
    assert_eq!((inbox[0].0.req_id, inbox[0].0.ty), (id, Type::Watch as u32));
    assert_eq!((inbox[1].0.ty, &inbox[1].1[..]), (Type::WatchEvent as u32, &b"/a\0tok\0"[..]));
    h.inbox.clear();
    h.write(0, "/a/b/c", "1").unwrap();
    h.write(0, "/ab", "1").unwrap();
    assert_eq!(h.events(0), ["/a/b/c|tok|"]);
    assert_eq!(h.watch(0, "/a", "tok"), err("EEXIST"));
    assert_eq!(h.call(0, Type::Unwatch, 0, b"/a\0tok\0"), ok());
    assert_eq!(h.call(0, Type::Unwatch, 0, b"/a\0tok\0"), err("ENOENT"));
    h.write(0, "/a/b", "2").unwrap();
    assert!(h.events(0).is_empty());
}

#[test]
fn removal_fires_for_watches_below_with_their_own_path() {
    let mut h = H::new();
    h.write(0, "/a/b/c", "").unwrap();
    h.watch(0, "/a/b/c/never", "deep").unwrap();
    h.watch(0, "/a", "top").unwrap();
    h.events(0);
    h.call(0, Type::Rm, 0, b"/a/b\0").unwrap();
    let mut evs = h.events(0);
    evs.sort();
    assert_eq!(evs, ["/a/b/c/never|deep|", "/a/b|top|"]);
}

#[test]
fn relative_paths_and_relative_watches() {
    let mut h = H::new();
    h.domain(3);
    assert_eq!(h.write(3, "data/x", "1"), ok());
    assert_eq!(h.read(0, "/local/domain/3/data/x"), Ok("1".into()));
    h.watch(3, "data", "t").unwrap();
    assert_eq!(h.events(3), ["data|t|"]);
    h.write(0, "/local/domain/3/data/y", "2").unwrap();
    assert_eq!(h.events(3), ["data/y|t|"]);
    assert_eq!(h.read(3, &"a".repeat(2049)), err("EINVAL"));
}

#[test]
fn domains_cannot_read_each_other_and_see_only_readable_events() {
    let mut h = H::new();
    h.domain(1);
    h.domain(2);
    h.write(1, "secret", "s").unwrap();
    assert_eq!(h.read(2, "/local/domain/1/secret"), err("EACCES"));
    assert_eq!(h.write(2, "/local/domain/1/secret", "x"), err("EACCES"));
    assert_eq!(h.call(2, Type::Rm, 0, b"/local/domain/1/secret\0"), err("EACCES"));
    h.watch(2, "/", "all").unwrap();
    assert_eq!(h.events(2), ["/|all|"]);
    h.write(1, "secret", "t").unwrap();
    h.write(2, "mine", "m").unwrap();
    assert_eq!(h.events(2), ["/local/domain/2/mine|all|"], "XSA-115");
    // Shared by the owner: readable and then seen.
    h.perms(1, "secret", &["n1", "r2"]).unwrap();
    assert_eq!(h.events(2), ["/local/domain/1/secret|all|"]);
    assert_eq!(h.read(2, "/local/domain/1/secret"), Ok("t".into()));
}

#[test]
fn set_perms_cannot_take_or_give_ownership_unless_dom0() {
    let mut h = H::new();
    h.domain(1);
    h.domain(2);
    h.write(1, "n", "").unwrap();
    assert_eq!(h.perms(2, "/local/domain/1/n", &["n2"]), err("EACCES"));
    assert_eq!(h.perms(1, "n", &["n2"]), err("EPERM"));
    assert_eq!(h.perms(1, "/", &["b1"]), err("EACCES"));
    assert_eq!(h.perms(1, "n", &["r1", "b2"]), ok());
    assert_eq!(h.call(1, Type::GetPerms, 0, b"n\0"), Ok(b"r1\0b2\0".to_vec()));
    assert_eq!(h.perms(0, "/local/domain/1/n", &["n2"]), ok());
    assert_eq!(h.perms(0, "@releaseDomain", &["n0", "r1"]), ok());
    assert_eq!(h.perms(1, "@releaseDomain", &["n1"]), err("EACCES"));
    assert_eq!(h.call(1, Type::GetPerms, 0, b"@releaseDomain\0"), Ok(b"n0\0r1\0".to_vec()));
    assert_eq!(h.call(2, Type::GetPerms, 0, b"@releaseDomain\0"), err("EACCES"));
    assert_eq!(h.call(0, Type::GetPerms, 0, b"@other\0"), err("ENOENT"));
    h.check();
}

#[test]
fn a_device_model_acts_for_its_target() {
    let mut h = H::new();
    h.domain(1);
    h.domain(9);
    h.write(1, "x", "v").unwrap();
    assert_eq!(h.read(9, "/local/domain/1/x"), err("EACCES"));
    assert_eq!(h.call(9, Type::SetTarget, 0, b"9\x001\0"), err("EACCES"));
    assert_eq!(h.call(0, Type::SetTarget, 0, b"9\x001\0"), ok());
    assert_eq!(h.read(9, "/local/domain/1/x"), Ok("v".into()));
    assert_eq!(h.perms(9, "/local/domain/1/x", &["n9"]), err("EPERM"));
    assert_eq!(h.call(0, Type::SetTarget, 0, b"8\x001\0"), err("ENOENT"));
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let mut h = H::new();
    h.watch(0, "/t", "w").unwrap();
    h.events(0);
    let tx = h.start(0);
    assert_eq!(h.call(0, Type::Write, tx, b"/t/a\0in"), ok());
    assert_eq!(h.call(0, Type::Read, tx, b"/t/a\0"), Ok(b"in".to_vec()));
    assert_eq!(h.read(0, "/t/a"), err("ENOENT"), "isolated");
    assert!(h.events(0).is_empty(), "events wait for the commit");
    assert_eq!(h.end(0, tx, true), ok());
    assert_eq!(h.events(0), ["/t/a|w|"]);
    assert_eq!(h.read(0, "/t/a"), Ok("in".into()));
    // Abort: nothing happened.
    let tx = h.start(0);
    h.call(0, Type::Rm, tx, b"/t\0").unwrap();
    assert_eq!(h.end(0, tx, false), ok());
    assert_eq!(h.read(0, "/t/a"), Ok("in".into()));
    // Conflict: what it read changed meanwhile.
    let tx = h.start(0);
    h.call(0, Type::Read, tx, b"/t/a\0").unwrap();
    h.call(0, Type::Write, tx, b"/t/b\0x").unwrap();
    h.write(0, "/t/a", "changed").unwrap();
    assert_eq!(h.end(0, tx, true), err("EAGAIN"));
    assert_eq!(h.read(0, "/t/b"), err("ENOENT"));
    assert_eq!(h.end(0, tx, true), err("ENOENT"), "over after EAGAIN");
    assert_eq!(h.call(0, Type::TransactionEnd, tx, b"X\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::TransactionStart, 5, b"\0"), err("EBUSY"));
    h.check();
}

#[test]
fn transaction_directory_part_sees_its_own_view() {
    let mut h = H::new();
    let tx = h.start(0);
    h.call(0, Type::Write, tx, b"/d/x\0").unwrap();
    let r = h.call(0, Type::DirectoryPart, tx, b"/d\x000\0").unwrap();
    assert!(r.ends_with(b"\0x\0\0"));
    assert_eq!(h.call(0, Type::Directory, tx, b"/d\0"), Ok(b"x\0".to_vec()));
    assert_eq!(h.call(0, Type::GetPerms, tx, b"/d\0"), Ok(b"n0\0".to_vec()));
    assert_eq!(h.call(0, Type::Mkdir, tx, b"/d/y\0"), ok());
    assert_eq!(h.call(0, Type::SetPerms, tx, b"/d/y\0n0\0r3\0"), ok());
    h.end(0, tx, true).unwrap();
    assert_eq!(h.call(0, Type::GetPerms, 0, b"/d/y\0"), Ok(b"n0\0r3\0".to_vec()));
}

#[test]
fn create_and_delete_in_a_transaction_costs_nothing_and_failed_commits_leave_no_drift() {
    let mut h = H::new();
    h.domain(1);
    let base = h.s.usage().collect::<Vec<_>>();
    let tx = h.start(1);
    h.call(1, Type::Write, tx, b"tmp/a/b\0v").unwrap();
    h.call(1, Type::Rm, tx, b"tmp\0").unwrap();
    h.end(1, tx, true).unwrap();
    assert_eq!(h.s.usage().collect::<Vec<_>>(), base, "XSA-421");
    let tx = h.start(1);
    h.call(1, Type::Write, tx, b"x\0v").unwrap();
    h.write(1, "x", "first").unwrap();
    let after = h.s.usage().collect::<Vec<_>>();
    assert_eq!(h.end(1, tx, true), err("EAGAIN"));
    assert_eq!(h.s.usage().collect::<Vec<_>>(), after, "XSA-440");
    h.check();
}

#[test]
fn reset_watches_drops_watches_and_transactions_but_not_inside_one() {
    let mut h = H::new();
    h.domain(1);
    h.watch(1, "a", "t").unwrap();
    let tx = h.start(1);
    assert_eq!(h.call(1, Type::ResetWatches, tx, b""), err("EBUSY"));
    assert_eq!(h.call(1, Type::ResetWatches, 0, b""), ok());
    assert_eq!(h.end(1, tx, false), err("ENOENT"));
    h.events(1);
    h.write(1, "a", "").unwrap();
    assert!(h.events(1).is_empty());
}

#[test]
fn every_quota_gives_its_errno() {
    let cfg = Config { nodes: 6, watches: 2, transactions: 2, txn_nodes: 4, node_size: 100, ..Config::default() };
    let mut h = H::with(cfg);
    h.domain(1);
    // Nodes: home is 1 already.
    for i in 0..5 {
        assert_eq!(h.write(1, &format!("n{i}"), ""), ok());
    }
    assert_eq!(h.write(1, "n5", ""), err("ENOSPC"));
    assert_eq!(h.call(1, Type::Mkdir, 0, b"n6\0"), err("ENOSPC"));
    // Node size.
    assert_eq!(h.write(1, "n0", &"x".repeat(97)), err("ENOSPC"));
    assert_eq!(h.write(1, "n0", &"x".repeat(96)), ok());
    // Permission entries.
    assert_eq!(h.perms(1, "n0", &["n1", "r2", "r3", "r4", "r5", "r6"]), err("ENOSPC"));
    // Watches, transactions, nodes touched in one.
    h.watch(1, "a", "1").unwrap();
    h.watch(1, "b", "1").unwrap();
    assert_eq!(h.watch(1, "c", "1"), err("ENOSPC"));
    assert_eq!(h.watch(1, "c", &"t".repeat(1023)), err("E2BIG"), "XSA-324");
    let tx = h.start(1);
    h.start(1);
    assert_eq!(h.call(1, Type::TransactionStart, 0, b"\0"), err("ENOSPC"));
    for i in 0..4 {
        h.call(1, Type::Read, tx, format!("n{i}\0").as_bytes()).unwrap();
    }
    assert_eq!(h.call(1, Type::Read, tx, b"n4\0"), err("ENOSPC"));
    // dom0 is exempt.
    for i in 0..10 {
        h.write(0, &format!("/z/{i}"), &"x".repeat(3000)).unwrap();
    }
    h.check();
}

#[test]
fn memory_quota_counts_a_domains_bytes() {
    let cfg = Config { memory: 4100, ..Config::default() };
    let mut h = H::with(cfg);
    h.domain(1);
    assert_eq!(h.write(1, "a", &"x".repeat(1900)), ok());
    assert_eq!(h.write(1, "b", &"x".repeat(1900)), ok());
    assert_eq!(h.write(1, "sub", ""), ok());
    assert_eq!(h.write(1, "c", &"x".repeat(1900)), err("ENOSPC"));
    let tx = h.start(1);
    assert_eq!(h.call(1, Type::Write, tx, format!("c\0{}", "x".repeat(1000)).as_bytes()), err("ENOSPC"), "inside too");
    // Inside, room is made; outside (elsewhere: no conflict), it is
    // taken: the commit is refused.
    h.call(1, Type::Rm, tx, b"a\0").unwrap();
    h.call(1, Type::Write, tx, format!("c\0{}", "x".repeat(1950)).as_bytes()).unwrap();
    let used = h.s.usage().find(|(d, _)| *d == 1).unwrap().1.bytes;
    let fill = 4100 - 10 - used - "/local/domain/1/sub/f".len() - 4 - "f".len() - 1;
    h.write(1, "sub/f", &"x".repeat(fill)).unwrap();
    assert_eq!(h.s.usage().find(|(d, _)| *d == 1).unwrap().1.bytes, 4090);
    assert_eq!(h.end(1, tx, true), err("ENOSPC"));
    assert_eq!(h.read(1, "a").map(|v| v.len()), Ok(1900), "nothing of it applied");
    h.check();
}

#[test]
fn introduce_release_and_questions() {
    let mut h = H::new();
    h.watch(0, "@introduceDomain", "i").unwrap();
    h.watch(0, "@releaseDomain", "r").unwrap();
    h.events(0);
    assert_eq!(h.call(0, Type::Introduce, 0, b"4\0-2\x0033\0"), ok());
    assert_eq!(h.host.introduced, [(4, u64::MAX - 1, 33)]);
    assert_eq!(h.events(0), ["@introduceDomain|i|"]);
    assert_eq!(h.call(0, Type::Introduce, 0, b"4\0-2\x0033\0"), ok(), "again: no change");
    assert_eq!(h.host.introduced.len(), 1);
    assert_eq!(h.call(0, Type::Introduce, 0, b"0\x001\x001\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Introduce, 0, b"5\x001\0"), err("EINVAL"));
    assert_eq!(h.call(4, Type::Introduce, 0, b"6\x001\x001\0"), err("EACCES"));
    h.host.refuse = true;
    assert_eq!(h.call(0, Type::Introduce, 0, b"6\x001\x001\0"), err("EIO"));
    assert_eq!(h.call(0, Type::IsDomainIntroduced, 0, b"6\0"), Ok(b"F\0".to_vec()));
    assert_eq!(h.call(0, Type::IsDomainIntroduced, 0, b"4\0"), Ok(b"T\0".to_vec()));
    assert_eq!(h.call(4, Type::IsDomainIntroduced, 0, b"0\0"), Ok(b"T\0".to_vec()));
    assert_eq!(h.s.domains(), [4]);
    assert_eq!(h.call(4, Type::Release, 0, b"4\0"), err("EACCES"));
    assert_eq!(h.call(0, Type::Release, 0, b"6\0"), err("ENOENT"));
    assert_eq!(h.call(0, Type::Release, 0, b"4\0"), ok());
    assert_eq!(h.host.released, [4]);
    assert_eq!(h.events(0), ["@releaseDomain|r|"]);
    assert!(h.s.domains().is_empty());
}

#[test]
fn shutdown_fires_release_once_until_resume() {
    let mut h = H::new();
    h.domain(2);
    h.watch(0, "@releaseDomain", "r").unwrap();
    h.events(0);
    h.s.domain_shutdown(2);
    h.s.domain_shutdown(2);
    assert_eq!(h.events(0).len(), 1);
    assert_eq!(h.call(2, Type::Resume, 0, b"2\0"), err("EACCES"));
    assert_eq!(h.call(0, Type::Resume, 0, b"2\0"), ok());
    assert_eq!(h.call(0, Type::Resume, 0, b"3\0"), err("ENOENT"));
    h.s.domain_shutdown(2);
    assert_eq!(h.events(0).len(), 1);
}

#[test]
fn special_events_only_for_dom0_or_those_allowed() {
    let mut h = H::new();
    h.domain(1);
    h.domain(2);
    h.watch(1, "@introduceDomain", "i").unwrap();
    h.watch(2, "@introduceDomain", "i").unwrap();
    assert_eq!(h.events(1), ["@introduceDomain|i|"], "the first event is always sent");
    h.events(2);
    h.perms(0, "@introduceDomain", &["n0", "r2"]).unwrap();
    h.domain(3);
    assert!(h.events(1).is_empty());
    assert_eq!(h.events(2), ["@introduceDomain|i|"]);
}

#[test]
fn a_gone_domain_leaves_nothing_for_the_next_with_its_id() {
    let mut h = H::new();
    h.domain(1);
    h.domain(2);
    h.write(1, "data/x", "v").unwrap();
    h.write(0, "/shared", "s").unwrap();
    h.perms(0, "/shared", &["n0", "b1"]).unwrap();
    h.watch(1, "data", "t").unwrap();
    h.call(0, Type::SetTarget, 0, b"2\x001\0").unwrap();
    h.start(1);
    h.watch(0, "@releaseDomain", "r").unwrap();
    h.events(0);
    h.events(1);
    h.s.domain_gone(1, &mut h.host);
    assert_eq!(h.host.released, [1]);
    assert_eq!(h.events(0), ["@releaseDomain|r|"]);
    assert_eq!(h.s.usage().filter(|(d, _)| *d == 1).count(), 0, "nodes reassigned");
    assert_eq!(h.call(0, Type::GetPerms, 0, b"/local/domain/1/data/x\0"), Ok(b"n0\0".to_vec()));
    assert_eq!(h.call(0, Type::GetPerms, 0, b"/shared\0"), Ok(b"n0\0".to_vec()));
    assert_eq!(h.read(2, "/local/domain/1/data/x"), err("EACCES"), "target role gone");
    // The id comes back: no nodes, no watches, no transactions, no rights.
    h.call(0, Type::Introduce, 0, b"1\x001\x001\0").unwrap();
    assert_eq!(h.read(1, "data/x"), err("EACCES"));
    assert_eq!(h.read(1, "/shared"), err("EACCES"));
    assert_eq!(h.end(1, 1, false), err("ENOENT"));
    h.write(0, "/local/domain/1/data/y", "").unwrap();
    assert!(h.events(1).is_empty());
    assert_eq!(h.call(0, Type::Control, 0, b"quota\x001\0"), Ok(b"nodes 0\nmemory 0\nwatches 0\ntransactions 0\noutput 0\n\0".to_vec()));
    h.check();
}

#[test]
fn an_oversized_message_drops_a_domain_but_not_dom0() {
    let mut h = H::new();
    h.domain(1);
    let mut m = wire::message(Type::Read as u32, 9, 0, b"");
    m[12..16].copy_from_slice(&4097u32.to_le_bytes());
    h.s.receive(1, &m, &mut h.host);
    assert_eq!(h.host.released, [1]);
    assert!(h.s.domains().is_empty());
    assert_eq!(h.s.room(1), 0);
    // dom0: E2BIG, the body skipped, the next request understood.
    h.s.receive(0, &m, &mut h.host);
    h.s.receive(0, &[b'x'; 4097], &mut h.host);
    assert_eq!(h.read(0, "/tool"), Ok(String::new()));
    assert!(h.inbox[&0].iter().any(|(hd, b)| hd.req_id == 9 && b == b"E2BIG\0"));
}

#[test]
fn messages_split_anywhere_are_reassembled() {
    let mut h = H::new();
    let mut bytes = wire::message(Type::Write as u32, 1, 0, b"/a\0v");
    bytes.extend(wire::message(Type::Read as u32, 2, 0, b"/a\0"));
    for b in &bytes {
        assert!(h.s.room(0) >= 1);
        h.s.receive(0, core::slice::from_ref(b), &mut h.host);
    }
    h.drain(0);
    let replies: Vec<_> = h.inbox[&0].iter().map(|(hd, b)| (hd.req_id, b.clone())).collect();
    assert_eq!(replies, [(1, b"OK\0".to_vec()), (2, b"v".to_vec())]);
}

#[test]
fn a_client_that_never_reads_costs_bounded_memory() {
    let cfg = Config::default();
    let mut h = H::new();
    h.domain(1);
    h.watch(1, "/local/domain/1", "t").unwrap();
    // Events: dropped beyond the bound.
    for i in 0..5000 {
        h.write(0, "/local/domain/1/x", &format!("{i}")).unwrap();
    }
    let bound = cfg.output + HEADER + wire::PAYLOAD_MAX;
    assert!(h.s.queued(1) <= bound);
    // Requests: they wait in the input, which is bounded; room says so.
    let req = wire::message(Type::Directory as u32, 1, 0, b"/\0");
    let mut sent = 0;
    while h.s.room(1) >= req.len() && sent < 10_000 {
        h.s.receive(1, &req, &mut h.host);
        sent += 1;
    }
    assert!(sent < 10_000 && h.s.queued(1) <= bound);
    // Reading resumes the held requests.
    h.drain(1);
    assert_eq!(h.s.held().collect::<Vec<_>>(), [1]);
    while h.s.held().next().is_some() {
        h.s.receive(1, &[], &mut h.host);
        h.drain(1);
    }
    assert_eq!(h.s.room(1), super::conn::INPUT_MAX);
    let replies = h.inbox[&1].iter().filter(|(hd, _)| hd.ty != Type::WatchEvent as u32).count();
    assert_eq!(replies, sent);
}

#[test]
fn outstanding_replies_hold_further_requests() {
    let cfg = Config { outstanding: 3, ..Config::default() };
    let mut h = H::with(cfg);
    let req = wire::message(Type::Read as u32, 1, 0, b"/\0");
    for _ in 0..5 {
        h.s.receive(0, &req, &mut h.host);
    }
    assert_eq!(h.s.queued(0), 3 * (HEADER));
    h.drain(0);
    assert_eq!(h.s.held().collect::<Vec<_>>(), [0]);
    h.s.receive(0, &[], &mut h.host);
    h.drain(0);
    assert_eq!(h.inbox[&0].len(), 5);
}

#[test]
fn control() {
    let mut h = H::new();
    h.domain(1);
    assert_eq!(h.call(0, Type::Control, 0, b"print\0hello\0"), ok());
    assert_eq!(h.host.log, ["hello"]);
    assert_eq!(h.call(0, Type::Control, 0, b"log\0on\0"), ok());
    assert_eq!(h.call(0, Type::Control, 0, b"check\0"), ok());
    assert!(h.call(0, Type::Control, 0, b"quota\0").unwrap().starts_with(b"nodes 1000\nnode-size 2048\n"));
    assert!(h.call(0, Type::Control, 0, b"help\0").unwrap().starts_with(b"check\n"));
    assert_eq!(h.call(0, Type::Control, 0, b"live-update\0-s\0"), err("EINVAL"));
    assert_eq!(h.call(0, Type::Control, 0, b"quota\0set\0"), err("EINVAL"));
    assert_eq!(h.call(1, Type::Control, 0, b"print\0x\0"), err("EACCES"));
}

#[test]
fn errno_names_on_the_wire_are_xs_wire_names() {
    let mut h = H::with(Config { nodes: 1, ..Config::default() });
    h.domain(1);
    assert_eq!(h.write(1, "x", ""), err("ENOSPC"));
}

#[test]
fn guests_together_are_bounded_and_deep_paths_refused_early() {
    let cfg = Config { guests_memory: 3 * 1024, ..Config::default() };
    let mut h = H::with(cfg);
    h.domain(1);
    h.domain(2);
    // Two guests share 3 KiB (with 128 bytes a node counted).
    assert_eq!(h.write(1, "a", &"x".repeat(1500)), ok());
    assert_eq!(h.write(2, "b", &"x".repeat(1500)), err("ENOSPC"));
    assert_eq!(h.write(2, "b", &"x".repeat(500)), ok());
    // dom0 is not counted, and still writes.
    assert_eq!(h.write(0, "/big", &"x".repeat(3000)), ok());
    // A path of 1,000 levels from a guest: refused before its parents'
    // paths (half a MiB) are built.
    let cfg = Config { memory: 64 * 1024, ..Config::default() };
    let mut h = H::with(cfg);
    h.domain(1);
    let before = h.s.usage().find(|(d, _)| *d == 1).map(|u| u.1);
    let deep = ["d"; 1000].join("/");
    assert_eq!(h.write(1, &deep, "x"), err("ENOSPC"));
    assert_eq!(h.s.usage().find(|(d, _)| *d == 1).map(|u| u.1), before);
    h.check();
}

/// Out of memory the store refuses what would keep more, dom0's requests
/// too, and goes on serving the rest; with memory back, all of it again.
#[test]
fn a_store_low_on_memory_refuses_growth_and_serves_the_rest() {
    let mut h = H::new();
    h.domain(5);
    h.write(5, "data/a", "1").unwrap();
    h.host.low = true;
    assert_eq!(h.write(5, "data/b", "2"), err("ENOMEM"));
    assert_eq!(h.write(0, "/tool/x", "2"), err("ENOMEM"));
    assert_eq!(h.call(0, Type::Mkdir, 0, b"/tool/y\0"), err("ENOMEM"));
    assert_eq!(h.perms(5, "data/a", &["n5", "r0"]), err("ENOMEM"));
    assert_eq!(h.watch(5, "data", "t"), err("ENOMEM"));
    assert_eq!(h.call(5, Type::TransactionStart, 0, b"\0"), err("ENOMEM"));
    assert_eq!(h.call(0, Type::Introduce, 0, "6\0 4102\0 16\0".replace(" ", "").as_bytes()), err("ENOMEM"));
    assert_eq!(h.read(5, "data/a"), Ok("1".into()));
    assert_eq!(h.call(5, Type::Rm, 0, b"data/a\0"), ok());
    assert_eq!(h.call(0, Type::Release, 0, b"5\0"), ok());
    assert_eq!(h.host.released, [5]);
    h.check();
    h.host.low = false;
    h.domain(6);
    assert_eq!(h.write(6, "data/b", "2"), ok());
    h.check();
}
