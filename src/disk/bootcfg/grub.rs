//! `grub.cfg` as `grub-mkconfig` writes it (Debian, Ubuntu, Fedora), run
//! by a small interpreter of GRUB's script language, and GRUB's
//! environment block (`grubenv`).
//!
//! The file is lexed and parsed as GRUB does (quotes, `\` escapes, `$var`
//! and `${var}`, `;`, `{ }`, `if`/`elif`/`else`/`fi`, `function`,
//! `menuentry`, `submenu`) and then run: `set`, `unset`, `load_env`, `if`
//! with the conditions `grub-mkconfig` writes (`[ … ]`/`test` with string,
//! number and file tests, `-a`, `-o`, `!`), calls of the file's own
//! functions, `menuentry`, `submenu` and Fedora's `blscfg` (the BLS entries
//! become items here). Commands that only prepare GRUB itself (`insmod`,
//! `search`, `echo`, `terminal_output`, `loadfont`, `save_env`, …) are
//! skipped. An `if` whose condition cannot be evaluated (`if loadfont …`)
//! is skipped only when every branch is such preparation; otherwise it is
//! an error, as is any command this interpreter does not know.
//!
//! A menu entry's or submenu's body runs, as in GRUB, when it is chosen:
//! after the whole file (or submenu), with the variables as it left them;
//! `linux` (`linux16`, `linuxefi`) gives the kernel and its options,
//! `initrd` (`initrd16`, `initrdefi`) the initrds. Entries that `chainloader`, `multiboot` (Xen),
//! `fwsetup`, … are kept in the menu, so GRUB's indexes stay right, but
//! are never booted.
//!
//! GRUB's own variables are those of GRUB on Xen PVH ([`GRUB_PLATFORM`]),
//! with every `feature_*` set; `prefix` and `config_directory` are the
//! directory of `grub.cfg`.
//!
//! `source FILE` (`.`) runs another file here, sharing the variables and
//! the menu (Debian's `custom.cfg`, openSUSE's snapshot menu);
//! `configfile FILE` replaces the menu with that file's, which runs with
//! only the exported variables (ESP stubs). Both are bounded: a file that
//! sources itself is one error ([`MAX_SOURCE_DEPTH`]).
//!
//! The default: the `default` variable as the file left it, GRUB-style:
//! empty means 0; an index, an id or a title; `>` descends into submenus
//! (`1>2`); `saved` means `saved_entry`. `next_entry` (from
//! `grub-reboot`) is honoured because the file itself does so.
//!
//! `save_env` is recorded, in order, with the value each variable had
//! then: the script's own in [`Menu::saves`], those an entry's body makes
//! (`savedefault`, `recordfail`, run with `chosen` set as GRUB sets it)
//! in that entry's [`BootEntry::saves`]. The caller writes the result
//! back ([`Grubenv::save`], [`Grubenv::encode`]), so `grub-reboot`'s
//! `next_entry` is cleared after one boot as GRUB clears it.

use super::bls::BlsEntry;
use super::menu::{Show, Style};
use super::{is_index, BootEntry, ConfigError, Format, Menu, Problem, Save, Source, Subvol, MAX_DEPTH, MAX_ENTRIES, MAX_FILE_SIZE};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use typed_arena::Arena;

/// `grub_platform` as GRUB built for Xen PVH (`i386-xen_pvh`) sets it.
pub const GRUB_PLATFORM: &str = "xen_pvh";
/// The most bytes of variables (names and values) kept at once.
const MAX_VAR_BYTES: usize = 64 << 10;
/// The most commands run (function calls can repeat bodies).
const MAX_STEPS: usize = 100_000;
/// The most bytes all expansions together may produce.
const MAX_EXPANDED: usize = 16 << 20;
/// The deepest chain of `source`/`configfile` (a file that sources itself
/// stops here).
pub const MAX_SOURCE_DEPTH: usize = 8;
/// The most bytes of files `source`/`configfile` read in all.
const MAX_SOURCED: usize = 4 * MAX_FILE_SIZE;
/// The size of the environment block `grub-editenv` creates and GRUB
/// writes in place.
pub const GRUBENV_SIZE: usize = 1024;
/// Its first line.
const GRUBENV_HEADER: &str = "# GRUB Environment Block\n";

/// What the interpreter asks of the filesystem grub.cfg is on. Paths
/// start at the btrfs tree given ([`Subvol`]; other filesystems have one).
pub trait Host {
    /// Whether grub.cfg was found through the btrfs default subvolume:
    /// GRUB then starts with `btrfs_relative_path=y`, as openSUSE's
    /// `grub2-install` sets it in the image it builds.
    fn relative(&self) -> bool {
        false
    }
    /// The `btrfs-mount-subvol`s GRUB starts with: openSUSE's
    /// `grub2-install` writes fstab's into its image ([`super::fstab`]).
    fn mounts(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// GRUB's `[ -f PATH ]`: `None` when it cannot tell.
    fn exists(&mut self, path: &str, subvol: &Subvol) -> Option<bool>;
    /// The text of PATH for `source`/`configfile`: `Ok(None)` when there
    /// is no such file.
    fn read(&mut self, path: &str, subvol: &Subvol) -> Result<Option<String>, ConfigError>;
}

/// File tests answered by a function, and no file to source.
impl<F: FnMut(&str) -> Option<bool>> Host for F {
    fn exists(&mut self, path: &str, _: &Subvol) -> Option<bool> {
        self(path)
    }
    fn read(&mut self, _: &str, _: &Subvol) -> Result<Option<String>, ConfigError> {
        Ok(None)
    }
}

/// Why an entry whose initrd is in another btrfs tree than its kernel is
/// listed but not booted (a boot entry reads all its files from one).
const INITRD_ELSEWHERE: &str = "its initrd is in another btrfs subvolume than its kernel";

/// The most `btrfs-mount-subvol` directories.
pub const MAX_MOUNTS: usize = 64;

/// The variables that choose where btrfs paths start ([`Subvol`]). GRUB's
/// btrfs module exports them, so `configfile` keeps them.
const BTRFS_VARS: [&str; 3] = ["btrfs_relative_path", "btrfs_subvol", "btrfs_subvolid"];

/// GRUB's environment block: `# GRUB Environment Block`, then `name=value`
/// lines (`\` escapes the next character), padded with `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grubenv {
    pub path: String,
    pub vars: Vec<(String, String)>,
}

impl Grubenv {
    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let err = |line, s: &str| ConfigError::new(path, line, Problem::syntax(s));
        let mut lines = text.split('\n').enumerate();
        match lines.next() {
            Some((_, "# GRUB Environment Block")) => {}
            _ => return Err(err(1, "not a GRUB environment block (no \"# GRUB Environment Block\" line)")),
        }
        let mut vars: Vec<(String, String)> = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        for (i, l) in lines {
            let (start, mut logical) = match pending.take() {
                Some((s, mut acc)) => {
                    acc.push('\n');
                    acc.push_str(l);
                    (s, acc)
                }
                None if l.starts_with('#') || l.is_empty() => continue,
                None => (i + 1, l.to_string()),
            };
            // An odd number of trailing backslashes escapes the newline.
            if logical.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1 {
                logical.pop();
                pending = Some((start, logical));
                continue;
            }
            let Some((name, value)) = logical.split_once('=') else {
                return Err(err(start, "a line that is neither name=value nor # padding"));
            };
            if name.is_empty() {
                return Err(err(start, "a variable without a name"));
            }
            vars.push((name.to_string(), unescape(value)));
        }
        if let Some((start, _)) = pending {
            return Err(err(start, "a value ends in an escaping backslash"));
        }
        Ok(Grubenv { path: path.to_string(), vars })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `save_env NAME` with NAME's value (`None`: unset), as GRUB edits
    /// the block: a variable already there keeps its place, a new one goes
    /// last, an unset one is removed.
    pub fn save(&mut self, name: &str, value: Option<&str>) {
        match (value, self.vars.iter().position(|(n, _)| n == name)) {
            (Some(v), Some(at)) => {
                self.vars[at].1 = v.to_string();
                let mut i = at + 1;
                while i < self.vars.len() {
                    if self.vars[i].0 == name {
                        self.vars.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            (Some(v), None) => self.vars.push((name.to_string(), v.to_string())),
            (None, _) => self.vars.retain(|(n, _)| n != name),
        }
    }

    /// The block as GRUB writes it: the header, `name=value` lines (`\`
    /// before a `\` or a newline), `#` up to `size` bytes; `None` when
    /// the variables do not fit.
    pub fn encode(&self, size: usize) -> Option<Vec<u8>> {
        let mut out = Vec::from(GRUBENV_HEADER.as_bytes());
        for (n, v) in &self.vars {
            out.extend_from_slice(n.as_bytes());
            out.push(b'=');
            for b in v.bytes() {
                if b == b'\\' || b == b'\n' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'\n');
        }
        if out.len() > size {
            return None;
        }
        out.resize(size, b'#');
        Some(out)
    }
}

/// `s` with each `\` removed and the byte after it kept as it is (the
/// bytes of a multi-byte character after it then follow unchanged).
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(if b == b'\\' { bytes.next().unwrap_or(b'\\') } else { b });
    }
    copied(&mut out)
}

/// Whether the file calls `blscfg` (as a command, not in a comment).
pub fn calls_blscfg(text: &str) -> bool {
    text.lines().any(|l| l.split(';').any(|c| c.split_whitespace().next() == Some("blscfg")))
}

/// Parse and run `grub.cfg` at `path`. `env` is the grubenv next to it,
/// `bls` the sorted BLS entries `blscfg` inserts, `host` answers GRUB's
/// file tests and reads what `source`/`configfile` name.
pub fn parse(path: &str, text: &str, env: Option<&Grubenv>, bls: Option<&[BlsEntry]>, host: &mut dyn Host) -> Result<Menu, ConfigError> {
    let arena = Arena::new();
    let stmts: &[Stmt] = arena.alloc(script(path, text)?);
    let dir = super::parent(path).unwrap_or("").to_string();
    let mut run = Run {
        file: path.to_string(),
        dir: dir.clone(),
        env,
        bls,
        host,
        arena: &arena,
        functions: Functions::default(),
        steps: 0,
        expanded: 0,
        items: 0,
        default_line: 0,
        default_file: path.to_string(),
        saves: Vec::new(),
        exported: Vec::new(),
        sources: 0,
        sourced: 0,
        hops: 0,
        configfile: None,
        mounts: Vec::new(),
    };
    run.mounts = run.host.mounts();
    let mut vars = Vars::default();
    fresh_vars(&mut vars, path, &dir)?;
    if run.host.relative() {
        vars.set("btrfs_relative_path", "y".into(), path, 0)?;
    }
    let (mut stmts, mut file) = (stmts, path.to_string());
    let menu = loop {
        run.file.clone_from(&file);
        let menu = run.menu(stmts, &mut vars, 0, "")?;
        // `configfile`: that file's menu instead, with the exported
        // variables only.
        let Some((next, body)) = run.configfile.take() else { break menu };
        vars = run.carried(&vars, &next)?;
        run.functions = Functions::default();
        run.items = 0;
        (stmts, file) = (body, next);
    };
    let mut entries = Vec::new();
    flatten(&menu, &[], None, &mut entries);
    if entries.is_empty() {
        return Err(ConfigError::new(&file, 0, Problem::NoEntries));
    }
    let default = run.default(&menu, &vars).map(Some);
    Ok(Menu { entries, default, saves: run.saves, show: show(&vars) })
}

/// The menu as `timeout` and `timeout_style` ask after the script ran:
/// no `timeout` (or a negative one) waits for a key, as in GRUB.
fn show(vars: &Vars) -> Show {
    let style = match vars.text("timeout_style") {
        "hidden" => Style::Hidden,
        "countdown" => Style::Countdown,
        _ => Style::Menu,
    };
    let timeout_ms = match vars.text("timeout").parse::<i64>() {
        Ok(t) if t >= 0 => Some(t as u64 * 1000),
        _ => None,
    };
    Show { style, timeout_ms }
}

/// Lex and parse one file.
fn script(path: &str, text: &str) -> Result<Vec<Stmt>, ConfigError> {
    let toks = lex(path, text)?;
    Parser { file: path, toks: &toks, pos: 0 }.script()
}

/// GRUB's own variables at the start of a configuration file in `dir`.
fn fresh_vars(vars: &mut Vars, path: &str, dir: &str) -> Result<(), ConfigError> {
    for (k, v) in [("grub_platform", GRUB_PLATFORM), ("grub_cpu", "i386"), ("prefix", dir), ("config_directory", dir)] {
        vars.set(k, v.to_string(), path, 0)?;
    }
    for f in FEATURES {
        vars.set(f, "y".to_string(), path, 0)?;
    }
    Ok(())
}

/// GRUB's `feature_*` variables (all set by GRUB 2.02 and later).
const FEATURES: [&str; 8] = [
    "feature_chainloader_bpb",
    "feature_ntldr",
    "feature_platform_search_hint",
    "feature_default_font_path",
    "feature_all_video_module",
    "feature_menuentry_id",
    "feature_menuentry_options",
    "feature_timeout_style",
];

// ---------------------------------------------------------------- lexer

/// Part of a word: literal text, or a variable expanded with (`Var`) or
/// without (`QVar`, inside double quotes) splitting into words.
#[derive(Clone, Debug)]
enum Piece {
    Lit(String),
    Var(String),
    QVar(String),
}

#[derive(Clone, Debug)]
struct Word {
    pieces: Vec<Piece>,
    /// Any quote in it: a quoted word is never a keyword.
    quoted: bool,
    /// The source text, for messages.
    raw: String,
}

impl Word {
    /// The word as a keyword or command name: unquoted literal text.
    fn literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Lit(s)] if !self.quoted => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Tok {
    Word(Word, usize),
    /// `;` or a newline.
    Sep(usize),
    Open(usize),
    Close(usize),
}

/// Split `text` into tokens. It is lexed as bytes: everything GRUB's
/// syntax gives a meaning is ASCII, and the bytes of a multi-byte
/// character (all non-ASCII) are copied like any other literal text.
fn lex(file: &str, text: &str) -> Result<Vec<Tok>, ConfigError> {
    let s = text.as_bytes();
    let (mut i, mut line) = (0, 1);
    let mut toks = Vec::new();
    let err = |line, what: &str| ConfigError::new(file, line, Problem::syntax(what));
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' => i += 1,
            b'\n' => {
                toks.push(Tok::Sep(line));
                line += 1;
                i += 1;
            }
            b';' => {
                toks.push(Tok::Sep(line));
                i += 1;
            }
            b'{' => {
                toks.push(Tok::Open(line));
                i += 1;
            }
            b'}' => {
                toks.push(Tok::Close(line));
                i += 1;
            }
            b'#' => {
                while i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if s.get(i + 1) == Some(&b'\n') => {
                i += 2;
                line += 1;
            }
            b'|' | b'&' | b'<' | b'>' => return Err(err(line, &format!("{:?} (pipes and redirections) outside quotes", char::from(s[i])))),
            _ => {
                let start_line = line;
                let (w, next) = word(text, i, &mut line).map_err(|(l, what)| err(l, what))?;
                toks.push(Tok::Word(w, start_line));
                i = next;
            }
        }
    }
    Ok(toks)
}

/// One word starting at byte `i` of `text`: its pieces and the index
/// after it.
fn word(text: &str, mut i: usize, line: &mut usize) -> Result<(Word, usize), (usize, &'static str)> {
    let s = text.as_bytes();
    let start = i;
    let mut w = Word { pieces: Vec::new(), quoted: false, raw: String::new() };
    let mut lit = Vec::new();
    let flush = |lit: &mut Vec<u8>, w: &mut Word| {
        if !lit.is_empty() {
            w.pieces.push(Piece::Lit(copied(lit)));
        }
    };
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}' | b'|' | b'&' | b'<' | b'>' => break,
            b'\\' => {
                match s.get(i + 1) {
                    Some(b'\n') => *line += 1,
                    Some(&c) => lit.push(c),
                    None => {}
                }
                i += 2;
            }
            b'\'' => {
                let open = *line;
                w.quoted = true;
                i += 1;
                while i < s.len() && s[i] != b'\'' {
                    *line += usize::from(s[i] == b'\n');
                    lit.push(s[i]);
                    i += 1;
                }
                if i >= s.len() {
                    return Err((open, "unterminated single quote"));
                }
                // '' is an empty word, not nothing.
                w.pieces.push(Piece::Lit(copied(&mut lit)));
                i += 1;
            }
            b'"' => {
                let open = *line;
                w.quoted = true;
                i += 1;
                w.pieces.push(Piece::Lit(copied(&mut lit)));
                loop {
                    match s.get(i) {
                        None => return Err((open, "unterminated double quote")),
                        Some(b'"') => break,
                        Some(b'\\') if matches!(s.get(i + 1), Some(b'$' | b'"' | b'\\')) => {
                            lit.push(s[i + 1]);
                            i += 2;
                        }
                        Some(b'\\') if s.get(i + 1) == Some(&b'\n') => {
                            *line += 1;
                            i += 2;
                        }
                        Some(b'$') => {
                            let (name, next) = var(text, i, *line)?;
                            match name {
                                Some(n) => {
                                    flush(&mut lit, &mut w);
                                    w.pieces.push(Piece::QVar(n));
                                }
                                None => lit.push(b'$'),
                            }
                            i = next;
                        }
                        Some(&c) => {
                            *line += usize::from(c == b'\n');
                            lit.push(c);
                            i += 1;
                        }
                    }
                }
                flush(&mut lit, &mut w);
                i += 1;
            }
            b'$' => {
                let (name, next) = var(text, i, *line)?;
                match name {
                    Some(n) => {
                        flush(&mut lit, &mut w);
                        w.pieces.push(Piece::Var(n));
                    }
                    None => lit.push(b'$'),
                }
                i = next;
            }
            c => {
                lit.push(c);
                i += 1;
            }
        }
    }
    flush(&mut lit, &mut w);
    // Words end at an ASCII byte or the end: the slice is whole characters.
    w.raw = text[start..i.min(s.len())].to_string();
    Ok((w, i))
}

/// The text collected so far, taken. Always UTF-8: the lexer and
/// [`unescape`] drop and insert only ASCII bytes, which are never part of
/// a multi-byte character, so every character they copy stays whole.
fn copied(lit: &mut Vec<u8>) -> String {
    let text = String::from_utf8(core::mem::take(lit));
    debug_assert!(text.is_ok(), "the lexer split a character");
    text.unwrap_or_default()
}

/// The variable at `text[i] == '$'`: its name (`None`: a lone `$`,
/// literal) and the index after it.
fn var(text: &str, i: usize, line: usize) -> Result<(Option<String>, usize), (usize, &'static str)> {
    let s = text.as_bytes();
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    // The name ends at an ASCII byte, so `text[i + 1..end]` is whole characters.
    let name = |end: usize| Some(text[i + 1..end].to_string());
    match s.get(i + 1) {
        Some(b'{') => {
            let end = s[i + 2..].iter().position(|&c| c == b'}').map(|p| i + 2 + p);
            let Some(end) = end else { return Err((line, "unterminated ${")) };
            let name = &s[i + 2..end];
            let ok = !name.is_empty() && (name.iter().all(ident) || matches!(name, b"?" | b"#" | b"*" | b"@"));
            if !ok {
                return Err((line, "a ${…} that is not a variable name"));
            }
            Ok((Some(text[i + 2..end].to_string()), end + 1))
        }
        Some(c) if c.is_ascii_digit() => {
            let n = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            Ok((name(i + 1 + n), i + 1 + n))
        }
        Some(c) if ident(c) => {
            let n = s[i + 1..].iter().take_while(|c| ident(c)).count();
            Ok((name(i + 1 + n), i + 1 + n))
        }
        Some(b'?' | b'#' | b'*' | b'@') => Ok((name(i + 2), i + 2)),
        _ => Ok((None, i + 1)),
    }
}

// ---------------------------------------------------------------- parser

#[derive(Debug)]
enum Stmt {
    Cmd { words: Vec<Word>, line: usize },
    If { arms: Vec<(Vec<Stmt>, Vec<Stmt>)>, otherwise: Vec<Stmt> },
    Menu { submenu: bool, args: Vec<Word>, body: Vec<Stmt>, line: usize },
    Function { name: String, body: Vec<Stmt> },
}

/// How a statement list ended.
enum End {
    Keyword(String),
    Close,
    Eof,
}

struct Parser<'t> {
    file: &'t str,
    toks: &'t [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, line: usize, what: Problem) -> ConfigError {
        ConfigError::new(self.file, line, what)
    }

    fn script(&mut self) -> Result<Vec<Stmt>, ConfigError> {
        let (stmts, end) = self.list(0, &[])?;
        match end {
            End::Eof => Ok(stmts),
            End::Close => Err(self.err(self.last_line(), Problem::syntax("a } that closes nothing"))),
            End::Keyword(k) => Err(self.err(self.last_line(), Problem::Syntax(format!("{k} without if")))),
        }
    }

    fn last_line(&self) -> usize {
        match self.toks.get(self.pos.saturating_sub(1)) {
            Some(Tok::Word(_, l) | Tok::Sep(l) | Tok::Open(l) | Tok::Close(l)) => *l,
            None => 1,
        }
    }

    /// Statements up to one of the keywords `stop`, a `}` or the end.
    fn list(&mut self, depth: usize, stop: &[&str]) -> Result<(Vec<Stmt>, End), ConfigError> {
        if depth > MAX_DEPTH {
            return Err(self.err(self.last_line(), Problem::TooComplex("blocks nested too deeply")));
        }
        let mut stmts = Vec::new();
        loop {
            let (w, line) = match self.toks.get(self.pos) {
                None => return Ok((stmts, End::Eof)),
                Some(Tok::Sep(_)) => {
                    self.pos += 1;
                    continue;
                }
                Some(Tok::Close(_)) => {
                    self.pos += 1;
                    return Ok((stmts, End::Close));
                }
                Some(Tok::Open(l)) => return Err(self.err(*l, Problem::syntax("a { that opens nothing"))),
                Some(Tok::Word(w, l)) => (w, *l),
            };
            let kw = w.literal().unwrap_or("");
            if stop.contains(&kw) {
                self.pos += 1;
                return Ok((stmts, End::Keyword(kw.to_string())));
            }
            let stmt = match kw {
                "if" => self.if_(depth, line)?,
                "function" => self.function(depth, line)?,
                "menuentry" | "submenu" => self.menu(depth, line, kw == "submenu")?,
                "while" | "until" | "for" | "case" | "select" | "!" => {
                    return Err(self.err(line, Problem::Unsupported(format!("{kw} (GRUB loops and negations)"))))
                }
                "then" | "elif" | "else" | "fi" | "do" | "done" | "esac" => {
                    return Err(self.err(line, Problem::Syntax(format!("{kw} where no if or loop is open"))))
                }
                _ => Stmt::Cmd { words: self.words(), line },
            };
            stmts.push(stmt);
        }
    }

    /// Words up to the end of the command.
    fn words(&mut self) -> Vec<Word> {
        let mut words = Vec::new();
        while let Some(Tok::Word(w, _)) = self.toks.get(self.pos) {
            words.push(w.clone());
            self.pos += 1;
        }
        words
    }

    fn if_(&mut self, depth: usize, line: usize) -> Result<Stmt, ConfigError> {
        self.pos += 1;
        let unterminated = |p: &Self| p.err(line, Problem::syntax("if without fi"));
        let mut arms = Vec::new();
        loop {
            let (cond, end) = self.list(depth + 1, &["then"])?;
            if !matches!(end, End::Keyword(_)) {
                return Err(unterminated(self));
            }
            let (body, end) = self.list(depth + 1, &["elif", "else", "fi"])?;
            arms.push((cond, body));
            match end {
                End::Keyword(k) if k == "elif" => continue,
                End::Keyword(k) if k == "fi" => return Ok(Stmt::If { arms, otherwise: Vec::new() }),
                End::Keyword(_) => {
                    let (otherwise, end) = self.list(depth + 1, &["fi"])?;
                    return match end {
                        End::Keyword(_) => Ok(Stmt::If { arms, otherwise }),
                        _ => Err(unterminated(self)),
                    };
                }
                _ => return Err(unterminated(self)),
            }
        }
    }

    /// `{ … }` after a menuentry, submenu or function opened at `line`.
    fn block(&mut self, depth: usize, line: usize, what: &str) -> Result<Vec<Stmt>, ConfigError> {
        while let Some(Tok::Sep(_)) = self.toks.get(self.pos) {
            self.pos += 1;
        }
        match self.toks.get(self.pos) {
            Some(Tok::Open(_)) => self.pos += 1,
            _ => return Err(self.err(line, Problem::Syntax(format!("{what} without {{")))),
        }
        let (body, end) = self.list(depth + 1, &[])?;
        match end {
            End::Close => Ok(body),
            End::Eof => Err(self.err(line, Problem::Syntax(format!("the {{ of this {what} is never closed")))),
            End::Keyword(k) => Err(self.err(self.last_line(), Problem::Syntax(format!("unexpected {k}")))),
        }
    }

    fn function(&mut self, depth: usize, line: usize) -> Result<Stmt, ConfigError> {
        self.pos += 1;
        let name = match self.toks.get(self.pos) {
            Some(Tok::Word(w, _)) => w.literal().map(str::to_string),
            _ => None,
        };
        let Some(name) = name else {
            return Err(self.err(line, Problem::syntax("function without a name")));
        };
        self.pos += 1;
        let body = self.block(depth, line, "function")?;
        Ok(Stmt::Function { name, body })
    }

    fn menu(&mut self, depth: usize, line: usize, submenu: bool) -> Result<Stmt, ConfigError> {
        self.pos += 1;
        let args = self.words();
        let body = self.block(depth, line, if submenu { "submenu" } else { "menuentry" })?;
        Ok(Stmt::Menu { submenu, args, body, line })
    }
}

// ---------------------------------------------------------------- variables

/// The variables, with an undo log so a menu entry's or submenu's own
/// assignments can be rolled back without copying everything.
#[derive(Default)]
struct Vars {
    map: BTreeMap<String, Val>,
    bytes: usize,
    undo: Vec<(String, Option<Val>)>,
}

#[derive(Clone, Debug)]
enum Val {
    Known(String),
    /// Set by a command hvmlite cannot run (`search --set=x`), at a line.
    Unknown(usize),
}

impl Vars {
    fn get(&self, name: &str) -> Option<&Val> {
        self.map.get(name)
    }

    fn text(&self, name: &str) -> &str {
        match self.map.get(name) {
            Some(Val::Known(s)) => s,
            _ => "",
        }
    }

    fn put(&mut self, name: &str, val: Option<Val>, file: &str, line: usize) -> Result<(), ConfigError> {
        let size = |v: &Option<Val>| match v {
            Some(Val::Known(s)) => name.len() + s.len(),
            Some(Val::Unknown(_)) => name.len(),
            None => 0,
        };
        let old = match &val {
            Some(v) => self.map.insert(name.to_string(), v.clone()),
            None => self.map.remove(name),
        };
        self.bytes = self.bytes + size(&val) - size(&old);
        self.undo.push((name.to_string(), old));
        if self.bytes > MAX_VAR_BYTES || self.undo.len() > MAX_STEPS {
            return Err(ConfigError::new(file, line, Problem::TooComplex("variables too large")));
        }
        Ok(())
    }

    fn set(&mut self, name: &str, value: String, file: &str, line: usize) -> Result<(), ConfigError> {
        self.put(name, Some(Val::Known(value)), file, line)
    }

    fn mark(&self) -> usize {
        self.undo.len()
    }

    fn rollback(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let Some((name, old)) = self.undo.pop() else { break };
            let size = |v: &Option<Val>| match v {
                Some(Val::Known(s)) => name.len() + s.len(),
                Some(Val::Unknown(_)) => name.len(),
                None => 0,
            };
            let cur = match &old {
                Some(v) => self.map.insert(name.clone(), v.clone()),
                None => self.map.remove(&name),
            };
            self.bytes = self.bytes + size(&old) - size(&cur);
        }
    }
}

// ---------------------------------------------------------------- running

/// The functions defined so far, sorted by name (a later definition
/// replaces an earlier one).
#[derive(Default)]
struct Functions<'a> {
    defined: Vec<(String, &'a [Stmt])>,
}

impl<'a> Functions<'a> {
    /// `function NAME { BODY }` ran.
    fn define(&mut self, name: &str, body: &'a [Stmt]) {
        match self.defined.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.defined[i].1 = body,
            Err(i) => self.defined.insert(i, (name.to_string(), body)),
        }
    }

    /// The body of function `name`, if it has been defined.
    fn get(&self, name: &str) -> Option<&'a [Stmt]> {
        let i = self.defined.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()?;
        Some(self.defined[i].1)
    }
}

/// A menu item after its body ran.
enum Node {
    Linux(BootEntry),
    Other {
        title: String,
        id: Option<String>,
        why: String,
    },
    /// `saves`: what the submenu's own statements `save_env`d.
    Sub {
        title: String,
        id: Option<String>,
        children: Vec<Node>,
        saves: Vec<Save>,
    },
}

impl Node {
    fn names(&self) -> (&str, Option<&str>) {
        match self {
            Node::Linux(e) => (&e.title, e.id.as_deref()),
            Node::Other { title, id, .. } | Node::Sub { title, id, .. } => (title, id.as_deref()),
        }
    }
}

/// A menu item before its body runs.
/// `file`: the file that defined it (grub.cfg, or one it sourced).
enum Item<'a> {
    Entry { title: String, id: Option<String>, body: &'a [Stmt], line: usize, file: String },
    Bls(&'a BlsEntry),
    Sub { title: String, id: Option<String>, body: &'a [Stmt], file: String },
}

/// What a menu entry's body loaded.
#[derive(Default)]
struct Boot {
    linux: Option<(String, String)>,
    subvol: Subvol,
    initrds: Vec<String>,
    /// Where each initrd is, when not where the kernel is.
    initrd_subvols: Vec<Subvol>,
    not_linux: Option<String>,
    saves: Vec<Save>,
}

/// Where commands run: at a menu level (items are defined) or in an entry.
enum Mode<'m, 'a> {
    Menu(&'m mut Vec<Item<'a>>),
    Entry(&'m mut Boot),
}

/// Commands that only prepare GRUB itself: skipped.
const PREPARATION: &[&str] = &[
    "insmod",
    "rmmod",
    "search",
    "search.fs_uuid",
    "search.fs_label",
    "search.file",
    "load_video",
    "gfxmode",
    "echo",
    "terminal_output",
    "terminal_input",
    "terminal",
    "terminfo",
    "font",
    "loadfont",
    "save_env",
    "recordfail",
    "savedefault",
    "initrdfail",
    "export",
    "sleep",
    "play",
    "background_image",
    "background_color",
    "clear",
    "serial",
    "keystatus",
    "true",
    "false",
    ":",
    "[",
    "test",
    "set_background_image",
    "password",
    "password_pbkdf2",
    "cutmem",
    "badram",
    "gettext",
    "probe",
    "hwmatch",
    "tpm2_key_protector_init",
];

/// Variables that only configure GRUB itself (set in an `if` whose
/// condition cannot be evaluated, they change nothing hvmlite uses).
const GRUB_ONLY_VARS: &[&str] = &[
    "timeout",
    "timeout_style",
    "gfxmode",
    "gfxpayload",
    "gfxterm_font",
    "locale_dir",
    "lang",
    "font",
    "have_grubenv",
    "boot_once",
    "recordfail",
    "pager",
    "color_normal",
    "color_highlight",
    "menu_color_normal",
    "menu_color_highlight",
    "theme",
    "debug",
    "superusers",
    "fallback",
];

/// Commands that start something other than Linux.
const NOT_LINUX: &[&str] = &[
    "chainloader",
    "multiboot",
    "multiboot2",
    "module",
    "module2",
    "knetbsd",
    "kfreebsd",
    "kopenbsd",
    "knetbsd_module",
    "kfreebsd_module",
    "fwsetup",
    "appleloader",
    "ntldr",
    "truecrypt",
    "freedos",
    "pxechainloader",
    "xnu_kernel",
    "xnu_kernel64",
    "legacy_kernel",
    "reboot",
    "halt",
    "exit",
    "efi",
    "uki",
];

struct Run<'a, 'x> {
    /// The file whose statements are running (for messages).
    file: String,
    /// grub.cfg's directory: where the grubenv is.
    dir: String,
    env: Option<&'a Grubenv>,
    bls: Option<&'a [BlsEntry]>,
    host: &'x mut dyn Host,
    /// Every file parsed, kept while entries refer to their bodies.
    arena: &'a Arena<Vec<Stmt>>,
    functions: Functions<'a>,
    steps: usize,
    expanded: usize,
    items: usize,
    /// Where `default` was last set.
    default_line: usize,
    default_file: String,
    /// The `save_env`s of the menu level running now.
    saves: Vec<Save>,
    /// Names given to `export`.
    exported: Vec<String>,
    /// `source`/`configfile` nesting now, and bytes they read in all.
    sources: usize,
    sourced: usize,
    /// `configfile`s taken so far.
    hops: usize,
    /// A `configfile` ran: the file to run instead, parsed. Set, it stops
    /// the statements still to run.
    configfile: Option<(String, &'a [Stmt])>,
    /// `btrfs-mount-subvol`s: (directory, subvolume path from the top
    /// level), in order.
    mounts: Vec<(String, String)>,
}

impl<'a> Run<'a, '_> {
    fn err(&self, line: usize, what: Problem) -> ConfigError {
        ConfigError::new(&self.file, line, what)
    }

    /// Run a menu level's statements, then its items' bodies with the
    /// variables as the level left them; the level's own assignments are
    /// rolled back afterwards. `path` is GRUB's `chosen` of the level
    /// (`SUBMENU>` ids; empty at the top).
    fn menu(&mut self, stmts: &'a [Stmt], vars: &mut Vars, depth: usize, path: &str) -> Result<Vec<Node>, ConfigError> {
        let mark = vars.mark();
        let mut items = Vec::new();
        self.run(stmts, vars, &mut Mode::Menu(&mut items), depth)?;
        if self.configfile.is_some() {
            return Ok(Vec::new());
        }
        let mut nodes = Vec::new();
        for item in items {
            nodes.push(match item {
                Item::Entry { title, id, body, line, file } => {
                    let chosen = format!("{path}{}", id.as_deref().unwrap_or(&title));
                    let outer = core::mem::replace(&mut self.file, file);
                    let node = self.entry(title, id, body, line, vars, depth, chosen);
                    self.file = outer;
                    node?
                }
                Item::Bls(e) => self.bls_entry(e, vars)?,
                Item::Sub { title, id, body, file } => {
                    let inner = format!("{path}{}>", id.as_deref().unwrap_or(&title));
                    let (outer, saved) = (core::mem::replace(&mut self.file, file), core::mem::take(&mut self.saves));
                    let children = self.menu(body, vars, depth + 1, &inner);
                    self.file = outer;
                    let saves = core::mem::replace(&mut self.saves, saved);
                    Node::Sub { title, id, children: children?, saves }
                }
            });
        }
        if depth > 0 {
            vars.rollback(mark);
        }
        Ok(nodes)
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        title: String,
        id: Option<String>,
        body: &'a [Stmt],
        line: usize,
        vars: &mut Vars,
        depth: usize,
        chosen: String,
    ) -> Result<Node, ConfigError> {
        let mark = vars.mark();
        let mut boot = Boot::default();
        // As GRUB does before it runs an entry (savedefault saves it).
        vars.set("chosen", chosen, &self.file, line)?;
        let hops = self.hops;
        self.run(body, vars, &mut Mode::Entry(&mut boot), depth + 1)?;
        if let Some((next, body)) = self.configfile.take() {
            // An entry that opens another menu (snapper's snapshot
            // entries): a submenu of that file's entries, its
            // `configfile` chain bounded on its own.
            let r = self.nested_menu(next, body, vars, depth);
            self.hops = hops;
            vars.rollback(mark);
            let (children, saves) = r?;
            return Ok(Node::Sub { title, id, children, saves });
        }
        vars.rollback(mark);
        if boot.initrd_subvols.iter().any(|s| *s != boot.subvol) {
            boot.not_linux.get_or_insert_with(|| INITRD_ELSEWHERE.into());
        }
        Ok(match (boot.not_linux, boot.linux) {
            (Some(why), _) => Node::Other { title, id, why },
            (None, None) => Node::Other { title, id, why: "it has no linux command".into() },
            (None, Some((linux, options))) => Node::Linux(BootEntry {
                title,
                id,
                version: None,
                linux,
                initrds: boot.initrds,
                options,
                source: Source { format: Format::Grub, file: self.file.clone(), line },
                saves: boot.saves,
                submenu: None,
                subvol: boot.subvol,
            }),
        })
    }

    /// A BLS entry as Fedora's `blscfg` makes it a menu entry: its fields
    /// are GRUB words there, so `$var` is expanded and initrd fields split.
    fn bls_entry(&mut self, e: &BlsEntry, vars: &Vars) -> Result<Node, ConfigError> {
        let Some(mut entry) = e.boot_entry() else {
            let why = e.not_linux.clone().unwrap_or_default();
            return Ok(Node::Other { title: e.title().to_string(), id: Some(e.id.clone()), why });
        };
        let line = entry.source.line;
        let linux = self.bls_words(e, line, &entry.linux, vars)?;
        entry.linux = match linux.as_slice() {
            [one] if !one.is_empty() => {
                let (path, subvol) = self.locate(one, vars, line)?;
                entry.subvol = subvol;
                path
            }
            _ => {
                let why = format!("linux {:?} is not one path", entry.linux);
                return Err(ConfigError::new(&e.file, line, Problem::Syntax(why)));
            }
        };
        let mut initrds = Vec::new();
        for i in &entry.initrds {
            for w in self.bls_words(e, line, i, vars)? {
                let (path, subvol) = self.locate(&w, vars, line)?;
                if subvol != entry.subvol {
                    let why = INITRD_ELSEWHERE.into();
                    return Ok(Node::Other { title: e.title().to_string(), id: Some(e.id.clone()), why });
                }
                initrds.push(path);
            }
        }
        entry.initrds = initrds;
        entry.options = self.bls_words(e, line, &entry.options, vars)?.join(" ");
        Ok(Node::Linux(entry))
    }

    /// A BLS field's words, errors naming the BLS file.
    fn bls_words(&mut self, e: &BlsEntry, line: usize, field: &str, vars: &Vars) -> Result<Vec<String>, ConfigError> {
        let relocate = |x: ConfigError| ConfigError { file: e.file.clone(), line, ..x };
        let mut out = Vec::new();
        for t in lex(&e.file, field).map_err(relocate)? {
            match t {
                Tok::Word(w, _) => out.extend(self.expand(&w, vars, line).map_err(relocate)?),
                _ => return Err(relocate(self.err(line, Problem::syntax("; or a brace in a BLS field")))),
            }
        }
        Ok(out)
    }

    fn run(&mut self, stmts: &'a [Stmt], vars: &mut Vars, mode: &mut Mode<'_, 'a>, depth: usize) -> Result<(), ConfigError> {
        if depth > MAX_DEPTH {
            return Err(self.err(0, Problem::TooComplex("blocks or function calls nested too deeply")));
        }
        for s in stmts {
            if self.configfile.is_some() {
                break;
            }
            match s {
                Stmt::Cmd { words, line } => self.command(words, *line, vars, mode, depth)?,
                Stmt::If { arms, otherwise } => self.if_(s, arms, otherwise, vars, mode, depth)?,
                Stmt::Function { name, body } => {
                    self.functions.define(name, body);
                }
                Stmt::Menu { submenu, args, body, line } => self.define(*submenu, args, body, *line, vars, mode)?,
            }
        }
        Ok(())
    }

    /// `menuentry` / `submenu`: an item whose body runs later.
    #[allow(clippy::too_many_arguments)]
    fn define(
        &mut self,
        submenu: bool,
        args: &[Word],
        body: &'a [Stmt],
        line: usize,
        vars: &Vars,
        mode: &mut Mode<'_, 'a>,
    ) -> Result<(), ConfigError> {
        let Mode::Menu(items) = mode else {
            return Err(self.err(line, Problem::unsupported("a menuentry or submenu inside a menuentry")));
        };
        self.items += 1;
        if self.items > MAX_ENTRIES {
            return Err(self.err(line, Problem::TooComplex("too many menu entries")));
        }
        let (title, id) = self.menu_args(args, vars, line)?;
        let file = self.file.clone();
        if submenu {
            items.push(Item::Sub { title, id, body, file });
        } else {
            items.push(Item::Entry { title, id, body, line, file });
        }
        Ok(())
    }

    /// `menuentry TITLE [--class C]… [--users U] [--unrestricted]
    /// [--hotkey K] [--id ID] [ARG…]`: the title and id.
    fn menu_args(&mut self, args: &[Word], vars: &Vars, line: usize) -> Result<(String, Option<String>), ConfigError> {
        let mut words = Vec::new();
        for w in args {
            words.extend(self.expand(w, vars, line)?);
        }
        let (mut title, mut id, mut options) = (None, None, true);
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            // As GRUB's argument parser: a word starting with `-` is an
            // option, `--` ends them.
            let option = options && w.len() > 1 && w.starts_with('-');
            // `--hotkey=1` (openSUSE's) as well as `--hotkey 1`.
            let (name, inline) = match w.split_once('=') {
                Some((n, v)) if option && n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (w.clone(), None),
            };
            match name.as_str() {
                "--" if options => options = false,
                "--class" | "--users" | "--hotkey" | "--source" if option && inline.is_none() => {
                    it.next();
                }
                "--class" | "--users" | "--hotkey" | "--source" if option => {}
                "--id" if option => id = inline.or_else(|| it.next()),
                "--unrestricted" if option => {}
                o if option => return Err(self.err(line, Problem::Unknown(format!("menuentry option {o:?}")))),
                _ if title.is_none() => title = Some(w),
                _ => {} // arguments for the body ($1, …); grub-mkconfig passes none
            }
        }
        match title {
            Some(t) => Ok((t, id)),
            None => Err(self.err(line, Problem::syntax("menuentry without a title"))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn if_(
        &mut self,
        whole: &'a Stmt,
        arms: &'a [(Vec<Stmt>, Vec<Stmt>)],
        otherwise: &'a [Stmt],
        vars: &mut Vars,
        mode: &mut Mode<'_, 'a>,
        depth: usize,
    ) -> Result<(), ConfigError> {
        for (cond, body) in arms {
            match self.condition(cond, vars)? {
                Some(true) => return self.run(body, vars, mode, depth + 1),
                Some(false) => continue,
                None if self.inert(core::slice::from_ref(whole), 0) => return Ok(()),
                None => {
                    let (text, line) = describe(cond);
                    let why = format!("the condition {text:?} cannot be evaluated, and the if around it sets up more than GRUB itself");
                    return Err(self.err(line, Problem::Unsupported(why)));
                }
            }
        }
        self.run(otherwise, vars, mode, depth + 1)
    }

    /// Evaluate an `if`'s condition: `Some` when understood.
    fn condition(&mut self, cond: &[Stmt], vars: &Vars) -> Result<Option<bool>, ConfigError> {
        let [Stmt::Cmd { words, line }] = cond else { return Ok(None) };
        let line = *line;
        self.step(line)?;
        let name = words.first().and_then(Word::literal).unwrap_or("");
        if self.functions.get(name).is_some() {
            return Ok(None);
        }
        let mut args = Vec::new();
        for w in words.iter().skip(1) {
            match self.expand(w, vars, line) {
                Ok(v) => args.extend(v),
                Err(e) if matches!(e.what, Problem::Unsupported(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(match name {
            "true" => Some(true),
            "false" => Some(false),
            "test" => self.test(&args, vars),
            "[" if args.last().map(String::as_str) == Some("]") => {
                args.pop();
                self.test(&args, vars)
            }
            _ => None,
        })
    }

    /// GRUB's `test`: `-o` of `-a` of primaries.
    fn test(&mut self, args: &[String], vars: &Vars) -> Option<bool> {
        let mut any_unknown = false;
        for alt in args.split(|a| a == "-o") {
            let mut all = Some(true);
            for prim in alt.split(|a| a == "-a") {
                match self.primary(prim, vars) {
                    Some(true) => {}
                    Some(false) => {
                        all = Some(false);
                        break;
                    }
                    None => all = None,
                }
            }
            match all {
                Some(true) => return Some(true),
                Some(false) => {}
                None => any_unknown = true,
            }
        }
        if any_unknown {
            None
        } else {
            Some(false)
        }
    }

    fn primary(&mut self, a: &[String], vars: &Vars) -> Option<bool> {
        let num = |s: &str| s.trim().parse::<i64>().ok();
        match a {
            [] => Some(false),
            [not, rest @ ..] if not == "!" => self.primary(rest, vars).map(|b| !b),
            [s] => Some(!s.is_empty()),
            [op, s] => match op.as_str() {
                "-n" => Some(!s.is_empty()),
                "-z" => Some(s.is_empty()),
                "-e" | "-f" | "-s" => self.file_test(s, vars, false),
                "-d" => self.file_test(s, vars, true),
                _ => None,
            },
            [x, op, y] => match op.as_str() {
                "=" | "==" => Some(x == y),
                "!=" => Some(x != y),
                "-eq" => Some(num(x)? == num(y)?),
                "-ne" => Some(num(x)? != num(y)?),
                "-lt" => Some(num(x)? < num(y)?),
                "-le" => Some(num(x)? <= num(y)?),
                "-gt" => Some(num(x)? > num(y)?),
                "-ge" => Some(num(x)? >= num(y)?),
                _ => None,
            },
            _ => None,
        }
    }

    /// `[ -f PATH ]` and friends, for paths on this filesystem.
    fn file_test(&mut self, path: &str, vars: &Vars, dir: bool) -> Option<bool> {
        let p = self.fs_path(path, vars, 0).ok()?;
        if dir {
            return (p == self.dir || p == "/").then_some(true);
        }
        if p == format!("{}/grubenv", self.dir) {
            return Some(self.env.is_some());
        }
        let (p, subvol) = self.locate(&p, vars, 0).ok()?;
        self.host.exists(&p, &subvol)
    }

    /// Can `stmts` be skipped without changing anything hvmlite uses?
    /// Counts against the step budget (function bodies are looked into).
    fn inert(&mut self, stmts: &[Stmt], depth: usize) -> bool {
        depth <= MAX_DEPTH
            && stmts.iter().all(|s| match s {
                Stmt::Cmd { words, .. } => self.inert_command(words, depth),
                Stmt::If { arms, otherwise } => {
                    arms.iter().all(|(_, body)| self.inert(body, depth + 1)) && self.inert(otherwise, depth + 1)
                }
                Stmt::Function { .. } => false,
                Stmt::Menu { .. } => false,
            })
    }

    fn inert_command(&mut self, words: &[Word], depth: usize) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return false;
        }
        let assigns_grub_only = |w: &Word| assigned(w).is_some_and(|n| GRUB_ONLY_VARS.contains(&n));
        let Some(first) = words.first() else { return true };
        if words.len() == 1 && assigned(first).is_some() {
            return assigns_grub_only(first);
        }
        let Some(name) = first.literal() else { return false };
        if let Some(body) = self.functions.get(name) {
            return self.inert(body, depth + 1);
        }
        match name {
            "set" => words[1..].iter().all(assigns_grub_only),
            _ => PREPARATION.contains(&name),
        }
    }

    fn step(&mut self, line: usize) -> Result<(), ConfigError> {
        self.steps += 1;
        if self.steps > MAX_STEPS || self.expanded > MAX_EXPANDED {
            return Err(self.err(line, Problem::TooComplex("too many commands run")));
        }
        Ok(())
    }

    fn command(&mut self, words: &[Word], line: usize, vars: &mut Vars, mode: &mut Mode<'_, 'a>, depth: usize) -> Result<(), ConfigError> {
        self.step(line)?;
        let Some(first) = words.first() else { return Ok(()) };
        if words.len() == 1 && assigned(first).is_some() {
            return self.assign(first, line, vars);
        }
        let Some(name) = first.literal().map(str::to_string) else {
            return Err(self.err(line, Problem::Unsupported(format!("a command name that is not plain text: {:?}", first.raw))));
        };
        if let Some(body) = self.functions.get(&name) {
            return self.call(body, &words[1..], line, vars, mode, depth);
        }
        match name.as_str() {
            "set" => words[1..].iter().try_for_each(|w| self.assign(w, line, vars)),
            "unset" => {
                for w in &words[1..] {
                    for n in self.expand(w, vars, line)? {
                        vars.put(&n, None, &self.file, line)?;
                    }
                }
                Ok(())
            }
            "load_env" => self.load_env(&words[1..], line, vars),
            "search" | "search.fs_uuid" | "search.fs_label" | "search.file" | "probe" => self.search(&words[1..], line, vars),
            "blscfg" => self.blscfg(words, line, mode),
            "btrfs-mount-subvol" => self.mount_subvol(&words[1..], line, vars),
            // A query; its answer ($?) stays unknown.
            "fwsetup" if words.len() == 2 && words[1].literal() == Some("--is-supported") => Ok(()),
            "linux" | "linux16" | "linuxefi" => self.linux(&words[1..], line, vars, mode),
            "initrd" | "initrd16" | "initrdefi" => self.initrd(&words[1..], line, vars, mode),
            "source" | "." => self.source(&words[1..], line, vars, mode, depth, false),
            "configfile" => self.source(&words[1..], line, vars, mode, depth, true),
            "normal" | "extract_entries_source" | "extract_entries_configfile" => {
                Err(self.err(line, Problem::Unsupported(format!("{name}: hvmlite runs grub.cfg and what it sources"))))
            }
            "save_env" => self.save_env(&words[1..], line, vars, mode),
            "export" => {
                for w in &words[1..] {
                    let names = self.expand(w, vars, line)?;
                    self.exported.extend(names);
                }
                Ok(())
            }
            "increment" | "decrement" => {
                for w in &words[1..] {
                    for n in self.expand(w, vars, line)? {
                        // A value that is not a number is left as it is
                        // (GRUB's command fails and the script goes on).
                        if let Ok(v) = vars.text(&n).parse::<i64>() {
                            let v = if name == "increment" { v.saturating_add(1) } else { v.saturating_sub(1) };
                            vars.set(&n, format!("{v}"), &self.file, line)?;
                        }
                    }
                }
                Ok(())
            }
            n if PREPARATION.contains(&n) => Ok(()),
            n if NOT_LINUX.contains(&n) => match mode {
                Mode::Entry(boot) => {
                    boot.not_linux.get_or_insert_with(|| format!("it runs {n}"));
                    Ok(())
                }
                Mode::Menu(_) => Err(self.err(line, Problem::Unsupported(format!("{n} outside a menuentry")))),
            },
            n => Err(self.err(line, Problem::Unknown(format!("command {n:?}")))),
        }
    }

    /// `NAME=VALUE` (alone or after `set`).
    fn assign(&mut self, w: &Word, line: usize, vars: &mut Vars) -> Result<(), ConfigError> {
        let text = self.expand(w, vars, line)?.join(" ");
        let Some((name, value)) = text.split_once('=') else {
            return Ok(()); // `set NAME` prints it
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(self.err(line, Problem::Syntax(format!("{name:?} is not a variable name"))));
        }
        if name == "default" {
            self.default_line = line;
            self.default_file.clone_from(&self.file);
        }
        vars.set(name, value.to_string(), &self.file, line)
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        body: &'a [Stmt],
        args: &[Word],
        line: usize,
        vars: &mut Vars,
        mode: &mut Mode<'_, 'a>,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let mut values = Vec::new();
        for w in args {
            values.extend(self.expand(w, vars, line)?);
        }
        // Positional parameters, restored afterwards; other assignments
        // stay, as in GRUB.
        let saved: Vec<(String, Option<Val>)> = (1..=values.len().max(9))
            .map(|i| format!("{i}"))
            .chain(["#".into()])
            .map(|n| {
                let v = vars.get(&n).cloned();
                (n, v)
            })
            .collect();
        for (i, v) in values.iter().enumerate() {
            vars.set(&format!("{}", i + 1), v.clone(), &self.file, line)?;
        }
        for i in values.len() + 1..=9 {
            vars.put(&format!("{i}"), None, &self.file, line)?;
        }
        vars.set("#", format!("{}", values.len()), &self.file, line)?;
        self.run(body, vars, mode, depth + 1)?;
        for (n, v) in saved {
            vars.put(&n, v, &self.file, line)?;
        }
        Ok(())
    }

    /// `source FILE` runs FILE here (variables and menu shared);
    /// `configfile FILE` (`replace`) makes FILE's menu the menu. A file
    /// that is not there is skipped, as GRUB reports it and goes on.
    #[allow(clippy::too_many_arguments)]
    fn source(
        &mut self,
        args: &[Word],
        line: usize,
        vars: &mut Vars,
        mode: &mut Mode<'_, 'a>,
        depth: usize,
        replace: bool,
    ) -> Result<(), ConfigError> {
        let mut words = Vec::new();
        for w in args {
            words.extend(self.expand(w, vars, line)?);
        }
        let [name] = words.as_slice() else {
            return Err(self.err(line, Problem::syntax("source or configfile takes one file")));
        };
        let path = self.fs_path(name, vars, line)?;
        if self.sources + self.hops >= MAX_SOURCE_DEPTH {
            let why = "source or configfile nested more than 8 deep (a file that sources itself?)";
            return Err(self.err(line, Problem::TooComplex(why)));
        }
        let (at, subvol) = self.locate(&path, vars, line)?;
        let Some(text) = self.host.read(&at, &subvol)? else { return Ok(()) };
        self.sourced += text.len();
        if self.sourced > MAX_SOURCED {
            return Err(self.err(line, Problem::TooComplex("source and configfile read too much")));
        }
        let body: &'a [Stmt] = self.arena.alloc(script(&path, &text)?);
        if replace {
            self.hops += 1;
            self.configfile = Some((path, body));
            return Ok(());
        }
        let outer = core::mem::replace(&mut self.file, path);
        self.sources += 1;
        let r = self.run(body, vars, mode, depth + 1);
        self.sources -= 1;
        self.file = outer;
        r
    }

    /// `save_env [-f FILE] NAME…`: each NAME's value now, for the caller
    /// to write into grubenv. A save into another file is not made (only
    /// grubenv next to grub.cfg is ever written), nor one of a value
    /// hvmlite cannot know.
    fn save_env(&mut self, args: &[Word], line: usize, vars: &Vars, mode: &mut Mode<'_, 'a>) -> Result<(), ConfigError> {
        let mut words = Vec::new();
        for w in args {
            words.extend(self.expand(w, vars, line)?);
        }
        let mut names = Vec::new();
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            match w.as_str() {
                "-f" | "--file" => {
                    let f = it.next().unwrap_or_default();
                    if self.fs_path(&f, vars, line)? != format!("{}/grubenv", self.dir) {
                        return Ok(());
                    }
                }
                _ if w.starts_with('-') => return Err(self.err(line, Problem::Unknown(format!("save_env option {w:?}")))),
                _ => names.push(w),
            }
        }
        for n in names {
            let value = match vars.get(&n) {
                Some(Val::Known(v)) => Some(v.clone()),
                Some(Val::Unknown(_)) => continue,
                None => None,
            };
            match mode {
                Mode::Entry(boot) => boot.saves.push((n, value)),
                Mode::Menu(_) => self.saves.push((n, value)),
            }
        }
        Ok(())
    }

    /// `load_env [-f FILE] [--skip-sig] [NAME…]`: the grubenv next to
    /// grub.cfg (no other file is read); nothing when there is none.
    fn load_env(&mut self, args: &[Word], line: usize, vars: &mut Vars) -> Result<(), ConfigError> {
        let mut words = Vec::new();
        for w in args {
            words.extend(self.expand(w, vars, line)?);
        }
        let mut file = None;
        let mut names = Vec::new();
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            match w.as_str() {
                "-f" | "--file" => file = it.next(),
                "-s" | "--skip-sig" => {}
                _ if w.starts_with("--file=") => file = Some(w["--file=".len()..].to_string()),
                _ if w.starts_with('-') => return Err(self.err(line, Problem::Unknown(format!("load_env option {w:?}")))),
                _ => names.push(w),
            }
        }
        let ours = format!("{}/grubenv", self.dir);
        if let Some(f) = file {
            if self.fs_path(&f, vars, line)? != ours {
                return Err(self.err(line, Problem::Unsupported(format!("load_env from {f:?}; hvmlite reads only {ours}"))));
            }
        }
        let Some(env) = self.env else { return Ok(()) };
        for (n, v) in &env.vars {
            if names.is_empty() || names.contains(n) {
                vars.set(n, v.clone(), &self.file, line)?;
            }
        }
        Ok(())
    }

    /// `search … --set=VAR`: VAR becomes a device hvmlite cannot know,
    /// except `root`, which means this filesystem and keeps its name.
    fn search(&mut self, args: &[Word], line: usize, vars: &mut Vars) -> Result<(), ConfigError> {
        let raw: Vec<&str> = args.iter().map(|w| w.literal().unwrap_or("")).collect();
        let mut set = None;
        for (i, a) in raw.iter().enumerate() {
            if let Some(v) = a.strip_prefix("--set=") {
                set = Some(v.to_string());
            } else if *a == "--set" || *a == "-s" {
                // `--set` takes a name only when one follows that is not an option.
                let next = raw.get(i + 1).filter(|n| !n.starts_with('-') && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                set = Some(next.map_or("root", |v| v).to_string());
            }
        }
        match set {
            Some(v) if v != "root" => vars.put(&v, Some(Val::Unknown(line)), &self.file, line),
            _ => Ok(()),
        }
    }

    fn blscfg(&mut self, words: &[Word], line: usize, mode: &mut Mode<'_, 'a>) -> Result<(), ConfigError> {
        let Mode::Menu(items) = mode else {
            return Err(self.err(line, Problem::unsupported("blscfg inside a menuentry")));
        };
        if words.len() > 1 {
            return Err(self.err(line, Problem::Unsupported(format!("blscfg options ({:?})", words[1].raw))));
        }
        let Some(bls) = self.bls else {
            let why = "blscfg, but there are no BLS entries in /loader/entries or /boot/loader/entries";
            return Err(self.err(line, Problem::syntax(why)));
        };
        self.items += bls.len();
        if self.items > MAX_ENTRIES {
            return Err(self.err(line, Problem::TooComplex("too many menu entries")));
        }
        items.extend(bls.iter().map(Item::Bls));
        Ok(())
    }

    fn linux(&mut self, args: &[Word], line: usize, vars: &Vars, mode: &mut Mode<'_, 'a>) -> Result<(), ConfigError> {
        let Mode::Entry(boot) = mode else {
            return Err(self.err(line, Problem::unsupported("linux outside a menuentry")));
        };
        let mut words = Vec::new();
        for w in args {
            words.extend(self.expand(w, vars, line)?);
        }
        let Some(path) = words.first() else {
            return Err(self.err(line, Problem::syntax("linux without a kernel")));
        };
        let (path, subvol) = self.locate(&self.fs_path(path, vars, line)?, vars, line)?;
        boot.linux = Some((path, words[1..].join(" ")));
        boot.subvol = subvol;
        Ok(())
    }

    fn initrd(&mut self, args: &[Word], line: usize, vars: &Vars, mode: &mut Mode<'_, 'a>) -> Result<(), ConfigError> {
        let Mode::Entry(boot) = mode else {
            return Err(self.err(line, Problem::unsupported("initrd outside a menuentry")));
        };
        let (mut paths, mut subvols) = (Vec::new(), Vec::new());
        for w in args {
            for p in self.expand(w, vars, line)? {
                if p.starts_with('-') {
                    return Err(self.err(line, Problem::Unknown(format!("initrd option {p:?}"))));
                }
                let (path, subvol) = self.locate(&self.fs_path(&p, vars, line)?, vars, line)?;
                paths.push(path);
                subvols.push(subvol);
            }
        }
        if paths.is_empty() {
            return Err(self.err(line, Problem::syntax("initrd without a file")));
        }
        boot.initrds = paths;
        boot.initrd_subvols = subvols;
        Ok(())
    }

    /// `configfile`'s new context for `next`: its own variables, with the
    /// exported ones, `root`, `prefix` and btrfs's carried over.
    fn carried(&self, vars: &Vars, next: &str) -> Result<Vars, ConfigError> {
        let mut fresh = Vars::default();
        fresh_vars(&mut fresh, next, super::parent(next).unwrap_or(""))?;
        let kept = ["root", "prefix"].iter().chain(&BTRFS_VARS).map(|n| n.to_string());
        for n in self.exported.iter().cloned().chain(kept).collect::<Vec<_>>() {
            if let Some(v) = vars.get(&n) {
                fresh.put(&n, Some(v.clone()), next, 0)?;
            }
        }
        Ok(fresh)
    }

    /// The menu a `configfile` run by an entry shows (and any it replaces
    /// itself with), with its own functions and `save_env`s.
    fn nested_menu(
        &mut self,
        mut next: String,
        mut body: &'a [Stmt],
        vars: &Vars,
        depth: usize,
    ) -> Result<(Vec<Node>, Vec<Save>), ConfigError> {
        let file = self.file.clone();
        let functions = core::mem::take(&mut self.functions);
        let saves = core::mem::take(&mut self.saves);
        let mut inner = self.carried(vars, &next);
        let menu = loop {
            let mut v = match inner {
                Ok(v) => v,
                Err(e) => break Err(e),
            };
            self.file.clone_from(&next);
            let m = self.menu(body, &mut v, depth + 1, "");
            match (m, self.configfile.take()) {
                (Ok(_), Some((n, b))) => {
                    inner = self.carried(&v, &n);
                    (next, body) = (n, b);
                }
                (m, _) => break m,
            }
        };
        (self.file, self.functions) = (file, functions);
        let inner_saves = core::mem::replace(&mut self.saves, saves);
        Ok((menu?, inner_saves))
    }

    /// Where a btrfs path starts now ([`Subvol`]): GRUB's patched btrfs
    /// module looks only at the first character of
    /// `btrfs_relative_path`, and at the subvolume variables only then.
    fn subvol(&self, vars: &Vars, line: usize) -> Result<Subvol, ConfigError> {
        if !vars.text("btrfs_relative_path").starts_with(['y', '1']) {
            return Ok(Subvol::Top);
        }
        let (path, id) = (vars.text("btrfs_subvol"), vars.text("btrfs_subvolid"));
        if !path.is_empty() {
            return Ok(Subvol::Path(path.to_string()));
        }
        if id.is_empty() {
            return Ok(Subvol::Default);
        }
        match id.parse::<u64>() {
            Ok(n) => Ok(Subvol::Id(n)),
            Err(_) => Err(self.err(line, Problem::Syntax(format!("btrfs_subvolid={id:?} is not a subvolume id")))),
        }
    }

    /// A path on this filesystem as GRUB's patched btrfs module opens it:
    /// with `btrfs_relative_path` on, under a `btrfs-mount-subvol`
    /// directory (the longest that matches) it is the rest of the path in
    /// that subvolume; else where [`Run::subvol`] says.
    fn locate(&self, path: &str, vars: &Vars, line: usize) -> Result<(String, Subvol), ConfigError> {
        let subvol = self.subvol(vars, line)?;
        if subvol == Subvol::Top {
            return Ok((path.to_string(), subvol));
        }
        let under = |dir: &str| match path.strip_prefix(dir) {
            Some("") => Some("/".to_string()),
            Some(rest) if rest.starts_with('/') => Some(rest.to_string()),
            _ => None,
        };
        let best = self.mounts.iter().filter_map(|(dir, sv)| Some((dir.len(), under(dir)?, sv))).max_by_key(|m| m.0);
        Ok(match best {
            Some((_, rest, sv)) => (rest, Subvol::Path(sv.clone())),
            None => (path.to_string(), subvol),
        })
    }

    /// `btrfs-mount-subvol DEVICE DIRECTORY SUBVOL` (openSUSE's and
    /// Fedora's GRUB): paths under DIRECTORY are in SUBVOL from now on,
    /// when `btrfs_relative_path` is on.
    fn mount_subvol(&mut self, args: &[Word], line: usize, vars: &Vars) -> Result<(), ConfigError> {
        let mut words = Vec::new();
        for w in args {
            words.extend(self.expand(w, vars, line)?);
        }
        let [dev, dir, subvol] = words.as_slice() else {
            return Err(self.err(line, Problem::syntax("btrfs-mount-subvol takes a device, a directory and a subvolume")));
        };
        let dir = self.fs_path(&format!("{dev}{dir}"), vars, line)?;
        let dir = dir.trim_end_matches('/').to_string();
        self.mounts.retain(|(d, _)| *d != dir);
        if self.mounts.len() >= MAX_MOUNTS {
            return Err(self.err(line, Problem::TooComplex("more than 64 btrfs-mount-subvol")));
        }
        self.mounts.push((dir, subvol.clone()));
        Ok(())
    }

    /// A GRUB file name as a path on this filesystem: `(DEVICE)/path` is
    /// accepted when DEVICE is `$root` (or empty), any other device is an
    /// error; the path must be absolute.
    fn fs_path(&self, name: &str, vars: &Vars, line: usize) -> Result<String, ConfigError> {
        let path = match name.strip_prefix('(') {
            Some(rest) => {
                let Some((dev, path)) = rest.split_once(')') else {
                    return Err(self.err(line, Problem::Syntax(format!("{name:?}: a device without )"))));
                };
                let root = vars.text("root");
                if !dev.is_empty() && dev != root {
                    let why = format!("{name:?} is on device ({dev}), not on the one grub.cfg is on (root={root:?})");
                    return Err(self.err(line, Problem::Unsupported(why)));
                }
                path
            }
            None => name,
        };
        if !path.starts_with('/') {
            return Err(self.err(line, Problem::Syntax(format!("{name:?} is not an absolute path"))));
        }
        Ok(path.to_string())
    }

    /// A word's value: zero or more words (unquoted variables split at
    /// whitespace; an unquoted empty variable vanishes).
    fn expand(&mut self, w: &Word, vars: &Vars, line: usize) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut started = false;
        for p in &w.pieces {
            let (value, split) = match p {
                Piece::Lit(s) => (s.as_str(), false),
                Piece::Var(n) | Piece::QVar(n) => {
                    let v = match vars.get(n) {
                        Some(Val::Known(v)) => v.as_str(),
                        Some(Val::Unknown(at)) => {
                            let why = format!("${n} is set by a search or probe at line {at}, which hvmlite cannot run");
                            return Err(self.err(line, Problem::Unsupported(why)));
                        }
                        None if n == "?" => return Err(self.err(line, Problem::unsupported("$? (a command's status)"))),
                        None => "",
                    };
                    (v, matches!(p, Piece::Var(_)))
                }
            };
            self.expanded += value.len();
            if !split {
                cur.push_str(value);
                started = true;
                continue;
            }
            let mut fields = value.split([' ', '\t', '\n']);
            if let Some(first) = fields.next() {
                cur.push_str(first);
                started |= !first.is_empty();
            }
            for f in fields {
                if started {
                    out.push(core::mem::take(&mut cur));
                }
                cur.push_str(f);
                started = !f.is_empty();
            }
        }
        if started {
            out.push(cur);
        }
        let total: usize = out.iter().map(String::len).sum();
        if total > MAX_VAR_BYTES || self.expanded > MAX_EXPANDED {
            return Err(self.err(line, Problem::TooComplex("a word expands to too much")));
        }
        Ok(out)
    }

    /// The index among the flattened Linux entries of GRUB's default.
    fn default(&self, menu: &[Node], vars: &Vars) -> Result<usize, ConfigError> {
        let mut value = vars.text("default").to_string();
        if value == "saved" {
            value = vars.text("saved_entry").to_string();
        }
        if value.is_empty() {
            value.push('0');
        }
        let line = self.default_line;
        let err = |what| ConfigError::new(&self.default_file, line, what);
        let none = || err(Problem::NoSuchDefault(value.clone()));
        let (mut level, mut offset) = (menu, 0);
        let mut parts = value.split('>').peekable();
        while let Some(part) = parts.next() {
            let at = if is_index(part) {
                part.parse::<usize>().ok().filter(|&i| i < level.len())
            } else {
                level.iter().position(|n| {
                    let (title, id) = n.names();
                    id == Some(part) || title == part
                })
            };
            let at = at.ok_or_else(none)?;
            offset += count_linux(&level[..at]);
            match (&level[at], parts.peek()) {
                (Node::Sub { children, .. }, Some(_)) => level = children,
                (Node::Linux(_), None) => return Ok(offset),
                (Node::Other { title, why, .. }, None) => return Err(err(Problem::NotLinux { title: title.clone(), why: why.clone() })),
                (Node::Sub { title, .. }, None) => {
                    let why = "it is a submenu; name an entry inside it (\"A>B\")".to_string();
                    return Err(err(Problem::NotLinux { title: title.clone(), why }));
                }
                (_, Some(_)) => return Err(none()),
            }
        }
        Err(none())
    }
}

fn count_linux(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| match n {
            Node::Linux(_) => 1,
            Node::Sub { children, .. } => count_linux(children),
            Node::Other { .. } => 0,
        })
        .sum()
}

/// The variable a `NAME=value` word assigns: `NAME` must be plain text.
fn assigned(w: &Word) -> Option<&str> {
    let Some(Piece::Lit(s)) = w.pieces.first() else { return None };
    let (name, _) = s.split_once('=')?;
    let ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    // The name itself unquoted: `'a=b'` is a command name.
    (ident && !w.raw.starts_with(['\'', '"'])).then_some(name)
}

/// An `if` condition as text, with its line, for messages.
fn describe(cond: &[Stmt]) -> (String, usize) {
    match cond.first() {
        Some(Stmt::Cmd { words, line }) => {
            let mut text = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(&w.raw);
            }
            (text, *line)
        }
        _ => (String::from("(a compound condition)"), 0),
    }
}

/// The Linux entries in menu order, submenus flattened; an entry's saves
/// follow those of the submenus it is in (`outer`).
fn flatten(nodes: &[Node], outer: &[Save], submenu: Option<&str>, out: &mut Vec<BootEntry>) {
    for n in nodes {
        match n {
            Node::Linux(e) => {
                let mut e = e.clone();
                if !outer.is_empty() {
                    e.saves.splice(0..0, outer.iter().cloned());
                }
                e.submenu = submenu.map(String::from);
                out.push(e);
            }
            Node::Sub { children, saves, title, .. } => {
                let mut all = outer.to_vec();
                all.extend(saves.iter().cloned());
                let inner = match submenu {
                    Some(s) => format!("{s}>{title}"),
                    None => title.clone(),
                };
                flatten(children, &all, Some(&inner), out);
            }
            Node::Other { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testfs::MemFs;
    use super::super::{find, Error, Format, Why};
    use super::*;

    const UUID: &str = "8d0b3a2e-4f0e-4d3c-9d8e-2b7f1c3a6e11";

    /// `grub-mkconfig`'s header (00_header) as Debian 12 writes it.
    fn debian_header(default: &str) -> String {
        format!(
            r#"#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${{next_entry}}" ] ; then
   set default="${{next_entry}}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="{default}"
fi

if [ x"${{feature_menuentry_id}}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

if [ "${{prev_saved_entry}}" ]; then
  set saved_entry="${{prev_saved_entry}}"
  save_env saved_entry
  set prev_saved_entry=
  save_env prev_saved_entry
  set boot_once=true
fi

function savedefault {{
  if [ -z "${{boot_once}}" ]; then
    saved_entry="${{chosen}}"
    save_env saved_entry
  fi
}}
function load_video {{
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
}}

if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
insmod part_gpt
insmod ext2
set root='hd0,gpt2'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  {UUID}
else
  search --no-floppy --fs-uuid --set=root {UUID}
fi
    font="/usr/share/grub/unicode.pf2"
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
if [ "${{timeout}}" = 0 ]; then
  set timeout=10
fi
if [ x$feature_timeout_style = xy ] ; then
  set timeout_style=menu
  set timeout=5
# Fallback normal timeout code in case the timeout_style feature is
# unavailable.
else
  set timeout=5
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/05_debian_theme ###
insmod part_gpt
insmod ext2
set root='hd0,gpt2'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  {UUID}
else
  search --no-floppy --fs-uuid --set=root {UUID}
fi
insmod png
if background_image /usr/share/desktop-base/emerald-theme/grub/grub-4x3.png; then
  set color_normal=white/black
  set color_highlight=black/white
else
  set menu_color_normal=cyan/blue
  set menu_color_highlight=white/blue
fi
### END /etc/grub.d/05_debian_theme ###
"#
        )
    }

    /// One kernel's menuentry as Debian's 10_linux writes it.
    fn debian_entry(title: &str, id: &str, version: &str, extra: &str, indent: &str) -> String {
        let body = format!(
            "\tload_video\n\tinsmod gzio\n\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n\
             \tinsmod part_gpt\n\tinsmod ext2\n\tset root='hd0,gpt2'\n\
             \tif [ x$feature_platform_search_hint = xy ]; then\n\
             \t  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  {UUID}\n\
             \telse\n\t  search --no-floppy --fs-uuid --set=root {UUID}\n\tfi\n\
             \techo\t'Loading Linux {version} ...'\n\
             \tlinux\t/boot/vmlinuz-{version} root=UUID={UUID} ro {extra}\n\
             \techo\t'Loading initial ramdisk ...'\n\
             \tinitrd\t/boot/initrd.img-{version}\n"
        );
        let body: String = body.lines().map(|l| format!("{indent}{l}\n")).collect();
        format!(
            "{indent}menuentry '{title}' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{\n{body}{indent}}}\n"
        )
    }

    fn debian12(default: &str) -> String {
        let mut s = debian_header(default);
        s += "### BEGIN /etc/grub.d/10_linux ###\n";
        s += "function gfxmode {\n\tset gfxpayload=\"${1}\"\n}\nset linux_gfx_mode=\nexport linux_gfx_mode\n";
        s += &debian_entry("Debian GNU/Linux", &format!("gnulinux-simple-{UUID}"), "6.1.0-13-amd64", " quiet", "");
        s += &format!("submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-{UUID}' {{\n");
        for v in ["6.1.0-13-amd64", "6.1.0-12-amd64"] {
            let adv = format!("gnulinux-{v}-advanced-{UUID}");
            let rec = format!("gnulinux-{v}-recovery-{UUID}");
            s += &debian_entry(&format!("Debian GNU/Linux, with Linux {v}"), &adv, v, " quiet", "\t");
            s += &debian_entry(&format!("Debian GNU/Linux, with Linux {v} (recovery mode)"), &rec, v, "single ", "\t");
        }
        s += "}\n\n### END /etc/grub.d/10_linux ###\n\n";
        s += &format!(
            "### BEGIN /etc/grub.d/20_linux_xen ###\n\
             menuentry 'Debian GNU/Linux, with Xen hypervisor' --class debian --class gnu-linux --class gnu --class os --class xen $menuentry_id_option 'xen-gnulinux-simple-{UUID}' {{\n\
             \tinsmod part_gpt\n\tinsmod ext2\n\tset root='hd0,gpt2'\n\
             \tif [ \"$grub_platform\" = \"pc\" -o \"$grub_platform\" = \"\" ]; then\n\t    xen_rm_opts=\n\telse\n\t    xen_rm_opts=\"no-real-mode edd=off\"\n\tfi\n\
             \techo\t'Loading Xen 4.17-amd64 ...'\n\
             \tmultiboot2\t/boot/xen-4.17-amd64.gz placeholder   ${{xen_rm_opts}}\n\
             \techo\t'Loading Linux 6.1.0-13-amd64 ...'\n\
             \tmodule2\t/boot/vmlinuz-6.1.0-13-amd64 placeholder root=UUID={UUID} ro  quiet\n\
             \tmodule2\t--nounzip   /boot/initrd.img-6.1.0-13-amd64\n}}\n\
             ### END /etc/grub.d/20_linux_xen ###\n\n"
        );
        s += "### BEGIN /etc/grub.d/30_uefi-firmware ###\nif [ \"$grub_platform\" = \"efi\" ]; then\n\tfwsetup --is-supported\n\
              \tif [ \"$?\" = 0 ]; then\n\t\tmenuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {\n\t\t\tfwsetup\n\t\t}\n\tfi\nfi\n\
              ### END /etc/grub.d/30_uefi-firmware ###\n\n";
        s += "### BEGIN /etc/grub.d/40_custom ###\n# This file provides an easy way to add custom menu entries.  Simply type the\n\
              # menu entries you want to add after this comment.  Be careful not to change\n# the 'exec tail' line above.\n\
              ### END /etc/grub.d/40_custom ###\n\n### BEGIN /etc/grub.d/41_custom ###\n\
              if [ -f  ${config_directory}/custom.cfg ]; then\n  source ${config_directory}/custom.cfg\n\
              elif [ -z \"${config_directory}\" -a -f  $prefix/custom.cfg ]; then\n  source $prefix/custom.cfg\nfi\n\
              ### END /etc/grub.d/41_custom ###\n";
        s
    }

    fn run(cfg: &str, env: Option<&str>) -> Result<Menu, ConfigError> {
        let env = env.map(|t| Grubenv::parse("/boot/grub/grubenv", t).unwrap());
        parse("/boot/grub/grub.cfg", cfg, env.as_ref(), None, &mut |_: &str| Some(false))
    }

    fn grubenv(vars: &[&str]) -> String {
        let mut s = String::from("# GRUB Environment Block\n");
        for v in vars {
            s += v;
            s.push('\n');
        }
        while s.len() < 1024 {
            s.push('#');
        }
        s
    }

    #[test]
    fn debian12_default_index_into_a_submenu() {
        let m = run(&debian12("1>2"), None).unwrap();
        let titles: Vec<&str> = m.entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Debian GNU/Linux",
                "Debian GNU/Linux, with Linux 6.1.0-13-amd64",
                "Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)",
                "Debian GNU/Linux, with Linux 6.1.0-12-amd64",
                "Debian GNU/Linux, with Linux 6.1.0-12-amd64 (recovery mode)",
            ]
        );
        let e = &m.entries[m.default.clone().unwrap().unwrap()];
        assert_eq!(e.title, "Debian GNU/Linux, with Linux 6.1.0-12-amd64");
        assert_eq!(e.id.as_deref(), Some(format!("gnulinux-6.1.0-12-amd64-advanced-{UUID}").as_str()));
        assert_eq!(e.linux, "/boot/vmlinuz-6.1.0-12-amd64");
        assert_eq!(e.initrds, ["/boot/initrd.img-6.1.0-12-amd64"]);
        // GRUB passes the words joined by one space.
        assert_eq!(e.options, format!("root=UUID={UUID} ro quiet"));
        assert_eq!(m.entries[2].options, format!("root=UUID={UUID} ro single"));
        assert_eq!(e.source.format, Format::Grub);
        assert_eq!(run(&debian12("0"), None).unwrap().default, Ok(Some(0)));
    }

    #[test]
    fn debian12_default_by_title_and_by_id_path() {
        let m = run(&debian12("Debian GNU/Linux"), None).unwrap();
        assert_eq!(m.default, Ok(Some(0)));
        let by_id = format!("gnulinux-advanced-{UUID}>gnulinux-6.1.0-13-amd64-recovery-{UUID}");
        assert_eq!(run(&debian12(&by_id), None).unwrap().default, Ok(Some(2)));
        let by_title = "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-12-amd64 (recovery mode)";
        assert_eq!(run(&debian12(by_title), None).unwrap().default, Ok(Some(4)));
    }

    #[test]
    fn the_xen_entry_keeps_its_index_but_is_not_booted() {
        let e = run(&debian12("2"), None).unwrap().default.unwrap_err();
        assert_eq!(e.line, 19);
        assert_eq!(
            e.to_string(),
            "/boot/grub/grub.cfg:19: entry \"Debian GNU/Linux, with Xen hypervisor\" does not boot Linux: it runs multiboot2"
        );
    }

    #[test]
    fn a_default_that_names_nothing_is_a_clear_error() {
        for d in ["3", "1>7", "Ubuntu", "0>1"] {
            let e = run(&debian12(d), None).unwrap().default.unwrap_err();
            assert_eq!(e.to_string(), format!("/boot/grub/grub.cfg:19: the default {d:?} names no entry"));
        }
        let e = run(&debian12("1"), None).unwrap().default.unwrap_err();
        assert!(e.to_string().contains("it is a submenu"), "{e}");
    }

    #[test]
    fn next_entry_from_grubenv_wins_as_the_file_says() {
        let env = grubenv(&["next_entry=1>0"]);
        assert_eq!(run(&debian12("0"), Some(&env)).unwrap().default, Ok(Some(1)));
    }

    /// Ubuntu 22.04's grub.cfg with GRUB_DEFAULT=saved: `${saved_entry}`.
    fn ubuntu() -> String {
        let u = "5b3c5e9a-7f0d-4f51-8f0a-1f3c2a9d6b21";
        let entry = |title: &str, id: &str, v: &str, indent: &str| {
            format!(
                "{indent}menuentry '{title}' --class ubuntu --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{\n\
                 {indent}\trecordfail\n{indent}\tload_video\n{indent}\tgfxmode $linux_gfx_mode\n{indent}\tinsmod gzio\n\
                 {indent}\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n\
                 {indent}\tinsmod part_gpt\n{indent}\tinsmod ext4\n\
                 {indent}\tsearch --no-floppy --fs-uuid --set=root {u}\n\
                 {indent}\tlinux\t/boot/vmlinuz-{v} root=UUID={u} ro  quiet splash $vt_handoff\n\
                 {indent}\tinitrd\t/boot/initrd.img-{v}\n{indent}}}\n"
            )
        };
        let mut s = String::from(
            r#"### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${initrdfail}" = 2 ]; then
   set initrdfail=
elif [ "${initrdfail}" = 1 ]; then
   set next_entry="${prev_entry}"
   set prev_entry=
   save_env prev_entry
   if [ "${next_entry}" ]; then
      set initrdfail=2
   fi
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
function initrdfail {
    if [ -n "${have_grubenv}" ]; then if [ -n "${partuuid}" ]; then
      if [ -z "${initrdfail}" ]; then
        set initrdfail=1
        if [ -n "${boot_once}" ]; then
          set prev_entry="${default}"
          save_env prev_entry
        fi
      fi
      save_env initrdfail
    fi; fi
}
function recordfail {
  set recordfail=1
  if [ -n "${have_grubenv}" ]; then if [ -z "${boot_once}" ]; then save_env recordfail; fi; fi
}
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
    insmod vbe
  fi
}

if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
   font="/usr/share/grub/unicode.pf2"
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
if [ "${recordfail}" = 1 ] ; then
  set timeout=30
else
  if [ x$feature_timeout_style = xy ] ; then
    set timeout_style=hidden
    set timeout=0
  # Fallback hidden-timeout code in case the timeout_style feature is
  # unavailable.
  elif sleep --interruptible 0 ; then
    set timeout=0
  fi
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
function gfxmode {
	set gfxpayload="${1}"
	if [ "${1}" = "keep" ]; then
		set vt_handoff=vt.handoff=7
	else
		set vt_handoff=
	fi
}
if [ "${recordfail}" != 1 ]; then
  if [ -e ${prefix}/gfxblacklist.txt ]; then
    if [ ${grub_platform} != pc ]; then
      set linux_gfx_mode=keep
    elif hwmatch ${prefix}/gfxblacklist.txt 3; then
      if [ ${match} = 0 ]; then
        set linux_gfx_mode=keep
      else
        set linux_gfx_mode=text
      fi
    else
      set linux_gfx_mode=text
    fi
  else
    set linux_gfx_mode=keep
  fi
else
  set linux_gfx_mode=text
fi
export linux_gfx_mode
"#,
        );
        s += &entry("Ubuntu", &format!("gnulinux-simple-{u}"), "6.5.0-14-generic", "");
        s += &format!("submenu 'Advanced options for Ubuntu' $menuentry_id_option 'gnulinux-advanced-{u}' {{\n");
        for v in ["6.5.0-14-generic", "6.2.0-39-generic"] {
            s += &entry(&format!("Ubuntu, with Linux {v}"), &format!("gnulinux-{v}-advanced-{u}"), v, "\t");
        }
        s += "}\n### END /etc/grub.d/10_linux ###\n\n### BEGIN /etc/grub.d/30_uefi-firmware ###\n\
              menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {\n\tfwsetup\n}\n\
              ### END /etc/grub.d/30_uefi-firmware ###\n";
        s
    }

    #[test]
    fn ubuntu_saved_entry_from_grubenv() {
        let u = "5b3c5e9a-7f0d-4f51-8f0a-1f3c2a9d6b21";
        let saved = format!("saved_entry=gnulinux-advanced-{u}>gnulinux-6.2.0-39-generic-advanced-{u}");
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &ubuntu()), ("/boot/grub/grubenv", &grubenv(&[&saved]))]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.format, f.config.as_str(), f.why, f.entries.len()), (Format::Grub, "/boot/grub/grub.cfg", Why::Default, 3));
        let e = f.entry();
        assert_eq!(e.title, "Ubuntu, with Linux 6.2.0-39-generic");
        assert_eq!(e.linux, "/boot/vmlinuz-6.2.0-39-generic");
        // `gfxmode keep` (the file's own function) set $vt_handoff.
        assert_eq!(e.options, format!("root=UUID={u} ro quiet splash vt.handoff=7"));

        // No grubenv: ${saved_entry} is empty, which GRUB takes as 0.
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &ubuntu())]);
        assert_eq!(find(&mut fs, None).unwrap().selected, 0);

        // A stale saved_entry (the kernel was removed) names nothing: the
        // first entry boots, with a warning, as in GRUB.
        let env = grubenv(&["saved_entry=gnulinux-5.15.0-91-generic-advanced-x"]);
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &ubuntu()), ("/boot/grub/grubenv", &env)]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.selected, f.why), (0, Why::Fallback));
        let w = f.warning.unwrap().to_string();
        assert_eq!(w, "/boot/grub/grub.cfg:22: the default \"gnulinux-5.15.0-91-generic-advanced-x\" names no entry");
        // Ubuntu's entries call recordfail: GRUB saves recordfail=1
        // (cleared by the booted system once it is up).
        let w = f.grubenv.unwrap().unwrap();
        assert_eq!(w.changed, ["recordfail=1"]);
        assert_eq!(w.new.len(), 1024);
        assert!(w.new.starts_with(b"# GRUB Environment Block\nsaved_entry=gnulinux-5.15.0-91-generic-advanced-x\nrecordfail=1\n###"));
        // The override still works.
        assert_eq!(find(&mut fs, Some("2")).unwrap().entry().title, "Ubuntu, with Linux 6.2.0-39-generic");
    }

    /// Fedora 33's grub.cfg: the menu comes from BLS entries (`blscfg`),
    /// their options from grubenv's `$kernelopts`.
    const FEDORA_CFG: &str = r#"#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub2-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
set pager=1

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

terminal_output console
if [ x$feature_timeout_style = xy ] ; then
  set timeout_style=menu
  set timeout=5
# Fallback normal timeout code in case the timeout_style feature is
# unavailable.
else
  set timeout=5
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/01_users ###
if [ -f ${prefix}/user.cfg ]; then
  source ${prefix}/user.cfg
  if [ -n "${GRUB2_PASSWORD}" ]; then
    set superusers="root"
    export superusers
    password_pbkdf2 root ${GRUB2_PASSWORD}
  fi
fi
### END /etc/grub.d/01_users ###

### BEGIN /etc/grub.d/08_fallback_counting ###
insmod increment
# Check if boot_counter exists and boot_success=0 to activate this behaviour.
if [ -n "${boot_counter}" -a "${boot_success}" = "0" ]; then
  # if countdown has ended, choose to boot rollback deployment,
  # i.e. default=1 on OSTree-based systems.
  if  [ "${boot_counter}" = "0" -o "${boot_counter}" = "-1" ]; then
    set default=1
    set boot_counter=-1
  # otherwise decrement boot_counter
  else
    decrement boot_counter
  fi
  save_env boot_counter
fi
### END /etc/grub.d/08_fallback_counting ###

### BEGIN /etc/grub.d/10_linux ###
insmod part_gpt
insmod ext2
set root='hd0,gpt2'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  c2d1e0f4-77a3-4c15-a0a6-a3b0d3e2f1a4
else
  search --no-floppy --fs-uuid --set=root c2d1e0f4-77a3-4c15-a0a6-a3b0d3e2f1a4
fi
insmod blscfg
blscfg
### END /etc/grub.d/10_linux ###

### BEGIN /etc/grub.d/30_uefi-firmware ###
### END /etc/grub.d/30_uefi-firmware ###
"#;

    const MID: &str = "0d4bd3e0c8e54e4b9e5b2c1b6f7a8d90";

    fn fedora_entry(v: &str) -> String {
        format!(
            "title Fedora ({v}) 33 (Server Edition)\nversion {v}\nlinux /vmlinuz-{v}\ninitrd /initramfs-{v}.img\n\
             options $kernelopts\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class kernel\n"
        )
    }

    fn fedora(saved: Option<&str>) -> MemFs {
        let (old, new) = ("5.8.15-301.fc33.x86_64", "5.10.12-200.fc33.x86_64");
        let mut env = vec![
            "kernelopts=root=/dev/mapper/fedora-root ro resume=/dev/mapper/fedora-swap rd.lvm.lv=fedora/root rhgb quiet ",
            "boot_success=0",
        ];
        let s;
        if let Some(saved) = saved {
            s = format!("saved_entry={saved}");
            env.push(&s);
        }
        let files = [
            ("/boot/grub2/grub.cfg".to_string(), FEDORA_CFG.to_string()),
            ("/boot/grub2/grubenv".to_string(), grubenv(&env)),
            (format!("/boot/loader/entries/{MID}-{old}.conf"), fedora_entry(old)),
            (format!("/boot/loader/entries/{MID}-{new}.conf"), fedora_entry(new)),
            (format!("/boot/loader/entries/{MID}-0-rescue.conf"), format!(
                "title Fedora (0-rescue-{MID}) 33 (Server Edition)\nversion 0-rescue-{MID}\nlinux /vmlinuz-0-rescue-{MID}\n\
                 initrd /initramfs-0-rescue-{MID}.img\noptions $kernelopts\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class kernel\n"
            )),
        ];
        MemFs { files: files.into_iter().map(|(p, t)| (p, t.into_bytes())).collect() }
    }

    #[test]
    fn fedora_blscfg_with_kernelopts() {
        let f = find(&mut fedora(None), None).unwrap();
        assert_eq!((f.format, f.config.as_str(), f.entries.len()), (Format::Grub, "/boot/grub2/grub.cfg", 3));
        let e = f.entry();
        assert_eq!(e.version.as_deref(), Some("5.10.12-200.fc33.x86_64"), "the newest first");
        assert_eq!(e.linux, "/vmlinuz-5.10.12-200.fc33.x86_64");
        assert_eq!(e.initrds, ["/initramfs-5.10.12-200.fc33.x86_64.img"]);
        assert_eq!(e.options, "root=/dev/mapper/fedora-root ro resume=/dev/mapper/fedora-swap rd.lvm.lv=fedora/root rhgb quiet");
        assert_eq!(e.source.format, Format::Bls);
        assert_eq!(e.source.file, format!("/boot/loader/entries/{MID}-5.10.12-200.fc33.x86_64.conf"));
        assert_eq!(f.entries[2].title, format!("Fedora (0-rescue-{MID}) 33 (Server Edition)"));

        // saved_entry names a BLS entry by its file name.
        let f = find(&mut fedora(Some(&format!("{MID}-5.8.15-301.fc33.x86_64"))), None).unwrap();
        assert_eq!((f.entry().version.as_deref(), f.why), (Some("5.8.15-301.fc33.x86_64"), Why::Default));
    }

    #[test]
    fn fedora_without_bls_entries_is_an_error() {
        let mut fs = MemFs::new(&[("/boot/grub2/grub.cfg", FEDORA_CFG)]);
        let e = find(&mut fs, None).unwrap_err();
        let line = FEDORA_CFG.lines().position(|l| l == "blscfg").unwrap() + 1;
        assert_eq!(
            e,
            Error::Config(ConfigError::new(
                "/boot/grub2/grub.cfg",
                line,
                Problem::Syntax("blscfg, but there are no BLS entries in /loader/entries or /boot/loader/entries".into())
            ))
        );
    }

    #[test]
    fn quoting_as_grub_does_it() {
        let cfg = r#"set v="a b"
menuentry 'it'\''s "q"' --id=x {
  linux "/boot/vm linuz" one\ two 'three four' "$v" $v ${v}x "\$v" '$v' e\
f
  initrd /a /b
}
"#;
        // GRUB's argument parser takes `--id=x` as `--id x`; an option
        // menuentry does not know is an error either way.
        let m = run(&cfg.replace("--id=x", "--frob=x"), None);
        assert!(matches!(m, Err(ConfigError { line: 2, what: Problem::Unknown(_), .. })), "{m:?}");
        assert_eq!(run(cfg, None), run(&cfg.replace("--id=x", "--id x"), None));
        let m = run(cfg, None).unwrap();
        let dashed = run("menuentry --class os -- '-t-' --id x {\n linux /k\n}\n", None).unwrap();
        assert_eq!((dashed.entries[0].title.as_str(), dashed.entries[0].id.as_deref()), ("-t-", None));
        let e = &m.entries[0];
        assert_eq!((e.title.as_str(), e.id.as_deref()), ("it's \"q\"", Some("x")));
        assert_eq!(e.linux, "/boot/vm linuz");
        assert_eq!(e.options, "one two three four a b a b a bx $v $v ef");
        assert_eq!(e.initrds, ["/a", "/b"]);
        // Characters beyond ASCII pass through quotes, escapes and words whole.
        let m = run("menuentry 'Déb\"ü' {\n linux /vmlinuz-ü \\é \"\\ß$v\" ñ\\\nx\n}\n", None).unwrap();
        let e = &m.entries[0];
        assert_eq!((e.title.as_str(), e.linux.as_str(), e.options.as_str()), ("Déb\"ü", "/vmlinuz-ü", "é \\ß ñx"));
    }

    #[test]
    fn devices_in_paths() {
        let cfg = "set root=(hd0,1)\nmenuentry a {\n set root='hd0,gpt2'\n linux ($root)/vmlinuz\n initrd (hd0,gpt2)/initrd.img\n}\n";
        let m = run(cfg, None).unwrap();
        assert_eq!((m.entries[0].linux.as_str(), m.entries[0].initrds[0].as_str()), ("/vmlinuz", "/initrd.img"));
        let e = run("menuentry a {\n linux (hd1,1)/vmlinuz\n}\n", None).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("is on device (hd1,1)"), "{e}");
        let e = run("menuentry a {\n search --set=dev -u x\n linux ($dev)/vmlinuz\n}\n", None).unwrap_err();
        assert!(e.to_string().contains("$dev is set by a search or probe at line 2"), "{e}");
    }

    #[test]
    fn unterminated_brace_names_its_line() {
        let cfg = "set default=0\n\nmenuentry 'Debian' {\n  linux /vmlinuz root=/dev/xvda1\n\nmenuentry 'x' {\n}\n";
        let e = run(cfg, None).unwrap_err();
        assert_eq!(e.to_string(), "/boot/grub/grub.cfg:3: syntax error: the { of this menuentry is never closed");
        let e = run("if [ a ]; then\n set x=1\n", None).unwrap_err();
        assert_eq!(e.to_string(), "/boot/grub/grub.cfg:1: syntax error: if without fi");
        let e = run("menuentry 'a' {\n linux /k\n}\n}\n", None).unwrap_err();
        assert_eq!(e.line, 4);
        let e = run("menuentry 'a\n", None).unwrap_err();
        assert_eq!(e.to_string(), "/boot/grub/grub.cfg:1: syntax error: unterminated single quote");
    }

    #[test]
    fn functions_exist_once_their_definition_ran() {
        let entry = "menuentry A {\n  linux /vmlinuz $k\n}\n";
        // A later definition replaces an earlier one.
        let cfg = format!("function k {{ k=one }}\nfunction k {{ k=two }}\nk\n{entry}");
        assert_eq!(run(&cfg, None).unwrap().entries[0].options, "two");
        // Called before its definition ran, it is no command at all.
        let e = run(&format!("k\nfunction k {{ k=one }}\n{entry}"), None).unwrap_err();
        assert_eq!(e.to_string(), "/boot/grub/grub.cfg:1: unknown command \"k\"");
        let cfg = format!("if false; then function k {{ k=one }}; fi\nk\n{entry}");
        assert_eq!(run(&cfg, None).unwrap_err().to_string(), "/boot/grub/grub.cfg:2: unknown command \"k\"");
    }

    #[test]
    fn unknown_command_in_a_menuentry_is_named() {
        let cfg = "menuentry 'a' {\n  insmod ext2\n  linux /k\n  frobnicate --now\n}\n";
        let e = run(cfg, None).unwrap_err();
        assert_eq!(e.to_string(), "/boot/grub/grub.cfg:4: unknown command \"frobnicate\"");
    }

    #[test]
    fn conditions_it_cannot_evaluate() {
        // Around GRUB's own set-up only: skipped.
        let ok = "if keystatus --shift; then\n set timeout=-1\nelse\n insmod gfxterm\nfi\nmenuentry a {\n linux /k\n}\n";
        assert_eq!(run(ok, None).unwrap().entries.len(), 1);
        // Around something that matters: an error naming the condition.
        let bad = "if keystatus --shift; then\n set default=1\nfi\nmenuentry a {\n linux /k\n}\n";
        let e = run(bad, None).unwrap_err();
        assert!(e.to_string().starts_with("/boot/grub/grub.cfg:1: unsupported: the condition \"keystatus --shift\""), "{e}");
        // $? never has a value here.
        let bad = "fwsetup --is-supported\nif [ \"$?\" = 0 ]; then\n menuentry f {\n fwsetup\n }\nfi\nmenuentry a {\n linux /k\n}\n";
        assert_eq!(run(bad, None).unwrap_err().line, 2);
    }

    #[test]
    fn no_linux_entry_and_commands_outside_entries() {
        let e = run("menuentry 'Windows' {\n chainloader +1\n}\n", None).unwrap_err();
        assert_eq!(e.to_string(), "/boot/grub/grub.cfg: no entry boots Linux");
        let e = run("linux /vmlinuz\n", None).unwrap_err();
        assert_eq!(e.line, 1);
        let e = run("normal /boot/grub/other.cfg\n", None).unwrap_err();
        assert!(matches!(e.what, Problem::Unsupported(_)));
        let e = run("while true; do echo; done\n", None).unwrap_err();
        assert!(matches!(e.what, Problem::Unsupported(_)));
    }

    /// `find`, then the grubenv it would write put in place.
    fn boot_and_save(fs: &mut MemFs) -> super::super::Found {
        let f = find(fs, None).unwrap();
        if let Some(w) = &f.grubenv {
            let w = w.as_ref().unwrap();
            fs.files.insert(w.path.clone(), w.new.clone());
        }
        f
    }

    #[test]
    fn grub_reboot_is_taken_once_then_cleared() {
        let env = grubenv(&["saved_entry=0", &format!("next_entry=gnulinux-advanced-{UUID}>gnulinux-6.1.0-12-amd64-advanced-{UUID}")]);
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &debian12("0")), ("/boot/grub/grubenv", &env)]);
        let f = boot_and_save(&mut fs);
        assert_eq!((f.entry().title.as_str(), f.why), ("Debian GNU/Linux, with Linux 6.1.0-12-amd64", Why::Default));
        let w = f.grubenv.unwrap().unwrap();
        assert_eq!(w.changed, ["next_entry="]);
        assert!(w.new.starts_with(b"# GRUB Environment Block\nsaved_entry=0\nnext_entry=\n#"), "{:?}", core::str::from_utf8(&w.new));
        assert_eq!((w.old.len(), w.new.len()), (1024, 1024));
        // The next boot takes the default, and writes nothing.
        let f = boot_and_save(&mut fs);
        assert_eq!((f.selected, f.grubenv), (0, None));
    }

    #[test]
    fn savedefault_saves_the_chosen_path_and_boot_counter_counts_down() {
        let cfg = "load_env\nset default=\"${saved_entry}\"\nfunction savedefault {\n  if [ -z \"${boot_once}\" ]; then\n    saved_entry=\"${chosen}\"\n    save_env saved_entry\n  fi\n}\n\
             if [ -n \"${boot_counter}\" -a \"${boot_success}\" = \"0\" ]; then\n  if [ \"${boot_counter}\" = \"0\" -o \"${boot_counter}\" = \"-1\" ]; then\n    set default=1\n    set boot_counter=-1\n  else\n    decrement boot_counter\n  fi\n  save_env boot_counter\nfi\n\
             set boot_success=0\nsave_env boot_success\n\
             menuentry 'A' --id a {\n savedefault\n linux /a\n}\nmenuentry 'B' {\n linux /b\n}\n\
             submenu 'More' --id more {\n menuentry 'C' --id c {\n  savedefault\n  linux /c\n }\n}\n";
        let env = grubenv(&["saved_entry=more>c", "boot_success=1", "boot_counter=1"]);
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", cfg), ("/boot/grub/grubenv", &env)]);
        let f = boot_and_save(&mut fs);
        assert_eq!(f.entry().title, "C");
        // `chosen` is the path of ids GRUB gives it.
        assert_eq!(f.entry().saves, [("saved_entry".to_string(), Some("more>c".to_string()))]);
        assert_eq!(f.grubenv.unwrap().unwrap().changed, ["boot_success=0"]);
        // boot_success stays 0 (the system did not say it came up): count down.
        let f = boot_and_save(&mut fs);
        assert_eq!(f.grubenv.unwrap().unwrap().changed, ["boot_counter=0"]);
        // At 0: the fallback entry (1), and -1 saved.
        let f = boot_and_save(&mut fs);
        assert_eq!(f.entry().title, "B");
        assert_eq!(f.grubenv.unwrap().unwrap().changed, ["boot_counter=-1"]);
        let env = core::str::from_utf8(&fs.files["/boot/grub/grubenv"]).unwrap().to_string();
        assert!(env.starts_with("# GRUB Environment Block\nsaved_entry=more>c\nboot_success=0\nboot_counter=-1\n#"), "{env}");
        // Choosing A (no longer in a submenu) saves its id alone.
        let f = find(&mut fs, Some("0")).unwrap();
        assert_eq!(f.entry().saves, [("saved_entry".to_string(), Some("a".to_string()))]);
    }

    #[test]
    fn grubenv_is_written_only_as_the_same_1024_bytes() {
        let cfg = "set x=1\nsave_env x\nmenuentry a {\n linux /a\n}\n";
        // 2048 bytes: refused, with why.
        let mut big = grubenv(&["y=2"]);
        big.push_str(&"#".repeat(1024));
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", cfg), ("/boot/grub/grubenv", &big)]);
        let e = find(&mut fs, None).unwrap().grubenv.unwrap().unwrap_err();
        assert_eq!(e, "/boot/grub/grubenv is 2048 bytes, not 1024: not written");
        // Variables that no longer fit: refused.
        let cfg = format!("set x={}\nsave_env x\nmenuentry a {{\n linux /a\n}}\n", "v".repeat(1000));
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &cfg), ("/boot/grub/grubenv", &grubenv(&["y=2"]))]);
        let e = find(&mut fs, None).unwrap().grubenv.unwrap().unwrap_err();
        assert!(e.contains("no longer fit in 1024 bytes"), "{e}");
        // No grubenv: nothing to write (GRUB's save_env fails).
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", "set x=1\nsave_env x\nmenuentry a {\n linux /a\n}\n")]);
        assert_eq!(find(&mut fs, None).unwrap().grubenv, None);
        // Escapes, an unset variable removed, order kept.
        let mut env = Grubenv::parse("/g", &grubenv(&["a=1", "b=2", "c=3"])).unwrap();
        env.save("b", None);
        env.save("a", Some("x\\y\nz"));
        env.save("d", Some("4"));
        let out = env.encode(1024).unwrap();
        assert!(out.starts_with(b"# GRUB Environment Block\na=x\\\\y\\\nz\nc=3\nd=4\n#"));
        let back = Grubenv::parse("/g", core::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(back.vars, env.vars);
    }

    /// Files by (tree, path), and every file test and read asked, for
    /// GRUB's btrfs variables.
    #[derive(Default)]
    struct Trees {
        files: BTreeMap<(String, String), String>,
        asked: Vec<String>,
        relative: bool,
    }

    impl Host for Trees {
        fn relative(&self) -> bool {
            self.relative
        }
        fn exists(&mut self, path: &str, subvol: &Subvol) -> Option<bool> {
            self.asked.push(format!("{subvol:?}{path}"));
            Some(self.files.contains_key(&(format!("{subvol:?}"), path.to_string())))
        }
        fn read(&mut self, path: &str, subvol: &Subvol) -> Result<Option<String>, ConfigError> {
            self.asked.push(format!("{subvol:?}{path}"));
            Ok(self.files.get(&(format!("{subvol:?}"), path.to_string())).cloned())
        }
    }

    #[test]
    fn btrfs_variables_choose_the_tree() {
        // An entry's body runs when it is booted, after the whole script:
        // `top` sees btrfs_relative_path=yes too.
        let cfg = "menuentry top --hotkey=t {\n linux /k\n}\n\
            set btrfs_relative_path=yes\n\
            menuentry default --id=d {\n linux /k\n initrd /i\n}\n\
            menuentry path {\n btrfs_subvol=/@/.snapshots/2/snapshot\n linux /k\n}\n\
            menuentry id {\n btrfs_subvolid=300\n linux /k\n}\n\
            menuentry off {\n btrfs_relative_path=n\n linux /k\n}\n\
            menuentry split {\n linux /k\n btrfs_subvolid=301\n initrd /i\n}\n\
            btrfs-mount-subvol ($root) /.snapshots/ @/.snapshots\n\
            if [ -f /.snapshots/grub-snapshot.cfg ]; then source /.snapshots/grub-snapshot.cfg; fi\n";
        let snap = "submenu 'Start bootloader from a read-only snapshot' {\n\
            menuentry 'snapshot 1' {\n btrfs_subvol=/@/.snapshots/1/snapshot\n extra_cmdline=rootflags=subvol=@/.snapshots/1/snapshot\n export extra_cmdline\n configfile /boot/grub2/grub.cfg\n}\n}\n";
        let inner = "menuentry 'old kernel' {\n linux /boot/vmlinuz-old $extra_cmdline\n}\n";
        let mut t = Trees::default();
        t.files.insert(("Path(\"@/.snapshots\")".into(), "/grub-snapshot.cfg".into()), snap.into());
        t.files.insert(("Path(\"/@/.snapshots/1/snapshot\")".into(), "/boot/grub2/grub.cfg".into()), inner.into());
        let menu = parse("/boot/grub2/grub.cfg", cfg, None, None, &mut t).unwrap();
        let got: Vec<(&str, &str, &Subvol, Option<&str>)> =
            menu.entries.iter().map(|e| (e.title.as_str(), e.linux.as_str(), &e.subvol, e.id.as_deref())).collect();
        let path = |p: &str| Subvol::Path(p.into());
        assert_eq!(
            got,
            [
                ("top", "/k", &Subvol::Default, None),
                ("default", "/k", &Subvol::Default, Some("d")),
                ("path", "/k", &path("/@/.snapshots/2/snapshot"), None),
                ("id", "/k", &Subvol::Id(300), None),
                ("off", "/k", &Subvol::Top, None),
                ("old kernel", "/boot/vmlinuz-old", &path("/@/.snapshots/1/snapshot"), None),
            ]
        );
        // The kernel and initrd in two trees: listed, not bootable.
        assert_eq!(menu.entries.len(), 6);
        assert_eq!(menu.entries[5].options, "rootflags=subvol=@/.snapshots/1/snapshot");
        assert_eq!(menu.entries[5].submenu.as_deref(), Some("Start bootloader from a read-only snapshot>snapshot 1"));
        assert_eq!(
            t.asked,
            [
                "Path(\"@/.snapshots\")/grub-snapshot.cfg",
                "Path(\"@/.snapshots\")/grub-snapshot.cfg",
                "Path(\"/@/.snapshots/1/snapshot\")/boot/grub2/grub.cfg"
            ]
        );
        // Found through the default subvolume: relative from the start.
        let mut t = Trees { relative: true, ..Trees::default() };
        let menu = parse("/boot/grub2/grub.cfg", "menuentry a {\n linux /k\n}\n", None, None, &mut t).unwrap();
        assert_eq!(menu.entries[0].subvol, Subvol::Default);
        let e = parse("/g", "btrfs_relative_path=1\nbtrfs_subvolid=abc\nmenuentry a {\n linux /k\n}\n", None, None, &mut t).unwrap_err();
        assert_eq!(e.to_string(), "/g:4: syntax error: btrfs_subvolid=\"abc\" is not a subvolume id");
    }

    /// snapper keeps tens of snapshots, each entry a `configfile`: each
    /// is bounded on its own, not all together.
    #[test]
    fn many_entries_that_open_menus() {
        let mut cfg = String::new();
        for n in 0..20 {
            cfg += &format!("menuentry 'snapshot {n}' {{\n configfile /s.cfg\n}}\n");
        }
        let mut t = Trees::default();
        t.files.insert(("Top".into(), "/s.cfg".into()), "menuentry k {\n linux /k\n}\n".into());
        let menu = parse("/g", &cfg, None, None, &mut t).unwrap();
        assert_eq!(menu.entries.len(), 20);
        // One that opens itself: one clear error.
        t.files.insert(("Top".into(), "/s.cfg".into()), "menuentry again {\n configfile /s.cfg\n}\n".into());
        let e = parse("/g", &cfg, None, None, &mut t).unwrap_err();
        assert!(e.to_string().contains("nested more than 8 deep"), "{e}");
    }

    #[test]
    fn source_runs_custom_cfg_and_configfile_replaces_the_menu() {
        // Debian's 41_custom sources custom.cfg when there is one; its
        // entry can be the default.
        let custom = "menuentry 'Rescue shell' --id rescue {\n linux /boot/vmlinuz-6.1.0-13-amd64 init=/bin/sh\n}\n";
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &debian12("rescue")), ("/boot/grub/custom.cfg", custom)]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.entry().title.as_str(), f.why), ("Rescue shell", Why::Default));
        assert_eq!((f.entry().source.file.as_str(), f.entry().source.line), ("/boot/grub/custom.cfg", 1));
        assert_eq!(f.entries.len(), 6);
        // Without custom.cfg, the same grub.cfg: the default names nothing.
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &debian12("rescue"))]);
        assert_eq!(find(&mut fs, None).unwrap().why, Why::Fallback);
        // configfile: a stub that hands over to another file, which sees
        // only what was exported.
        let stub = "export foo\nset foo=1\nset bar=2\nconfigfile /boot/grub2/grub.cfg\nmenuentry old {\n linux /old\n}\n";
        let real = "menuentry \"new $foo$bar\" {\n linux /new\n}\n";
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", stub), ("/boot/grub2/grub.cfg", real)]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.entries.len(), f.entry().title.as_str(), f.entry().linux.as_str()), (1, "new 1", "/new"));
        assert_eq!(f.entry().source.file, "/boot/grub2/grub.cfg");
        // Errors in a sourced file name that file.
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", "source /s.cfg\n"), ("/s.cfg", "menuentry a {\n frobnicate\n}\n")]);
        let e = find(&mut fs, None).unwrap_err();
        assert_eq!(e.to_string(), "/s.cfg:2: unknown command \"frobnicate\"");
    }

    #[test]
    fn a_file_that_sources_itself_is_one_error() {
        for cmd in ["source", "configfile", "."] {
            let cfg = format!("menuentry a {{\n linux /a\n}}\n{cmd} $prefix/grub.cfg\n");
            let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", &cfg)]);
            let e = find(&mut fs, None).unwrap_err();
            assert!(e.to_string().contains("source or configfile nested more than 8 deep"), "{cmd}: {e}");
        }
        // Two files sourcing each other.
        let mut fs = MemFs::new(&[("/boot/grub/grub.cfg", "source /a.cfg\n"), ("/a.cfg", "source /boot/grub/grub.cfg\n")]);
        assert!(matches!(find(&mut fs, None), Err(Error::Config(ConfigError { what: Problem::TooComplex(_), .. }))));
    }

    #[test]
    fn grubenv_parsing() {
        let env = Grubenv::parse("/g", &grubenv(&["saved_entry=a\\\\b", "kernelopts=root=x ro", "x=1\\\n2"])).unwrap();
        assert_eq!(env.get("saved_entry"), Some("a\\b"));
        assert_eq!(env.get("kernelopts"), Some("root=x ro"));
        assert_eq!(env.get("x"), Some("1\n2"));
        let env = Grubenv::parse("/g", &grubenv(&["title=D\\é\\ü"])).unwrap();
        assert_eq!(env.get("title"), Some("Déü"));
        assert_eq!(Grubenv::parse("/g", "saved_entry=0\n").unwrap_err().line, 1);
        assert_eq!(Grubenv::parse("/g", "# GRUB Environment Block\nfoo\n").unwrap_err().line, 2);
    }

    #[test]
    fn nesting_and_work_are_bounded() {
        let deep = "if [ a ]; then\n".repeat(100) + &"fi\n".repeat(100);
        assert!(matches!(run(&deep, None).unwrap_err().what, Problem::TooComplex(_)));
        let sub = "submenu s {\n".repeat(40) + &"}\n".repeat(40);
        assert!(matches!(run(&sub, None).unwrap_err().what, Problem::TooComplex(_)));
        let rec = "function f {\n f\n}\nf\n";
        assert!(matches!(run(rec, None).unwrap_err().what, Problem::TooComplex(_)));
        let mut fan = String::from("function f0 {\n echo\n}\n");
        for i in 1..30 {
            fan += &format!("function f{i} {{\n f{p}\n f{p}\n}}\n", p = i - 1);
        }
        fan += "f29\n";
        assert!(matches!(run(&fan, None).unwrap_err().what, Problem::TooComplex(_)));
        let grow = "set a=xxxxxxxxxxxxxxxx\n".to_string() + &"set a=$a$a\n".repeat(20);
        assert!(matches!(run(&grow, None).unwrap_err().what, Problem::TooComplex(_)));
    }
}
