//! `make bench` (with benches/boot.rs): booting a domain's own disk on the
//! real Xen 4.17 host, from `xl create` to `/init`'s marker, three ways,
//! with one disk, one kernel and one initramfs:
//!
//! - (a) hvmlite as `kernel =`, booting the disk (its grub.cfg);
//! - (b) Debian's GRUB PVH image (`grub-i386-xen_pvh.bin` from
//!   `grub-xen-host`) as `kernel =`, booting the same disk through the
//!   same grub.cfg;
//! - (c) hvmlite with the same kernel and initramfs as a dom0-side bundle
//!   (`hvmlite pack --bzimage`, the kernel kept compressed), the same disk
//!   attached (the `/init` mounts it in all three).
//!
//! One host run: a warm-up boot of each, then `BENCH_RUNS` rounds (default
//! 5) taken interleaved (a, b, c, a, b, c, …) with `memory = 256`, then
//! the smallest `memory =` each boots with, bisected in 8 MB steps between
//! 64 and 256 with single boots. dom0 polls the guest's console log
//! (xenconsoled `--log=guest`) every 0.1 s for the marker, and times each
//! boot from its wall clock before `xl create` to the wall clock the
//! guest's `/init` prints just before the marker: both are Xen's time, so
//! the figure is good to the microsecond, not to the poll's 0.1 s (which
//! is what dom0's uptime at the poll gives, used where the line is
//! missing).
//!
//! Then every distribution's layout (`tests/common/layouts.rs`: Debian,
//! Ubuntu's cloud image, Fedora Cloud and Server, openSUSE, Arch, Alpine),
//! each with hvmlite, Debian 12's GRUB (2.06) and Debian 13's (2.12,
//! `grub-xen-host` from trixie, way d): a warm-up boot of each says
//! whether that loader boots the layout at all, then `BENCH_LAYOUT_RUNS`
//! rounds (default 3) of those that do, interleaved; one host run a
//! layout (`BENCH_LAYOUTS=ubuntu,arch`: only those, and not the first
//! run). After each boot dom0 puts the disk's grubenv back, as a booted
//! distribution's boot-success service would.
//!
//! `BENCH_ICOUNT=N` runs the host under QEMU's `-icount shift=N,sleep=off`:
//! its clocks count instructions (2^N ns each), so two boots of the same
//! loader agree to a hundredth of a percent whatever the machine's speed
//! and load; `BENCH_XEN_ARGS` adds Xen options (`console_timestamps=boot`
//! puts Xen's clock on each of hvmlite's lines in the console log).
//!
//! Prints min/median/max, the ratios, the image sizes, hvmlite's read
//! throughput, hvmlite's own part (the `tsc N since entry` of its
//! `handoff` line over the TSC rate Xen detected) and an estimate of
//! GRUB's own part (see [`report`]). Not a test: it prints a table
//! (docs/benchmarks.md keeps one).

#[path = "../tests/support/btrfs_image.rs"]
mod btrfs_image;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/disk.rs"]
mod disk;
#[path = "../tests/common/layouts.rs"]
mod layouts;
#[path = "../tests/common/linux.rs"]
mod linux_support;
#[path = "../tests/support/xfs_image.rs"]
mod xfs_image;

use common::xen_host::{self, HostRun, Scenario};
use common::*;
use disk::*;
use linux_support::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The filesystem's UUID, which the grub.cfg's `search` names.
const UUID: &str = "5d8a2f1c-3b7e-4c1a-9e2f-6a7b8c9d0e1f";
/// What the entry gives Linux: GRUB ignores the domain's `cmdline =`, so
/// everything `/init` needs is here.
const OPTS: &str = "console=hvc0 panic=-1 test.mount=xvda1 test.entry=bench";
/// Where dom0 keeps GRUB's image.
const GRUB_AT: &str = "/usr/lib/grub-xen/grub-i386-xen_pvh.bin";

/// Where dom0 keeps Debian 13's.
const GRUB13_AT: &str = "/usr/lib/grub-xen/grub-i386-xen_pvh-2.12.bin";

/// Debian's GRUB PVH image, from `grub-xen-host` (`apt-get download`,
/// cached in `target/debs/`), or from another suite's (`trixie`).
fn grub_image(suite: Option<&str>) -> PathBuf {
    let dir = root().join(match suite {
        Some(s) => format!("target/grub-xen-{s}"),
        None => "target/grub-xen".into(),
    });
    let mut c = std::process::Command::new("sh");
    if let Some(s) = suite {
        c.env("SUITE", s);
    }
    let st =
        c.arg(root().join("tests/support/fetch-debs.sh")).arg(&dir).arg("grub-xen-host").status().expect("run tests/support/fetch-debs.sh");
    assert!(st.success(), "could not fetch grub-xen-host");
    let p = dir.join("grub-xen-host").join(GRUB_AT.trim_start_matches('/'));
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// The xl config of one way: `memory` and the disk come on `xl create`'s
/// command line; nothing restarts (a failed boot ends the domain).
fn config(kernel: &str, ramdisk: Option<&str>) -> String {
    let ramdisk = ramdisk.map(|r| format!("ramdisk = \"{r}\"\n")).unwrap_or_default();
    format!(
        "name = \"bench\"\ntype = \"pvh\"\nkernel = \"{kernel}\"\n{ramdisk}cmdline = \"\"\nmemory = 256\nvcpus = 1\n\
         on_poweroff = \"destroy\"\non_reboot = \"destroy\"\non_crash = \"destroy\"\n"
    )
}

/// dom0's script: `boot`, `fits` and `minmem` defined, then `body`.
fn script(body: &str) -> String {
    format!(
        r#". /usr/share/xen-host/lib.sh
disk_backend || exit 9
log=/var/log/xen/console/guest-bench.log
fail_re='Kernel panic|hvmlite: FATAL|grub>|Press any key|out of memory|reboot: Restarting'
nomem_re='no room for|no free RAM|out of memory|Out of memory|Initramfs unpacking failed'
n=0
# What a booted system does to its disk that /init does not (the body may
# say).
after_boot() {{ :; }}
# boot LABEL WAY MEM: one domain from `xl create` to /init's marker; one
# `bench:` line (dom0's uptime before xl create, after it, at the marker).
# wallclock: this domain's wall clock, to the microsecond (Xen's time, as
# the guest's /init prints its own at the marker).
wallclock() {{ adjtimex | awk '/tv_sec/ {{ s = $2 }} /tv_usec/ {{ u = $2 }} END {{ printf "%d.%06d", s, u }}'; }}
boot() {{
    local t0 tx t1 x r i size still s dt ls tsc rd w0 w1 wall
    n=$((n + 1))
    rm -f $log
    w0=$(wallclock)
    read t0 x < /proc/uptime
    if ! xl create /etc/xen/bench-$2.cfg "memory=$3" "disk=['format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-sh, target=$dev']" >/tmp/xl.out 2>&1; then
        echo "bench: label=$1 way=$2 mem=$3 dom=$n result=create-failed"
        sed "s/^/bench-log $2: /" /tmp/xl.out
        xl destroy bench >/dev/null 2>&1
        return 1
    fi
    # No more work here than the poll's: what dom0 does now lands in the
    # loader's own part (a `wallclock` here added about 4 M instructions
    # to hvmlite's, counted).
    read tx x < /proc/uptime
    r=timeout; i=0; size=-1; still=0
    while [ $i -lt 1500 ]; do
        if grep -q 'hvmlite-linux-test: done' $log 2>/dev/null; then r=ok; break; fi
        i=$((i + 1))
        if [ $((i % 10)) -eq 0 ]; then
            if grep -q -E "$fail_re" $log 2>/dev/null; then r=failed; break; fi
            s=$(stat -c %s $log 2>/dev/null || echo 0)
            if [ "$s" = "$size" ]; then
                still=$((still + 1))
                [ $still -lt 30 ] || {{ r=stuck; break; }}
            else
                still=0; size=$s
            fi
        fi
        sleep 0.1
    done
    read t1 x < /proc/uptime
    dt=$(awk -v a=$t0 -v b=$t1 -v c=$tx 'BEGIN {{ printf "total=%.2f create=%.2f", b - a, c - a }}')
    ls=$(awk '/hvmlite-linux-test: done/ {{ print s; exit }} /^\[ *[0-9]+\.[0-9]+\]/ {{ s = $0; sub(/^\[ */, "", s); sub(/\].*/, "", s) }}' $log)
    tsc=$(sed -n 's/.*handoff: .*tsc \([0-9]*\) since entry.*/\1/p' $log | head -n1)
    rd=$(sed -n 's/.*disk: read \([0-9]*\) bytes in \([0-9]*\) ms.*/\1,\2/p' $log | head -n1)
    w1=$(sed -n 's/.*init: wallclock: \([0-9.]*\).*/\1/p' $log | head -n1)
    wall=$(awk -v a=$w0 -v b="$w1" 'BEGIN {{ if (b != "") printf "wall=%.6f", b - a }}')
    echo "bench: label=$1 way=$2 mem=$3 dom=$n result=$r $dt linux=$ls tsc=$tsc read=$rd $wall"
    if [ $r != ok ] || [ "$1" = warmup ]; then
        grep -v '^\[' $log | tr -d '\r' | grep -v '^$' | head -n 60 | sed "s/^/bench-log $2: /"
        [ $r = ok ] || tail -n 15 $log | tr -d '\r' | sed "s/^/bench-log $2: /"
    fi
    xl destroy bench >/dev/null 2>&1
    wait_gone bench 60
    after_boot
    [ $r = ok ] && return 0
    # 2: it failed for want of memory (hvmlite's, GRUB's or Linux's words).
    grep -q -E "$nomem_re" $log 2>/dev/null && return 2
    return 1
}}
# fits WAY MEM: WAY boots with MEM, or fails for want of memory; a boot
# that fails otherwise (not a question of size) is tried again, 3 times in all.
fits() {{
    local k rc
    k=0
    while [ $k -lt 3 ]; do
        boot mem $1 $2
        rc=$?
        [ $rc -eq 0 ] && return 0
        [ $rc -eq 2 ] && return 1
        echo "bench: retry way=$1 mem=$2: failed, not for want of memory"
        k=$((k + 1))
    done
    return 1
}}
# minmem WAY: the smallest memory= (MB, a multiple of 8 in 64..256) WAY boots with.
minmem() {{
    local lo hi mid
    if fits $1 64; then echo "bench: minmem way=$1 mem=64 fails=untested"; return; fi
    lo=64; hi=256
    while [ $((hi - lo)) -gt 8 ]; do
        mid=$(( (lo + hi) / 16 * 8 ))
        if fits $1 $mid; then hi=$mid; else lo=$mid; fi
    done
    echo "bench: minmem way=$1 mem=$hi fails=$lo"
}}
{body}echo "=== end"
"#
    )
}

/// The first run's body: the Debian disk, a warm-up of a, b and c, the
/// interleaved rounds, then the memory bisection.
fn debian_body(rounds: usize) -> String {
    format!(
        r#"gunzip -c /scenario/disk.img.gz > /scenario/disk.img && rm /scenario/disk.img.gz || exit 8
dev=$(attach /scenario/disk.img) || exit 8
# A way that cannot boot at all ends the run here.
for w in a b c; do boot warmup $w 256 || exit 20; done
round=1
while [ $round -le {rounds} ]; do
    for w in a b c; do boot round$round $w 256; done
    round=$((round + 1))
done
for w in a b c; do minmem $w; done
"#
    )
}

/// The Xen host under QEMU/TCG has been seen to freeze (QEMU idle, no
/// console output, the vCPU halted) in the middle of a run: stop our QEMU
/// (a child of this process) when it has used no CPU time for `idle`, so
/// that the boots measured until then are still reported.
fn watchdog(idle: Duration) {
    let me = std::process::id();
    std::thread::spawn(move || {
        let mut last: Option<(u32, u64, std::time::Instant)> = None;
        loop {
            std::thread::sleep(Duration::from_secs(5));
            let Ok(dir) = std::fs::read_dir("/proc") else { continue };
            let qemu = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).find_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (comm, rest) = stat.split_once(") ")?;
                let f: Vec<&str> = rest.split(' ').collect();
                let ppid: u32 = f.get(1)?.parse().ok()?;
                let cpu: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
                (ppid == me && comm.contains("qemu-system")).then_some((pid, cpu))
            });
            let Some((pid, cpu)) = qemu else { continue };
            match last {
                Some((p, c, since)) if p == pid && c == cpu => {
                    if since.elapsed() >= idle {
                        eprintln!("bench: QEMU {pid} has used no CPU for {idle:?}: the Xen host froze; stopping it");
                        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
                        last = None;
                    }
                }
                _ => last = Some((pid, cpu, std::time::Instant::now())),
            }
        }
    });
}

/// One `bench:` line.
#[derive(Debug, Clone)]
struct Boot {
    label: String,
    way: String,
    dom: u32,
    ok: bool,
    /// `xl create` → the marker, s: the guest's wall clock at its marker
    /// minus dom0's before `xl create` (both Xen's time, to the
    /// microsecond), else dom0's poll of the console log (0.1 s steps).
    total: f64,
    /// `xl create`'s own run, s (dom0's uptime, 0.01 s steps).
    create: f64,
    /// Linux's clock at its last kernel line before the marker, s.
    linux: f64,
    /// hvmlite's `tsc N since entry`.
    tsc: Option<u64>,
    /// hvmlite's disk read: bytes, ms.
    read: Option<(u64, u64)>,
}

fn boots(r: &HostRun) -> Vec<Boot> {
    r.scenario()
        .into_iter()
        .filter_map(|l| l.strip_prefix("bench: label="))
        .map(|l| {
            let mut kv: BTreeMap<&str, &str> = BTreeMap::new();
            let mut it = l.split_whitespace();
            kv.insert("label", it.next().unwrap());
            for w in it {
                if let Some((k, v)) = w.split_once('=') {
                    kv.insert(k, v);
                }
            }
            let f = |k: &str| kv.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
            Boot {
                label: kv["label"].to_string(),
                way: kv["way"].to_string(),
                dom: kv["dom"].parse().unwrap(),
                ok: kv["result"] == "ok",
                total: Some(f("wall")).filter(|w| w.is_finite()).unwrap_or_else(|| f("total")),
                create: f("create"),
                linux: f("linux"),
                tsc: kv.get("tsc").and_then(|v| v.parse().ok()),
                read: kv.get("read").and_then(|v| v.split_once(',')).and_then(|(b, ms)| Some((b.parse().ok()?, ms.parse().ok()?))),
            }
        })
        .collect()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn median(v: Vec<f64>) -> f64 {
    let v = sorted(v);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// When the host's serial console showed domain `dom`'s line holding
/// `needle` (hvmlite also writes to Xen's debug port: `(dN) hvmlite: …`).
fn seen(r: &HostRun, dom: u32, needle: &str) -> Option<f64> {
    let p = format!("(d{dom}) hvmlite: {needle}");
    r.run.lines.iter().position(|l| l.contains(&p)).map(|i| r.at[i].as_secs_f64())
}

/// The layouts: for each, one host run (dom0's RAM holds one layout's
/// disk at a time): its disk on the loop device, a warm-up boot with each
/// loader (a: hvmlite, b: GRUB 2.06, d: GRUB 2.12) and `rounds`
/// interleaved rounds of those that booted. Returns each layout's name,
/// dom0's lines and the file to ship.
fn layouts_phase(rounds: usize) -> Vec<(&'static str, String, (String, PathBuf))> {
    let tail = |part: &str| format!("console=hvc0 panic=-1 test.mount={part} test.entry=bench");
    let v = layouts::kernel_version();
    let debian = {
        let items = vec![
            Item::File(Box::leak(format!("/boot/vmlinuz-{v}").into_boxed_str()), std::fs::read(&linux().vmlinuz).unwrap()),
            Item::File(Box::leak(format!("/boot/initrd.img-{v}").into_boxed_str()), disk_initrd()),
            Item::File("/hello.txt", b"hello from the bench disk".to_vec()),
            Item::File("/boot/grub/grub.cfg", debian_grub_cfg(&v, UUID, "0", 0, |_| tail("xvda1")).into_bytes()),
        ];
        mbr_disk(2048 + 24 * 2048, &[Part { start: 2048, data: ext4_uuid("bench", 24, &items, Some(UUID)), mbr_type: 0x83 }])
    };
    let disks: Vec<(&str, Vec<u8>)> = vec![
        ("debian", debian),
        ("ubuntu", layouts::ubuntu(&tail("xvda16"))),
        ("fedora-cloud", layouts::fedora_cloud(&tail("xvda3"))),
        ("fedora-server", layouts::fedora_server(&tail("xvda2"))),
        ("opensuse", layouts::opensuse(&tail("xvda3")).0),
        ("arch", layouts::arch(&tail("xvda2")).0),
        ("alpine", layouts::alpine(|_| tail("xvda1"))),
    ];
    let only = std::env::var("BENCH_LAYOUTS").ok();
    let mut runs = Vec::new();
    for (name, disk) in disks {
        if only.as_deref().is_some_and(|o| !o.split(',').any(|x| x == name)) {
            continue;
        }
        let (unpack, data) = layouts::sparse_disk_script(name, &disk);
        let file = (format!("/scenario/{name}.runs.gz"), save_gz(&format!("layout-{name}"), &data));
        let mut sh = unpack;
        // A booted distribution marks the boot good in grubenv (Ubuntu's
        // grub-common service clears `recordfail`, Fedora's
        // grub-boot-success sets `boot_success=1`); the test /init does
        // not, so dom0 puts each grubenv back as it was after every boot,
        // or the next would wait at the menu Ubuntu shows after a failed
        // one.
        let envs = grubenvs(&disk);
        for at in &envs {
            sh += &format!("dd if=/scenario/disk.img of=/scenario/grubenv-{at} bs=512 skip={} count=2 2>/dev/null\n", at / 512);
        }
        let restore: String = envs
            .iter()
            .map(|at| {
                format!(" dd if=/scenario/grubenv-{at} of=/scenario/disk.img bs=512 seek={} count=2 conv=notrunc 2>/dev/null;", at / 512)
            })
            .collect();
        if !restore.is_empty() {
            sh += &format!("after_boot() {{{restore} sync; }}\n");
        }
        sh += &format!(
            "ok=\"\"\nfor w in a b d; do boot warmup-{name} $w 256 && ok=\"$ok $w\"; done\n\
             echo \"bench: layout={name} boots:$ok\"\n\
             round=1\nwhile [ $round -le {rounds} ]; do\n    for w in $ok; do boot {name}-round$round $w 256; done\n    round=$((round + 1))\ndone\n"
        );
        runs.push((name, sh, file));
    }
    runs
}

/// Where each grubenv of `disk` starts (1024 bytes, sector-aligned, as
/// `grub-editenv` leaves it in a block of its own).
fn grubenvs(disk: &[u8]) -> Vec<usize> {
    let head = b"# GRUB Environment Block\n";
    (0..disk.len().saturating_sub(1024)).step_by(512).filter(|&at| disk[at..].starts_with(head) && disk[at + 1023] == b'#').collect()
}

fn main() {
    let rounds: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let layout_rounds: usize = std::env::var("BENCH_LAYOUT_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    // BENCH_ICOUNT=N: the host runs under `-icount shift=N,sleep=off`, its
    // clocks counting instructions (see `Scenario::icount`).
    let icount: Option<u32> = std::env::var("BENCH_ICOUNT").ok().map(|s| s.parse().expect("BENCH_ICOUNT: a shift, 0 to 10"));
    let xen_args = std::env::var("BENCH_XEN_ARGS").unwrap_or_default();
    let img = image();
    let grub = grub_image(None);
    let grub13 = grub_image(Some("trixie"));
    let l = linux();
    let kname = l.vmlinuz.file_name().unwrap().to_str().unwrap().to_string();
    let v = kname.trim_start_matches("vmlinuz-").to_string();
    let initrd = disk_initrd();

    // The one disk: MBR, ext4 in partition 1 with the kernel, the
    // initramfs, grub.cfg and the file /init prints.
    let kpath = format!("/boot/vmlinuz-{v}");
    let ipath = format!("/boot/initrd.img-{v}");
    let items = vec![
        Item::File(&kpath, std::fs::read(&l.vmlinuz).unwrap()),
        Item::File(&ipath, initrd.clone()),
        Item::File("/hello.txt", b"hello from the bench disk".to_vec()),
        Item::File("/boot/grub/grub.cfg", debian_grub_cfg(&v, UUID, "0", 0, |_| OPTS.to_string()).into_bytes()),
    ];
    let mib = 24;
    let disk = mbr_disk(2048 + mib * 2048, &[Part { start: 2048, data: ext4_uuid("bench", mib, &items, Some(UUID)), mbr_type: 0x83 }]);
    let gz = save_gz("bench", &disk);

    // (c): the same kernel (compressed) and initramfs, the entry's options.
    let dir = scratch("bench-disk");
    let initrd_file = dir.join("initrd.img");
    std::fs::write(&initrd_file, &initrd).unwrap();
    let bundle = dir.join("bench.bundle");
    let cmdline = format!("root=UUID={UUID} ro {OPTS}");
    pack(
        &["--kernel", l.vmlinuz.to_str().unwrap(), "--initrd", initrd_file.to_str().unwrap(), "--cmdline", &cmdline, "--bzimage"],
        &bundle,
    );

    // BENCH_LAYOUTS=ubuntu,arch: only those layouts' runs.
    if std::env::var("BENCH_LAYOUTS").is_err() {
        let mut s = Scenario::new(&script(&debian_body(rounds)))
            .config("bench-a.cfg", &config("/usr/lib/hvmlite/hvmlite.elf", None))
            .config("bench-b.cfg", &config(GRUB_AT, None))
            .config("bench-c.cfg", &config("/usr/lib/hvmlite/hvmlite.elf", Some("/var/lib/hvmlite/bench.bundle")))
            .file_from("/usr/lib/hvmlite/hvmlite.elf", &img)
            .file_from(GRUB_AT, &grub)
            .file_from("/var/lib/hvmlite/bench.bundle", &bundle)
            .file_from("/scenario/disk.img.gz", &gz);
        s.icount = icount;
        s.xen_args = xen_args.clone();
        watchdog(Duration::from_secs(90));
        let r = xen_host::run("bench-disk", &s, Duration::from_secs(3600));
        for l in r.scenario().into_iter().filter(|l| l.starts_with("bench")) {
            eprintln!("{l}");
        }
        if r.rc != Some(0) || !r.has("=== end") {
            // Report what was measured before the host stopped.
            let tail: Vec<&str> = r.run.lines.iter().rev().take(40).rev().map(String::as_str).collect();
            eprintln!("the host's last lines (all of them: target/test-scratch/xen-host-bench-disk/console.log):\n{}", tail.join("\n"));
            println!("\n**The host run did not finish** (scenario rc {:?}): the tables below hold only the boots before it stopped.", r.rc);
        }
        let all = boots(&r);
        let mhz = tsc_mhz(&r);
        let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
        report(&r, &all, rounds, mhz, [size(&img), size(&grub), size(&bundle)]);
    }

    let mut layout_boots = Vec::new();
    for (name, body, (at, from)) in layouts_phase(layout_rounds) {
        let mut s = Scenario::new(&script(&body))
            .config("bench-a.cfg", &config("/usr/lib/hvmlite/hvmlite.elf", None))
            .config("bench-b.cfg", &config(GRUB_AT, None))
            .config("bench-d.cfg", &config(GRUB13_AT, None))
            .file_from("/usr/lib/hvmlite/hvmlite.elf", &img)
            .file_from(GRUB_AT, &grub)
            .file_from(GRUB13_AT, &grub13)
            .file_from(&at, &from);
        s.icount = icount;
        s.xen_args = xen_args.clone();
        let r = xen_host::run(&format!("bench-layout-{name}"), &s, Duration::from_secs(1800));
        for l in r.scenario().into_iter().filter(|l| l.starts_with("bench")) {
            eprintln!("{l}");
        }
        if r.rc != Some(0) || !r.has("=== end") {
            println!("\n**The {name} run did not finish** (scenario rc {:?}).", r.rc);
        }
        let verdict = r.scenario().into_iter().find_map(|l| l.strip_prefix("bench: layout=").map(str::to_string));
        layout_boots.push((name, verdict, boots(&r), tsc_mhz(&r)));
    }
    report_layouts(&layout_boots, layout_rounds, std::fs::metadata(&grub13).unwrap().len());
}

/// The TSC rate Xen detected (its `Detected N MHz processor.` line).
fn tsc_mhz(r: &HostRun) -> f64 {
    r.run
        .lines
        .iter()
        .find_map(|l| l.split_once("Detected ").and_then(|(_, x)| x.strip_suffix(" MHz processor.")).and_then(|x| x.parse().ok()))
        .unwrap_or_else(|| panic!("no TSC rate from Xen"))
}

/// The layouts table: which loader boots which layout, and how soon.
fn report_layouts(runs: &[(&str, Option<String>, Vec<Boot>, f64)], rounds: usize, grub13: u64) {
    let names = [("a", "hvmlite"), ("b", "GRUB 2.06 (Debian 12)"), ("d", "GRUB 2.12 (Debian 13)")];
    println!("
Every layout (`tests/common/layouts.rs`), `memory = 256`: a warm-up boot of each loader, then {rounds} interleaved rounds of those that booted; `xl create` → `/init`'s marker, median seconds (min–max):
");
    println!("| layout | hvmlite | GRUB 2.06 (Debian 12) | GRUB 2.12 (Debian 13) | GRUB 2.06 / hvmlite | GRUB 2.12 / hvmlite |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (layout, _, all, _) in runs {
        let prefix = format!("{layout}-round");
        let med = |w: &str| {
            let t = sorted(all.iter().filter(|b| b.way == w && b.ok && b.label.starts_with(&prefix)).map(|b| b.total).collect());
            (!t.is_empty()).then(|| (median(t.clone()), t[0], t[t.len() - 1]))
        };
        let warm = |w: &str| all.iter().find(|b| b.way == w && b.label == format!("warmup-{layout}")).map(|b| b.ok);
        let cell = |w: &str| match (warm(w), med(w)) {
            (Some(true), Some((m, lo, hi))) => format!("{m:.2} ({lo:.2}–{hi:.2})"),
            (Some(false), _) => "does not boot it".into(),
            _ => "—".into(),
        };
        let ratio = |w: &str| match (med("a"), med(w)) {
            (Some((a, _, _)), Some((g, _, _))) => format!("{:.2}×", g / a),
            _ => "—".into(),
        };
        println!("| {layout} | {} | {} | {} | {} | {} |", cell(names[0].0), cell(names[1].0), cell(names[2].0), ratio("b"), ratio("d"));
    }
    println!(
        "
`grub-i386-xen_pvh.bin` from Debian 13's `grub-xen-host` 2.12: {grub13} bytes."
    );
    report_layout_own_parts(runs);
}

/// The loaders' own parts on each layout, medians in seconds: hvmlite's
/// from its `handoff` tsc; each GRUB's estimated as in [`report`], its
/// time before Linux's clock minus hvmlite's decompression of the same
/// round (the same bzImage and initrd on the same disk).
fn report_layout_own_parts(runs: &[(&str, Option<String>, Vec<Boot>, f64)]) {
    println!("\nThe loaders' own parts, median seconds (GRUB's estimated: its time before Linux's clock minus hvmlite's decompression in the same round):\n");
    println!("| layout | hvmlite | GRUB 2.06 (estimate) | GRUB 2.12 (estimate) | 2.06 / hvmlite | 2.12 / hvmlite |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (layout, _, all, mhz) in runs {
        let prefix = format!("{layout}-round");
        let timed = |w: &str| all.iter().filter(|b| b.way == w && b.ok && b.label.starts_with(&prefix)).collect::<Vec<&Boot>>();
        let pre = |b: &Boot| b.total - b.create - b.linux;
        let own = |b: &Boot| b.tsc.map(|t| t as f64 / (mhz * 1e6)).unwrap_or(f64::NAN);
        let a = timed("a");
        let own_a = median(a.iter().map(|b| own(b)).collect());
        let dec = |label: &str| a.iter().find(|b| b.label == label).map(|b| pre(b) - own(b));
        let grub = |w: &str| median(timed(w).iter().filter_map(|b| Some(pre(b) - dec(&b.label)?)).collect());
        let (g06, g12) = (grub("b"), grub("d"));
        let cell = |x: f64| if x.is_finite() { format!("{x:.3}") } else { "—".into() };
        let ratio = |g: f64| if g.is_finite() && own_a.is_finite() { format!("{:.1}×", g / own_a) } else { "—".into() };
        println!("| {layout} | {} | {} | {} | {} | {} |", cell(own_a), cell(g06), cell(g12), ratio(g06), ratio(g12));
    }
}

/// Print the tables.
///
/// - `total`: dom0's wall clock before `xl create` to the guest's at the
///   marker (see [`Boot::total`]);
/// - `create`: `xl create`'s own run (building the domain, the disk's
///   hotplug script, unpausing it);
/// - `linux`: Linux's own clock at its last kernel line before the
///   marker, i.e. the time from Linux's clock starting (after the bzImage
///   decompressed itself) to `/init`'s marker;
/// - hvmlite's own part: `tsc N since entry` / the TSC rate (Xen unpauses
///   the domain at hvmlite's entry);
/// - before Linux's clock (`pre` = total − create − linux) is the loader's
///   own part plus Linux decompressing itself: for hvmlite
///   `decompress = pre − own`; GRUB's own part is estimated as GRUB's
///   `pre` minus (a)'s `decompress` of the same round (same bzImage, same
///   initrd, same entry into Linux's 32/64-bit boot code).
fn report(r: &HostRun, all: &[Boot], rounds: usize, mhz: f64, [elf, grub, bundle]: [u64; 3]) {
    let names = [
        ("a", "(a) hvmlite, booting the disk"),
        ("b", "(b) GRUB `grub-i386-xen_pvh.bin`, booting the disk"),
        ("c", "(c) hvmlite + dom0-side bundle (bzImage)"),
    ];
    let timed: Vec<&Boot> = all.iter().filter(|b| b.label.starts_with("round")).collect();
    for b in timed.iter().filter(|b| !b.ok) {
        println!("**A timed boot failed**, left out: {b:?}");
    }
    let of = |w: &str| timed.iter().filter(|b| b.way == w && b.ok).copied().collect::<Vec<&Boot>>();
    let own = |b: &Boot| b.tsc.map(|t| t as f64 / (mhz * 1e6)).unwrap_or(f64::NAN);
    let pre = |b: &Boot| b.total - b.create - b.linux;
    let med_total = |w: &str| median(of(w).iter().map(|b| b.total).collect());
    let (ta, tb, tc) = (med_total("a"), med_total("b"), med_total("c"));

    let done = ["a", "b", "c"].map(|w| of(w).len());
    println!("\nXen 4.17 host in QEMU TCG (dom0 PV, 1 vCPU), TSC {mhz:.0} MHz; memory = 256, {rounds} rounds after a warm-up, interleaved a, b, c (timed boots done: {done:?})");
    println!(
        "\n`xl create` → `/init`'s marker in the guest's console log, seconds (dom0's wall clock before it, the guest's at the marker):\n"
    );
    println!("| way | min | median | max | median vs (c) | GRUB's median vs this |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (w, name) in names {
        let t = sorted(of(w).iter().map(|b| b.total).collect());
        if t.is_empty() {
            println!("| {name} | — | — | — | — | — |");
            continue;
        }
        let m = med_total(w);
        println!("| {name} | {:.2} | {m:.2} | {:.2} | {:.3}× | {:.2}× |", t[0], t[t.len() - 1], m / tc, tb / m);
    }

    println!("\nWhere the time goes, medians in seconds (see benches/disk.rs for how each is taken):\n");
    println!("| way | `xl create` | loader's own part | Linux decompressing itself | Linux: its clock's start → marker |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let a = of("a");
    let b = of("b");
    // (a)'s decompression in each round, paired with GRUB's `pre` of the same round.
    let dec_a: Vec<f64> = a.iter().map(|x| pre(x) - own(x)).collect();
    let grub_own: Vec<f64> = b.iter().zip(&dec_a).map(|(x, d)| pre(x) - d).collect();
    for (w, name) in names {
        let v = of(w);
        let c = median(v.iter().map(|x| x.create).collect());
        let lx = median(v.iter().map(|x| x.linux).collect());
        let (o, dec) = if w == "b" {
            (format!("≈ {:.2} (estimate)", median(grub_own.clone())), format!("≈ {:.2} (as (a))", median(dec_a.clone())))
        } else {
            (
                format!("{:.3}", median(v.iter().map(|x| own(x)).collect())),
                format!("{:.2}", median(v.iter().map(|x| pre(x) - own(x)).collect())),
            )
        };
        println!("| {name} | {c:.2} | {o} | {dec} | {lx:.2} |");
    }
    let own_a = median(a.iter().map(|x| own(x)).collect());
    let own_g = median(grub_own);
    println!("\nGRUB's own part / hvmlite's own part (a): {:.1}×", own_g / own_a);

    // hvmlite's phases in (a), from the host's serial console (hvmlite's
    // lines through Xen's debug port), medians in ms.
    let phases = [
        ("entry → first line", None, "hvmlite 0.1.0 startup_64"),
        ("→ ready (report, page tables)", Some("hvmlite 0.1.0 startup_64"), "ready"),
        ("→ disk connected", Some("ready"), "disk: xvda: "),
        ("→ boot entry chosen", Some("disk: xvda: "), "boot entry: "),
        ("→ kernel and initrd read", Some("boot entry: "), "disk: read "),
        ("→ disk handed back", Some("disk: read "), "disk: xvda: handed back"),
        ("→ hand-off", Some("disk: xvda: handed back"), "handoff: "),
    ];
    println!("\nhvmlite's own part in (a), by phase (host's clock at each hvmlite line on Xen's console), median ms:\n");
    println!("| phase | ms |");
    println!("| --- | ---: |");
    for (name, from, to) in phases {
        let v: Vec<f64> = a
            .iter()
            .filter_map(|x| {
                let t = seen(r, x.dom, to)?;
                match from {
                    Some(f) => Some((t - seen(r, x.dom, f)?) * 1e3),
                    // The first line's time after entry: the entry is
                    // the hand-off's time minus hvmlite's own part.
                    None => Some((t - (seen(r, x.dom, "handoff: ")? - own(x))) * 1e3),
                }
            })
            .collect();
        println!("| {name} | {:.0} |", median(v));
    }

    let reads: Vec<(u64, u64)> = a.iter().filter_map(|x| x.read).collect();
    let mibs = sorted(reads.iter().map(|(b, ms)| *b as f64 / (1 << 20) as f64 / (*ms as f64 / 1e3)).collect());
    if !mibs.is_empty() {
        println!(
            "\nhvmlite's disk read (a): {} bytes (kernel + initrd), {:.0} / {:.0} / {:.0} MiB/s (min / median / max)",
            reads.first().map(|r| r.0).unwrap_or(0),
            mibs[0],
            median(mibs.clone()),
            mibs[mibs.len() - 1]
        );
    }

    println!("\nSmallest `memory =` (MB, 8 MB steps, single boots):\n");
    println!("| way | boots with | does not boot with |");
    println!("| --- | ---: | ---: |");
    for (w, name) in names {
        let line = r.scenario().into_iter().find_map(|l| l.strip_prefix(&format!("bench: minmem way={w} ")).map(str::to_string));
        let (ok, fails) = line
            .as_deref()
            .map(|l| {
                let g = |k: &str| l.split_whitespace().find_map(|x| x.strip_prefix(k)).unwrap_or("?").to_string();
                (g("mem="), g("fails="))
            })
            .unwrap_or(("?".into(), "?".into()));
        println!("| {name} | {ok} | {fails} |");
    }

    println!("\nImage sizes:\n");
    println!("| image | bytes |");
    println!("| --- | ---: |");
    println!("| `hvmlite.elf` (the loader image) | {elf} |");
    println!("| `grub-i386-xen_pvh.bin` (Debian's `grub-xen-host`) | {grub} |");
    println!("| (c)'s bundle (bzImage + initramfs + command line) | {bundle} |");
    println!("\n(a) / (c) = {:.3}; GRUB / (a) = {:.2}×", ta / tc, tb / ta);
}
