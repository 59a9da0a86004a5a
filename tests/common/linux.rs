//! What the Linux payload tests and `make bench` share: Debian's kernel and
//! busybox (fetched with tests/support/fetch-debs.sh, cached in
//! `target/debs/`), a busybox initramfs whose `/init` reports what Linux
//! saw, bundles made with the `hvmlite` host tool, and QEMU arguments.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::common::{parse_hex, private_path, qemu_pvh, rename_into, root, scratch, tool, write_atomic};

/// What `/init` prints last, before it powers off.
pub const MARKER: &str = "hvmlite-linux-test: done";
/// Every line `/init` prints starts with this.
pub const INIT: &str = "init: ";
/// The kernel command line the test bundles carry.
pub const BUNDLE_CMDLINE: &str = "console=ttyS0 panic=-1 quiet";

/// The test's `/init`: the command line, the e820 map Linux took (dmesg's
/// BIOS-e820 lines and /sys/firmware/memmap), the initrd Linux found, the
/// hypervisor if Linux names one, the marker; then power off.
const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "init: cmdline: $(cat /proc/cmdline)"
for d in /sys/firmware/memmap/*; do echo "init: memmap: $(cat $d/start) $(cat $d/end) $(cat $d/type)"; done
dmesg | grep -E "BIOS-e820:|RAMDISK:|paravirtualized kernel|Hypervisor detected" | sed 's/^\[[ 0-9.]*\] /init: dmesg: /'
[ -e /sys/hypervisor/type ] && echo "init: hypervisor: $(cat /sys/hypervisor/type)"
echo "init: hvmlite-linux-test: done"
poweroff -f
"#;

pub struct Linux {
    /// Debian's bzImage (`vmlinuz-*`).
    pub vmlinuz: PathBuf,
    /// The busybox initramfs (newc cpio).
    pub initrd: PathBuf,
}

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed");
}

/// Which Debian kernel the loader tests boot as the guest:
/// `HVMLITE_GUEST_LINUX` = `6.1` (or unset: Debian 12's) or `6.12` (Debian
/// 13's, from the `trixie` suite, cached in `target/debs-trixie/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestLinux {
    Debian12,
    Debian13,
}

impl GuestLinux {
    pub fn from_env() -> Self {
        match std::env::var("HVMLITE_GUEST_LINUX").as_deref() {
            Err(_) | Ok("") | Ok("6.1") => GuestLinux::Debian12,
            Ok("6.12") => GuestLinux::Debian13,
            Ok(other) => panic!("HVMLITE_GUEST_LINUX={other}: 6.1 or 6.12"),
        }
    }
    /// The suite fetch-debs.sh is given (`SUITE=`), if not the machine's own.
    fn suite(self) -> Option<&'static str> {
        match self {
            GuestLinux::Debian12 => None,
            GuestLinux::Debian13 => Some("trixie"),
        }
    }
    /// Where fetch-debs.sh keeps this suite's `.deb`s.
    fn debs(self) -> PathBuf {
        root().join(self.suite().map_or("target/debs".to_string(), |s| format!("target/debs-{s}")))
    }
    /// Where the packages are unpacked.
    fn dir(self) -> PathBuf {
        root().join(self.suite().map_or("target/linux".to_string(), |s| format!("target/linux-{s}")))
    }
}

/// Fetch (once) Debian's `linux-image-amd64` kernel (of the suite
/// [`GuestLinux::from_env`] names) and `busybox-static`, and build the
/// initramfs.
pub fn linux() -> &'static Linux {
    static L: OnceLock<Linux> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    L.get_or_init(|| {
        let which = GuestLinux::from_env();
        let dir = which.dir();
        let fetch = root().join("tests/support/fetch-debs.sh");
        let fetch_cmd = || {
            let mut c = Command::new("sh");
            c.arg(&fetch).arg(&dir);
            match which.suite() {
                Some(s) => c.env("SUITE", s),
                None => c.env_remove("SUITE"),
            };
            c
        };
        // fetch-debs.sh serialises its own runs (a lock file in its cache).
        run(fetch_cmd().args(["linux-image-amd64", "busybox-static"]));
        // linux-image-amd64 is a metapackage: its Depends names the kernel.
        let meta = std::fs::read_dir(which.debs())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("linux-image-amd64_"))
            .expect("linux-image-amd64 .deb");
        let out = Command::new("dpkg-deb").args(["-f"]).arg(&meta).arg("Depends").output().expect("dpkg-deb");
        let deps = String::from_utf8_lossy(&out.stdout).to_string();
        let pkg = deps.split([' ', ',']).next().unwrap().trim().to_string();
        assert!(pkg.starts_with("linux-image-"), "unexpected Depends: {deps}");
        run(fetch_cmd().arg(&pkg));
        let boot = dir.join(&pkg).join("boot");
        let vmlinuz = std::fs::read_dir(&boot)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("vmlinuz-"))
            .expect("vmlinuz in the kernel package");
        let busybox = busybox_in(&dir);
        let initrd = scratch("linux").join("initramfs.cpio");
        write_atomic(
            &initrd,
            &cpio(&[
                ("bin", 0o40755, &[][..]),
                ("proc", 0o40755, &[]),
                ("sys", 0o40755, &[]),
                ("dev", 0o40755, &[]),
                ("bin/busybox", 0o100755, &busybox),
                ("init", 0o100755, INIT_SCRIPT.as_bytes()),
            ]),
        );
        eprintln!("guest Linux: {}", vmlinuz.display());
        Linux { vmlinuz, initrd }
    })
}

/// The guest kernel's release, from its file name (`vmlinuz-RELEASE`):
/// what its `Linux version` line names.
pub fn kernel_version() -> String {
    linux().vmlinuz.file_name().unwrap().to_str().unwrap().trim_start_matches("vmlinuz-").to_string()
}

/// The guest kernel's own PVH entry (its `XEN_ELFNOTE_PHYS32_ENTRY`:
/// 0x1000850 for Debian 12's 6.1), read here without hvmlite's tool: the
/// bzImage's payload (setup header `payload_offset`/`payload_length`)
/// unpacked with `xz` or `zstd` as its magic says, its notes read.
pub fn guest_pvh_entry() -> u64 {
    static E: OnceLock<u64> = OnceLock::new();
    *E.get_or_init(|| {
        let bz = std::fs::read(&linux().vmlinuz).unwrap();
        let u32at = |o: usize| u32::from_le_bytes(bz[o..o + 4].try_into().unwrap()) as usize;
        let setup = (bz[0x1f1].max(4) as usize + 1) * 512;
        let (off, len) = (setup + u32at(0x248), u32at(0x24c));
        let payload = &bz[off..off + len];
        let tool = match payload {
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => "xz",
            [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
            _ => panic!("the guest kernel's payload is neither xz nor zstd"),
        };
        let path = private_path(&scratch("linux").join("payload"));
        std::fs::write(&path, payload).unwrap();
        let out = Command::new(tool).arg("-dc").arg(&path).output().unwrap_or_else(|e| panic!("run {tool}: {e}"));
        let _ = std::fs::remove_file(&path);
        // zstd's frame ends before the payload's 4-byte size trailer: it
        // may complain about the trailing bytes after writing the output.
        assert!(!out.stdout.is_empty(), "{tool} -dc of the guest kernel's payload");
        vmlinux_pvh_entry(&out.stdout, "the guest kernel")
    })
}

/// A vmlinux's own PVH entry (its `XEN_ELFNOTE_PHYS32_ENTRY`); `what`
/// names it in a failure.
pub fn vmlinux_pvh_entry(vmlinux: &[u8], what: &str) -> u64 {
    let k = hvmlite::payload::kernel::parse_vmlinux(vmlinux).unwrap_or_else(|e| panic!("{what}'s vmlinux: {e:?}"));
    k.pvh_entry.unwrap_or_else(|| panic!("{what} has no PVH entry"))
}

/// Debian's static busybox (fetched by [`linux`]).
pub fn busybox() -> Vec<u8> {
    linux();
    busybox_in(&GuestLinux::from_env().dir())
}

/// busybox-static's binary where it was unpacked: `/bin` in Debian 12,
/// `/usr/bin` in Debian 13.
fn busybox_in(dir: &Path) -> Vec<u8> {
    ["busybox-static/bin/busybox", "busybox-static/usr/bin/busybox"]
        .iter()
        .find_map(|p| std::fs::read(dir.join(p)).ok())
        .expect("busybox-static's busybox")
}

/// A module of Debian's kernel package, by its path under `kernel/`
/// (e.g. `drivers/net/xen-netfront.ko`), uncompressed: Debian 12 ships
/// them as they are in `/lib/modules`, Debian 13 xz-compressed in
/// `/usr/lib/modules` (busybox's insmod takes neither `.ko.xz` nor its
/// missing modules.dep).
pub fn kernel_module(rel: &str) -> Vec<u8> {
    let pkg_root = linux().vmlinuz.parent().unwrap().parent().unwrap();
    let base = ["lib/modules", "usr/lib/modules"].iter().map(|d| pkg_root.join(d)).find(|d| d.is_dir()).expect("modules in the package");
    let modules = std::fs::read_dir(base).unwrap().next().unwrap().unwrap().path().join("kernel");
    if let Ok(b) = std::fs::read(modules.join(rel)) {
        return b;
    }
    let xz = modules.join(format!("{rel}.xz"));
    let out = Command::new("xz").arg("-dc").arg(&xz).output().expect("run xz");
    assert!(out.status.success(), "module {rel}: {}", xz.display());
    out.stdout
}

/// A newc cpio archive (what the kernel unpacks as initramfs).
pub fn cpio(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let pad = |out: &mut Vec<u8>| out.resize(out.len().div_ceil(4) * 4, 0);
    let put = |out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]| {
        let fields = [ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad(out);
        out.extend_from_slice(data);
        pad(out);
    };
    for (i, (name, mode, data)) in entries.iter().enumerate() {
        put(&mut out, i as u32 + 1, name, *mode, data);
    }
    put(&mut out, 0, "TRAILER!!!", 0, &[]);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Run `hvmlite pack ARGS -o OUT` with the host tool (into a private file,
/// then renamed to OUT: another test may be reading the last one).
pub fn pack(args: &[&str], out: &Path) {
    let tmp = private_path(out);
    let st = Command::new(tool())
        .arg("pack")
        .args(args)
        .arg("-o")
        .arg(&tmp)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run hvmlite pack");
    assert!(st.success(), "hvmlite pack {args:?} failed");
    rename_into(&tmp, out);
}

/// Which way the kernel travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// hvmlite.elf + a bundle module holding the bzImage as it is.
    BzImage,
    /// hvmlite.elf + a bundle module holding the vmlinux decompressed at pack time.
    Vmlinux,
    /// One self-contained ELF: hvmlite + the vmlinux bundle.
    SelfContained,
    /// One self-contained ELF without an initrd, which comes as the PVH module.
    SelfContainedBootInitrd,
}

/// Make the files for `way` (cached per way): (the -kernel file, the -initrd file).
pub fn payload(way: Way, image: &Path) -> (PathBuf, Option<PathBuf>) {
    let l = linux();
    let dir = scratch("linux");
    let k = l.vmlinuz.to_str().unwrap();
    let i = l.initrd.to_str().unwrap();
    match way {
        Way::BzImage => {
            let out = dir.join("bundle-bzimage");
            pack(&["--kernel", k, "--initrd", i, "--cmdline", BUNDLE_CMDLINE, "--bzimage"], &out);
            (image.to_path_buf(), Some(out))
        }
        Way::Vmlinux => {
            let out = dir.join("bundle-vmlinux");
            pack(&["--kernel", k, "--initrd", i, "--cmdline", BUNDLE_CMDLINE], &out);
            (image.to_path_buf(), Some(out))
        }
        Way::SelfContained => {
            let out = dir.join("hvmlite-linux.elf");
            pack(&["--kernel", k, "--initrd", i, "--cmdline", BUNDLE_CMDLINE, "--elf", image.to_str().unwrap()], &out);
            (out, None)
        }
        Way::SelfContainedBootInitrd => {
            let out = dir.join("hvmlite-linux-no-initrd.elf");
            pack(&["--kernel", k, "--cmdline", BUNDLE_CMDLINE, "--elf", image.to_str().unwrap()], &out);
            (out, Some(l.initrd.clone()))
        }
    }
}

/// QEMU on its PVH path with the serial port on stdout (hvmlite's COM1
/// lines and Linux's ttyS0) and isa-debug-exit for hvmlite's crash exit.
pub fn qemu_args(kernel: &Path, initrd: Option<&Path>, mem: &str, append: &str) -> Vec<String> {
    qemu_pvh("-serial", kernel, mem, append, initrd)
}

/// Linux's `BIOS-e820` dmesg lines among `/init`'s lines (`init: ` already
/// removed), as (start, end exclusive, hvmlite's type name).
pub fn linux_bios_e820<'a>(init_lines: impl IntoIterator<Item = &'a str>) -> Vec<(u64, u64, String)> {
    init_lines
        .into_iter()
        .filter_map(|l| l.strip_prefix("dmesg: BIOS-e820: [mem "))
        .map(|l| {
            let (range, ty) = l.split_once("] ").unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let ty = match ty.trim() {
                "usable" => "ram",
                "reserved" => "reserved",
                "ACPI data" => "acpi",
                "ACPI NVS" => "nvs",
                "unusable" => "unusable",
                "persistent (type 7)" => "pmem",
                t => panic!("unknown e820 type {t}"),
            };
            (parse_hex(a), parse_hex(b) + 1, ty.to_string())
        })
        .collect()
}

/// Debian's bzImage and an initramfs for a Linux PVH domU that serves what
/// `examples/net-echo-http` serves, for the benchmarks that set the two side
/// by side: `xen-netfront.ko` from the same package, eth0 at `cidr`, busybox
/// `nc -ll -p 7 -e cat` (TCP echo) and `httpd -p 80` (a 700-byte `/`).
/// The initramfs is written under `scratch(name)`.
pub fn net_domu(name: &str, cidr: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let vmlinuz = linux().vmlinuz.clone();
    let netfront = kernel_module("drivers/net/xen-netfront.ko");
    let busybox = busybox();
    let init = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
insmod /xen-netfront.ko
ip link set lo up
i=0; until [ -e /sys/class/net/eth0 ]; do i=$((i + 1)); [ $i -le 100 ] || break; sleep 0.1; done
ip addr add CIDR dev eth0
ip link set eth0 up
mkdir -p /www
head -c 700 /dev/zero | tr '\0' 'x' > /www/index.html
nc -ll -p 7 -e cat &
httpd -p 80 -h /www
echo "linux-net: ready" > /dev/hvc0
while :; do sleep 3600; done
"#
    .replace("CIDR", cidr);
    let cpio = cpio(&[
        ("bin", 0o40755, &[]),
        ("bin/busybox", 0o100755, &busybox),
        ("init", 0o100755, init.as_bytes()),
        ("xen-netfront.ko", 0o100644, &netfront),
    ]);
    let initrd = dir.join("linux-net.cpio");
    std::fs::write(&initrd, cpio).unwrap();
    (vmlinuz, initrd)
}
