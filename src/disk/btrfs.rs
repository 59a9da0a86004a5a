//! Read-only btrfs on a [`BlockDevice`], through the `lambutter` crate
//! (SINGLE/DUP/RAID1 profiles, metadata CRC32C checked, inline, regular
//! and prealloc extents, zstd/zlib/LZO extents, nested subvolumes crossed
//! as a mount shows them): openSUSE's and SLES's `/boot` inside a snapper
//! snapshot, Arch's `compress-force=zstd` root, Fedora Cloud's `/boot`
//! subvolume.
//!
//! A btrfs filesystem has many trees; which one a path starts at is
//! [`Subvol`], as GRUB decides it ([`set_subvol`](BtrfsFs::set_subvol)):
//! the top level (upstream GRUB), the default subvolume
//! (`btrfs_relative_path=y`, openSUSE and Fedora's patched GRUB), or one
//! named by path or id (`btrfs_subvol`, `btrfs_subvolid`). Each tree asked
//! for is opened once and kept (at most [`MAX_TREES`]); they all read
//! through one read-ahead ([`CachedReader`]), so the device is read once.
//!
//! What hvmlite adds around lambutter, as for XFS ([`super::xfs`]):
//! requests past the device refused before the device is asked; symlinks,
//! `..` and the read limit as for every reader that follows none
//! ([`NoFollow`]); lambutter's error tokens as [`FsError`]s.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use lambutter::{BlockRead, Btrfs, Error as BtrfsError, Path, SuperblockReason};

use super::fs::{absent_is_none, files_by_path, CachedReader, FileKind, FsError, ReadStats};
use super::nofollow::{kind, NoFollow};
use super::{Files, Subvol};
use crate::dev::block::{BlockDevice, BlockError};

/// `_BHRfS_M`, at byte 64 of the primary superblock (at 64 KiB).
const MAGIC: [u8; 8] = *b"_BHRfS_M";
const SUPER_OFFSET: u64 = 0x1_0000;
/// The top level's tree id.
const TOP_LEVEL: u64 = 5;
/// The most trees kept open: the default, the top level and a few a
/// configuration names (each holds its own chunk map).
pub const MAX_TREES: usize = 4;
/// The most top-level subvolumes searched for a boot configuration.
pub const MAX_TOP_SUBVOLS: usize = 32;

/// lambutter's byte reads, through the one read-ahead all trees share.
struct Reader(Rc<RefCell<CachedReader<Box<dyn BlockDevice>>>>);

impl BlockRead for Reader {
    type Error = BlockError;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.borrow_mut().read_at(offset, buf)
    }
}

impl From<BtrfsError> for FsError {
    fn from(e: BtrfsError) -> Self {
        match e {
            BtrfsError::NotFound => FsError::NotFound,
            BtrfsError::NotARegularFile => FsError::NotAFile,
            BtrfsError::UnsupportedFeature(f) => FsError::Unsupported(format!("btrfs feature {f}")),
            BtrfsError::UnsupportedProfile(p) => FsError::Unsupported(format!("btrfs chunk profile {p}")),
            BtrfsError::UnsupportedChecksum(c) => FsError::Unsupported(format!("btrfs checksum {c}")),
            BtrfsError::BadSuperblock(r @ (SuperblockReason::UnsupportedCsumType | SuperblockReason::UnsupportedIncompat)) => {
                FsError::Unsupported(format!("btrfs: {}", BtrfsError::BadSuperblock(r)))
            }
            BtrfsError::NotASubvolume => FsError::Other("btrfs: not a subvolume".into()),
            BtrfsError::Io { token, offset } => FsError::Other(format!("btrfs: reading byte {offset} ({token}) failed")),
            BtrfsError::OutOfMemory { token } => FsError::Other(format!("btrfs: out of memory ({token})")),
            other => FsError::Corrupt(format!("btrfs: {other}")),
        }
    }
}

/// An opened btrfs filesystem. Paths are absolute, inside the tree chosen
/// last ([`BtrfsFs::set_subvol`]; at first the default subvolume, as
/// `mount` shows it); symlinks are followed within it.
pub struct BtrfsFs {
    dev: Rc<RefCell<CachedReader<Box<dyn BlockDevice>>>>,
    size: u64,
    stats: Rc<Cell<ReadStats>>,
    /// The trees opened, the default subvolume's first.
    trees: RefCell<Vec<(Subvol, Btrfs<Reader>)>>,
    /// Which of them paths start at.
    now: Cell<usize>,
    max_file: u64,
}

impl BtrfsFs {
    /// Whether `dev` holds btrfs: the primary superblock's magic.
    /// `Ok(false)` for a device too small to hold one.
    pub fn looks_like_btrfs(dev: &mut dyn BlockDevice) -> Result<bool, BlockError> {
        let ss = u64::from(dev.sector_size());
        if ss == 0 || dev.size_bytes() < SUPER_OFFSET + 4096 {
            return Ok(false);
        }
        let mut sector = vec![0u8; ss as usize];
        dev.read((SUPER_OFFSET + 64) / ss, &mut sector)?;
        let at = ((SUPER_OFFSET + 64) % ss) as usize;
        Ok(sector.get(at..at + 8) == Some(&MAGIC[..]))
    }

    /// Open the btrfs on `dev` at its default subvolume, with
    /// `window`-byte read-ahead (the caller has seen the magic).
    pub fn open_with_window(dev: Box<dyn BlockDevice>, window: usize) -> Result<Self, FsError> {
        let size = dev.size_bytes();
        let reader = CachedReader::new(dev, window)?;
        let stats = reader.shared_stats();
        let dev = Rc::new(RefCell::new(reader));
        let default = Btrfs::open(Reader(dev.clone()), size)?;
        Ok(BtrfsFs { dev, size, stats, trees: RefCell::new(vec![(Subvol::Default, default)]), now: Cell::new(0), max_file: size })
    }

    /// The largest file read; by default the device's size.
    pub fn set_max_file(&mut self, limit: u64) {
        self.max_file = limit;
    }

    /// The default subvolume's id (5: the top level itself).
    pub fn default_subvol_id(&self) -> u64 {
        self.trees.borrow()[0].1.subvolume()
    }

    /// Start paths at `s` from now on: opened when first asked for. A
    /// subvolume that does not exist is [`FsError::NotFound`].
    pub fn set_subvol(&self, s: &Subvol) -> Result<(), FsError> {
        let s = match s {
            Subvol::Id(TOP_LEVEL) => &Subvol::Top,
            Subvol::Top if self.default_subvol_id() == TOP_LEVEL => &Subvol::Default,
            s => s,
        };
        let mut trees = self.trees.borrow_mut();
        if let Some(i) = trees.iter().position(|(k, _)| k == s) {
            self.now.set(i);
            return Ok(());
        }
        let r = || Reader(self.dev.clone());
        let fs = match s {
            Subvol::Default => unreachable!("opened first"),
            Subvol::Top => Btrfs::open_subvol_id(r(), self.size, TOP_LEVEL),
            Subvol::Id(id) => Btrfs::open_subvol_id(r(), self.size, *id),
            Subvol::Path(p) => {
                let p = if p.starts_with('/') { p.clone() } else { format!("/{p}") };
                Btrfs::open_subvol_path(r(), self.size, Path::new(p.as_bytes()).ok_or(FsError::BadPath)?)
            }
        };
        let fs = match fs {
            Err(BtrfsError::NotASubvolume) => return Err(FsError::NotFound),
            r => r?,
        };
        // Room for it: the last tree a configuration named goes.
        if trees.len() == MAX_TREES {
            let i = trees.iter().rposition(|(k, _)| matches!(k, Subvol::Path(_) | Subvol::Id(_))).unwrap_or(MAX_TREES - 1);
            trees.remove(i);
        }
        trees.push((s.clone(), fs));
        self.now.set(trees.len() - 1);
        Ok(())
    }

    /// lambutter's tree the paths start at now.
    fn with<T>(&self, f: impl FnOnce(&mut Btrfs<Reader>) -> Result<T, BtrfsError>) -> Result<T, FsError> {
        let mut trees = self.trees.borrow_mut();
        let i = self.now.get().min(trees.len() - 1);
        Ok(f(&mut trees[i].1)?)
    }

    pub fn read_stats(&self) -> ReadStats {
        self.stats.get()
    }

    /// The subvolumes in the top level's root directory, sorted (at most
    /// [`MAX_TOP_SUBVOLS`]; an unreadable top level has none). Paths start
    /// at the top level afterwards.
    pub fn top_subvols(&self) -> Vec<String> {
        if self.set_subvol(&Subvol::Top).is_err() {
            return Vec::new();
        }
        let Ok(entries) = self.with(|fs| fs.read_dir(Path::from("/"))) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .into_iter()
            .filter(|e| e.inode.subvolume() != TOP_LEVEL)
            .filter_map(|e| String::from_utf8(e.name).ok())
            .take(MAX_TOP_SUBVOLS)
            .collect();
        crate::sort::sort_by(&mut names, |a, b| a.cmp(b));
        names
    }

    /// The filesystem's UUID (the superblock's `fsid`), as `blkid` and
    /// fstab's `UUID=` write it.
    pub fn uuid(&self) -> Option<String> {
        let mut id = [0u8; 16];
        self.dev.borrow_mut().read_at(SUPER_OFFSET + 0x20, &mut id).ok()?;
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
    }
}

impl NoFollow for BtrfsFs {
    fn lstat_raw(&self, p: &[u8]) -> Result<(FileKind, u64), FsError> {
        let path = Path::new(p).ok_or(FsError::BadPath)?;
        let m = self.with(|fs| {
            let ino = fs.resolve(path)?;
            fs.metadata(&ino)
        })?;
        Ok((kind(m.is_symlink(), m.is_dir(), m.is_file()), m.size))
    }

    fn link_raw(&self, p: &[u8]) -> Result<Vec<u8>, FsError> {
        let path = Path::new(p).ok_or(FsError::BadPath)?;
        self.with(|fs| fs.read_link(path))
    }

    fn read_raw(&self, p: &[u8], dst: &mut [u8]) -> Result<(), FsError> {
        let path = Path::new(p).ok_or(FsError::BadPath)?;
        let ino = self.with(|fs| fs.resolve(path))?;
        // lambutter returns at most one extent's worth per call.
        let mut done = 0;
        while done < dst.len() {
            let n = self.with(|fs| fs.read_file_at(&ino, done as u64, &mut dst[done..]))?;
            if n == 0 {
                return Err(FsError::Corrupt(format!("read {done} bytes of a {}-byte file", dst.len())));
            }
            done += n;
        }
        Ok(())
    }

    fn names_raw(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, FsError> {
        let path = Path::new(p).ok_or(FsError::BadPath)?;
        Ok(self.with(|fs| fs.read_dir(path))?.into_iter().map(|e| e.name).collect())
    }

    fn max_file(&self) -> u64 {
        self.max_file
    }
}

files_by_path!([] BtrfsFs, NoFollow::exists;
    fn set_subvol(&mut self, s: &Subvol) -> Result<(), FsError> {
        BtrfsFs::set_subvol(self, s)
    }

    fn default_subvol_differs(&mut self) -> bool {
        self.default_subvol_id() != TOP_LEVEL
    }

    fn fs_uuid(&mut self) -> Option<String> {
        self.uuid()
    }

    fn top_subvols(&mut self) -> Vec<String> {
        BtrfsFs::top_subvols(self)
    }
);

#[cfg(test)]
#[path = "../../tests/support/btrfs_image.rs"]
mod btrfs_image;

#[cfg(test)]
mod tests {
    use super::btrfs_image::{mkfs_btrfs, Op};
    use super::*;
    use crate::dev::block::MemDisk;

    fn open(img: &[u8], ss: u32) -> BtrfsFs {
        let mut dev = MemDisk::new(img.to_vec(), ss).unwrap();
        assert!(BtrfsFs::looks_like_btrfs(&mut dev).unwrap());
        BtrfsFs::open_with_window(Box::new(dev), 64 << 10).unwrap()
    }

    /// Text-like bytes (compressible, but not trivially): what a kernel
    /// or initrd is to a compressor.
    fn kernel(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 3 == 0 {
                    b'a' + (x % 16) as u8
                } else {
                    (i / 64) as u8
                }
            })
            .collect()
    }

    /// Whether `needle` appears in `img` as it is (not compressed).
    fn stored_plain(img: &[u8], needle: &[u8]) -> bool {
        img.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn opensuse_snapshot_as_default_subvolume() {
        let (k1, k2) = (kernel(2_500_000, 1), kernel(2_600_000, 2));
        let img = mkfs_btrfs(
            128,
            "",
            &[
                Op::Subvol("/@"),
                Op::Subvol("/@/.snapshots"),
                Op::Subvol("/@/.snapshots/1/snapshot"),
                Op::File("/@/.snapshots/1/snapshot/boot/vmlinuz-6.4.0-1-default", k1.clone()),
                Op::Link("/@/.snapshots/1/snapshot/boot/vmlinuz", "vmlinuz-6.4.0-1-default"),
                Op::File("/@/.snapshots/1/snapshot/boot/grub2/grub.cfg", b"set btrfs_relative_path=\"y\"\n".to_vec()),
                // A `zypper up`: snapper's snapshot 2, the new kernel in it,
                // made the default.
                Op::Snapshot("/@/.snapshots/1/snapshot", "/@/.snapshots/2/snapshot"),
                Op::File("/@/.snapshots/2/snapshot/boot/vmlinuz-6.5.0-2-default", k2.clone()),
                Op::Link("/@/.snapshots/2/snapshot/boot/vmlinuz", "/boot/vmlinuz-6.5.0-2-default"),
                Op::SetDefault("/@/.snapshots/2/snapshot"),
            ],
        );
        for ss in [512, 4096] {
            let mut fs = open(&img, ss);
            assert_ne!(fs.default_subvol_id(), TOP_LEVEL);
            assert!(Files::default_subvol_differs(&mut fs));
            // As `mount` shows it: the snapshot.
            assert_eq!(fs.read_file("/boot/vmlinuz").unwrap(), k2);
            assert_eq!(fs.list_dir("/boot").unwrap(), ["grub2", "vmlinuz", "vmlinuz-6.4.0-1-default", "vmlinuz-6.5.0-2-default"]);
            // Upstream GRUB's view: the top level, subvolumes crossed.
            fs.set_subvol(&Subvol::Top).unwrap();
            assert_eq!(fs.read_file("/@/.snapshots/1/snapshot/boot/vmlinuz").unwrap(), k1);
            assert_eq!(fs.read_file("/@/.snapshots/2/snapshot/boot/vmlinuz-6.5.0-2-default").unwrap(), k2);
            assert_eq!(fs.read_file("/boot/vmlinuz"), Err(FsError::NotFound));
            assert_eq!(fs.list_dir("/@/.snapshots").unwrap(), ["1", "2"]);
            // btrfs_subvol and btrfs_subvolid.
            fs.set_subvol(&Subvol::Path("@/.snapshots/1/snapshot".into())).unwrap();
            assert_eq!(fs.read_file("/boot/vmlinuz").unwrap(), k1);
            assert_eq!(fs.read_file("/boot/vmlinuz-6.5.0-2-default"), Err(FsError::NotFound));
            let default = fs.default_subvol_id();
            fs.set_subvol(&Subvol::Id(default)).unwrap();
            assert_eq!(fs.read_file("/boot/vmlinuz").unwrap(), k2, "a symlink to an absolute path stays in its tree");
            assert_eq!(fs.set_subvol(&Subvol::Path("/@/.snapshots/1".into())), Err(FsError::NotFound), "a directory, not a subvolume");
            assert_eq!(fs.set_subvol(&Subvol::Id(4242)), Err(FsError::NotFound));
            fs.set_subvol(&Subvol::Default).unwrap();
            assert_eq!(fs.file_len("/boot/vmlinuz").unwrap(), k2.len());
            // Trees a configuration names come and go; at most MAX_TREES.
            for id in [256, 257, 258, 259, 256] {
                fs.set_subvol(&Subvol::Id(id)).unwrap();
            }
            assert!(fs.trees.borrow().len() <= MAX_TREES);
            fs.set_subvol(&Subvol::Top).unwrap();
            assert_eq!(fs.read_file("/@/.snapshots/1/snapshot/boot/vmlinuz").unwrap(), k1);
        }
    }

    /// openSUSE as GRUB boots it: grub.cfg found through the default
    /// subvolume (snapshot 2), the snapshot menu sourced through fstab's
    /// `/.snapshots` mount, each snapshot's entries from its own grub.cfg.
    #[test]
    fn opensuse_menu_through_the_snapshots() {
        use crate::disk::bootcfg::{self, Format, Why};
        let (old, new) = ("6.4.0-1-default", "6.5.0-2-default");
        let ops = btrfs_image::opensuse(
            (old, kernel(900_000, 7), kernel(300_000, 8)),
            (new, kernel(1_000_000, 9), kernel(310_000, 10)),
            "console=hvc0",
        );
        let img = mkfs_btrfs(128, "compress=zstd", &ops);
        let uuid = btrfs_image::fs_uuid(&img);
        let mut fs = open(&img, 512);
        assert_eq!(Files::fs_uuid(&mut fs).as_deref(), Some(uuid.as_str()));
        let found = bootcfg::find(&mut fs, None).unwrap();
        assert_eq!((found.config.as_str(), found.format, found.why), ("/boot/grub2/grub.cfg", Format::Grub, Why::Default));
        let titles: Vec<(&str, Option<&str>)> = found.entries.iter().map(|e| (e.title.as_str(), e.submenu.as_deref())).collect();
        let snap = "Start bootloader from a read-only snapshot";
        let s2 = format!("{snap}>openSUSE Tumbleweed (6.5.0-2,2024-06-02T09:30,post,zypp(zypper))");
        let s1 = format!("{snap}>openSUSE Tumbleweed (6.4.0-1,2024-06-01T08:00,single,zypp(zypper))");
        let adv = "Advanced options for openSUSE Tumbleweed";
        let (s2adv, s1adv) = (format!("{s2}>{adv}"), format!("{s1}>{adv}"));
        let (tw, tw65, tw64) =
            ("openSUSE Tumbleweed", "openSUSE Tumbleweed, with Linux 6.5.0-2-default", "openSUSE Tumbleweed, with Linux 6.4.0-1-default");
        let want = [
            (tw, None),
            (tw65, Some(adv)),
            (tw64, Some(adv)),
            (tw, Some(s2.as_str())),
            (tw65, Some(s2adv.as_str())),
            (tw64, Some(s2adv.as_str())),
            (tw, Some(s1.as_str())),
            (tw64, Some(s1adv.as_str())),
        ];
        assert_eq!(titles, want);
        // The default: the newest kernel, in the default subvolume.
        let e = found.entry();
        assert_eq!((e.linux.as_str(), e.subvol.clone()), ("/boot/vmlinuz-6.5.0-2-default", Subvol::Default));
        assert!(!e.options.contains("rootflags"), "{}", e.options);
        // Snapshot 1's entry: its own kernel, from its own tree, told so.
        let e = &found.entries[6];
        assert_eq!(
            (e.linux.as_str(), e.subvol.clone()),
            ("/boot/vmlinuz-6.4.0-1-default", Subvol::Path("/@/.snapshots/1/snapshot".into()))
        );
        assert!(e.options.contains(&format!("root=UUID={uuid} rootflags=subvol=@/.snapshots/1/snapshot splash=silent")), "{}", e.options);
        fs.set_subvol(&e.subvol).unwrap();
        assert_eq!(fs.read_file(&e.linux).unwrap(), kernel(900_000, 7));
        assert_eq!(fs.read_file(&e.initrds[0]).unwrap(), kernel(300_000, 8));
        // Nothing to write back (no one-shot, no savedefault); were there,
        // it would be refused: GRUB does not write grubenv on btrfs.
        assert_eq!(found.grubenv, None);
        let mut vol = crate::disk::Volume::Btrfs(Box::new(fs));
        let mut dev = MemDisk::new(img.clone(), 512).unwrap();
        let env = btrfs_image::grubenv(&[]).into_bytes();
        let e = vol.rewrite_in_place(&mut dev, "/boot/grub2/grubenv", &env, &env).unwrap_err();
        assert!(e.contains("btrfs"), "{e}");
    }

    /// Arch with `subvol=@` and `compress=zstd`: nothing at the usual
    /// places; GRUB's prefix inside `@`, its paths from the top level.
    #[test]
    fn arch_grub_cfg_inside_the_at_subvolume() {
        use crate::disk::bootcfg;
        let (k, i) = (kernel(2_000_000, 11), kernel(500_000, 12));
        let img = mkfs_btrfs(128, "compress-force=zstd", &btrfs_image::arch(k.clone(), i.clone(), "quiet"));
        assert!(!stored_plain(&img, &k[100_000..100_256]), "stored compressed");
        let mut fs = open(&img, 4096);
        assert_eq!(fs.top_subvols(), ["@", "@home", "@log"]);
        let found = bootcfg::find(&mut fs, None).unwrap();
        assert_eq!(found.config, "/@/boot/grub/grub.cfg");
        let titles: Vec<&str> = found.entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles, ["Arch Linux", "Arch Linux, with Linux linux"]);
        let e = found.entry();
        assert_eq!(
            (e.linux.as_str(), e.initrds.as_slice(), &e.subvol),
            ("/@/boot/vmlinuz-linux", &["/@/boot/initramfs-linux.img".to_string()][..], &Subvol::Top)
        );
        assert!(e.options.ends_with("rw rootflags=subvol=@ quiet"), "{}", e.options);
        fs.set_subvol(&e.subvol).unwrap();
        assert_eq!(fs.read_file(&e.linux).unwrap(), k);
        assert_eq!(fs.read_file(&e.initrds[0]).unwrap(), i);
    }

    #[test]
    fn compressed_inline_and_symlinked_files() {
        let (z, zl, lz) = (kernel(3_000_000, 3), kernel(1_000_000, 4), kernel(1_000_000, 5));
        let img = mkfs_btrfs(
            128,
            "compress-force=zstd",
            &[
                // Arch's images: the kernel itself stored zstd-compressed.
                Op::File("/boot/vmlinuz-linux", z.clone()),
                Op::File("/boot/grub/grub.cfg", b"set default=0\n".to_vec()),
                Op::Link("/boot/vmlinuz", "vmlinuz-linux"),
                Op::Link("/boot/loop", "loop"),
                Op::Link("/boot/abs", "/boot/grub/../vmlinuz"),
                Op::Remount("compress-force=zlib"),
                Op::File("/boot/zlib", zl.clone()),
                Op::Remount("compress-force=lzo"),
                Op::File("/boot/lzo", lz.clone()),
                Op::Remount("compress=no"),
                Op::File("/boot/small", b"inline".to_vec()),
                Op::File("/boot/empty", Vec::new()),
            ],
        );
        // Stored compressed indeed, not as written.
        for k in [&z, &zl, &lz] {
            assert!(!stored_plain(&img, &k[100_000..100_256]));
        }
        let mut fs = open(&img, 512);
        assert!(!Files::default_subvol_differs(&mut fs));
        fs.set_subvol(&Subvol::Top).unwrap();
        assert_eq!(fs.read_file("/boot/vmlinuz-linux").unwrap(), z);
        assert_eq!(fs.read_file("/boot/abs").unwrap(), z, "symlinks followed here");
        assert_eq!(fs.read_file("/boot/zlib").unwrap(), zl);
        assert_eq!(fs.read_file("/boot/lzo").unwrap(), lz);
        assert_eq!(fs.read_file("/boot/small").unwrap(), b"inline");
        assert_eq!(fs.read_file("/boot/empty").unwrap(), b"");
        assert_eq!(fs.read_file("/boot/loop"), Err(FsError::SymlinkLoop));
        assert_eq!(fs.read_file("/boot/grub"), Err(FsError::IsADirectory));
        assert_eq!(Files::read(&mut fs, "/nope"), Ok(None));
        assert!(fs.exists("/boot/grub/grub.cfg").unwrap());
        assert!(fs.read_stats().device_reads > 0);
        fs.set_max_file(1000);
        assert!(matches!(fs.read_file("/boot/vmlinuz"), Err(FsError::TooLarge { .. })));
    }

    #[test]
    fn not_btrfs_and_corrupt_metadata() {
        let mut dev = MemDisk::new(vec![0; 1 << 20], 512).unwrap();
        assert!(!BtrfsFs::looks_like_btrfs(&mut dev).unwrap());
        let mut tiny = MemDisk::new(vec![0; 4096], 512).unwrap();
        assert!(!BtrfsFs::looks_like_btrfs(&mut tiny).unwrap());
        let img = mkfs_btrfs(128, "", &[Op::File("/a", vec![1; 10_000])]);
        // Every superblock copy's checksum broken: refused.
        let mut bad = img.clone();
        for at in [0x1_0000usize, 0x400_0000] {
            bad[at + 0x100] ^= 0xff;
        }
        let e = BtrfsFs::open_with_window(Box::new(MemDisk::new(bad, 512).unwrap()), 4096).err().unwrap();
        assert!(matches!(e, FsError::Corrupt(_)), "{e:?}");
        // Every tree block broken past its header: the first one read is
        // refused by its checksum, never trusted.
        let mut bad = img.clone();
        let fs = open(&img, 512);
        let nodesize = 16384;
        let mut broken = 0;
        for at in (0..bad.len()).step_by(nodesize) {
            if bad[at + 0x20..at + 0x30] == img[0x1_0020..0x1_0030] && at != 0x1_0000 && at != 0x400_0000 {
                bad[at + 0x80] ^= 0x55; // the fsid matches: a tree block
                broken += 1;
            }
        }
        assert!(broken > 0);
        drop(fs);
        match BtrfsFs::open_with_window(Box::new(MemDisk::new(bad, 512).unwrap()), 4096) {
            Err(FsError::Corrupt(e)) => assert!(e.contains("csum"), "{e}"),
            Err(e) => panic!("{e:?}"),
            Ok(fs) => assert!(matches!(fs.read_file("/a"), Err(FsError::Corrupt(_)))),
        }
    }
}
