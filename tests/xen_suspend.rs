//! Suspend and resume of runtime apps on the real Xen host: `xl save` then
//! `xl restore` (a new domain, every binding gone), and `xl save -c` (the
//! suspend cancelled: the same domain runs on). What dom0 checks is what
//! an operator would: the app answers, what it published in xenstore is
//! there again, its clock goes on, and nothing is bound twice.

mod common;
use common::xen_host::{self, Scenario};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(400);

/// Rounds of `xl save` + `xl restore`.
const ROUNDS: u32 = 10;

/// dom0 helpers: `hs KEY` reads the app's `data/KEY`; `hello NAME` asks
/// the app and waits (5 s at most) for its answer.
const LIB: &str = r#". /usr/share/xen-host/lib.sh
hs() { xenstore-read /local/domain/$d/data/$1 2>/dev/null; }
hello() {
    xenstore-write /local/domain/$d/data/hello-request "$1"
    _i=0
    until [ "$(hs hello-response)" = "hello, $1" ]; do
        _i=$((_i + 1)); [ $_i -le 100 ] || { echo "no answer to $1 from $d"; return 1; }
        sleep 0.05
    done
}
# ports DOMID: how many event channels Xen has bound for the domain
# (debug key 'e' lists them on Xen's console, which `xl dmesg` reads).
ports() {
    xl debug-keys e
    xl dmesg -c | awk -v h="Event channel information for domain $1:" '
        index($0, h) { on = 1; next }
        on && /Event channel information for/ { on = 0 }
        on && / \[[0-9]\/[0-9]\/[0-9]/ { n++ }
        END { print n + 0 }'
}
"#;

#[test]
fn hello_stubdom_survives_save_restore_rounds_and_a_cancelled_suspend() {
    let cfg = std::fs::read_to_string(root().join("xen/hello-stubdom.cfg")).unwrap();
    let script = format!(
        r#"{LIB}
xl create /etc/xen/hello-stubdom.cfg || exit 10
d=$(xl domid hello-stubdom) || exit 11
i=0; until [ "$(hs hello)" = world ]; do i=$((i + 1)); [ $i -le 100 ] || exit 12; sleep 0.05; done
hello first || exit 13
echo "feature-suspend=$(xenstore-read /local/domain/$d/control/feature-suspend)"
xl dmesg -c >/dev/null
echo "=== cancelled"
before=$(ports $d)
xl save -c hello-stubdom /root/hs.save || exit 14
rm -f /root/hs.save
hello cancelled || exit 15
echo "cancelled: domain $(xl domid hello-stubdom) was $d ports $before -> $(ports $d)"
echo "=== rounds"
for r in $(seq {ROUNDS}); do
    xl save hello-stubdom /root/hs.save >/dev/null 2>&1 || {{ echo "save $r failed"; exit 20; }}
    xl restore /root/hs.save >/dev/null 2>&1 || {{ echo "restore $r failed"; exit 21; }}
    rm -f /root/hs.save
    old=$d; d=$(xl domid hello-stubdom) || exit 22
    hello round$r || exit 23
    echo "round $r: domain $d was $old hello=$(hs hello) feature-suspend=$(xenstore-read /local/domain/$d/control/feature-suspend) uptime=$(hs uptime)"
done
sleep 1.5
echo "last uptime=$(hs uptime)"
echo "last ports=$(ports $d)"
echo "=== shutdown"
xl shutdown -w hello-stubdom || exit 30
wait_gone hello-stubdom 30 || exit 31
echo "=== console"
cat /var/log/xen/console/guest-hello-stubdom.log
echo "=== end"
"#
    );
    let s =
        Scenario::new(&script).config("hello-stubdom.cfg", &cfg).file_from("/usr/lib/hvmlite/hello-stubdom.elf", &example("hello-stubdom"));
    let r = xen_host::run("suspend-hello", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let sc = r.scenario();
    assert!(sc.contains(&"feature-suspend=1"), "{d}");

    // The cancelled suspend: the same domain answers, with as many event
    // channels bound as before (nothing bound a second time).
    let c = r.section("=== cancelled");
    let line = c.iter().find(|l| l.starts_with("cancelled: ")).unwrap_or_else(|| panic!("{d}"));
    let w: Vec<&str> = line.split(' ').collect();
    assert_eq!(w[2], w[4], "a cancelled suspend keeps the domain: {line}");
    assert_eq!(w[6], w[8], "event channels before and after: {line}");
    assert!(w[6].parse::<u32>().unwrap() >= 2, "xenstore's and the console's at least: {line}");

    // Every round: a new domain, answering, its published node and
    // feature there again, its clock going on (never back).
    let rounds = r.section("=== rounds");
    let mut last = 0.0f64;
    for n in 1..=ROUNDS {
        let l = rounds.iter().find(|l| l.starts_with(&format!("round {n}: "))).unwrap_or_else(|| panic!("round {n}: {d}"));
        let w: Vec<&str> = l.split(' ').collect();
        assert_ne!(w[3], w[5], "{l}");
        assert_eq!(w[6], "hello=world", "{l}");
        assert_eq!(w[7], "feature-suspend=1", "{l}");
        let up: f64 = w[8].strip_prefix("uptime=").unwrap().parse().unwrap();
        assert!(up >= last, "uptime went back: {l}");
        last = up;
    }
    let end: f64 = sc.iter().find_map(|l| l.strip_prefix("last uptime=")).unwrap_or_else(|| panic!("{d}")).parse().unwrap();
    assert!(end > last, "the clock goes on after the last resume: {end} after {last}");
    // After ten resumes, as many event channels as before the first.
    assert!(sc.contains(&format!("last ports={}", w[6]).as_str()), "{d}");

    // What the app and the runtime said, on its console (one log across
    // the domains it became): each request answered once, each resume
    // and the cancel said once.
    let cons = r.section("=== console");
    let count = |s: &str| cons.iter().filter(|l| l.contains(s)).count();
    assert_eq!(count("hvmlite: rt: the suspend was cancelled"), 1, "{d}");
    assert_eq!(count("hvmlite: rt: resumed as domain "), ROUNDS as usize, "{d}");
    for name in ["first", "cancelled"].into_iter().map(String::from).chain((1..=ROUNDS).map(|n| format!("round{n}"))) {
        assert_eq!(cons.iter().filter(|l| l.ends_with(&format!("hvmlite: hello-stubdom: hello, {name}"))).count(), 1, "{name}: {d}");
    }
    assert!(!cons.iter().any(|l| l.contains("FATAL") || l.contains("warning")), "{d}");
}

/// dom0 helpers for net-echo-http: one TCP connection to its echo port,
/// kept open by a FIFO; `send FILE` writes FILE through it and waits (30 s
/// at most) until everything sent so far has come back.
const NET: &str = r#"
IP=192.168.77.2
VIF="vif=['bridge=xenbr0,ip=$IP,script=vif-sh']"
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | timeout 20 nc -w 2 $IP 80; }
wait_answer() {
    _i=0
    until get /status 2>/dev/null | grep -q '"domid"'; do
        _i=$((_i + 1)); [ $_i -le $(($1 * 10)) ] || { echo "no answer from $IP"; return 1; }
        sleep 0.1
    done
}
connect() {
    rm -f /tmp/in /tmp/out /tmp/sent; : > /tmp/sent
    mkfifo /tmp/in
    nc $IP 7 < /tmp/in > /tmp/out & nc_pid=$!
    exec 3>/tmp/in
}
send() {
    cat "$1" >> /tmp/sent
    cat "$1" >&3
    _want=$(wc -c < /tmp/sent); _i=0
    until [ "$(wc -c < /tmp/out)" -ge "$_want" ]; do
        _i=$((_i + 1)); [ $_i -le 300 ] || { echo "echo: $(wc -c < /tmp/out) of $_want bytes back"; return 1; }
        kill -0 $nc_pid 2>/dev/null || { echo "echo: the connection ended"; return 1; }
        sleep 0.1
    done
}
chunk() { head -c $2 /dev/urandom > /tmp/$1; }
"#;

#[test]
fn net_echo_http_keeps_a_tcp_connection_across_save_restore_migrate_and_a_cancel() {
    let cfg = std::fs::read_to_string(root().join("xen/net-echo-http.cfg")).unwrap();
    let script = format!(
        r#"{LIB}{NET}
net_backend || exit 90
xl create /etc/xen/net-echo-http.cfg "$VIF" || exit 10
wait_answer 60 || exit 11
d=$(xl domid net-echo-http)
connect
chunk c1 65536; send /tmp/c1 || exit 12
echo "=== cancelled"
xl save -c net-echo-http /root/ne.save >/dev/null 2>&1 || exit 13
rm -f /root/ne.save
chunk c2 65536; send /tmp/c2 || exit 14
echo "cancelled: domain $(xl domid net-echo-http) was $d"
echo "=== save"
xl save net-echo-http /root/ne.save >/dev/null 2>&1 || exit 20
xl restore /root/ne.save >/dev/null 2>&1 || exit 21
rm -f /root/ne.save
old=$d; d=$(xl domid net-echo-http) || exit 22
chunk c3 65536; send /tmp/c3 || exit 23
echo "restored: domain $d was $old"
echo "=== migrate"
xl migrate -s "" net-echo-http "xl migrate-receive" >/dev/null 2>&1 || exit 30
old=$d; d=$(xl domid net-echo-http) || exit 31
chunk c4 65536; send /tmp/c4 || exit 32
echo "migrated: domain $d was $old"
wait_answer 10 || exit 33
# Everything sent has come back: end the client (busybox nc waits for the
# server to close, which an echo server does not do on a half-close).
exec 3>&-
kill $nc_pid 2>/dev/null; wait $nc_pid
echo "stream sent=$(md5sum < /tmp/sent | cut -c1-32) got=$(md5sum < /tmp/out | cut -c1-32) bytes=$(wc -c < /tmp/out)"
echo "=== shutdown"
xl shutdown -w net-echo-http || exit 40
wait_gone net-echo-http 30 || exit 41
echo "=== console"
# After the migration, xenconsoled logs under the incoming domain's name.
cat /var/log/xen/console/guest-net-echo-http.log /var/log/xen/console/guest-net-echo-http--incoming.log
echo "=== end"
"#
    );
    let s =
        Scenario::new(&script).config("net-echo-http.cfg", &cfg).file_from("/usr/lib/hvmlite/net-echo-http.elf", &example("net-echo-http"));
    let r = xen_host::run("suspend-net", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let words = |tag: &str| -> Vec<String> {
        let l = r.scenario().into_iter().find(|l| l.starts_with(tag)).unwrap_or_else(|| panic!("no {tag}: {d}"));
        l.split(' ').map(String::from).collect()
    };
    let c = words("cancelled: ");
    assert_eq!(c[2], c[4], "a cancelled suspend keeps the domain: {d}");
    for tag in ["restored: ", "migrated: "] {
        let w = words(tag);
        assert_ne!(w[2], w[4], "{tag} a new domain: {d}");
    }
    // One connection, every byte back in order across all three.
    let s = words("stream ");
    assert_eq!(s[1].strip_prefix("sent="), s[2].strip_prefix("got="), "{d}");
    assert_eq!(s[3], format!("bytes={}", 4 * 65536), "{d}");
    let cons = r.section("=== console");
    let count = |s: &str| cons.iter().filter(|l| l.contains(s)).count();
    assert_eq!(count("hvmlite: rt: the suspend was cancelled"), 1, "{d}");
    assert_eq!(count("hvmlite: rt: resumed as domain "), 2, "{d}");
    assert_eq!(count("hvmlite: rt: vif/0: reconnected, address announced"), 2, "{d}");
    assert!(!cons.iter().any(|l| l.contains("FATAL") || l.contains("warning")), "{d}");
}

/// disk-log writing records in a loop, saved in the middle and restored:
/// every record acknowledged before the save is on the disk after it, in
/// order, whole; the loop goes on after the restore in the same blocks'
/// sequence.
#[test]
fn disk_log_saved_mid_write_loop_loses_and_tears_nothing() {
    let cfg = std::fs::read_to_string(root().join("xen/disk-log.cfg")).unwrap();
    let script = format!(
        r#"{LIB}
disk_backend || exit 9
dd if=/dev/zero of=/scenario/log.img bs=1M count=8 2>/dev/null || exit 8
dev=$(attach /scenario/log.img) || exit 8
xl create /etc/xen/disk-log.cfg 'kernel="/usr/lib/hvmlite/disk-log.elf"' 'cmdline="disk-log.loop"' "disk=['format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-sh, target=$dev']" || exit 10
d=$(xl domid disk-log) || exit 11
recs() {{ xenstore-read /local/domain/$d/data/records 2>/dev/null || echo 0; }}
i=0; until [ "$(recs)" -ge 40 ]; do i=$((i + 1)); [ $i -le 600 ] || exit 12; sleep 0.05; done
echo "=== save"
acked=$(recs)
xl save disk-log /root/dl.save >/dev/null 2>&1 || exit 13
xl restore /root/dl.save >/dev/null 2>&1 || exit 14
rm -f /root/dl.save
d=$(xl domid disk-log) || exit 15
i=0; until [ "$(recs)" -ge $((acked + 40)) ]; do i=$((i + 1)); [ $i -le 600 ] || {{ echo "records stuck at $(recs)"; exit 16; }}; sleep 0.05; done
echo "acked before the save: $acked"
echo "acked before the shutdown: $(recs)"
xl shutdown -w disk-log || exit 17
wait_gone disk-log 30
losetup -d $dev
echo "=== blocks"
# Block 1 is the boot's own record; records from block 2, each a block of
# one 32-byte line 16 times: line n of what follows is record (n-1)/16+1.
dd if=/scenario/log.img bs=512 skip=2 2>/dev/null | tr -d '\0' | awk '
    {{ k = int((NR - 1) / 16) + 1; sub(/ +$/, "")
       if ($0 != "disk-log 1 record " k) {{ bad++; if (bad <= 3) print "bad line " NR ": " $0 }} }}
    END {{ print "records=" NR / 16 " bad=" bad + 0 }}'
echo "=== console"
cat /var/log/xen/console/guest-disk-log.log
echo "=== end"
"#
    );
    let s = Scenario::new(&script).config("disk-log.cfg", &cfg).file_from("/usr/lib/hvmlite/disk-log.elf", &example("disk-log"));
    let r = xen_host::run("suspend-disk-log", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let acked: u64 =
        r.scenario().into_iter().find_map(|l| l.strip_prefix("acked before the save: ")).unwrap_or_else(|| panic!("{d}")).parse().unwrap();
    // Every record in its block, whole, none missing between.
    let blocks = r.section("=== blocks");
    let sum = blocks.iter().find_map(|l| l.strip_prefix("records=")).unwrap_or_else(|| panic!("{d}"));
    let (n, bad) = sum.split_once(" bad=").unwrap();
    assert_eq!(bad, "0", "torn, misplaced or missing records: {d}");
    let written: u64 = n.parse().unwrap_or_else(|_| panic!("partial block: {sum}: {d}"));
    let last: u64 = r
        .scenario()
        .into_iter()
        .find_map(|l| l.strip_prefix("acked before the shutdown: "))
        .unwrap_or_else(|| panic!("{d}"))
        .parse()
        .unwrap();
    assert!(
        last >= acked + 40 && written >= last,
        "{written} records on the disk, {acked} acknowledged before the save, {last} before the shutdown: {d}"
    );
    let cons = r.section("=== console");
    assert!(cons.iter().any(|l| l.starts_with("hvmlite: rt: xvda: reconnected, ") && l.ends_with(" requests sent again")), "{d}");
    assert!(cons.iter().any(|l| l.contains("hvmlite: disk-log: xvda: shutdown asked; stopping the records")), "{d}");
    assert!(!cons.iter().any(|l| l.contains("FATAL") || l.contains("warning")), "{d}");
}
