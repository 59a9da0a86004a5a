//! disk-log: the template for a stubdomain that keeps state on its own
//! disk.
//!
//! Each boot it connects to the domain's first disk through the PV block
//! frontend, reads the header block (block 0: `hvmlite disk-log` and a boot
//! count), writes a record for this boot in block N (N = the new count),
//! writes the header back, flushes the backend's cache, reads the record
//! back and compares, hands the disk back and powers off. The records are
//! text, so dom0 reads them from the image: block N starts with
//! `disk-log: boot N`. Works with whatever block size the backend has
//! (512 or 4096 bytes); a full disk, a read-only one or a backend that
//! fails a request is one FATAL line.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec;

use hvmlite::dev::block::BlockDevice;
use hvmlite::payload::disk::vdev_name;
use hvmlite::platform::{self, Shutdown};
use hvmlite::xen::blkfront::BlkFront;
use hvmlite::xen::{time, xenbus};
use hvmlite::Boot;

hvmlite::app!(main);

const MAGIC: &str = "hvmlite disk-log\n";

fn main(boot: Boot) -> ! {
    let fail = |what: &str, e: &dyn core::fmt::Display| -> ! { platform::fatal(format_args!("disk-log: {what}: {e}")) };
    let Some(xs) = boot.xenstore() else { fail("no xenstore", &"not a Xen domU") };
    let mut xs = xs.unwrap_or_else(|e| fail("xenstore", &e));
    let dev = xenbus::devices(&mut xs, "vbd").unwrap_or_else(|e| fail("disks", &e));
    let Some(dev) = dev.into_iter().next() else { fail("no disk", &"give the domain a disk = [...]") };
    let name = vdev_name(dev.id);
    let mut disk = BlkFront::open(&mut xs, dev).unwrap_or_else(|e| fail(&name, &e));
    let info = disk.info();
    let bs = info.sector_size as usize;
    log::info!("disk-log: {name}: {} blocks of {bs} bytes{}", info.sectors, if info.flush { ", flush" } else { "" });

    // The header: the magic and the boot count, or a fresh disk.
    let mut block = vec![0u8; bs];
    disk.read(0, &mut block).unwrap_or_else(|e| fail("reading block 0", &disk.explain(e)));
    let boots = core::str::from_utf8(&block)
        .ok()
        .and_then(|t| t.strip_prefix(MAGIC))
        .and_then(|t| t.split('\n').next()?.strip_prefix("boots ")?.parse::<u64>().ok())
        .unwrap_or(0);
    let n = boots + 1;
    if n >= info.sectors {
        fail(&name, &format_args!("full: {} blocks hold {} boots", info.sectors, info.sectors - 1));
    }

    // This boot's record in block n, then the header, then the flush.
    let record = format!("disk-log: boot {n}, block size {bs}, {} ms after start\n", time::since_boot().as_millis());
    let mut out = vec![0u8; bs];
    out[..record.len()].copy_from_slice(record.as_bytes());
    disk.write(n, &out).unwrap_or_else(|e| fail(&format!("writing block {n}"), &disk.explain(e)));
    let header = format!("{MAGIC}boots {n}\n");
    let mut head = vec![0u8; bs];
    head[..header.len()].copy_from_slice(header.as_bytes());
    disk.write(0, &head).unwrap_or_else(|e| fail("writing block 0", &disk.explain(e)));
    if info.flush {
        disk.flush().unwrap_or_else(|e| fail("flush", &disk.explain(e)));
    }

    let mut back = vec![0u8; bs];
    disk.read(n, &mut back).unwrap_or_else(|e| fail(&format!("reading block {n}"), &disk.explain(e)));
    if back != out {
        fail(&name, &format_args!("block {n} read back differs from what was written"));
    }
    log::info!("disk-log: {name}: boot {n} written to block {n}{}, read back the same", if info.flush { " and flushed" } else { "" });
    disk.close(&mut xs).unwrap_or_else(|e| fail("handing the disk back", &e));
    platform::shutdown(Shutdown::Poweroff)
}
