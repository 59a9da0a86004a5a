//! What the end-to-end tests share: the image, QEMU runs with a deadline,
//! the test-only PVH shim, and Debian's Xen hypervisor fetched and cached
//! under `target/`.
#![allow(dead_code)]

pub mod xen_host;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The PVH image under test: `$HVMLITE_ELF`, else `hvmlite.elf` as `make` builds it.
pub fn image() -> PathBuf {
    let p = std::env::var_os("HVMLITE_ELF").map(PathBuf::from).unwrap_or_else(|| root().join("hvmlite.elf"));
    assert!(p.exists(), "{} is missing: run `make test`, which builds it", p.display());
    p
}

/// The host tool (`tool/`, the `hvmlite` command): `$HVMLITE_TOOL` (as
/// `make test` sets it), else built here once.
pub fn tool() -> PathBuf {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        if let Some(p) = std::env::var_os("HVMLITE_TOOL") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo).args(["build", "--quiet", "-p", "hvmlite-tool"]).current_dir(root()).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "building the host tool (cargo build -p hvmlite-tool) failed");
        root().join("target/debug/hvmlite")
    })
    .clone()
}

/// One of hvmlite's apps (apps/NAME) as `make apps` builds it:
/// `$HVMLITE_APPS/NAME.elf`, else built here.
pub fn app(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("HVMLITE_APPS") {
        let p = Path::new(&dir).join(format!("{name}.elf"));
        assert!(p.exists(), "{} is missing: run `make apps`", p.display());
        return p;
    }
    build_app(name)
}

/// An app from examples/ as `make examples` builds it: `$HVMLITE_EXAMPLES/NAME.elf`,
/// else built here.
pub fn example(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("HVMLITE_EXAMPLES") {
        let p = Path::new(&dir).join(format!("{name}.elf"));
        assert!(p.exists(), "{} is missing: run `make examples`", p.display());
        return p;
    }
    build_app(name)
}

/// `cargo build` of the app crate `name` for the PVH target: its ELF.
fn build_app(name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "x86_64-unknown-none", "-p", name])
        .current_dir(root())
        .status();
    assert!(st.map(|s| s.success()).unwrap_or(false), "building {name} failed");
    root().join("target/x86_64-unknown-none/release").join(name)
}

pub fn require(cmd: &str) {
    let ok = Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).stdout(Stdio::null()).status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "`{cmd}` is not installed: `make test` installs it");
}

/// One QEMU run: every line it printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub lines: Vec<String>,
    /// QEMU's exit status, when it exited by itself.
    pub status: Option<i32>,
    /// The stop pattern that ended the run, when one did.
    pub stopped_on: Option<String>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// When each of `lines` arrived, from QEMU's start.
    pub at: Vec<Duration>,
}

impl Run {
    /// hvmlite's own lines, with Xen's `(dN) ` or nothing in front, the
    /// `hvmlite: ` prefix removed.
    pub fn hvmlite(&self) -> Vec<&str> {
        self.lines.iter().filter_map(|l| l.split_once("hvmlite: ").map(|(_, r)| r)).collect()
    }
    /// The value of report line `key: value`.
    pub fn value(&self, key: &str) -> Option<&str> {
        let k = format!("{key}: ");
        self.hvmlite().into_iter().find_map(|l| l.strip_prefix(k.as_str()))
    }
    pub fn has(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
    pub fn dump(&self) -> String {
        format!(
            "status {:?}, stopped on {:?}, timed out {}, {:?}\n{}",
            self.status,
            self.stopped_on,
            self.timed_out,
            self.elapsed,
            self.lines.join("\n")
        )
    }
}

pub fn parse_hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("not hex: {s}"))
}

/// The `e820[I]: 0xSTART-0xEND TYPE` lines among hvmlite's report lines
/// (`hvmlite: ` already removed), as (start, end, type).
pub fn report_e820<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<(u64, u64, String)> {
    lines
        .into_iter()
        .filter_map(|l| l.strip_prefix("e820["))
        .map(|l| {
            let v: Vec<&str> = l.split_once(": ").unwrap().1.split(' ').collect();
            let (a, b) = v[0].split_once('-').unwrap();
            (parse_hex(a), parse_hex(b), v[1].to_string())
        })
        .collect()
}

impl Run {
    /// hvmlite's reported e820 map, as (start, end, type).
    pub fn e820(&self) -> Vec<(u64, u64, String)> {
        report_e820(self.hvmlite())
    }
}

/// Run `qemu-system-x86_64 ARGS` and collect what it prints on stdout.
/// Stops (kills QEMU) at the first line containing one of `stop_on`, or
/// at `timeout`; otherwise waits for QEMU to exit.
pub fn qemu(args: &[String], stop_on: &[&str], timeout: Duration) -> Run {
    require("qemu-system-x86_64");
    qemu_run(Path::new("qemu-system-x86_64"), args, stop_on, timeout, None, false)
}

/// [`qemu`] for Xen inside QEMU (`-serial stdio` is Xen's console), with a
/// watchdog for a QEMU fault: now and then QEMU 7.2's TCG leaves the CPU
/// halted in Xen's idle loop with the local APIC timer's interrupt
/// pending in IRR and deliverable (`info lapic`: IRR 250, PPR 0x10, IF
/// set), and nothing ever wakes it until killed, whether QEMU then uses
/// no CPU at all or some (both were seen). Any interrupt from outside
/// wakes it and the pending one is delivered. So whenever the console has
/// said nothing for [`IDLE_NUDGE`], the watchdog types `CTRL-a` six times
/// on the serial line: Xen takes the input for itself and gives it back
/// to dom0, printing two `(XEN) *** Serial input …` lines, and nothing
/// reaches a guest, so a nudge while Xen idles healthily costs nothing.
/// Each nudge is recorded as a `[harness]` line. The QEMU is
/// [`xen_host::qemu`], which has a fix for another fault of its SVM.
pub fn qemu_xen(args: &[String], stop_on: &[&str], timeout: Duration, settle: Option<(&str, Duration)>) -> Run {
    qemu_run(&xen_host::qemu(), args, stop_on, timeout, settle, true)
}

/// What Xen prints when a nudge switches its console's input.
const XEN_SERIAL_SWITCH: &str = "(XEN) *** Serial input to ";

/// Console line `s` with a nudge's message, which Xen prints in the middle
/// of whatever dom0 was printing, taken out of dom0's line: the front is
/// kept in `cut` and put back before the next line that is not Xen's.
fn rejoin(cut: &mut String, s: String) -> String {
    match s.find(XEN_SERIAL_SWITCH) {
        Some(at) if at > 0 => {
            cut.push_str(&s[..at]);
            s[at..].to_string()
        }
        _ if !cut.is_empty() && !s.starts_with("(XEN) ") => std::mem::take(cut) + &s,
        _ => s,
    }
}

#[test]
fn a_nudge_in_the_middle_of_a_line_is_taken_out() {
    let mut cut = String::new();
    let got: Vec<String> = [
        "status2 {\"rx_packe(XEN) *** Serial input to Xen (type 'CTRL-a' three times to switch input)",
        "ts\":3099} dom0=15640",
        "(XEN) *** Serial input to DOM0 (type 'CTRL-a' three times to switch input)",
        "(XEN) *** Serial input to Xen (type 'CTRL-a' three times to switch input)",
        "next",
    ]
    .into_iter()
    .map(|l| rejoin(&mut cut, l.to_string()))
    .collect();
    assert_eq!(got[1], "status2 {\"rx_packets\":3099} dom0=15640");
    assert!(got[0].starts_with(XEN_SERIAL_SWITCH) && got[2].starts_with(XEN_SERIAL_SWITCH) && got[3].starts_with(XEN_SERIAL_SWITCH));
    assert_eq!(got[4], "next");
}

/// How long Xen's console may stay quiet before [`qemu_xen`] nudges Xen.
pub const IDLE_NUDGE: Duration = Duration::from_secs(5);
/// How every line the harness itself adds to a run's lines begins.
pub const HARNESS: &str = "[harness] ";
/// The line [`qemu_xen`] records for each nudge.
pub const NUDGED: &str = "[harness] console quiet:";

/// `settle`: `(text, d)` ends the run `d` after the first line containing
/// `text`, if `timeout` has not come first; it counts as a timeout.
fn qemu_run(bin: &Path, args: &[String], stop_on: &[&str], timeout: Duration, settle: Option<(&str, Duration)>, nudge: bool) -> Run {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .stdin(if nudge { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let lines_tx = tx.clone();
    // When the console last spoke (ms since start), for the watchdog.
    let spoke = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let heard = spoke.clone();
    // Set when QEMU's stdout closes: the watchdog then stops too, so that
    // a QEMU that exited (a bad option, a missing BIOS) ends the run at
    // once instead of at `timeout`.
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let eof = closed.clone();
    let reader = std::thread::spawn(move || {
        // What a nudge's `(XEN) *** Serial input …` cut off the front of:
        // Xen prints it in the middle of whatever dom0 was printing, and
        // the rest of dom0's line follows on the next one.
        let mut cut = String::new();
        for l in BufReader::new(out).split(b'\n') {
            let Ok(l) = l else { break };
            let s = String::from_utf8_lossy(&l).trim_end_matches('\r').to_string();
            heard.store(start.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Release);
            let s = rejoin(&mut cut, s);
            if lines_tx.send((s, start.elapsed())).is_err() {
                break;
            }
        }
        eof.store(true, std::sync::atomic::Ordering::Release);
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stdin = std::sync::Arc::new(std::sync::Mutex::new(child.stdin.take()));
    let watchdog = nudge.then(|| {
        let (done, stdin) = (done.clone(), stdin.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            let mut nudged = Duration::ZERO;
            while !done.load(Ordering::Acquire) && !closed.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(250));
                let now = start.elapsed();
                let quiet = now.saturating_sub(Duration::from_millis(spoke.load(Ordering::Acquire)).max(nudged));
                if quiet >= IDLE_NUDGE {
                    type_into(&stdin, &[1u8; 6]);
                    let line = format!("{NUDGED} nothing for {:.1} s; nudged Xen through the serial line", quiet.as_secs_f64());
                    if tx.send((line, now)).is_err() {
                        break;
                    }
                    nudged = now;
                }
            }
        })
    });
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut run = Run { lines: vec![], status: None, stopped_on: None, timed_out: false, elapsed: Duration::ZERO, at: vec![] };
    let mut deadline = timeout;
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok((l, t)) => {
                if let Some((_, d)) = settle.filter(|(text, _)| l.contains(text)) {
                    deadline = deadline.min(t + d);
                }
                let hit = stop_on.iter().find(|p| l.contains(*p)).map(|p| p.to_string());
                run.lines.push(l);
                run.at.push(t);
                if hit.is_some() {
                    run.stopped_on = hit;
                    let _ = child.kill();
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                run.timed_out = true;
                // The watchdog's nudges would toggle the console back.
                done.store(true, std::sync::atomic::Ordering::Release);
                if nudge {
                    xen_state_on_timeout(&stdin, &rx, start, &mut run);
                }
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let status = child.wait().expect("wait for qemu");
    if run.stopped_on.is_none() && !run.timed_out {
        run.status = status.code();
    }
    let _ = reader.join();
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    run.elapsed = start.elapsed();
    let stderr = err_reader.join().unwrap_or_default();
    for l in stderr.lines().filter(|l| !l.trim().is_empty()) {
        run.lines.push(format!("[qemu stderr] {l}"));
        run.at.push(run.elapsed);
    }
    run
}

/// Types `bytes` on QEMU's serial line (Xen's console), if it has one.
fn type_into(stdin: &std::sync::Mutex<Option<std::process::ChildStdin>>, bytes: &[u8]) {
    use std::io::Write;
    if let Some(i) = stdin.lock().unwrap().as_mut() {
        let _ = i.write_all(bytes).and_then(|_| i.flush());
    }
}

/// The line recorded before Xen's state is dumped at a timeout.
pub const TIMEOUT_DUMP: &str = "[harness] timed out: Xen's state follows (debug keys q, r, e)";

/// A scenario that timed out stopped somewhere: before QEMU is killed,
/// take Xen's console (`CTRL-a` three times) and press its debug keys for
/// every domain's vCPUs (`q`), the run queues (`r`) and the event channels
/// (`e`), so that the console log says who was stuck where. Lines arriving
/// within a few seconds are kept.
fn xen_state_on_timeout(
    stdin: &std::sync::Mutex<Option<std::process::ChildStdin>>,
    rx: &mpsc::Receiver<(String, Duration)>,
    start: Instant,
    run: &mut Run,
) {
    run.lines.push(TIMEOUT_DUMP.into());
    run.at.push(start.elapsed());
    for k in [&[1u8, 1, 1][..], b"q", b"r", b"e"] {
        type_into(stdin, k);
        std::thread::sleep(Duration::from_millis(200));
    }
    let until = Instant::now() + Duration::from_secs(5);
    while let Ok((l, t)) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        run.lines.push(l);
        run.at.push(t);
    }
}

/// QEMU arguments for booting `kernel` through QEMU's own PVH path, with
/// port 0xe9 on stdout and isa-debug-exit for the exit status.
pub fn pvh_args(kernel: &Path, mem: &str, cmdline: &str, initrd: Option<&Path>) -> Vec<String> {
    qemu_pvh("-debugcon", kernel, mem, cmdline, initrd)
}

/// QEMU (q35, TCG) booting `kernel` on its PVH path with `console`
/// (`-debugcon`: port 0xe9, or `-serial`: COM1) on stdout and
/// isa-debug-exit for the exit status.
pub fn qemu_pvh(console: &str, kernel: &Path, mem: &str, cmdline: &str, initrd: Option<&Path>) -> Vec<String> {
    let mut a: Vec<String> = [
        "-accel",
        "tcg",
        "-M",
        "q35",
        "-m",
        mem,
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        console,
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0x501,iosize=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(["-kernel".to_string(), kernel.display().to_string(), "-append".to_string(), cmdline.to_string()]);
    if let Some(i) = initrd {
        a.extend(["-initrd".to_string(), i.display().to_string()]);
    }
    a
}

/// QEMU's exit status for hvmlite's poweroff and crash (isa-debug-exit).
pub const QEMU_POWEROFF: i32 = 1;
pub const QEMU_CRASH: i32 = 3;

/// A scratch directory under `target/` for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = root().join("target/test-scratch").join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// Tests run in threads of one process (`cargo test`) and in processes of
// their own side by side (`cargo nextest`, what `make test` uses), so what
// several of them make or fetch under `target/` is written to a path of
// the writer's own and renamed into place (a reader sees the old file or
// the new one, never half of one), and what must happen once is done
// under a lock file.

/// A path beside `p` that no other test, thread or process, writes: made
/// there, then renamed over `p` ([`write_atomic`], [`rename_into`]).
pub fn private_path(p: &Path) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = p.file_name().expect("a file name").to_string_lossy();
    p.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Move `tmp` (a [`private_path`]) over `p` in one step.
pub fn rename_into(tmp: &Path, p: &Path) {
    std::fs::rename(tmp, p).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), p.display()));
}

/// Write `data` to `p` in one step, as far as any reader can tell.
pub fn write_atomic(p: &Path, data: &[u8]) {
    let tmp = private_path(p);
    std::fs::write(&tmp, data).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    rename_into(&tmp, p);
}

/// Run `f` holding `target/test-scratch/NAME.lock` exclusively: one test
/// at a time, in this process and in any other.
pub fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let path = root().join("target/test-scratch").join(format!("{name}.lock"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // A thread of this process waits on the file lock like any other.
    file.lock().unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    let out = f();
    drop(file);
    out
}

/// Deterministic bytes (no RNG crate needed): a garbage module.
pub fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A PT_LOAD of an ELF64 file: where its bytes lie in the file, where
/// they are loaded, how many.
pub struct Load {
    pub offset: u64,
    pub paddr: u64,
    pub filesz: u64,
}

/// An ELF64 file's entry address and PT_LOADs, from its headers.
pub fn elf_loads(b: &[u8]) -> (u64, Vec<Load>) {
    assert_eq!(&b[..4], b"\x7fELF");
    let field = |at: usize, n: usize| b[at..at + n].iter().rev().fold(0u64, |v, &x| v << 8 | x as u64);
    let (phoff, phnum) = (field(32, 8) as usize, field(56, 2) as usize);
    let loads = (0..phnum)
        .map(|i| phoff + 56 * i)
        .filter(|&p| field(p, 4) == 1)
        .map(|p| Load { offset: field(p + 8, 8), paddr: field(p + 24, 8), filesz: field(p + 32, 8) })
        .collect();
    (field(24, 8), loads)
}

/// Build the test-only shim (tests/shim/shim.S) for one breakage `mode`.
pub fn shim(mode: u32) -> PathBuf {
    require("cc");
    let out = scratch("shim").join(format!("shim-{mode}.elf"));
    let tmp = private_path(&out);
    // hvmlite's entry, and where its lowest segment lies.
    let (entry, loads) = elf_loads(&std::fs::read(image()).unwrap());
    let start = loads.iter().map(|l| l.paddr).min().expect("a PT_LOAD");
    let status = Command::new("cc")
        .args(["-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-e,shim_entry"])
        .arg("-Wl,-Ttext-segment=0x2000000")
        .arg(format!("-Wl,--defsym=HVMLITE_ENTRY={entry:#x}"))
        .arg(format!("-Wl,--defsym=HVMLITE_START={start:#x}"))
        .arg(format!("-DMODE={mode}"))
        .arg(root().join("tests/shim/shim.S"))
        .arg("-o")
        .arg(&tmp)
        .status()
        .expect("run cc");
    assert!(status.success(), "building the shim failed");
    rename_into(&tmp, &out);
    out
}

/// Debian's Xen hypervisor (4.17, or 4.20 with `HVMLITE_XEN_HOST=4.20`)
/// as a multiboot ELF QEMU can boot, fetched with `apt-get download` once
/// and cached in `target/xen/` (`target/xen-4.20/`).
pub fn xen_bin() -> PathBuf {
    let which = xen_host::XenHost::from_env();
    let dir = which.hypervisor_dir();
    let bin = dir.join("xen.bin");
    locked(&format!("fetch-xen-{}", which.version()), || {
        if !bin.exists() {
            let st = Command::new("sh")
                .arg(root().join("xen/fetch-xen.sh"))
                .arg(&dir)
                .env("XEN_HOST", which.version())
                .status()
                .expect("run xen/fetch-xen.sh");
            assert!(st.success() && bin.exists(), "could not fetch Xen (xen/fetch-xen.sh)");
        }
    });
    bin
}

/// QEMU arguments for real Xen with `image` as PVH dom0 (see shared
/// platform notes: `+npt` is what lets Xen build PVH guests under TCG).
pub fn xen_dom0_args(xen: &Path, image: &Path, cmdline: &str, xen_extra: &str) -> Vec<String> {
    let mut a: Vec<String> =
        ["-accel", "tcg", "-M", "q35", "-cpu", "qemu64,+npt", "-m", "512", "-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    a.push("-kernel".into());
    a.push(xen.display().to_string());
    a.push("-append".into());
    // bootscrub=0: see xen_host::XEN_ARGS.
    a.push(format!("console=com1 loglvl=all guest_loglvl=all noreboot bootscrub=0 dom0=pvh dom0-iommu=none dom0_mem=64M {xen_extra}"));
    // QEMU's multiboot loader passes "path args" as the module string; Xen
    // drops the path and gives dom0 the rest as its command line. Commas
    // separate modules, so the command line must not contain any.
    assert!(!cmdline.contains(','), "multiboot module strings cannot contain commas");
    a.push("-initrd".into());
    a.push(format!("{} {}", image.display(), cmdline));
    a
}

/// Lines that end a Xen run: what Xen prints when dom0 stops.
pub const XEN_DOM0_HALTED: &str = "Hardware Dom0 halted";
pub const XEN_DOM0_CRASHED: &str = "Hardware Dom0 crashed";
pub const XEN_PANIC: &str = "Panic on CPU";
