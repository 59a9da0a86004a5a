//! `make bench` (xenstored part): hvmlite's xenstore domain
//! (`apps/xenstored`, started by `init-xenstore-domain` with 4 MiB) against
//! Xen's C `xenstored` and `oxenstored` in dom0, on the test Xen host (Xen
//! 4.17 in QEMU/TCG, Debian's Linux 6.1 dom0). Who serves xenstore is
//! chosen when the host starts, so each round boots the host three times,
//! once a server, their order rotated from round to round (`BENCH_RUNS`
//! rounds, default 3). In each boot, from dom0:
//!
//! - `test-xenstore`: Xen's own test program, every test, timed;
//! - 1,000 `xenstore-write`s, then 1,000 `xenstore-read`s of what was
//!   written (checked), a process each, as a shell loop does;
//! - `xl create` of `xen/hello-stubdom.cfg` → the guest ready (its
//!   `data/hello` reads `world`), three times, each destroyed after.
//!
//! Then the smallest `--memory` (MiB) with which the xenstore domain still
//! serves 20 hello-stubdom guests at once (each answers a request through
//! the store), from 1 MiB up. Not a test: it prints a table and the raw
//! lines (docs/xenstored.md keeps them).

#[path = "../tests/common/mod.rs"]
mod common;

use common::xen_host::{self, Scenario, Xenstore};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(900);

const SCRIPT: &str = r#". /usr/share/xen-host/lib.sh
up() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
xl info >/dev/null; xl list >/dev/null
t0=$(up); test-xenstore >/tmp/tx.out 2>&1; rc=$?; t1=$(up)
echo "bench-tx rc=$rc ms=$((t1 - t0))"
t0=$(up); i=0; while [ $i -lt 1000 ]; do xenstore-write /bench/k$i v$i || break; i=$((i + 1)); done; t1=$(up)
echo "bench-write n=$i ms=$((t1 - t0))"
t0=$(up); i=0; ok=0; while [ $i -lt 1000 ]; do [ "$(xenstore-read /bench/k$i)" = v$i ] && ok=$((ok + 1)); i=$((i + 1)); done; t1=$(up)
echo "bench-read n=$i ok=$ok ms=$((t1 - t0))"
xenstore-rm /bench
for k in 1 2 3; do
    t0=$(up)
    xl create /etc/xen/hello-stubdom.cfg >/dev/null 2>&1 || { echo "bench-create failed"; break; }
    d=$(xl domid hello-stubdom)
    i=0; until [ "$(xenstore-read /local/domain/$d/data/hello 2>/dev/null)" = world ]; do
        i=$((i + 1)); [ $i -le 600 ] || break; sleep 0.02; done
    t1=$(up)
    echo "bench-create k=$k ms=$((t1 - t0)) ready=$([ $i -le 600 ] && echo 1 || echo 0)"
    xl destroy hello-stubdom; wait_gone hello-stubdom 30
done
"#;

/// 20 guests at once, each answering a request through the store.
const TWENTY: &str = r#". /usr/share/xen-host/lib.sh
n=0
for k in $(seq 1 20); do
    xl create /etc/xen/hello-stubdom.cfg "name=\"hello-$k\"" >/dev/null 2>&1 || break
    n=$k
done
ok=0
for k in $(seq 1 $n); do
    d=$(xl domid hello-$k) || continue
    xenstore-write /local/domain/$d/data/hello-request b$k || continue
    i=0; until [ "$(xenstore-read /local/domain/$d/data/hello-response 2>/dev/null)" = "hello, b$k" ]; do
        i=$((i + 1)); [ $i -le 300 ] || break; sleep 0.05; done
    [ $i -le 300 ] && ok=$((ok + 1))
done
echo "bench-twenty created=$n answered=$ok"
"#;

fn scenario(script: &str, x: &Xenstore) -> Scenario {
    let cfg = std::fs::read_to_string(root().join("xen/hello-stubdom.cfg")).unwrap();
    Scenario::new(&format!("{script}\necho '=== end'\n"))
        .config("hello-stubdom.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/hello-stubdom.elf", &example("hello-stubdom"))
        .xenstore(x.clone())
}

/// The number after `key=` in the first line starting with `tag`.
fn field(lines: &[&str], tag: &str, key: &str) -> Option<u64> {
    let l = lines.iter().find(|l| l.starts_with(tag))?;
    l.split(' ').find_map(|w| w.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok())
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    if v.is_empty() {
        0
    } else {
        v[v.len() / 2]
    }
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let xsd = app("xenstored");
    let who = [Xenstore::Daemon, Xenstore::Oxenstored, Xenstore::domain(&xsd, 4)];
    // Per server: test-xenstore, 1000 writes, 1000 reads, create → ready.
    let mut rows: Vec<[Vec<u64>; 4]> = vec![Default::default(), Default::default(), Default::default()];
    for round in 0..runs {
        for k in 0..who.len() {
            let i = (k + round) % who.len();
            let x = &who[i];
            let r = xen_host::run(&format!("bench-xsd-{}", x.name()), &scenario(SCRIPT, x), T);
            let sc = r.scenario();
            for l in sc.iter().filter(|l| l.starts_with("bench")) {
                println!("{} round={round} {l}", x.name());
            }
            if r.rc != Some(0) || field(&sc, "bench-tx", "rc") != Some(0) {
                println!(
                    "{} round={round}: failed (rc {:?}); see target/test-scratch/xen-host-bench-xsd-{}/console.log",
                    x.name(),
                    r.rc,
                    x.name()
                );
                continue;
            }
            let row = &mut rows[i];
            row[0].extend(field(&sc, "bench-tx", "ms"));
            row[1].extend(field(&sc, "bench-write", "ms"));
            row[2].extend(field(&sc, "bench-read ", "ms").filter(|_| field(&sc, "bench-read ", "ok") == Some(1000)));
            for l in sc.iter().filter(|l| l.starts_with("bench-create k=") && l.ends_with("ready=1")) {
                row[3].extend(field(&[l], "bench-create", "ms"));
            }
        }
    }
    println!();
    println!("| server | test-xenstore | 1,000 xenstore-write | 1,000 xenstore-read | xl create → ready |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (x, row) in who.iter().zip(rows.iter_mut()) {
        let [a, b, c, d] = row;
        println!("| {} | {} ms | {} ms | {} ms | {} ms |", x.name(), median(a), median(b), median(c), median(d));
    }
    // The smallest memory that serves 20 guests, from 1 MiB up.
    for mb in 1..=4 {
        let x = Xenstore::domain(&xsd, mb);
        let r = xen_host::run(&format!("bench-xsd-twenty-{mb}"), &scenario(TWENTY, &x), T);
        let sc = r.scenario();
        let answered = field(&sc, "bench-twenty", "answered");
        println!("bench-twenty memory={mb} rc={:?} answered={answered:?}", r.rc);
        if answered == Some(20) {
            println!("smallest --memory serving 20 guests: {mb} MiB");
            break;
        }
    }
}
