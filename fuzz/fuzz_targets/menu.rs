//! The boot menu (`disk::bootcfg::menu`) fed what a console peer types.
//!
//! Input: a mode byte (bits 0-1: the style, menu / countdown / hidden /
//! menu without a timeout; bits 2-3: the default entry), then steps: a
//! byte `n`, then — `n` < 0x80 — `n & 0x3f` bytes typed at once, or —
//! otherwise — time advancing by `(n & 0x7f) * 100` ms. Entry titles carry
//! control characters and escape sequences.
//!
//! Invariants: no panic; the text printed holds no control character but
//! CR, LF and BS (a hostile title or key cannot send the terminal escape
//! sequences); once a choice is made it names an entry, its command line
//! is at most 2047 bytes and, unless edited, the entry's own; a choice by
//! the timeout is the default, never by hand, and only comes once the
//! timeout has passed; without a timeout nothing boots unless typed;
//! `deadline` is never in the past of the time it is asked at.
#![no_main]

use hvmlite::disk::bootcfg::menu::{Menu, Show, Style};
use hvmlite::disk::bootcfg::{BootEntry, Format, Source};
use libfuzzer_sys::fuzz_target;

fn entry(title: &str, sub: Option<&str>, opts: &str) -> BootEntry {
    BootEntry {
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
    }
}

fn clean(out: &str) {
    assert!(out.chars().all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\x08')), "{out:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, steps)) = data.split_first() else { return };
    let entries = [
        entry("Debian GNU/Linux", None, "ro quiet"),
        entry("evil\x1b[2J\x07title", Some("Adv\x1b]0;x\x07anced"), "ro"),
        entry("third", Some("Adv\x1b]0;x\x07anced"), "ro single"),
        entry(&"long ".repeat(40), None, ""),
    ];
    let timeout = 3000;
    let show = match mode & 3 {
        0 => Show { style: Style::Menu, timeout_ms: Some(timeout) },
        1 => Show { style: Style::Countdown, timeout_ms: Some(timeout) },
        2 => Show { style: Style::Hidden, timeout_ms: Some(timeout) },
        _ => Show { style: Style::Menu, timeout_ms: None },
    };
    let default = usize::from(mode >> 2 & 3);
    let mut m = Menu::new(&entries, default, show, "heading\x1b[H", 0);
    let mut out = String::new();
    let mut now = 0u64;
    let mut typed = false;
    let mut done = m.start(now, &mut out);
    let mut i = 0;
    while done.is_none() && i < steps.len() {
        clean(&out);
        out.clear();
        let n = steps[i];
        i += 1;
        if n < 0x80 {
            let len = usize::from(n & 0x3f).min(steps.len() - i);
            done = m.input(&steps[i..i + len], &mut out);
            typed |= len > 0;
            i += len;
        } else {
            if let Some(d) = m.deadline(now) {
                assert!(d >= now, "deadline {d} before now {now}");
            }
            now += u64::from(n & 0x7f) * 100;
            done = m.tick(now, &mut out);
        }
    }
    clean(&out);
    if let Some(c) = done {
        assert!(c.index < entries.len());
        assert!(c.options.len() <= 2047);
        if !c.edited {
            assert_eq!(c.options, entries[c.index].options);
        }
        if !c.by_hand {
            assert_eq!(c.index, default);
            assert!(show.timeout_ms.is_some_and(|t| now >= t), "booted by itself at {now} with {show:?}");
        } else {
            assert!(typed);
        }
    }
});
