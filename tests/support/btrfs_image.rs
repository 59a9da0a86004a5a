//! btrfs images for the tests, made as a distribution's installer makes
//! them: `mkfs.btrfs` with its defaults, then the kernel's own btrfs on a
//! loop mount (root, as `make test` runs) for subvolumes, snapshots,
//! `set-default` and `compress-force`. Shared by the library's unit tests
//! (`src/disk/btrfs.rs`) and the Xen disk tests.
#![allow(dead_code)] // each includer uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// One step on the mounted filesystem; paths are from its top level.
pub enum Op<'a> {
    /// `btrfs subvolume create`.
    Subvol(&'a str),
    /// `btrfs subvolume snapshot SRC DST`.
    Snapshot(&'a str, &'a str),
    /// `btrfs subvolume set-default`.
    SetDefault(&'a str),
    /// A file (its directories made first); `@UUID@` in it becomes the
    /// filesystem's UUID.
    File(&'a str, Vec<u8>),
    /// A symlink: (path, target), replacing what is there.
    Link(&'a str, &'a str),
    /// Remount with these options (`compress-force=lzo`): the files
    /// written next are stored as they say.
    Remount(&'a str),
}

/// A `mib`-MiB btrfs (mkfs.btrfs's minimum is 114) after `ops`, mounted
/// with `opts` at first (`compress-force=zstd`, or empty).
pub fn mkfs_btrfs(mib: u64, opts: &str, ops: &[Op]) -> Vec<u8> {
    let dir = tempdir();
    let img = dir.join("btrfs.img");
    std::fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
    run(Command::new("mkfs.btrfs").arg("-q").arg(&img));
    let uuid = fs_uuid(&std::fs::read(&img).unwrap());
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    {
        let mounted = Mount::new(&img, &mnt, opts);
        for op in ops {
            let at = |p: &str| mnt.join(p.trim_start_matches('/'));
            match op {
                Op::Subvol(p) => {
                    std::fs::create_dir_all(at(p).parent().unwrap()).unwrap();
                    run(Command::new("btrfs").args(["-q", "subvolume", "create"]).arg(at(p)))
                }
                Op::Snapshot(from, to) => {
                    std::fs::create_dir_all(at(to).parent().unwrap()).unwrap();
                    run(Command::new("btrfs").args(["-q", "subvolume", "snapshot"]).arg(at(from)).arg(at(to)))
                }
                Op::SetDefault(p) => run(Command::new("btrfs").args(["-q", "subvolume", "set-default"]).arg(at(p))),
                Op::File(p, data) => {
                    std::fs::create_dir_all(at(p).parent().unwrap()).unwrap();
                    std::fs::write(at(p), with_uuid(data, &uuid)).unwrap();
                }
                Op::Link(p, target) => {
                    std::fs::create_dir_all(at(p).parent().unwrap()).unwrap();
                    let _ = std::fs::remove_file(at(p)); // as `ln -sf`
                    std::os::unix::fs::symlink(target, at(p)).unwrap();
                }
                Op::Remount(o) => mounted.remount(o),
            }
        }
    }
    let data = std::fs::read(&img).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    data
}

/// The UUID `blkid` prints for the btrfs in `img` (its superblock's
/// fsid).
pub fn fs_uuid(img: &[u8]) -> String {
    let h: String = img[0x1_0020..0x1_0030].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn with_uuid(data: &[u8], uuid: &str) -> Vec<u8> {
    match std::str::from_utf8(data) {
        Ok(t) if t.contains("@UUID@") => t.replace("@UUID@", uuid).into_bytes(),
        _ => data.to_vec(),
    }
}

/// An openSUSE Tumbleweed root as the installer and snapper leave it
/// after one `zypper up`: `@`, `@/.snapshots`, `@/var`; snapshot 1 the
/// installed system (kernel `old`), snapshot 2 taken by the update (kernel
/// `new` added) and made the default; grub.cfg in each as
/// `grub2-mkconfig` writes it with `SUSE_BTRFS_SNAPSHOT_BOOTING=true`
/// (`btrfs_relative_path`, the snapshot menu sourced from
/// `/.snapshots/grub-snapshot.cfg`), and that menu as snapper's grub
/// plugin writes it. Kernels and initrds: (version, kernel, initrd);
/// `opts` ends each command line.
pub fn opensuse(old: (&str, Vec<u8>, Vec<u8>), new: (&str, Vec<u8>, Vec<u8>), opts: &str) -> Vec<Op<'static>> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let fstab = "UUID=@UUID@  /            btrfs  defaults                 0  0
UUID=@UUID@  /var         btrfs  subvol=/@/var            0  0
UUID=@UUID@  /.snapshots  btrfs  subvol=/@/.snapshots     0  0
UUID=ABCD-1234  /boot/efi  vfat  utf8  0  2
";
    let s1 = "/@/.snapshots/1/snapshot";
    let s2 = "/@/.snapshots/2/snapshot";
    let mut ops = vec![
        Op::Subvol("/@"),
        Op::Subvol("/@/.snapshots"),
        Op::Subvol("/@/var"),
        Op::Subvol(s1),
        Op::File(leak(format!("{s1}/etc/fstab")), fstab.into()),
        Op::File(leak(format!("{s1}/etc/os-release")), b"NAME=\"openSUSE Tumbleweed\"\n".to_vec()),
        Op::File(leak(format!("{s1}/boot/vmlinuz-{}", old.0)), old.1),
        Op::File(leak(format!("{s1}/boot/initrd-{}", old.0)), old.2),
        Op::Link(leak(format!("{s1}/boot/vmlinuz")), leak(format!("vmlinuz-{}", old.0))),
        Op::Link(leak(format!("{s1}/boot/initrd")), leak(format!("initrd-{}", old.0))),
        Op::File(leak(format!("{s1}/boot/grub2/grub.cfg")), opensuse_grub_cfg(&[old.0], opts).into_bytes()),
        Op::File(leak(format!("{s1}/boot/grub2/grubenv")), grubenv(&[]).into_bytes()),
        Op::Snapshot(s1, s2),
        Op::File(leak(format!("{s2}/boot/vmlinuz-{}", new.0)), new.1),
        Op::File(leak(format!("{s2}/boot/initrd-{}", new.0)), new.2),
        Op::Link(leak(format!("{s2}/boot/vmlinuz")), leak(format!("vmlinuz-{}", new.0))),
        Op::Link(leak(format!("{s2}/boot/initrd")), leak(format!("initrd-{}", new.0))),
        Op::File(leak(format!("{s2}/boot/grub2/grub.cfg")), opensuse_grub_cfg(&[new.0, old.0], opts).into_bytes()),
        Op::SetDefault(s2),
    ];
    // snapper's grub plugin: one file per snapshot, and the menu.
    let mut menu = String::from("if [ -z \"$extra_cmdline\" ]; then\n  submenu \"Start bootloader from a read-only snapshot\" {\n");
    for (n, date, kind, version) in [(2, "2024-06-02T09:30", "post", new.0), (1, "2024-06-01T08:00", "single", old.0)] {
        ops.push(Op::File(leak(format!("/@/.snapshots/{n}/grub-snapshot.cfg")), Vec::new()));
        let kv = version.trim_end_matches("-default");
        menu += &format!(
            "    if [ -f \"/.snapshots/{n}/grub-snapshot.cfg\" ]; then
      snapshot_found=true
      saved_subvol=$btrfs_subvol
      menuentry \"openSUSE Tumbleweed ({kv},{date},{kind},zypp(zypper))\" {{
        btrfs_subvol=\"/@/.snapshots/{n}/snapshot\"
        extra_cmdline=\"rootflags=subvol=@/.snapshots/{n}/snapshot\"
        export extra_cmdline
        snapshot_num={n}
        export snapshot_num
        configfile \"/boot/grub2/grub.cfg\"
      }}
      btrfs_subvol=$saved_subvol
    fi
"
        );
    }
    menu += "    if [ x$snapshot_found != xtrue ]; then\n      submenu \"Not Found\" { true; }\n    fi\n  }\nfi\n";
    ops.push(Op::File("/@/.snapshots/grub-snapshot.cfg", menu.into_bytes()));
    ops
}

/// An Arch Linux root as `archinstall` leaves it with btrfs: subvolumes
/// `@`, `@home`, `@log` mounted with `compress=zstd` (the kernel stored
/// compressed), GRUB installed with its prefix at `/@/boot/grub` and
/// grub-mkconfig's paths from the top level. `opts` ends each command line.
pub fn arch(kernel: Vec<u8>, initrd: Vec<u8>, opts: &str) -> Vec<Op<'static>> {
    let cfg = format!(
        r#"### BEGIN /etc/grub.d/00_header ###
insmod part_gpt
insmod part_msdos
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${{next_entry}}" ] ; then
   set default="${{next_entry}}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
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
    insmod vga
  fi
}}

if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
insmod part_gpt
insmod btrfs
search --no-floppy --fs-uuid --set=root @UUID@
    font="/@/usr/share/grub/unicode.pf2"
fi

if loadfont $font ; then
  set gfxmode=auto
  load_video
  insmod gfxterm
fi
terminal_input console
terminal_output gfxterm
if [ x$feature_timeout_style = xy ] ; then
  set timeout_style=menu
  set timeout=5
else
  set timeout=5
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
menuentry 'Arch Linux' --class arch --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-@UUID@' {{
	load_video
	set gfxpayload=keep
	insmod gzio
	insmod part_gpt
	insmod btrfs
	search --no-floppy --fs-uuid --set=root @UUID@
	echo	'Loading Linux linux ...'
	linux	/@/boot/vmlinuz-linux root=UUID=@UUID@ rw rootflags=subvol=@ {opts}
	echo	'Loading initial ramdisk ...'
	initrd	/@/boot/initramfs-linux.img
}}
submenu 'Advanced options for Arch Linux' $menuentry_id_option 'gnulinux-advanced-@UUID@' {{
	menuentry 'Arch Linux, with Linux linux' --class arch --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-linux-advanced-@UUID@' {{
		load_video
		set gfxpayload=keep
		insmod gzio
		insmod part_gpt
		insmod btrfs
		search --no-floppy --fs-uuid --set=root @UUID@
		echo	'Loading Linux linux ...'
		linux	/@/boot/vmlinuz-linux root=UUID=@UUID@ rw rootflags=subvol=@ {opts} test.entry=advanced
		echo	'Loading initial ramdisk ...'
		initrd	/@/boot/initramfs-linux.img
	}}
}}
### END /etc/grub.d/10_linux ###
"#
    );
    vec![
        Op::Subvol("/@"),
        Op::Subvol("/@home"),
        Op::Subvol("/@log"),
        Op::File("/@/etc/fstab", b"UUID=@UUID@ / btrfs rw,relatime,compress=zstd:3,subvol=/@ 0 0\n".to_vec()),
        Op::File("/@/boot/vmlinuz-linux", kernel),
        Op::File("/@/boot/initramfs-linux.img", initrd),
        Op::File("/@/boot/grub/grub.cfg", cfg.into_bytes()),
        Op::File("/@/boot/grub/grubenv", grubenv(&[]).into_bytes()),
    ]
}

/// A 1024-byte grubenv as `grub2-editenv` writes it.
pub fn grubenv(vars: &[&str]) -> String {
    let mut s = String::from("# GRUB Environment Block\n");
    for v in vars {
        s += v;
        s.push('\n');
    }
    s += &"#".repeat(1024 - s.len());
    s
}

/// openSUSE's grub.cfg for `kernels` (newest first), as `grub2-mkconfig`
/// writes it with `SUSE_BTRFS_SNAPSHOT_BOOTING="true"`; `opts` ends each
/// command line.
pub fn opensuse_grub_cfg(kernels: &[&str], opts: &str) -> String {
    let mut s = String::from(
        r#"#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub2-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
set btrfs_relative_path="y"
export btrfs_relative_path
if [ -f ${config_directory}/grubenv ]; then
  load_env -f ${config_directory}/grubenv
elif [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="${saved_entry}"
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

if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
insmod part_gpt
insmod btrfs
set root='hd0,gpt2'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint='hd0,gpt2'  @UUID@
else
  search --no-floppy --fs-uuid --set=root @UUID@
fi
    font="/usr/share/grub2/unicode.pf2"
fi

if loadfont $font ; then
  set gfxmode=auto
  load_video
  insmod gfxterm
  set locale_dir=$prefix/locale
  set lang=en_US
  insmod gettext
fi
terminal_output gfxterm
insmod part_gpt
insmod btrfs
set root='hd0,gpt2'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint='hd0,gpt2'  @UUID@
else
  search --no-floppy --fs-uuid --set=root @UUID@
fi
insmod gfxmenu
loadfont ($root)/boot/grub2/themes/openSUSE/DejaVuSans-Bold14.pf2
insmod png
set theme=($root)/boot/grub2/themes/openSUSE/theme.txt
export theme
if [ x${boot_once} = xtrue ]; then
  set timeout=0
elif [ x$feature_timeout_style = xy ] ; then
  set timeout_style=menu
  set timeout=8
# Fallback normal timeout code in case the timeout_style feature is
# unavailable.
else
  set timeout=8
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
"#,
    );
    let entry = |title: &str, id: &str, v: &str, indent: &str| {
        format!(
            "{indent}menuentry '{title}' --class opensuse --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{
{indent}	load_video
{indent}	set gfxpayload=keep
{indent}	insmod gzio
{indent}	insmod part_gpt
{indent}	insmod btrfs
{indent}	set root='hd0,gpt2'
{indent}	if [ x$feature_platform_search_hint = xy ]; then
{indent}	  search --no-floppy --fs-uuid --set=root --hint='hd0,gpt2'  @UUID@
{indent}	else
{indent}	  search --no-floppy --fs-uuid --set=root @UUID@
{indent}	fi
{indent}	echo	'Loading Linux {v} ...'
{indent}	linux	/boot/vmlinuz-{v} root=UUID=@UUID@ ${{extra_cmdline}} splash=silent mitigations=auto quiet {opts}
{indent}	echo	'Loading initial ramdisk ...'
{indent}	initrd	/boot/initrd-{v}
{indent}}}
"
        )
    };
    s += &entry("openSUSE Tumbleweed", "gnulinux-simple-@UUID@", kernels[0], "");
    s += "submenu 'Advanced options for openSUSE Tumbleweed' --hotkey=1 $menuentry_id_option 'gnulinux-advanced-@UUID@' {
";
    for v in kernels {
        s += &entry(&format!("openSUSE Tumbleweed, with Linux {v}"), &format!("gnulinux-{v}-advanced-@UUID@"), v, "\t");
    }
    s += r#"}
### END /etc/grub.d/10_linux ###

### BEGIN /etc/grub.d/80_suse_btrfs_snapshot ###
if [ -f "/.snapshots/grub-snapshot.cfg" ]; then
  source "/.snapshots/grub-snapshot.cfg"
fi
### END /etc/grub.d/80_suse_btrfs_snapshot ###
"#;
    s
}

/// A loop mount, unmounted when dropped (also when a step panics).
struct Mount(PathBuf);

impl Mount {
    fn new(img: &Path, mnt: &Path, opts: &str) -> Mount {
        let mut c = Command::new("mount");
        c.arg("-t").arg("btrfs").arg("-o").arg(format!("loop{}{opts}", if opts.is_empty() { "" } else { "," }));
        run(c.arg(img).arg(mnt));
        Mount(mnt.to_path_buf())
    }

    fn remount(&self, opts: &str) {
        run(&mut Command::new("sync"));
        run(Command::new("mount").arg("-o").arg(format!("remount,{opts}")).arg(&self.0));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e} (btrfs-progs and root: `make test` has both)"));
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!("hvmlite-btrfs-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
