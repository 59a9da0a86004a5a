//! The boot menu on a plain terminal (`xl console`): which entry boots,
//! chosen with the keys GRUB users know, shown the way the guest's own
//! configuration asks ([`Show`]).
//!
//! Pure logic: bytes typed in, text to print out, times in milliseconds
//! from the caller's clock. Nothing but CR, LF and BS is printed: the
//! menu is redrawn by printing it again, the countdown is rewritten after
//! a CR, so it reads the same in a log file as on a terminal.
//!
//! Keys: Up/Down (`ESC [ A`/`B`, `ESC O A`/`B`, Ctrl-P/Ctrl-N) and digits
//! choose, Enter boots, `e` edits the chosen entry's command line (typed
//! characters are appended, Backspace deletes, Ctrl-U clears, Enter boots
//! it, Esc goes back). Any key stops the countdown. A hidden menu (or a
//! countdown) opens on any key before its time is up.

use super::BootEntry;
use alloc::string::String;
use core::fmt::Write;

/// How the menu is shown before the default boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The entries, with a countdown.
    Menu,
    /// Only a countdown line.
    Countdown,
    /// Nothing, unless a key is pressed in time.
    Hidden,
}

/// What the configuration asks for (GRUB's `timeout`/`timeout_style`,
/// extlinux's `TIMEOUT`/`PROMPT`/`MENU HIDDEN`, loader.conf's `timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Show {
    pub style: Style,
    /// Milliseconds before the default boots; `None`: wait for a key.
    pub timeout_ms: Option<u64>,
}

impl Show {
    /// Boot the default at once (a key typed ahead still opens the menu).
    pub const NONE: Show = Show { style: Style::Hidden, timeout_ms: Some(0) };

    /// `hvmlite.menu=` from the domain's command line: `N` seconds of the
    /// menu, `-1` waiting for a key, `off` never; `None` for anything else.
    pub fn from_option(v: &str) -> Option<Show> {
        match v {
            "off" | "0" => Some(Show::NONE),
            "-1" => Some(Show { style: Style::Menu, timeout_ms: None }),
            _ => v.parse::<u32>().ok().map(|s| Show { style: Style::Menu, timeout_ms: Some(u64::from(s) * 1000) }),
        }
    }
}

/// What the menu ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Index into the entries.
    pub index: usize,
    /// The command line, edited with `e` or the entry's own.
    pub options: String,
    /// Chosen by a key (not the timeout).
    pub by_hand: bool,
    pub edited: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Waiting unseen (hidden) or with a countdown line until `until`.
    Waiting {
        until: Option<u64>,
    },
    /// The entries shown; booting the selected one at `until` unless a
    /// key was pressed (`None`).
    Listing {
        until: Option<u64>,
    },
    Editing {
        line: String,
    },
}

/// The longest command line the editor takes (Linux's on x86).
const MAX_LINE: usize = 2047;

pub struct Menu<'e> {
    entries: &'e [BootEntry],
    selected: usize,
    style: Style,
    state: State,
    /// A digit typed just before, for two-digit choices.
    digits: usize,
    /// The seconds last printed on the countdown line.
    shown_secs: Option<u64>,
    heading: String,
}

impl<'e> Menu<'e> {
    /// `default`: the entry that boots when no key is pressed; `heading`
    /// names the configuration (printed above the entries).
    pub fn new(entries: &'e [BootEntry], default: usize, show: Show, heading: &str, now: u64) -> Self {
        let until = show.timeout_ms.map(|t| now.saturating_add(t));
        // A timeout of 0 shows nothing (GRUB boots at once).
        let style = if show.timeout_ms == Some(0) { Style::Hidden } else { show.style };
        let state = match style {
            Style::Menu => State::Listing { until },
            _ => State::Waiting { until },
        };
        Menu {
            entries,
            selected: default.min(entries.len().saturating_sub(1)),
            style,
            state,
            digits: 0,
            shown_secs: None,
            heading: String::from(heading),
        }
    }

    /// What to print first; `Some` when the default boots at once.
    pub fn start(&mut self, now: u64, out: &mut String) -> Option<Choice> {
        if let State::Listing { .. } = self.state {
            self.draw(out);
        }
        self.tick(now, out)
    }

    /// When [`tick`](Self::tick) is next due: the timeout (a quarter of a
    /// second at most while a countdown is shown); `None`: only a key
    /// matters.
    pub fn deadline(&self, now: u64) -> Option<u64> {
        match self.state {
            State::Waiting { until: Some(u) } if self.style == Style::Hidden => Some(u),
            State::Waiting { until: Some(u) } | State::Listing { until: Some(u) } => Some(u.min(now + 250)),
            _ => None,
        }
    }

    /// Time passed: rewrite the countdown, or boot the default when it
    /// ran out.
    pub fn tick(&mut self, now: u64, out: &mut String) -> Option<Choice> {
        let (until, visible) = match self.state {
            State::Waiting { until: Some(u) } => (u, self.style == Style::Countdown),
            State::Listing { until: Some(u) } => (u, true),
            _ => return None,
        };
        if now >= until {
            if visible {
                out.push_str("\r\n");
            }
            return Some(self.choice(false, None));
        }
        let secs = (until - now).div_ceil(1000);
        if visible && self.shown_secs != Some(secs) {
            self.shown_secs = Some(secs);
            let title = &self.entries[self.selected].title;
            let _ = write!(out, "\rBooting \"{}\" in {secs} s. ", one_line(title));
        }
        None
    }

    /// Bytes typed at the console.
    pub fn input(&mut self, bytes: &[u8], out: &mut String) -> Option<Choice> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            // An escape sequence arrives whole; a lone ESC is the key.
            let key = if b == 0x1b && i < bytes.len() && (bytes[i] == b'[' || bytes[i] == b'O') {
                let mut j = i + 1;
                while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
                    j += 1;
                }
                let last = bytes.get(j).copied().unwrap_or(0);
                i = (j + 1).min(bytes.len());
                match last {
                    b'A' => Key::Up,
                    b'B' => Key::Down,
                    _ => Key::Other,
                }
            } else {
                match b {
                    0x1b => Key::Esc,
                    b'\r' | b'\n' => Key::Enter,
                    0x10 => Key::Up,
                    0x0e => Key::Down,
                    0x7f | 0x08 => Key::Backspace,
                    0x15 => Key::Kill,
                    0x20..=0x7e => Key::Char(b as char),
                    _ => Key::Other,
                }
            };
            if let Some(c) = self.key(key, out) {
                return Some(c);
            }
        }
        None
    }

    fn key(&mut self, key: Key, out: &mut String) -> Option<Choice> {
        let n = self.entries.len();
        match &mut self.state {
            State::Waiting { .. } => {
                // Any key opens the menu, and stops the countdown.
                if self.style == Style::Countdown {
                    out.push_str("\r\n");
                }
                self.state = State::Listing { until: None };
                self.draw(out);
                None
            }
            State::Listing { until } => {
                let counting = until.take().is_some();
                if counting {
                    out.push_str("\r\n");
                }
                match key {
                    Key::Enter => return Some(self.choice(true, None)),
                    Key::Up => self.select(self.selected.checked_sub(1).unwrap_or(n - 1), out),
                    Key::Down => self.select((self.selected + 1) % n, out),
                    Key::Char(c @ '0'..='9') => {
                        let d = c as usize - '0' as usize;
                        let two = self.digits * 10 + d;
                        let pick = if self.digits > 0 && two < n { two } else { d };
                        self.digits = if pick < n { pick } else { 0 };
                        if pick < n {
                            self.select(pick, out);
                        }
                        return None;
                    }
                    Key::Char('e') => {
                        let line = self.entries[self.selected].options.clone();
                        let _ = write!(
                            out,
                            "\r\nThe command line of \"{}\" (Enter boots it, Esc goes back):\r\n> {}",
                            one_line(&self.entries[self.selected].title),
                            line
                        );
                        self.state = State::Editing { line };
                    }
                    _ if counting => self.draw(out),
                    _ => {}
                }
                self.digits = 0;
                None
            }
            State::Editing { line } => {
                match key {
                    Key::Enter => {
                        let edited = core::mem::take(line);
                        out.push_str("\r\n");
                        return Some(self.choice(true, Some(edited)));
                    }
                    Key::Esc => {
                        self.state = State::Listing { until: None };
                        out.push_str("\r\n");
                        self.draw(out);
                    }
                    Key::Backspace if line.pop().is_some() => out.push_str("\x08 \x08"),
                    Key::Kill => {
                        line.clear();
                        out.push_str("\r\n> ");
                    }
                    Key::Char(c) if line.len() < MAX_LINE => {
                        line.push(c);
                        out.push(c);
                    }
                    _ => {}
                }
                None
            }
        }
    }

    fn select(&mut self, i: usize, out: &mut String) {
        if i != self.selected {
            self.selected = i;
            self.draw(out);
        }
    }

    fn choice(&self, by_hand: bool, edited: Option<String>) -> Choice {
        let e = &self.entries[self.selected];
        Choice { index: self.selected, by_hand, edited: edited.is_some(), options: edited.unwrap_or_else(|| e.options.clone()) }
    }

    /// The entries, `*` at the chosen one; submenu titles as headings.
    fn draw(&self, out: &mut String) {
        let _ = write!(out, "\r\n{}\r\n", one_line(&self.heading));
        let mut group: Option<&str> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.submenu.as_deref() != group {
                group = e.submenu.as_deref();
                if let Some(g) = group {
                    let _ = write!(out, "      {}:\r\n", one_line(g));
                }
            }
            let mark = if i == self.selected { '*' } else { ' ' };
            let indent = if group.is_some() { "  " } else { "" };
            let _ = write!(out, " {mark} {i:>2} {indent}{}\r\n", clip(&one_line(&e.title), 70));
        }
        out.push_str("Up/Down or a number chooses, Enter boots, e edits the command line.\r\n");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Up,
    Down,
    Enter,
    Esc,
    Backspace,
    Kill,
    Char(char),
    Other,
}

/// A title as one printable line (control characters shown as `?`).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// At most `n` characters, `~` marking a cut (an 80-column terminal).
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return String::from(s);
    }
    let mut t: String = s.chars().take(n - 1).collect();
    t.push('~');
    t
}

#[cfg(test)]
mod tests {
    use super::super::{Format, Source};
    use super::*;
    use alloc::vec::Vec;

    fn entries() -> Vec<BootEntry> {
        let e = |title: &str, sub: Option<&str>, opts: &str| BootEntry {
            title: title.into(),
            id: None,
            version: None,
            linux: "/k".into(),
            initrds: Vec::new(),
            options: opts.into(),
            source: Source { format: Format::Grub, file: "/g".into(), line: 1 },
            saves: Vec::new(),
            submenu: sub.map(String::from),
            subvol: Default::default(),
        };
        [
            e("Debian GNU/Linux", None, "ro quiet"),
            e("Debian, with Linux 6.1", Some("Advanced options"), "ro quiet"),
            e("Debian, with Linux 6.1 (recovery mode)", Some("Advanced options"), "ro single"),
        ]
        .to_vec()
    }

    fn menu(show: Show) -> (Vec<BootEntry>, Show) {
        (entries(), show)
    }

    const FIVE: Show = Show { style: Style::Menu, timeout_ms: Some(5000) };

    #[test]
    fn the_default_boots_when_the_countdown_ends() {
        let (es, show) = menu(FIVE);
        let mut m = Menu::new(&es, 1, show, "menu of xvda1", 0);
        let mut out = String::new();
        assert_eq!(m.start(0, &mut out), None);
        assert!(
            out.contains("menu of xvda1\r\n    0 Debian GNU/Linux\r\n      Advanced options:\r\n *  1   Debian, with Linux 6.1\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\rBooting \"Debian, with Linux 6.1\" in 5 s. "), "{out}");
        assert_eq!(m.deadline(0), Some(250));
        out.clear();
        assert_eq!(m.tick(1200, &mut out), None);
        assert_eq!(out, "\rBooting \"Debian, with Linux 6.1\" in 4 s. ");
        let c = m.tick(5000, &mut out).unwrap();
        assert_eq!(c, Choice { index: 1, options: "ro quiet".into(), by_hand: false, edited: false });
    }

    #[test]
    fn arrows_numbers_and_enter() {
        let (es, show) = menu(FIVE);
        let mut m = Menu::new(&es, 0, show, "h", 0);
        let mut out = String::new();
        m.start(0, &mut out);
        // Down twice (two spellings), up once: entry 1. The countdown stops.
        assert_eq!(m.input(b"\x1b[B\x1bOB\x1b[A", &mut out), None);
        assert_eq!(m.deadline(100), None);
        assert_eq!(m.tick(999_999, &mut out), None);
        let c = m.input(b"\r", &mut out).unwrap();
        assert_eq!((c.index, c.by_hand, c.edited), (1, true, false));
        // A number chooses; Ctrl-P wraps to the last.
        let mut m = Menu::new(&es, 0, show, "h", 0);
        assert_eq!(m.input(b"2", &mut out), None);
        assert_eq!(m.input(b"\n", &mut out).unwrap().index, 2);
        let mut m = Menu::new(&es, 0, show, "h", 0);
        assert_eq!(m.input(b"\x10\r", &mut out).unwrap().index, 2);
    }

    #[test]
    fn e_edits_the_command_line() {
        let (es, show) = menu(FIVE);
        let mut m = Menu::new(&es, 0, show, "h", 0);
        let mut out = String::new();
        m.start(0, &mut out);
        out.clear();
        assert_eq!(m.input(b"e", &mut out), None);
        assert!(out.ends_with("The command line of \"Debian GNU/Linux\" (Enter boots it, Esc goes back):\r\n> ro quiet"), "{out}");
        // Backspace twice, type, Enter.
        let c = m.input(b"\x7f\x7f\x7f\x7f\x7fsingle init=/bin/sh\r", &mut out).unwrap();
        assert_eq!(c, Choice { index: 0, options: "ro single init=/bin/sh".into(), by_hand: true, edited: true });
        // Esc goes back to the list; Ctrl-U clears the line.
        let mut m = Menu::new(&es, 0, show, "h", 0);
        m.input(b"e", &mut out);
        assert_eq!(m.input(b"x\x1b", &mut out), None);
        let c = m.input(b"\r", &mut out).unwrap();
        assert_eq!((c.options.as_str(), c.edited), ("ro quiet", false));
        let mut m = Menu::new(&es, 0, show, "h", 0);
        let c = m.input(b"e\x15quiet\r", &mut out).unwrap();
        assert_eq!(c.options, "quiet");
    }

    #[test]
    fn hidden_and_countdown_open_on_a_key() {
        let es = entries();
        let hidden = Show { style: Style::Hidden, timeout_ms: Some(1000) };
        let mut m = Menu::new(&es, 0, hidden, "h", 0);
        let mut out = String::new();
        assert_eq!(m.start(0, &mut out), None);
        assert_eq!((out.as_str(), m.deadline(0)), ("", Some(1000)));
        assert_eq!(m.tick(1000, &mut out).map(|c| (c.index, c.by_hand)), Some((0, false)));
        assert_eq!(out, "", "a hidden menu prints nothing");
        // A key in time opens it, and then nothing boots by itself.
        let mut m = Menu::new(&es, 0, hidden, "h", 0);
        m.start(0, &mut out);
        assert_eq!(m.input(b"\x1b", &mut out), None);
        assert!(out.contains(" *  0 Debian GNU/Linux"), "{out}");
        assert_eq!((m.tick(10_000, &mut out), m.deadline(10_000)), (None, None));
        // timeout 0: at once, unseen.
        let mut m = Menu::new(&es, 2, Show { style: Style::Menu, timeout_ms: Some(0) }, "h", 0);
        let mut out = String::new();
        assert_eq!(m.start(0, &mut out).map(|c| c.index), Some(2));
        assert_eq!(out, "");
        // A countdown line only, then the menu on a key.
        let mut m = Menu::new(&es, 0, Show { style: Style::Countdown, timeout_ms: Some(3000) }, "h", 0);
        m.start(0, &mut out);
        assert_eq!(out, "\rBooting \"Debian GNU/Linux\" in 3 s. ");
        m.input(b" ", &mut out);
        assert!(out.contains("Up/Down or a number chooses"), "{out}");
    }

    #[test]
    fn hvmlite_menu_option() {
        assert_eq!(Show::from_option("10"), Some(Show { style: Style::Menu, timeout_ms: Some(10_000) }));
        assert_eq!(Show::from_option("-1"), Some(Show { style: Style::Menu, timeout_ms: None }));
        assert_eq!(Show::from_option("off"), Some(Show::NONE));
        assert_eq!(Show::from_option("soon"), None);
    }

    #[test]
    fn hostile_titles_and_input_stay_one_line_and_bounded() {
        let mut es = entries();
        es[0].title = "evil\x1b[2J\r\ntitle".into();
        let mut m = Menu::new(&es, 0, Show { style: Style::Menu, timeout_ms: None }, "h\x07", 0);
        let mut out = String::new();
        m.start(0, &mut out);
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
        // A flood of characters into the editor stops at Linux's limit.
        m.input(b"e", &mut out);
        let flood = alloc::vec![b'a'; 10_000];
        m.input(&flood, &mut out);
        let c = m.input(b"\r", &mut out).unwrap();
        assert_eq!(c.options.len(), MAX_LINE);
        // Unknown escape sequences and a sequence cut short do nothing.
        let mut m = Menu::new(&es, 0, Show { style: Style::Menu, timeout_ms: None }, "h", 0);
        assert_eq!(m.input(b"\x1b[15~\x1b[", &mut out), None);
        assert_eq!(m.input(b"\r", &mut out).unwrap().index, 0);
    }
}
