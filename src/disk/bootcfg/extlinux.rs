//! `extlinux.conf` (SYSLINUX's format, also U-Boot's "distro boot").
//!
//! Lines of `KEYWORD value`, keywords case-insensitive, `#` starts a
//! comment line. `LABEL` starts an entry; in it `LINUX`/`KERNEL` name the
//! kernel, `APPEND` its command line (`APPEND -`: none), `INITRD` a
//! comma-separated list of initrds (else `initrd=` in `APPEND`, which
//! SYSLINUX also reads), `MENU LABEL` the title (`^` marks a hotkey).
//! An `APPEND` before the first `LABEL` is the default for labels without
//! one. The default: the last `MENU DEFAULT` label, else `DEFAULT`, else
//! the first label. Relative paths are relative to the file's directory,
//! as in SYSLINUX and U-Boot.
//!
//! Keywords about the menu, the console or the network are ignored
//! (`ONTIMEOUT` too: the default is what boots unattended); entries that
//! start COM32 modules, boot sectors or other configs are kept for
//! `DEFAULT` but never booted; `INCLUDE` and anything unknown is an error.

use super::menu::{Show, Style};
use super::{join, BootEntry, ConfigError, Format, Menu, Problem, Source, Subvol, MAX_ENTRIES};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Keywords that configure the menu, console or network: ignored.
const IGNORED: &[&str] = &[
    "totaltimeout",
    "ontimeout",
    "onerror",
    "noescape",
    "nocomplete",
    "allowoptions",
    "implicit",
    "say",
    "display",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "f11",
    "f12",
    "serial",
    "console",
    "font",
    "kbdmap",
    "ipappend",
    "sysappend",
    "fdt",
    "fdtdir",
    "devicetree",
    "devicetreedir",
    "fdtoverlays",
    "devicetree-overlay",
    "nohalt",
    "pxeretry",
    "localboot_type",
];

/// Keywords of an entry that starts something other than Linux.
const NOT_LINUX: &[&str] = &["com32", "boot", "bss", "pxe", "fdimage", "comboot", "config", "localboot"];

struct Label {
    name: String,
    title: Option<String>,
    line: usize,
    linux: Option<String>,
    append: Option<String>,
    initrds: Option<Vec<String>>,
    not_linux: Option<String>,
}

pub fn parse(path: &str, text: &str) -> Result<Menu, ConfigError> {
    let dir = super::parent(path).unwrap_or("");
    let err = |line, what| ConfigError::new(path, line, what);
    let mut labels: Vec<Label> = Vec::new();
    let (mut default, mut menu_default, mut global_append) = (None, None, None);
    let mut in_text = false;
    // TIMEOUT (tenths of a second), PROMPT, MENU HIDDEN, a menu module.
    let (mut timeout, mut prompt, mut hidden, mut ui) = (None::<u64>, false, false, false);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        let (kw, rest) = match l.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((k, r)) => (k.to_ascii_lowercase(), r.trim()),
            None => (l.to_ascii_lowercase(), ""),
        };
        if in_text {
            in_text = kw != "endtext";
            continue;
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let current = labels.last_mut();
        match (kw.as_str(), current) {
            ("label", _) => {
                if rest.is_empty() {
                    return Err(err(line, Problem::syntax("LABEL without a name")));
                }
                if labels.len() >= MAX_ENTRIES {
                    return Err(err(line, Problem::TooComplex("too many labels")));
                }
                labels.push(Label { name: rest.to_string(), title: None, line, linux: None, append: None, initrds: None, not_linux: None });
            }
            ("default", _) => {
                ui |= rest.to_ascii_lowercase().ends_with("menu.c32");
                default = Some((rest.to_string(), line));
            }
            ("timeout", _) => timeout = rest.parse().ok(),
            ("prompt", _) => prompt = rest.trim() == "1",
            ("ui", _) => ui = true,
            ("menu", cur) => {
                let (sub, value) = rest.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((rest, ""));
                match (sub.to_ascii_lowercase().as_str(), cur) {
                    ("label", Some(cur)) => cur.title = Some(value.trim().split('^').collect()),
                    ("default", Some(cur)) => menu_default = Some((cur.name.clone(), line)),
                    ("include", _) => return Err(err(line, Problem::unsupported("MENU INCLUDE"))),
                    ("hidden", _) => hidden = true,
                    _ => {}
                }
            }
            ("text", _) => in_text = true,
            ("include", _) => return Err(err(line, Problem::unsupported("INCLUDE: hvmlite reads only this file"))),
            ("append", None) => global_append = Some(rest.to_string()),
            ("append", Some(cur)) => cur.append = Some(rest.to_string()),
            ("linux" | "kernel", Some(cur)) => {
                if rest.is_empty() {
                    return Err(err(line, Problem::Syntax(format!("{} without a file", kw.to_ascii_uppercase()))));
                }
                let file = rest.split_ascii_whitespace().next().unwrap_or(rest);
                if kw == "kernel" && file.to_ascii_lowercase().ends_with(".c32") {
                    cur.not_linux = Some(format!("it starts the COM32 module {file}"));
                } else {
                    cur.linux = Some(join(dir, file));
                }
            }
            ("initrd", Some(cur)) => cur.initrds = Some(list(dir, rest)),
            (k, Some(cur)) if NOT_LINUX.contains(&k) => cur.not_linux = Some(format!("it uses {}", k.to_ascii_uppercase())),
            ("linux" | "kernel" | "initrd", None) => {
                return Err(err(line, Problem::Syntax(format!("{} before the first LABEL", kw.to_ascii_uppercase()))))
            }
            (k, _) if IGNORED.contains(&k) || NOT_LINUX.contains(&k) => {}
            (k, _) => return Err(err(line, Problem::Unknown(format!("keyword {k:?}")))),
        }
    }
    let mut menu = build(path, dir, labels, menu_default.or(default), global_append)?;
    // Without a menu module or PROMPT 1 nothing is shown (SYSLINUX waits
    // only for a held Shift, which a serial console cannot send).
    let show = match timeout {
        _ if !ui && !prompt => Show::NONE,
        Some(0) | None => Show { style: if hidden { Style::Hidden } else { Style::Menu }, timeout_ms: None },
        Some(t) => Show { style: if hidden { Style::Hidden } else { Style::Menu }, timeout_ms: Some(t * 100) },
    };
    menu.show = show;
    Ok(menu)
}

/// A comma-separated list of files.
fn list(dir: &str, s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|f| !f.is_empty()).map(|f| join(dir, f)).collect()
}

/// The files of every `initrd=` in an `APPEND` line.
fn initrds_in(dir: &str, append: &str) -> Vec<String> {
    let mut files = Vec::new();
    for v in append.split_ascii_whitespace().filter_map(|w| w.strip_prefix("initrd=")) {
        files.extend(list(dir, v));
    }
    files
}

fn build(
    path: &str,
    dir: &str,
    labels: Vec<Label>,
    default: Option<(String, usize)>,
    global_append: Option<String>,
) -> Result<Menu, ConfigError> {
    let mut entries = Vec::new();
    let mut default_index = Ok(None);
    let mut default_seen = false;
    let default_name = default.as_ref().map(|(n, _)| n.as_str());
    for l in labels {
        let is_default = Some(l.name.as_str()) == default_name;
        let title = l.title.clone().unwrap_or_else(|| l.name.clone());
        if is_default && !default_seen {
            default_seen = true;
            default_index = match &l.not_linux {
                Some(why) => {
                    let line = default.as_ref().map_or(0, |d| d.1);
                    Err(ConfigError::new(path, line, Problem::NotLinux { title: title.clone(), why: why.clone() }))
                }
                None => Ok(Some(entries.len())),
            };
        }
        if l.not_linux.is_some() {
            continue;
        }
        let Some(linux) = l.linux else {
            return Err(ConfigError::new(path, l.line, Problem::Syntax(format!("LABEL {:?} has no LINUX or KERNEL", l.name))));
        };
        let append = match l.append.or_else(|| global_append.clone()) {
            Some(a) if a == "-" => String::new(),
            Some(a) => a,
            None => String::new(),
        };
        let initrds = match l.initrds {
            Some(i) => i,
            None => initrds_in(dir, &append),
        };
        entries.push(BootEntry {
            title,
            id: Some(l.name),
            version: None,
            linux,
            initrds,
            options: append,
            source: Source { format: Format::Extlinux, file: path.to_string(), line: l.line },
            saves: Vec::new(),
            submenu: None,
            subvol: Subvol::Top,
        });
    }
    if let Some((name, line)) = default {
        // `DEFAULT menu.c32` (old style) starts the menu: no default label.
        let is_module = name.to_ascii_lowercase().ends_with(".c32");
        if !default_seen && !is_module {
            default_index = Err(ConfigError::new(path, line, Problem::NoSuchDefault(name)));
        }
    }
    if entries.is_empty() {
        return Err(ConfigError::new(path, 0, Problem::NoEntries));
    }
    Ok(Menu { entries, default: default_index, saves: Vec::new(), show: Show::NONE })
}

#[cfg(test)]
mod tests {
    use super::super::testfs::MemFs;
    use super::super::{find, Format, Why};
    use super::*;

    const CONF: &str = "\
# Generated by u-boot-update
DEFAULT l0
TIMEOUT 20
MENU TITLE Debian GNU/Linux boot menu
append root=/dev/vda2 ro console=hvc0

label l0
\tmenu label ^Debian GNU/Linux 12, kernel 6.1.0-13-amd64
\tlinux /boot/vmlinuz-6.1.0-13-amd64
\tinitrd /boot/initrd.img-6.1.0-13-amd64
\tappend root=/dev/vda2 ro quiet

LABEL l0r
\tMENU LABEL Debian GNU/Linux 12, kernel 6.1.0-13-amd64 (rescue target)
\tLINUX ../vmlinuz-6.1.0-13-amd64
\tINITRD ../initrd.img-6.1.0-13-amd64,../ucode.img

Label hdt
  Menu Label Hardware Detection Tool
  Com32 hdt.c32
";

    #[test]
    fn debian_u_boot_update_style() {
        let mut fs = MemFs::new(&[("/boot/extlinux/extlinux.conf", CONF)]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.format, f.why, f.entries.len()), (Format::Extlinux, Why::Default, 2));
        let e = f.entry();
        assert_eq!(e.title, "Debian GNU/Linux 12, kernel 6.1.0-13-amd64");
        assert_eq!((e.linux.as_str(), e.options.as_str()), ("/boot/vmlinuz-6.1.0-13-amd64", "root=/dev/vda2 ro quiet"));
        assert_eq!(e.initrds, ["/boot/initrd.img-6.1.0-13-amd64"]);
        assert_eq!((e.id.as_deref(), e.source.line), (Some("l0"), 7));
        // Relative paths, a list of initrds, the global APPEND.
        let r = &f.entries[1];
        assert_eq!(r.linux, "/boot/vmlinuz-6.1.0-13-amd64");
        assert_eq!(r.initrds, ["/boot/initrd.img-6.1.0-13-amd64", "/boot/ucode.img"]);
        assert_eq!(r.options, "root=/dev/vda2 ro console=hvc0");
    }

    #[test]
    fn menu_default_wins_and_initrd_in_append_counts() {
        let conf = "default a\nlabel a\n kernel /a\nlabel b\n kernel /b\n append initrd=/i1,/i2 ro\n menu default\n";
        let m = parse("/extlinux/extlinux.conf", conf).unwrap();
        assert_eq!(m.default, Ok(Some(1)));
        assert_eq!(m.entries[1].initrds, ["/i1", "/i2"]);
        assert_eq!(m.entries[1].options, "initrd=/i1,/i2 ro");
        let m = parse("/extlinux/extlinux.conf", "label a\n kernel vmlinuz\n append -\n").unwrap();
        assert_eq!((m.default, m.entries[0].linux.as_str(), m.entries[0].options.as_str()), (Ok(None), "/extlinux/vmlinuz", ""));
    }

    #[test]
    fn errors_name_the_line() {
        let p = "/extlinux/extlinux.conf";
        let e = parse(p, "DEFAULT nope\nLABEL a\n LINUX /a\n").unwrap().default.unwrap_err();
        assert_eq!(e.to_string(), "/extlinux/extlinux.conf:1: the default \"nope\" names no entry");
        let e = parse(p, "LABEL a\n LINUX /a\n BOOTME now\n").unwrap_err();
        assert_eq!(e.to_string(), "/extlinux/extlinux.conf:3: unknown keyword \"bootme\"");
        let e = parse(p, "DEFAULT hdt\nLABEL a\n LINUX /a\nLABEL hdt\n COM32 hdt.c32\n").unwrap().default.unwrap_err();
        assert_eq!((e.line, matches!(e.what, Problem::NotLinux { .. })), (1, true));
        let e = parse(p, "LABEL a\n APPEND x\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert_eq!(parse(p, "INCLUDE other.conf\n").unwrap_err().line, 1);
        // DEFAULT naming a menu module is no error.
        assert_eq!(parse(p, "DEFAULT vesamenu.c32\nLABEL a\n LINUX /a\n").unwrap().default, Ok(None));
    }
}
