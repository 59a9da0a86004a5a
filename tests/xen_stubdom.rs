//! hvmlite as a stubdomain on a real Xen 4.17 host: `xl create
//! xen/hvmlite-stubdom.cfg` (the shipped file), then from dom0: xenstore
//! (`state = ready`, the report keys, request/response), a granted page
//! read through gntdev, the PV console both ways, `xl shutdown`/`reboot`,
//! a crash, several stubdomains at once and create/destroy cycles with
//! nothing left behind.

mod common;
use common::xen_host::{self, Scenario};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// dom0 shell helpers for the stubdomain's xenstore protocol.
const LIB: &str = r#". /usr/share/xen-host/lib.sh
# st DOMID KEY: read data/hvmlite/KEY of a domain
st() { xenstore-read /local/domain/$1/data/hvmlite/$2 2>/dev/null; }
# wait_ready DOMID: until data/hvmlite/state is "ready" (5 s at most)
wait_ready() {
    _i=0
    until [ "$(st $1 state)" = ready ]; do
        _i=$((_i + 1)); [ $_i -le 100 ] || { echo "domain $1 never ready"; return 1; }
        sleep 0.05
    done
}
# ask DOMID "ID COMMAND [ARG]": write the request, wait for response "ID ..."
ask() {
    xenstore-write /local/domain/$1/data/hvmlite/request "$2"
    _id=${2%% *}; _i=0
    until r=$(st $1 response) && [ "${r%% *}" = "$_id" ]; do
        _i=$((_i + 1)); [ $_i -le 100 ] || { echo "no response to '$2' from $1"; return 1; }
        sleep 0.05
    done
    echo "response $1: $r"
}
"#;

fn stubdom(script: &str) -> Scenario {
    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-stubdom.cfg")).unwrap();
    Scenario::new(&format!("{LIB}\n{script}")).config("hvmlite-stubdom.cfg", &cfg).file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
}

#[test]
fn stubdomain_service_end_to_end() {
    let s = stubdom(
        r#"echo "=== xl create"
xl create /etc/xen/hvmlite-stubdom.cfg || exit 10
d=$(xl domid hvmlite-stubdom) || exit 11
wait_ready $d || exit 12
echo "=== ready"
echo "=== xenstore"
xenstore-ls -f /local/domain/$d/data/hvmlite
for k in feature-poweroff feature-reboot; do echo "control/$k=$(xenstore-read /local/domain/$d/control/$k)"; done
echo "=== requests"
ask $d "1 ping" || exit 13
ask $d "2 echo hello stubdomain" || exit 14
ask $d "3 frobnicate" || exit 15
ask $d "4 grant 0" || exit 16
gref=${r#4 }
echo "=== gntread"
/usr/bin/gntread $d $gref || exit 17
ask $d "5 revoke" || exit 18
echo "=== gntread after revoke"
/usr/bin/gntread $d $gref && exit 19
echo "=== console input"
tty=$(xenstore-read /local/domain/$d/console/tty) || exit 20
printf 'hello console\r' > $tty
sleep 0.5
echo "=== console log"
cat /var/log/xen/console/guest-hvmlite-stubdom.log
echo "=== xl shutdown"
xl shutdown -w hvmlite-stubdom || exit 21
# -w returns once the domain has shut down; xl's monitor destroys it
# (on_poweroff) a moment later, after its own round of xenstore requests.
wait_gone hvmlite-stubdom 30 || exit 22
echo "=== xl list"
xl list
echo "=== domains in xenstore"
xenstore-list /local/domain
echo "=== end"
"#,
    )
    .program_from("/usr/bin/gntread", &xen_host::dom0_tool("gntread"));
    let r = xen_host::run("stubdom-service", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    assert!(g.contains(&"hvmlite: ready"), "{d}");
    let id = r.id(1);
    assert!(
        g.iter().any(|l| l.starts_with(&format!("hvmlite: xenstore: domid {id} name \"hvmlite-stubdom\" home /local/domain/{id} vm /vm/"))),
        "{d}"
    );
    assert!(g.contains(&"hvmlite: stubdom: ready, serving data/hvmlite/request"), "{d}");

    // The report in xenstore, as a dom0 tool reads it.
    let xs = r.section("=== xenstore");
    for want in [
        "/local/domain/ID/data/hvmlite/state = \"ready\"",
        "/local/domain/ID/data/hvmlite/report/hypervisor = \"xen\"",
        "/local/domain/ID/data/hvmlite/report/start_info_version = \"1\"",
        "/local/domain/ID/data/hvmlite/report/cmdline = \"\"",
        "/local/domain/ID/data/hvmlite/report/modules = \"0\"",
        "control/feature-poweroff=1",
        "control/feature-reboot=1",
    ] {
        let want = want.replace("ID", &id.to_string());
        assert!(xs.contains(&want.as_str()), "missing {want:?}: {d}");
    }
    // Request/response.
    let resp = r.section("=== requests");
    assert!(resp.contains(&format!("response {id}: 1 pong").as_str()), "{d}");
    assert!(resp.contains(&format!("response {id}: 2 hello stubdomain").as_str()), "{d}");
    assert!(resp.contains(&format!("response {id}: 3 error: unknown command \"frobnicate\"").as_str()), "{d}");
    let gref: u32 = resp.iter().find_map(|l| l.strip_prefix(format!("response {id}: 4 ").as_str())).and_then(|g| g.parse().ok()).expect(&d);
    assert!(gref >= 8, "reserved grant refs must not be used: {d}");
    // The granted page, read in dom0 through gntdev; then revoked.
    assert_eq!(r.section("=== gntread").first(), Some(&format!("gntread: hvmlite grant page from domain {id}").as_str()), "{d}");
    assert!(r.scenario().contains(&format!("response {id}: 5 revoked").as_str()), "{d}");
    // After the revoke, gntdev refuses the mapping (at map or mmap time).
    let after = r.section("=== gntread after revoke");
    assert!(after.iter().any(|l| l.starts_with("gntread: map") || l.starts_with("gntread: mmap")), "{d}");
    assert!(!after.iter().any(|l| l.contains("hvmlite grant page")), "{d}");
    // The PV console: the boot report reached it (what `xl console` shows),
    // and a line typed into it came back.
    let cons = r.section("=== console log");
    assert!(cons.contains(&"hvmlite: hypervisor: xen (cpuid base 0x40000000, signature \"XenVMMXenVMM\")"), "{d}");
    assert!(cons.contains(&"hvmlite: ready"), "{d}");
    assert!(g.contains(&"hvmlite: console: \"hello console\""), "{d}");
    // xl shutdown: the PV protocol, acknowledged, a clean poweroff; nothing left.
    assert!(g.contains(&"hvmlite: control/shutdown: poweroff"), "{d}");
    assert!(g.contains(&"hvmlite: shutdown: poweroff"), "{d}");
    let list = r.section("=== xl list");
    assert!(!list.iter().any(|l| l.starts_with("hvmlite-stubdom")), "{d}");
    assert_eq!(r.section("=== domains in xenstore"), r.base_domains(), "{d}");
    eprintln!(
        "stubdom: xl create -> state ready {:.2?} (dom0's view), -> report ready {:.2?}",
        r.between("=== xl create", "=== ready").unwrap_or_default(),
        r.between("=== xl create", &format!("{} hvmlite: ready", r.tag(1))).unwrap_or_default(),
    );
}

#[test]
fn several_stubdomains_reboot_crash_and_cycles() {
    let s = stubdom(
        r#"echo "=== three at once"
for n in 1 2 3; do xl create /etc/xen/hvmlite-stubdom.cfg "name=\"s$n\"" || exit 10; done
for n in 1 2 3; do d=$(xl domid s$n) || exit 11; wait_ready $d || exit 12; ask $d "$n ping" || exit 13; done
echo "=== reboot"
old=$(xl domid s1)
xl reboot s1 || exit 14
i=0; until new=$(xl domid s1 2>/dev/null) && [ "$new" != "$old" ] && wait_ready $new; do i=$((i+1)); [ $i -le 100 ] || exit 15; sleep 0.1; done
echo "rebooted: $old -> $new"
echo "=== crash"
d3=$(xl domid s3)
xenstore-write /local/domain/$d3/data/hvmlite/request "9 crash"
wait_state s3 c 10 || exit 16
echo "s3 state $(xl_state s3)"
xl destroy s3
echo "=== shutdown"
xl shutdown -w s1 || exit 17
xl shutdown -w s2 || exit 18
echo "=== cycles"
start=$(cut -d' ' -f1 /proc/uptime)
for i in $(seq 20); do
    xl create /etc/xen/hvmlite-stubdom.cfg 'name="cycle"' >/dev/null 2>&1 || { echo "create $i failed"; exit 20; }
    d=$(xl domid cycle) || exit 21
    wait_ready $d || exit 22
    xl destroy cycle || exit 23
done
end=$(cut -d' ' -f1 /proc/uptime)
echo "cycles: 20 in $start..$end"
echo "=== xl list"
xl list
echo "=== domains in xenstore"
xenstore-list /local/domain
echo "=== end"
"#,
    );
    let r = xen_host::run("stubdom-cycles", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    for n in 1..=3 {
        assert!(r.scenario().iter().any(|l| l.ends_with(&format!(": {n} pong"))), "{d}");
    }
    assert!(r.scenario().iter().any(|l| l.starts_with("rebooted: ")), "{d}");
    assert!(r.scenario().iter().any(|l| l.starts_with("s3 state ") && l.contains('c')), "{d}");
    assert!(r.has("hvmlite: FATAL: panic: crash requested through xenstore"), "{d}");
    assert!(r.has("hvmlite: control/shutdown: reboot"), "{d}");
    let list = r.section("=== xl list");
    assert_eq!(
        list.iter().filter(|l| !l.starts_with("Name ")).count(),
        1 + r.shift as usize,
        "only Domain-0 (and the xenstore domain) left: {d}"
    );
    assert_eq!(r.section("=== domains in xenstore"), r.base_domains(), "nothing left in xenstore: {d}");
    if let Some(c) = r.scenario().iter().find_map(|l| l.strip_prefix("cycles: 20 in ")) {
        let (a, b) = c.split_once("..").unwrap();
        let secs = b.parse::<f64>().unwrap() - a.parse::<f64>().unwrap();
        eprintln!("stubdom: 20 create/ready/destroy cycles in {secs:.1} s ({:.2} s each)", secs / 20.0);
    }
}

#[test]
fn smallest_memory_that_works() {
    let s = stubdom(
        r#"echo "=== sizes"
for m in 1 2 3 4 8; do
    if xl create /etc/xen/hvmlite-stubdom.cfg "memory=$m" "name=\"m$m\"" >/dev/null 2>&1; then
        d=$(xl domid m$m)
        if wait_ready $d >/dev/null && ask $d "1 ping" >/dev/null; then echo "memory=$m: works"; else echo "memory=$m: fails"; fi
        xl destroy m$m
    else
        echo "memory=$m: xl refuses"
    fi
done
echo "=== end"
"#,
    );
    let r = xen_host::run("stubdom-memory", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let sizes = r.section("=== sizes");
    let works: Vec<&str> = sizes.iter().filter(|l| l.ends_with(": works")).copied().collect();
    assert!(works.contains(&"memory=8: works"), "the shipped config must work: {d}");
    assert!(works.contains(&"memory=4: works"), "{d}");
    eprintln!("stubdom memory: {}", sizes.join("; "));
}

/// A hostile dom0 (tests/xen-host/ringpoke.c maps the guest's ring pages
/// as xenstored and xenconsoled do) writes impossible ring indexes: hvmlite
/// must report it and never read or write outside the ring. A broken
/// console is dropped and the service goes on; a broken xenstore ring ends
/// the stubdomain with a clear reason and the crash shutdown.
#[test]
fn hostile_peer_corrupts_the_rings() {
    let s = stubdom(
        r#"xl create /etc/xen/hvmlite-stubdom.cfg 'name="victim"' || exit 10
xl create /etc/xen/hvmlite-stubdom.cfg 'name="victim2"' || exit 10
d=$(xl domid victim); d2=$(xl domid victim2)
wait_ready $d || exit 11; wait_ready $d2 || exit 11
ask $d "1 ping" || exit 12
cref=$(xenstore-read /local/domain/$d/console/ring-ref)
sref=$(xenstore-read /local/domain/$d/store/ring-ref)
echo "=== console in_prod"
/usr/bin/ringpoke $d $cref 3076=0x7fffff00 || exit 13
ask $d "2 ping" || exit 14
sleep 0.2
ask $d "3 ping" || exit 15
echo "=== console out_cons"
/usr/bin/ringpoke $d2 $(xenstore-read /local/domain/$d2/console/ring-ref) 3080=0x12345678 || exit 16
ask $d2 "4 ping" || exit 17
ask $d2 "5 ping" || exit 18
echo "=== xenstore rsp_prod"
/usr/bin/ringpoke $d $sref 2060=0x40000000 || exit 19
xenstore-write /local/domain/$d/data/hvmlite/request "6 ping"
wait_state victim c 40 || exit 20
echo "victim state $(xl_state victim)"
echo "=== end"
"#,
    )
    .program_from("/usr/bin/ringpoke", &xen_host::dom0_tool("ringpoke"));
    let r = xen_host::run("stubdom-hostile", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g1 = r.guest(1);
    let g2 = r.guest(2);
    // Console input corrupt: reported once, dropped, still serving.
    assert_eq!(
        g1.iter().filter(|l| l.starts_with("hvmlite: warning: PV console input ring corrupt (ring indexes cons ")).count(),
        1,
        "{d}"
    );
    assert!(g1.contains(&"hvmlite: request 3 ping: pong"), "{d}");
    // Console output corrupt: reported on the other consoles, still serving.
    assert!(g2.iter().any(|l| l.starts_with("hvmlite: warning: PV console output ring corrupt (ring indexes cons 0x12345678 ")), "{d}");
    assert!(g2.contains(&"hvmlite: request 5 ping: pong"), "{d}");
    // xenstore corrupt: one FATAL line naming it, then the crash shutdown.
    let fatal = g1.iter().find(|l| l.starts_with("hvmlite: FATAL: ")).expect(&d);
    assert!(fatal.starts_with("hvmlite: FATAL: stubdom: xenstore: xenstore ring corrupt: ring indexes cons "), "{d}");
    assert!(fatal.contains("prod 0x40000000"), "{d}");
    assert!(g1.contains(&"hvmlite: shutdown: crash"), "{d}");
    assert!(r.scenario().iter().any(|l| l.starts_with("victim state ") && l.contains('c')), "{d}");
}
