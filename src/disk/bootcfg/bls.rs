//! Boot Loader Specification type 1 entries (`/loader/entries/*.conf`) and
//! `/loader/loader.conf`'s `default`, read as systemd-boot reads them.
//!
//! An entry is lines of `key value`; `#` starts a comment line. Keys:
//! `title`, `version`, `machine-id`, `sort-key`, `linux`, `initrd` (any
//! number, in order), `options` (any number, joined with spaces),
//! `architecture` (entries for another architecture are ignored, as the
//! specification says), `efi` / `uki` (entries that start an EFI program:
//! kept in the menu, never booted), `devicetree*` (ARM only, ignored) and
//! Fedora's `grub_users`, `grub_arg`, `grub_class` (GRUB menu decoration,
//! ignored); anything else is an error.
//!
//! Order, as systemd-boot sorts (and Fedora's `blscfg`, for its entries):
//! entries with a `sort-key` first, by `sort-key`, then `machine-id`, then
//! `version` newest first; then the rest, by file name newest first; both
//! with the specification's version comparison ([`version_cmp`]).

use super::menu::{Show, Style};
use super::{BootEntry, ConfigError, Error, Files, Format, Menu, Problem, Source, Subvol, MAX_ENTRIES};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;

/// One entry file, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlsEntry {
    /// Its path.
    pub file: String,
    /// Its file name without `.conf`: the entry's id.
    pub id: String,
    pub title: Option<String>,
    pub version: Option<String>,
    pub machine_id: Option<String>,
    pub sort_key: Option<String>,
    /// `(path, line)`; `None` for an entry that starts an EFI program.
    pub linux: Option<(String, usize)>,
    pub initrds: Vec<String>,
    /// The `options` lines joined with spaces.
    pub options: String,
    /// Why it does not boot Linux (`efi`, `uki`), when it does not.
    pub not_linux: Option<String>,
}

impl BlsEntry {
    /// What a menu shows: `title`, else `version`, else the id.
    pub fn title(&self) -> &str {
        self.title.as_deref().or(self.version.as_deref()).unwrap_or(&self.id)
    }

    /// The entry as hvmlite boots it, its fields as written (systemd-boot
    /// does not expand variables; GRUB's `blscfg` does, see `grub`).
    pub fn boot_entry(&self) -> Option<BootEntry> {
        let (linux, line) = self.linux.clone()?;
        Some(BootEntry {
            title: self.title().to_string(),
            id: Some(self.id.clone()),
            version: self.version.clone(),
            linux,
            initrds: self.initrds.clone(),
            options: self.options.clone(),
            source: Source { format: Format::Bls, file: self.file.clone(), line },
            saves: Vec::new(),
            submenu: None,
            subvol: Subvol::Top,
        })
    }
}

/// The architecture hvmlite boots, in the specification's spelling.
const ARCH: &str = "x64";

/// Parse entry file `path`. `None`: an entry for another architecture.
pub fn parse_entry(path: &str, text: &str) -> Result<Option<BlsEntry>, ConfigError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let id = name.strip_suffix(".conf").unwrap_or(name).to_string();
    let mut e = BlsEntry {
        file: path.to_string(),
        id,
        title: None,
        version: None,
        machine_id: None,
        sort_key: None,
        linux: None,
        initrds: Vec::new(),
        options: String::new(),
        not_linux: None,
    };
    let err = |line, what| ConfigError::new(path, line, what);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (key, value) = match l.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((k, v)) => (k, v.trim()),
            None => return Err(err(line, Problem::Syntax(format!("key {l:?} without a value")))),
        };
        let once = |slot: &mut Option<String>| match slot {
            Some(_) => Err(err(line, Problem::Syntax(format!("{key} given twice")))),
            None => {
                *slot = Some(value.to_string());
                Ok(())
            }
        };
        match key {
            "title" => once(&mut e.title)?,
            "version" => once(&mut e.version)?,
            "machine-id" => once(&mut e.machine_id)?,
            "sort-key" => once(&mut e.sort_key)?,
            "linux" if e.linux.is_some() => return Err(err(line, Problem::syntax("linux given twice"))),
            "linux" => e.linux = Some((value.to_string(), line)),
            "initrd" => e.initrds.push(value.to_string()),
            "options" => {
                if !e.options.is_empty() {
                    e.options.push(' ');
                }
                e.options.push_str(value);
            }
            "architecture" if !value.eq_ignore_ascii_case(ARCH) => return Ok(None),
            "architecture" => {}
            "efi" | "uki" | "uki-url" => e.not_linux = Some(format!("it starts an EFI program ({key} {value})")),
            "devicetree" | "devicetree-overlay" | "grub_users" | "grub_arg" | "grub_class" => {}
            _ => return Err(err(line, Problem::Unknown(format!("key {key:?}")))),
        }
    }
    if e.not_linux.is_some() {
        e.linux = None;
    } else if e.linux.is_none() {
        return Err(err(0, Problem::syntax("no linux line")));
    }
    Ok(Some(e))
}

/// The entries of the first of [`super::BLS_DIRS`] that holds any `*.conf`,
/// sorted, with that directory; `None` if neither does.
#[allow(clippy::type_complexity)]
pub fn read_entries<F: Files>(files: &mut F) -> Result<Option<(String, Vec<BlsEntry>)>, Error<F::Error>> {
    for dir in super::BLS_DIRS {
        let names = match files.list(dir) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(error) => return Err(Error::Files { path: dir.to_string(), error }),
        };
        let mut names: Vec<String> = names.into_iter().filter(|n| n.ends_with(".conf") && !n.starts_with('.')).collect();
        if names.is_empty() {
            continue;
        }
        if names.len() > MAX_ENTRIES {
            return Err(ConfigError::new(dir, 0, Problem::TooComplex("too many entry files")).into());
        }
        crate::sort::sort_by(&mut names, String::cmp);
        let mut entries = Vec::new();
        for name in names {
            let path = format!("{dir}/{name}");
            if let Some(text) = super::read_text(files, &path)? {
                entries.extend(parse_entry(&path, &text)?);
            }
        }
        sort(&mut entries);
        return Ok(Some((dir.to_string(), entries)));
    }
    Ok(None)
}

/// Sort as systemd-boot does (see the module documentation).
pub fn sort(entries: &mut [BlsEntry]) {
    crate::sort::sort_by(entries, order);
}

fn order(a: &BlsEntry, b: &BlsEntry) -> Ordering {
    let keyed = b.sort_key.is_some().cmp(&a.sort_key.is_some());
    keyed
        .then_with(|| match (&a.sort_key, &b.sort_key) {
            (Some(x), Some(y)) => x
                .cmp(y)
                .then_with(|| a.machine_id.cmp(&b.machine_id))
                .then_with(|| version_cmp(b.version.as_deref().unwrap_or(""), a.version.as_deref().unwrap_or(""))),
            _ => Ordering::Equal,
        })
        .then_with(|| version_cmp(&b.id, &a.id))
        .then_with(|| a.file.cmp(&b.file))
}

/// The menu systemd-boot shows for `entries` (sorted) from `dir`, with
/// `loader.conf` as `(path, text)` when there is one.
pub fn menu(dir: &str, entries: Vec<BlsEntry>, loader_conf: Option<(&str, &str)>) -> Result<Menu, ConfigError> {
    let default = match loader_conf {
        Some((path, text)) => default_entry(path, text, &entries),
        None => Ok(None),
    };
    let show = loader_conf.map_or(Show::NONE, |(_, text)| loader_show(text));
    let linux: Vec<BootEntry> = entries.iter().filter_map(BlsEntry::boot_entry).collect();
    if linux.is_empty() {
        return Err(ConfigError::new(dir, 0, Problem::NoEntries));
    }
    // The default as an index among the Linux entries.
    let default = default.map(|d| d.map(|i| entries[..i].iter().filter(|e| e.linux.is_some()).count()));
    Ok(Menu { entries: linux, default, saves: Vec::new(), show })
}

/// `loader.conf`'s `timeout`: seconds of the menu, `menu-force` (wait for
/// a key), `menu-hidden`/`menu-disabled`/`0` or none (boot at once; a key
/// typed ahead still opens it).
fn loader_show(text: &str) -> Show {
    let mut show = Show::NONE;
    for l in text.lines() {
        let mut w = l.split_ascii_whitespace();
        if w.next() == Some("timeout") {
            show = match w.next() {
                Some("menu-force") => Show { style: Style::Menu, timeout_ms: None },
                Some(n) => n.parse::<u32>().map_or(Show::NONE, |s| Show { style: Style::Menu, timeout_ms: Some(u64::from(s) * 1000) }),
                None => Show::NONE,
            };
        }
    }
    show
}

/// `loader.conf`'s `default`: the first entry (in menu order) whose id,
/// with or without `.conf`, matches the glob. Other keys configure the
/// menu itself and are ignored.
fn default_entry(path: &str, text: &str, entries: &[BlsEntry]) -> Result<Option<usize>, ConfigError> {
    let mut found = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        let Some(pattern) = l.strip_prefix("default").filter(|r| r.starts_with(|c: char| c.is_ascii_whitespace())) else {
            continue;
        };
        let (pattern, line) = (pattern.trim(), i + 1);
        if pattern.starts_with('@') {
            let why = format!("default {pattern} (an EFI variable hvmlite cannot read)");
            return Err(ConfigError::new(path, line, Problem::Unsupported(why)));
        }
        let matches = |e: &BlsEntry| glob(pattern, &e.id) || glob(pattern, &format!("{}.conf", e.id));
        let Some(at) = entries.iter().position(matches) else {
            return Err(ConfigError::new(path, line, Problem::NoSuchDefault(pattern.to_string())));
        };
        if let Some(why) = &entries[at].not_linux {
            let what = Problem::NotLinux { title: entries[at].title().to_string(), why: why.clone() };
            return Err(ConfigError::new(path, line, what));
        }
        found = Some(at);
    }
    Ok(found)
}

/// Shell-style glob: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`; `\` quotes.
/// Iterative with one backtrack point, so linear-times-pattern at worst.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], n[ni]),
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(2),
            Some(&c) => (c == n[ni]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => (pi, ni) = (pi + len, ni + 1),
            (None, Some((sp, sn))) => {
                (pi, ni) = (sp + 1, sn + 1);
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the class at the start of `p` (`[...]`): the class's
/// length if it matches. An unterminated `[` is a literal `[`.
fn class(p: &[char], c: char) -> Option<usize> {
    let Some(close) = p.iter().skip(2).position(|&x| x == ']').map(|i| i + 2) else {
        return (c == '[').then_some(1);
    };
    let body = &p[1..close];
    let (negate, body) = match body.first() {
        Some('!') | Some('^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            hit |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    (hit != negate).then_some(close + 1)
}

/// The UAPI Version Format Specification's comparison (systemd's
/// `strverscmp_improved`, the BLS "version sort"): runs of digits compare
/// numerically, letters alphabetically, a digit run is newer than a letter
/// run; `~` makes older, even than the end (`1~rc1 < 1`); `-` separates
/// the release (`1-2 < 1.1`), `^` a patch level, `.` parts; other
/// characters are skipped. A separator loses against anything but the end
/// (`1.0^p1 > 1.0` but `< 1.0.1`).
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.');
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = &a[a.iter().position(|&c| valid(c)).unwrap_or(a.len())..];
        b = &b[b.iter().position(|&c| valid(c)).unwrap_or(b.len())..];
        // '~' (pre-release) is older than anything, even the end.
        if a.first() == Some(&b'~') || b.first() == Some(&b'~') {
            let r = (a.first() != Some(&b'~')).cmp(&(b.first() != Some(&b'~')));
            if r.is_ne() {
                return r;
            }
            (a, b) = (&a[1..], &b[1..]);
        }
        if a.is_empty() || b.is_empty() {
            return a.len().min(1).cmp(&b.len().min(1));
        }
        for sep in [b'-', b'^', b'.'] {
            if a[0] == sep || b[0] == sep {
                // The side with the separator is the older.
                let r = (a[0] != sep).cmp(&(b[0] != sep));
                if r.is_ne() {
                    return r;
                }
                (a, b) = (&a[1..], &b[1..]);
                if a.is_empty() || b.is_empty() {
                    return a.len().min(1).cmp(&b.len().min(1));
                }
            }
        }
        let (r, la, lb) = if a[0].is_ascii_digit() || b[0].is_ascii_digit() {
            let za = a.iter().take_while(|&&c| c == b'0').count();
            let zb = b.iter().take_while(|&&c| c == b'0').count();
            (a, b) = (&a[za..], &b[zb..]);
            let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
            (la.cmp(&lb).then_with(|| a[..la].cmp(&b[..lb])), la, lb)
        } else {
            let la = a.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let m = la.min(lb);
            (a[..m].cmp(&b[..m]).then(la.cmp(&lb)), la, lb)
        };
        if r.is_ne() {
            return r;
        }
        // When both runs are empty both strings start with separators
        // (`-.`, `.~`, …): the next round consumes or decides them.
        (a, b) = (&a[la..], &b[lb..]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testfs::MemFs;
    use super::super::{find, Format, Why};
    use super::*;

    #[test]
    fn version_comparison_follows_the_specification() {
        use Ordering::*;
        let cases = [
            ("6.1.0-13-amd64", "6.1.0-9-amd64", Greater),
            ("6.5.6-300.fc39.x86_64", "6.5.12-300.fc39.x86_64", Less),
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0^p1", Less),
            ("1.0-1", "1.0.1", Less),
            ("1.0^p1", "1.0.1", Less),
            (".-1", ".-2", Less),
            ("1.01", "1.1", Equal),
            ("1a", "1", Greater),
            ("a", "1", Less),
            ("1.0", "1.0.0", Less),
            ("", "", Equal),
            ("~", "", Less),
            ("5.14.0-362.el9", "5.14.0-70.el9", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(version_cmp(a, b), want, "{a} vs {b}");
            assert_eq!(version_cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("6a98*", "6a9857a3-6.1.0.conf"));
        assert!(glob("*-6.?.0", "abc-6.1.0"));
        assert!(!glob("*-6.?.0", "abc-6.10.0"));
        assert!(glob("fedora-[0-9]*", "fedora-6"));
        assert!(!glob("fedora-[!0-9]*", "fedora-6"));
        assert!(glob("a\\*", "a*") && !glob("a\\*", "ab"));
        assert!(glob("*", "") && !glob("?", ""));
        assert!(glob("[", "[") && glob("a*b*c", "axxbyyc"));
    }

    const MID: &str = "6a9857a393724b7a981ebb5b8495b9ea";

    fn entry(version: &str) -> String {
        format!(
            "# Boot Loader Specification type#1 entry\n\
             title      Debian GNU/Linux 12 (bookworm)\n\
             version    {version}\n\
             machine-id {MID}\n\
             sort-key   debian\n\
             options    root=UUID=8d0b3a2e-4f0e-4d3c-9d8e-2b7f1c3a6e11 ro\n\
             options    quiet\n\
             linux      /{MID}/{version}/linux\n\
             initrd     /{MID}/{version}/intel-ucode.img\n\
             initrd     /{MID}/{version}/initrd.img-{version}\n"
        )
    }

    fn two_kernels(loader_conf: Option<&str>) -> MemFs {
        let (old, new) = (entry("6.1.0-9-amd64"), entry("6.1.0-13-amd64"));
        let mut files =
            vec![(format!("/loader/entries/{MID}-6.1.0-9-amd64.conf"), old), (format!("/loader/entries/{MID}-6.1.0-13-amd64.conf"), new)];
        if let Some(c) = loader_conf {
            files.push(("/loader/loader.conf".into(), c.into()));
        }
        MemFs { files: files.into_iter().map(|(p, t)| (p, t.into_bytes())).collect() }
    }

    #[test]
    fn the_newer_version_comes_first_and_is_booted() {
        let f = find(&mut two_kernels(None), None).unwrap();
        assert_eq!((f.format, f.config.as_str(), f.why), (Format::Bls, "/loader/entries", Why::First));
        let e = f.entry();
        assert_eq!(e.version.as_deref(), Some("6.1.0-13-amd64"));
        assert_eq!(e.linux, format!("/{MID}/6.1.0-13-amd64/linux"));
        assert_eq!(
            e.initrds,
            [format!("/{MID}/6.1.0-13-amd64/intel-ucode.img"), format!("/{MID}/6.1.0-13-amd64/initrd.img-6.1.0-13-amd64")]
        );
        assert_eq!(e.options, "root=UUID=8d0b3a2e-4f0e-4d3c-9d8e-2b7f1c3a6e11 ro quiet");
        assert_eq!(e.id.as_deref(), Some(format!("{MID}-6.1.0-13-amd64").as_str()));
        assert_eq!(e.source.line, 8);
        assert_eq!(f.entries[1].version.as_deref(), Some("6.1.0-9-amd64"));
    }

    #[test]
    fn loader_conf_default_overrides_the_order() {
        let conf = "timeout 3\nconsole-mode keep\n#default nothing\ndefault *-6.1.0-9-*\neditor no\n";
        let f = find(&mut two_kernels(Some(conf)), None).unwrap();
        assert_eq!((f.selected, f.why), (1, Why::Default));
        assert_eq!(f.entry().version.as_deref(), Some("6.1.0-9-amd64"));
        // With the .conf suffix, as `bootctl set-default` writes it.
        let conf = format!("default {MID}-6.1.0-9-amd64.conf\n");
        assert_eq!(find(&mut two_kernels(Some(&conf)), None).unwrap().selected, 1);
    }

    #[test]
    fn loader_conf_default_naming_nothing_boots_the_first_with_a_warning() {
        let f = find(&mut two_kernels(Some("timeout 0\ndefault arch-*\n")), None).unwrap();
        assert_eq!((f.selected, f.why), (0, Why::Fallback));
        let w = f.warning.unwrap().to_string();
        assert_eq!(w, "/loader/loader.conf:2: the default \"arch-*\" names no entry");
        let e = find(&mut two_kernels(Some("default @saved\n")), None).unwrap_err();
        assert!(e.to_string().starts_with("/loader/loader.conf:1: unsupported: default @saved"), "{e}");
    }

    #[test]
    fn sort_key_groups_before_version() {
        let mut es: Vec<BlsEntry> = [("a", Some("zz"), "9"), ("b", Some("aa"), "1"), ("c", None, "99"), ("d", Some("aa"), "2")]
            .iter()
            .map(|(id, key, v)| {
                let mut t = format!("linux /k\nversion {v}\n");
                if let Some(k) = key {
                    t += &format!("sort-key {k}\n");
                }
                parse_entry(&format!("/loader/entries/{id}.conf"), &t).unwrap().unwrap()
            })
            .collect();
        sort(&mut es);
        let ids: Vec<&str> = es.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["d", "b", "a", "c"]);
    }

    #[test]
    fn entry_errors_name_the_line() {
        let e = parse_entry("/loader/entries/x.conf", "title X\nlinux /k\nkernel /k\n").unwrap_err();
        assert_eq!(e.to_string(), "/loader/entries/x.conf:3: unknown key \"kernel\"");
        let e = parse_entry("/loader/entries/x.conf", "title X\n").unwrap_err();
        assert_eq!(e.to_string(), "/loader/entries/x.conf: syntax error: no linux line");
        let e = parse_entry("/loader/entries/x.conf", "linux /a\nlinux /b\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_entry("/loader/entries/x.conf", "linux /a\ntitle\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn other_architectures_and_efi_programs_are_not_booted() {
        assert_eq!(parse_entry("/e/a.conf", "linux /k\narchitecture aa64\n").unwrap(), None);
        let e = parse_entry("/e/a.conf", "title Shell\nefi /shellx64.efi\n").unwrap().unwrap();
        assert!(e.boot_entry().is_none() && e.not_linux.is_some());
        let fs = &mut MemFs::new(&[("/boot/loader/entries/a.conf", "efi /shellx64.efi\n")]);
        let err = find(fs, None).unwrap_err();
        assert_eq!(err.to_string(), "/boot/loader/entries: no entry boots Linux");
    }
}
