//! hvmlite's xenstore domain (`apps/xenstored`) on the real Xen 4.17
//! host, started as Xen's tools start one (`init-xenstore-domain`):
//! Xen's own `test-xenstore` against it, the usual guests served by it,
//! domains coming and going with nothing left behind, and hostile guests
//! refused while the others are served.

mod common;
use common::xen_host::{self, Scenario, Xenstore};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(400);

fn xs_domain() -> Xenstore {
    Xenstore::domain(&app("xenstored"), 4)
}

/// Every test of test-xenstore, each on its own and bounded so that a
/// request the store never answers names its test, then its random mode
/// for 60 s.
#[test]
fn test_xenstore_passes_against_the_xenstore_domain() {
    let s = Scenario::new(
        r#"test-xenstore -l > /tmp/tests
n=0; bad=0
while IFS= read -r l; do
    t=${l%%:*}; t=${t%"${t##*[! ]}"}
    timeout 30 test-xenstore -t "$t" > /tmp/t.out 2>&1; rc=$?
    echo "test-xenstore -t $t rc=$rc"; n=$((n + 1))
    cat /tmp/t.out
    # It answers rc 0 to a name it does not know: the test's timing line
    # is what shows it ran.
    [ $rc -eq 0 ] && grep -q "^$t *: [0-9]* ns" /tmp/t.out || bad=$((bad + 1))
done < /tmp/tests
echo "test-xenstore: $n tests, $bad failed"
timeout 60 test-xenstore > /tmp/tx.out 2>&1
echo "test-xenstore rc=$?"
cat /tmp/tx.out
timeout 120 test-xenstore -r 60 > /tmp/txr.out 2>&1
echo "test-xenstore -r 60 rc=$?"
tail -n 20 /tmp/txr.out
"#,
    )
    .xenstore(xs_domain());
    let r = xen_host::run("xsd-test-xenstore", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let sc = r.scenario();
    assert!(sc.contains(&"test-xenstore: 12 tests, 0 failed"), "{d}");
    assert!(sc.contains(&"test-xenstore rc=0"), "{d}");
    assert!(sc.contains(&"test-xenstore -r 60 rc=0"), "{d}");
}

/// hello-stubdom answers a request through the store: `ok NAME` or why not.
const HELLO: &str = r#"hello() {
    d=$(xl domid hello-stubdom) || { echo "hello: no domain"; return 1; }
    xenstore-write /local/domain/$d/data/hello-request "$1" || { echo "hello: write failed"; return 1; }
    i=0; until [ "$(xenstore-read /local/domain/$d/data/hello-response 2>/dev/null)" = "hello, $1" ]; do
        i=$((i + 1)); [ $i -le 100 ] || { echo "hello: no answer to $1"; return 1; }; sleep 0.05; done
    echo "hello: ok $1"
}
"#;

/// A guest attacking the store from its ring, case after case (see
/// tests/xs-hostile), then ending its connection one of three ways:
/// flooding without reading, an oversized message, corrupt indexes. Each
/// case is refused with an error; meanwhile and after, dom0 and another
/// guest (hello-stubdom) are served, and nothing of the hostile guests
/// stays behind.
fn hostile_under(x: Xenstore) -> xen_host::HostRun {
    let hostile = "name = \"hostile\"\ntype = \"pvh\"\nkernel = \"/usr/lib/hvmlite/xs-hostile.elf\"\nmemory = 8\nvcpus = 1\non_poweroff = \"destroy\"\non_crash = \"preserve\"\n";
    let hello = std::fs::read_to_string(root().join("xen/hello-stubdom.cfg")).unwrap();
    let script = format!(
        r#". /usr/share/xen-host/lib.sh
{HELLO}
xenstore-write /hostile-secret s && xenstore-chmod /hostile-secret n0 || exit 10
xl create /etc/xen/hello-stubdom.cfg || exit 11
hello first || exit 12
for end in flood oversized corrupt; do
    echo "=== hostile $end"
    xl create /etc/xen/hostile.cfg "name=\"hostile-$end\"" "cmdline=\"$end\"" || exit 13
    log=/var/log/xen/console/guest-hostile-$end.log
    i=0; until grep -q "xs-hostile: $end: " $log 2>/dev/null; do
        i=$((i + 1)); [ $i -le 600 ] || {{ cat $log; exit 14; }}; sleep 0.1; done
    sleep 2
    echo "dom0 reads: $(timeout 5 xenstore-read /hostile-secret)"
    hello "after-$end" || exit 15
    cat $log
    xl destroy hostile-$end || exit 16
    wait_gone hostile-$end 30 || exit 17
    hello "gone-$end" || exit 18
done
xl destroy hello-stubdom; wait_gone hello-stubdom 30 || exit 19
echo "domains: $(xenstore-list /local/domain | tr '\n' ' ')"
echo "secret owner: $(xenstore-ls -p /hostile-secret 2>&1 | head -n1)"
xl list
echo "=== end"
"#
    );
    let s = Scenario::new(&script)
        .config("hostile.cfg", hostile)
        .config("hello-stubdom.cfg", &hello)
        .file_from("/usr/lib/hvmlite/xs-hostile.elf", &example("xs-hostile"))
        .file_from("/usr/lib/hvmlite/hello-stubdom.elf", &example("hello-stubdom"))
        .xenstore(x.clone());
    xen_host::run(&format!("xsd-hostile-{}", x.name()), &s, T)
}

#[test]
fn hostile_guests_are_refused_and_others_served() {
    let r = hostile_under(xs_domain());
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let sc = r.scenario();
    let line = |prefix: &str| -> String {
        let l = sc.iter().find(|l| l.contains(&format!("xs-hostile: {prefix}: "))).unwrap_or_else(|| panic!("no {prefix} line: {d}"));
        l[l.find("xs-hostile: ").unwrap() + 12..].to_string()
    };
    eprintln!("{}", sc.iter().filter(|l| l.contains("xs-hostile: ")).cloned().collect::<Vec<_>>().join("\n"));
    // Quotas: Xen 4.17's defaults, each refused with an error, nothing
    // taken beyond them.
    let refused_after = |case: &str| -> usize {
        let l = line(case);
        let n = l.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{l}"));
        assert!(l.contains(": refused E"), "{l}");
        n
    };
    assert!(refused_after("nodes") <= 1000, "{d}");
    assert!(refused_after("watches") <= 128, "{d}");
    assert!(refused_after("transactions") <= 10, "{d}");
    for case in [
        "node-size",
        "path-length",
        "token",
        "missing-nul",
        "unknown-type",
        "read-secret",
        "write-secret",
        "set-perms-owner",
        "set-perms-secret",
        "reset-in-tx",
    ] {
        let l = line(case);
        assert!(l.contains(": error E"), "{case} was not refused: {l}\n{d}");
    }
    assert!(line("read-secret").ends_with("EACCES"), "{d}");
    assert!(line("deep-rm").ends_with(": ok") || line("deep-write").contains("error"), "{d}");
    // dom0 and the other guest were served during and after each attack.
    for end in ["flood", "oversized", "corrupt"] {
        assert!(sc.contains(&format!("hello: ok after-{end}").as_str()), "{end}: {d}");
        assert!(sc.contains(&format!("hello: ok gone-{end}").as_str()), "{end}: {d}");
    }
    assert_eq!(sc.iter().filter(|l| **l == "dom0 reads: s").count(), 3, "{d}");
    // Nothing of the guests left: the store knows only dom0 and itself.
    assert!(sc.iter().any(|l| l.starts_with("domains: ") && l.split(' ').filter(|w| !w.is_empty()).count() <= 3), "{d}");
    assert!(!sc.iter().any(|l| l.contains("(null)")), "a zombie domain: {d}");
}

/// Guests come and go through the xenstore domain: `xl shutdown`, `xl
/// reboot`, a crash kept for inspection then destroyed, and 20 create /
/// destroy cycles. Afterwards the store lists only dom0 and itself, `xl
/// list` only them, and the xenstore domain has only dom0's ring mapped
/// (a guest ring left mapped would also keep its domain a zombie).
#[test]
fn guests_come_and_go_and_leave_nothing_behind() {
    let hello = std::fs::read_to_string(root().join("xen/hello-stubdom.cfg")).unwrap();
    let s = Scenario::new(&format!(
        r#". /usr/share/xen-host/lib.sh
{HELLO}
xl create /etc/xen/hello-stubdom.cfg || exit 10
hello one || exit 11
echo "=== xl reboot"
old=$(xl domid hello-stubdom)
xl reboot hello-stubdom || exit 12
i=0; until d=$(xl domid hello-stubdom 2>/dev/null) && [ "$d" != "$old" ]; do i=$((i + 1)); [ $i -le 300 ] || exit 13; sleep 0.1; done
hello two || exit 14
echo "=== xl shutdown"
xl shutdown -w hello-stubdom || exit 15
wait_gone hello-stubdom 30 || exit 16
echo "=== crash"
xl create /etc/xen/hello-stubdom.cfg 'kernel="/usr/lib/hvmlite/hvmlite.elf"' 'on_crash="preserve"' 'cmdline="hvmlite.crash=panic"' || exit 17
wait_state hello-stubdom c 60 || exit 18
xl destroy hello-stubdom; wait_gone hello-stubdom 30 || exit 19
echo "=== cycles"
n=0
for k in $(seq 1 20); do
    xl create /etc/xen/hello-stubdom.cfg >/dev/null 2>&1 || break
    hello c$k >/dev/null || break
    xl destroy hello-stubdom; wait_gone hello-stubdom 30 || break
    n=$k
done
echo "cycles: $n"
sleep 1
echo "=== domains in xenstore"
xenstore-list /local/domain
echo "=== xl list"
xl list
echo "=== end"
"#
    ))
    .config("hello-stubdom.cfg", &hello)
    .file_from("/usr/lib/hvmlite/hello-stubdom.elf", &example("hello-stubdom"))
    .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
    .xenstore(xs_domain());
    let r = xen_host::run("xsd-cycles", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let sc = r.scenario();
    assert!(sc.contains(&"hello: ok one") && sc.contains(&"hello: ok two"), "{d}");
    assert!(sc.contains(&"cycles: 20"), "{d}");
    assert_eq!(r.section("=== domains in xenstore"), ["0", "1"], "{d}");
    let list = r.section("=== xl list");
    let names: Vec<&str> = list.iter().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["Domain-0", "Xenstore"], "{d}");
    // 23 guests released; the last release leaves dom0's ring alone.
    let xsd = r.domain(1);
    let released: Vec<&&str> = xsd.iter().filter(|l| l.contains("released; ")).collect();
    assert!(released.len() >= 23, "{} releases: {d}", released.len());
    assert!(released.last().is_some_and(|l| l.ends_with("released; 1 rings mapped")), "{d}");
    assert!(!xsd.iter().any(|l| l.contains("FATAL")), "{d}");
}
