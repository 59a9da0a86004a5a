//! `make bench` (suspend part): the downtime a client of the network
//! stubdomain sees across `xl save` + `xl restore` and across `xl migrate`
//! (to the same host), against a Linux PVH domU serving the same, on the
//! test Xen host (Xen 4.17 in QEMU/TCG, Debian's Linux 6.1 as dom0).
//!
//! - **hvmlite**: `examples/net-echo-http` (`xen/net-echo-http.cfg`, 4 MiB);
//! - **Linux**: Debian's bzImage as a PVH domU with busybox `nc -ll -p 7 -e
//!   cat` and `httpd` (`tests/common/linux.rs`, `net_domu`), 128 MiB.
//!
//! `BENCH_RUNS` rounds (default 3), the two alternating which goes first.
//! For each: `xl create`, first answer; then `tests/xen-host/downtime.c`
//! probes the echo port from dom0 (a new connection every 10 ms, 100 ms to
//! connect and 100 ms for the answer) while dom0 runs `xl save` to a file
//! in its RAM and `xl restore`; the longest time the probe saw no answer is
//! the downtime. The same across `xl migrate -s "" NAME "xl
//! migrate-receive"`. Also printed: how long `xl save`, `xl restore` and
//! `xl migrate` took and the size of the saved image. Not a test: it
//! prints the rounds and a table (docs/lifecycle.md keeps them).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/linux.rs"]
mod linux_support;

use common::xen_host::{self, Scenario};
use common::*;
use linux_support::net_domu;
use std::time::Duration;

const SCRIPT: &str = r#". /usr/share/xen-host/lib.sh
net_backend || exit 90
up() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
get() { printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 nc -w 1 $1 80 2>/dev/null; }
answers() {
    i=0
    until get $1 | grep -q '200 OK'; do
        i=$((i + 1)); [ $i -le 600 ] || return 1
        sleep 0.1
    done
}
# probe IP: the downtime probe in the background, a second of answers first
probe() { /usr/bin/downtime $1 7 > /tmp/dt & dt=$!; sleep 1; }
# probed IP: once it answers again, a second more, then the probe's line;
# status 2: the probe died (printed nothing), and the round does not count
probed() { answers $1 || return 1; sleep 1; kill -TERM $dt; wait $dt; grep . /tmp/dt || return 2; }
# lost STATUS: what a failed `probed` means
lost() { if [ $1 = 2 ]; then echo "the downtime probe died"; else echo "no answer"; fi; }
xl info >/dev/null; xl list >/dev/null
# The saved images go to a tmpfs of their own: the root one is limited to
# half of dom0's memory, which a 128 MiB domain's image and the rest of
# the initramfs do not fit in.
mkdir -p /save && mount -t tmpfs -o size=75% tmpfs /save || exit 91
# fail WHO WHAT NAME: say so with xl's last words, and clean up
fail() { echo "bench-fail $1 $2"; tail -n 3 /tmp/xl.log | sed "s/^/bench-why $1 /"; xl destroy $3 >/dev/null 2>&1; wait_gone $3 30; rm -f /save/b.save; return 1; }
# one WHO NAME IP ROUND
one() {
    ip neigh flush dev xenbr0 >/dev/null 2>&1
    xl create /etc/xen/$2.cfg >/tmp/xl.log 2>&1 || { fail $1 create $2; return 1; }
    answers $3 || { fail $1 "no first answer" $2; return 1; }
    sleep 1
    probe $3
    t0=$(up); xl save $2 /save/b.save >/tmp/xl.log 2>&1 || { kill $dt; fail $1 save $2; return 1; }
    t1=$(up); xl restore /save/b.save >/tmp/xl.log 2>&1 || { kill $dt; fail $1 restore $2; return 1; }
    t2=$(up); size=$(wc -c < /save/b.save); rm -f /save/b.save
    l=$(probed $3) || { st=$?; kill $dt 2>/dev/null; fail $1 "$(lost $st) after the restore" $2; return 1; }
    echo "bench $1 round=$4 op=save save=$((t1 - t0)) restore=$((t2 - t1)) image=$size $l"
    probe $3
    t0=$(up); xl migrate -s "" $2 "xl migrate-receive" >/tmp/xl.log 2>&1 || { kill $dt; fail $1 migrate $2; return 1; }
    t1=$(up)
    l=$(probed $3) || { st=$?; kill $dt 2>/dev/null; fail $1 "$(lost $st) after the migration" $2; return 1; }
    echo "bench $1 round=$4 op=migrate migrate=$((t1 - t0)) $l"
    xl destroy $2
    wait_gone $2 30
}
r=0
while [ $r -lt RUNS ]; do
    if [ $((r % 2)) = 0 ]; then order="hvmlite linux"; else order="linux hvmlite"; fi
    for w in $order; do
        case $w in
        hvmlite) one hvmlite net-echo-http 192.168.77.2 $r ;;
        linux) one linux linux-net 192.168.77.3 $r ;;
        esac
    done
    r=$((r + 1))
done
echo "=== end"
"#;

fn num(l: &str, k: &str) -> Option<f64> {
    l.split(' ').find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let (vmlinuz, initrd) = net_domu("suspend-bench", "192.168.77.3/24");
    let hv_cfg = std::fs::read_to_string(root().join("xen/net-echo-http.cfg"))
        .unwrap()
        .replace("vif = [ \"bridge=xenbr0,ip=192.168.77.2\" ]", "vif = [ \"bridge=xenbr0,ip=192.168.77.2,script=vif-sh\" ]");
    assert!(hv_cfg.contains("script=vif-sh"), "xen/net-echo-http.cfg's vif line changed: {hv_cfg}");
    let linux_cfg = "name = \"linux-net\"\ntype = \"pvh\"\nkernel = \"/scenario/vmlinuz\"\nramdisk = \"/scenario/linux-net.cpio\"\n\
                     cmdline = \"console=hvc0 quiet\"\nmemory = 128\nvcpus = 1\n\
                     vif = [ \"bridge=xenbr0,script=vif-sh\" ]\non_poweroff = \"destroy\"\non_crash = \"preserve\"\n";
    let s = Scenario::new(&SCRIPT.replace("RUNS", &runs.to_string()))
        .config("net-echo-http.cfg", &hv_cfg)
        .config("linux-net.cfg", linux_cfg)
        .file_from("/usr/lib/hvmlite/net-echo-http.elf", &example("net-echo-http"))
        .file_from("/scenario/vmlinuz", &vmlinuz)
        .file_from("/scenario/linux-net.cpio", &initrd)
        .program_from("/usr/bin/downtime", &xen_host::dom0_tool("downtime"));
    let r = xen_host::run("suspend-bench", &s, Duration::from_secs(600 + 300 * runs as u64));
    let lines: Vec<&str> = r.scenario().into_iter().filter(|l| l.starts_with("bench")).collect();
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(r.rc, Some(0), "{}", r.dump());
    let of = |w: &str, op: &str| -> Vec<&str> {
        lines.iter().copied().filter(|l| l.starts_with(&format!("bench {w} ")) && l.contains(&format!(" op={op} "))).collect()
    };
    let med = |w: &str, op: &str, k: &str| median(of(w, op).iter().filter_map(|l| num(l, k)).collect());

    println!();
    println!("| median of {runs} | hvmlite net-echo-http (4 MiB) | Linux PVH domU (128 MiB) | Linux ÷ hvmlite |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |name: &str, op: &str, k: &str, unit: f64, fmt: &dyn Fn(f64) -> String| {
        let (h, l) = (med("hvmlite", op, k) / unit, med("linux", op, k) / unit);
        println!("| {name} | {} | {} | {:.2}× |", fmt(h), fmt(l), l / h);
    };
    let s = |v: f64| format!("{v:.2} s");
    row("downtime across `xl save` + `xl restore` (no answer, client's view)", "save", "ms=", 1000.0, &s);
    row("downtime across `xl migrate` (same host)", "migrate", "ms=", 1000.0, &s);
    row("`xl save`", "save", "save=", 1000.0, &s);
    row("`xl restore`", "save", "restore=", 1000.0, &s);
    row("`xl migrate`", "migrate", "migrate=", 1000.0, &s);
    row("saved image", "save", "image=", 1048576.0, &|v| format!("{v:.1} MiB"));
    let complete = ["hvmlite", "linux"].iter().all(|w| of(w, "save").len() == runs && of(w, "migrate").len() == runs);
    println!();
    println!("all rounds complete: {complete}");
}
