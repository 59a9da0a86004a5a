//! disk-log: the template for a stubdomain that keeps state on its own
//! disk, as a task on the hvmlite runtime.
//!
//! Each boot it opens the domain's first disk (the runtime's PV block
//! frontend, requests as futures), reads the header block (block 0:
//! `hvmlite disk-log` and a boot count), writes a record for this boot in
//! block N (N = the new count) and the header back — both writes in
//! flight together — flushes the backend's cache, reads the record back
//! and compares, and returns: the runtime hands the disk back and powers
//! off. The records are text, so dom0 reads them from the image: block N
//! starts with `disk-log: boot N`. Works with whatever block size the
//! backend has (512 or 4096 bytes); a full disk, a read-only one or a
//! backend that fails a request is one FATAL line.
//!
//! With `disk-log.loop` on its command line it then keeps writing: record
//! K of this boot goes to block N + K, [`WINDOW`] writes in flight at
//! once, each batch flushed, and `data/records` in xenstore says how many
//! are acknowledged (written and flushed), until the toolstack asks for a
//! shutdown. A record fills its block with one 32-byte line repeated, so
//! a torn or misplaced block shows. This is what the suspend tests save
//! and restore in the middle of; the app itself has no code for that.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use hvmlite::rt::blk::{self, Disk};
use hvmlite::rt::time::{join, join_all, select, Either};
use hvmlite::rt::{self};
use hvmlite::{platform, xen, Boot};

hvmlite::main!(main);

const MAGIC: &str = "hvmlite disk-log\n";

/// Records in flight at once in the write loop.
const WINDOW: u64 = 4;

async fn main(boot: Boot) {
    let fail = |what: &str, e: &dyn core::fmt::Display| -> ! { platform::fatal(format_args!("disk-log: {what}: {e}")) };
    let disks = blk::disks().await.unwrap_or_else(|e| fail("disks", &e));
    let Some(disk) = disks.into_iter().next() else { fail("no disk", &"give the domain a disk = [...]") };
    let name = disk.name();
    let info = disk.info();
    let bs = info.sector_size as usize;
    log::info!("disk-log: {name}: {} blocks of {bs} bytes{}", info.sectors, if info.flush { ", flush" } else { "" });

    // The header: the magic and the boot count, or a fresh disk.
    let mut block = vec![0u8; bs];
    disk.read(0, &mut block).await.unwrap_or_else(|e| fail("reading block 0", &disk.explain(e)));
    let boots = core::str::from_utf8(&block)
        .ok()
        .and_then(|t| t.strip_prefix(MAGIC))
        .and_then(|t| t.split('\n').next()?.strip_prefix("boots ")?.parse::<u64>().ok())
        .unwrap_or(0);
    let n = boots + 1;
    if n >= info.sectors {
        fail(name, &format_args!("full: {} blocks hold {} boots", info.sectors, info.sectors - 1));
    }

    // This boot's record in block n and the header, together; then the flush.
    let record = format!("disk-log: boot {n}, block size {bs}, {} ms after start\n", xen::time::since_boot().as_millis());
    let mut out = vec![0u8; bs];
    out[..record.len()].copy_from_slice(record.as_bytes());
    let header = format!("{MAGIC}boots {n}\n");
    let mut head = vec![0u8; bs];
    head[..header.len()].copy_from_slice(header.as_bytes());
    let (a, b) = (disk.write(n, &out), disk.write(0, &head));
    let (ra, rb) = join(a, b).await;
    ra.unwrap_or_else(|e| fail(&format!("writing block {n}"), &disk.explain(e)));
    rb.unwrap_or_else(|e| fail("writing block 0", &disk.explain(e)));
    if info.flush {
        disk.flush().await.unwrap_or_else(|e| fail("flush", &disk.explain(e)));
    }

    let mut back = vec![0u8; bs];
    disk.read(n, &mut back).await.unwrap_or_else(|e| fail(&format!("reading block {n}"), &disk.explain(e)));
    if back != out {
        fail(name, &format_args!("block {n} read back differs from what was written"));
    }
    log::info!("disk-log: {name}: boot {n} written to block {n}{}, read back the same", if info.flush { " and flushed" } else { "" });

    if boot.args().any(|a| a == "disk-log.loop") {
        match select(write_loop(&disk, n), rt::shutdown_requested()).await {
            Either::Left(k) => log::info!("disk-log: {name}: full after {k} records"),
            Either::Right(_) => log::info!("disk-log: {name}: shutdown asked; stopping the records"),
        }
    }
}

/// Record `k` of boot `n`: a 32-byte line repeated over the block.
fn record(n: u64, k: u64, bs: usize) -> Vec<u8> {
    let line = format!("{:<31}\n", format!("disk-log {n} record {k}"));
    line.as_bytes().iter().copied().cycle().take(bs).collect()
}

/// Records 1, 2, … of boot `n` in the blocks after `n`, [`WINDOW`] at a
/// time, flushed, counted in `data/records`; returns when the disk is full.
async fn write_loop(disk: &Disk, n: u64) -> u64 {
    let fail = |what: &str, e: &dyn core::fmt::Display| -> ! { platform::fatal(format_args!("disk-log: {what}: {e}")) };
    let xs = rt::xenstore().unwrap_or_else(|| fail("loop", &"no xenstore to count the records in"));
    let info = disk.info();
    let bs = info.sector_size as usize;
    let mut done = 0u64;
    loop {
        let batch: Vec<(u64, Vec<u8>)> =
            (done + 1..=done + WINDOW).filter(|k| n + k < info.sectors).map(|k| (k, record(n, k, bs))).collect();
        if batch.is_empty() {
            return done;
        }
        // All of the batch in flight together.
        let results = join_all(batch.iter().map(|(k, b)| disk.write(n + k, b))).await;
        for (r, (k, _)) in results.into_iter().zip(&batch) {
            r.unwrap_or_else(|e| fail(&format!("record {k}"), &disk.explain(e)));
        }
        if info.flush {
            disk.flush().await.unwrap_or_else(|e| fail("flush", &disk.explain(e)));
        }
        done += batch.len() as u64;
        let _ = xs.write("data/records", &format!("{done}")).await;
        rt::time::sleep(Duration::from_millis(5)).await;
    }
}
