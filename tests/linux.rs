//! hvmlite as a loader: Debian's stock kernel started through hvmlite on
//! QEMU's PVH path, as a bzImage, as a vmlinux decompressed at pack time,
//! and from one self-contained ELF. Linux's own report (from a busybox
//! `/init`) must match what hvmlite said it handed over. Bad payloads end
//! in one clear line and the crash exit.

mod common;
#[path = "common/linux.rs"]
mod linux_support;

use common::*;
use hvmlite::payload::bundle::{self, write::Part};
use linux_support::*;
use std::time::Duration;

/// A Linux boot under TCG takes 2–7 s here; leave room for a slow CI.
const T: Duration = Duration::from_secs(120);
const HVMLITE_ONLY: Duration = Duration::from_secs(60);

/// The rest of hvmlite's first line that starts with `prefix`.
fn after<'a>(run: &'a Run, prefix: &str) -> Option<&'a str> {
    run.hvmlite().into_iter().find_map(|l| l.strip_prefix(prefix))
}

/// `/init`'s lines, prefix removed.
fn init_lines(run: &Run) -> Vec<&str> {
    run.lines.iter().filter_map(|l| l.split_once(INIT).map(|(_, r)| r)).collect()
}

fn linux_e820(run: &Run) -> Vec<(u64, u64, String)> {
    linux_bios_e820(init_lines(run))
}

/// /sys/firmware/memmap as (start, end exclusive, hvmlite's type name).
fn linux_memmap(run: &Run) -> Vec<(u64, u64, String)> {
    let mut v: Vec<(u64, u64, String)> = init_lines(run)
        .iter()
        .filter_map(|l| l.strip_prefix("memmap: "))
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let (a, b, ty) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            let ty = match ty {
                "System RAM" => "ram",
                "Reserved" => "reserved",
                "ACPI Tables" => "acpi",
                "ACPI Non-volatile Storage" => "nvs",
                t => t,
            };
            (parse_hex(a), parse_hex(b) + 1, ty.to_string())
        })
        .collect();
    v.sort();
    v
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap().replace("\\\"", "\"").replace("\\\\", "\\")
}

/// Boot Debian's kernel `way` with `mem` of RAM and check what Linux saw
/// against what hvmlite said.
fn boots_to_userspace(way: Way, mem: &str) {
    let (kernel, initrd) = payload(way, &image());
    let token = format!("hvmlite.test={way:?}");
    let run = qemu(&qemu_args(&kernel, initrd.as_deref(), mem, &token), &[], T);
    let d = run.dump();
    assert!(run.has(MARKER), "Linux's /init did not finish: {d}");
    assert_eq!(run.status, Some(0), "Linux powers QEMU off (exit 0): {d}");
    assert!(!run.has("FATAL"), "{d}");
    assert!(run.hvmlite().last().unwrap().starts_with("handoff: zero page 0x"), "{d}");

    // The command line: the bundle's, then the boot's, as hvmlite said.
    let want = format!("{BUNDLE_CMDLINE} {token}");
    assert_eq!(unquote(after(&run, "payload: cmdline ").expect(&d)), want, "{d}");
    let seen = init_lines(&run).iter().find_map(|l| l.strip_prefix("cmdline: ")).expect(&d).trim().to_string();
    assert_eq!(seen, want, "{d}");

    // The same memory map, entry for entry, in hvmlite's report, in
    // Linux's BIOS-e820 lines and in /sys/firmware/memmap.
    let map = run.e820();
    assert!(map.len() >= 5, "{d}");
    if mem == "6G" {
        assert!(map.contains(&(0x1_0000_0000, 0x2_0000_0000, "ram".to_string())), "{d}");
    }
    assert_eq!(linux_e820(&run), map, "{d}");
    assert_eq!(linux_memmap(&run), map, "{d}");

    // The initrd Linux found is the one hvmlite handed over (Linux prints
    // its end rounded up to a page), and it ran: /init printed the marker.
    let initrd = after(&run, "payload: initrd ").expect(&d);
    let (addr, size) = initrd.split_once(" size ").unwrap();
    let (addr, size) = (parse_hex(addr), parse_hex(size));
    assert_eq!(size, std::fs::metadata(&linux().initrd).unwrap().len(), "{d}");
    let rd = init_lines(&run).iter().find_map(|l| l.strip_prefix("dmesg: RAMDISK: [mem ")).expect(&d).to_string();
    let (a, b) = rd.trim_end_matches(']').split_once('-').unwrap();
    assert_eq!(parse_hex(a), addr, "{d}");
    assert_eq!(parse_hex(b) + 1, (addr + size).div_ceil(4096) * 4096, "{d}");

    // The kernel went where hvmlite said: at or above 16 MiB, 2 MiB-aligned.
    let load = after(&run, "payload: load ").expect(&d);
    let start = parse_hex(load.split_once('-').unwrap().0);
    assert!(start >= 16 << 20 && start.is_multiple_of(2 << 20), "{d}");
    let kind = after(&run, "payload: kernel ").expect(&d);
    match way {
        Way::BzImage => assert!(kind.starts_with("bzImage \"6."), "{d}"),
        _ => assert!(kind.starts_with("vmlinux ("), "{d}"),
    }
    let embedded = matches!(way, Way::SelfContained | Way::SelfContainedBootInitrd);
    // A self-contained ELF carries the kernel's segments in place: no copy.
    assert_eq!(load.ends_with(" (preloaded)"), embedded, "{d}");
    let source = if embedded { "embedded" } else { "module" };
    assert!(after(&run, "payload: bundle v1 from ").expect(&d).starts_with(&format!("{source} at ")), "{d}");
    // QEMU is not Xen: Linux names no hypervisor in /sys/hypervisor.
    assert!(!init_lines(&run).iter().any(|l| l.starts_with("hypervisor: xen")), "{d}");
}

#[test]
fn bzimage_boots_to_userspace() {
    boots_to_userspace(Way::BzImage, "512");
}

#[test]
fn vmlinux_boots_to_userspace() {
    boots_to_userspace(Way::Vmlinux, "512");
}

#[test]
fn self_contained_elf_boots_to_userspace() {
    boots_to_userspace(Way::SelfContained, "512");
}

/// With 6 GiB (RAM above 4 GiB, the initrd module where QEMU puts it).
#[test]
fn self_contained_elf_takes_the_boot_initrd() {
    boots_to_userspace(Way::SelfContainedBootInitrd, "6G");
}

/// The RAM entries of a map.
fn ram(map: &[(u64, u64, String)]) -> Vec<(u64, u64)> {
    map.iter().filter(|e| e.2 == "ram").map(|e| (e.0, e.1)).collect()
}

/// RAM minus `holes` (each inside one RAM entry).
fn punch(mut ram: Vec<(u64, u64)>, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    for &(hs, he) in holes {
        let i = ram.iter().position(|&(s, e)| s <= hs && he <= e).unwrap_or_else(|| panic!("{hs:#x}-{he:#x} not in RAM {ram:x?}"));
        let (s, e) = ram.remove(i);
        let parts: Vec<(u64, u64)> = [(s, hs), (he, e)].into_iter().filter(|p| p.0 < p.1).collect();
        for (j, p) in parts.into_iter().enumerate() {
            ram.insert(i + j, p);
        }
    }
    ram
}

/// Debian's kernel entered at its own PVH entry (`hvmlite.handoff=pvh`)
/// reaches /init with the same command line, RAM and initrd as through the
/// 64-bit boot protocol (`hvmlite.handoff=linux64`): from a module bundle
/// (the kernel copied to its own address) and from the self-contained ELF
/// (the kernel preloaded there).
fn pvh_matches_linux64(way: Way) {
    let (kernel, initrd) = payload(way, &image());
    let boot = |h: &str| {
        let token = format!("hvmlite.handoff={h}");
        let run = qemu(&qemu_args(&kernel, initrd.as_deref(), "512", &token), &[], T);
        let d = run.dump();
        assert!(run.has(MARKER), "Linux's /init did not finish ({h}): {d}");
        assert_eq!(run.status, Some(0), "{d}");
        assert!(!run.has("FATAL"), "{d}");
        assert_eq!(
            after(&run, "payload: handoff "),
            Some(&*if h == "pvh" { format!("pvh, entry {:#x} (asked for)", guest_pvh_entry()) } else { "linux64 (asked for)".into() }),
            "{d}"
        );
        run
    };
    let (p, l) = (boot("pvh"), boot("linux64"));
    let (dp, dl) = (p.dump(), l.dump());
    // The report names the entry and start_info; the entry is the note's.
    let last = p.hvmlite().last().unwrap().to_string();
    assert!(last.starts_with(&format!("handoff: pvh entry {:#x} start_info 0x", guest_pvh_entry())), "{dp}");
    let si = parse_hex(last.split(" start_info ").nth(1).unwrap().split(' ').next().unwrap());
    assert!(l.hvmlite().last().unwrap().starts_with("handoff: zero page 0x"), "{dl}");
    // Linux took the PVH path (QEMU's PVH entry is not Xen: no "on Xen PVH").
    assert!(!p.has("Booting paravirtualized kernel on Xen"), "{dp}");
    // The same command line, apart from the hand-off asked for.
    let cmd = |r: &Run| init_lines(r).iter().find_map(|l| l.strip_prefix("cmdline: ")).unwrap().trim().to_string();
    assert_eq!(cmd(&p), format!("{BUNDLE_CMDLINE} hvmlite.handoff=pvh"), "{dp}");
    assert_eq!(cmd(&l), format!("{BUNDLE_CMDLINE} hvmlite.handoff=linux64"), "{dl}");
    // The same report from hvmlite, the same kernel placement.
    assert_eq!(p.e820(), l.e820(), "{dp}\n{dl}");
    assert_eq!(after(&p, "payload: load "), after(&l, "payload: load "), "{dp}\n{dl}");
    assert_eq!(after(&p, "payload: load ").unwrap().split('-').next(), Some("0x1000000"), "PVH: at its own address: {dp}");
    // The same RAM in Linux's map, except the two pages hvmlite keeps for
    // the PVH hand-off (start_info, command line), which it marks reserved.
    let cl = parse_hex(last.split(" cmdline ").nth(1).unwrap().split(' ').next().unwrap());
    let mut holes = vec![(si, si + 4096), (cl, cl + 4096)];
    holes.sort();
    assert_eq!(ram(&linux_e820(&l)), ram(&l.e820()), "{dl}");
    assert_eq!(ram(&linux_e820(&p)), punch(ram(&l.e820()), &holes), "{dp}");
    assert_eq!(ram(&linux_memmap(&p)), ram(&linux_e820(&p)), "{dp}");
    // The same initrd, at the same address, and it ran.
    let rd = |r: &Run| init_lines(r).iter().find_map(|l| l.strip_prefix("dmesg: RAMDISK: ")).unwrap().to_string();
    assert_eq!(rd(&p), rd(&l), "{dp}\n{dl}");
    assert_eq!(after(&p, "payload: initrd "), after(&l, "payload: initrd "), "{dp}");
    eprintln!("linux {way:?}: pvh {:.1?}, linux64 {:.1?}", p.elapsed, l.elapsed);
}

#[test]
fn pvh_handoff_matches_linux64_from_a_bundle() {
    pvh_matches_linux64(Way::Vmlinux);
}

#[test]
fn pvh_handoff_matches_linux64_from_a_self_contained_elf() {
    pvh_matches_linux64(Way::SelfContained);
}

/// `hvmlite.handoff=pvh` for a kernel without a PVH entry, or with one that
/// is out of reach inside a compressed bzImage: one FATAL line, crash.
#[test]
fn pvh_handoff_without_a_pvh_entry_is_refused() {
    let l = linux();
    let dir = scratch("linux-nopvh");
    let tool = |args: &[&str]| std::process::Command::new(common::tool()).args(args).output().unwrap();
    let v = dir.join("vmlinux");
    assert!(tool(&["extract", "--kernel", l.vmlinuz.to_str().unwrap(), "-o", v.to_str().unwrap()]).status.success());
    // Turn the Xen PHYS32_ENTRY note (type 18) into an unknown type,
    // wherever its bytes are (the PT_NOTE and the PT_LOAD that holds .notes).
    let mut b = std::fs::read(&v).unwrap();
    let pat: Vec<u8> = [4u32.to_le_bytes(), 8u32.to_le_bytes(), 18u32.to_le_bytes()].concat();
    let hits: Vec<usize> = b.windows(16).enumerate().filter(|(_, w)| w[..12] == pat[..] && &w[12..] == b"Xen\0").map(|(i, _)| i).collect();
    assert!(!hits.is_empty(), "Debian's vmlinux has a PHYS32_ENTRY note");
    for at in hits {
        b[at + 8] = 0x7f;
    }
    let nopvh = dir.join("vmlinux-nopvh");
    std::fs::write(&nopvh, &b).unwrap();
    let bundle = dir.join("bundle");
    pack(&["--kernel", nopvh.to_str().unwrap(), "--initrd", l.initrd.to_str().unwrap()], &bundle);
    let text = String::from_utf8_lossy(&tool(&["inspect", bundle.to_str().unwrap()]).stdout).to_string();
    assert!(text.contains("pvh entry: none"), "{text}");
    let run = qemu(&qemu_args(&image(), Some(&bundle), "256", "hvmlite.handoff=pvh"), &[], HVMLITE_ONLY);
    assert_fatal(&run, "payload: hvmlite.handoff=pvh, but the kernel has no PVH entry (no XEN_ELFNOTE_PHYS32_ENTRY note)");
    // A compressed bzImage: the entry is recorded, but out of reach.
    let bz = dir.join("bundle-bz");
    pack(&["--kernel", l.vmlinuz.to_str().unwrap(), "--bzimage"], &bz);
    let text = String::from_utf8_lossy(&tool(&["inspect", bz.to_str().unwrap()]).stdout).to_string();
    let entry = guest_pvh_entry();
    assert!(text.contains(&format!("pvh entry: {entry:#x} (recorded at pack time)")), "{text}");
    let run = qemu(&qemu_args(&image(), Some(&bz), "256", "hvmlite.handoff=pvh"), &[], HVMLITE_ONLY);
    assert_fatal(
        &run,
        &format!(
            "payload: hvmlite.handoff=pvh, but the kernel is a compressed bzImage: its PVH entry {entry:#x} exists only once it \
             is decompressed (pack it without --bzimage)"
        ),
    );
    let run = qemu(&qemu_args(&image(), Some(&bz), "256", "hvmlite.handoff=16"), &[], HVMLITE_ONLY);
    assert_fatal(&run, "payload: hvmlite.handoff=16: the hand-offs are pvh and linux64");
}

/// The host tool: what `inspect` says about what `pack` made, and what it
/// refuses.
#[test]
fn pack_and_inspect() {
    let l = linux();
    let dir = scratch("linux-tool");
    let tool = |args: &[&str]| std::process::Command::new(common::tool()).args(args).output().unwrap();
    let (k, i) = (l.vmlinuz.to_str().unwrap(), l.initrd.to_str().unwrap());
    let b = dir.join("b");
    pack(&["--kernel", k, "--initrd", i, "--cmdline", "a b"], &b);
    let out = tool(&["inspect", b.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all CRCs good") && text.contains("format: vmlinux") && text.contains("cmdline: \"a b\""), "{text}");
    assert!(text.contains("setup header: 0x7b bytes, boot protocol 2.15"), "{text}");
    // The PVH entry: in the vmlinux's notes, and recorded in the bundle.
    let entry = guest_pvh_entry();
    assert!(text.contains(&format!("  pvh entry: {entry:#x} (XEN_ELFNOTE_PHYS32_ENTRY)")), "{text}");
    assert!(text.contains(&format!("\npvh entry: {entry:#x} (recorded at pack time)")), "{text}");
    let initrd_len = std::fs::metadata(&l.initrd).unwrap().len();
    assert!(text.contains(&format!("initrd: {initrd_len:#x} bytes")), "{text}");
    // A self-contained ELF is found and described; it cannot take a second bundle.
    let elf = dir.join("e.elf");
    pack(&["--kernel", k, "--elf", image().to_str().unwrap()], &elf);
    let text = String::from_utf8_lossy(&tool(&["inspect", elf.to_str().unwrap()]).stdout).to_string();
    assert!(text.starts_with("self-contained hvmlite ELF: bundle at 0x"), "{text}");
    let again = tool(&["pack", "--kernel", k, "--elf", elf.to_str().unwrap(), "-o", dir.join("x").to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already carries a payload"));
    // Something that is no kernel is refused before anything is written.
    let bad = tool(&["pack", "--kernel", i, "-o", dir.join("y").to_str().unwrap()]);
    assert!(!bad.status.success() && !dir.join("y").exists());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a Linux kernel"));
    // extract gives the vmlinux, an ELF with the kernel's PVH note.
    let v = dir.join("vmlinux");
    assert!(tool(&["extract", "--kernel", k, "-o", v.to_str().unwrap()]).status.success());
    let text = String::from_utf8_lossy(&tool(&["inspect", v.to_str().unwrap()]).stdout).to_string();
    assert!(text.starts_with("format: vmlinux"), "{text}");
}

/// Boot hvmlite with a hand-made bundle (bypassing the pack tool's checks).
fn boot_bundle(name: &str, parts: &[Part], mem: &str) -> Run {
    let b = bundle::write::build(parts);
    let path = scratch("linux-bad").join(name);
    std::fs::write(&path, b).unwrap();
    qemu(&qemu_args(&image(), Some(&path), mem, ""), &[], HVMLITE_ONLY)
}

fn assert_fatal(run: &Run, message: &str) {
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
    let tail: Vec<&str> = run.hvmlite().into_iter().skip_while(|l| !l.starts_with("FATAL")).collect();
    assert_eq!(tail, vec![format!("FATAL: {message}").as_str(), "shutdown: crash"], "{d}");
}

#[test]
fn truncated_kernel_is_refused() {
    let k = std::fs::read(&linux().vmlinuz).unwrap();
    let cut = &k[..1 << 20];
    let run = boot_bundle("truncated", &[Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_BZIMAGE, data: cut }], "256");
    let setup = (k[0x1f1] as u64 + 1) * 512;
    let need = setup + u32::from_le_bytes(k[0x1f4..0x1f8].try_into().unwrap()) as u64 * 16;
    assert_fatal(&run, &format!("payload: kernel is truncated: setup_sects + syssize needs {need:#x} bytes, the image has 0x100000"));
}

#[test]
fn non_linux_payload_is_refused() {
    // hvmlite's own image is an x86-64 ELF, but no Linux kernel.
    let elf = std::fs::read(image()).unwrap();
    let run = boot_bundle("not-linux-elf", &[Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_VMLINUX, data: &elf }], "256");
    assert_fatal(&run, "payload: not a Linux kernel: ELF has no \"Linux\" note");
    let junk = garbage(64 << 10, 3);
    let run = boot_bundle("not-linux-junk", &[Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_BZIMAGE, data: &junk }], "256");
    assert_fatal(&run, "payload: not a Linux kernel: neither a bzImage (no \"HdrS\" header) nor an ELF64 vmlinux");
}

#[test]
fn initrd_that_does_not_fit_is_refused() {
    // 160 MiB of RAM: QEMU places the 130 MiB bundle at the top, and what is
    // left above 16 MiB cannot hold the kernel's 0x3f98000-byte init_size.
    let k = std::fs::read(&linux().vmlinuz).unwrap();
    let big = vec![0u8; 120 << 20];
    let parts = [
        Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_BZIMAGE, data: &k },
        Part { kind: bundle::KIND_INITRD, format: 0, data: &big },
    ];
    let run = boot_bundle("huge-initrd", &parts, "160");
    let init_size = u32::from_le_bytes(k[0x260..0x264].try_into().unwrap());
    assert_fatal(
        &run,
        &format!(
            "payload: no room for the kernel: it needs {init_size:#x} bytes of free RAM at an address aligned to 0x200000 \
             between 0x1000000 and 0x100000000"
        ),
    );
}

#[test]
fn corrupt_kernel_is_refused_with_hvmlite_verify() {
    let mut k = std::fs::read(&linux().vmlinuz).unwrap();
    let b = bundle::write::build(&[Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_BZIMAGE, data: &k }]);
    // One bit flipped inside the compressed kernel, after the CRC was taken.
    let mut b = b;
    let at = b.len() - k.len() / 2;
    b[at] ^= 0x10;
    k.clear();
    let path = scratch("linux-bad").join("flipped");
    std::fs::write(&path, &b).unwrap();
    let run = qemu(&qemu_args(&image(), Some(&path), "256", "hvmlite.verify"), &[], HVMLITE_ONLY);
    assert_fatal(&run, "payload: bundle kernel is corrupt (CRC mismatch)");
}

#[test]
fn truncated_bundle_is_refused() {
    let k = std::fs::read(&linux().vmlinuz).unwrap();
    let b = bundle::write::build(&[Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_BZIMAGE, data: &k }]);
    let path = scratch("linux-bad").join("cut-bundle");
    std::fs::write(&path, &b[..b.len() / 2]).unwrap();
    let run = qemu(&qemu_args(&image(), Some(&path), "256", ""), &[], HVMLITE_ONLY);
    // QEMU rounds a module up to a page; hvmlite sees the module's size.
    let have = run.value("module[0]").map(|m| parse_hex(m.split(" size ").nth(1).unwrap())).unwrap_or_else(|| panic!("{}", run.dump()));
    assert_fatal(&run, &format!("payload: bundle is truncated: its header says {:#x} bytes, only {have:#x} arrived", b.len()));
}
