//! The distributions' disks as their installers leave them, holding
//! Debian's kernel and the test initramfs (whose `/init` mounts the
//! partition `test.mount=` names and prints `/hello.txt`): shared by the
//! Xen disk tests and the disk-boot benchmark. `tail` ends every kernel
//! command line the disk's configuration gives; `opts(tag)` does the same
//! with the entry's tag.
#![allow(dead_code)] // each includer uses part of it

use crate::btrfs_image;
use crate::disk::*;
pub use crate::linux_support::kernel_version;
use crate::linux_support::linux;
use crate::xfs_image::mkfs_xfs;

pub const UBUNTU_BOOT_UUID: &str = "b007b007-1111-4222-8333-444455556666";
pub const UBUNTU_ROOT_UUID: &str = "600d600d-1111-4222-8333-444455556666";
pub const FEDORA_OLD: &str = "6.7.11-200.fc40.x86_64";
pub const FEDORA_NEW: &str = "6.8.5-301.fc40.x86_64";
pub const SUSE_OLD: &str = "6.4.0-1-default";
pub const SUSE_NEW: &str = "6.5.0-2-default";

fn kernel() -> Vec<u8> {
    std::fs::read(&linux().vmlinuz).unwrap()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A grubenv as `grub-editenv` writes it: 1024 bytes, `#` padding.
pub fn grubenv(vars: &[&str]) -> Vec<u8> {
    btrfs_image::grubenv(vars).into_bytes()
}

/// Ubuntu 24.04's cloud-image layout: GPT with root in partition 1, BIOS
/// boot 14, the ESP 15 (FAT, GRUB's stub `EFI/ubuntu/grub.cfg` only) and
/// `/boot` on ext4 in 16 (`/hello.txt` there too), with Ubuntu's grub.cfg
/// (`recordfail`, `initrdfail`, `load_video`, `gfxmode`, `hwmatch`,
/// `fwsetup`).
pub fn ubuntu(tail: &str) -> Vec<u8> {
    let v = kernel_version();
    let boot_items = vec![
        Item::File(leak(format!("/vmlinuz-{v}")), kernel()),
        Item::File(leak(format!("/initrd.img-{v}")), disk_initrd()),
        Item::File("/grub/grub.cfg", ubuntu_grub_cfg(&v, UBUNTU_BOOT_UUID, UBUNTU_ROOT_UUID, tail).into_bytes()),
        Item::File("/grub/grubenv", grubenv(&[])),
        Item::File("/hello.txt", b"hello from the Ubuntu /boot".to_vec()),
    ];
    let boot = ext4_uuid("ubuntu-boot", 24, &boot_items, Some(UBUNTU_BOOT_UUID));
    let rootfs = ext4_uuid(
        "ubuntu-root",
        8,
        &[Item::File("/etc/hostname", b"ubuntu\n".to_vec()), Item::File("/boot/.keep", Vec::new())],
        Some(UBUNTU_ROOT_UUID),
    );
    let stub = format!("search.fs_uuid {UBUNTU_BOOT_UUID} root\nset prefix=($root)'/grub'\nconfigfile $prefix/grub.cfg\n");
    let esp = hvmlite::disk::fat::image::make(8 << 20, b"UEFI       ", &[("/EFI/ubuntu/grub.cfg", stub.as_bytes())]);
    let (p1, p14, p15, p16) = (2048 + 2 * 2048 + 16 * 2048, 2048u64, 2048 + 2048, 2048 + 2 * 2048 + 16 * 2048 + 8 * 2048);
    let parts = [
        Part { start: p1, data: rootfs, mbr_type: 0 },
        Part { start: p14, data: vec![0; 1 << 20], mbr_type: 0 },
        Part { start: p15, data: esp, mbr_type: 0xef },
        Part { start: p16, data: boot, mbr_type: 0 },
    ];
    gpt_disk_numbered(p16 + 24 * 2048 + 34, &[(1, &parts[0]), (14, &parts[1]), (15, &parts[2]), (16, &parts[3])])
}

/// Fedora's `/boot` (BLS entries that `/grub2/grub.cfg` turns into its
/// menu with `blscfg`, `$kernelopts` and `saved_entry` from grubenv naming
/// the *older* kernel, Fedora 40's header with `boot_success`).
pub fn fedora_boot(tail: &str) -> Vec<(&'static str, Vec<u8>)> {
    let (k, initrd) = (kernel(), disk_initrd());
    let mid = "2f4e1c3b5a6d4e7f8091a2b3c4d5e6f7";
    let (new, old) = (FEDORA_NEW, FEDORA_OLD);
    let entry = |v: &str, tag: &str| {
        format!(
            "title Fedora Linux ({v}) 40 (Server Edition)\nversion {v}\nlinux /vmlinuz-{v}\ninitrd /initramfs-{v}.img\n\
             options $kernelopts test.entry={tag}\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"
        )
    };
    let cfg = "set pager=1\n\
        if [ -f ${config_directory}/grubenv ]; then\n  load_env -f ${config_directory}/grubenv\nelif [ -s $prefix/grubenv ]; then\n  load_env\nfi\n\
        if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   set next_entry=\n   save_env next_entry\n   set boot_once=true\nelse\n   set default=\"${saved_entry}\"\nfi\n\
        if [ \"${boot_success}\" = \"1\" -o \"${boot_indeterminate}\" = \"1\" ]; then\n  set last_boot_ok=1\nelse\n  set last_boot_ok=0\nfi\n\
        if [ \"${boot_success}\" = \"1\" ] ; then\n  set boot_indeterminate=0\nelif [ \"${boot_indeterminate}\" = \"1\" ]; then\n  set boot_indeterminate=2\nfi\n\
        set boot_success=0\nsave_env boot_success boot_indeterminate\n\
        terminal_output console\nset timeout=0\n\
        insmod blscfg\nblscfg\n";
    let env = grubenv(&[&format!("kernelopts=root=UUID=7a8a ro {tail} "), "boot_success=1", &format!("saved_entry={mid}-{old}")]);
    vec![
        (leak(format!("/vmlinuz-{new}")), k.clone()),
        (leak(format!("/vmlinuz-{old}")), k),
        (leak(format!("/initramfs-{new}.img")), initrd.clone()),
        (leak(format!("/initramfs-{old}.img")), initrd),
        (leak(format!("/loader/entries/{mid}-{new}.conf")), entry(new, "new").into_bytes()),
        (leak(format!("/loader/entries/{mid}-{old}.conf")), entry(old, "old").into_bytes()),
        ("/grub2/grub.cfg", cfg.as_bytes().to_vec()),
        ("/grub2/grubenv", env),
    ]
}

/// Fedora Server: GPT, `/boot` on XFS in partition 1 (mkfs.xfs's current
/// defaults with rmapbt and nrext64), ext4 in partition 2 with
/// `/hello.txt`.
pub fn fedora_server(tail: &str) -> Vec<u8> {
    let boot = mkfs_xfs(64, &fedora_boot(tail), &[]);
    let data = ext4("fedora-data", 8, &[Item::File("/hello.txt", b"hello from the Fedora disk".to_vec())]);
    let second = 2048 + 64 * 2048;
    gpt_disk(second + 8 * 2048 + 34, &[Part { start: 2048, data: boot, mbr_type: 0 }, Part { start: second, data, mbr_type: 0 }])
}

/// Fedora Cloud 40-43: GPT with BIOS boot in 1, an ESP in 2 whose
/// `EFI/fedora/grub.cfg` is the stub that finds `/boot` by UUID, `/boot`
/// on ext4 in 3 (with `/hello.txt`).
pub fn fedora_cloud(tail: &str) -> Vec<u8> {
    let boot_uuid = "f00dcafe-1111-4222-8333-444455556666";
    let mut items: Vec<Item> = fedora_boot(tail).into_iter().map(|(p, d)| Item::File(p, d)).collect();
    items.push(Item::File("/hello.txt", b"hello from Fedora Cloud".to_vec()));
    let boot = ext4_uuid("fedora-cloud-boot", 40, &items, Some(boot_uuid));
    let stub = format!(
        "search --no-floppy --fs-uuid --set=dev {boot_uuid}\nset prefix=($dev)/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n"
    );
    let esp = hvmlite::disk::fat::image::make(8 << 20, b"EFI-SYSTEM ", &[("/EFI/fedora/grub.cfg", stub.as_bytes())]);
    let (p2, p3) = (2048 + 2048, 2048 + 2048 + 8 * 2048);
    gpt_disk(
        p3 + 40 * 2048 + 34,
        &[
            Part { start: 2048, data: vec![0; 1 << 20], mbr_type: 0 },
            Part { start: p2, data: esp, mbr_type: 0xef },
            Part { start: p3, data: boot, mbr_type: 0 },
        ],
    )
}

/// openSUSE: GPT, BIOS boot in 1, the btrfs root in 2 as the installer and
/// one `zypper up` leave it ([`btrfs_image::opensuse`]: snapshot 2 the
/// default subvolume), ext4 in 3 with `/hello.txt`. Also returns the
/// btrfs's UUID.
pub fn opensuse(tail: &str) -> (Vec<u8>, String) {
    let (k, initrd) = (kernel(), disk_initrd());
    let ops = btrfs_image::opensuse((SUSE_OLD, k.clone(), initrd.clone()), (SUSE_NEW, k, initrd), tail);
    let root = btrfs_image::mkfs_btrfs(120, "", &ops);
    let uuid = btrfs_image::fs_uuid(&root);
    let data = ext4("btrfs-data", 8, &[Item::File("/hello.txt", b"hello from openSUSE".to_vec())]);
    let (p2, p3) = (4096, 4096 + 120 * 2048);
    let disk = gpt_disk(
        p3 + 8 * 2048 + 34,
        &[
            Part { start: 2048, data: vec![0; 1 << 20], mbr_type: 0 },
            Part { start: p2, data: root, mbr_type: 0 },
            Part { start: p3, data, mbr_type: 0 },
        ],
    );
    (disk, uuid)
}

/// Arch: GPT, btrfs in 1 with `subvol=@` mounted `compress-force=zstd`
/// ([`btrfs_image::arch`]), ext4 in 2 with `/hello.txt`. Also returns the
/// btrfs's UUID.
pub fn arch(tail: &str) -> (Vec<u8>, String) {
    let root = btrfs_image::mkfs_btrfs(120, "compress-force=zstd", &btrfs_image::arch(kernel(), disk_initrd(), tail));
    let uuid = btrfs_image::fs_uuid(&root);
    let data = ext4("btrfs-data", 8, &[Item::File("/hello.txt", b"hello from Arch".to_vec())]);
    let p2 = 2048 + 120 * 2048;
    (gpt_disk(p2 + 8 * 2048 + 34, &[Part { start: 2048, data: root, mbr_type: 0 }, Part { start: p2, data, mbr_type: 0 }]), uuid)
}

/// Alpine: MBR, a `/boot` partition holding `/extlinux.conf` (as
/// `update-extlinux` writes it for a separate `/boot`: `MENU HIDDEN`,
/// paths relative to it, `MENU DEFAULT` on the second label, `lts`) and
/// the kernels beside it, `/hello.txt` too.
pub fn alpine(opts: impl Fn(&str) -> String) -> Vec<u8> {
    let k = kernel();
    let conf = format!(
        "DEFAULT menu.c32\nPROMPT 0\nMENU TITLE Alpine/Linux Boot Menu\nMENU HIDDEN\nTIMEOUT 10\n\
         LABEL virt\n  MENU LABEL Linux virt\n  LINUX vmlinuz-virt\n  APPEND {}\n\n\
         LABEL lts\n  MENU DEFAULT\n  MENU LABEL Linux lts\n  LINUX vmlinuz-lts\n  INITRD initramfs-lts\n  APPEND {}\n\nMENU SEPARATOR\n",
        opts("virt"),
        opts("lts")
    );
    let items = vec![
        Item::File("/extlinux.conf", conf.into_bytes()),
        Item::File("/vmlinuz-lts", k.clone()),
        Item::File("/vmlinuz-virt", k),
        Item::File("/initramfs-lts", disk_initrd()),
        Item::File("/hello.txt", b"hello from the alpine disk".to_vec()),
    ];
    let mib = 24;
    mbr_disk(2048 + mib * 2048, &[Part { start: 2048, data: ext4("alpine", mib, &items), mbr_type: 0x83 }])
}

/// dom0's lines that put `disk` (shipped as `/scenario/{name}.runs.gz`,
/// from [`sparse_runs`]) in `/scenario/disk.img` and on a loop device in
/// `$dev`: only its non-zero sectors travel and are written into a sparse
/// file, so a disk larger than dom0's RAM (btrfs's 114 MB minimum) fits.
/// Returns the lines and what to ship.
pub fn sparse_disk_script(name: &str, disk: &[u8]) -> (String, Vec<u8>) {
    let (runs, data) = sparse_runs(disk);
    let mut s = format!(
        "losetup -d \"$dev\" 2>/dev/null; rm -f /scenario/disk.img\n\
         gunzip -c /scenario/{name}.runs.gz > /scenario/runs.bin && rm /scenario/{name}.runs.gz || exit 8\n\
         truncate -s {} /scenario/disk.img || exit 8\n",
        disk.len()
    );
    for (from, to, n) in runs {
        s += &format!(
            "dd if=/scenario/runs.bin of=/scenario/disk.img bs=512 skip={from} seek={to} count={n} conv=notrunc 2>/dev/null || exit 8\n"
        );
    }
    s += "rm /scenario/runs.bin\ndev=$(attach /scenario/disk.img) || exit 8\n";
    (s, data)
}

/// The non-zero sectors of `disk` as (sector in the data, sector in the
/// disk, count) runs, and the data.
pub fn sparse_runs(disk: &[u8]) -> (Vec<(usize, usize, usize)>, Vec<u8>) {
    assert_eq!(disk.len() % 512, 0);
    let (mut runs, mut data) = (Vec::<(usize, usize, usize)>::new(), Vec::new());
    for (i, b) in disk.chunks(512).enumerate() {
        if b.iter().all(|&x| x == 0) {
            continue;
        }
        match runs.last_mut() {
            Some((_, to, n)) if *to + *n == i => *n += 1,
            _ => runs.push((data.len() / 512, i, 1)),
        }
        data.extend_from_slice(b);
    }
    (runs, data)
}
