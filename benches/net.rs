//! `make bench` (net part): the network stubdomain against a Linux PVH
//! domU doing the same job, on the test Xen host (Xen 4.17 in QEMU/TCG,
//! Debian's Linux 6.1 as dom0 with netback and a bridge).
//!
//! - hvmlite: `examples/net-echo-http` (`xen/net-echo-http.cfg`), TCP echo
//!   on 7 and HTTP on 80;
//! - Linux: Debian's bzImage as `kernel =` of a PVH domU, an initramfs of
//!   busybox-static and `xen-netfront.ko` from the same package; `/init`
//!   brings eth0 up and runs `nc -ll -p 7 -e cat` and `httpd -p 80`.
//!
//! Interleaved, `BENCH_RUNS` rounds (default 3), from dom0: `xl create` →
//! first answered HTTP request; 4 MiB of random bytes through the echo
//! port (checked); 50 HTTP requests one after another (busybox nc, as a
//! client would); then the smallest `memory =` each still answers with.
//! Not a test: it prints a table (docs/network.md keeps one).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/linux.rs"]
mod linux_support;

use common::xen_host::{self, Scenario};
use common::*;
use linux_support::{busybox, cpio, kernel_module, linux};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Debian's bzImage and an initramfs for the Linux domU.
fn linux_domu() -> (PathBuf, PathBuf) {
    let dir = scratch("net-bench");
    let vmlinuz = linux().vmlinuz.clone();
    let netfront = kernel_module("drivers/net/xen-netfront.ko");
    let busybox = busybox();
    let init = br#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
insmod /xen-netfront.ko
ip link set lo up
i=0; until [ -e /sys/class/net/eth0 ]; do i=$((i + 1)); [ $i -le 100 ] || break; sleep 0.1; done
ip addr add 192.168.77.3/24 dev eth0
ip link set eth0 up
mkdir -p /www
head -c 700 /dev/zero | tr '\0' 'x' > /www/index.html
nc -ll -p 7 -e cat &
httpd -p 80 -h /www
echo "linux-net: ready" > /dev/hvc0
while :; do sleep 3600; done
"#;
    let cpio = cpio(&[
        ("bin", 0o40755, &[]),
        ("bin/busybox", 0o100755, &busybox),
        ("init", 0o100755, init),
        ("xen-netfront.ko", 0o100644, &netfront),
    ]);
    let initrd = dir.join("linux-net.cpio");
    std::fs::write(&initrd, cpio).unwrap();
    (vmlinuz, initrd)
}

fn app() -> PathBuf {
    let p =
        std::env::var_os("HVMLITE_EXAMPLES").map(PathBuf::from).unwrap_or_else(|| root().join("target/examples")).join("net-echo-http.elf");
    assert!(p.exists(), "{} is missing: run `make examples`", p.display());
    p
}

const SCRIPT: &str = r#". /usr/share/xen-host/lib.sh
net_backend || exit 90
up() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
head -c 4194304 /dev/urandom > /tmp/r
want=$(md5sum < /tmp/r | cut -c1-32)
# one WHO NAME IP MEM: create, first answer, echo, 50 requests, destroy
one() {
    t0=$(up)
    xl create /etc/xen/$2.cfg "memory=$4" >/dev/null 2>&1 || { echo "bench $1 mem=$4 create-failed"; return 1; }
    i=0
    until printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 nc -w 1 $3 80 2>/dev/null | grep -q '200 OK'; do
        i=$((i + 1))
        if [ $i -gt 600 ] || [ -n "$(xl_state $2 | grep c)" ] || ! xl domid $2 >/dev/null 2>&1; then
            echo "bench $1 mem=$4 no-answer"; xl destroy $2 2>/dev/null; return 1
        fi
        sleep 0.1
    done
    t1=$(up)
    if [ "$5" = full ]; then
        timeout 300 nc $3 7 < /tmp/r > /tmp/o; t2=$(up)
        got=$(md5sum < /tmp/o | cut -c1-32)
        n=0; while [ $n -lt 50 ]; do printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 nc $3 80 > /dev/null || break; n=$((n + 1)); done
        t3=$(up)
        echo "bench $1 mem=$4 first=$((t1 - t0)) echo=$((t2 - t1)) ok=$([ "$got" = "$want" ] && echo 1 || echo 0) http50=$((t3 - t2)) n=$n"
    else
        echo "bench $1 mem=$4 first=$((t1 - t0)) serves"
    fi
    xl destroy $2
    wait_gone $2 30
}
r=0
while [ $r -lt RUNS ]; do
    one hvmlite net-echo-http 192.168.77.2 4 full
    one linux linux-net 192.168.77.3 256 full
    r=$((r + 1))
done
for m in 3 2; do one hvmlite net-echo-http 192.168.77.2 $m small || break; done
for m in 128 64 48 32; do one linux linux-net 192.168.77.3 $m small || break; done
echo "=== end"
"#;

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let (vmlinuz, initrd) = linux_domu();
    let hv_cfg = std::fs::read_to_string(root().join("xen/net-echo-http.cfg"))
        .unwrap()
        .replace("vif = [ \"bridge=xenbr0,ip=192.168.77.2\" ]", "vif = [ \"bridge=xenbr0,ip=192.168.77.2,script=vif-sh\" ]");
    let linux_cfg = "name = \"linux-net\"\ntype = \"pvh\"\nkernel = \"/scenario/vmlinuz\"\nramdisk = \"/scenario/linux-net.cpio\"\n\
                     cmdline = \"console=hvc0 quiet\"\nmemory = 256\nvcpus = 1\n\
                     vif = [ \"bridge=xenbr0,script=vif-sh\" ]\non_poweroff = \"destroy\"\non_crash = \"preserve\"\n";
    let s = Scenario::new(&SCRIPT.replace("RUNS", &runs.to_string()))
        .config("net-echo-http.cfg", &hv_cfg)
        .config("linux-net.cfg", linux_cfg)
        .file_from("/usr/lib/hvmlite/net-echo-http.elf", &app())
        .file_from("/scenario/vmlinuz", Path::new(&vmlinuz))
        .file_from("/scenario/linux-net.cpio", &initrd);
    let r = xen_host::run("net-bench", &s, Duration::from_secs(1800));
    let lines: Vec<&str> = r.scenario().into_iter().filter(|l| l.starts_with("bench ")).collect();
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(r.rc, Some(0), "{}", r.dump());
    let field = |l: &str, k: &str| -> Option<f64> { l.split(' ').find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok()) };
    let median = |who: &str, k: &str| -> f64 {
        let mut v: Vec<f64> =
            lines.iter().filter(|l| l.starts_with(&format!("bench {who} ")) && l.contains(" echo=")).filter_map(|l| field(l, k)).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let smallest = |who: &str| -> String {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("bench {who} ")) && (l.ends_with(" serves") || l.contains(" echo=")))
            .filter_map(|l| field(l, "mem="))
            .fold(f64::INFINITY, f64::min)
            .to_string()
    };
    let ok = lines.iter().filter(|l| l.contains(" echo=")).all(|l| l.contains(" ok=1 ") && l.ends_with(" n=50"));
    println!();
    println!("| median of {runs} | hvmlite net-echo-http | Linux PVH domU (busybox nc + httpd) | ratio |");
    println!("| --- | --- | --- | --- |");
    let (hf, lf) = (median("hvmlite", "first="), median("linux", "first="));
    println!("| xl create → first answered request | {:.2} s | {:.2} s | {:.1}× sooner |", hf / 1000.0, lf / 1000.0, lf / hf);
    let (he, le) = (median("hvmlite", "echo="), median("linux", "echo="));
    println!("| TCP echo, 4 MiB each way | {:.2} MiB/s | {:.2} MiB/s | {:.2}× |", 4000.0 / he, 4000.0 / le, le / he);
    let (hh, lh) = (median("hvmlite", "http50="), median("linux", "http50="));
    println!("| HTTP requests/s (50, one at a time, busybox nc) | {:.1} | {:.1} | {:.2}× |", 50000.0 / hh, 50000.0 / lh, lh / hh);
    println!("| smallest `memory =` that serves (tried) | {} MiB | {} MiB | |", smallest("hvmlite"), smallest("linux"));
    println!("all echoes intact and all requests answered: {ok}");
}
