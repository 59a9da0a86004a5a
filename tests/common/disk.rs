//! Disks for the disk-boot tests: ext4 filesystems made by Debian's
//! `mkfs.ext4 -d`, partition tables (MBR, GPT) written here byte by byte,
//! and the guest initramfs whose `/init` mounts the disk it booted from.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{private_path, rename_into, require, scratch};
use super::linux_support::{busybox, cpio, kernel_module};

pub const SECTOR: u64 = 512;

/// What goes into a filesystem: a file or a symlink.
pub enum Item<'a> {
    File(&'a str, Vec<u8>),
    Link(&'a str, &'a str),
}

/// An ext4 filesystem image of `mib` MiB holding `items` (`mkfs.ext4 -d`,
/// Debian's defaults: 64bit, extents, metadata_csum, flex_bg).
pub fn ext4(name: &str, mib: u64, items: &[Item]) -> Vec<u8> {
    ext4_uuid(name, mib, items, None)
}

/// [`ext4`] with the filesystem UUID `uuid` (what a grub.cfg's `search
/// --fs-uuid` names), else a random one.
pub fn ext4_uuid(name: &str, mib: u64, items: &[Item], uuid: Option<&str>) -> Vec<u8> {
    require("mkfs.ext4");
    // A directory of this call's own: two tests may make a disk of the
    // same name at once.
    let dir = private_path(&scratch("disks").join(name));
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for it in items {
        let (path, _) = match it {
            Item::File(p, _) | Item::Link(p, _) => (p.trim_start_matches('/'), ()),
        };
        let at = tree.join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        match it {
            Item::File(_, data) => std::fs::write(&at, data).unwrap(),
            Item::Link(_, target) => std::os::unix::fs::symlink(target, &at).unwrap(),
        }
    }
    let img = dir.join("fs.img");
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E", "root_owner=0:0"])
        .args(uuid.map(|u| vec!["-U", u]).unwrap_or_default())
        .arg("-d")
        .arg(&tree)
        .arg(&img)
        .arg(format!("{mib}M"))
        .status()
        .expect("run mkfs.ext4");
    assert!(st.success(), "mkfs.ext4 failed");
    let data = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    data
}

/// A partition: where it starts (in 512-byte sectors) and what it holds.
pub struct Part {
    pub start: u64,
    pub data: Vec<u8>,
    /// MBR type byte (0x83 Linux); for GPT, 0xef makes it an EFI system
    /// partition and anything else Linux filesystem data.
    pub mbr_type: u8,
}

/// A disk of `sectors` with an MBR of up to four primary partitions.
pub fn mbr_disk(sectors: u64, parts: &[Part]) -> Vec<u8> {
    let mut d = vec![0u8; (sectors * SECTOR) as usize];
    for (i, p) in parts.iter().enumerate() {
        let e = 446 + i * 16;
        d[e + 4] = p.mbr_type;
        d[e + 8..e + 12].copy_from_slice(&(p.start as u32).to_le_bytes());
        d[e + 12..e + 16].copy_from_slice(&((p.data.len() as u64).div_ceil(SECTOR) as u32).to_le_bytes());
        put(&mut d, p.start, &p.data);
    }
    d[510] = 0x55;
    d[511] = 0xaa;
    d
}

/// A disk of `sectors` with a GPT (protective MBR, primary and backup
/// headers, 128 entries) whose partitions are Linux filesystems.
pub fn gpt_disk(sectors: u64, parts: &[Part]) -> Vec<u8> {
    let numbered: Vec<(usize, &Part)> = parts.iter().enumerate().map(|(i, p)| (i + 1, p)).collect();
    gpt_disk_numbered(sectors, &numbered)
}

/// [`gpt_disk`] with each partition in the entry slot it names (1-based),
/// as Ubuntu's cloud images number theirs 1, 14, 15, 16.
pub fn gpt_disk_numbered(sectors: u64, parts: &[(usize, &Part)]) -> Vec<u8> {
    let mut d = vec![0u8; (sectors * SECTOR) as usize];
    // Protective MBR.
    d[446 + 4] = 0xee;
    d[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    d[446 + 12..446 + 16].copy_from_slice(&((sectors - 1).min(u32::MAX as u64) as u32).to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xaa;
    // Linux filesystem data: 0FC63DAF-8483-4772-8E79-3D69D8477DE4, mixed-endian.
    let linux: [u8; 16] = [0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4];
    // EFI system partition: C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
    let esp: [u8; 16] = [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b];
    let mut entries = vec![0u8; 128 * 128];
    for &(n, p) in parts {
        let i = n - 1;
        let e = &mut entries[i * 128..(i + 1) * 128];
        e[0..16].copy_from_slice(if p.mbr_type == 0xef { &esp } else { &linux });
        e[16..32].copy_from_slice(&[i as u8 + 1; 16]);
        e[32..40].copy_from_slice(&p.start.to_le_bytes());
        e[40..48].copy_from_slice(&(p.start + (p.data.len() as u64).div_ceil(SECTOR) - 1).to_le_bytes());
        for (k, c) in format!("part{}", i + 1).encode_utf16().enumerate() {
            e[56 + 2 * k..58 + 2 * k].copy_from_slice(&c.to_le_bytes());
        }
        put(&mut d, p.start, &p.data);
    }
    let crc = |b: &[u8]| hvmlite::payload::bundle::crc32(b);
    let entries_crc = crc(&entries);
    let header = |my: u64, alt: u64, entries_at: u64| {
        let mut h = vec![0u8; 92];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(sectors - 34).to_le_bytes());
        h[56..72].copy_from_slice(&[0x42; 16]);
        h[72..80].copy_from_slice(&entries_at.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let c = crc(&h);
        h[16..20].copy_from_slice(&c.to_le_bytes());
        h
    };
    put(&mut d, 1, &header(1, sectors - 1, 2));
    put(&mut d, 2, &entries);
    put(&mut d, sectors - 33, &entries);
    put(&mut d, sectors - 1, &header(sectors - 1, 1, sectors - 33));
    d
}

fn put(d: &mut [u8], lba: u64, data: &[u8]) {
    let at = (lba * SECTOR) as usize;
    d[at..at + data.len()].copy_from_slice(data);
}

/// Save a disk image for a scenario, gzip'ed (dom0 unpacks it): the
/// images are mostly zeros.
pub fn save_gz(name: &str, data: &[u8]) -> PathBuf {
    let dir = scratch("disks");
    let gz = dir.join(format!("{name}.img.gz"));
    // gzip of a private copy, renamed into place: two tests may save a disk
    // of the same name at once.
    let raw = private_path(&dir.join(format!("{name}.img")));
    std::fs::write(&raw, data).unwrap();
    let st = Command::new("gzip").args(["-1", "-f"]).arg(&raw).status().expect("gzip");
    assert!(st.success());
    rename_into(&raw.with_file_name(format!("{}.gz", raw.file_name().unwrap().to_string_lossy())), &gz);
    gz
}

/// Modules `/init` loads to mount an ext4 disk through Xen's blkfront, in
/// dependency order (no modules.dep in Debian's .deb).
const DISK_MODULES: [&str; 6] =
    ["lib/crc16.ko", "crypto/crc32c_generic.ko", "fs/mbcache.ko", "fs/jbd2/jbd2.ko", "fs/ext4/ext4.ko", "drivers/block/xen-blkfront.ko"];

/// `/init` of the disk tests: what the Linux tests' `/init` says, then it
/// mounts the partition `test.mount=` names (read-only) and prints its
/// `/hello.txt` and the variables of its grubenv, if it has one, and its
/// wall clock to the microsecond (Xen's time, as dom0's is: the disk
/// bench times a boot by it).
const DISK_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "init: cmdline: $(cat /proc/cmdline)"
dmesg | grep -E "RAMDISK:|paravirtualized kernel" | sed 's/^\[[ 0-9.]*\] /init: dmesg: /'
for m in crc16 crc32c_generic mbcache jbd2 ext4 xen-blkfront; do insmod /lib/modules/$m.ko || echo "init: insmod $m failed"; done
dev=$(sed -n 's/.*test\.mount=\([^ ]*\).*/\1/p' /proc/cmdline)
i=0; until [ -b /dev/$dev ]; do i=$((i + 1)); [ $i -le 100 ] || break; sleep 0.1; done
mkdir -p /mnt
if mount -t ext4 -o ro /dev/$dev /mnt; then echo "init: disk: $dev: $(cat /mnt/hello.txt)"; else echo "init: disk: mount $dev failed"; fi
for f in /mnt/boot/grub/grubenv /mnt/grub/grubenv; do [ -f $f ] && grep -v '^#' $f | sed 's/^/init: grubenv: /'; done
adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "init: wallclock: %d.%06d\n", s, u }'
echo "init: hvmlite-linux-test: done"
poweroff -f
"#;

/// The initramfs of the disk tests (busybox, the modules, [`DISK_INIT`]).
pub fn disk_initrd() -> Vec<u8> {
    let busybox = busybox();
    let mods: Vec<(String, Vec<u8>)> = DISK_MODULES
        .iter()
        .map(|m| {
            let name = Path::new(m).file_name().unwrap().to_str().unwrap();
            (format!("lib/modules/{name}"), kernel_module(m))
        })
        .collect();
    let mut entries: Vec<(&str, u32, &[u8])> = vec![
        ("bin", 0o40755, &[]),
        ("proc", 0o40755, &[]),
        ("sys", 0o40755, &[]),
        ("dev", 0o40755, &[]),
        ("lib", 0o40755, &[]),
        ("lib/modules", 0o40755, &[]),
        ("bin/busybox", 0o100755, &busybox),
        ("init", 0o100755, DISK_INIT.as_bytes()),
    ];
    for (p, d) in &mods {
        entries.push((p.as_str(), 0o100644, d));
    }
    cpio(&entries)
}

/// A grub.cfg as Debian 12's grub-mkconfig writes it (00_header, and
/// 10_linux with its submenu of the kernel and its recovery mode) for
/// kernel version `v` on the filesystem `uuid`, with `default` and
/// `timeout` as it sets them; each entry's options after `ro` come from
/// `opts(tag)`, tag `simple`, `advanced` or `recovery` (which also has
/// Debian's `single`).
pub fn debian_grub_cfg(v: &str, uuid: &str, default: &str, timeout: u32, opts: impl Fn(&str) -> String) -> String {
    let (simple, advanced, recovery) = (opts("simple"), opts("advanced"), opts("recovery"));
    format!(
        r#"#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${{next_entry}}" ] ; then
   set default="${{next_entry}}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="{default}"
fi

if [ x"${{feature_menuentry_id}}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

function load_video {{
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
    insmod vbe
  fi
}}

terminal_output console
set timeout={timeout}
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
function gfxmode {{
	set gfxpayload="${{1}}"
}}
set linux_gfx_mode=
export linux_gfx_mode
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-{uuid}' {{
	load_video
	insmod gzio
	if [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root {uuid}
	echo	'Loading Linux {v} ...'
	linux	/boot/vmlinuz-{v} root=UUID={uuid} ro {simple}
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-{v}
}}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-{uuid}' {{
	menuentry 'Debian GNU/Linux, with Linux {v}' --class debian $menuentry_id_option 'gnulinux-{v}-advanced-{uuid}' {{
		load_video
		insmod gzio
		if [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi
		insmod part_msdos
		insmod ext2
		search --no-floppy --fs-uuid --set=root {uuid}
		echo	'Loading Linux {v} ...'
		linux	/boot/vmlinuz-{v} root=UUID={uuid} ro {advanced}
		echo	'Loading initial ramdisk ...'
		initrd	/boot/initrd.img-{v}
	}}
	menuentry 'Debian GNU/Linux, with Linux {v} (recovery mode)' --class debian $menuentry_id_option 'gnulinux-{v}-recovery-{uuid}' {{
		load_video
		insmod gzio
		if [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi
		insmod part_msdos
		insmod ext2
		search --no-floppy --fs-uuid --set=root {uuid}
		echo	'Loading Linux {v} ...'
		linux	/boot/vmlinuz-{v} root=UUID={uuid} ro single {recovery}
		echo	'Loading initial ramdisk ...'
		initrd	/boot/initrd.img-{v}
	}}
}}
### END /etc/grub.d/10_linux ###

### BEGIN /etc/grub.d/41_custom ###
if [ -f  ${{config_directory}}/custom.cfg ]; then
  source ${{config_directory}}/custom.cfg
elif [ -z "${{config_directory}}" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
### END /etc/grub.d/41_custom ###
"#
    )
}

/// Ubuntu 24.04's grub.cfg (grub-mkconfig's 00_header, 10_linux,
/// 30_uefi-firmware, 41_custom) for kernel version `v` on a separate
/// `/boot` (paths without `/boot`) whose filesystem is `boot_uuid`, root
/// on `root_uuid`; `extra` follows each entry's options.
pub fn ubuntu_grub_cfg(v: &str, boot_uuid: &str, root_uuid: &str, extra: &str) -> String {
    let entry = |title: &str, id: &str, indent: &str| {
        format!(
            "{indent}menuentry '{title}' --class ubuntu --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{\n\
             {indent}\trecordfail\n{indent}\tload_video\n{indent}\tgfxmode $linux_gfx_mode\n{indent}\tinsmod gzio\n\
             {indent}\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n\
             {indent}\tinsmod part_gpt\n{indent}\tinsmod ext2\n\
             {indent}\tsearch --no-floppy --fs-uuid --set=root {boot_uuid}\n\
             {indent}\tlinux\t/vmlinuz-{v} root=UUID={root_uuid} ro  console=tty1 console=ttyS0 {extra} $vt_handoff\n\
             {indent}\tinitrd\t/initrd.img-{v}\n{indent}}}\n"
        )
    };
    let mut s = String::from(
        r#"#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${initrdfail}" = 2 ]; then
   set initrdfail=
elif [ "${initrdfail}" = 1 ]; then
   set next_entry="${prev_entry}"
   set prev_entry=
   save_env prev_entry
   if [ "${next_entry}" ]; then
      set initrdfail=2
   fi
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi

if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

if [ "${prev_saved_entry}" ]; then
  set saved_entry="${prev_saved_entry}"
  save_env saved_entry
  set prev_saved_entry=
  save_env prev_saved_entry
  set boot_once=true
fi

function savedefault {
  if [ -z "${boot_once}" ]; then
    saved_entry="${chosen}"
    save_env saved_entry
  fi
}
function initrdfail {
    if [ -n "${have_grubenv}" ]; then if [ -n "${partuuid}" ]; then
      if [ -z "${initrdfail}" ]; then
        set initrdfail=1
        if [ -n "${boot_once}" ]; then
          set prev_entry="${default}"
          save_env prev_entry
        fi
      fi
      save_env initrdfail
    fi; fi
}
function recordfail {
  set recordfail=1
  if [ -n "${have_grubenv}" ]; then if [ -z "${boot_once}" ]; then save_env recordfail; fi; fi
}
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
    insmod efi_uga
    insmod ieee1275_fb
    insmod vbe
    insmod vga
    insmod video_bochs
    insmod video_cirrus
  fi
}

serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1
terminal_input serial
terminal_output serial
if [ "${recordfail}" = 1 ] ; then
  set timeout=30
else
  if [ x$feature_timeout_style = xy ] ; then
    set timeout_style=hidden
    set timeout=0
  # Fallback hidden-timeout code in case the timeout_style feature is
  # unavailable.
  elif sleep --interruptible 0 ; then
    set timeout=0
  fi
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
function gfxmode {
	set gfxpayload="${1}"
	if [ "${1}" = "keep" ]; then
		set vt_handoff=vt.handoff=7
	else
		set vt_handoff=
	fi
}
if [ "${recordfail}" != 1 ]; then
  if [ -e ${prefix}/gfxblacklist.txt ]; then
    if [ ${grub_platform} != pc ]; then
      set linux_gfx_mode=keep
    elif hwmatch ${prefix}/gfxblacklist.txt 3; then
      if [ ${match} = 0 ]; then
        set linux_gfx_mode=keep
      else
        set linux_gfx_mode=text
      fi
    else
      set linux_gfx_mode=text
    fi
  else
    set linux_gfx_mode=text
  fi
else
  set linux_gfx_mode=text
fi
export linux_gfx_mode
"#,
    );
    let adv = format!("gnulinux-advanced-{root_uuid}");
    s += &entry("Ubuntu", &format!("gnulinux-simple-{root_uuid}"), "");
    s += &format!("submenu 'Advanced options for Ubuntu' $menuentry_id_option '{adv}' {{\n");
    s += &entry(&format!("Ubuntu, with Linux {v}"), &format!("gnulinux-{v}-advanced-{root_uuid}"), "\t");
    s += "}\n### END /etc/grub.d/10_linux ###\n\n### BEGIN /etc/grub.d/30_uefi-firmware ###\n\
          if [ \"$grub_platform\" = \"efi\" ]; then\n\tfwsetup --is-supported\n\tif [ \"$?\" = 0 ]; then\n\
          \t\tmenuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {\n\t\t\tfwsetup\n\t\t}\n\tfi\nfi\n\
          ### END /etc/grub.d/30_uefi-firmware ###\n\n### BEGIN /etc/grub.d/41_custom ###\n\
          if [ -f  ${config_directory}/custom.cfg ]; then\n  source ${config_directory}/custom.cfg\n\
          elif [ -z \"${config_directory}\" -a -f  $prefix/custom.cfg ]; then\n  source $prefix/custom.cfg\nfi\n\
          ### END /etc/grub.d/41_custom ###\n";
    s
}
