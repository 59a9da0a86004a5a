//! The network stubdomain on a real Xen 4.17 host: dom0 loads netback and
//! a bridge (`lib.sh: net_backend`), and `xl create`s
//! `examples/net-echo-http` from `xen/net-echo-http.cfg` with a vif on the
//! bridge through a `/bin/sh` hotplug script (`tests/xen-host/vif`). From
//! dom0: ping, 4 MiB of random bytes through the echo port, `/` and
//! `/status`, 32 connections at once, the uptime against dom0's clock,
//! `xl shutdown` with the vif gone from dom0 and xenstore, create/destroy
//! cycles, and a backend that corrupts the rings.

mod common;
use common::xen_host::{self, HostRun, Scenario};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// dom0 helpers: the vif spec, HTTP GET with busybox nc, waiting for the
/// first answer.
const LIB: &str = r#". /usr/share/xen-host/lib.sh
IP=192.168.77.2
VIF="vif=['bridge=xenbr0,ip=$IP,script=vif-sh']"
# get PATH: the whole HTTP response
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | timeout 20 nc -w 2 $IP 80; }
# up: dom0's uptime in ms
up() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# net_state: what dom0 and the guest say of the network, for a failure
net_state() {
    xl list
    ip -o link show | grep -E 'xenbr0|vif'
    ip neigh show
    xenstore-ls /local/domain/0/backend/vif 2>&1 | grep -E 'state|online|hotplug-status' | sed 's/^/backend: /'
    tail -n 20 /var/log/xen/console/guest-net-echo-http.log 2>/dev/null | sed 's/^/guest: /'
    dmesg | grep -iE 'vif|netback|xenbr|EOI|WARN' | tail -n 20 | sed 's/^/dom0: /'
    # dom0's irqs for the vif (how often each was handled) and
    # netback's own view of the rings and its NAPI state.
    grep -E 'vif|evtchn' /proc/interrupts | sed 's/^/dom0 irq: /'
    for _i in $(grep vif /proc/interrupts | cut -d: -f1); do
        echo "dom0 irq $_i: $(tr '\n' ' ' < /proc/irq/$_i/spurious)"
    done
    mount | grep -q debugfs || mount -t debugfs none /sys/kernel/debug
    cat /sys/kernel/debug/xen-netback/vif*/io_ring_q0 2>&1 | sed 's/^/netback: /'
    _d=$(xl domid net-echo-http 2>/dev/null) || return 0
    # The rings' indices (req_prod, req_event, rsp_prod, rsp_event) and
    # what Xen holds of the guest's event channels and vCPU.
    for _r in tx rx; do
        /usr/bin/ringpoke -g $_d $(xenstore-read /local/domain/$_d/device/vif/0/$_r-ring-ref) 0 4 8 12 | sed "s/^/$_r ring: /"
    done
    xl debug-keys e; xl debug-keys q
    xl dmesg | awk -v d="domain $_d:" '/[Ii]nformation.*for domain/ { on = index($0, d) > 0 } on' | tail -n 40 | sed 's/^/xen: /'
}
# wait_answer S: until /status answers (S seconds of dom0's clock at
# most, however long each try takes; at once when the domain has crashed
# or gone)
wait_answer() {
    _end=$(($(up) + $1 * 1000))
    until get /status 2>/dev/null | grep -q '"domid"'; do
        [ "$(up)" -lt $_end ] || { echo "no answer from $IP"; net_state; return 1; }
        case "$(xl_state net-echo-http)" in
        *c*|"") echo "net-echo-http crashed or gone: '$(xl_state net-echo-http)'"; return 1 ;;
        esac
        sleep 0.1
    done
}
# no_vifs: nothing of any vif left in dom0 or xenstore
no_vifs() {
    _l=$(ls /sys/class/net | grep '^vif')
    [ -z "$_l" ] || { echo "left in dom0: $_l"; return 1; }
    _x=$(xenstore-ls /local/domain/0/backend/vif 2>/dev/null)
    [ -z "$_x" ] || { echo "left in xenstore: $_x"; return 1; }
}
"#;

fn scenario(script: &str) -> Scenario {
    let cfg = std::fs::read_to_string(root().join("xen/net-echo-http.cfg")).unwrap();
    Scenario::new(&format!("{LIB}\nnet_backend || exit 90\n{script}"))
        .config("net-echo-http.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/net-echo-http.elf", &example("net-echo-http"))
        .program_from("/usr/bin/ringpoke", &xen_host::dom0_tool("ringpoke"))
}

/// A `key=value` word of the scenario line starting with `tag`.
fn field<T: std::str::FromStr>(r: &HostRun, tag: &str, key: &str) -> T {
    let d = r.dump();
    let l = r.scenario().into_iter().find(|l| l.starts_with(tag)).unwrap_or_else(|| panic!("no {tag} line: {d}"));
    l.split(' ').find_map(|w| w.strip_prefix(key)).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key} in {l:?}: {d}"))
}

#[test]
fn net_stubdomain_pings_echoes_and_serves_http() {
    let s = scenario(
        r#"
echo "=== create"
t0=$(up)
xl create /etc/xen/net-echo-http.cfg "$VIF" || exit 10
wait_answer 60 || exit 11
echo "first-answer ms=$(($(up) - t0))"
d=$(xl domid net-echo-http)
echo "vif-ip=$(xenstore-read /local/domain/0/backend/vif/$d/0/ip)"
echo "channels tx=$(xenstore-read /local/domain/$d/device/vif/0/event-channel-tx) rx=$(xenstore-read /local/domain/$d/device/vif/0/event-channel-rx)"
ping -c 3 -W 5 $IP || exit 12
echo "=== echo"
head -c 4194304 /dev/urandom > /tmp/r
t0=$(up)
timeout 300 nc $IP 7 < /tmp/r > /tmp/o || exit 13
t1=$(up)
echo "echo sent=$(md5sum < /tmp/r | cut -c1-32) got=$(md5sum < /tmp/o | cut -c1-32) bytes=$(wc -c < /tmp/o) ms=$((t1 - t0))"
echo "=== http"
get / > /tmp/root || exit 14
head -n 3 /tmp/root | tr -d '\r'
grep -c '^hvmlite: ' /tmp/root | sed 's/^/report-lines=/'
echo "status1 $(get /status | tail -n 1) dom0=$(up)"
sleep 5
echo "status2 $(get /status | tail -n 1) dom0=$(up)"
get /nothing | head -n 1 | tr -d '\r'
echo "=== 32 at once"
i=0
while [ $i -lt 32 ]; do get /status > /tmp/c$i 2>&1 & i=$((i + 1)); done
wait
ok=0; i=0
while [ $i -lt 32 ]; do grep -q '"domid"' /tmp/c$i && ok=$((ok + 1)); i=$((i + 1)); done
echo "concurrent ok=$ok"
echo "=== shutdown"
xl shutdown -w net-echo-http || exit 15
wait_gone net-echo-http 30 || exit 16
sleep 1
no_vifs || exit 17
echo "=== end"
"#,
    );
    let r = xen_host::run("net-e2e", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    assert!(
        g.iter().any(|l| l.starts_with("hvmlite: net: vif/0: mac 00:16:3e:") && l.ends_with("address 192.168.77.2/24 (vif ip)")),
        "{d}"
    );
    assert!(r.has("vif-ip=192.168.77.2"), "{d}");
    // An event channel for each ring, as netback offers and Linux's
    // netfront takes.
    let (tx, rx): (u32, u32) = (field(&r, "channels ", "tx="), field(&r, "channels ", "rx="));
    assert!(tx != rx, "{d}");
    assert!(r.has("3 packets transmitted, 3 packets received"), "{d}");
    // The echo: every byte back, in order.
    let sent: String = field(&r, "echo ", "sent=");
    let got: String = field(&r, "echo ", "got=");
    assert_eq!(sent, got, "{d}");
    assert_eq!(field::<u64>(&r, "echo ", "bytes="), 4 << 20, "{d}");
    let ms: u64 = field(&r, "echo ", "ms=");
    eprintln!("net: 4 MiB echoed in {ms} ms ({:.1} MiB/s)", 4000.0 / ms as f64);
    eprintln!("net: xl create -> first answered request: {} ms", field::<u64>(&r, "first-answer", "ms="));
    // `/`: the boot report.
    assert!(r.has("HTTP/1.0 200 OK"), "{d}");
    assert!(field::<u32>(&r, "report-lines=", "report-lines=") >= 10, "{d}");
    assert!(r.has("HTTP/1.0 404 Not Found"), "{d}");
    // `/status`: JSON, and the uptime advances with dom0's clock.
    let status = |tag: &str| -> (f64, f64, u64) {
        let l = r.scenario().into_iter().find(|l| l.starts_with(tag)).unwrap_or_else(|| panic!("no {tag}: {d}")).to_string();
        let num = |k: &str| -> f64 {
            let at = l.find(k).unwrap_or_else(|| panic!("no {k} in {l}")) + k.len();
            l[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
        };
        assert!(l.contains(&format!("\"domid\":{},", r.id(1))), "{l}");
        (num("\"uptime_ms\":"), num("dom0="), num("\"bytes_served\":") as u64)
    };
    let (a1, d1, b1) = status("status1 ");
    let (a2, d2, b2) = status("status2 ");
    assert!(((a2 - a1) - (d2 - d1)).abs() < 1500.0, "uptime advanced {} ms, dom0's {} ms: {d}", a2 - a1, d2 - d1);
    assert!(b1 >= 2 * (4 << 20) / 2 && b2 > b1, "bytes served {b1} then {b2}: {d}");
    assert!(r.has("concurrent ok=32"), "{d}");
    // A clean close on shutdown.
    assert!(g.iter().any(|l| l.starts_with("hvmlite: net: vif/0: closed (")), "{d}");
}

/// Ten create → first answer → shutdown or destroy cycles: each time the
/// vif leaves dom0 and xenstore, and nothing is left in `xl list`.
#[test]
fn net_create_destroy_cycles_leave_nothing_behind() {
    let s = scenario(
        r#"
i=0
while [ $i -lt 10 ]; do
    t0=$(up)
    xl create /etc/xen/net-echo-http.cfg "$VIF" >/dev/null 2>&1 || exit 20
    wait_answer 60 || exit 21
    t1=$(up)
    if [ $((i % 2)) -eq 0 ]; then xl shutdown -w net-echo-http >/dev/null || exit 22; else xl destroy net-echo-http || exit 22; fi
    wait_gone net-echo-http 30 || exit 23
    j=0; until no_vifs >/dev/null; do j=$((j + 1)); [ $j -le 50 ] || { no_vifs; exit 24; }; sleep 0.1; done
    echo "cycle $i answered-ms=$((t1 - t0)) cycle-ms=$(($(up) - t0))"
    i=$((i + 1))
done
echo "domains $(xl list | wc -l)"
echo "=== end"
"#,
    );
    let r = xen_host::run("net-cycles", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let cycles: Vec<&str> = r.scenario().into_iter().filter(|l| l.starts_with("cycle ")).collect();
    assert_eq!(cycles.len(), 10, "{d}");
    // The header, Domain-0 and, with one, the xenstore domain.
    assert!(r.has(&format!("domains {}", 2 + r.shift)), "only Domain-0 and the header left: {d}");
    for c in &cycles {
        eprintln!("net: {c}");
    }
}

/// A backend that corrupts the shared ring (tests/xen-host/ringpoke.c maps
/// the vif's TX ring through gntdev beside netback and writes an
/// impossible response index): the app stops with one FATAL line naming
/// the ring and the index, the crash shutdown, and after `xl destroy`
/// nothing of the vif is left.
#[test]
fn net_hostile_backend_is_one_fatal_line() {
    let s = scenario(
        r#"
xl create /etc/xen/net-echo-http.cfg "$VIF" || exit 30
wait_answer 60 || exit 31
d=$(xl domid net-echo-http)
echo "=== tx rsp_prod"
/usr/bin/ringpoke -g $d $(xenstore-read /local/domain/$d/device/vif/0/tx-ring-ref) 8=0x40000000 || exit 32
ping -c 1 -W 2 $IP >/dev/null
wait_state net-echo-http c 30 || exit 33
echo "victim state $(xl_state net-echo-http)"
xl destroy net-echo-http
wait_gone net-echo-http 30 || exit 34
j=0; until no_vifs >/dev/null; do j=$((j + 1)); [ $j -le 50 ] || { no_vifs; exit 35; }; sleep 0.1; done
echo "=== end"
"#,
    );
    let r = xen_host::run("net-hostile", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    let fatal: Vec<&&str> = g.iter().filter(|l| l.starts_with("hvmlite: FATAL: ")).collect();
    assert_eq!(fatal.len(), 1, "{d}");
    assert!(fatal[0].starts_with("hvmlite: FATAL: net: vif/0: backend's tx response index 0x40000000 "), "{d}");
    assert!(g.contains(&"hvmlite: shutdown: crash"), "{d}");
}

/// Several vifs, each with its own netfront and stack; the address from
/// the command line when the vif has none; and from a DHCP server when
/// neither gives one.
#[test]
fn net_two_vifs_and_addresses_from_the_command_line_and_dhcp() {
    let s = scenario(
        r#"
echo "=== two vifs"
# Each vif's buffers and sockets take about 1 MiB: two need more than the
# config's 4 MiB.
xl create /etc/xen/net-echo-http.cfg memory=8 "vif=['bridge=xenbr0,ip=192.168.77.2,script=vif-sh','bridge=xenbr0,ip=192.168.77.4,script=vif-sh']" || exit 40
wait_answer 60 || exit 41
for a in 192.168.77.2 192.168.77.4; do
    echo "vif $a $(printf 'GET /status HTTP/1.0\r\n\r\n' | timeout 20 nc -w 2 $a 80 | tail -n 1)"
done
xl shutdown -w net-echo-http >/dev/null || exit 42
wait_gone net-echo-http 30 || exit 43
j=0; until no_vifs >/dev/null; do j=$((j + 1)); [ $j -le 50 ] || { no_vifs; exit 44; }; sleep 0.1; done
echo "=== hvmlite.ip"
xl create /etc/xen/net-echo-http.cfg "vif=['bridge=xenbr0,script=vif-sh']" 'cmdline="hvmlite.ip=192.168.77.5/24,192.168.77.1"' || exit 45
IP=192.168.77.5
wait_answer 60 || exit 46
echo "cmdline $(get /status | tail -n 1)"
xl destroy net-echo-http
wait_gone net-echo-http 30 || exit 47
echo "=== dhcp"
# No ip= and no hvmlite.ip=: the address comes from a DHCP server on the
# bridge (busybox udhcpd).
printf 'start 192.168.77.100\nend 192.168.77.110\ninterface xenbr0\nlease_file /tmp/udhcpd.leases\noption subnet 255.255.255.0\noption router 192.168.77.1\n' > /tmp/udhcpd.conf
touch /tmp/udhcpd.leases
udhcpd /tmp/udhcpd.conf || exit 48
xl create /etc/xen/net-echo-http.cfg "vif=['bridge=xenbr0,script=vif-sh']" || exit 49
d=$(xl domid net-echo-http)
i=0; until ip=$(xenstore-read /local/domain/$d/data/net/0/ip 2>/dev/null); do i=$((i + 1)); [ $i -le 600 ] || exit 50; sleep 0.1; done
echo "lease $ip"
IP=$ip
wait_answer 60 || exit 51
echo "dhcp $(get /status | tail -n 1)"
xl destroy net-echo-http
echo "=== end"
"#,
    );
    let r = xen_host::run("net-vifs", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    assert!(r.scenario().iter().any(|l| l.starts_with("vif 192.168.77.2 {") && l.contains("\"ip\":\"192.168.77.2\"")), "{d}");
    assert!(r.scenario().iter().any(|l| l.starts_with("vif 192.168.77.4 {") && l.contains("\"ip\":\"192.168.77.4\"")), "{d}");
    let g = r.guest(1);
    assert!(g.iter().any(|l| l.starts_with("hvmlite: net: vif/1: mac ") && l.ends_with("address 192.168.77.4/24 (vif ip)")), "{d}");
    assert!(g.iter().filter(|l| l.contains(": closed (")).count() == 2, "both vifs closed on shutdown: {d}");
    assert!(r.scenario().iter().any(|l| l.starts_with("cmdline {") && l.contains("\"ip\":\"192.168.77.5\"")), "{d}");
    assert!(r.guest(2).iter().any(|l| l.ends_with("address 192.168.77.5/24 (hvmlite.ip)")), "{d}");
    // DHCP: a lease from the server's pool, announced in xenstore, served on.
    let lease = r.scenario().into_iter().find_map(|l| l.strip_prefix("lease 192.168.77.")).unwrap_or_else(|| panic!("no lease: {d}"));
    let host: u32 = lease.trim().parse().unwrap_or_else(|_| panic!("lease {lease}: {d}"));
    assert!((100..=110).contains(&host), "lease outside the pool: {d}");
    let ip = format!("192.168.77.{host}");
    assert!(r.scenario().iter().any(|l| l.starts_with("dhcp {") && l.contains(&format!("\"ip\":\"{ip}\""))), "{d}");
    assert!(r.guest(3).iter().any(|l| l.ends_with(&format!("address {ip}/24 (dhcp)"))), "{d}");
}
