//! hvmlite as PVH dom0 on real Xen (Debian 12's 4.17, or Debian 13's 4.20
//! with `HVMLITE_XEN_HOST=4.20`, booted in QEMU/TCG): Xen gives start_info
//! version 0 with no memory map, so the map must come from
//! XENMEM_memory_map; shutdown goes through SCHEDOP_shutdown and Xen
//! reports the reason.

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(180);
const STOP: &[&str] = &[XEN_DOM0_HALTED, XEN_DOM0_CRASHED, XEN_PANIC];

#[test]
fn dom0_boot_report_and_poweroff() {
    let cmdline = "hvmlite.test=dom0 quiet poweroff";
    let run = qemu_xen(&xen_dom0_args(&xen_bin(), &image(), cmdline, ""), STOP, T, None);
    let d = run.dump();
    let xen = format!("Xen version {}.", common::xen_host::XenHost::from_env().version());
    assert!(run.has(&xen), "{xen:?} missing: {d}");
    assert!(run.has("*** Building a PVH Dom0 ***"), "{d}");
    assert_eq!(run.value("entry"), Some("pvh"), "{d}");
    assert_eq!(run.value("hypervisor"), Some(r#"xen (cpuid base 0x40000000, signature "XenVMMXenVMM")"#), "{d}");
    assert_eq!(run.value("subarch"), Some("2 (xen)"), "{d}");
    let si = run.value("start_info").unwrap();
    assert!(si.starts_with("version 0 at ") && si.ends_with(" flags 0x3"), "PVH dom0: SIF_PRIVILEGED|SIF_INITDOMAIN: {d}");
    let e820 = run.value("e820").unwrap();
    assert!(e820.ends_with(" entries from hypercall"), "{d}");
    // dom0_mem=64M: the RAM Xen's map gives dom0 adds up to about 64 MiB.
    let ram: u64 = run
        .hvmlite()
        .iter()
        .filter(|l| l.starts_with("e820[") && l.ends_with(" ram"))
        .map(|l| {
            let r = l.split(' ').nth(1).unwrap();
            let (a, b) = r.split_once('-').unwrap();
            u64::from_str_radix(&b[2..], 16).unwrap() - u64::from_str_radix(&a[2..], 16).unwrap()
        })
        .sum();
    assert!((62 << 20..=64 << 20).contains(&ram), "dom0 RAM {ram:#x}: {d}");
    assert_eq!(run.value("cmdline"), Some(format!("\"{cmdline}\"").as_str()), "{d}");
    assert!(run.has("hvmlite: ready"), "{d}");
    assert!(run.has("hvmlite: shutdown: poweroff"), "{d}");
    assert_eq!(run.stopped_on.as_deref(), Some(XEN_DOM0_HALTED), "Xen must see a clean poweroff: {d}");
    assert!(!run.has("FATAL"), "{d}");
}

#[test]
fn dom0_debug_port_console_and_crash() {
    // Port 0xe9 output is what Xen prints as "(d0) ..." with guest_loglvl=all.
    let cmdline = "hvmlite.console=e9 hvmlite.crash=panic";
    let run = qemu_xen(&xen_dom0_args(&xen_bin(), &image(), cmdline, ""), STOP, T, None);
    let d = run.dump();
    assert!(run.has("(d0) hvmlite: hypervisor: xen"), "{d}");
    assert!(run.has("(d0) hvmlite: ready"), "{d}");
    assert!(run.has("(d0) hvmlite: FATAL: panic: "), "{d}");
    assert!(run.has("(d0) hvmlite: shutdown: crash"), "{d}");
    assert_eq!(run.stopped_on.as_deref(), Some(XEN_DOM0_CRASHED), "Xen must see the crash: {d}");
}
