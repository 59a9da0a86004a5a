//! Booting the kernel inside the domain's own disk, on the real Xen host
//! (4.17, or 4.20 with `HVMLITE_XEN_HOST`; the disks' kernel is the guest
//! kernel `HVMLITE_GUEST_LINUX` picks): `xl create` of
//! `xen/hvmlite-disk.cfg` with a disk that dom0 serves through blkback
//! from a loop device. The disks hold Debian's kernel and an initramfs
//! whose `/init` mounts the same disk (the disk hvmlite handed back) and
//! prints a file from it.

#[path = "support/btrfs_image.rs"]
mod btrfs_image;
mod common;
#[path = "common/disk.rs"]
mod disk;
#[path = "common/layouts.rs"]
mod layouts;
#[path = "common/linux.rs"]
mod linux_support;
#[path = "support/xfs_image.rs"]
mod xfs_image;

use common::xen_host::{self, Scenario};
use common::*;
use disk::*;
use layouts::{grubenv, sparse_disk_script, FEDORA_OLD, UBUNTU_ROOT_UUID};
use linux_support::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(600);
/// What every entry gives Linux (its console is the PV console).
const OPTS: &str = "console=hvc0 panic=-1";

/// The kernel file's name in the package, e.g. `vmlinuz-6.1.0-56-amd64`.
fn kernel_name() -> String {
    linux().vmlinuz.file_name().unwrap().to_str().unwrap().to_string()
}

/// The files every test filesystem has: the kernel, the initrd, a file
/// for `/init` to read back.
fn base(hello: &str) -> Vec<Item<'static>> {
    let (k, ver) = (kernel_name(), kernel_version());
    let kpath: &'static str = Box::leak(format!("/boot/{k}").into_boxed_str());
    let ipath: &'static str = Box::leak(format!("/boot/initrd.img-{ver}").into_boxed_str());
    vec![
        Item::File(kpath, std::fs::read(&linux().vmlinuz).unwrap()),
        Item::File(ipath, disk_initrd()),
        Item::File("/hello.txt", hello.as_bytes().to_vec()),
    ]
}

fn version() -> String {
    kernel_name().trim_start_matches("vmlinuz-").to_string()
}

/// The four layouts the issue names, and an ESP, each with what `/init`
/// must find.
fn disks() -> Vec<(&'static str, Vec<u8>)> {
    let v = version();
    let mib = 24;
    // MBR, ext4 in partition 1, Debian's grub.cfg.
    let mut items = base("hello from the MBR disk");
    // Debian's grub.cfg; `set default="1>0"` picks the first entry of the
    // submenu (GRUB counts from 0).
    let grub = debian_grub_cfg(&v, "7a8a", "1>0", 0, |tag| format!("{OPTS} test.mount=xvda1 test.entry={tag}"));
    items.push(Item::File("/boot/grub/grub.cfg", grub.into_bytes()));
    let mbr = mbr_disk(2048 + mib * 2048, &[Part { start: 2048, data: ext4("mbr", mib, &items), mbr_type: 0x83 }]);
    // GPT: partition 1 not a filesystem, ext4 in partition 2 with two BLS
    // entries; the newer version is the default.
    let mut items = base("hello from the GPT disk");
    let bls = |title: &str, ver: &str, tag: &str| {
        format!(
            "title {title}\nversion {ver}\nlinux /boot/vmlinuz-{v}\ninitrd /boot/initrd.img-{v}\noptions {OPTS} test.mount=xvda2 test.entry={tag}\n"
        )
    };
    // Named as distributions name them (machine id, then the version):
    // without a sort-key, entries sort by name, newest version first.
    items.push(Item::File("/loader/entries/7a8a-6.1.0-9-amd64.conf", bls("Debian old", "6.1.0-9-amd64", "old").into_bytes()));
    items.push(Item::File("/loader/entries/7a8a-6.1.0-56-amd64.conf", bls("Debian new", "6.1.0-56-amd64", "new").into_bytes()));
    let gpt = gpt_disk(
        4096 + mib * 2048 + 34,
        &[Part { start: 2048, data: vec![0; 1 << 20], mbr_type: 0 }, Part { start: 4096, data: ext4("gpt", mib, &items), mbr_type: 0 }],
    );
    // The whole disk one ext4, with only Debian's symlinks.
    let mut items = base("hello from the whole disk");
    let k: &'static str = Box::leak(format!("boot/vmlinuz-{v}").into_boxed_str());
    let i: &'static str = Box::leak(format!("boot/initrd.img-{v}").into_boxed_str());
    items.push(Item::Link("/vmlinuz", k));
    items.push(Item::Link("/initrd.img", i));
    let whole = ext4("whole", mib, &items);
    // extlinux.conf on an MBR disk.
    let mut items = base("hello from the extlinux disk");
    let conf = format!(
        "DEFAULT debian\nTIMEOUT 10\nLABEL other\n  LINUX /boot/vmlinuz-{v}\n  APPEND {OPTS} test.mount=xvda1 test.entry=other\n\
         LABEL debian\n  MENU LABEL Debian\n  LINUX /boot/vmlinuz-{v}\n  INITRD /boot/initrd.img-{v}\n  APPEND {OPTS} test.mount=xvda1 test.entry=extlinux\n"
    );
    items.push(Item::File("/boot/extlinux/extlinux.conf", conf.into_bytes()));
    let ext = mbr_disk(2048 + mib * 2048, &[Part { start: 2048, data: ext4("extlinux", mib, &items), mbr_type: 0x83 }]);
    vec![("mbr-grub", mbr), ("gpt-bls", gpt), ("whole-symlinks", whole), ("extlinux", ext), ("esp-bls", esp_disk())]
}

/// GPT: an EFI system partition (FAT, long names) holding a BLS entry and
/// the kernel and initrd it names, laid out as systemd's kernel-install
/// does (`/MACHINE-ID/VERSION/linux`); ext4 in partition 2 for `/init`.
fn esp_disk() -> Vec<u8> {
    let v = version();
    let entry = format!(
        "title Debian on the ESP\nversion {v}\nlinux /7a8a/{v}/linux\ninitrd /7a8a/{v}/initrd\noptions {OPTS} test.mount=xvda2 test.entry=esp\n"
    );
    let (conf, kpath, ipath) = (format!("/loader/entries/7a8a-{v}.conf"), format!("/7a8a/{v}/linux"), format!("/7a8a/{v}/initrd"));
    let (kernel, initrd) = (std::fs::read(&linux().vmlinuz).unwrap(), disk_initrd());
    let esp_mib = 32;
    let esp = hvmlite::disk::fat::image::make(
        esp_mib << 20,
        b"ESP        ",
        &[(conf.as_str(), entry.as_bytes()), (kpath.as_str(), &kernel), (ipath.as_str(), &initrd)],
    );
    let data = ext4("esp-data", 8, &[Item::File("/hello.txt", b"hello from the ESP disk".to_vec())]);
    let second = 2048 + esp_mib as u64 * 2048;
    gpt_disk(second + 8 * 2048 + 34, &[Part { start: 2048, data: esp, mbr_type: 0xef }, Part { start: second, data, mbr_type: 0 }])
}

/// Unpack disk image `name` (one at a time: dom0's memory is small) and
/// give it a loop device in `$dev`.
fn disk_script(name: &str) -> String {
    format!(
        r#"losetup -d "$dev" 2>/dev/null; rm -f /scenario/disk.img
gunzip -c /scenario/{name}.img.gz > /scenario/disk.img && rm /scenario/{name}.img.gz && dev=$(attach /scenario/disk.img) || exit 8
"#
    )
}

/// Boot the disk in `$dev` once as the domain's xvda; `extra` goes on `cmdline`.
fn boot_script(label: &str, extra: &str) -> String {
    format!(
        r#"echo "=== xl create ({label})"
xl create /etc/xen/hvmlite-disk.cfg 'kernel="/usr/lib/hvmlite/hvmlite.elf"' "disk=['format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-sh, target=$dev']" 'cmdline="{extra}"' || exit 10
wait_gone hvmlite-disk 150 || {{ xl list; echo "=== console ({label}, still running)"; cat /var/log/xen/console/guest-hvmlite-disk.log; exit 11; }}
echo "=== console ({label})"
cat /var/log/xen/console/guest-hvmlite-disk.log
rm -f /var/log/xen/console/guest-hvmlite-disk.log
"#
    )
}

/// One domain's console log: hvmlite's lines and `/init`'s.
struct Guest<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Guest<'a> {
    fn from(r: &'a xen_host::HostRun, label: &str) -> Self {
        Guest { lines: r.section(&format!("=== console ({label})")) }
    }
    fn hv(&self, key: &str) -> Option<&'a str> {
        let k = format!("hvmlite: {key}");
        self.lines.iter().find_map(|l| l.strip_prefix(k.as_str()))
    }
    fn init(&self, key: &str) -> Option<&'a str> {
        let k = format!("{INIT}{key}");
        self.lines.iter().find_map(|l| l.split_once(k.as_str()).map(|(_, r)| r))
    }
}

/// Linux reached `/init` with exactly the entry's options plus the
/// domain's command line, and read `hello` from partition `part` of the
/// disk hvmlite handed back.
fn assert_booted(g: &Guest, d: &str, entry: &str, options: &str, domain: &str, part: &str, hello: &str) {
    let e = g.hv("boot entry: ").unwrap_or_else(|| panic!("no boot entry line: {d}"));
    assert!(e.contains(entry), "entry {entry:?} not chosen: {e}\n{d}");
    let want = if domain.is_empty() { options.to_string() } else { format!("{options} {domain}") };
    assert_eq!(g.init("cmdline: ").map(str::trim), Some(want.as_str()), "{d}");
    assert!(g.lines.iter().any(|l| l.contains("Booting paravirtualized kernel on Xen PVH")), "{d}");
    assert_eq!(g.init("disk: "), Some(format!("{part}: {hello}").as_str()), "{d}");
    assert!(g.init("hvmlite-linux-test: done").is_some(), "{d}");
    assert!(g.hv("disk: xvda: handed back").is_some(), "{d}");
}

/// The host's QEMU no longer delivers an interrupt twice
/// (tests/xen-host/qemu/): with an exit request raised after every
/// interrupt Xen injects, which in Debian's QEMU made the second delivery
/// happen at each one and killed Linux within seconds of its start (`BUG:
/// ENTRY_TRAMPOLINE stack guard page was hit`, the Xen callback's handler
/// interrupted at its first instruction with interrupts off), the disk
/// boot still reaches `/init` and powers off cleanly.
#[test]
fn linux_survives_an_exit_request_after_every_injected_interrupt() {
    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let (name, data) = disks().into_iter().next().unwrap();
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    script.push_str(&disk_script(name));
    script.push_str(&boot_script("kicked", ""));
    script.push_str("echo \"=== end\"\n");
    let mut s = Scenario::new(&script)
        .config("hvmlite-disk.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
        .file_from(&format!("/scenario/{name}.img.gz"), &save_gz(name, &data));
    s.svm_kick_every = 1;
    let r = xen_host::run("disk-kicked", &s, T);
    let d = r.dump();
    assert!(r.run.lines.iter().any(|l| l.contains("x-svm-kick-every: exit request after injected vector")), "QEMU never kicked: {d}");
    assert_eq!(r.rc, Some(0), "{d}");
    let g = Guest::from(&r, "kicked");
    assert!(g.init("hvmlite-linux-test: done").is_some(), "{d}");
    let bad = ["BUG:", "Oops", "Kernel panic", "general protection"];
    assert!(!g.lines.iter().any(|l| bad.iter().any(|b| l.contains(b))), "{d}");
}

/// Every disk of [`disks`], by name.
const KINDS: [&str; 5] = ["mbr-grub", "gpt-bls", "whole-symlinks", "extlinux", "esp-bls"];

/// The disks `boots_the_kernel_on_each_kind_of_disk` boots: all of
/// [`KINDS`], or those `HVMLITE_DISK_KINDS` names (comma-separated).
/// `make test` boots all of them on the 4.17 host and two, `mbr-grub` and
/// `esp-bls` (the kernel read from ext4 and from FAT), with Linux 6.12 on
/// the 4.20 host: which disk a kernel comes from is hvmlite's own code,
/// the same on either host, and each of those boots takes a minute there.
fn kinds() -> Vec<&'static str> {
    match std::env::var("HVMLITE_DISK_KINDS") {
        Ok(v) if !v.is_empty() => v
            .split(',')
            .map(|k| KINDS.iter().copied().find(|&n| n == k).unwrap_or_else(|| panic!("HVMLITE_DISK_KINDS: {k:?} is none of {KINDS:?}")))
            .collect(),
        _ => KINDS.to_vec(),
    }
}

#[test]
fn boots_the_kernel_on_each_kind_of_disk() {
    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let kinds = kinds();
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    let mut files = Vec::new();
    let all = disks();
    assert!(all.iter().map(|d| d.0).eq(KINDS), "KINDS must name every disk of disks()");
    for (name, data) in all.into_iter().filter(|(n, _)| kinds.contains(n)) {
        files.push((format!("/scenario/{name}.img.gz"), save_gz(name, &data)));
    }
    // Each disk, and the boots (label, domain command line) made of it.
    let whole = format!("{OPTS} test.mount=xvda");
    let boots: [(&str, &[(&str, &str)]); 5] = [
        ("mbr-grub", &[("mbr-grub", "hvmlite.test=mbr")]),
        ("gpt-bls", &[("gpt-bls", ""), ("gpt-bls-override", "hvmlite.root=xvda2 hvmlite.entry=1")]),
        ("whole-symlinks", &[("whole", &whole)]),
        ("extlinux", &[("extlinux", "")]),
        ("esp-bls", &[("esp-bls", "")]),
    ];
    for (disk, runs) in boots.iter().filter(|(n, _)| kinds.contains(n)) {
        script.push_str(&disk_script(disk));
        for (label, extra) in runs.iter() {
            script.push_str(&boot_script(label, extra));
        }
    }
    script.push_str("echo \"=== end\"\n");
    let mut s = Scenario::new(&script).config("hvmlite-disk.cfg", &cfg).file_from("/usr/lib/hvmlite/hvmlite.elf", &image());
    for (at, from) in &files {
        s = s.file_from(at, from);
    }
    let r = xen_host::run("disk-boot", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let mnt = |p: &str| format!("{OPTS} test.mount={p}");

    if kinds.contains(&"mbr-grub") {
        let g = Guest::from(&r, "mbr-grub");
        assert!(g.hv("disk: xvda: MBR, 1 partition").is_some(), "{d}");
        let opts = format!("root=UUID=7a8a ro {} test.entry=advanced", mnt("xvda1"));
        assert_booted(
            &g,
            &d,
            "grub.cfg /boot/grub/grub.cfg: \"Debian GNU/Linux, with Linux",
            &opts,
            "hvmlite.test=mbr",
            "xvda1",
            "hello from the MBR disk",
        );
    }

    if kinds.contains(&"gpt-bls") {
        let g = Guest::from(&r, "gpt-bls");
        assert!(g.hv("disk: xvda: GPT, 2 partitions").is_some(), "{d}");
        assert!(g.hv("disk: xvda1: not ext2/3/4, XFS, btrfs or FAT").is_some(), "{d}");
        assert_booted(
            &g,
            &d,
            "\"Debian new\" (0 of 2, first)",
            &format!("{} test.entry=new", mnt("xvda2")),
            "",
            "xvda2",
            "hello from the GPT disk",
        );
        // hvmlite.root= names the partition: the other one is not looked at.
        let g = Guest::from(&r, "gpt-bls-override");
        let opts = format!("{} test.entry=old", mnt("xvda2"));
        let domain = "hvmlite.root=xvda2 hvmlite.entry=1";
        assert_booted(
            &g,
            &d,
            "xvda2 BLS entry /loader/entries: \"Debian old\" (1 of 2, hvmlite.entry)",
            &opts,
            domain,
            "xvda2",
            "hello from the GPT disk",
        );
        assert!(g.hv("disk: xvda1").is_none(), "xvda1 looked at despite hvmlite.root=xvda2: {d}");
    }

    if kinds.contains(&"whole-symlinks") {
        let g = Guest::from(&r, "whole");
        assert!(g.hv("disk: xvda: no partition table").is_some(), "{d}");
        // Debian's symlinks carry no options: the domain's command line only.
        let e = g.hv("boot entry: ").unwrap_or_else(|| panic!("{d}"));
        assert!(e.contains("Debian symlinks"), "{d}");
        assert_eq!(g.init("cmdline: ").map(str::trim), Some(mnt("xvda").as_str()), "{d}");
        assert_eq!(g.init("disk: "), Some("xvda: hello from the whole disk"), "{d}");
    }

    if kinds.contains(&"extlinux") {
        let g = Guest::from(&r, "extlinux");
        assert_booted(
            &g,
            &d,
            "extlinux.conf",
            &format!("{} test.entry=extlinux", mnt("xvda1")),
            "",
            "xvda1",
            "hello from the extlinux disk",
        );
    }
    if kinds.contains(&"esp-bls") {
        let g = Guest::from(&r, "esp-bls");
        assert!(g.hv("disk: xvda: GPT, 2 partitions").is_some(), "{d}");
        let e = g.hv("boot entry: ").unwrap_or_else(|| panic!("{d}"));
        assert!(e.starts_with("xvda1 FAT") && e.contains(" BLS entry /loader/entries: \"Debian on the ESP\""), "{e}\n{d}");
        assert_booted(&g, &d, "(0 of 1, first)", &format!("{} test.entry=esp", mnt("xvda2")), "", "xvda2", "hello from the ESP disk");
    }
    for label in ["mbr-grub", "gpt-bls", "extlinux", "esp-bls"].into_iter().filter(|l| kinds.contains(l)) {
        let g = Guest::from(&r, label);
        let read = g.hv("disk: read ").unwrap_or_else(|| panic!("no read line for {label}: {d}"));
        eprintln!("disk-boot {label}: read {read}");
    }
}

/// What admins rely on a bootloader for, on the real host: `grub-reboot`
/// taken once then cleared in grubenv (and nothing else on the disk
/// written), on ext4 and on FAT, the console menu driven by keys (choose, edit, boot), an
/// entry from `custom.cfg` (sourced by grub.cfg) chosen by `saved_entry`,
/// a stale `saved_entry` falling back to the first entry after the disk's
/// own 2 s menu, and Alpine's `/extlinux.conf` on a `/boot` partition with
/// `MENU DEFAULT`.
#[test]
fn boot_menu_grubenv_one_shot_custom_cfg_stale_default_and_alpine() {
    let v = version();
    let mib = 24;
    let mnt = |tag: &str| format!("{OPTS} test.mount=xvda1 test.entry={tag}");
    let grub_disk = |name: &str, default: &str, timeout: u32, env: Vec<u8>, custom: Option<String>| {
        let mut items = base(&format!("hello from the {name} disk"));
        items.push(Item::File("/boot/grub/grub.cfg", debian_grub_cfg(&v, "7a8a", default, timeout, mnt).into_bytes()));
        items.push(Item::File("/boot/grub/grubenv", env));
        if let Some(c) = custom {
            items.push(Item::File("/boot/grub/custom.cfg", c.into_bytes()));
        }
        mbr_disk(2048 + mib * 2048, &[Part { start: 2048, data: ext4(name, mib, &items), mbr_type: 0x83 }])
    };
    let next = format!("next_entry=gnulinux-advanced-7a8a>gnulinux-{v}-recovery-7a8a");
    let (old_env, new_env) = (grubenv(&["saved_entry=0", &next]), grubenv(&["saved_entry=0", "next_entry="]));
    let reboot = grub_disk("reboot", "0", 0, old_env.clone(), None);
    // The same on an ESP-like FAT partition (grub.cfg, grubenv and the
    // kernel on FAT; `/init`'s partition ext4 beside it).
    let reboot_fat = {
        let cfg = debian_grub_cfg(&v, "7a8a", "0", 0, |tag| format!("{OPTS} test.mount=xvda2 test.entry={tag}"));
        let mut files: Vec<(String, Vec<u8>)> = base("")
            .into_iter()
            .filter_map(|i| match i {
                Item::File(p, d) if p != "/hello.txt" => Some((p.to_string(), d)),
                _ => None,
            })
            .collect();
        files.push(("/boot/grub/grub.cfg".into(), cfg.into_bytes()));
        files.push(("/boot/grub/grubenv".into(), old_env.clone()));
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        let fat = hvmlite::disk::fat::image::make(16 << 20, b"ESP        ", &files);
        let data = ext4("reboot-fat-data", 8, &[Item::File("/hello.txt", b"hello from the FAT disk".to_vec())]);
        let second = 2048 + 16 * 2048;
        mbr_disk(second + 8 * 2048, &[Part { start: 2048, data: fat, mbr_type: 0xef }, Part { start: second, data, mbr_type: 0x83 }])
    };
    let custom = format!(
        "menuentry 'Rescue (custom.cfg)' --id custom-rescue {{\n\tlinux /boot/vmlinuz-{v} root=UUID=7a8a ro {}\n\tinitrd /boot/initrd.img-{v}\n}}\n",
        mnt("custom")
    );
    let custom = grub_disk("custom", "${saved_entry}", 0, grubenv(&["saved_entry=custom-rescue"]), Some(custom));
    // This one asks for its menu for 2 s.
    let stale = grub_disk("stale", "${saved_entry}", 2, grubenv(&["saved_entry=gnulinux-5.10.0-9-amd64-advanced-7a8a"]), None);
    // Alpine: a /boot partition holding extlinux.conf, the kernels beside it.
    let alpine = layouts::alpine(mnt);

    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    // The disk as it was is its gzip file, kept until compared (dom0's
    // memory holds no second copy).
    let keep = |name: &str| format!("ln /scenario/{name}.img.gz /scenario/orig.img.gz\n{}", disk_script(name));
    let cmp = |label: &str| {
        format!("echo \"=== cmp ({label})\"\necho \"bytes changed: $(gunzip -c /scenario/orig.img.gz | cmp -l - /scenario/disk.img | wc -l)\"\nrm /scenario/orig.img.gz\n")
    };
    script.push_str(&keep("reboot"));
    script.push_str(&boot_script("reboot-1", ""));
    script.push_str(&boot_script("reboot-2", ""));
    script.push_str(&cmp("ext4"));
    // The menu on the same disk.
    script.push_str(&menu_script());
    script.push_str(&keep("reboot-fat"));
    script.push_str(&boot_script("reboot-fat", ""));
    script.push_str(&cmp("FAT"));
    for name in ["custom", "stale", "alpine"] {
        script.push_str(&disk_script(name));
        script.push_str(&boot_script(name, ""));
    }
    script.push_str("echo \"=== end\"\n");
    let mut s = Scenario::new(&script).config("hvmlite-disk.cfg", &cfg).file_from("/usr/lib/hvmlite/hvmlite.elf", &image());
    for (name, data) in [("reboot", &reboot), ("reboot-fat", &reboot_fat), ("custom", &custom), ("stale", &stale), ("alpine", &alpine)] {
        s = s.file_from(&format!("/scenario/{name}.img.gz"), &save_gz(name, data));
    }
    let r = xen_host::run("disk-admin", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");

    // grub-reboot's entry once, cleared in grubenv; then the default.
    let g = Guest::from(&r, "reboot-1");
    let want = format!("root=UUID=7a8a ro single {}", mnt("recovery"));
    assert_booted(
        &g,
        &d,
        &format!("\"Debian GNU/Linux, with Linux {v} (recovery mode)\" (2 of 3, default)"),
        &want,
        "",
        "xvda1",
        "hello from the reboot disk",
    );
    assert_eq!(g.hv("grubenv: "), Some("xvda1 /boot/grub/grubenv written: next_entry="), "{d}");
    let env: Vec<&str> = g.lines.iter().filter_map(|l| l.split_once("init: grubenv: ").map(|(_, r)| r)).collect();
    assert_eq!(env, ["saved_entry=0", "next_entry="], "{d}");
    let g = Guest::from(&r, "reboot-2");
    assert_booted(
        &g,
        &d,
        "\"Debian GNU/Linux\" (0 of 3, default)",
        &format!("root=UUID=7a8a ro {}", mnt("simple")),
        "",
        "xvda1",
        "hello from the reboot disk",
    );
    assert_eq!(g.hv("grubenv: "), None, "nothing to write on the second boot: {d}");
    // The only bytes of the disk that changed are grubenv's.
    let changed = old_env.iter().zip(&new_env).filter(|(a, b)| a != b).count();
    let bytes_changed = format!("bytes changed: {changed}");
    assert_eq!(r.section("=== cmp (ext4)").first().copied(), Some(bytes_changed.as_str()), "{d}");
    // On FAT: the same, in the file's clusters; its directory entry and
    // the FAT untouched.
    let g = Guest::from(&r, "reboot-fat");
    let want = format!("root=UUID=7a8a ro single {OPTS} test.mount=xvda2 test.entry=recovery");
    assert_booted(
        &g,
        &d,
        "xvda1 FAT16 grub.cfg /boot/grub/grub.cfg: \"Debian GNU/Linux, with Linux",
        &want,
        "",
        "xvda2",
        "hello from the FAT disk",
    );
    assert_eq!(g.hv("grubenv: "), Some("xvda1 /boot/grub/grubenv written: next_entry="), "{d}");
    assert_eq!(r.section("=== cmp (FAT)").first().copied(), Some(bytes_changed.as_str()), "{d}");

    let g = Guest::from(&r, "custom");
    let want = format!("root=UUID=7a8a ro {}", mnt("custom"));
    assert_booted(
        &g,
        &d,
        "/boot/grub/grub.cfg: \"Rescue (custom.cfg)\" (3 of 4, default)",
        &want,
        "",
        "xvda1",
        "hello from the custom disk",
    );

    // The menu, driven by keys written to the domain's console tty (what
    // `xl console` does): down, down, up, `e`, text typed, Enter.
    let g = Guest::from(&r, "menu");
    assert!(g.hv("boot menu of xvda1 /boot/grub/grub.cfg").is_some(), "{d}");
    assert!(g.lines.iter().any(|l| l.contains("Up/Down or a number chooses, Enter boots, e edits the command line.")), "{d}");
    assert!(g.lines.iter().any(|l| l.contains("The command line of \"Debian GNU/Linux, with Linux")), "{d}");
    let want = format!("root=UUID=7a8a ro {} test.edited=yes", mnt("advanced"));
    assert_booted(
        &g,
        &d,
        &format!("\"Debian GNU/Linux, with Linux {v}\" (1 of 3, menu)"),
        &want,
        "hvmlite.menu=-1",
        "xvda1",
        "hello from the reboot disk",
    );

    let g = Guest::from(&r, "stale");
    // Its own `set timeout=2`: the menu, counting down, then the default.
    assert!(g.hv("boot menu of xvda1 /boot/grub/grub.cfg").is_some(), "{d}");
    assert!(g.lines.iter().any(|l| l.contains("Booting \"Debian GNU/Linux\" in 2 s.")), "{d}");
    let w = g.hv("warning: boot entry: xvda1: ").unwrap_or_else(|| panic!("no fall-back warning: {d}"));
    assert!(
        w.ends_with("the default \"gnulinux-5.10.0-9-amd64-advanced-7a8a\" names no entry; booting the first entry, as GRUB does"),
        "{w}"
    );
    let want = format!("root=UUID=7a8a ro {}", mnt("simple"));
    assert_booted(
        &g,
        &d,
        "\"Debian GNU/Linux\" (0 of 3, first: the default names no entry)",
        &want,
        "",
        "xvda1",
        "hello from the stale disk",
    );

    let g = Guest::from(&r, "alpine");
    assert_booted(
        &g,
        &d,
        "xvda1 extlinux.conf /extlinux.conf: \"Linux lts\" (1 of 2, default)",
        &mnt("lts"),
        "",
        "xvda1",
        "hello from the alpine disk",
    );
}

/// Ubuntu 24.04's cloud-image layout: GPT with root in partition 1, BIOS
/// boot 14, the ESP 15 (FAT, GRUB's stub `EFI/ubuntu/grub.cfg` only) and
/// `/boot` on ext4 in 16, with Ubuntu's grub.cfg (`recordfail`,
/// `initrdfail`, `load_video`, `gfxmode`, `hwmatch`, `fwsetup`). The first
/// boot is hidden and at once, and its entry's `recordfail` is saved; the
/// second shows the menu for 30 s because of it, as Ubuntu's GRUB does
/// after a boot that did not reach `grub-common`'s success mark, and
/// Down, Enter boots the second entry.
#[test]
fn ubuntu_cloud_layout_recordfail_shows_the_menu_next_time() {
    let v = version();
    let root_uuid = UBUNTU_ROOT_UUID;
    let extra = format!("{OPTS} test.mount=xvda16");
    let disk = layouts::ubuntu(&extra);

    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    script.push_str(&disk_script("ubuntu"));
    script.push_str(&boot_script("ubuntu-1", ""));
    script.push_str(&keys_script("ubuntu-2", "", &[r"\033[B", r"\r"]));
    script.push_str("echo \"=== end\"\n");
    let s = Scenario::new(&script)
        .config("hvmlite-disk.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
        .file_from("/scenario/ubuntu.img.gz", &save_gz("ubuntu", &disk));
    let r = xen_host::run("disk-ubuntu", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let want = |tag: &str| format!("root=UUID={root_uuid} ro console=tty1 console=ttyS0 {extra}{tag}");
    let g = Guest::from(&r, "ubuntu-1");
    assert!(g.hv("disk: xvda: GPT, 4 partitions").is_some(), "{d}");
    assert!(g.hv("disk: xvda15: no boot configuration").is_some(), "the ESP's stub is not a configuration: {d}");
    assert_booted(
        &g,
        &d,
        "xvda16 grub.cfg /grub/grub.cfg: \"Ubuntu\" (0 of 2, default)",
        &want(""),
        "",
        "xvda16",
        "hello from the Ubuntu /boot",
    );
    assert!(g.hv("boot menu").is_none(), "hidden, timeout 0: {d}");
    assert_eq!(g.hv("grubenv: "), Some("xvda16 /grub/grubenv written: recordfail=1"), "{d}");
    let g = Guest::from(&r, "ubuntu-2");
    assert!(g.lines.iter().any(|l| l.contains("Booting \"Ubuntu\" in 30 s.")), "recordfail: the menu for 30 s: {d}");
    let title = format!("\"Ubuntu, with Linux {v}\" (1 of 2, menu)");
    assert_booted(&g, &d, &title, &want(""), "", "xvda16", "hello from the Ubuntu /boot");
}

/// Fedora's two layouts. Server: GPT, `/boot` on XFS (mkfs.xfs's current
/// defaults with rmapbt and nrext64), ext4 in partition 2 for `/init` to
/// read. Cloud (40-43): GPT with BIOS boot, an ESP whose
/// `EFI/fedora/grub.cfg` is the stub that finds `/boot` by UUID, `/boot`
/// ext4 in partition 3 (where `/init` reads too). Both boot the older
/// kernel `saved_entry` names, and Fedora's `save_env boot_success
/// boot_indeterminate` is written back in place on both.
#[test]
fn fedora_server_xfs_and_cloud_ext4_with_blscfg_and_saved_entry() {
    let old = FEDORA_OLD;
    let server = layouts::fedora_server(&format!("{OPTS} test.mount=xvda2"));
    let cloud = layouts::fedora_cloud(&format!("{OPTS} test.mount=xvda3"));

    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    // Both disks and a 64 MiB unpacked one do not fit dom0's RAM: only
    // their non-zero sectors travel.
    let (unpack, server) = sparse_disk_script("fedora", &server);
    script.push_str(&unpack);
    script.push_str(&boot_script("fedora", ""));
    let (unpack, cloud) = sparse_disk_script("fedora-cloud", &cloud);
    script.push_str(&unpack);
    script.push_str(&boot_script("fedora-cloud", ""));
    script.push_str("echo \"=== end\"\n");
    let s = Scenario::new(&script)
        .config("hvmlite-disk.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
        .file_from("/scenario/fedora.runs.gz", &save_gz("fedora-runs", &server))
        .file_from("/scenario/fedora-cloud.runs.gz", &save_gz("fedora-cloud-runs", &cloud));
    let r = xen_host::run("disk-fedora", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = Guest::from(&r, "fedora");
    let want = format!("root=UUID=7a8a ro {OPTS} test.mount=xvda2 test.entry=old");
    let title = format!("xvda1 XFS grub.cfg /grub2/grub.cfg: \"Fedora Linux ({old}) 40 (Server Edition)\" (1 of 2, default)");
    assert_booted(&g, &d, &title, &want, "", "xvda2", "hello from the Fedora disk");
    // Fedora's script saves boot_success=0, written in place on XFS too.
    assert_eq!(g.hv("grubenv: "), Some("xvda1 /grub2/grubenv written: boot_success=0 boot_indeterminate=0"), "{d}");
    let g = Guest::from(&r, "fedora-cloud");
    assert!(g.hv("disk: xvda2: no boot configuration").is_some(), "the ESP's stub is not a configuration: {d}");
    let want = format!("root=UUID=7a8a ro {OPTS} test.mount=xvda3 test.entry=old");
    let title = format!("xvda3 grub.cfg /grub2/grub.cfg: \"Fedora Linux ({old}) 40 (Server Edition)\" (1 of 2, default)");
    assert_booted(&g, &d, &title, &want, "", "xvda3", "hello from Fedora Cloud");
    assert_eq!(g.hv("grubenv: "), Some("xvda3 /grub2/grubenv written: boot_success=0 boot_indeterminate=0"), "{d}");
}

/// btrfs as openSUSE and Arch leave it. openSUSE: GPT, the root btrfs in
/// partition 2 with snapper's snapshot 2 (after an update) the default
/// subvolume; its grub.cfg found there, the snapshot menu sourced through
/// fstab's `/.snapshots`; the default boots the new kernel, and entry 6
/// (snapshot 1's, the admin's way back) boots the old kernel from
/// snapshot 1 with `rootflags=subvol=` for it. Arch: `subvol=@`,
/// `compress-force=zstd` (the kernel stored compressed), GRUB's prefix at
/// `/@/boot/grub`. ext4 in the last partition for `/init` to read.
#[test]
fn opensuse_snapshots_and_arch_compressed_btrfs() {
    let opts = format!("{OPTS} test.mount=xvda3");
    let (suse, uuid) = layouts::opensuse(&opts);
    let (arch, arch_uuid) = layouts::arch(&format!("{OPTS} test.mount=xvda2"));

    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    let (unpack, suse) = sparse_disk_script("opensuse", &suse);
    script.push_str(&unpack);
    script.push_str(&boot_script("opensuse", ""));
    script.push_str(&boot_script("snapshot-1", "hvmlite.entry=6"));
    let (unpack, arch) = sparse_disk_script("arch", &arch);
    script.push_str(&unpack);
    script.push_str(&boot_script("arch", ""));
    script.push_str("echo \"=== end\"\n");
    let s = Scenario::new(&script)
        .config("hvmlite-disk.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
        .file_from("/scenario/opensuse.runs.gz", &save_gz("opensuse-runs", &suse))
        .file_from("/scenario/arch.runs.gz", &save_gz("arch-runs", &arch));
    let r = xen_host::run("disk-btrfs", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let g = Guest::from(&r, "opensuse");
    let want = |extra: &str| format!("root=UUID={uuid} {extra}splash=silent mitigations=auto quiet {opts}");
    let title = "xvda2 btrfs default subvolume grub.cfg /boot/grub2/grub.cfg: \"openSUSE Tumbleweed\" (0 of 8, default)";
    assert_booted(&g, &d, title, &want(""), "", "xvda3", "hello from openSUSE");
    let g = Guest::from(&r, "snapshot-1");
    let title =
        "xvda2 btrfs subvolume /@/.snapshots/1/snapshot grub.cfg /boot/grub2/grub.cfg: \"openSUSE Tumbleweed\" (6 of 8, hvmlite.entry)";
    let options = want("rootflags=subvol=@/.snapshots/1/snapshot ");
    assert_booted(&g, &d, title, &options, "hvmlite.entry=6", "xvda3", "hello from openSUSE");
    let g = Guest::from(&r, "arch");
    let title = "xvda1 btrfs grub.cfg /@/boot/grub/grub.cfg: \"Arch Linux\" (0 of 2, default)";
    let options = format!("root=UUID={arch_uuid} rw rootflags=subvol=@ {OPTS} test.mount=xvda2");
    assert_booted(&g, &d, title, &options, "", "xvda2", "hello from Arch");
}

/// Boot the disk in `$dev` with `hvmlite.menu=-1` (the menu waits for a
/// key) and type into its console tty, as `xl console` would: down, down,
/// up (entry 1), `e`, ` test.edited=yes`, Enter.
fn menu_script() -> String {
    keys_script("menu", "hvmlite.menu=-1", &[r"\033[B", r"\033[B", r"\033[A", "e", " test.edited=yes", r"\r"])
}

/// Boot the disk in `$dev` (`cmdline` on the domain's command line), wait
/// for the boot menu on its console, and type `keys` into its console tty
/// (from xenstore, what `xl console` opens), one `printf` each.
fn keys_script(label: &str, cmdline: &str, keys: &[&str]) -> String {
    let mut typing = String::new();
    for k in keys {
        typing += &format!("printf '{k}' > \"$tty\"; sleep 0.3\n");
    }
    format!(
        r#"echo "=== xl create ({label})"
xl create /etc/xen/hvmlite-disk.cfg 'kernel="/usr/lib/hvmlite/hvmlite.elf"' "disk=['format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-sh, target=$dev']" 'cmdline="{cmdline}"' || exit 10
log=/var/log/xen/console/guest-hvmlite-disk.log
i=0; until grep -q "a number chooses" $log 2>/dev/null; do i=$((i + 1)); [ $i -le 300 ] || {{ echo "the menu never showed"; break; }}; sleep 0.1; done
tty=$(xenstore-read /local/domain/$(xl domid hvmlite-disk)/console/tty)
{typing}wait_gone hvmlite-disk 150 || exit 11
echo "=== console ({label})"
cat $log
rm -f $log
"#
    )
}

/// Start hvmlite with the disk in `$dev`, run `then`, and expect the
/// domain to crash (`on_crash = "preserve"`): its console, then destroy it.
fn crash_script(label: &str, then: &str) -> String {
    format!(
        r#"echo "=== xl create ({label})"
xl create /etc/xen/hvmlite-disk.cfg 'kernel="/usr/lib/hvmlite/hvmlite.elf"' "disk=['format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-sh, target=$dev']" || exit 10
{then}wait_state hvmlite-disk c 60 || exit 11
echo "=== console ({label})"
cat /var/log/xen/console/guest-hvmlite-disk.log
rm -f /var/log/xen/console/guest-hvmlite-disk.log
xl destroy hvmlite-disk
"#
    )
}

/// A disk of `sectors` whose MBR has the primary partitions `entries`
/// (start, sectors), with `fs` written at a sector when given.
fn with_table(sectors: u64, entries: &[(u64, u64)], fs: Option<(u64, Vec<u8>)>) -> Vec<u8> {
    let mut d = vec![0u8; (sectors * SECTOR) as usize];
    for (i, (start, len)) in entries.iter().enumerate() {
        let e = 446 + i * 16;
        d[e + 4] = 0x83;
        d[e + 8..e + 12].copy_from_slice(&(*start as u32).to_le_bytes());
        d[e + 12..e + 16].copy_from_slice(&(*len as u32).to_le_bytes());
    }
    d[510] = 0x55;
    d[511] = 0xaa;
    if let Some((at, data)) = fs {
        let o = (at * SECTOR) as usize;
        d[o..o + data.len()].copy_from_slice(&data);
    }
    d
}

/// Bad disks: each ends in one `FATAL` line naming what was wrong and
/// where, then the crash shutdown (xl sees it crashed), within a bounded
/// time.
#[test]
fn bad_disks_are_one_fatal_line_each() {
    let small = |name: &str, items: &[Item]| ext4(name, 4, items);
    let hello = || Item::File("/hello.txt", b"hi".to_vec());
    // A superblock that claims more blocks than the disk has (magic kept).
    let mut corrupt = small("bad-sb", &[hello()]);
    corrupt[1024 + 0x04] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("corrupt-superblock", corrupt, "xvda: the filesystem (4455424 bytes) is larger than its 4194304-byte device"),
        (
            "past-the-end",
            with_table(4096, &[(2048, 8192)], None),
            "xvda: partition 1 (8192 sectors at 2048) reaches past the end of the 4096-sector disk",
        ),
        ("overlapping", with_table(8192, &[(2048, 4096), (4096, 2048)], None), "xvda: partitions 1 and 2 overlap"),
        ("no-entry", small("no-entry", &[hello()]), "no boot entry on xvda"),
        (
            "missing-kernel",
            small(
                "missing",
                &[hello(), Item::File("/boot/extlinux/extlinux.conf", b"DEFAULT a\nLABEL a\n  LINUX /boot/vmlinuz-gone\n".to_vec())],
            ),
            "xvda: kernel /boot/vmlinuz-gone: no such file or directory",
        ),
        (
            "symlink-loop",
            small("loop", &[hello(), Item::Link("/vmlinuz", "vmlinuz2"), Item::Link("/vmlinuz2", "vmlinuz")]),
            "xvda: reading /vmlinuz: too many levels of symbolic links",
        ),
        ("zero-sectors", Vec::new(), "no boot entry on xvda"),
    ];
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    let mut files = Vec::new();
    for (name, data, _) in &cases {
        files.push((format!("/scenario/{name}.img.gz"), save_gz(name, data)));
        script.push_str(&disk_script(name));
        script.push_str(&crash_script(name, ""));
    }
    script.push_str("echo \"=== end\"\n");
    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let mut s = Scenario::new(&script).config("hvmlite-disk.cfg", &cfg).file_from("/usr/lib/hvmlite/hvmlite.elf", &image());
    for (at, from) in &files {
        s = s.file_from(at, from);
    }
    let r = xen_host::run("disk-bad", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    for (name, _, what) in &cases {
        let g = Guest::from(&r, name);
        let fatal: Vec<&&str> = g.lines.iter().filter(|l| l.starts_with("hvmlite: FATAL: ")).collect();
        assert_eq!(fatal.len(), 1, "{name}: one FATAL line: {d}");
        assert!(fatal[0].starts_with("hvmlite: FATAL: disk: ") && fatal[0].contains(what), "{name}: {}\n{d}", fatal[0]);
        assert!(g.lines.contains(&"hvmlite: shutdown: crash"), "{name}: {d}");
        eprintln!("bad disk {name}: {}", fatal[0]);
    }
}

/// A block backend that lies (tests/xen-host/blkpoke.c writes the
/// frontend's ring from dom0 while blkback serves it): an index far ahead
/// of what was asked, and a response for a request never sent (its id is
/// 0xdead, or whatever the slot held when the lie raced the frontend's own
/// write there). Each ends in one FATAL line naming the lie, and the crash
/// shutdown.
#[test]
fn a_lying_block_backend_is_one_fatal_line() {
    // Something long to read (48 MiB: a few seconds under TCG), so that the
    // lie lands while the frontend reads, however late dom0 gets to it.
    let disk = ext4("hostile", 64, &[Item::File("/vmlinuz", vec![0x5a; 48 << 20]), Item::File("/initrd.img", vec![1; 1 << 20])]);
    let gz = save_gz("hostile", &disk);
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    script.push_str(&disk_script("hostile"));
    for mode in ["index", "id"] {
        // Map the frontend's ring as soon as it names it; blkpoke lies
        // from the frontend's first request on (blkback has attached the
        // ring by then). blkback connects only once blkpoke has the ring
        // mapped (the gated hotplug script below holds physical-device
        // back until then): on a loaded machine, dom0 once took longer to
        // start blkpoke than the guest to read the 48 MiB.
        let poke = format!(
            r#"d=$(xl domid hvmlite-disk)
fe=/local/domain/$d/device/vbd/51712
i=0; until ref=$(xenstore-read $fe/ring-ref0 2>/dev/null || xenstore-read $fe/ring-ref 2>/dev/null); do
    i=$((i + 1)); [ $i -le 2000 ] || exit 12; sleep 0.005; done
order=$(xenstore-read $fe/ring-page-order 2>/dev/null || echo 0)
/usr/bin/blkpoke $d $ref $((32 << order)) {mode} 8000 > /tmp/poke.out & poke=$!
i=0; until grep -q '^blkpoke: mapped' /tmp/poke.out; do
    i=$((i + 1)); [ $i -le 1000 ] && kill -0 $poke 2>/dev/null || exit 15; sleep 0.01; done
touch /tmp/blk-go
wait $poke || exit 13
cat /tmp/poke.out
"#
        );
        script.push_str("rm -f /tmp/blk-go\n");
        script.push_str(&crash_script(mode, &poke).replace("script=block-sh", "script=block-gated"));
    }
    script.push_str("echo \"=== end\"\n");
    // tests/xen-host/block, but blkback may connect (physical-device) only
    // once /tmp/blk-go exists.
    let gated = scratch("disk-hostile").join("block-gated");
    std::fs::write(
        &gated,
        r#"#!/bin/sh
case "$1" in
add)
    dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
    mm=$(stat -L -c %t:%T "$dev") || exit 1
    ( i=0; until [ -e /tmp/blk-go ]; do i=$((i + 1)); [ $i -le 6000 ] || break; sleep 0.01; done
      xenstore-write "$XENBUS_PATH/physical-device-path" "$dev"
      xenstore-write "$XENBUS_PATH/physical-device" "$mm" ) </dev/null >/dev/null 2>&1 &
    xenstore-write "$XENBUS_PATH/hotplug-status" connected
    ;;
remove)
    xenstore-rm "$XENBUS_PATH/hotplug-status" 2>/dev/null
    ;;
esac
exit 0
"#,
    )
    .unwrap();
    let cfg = std::fs::read_to_string(root().join("xen/hvmlite-disk.cfg")).unwrap();
    let s = Scenario::new(&script)
        .config("hvmlite-disk.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
        .file_from("/scenario/hostile.img.gz", &gz)
        .program_from("/usr/bin/blkpoke", &xen_host::dom0_tool("blkpoke"))
        .program_from("/etc/xen/scripts/block-gated", &gated);
    let r = xen_host::run("disk-hostile", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    // The index lie races blkback's own index writes; the id lie renames a
    // response blkback already published, which stands until read. What
    // the frontend meets first can still be any of its checks on a lying
    // backend; unit tests and the `blkif` fuzz target pin each one alone.
    let lies: [(&str, &[&str]); 2] = [
        ("index", &["backend's response index 0x40000000 is past ours"]),
        ("id", &[", which is not outstanding", ") with operation ", "backend's response index"]),
    ];
    for (mode, lie) in lies {
        let g = Guest::from(&r, mode);
        let fatal: Vec<&&str> = g.lines.iter().filter(|l| l.starts_with("hvmlite: FATAL: ")).collect();
        assert_eq!(fatal.len(), 1, "{mode}: one FATAL line: {d}");
        assert!(fatal[0].starts_with("hvmlite: FATAL: disk: ") && lie.iter().any(|w| fatal[0].contains(w)), "{mode}: {}\n{d}", fatal[0]);
        assert!(g.lines.contains(&"hvmlite: shutdown: crash"), "{mode}: {d}");
        eprintln!("lying backend ({mode}): {}", fatal[0]);
    }
}

/// Writes and flushes through blkback, with 512- and 4096-byte sectors:
/// `examples/disk-log` (a stubdomain that counts its boots in its disk's
/// first block and writes a record for each) boots twice on each disk;
/// dom0 then reads the records from the image the loop device served.
#[test]
fn a_stubdomain_writes_and_flushes_its_disk_at_512_and_4096_bytes() {
    let mut script = String::from(". /usr/share/xen-host/lib.sh\ndisk_backend || exit 9\n");
    for bs in [512, 4096] {
        script.push_str(&format!(
            r#"dd if=/dev/zero of=/scenario/log-{bs}.img bs=4096 count=64 2>/dev/null || exit 8
dev=$(attach /scenario/log-{bs}.img) || exit 8
[ {bs} = 512 ] || /usr/bin/loopblk $dev {bs} || exit 7
for i in 1 2; do
    echo "=== xl create (log-{bs}-$i)"
    xl create /etc/xen/disk-log.cfg 'kernel="/usr/lib/hvmlite/disk-log.elf"' "disk=['format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-sh, target=$dev']" || exit 10
    wait_gone disk-log 60 || exit 11
    echo "=== console (log-{bs}-$i)"
    cat /var/log/xen/console/guest-disk-log.log
    rm -f /var/log/xen/console/guest-disk-log.log
done
losetup -d $dev
echo "=== console (image-{bs})"
for b in 0 1 2 3; do dd if=/scenario/log-{bs}.img bs={bs} skip=$b count=1 2>/dev/null | strings | sed "s/^/block $b: /"; done
"#
        ));
    }
    script.push_str("echo \"=== end\"\n");
    let cfg = std::fs::read_to_string(root().join("xen/disk-log.cfg")).unwrap();
    let s = Scenario::new(&script)
        .config("disk-log.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/disk-log.elf", &example("disk-log"))
        .program_from("/usr/bin/loopblk", &xen_host::dom0_tool("loopblk"));
    let r = xen_host::run("disk-log", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    for bs in [512u32, 4096] {
        let blocks = 64 * 4096 / bs;
        for i in 1..=2 {
            let g = Guest::from(&r, &format!("log-{bs}-{i}"));
            assert!(g.lines.contains(&format!("hvmlite: disk-log: xvda: {blocks} blocks of {bs} bytes, flush").as_str()), "{bs}/{i}: {d}");
            let done = format!("hvmlite: disk-log: xvda: boot {i} written to block {i} and flushed, read back the same");
            assert!(g.lines.contains(&done.as_str()), "{bs}/{i}: {d}");
            assert!(g.lines.contains(&"hvmlite: shutdown: poweroff"), "{bs}/{i}: {d}");
        }
        // What landed in the image, block by block (text only).
        let img = Guest::from(&r, &format!("image-{bs}"));
        assert_eq!(
            img.lines.iter().filter(|l| l.starts_with("block 0: ")).copied().collect::<Vec<_>>(),
            ["block 0: hvmlite disk-log", "block 0: boots 2"],
            "{d}"
        );
        for b in 1..=2 {
            let rec: Vec<&&str> = img.lines.iter().filter(|l| l.starts_with(&format!("block {b}: "))).collect();
            assert_eq!(rec.len(), 1, "{bs}: block {b}: {d}");
            assert!(rec[0].starts_with(&format!("block {b}: disk-log: boot {b}, block size {bs}, ")), "{bs}: {}\n{d}", rec[0]);
        }
        assert!(!img.lines.iter().any(|l| l.starts_with("block 3: ")), "{bs}: block 3 was written: {d}");
    }
}
