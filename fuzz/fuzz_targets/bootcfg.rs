//! The guest's boot configuration (`disk::bootcfg::find`): BLS entries,
//! grub.cfg (with grubenv), extlinux.conf, Debian's symlinks.
//!
//! Mode 0: a filesystem from raw bytes — records of (path index, u16
//! length, bytes) over the paths `find` looks at — and an `hvmlite.entry=`
//! choice. Invariants: `find` is deterministic; an accepted result has
//! entries, each with a non-empty absolute-or-relative kernel path and no
//! NUL anywhere, `selected` in range, the choice honoured exactly (an index
//! selects that index, a name an entry with that title or id) and `why`
//! saying so; the deciding config is one of the files; errors print as one
//! line and a config error names a file of the filesystem (or a BLS
//! directory) and a line inside it.
//!
//! Mode 1: a grub.cfg written from a fuzzer-chosen menu (titles, ids,
//! kernels, options, initrds with quotes, `$`, `\`, braces; entries and
//! one level of submenus; each word quoted in one of GRUB's three ways) and
//! a default by index path, id path or title path. Invariant: the parse
//! gives back exactly the model's entries, and the default the model
//! computes by GRUB's rules.
#![no_main]

use std::collections::BTreeMap;

use hvmlite::disk::bootcfg::{self, grub, Error, Files, Why};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 15] = [
    "/boot/grub/grub.cfg",
    "/boot/grub/grubenv",
    "/loader/entries/a.conf",
    "/loader/entries/b-6.1.0.conf",
    "/loader/loader.conf",
    "/boot/extlinux/extlinux.conf",
    "/vmlinuz",
    "/initrd.img",
    "/boot/grub2/grub.cfg",
    "/boot/grub2/grubenv",
    "/boot/loader/entries/c-6.5.0.conf",
    "/grub/grub.cfg",
    "/extlinux/extlinux.conf",
    "/boot/grub/custom.cfg",
    "/boot/vmlinuz",
];

struct Fs(BTreeMap<String, Vec<u8>>);

impl Files for Fs {
    type Error = std::convert::Infallible;
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.0.get(path).cloned())
    }
    fn list(&mut self, dir: &str) -> Result<Option<Vec<String>>, Self::Error> {
        let prefix = format!("{dir}/");
        let names: Vec<String> =
            self.0.keys().filter_map(|p| p.strip_prefix(&prefix)).filter(|r| !r.contains('/')).map(String::from).collect();
        Ok((!names.is_empty()).then_some(names))
    }
}

fn raw(b: &mut Bytes) {
    let choice = match b.u8() % 4 {
        0 => None,
        1 => Some(format!("{}", b.u8() % 8)),
        2 => {
            let n = b.u8() as usize % 16;
            Some(String::from_utf8_lossy(b.take(n)).into_owned())
        }
        _ => Some(String::from("Debian GNU/Linux")),
    };
    let mut fs = BTreeMap::new();
    while !b.is_empty() {
        let path = PATHS[b.u8() as usize % PATHS.len()];
        let n = b.u16() as usize;
        fs.insert(path.to_string(), b.take(n).to_vec());
    }
    let first = bootcfg::find(&mut Fs(fs.clone()), choice.as_deref());
    let again = bootcfg::find(&mut Fs(fs.clone()), choice.as_deref());
    assert_eq!(first, again, "find is not deterministic");
    match first {
        Ok(found) => {
            assert!(!found.entries.is_empty());
            assert!(found.selected < found.entries.len());
            assert!(fs.contains_key(&found.config) || bootcfg::BLS_DIRS.contains(&found.config.as_str()), "{}", found.config);
            for e in &found.entries {
                assert!(!e.linux.is_empty(), "{e:?}");
                for s in [&e.title, &e.linux, &e.options].into_iter().chain(&e.initrds).chain(&e.id) {
                    assert!(!s.contains('\0'), "{e:?}");
                }
            }
            let sel = found.entry();
            match choice.as_deref() {
                None => assert_ne!(found.why, Why::Override),
                Some(c) => {
                    assert_eq!(found.why, Why::Override);
                    match c.parse::<usize>() {
                        Ok(i) if i < found.entries.len() && c.bytes().all(|x| x.is_ascii_digit()) => assert_eq!(found.selected, i),
                        _ => assert!(sel.title == c || sel.id.as_deref() == Some(c), "{c:?} chose {sel:?}"),
                    }
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{e:?} -> {msg:?}");
            if let Error::Config(c) = &e {
                match fs.get(&c.file) {
                    Some(bytes) => assert!(c.line <= 1 + bytes.iter().filter(|&&x| x == b'\n').count(), "{c:?}"),
                    None => assert!(bootcfg::BLS_DIRS.contains(&c.file.as_str()), "error names a file that is not there: {c:?}"),
                }
            }
            if let (Error::NoSuchEntry { .. }, None) = (&e, &choice) {
                panic!("NoSuchEntry without a choice");
            }
        }
    }
}

/// One model entry: (title, id, kernel, options words, initrds).
#[derive(Clone, Debug)]
struct Model {
    title: String,
    id: String,
    linux: String,
    options: Vec<String>,
    initrds: Vec<String>,
}

const ALPHABET: &[u8] = b"aZ09 -_./'\"$\\{};#>=";

fn text(b: &mut Bytes, max: usize) -> String {
    let n = b.u8() as usize % (max + 1);
    let t = b.take(n);
    t.iter().map(|&c| ALPHABET[c as usize % ALPHABET.len()] as char).collect()
}

/// `s` as one GRUB word, quoted in style `how`.
fn quote(s: &str, how: u8) -> String {
    match how % 3 {
        0 => format!("'{}'", s.replace('\'', r"'\''")),
        1 => {
            let mut o = String::from("\"");
            for c in s.chars() {
                if matches!(c, '"' | '$' | '\\') {
                    o.push('\\');
                }
                o.push(c);
            }
            o + "\""
        }
        _ if s.is_empty() => "''".into(),
        _ => {
            let mut o = String::new();
            for c in s.chars() {
                if !c.is_ascii_alphanumeric() && !matches!(c, '-' | '_' | '.' | '/' | '=') {
                    o.push('\\');
                }
                o.push(c);
            }
            o
        }
    }
}

/// A title as grub-mkconfig writes them: not starting with `-` (which
/// GRUB would take for an option).
fn title(b: &mut Bytes, max: usize) -> String {
    let t = text(b, max);
    if t.starts_with('-') {
        format!("a{t}")
    } else {
        t
    }
}

fn model_entry(b: &mut Bytes, n: usize) -> Model {
    let title = title(b, 12);
    let linux = format!("/{}", text(b, 10));
    let options = (0..b.u8() % 4).map(|_| text(b, 8)).collect();
    let initrds = (0..b.u8() % 3).map(|_| format!("/{}", text(b, 8))).collect();
    Model { title, id: format!("id{n}"), linux, options, initrds }
}

fn write_entry(m: &Model, b: &mut Bytes, indent: &str) -> String {
    let q = b.u8();
    let mut s = format!("{indent}menuentry {} --class os --id {} {{\n", quote(&m.title, q), quote(&m.id, q >> 2));
    s += &format!("{indent}\tinsmod ext2\n{indent}\tlinux {}", quote(&m.linux, q >> 4));
    for (i, o) in m.options.iter().enumerate() {
        s += &format!(" {}", quote(o, q.wrapping_add(i as u8)));
    }
    s += "\n";
    if !m.initrds.is_empty() {
        s += &format!("{indent}\tinitrd");
        for (i, p) in m.initrds.iter().enumerate() {
            s += &format!(" {}", quote(p, q.wrapping_add(1 + i as u8)));
        }
        s += "\n";
    }
    s + &format!("{indent}}}\n")
}

enum Node {
    Entry(Model),
    Sub(String, String, Vec<Model>),
}

fn generated(b: &mut Bytes) {
    let mut nodes = Vec::new();
    let mut n = 0;
    for _ in 0..1 + b.u8() % 5 {
        if b.u8().is_multiple_of(3) {
            let title = title(b, 8);
            let children: Vec<Model> = (0..1 + b.u8() % 3)
                .map(|_| {
                    n += 1;
                    model_entry(b, n)
                })
                .collect();
            n += 1;
            nodes.push(Node::Sub(title, format!("sub{n}"), children));
        } else {
            n += 1;
            nodes.push(Node::Entry(model_entry(b, n)));
        }
    }
    // The default: a path to one entry, each step by index, id or title.
    let pick = b.u8() as usize % nodes.len();
    let (style, inner) = (b.u8(), b.u8() as usize);
    let names = |title: &str, id: &str, at: usize, level: &[(&str, &str)]| -> String {
        // By title only when the title is the first match and has no '>'.
        let first_title = level.iter().position(|(t, i)| *t == title || *i == title) == Some(at);
        match style % 3 {
            1 => id.to_string(),
            2 if first_title && !title.contains('>') && !title.is_empty() && !title.bytes().all(|c| c.is_ascii_digit()) => {
                title.to_string()
            }
            _ => at.to_string(),
        }
    };
    let top: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| match n {
            Node::Entry(m) => (m.title.as_str(), m.id.as_str()),
            Node::Sub(t, i, _) => (t.as_str(), i.as_str()),
        })
        .collect();
    let flat_before: usize = nodes[..pick]
        .iter()
        .map(|n| match n {
            Node::Entry(_) => 1,
            Node::Sub(_, _, c) => c.len(),
        })
        .sum();
    let (default, want) = match &nodes[pick] {
        Node::Entry(m) => (names(&m.title, &m.id, pick, &top), flat_before),
        Node::Sub(t, i, children) => {
            let j = inner % children.len();
            let level: Vec<(&str, &str)> = children.iter().map(|m| (m.title.as_str(), m.id.as_str())).collect();
            let c = &children[j];
            (format!("{}>{}", names(t, i, pick, &top), names(&c.title, &c.id, j, &level)), flat_before + j)
        }
    };
    let mut cfg = format!("set default={}\nset timeout=5\n", quote(&default, b.u8()));
    for node in &nodes {
        match node {
            Node::Entry(m) => cfg += &write_entry(m, b, ""),
            Node::Sub(t, i, children) => {
                cfg += &format!("submenu {} --id {} {{\n", quote(t, b.u8()), quote(i, b.u8()));
                for m in children {
                    cfg += &write_entry(m, b, "\t");
                }
                cfg += "}\n";
            }
        }
    }
    let menu = grub::parse("/boot/grub/grub.cfg", &cfg, None, None, &mut |_: &str| Some(false)).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    let models: Vec<&Model> = nodes
        .iter()
        .flat_map(|n| match n {
            Node::Entry(m) => vec![m],
            Node::Sub(_, _, c) => c.iter().collect(),
        })
        .collect();
    assert_eq!(menu.entries.len(), models.len(), "{cfg}");
    for (e, m) in menu.entries.iter().zip(&models) {
        assert_eq!((&e.title, e.id.as_deref(), &e.linux), (&m.title, Some(m.id.as_str()), &m.linux), "{cfg}");
        assert_eq!(e.options, m.options.join(" "), "{cfg}");
        assert_eq!(e.initrds, m.initrds, "{cfg}");
    }
    assert_eq!(menu.default, Ok(Some(want)), "default {default:?}\n{cfg}");
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    if b.u8() & 1 == 0 {
        raw(&mut b);
    } else {
        generated(&mut b);
    }
});
