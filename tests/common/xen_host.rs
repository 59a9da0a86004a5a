//! A real Xen host for tests: Debian's Xen 4.17 in QEMU/TCG with Debian's
//! Linux 6.1 as PV dom0 and the `xl` toolstack (built by
//! `tests/xen-host/build.sh`, cached in `target/xen-host/`).
//! `HVMLITE_XEN_HOST=4.20` picks the second host instead: Debian 13's
//! Xen 4.20 with its Linux 6.12 as PV dom0 (`XEN_HOST=4.20` for build.sh,
//! cached in `target/xen-host-4.20/`); see [`XenHost`]. Either runs in
//! Debian's QEMU rebuilt with a fix to its SVM emulation ([`qemu`]).
//!
//! A [`Scenario`] adds files, xl configs and a dom0 shell script to the
//! host's initramfs (as a second newc cpio appended to the first); dom0's
//! `/init` brings up xenstore (the C daemon, oxenstored or a xenstore
//! domain: [`Scenario::xenstore`]), xenconsoled and xen-init-dom0, runs
//! `/scenario/run.sh`, prints `=== scenario done rc=N` and powers off.
//! The script's output goes to the console as it is, between the markers
//! `=== xen-host ready` and `=== scenario done rc=N`; guest lines appear as
//! Xen prints them (`(d1) ...`).
//!
//! ```ignore
//! let s = Scenario::new("xl create /etc/xen/hvmlite-pvh.cfg\nxl list\n")
//!     .file("/usr/lib/hvmlite/hvmlite.elf", std::fs::read(image()).unwrap())
//!     .config("hvmlite-pvh.cfg", "...");          // -> /etc/xen/hvmlite-pvh.cfg
//! let r = xen_host::run("my-scenario", &s, Duration::from_secs(180));
//! assert_eq!(r.rc, Some(0), "{}", r.dump());
//! ```
#![allow(dead_code)]

use super::{root, Run};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Printed by dom0's /init once xenstored, xenconsoled and xen-init-dom0 run.
pub const READY: &str = "=== xen-host ready";
/// Printed by dom0's /init after the scenario script, with its exit status.
pub const DONE: &str = "=== scenario done rc=";
/// Printed by dom0's /init when setting up the toolstack failed.
pub const FAILED: &str = "=== xen-host failed:";
/// What ends a run besides [`DONE`]: set-up failures and panics.
pub const STOP: &[&str] = &[DONE, FAILED, "Kernel panic", "Panic on CPU", "Hardware Dom0 crashed", "Hardware Dom0 halted"];

/// Xen's command line (PV dom0 with a fixed 384 MiB and one vCPU).
///
/// `bootscrub=0`: by default (`bootscrub=idle`) Xen zeroes the free RAM it
/// found at boot (here about 600 MiB) in its idle loop. On hardware that
/// is a second or so, and it yields to pending softirqs often enough to
/// go unnoticed; under TCG it took the whole first ~20 s of every host
/// (QEMU's vCPU thread at 100 %, `clear_page_sse2` on every sample), and
/// while it ran every timer and wake-up of every domain came late, by
/// about 10 ms: a `usleep 5000` in dom0 took 13.6 ms instead of 8.7, and
/// rt-check's timers fired a median 9–17 ms late (tests/xen_timers.rs
/// failed). Pages a destroyed domain frees are still zeroed that way (a
/// 256 MiB domain's for about 3 s after it is gone), so a test that times
/// wake-ups runs in a host where no domain has ended yet.
pub const XEN_ARGS: &str = "console=com1 loglvl=all guest_loglvl=all noreboot bootscrub=0 dom0_mem=384M,max:384M dom0_max_vcpus=1";
/// dom0 Linux's command line.
pub const LINUX_ARGS: &str = "console=hvc0 earlyprintk=xen rdinit=/init quiet";

/// The built host: Xen, dom0's kernel and its base initramfs.
#[derive(Debug, Clone)]
pub struct Host {
    pub xen: PathBuf,
    pub vmlinux: PathBuf,
    pub initramfs: PathBuf,
}

/// Which Xen host the tests boot: `HVMLITE_XEN_HOST` = `4.17` (or unset)
/// or `4.20`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum XenHost {
    /// Debian 12: Xen 4.17, Linux 6.1 as dom0 (`target/xen-host/`).
    #[default]
    Xen417,
    /// Debian 13: Xen 4.20, Linux 6.12 as dom0 (`target/xen-host-4.20/`).
    Xen420,
}

impl XenHost {
    /// From `HVMLITE_XEN_HOST` (unset: 4.17).
    pub fn from_env() -> Self {
        match std::env::var("HVMLITE_XEN_HOST").as_deref() {
            Err(_) | Ok("") | Ok("4.17") => XenHost::Xen417,
            Ok("4.20") => XenHost::Xen420,
            Ok(other) => panic!("HVMLITE_XEN_HOST={other}: 4.17 or 4.20"),
        }
    }
    /// Xen's version, as build.sh's `XEN_HOST` names it.
    pub fn version(self) -> &'static str {
        match self {
            XenHost::Xen417 => "4.17",
            XenHost::Xen420 => "4.20",
        }
    }
    /// Where xen/fetch-xen.sh alone keeps this host's hypervisor (for
    /// [`super::xen_bin`]: hvmlite as dom0 needs no dom0 initramfs).
    pub fn hypervisor_dir(self) -> PathBuf {
        match self {
            XenHost::Xen417 => root().join("target/xen"),
            XenHost::Xen420 => root().join("target/xen-4.20"),
        }
    }
    /// Where build.sh keeps this host (tests/xen-host/prepare.sh names the
    /// same directories, and `qemu()`'s, to build them before the tests).
    pub fn dir(self) -> PathBuf {
        match self {
            XenHost::Xen417 => root().join("target/xen-host"),
            XenHost::Xen420 => root().join("target/xen-host-4.20"),
        }
    }
}

/// Build the host `HVMLITE_XEN_HOST` names once (a no-op when its
/// `target/xen-host*/stamp` is current).
pub fn host() -> Host {
    static HOST: OnceLock<Mutex<Option<Host>>> = OnceLock::new();
    let mut g = HOST.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = g.as_ref() {
        return h.clone();
    }
    let which = XenHost::from_env();
    let dir = which.dir();
    let t = Instant::now();
    let st = Command::new("sh")
        .arg(root().join("tests/xen-host/build.sh"))
        .arg(&dir)
        .env("XEN_HOST", which.version())
        .status()
        .expect("run tests/xen-host/build.sh");
    assert!(st.success(), "tests/xen-host/build.sh failed");
    eprintln!("xen-host: Xen {} host ready in {:.1?}", which.version(), t.elapsed());
    let h = Host { xen: dir.join("xen.bin"), vmlinux: dir.join("vmlinux"), initramfs: dir.join("initramfs.gz") };
    *g = Some(h.clone());
    h
}

/// The QEMU every Xen host runs in: Debian's QEMU source with the fixes in
/// `tests/xen-host/qemu/` (one for an interrupt that QEMU's SVM emulation
/// delivered twice now and then, which killed a Linux guest early in its
/// boot about once in a hundred), built once by its `build.sh` (cached in
/// `target/xen-qemu/`). `HVMLITE_XEN_QEMU` names another binary instead:
/// `HVMLITE_XEN_QEMU=qemu-system-x86_64` runs Debian's own.
pub fn qemu() -> PathBuf {
    static QEMU: OnceLock<PathBuf> = OnceLock::new();
    QEMU.get_or_init(|| {
        if let Some(q) = std::env::var_os("HVMLITE_XEN_QEMU").filter(|q| !q.is_empty()) {
            return PathBuf::from(q);
        }
        let dir = root().join("target/xen-qemu");
        let t = Instant::now();
        let st = Command::new("sh")
            .arg(root().join("tests/xen-host/qemu/build.sh"))
            .arg(&dir)
            .status()
            .expect("run tests/xen-host/qemu/build.sh");
        assert!(st.success(), "tests/xen-host/qemu/build.sh failed");
        eprintln!("xen-host: QEMU ready in {:.1?}", t.elapsed());
        dir.join("qemu-system-x86_64")
    })
    .clone()
}

/// How dom0 is started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dom0 {
    /// Linux as PV dom0 (the default: what the other tests run on).
    #[default]
    Pv,
    /// Linux as PVH dom0, booted by Xen directly (`dom0=pvh
    /// dom0-iommu=none`, the vmlinux as the first module).
    Pvh,
    /// Linux as PVH dom0 through hvmlite: hvmlite.elf the first module (with
    /// [`Scenario::hvmlite_args`]), a bundle (the same vmlinux, the
    /// initramfs, Linux's command line) the second.
    PvhViaHvmlite,
}

/// Xen's extra arguments for a PVH dom0 (no IOMMU in QEMU's q35 as set up here).
pub const XEN_PVH_ARGS: &str = "dom0=pvh dom0-iommu=none";

/// What one run of the host does: files for dom0, xl configs, the script.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// `(absolute path in dom0, contents, mode)`; parent directories are made.
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// `(name, text)`: each goes to `/etc/xen/NAME` in dom0.
    pub configs: Vec<(String, String)>,
    /// `/scenario/run.sh`, run by `sh` in `/scenario` after the toolstack
    /// is up. `. /usr/share/xen-host/lib.sh` gives `wait_gone`,
    /// `wait_state` and `xl_state` (see tests/xen-host/lib.sh).
    pub script: String,
    /// Added to [`XEN_ARGS`].
    pub xen_args: String,
    /// Added to [`LINUX_ARGS`] (no commas: QEMU splits modules on them).
    pub linux_args: String,
    /// How dom0 is started.
    pub dom0: Dom0,
    /// hvmlite's own command line, for [`Dom0::PvhViaHvmlite`] (Linux's is
    /// the bundle's, then this one).
    pub hvmlite_args: String,
    /// Who serves xenstore.
    pub xenstore: Xenstore,
    /// Fault injection in [`qemu`] (0: off): an exit request after every
    /// Nth interrupt Xen injects into a guest, the kick that made QEMU
    /// deliver it twice before its fix (`svm-vmrun-test-kick.patch`).
    pub svm_kick_every: u32,
    /// QEMU's `-icount shift=N,sleep=off`: every guest instruction takes
    /// 2^N ns of the host's virtual time, idle time none, so what dom0
    /// and Xen measure is a count of instructions, not this machine's
    /// speed or load (`BENCH_ICOUNT` in benches/disk.rs).
    pub icount: Option<u32>,
    /// `(text, d)`: the run ends `d` after the first console line holding
    /// `text`, as at a timeout, for a boot expected to stop there.
    pub settle: Option<(&'static str, Duration)>,
}

/// Printed by dom0's /init before it runs `init-xenstore-domain`
/// ([`Xenstore::Domain`]).
pub const XS_DOMAIN: &str = "=== xen-host xenstore domain:";

/// Who serves xenstore on the host (`/scenario/xenstore`, read by
/// tests/xen-host/init before xenconsoled and xen-init-dom0 start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Xenstore {
    /// The C `xenstored` in dom0 (what every other test runs with).
    #[default]
    Daemon,
    /// The OCaml `oxenstored` in dom0.
    Oxenstored,
    /// A xenstore domain: `init-xenstore-domain --kernel ELF --memory
    /// MEMORY_MB [--param PARAM]` (the ELF goes in as
    /// `/scenario/xenstored.elf`), which must answer within `timeout_s`
    /// or the run ends with `=== xen-host failed: xenstore domain …`.
    Domain { elf: PathBuf, memory_mb: u32, timeout_s: u32, param: String },
}

impl Xenstore {
    /// A xenstore domain from `elf` with `memory_mb` MiB, 30 s to answer,
    /// no `--param`.
    pub fn domain(elf: &Path, memory_mb: u32) -> Self {
        Xenstore::Domain { elf: elf.to_path_buf(), memory_mb, timeout_s: 30, param: String::new() }
    }
    /// The domain's `--param` text (after `--event PORT` on its command line).
    pub fn param(mut self, p: &str) -> Self {
        if let Xenstore::Domain { param, .. } = &mut self {
            *param = p.to_string();
        }
        self
    }
    /// How long `init-xenstore-domain` may wait for the domain to answer.
    pub fn timeout_s(mut self, s: u32) -> Self {
        if let Xenstore::Domain { timeout_s, .. } = &mut self {
            *timeout_s = s;
        }
        self
    }
    /// Who serves xenstore when a test does not say: `HVMLITE_XENSTORE`
    /// = `daemon` (or unset), `oxenstored`, or `domain` (hvmlite's
    /// `apps/xenstored` as the xenstore domain, with
    /// `HVMLITE_XENSTORE_MB` MiB, default 4). `HVMLITE_XENSTORE=domain
    /// make test-xen` runs every Xen scenario on the xenstore domain.
    pub fn from_env() -> Self {
        match std::env::var("HVMLITE_XENSTORE").as_deref() {
            Ok("oxenstored") => Xenstore::Oxenstored,
            Ok("domain") => {
                let mb = std::env::var("HVMLITE_XENSTORE_MB").ok().and_then(|m| m.parse().ok()).unwrap_or(4);
                Xenstore::domain(&super::app("xenstored"), mb)
            }
            Ok("daemon") | Err(_) => Xenstore::Daemon,
            Ok(other) => panic!("HVMLITE_XENSTORE={other}: daemon, oxenstored or domain"),
        }
    }
    /// A short name, for scratch directories (`daemon`, `oxenstored`, `domain`).
    pub fn name(&self) -> &'static str {
        match self {
            Xenstore::Daemon => "daemon",
            Xenstore::Oxenstored => "oxenstored",
            Xenstore::Domain { .. } => "domain",
        }
    }
}

impl Scenario {
    /// Served by whoever `HVMLITE_XENSTORE` names ([`Xenstore::from_env`]),
    /// unless the test chooses with [`Scenario::xenstore`].
    pub fn new(script: &str) -> Self {
        Scenario { script: script.to_string(), xenstore: Xenstore::from_env(), ..Default::default() }
    }
    /// Put `contents` at `path` in dom0 (mode 0644).
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), contents.into(), 0o644));
        self
    }
    /// Copy the host file `from` to `path` in dom0.
    pub fn file_from(self, path: &str, from: &Path) -> Self {
        let b = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        self.file(path, b)
    }
    /// Copy the host file `from` to `PATH.gz` in dom0, gzip'ed: dom0's
    /// root is RAM, and a scenario with several large files (kernels,
    /// disks) fits only if each is unpacked (`gunzip PATH.gz`) when used.
    pub fn file_gz(self, path: &str, from: &Path) -> Self {
        let out = Command::new("gzip").args(["-1", "-c"]).arg(from).output().expect("run gzip");
        assert!(out.status.success(), "gzip {}", from.display());
        self.file(&format!("{path}.gz"), out.stdout)
    }
    /// Copy the host program `from` to `path` in dom0, executable.
    pub fn program_from(mut self, path: &str, from: &Path) -> Self {
        let b = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        self.files.push((path.to_string(), b, 0o755));
        self
    }
    /// Run the scenario with `x` serving xenstore (default: the C daemon).
    pub fn xenstore(mut self, x: Xenstore) -> Self {
        self.xenstore = x;
        self
    }
    /// An xl config, at `/etc/xen/NAME` in dom0.
    pub fn config(mut self, name: &str, text: &str) -> Self {
        self.configs.push((name.to_string(), text.to_string()));
        self
    }

    /// The newc cpio that carries this scenario, to append to the base
    /// initramfs.
    pub fn cpio(&self) -> Vec<u8> {
        let mut c = Cpio::default();
        c.file("/scenario/run.sh", self.script.as_bytes(), 0o755);
        match &self.xenstore {
            Xenstore::Daemon => {}
            Xenstore::Oxenstored => c.file("/scenario/xenstore", b"oxenstored\n", 0o644),
            Xenstore::Domain { elf, memory_mb, timeout_s, param } => {
                let b = std::fs::read(elf).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
                c.file("/scenario/xenstored.elf", &b, 0o644);
                let line = format!("domain /scenario/xenstored.elf {memory_mb} {timeout_s} {param}");
                c.file("/scenario/xenstore", format!("{}\n", line.trim_end()).as_bytes(), 0o644);
            }
        }
        for (name, text) in &self.configs {
            assert!(!name.contains('/'), "config name {name:?}");
            c.file(&format!("/etc/xen/{name}"), text.as_bytes(), 0o644);
        }
        for (path, data, mode) in &self.files {
            c.file(path, data, *mode);
        }
        c.finish()
    }
}

/// A newc ("070701") cpio writer: directories for every parent, then files.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    dirs: Vec<String>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields =
            [self.ino, mode, 0, 0, if mode & 0o040000 != 0 { 2 } else { 1 }, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
    pub fn dir(&mut self, path: &str) {
        let p = path.trim_matches('/');
        if p.is_empty() || self.dirs.iter().any(|d| d == p) {
            return;
        }
        if let Some((parent, _)) = p.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.push(p.to_string());
        self.entry(p, 0o040755, &[]);
    }
    pub fn file(&mut self, path: &str, data: &[u8], perm: u32) {
        assert!(path.starts_with('/'), "dom0 paths are absolute: {path}");
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | (perm & 0o7777), data);
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        // Keep whatever follows 512-byte aligned, like the base archive.
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
        self.out
    }
}

/// One run of the host: the [`Run`] (all lines, how it ended), when each
/// line arrived, and the scenario's exit status.
#[derive(Debug)]
pub struct HostRun {
    pub run: Run,
    /// When each of `run.lines` arrived, from QEMU's start.
    pub at: Vec<Duration>,
    /// `/scenario/run.sh`'s exit status, from the [`DONE`] marker.
    pub rc: Option<i32>,
    /// Domain ids the xenstore domain took before the guests (1 or 0).
    pub shift: u32,
}

impl Deref for HostRun {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

impl HostRun {
    /// When the first line containing `needle` arrived.
    pub fn time_of(&self, needle: &str) -> Option<Duration> {
        self.run.lines.iter().position(|l| l.contains(needle)).map(|i| self.at[i])
    }
    /// Time from the first line containing `a` to the first containing `b`.
    pub fn between(&self, a: &str, b: &str) -> Option<Duration> {
        Some(self.time_of(b)?.saturating_sub(self.time_of(a)?))
    }
    /// Domain `domid`'s console lines as Xen prints them, `(dN) ` removed.
    /// Guest `n`'s domain id: `n`, or `n + 1` behind a xenstore domain.
    pub fn id(&self, n: u32) -> u32 {
        n + self.shift
    }
    /// What `xenstore-list /local/domain` holds with no guest: dom0, and
    /// the xenstore domain when there is one.
    pub fn base_domains(&self) -> Vec<String> {
        (0..=self.shift).map(|d| d.to_string()).collect()
    }
    /// Xen's tag for guest `n`'s lines: `(dN)`.
    pub fn tag(&self, n: u32) -> String {
        format!("(d{})", self.id(n))
    }
    /// Counted as the guests' own: with a xenstore domain, which is
    /// domain 1, guest `n` is domain `n + 1`.
    pub fn guest(&self, domid: u32) -> Vec<&str> {
        self.domain(domid + self.shift)
    }
    /// What Xen printed for domain `domid` (its `(dN)` lines), by its id.
    pub fn domain(&self, domid: u32) -> Vec<&str> {
        let p = format!("(d{domid}) ");
        self.run.lines.iter().filter_map(|l| l.split_once(p.as_str()).map(|(_, r)| r)).collect()
    }
    /// The scenario script's own output: the lines between the markers
    /// (guest lines Xen printed meanwhile included; the harness's own
    /// `[harness]` lines, such as a nudge's record, which land wherever
    /// the console fell quiet, left out).
    pub fn scenario(&self) -> Vec<&str> {
        let l = &self.run.lines;
        let from = l.iter().position(|x| x.contains(READY)).map(|i| i + 1).unwrap_or(l.len());
        let to = l.iter().position(|x| x.contains(DONE)).unwrap_or(l.len());
        l[from.min(to)..to].iter().map(|s| s.as_str()).filter(|s| !s.starts_with(super::HARNESS)).collect()
    }
    /// dom0's own output between `marker` and the next `=== ` marker (Xen's
    /// `(XEN)` and guests' `(dN)` lines share the serial console; left out).
    pub fn section(&self, marker: &str) -> Vec<&str> {
        self.scenario()
            .into_iter()
            .skip_while(|l| !l.contains(marker))
            .skip(1)
            .filter(|l| !l.starts_with("(XEN)") && !l.starts_with("(d"))
            .take_while(|l| !l.starts_with("=== "))
            .collect()
    }
}

/// dom0 Linux's command line for `s`.
pub fn linux_cmdline(s: &Scenario) -> String {
    format!("{LINUX_ARGS} {}", s.linux_args).trim_end().to_string()
}

/// QEMU's arguments for the host booting `initramfs` (for
/// [`Dom0::PvhViaHvmlite`]: `initramfs` is the bundle, `image` hvmlite).
pub fn qemu_args(h: &Host, initramfs: &Path, s: &Scenario) -> Vec<String> {
    qemu_args_with(h, initramfs, s, None)
}

fn qemu_args_with(h: &Host, initramfs: &Path, s: &Scenario, image: Option<&Path>) -> Vec<String> {
    let linux = linux_cmdline(s);
    let (k, args) = match (s.dom0, image) {
        (Dom0::PvhViaHvmlite, Some(img)) => (img.display().to_string(), s.hvmlite_args.clone()),
        (Dom0::PvhViaHvmlite, None) => panic!("a PVH dom0 through hvmlite needs hvmlite's image"),
        _ => (h.vmlinux.display().to_string(), linux),
    };
    let i = initramfs.display().to_string();
    for x in [&args, &k, &i] {
        assert!(!x.contains(','), "QEMU splits multiboot modules on commas: {x}");
    }
    let pvh = if s.dom0 == Dom0::Pv { "" } else { XEN_PVH_ARGS };
    let cpu = match s.svm_kick_every {
        0 => "qemu64,+npt".to_string(),
        n => format!("qemu64,+npt,x-svm-kick-every={n}"),
    };
    let mut a: Vec<String> = [
        "-accel",
        "tcg",
        "-M",
        "q35",
        "-cpu",
        &cpu,
        "-m",
        "1024",
        "-smp",
        "1",
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-serial",
        "stdio",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(n) = s.icount {
        a.push("-icount".into());
        a.push(format!("shift={n},sleep=off"));
    }
    a.push("-kernel".into());
    a.push(h.xen.display().to_string());
    a.push("-append".into());
    a.push(format!("{XEN_ARGS} {pvh} {}", s.xen_args).split_whitespace().collect::<Vec<_>>().join(" "));
    a.push("-initrd".into());
    a.push(format!("{k} {},{i}", args.trim()).replace(" ,", ","));
    a
}

/// Boot the host with scenario `s` (its files under
/// `target/test-scratch/xen-host-NAME/`), streaming the serial console
/// until [`DONE`] (or a failure or panic line, or `timeout`).
pub fn run(name: &str, s: &Scenario, timeout: Duration) -> HostRun {
    let h = host();
    let dir = super::scratch(&format!("xen-host-{name}"));
    let initramfs = dir.join("initramfs");
    let mut img = std::fs::read(&h.initramfs).expect("read the base initramfs");
    assert_eq!(img.len() % 4, 0, "the base initramfs must be padded");
    img.extend_from_slice(&s.cpio());
    std::fs::write(&initramfs, &img).unwrap();
    std::fs::write(dir.join("run.sh"), &s.script).unwrap();

    let args = if s.dom0 == Dom0::PvhViaHvmlite {
        // The same vmlinux, initramfs and command line, packed for hvmlite.
        let bundle = dir.join("dom0.bundle");
        let st = Command::new(super::tool())
            .args(["pack", "--kernel"])
            .arg(&h.vmlinux)
            .arg("--initrd")
            .arg(&initramfs)
            .args(["--cmdline", &linux_cmdline(s), "-o"])
            .arg(&bundle)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run hvmlite pack");
        assert!(st.success(), "hvmlite pack of dom0 failed");
        qemu_args_with(&h, &bundle, s, Some(&super::image()))
    } else {
        qemu_args(&h, &initramfs, s)
    };
    let run = super::qemu_xen(&args, STOP, timeout, s.settle);
    let at = run.at.clone();
    // A run that timed out has no status, whatever the dump of Xen's state
    // let through after the deadline.
    let rc = if run.timed_out { None } else { run.lines.iter().find_map(|l| l.split_once(DONE).and_then(|(_, r)| r.trim().parse().ok())) };
    // The console with each line's arrival time, for looking at later.
    let log: String = run.lines.iter().zip(&at).map(|(l, t)| format!("[{:8.3}] {l}\n", t.as_secs_f64())).collect();
    std::fs::write(dir.join("console.log"), log).unwrap();
    let shift = u32::from(matches!(s.xenstore, Xenstore::Domain { .. }));
    HostRun { run, at, rc, shift }
}

/// A dom0 test tool from tests/xen-host/NAME.c, built static (dom0's
/// initramfs has no libc of the host's version).
pub fn dom0_tool(name: &str) -> PathBuf {
    super::require("cc");
    let out = super::scratch("dom0-tools").join(name);
    let tmp = super::private_path(&out);
    let st = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp)
        .arg(super::root().join(format!("tests/xen-host/{name}.c")))
        .status()
        .expect("run cc");
    assert!(st.success(), "building {name} failed");
    super::rename_into(&tmp, &out);
    out
}

/// `tests/rt-check` (the runtime's test app) as
/// `/usr/lib/hvmlite/rt-check.elf`, with `/etc/xen/rt-check.cfg` passing it
/// `cmdline` (its checks), under the dom0 `script` (after lib.sh).
pub fn rt_check(script: &str, cmdline: &str) -> Scenario {
    let cfg = format!(
        "name = \"rt-check\"\ntype = \"pvh\"\nkernel = \"/usr/lib/hvmlite/rt-check.elf\"\ncmdline = \"{cmdline}\"\nmemory = 8\nvcpus = 1\non_poweroff = \"destroy\"\non_crash = \"preserve\"\n"
    );
    Scenario::new(&format!(". /usr/share/xen-host/lib.sh\n{script}"))
        .config("rt-check.cfg", &cfg)
        .file_from("/usr/lib/hvmlite/rt-check.elf", &super::example("rt-check"))
}

#[test]
fn a_nudge_in_a_section_is_left_out() {
    let lines = [
        READY,
        "=== cmp (ext4)",
        "[harness] console quiet: nothing for 5.0 s; nudged Xen",
        "(XEN) *** Serial input to DOM0",
        "bytes changed: 3",
        "=== end",
        "=== scenario done rc=0",
    ];
    let n = lines.len();
    let run = Run {
        lines: lines.iter().map(|l| l.to_string()).collect(),
        status: None,
        stopped_on: None,
        timed_out: false,
        elapsed: Duration::ZERO,
        at: vec![Duration::ZERO; n],
    };
    let r = HostRun { run, at: vec![Duration::ZERO; n], rc: Some(0), shift: 0 };
    assert_eq!(r.section("=== cmp (ext4)"), ["bytes changed: 3"]);
}
