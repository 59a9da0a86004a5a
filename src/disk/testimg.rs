//! Test helpers: disks built byte by byte (MBR, EBR chains, GPT with an
//! independent CRC-32, so the tests do not trust the code they test), and
//! real ext4 images made by Debian's `mkfs.ext4 -d` in a scratch directory
//! under `target/` that is removed when the test ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// CRC-32 (IEEE, reflected), bit by bit.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A disk under construction: `sectors` zeroed sectors of `ss` bytes.
pub struct Img {
    pub ss: usize,
    pub data: Vec<u8>,
}

/// One MBR/EBR record: status, type, start, size.
pub type Rec = (u8, u8, u32, u32);

impl Img {
    pub fn new(ss: usize, sectors: u64) -> Self {
        Img { ss, data: vec![0; ss * sectors as usize] }
    }
    pub fn sectors(&self) -> u64 {
        (self.data.len() / self.ss) as u64
    }
    pub fn put(&mut self, lba: u64, bytes: &[u8]) {
        let at = lba as usize * self.ss;
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
    }
    /// An MBR (or EBR) at `lba`: up to four records and the signature.
    pub fn mbr(&mut self, lba: u64, recs: &[Rec]) {
        let mut s = vec![0u8; 512];
        for (i, &(status, ty, start, size)) in recs.iter().enumerate() {
            let r = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
            r[0] = status;
            r[4] = ty;
            r[8..12].copy_from_slice(&start.to_le_bytes());
            r[12..16].copy_from_slice(&size.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        self.put(lba, &s);
    }

    /// A protective MBR and both GPTs (128 entries of 128 bytes) holding
    /// `parts` as (type GUID bytes, first LBA, last LBA, name).
    pub fn gpt(&mut self, parts: &[([u8; 16], u64, u64, &str)]) {
        let n = self.sectors();
        self.mbr(0, &[(0, 0xee, 1, (n - 1).min(u32::MAX as u64) as u32)]);
        let mut entries = vec![0u8; 128 * 128];
        for (i, (ty, first, last, name)) in parts.iter().enumerate() {
            let e = &mut entries[128 * i..128 * (i + 1)];
            e[0..16].copy_from_slice(ty);
            e[16..32].copy_from_slice(&[i as u8 + 1; 16]);
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last.to_le_bytes());
            for (j, c) in name.encode_utf16().enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&c.to_le_bytes());
            }
        }
        let array_sectors = (entries.len() / self.ss) as u64;
        let first_usable = 2 + array_sectors;
        let last_usable = n - 2 - array_sectors;
        let array_crc = crc32(&entries);
        let header = |my: u64, alt: u64, array_lba: u64| {
            let mut h = vec![0u8; 92];
            h[0..8].copy_from_slice(b"EFI PART");
            h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
            h[12..16].copy_from_slice(&92u32.to_le_bytes());
            h[24..32].copy_from_slice(&my.to_le_bytes());
            h[32..40].copy_from_slice(&alt.to_le_bytes());
            h[40..48].copy_from_slice(&first_usable.to_le_bytes());
            h[48..56].copy_from_slice(&last_usable.to_le_bytes());
            h[56..72].copy_from_slice(&[0x5a; 16]);
            h[72..80].copy_from_slice(&array_lba.to_le_bytes());
            h[80..84].copy_from_slice(&128u32.to_le_bytes());
            h[84..88].copy_from_slice(&128u32.to_le_bytes());
            h[88..92].copy_from_slice(&array_crc.to_le_bytes());
            let crc = crc32(&h);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            h
        };
        self.put(1, &header(1, n - 1, 2));
        self.put(2, &entries);
        self.put(n - 1 - array_sectors, &entries);
        self.put(n - 1, &header(n - 1, 1, n - 1 - array_sectors));
    }

    /// Re-seal the GPT header at `lba` after a test changed it.
    pub fn reseal_gpt_header(&mut self, lba: u64) {
        let at = lba as usize * self.ss;
        self.data[at + 16..at + 20].fill(0);
        let crc = crc32(&self.data[at..at + 92]);
        self.data[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The Linux filesystem data partition type GUID, as stored (mixed-endian).
pub const LINUX_FS: [u8; 16] = [0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4];
/// The EFI system partition type GUID, as stored.
pub const EFI_SYSTEM: [u8; 16] = [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b];

/// A scratch directory under `target/disk-tests/`, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/disk-tests").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `mkfs.ext4` (Debian's defaults: metadata_csum, 64bit, extents,
/// flex_bg, a journal) over a tree that `fill` writes into a scratch
/// directory; returns the image, `size_kib` KiB. `extra` goes to mkfs
/// (e.g. `-b 1024`, `-O ^has_journal`).
pub fn mkfs_ext4(size_kib: u64, extra: &[&str], fill: impl FnOnce(&Path)) -> Vec<u8> {
    let scratch = Scratch::new("mkfs");
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).unwrap();
    fill(&root);
    let image = scratch.path().join("fs.img");
    let mkfs = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mkfs.ext4 (Debian's e2fsprogs) is needed to build test images");
    let out = Command::new(mkfs)
        .args(["-q", "-F", "-E", "root_owner=0:0", "-L", "hvroot", "-U", "0a0b0c0d-0000-4000-8000-00000000beef"])
        .args(extra)
        .arg("-d")
        .arg(&root)
        .arg(&image)
        .arg(format!("{size_kib}k"))
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs.ext4 failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&image).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so a failing compare is
/// reproducible.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A `MemDisk` for which being asked for a sector past its end is a bug
/// in the caller (the code under test must check first): it panics.
pub struct StrictDisk(pub crate::dev::block::MemDisk);

impl crate::dev::block::BlockDevice for StrictDisk {
    fn sector_size(&self) -> u32 {
        self.0.sector_size()
    }
    fn sectors(&self) -> u64 {
        self.0.sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), crate::dev::block::BlockError> {
        if let Err(e) = crate::dev::block::check_request(self.sector_size(), self.sectors(), sector, buf.len()) {
            panic!("the device was asked for sectors it does not have: {e}");
        }
        self.0.read(sector, buf)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), crate::dev::block::BlockError> {
        panic!("read-only code wrote");
    }
    fn flush(&mut self) -> Result<(), crate::dev::block::BlockError> {
        Ok(())
    }
}

/// Run one `debugfs -w` request on an ext image (e.g. `sif /f size N` to
/// forge an inode field; debugfs re-seals the checksums).
pub fn debugfs(image: &mut Vec<u8>, request: &str) {
    let scratch = Scratch::new("debugfs");
    let path = scratch.path().join("fs.img");
    std::fs::write(&path, &image).unwrap();
    let debugfs = ["/usr/sbin/debugfs", "/sbin/debugfs"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("debugfs (Debian's e2fsprogs) is needed to forge test images");
    let out = Command::new(debugfs).args(["-w", "-R", request]).arg(&path).output().unwrap();
    assert!(out.status.success(), "debugfs {request}: {}", String::from_utf8_lossy(&out.stderr));
    *image = std::fs::read(&path).unwrap();
}
