//! hvmlite booted through QEMU's own PVH path (TCG): the boot report must
//! say exactly what QEMU handed over, and bad input must end in one clear
//! line and the crash exit.

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn boot(mem: &str, cmdline: &str, initrd: Option<&std::path::Path>) -> Run {
    qemu(&pvh_args(&image(), mem, cmdline, initrd), &[], T)
}

#[test]
fn boot_report_matches_what_qemu_gave() {
    let dir = scratch("report");
    let module = dir.join("garbage-module");
    std::fs::write(&module, garbage(12345, 7)).unwrap();
    let cmdline = r#"root=/dev/xvda1 hvmlite.test="two words" quiet poweroff"#;
    let run = boot("512", cmdline, Some(&module));
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    assert_eq!(run.value("entry"), Some("pvh"), "{d}");
    let hv = run.value("hypervisor").unwrap();
    assert!(!hv.starts_with("xen"), "QEMU is not Xen: {d}");
    assert_eq!(run.value("subarch"), Some("0 (pc)"), "{d}");
    assert!(run.value("start_info").unwrap().starts_with("version 1 at "), "{d}");
    assert!(run.value("start_info").unwrap().ends_with(" flags 0x0"), "{d}");

    // The map QEMU 7.2 (q35, -m 512) puts in start_info, in its order.
    assert_eq!(run.value("e820"), Some("9 entries from start_info"), "{d}");
    let map = run.e820();
    let want = [
        (0x0, 0x9fc00, "ram"),
        (0x9fc00, 0xa0000, "reserved"),
        (0xf0000, 0x100000, "reserved"),
        (0x100000, 0x1ffe0000, "ram"),
        (0x1ffe0000, 0x20000000, "reserved"),
        (0xb0000000, 0xc0000000, "reserved"),
        (0xfed1c000, 0xfed20000, "reserved"),
        (0xfffc0000, 0x100000000, "reserved"),
        (0xfd00000000, 0x10000000000, "reserved"),
    ];
    let got: Vec<(u64, u64, &str)> = map.iter().map(|(a, b, t)| (*a, *b, t.as_str())).collect();
    assert_eq!(got, want, "{d}");

    assert_eq!(run.value("cmdline"), Some(r#""root=/dev/xvda1 hvmlite.test=\"two words\" quiet poweroff""#), "{d}");
    assert_eq!(run.value("modules"), Some("1"), "{d}");
    // module[0]: START-END size SIZE, with the module's real size, in RAM,
    // and the initrd is that same module.
    let m = run.value("module[0]").unwrap();
    let (range, size) = m.split_once(" size ").unwrap();
    let (start, end) = range.split_once('-').unwrap();
    let (start, end, size) = (parse_hex(start), parse_hex(end), parse_hex(size));
    assert_eq!(size, 12345, "{d}");
    assert_eq!(end - start, size);
    assert_eq!(start % 4096, 0, "QEMU page-aligns modules: {d}");
    assert!(map.iter().any(|(a, b, t)| t == "ram" && *a <= start && end <= *b), "module outside RAM: {d}");
    assert_eq!(run.value("initrd"), Some(format!("{start:#x} size {size:#x}").as_str()), "{d}");
    assert_ne!(run.value("rsdp"), Some("0x0"), "{d}");
    // The live page tables, read back by hvmlite itself.
    let audit = run.value("paging audit").expect(&d);
    assert!(audit.contains(" 0 bytes writable+executable, NULL unmapped, stack guards unmapped, text rx"), "{d}");
    let heap = run.value("heap").unwrap();
    assert!(heap.starts_with("0x"), "{d}");
    assert!(run.has("hvmlite: ready"), "{d}");
    assert_eq!(run.hvmlite().last(), Some(&"shutdown: poweroff"), "{d}");
    assert!(!run.has("FATAL"), "{d}");
}

#[test]
fn ram_above_4g_is_in_the_map_and_mapped() {
    let run = boot("6G", "poweroff", None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    let map = run.e820();
    let high = map.iter().find(|(a, _, t)| *a == 0x1_0000_0000 && t == "ram").expect(&d);
    // 6 GiB: 2 GiB below the PCI hole, 4 GiB above 4 GiB.
    assert_eq!(high.1, 0x2_0000_0000, "{d}");
    assert!(run.value("paging").unwrap().starts_with("identity 0-0x200000000,"), "{d}");
}

#[test]
fn end_of_run_powers_off_cleanly() {
    let run = boot("128", "", None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    assert!(run.has("hvmlite: ready"), "{d}");
    assert_eq!(run.value("modules"), Some("0"), "{d}");
    assert_eq!(run.value("initrd"), Some("none"), "{d}");
}

#[test]
fn absurd_append_ends_in_a_clear_refusal() {
    // QEMU's PVH option ROM copies -append to 0x11c0 and builds start_info
    // at 0x21e0: a command line of 4 KiB or more overwrites start_info
    // itself. hvmlite must see that, say so and crash, not boot on garbage.
    let run = boot("128", &"x".repeat(5000), None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
    assert_eq!(run.hvmlite(), vec!["FATAL: bad start_info magic 0x78787878 (expected 0x336ec578)", "shutdown: crash"], "{d}");
}

#[test]
fn longest_command_line_is_accepted() {
    let cmdline = format!("poweroff {}", "y".repeat(4095 - 9));
    assert_eq!(cmdline.len(), 4095);
    let run = boot("128", &cmdline, None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    // The console splits long lines; the whole command line still arrives.
    assert!(run.lines.concat().contains(&"y".repeat(4086)), "{d}");
}

#[test]
fn panic_is_reported_and_crashes() {
    let run = boot("128", "hvmlite.crash=panic", None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
    let fatal = run.hvmlite().into_iter().find(|l| l.starts_with("FATAL: ")).expect(&d);
    assert!(fatal.starts_with("FATAL: panic: ") && fatal.contains("crash requested on the command line"), "{d}");
    assert_eq!(run.hvmlite().last(), Some(&"shutdown: crash"), "{d}");
}

/// Boot the shim that breaks start_info in `mode` before entering hvmlite.
fn broken(mode: u32, with_module: bool) -> Run {
    let shim = shim(mode);
    let mut args = pvh_args(&shim, "256", "poweroff", None);
    args.push("-device".into());
    args.push(format!("loader,file={}", image().display()));
    if with_module {
        let m = scratch("broken").join("module");
        std::fs::write(&m, garbage(4096, 1)).unwrap();
        args.push("-initrd".into());
        args.push(m.display().to_string());
    }
    qemu(&args, &[], T)
}

fn assert_refused(run: &Run, message: &str) {
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
    assert_eq!(run.hvmlite(), vec![format!("FATAL: {message}").as_str(), "shutdown: crash"], "{d}");
}

#[test]
fn corrupt_start_info_magic_is_refused() {
    assert_refused(&broken(1, false), "bad start_info magic 0xdeadbeef (expected 0x336ec578)");
}

#[test]
fn unknown_start_info_version_is_refused() {
    assert_refused(&broken(2, false), "unsupported start_info version 7 (supported: 0..=1)");
}

#[test]
fn huge_memmap_count_is_refused() {
    assert_refused(&broken(3, false), "start_info memmap has 268435456 entries (at most 512 supported)");
}

#[test]
fn module_over_hvmlite_is_refused() {
    let run = broken(4, true);
    let d = run.dump();
    let fatal = run.hvmlite().into_iter().find(|l| l.starts_with("FATAL: ")).expect(&d);
    assert!(fatal.starts_with("FATAL: module 0 0x100000-0x101000 overlaps hvmlite's image 0x100000-"), "{d}");
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
}

#[test]
fn null_start_info_is_refused() {
    assert_refused(&broken(5, false), "start_info pointer (%ebx) is NULL");
}

#[test]
fn wrapping_memmap_entry_is_refused() {
    assert_refused(&broken(6, false), "memory map entry 0 (0xffffffff00000000+0xffffffff10000000) wraps past 2^64");
}

#[test]
fn oversized_command_line_is_refused() {
    assert_refused(&broken(7, false), "cmdline is longer than 4095 bytes or not NUL-terminated");
}

#[test]
fn messy_memmap_boots_on_its_sanitised_form() {
    // Overlapping, nested and zero-length entries (tests/shim/shim.S,
    // messy_map): 12 in, 10 out, the more restrictive type winning.
    let run = broken(8, false);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    assert_eq!(run.value("e820"), Some("10 entries from start_info"), "{d}");
    let got = run.e820();
    let want = [
        (0x0, 0x9f000, "ram"),
        (0x9f000, 0xa0000, "reserved"),
        (0xf0000, 0x100000, "reserved"),
        (0x100000, 0x7000000, "ram"),
        (0x7000000, 0x7001000, "nvs"),
        (0x7001000, 0x7003000, "reserved"),
        (0x7003000, 0xffe0000, "ram"),
        (0xffe0000, 0x10000000, "reserved"),
        (0xb0000000, 0xc0000000, "reserved"),
        (0xfffc0000, 0x100000000, "reserved"),
    ];
    let got: Vec<(u64, u64, &str)> = got.iter().map(|(a, b, t)| (*a, *b, t.as_str())).collect();
    assert_eq!(got, want, "{d}");
    // The heap is RAM, clear of the NVS and reserved pages.
    let heap = run.value("heap").unwrap();
    let (a, b) = heap.split_once(' ').unwrap().0.split_once('-').unwrap();
    let (a, b) = (parse_hex(a), parse_hex(b));
    assert!(want.iter().any(|(s, e, t)| *t == "ram" && *s <= a && b <= *e), "{d}");
    assert!(run.has("hvmlite: ready"), "{d}");
}

#[test]
fn command_line_past_the_end_of_ram_is_refused() {
    assert_refused(&broken(9, false), "cmdline 0x20000000-0x20000001 lies outside the memory map");
}

#[test]
fn module_list_past_the_end_of_ram_is_refused() {
    assert_refused(&broken(10, false), "modlist 0x40000000-0x40000020 lies outside the memory map");
}

#[test]
fn module_straddling_the_end_of_ram_is_refused() {
    assert_refused(&broken(11, true), "module 0 0xffff800-0x10000800 lies outside the memory map");
}

#[test]
fn memmap_above_the_early_map_is_refused() {
    // QEMU 7.2 puts the memmap at 0x5a8; the shim adds 64 GiB.
    assert_refused(&broken(12, false), "memmap at 0x10000005a8+0x18 is outside addressable memory");
}

#[test]
fn command_line_running_off_the_end_of_ram_is_refused() {
    // 16 bytes of 'x' end RAM; the NUL QEMU's hole reads as lies outside it.
    assert_refused(&broken(13, false), "cmdline 0xffffff0-0x10000001 lies outside the memory map");
}

#[test]
fn start_info_in_the_pci_hole_is_refused() {
    // Nothing answers at 0xc0000000: start_info reads as zeros.
    assert_refused(&broken(14, false), "bad start_info magic 0x00000000 (expected 0x336ec578)");
}

#[test]
fn null_dereference_is_caught_and_reported() {
    let run = boot("128", "hvmlite.crash=null", None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
    let fatal = run.hvmlite().into_iter().find(|l| l.starts_with("FATAL: ")).expect(&d);
    assert!(fatal.starts_with("FATAL: NULL pointer dereference: read at 0x0, rip 0x"), "{d}");
}

#[test]
fn stack_overflow_hits_the_guard_page_and_is_reported() {
    let run = boot("128", "hvmlite.crash=stack", None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_CRASH), "{d}");
    let fatal = run.hvmlite().into_iter().find(|l| l.starts_with("FATAL: ")).expect(&d);
    assert!(fatal.starts_with("FATAL: stack overflow: write at 0x") && fatal.contains("in the stack guard page"), "{d}");
}

/// A change to stage 0's record (head.s: `u32` src, len, out, out_len
/// after the magic) and to the LZ4 block.
type Damage = Box<dyn Fn(&mut [u32; 4], &mut [u8])>;

/// Where stage 0's record lies in the image file (after its magic) and
/// its four fields.
fn squash_record(b: &[u8]) -> (usize, [u32; 4]) {
    let at = b.windows(16).position(|w| w == b"hvmlite-squash\0\0").expect("the squash record") + 16;
    let mut r = [0u32; 4];
    for (i, v) in r.iter_mut().enumerate() {
        *v = u32::from_le_bytes(b[at + 4 * i..at + 4 * i + 4].try_into().unwrap());
    }
    (at, r)
}

/// The installed image, squashed, with its record and block changed by `f`.
fn damaged(name: &str, f: Damage) -> std::path::PathBuf {
    let mut b = std::fs::read(image()).unwrap();
    let (at, mut r) = squash_record(&b);
    // The block's file offset: the head lies in the file as in memory.
    let (_, loads) = elf_loads(&b);
    let head = loads.iter().find(|l| (l.offset..l.offset + l.filesz).contains(&(at as u64))).expect("the record lies in a PT_LOAD");
    let block = (head.offset + u64::from(r[0]) - head.paddr) as usize;
    f(&mut r, &mut b[block..]);
    for (i, v) in r.iter().enumerate() {
        b[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    let p = scratch("squash").join(format!("{name}.elf"));
    std::fs::write(&p, &b).unwrap();
    p
}

#[test]
fn the_image_is_squashed_and_unpacks_itself() {
    let b = std::fs::read(image()).unwrap();
    let (_, r) = squash_record(&b);
    let (len, out_len) = (r[1] as usize, r[3] as usize);
    assert!(len > 0 && len < out_len && b.len() < out_len, "record {len} → {out_len}, file {}", b.len());
    // Booted, it gets as far as the report and a clean poweroff.
    let run = boot("128", "poweroff", None);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    assert_eq!(run.value("entry"), Some("pvh"), "{d}");
}

#[test]
fn a_damaged_squashed_image_ends_in_one_fatal_line() {
    // Crafted blocks start `token, literal 'A', 16-bit offset`: a match
    // after one unpacked byte; then more length bytes or last literals.
    let crafted = |bytes: &'static [u8]| {
        move |r: &mut [u32; 4], block: &mut [u8]| {
            block[..bytes.len()].copy_from_slice(bytes);
            r[1] = bytes.len() as u32;
            r[3] = 10;
        }
    };
    let cases: Vec<(&str, Damage)> = vec![
        ("ends-early", Box::new(|r, _| r[3] += 1)),
        ("unpacks-past-its-length", Box::new(|r, _| r[3] -= 100)),
        ("cut-short", Box::new(|r, _| r[1] -= 7)),
        ("offset-before-the-image", Box::new(crafted(b"\x10A\x02\x00\x50BBBBB"))),
        ("offset-zero", Box::new(crafted(b"\x10A\x00\x00\x50BBBBB"))),
        ("literals-past-the-input", Box::new(crafted(b"\xf0\xff\xff\x10AB"))),
        ("length-bytes-past-the-input", Box::new(crafted(b"\x1fA\x01\x00\xff\xff"))),
        // 2 MiB of 'A' from a few KB: past the image, over stage 0 itself.
        (
            "output-past-the-image",
            Box::new(|r: &mut [u32; 4], block: &mut [u8]| {
                let mut b = b"\x1fA\x01\x00".to_vec();
                b.extend(std::iter::repeat_n(0xff, 8300));
                b.extend_from_slice(b"\x00\x50BBBBB");
                block[..b.len()].copy_from_slice(&b);
                r[1] = b.len() as u32;
                r[3] = 1 + 4 + 15 + 255 * 8300 + 5;
            }),
        ),
        ("input-inside-the-image", Box::new(|r, _| r[0] = 0x100000)),
    ];
    for (name, f) in cases {
        let run = qemu(&pvh_args(&damaged(name, f), "128", "poweroff", None), &[], T);
        let d = run.dump();
        assert_eq!(run.status, Some(QEMU_CRASH), "{name}: {d}");
        assert_eq!(run.hvmlite(), ["FATAL: the squashed image does not unpack: hvmlite.elf is damaged", "shutdown: crash"], "{name}: {d}");
    }
}
