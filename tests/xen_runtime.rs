//! The task runtime on a real Xen 4.17 host, measured from inside a domain
//! (`tests/rt-check`) and from dom0 against `examples/net-echo-http`:
//!
//! - 300 event channels bound to the domain itself: each signal wakes
//!   exactly the task waiting on that channel;
//! - 200 connections opened at once to the echo port all echo their own
//!   bytes (the accept queue holds 8: the rest are retried by the peers,
//!   never reset, never left hanging);
//! - an app that ignores `xl shutdown` is powered off after the grace
//!   period;
//! - a client that connects and sends nothing does not stop the others
//!   being served, and after the HTTP request timeout its connection is
//!   closed; a UDP datagram to the echo port comes back.

mod common;
use common::xen_host::{self, Scenario};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// rt-check with `cmdline`, until it powers off (or crashes).
fn rt_check(cmdline: &str) -> Scenario {
    xen_host::rt_check(
        r#"xl create /etc/xen/rt-check.cfg || exit 10
over() { domain_gone rt-check || domain_in_state rt-check c; }
until_released 120 over || exit 11
domain_in_state rt-check c && { echo "rt-check crashed"; exit 12; }
echo "=== end"
"#,
        cmdline,
    )
}

#[test]
fn three_hundred_event_channels_each_wake_their_own_task() {
    let r = xen_host::run("rt-ports", &rt_check("ports"), T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    let l = g.iter().find(|l| l.starts_with("hvmlite: rt-check: ports: ")).unwrap_or_else(|| panic!("no ports line: {d}"));
    eprintln!("{l}");
    assert!(l.starts_with("hvmlite: rt-check: ports: 300 channels up to port ") && l.ends_with(", each woke its own task once"), "{l}");
    // Past the 63 ports `events::wait` took and the 128 SCHEDOP_poll takes.
    let top: u32 = l.split(' ').nth(8).and_then(|p| p.trim_end_matches(',').parse().ok()).unwrap_or_else(|| panic!("{l}"));
    assert!(top >= 600, "{l}");
    assert!(g.contains(&"hvmlite: shutdown: poweroff"), "{d}");
}

/// An app that ignores `xl shutdown`: the runtime powers off after its
/// grace period anyway, and the toolstack sees a clean poweroff.
#[test]
fn an_app_that_ignores_shutdown_is_powered_off_after_the_grace_period() {
    let s = xen_host::rt_check(
        r#"xl create /etc/xen/rt-check.cfg || exit 10
sleep 1
t0=$(cut -d' ' -f1 /proc/uptime)
xl shutdown -w rt-check || exit 11
t1=$(cut -d' ' -f1 /proc/uptime)
echo "shutdown from=$t0 to=$t1"
echo "=== end"
"#,
        "ignore-shutdown",
    );
    let r = xen_host::run("rt-grace", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    for line in [
        "hvmlite: rt-check: ignore-shutdown: never returning",
        "hvmlite: rt: the toolstack asks for a poweroff",
        "hvmlite: warning: rt: the app did not finish within 5 s of the shutdown request; closing anyway",
        "hvmlite: shutdown: poweroff",
    ] {
        assert!(g.contains(&line), "no {line:?}: {d}");
    }
    let l = r.scenario().into_iter().find(|l| l.starts_with("shutdown from=")).unwrap_or_else(|| panic!("{d}"));
    let t = |k: &str| -> f64 { l.split(' ').find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap() };
    let took = t("to=") - t("from=");
    assert!((4.5..15.0).contains(&took), "xl shutdown took {took:.1} s, the grace period is 5 s: {d}");
    assert!(r.has(&format!("Domain {} has been shut down, reason code 0", r.id(1))), "{d}");
}

/// dom0 side: net-echo-http with a vif on the bridge, as tests/xen_net.rs.
fn net(script: &str) -> Scenario {
    let cfg = std::fs::read_to_string(root().join("xen/net-echo-http.cfg")).unwrap();
    Scenario::new(&format!(
        r#". /usr/share/xen-host/lib.sh
IP=192.168.77.2
get() {{ printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | timeout 20 nc -w 2 $IP 80; }}
net_backend || exit 90
{script}"#
    ))
    .config("net-echo-http.cfg", &cfg)
    .file_from("/usr/lib/hvmlite/net-echo-http.elf", &example("net-echo-http"))
}

#[test]
fn two_hundred_connections_at_once_all_echo() {
    let s = net(r#"
xl create /etc/xen/net-echo-http.cfg memory=16 "vif=['bridge=xenbr0,ip=$IP,script=vif-sh']" || exit 10
i=0; until get /status 2>/dev/null | grep -q domid; do i=$((i + 1)); [ $i -le 600 ] || exit 11; sleep 0.1; done
echo "=== 200 at once"
i=0
while [ $i -lt 200 ]; do
    head -c 3000 /dev/urandom > /tmp/in$i
    i=$((i + 1))
done
t0=$(cut -d' ' -f1 /proc/uptime)
i=0
while [ $i -lt 200 ]; do
    timeout 120 nc $IP 7 < /tmp/in$i > /tmp/out$i 2>/tmp/err$i &
    i=$((i + 1))
done
wait
t1=$(cut -d' ' -f1 /proc/uptime)
ok=0; bad=0; i=0
while [ $i -lt 200 ]; do
    if cmp -s /tmp/in$i /tmp/out$i; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "conn $i: $(wc -c < /tmp/out$i) bytes back: $(cat /tmp/err$i)"; fi
    i=$((i + 1))
done
echo "echo ok=$ok bad=$bad from=$t0 to=$t1"
echo "after $(get /status | tail -n 1)"
xl shutdown -w net-echo-http || exit 12
echo "=== end"
"#);
    let r = xen_host::run("rt-200", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let l = r.scenario().into_iter().find(|l| l.starts_with("echo ok=")).unwrap_or_else(|| panic!("no echo line: {d}"));
    eprintln!("{l}");
    assert!(l.starts_with("echo ok=200 bad=0 "), "{d}");
    // Every byte of every connection went through the echo.
    let after = r.scenario().into_iter().find(|l| l.starts_with("after {")).unwrap_or_else(|| panic!("{d}"));
    let echoed: u64 = after.split("\"echo_bytes\":").nth(1).and_then(|v| v.split(',').next()).and_then(|v| v.parse().ok()).unwrap();
    assert_eq!(echoed, 200 * 3000, "{after}");
}

#[test]
fn a_silent_client_does_not_stop_the_others_and_udp_echoes() {
    let s = net(r#"
xl create /etc/xen/net-echo-http.cfg "vif=['bridge=xenbr0,ip=$IP,script=vif-sh']" || exit 10
i=0; until get /status 2>/dev/null | grep -q domid; do i=$((i + 1)); [ $i -le 600 ] || exit 11; sleep 0.1; done
echo "=== silent"
# Connect to the HTTP port and to the echo port and send nothing.
sleep 30 | nc $IP 80 > /tmp/silent80 &
s80=$!
sleep 30 | nc $IP 7 > /tmp/silent7 &
sleep 1
t0=$(cut -d' ' -f1 /proc/uptime)
n=0; i=0
while [ $i -lt 10 ]; do get /status | grep -q domid && n=$((n + 1)); i=$((i + 1)); done
echo "hello" | timeout 10 nc $IP 7 > /tmp/echo
t1=$(cut -d' ' -f1 /proc/uptime)
echo "served n=$n echo=$(cat /tmp/echo) from=$t0 to=$t1"
echo "udp $(/usr/bin/udpsend $IP 7 udp-hello-$$)"
# The silent HTTP client is let go after the request timeout (10 s).
i=0; while kill -0 $s80 2>/dev/null; do i=$((i + 1)); [ $i -le 200 ] || break; sleep 0.1; done
echo "silent80 closed-after=$(($(cut -d. -f1 /proc/uptime) - ${t0%.*})) bytes=$(wc -c < /tmp/silent80)"
xl shutdown -w net-echo-http || exit 12
echo "=== end"
"#);
    let s = s.program_from("/usr/bin/udpsend", &xen_host::dom0_tool("udpsend"));
    let r = xen_host::run("rt-silent", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let l = r.scenario().into_iter().find(|l| l.starts_with("served ")).unwrap_or_else(|| panic!("no served line: {d}"));
    assert!(l.starts_with("served n=10 echo=hello "), "{d}");
    // The UDP echo on the same port answers the datagram with itself.
    let u = r.scenario().into_iter().find(|l| l.starts_with("udp ")).unwrap_or_else(|| panic!("{d}"));
    assert!(u.starts_with("udp udp-hello-"), "{d}");
    let l = r.scenario().into_iter().find(|l| l.starts_with("silent80 ")).unwrap_or_else(|| panic!("{d}"));
    eprintln!("{l}");
    let after: u64 = l.split("closed-after=").nth(1).and_then(|v| v.split(' ').next()).and_then(|v| v.parse().ok()).unwrap();
    assert!((8..=20).contains(&after), "the silent HTTP client should be let go after about 10 s: {l}");
    assert!(l.ends_with(" bytes=0"), "nothing is answered to a request never made: {l}");
}
