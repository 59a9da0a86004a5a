//! hvmlite as a PVH domU that `xl create` starts on a real Xen 4.17 host
//! (Debian's Xen and Linux 6.1 as PV dom0, in QEMU/TCG; see
//! tests/common/xen_host.rs). The xl config is `xen/hvmlite-pvh.cfg`
//! itself, put in dom0 as `/etc/xen/hvmlite-pvh.cfg`; the scenarios vary it
//! only with xl's own `KEY=VALUE` overrides.

mod common;
use common::xen_host::{self, Scenario};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(240);

/// The host with hvmlite.elf where the shipped config expects it.
fn with_hvmlite(script: &str) -> Scenario {
    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-pvh.cfg")).unwrap();
    Scenario::new(script).config("hvmlite-pvh.cfg", &cfg).file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
}

#[test]
fn domu_boot_report_and_poweroff() {
    let module = garbage(12345, 7);
    let s = with_hvmlite(
        r#". /usr/share/xen-host/lib.sh
echo "=== xl create"
xl create /etc/xen/hvmlite-pvh.cfg 'ramdisk="/scenario/module.bin"' || exit 10
wait_gone hvmlite 60 || exit 11
echo "=== xl dmesg"
xl dmesg | grep '(d[0-9]*) hvmlite: '
echo "=== xl list"
xl list
echo "=== xl log"
cat /var/log/xen/xl-hvmlite.log
"#,
    )
    .file("/scenario/module.bin", module.clone());
    let r = xen_host::run("domu-poweroff", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    let v = |k: &str| -> Option<&str> {
        let p = format!("hvmlite: {k}: ");
        g.iter().find_map(|l| l.strip_prefix(p.as_str()))
    };
    assert_eq!(v("entry"), Some("pvh"), "{d}");
    assert_eq!(v("hypervisor"), Some(r#"xen (cpuid base 0x40000000, signature "XenVMMXenVMM")"#), "{d}");
    assert_eq!(v("subarch"), Some("2 (xen)"), "{d}");
    // A domU: start_info version 1, not privileged, not the initial domain.
    let si = v("start_info").unwrap_or_else(|| panic!("no start_info line: {d}"));
    assert!(si.starts_with("version 1 at ") && si.ends_with(" flags 0x0"), "{d}");
    assert!(v("e820").is_some_and(|e| e.ends_with(" entries from start_info")), "{d}");
    assert_eq!(v("cmdline"), Some("\"poweroff\""), "{d}");
    assert_eq!(v("modules"), Some("1"), "{d}");
    let m0 = v("module[0]").unwrap_or_else(|| panic!("no module[0]: {d}"));
    assert!(m0.ends_with(&format!(" size {:#x}", module.len())), "{d}");
    assert!(v("initrd").is_some_and(|i| i.ends_with(&format!(" size {:#x}", module.len()))), "{d}");
    assert!(g.contains(&"hvmlite: ready"), "{d}");
    assert!(g.contains(&"hvmlite: shutdown: poweroff"), "{d}");
    assert!(!g.iter().any(|l| l.contains("FATAL")), "{d}");
    // The same lines are in Xen's console ring, for `xl dmesg`.
    let dmesg: Vec<&str> =
        r.scenario().into_iter().skip_while(|l| !l.contains("=== xl dmesg")).take_while(|l| !l.contains("=== xl list")).collect();
    let t = r.tag(1);
    assert!(dmesg.contains(&format!("{t} hvmlite: ready").as_str()), "{d}");
    assert!(dmesg.contains(&format!("{t} hvmlite: shutdown: poweroff").as_str()), "{d}");
    // xl saw a clean poweroff and destroyed the domain (on_poweroff).
    let list: Vec<&str> = r.scenario().into_iter().skip_while(|l| !l.contains("=== xl list")).collect();
    assert!(list.iter().any(|l| l.starts_with("Domain-0 ")), "{d}");
    assert!(!list.iter().any(|l| l.starts_with("hvmlite ")), "the domain must be gone: {d}");
    assert!(r.has(&format!("Domain {} has shut down, reason code 0", r.id(1))), "{d}");
    eprintln!(
        "domu-poweroff: run {:.1?}, host ready at {:.1?}, xl create -> ready {:.2?}, xl create -> shutdown {:.2?}",
        r.elapsed,
        r.time_of(xen_host::READY).unwrap_or_default(),
        r.between("=== xl create", &format!("{} hvmlite: ready", r.tag(1))).unwrap_or_default(),
        r.between("=== xl create", &format!("{} hvmlite: shutdown", r.tag(1))).unwrap_or_default(),
    );
}

#[test]
fn domu_crash_is_preserved() {
    let s = with_hvmlite(
        r#". /usr/share/xen-host/lib.sh
echo "=== xl create"
xl create /etc/xen/hvmlite-pvh.cfg 'cmdline="hvmlite.crash=panic"' || exit 10
wait_state hvmlite c 60 || exit 11
echo "=== xl list"
xl list
echo "=== xl log"
cat /var/log/xen/xl-hvmlite.log
xl destroy hvmlite || exit 12
echo "=== after destroy"
xl list
"#,
    );
    let r = xen_host::run("domu-crash", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = r.guest(1);
    assert!(g.contains(&"hvmlite: ready"), "{d}");
    assert!(g.iter().any(|l| l.starts_with("hvmlite: FATAL: panic: ")), "{d}");
    assert!(g.contains(&"hvmlite: shutdown: crash"), "{d}");
    let out = r.scenario();
    let list: Vec<&str> = out.iter().copied().skip_while(|l| !l.contains("=== xl list")).collect();
    let row = list.iter().find(|l| l.starts_with("hvmlite ")).unwrap_or_else(|| panic!("no hvmlite in xl list: {d}"));
    let state = row.split_whitespace().nth(4).unwrap_or("");
    assert!(state.contains('c'), "xl list state {state:?}: {d}");
    assert!(r.has(&format!("Domain {} has shut down, reason code 3", r.id(1))), "xl saw SHUTDOWN_crash: {d}");
    let after: Vec<&str> = out.iter().copied().skip_while(|l| !l.contains("=== after destroy")).collect();
    assert!(!after.iter().any(|l| l.starts_with("hvmlite ")), "{d}");
    eprintln!(
        "domu-crash: run {:.1?}, xl create -> FATAL {:.2?}",
        r.elapsed,
        r.between("=== xl create", &format!("{} hvmlite: FATAL", r.tag(1))).unwrap_or_default()
    );
}

/// Several domains one after another in one boot (domids 1, 2, ...): the
/// RAM Xen's map gives each is its `memory =`, and the CPU-exception crash
/// paths end the domain as a crash too.
#[test]
fn domu_memory_sizes_and_exceptions() {
    let s = with_hvmlite(
        r#". /usr/share/xen-host/lib.sh
for m in 4 64 256; do
    xl create /etc/xen/hvmlite-pvh.cfg "memory=$m" "name=\"hvmlite-$m\"" || exit 10
    wait_gone hvmlite-$m 60 || exit 11
done
for c in null stack; do
    xl create /etc/xen/hvmlite-pvh.cfg "cmdline=\"hvmlite.crash=$c\"" "name=\"hvmlite-$c\"" || exit 12
    wait_state hvmlite-$c c 60 || exit 13
    echo "=== hvmlite-$c state $(xl_state hvmlite-$c)"
    xl destroy hvmlite-$c || exit 14
done
echo "=== xl list"
xl list
"#,
    );
    let r = xen_host::run("domu-many", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    for (domid, mib) in [(1u32, 4u64), (2, 64), (3, 256)] {
        let g = r.guest(domid);
        let e0 = format!("hvmlite: e820[0]: 0x0000000000000000-{:#018x} ram", mib << 20);
        assert!(g.contains(&e0.as_str()), "d{domid}: {mib} MiB: {d}");
        assert!(g.contains(&"hvmlite: shutdown: poweroff"), "d{domid}: {d}");
    }
    let g4 = r.guest(4);
    assert!(g4.iter().any(|l| l.starts_with("hvmlite: FATAL: NULL pointer dereference: read at 0x0, rip ")), "{d}");
    assert!(g4.contains(&"hvmlite: shutdown: crash"), "{d}");
    let g5 = r.guest(5);
    assert!(g5.iter().any(|l| l.starts_with("hvmlite: FATAL: stack overflow: ")), "{d}");
    assert!(g5.contains(&"hvmlite: shutdown: crash"), "{d}");
    assert!(r.has("=== hvmlite-null state ---sc-") && r.has("=== hvmlite-stack state ---sc-"), "{d}");
    let list: Vec<&str> = r.scenario().into_iter().skip_while(|l| !l.contains("=== xl list")).collect();
    assert!(!list.iter().any(|l| l.starts_with("hvmlite")), "{d}");
    eprintln!("domu-many: run {:.1?}", r.elapsed);
}

/// The harness's answer to QEMU's lost timer interrupt
/// (`common::qemu_xen`, docs/testing.md), exercised on purpose: the test
/// stops QEMU (SIGSTOP) for 7 s while dom0 sleeps, so the console stands
/// still as in the fault; the watchdog must then type CTRL-a six times,
/// Xen must take the serial input and give it back to dom0 once QEMU runs
/// again, and the run must end normally.
#[test]
fn the_harness_nudges_xen_when_qemu_stands_still() {
    let s = Scenario::new("echo \"=== sleeping\"\nsleep 30\necho \"=== awake\"\n");
    let stopper = std::thread::spawn(|| {
        let pid = qemu_pid("xen-host-nudge/initramfs", Duration::from_secs(120)).expect("QEMU for the nudge scenario");
        // dom0 is in its sleep by then (the host is ready in about 7 s).
        std::thread::sleep(Duration::from_secs(14));
        let signal = |sig: &str| std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("run kill").success();
        assert!(signal("-STOP"), "stopping QEMU");
        std::thread::sleep(Duration::from_secs(7));
        assert!(signal("-CONT"), "continuing QEMU");
    });
    let r = xen_host::run("nudge", &s, T);
    stopper.join().expect("the stopper thread");
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let nudged = r.run.lines.iter().position(|l| l.starts_with(NUDGED)).unwrap_or_else(|| panic!("no nudge: {d}"));
    let after = &r.run.lines[nudged..];
    let to_xen =
        after.iter().position(|l| l.contains("*** Serial input to Xen")).unwrap_or_else(|| panic!("Xen did not take the input: {d}"));
    assert!(after[to_xen..].iter().any(|l| l.contains("*** Serial input to DOM0")), "Xen did not give the input back: {d}");
    assert!(r.run.lines.iter().any(|l| l.contains("=== awake")), "{d}");
}

/// The pid of the QEMU whose command line holds `marker`, once it runs.
fn qemu_pid(marker: &str, within: Duration) -> Option<u32> {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            let argv0 = cmd.split('\0').next().unwrap_or_default();
            if argv0.ends_with("qemu-system-x86_64") && cmd.contains(marker) {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
