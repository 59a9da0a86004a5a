//! `make bench`: how long Debian's kernel takes from QEMU's start to its
//! `/init`'s marker, four ways, with one kernel and one initramfs:
//!
//! - hvmlite → bzImage (bundle module, the kernel decompresses itself),
//! - hvmlite → vmlinux (bundle module, decompressed at pack time),
//! - hvmlite self-contained ELF (hvmlite + vmlinux bundle in one file),
//! - Linux's own PVH entry (`-kernel vmlinux`),
//! - SeaBIOS + linuxboot (`-kernel vmlinuz`).
//!
//! Wall-clock min/median/max over `BENCH_RUNS` runs (default 5, taken
//! round-robin across the ways), ratios to Linux's own PVH entry, and hvmlite's own share as a deterministic count:
//! under `-icount shift=0` the TSC advances one tick per instruction, and
//! hvmlite prints the ticks from its entry to the hand-off.
//! Not a test: it prints a table (the README keeps one).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/linux.rs"]
mod linux_support;

use common::*;
use linux_support::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let img = image();
    let l = linux();
    let vmlinux = scratch("linux").join("vmlinux");
    let st = Command::new(tool())
        .args(["extract", "--kernel"])
        .arg(&l.vmlinuz)
        .arg("-o")
        .arg(&vmlinux)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());

    let (bz_k, bz_i) = payload(Way::BzImage, &img);
    let (vm_k, vm_i) = payload(Way::Vmlinux, &img);
    let (sc_k, _) = payload(Way::SelfContained, &img);
    let initrd = Some(l.initrd.clone());
    // (name, -kernel, -initrd, -append, hvmlite?)
    let ways: Vec<(&str, PathBuf, Option<PathBuf>, &str, bool)> = vec![
        ("hvmlite → bzImage", bz_k, bz_i, "", true),
        ("hvmlite → vmlinux", vm_k, vm_i, "", true),
        ("hvmlite self-contained ELF", sc_k, None, "", true),
        ("Linux PVH entry (-kernel vmlinux)", vmlinux, initrd.clone(), BUNDLE_CMDLINE, false),
        ("SeaBIOS + linuxboot (-kernel vmlinuz)", l.vmlinuz.clone(), initrd, BUNDLE_CMDLINE, false),
    ];

    // Round-robin: run i of every way before run i + 1 of any, so a change
    // in the machine's load falls on all ways alike.
    let mut times = vec![Vec::new(); ways.len()];
    for _ in 0..runs {
        for (w, (name, k, i, append, _)) in ways.iter().enumerate() {
            let run = qemu(&qemu_args(k, i.as_deref(), "512", append), &[MARKER], Duration::from_secs(120));
            assert!(run.stopped_on.is_some(), "{name}: no marker\n{}", run.dump());
            times[w].push(run.elapsed.as_secs_f64());
        }
    }
    let mut rows = Vec::new();
    for ((name, k, i, append, hv), mut t) in ways.iter().zip(times) {
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let share = hv.then(|| {
            let mut a = qemu_args(k, i.as_deref(), "512", append);
            a.extend(["-icount".into(), "shift=0".into()]);
            let run = qemu(&a, &["hvmlite: handoff:"], Duration::from_secs(120));
            let line =
                run.hvmlite().into_iter().find(|l| l.starts_with("handoff:")).unwrap_or_else(|| panic!("{}", run.dump())).to_string();
            line.split(" tsc ").nth(1).unwrap().split(' ').next().unwrap().parse::<u64>().unwrap()
        });
        eprintln!("{name}: {t:?} {share:?}");
        rows.push((name, t[0], t[t.len() / 2], t[t.len() - 1], share));
    }
    let pvh = rows[3].2;
    let seabios = rows[4].2;
    println!("\nQEMU {} TCG, -m 512, {runs} runs each: QEMU start → /init's marker, seconds\n", qemu_version());
    println!("| way | min | median | max | median vs Linux PVH | median vs SeaBIOS | hvmlite's share: instructions, entry → hand-off (`-icount shift=0`) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, min, med, max, share) in &rows {
        let share = share.map(|s| format!("{:.2} M", s as f64 / 1e6)).unwrap_or_else(|| "—".into());
        println!("| {name} | {min:.2} | {med:.2} | {max:.2} | {:.2}× | {:.2}× | {share} |", med / pvh, med / seabios);
    }
}

fn qemu_version() -> String {
    let out = Command::new("qemu-system-x86_64").arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").replace("QEMU emulator version ", "")
}
