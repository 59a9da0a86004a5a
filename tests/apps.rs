//! Apps on the library: `examples/hello-stubdom` (built by `make examples`)
//! and an app crate outside this repository — the one README.md shows,
//! taken from README.md itself — each booted on QEMU and under `xl create`
//! on the real Xen 4.17 host.

mod common;
use common::xen_host::{self, Scenario};
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const XEN_T: Duration = Duration::from_secs(300);

/// The fenced block that follows `marker` in README.md.
fn readme_block(readme: &str, marker: &str) -> String {
    let at = readme.find(marker).unwrap_or_else(|| panic!("README.md has no {marker:?}"));
    let rest = &readme[at..];
    let open = rest.find("```").expect("a fenced block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("the block ends")].to_string()
}

/// README.md's app, as a user would make it: a new crate in a directory
/// outside this repository whose only tie to hvmlite is the path
/// dependency; built with the command README.md gives.
fn out_of_tree_app() -> PathBuf {
    static APP: OnceLock<PathBuf> = OnceLock::new();
    APP.get_or_init(|| {
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        let dir = std::env::temp_dir().join(format!("hvmlite-my-app-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        assert!(!dir.starts_with(root()), "the app must live outside the repository");
        let manifest = readme_block(&readme, "`Cargo.toml`:").replace("/path/to/hvmlite", root().to_str().unwrap());
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        std::fs::write(dir.join("build.rs"), readme_block(&readme, "`build.rs`:")).unwrap();
        std::fs::write(dir.join("src/main.rs"), readme_block(&readme, "`src/main.rs`:")).unwrap();
        // Pin the same dependency versions as this repository.
        std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        let build = readme_block(&readme, "Build it:");
        let cmd = build.lines().find(|l| l.starts_with("cargo ")).expect("a cargo command").to_string();
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(&dir)
            // A target directory inside this repository's, only to cache.
            .env("CARGO_TARGET_DIR", root().join("target/my-app"))
            .output()
            .expect("run cargo");
        assert!(out.status.success(), "`{cmd}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let elf = root().join("target/my-app/x86_64-unknown-none/release/my-app");
        let kept = scratch("apps").join("my-app.elf");
        std::fs::copy(&elf, &kept).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        kept
    })
    .clone()
}

#[test]
fn hello_stubdom_on_qemu() {
    let run = qemu(&pvh_args(&example("hello-stubdom"), "64", "", None), &[], T);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    assert!(run.lines.iter().any(|l| l.starts_with("hvmlite: hello-stubdom: up on tcg with ") && l.ends_with(" KiB of heap")), "{d}");
    // Off Xen the clock is the TSC, calibrated against the PIT: the app
    // sleeps 1 s on it, which must take about 1 s of real time (TCG's TSC
    // and PIT both follow the host's clock; the bounds allow for a loaded
    // host).
    let start = run.lines.iter().position(|l| l == "hvmlite: hello-stubdom: no xenstore (not a Xen domU); timing 1 s on the clock");
    let end = run.lines.iter().position(|l| l.starts_with("hvmlite: hello-stubdom: clock: ") && l.ends_with("; powering off"));
    let (Some(start), Some(end)) = (start, end) else { panic!("no clock lines: {d}") };
    let real = run.at[end] - run.at[start];
    assert!(real >= Duration::from_millis(700) && real <= Duration::from_millis(2500), "1 s on the clock took {real:?} of real time: {d}");
    let ms: u64 = run.lines[end]["hvmlite: hello-stubdom: clock: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!((1000..1100).contains(&ms), "the clock says {ms} ms passed: {d}");
    // The runtime's boot report is the loader app's, not every app's.
    assert!(!run.has("hvmlite: ready"), "{d}");
}

#[test]
fn out_of_tree_app_on_qemu() {
    let run = qemu(&pvh_args(&out_of_tree_app(), "64", "hello=world", None), &[], T);
    let d = run.dump();
    assert_eq!(run.status, Some(QEMU_POWEROFF), "{d}");
    let hello = run.lines.iter().find(|l| l.starts_with("hvmlite: my-app: hello from tcg, cmdline \"hello=world\", "));
    assert!(hello.is_some_and(|l| l.ends_with(" e820 entries")), "{d}");
    assert!(run.has("hvmlite: my-app: a second task ran"), "{d}");
}

#[test]
fn both_apps_under_xl_create() {
    let cfg = std::fs::read_to_string(root().join("xen/hello-stubdom.cfg")).unwrap();
    let s = Scenario::new(
        r#". /usr/share/xen-host/lib.sh
echo "=== hello-stubdom"
xl create /etc/xen/hello-stubdom.cfg || exit 10
d=$(xl domid hello-stubdom) || exit 11
i=0; until [ "$(xenstore-read /local/domain/$d/data/hello 2>/dev/null)" = world ]; do
    i=$((i + 1)); [ $i -le 100 ] || exit 12; sleep 0.05; done
echo "data/hello=$(xenstore-read /local/domain/$d/data/hello)"
# The clock: data/uptime against dom0's /proc/uptime, 6 s apart, and
# data/wallclock against dom0's date.
i=0; until xenstore-read /local/domain/$d/data/uptime >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -le 100 ] || exit 16; sleep 0.05; done
echo "clock1 app=$(xenstore-read /local/domain/$d/data/uptime) dom0=$(cut -d' ' -f1 /proc/uptime)"
sleep 6
echo "clock2 app=$(xenstore-read /local/domain/$d/data/uptime) dom0=$(cut -d' ' -f1 /proc/uptime)"
echo "wall app=$(xenstore-read /local/domain/$d/data/wallclock) dom0=$(date +%s)"
xenstore-write /local/domain/$d/data/hello-request dom0
i=0; until r=$(xenstore-read /local/domain/$d/data/hello-response 2>/dev/null); do
    i=$((i + 1)); [ $i -le 100 ] || exit 13; sleep 0.05; done
echo "data/hello-response=$r"
xl shutdown -w hello-stubdom || exit 14
wait_gone hello-stubdom 30 || exit 15
echo "=== my-app"
xl create /etc/xen/my-app.cfg || exit 20
wait_gone my-app 60 || exit 21
echo "=== xl list"
xl list
echo "=== end"
"#,
    )
    .config("hello-stubdom.cfg", &cfg)
    .config(
        "my-app.cfg",
        "name = \"my-app\"\ntype = \"pvh\"\nkernel = \"/usr/lib/hvmlite/my-app.elf\"\ncmdline = \"from=xl\"\nmemory = 8\nvcpus = 1\non_poweroff = \"destroy\"\non_crash = \"preserve\"\n",
    )
    .file_from("/usr/lib/hvmlite/hello-stubdom.elf", &example("hello-stubdom"))
    .file_from("/usr/lib/hvmlite/my-app.elf", &out_of_tree_app());
    let r = xen_host::run("apps", &s, XEN_T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    assert!(r.has("data/hello=world"), "{d}");
    assert!(r.has("data/hello-response=hello, dom0"), "{d}");
    // data/uptime advances with dom0's clock (it is published once a
    // second, so each reading may lag by up to 1 s).
    let clock = |tag: &str| -> (f64, f64) {
        let l = r.scenario().into_iter().find(|l| l.starts_with(tag)).unwrap_or_else(|| panic!("no {tag} line: {d}"));
        let v = |k: &str| l.split(' ').find_map(|w| w.strip_prefix(k)).and_then(|x| x.parse::<f64>().ok());
        (v("app=").unwrap_or_else(|| panic!("{l}: {d}")), v("dom0=").unwrap_or_else(|| panic!("{l}: {d}")))
    };
    let ((a1, h1), (a2, h2)) = (clock("clock1 "), clock("clock2 "));
    assert!(((a2 - a1) - (h2 - h1)).abs() <= 1.5, "data/uptime moved {:.2} s while dom0's clock moved {:.2} s: {d}", a2 - a1, h2 - h1);
    assert!(h2 - h1 >= 5.5, "{d}");
    let (wa, wh) = clock("wall ");
    assert!((wa - wh).abs() <= 3.0, "wall clock {wa} vs dom0's date {wh}: {d}");
    let hello = r.guest(1);
    assert!(hello.iter().any(|l| l.starts_with("hvmlite: hello-stubdom: up on xen with ")), "{d}");
    assert!(hello.contains(&"hvmlite: hello-stubdom: ready"), "{d}");
    assert!(hello.contains(&"hvmlite: hello-stubdom: hello, dom0"), "{d}");
    assert!(hello.contains(&"hvmlite: shutdown: poweroff"), "{d}");
    let app = r.guest(2);
    assert!(app.iter().any(|l| l.starts_with("hvmlite: my-app: hello from xen, cmdline \"from=xl\", ")), "{d}");
    assert!(app.contains(&"hvmlite: my-app: data/my-app written"), "{d}");
    assert!(app.contains(&"hvmlite: my-app: a second task ran"), "{d}");
    assert!(app.contains(&"hvmlite: shutdown: poweroff"), "{d}");
    let list: Vec<&str> = r.scenario().into_iter().skip_while(|l| !l.contains("=== xl list")).collect();
    assert!(!list.iter().any(|l| l.starts_with("hello-stubdom ") || l.starts_with("my-app ")), "both must be gone: {d}");
    assert!(r.has(&format!("Domain {} has been shut down, reason code 0", r.id(1))), "xl shutdown saw a clean poweroff: {d}");
}

/// How much host CPU an idle stubdomain costs: the loader's service (it
/// sleeps until xenstore or the console signals, or 10 s pass) and
/// hello-stubdom (wakes once a second to publish its uptime), left idle for
/// 25 s (`HVMLITE_IDLE_S` to change it: docs/benchmarks.md has a minute)
/// side by side; their CPU time from `xl list` before and after. Both must
/// stay under 1% of the wall time (plus `xl list`'s 0.1 s step).
#[test]
fn idle_stubdomains_use_almost_no_cpu() {
    let idle_s: u32 = std::env::var("HVMLITE_IDLE_S").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let s = Scenario::new(&format!(
        r#". /usr/share/xen-host/lib.sh
xl create /etc/xen/hvmlite-stubdom.cfg || exit 10
xl create /etc/xen/hello-stubdom.cfg || exit 11
for n in hvmlite-stubdom hello-stubdom; do
    i=0; until [ -n "$(xenstore-read /local/domain/$(xl domid $n)/data/hello 2>/dev/null || xenstore-read /local/domain/$(xl domid $n)/data/hvmlite/state 2>/dev/null)" ]; do
        i=$((i + 1)); [ $i -le 200 ] || exit 12; sleep 0.05; done
done
sleep 1
cpu() {{ xl list "$1" | awk 'NR == 2 {{ print $6 }}'; }}
t0=$(cut -d' ' -f1 /proc/uptime); s0=$(cpu hvmlite-stubdom); h0=$(cpu hello-stubdom)
sleep {idle_s}
t1=$(cut -d' ' -f1 /proc/uptime); s1=$(cpu hvmlite-stubdom); h1=$(cpu hello-stubdom)
echo "idle wall=$t0..$t1 service=$s0..$s1 hello=$h0..$h1"
xl list
xl vcpu-list
xl shutdown -w hvmlite-stubdom || exit 13
xl shutdown -w hello-stubdom || exit 14
"#
    ))
    .config("hvmlite-stubdom.cfg", &std::fs::read_to_string(root().join("xen/hvmlite-stubdom.cfg")).unwrap())
    .config("hello-stubdom.cfg", &std::fs::read_to_string(root().join("xen/hello-stubdom.cfg")).unwrap())
    .file_from("/usr/lib/hvmlite/hvmlite.elf", &image())
    .file_from("/usr/lib/hvmlite/hello-stubdom.elf", &example("hello-stubdom"));
    let r = xen_host::run("apps-idle", &s, XEN_T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let l = r.scenario().into_iter().find(|l| l.starts_with("idle ")).unwrap_or_else(|| panic!("no idle line: {d}"));
    let range = |k: &str| -> (f64, f64) {
        let v = l.split(' ').find_map(|w| w.strip_prefix(k)).unwrap_or_else(|| panic!("{l}"));
        let (a, b) = v.split_once("..").unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let (t0, t1) = range("wall=");
    let wall = t1 - t0;
    assert!(wall >= idle_s as f64 - 0.5, "{d}");
    for who in ["service=", "hello="] {
        let (c0, c1) = range(who);
        let used = c1 - c0;
        eprintln!("idle: {who} {used:.1} s of CPU in {wall:.1} s ({:.2}%)", 100.0 * used / wall);
        // `xl list` shows tenths of a second, so a difference can be 0.1 s
        // more than was used: 1% of the wall time, plus that step.
        assert!(used <= 0.01 * wall + 0.1 + 1e-9, "{who} used {used:.1} s of CPU in {wall:.1} s idle: {d}");
    }
}
