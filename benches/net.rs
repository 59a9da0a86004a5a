//! `make bench` (net part): the network stubdomain against its own previous
//! version and against a Linux PVH domU doing the same job, on the test Xen
//! host (Xen 4.17 in QEMU/TCG, Debian's Linux 6.1 as dom0 with netback and a
//! bridge). Three contenders:
//!
//! - **async**: `examples/net-echo-http` as it is now, tasks on hvmlite's
//!   runtime (`$HVMLITE_EXAMPLES/net-echo-http.elf`, `xen/net-echo-http.cfg`),
//!   TCP echo on 7 and HTTP on 80;
//! - **poll**: the same app before the runtime, a hand-written poll loop,
//!   built here from the repository's history ([`POLL_LOOP`], the last
//!   commit before the runtime) in a `git worktree` under
//!   `target/bench-net-old/`, then squashed with the current tool as `make
//!   examples` does;
//! - **Linux**: Debian's bzImage as `kernel =` of a PVH domU, an initramfs of
//!   busybox-static and `xen-netfront.ko` from the same package; `/init`
//!   brings eth0 up and runs `nc -ll -p 7 -e cat` and `httpd -p 80`.
//!
//! `BENCH_RUNS` rounds (default 3), the three interleaved in each round and
//! their order rotated from round to round; from dom0, for each: `xl create`
//! → first answered HTTP request (`GET /`, polled every 0.1 s; no log line
//! is matched, so the two app versions are timed alike); the domain's and
//! dom0's CPU time (`xl list`) over 20 s of idling once it answers; 4 MiB
//! of random bytes through the echo port (checked); 50 HTTP requests one
//! after another (busybox nc, as a client would); 20 s of idling again,
//! after that load. Then the smallest `memory =` each still answers with
//! (2, 3, 4 MiB for the apps; 32 to 256 for Linux). dom0's neighbour table
//! is flushed before each `xl create`, so no one inherits a stale entry.
//! Before round 0, one untimed warm-up start of the poll-loop app (`xl
//! create`, first answer, `xl destroy`; printed as `bench-warm`): the
//! host's first domain start is 90–160 ms slower than the rest, and the
//! rotation would otherwise always charge it to the async app's round 0.
//! Not a test: it prints a table and the raw rounds (docs/network.md keeps
//! them).
//!
//! `NET_PROBE=1` runs, instead, the first-connection probe of the two apps:
//! `NET_PROBE_STARTS` starts of each (default 8), alternating, in two
//! ways: `xl create -p`, `xl unpause`, then `GET /status` every 20 ms
//! (busybox `nc -w 1`) until one is answered; and as the bench times it,
//! `xl create`, then `GET /` every 0.1 s. It prints each start's `xl
//! create` (and `xl unpause`) time, its failed tries (ms + how long the try
//! took, nc's status and message), and how many starts had their first
//! connection answered.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/linux.rs"]
mod linux_support;

use common::xen_host::{self, Scenario};
use common::*;
use linux_support::net_domu;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The last commit whose `net-echo-http` is the hand-written poll loop.
const POLL_LOOP: &str = "6820eb8";
/// Seconds of idling measured each time.
const IDLE_S: u32 = 20;

/// Today's app, as `make examples` squashed it.
fn app() -> PathBuf {
    let p =
        std::env::var_os("HVMLITE_EXAMPLES").map(PathBuf::from).unwrap_or_else(|| root().join("target/examples")).join("net-echo-http.elf");
    assert!(p.exists(), "{} is missing: run `make examples`", p.display());
    p
}

/// `git -C DIR ARGS`'s output, trimmed, when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The poll-loop app of [`POLL_LOOP`]: a detached worktree at
/// `target/bench-net-old/src` (kept while it is at that commit), built with
/// its own target directory, squashed with the current tool. Returns the
/// squashed image and the plain one.
fn poll_loop_app() -> (PathBuf, PathBuf) {
    let base = root().join("target/bench-net-old");
    let wt = base.join("src");
    let commit = git(&root(), &["rev-parse", "--verify", &format!("{POLL_LOOP}^{{commit}}")])
        .unwrap_or_else(|| panic!("commit {POLL_LOOP} is not in this repository's history"));
    let is_worktree = git(&wt, &["rev-parse", "--show-toplevel"]).map(PathBuf::from) == Some(wt.clone());
    if !is_worktree || git(&wt, &["rev-parse", "HEAD"]).as_deref() != Some(commit.as_str()) {
        eprintln!("net bench: making the worktree {} at {POLL_LOOP}", wt.display());
        if is_worktree {
            let _ = Command::new("git").arg("-C").arg(root()).args(["worktree", "remove", "--force"]).arg(&wt).status();
        }
        let _ = std::fs::remove_dir_all(&wt);
        std::fs::create_dir_all(&base).unwrap();
        // -f: also when a worktree once registered there was deleted.
        let st = Command::new("git").arg("-C").arg(root()).args(["worktree", "add", "-f", "--detach"]).arg(&wt).arg(&commit).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "git worktree add {} {commit} failed", wt.display());
    }
    let target = base.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "--target", "x86_64-unknown-none", "-p", "net-echo-http"])
        .current_dir(&wt)
        .env("CARGO_TARGET_DIR", &target)
        .status();
    assert!(st.map(|s| s.success()).unwrap_or(false), "building net-echo-http at {POLL_LOOP} failed");
    let plain = target.join("x86_64-unknown-none/release/net-echo-http");
    let squashed = base.join(format!("net-echo-http-{POLL_LOOP}.elf"));
    let st = Command::new(tool()).arg("squash").arg(&plain).arg("-o").arg(&squashed).stdout(std::process::Stdio::null()).status();
    assert!(st.map(|s| s.success()).unwrap_or(false), "hvmlite squash {} failed", plain.display());
    (squashed, plain)
}

const SCRIPT: &str = r#". /usr/share/xen-host/lib.sh
net_backend || exit 90
up() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
cpu() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $6 }'; }
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$2" | timeout 5 nc -w 1 $1 80 2>/dev/null; }
head -c 4194304 /dev/urandom > /tmp/r
want=$(md5sum < /tmp/r | cut -c1-32)
xl info >/dev/null; xl list >/dev/null
# idle NAME: IDLE_S s of nothing; WALL_MS:CPU0:CPU1:DOM0_0:DOM0_1 (xl list's Time(s))
idle() {
    t0=$(up); c0=$(cpu $1); d0=$(cpu Domain-0)
    sleep IDLE_S
    t1=$(up); c1=$(cpu $1); d1=$(cpu Domain-0)
    echo "$((t1 - t0)):$c0:$c1:$d0:$d1"
}
# echo4 IP: 4 MiB through the echo port; MS OK
echo4() {
    e0=$(up); timeout 300 nc $1 7 < /tmp/r > /tmp/o; e1=$(up)
    got=$(md5sum < /tmp/o | cut -c1-32)
    echo "$((e1 - e0)) $([ "$got" = "$want" ] && echo 1 || echo 0)"
}
# one WHO NAME IP MEM full|small ROUND: create, first answer, then (full)
# idle, echo, 50 requests, idle, or (small) one echo; destroy
one() {
    ip neigh flush dev xenbr0 >/dev/null 2>&1
    t0=$(up)
    xl create /etc/xen/$2.cfg "memory=$4" >/dev/null 2>&1 || { echo "bench-mem $1 mem=$4 create-failed"; return 1; }
    i=0
    until get $3 / | grep -q '200 OK'; do
        i=$((i + 1))
        if [ $i -gt 600 ] || [ -n "$(xl_state $2 | grep c)" ] || ! xl domid $2 >/dev/null 2>&1; then
            echo "bench-mem $1 mem=$4 no-answer state=$(xl_state $2)"
            id=$(xl domid $2 2>/dev/null)
            xl dmesg | grep "(d$id)" | tail -n 3 | sed "s/^/bench-why $1 mem=$4 /"
            xl destroy $2 2>/dev/null; wait_gone $2 30; return 1
        fi
        sleep 0.1
    done
    t1=$(up)
    if [ "$5" = full ]; then
        sleep 1
        a=$(idle $2)
        set -- "$@" $(echo4 $3)
        h0=$(up)
        n=0; while [ $n -lt 50 ]; do printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 nc $3 80 > /dev/null || break; n=$((n + 1)); done
        h1=$(up)
        sleep 1
        b=$(idle $2)
        echo "bench $1 round=$6 mem=$4 first=$((t1 - t0)) tries=$i idle=$a echo=$7 ok=$8 http50=$((h1 - h0)) n=$n idle2=$b"
        [ $1 = linux ] || echo "bench-status $1 round=$6 $(get $3 /status | tail -n 1)"
    else
        set -- "$@" $(echo4 $3)
        echo "bench-mem $1 mem=$4 first=$((t1 - t0)) serves echo=$6 ok=$7"
    fi
    xl destroy $2
    wait_gone $2 30
}
async() { one async net-echo-http 192.168.77.2 $1 $2 $3; }
poll() { one poll net-echo-old 192.168.77.4 $1 $2 $3; }
linux() { one linux linux-net 192.168.77.3 $1 $2 $3; }
# warm-up, untimed: the host's first domain start is 90-160 ms slower than
# the rest, so a poll-loop start pays it before round 0, not a contender
warm() {
    ip neigh flush dev xenbr0 >/dev/null 2>&1
    t0=$(up)
    xl create /etc/xen/net-echo-old.cfg >/dev/null 2>&1 || { echo "bench-warm create-failed"; return 0; }
    i=0
    until get 192.168.77.4 / | grep -q '200 OK'; do i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.1; done
    echo "bench-warm poll first=$(($(up) - t0)) tries=$i"
    xl destroy net-echo-old
    wait_gone net-echo-old 30
}
warm
r=0
while [ $r -lt RUNS ]; do
    case $((r % 3)) in
    0) order="async poll linux" ;;
    1) order="poll linux async" ;;
    *) order="linux async poll" ;;
    esac
    for w in $order; do
        if [ $w = linux ]; then $w 256 full $r; else $w 4 full $r; fi
    done
    r=$((r + 1))
done
for m in 3 2; do async $m small || break; done
for m in 3 2; do poll $m small || break; done
for m in 128 64 48 32; do linux $m small || break; done
echo "=== end"
"#;

const PROBE: &str = r#". /usr/share/xen-host/lib.sh
net_backend || exit 90
up() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
xl info >/dev/null; xl list >/dev/null
# probe WHO NAME IP K MODE: `paused`: xl create -p, xl unpause, GET /status
# every 20 ms until it is answered (times from the unpause's return);
# `plain`: as the bench times it, xl create, GET / every 0.1 s (times from
# xl create's return). The failed tries as START+TOOK:rcRC:MESSAGE.
probe() {
    ip neigh flush dev xenbr0 >/dev/null 2>&1
    if [ $5 = paused ]; then p=-p; path=/status; gap=0.02; else p=; path=/; gap=0.1; fi
    c0=$(up)
    xl create $p /etc/xen/$2.cfg >/dev/null 2>&1 || { echo "probe $1 $5 k=$4 create-failed"; return 1; }
    c1=$(up)
    [ $5 = paused ] && xl unpause $2
    t0=$(up)
    i=0; fails=""
    while :; do
        a=$(up)
        out=$(printf 'GET %s HTTP/1.0\r\n\r\n' $path | timeout 5 nc -w 1 $3 80 2>&1); rc=$?
        b=$(up)
        echo "$out" | grep -q '200 OK' && break
        why=$(echo "$out" | head -n 1 | cut -c1-60 | tr ' ' _)
        fails="$fails $((a - t0))+$((b - a)):rc$rc:${why:-nothing}"
        i=$((i + 1))
        if [ $i -ge 300 ]; then
            echo "probe $1 $5 k=$4 no-answer tries=$i [$fails ]"
            xl destroy $2; wait_gone $2 30; return 1
        fi
        sleep $gap
    done
    g=$(get_up $3)
    echo "probe $1 $5 k=$4 create=$((c1 - c0)) unpause=$((t0 - c1)) answer=$((b - t0)) sent=$((a - t0)) took=$((b - a)) guest-uptime=${g:-?} tries=$i [$fails ] neigh=$(ip neigh show $3 dev xenbr0 | tr ' ' _)"
    xl destroy $2
    wait_gone $2 30
}
# get_up IP: the app's uptime_ms, from /status
get_up() { printf 'GET /status HTTP/1.0\r\n\r\n' | timeout 5 nc -w 1 $1 80 2>/dev/null | tail -n 1 | sed -n 's/.*"uptime_ms":\([0-9]*\).*/\1/p'; }
for mode in paused plain; do
    k=0
    while [ $k -lt STARTS ]; do
        if [ $((k % 2)) = 0 ]; then
            probe async net-echo-http 192.168.77.2 $k $mode; probe poll net-echo-old 192.168.77.4 $k $mode
        else
            probe poll net-echo-old 192.168.77.4 $k $mode; probe async net-echo-http 192.168.77.2 $k $mode
        fi
        k=$((k + 1))
    done
done
echo "=== end"
"#;

/// `NET_PROBE=1`: the first-connection probe of the two apps (no Linux).
fn probe(new: &Path, old: &Path, hv_cfg: &str, old_cfg: &str) {
    let starts: usize = std::env::var("NET_PROBE_STARTS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let s = Scenario::new(&PROBE.replace("STARTS", &starts.to_string()))
        .config("net-echo-http.cfg", hv_cfg)
        .config("net-echo-old.cfg", old_cfg)
        .file_from("/usr/lib/hvmlite/net-echo-http.elf", new)
        .file_from("/usr/lib/hvmlite/net-echo-old.elf", old);
    let r = xen_host::run("net-probe", &s, Duration::from_secs(300 + 60 * starts as u64));
    let lines: Vec<&str> = r.scenario().into_iter().filter(|l| l.starts_with("probe ")).collect();
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(r.rc, Some(0), "{}", r.dump());
    println!();
    for mode in ["paused", "plain"] {
        for w in ["async", "poll"] {
            let mine: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(&format!("probe {w} {mode} "))).collect();
            let first = mine.iter().filter(|l| l.contains(" tries=0 ")).count();
            let mut ms: Vec<f64> = mine.iter().filter_map(|l| num(l, "answer=")).collect();
            ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let create = median(mine.iter().filter_map(|l| num(l, "create=")).collect());
            let since = if mode == "paused" { "the unpause" } else { "`xl create` returned" };
            println!(
                "{mode} {w}: first connection answered in {first} of {} starts; answered {} ms after {since} (sorted), median {:.0} ms; `xl create` median {create:.0} ms",
                mine.len(),
                ms.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", "),
                median(ms.clone())
            );
        }
    }
}

/// `k=V` in a line, as text.
fn raw<'a>(l: &'a str, k: &str) -> Option<&'a str> {
    l.split(' ').find_map(|w| w.strip_prefix(k))
}

/// `k=V` in a line, as a number.
fn num(l: &str, k: &str) -> Option<f64> {
    raw(l, k).and_then(|v| v.parse().ok())
}

/// An idle field `WALL_MS:CPU0:CPU1:DOM0_0:DOM0_1`: (wall s, domain's CPU s, dom0's CPU s).
fn idle(l: &str, k: &str) -> Option<(f64, f64, f64)> {
    let v: Vec<f64> = raw(l, k)?.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    (v.len() == 5).then(|| (v[0] / 1000.0, v[2] - v[1], v[4] - v[3]))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn size(p: &Path) -> String {
    std::fs::metadata(p).map(|m| thousands(m.len())).unwrap_or_else(|_| String::from("?"))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let (vmlinuz, initrd) = net_domu("net-bench", "192.168.77.3/24");
    let (old, old_plain) = poll_loop_app();
    let new = app();
    let new_plain = root().join("target/x86_64-unknown-none/release/net-echo-http");
    let hv_cfg = std::fs::read_to_string(root().join("xen/net-echo-http.cfg"))
        .unwrap()
        .replace("vif = [ \"bridge=xenbr0,ip=192.168.77.2\" ]", "vif = [ \"bridge=xenbr0,ip=192.168.77.2,script=vif-sh\" ]");
    assert!(hv_cfg.contains("script=vif-sh"), "xen/net-echo-http.cfg's vif line changed: {hv_cfg}");
    let old_cfg = hv_cfg
        .replace("name = \"net-echo-http\"", "name = \"net-echo-old\"")
        .replace("/usr/lib/hvmlite/net-echo-http.elf", "/usr/lib/hvmlite/net-echo-old.elf")
        .replace("ip=192.168.77.2", "ip=192.168.77.4");
    assert!(old_cfg.contains("net-echo-old.elf") && old_cfg.contains("name = \"net-echo-old\""), "{old_cfg}");
    if std::env::var("NET_PROBE").is_ok_and(|v| v == "1") {
        return probe(&new, &old, &hv_cfg, &old_cfg);
    }
    let linux_cfg = "name = \"linux-net\"\ntype = \"pvh\"\nkernel = \"/scenario/vmlinuz\"\nramdisk = \"/scenario/linux-net.cpio\"\n\
                     cmdline = \"console=hvc0 quiet\"\nmemory = 256\nvcpus = 1\n\
                     vif = [ \"bridge=xenbr0,script=vif-sh\" ]\non_poweroff = \"destroy\"\non_crash = \"preserve\"\n";
    let script = SCRIPT.replace("RUNS", &runs.to_string()).replace("IDLE_S", &IDLE_S.to_string());
    let s = Scenario::new(&script)
        .config("net-echo-http.cfg", &hv_cfg)
        .config("net-echo-old.cfg", &old_cfg)
        .config("linux-net.cfg", linux_cfg)
        .file_from("/usr/lib/hvmlite/net-echo-http.elf", &new)
        .file_from("/usr/lib/hvmlite/net-echo-old.elf", &old)
        .file_from("/scenario/vmlinuz", Path::new(&vmlinuz))
        .file_from("/scenario/linux-net.cpio", &initrd);
    // Sizes now: `make` may rebuild the images while the host runs.
    let sizes = format!(
        "{} ({}) bytes | {} ({}) bytes | {} bzImage + {} initramfs",
        size(&new),
        size(&new_plain),
        size(&old),
        size(&old_plain),
        size(&vmlinuz),
        size(&initrd)
    );
    let r = xen_host::run("net-bench", &s, Duration::from_secs(900 + 600 * runs as u64));
    let lines: Vec<&str> = r.scenario().into_iter().filter(|l| l.starts_with("bench")).collect();
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(r.rc, Some(0), "{}", r.dump());

    let who = ["async", "poll", "linux"];
    let full = |w: &str| -> Vec<&str> { lines.iter().copied().filter(|l| l.starts_with(&format!("bench {w} "))).collect() };
    let med = |w: &str, k: &str| median(full(w).iter().filter_map(|l| num(l, k)).collect());
    let med_idle = |w: &str, k: &str, dom0: bool| {
        let v: Vec<(f64, f64, f64)> = full(w).iter().filter_map(|l| idle(l, k)).collect();
        (median(v.iter().map(|x| if dom0 { x.2 } else { x.1 }).collect()), median(v.iter().map(|x| x.0).collect()))
    };
    let smallest = |w: &str| -> f64 {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("bench {w} ")) || (l.starts_with(&format!("bench-mem {w} ")) && l.contains(" serves")))
            .filter_map(|l| num(l, "mem="))
            .fold(f64::INFINITY, f64::min)
    };
    let tried = |w: &str| -> String {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("bench-mem {w} ")) && !l.contains(" serves"))
            .filter_map(|l| Some(format!("{} MiB: {}", raw(l, "mem=")?, l.split(' ').nth(3)?)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ok = lines.iter().filter(|l| l.starts_with("bench ")).all(|l| l.contains(" ok=1 ") && l.contains(" n=50 "));
    let all_rounds = who.iter().all(|w| full(w).len() == runs);

    println!();
    println!("Rounds (ms; idle: the domain's CPU s over the wall s, dom0's CPU s in brackets):");
    println!();
    println!("| round | contender | first answer | echo 4 MiB | 50 requests | idle once ready | idle after the load |");
    println!("| ---: | --- | ---: | ---: | ---: | --- | --- |");
    for l in lines.iter().filter(|l| l.starts_with("bench ")) {
        let i = |k| idle(l, k).map(|(w, c, d)| format!("{c:.1} / {w:.1} ({d:.1})")).unwrap_or_default();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            raw(l, "round=").unwrap_or("?"),
            l.split(' ').nth(1).unwrap_or("?"),
            raw(l, "first=").unwrap_or("?"),
            raw(l, "echo=").unwrap_or("?"),
            raw(l, "http50=").unwrap_or("?"),
            i("idle="),
            i("idle2=")
        );
    }

    println!();
    println!("| median of {runs} | hvmlite async (now) | hvmlite poll loop ({POLL_LOOP}) | Linux PVH domU (busybox nc + httpd) | async vs poll loop (> 1: async better) | async vs Linux (> 1: async better) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    // Ratios read "how many times better async is" (> 1: async better).
    let row = |name: &str, f: &dyn Fn(&str) -> f64, fmt: &dyn Fn(f64) -> String, lower_better: bool| {
        let (a, p, l) = (f("async"), f("poll"), f("linux"));
        let ratio = |o: f64| if lower_better { o / a } else { a / o };
        println!("| {name} | {} | {} | {} | {:.2}× | {:.2}× |", fmt(a), fmt(p), fmt(l), ratio(p), ratio(l));
    };
    row("xl create → first answered request", &|w| med(w, "first=") / 1000.0, &|v| format!("{v:.2} s"), true);
    row("TCP echo, 4 MiB each way (md5 checked)", &|w| 4000.0 / med(w, "echo="), &|v| format!("{v:.2} MiB/s"), false);
    row("HTTP requests/s (50, one at a time, busybox nc)", &|w| 50000.0 / med(w, "http50="), &|v| format!("{v:.1}"), false);
    println!(
        "| smallest `memory =` that serves (tried: 2, 3, 4 MiB; Linux 32 to 256) | {} MiB | {} MiB | {} MiB | | |",
        smallest("async"),
        smallest("poll"),
        smallest("linux")
    );
    for (k, what) in [("idle=", "once ready"), ("idle2=", "after the load")] {
        let cell = |w: &str, dom0: bool| {
            let (c, wall) = med_idle(w, k, dom0);
            format!("{c:.1} s ({:.2} %)", 100.0 * c / wall)
        };
        println!(
            "| idle {IDLE_S} s {what}: the domain's CPU (`xl list`, 0.1 s steps) | {} | {} | {} | | |",
            cell("async", false),
            cell("poll", false),
            cell("linux", false)
        );
        println!(
            "| idle {IDLE_S} s {what}: dom0's CPU meanwhile | {} | {} | {} | | |",
            cell("async", true),
            cell("poll", true),
            cell("linux", true)
        );
    }
    println!("| image, squashed (plain) | {sizes} | | |");
    println!();
    for w in who {
        let t = tried(w);
        if !t.is_empty() {
            println!("{w}: below the smallest: {t}");
        }
    }
    println!("all rounds complete: {all_rounds}; all echoes intact and all requests answered: {ok}");
}
