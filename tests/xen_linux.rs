//! The loader role on real Xen 4.17: Debian's stock kernel started by
//! hvmlite as a PVH domU from `xl create` (the shipped
//! `xen/linux-via-hvmlite.cfg`, and the self-contained ELF as `kernel =`),
//! and as PVH dom0 to show how far a stock kernel gets there.
//! Linux's own report (the busybox `/init` of tests/common/linux.rs) must
//! match what hvmlite said it handed over.

mod common;
#[path = "common/linux.rs"]
mod linux_support;

use common::xen_host::{self, Scenario};
use common::*;
use linux_support::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(400);
/// The kernel command line of the Xen bundles: Linux's console on a PVH
/// domU is the PV console (hvc0), which xenconsoled logs.
const XEN_CMDLINE: &str = "console=hvc0 panic=-1";

/// What one domain's PV console log says: hvmlite's lines and `/init`'s.
struct Guest<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Guest<'a> {
    fn from(r: &'a xen_host::HostRun, marker: &str) -> Self {
        let lines = r
            .scenario()
            .into_iter()
            .skip_while(|l| !l.contains(marker))
            .skip(1)
            .filter(|l| !l.starts_with("(XEN)") && !l.starts_with("(d"))
            .take_while(|l| !l.starts_with("=== "))
            .collect();
        Guest { lines }
    }
    fn hv(&self, key: &str) -> Option<&'a str> {
        let k = format!("hvmlite: {key}");
        self.lines.iter().find_map(|l| l.strip_prefix(k.as_str()))
    }
    fn init(&self) -> Vec<&'a str> {
        self.lines.iter().filter_map(|l| l.split_once(INIT).map(|(_, r)| r)).collect()
    }
    fn hv_e820(&self) -> Vec<(u64, u64, String)> {
        report_e820(self.lines.iter().filter_map(|l| l.strip_prefix("hvmlite: ")))
    }
    fn linux_e820(&self) -> Vec<(u64, u64, String)> {
        linux_bios_e820(self.init())
    }
}

/// Linux, as a PVH domU, got what hvmlite handed over.
fn assert_linux_got_it(g: &Guest, d: &str, bundle_initrd: bool) {
    assert!(g.init().contains(&MARKER.trim_start_matches(INIT)), "Linux's /init did not finish: {d}");
    // Linux says it is a Xen PVH guest, and names Xen in /sys/hypervisor.
    assert!(g.init().iter().any(|l| l.contains("Booting paravirtualized kernel on Xen PVH")), "{d}");
    assert!(g.init().contains(&"hypervisor: xen"), "{d}");
    // The command line: the bundle's, then the domain's (xl cmdline=).
    let want = g.hv("payload: cmdline ").expect(d).trim_matches('"').to_string();
    assert!(want.starts_with(XEN_CMDLINE), "{d}");
    let seen = g.init().iter().find_map(|l| l.strip_prefix("cmdline: ")).expect(d).trim().to_string();
    assert_eq!(seen, want, "{d}");
    // The memory map: hvmlite's report, entry for entry, is what Linux took;
    // RAM is the domain's 256 MiB.
    let map = g.hv_e820();
    assert_eq!(g.linux_e820(), map, "{d}");
    let ram: u64 = map.iter().filter(|e| e.2 == "ram").map(|e| e.1 - e.0).sum();
    assert_eq!(ram, 256 << 20, "{d}");
    // The initrd Linux found is the one hvmlite named, and it ran (marker).
    let initrd = g.hv("payload: initrd ").expect(d);
    let (addr, size) = initrd.split_once(" size ").unwrap();
    let (addr, size) = (parse_hex(addr), parse_hex(size));
    let rd = g.init().iter().find_map(|l| l.strip_prefix("dmesg: RAMDISK: [mem ")).expect(d).to_string();
    let (a, b) = rd.trim_end_matches(']').split_once('-').unwrap();
    assert_eq!(parse_hex(a), addr, "{d}");
    assert_eq!(parse_hex(b) + 1, (addr + size).div_ceil(4096) * 4096, "{d}");
    if bundle_initrd {
        assert_eq!(size, std::fs::metadata(&linux().initrd).unwrap().len(), "{d}");
    }
    // hvmlite itself ran as a Xen PVH domU and handed over.
    assert_eq!(g.hv("hypervisor: "), Some(r#"xen (cpuid base 0x40000000, signature "XenVMMXenVMM")"#), "{d}");
    assert!(g.hv("start_info: ").is_some_and(|s| s.starts_with("version 1 ")), "{d}");
    assert!(g.hv("handoff: zero page 0x").is_some(), "{d}");
}

#[test]
fn linux_domu_through_hvmlite() {
    let l = linux();
    let dir = scratch("xen-linux");
    let bundle = dir.join("linux.bundle");
    let k = l.vmlinuz.to_str().unwrap();
    let i = l.initrd.to_str().unwrap();
    pack(&["--kernel", k, "--initrd", i, "--cmdline", XEN_CMDLINE], &bundle);
    let elf = dir.join("linux.elf");
    pack(&["--kernel", k, "--initrd", i, "--cmdline", XEN_CMDLINE, "--elf", image().to_str().unwrap()], &elf);
    let cfg = std::fs::read_to_string(root().join("xen/linux-via-hvmlite.cfg")).unwrap();
    let s = Scenario::new(
        r#". /usr/share/xen-host/lib.sh
log=/var/log/xen/console/guest-linux-via-hvmlite.log
echo "=== xl create (bundle)"
xl create /etc/xen/linux-via-hvmlite.cfg 'cmdline="hvmlite.test=bundle"' || exit 10
wait_gone linux-via-hvmlite 150 || exit 11
echo "=== console (bundle)"
cat $log
rm -f $log
echo "=== xl create (self-contained)"
xl create /etc/xen/linux-via-hvmlite.cfg 'kernel="/var/lib/hvmlite/linux.elf"' 'ramdisk=""' 'cmdline="hvmlite.test=elf"' || exit 12
wait_gone linux-via-hvmlite 150 || exit 13
echo "=== console (self-contained)"
cat $log
echo "=== xl list"
xl list
echo "=== end"
"#,
    )
    .config("linux-via-hvmlite.cfg", &cfg)
    .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
    .file_from("/var/lib/hvmlite/linux.bundle", &bundle)
    .file_from("/var/lib/hvmlite/linux.elf", &elf);
    let r = xen_host::run("linux-domu", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let a = Guest::from(&r, "=== console (bundle)");
    assert_linux_got_it(&a, &d, true);
    assert!(a.hv("payload: bundle v1 from module at ").is_some(), "{d}");
    assert!(a.hv("payload: cmdline ").unwrap().ends_with(" hvmlite.test=bundle\""), "{d}");
    let b = Guest::from(&r, "=== console (self-contained)");
    assert_linux_got_it(&b, &d, true);
    assert!(b.hv("payload: bundle v1 from embedded at ").is_some(), "{d}");
    assert!(b.hv("payload: load ").unwrap().ends_with(" (preloaded)"), "{d}");
    assert!(!r.scenario().iter().any(|l| l.starts_with("linux-via-hvmlite ")), "both domains powered off: {d}");
    eprintln!(
        "xen-linux: xl create -> Linux /init done: bundle {:.1?}, self-contained {:.1?}",
        r.between("=== xl create (bundle)", "=== console (bundle)").unwrap_or_default(),
        r.between("=== xl create (self-contained)", "=== console (self-contained)").unwrap_or_default(),
    );
}

/// The semantic gap, shown: Debian's kernel handed hvmlite's zero page as
/// PVH **dom0** takes the map, initrd and command line, but entered through
/// its 64-bit entry it cannot know it is the initial domain (Linux reads
/// SIF_INITDOMAIN only from start_info on its own PVH entry), and as dom0
/// the host's ACPI tables announce VGA, so its PVH heuristic fails too: it
/// boots as an "HVM" guest and stalls at ACPI set-up, waiting for legacy
/// timer hardware a PVH dom0 does not have. The test pins how far it gets;
/// the README says what is missing.
#[test]
fn linux_dom0_through_hvmlite_shows_the_gap() {
    let l = linux();
    let bundle = scratch("xen-linux").join("dom0.bundle");
    let cmdline = "earlyprintk=xen keep_bootcon panic=-1 loglevel=7";
    pack(&["--kernel", l.vmlinuz.to_str().unwrap(), "--initrd", l.initrd.to_str().unwrap(), "--cmdline", cmdline], &bundle);
    let mut args = xen_dom0_args(&xen_bin(), &image(), "hvmlite.test=dom0", "dom0_mem=384M");
    // Room for Linux: 1 GiB for the machine, the bundle as Xen's second module.
    let m = args.iter().position(|a| a == "-m").unwrap();
    args[m + 1] = "1024".into();
    args.last_mut().unwrap().push_str(&format!(",{}", bundle.display()));
    const LAST: &str = "ACPI: Core revision";
    let stop = [LAST, "Run /init as init process", "Kernel panic", XEN_DOM0_CRASHED, XEN_PANIC];
    let run = qemu(&args, &stop, Duration::from_secs(240));
    let d = run.dump();
    // hvmlite: PVH dom0 (version 0, SIF_PRIVILEGED|SIF_INITDOMAIN), hands over.
    assert!(run.value("start_info").is_some_and(|s| s.starts_with("version 0 ") && s.ends_with(" flags 0x3")), "{d}");
    assert!(run.value("handoff").is_some(), "{d}");
    // Linux starts and takes what hvmlite gave it...
    assert!(run.has("Linux version 6."), "{d}");
    assert!(run.has(&format!("Command line: {cmdline} hvmlite.test=dom0")), "{d}");
    let e820: Vec<String> = run
        .hvmlite()
        .iter()
        .filter_map(|l| l.strip_prefix("e820["))
        .map(|l| l.split_once(": ").unwrap().1.split(' ').next().unwrap().to_string())
        .collect();
    let linux_e820 = run.lines.iter().filter(|l| l.contains("] BIOS-e820: [mem ")).count();
    assert_eq!(linux_e820, e820.len(), "Linux's BIOS-e820 lines are hvmlite's map: {d}");
    let initrd = run.hvmlite().into_iter().find_map(|l| l.strip_prefix("payload: initrd ")).expect(&d);
    let addr = parse_hex(initrd.split(' ').next().unwrap());
    assert!(run.has(&format!("RAMDISK: [mem {addr:#010x}-")), "the initrd hvmlite named: {d}");
    assert!(run.has("Hypervisor detected: Xen HVM"), "{d}");
    assert!(run.has("Xen HVM callback vector for event delivery is enabled"), "{d}");
    // ...but as an HVM domU, not as PVH, and not as dom0:
    assert!(run.has("Booting paravirtualized kernel on Xen HVM"), "{d}");
    assert!(!run.has("Booting paravirtualized kernel on Xen PVH"), "{d}");
    assert_eq!(run.stopped_on.as_deref(), Some(LAST), "how far Linux gets changed: update the README: {d}");
}
