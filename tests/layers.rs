//! The library's folders are layers (README.md, "The source, by layer"):
//! each may import only from the layers below it, so there is no cycle and
//! `xen/` knows nothing of boot or payloads. This reads every source file
//! and checks each `crate::…` path against that order.

use std::path::Path;

/// Each folder and what it may import. The runtime's stack, bottom to top:
/// arch < xen < platform < boot < payload; the task runtime `rt` on
/// top of boot, using `net` too. Beside it: `dev`, the device
/// traits, imports nothing and anything may implement or use them;
/// `disk` (partitions, filesystems) and `net` (TCP/IP) see only `dev`,
/// never Xen. Under everything, `sort` (one copy of core's sort for all).
const LAYERS: &[(&str, &[&str])] = &[
    ("sort", &["sort"]),
    ("dev", &["sort", "dev"]),
    ("disk", &["sort", "dev", "disk"]),
    ("net", &["sort", "dev", "net"]),
    ("xsd", &["sort", "xsd"]),
    ("arch", &["sort", "arch"]),
    ("xen", &["sort", "dev", "arch", "xen"]),
    ("platform", &["sort", "arch", "xen", "platform"]),
    ("boot", &["sort", "arch", "xen", "platform", "boot"]),
    ("payload", &["sort", "dev", "disk", "arch", "xen", "platform", "boot", "payload"]),
    ("rt", &["sort", "dev", "net", "arch", "xen", "platform", "boot", "payload", "rt"]),
];

fn allowed(layer: &str) -> Option<&'static [&'static str]> {
    LAYERS.iter().find(|(l, _)| *l == layer).map(|(_, a)| *a)
}

/// Every `crate::NAME` a file names, with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a, b::c}`: each item's first segment.
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        out.push((i + 1, name));
                    }
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                out.push((i + 1, name));
            }
            rest = &after[1.min(after.len())..];
        }
    }
    out
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, f);
        } else if p.extension().is_some_and(|x| x == "rs") {
            f(&p);
        }
    }
}

#[test]
fn imports_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    let mut checked = 0;
    walk(&src, &mut |p| {
        let rel = p.strip_prefix(&src).unwrap();
        let Some(own) = rel.iter().next().and_then(|c| c.to_str()).filter(|c| !c.ends_with(".rs")) else { return };
        let Some(may) = allowed(own) else {
            bad.push(format!("{}: the folder {own}/ is in no layer", rel.display()));
            return;
        };
        let text = std::fs::read_to_string(p).unwrap();
        for (line, name) in crate_paths(&text) {
            checked += 1;
            if !may.contains(&name.as_str()) {
                bad.push(format!("{}:{line}: {own}/ imports crate::{name}, which it may not", rel.display()));
            }
        }
    });
    assert!(checked > 100, "only {checked} imports found: is the scan broken?");
    assert!(bad.is_empty(), "imports that point up:\n{}", bad.join("\n"));
}

#[test]
fn the_scan_sees_each_form_of_import() {
    let text = "use crate::xen::abi;\nuse crate::{boot, payload::kernel};\nlet x = crate::arch::cpu::rdtsc(); // crate::hidden\n";
    let names: Vec<String> = crate_paths(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["xen", "boot", "payload", "arch"]);
}
