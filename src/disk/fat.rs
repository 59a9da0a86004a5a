//! Read-only FAT12/16/32 on a [`BlockDevice`]: an EFI system partition or
//! an XBOOTLDR partition holding Boot Loader Specification entries and the
//! kernels they name. The filesystem is `lamfat`, the no_std line of
//! rust-fatfs (FAT12/16/32, long file names) that its crates.io release
//! lacks, republished as a crate for bootloaders; this module adds what a
//! loader needs around it:
//!
//! - byte reads through the same [`CachedReader`] as ext4, so a kernel
//!   arrives in few large device reads;
//! - a **read budget** per operation: every lookup, listing or file read
//!   may make at most [`META_BUDGET`] bytes of reads beyond the file's own
//!   size. A FAT whose cluster chains loop would otherwise have the crate
//!   walk a directory, or a file, forever; here it ends in
//!   [`FsError::Runaway`];
//! - nothing is ever written: the device handle refuses writes, and the
//!   crate writes nothing when nothing was changed;
//! - [`Files`] for the boot-config code, with the same typed errors
//!   ([`FsError`]) and file-size cap as [`Ext4Fs`](super::fs::Ext4Fs).

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use lamfat::{DefaultTimeProvider, FileSystem, FsOptions, IoBase, IoError, LossyOemCpConverter, Read, Seek, SeekFrom, Write};

use super::blocklist::Run;
use super::fs::{absent_is_none, files_by_path, CachedReader, FsError, ReadStats};
use super::Files;
use crate::dev::block::{BlockDevice, BlockError};

/// Bytes of reads one operation may make besides the file it reads: a
/// path of a few directories, each up to FAT's 65,536 entries of 32 bytes,
/// and their cluster chains, is far less.
pub const META_BUDGET: u64 = 16 << 20;

/// Why the device handle refused a read or a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFault {
    Device(BlockError),
    /// The operation read more than its budget.
    Runaway,
    /// A seek before 0 or past the end.
    Seek,
    Write,
    Eof,
}

impl fmt::Display for IoFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoFault::Device(e) => write!(f, "device: {e}"),
            IoFault::Runaway => f.write_str("read budget spent"),
            IoFault::Seek => f.write_str("seek outside the device"),
            IoFault::Write => f.write_str("write on a read-only device"),
            IoFault::Eof => f.write_str("unexpected end of the device"),
        }
    }
}

impl IoError for IoFault {
    fn is_interrupted(&self) -> bool {
        false
    }
    fn new_unexpected_eof_error() -> Self {
        IoFault::Eof
    }
    fn new_write_zero_error() -> Self {
        IoFault::Write
    }
}

/// The device as the crate sees it: a read-only byte stream with a
/// position, spending the shared budget.
pub struct Io<D> {
    reader: CachedReader<D>,
    pos: u64,
    budget: Rc<Cell<u64>>,
}

impl<D: BlockDevice> IoBase for Io<D> {
    type Error = IoFault;
}

impl<D: BlockDevice> Read for Io<D> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoFault> {
        let n = (buf.len() as u64).min(self.reader.size().saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let left = self.budget.get();
        if left < n as u64 {
            return Err(IoFault::Runaway);
        }
        self.budget.set(left - n as u64);
        self.reader.read_at(self.pos, &mut buf[..n]).map_err(IoFault::Device)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: BlockDevice> Write for Io<D> {
    fn write(&mut self, _: &[u8]) -> Result<usize, IoFault> {
        Err(IoFault::Write)
    }
    fn flush(&mut self) -> Result<(), IoFault> {
        Ok(())
    }
}

impl<D: BlockDevice> Seek for Io<D> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, IoFault> {
        self.pos = seek_target(self.pos, self.reader.size(), pos).ok_or(IoFault::Seek)?;
        Ok(self.pos)
    }
}

/// Where `to` leads from `pos` in a stream of `len` bytes: nowhere before
/// its start or past its end.
fn seek_target(pos: u64, len: u64, to: SeekFrom) -> Option<u64> {
    let p = match to {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
        SeekFrom::End(d) => len.checked_add_signed(d),
    }?;
    (p <= len).then_some(p)
}

impl From<lamfat::Error<IoFault>> for FsError {
    fn from(e: lamfat::Error<IoFault>) -> Self {
        match e {
            lamfat::Error::NotFound => FsError::NotFound,
            lamfat::Error::Io(IoFault::Device(d)) => FsError::Device(d),
            lamfat::Error::Io(IoFault::Runaway) => FsError::Runaway,
            lamfat::Error::Io(f) => FsError::Corrupt(f.to_string()),
            // What the crate says when a path goes through a file.
            lamfat::Error::InvalidInput => FsError::NotADirectory,
            lamfat::Error::InvalidFileNameLength | lamfat::Error::UnsupportedFileNameCharacter => FsError::BadPath,
            lamfat::Error::CorruptedFileSystem | lamfat::Error::UnexpectedEof => FsError::Corrupt(e.to_string()),
            other => FsError::Other(other.to_string()),
        }
    }
}

/// Whether the first sector is a FAT boot sector: a jump, a power-of-two
/// sector size of 512 to 4096 bytes and cluster size, at least one FAT,
/// and the 0x55aa signature. What passes this is opened as FAT, and any
/// later inconsistency is an error, not "some other filesystem".
pub fn looks_like_fat(sector: &[u8]) -> bool {
    if sector.len() < 512 || sector[510..512] != [0x55, 0xaa] || !matches!(sector[0], 0xeb | 0xe9) {
        return false;
    }
    let bytes_per_sector = u16::from_le_bytes([sector[11], sector[12]]);
    let per_cluster = sector[13];
    matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) && per_cluster.is_power_of_two() && sector[16] >= 1
}

/// Whether the boot sector's reserved sectors, FATs and root directory
/// end before its last sector, counted in 64 bits. lamfat counts them in
/// 32 (`fats * sectors_per_fat` and the sums after it), which wraps in the
/// PVH build for a forged boot sector and would place the data region
/// anywhere: refused here first (found by the `fat` fuzz target, seed
/// `regress-fat-sectors-overflow`).
fn layout_fits(b: &[u8]) -> bool {
    let le16 = |at: usize| u64::from(super::le16(b, at));
    let le32 = |at: usize| u64::from(super::le32(b, at));
    let per_fat = match le16(22) {
        0 => le32(36),
        n => n,
    };
    let total = match le16(19) {
        0 => le32(32),
        n => n,
    };
    // looks_like_fat has made the sector size 512 to 4096.
    let root = (le16(17) * 32).div_ceil(le16(11));
    le16(14) + u64::from(b[16]) * per_fat + root < total
}

/// An opened FAT filesystem on device `D`. Paths are absolute
/// (`/loader/entries`); names match as FAT matches them, without regard
/// to ASCII case.
///
/// Generic over the device so that the crate's code is compiled where the
/// device is named: the fuzz target compiles it as the PVH build does,
/// with wrapping arithmetic (see fuzz/Cargo.toml).
pub struct FatFs<D: BlockDevice> {
    fs: FileSystem<Io<D>, DefaultTimeProvider, LossyOemCpConverter>,
    stats: Rc<Cell<ReadStats>>,
    budget: Rc<Cell<u64>>,
    meta_budget: u64,
    max_file: u64,
}

impl<D: BlockDevice> FatFs<D> {
    /// Open the filesystem on `dev` with `window`-byte read-ahead;
    /// `Err(FsError::NotFat)` when its first sector is no FAT boot sector.
    pub fn open_with_window(dev: D, window: usize) -> Result<Self, FsError> {
        let mut reader = CachedReader::new(dev, window)?;
        let mut boot = [0u8; 512];
        match reader.read_at(0, &mut boot) {
            Ok(()) => {}
            Err(BlockError::OutOfRange { .. }) => return Err(FsError::NotFat),
            Err(e) => return Err(FsError::Device(e)),
        }
        if !looks_like_fat(&boot) {
            return Err(FsError::NotFat);
        }
        if !layout_fits(&boot) {
            return Err(FsError::Corrupt("FAT: its reserved sectors, FATs and root directory end past its last sector".into()));
        }
        let (stats, size) = (reader.shared_stats(), reader.size());
        let budget = Rc::new(Cell::new(META_BUDGET));
        let io = Io { reader, pos: 0, budget: budget.clone() };
        let fs = FileSystem::new(io, FsOptions::new())?;
        Ok(FatFs { fs, stats, budget, meta_budget: META_BUDGET, max_file: size })
    }

    /// The largest file read; by default the device's size.
    pub fn set_max_file(&mut self, limit: u64) {
        self.max_file = limit;
    }

    /// Bytes of reads each operation may make besides its file's own
    /// ([`META_BUDGET`] by default).
    pub fn set_meta_budget(&mut self, bytes: u64) {
        self.meta_budget = bytes;
    }

    /// A new operation: [`META_BUDGET`] (or what was set) of reads.
    fn begin(&self) {
        self.budget.set(self.meta_budget);
    }

    /// `path` relative to the root, as the crate takes it.
    fn rel(path: &str) -> Result<&str, FsError> {
        path.strip_prefix('/').map(|p| p.trim_end_matches('/')).ok_or(FsError::BadPath)
    }

    /// The file at `path` and its size, from its directory entry (the
    /// crate's own seek would stop at the end of a short cluster chain).
    fn file(&self, path: &str) -> Result<(File<'_, D>, u64), FsError> {
        let rel = Self::rel(path)?;
        let (parent, name) = rel.rsplit_once('/').map_or(("", rel), |(p, n)| (p, n));
        if name.is_empty() {
            return Err(FsError::IsADirectory);
        }
        let root = self.fs.root_dir();
        let dir = if parent.is_empty() { root } else { root.open_dir(parent)? };
        for e in dir.iter() {
            let e = e?;
            // As FAT (and the crate's own lookup) matches: the long name or
            // the short one, ASCII case aside.
            if e.file_name().eq_ignore_ascii_case(name) || e.short_file_name().eq_ignore_ascii_case(name) {
                return if e.is_dir() { Err(FsError::IsADirectory) } else { Ok((e.to_file(), e.len())) };
            }
        }
        Err(FsError::NotFound)
    }

    /// The size of the file at `path`, refused above the read limit.
    pub fn file_len(&self, path: &str) -> Result<usize, FsError> {
        self.begin();
        self.capped(self.file(path)?.1)
    }

    fn capped(&self, size: u64) -> Result<usize, FsError> {
        if size > self.max_file {
            return Err(FsError::TooLarge { size, limit: self.max_file });
        }
        usize::try_from(size).map_err(|_| FsError::TooLarge { size, limit: self.max_file })
    }

    /// Read the file at `path` into `dst`, exactly as long as the file.
    pub fn read_file_into(&self, path: &str, dst: &mut [u8]) -> Result<(), FsError> {
        self.begin();
        let (file, size) = self.file(path)?;
        if size != dst.len() as u64 {
            return Err(FsError::Other(alloc::format!("{path} is {size} bytes, not {}", dst.len())));
        }
        self.fill(path, file, dst)
    }

    /// The whole file at `path`.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, FsError> {
        self.begin();
        let (file, size) = self.file(path)?;
        let mut data = vec![0u8; self.capped(size)?];
        self.fill(path, file, &mut data)?;
        Ok(data)
    }

    /// Read `file` (found at `path`, `dst.len()` bytes by its entry) into
    /// `dst`. The operation's budget grows by the file's size.
    fn fill(&self, path: &str, mut file: File<'_, D>, dst: &mut [u8]) -> Result<(), FsError> {
        self.budget.set(self.budget.get().saturating_add(dst.len() as u64));
        // The crate follows a cluster chain wherever it goes: one that
        // comes back to a cluster would have it read the same bytes again
        // as the rest of the file. Walk the chain first.
        Self::chain(path, &mut file, dst.len())?;
        let mut done = 0;
        while done < dst.len() {
            match file.read(&mut dst[done..])? {
                0 => return Err(FsError::Corrupt(alloc::format!("{path} ends at {done} of its {} bytes", dst.len()))),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Where the `size` bytes of `file` lie on the device, in file order:
    /// its cluster chain, walked only as far as `size` reaches, refused if
    /// it ends short or comes back to a cluster.
    fn chain(path: &str, file: &mut File<'_, D>, size: usize) -> Result<Vec<Run>, FsError> {
        let mut runs: Vec<Run> = Vec::new();
        let mut covered = 0usize;
        for x in file.extents() {
            if covered >= size {
                break;
            }
            let x = x?;
            let len = (x.size as usize).min(size - covered);
            covered += len;
            runs.push(Run { offset: x.offset, len });
        }
        if covered < size {
            return Err(FsError::Corrupt(alloc::format!("{path}: its cluster chain ends at {covered} of its {size} bytes")));
        }
        let mut starts: Vec<u64> = runs.iter().map(|r| r.offset).collect();
        starts.sort_unstable();
        if starts.windows(2).any(|w| w[0] == w[1]) {
            return Err(FsError::Corrupt(alloc::format!("{path}: its cluster chain loops")));
        }
        Ok(runs)
    }

    /// The byte runs of the device that hold the file at `path`, which must
    /// be exactly `len` bytes long (GRUB's blocklist, for `save_env`).
    pub fn runs(&self, path: &str, len: usize) -> Result<Vec<Run>, FsError> {
        self.begin();
        let (mut file, size) = self.file(path)?;
        if size != len as u64 {
            return Err(FsError::Other(alloc::format!("{path} is {size} bytes, not {len}")));
        }
        Self::chain(path, &mut file, len)
    }

    /// The names in directory `path`, sorted (no `.` or `..`).
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, FsError> {
        self.begin();
        let rel = Self::rel(path)?;
        let root = self.fs.root_dir();
        let dir = if rel.is_empty() { root } else { root.open_dir(rel)? };
        let mut names = Vec::new();
        for e in dir.iter() {
            let name = e?.file_name();
            if name != "." && name != ".." && !name.is_empty() {
                names.push(name);
            }
        }
        crate::sort::sort_by(&mut names, |a, b| a.cmp(b));
        Ok(names)
    }

    /// Whether a file or directory is at `path`.
    pub fn exists(&self, path: &str) -> Result<bool, FsError> {
        self.begin();
        // The root, too, answers as a directory.
        match self.file(path) {
            Ok(_) | Err(FsError::IsADirectory) => Ok(true),
            Err(FsError::NotFound | FsError::NotADirectory) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `FAT12`, `FAT16` or `FAT32`, for report lines.
    pub fn kind(&self) -> &'static str {
        match self.fs.fat_type() {
            lamfat::FatType::Fat12 => "FAT12",
            lamfat::FatType::Fat16 => "FAT16",
            lamfat::FatType::Fat32 => "FAT32",
        }
    }

    /// The volume label from the boot sector, spaces trimmed.
    pub fn label(&self) -> String {
        String::from_utf8_lossy(self.fs.volume_label_as_bytes()).trim_end().to_string()
    }

    pub fn read_stats(&self) -> ReadStats {
        self.stats.get()
    }
}

files_by_path!([D: BlockDevice] FatFs<D>);

type File<'a, D> = lamfat::File<'a, Io<D>, DefaultTimeProvider, LossyOemCpConverter>;

/// Making FAT images on the host, for tests, fuzz seeds and the test
/// disks of the end-to-end tests: the same crate, formatting and writing
/// into memory.
#[cfg(not(target_os = "none"))]
pub mod image {
    use alloc::rc::Rc;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    use lamfat::{format_volume, FileSystem, FormatVolumeOptions, FsOptions, IoBase, Read, Seek, SeekFrom, Write};

    /// Bytes in memory as a stream; the image stays readable through the
    /// shared handle once the filesystem owns the stream.
    struct Mem {
        data: Rc<RefCell<Vec<u8>>>,
        pos: usize,
    }

    impl IoBase for Mem {
        type Error = ();
    }

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
            let data = self.data.borrow();
            let n = buf.len().min(data.len() - self.pos);
            buf[..n].copy_from_slice(&data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Mem {
        fn write(&mut self, buf: &[u8]) -> Result<usize, ()> {
            let mut data = self.data.borrow_mut();
            let n = buf.len().min(data.len() - self.pos);
            data[self.pos..self.pos + n].copy_from_slice(&buf[..n]);
            self.pos += n;
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), ()> {
            Ok(())
        }
    }

    impl Seek for Mem {
        fn seek(&mut self, pos: SeekFrom) -> Result<u64, ()> {
            let p = super::seek_target(self.pos as u64, self.data.borrow().len() as u64, pos).ok_or(())?;
            self.pos = p as usize;
            Ok(p)
        }
    }

    /// A FAT filesystem of `bytes` (FAT12, 16 or 32 as the size makes it)
    /// labelled `label`, holding `files` (absolute paths; their
    /// directories are made as needed). Panics if they do not fit.
    pub fn make(bytes: usize, label: &[u8; 11], files: &[(&str, &[u8])]) -> Vec<u8> {
        let data = Rc::new(RefCell::new(vec![0u8; bytes]));
        format_volume(&mut Mem { data: data.clone(), pos: 0 }, FormatVolumeOptions::new().volume_label(*label)).expect("format FAT");
        let fs = FileSystem::new(Mem { data: data.clone(), pos: 0 }, FsOptions::new()).expect("mount the new FAT");
        {
            let root = fs.root_dir();
            for (path, contents) in files {
                let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let mut dir = root.clone();
                for d in &parts[..parts.len() - 1] {
                    dir = match dir.open_dir(d) {
                        Ok(x) => x,
                        Err(_) => dir.create_dir(d).expect("create a directory"),
                    };
                }
                let mut f = dir.create_file(parts[parts.len() - 1]).expect("create a file");
                f.truncate().expect("truncate");
                f.write_all(contents).expect("the file fits");
            }
        }
        fs.unmount().expect("unmount");
        let out = data.borrow().clone();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::block::{MemDisk, Partition};

    fn fat(files: &[(&str, &[u8])]) -> FatFs<MemDisk> {
        let img = image::make(8 << 20, b"ESP        ", files);
        FatFs::open_with_window(MemDisk::new(img, 512).unwrap(), 64 << 10).unwrap()
    }

    /// A boot sector whose FATs (two of 2^31 sectors: 2^32, past 32
    /// bits) or root directory end past its last sector is refused before
    /// lamfat computes where its data begins.
    #[test]
    fn a_layout_past_the_last_sector_is_refused() {
        let img = image::make(8 << 20, b"ESP        ", &[("/a", b"x")]);
        assert!(layout_fits(&img[..512]));
        let refused = |edits: &[(usize, &[u8])]| {
            let mut bad = img.clone();
            for &(at, bytes) in edits {
                bad[at..at + bytes.len()].copy_from_slice(bytes);
            }
            let e = FatFs::open_with_window(MemDisk::new(bad, 512).unwrap(), 4096).err().unwrap();
            assert!(matches!(&e, FsError::Corrupt(m) if m.contains("end past its last sector")), "{e:?}");
        };
        // No 16-bit count: FAT32's sectors per FAT, at 36.
        refused(&[(22, &[0, 0]), (36, &(1u32 << 31).to_le_bytes())]);
        refused(&[(19, &40u16.to_le_bytes())]); // 40 sectors in all: the FATs alone are more
        refused(&[(14, &[0xff, 0xff])]); // 65535 reserved sectors of 16384
    }

    #[test]
    fn bls_entries_and_their_files_read_back_with_long_names() {
        let kernel: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut fs = fat(&[
            ("/loader/entries/fedora-6.1.conf", b"title Fedora\nlinux /vmlinuz-6.1\n"),
            ("/loader/entries/Debian New.conf", b"title Debian\n"),
            ("/loader/loader.conf", b"default fedora-6.1.conf\n"),
            ("/vmlinuz-6.1", &kernel),
        ]);
        assert_eq!(fs.list_dir("/loader/entries").unwrap(), ["Debian New.conf", "fedora-6.1.conf"]);
        assert_eq!(fs.list_dir("/").unwrap(), ["loader", "vmlinuz-6.1"]);
        assert_eq!(fs.read_file("/loader/loader.conf").unwrap(), b"default fedora-6.1.conf\n");
        assert_eq!(fs.file_len("/vmlinuz-6.1").unwrap(), kernel.len());
        assert_eq!(fs.read_file("/vmlinuz-6.1").unwrap(), kernel);
        // FAT's names match without regard to case.
        assert_eq!(fs.read_file("/LOADER/Entries/FEDORA-6.1.CONF").unwrap(), b"title Fedora\nlinux /vmlinuz-6.1\n");
        assert_eq!(fs.label(), "ESP");
        // Files, as the boot-config code sees it.
        assert_eq!(Files::read(&mut fs, "/nope").unwrap(), None);
        assert_eq!(Files::list(&mut fs, "/boot").unwrap(), None);
        assert!(Files::exists(&mut fs, "/loader").unwrap());
        assert!(!Files::exists(&mut fs, "/loader/nope").unwrap());
        assert!(fs.exists("/").unwrap());
        assert!(matches!(fs.read_file("/loader"), Err(FsError::IsADirectory)));
        assert!(matches!(fs.list_dir("/vmlinuz-6.1"), Err(FsError::NotADirectory)));
        assert!(matches!(fs.read_file("relative"), Err(FsError::BadPath)));
        let mut small = fat(&[("/big", &kernel)]);
        small.set_max_file(1000);
        assert!(matches!(small.read_file("/big"), Err(FsError::TooLarge { size: 300_000, limit: 1000 })));
        let _ = &mut small;
    }

    /// GRUB's `save_env` on an ESP: the file's clusters are found and
    /// written, nothing else on the volume changes (not its directory
    /// entry's times, not the FAT); a stale `old` or another size is
    /// refused. FAT12 with 512-byte clusters (two for the file) and FAT16.
    #[test]
    fn grubenv_written_in_place_in_its_clusters_only() {
        let env = |vars: &str| {
            let mut v = alloc::format!("# GRUB Environment Block\n{vars}").into_bytes();
            v.resize(1024, b'#');
            v
        };
        let (old, new) = (env("saved_entry=fedora-6.1\n"), env("saved_entry=fedora-6.12.0-1.fc44.x86_64\nboot_success=0\n"));
        for size in [1 << 20, 64 << 20] {
            let files: [(&str, &[u8]); 3] =
                [("/EFI/fedora/grub.cfg", b"configfile x\n"), ("/EFI/fedora/grubenv", &old), ("/EFI/fedora/shim", &[7u8; 3000])];
            let img = image::make(size, b"ESP        ", &files);
            let fs = FatFs::open_with_window(MemDisk::new(img.clone(), 512).unwrap(), 4096).unwrap();
            let runs = fs.runs("/efi/fedora/GRUBENV", 1024).unwrap();
            assert_eq!(runs.iter().map(|r| r.len).sum::<usize>(), 1024);
            assert_eq!((fs.kind(), runs.len()), if size == 1 << 20 { ("FAT12", 2) } else { ("FAT16", 1) });
            assert!(matches!(fs.runs("/EFI/fedora/grubenv", 1000), Err(FsError::Other(_))));
            let mut vol = crate::disk::Volume::Fat(Box::new(
                FatFs::open_with_window(Box::new(MemDisk::new(img.clone(), 512).unwrap()) as Box<dyn BlockDevice>, 4096).unwrap(),
            ));
            let e = vol.rewrite_in_place(&mut MemDisk::new(img.clone(), 512).unwrap(), "/EFI/fedora/grubenv", &new, &old).unwrap_err();
            assert_eq!(e, "it changed since it was read");
            let mut dev = MemDisk::new(img.clone(), 512).unwrap();
            vol.rewrite_in_place(&mut dev, "/EFI/fedora/grubenv", &old, &new).unwrap();
            let after = dev.into_inner();
            let reread = FatFs::open_with_window(MemDisk::new(after.clone(), 512).unwrap(), 4096).unwrap();
            assert_eq!(reread.read_file("/EFI/fedora/grubenv").unwrap(), new);
            assert_eq!(reread.read_file("/EFI/fedora/shim").unwrap(), [7u8; 3000]);
            let inside = |i: usize| runs.iter().any(|r| (r.offset as usize..r.offset as usize + r.len).contains(&i));
            let changed: Vec<usize> = (0..img.len()).filter(|&i| img[i] != after[i]).collect();
            assert!(changed.len() > 30, "{} bytes changed", changed.len());
            assert!(changed.iter().all(|&i| inside(i)), "a byte outside the file changed");
        }
    }

    #[test]
    fn what_is_not_fat_is_told_apart_and_a_partition_opens_at_its_offset() {
        assert!(matches!(FatFs::open_with_window(MemDisk::new(vec![0; 1 << 20], 512).unwrap(), 4096), Err(FsError::NotFat)));
        let img = image::make(4 << 20, b"ESP        ", &[("/a", b"x")]);
        let mut disk = vec![0u8; 1 << 20];
        disk.extend_from_slice(&img);
        let part = Partition::new(MemDisk::new(disk, 512).unwrap(), 2048, (img.len() / 512) as u64).unwrap();
        let fs = FatFs::open_with_window(part, 4096).unwrap();
        assert_eq!(fs.read_file("/a").unwrap(), b"x");
    }

    #[test]
    fn cluster_chains_that_loop_end_in_runaway_not_a_hang() {
        let img = image::make(32 << 20, b"ESP        ", &[("/d/f", b"data")]);
        let disk = MemDisk::new(img.clone(), 512).unwrap();
        let fs = FatFs::open_with_window(disk, 4096).unwrap();
        assert_eq!(fs.list_dir("/d").unwrap(), ["f"]);
        assert_eq!(fs.kind(), "FAT16");
        drop(fs);
        let mut bad = img;
        let l = Fat16::of(&bad);
        let cluster = l.first_cluster(&bad, b"D          ");
        // `d`'s cluster: no end-of-directory mark (every free slot a
        // deleted entry), and its FAT entry pointing back at itself.
        let at = l.cluster_at(cluster);
        for e in (at..at + l.cluster_bytes).step_by(32) {
            if bad[e] == 0 {
                bad[e] = 0xe5;
            }
        }
        l.set_next(&mut bad, cluster, cluster);
        let fs = FatFs::open_with_window(MemDisk::new(bad, 512).unwrap(), 4096).unwrap();
        assert!(matches!(fs.list_dir("/d"), Err(FsError::Runaway)), "{:?}", fs.list_dir("/d").err());
        assert!(matches!(fs.exists("/d/nope"), Err(FsError::Runaway)));
    }

    #[test]
    fn a_file_whose_cluster_chain_loops_or_ends_early_is_refused() {
        let kernel = vec![0x5au8; 5000];
        let img = image::make(32 << 20, b"ESP        ", &[("/k", &kernel)]);
        let l = Fat16::of(&img);
        let first = l.first_cluster(&img, b"K          ");
        assert!(l.cluster_bytes < 2500, "several clusters");
        let mut looped = img.clone();
        l.set_next(&mut looped, first + 1, first);
        let fs = FatFs::open_with_window(MemDisk::new(looped, 512).unwrap(), 4096).unwrap();
        let e = fs.read_file("/k").map(|d| d.len()).unwrap_err();
        assert_eq!(e.to_string(), "corrupt filesystem: /k: its cluster chain loops");
        let mut short = img;
        l.set_next(&mut short, first + 1, 0xffff);
        let fs = FatFs::open_with_window(MemDisk::new(short, 512).unwrap(), 4096).unwrap();
        let e = fs.read_file("/k").map(|d| d.len()).unwrap_err();
        assert!(e.to_string().starts_with("corrupt filesystem: /k: its cluster chain ends at "), "{e}");
    }

    /// A FAT16 image's layout, from its boot sector: reserved sectors, the
    /// FATs, the root directory, then clusters from number 2.
    struct Fat16 {
        cluster_bytes: usize,
        fats: Vec<usize>,
        root: usize,
        root_entries: usize,
        data: usize,
    }

    impl Fat16 {
        fn of(img: &[u8]) -> Fat16 {
            let le16 = |at: usize| u16::from_le_bytes([img[at], img[at + 1]]) as usize;
            let (reserved, nfats, root_entries, fat_sectors) = (le16(14) * 512, img[16] as usize, le16(17), le16(22) * 512);
            assert!(fat_sectors > 0 && &img[54..59] == b"FAT16", "a FAT16 image");
            let root = reserved + nfats * fat_sectors;
            let fats = (0..nfats).map(|f| reserved + f * fat_sectors).collect();
            Fat16 { cluster_bytes: img[13] as usize * 512, fats, root, root_entries, data: root + root_entries * 32 }
        }
        fn first_cluster(&self, img: &[u8], name: &[u8; 11]) -> usize {
            let e = (0..self.root_entries).map(|i| self.root + 32 * i).find(|&e| &img[e..e + 11] == name).expect("in the root");
            u16::from_le_bytes([img[e + 26], img[e + 27]]) as usize
        }
        fn cluster_at(&self, cluster: usize) -> usize {
            self.data + (cluster - 2) * self.cluster_bytes
        }
        fn set_next(&self, img: &mut [u8], cluster: usize, next: usize) {
            for &f in &self.fats {
                img[f + 2 * cluster..f + 2 * cluster + 2].copy_from_slice(&(next as u16).to_le_bytes());
            }
        }
    }
}
