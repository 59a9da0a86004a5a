//! Booting the kernel inside the domain's own disk (the pvgrub job): no
//! one in dom0 reads the guest's filesystem.
//!
//! For each disk the toolstack gave the domain (`xvda` first): connect the
//! PV block frontend ([`BlkFront`]), read its partition table, and on each
//! partition (or the one `hvmlite.root=xvdaN` names) that holds ext2/3/4,
//! XFS, btrfs or FAT (an ESP), look for boot entries ([`bootcfg::find`]: BLS entries, `grub.cfg`,
//! `extlinux.conf`, Debian's symlinks). The entry chosen (its own default,
//! or `hvmlite.entry=N|TITLE`) names a kernel and initrds: they are read
//! into free RAM clear of the heap and of where the kernel will go, the
//! disk is handed back (so the kernel's own blkfront finds it fresh), and
//! the loader starts the kernel with the entry's options followed by the
//! domain's command line.
//!
//! A disk that is there but cannot be booted — a bad table, no boot
//! entry, a missing kernel, a backend that breaks the protocol — is one
//! `FATAL` line naming what and where. No disk at all is not an error: the
//! caller goes on (the loader image runs its stubdomain service).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::arch::memory::{fit_free, Range};
use crate::boot::Boot;
use crate::disk::bootcfg::menu::Show;
use crate::disk::bootcfg::{self, Found};
use crate::disk::part::{self, PartitionInfo, TableKind};
use crate::disk::Volume;
use crate::payload::kernel;
use crate::payload::loader::{self, Payload};
use crate::payload::menu;
use crate::platform;
use crate::xen::blkfront::BlkFront;
use crate::xen::store::Store;
use crate::xen::time;
use crate::xen::xenbus::{self, Device};

macro_rules! fatal {
    ($($t:tt)*) => { platform::fatal(format_args!("disk: {}", format_args!($($t)*))) };
}

/// The filesystem reader's largest read-ahead: large enough that a kernel
/// streams through every request slot of the frontend at once. Fills
/// start smaller and grow along a stream ([`crate::disk::fs::MIN_FILL`]).
const READ_WINDOW: usize = 2 << 20;
/// Kernel and initrd buffers stay below 4 GiB (an initrd's limit without
/// `XLF_CAN_BE_LOADED_ABOVE_4G`) and above the first MiB.
const BUF_MIN: u64 = 1 << 20;
const BUF_MAX: u64 = 4 << 30;

type Disk = Rc<RefCell<BlkFront>>;

/// `xvda`, `xvdb`, …, `xvdaa` from a `vbd` id (a Xen virtual device number,
/// docs/misc/vbd-interface.txt: `202 << 8 | disk << 4 | partition`, or the
/// extended form `1 << 28 | disk << 8 | partition`).
pub fn vdev_name(id: u32) -> String {
    let disk = if id & (1 << 28) != 0 {
        (id >> 8) & 0xfffff
    } else if id >> 8 == 202 {
        (id >> 4) & 0xf
    } else {
        return format!("vbd{id}");
    };
    let mut letters = Vec::new();
    let mut n = disk + 1;
    while n > 0 {
        letters.push(b'a' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("xvd{}", String::from_utf8(letters).unwrap_or_default())
}

/// Boot from the domain's disks; returns only if it has none.
pub fn boot(boot: &Boot, xs: &mut Store) {
    let devices = xenbus::devices(xs, "vbd").unwrap_or_else(|e| fatal!("{e}"));
    if devices.is_empty() {
        return;
    }
    let root = boot.args().find_map(|a| a.strip_prefix("hvmlite.root="));
    let choice = bootcfg::entry_choice(boot.cmdline.unwrap_or(""));
    let forced = boot
        .args()
        .find_map(|a| a.strip_prefix("hvmlite.menu="))
        .map(|v| Show::from_option(v).unwrap_or_else(|| fatal!("hvmlite.menu={v}: a number of seconds, -1 (wait for a key) or off")));
    let mut tried = Vec::new();
    for dev in devices {
        let name = vdev_name(dev.id);
        if let Some(r) = root {
            if !r.starts_with(name.as_str()) {
                continue;
            }
        }
        if let Some(found) = try_disk(boot, xs, dev, &name, root, choice.as_deref(), forced) {
            found(); // never returns
        }
        tried.push(name);
    }
    match root {
        Some(r) if tried.is_empty() => fatal!("hvmlite.root={r}: no such disk"),
        _ => fatal!("no boot entry on {}", tried.join(", ")),
    }
}

/// What one disk holds; `Some` is a closure that starts the kernel found.
fn try_disk<'a>(
    boot: &'a Boot,
    xs: &'a mut Store,
    dev: Device,
    name: &str,
    root: Option<&str>,
    choice: Option<&str>,
    forced: Option<Show>,
) -> Option<impl FnOnce() + 'a> {
    let blk = BlkFront::open(xs, dev).unwrap_or_else(|e| fatal!("{name}: {e}"));
    let info = blk.info();
    log::info!(
        "disk: {name}: {} sectors of {} bytes{}{}, ring {} page{}",
        info.sectors,
        info.sector_size,
        if info.read_only { ", read-only" } else { "" },
        if info.cdrom { ", cdrom" } else { "" },
        info.ring_pages,
        if info.ring_pages == 1 { "" } else { "s" }
    );
    let disk: Disk = Rc::new(RefCell::new(blk));
    let table = part::read_table(&mut disk.clone()).unwrap_or_else(|e| fatal!("{name}: {}", disk.borrow().explain(e)));
    let kind = match table.kind {
        TableKind::Whole => "no partition table",
        TableKind::Mbr => "MBR",
        TableKind::Gpt => "GPT",
    };
    log::info!("disk: {name}: {kind}, {} partition{}", table.partitions.len(), if table.partitions.len() == 1 { "" } else { "s" });
    for p in &table.partitions {
        let pname = if p.number == 0 { String::from(name) } else { format!("{name}{}", p.number) };
        if let Some(r) = root {
            if r != pname && !(p.number == 0 && r == name) {
                continue;
            }
        }
        if let Some(found) = try_partition(&disk, p, &pname, choice, forced) {
            let (mut fs, found) = found;
            if let Some(w) = &found.grubenv {
                save_grubenv(&disk, p, &mut fs, w, &pname);
            }
            return Some(read_and_start(boot, xs, disk, fs, found, pname));
        }
    }
    // Nothing here: hand the disk back and let the next one be tried.
    release(xs, disk, name);
    None
}

fn try_partition(disk: &Disk, p: &PartitionInfo, pname: &str, choice: Option<&str>, forced: Option<Show>) -> Option<(Volume, Found)> {
    let part = || p.open(disk.clone()).unwrap_or_else(|e| fatal!("{pname}: {e}"));
    let mut fs = match Volume::open(part, READ_WINDOW) {
        Ok(Some(fs)) => fs,
        Ok(None) => {
            log::info!("disk: {pname}: not ext2/3/4, XFS, btrfs or FAT");
            return None;
        }
        Err(e) => fatal!("{pname}: {}", disk.borrow().explain(e)),
    };
    match bootcfg::find(&mut fs, choice) {
        Ok(mut found) => {
            if let Some(w) = &found.warning {
                log::warn!("boot entry: {pname}: {w}; booting the first entry, as GRUB does");
            }
            // The menu, as the configuration (or hvmlite.menu=) asks; an
            // hvmlite.entry= from dom0 has chosen already.
            if found.why != bootcfg::Why::Override {
                let heading = format!("hvmlite: boot menu of {pname} {}", found.config);
                let c = menu::choose(&found.entries, found.selected, forced.unwrap_or(found.show), &heading);
                if c.by_hand {
                    found.choose(c.index);
                    found.why = bootcfg::Why::Menu;
                    found.entries[c.index].options = c.options;
                }
            }
            let e = found.entry();
            let why = match found.why {
                bootcfg::Why::Override => "hvmlite.entry",
                bootcfg::Why::Default => "default",
                bootcfg::Why::First => "first",
                bootcfg::Why::Menu => "menu",
                bootcfg::Why::Fallback => "first: the default names no entry",
            };
            // ext4 is the usual case and goes unnamed; FAT says which.
            let fat = match &fs {
                Volume::Fat(f) => format!("{} ", f.kind()),
                Volume::Xfs(_) => String::from("XFS "),
                Volume::Btrfs(_) => match &e.subvol {
                    bootcfg::Subvol::Top => String::from("btrfs "),
                    bootcfg::Subvol::Default => String::from("btrfs default subvolume "),
                    bootcfg::Subvol::Path(p) => format!("btrfs subvolume {p} "),
                    bootcfg::Subvol::Id(n) => format!("btrfs subvolume {n} "),
                },
                Volume::Ext4(_) => String::new(),
            };
            log::info!(
                "boot entry: {pname} {fat}{} {}: \"{}\" ({} of {}, {why})",
                found.format,
                found.config,
                e.title,
                found.selected,
                found.entries.len()
            );
            Some((fs, found))
        }
        Err(bootcfg::Error::NothingFound) => {
            log::info!("disk: {pname}: no boot configuration");
            None
        }
        Err(e) => fatal!("{pname}: {}", disk.borrow().explain(e)),
    }
}

/// Write grubenv back as the configuration's `save_env`s leave it, before
/// the kernel is read, as GRUB does: `grub-reboot`'s one-shot entry is
/// then cleared. A refusal is a warning; the boot goes on.
fn save_grubenv(disk: &Disk, p: &PartitionInfo, fs: &mut Volume, w: &Result<bootcfg::EnvWrite, String>, pname: &str) {
    let w = match w {
        Ok(w) => w,
        Err(why) => return log::warn!("grubenv: {pname}: {why}"),
    };
    let mut dev = p.open(disk.clone()).unwrap_or_else(|e| fatal!("{pname}: {e}"));
    match fs.rewrite_in_place(&mut dev, &w.path, &w.old, &w.new) {
        Ok(()) => log::info!("grubenv: {pname} {} written: {}", w.path, w.changed.join(" ")),
        Err(why) => log::warn!("grubenv: {pname} {} not written: {why}", w.path),
    }
}

/// Read the entry's kernel and initrds into free RAM, hand the disk back,
/// and return what starts the kernel.
fn read_and_start<'a>(boot: &'a Boot, xs: &'a mut Store, disk: Disk, mut fs: Volume, found: Found, pname: String) -> impl FnOnce() + 'a {
    let entry = found.entry().clone();
    // On btrfs: the tree GRUB would have read them from.
    bootcfg::Files::set_subvol(&mut fs, &entry.subvol)
        .unwrap_or_else(|e| fatal!("{pname}: btrfs subvolume {:?}: {}", entry.subvol, disk.borrow().explain(e)));
    let t0 = time::now();
    let mut taken: Vec<Range> = Vec::new();
    let avoid = |taken: &[Range]| -> Vec<Range> { boot.reserved.iter().chain(taken).copied().collect() };

    // The kernel low, right above hvmlite; the initrd high, below the
    // heap: the kernel is then placed in between.
    let klen = fs.file_len(&entry.linux).unwrap_or_else(|e| fatal!("{pname}: kernel {}: {}", entry.linux, disk.borrow().explain(e)));
    let kbuf = fit_free(boot.e820, &avoid(&taken), klen as u64, BUF_MIN, BUF_MAX, false)
        .unwrap_or_else(|| fatal!("{pname}: no free RAM for the {klen}-byte kernel {}", entry.linux));
    taken.push(kbuf);
    // SAFETY: free RAM (not reserved, not another buffer), identity-mapped
    // writable; from here on it is kept clear of the kernel's placement.
    let kernel_bytes = unsafe { core::slice::from_raw_parts_mut(kbuf.start as *mut u8, klen) };
    fs.read_file_into(&entry.linux, kernel_bytes)
        .unwrap_or_else(|e| fatal!("{pname}: kernel {}: {}", entry.linux, disk.borrow().explain(e)));

    // Several initrds are concatenated, each padded to 4 bytes (as GRUB
    // does: cpio archives may follow one another).
    let mut sizes = Vec::new();
    for path in &entry.initrds {
        sizes.push(fs.file_len(path).unwrap_or_else(|e| fatal!("{pname}: initrd {path}: {}", disk.borrow().explain(e))));
    }
    let total: usize = sizes.iter().map(|s| s.next_multiple_of(4)).sum();
    let initrd = if total == 0 {
        None
    } else {
        let ibuf = fit_free(boot.e820, &avoid(&taken), total as u64, BUF_MIN, BUF_MAX, true)
            .unwrap_or_else(|| fatal!("{pname}: no free RAM for {total} bytes of initrd"));
        taken.push(ibuf);
        let mut at = ibuf.start;
        for (path, &len) in entry.initrds.iter().zip(&sizes) {
            // SAFETY: inside `ibuf`, free RAM as the kernel buffer is.
            let dst = unsafe { core::slice::from_raw_parts_mut(at as *mut u8, len) };
            fs.read_file_into(path, dst).unwrap_or_else(|e| fatal!("{pname}: initrd {path}: {}", disk.borrow().explain(e)));
            // SAFETY: the padding lies inside `ibuf` (sized with it).
            unsafe { core::ptr::write_bytes((at + len as u64) as *mut u8, 0, len.next_multiple_of(4) - len) };
            at += len.next_multiple_of(4) as u64;
        }
        Range::sized(ibuf.start, at - ibuf.start)
    };
    let bytes = klen + total;
    let ns = (time::now().since(t0).as_nanos() as u64).max(1);
    let stats = fs.read_stats();
    log::info!(
        "disk: read {bytes} bytes in {} ms ({} MiB/s), {} device reads",
        ns / 1_000_000,
        (bytes as u64 * 1_000_000_000 / ns) >> 20,
        stats.device_reads
    );
    drop(fs);
    let name = vdev_name(disk.borrow().device().id);
    release(xs, disk, &name);

    let kernel_bytes: &'a [u8] = kernel_bytes;
    let k = kernel::parse(kernel_bytes).unwrap_or_else(|e| fatal!("{pname}: kernel {}: {e}", entry.linux));
    let cmdline = entry.options;
    // A vmlinux names its PVH entry in its notes; a bzImage hides it.
    let pvh_entry = k.pvh_entry;
    move || {
        let taken = taken;
        let p = Payload {
            image: kernel_bytes,
            kernel: k,
            setup_header: None,
            preloaded: None,
            initrd,
            cmdline: &cmdline,
            occupied: &taken,
            pvh_entry,
            vacated: None,
        };
        loader::launch(boot, &p)
    }
}

/// Hand the disk back (every grant revoked, the backend waiting for the
/// next frontend).
fn release(xs: &mut Store, disk: Disk, name: &str) {
    let blk = match Rc::try_unwrap(disk) {
        Ok(cell) => cell.into_inner(),
        Err(_) => fatal!("{name}: still in use when handing it back"),
    };
    if let Some(e) = blk.error() {
        fatal!("{e}");
    }
    blk.close(xs).unwrap_or_else(|e| fatal!("{name}: handing the disk back: {e}"));
    log::info!("disk: {name}: handed back");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbd_names() {
        assert_eq!(vdev_name(51712), "xvda");
        assert_eq!(vdev_name(51728), "xvdb");
        assert_eq!(vdev_name((1 << 28) | (26 << 8)), "xvdaa");
        assert_eq!(vdev_name(768), "vbd768");
    }
}
