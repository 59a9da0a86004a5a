//! Boot entries from a guest's own disk: which kernel, initrds and command
//! line the guest's boot loader would start (what pvgrub/pygrub did).
//!
//! Pure logic over bytes the caller reads through [`Files`]; nothing here
//! touches a disk. [`find`] looks, in this order, for
//! 1. Boot Loader Specification type 1 entries ([`bls`]) in
//!    `/loader/entries` or `/boot/loader/entries` — unless a `grub.cfg`
//!    calls GRUB's `blscfg` (Fedora), in which case that `grub.cfg` is the
//!    menu and the entries are its items;
//! 2. a `grub.cfg` as `grub-mkconfig` writes it ([`grub`]);
//! 3. an `extlinux.conf` ([`extlinux`]);
//! 4. Debian's `/vmlinuz` and `/initrd.img` symlinks ([`debian`]).
//!
//! The first of these that exists decides; a broken one is an error, never
//! a reason to try the next, because booting a different kernel than the
//! guest's own loader would is worse than not booting. Everything that
//! cannot be understood is an error naming the file and line.
//!
//! Paths in the result are paths inside the filesystem `Files` reads: the
//! formats all assume the boot loader's files and the kernels share one
//! filesystem (GRUB's `search --set=root` finds the one holding them).
//!
//! The files come from the guest, so every parser bounds its input
//! ([`MAX_FILE_SIZE`]), its nesting ([`MAX_DEPTH`]), the number of entries
//! ([`MAX_ENTRIES`]) and its work, and never panics.

pub mod bls;
pub mod debian;
pub mod extlinux;
pub mod fstab;
pub mod grub;
pub mod menu;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// The largest configuration file read (a `grub.cfg` with dozens of kernels
/// is some tens of KiB).
pub const MAX_FILE_SIZE: usize = 1 << 20;
/// The deepest nesting of blocks (GRUB's `if`, `submenu`, `menuentry`,
/// function calls) a parser follows.
pub const MAX_DEPTH: usize = 32;
/// The most menu entries (or BLS files) one configuration may have.
pub const MAX_ENTRIES: usize = 512;

/// Which format an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Boot Loader Specification type 1 entry.
    Bls,
    /// A `menuentry` of a `grub.cfg`.
    Grub,
    /// A `LABEL` of an `extlinux.conf`.
    Extlinux,
    /// Debian's `/vmlinuz` and `/initrd.img` symlinks.
    DebianSymlinks,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Bls => "BLS entry",
            Format::Grub => "grub.cfg",
            Format::Extlinux => "extlinux.conf",
            Format::DebianSymlinks => "Debian symlinks",
        })
    }
}

/// Where an entry was defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub format: Format,
    /// The file that defined it (for symlinks: the kernel's path).
    pub file: String,
    /// Its first line in that file (0 when there is no line).
    pub line: usize,
}

/// One bootable Linux entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootEntry {
    /// What the guest's menu shows.
    pub title: String,
    /// GRUB's `--id`, a BLS file name without `.conf`, an extlinux `LABEL`.
    pub id: Option<String>,
    /// BLS `version`; the other formats do not say.
    pub version: Option<String>,
    /// The kernel: a non-empty path inside the filesystem.
    pub linux: String,
    /// Initrds, in the order they are to be concatenated.
    pub initrds: Vec<String>,
    /// The kernel command line the guest's loader would pass. The caller
    /// appends the domain's own command line.
    pub options: String,
    pub source: Source,
    /// What GRUB's `save_env` would write when this entry boots (its
    /// `savedefault`, `recordfail`), in order; empty in other formats.
    pub saves: Vec<Save>,
    /// The title of the submenu it is in (`A>B` titles for nested ones).
    pub submenu: Option<String>,
    /// Where its paths start on a btrfs filesystem: GRUB's view when its
    /// `linux` ran; for the other formats, where the configuration was
    /// found.
    pub subvol: Subvol,
}

/// One `save_env NAME`: the value NAME had then, or `None` when it was
/// unset (GRUB then removes it from the file).
pub type Save = (String, Option<String>);

/// What is wrong, and where: every parser error names a file and a line
/// (1-based; 0 when the problem is the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub what: Problem,
}

/// The kinds of [`ConfigError`]. Strings quoted from the guest's files are
/// printed escaped (`{:?}`), so an error always prints as one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Larger than [`MAX_FILE_SIZE`].
    TooLarge(usize),
    /// Not UTF-8, or contains NUL (a kernel command line cannot).
    NotText,
    /// Malformed: unbalanced quotes or braces, a missing keyword, ….
    Syntax(String),
    /// A command, key or option this parser does not know.
    Unknown(String),
    /// Known, but hvmlite cannot honour it (a loop, `source`, a condition
    /// it cannot evaluate around something that matters).
    Unsupported(String),
    /// Nesting deeper than [`MAX_DEPTH`], more than [`MAX_ENTRIES`]
    /// entries, or too much work.
    TooComplex(&'static str),
    /// The configuration's default names no entry.
    NoSuchDefault(String),
    /// The default entry does not start Linux (it chainloads, starts Xen, …).
    NotLinux { title: String, why: String },
    /// No bootable Linux entry at all.
    NoEntries,
}

impl Problem {
    /// [`Problem::Syntax`] with a fixed message. Out of line, as are the
    /// two below: each of the many fixed messages is then one call, not a
    /// copy of the allocation and of the text's bytes in the code.
    #[inline(never)]
    pub fn syntax(what: &str) -> Self {
        Problem::Syntax(what.to_string())
    }

    /// [`Problem::Unknown`] with a fixed message.
    #[inline(never)]
    pub fn unknown(what: &str) -> Self {
        Problem::Unknown(what.to_string())
    }

    /// [`Problem::Unsupported`] with a fixed message.
    #[inline(never)]
    pub fn unsupported(what: &str) -> Self {
        Problem::Unsupported(what.to_string())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TooLarge(n) => write!(f, "file of {n} bytes is larger than {MAX_FILE_SIZE}"),
            Problem::NotText => write!(f, "not UTF-8 text without NUL bytes"),
            Problem::Syntax(s) => write!(f, "syntax error: {s}"),
            Problem::Unknown(s) => write!(f, "unknown {s}"),
            Problem::Unsupported(s) => write!(f, "unsupported: {s}"),
            Problem::TooComplex(s) => write!(f, "too complex: {s}"),
            Problem::NoSuchDefault(d) => write!(f, "the default {d:?} names no entry"),
            Problem::NotLinux { title, why } => write!(f, "entry {title:?} does not boot Linux: {why}"),
            Problem::NoEntries => write!(f, "no entry boots Linux"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.what)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.what)
        }
    }
}

impl ConfigError {
    pub fn new(file: &str, line: usize, what: Problem) -> Self {
        ConfigError { file: file.to_string(), line, what }
    }
}

/// Errors of [`find`]: the caller's file access failed, a configuration is
/// wrong, nothing was found, or `hvmlite.entry=` names nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error<E> {
    Files {
        path: String,
        error: E,
    },
    Config(ConfigError),
    /// None of the places [`find`] looks at exists.
    NothingFound,
    /// `hvmlite.entry=` names no entry.
    NoSuchEntry {
        choice: String,
        entries: usize,
    },
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Files { path, error } => write!(f, "reading {path}: {error}"),
            Error::Config(e) => e.fmt(f),
            Error::NothingFound => {
                write!(f, "no boot configuration: no BLS entries, grub.cfg or extlinux.conf, no /vmlinuz or /boot/vmlinuz")
            }
            Error::NoSuchEntry { choice, entries } => {
                write!(f, "hvmlite.entry={choice:?} names none of the {entries} entries (an index or an exact title or id)")
            }
        }
    }
}

impl<E> From<ConfigError> for Error<E> {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// The filesystem the entries are read from.
pub use super::{Files, Subvol};

/// Why [`Found::selected`] was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// `hvmlite.entry=`.
    Override,
    /// The configuration's own default (GRUB's `default`, `loader.conf`'s
    /// `default`, extlinux's `DEFAULT` / `MENU DEFAULT`).
    Default,
    /// The first entry: the configuration names no default.
    First,
    /// Chosen in the boot menu (its command line maybe edited).
    Menu,
    /// The first entry: the configuration's default names no entry (a
    /// kernel since removed, a cloned image), as GRUB and systemd-boot
    /// then do; [`Found::warning`] says what it named.
    Fallback,
}

/// The entries of the configuration that decided, and the one to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The configuration file that decided (for symlinks: the kernel's path).
    pub config: String,
    pub format: Format,
    /// The Linux entries in menu order (submenus flattened). Never empty;
    /// entries that do not start Linux are left out.
    pub entries: Vec<BootEntry>,
    /// Index into `entries` of the entry to boot.
    pub selected: usize,
    pub why: Why,
    /// Why the configuration's own default was not taken
    /// ([`Why::Fallback`]).
    pub warning: Option<ConfigError>,
    /// GRUB's environment block as the configuration's `save_env`s leave
    /// it once the selected entry has run, when that differs from the
    /// disk ([`grubenv_update`]).
    pub grubenv: Option<Result<EnvWrite, String>>,
    /// How the configuration asks for its menu to be shown.
    pub show: menu::Show,
    /// The `save_env`s of the script alone, and the grubenv as read: to
    /// redo [`Found::grubenv`] when a menu chooses another entry.
    pub script_saves: Vec<Save>,
    pub grubenv_read: Option<(String, Vec<u8>)>,
}

impl Found {
    /// Boot entry `i` instead (chosen in the menu): its own saves then
    /// apply.
    pub fn choose(&mut self, i: usize) {
        self.selected = i;
        self.grubenv = self.grubenv_read.clone().and_then(|(p, old)| grubenv_update(&p, old, &self.script_saves, &self.entries[i].saves));
    }
}

/// A new grubenv to write in place of the old one: same path, same size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvWrite {
    pub path: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    /// The variables that changed, as `name=value` (`name` alone: removed).
    pub changed: Vec<String>,
}

impl Found {
    pub fn entry(&self) -> &BootEntry {
        &self.entries[self.selected]
    }
}

/// A configuration's entries and its default, before `hvmlite.entry=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    /// Linux entries in menu order; never empty.
    pub entries: Vec<BootEntry>,
    /// The configuration's default, an index into `entries`; an error
    /// when the default names nothing bootable (reported only when no
    /// `hvmlite.entry=` overrides it).
    pub default: Result<Option<usize>, ConfigError>,
    /// GRUB's `save_env`s made by the script itself (not inside an entry),
    /// in order.
    pub saves: Vec<Save>,
    /// How the configuration asks for its menu to be shown.
    pub show: menu::Show,
}

/// Where the BLS entries live, in the order searched.
pub const BLS_DIRS: [&str; 2] = ["/loader/entries", "/boot/loader/entries"];
/// Where `grub.cfg` lives, in the order searched (`grub2`: Fedora).
pub const GRUB_CFGS: [&str; 4] = ["/boot/grub/grub.cfg", "/grub/grub.cfg", "/boot/grub2/grub.cfg", "/grub2/grub.cfg"];
/// Where `extlinux.conf` lives, in the order searched.
/// Alpine's `update-extlinux` writes `/boot/extlinux.conf`
/// (`/extlinux.conf` on a separate `/boot` partition).
pub const EXTLINUX_CONFS: [&str; 4] = ["/boot/extlinux/extlinux.conf", "/extlinux/extlinux.conf", "/boot/extlinux.conf", "/extlinux.conf"];

/// Find the guest's boot entries and pick one: `choice` is the value of
/// `hvmlite.entry=` (see [`entry_choice`]), an index into
/// [`Found::entries`] or an exact title or id; `None` takes the
/// configuration's default.
///
/// On btrfs whose default subvolume is not the top level (openSUSE's
/// snapper snapshot) the default subvolume is searched first, as
/// openSUSE's `grub2-install` points GRUB there
/// (`btrfs_relative_path=y`), then the top level, where upstream GRUB
/// starts; then a `grub.cfg` inside each subvolume of the top level (`@`:
/// `grub-install` on a root mounted with `subvol=@`, as Arch, Ubuntu and
/// Debian's installer leave it, puts GRUB's prefix at `/@/boot/grub`).
pub fn find<F: Files>(files: &mut F, choice: Option<&str>) -> Result<Found, Error<F::Error>> {
    let starts: &[Subvol] = if files.default_subvol_differs() { &[Subvol::Default, Subvol::Top] } else { &[Subvol::Top] };
    let mut found = Err(Error::NothingFound);
    for start in starts {
        if let Err(error) = files.set_subvol(start) {
            return Err(Error::Files { path: "/".into(), error });
        }
        found = find_menu(files, start);
        match &mut found {
            Err(Error::NothingFound) => continue,
            Err(_) => break,
            Ok((_, format, menu, _)) => {
                if *format != Format::Grub {
                    menu.entries.iter_mut().for_each(|e| e.subvol = start.clone());
                }
                break;
            }
        }
    }
    if let Err(Error::NothingFound) = found {
        found = find_in_subvols(files);
    }
    let (config, format, menu, env) = found?;
    let (selected, why, warning) = select(&menu, choice)?;
    let grubenv = env.clone().and_then(|(path, old)| grubenv_update(&path, old, &menu.saves, &menu.entries[selected].saves));
    Ok(Found {
        config,
        format,
        entries: menu.entries,
        selected,
        why,
        warning,
        grubenv,
        show: menu.show,
        script_saves: menu.saves,
        grubenv_read: env,
    })
}

/// The grubenv GRUB would leave after the script's `save_env`s and then
/// the chosen entry's: `None` when nothing changes. Written only as GRUB
/// writes it: in place, the same 1024 bytes (a file of another size, or
/// variables that no longer fit, is refused).
pub fn grubenv_update(path: &str, old: Vec<u8>, script: &[Save], entry: &[Save]) -> Option<Result<EnvWrite, String>> {
    if script.is_empty() && entry.is_empty() {
        return None;
    }
    let text = core::str::from_utf8(&old).ok()?;
    let mut env = grub::Grubenv::parse(path, text).ok()?;
    let before = env.vars.clone();
    for (name, value) in script.iter().chain(entry) {
        env.save(name, value.as_deref());
    }
    if env.vars == before {
        return None;
    }
    let mut changed = Vec::new();
    for (n, v) in &env.vars {
        if !before.iter().any(|(bn, bv)| bn == n && bv == v) {
            changed.push(format!("{n}={v}"));
        }
    }
    for (n, _) in &before {
        if env.get(n).is_none() {
            changed.push(n.clone());
        }
    }
    if old.len() != grub::GRUBENV_SIZE {
        return Some(Err(format!("{path} is {} bytes, not {}: not written", old.len(), grub::GRUBENV_SIZE)));
    }
    Some(match env.encode(old.len()) {
        Some(new) => Ok(EnvWrite { path: path.to_string(), old, new, changed }),
        None => Err(format!("{path}: the variables no longer fit in {} bytes: not written", old.len())),
    })
}

/// The grubenv a grub.cfg read: its path and bytes.
type EnvFile = Option<(String, Vec<u8>)>;

/// A `grub.cfg` in a subvolume of the top level, its paths from the top
/// level (`/@/boot/vmlinuz-linux`), as GRUB reads it with the prefix
/// `grub-install` gave it there.
fn find_in_subvols<F: Files>(files: &mut F) -> Result<(String, Format, Menu, EnvFile), Error<F::Error>> {
    for name in files.top_subvols() {
        if let Err(error) = files.set_subvol(&Subvol::Top) {
            return Err(Error::Files { path: format!("/{name}"), error });
        }
        for cfg in GRUB_CFGS {
            let path = format!("/{name}{cfg}");
            if let Some(text) = read_text(files, &path)? {
                let (menu, env) = run_grub(files, &Subvol::Top, &path, &text, None)?;
                return Ok((path, Format::Grub, menu, env));
            }
        }
    }
    Err(Error::NothingFound)
}

fn find_menu<F: Files>(files: &mut F, start: &Subvol) -> Result<(String, Format, Menu, EnvFile), Error<F::Error>> {
    let bls = bls::read_entries(files)?;
    if let Some((dir, entries)) = bls {
        // Fedora: GRUB reads the BLS entries itself (`blscfg`) and decides
        // the default from grubenv's saved_entry, not from loader.conf.
        for path in GRUB_CFGS {
            if let Some(text) = read_text(files, path)? {
                if grub::calls_blscfg(&text) {
                    let (menu, env) = run_grub(files, start, path, &text, Some(&entries))?;
                    return Ok((path.to_string(), Format::Grub, menu, env));
                }
                break;
            }
        }
        let loader_conf = parent(&dir).map(|d| format!("{d}/loader.conf"));
        let conf = match &loader_conf {
            Some(p) => read_text(files, p)?.map(|t| (p.clone(), t)),
            None => None,
        };
        let menu = bls::menu(&dir, entries, conf.as_ref().map(|(p, t)| (p.as_str(), t.as_str())))?;
        return Ok((dir, Format::Bls, menu, None));
    }
    for path in GRUB_CFGS {
        if let Some(text) = read_text(files, path)? {
            let (menu, env) = run_grub(files, start, path, &text, None)?;
            return Ok((path.to_string(), Format::Grub, menu, env));
        }
    }
    for path in EXTLINUX_CONFS {
        if let Some(text) = read_text(files, path)? {
            let menu = extlinux::parse(path, &text)?;
            return Ok((path.to_string(), Format::Extlinux, menu, None));
        }
    }
    if let Some((kernel, menu)) = debian::find(files)? {
        return Ok((kernel, Format::DebianSymlinks, menu, None));
    }
    Err(Error::NothingFound)
}

/// Run `grub.cfg` at `path` with the grubenv next to it (returned as
/// read, for [`grubenv_update`]); GRUB's file tests (`[ -f … ]`),
/// `source` and `configfile` ask `files`.
fn run_grub<F: Files>(
    files: &mut F,
    start: &Subvol,
    path: &str,
    text: &str,
    bls: Option<&[bls::BlsEntry]>,
) -> Result<(Menu, EnvFile), Error<F::Error>> {
    let env_path = format!("{}/grubenv", parent(path).unwrap_or(""));
    let env_bytes = match files.read(&env_path) {
        Ok(b) => b,
        Err(error) => return Err(Error::Files { path: env_path, error }),
    };
    let env = match &env_bytes {
        Some(b) => Some(grub::Grubenv::parse(&env_path, &self::text(&env_path, b.clone())?)?),
        None => None,
    };
    // Where openSUSE's grub2-install points GRUB, it also mounts fstab's
    // subvolumes.
    let relative = *start == Subvol::Default;
    let mounts = match relative {
        true => read_text(files, "/etc/fstab")?.map(|t| fstab::btrfs_mounts(&t, files.fs_uuid().as_deref())).unwrap_or_default(),
        false => Vec::new(),
    };
    let mut host = FilesHost { files, failed: None, relative, mounts };
    let menu = grub::parse(path, text, env.as_ref(), bls, &mut host);
    match host.failed {
        Some(e) => Err(e),
        None => Ok((menu?, env_bytes.map(|b| (env_path, b)))),
    }
}

/// What the GRUB interpreter asks of the filesystem; the first failure of
/// `files` itself is kept, to be reported rather than the interpreter's
/// own error.
struct FilesHost<'f, F: Files> {
    files: &'f mut F,
    failed: Option<Error<F::Error>>,
    relative: bool,
    mounts: Vec<(String, String)>,
}

impl<F: Files> FilesHost<'_, F> {
    /// Paths start at `s` from now on; `false` (the failure kept) when
    /// that subvolume cannot be opened.
    fn subvol(&mut self, s: &Subvol, path: &str) -> bool {
        match self.files.set_subvol(s) {
            Ok(()) => true,
            Err(error) => {
                self.failed.get_or_insert(Error::Files { path: format!("{path} (in btrfs subvolume {s:?})"), error });
                false
            }
        }
    }
}

impl<F: Files> grub::Host for FilesHost<'_, F> {
    fn relative(&self) -> bool {
        self.relative
    }

    fn mounts(&self) -> Vec<(String, String)> {
        self.mounts.clone()
    }

    fn exists(&mut self, path: &str, s: &Subvol) -> Option<bool> {
        if !self.subvol(s, path) {
            return None;
        }
        match self.files.exists(path) {
            Ok(b) => Some(b),
            Err(error) => {
                self.failed.get_or_insert(Error::Files { path: path.to_string(), error });
                None
            }
        }
    }

    fn read(&mut self, path: &str, s: &Subvol) -> Result<Option<String>, ConfigError> {
        if !self.subvol(s, path) {
            return Err(ConfigError::new(path, 0, Problem::unsupported("a btrfs subvolume that cannot be opened")));
        }
        match read_text(self.files, path) {
            Ok(t) => Ok(t),
            Err(Error::Config(e)) => Err(e),
            Err(e) => {
                self.failed.get_or_insert(e);
                Err(ConfigError::new(path, 0, Problem::unsupported("a file that cannot be read")))
            }
        }
    }
}

/// Pick the entry: `choice` if given (even when the configuration's
/// default is broken: that is what the override is for), else the menu's
/// default, else the first.
/// A default that names no entry boots the first, with a warning, as GRUB
/// does; one that names an entry hvmlite cannot boot (a submenu, Xen) is
/// an error.
fn select<E>(menu: &Menu, choice: Option<&str>) -> Result<(usize, Why, Option<ConfigError>), Error<E>> {
    let n = menu.entries.len();
    if let Some(c) = choice {
        let by_index = c.parse::<usize>().ok().filter(|&i| i < n && is_index(c));
        let by_name = || menu.entries.iter().position(|e| e.title == c || e.id.as_deref() == Some(c));
        return match by_index.or_else(by_name) {
            Some(i) => Ok((i, Why::Override, None)),
            None => Err(Error::NoSuchEntry { choice: c.to_string(), entries: n }),
        };
    }
    match &menu.default {
        Ok(Some(i)) if *i < n => Ok((*i, Why::Default, None)),
        Ok(_) => Ok((0, Why::First, None)),
        Err(e @ ConfigError { what: Problem::NoSuchDefault(_), .. }) => Ok((0, Why::Fallback, Some(e.clone()))),
        Err(e) => Err(Error::Config(e.clone())),
    }
}

/// Plain decimal digits: what GRUB and `hvmlite.entry=` take as an index.
pub(crate) fn is_index(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The value of the last `hvmlite.entry=` on a kernel-style command line
/// (`hvmlite.entry="Debian GNU/Linux"` for a title with spaces).
pub fn entry_choice(cmdline: &str) -> Option<String> {
    let mut found = None;
    for word in cmdline_words(cmdline) {
        if let Some(v) = word.strip_prefix("hvmlite.entry=") {
            found = Some(v.to_string());
        }
    }
    found
}

/// Split a command line as Linux does: at spaces outside double quotes,
/// the quotes themselves removed.
fn cmdline_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_ascii_whitespace() && !quoted => {
                if any {
                    words.push(core::mem::take(&mut cur));
                }
                any = false;
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// A configuration file as text: `None` if it does not exist; an error if
/// it is too large, not UTF-8 or contains NUL.
fn read_text<F: Files>(files: &mut F, path: &str) -> Result<Option<String>, Error<F::Error>> {
    let bytes = match files.read(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(error) => return Err(Error::Files { path: path.to_string(), error }),
    };
    Ok(Some(text(path, bytes)?))
}

/// Bytes as text, or an error naming the line of the first bad byte.
pub(crate) fn text(path: &str, bytes: Vec<u8>) -> Result<String, ConfigError> {
    if bytes.len() > MAX_FILE_SIZE {
        return Err(ConfigError::new(path, 0, Problem::TooLarge(bytes.len())));
    }
    let bad_at = |at: usize| ConfigError::new(path, line_of(&bytes, at), Problem::NotText);
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(bad_at(at));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            Err(ConfigError::new(path, line_of(e.as_bytes(), at), Problem::NotText))
        }
    }
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count()
}

/// The directory part of an absolute path (`/a/b` → `/a`, `/a` → ``).
pub(crate) fn parent(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// `path` with `.` and `..` components resolved, relative to `dir` when it
/// is not absolute. `..` above the root stays at the root, as in a kernel.
pub(crate) fn join(dir: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let full = if path.starts_with('/') { [path, ""] } else { [dir, path] };
    for p in full.iter().flat_map(|s| s.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
pub(crate) mod testfs {
    //! An in-memory filesystem for the tests.
    use super::Files;
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use alloc::vec::Vec;

    #[derive(Default)]
    pub struct MemFs {
        pub files: BTreeMap<String, Vec<u8>>,
    }

    impl MemFs {
        pub fn new(files: &[(&str, &str)]) -> Self {
            MemFs { files: files.iter().map(|(p, t)| (p.to_string(), t.as_bytes().to_vec())).collect() }
        }
    }

    impl Files for MemFs {
        type Error = &'static str;
        fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, &'static str> {
            Ok(self.files.get(path).cloned())
        }
        fn list(&mut self, dir: &str) -> Result<Option<Vec<String>>, &'static str> {
            let prefix = alloc::format!("{dir}/");
            let names: Vec<String> =
                self.files.keys().filter_map(|p| p.strip_prefix(&prefix)).filter(|rest| !rest.contains('/')).map(String::from).collect();
            Ok(if names.is_empty() { None } else { Some(names) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testfs::MemFs;
    use super::*;

    #[test]
    fn entry_choice_takes_the_last_and_unquotes() {
        assert_eq!(entry_choice("ro quiet"), None);
        assert_eq!(entry_choice("hvmlite.entry=2 x hvmlite.entry=3").as_deref(), Some("3"));
        assert_eq!(entry_choice("a \"hvmlite.entry=Debian GNU/Linux\" b").as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(entry_choice("hvmlite.entry=\"Debian GNU/Linux\"").as_deref(), Some("Debian GNU/Linux"));
    }

    #[test]
    fn join_resolves_relative_paths() {
        assert_eq!(join("/boot/extlinux", "../vmlinuz"), "/boot/vmlinuz");
        assert_eq!(join("/boot/extlinux", "/vmlinuz"), "/vmlinuz");
        assert_eq!(join("/extlinux", "../../../x"), "/x");
        assert_eq!(join("/a", "./b//c"), "/a/b/c");
    }

    #[test]
    fn text_names_the_line_of_a_bad_byte() {
        let e = text("/f", b"ok\nok\n\xff\n".to_vec()).unwrap_err();
        assert_eq!((e.line, e.what), (3, Problem::NotText));
        let e = text("/f", b"a\0".to_vec()).unwrap_err();
        assert_eq!(e.to_string(), "/f:1: not UTF-8 text without NUL bytes");
    }

    #[test]
    fn nothing_found() {
        let r = find(&mut MemFs::new(&[("/etc/fstab", "")]), None);
        assert_eq!(r, Err(Error::NothingFound));
    }

    /// Alpine's `update-extlinux`: `/boot/extlinux.conf` on the root
    /// filesystem, `/extlinux.conf` on a `/boot` partition; paths relative
    /// to the file; `MENU DEFAULT` picks the entry.
    const ALPINE: &str = "DEFAULT menu.c32\nPROMPT 0\nMENU TITLE Alpine/Linux Boot Menu\nMENU HIDDEN\n\
        MENU AUTOBOOT Alpine will be booted automatically in # seconds.\nTIMEOUT 10\n\
        LABEL virt\n  MENU LABEL Linux virt\n  LINUX vmlinuz-virt\n  INITRD initramfs-virt\n  APPEND root=UUID=1 modules=sd-mod,ext4 quiet\n\n\
        LABEL lts\n  MENU DEFAULT\n  MENU LABEL Linux lts\n  LINUX vmlinuz-lts\n  INITRD initramfs-lts\n  APPEND root=UUID=1 modules=sd-mod,ext4 quiet rootfstype=ext4\n\n\
        MENU SEPARATOR\n";

    #[test]
    fn alpine_extlinux_conf_on_root_and_on_a_boot_partition() {
        for (conf, dir) in [("/boot/extlinux.conf", "/boot"), ("/extlinux.conf", "")] {
            let f = find(&mut MemFs::new(&[(conf, ALPINE)]), None).unwrap();
            assert_eq!((f.config.as_str(), f.format, f.selected, f.why), (conf, Format::Extlinux, 1, Why::Default));
            let e = f.entry();
            assert_eq!(
                (e.title.as_str(), e.linux.clone(), e.initrds.clone()),
                ("Linux lts", format!("{dir}/vmlinuz-lts"), [format!("{dir}/initramfs-lts")].to_vec())
            );
            assert_eq!(e.options, "root=UUID=1 modules=sd-mod,ext4 quiet rootfstype=ext4");
        }
    }

    #[test]
    fn each_format_says_how_its_menu_is_shown() {
        use menu::{Show, Style};
        let show = |files: &[(&str, &str)]| find(&mut MemFs::new(files), None).unwrap().show;
        let menu = |t| Show { style: Style::Menu, timeout_ms: t };
        let grub = |head: &str| format!("{head}\nmenuentry a {{\n linux /a\n}}\n");
        let g = "/boot/grub/grub.cfg";
        assert_eq!(show(&[(g, &grub("set timeout=5"))]), menu(Some(5000)));
        assert_eq!(show(&[(g, &grub(""))]), menu(None), "GRUB without a timeout waits");
        assert_eq!(show(&[(g, &grub("set timeout=-1"))]), menu(None));
        // Ubuntu: hidden, 0 s (unless recordfail).
        let ubuntu = "set timeout_style=hidden\nset timeout=0";
        assert_eq!(show(&[(g, &grub(ubuntu))]), Show { style: Style::Hidden, timeout_ms: Some(0) });
        assert_eq!(show(&[(g, &grub("set timeout_style=countdown\nset timeout=3"))]).style, Style::Countdown);
        // Alpine: hidden for a second.
        assert_eq!(show(&[("/boot/extlinux.conf", ALPINE)]), Show { style: Style::Hidden, timeout_ms: Some(1000) });
        // extlinux without a menu module or PROMPT: nothing to show.
        assert_eq!(show(&[("/extlinux.conf", "TIMEOUT 50\nLABEL a\n LINUX /a\n")]), Show::NONE);
        assert_eq!(show(&[("/extlinux.conf", "PROMPT 1\nTIMEOUT 50\nLABEL a\n LINUX /a\n")]), menu(Some(5000)));
        // loader.conf.
        let entry = ("/loader/entries/a.conf", "title A\nlinux /a\n");
        assert_eq!(show(&[entry]), Show::NONE);
        assert_eq!(show(&[entry, ("/loader/loader.conf", "timeout 3\n")]), menu(Some(3000)));
        assert_eq!(show(&[entry, ("/loader/loader.conf", "timeout menu-force\n")]), menu(None));
    }

    #[test]
    fn a_choice_picks_by_index_title_or_id_and_names_nothing_clearly() {
        let conf = "DEFAULT b\nLABEL a\n LINUX /a\nLABEL b\n LINUX /b\n MENU LABEL Bee\n";
        let mut fs = MemFs::new(&[("/boot/extlinux/extlinux.conf", conf)]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.selected, f.why), (1, Why::Default));
        let f = find(&mut fs, Some("0")).unwrap();
        assert_eq!((f.selected, f.why), (0, Why::Override));
        assert_eq!(find(&mut fs, Some("Bee")).unwrap().entry().linux, "/b");
        assert_eq!(find(&mut fs, Some("a")).unwrap().entry().linux, "/a");
        let e = find(&mut fs, Some("2")).unwrap_err();
        assert_eq!(e, Error::NoSuchEntry { choice: "2".into(), entries: 2 });
        assert!(e.to_string().contains("hvmlite.entry=\"2\" names none of the 2 entries"));
    }
}
