//! The boot menu on the PV console: [`menu::Menu`]'s keys read from the
//! console ring `xl console` writes, its text written back, its deadlines
//! kept with Xen's clock. Without a PV console (dom0, QEMU) the default
//! boots as it would unseen.

use alloc::string::String;
use core::time::Duration;

use crate::disk::bootcfg::menu::{self, Choice, Show};
use crate::disk::bootcfg::BootEntry;
use crate::xen::{console, events, time};

/// Show the menu over `entries` as `show` asks, `default` chosen first;
/// the entry to boot and its command line.
pub fn choose(entries: &[BootEntry], default: usize, show: Show, heading: &str) -> Choice {
    let unseen = Choice { index: default, options: entries[default].options.clone(), by_hand: false, edited: false };
    let Some(port) = console::port() else { return unseen };
    let t0 = time::now();
    let ms = || time::now().since(t0).as_millis() as u64;
    let mut m = menu::Menu::new(entries, default, show, heading, 0);
    let mut out = String::new();
    let mut done = m.start(0, &mut out);
    let mut buf = [0u8; 64];
    loop {
        if !out.is_empty() {
            // A broken ring has been reported by the console already.
            let _ = console::write(out.as_bytes());
            out.clear();
        }
        if let Some(c) = done {
            return c;
        }
        let n = match console::read(&mut buf) {
            Ok(n) => n,
            Err(_) => return unseen,
        };
        if n > 0 {
            done = m.input(&buf[..n], &mut out);
            continue;
        }
        let now = ms();
        done = m.tick(now, &mut out);
        if done.is_some() {
            continue;
        }
        let deadline = m.deadline(now).map(|d| t0 + Duration::from_millis(d));
        events::wait(&[port], deadline);
    }
}
