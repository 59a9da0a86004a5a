//! The Xen side of a xenstore domain, on the real Xen 4.17 host:
//!
//! - Xen's own `test-xenstore` (all of its tests) against the C xenstored
//!   daemon and against oxenstored, timed: the yardstick for the xenstore
//!   domain;
//! - grant mapping from inside a domain (`hvmlite::xen::gntmap`): dom0
//!   shares pages through gntalloc (`tests/xen-host/gntshare.c`), rt-check
//!   maps them all at once, reads dom0's pattern, maps and unmaps one 200
//!   times (its slot reused), gets a named `GNTST_` error for a grant that
//!   does not exist, and writes answers dom0 reads back;
//! - the xenstore-domain mode of the host: `init-xenstore-domain` builds
//!   rt-check as the xenstore domain; it sees `--event PORT`,
//!   `getdomaininfo` works from it (dom0, itself, a domain that does not
//!   exist), and it maps dom0's xenstore ring by grant reference 1. Nobody
//!   serves xenstore yet, so `init-xenstore-domain` times out: the run
//!   ends with the host's `xenstore domain` failure marker.

mod common;
use common::xen_host::{self, Scenario, Xenstore};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// test-xenstore once, timed, and which daemon served it.
const TEST_XENSTORE: &str = r#"echo "serving: xenstored=$(pidof xenstored) oxenstored=$(pidof oxenstored)"
test-xenstore -l
t0=$(cut -d' ' -f1 /proc/uptime)
test-xenstore > /tmp/tx.out 2>&1
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
cat /tmp/tx.out
echo "test-xenstore rc=$rc from=$t0 to=$t1"
"#;

fn test_xenstore_under(x: Xenstore) -> f64 {
    let name = format!("xs-test-xenstore-{}", x.name());
    let r = xen_host::run(&name, &Scenario::new(TEST_XENSTORE).xenstore(x.clone()), T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let serving = r.scenario().into_iter().find(|l| l.starts_with("serving: ")).unwrap_or_else(|| panic!("{d}"));
    let pid_of = |k: &str| serving.split(' ').find_map(|w| w.strip_prefix(k)).unwrap_or("").to_string();
    match x {
        Xenstore::Daemon => assert!(!pid_of("xenstored=").is_empty() && pid_of("oxenstored=").is_empty(), "{serving}"),
        Xenstore::Oxenstored => assert!(pid_of("xenstored=").is_empty() && !pid_of("oxenstored=").is_empty(), "{serving}"),
        Xenstore::Domain { .. } => {}
    }
    let l = r.scenario().into_iter().find(|l| l.starts_with("test-xenstore rc=")).unwrap_or_else(|| panic!("{d}"));
    assert!(l.starts_with("test-xenstore rc=0 "), "{d}");
    let t = |k: &str| -> f64 { l.split(' ').find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap() };
    let took = t("to=") - t("from=");
    eprintln!("test-xenstore against {}: {took:.2} s", x.name());
    took
}

#[test]
fn test_xenstore_passes_against_xenstored_and_oxenstored() {
    let c = test_xenstore_under(Xenstore::Daemon);
    let o = test_xenstore_under(Xenstore::Oxenstored);
    eprintln!("test-xenstore: xenstored {c:.2} s, oxenstored {o:.2} s");
}

#[test]
fn a_domain_maps_grants_from_dom0_and_reuses_slots() {
    let s = xen_host::rt_check(
        r#"# The grants name the domain rt-check will be: the host's first
# guest, domain 1, or 2 behind a xenstore domain. Mapping them from any
# other domain fails.
first=1; xl domid Xenstore >/dev/null 2>&1 && first=2
/usr/bin/gntshare $first 4 90 > /tmp/gs.out 2>&1 &
gs=$!
i=0; until grep -q '^gntshare: grefs ' /tmp/gs.out; do i=$((i + 1)); [ $i -le 100 ] || { cat /tmp/gs.out; exit 20; }; sleep 0.1; done
refs=$(sed -n 's/^gntshare: grefs //p' /tmp/gs.out)
echo "=== grefs $refs"
xl create /etc/xen/rt-check.cfg "cmdline=\"gntmap=0:$refs\"" || exit 10
wait $gs
echo "gntshare rc=$?"
cat /tmp/gs.out
i=0
while xl domid rt-check >/dev/null 2>&1; do
    case "$(xl_state rt-check)" in *c*) echo "rt-check crashed"; exit 12 ;; esac
    i=$((i + 1)); [ $i -le 600 ] || exit 11
    sleep 0.1
done
echo "=== end"
"#,
        "",
    )
    .program_from("/usr/bin/gntshare", &xen_host::dom0_tool("gntshare"));
    let r = xen_host::run("xs-gntmap", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    let gl: Vec<&str> = g.iter().copied().filter(|l| l.contains("rt-check: gntmap: ")).collect();
    for l in &gl {
        eprintln!("{l}");
    }
    // Each page holds dom0's pattern, read from inside the domain.
    for i in 0..4 {
        let want = format!("hvmlite-gnt-{i}-");
        assert!(gl.iter().any(|l| l.starts_with("hvmlite: rt-check: gntmap: grant ") && l.contains(&want)), "no {want}: {d}");
    }
    assert!(g.contains(&"hvmlite: rt-check: gntmap: 4 mapped at once at 4 addresses, 4 slots in use"), "{d}");
    assert!(
        g.iter().any(|l| l.starts_with("hvmlite: rt-check: gntmap: 200 map/unmap cycles of grant ")
            && l.ends_with(": 1 distinct slot(s), 4 in use before and 4 after")),
        "{d}"
    );
    assert!(
        g.contains(
            &"hvmlite: rt-check: gntmap: grant 0xfffff refused: GNTTABOP_map_grant_ref: GNTST_bad_gntref (-3: invalid grant reference)"
        ),
        "{d}"
    );
    assert!(g.contains(&"hvmlite: rt-check: gntmap: answered and unmapped, 0 slots in use"), "{d}");
    // dom0 read every answer back.
    let sc = r.scenario();
    assert!(sc.contains(&"gntshare rc=0"), "{d}");
    for i in 0..4 {
        let want = format!("gntshare: answer {i}: answer-{i}-from-domU");
        assert!(sc.iter().any(|l| *l == want), "no {want:?}: {d}");
    }
    assert!(g.contains(&"hvmlite: shutdown: poweroff"), "{d}");
}

#[test]
fn rt_check_boots_as_the_xenstore_domain_and_sees_xen() {
    let x = Xenstore::domain(&example("rt-check"), 8).param("xs-domain").timeout_s(20);
    let r = xen_host::run("xs-domain-boot", &Scenario::new("echo unreachable\n").xenstore(x), T);
    let d = r.dump();
    // Nobody answers xenstore: init-xenstore-domain gives up.
    assert_eq!(r.rc, None, "{d}");
    assert!(r.has(xen_host::XS_DOMAIN), "{d}");
    assert!(r.has("=== xen-host failed: xenstore domain: init-xenstore-domain exit "), "{d}");
    let g = r.domain(1);
    let xs: Vec<&str> = g.iter().copied().filter(|l| l.contains("rt-check: xs-domain: ")).collect();
    for l in &xs {
        eprintln!("{l}");
    }
    let ev = xs.iter().find_map(|l| l.strip_prefix("hvmlite: rt-check: xs-domain: --event ")).unwrap_or_else(|| panic!("no --event: {d}"));
    let port: u32 = ev.parse().unwrap_or_else(|_| panic!("{ev}"));
    assert!(port > 0, "{d}");
    assert!(xs.contains(&"hvmlite: rt-check: xs-domain: I am domain 1"), "{d}");
    assert!(xs.iter().any(|l| l.starts_with("hvmlite: rt-check: xs-domain: dom0: domain 0:")), "{d}");
    assert!(xs.iter().any(|l| l.starts_with("hvmlite: rt-check: xs-domain: domain 1:") && l.contains(" xs_domain")), "{d}");
    assert!(xs.contains(&"hvmlite: rt-check: xs-domain: domain 8: none"), "{d}");
    assert!(xs.contains(&"hvmlite: rt-check: xs-domain: domctl interface version 0x15"), "{d}");
    // dom0 wrote at least one request into its ring before blocking.
    let ring = xs.iter().find(|l| l.contains("dom0's ring: req_cons ")).unwrap_or_else(|| panic!("{d}"));
    let prod: u32 = ring.split("req_prod ").nth(1).and_then(|v| v.split(',').next()).and_then(|v| v.parse().ok()).unwrap();
    assert!(prod > 0, "{ring}");
    assert!(xs.iter().any(|l| l.starts_with(&format!("hvmlite: rt-check: xs-domain: bound dom0's port {port} as "))), "{d}");
}
