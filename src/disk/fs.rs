//! Read-only ext2/3/4 on a [`BlockDevice`], through the `ext4-view` crate
//! (extents, htree directories, 64bit, metadata_csum checked, the journal
//! replayed in memory only, symlinks resolved inside the filesystem with a
//! bound of 40 links). This module adds what a loader needs around it:
//!
//! - [`CachedReader`], the bridge from ext4-view's byte-offset reads to a
//!   sector device. ext4-view asks for at most 32 KiB at a time (its own
//!   block cache's read-ahead); a kernel and initrd of 10–40 MiB would be
//!   a thousand such requests, each a round trip to blkback. The reader
//!   keeps two read-ahead windows (one for the file being streamed, one so
//!   metadata reads in between do not throw it away) and sends reads of a
//!   window or more straight to the device, so the device sees few large
//!   requests. A fill is small ([`MIN_FILL`]) where a read lands somewhere
//!   new, and grows fourfold up to the window while reads go on where the
//!   last fill ended: bytes read ahead and never used cost the backend
//!   all the same.
//! - [`Ext4Fs::read_file_into`] does not read a file through ext4-view's
//!   block-at-a-time `read_bytes`: it asks ext4-view where the file's
//!   blocks lie (`File::blocks`, added in hvmlite's vendored copy,
//!   vendor/README.md) and reads each run of contiguous blocks straight
//!   into the caller's buffer ([`CachedReader::read_bulk`]).
//! - [`Ext4Fs`]: open, read a whole file, list a directory, stat, with
//!   typed errors ([`FsError`]) and a cap on how much one read may
//!   allocate (an inode's size comes from the disk too).
//! - [`Files`] for the boot-config code: `Ok(None)` when a path is absent.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;

use ext4_view::{Ext4, Ext4Error, Ext4Read, Metadata};

use super::Files;
use crate::dev::block::{valid_sector_size, BlockDevice, BlockError};
use crate::disk::le32;

/// Bytes per read-ahead window. 256 KiB is six full blkfront requests
/// (11 segments of 4 KiB each) and small next to a kernel.
pub const DEFAULT_WINDOW: usize = 256 * 1024;

/// Read-ahead windows kept: the stream being read and whatever metadata
/// reads interleave with it.
const WINDOWS: usize = 2;

/// The fill where a read does not continue the last one: a metadata block,
/// a file's first. Counted on the Xen test host (docs/benchmarks.md): a
/// disk boot that filled 2 MiB windows everywhere read 23 MB for 12.8 MB
/// of kernel and initrd (its first 2 MiB for a few metadata blocks), each
/// page read for nothing about 1,500 instructions of dom0's work and a
/// copy; with fills from 64 KiB up, 13.3 MB and 3.7 M instructions less.
pub const MIN_FILL: usize = 64 * 1024;

/// Where ext4's superblock lives and its magic inside it.
const SUPERBLOCK: u64 = 1024;
const MAGIC_OFFSET: usize = 0x38;
const EXT_MAGIC: [u8; 2] = 0xef53u16.to_le_bytes();

/// Symlinks followed while resolving one path (Linux's and ext4-view's 40).
const MAX_LINKS: usize = 40;
/// The longest symlink target read (Linux's PATH_MAX less the NUL).
const MAX_LINK_LEN: u64 = 4095;
/// mke2fs's range for blocks per group is 256..=8 × block size (one
/// bitmap block per group); the lower bound also bounds the number of
/// group descriptors ext4-view allocates for.
const MIN_BLOCKS_PER_GROUP: u32 = 256;

/// What the reader did, for tests and the boot report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Byte-range reads asked of the reader (by ext4-view).
    pub requests: u64,
    /// Reads sent to the device, and the bytes they carried.
    pub device_reads: u64,
    pub device_bytes: u64,
}

struct Window {
    start: u64,
    len: usize,
    data: Vec<u8>,
    last_used: u64,
}

/// Byte-offset reads over a sector device, with read-ahead (see the
/// module doc). Reads past the device's end are refused before the device
/// is asked.
pub struct CachedReader<D> {
    dev: D,
    sector_size: u64,
    size: u64,
    window: usize,
    windows: Vec<Window>,
    tick: u64,
    stats: Rc<Cell<ReadStats>>,
    /// The last fill's size and the byte after it: a fill that starts
    /// there continues a stream.
    fill: usize,
    next: u64,
}

impl<D: BlockDevice> CachedReader<D> {
    /// `window` is rounded up to whole sectors; the buffers are allocated
    /// when first needed.
    pub fn new(dev: D, window: usize) -> Result<Self, BlockError> {
        let ss = dev.sector_size();
        if !valid_sector_size(ss) {
            return Err(BlockError::BadSectorSize(ss));
        }
        let window = window.clamp(1, 64 << 20).next_multiple_of(ss as usize);
        let size = dev.size_bytes();
        Ok(CachedReader {
            dev,
            sector_size: u64::from(ss),
            size,
            window,
            windows: Vec::new(),
            tick: 0,
            stats: Rc::new(Cell::new(ReadStats::default())),
            fill: 0,
            next: u64::MAX,
        })
    }

    pub fn stats(&self) -> ReadStats {
        self.stats.get()
    }

    /// The device's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The counters, shared: they stay readable once the reader is owned
    /// by a filesystem.
    pub(crate) fn shared_stats(&self) -> Rc<Cell<ReadStats>> {
        self.stats.clone()
    }

    /// Fill `dst` from byte `offset` of the device.
    pub fn read_at(&mut self, offset: u64, dst: &mut [u8]) -> Result<(), BlockError> {
        let mut st = self.stats.get();
        st.requests += 1;
        self.stats.set(st);
        let ss = self.sector_size;
        self.check_range(offset, dst.len())?;
        let mut pos = offset;
        let mut out = dst;
        while !out.is_empty() {
            self.tick += 1;
            let tick = self.tick;
            if let Some(w) = self.windows.iter_mut().find(|w| pos >= w.start && pos - w.start < w.len as u64) {
                let at = (pos - w.start) as usize;
                let n = out.len().min(w.len - at);
                out[..n].copy_from_slice(&w.data[at..at + n]);
                w.last_used = tick;
                pos += n as u64;
                out = &mut out[n..];
                continue;
            }
            if pos.is_multiple_of(ss) && out.len() >= self.window {
                // A long aligned run: straight into the caller's buffer.
                let n = out.len() - out.len() % ss as usize;
                self.device_read(pos, &mut out[..n])?;
                pos += n as u64;
                out = &mut out[n..];
                continue;
            }
            // Fill the least recently used window from the sector at `pos`.
            let start = pos - pos % ss;
            let len = self.fill_len(start, (pos - start) as usize + out.len());
            let slot = if self.windows.len() < WINDOWS {
                self.windows.push(Window { start: 0, len: 0, data: vec![0; self.window], last_used: 0 });
                self.windows.len() - 1
            } else {
                (0..WINDOWS).min_by_key(|&i| self.windows[i].last_used).unwrap_or(0)
            };
            let mut data = core::mem::take(&mut self.windows[slot].data);
            // Mark the slot empty while it is being filled: a failed read
            // must not leave stale bytes under a new start.
            self.windows[slot].len = 0;
            let r = self.device_read(start, &mut data[..len]);
            self.windows[slot].data = data;
            r?;
            let w = &mut self.windows[slot];
            w.start = start;
            w.len = len;
        }
        Ok(())
    }

    /// Fill `dst` from byte `offset` for a caller that knows it wants all
    /// of it: a run of at least [`MIN_FILL`] bytes goes to the device as
    /// one request straight into `dst` (any partial sector at either end
    /// through the windows), a shorter one through the windows as
    /// [`read_at`](Self::read_at) does.
    pub fn read_bulk(&mut self, offset: u64, dst: &mut [u8]) -> Result<(), BlockError> {
        let ss = self.sector_size;
        if dst.len() < MIN_FILL.min(self.window) {
            return self.read_at(offset, dst);
        }
        self.check_range(offset, dst.len())?;
        let head = (((ss - offset % ss) % ss) as usize).min(dst.len());
        let (h, rest) = dst.split_at_mut(head);
        if !h.is_empty() {
            self.read_at(offset, h)?;
        }
        let body = rest.len() - rest.len() % ss as usize;
        let (b, tail) = rest.split_at_mut(body);
        let at = offset + head as u64;
        if !b.is_empty() {
            let mut st = self.stats.get();
            st.requests += 1;
            self.stats.set(st);
            self.device_read(at, b)?;
        }
        if !tail.is_empty() {
            self.read_at(at + body as u64, tail)?;
        }
        Ok(())
    }

    /// Refuse a read of `len` bytes from `offset` that does not lie inside
    /// the device, before the device is asked.
    fn check_range(&self, offset: u64, len: usize) -> Result<(), BlockError> {
        let ss = self.sector_size;
        if offset.checked_add(len as u64).is_none_or(|end| end > self.size) {
            return Err(BlockError::OutOfRange { sector: offset / ss, count: (len as u64).div_ceil(ss), sectors: self.size / ss });
        }
        Ok(())
    }

    /// How much to read into a window from `start`, where the read that
    /// misses needs `need` bytes from there: [`MIN_FILL`] somewhere new,
    /// four times the last fill where it ended, at most a window; always
    /// what is needed (up to a window) and never past the device's end.
    fn fill_len(&mut self, start: u64, need: usize) -> usize {
        let min = MIN_FILL.min(self.window);
        let len = if start == self.next { self.fill.saturating_mul(4).clamp(min, self.window) } else { min };
        let len = len.max(need.min(self.window)).next_multiple_of(self.sector_size as usize);
        // `size` is whole sectors, so this is too.
        let len = (len as u64).min(self.size - start) as usize;
        self.fill = len;
        self.next = start + len as u64;
        len
    }

    fn device_read(&mut self, byte: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let mut st = self.stats.get();
        st.device_reads += 1;
        st.device_bytes += buf.len() as u64;
        self.stats.set(st);
        self.dev.read(byte / self.sector_size, buf)
    }
}

impl<D: BlockDevice> Ext4Read for CachedReader<D> {
    fn read(&mut self, start_byte: u64, dst: &mut [u8]) -> Result<(), Box<dyn core::error::Error + Send + Sync + 'static>> {
        self.read_at(start_byte, dst).map_err(|e| Box::new(e) as _)
    }
}

/// Why a filesystem operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No ext2/3/4 superblock magic (or a device too small to hold one):
    /// some other filesystem, or none.
    NotExt,
    /// No FAT boot sector ([`fat::looks_like_fat`](super::fat::looks_like_fat)).
    NotFat,
    /// A FAT operation read more than its budget
    /// ([`fat::META_BUDGET`](super::fat::META_BUDGET) past the file's
    /// size): cluster chains that loop.
    Runaway,
    NotFound,
    /// Not absolute, a NUL byte, or a component over 255 bytes.
    BadPath,
    PathTooLong,
    IsADirectory,
    NotADirectory,
    /// A device node, FIFO or socket.
    NotAFile,
    /// More than 40 symlinks while resolving a path (a loop, or a chain).
    SymlinkLoop,
    /// The superblock's block count × block size is more than the device
    /// holds (Linux refuses to mount such a filesystem too).
    LargerThanDevice {
        fs_bytes: u128,
        device_bytes: u64,
    },
    /// Blocks per group outside 256..=8 × block size.
    BlocksPerGroup(u32),
    /// A symlink whose target is longer than 4095 bytes.
    LinkTooLong(u64),
    /// A file larger than the read limit (see [`Ext4Fs::set_max_file`]).
    TooLarge {
        size: u64,
        limit: u64,
    },
    Encrypted,
    /// A name or link target that is not UTF-8.
    NotUtf8,
    /// The device failed or was asked for bytes past its end (a block
    /// number from a corrupt filesystem).
    Device(BlockError),
    /// Features this reader does not handle; ext4-view's words.
    Unsupported(String),
    /// The filesystem contradicts itself (bad checksum, impossible field);
    /// ext4-view's words.
    Corrupt(String),
    Other(String),
}

impl From<BlockError> for FsError {
    fn from(e: BlockError) -> Self {
        FsError::Device(e)
    }
}

impl From<Ext4Error> for FsError {
    fn from(e: Ext4Error) -> Self {
        match e {
            Ext4Error::NotFound => FsError::NotFound,
            Ext4Error::NotAbsolute | Ext4Error::MalformedPath => FsError::BadPath,
            Ext4Error::PathTooLong => FsError::PathTooLong,
            Ext4Error::IsADirectory => FsError::IsADirectory,
            Ext4Error::NotADirectory => FsError::NotADirectory,
            Ext4Error::IsASpecialFile => FsError::NotAFile,
            Ext4Error::TooManySymlinks => FsError::SymlinkLoop,
            Ext4Error::FileTooLarge => FsError::TooLarge { size: u64::MAX, limit: usize::MAX as u64 },
            Ext4Error::Encrypted => FsError::Encrypted,
            Ext4Error::NotUtf8 => FsError::NotUtf8,
            Ext4Error::Io(inner) => match inner.downcast_ref::<BlockError>() {
                Some(b) => FsError::Device(*b),
                None => FsError::Other(inner.to_string()),
            },
            Ext4Error::Incompatible(i) => FsError::Unsupported(i.to_string()),
            Ext4Error::Corrupt(c) => FsError::Corrupt(c.to_string()),
            other => FsError::Other(other.to_string()),
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotExt => f.write_str("no ext2/3/4 filesystem (no superblock magic)"),
            FsError::NotFat => f.write_str("no FAT filesystem (no FAT boot sector)"),
            FsError::Runaway => f.write_str("corrupt filesystem: reads past any sane bound (cluster chains that loop?)"),
            FsError::NotFound => f.write_str("no such file or directory"),
            FsError::BadPath => f.write_str("not an absolute path of at most 255-byte names without NUL"),
            FsError::PathTooLong => f.write_str("path too long"),
            FsError::IsADirectory => f.write_str("is a directory"),
            FsError::NotADirectory => f.write_str("not a directory"),
            FsError::NotAFile => f.write_str("a device, FIFO or socket, not a file"),
            FsError::SymlinkLoop => f.write_str("too many levels of symbolic links"),
            FsError::LargerThanDevice { fs_bytes, device_bytes } => {
                write!(f, "the filesystem ({fs_bytes} bytes) is larger than its {device_bytes}-byte device")
            }
            FsError::BlocksPerGroup(n) => write!(f, "{n} blocks per group is outside 256..=8 x block size"),
            FsError::LinkTooLong(n) => write!(f, "a symlink target of {n} bytes is over 4095"),
            FsError::TooLarge { size, limit } => write!(f, "file of {size} bytes is over the {limit}-byte limit"),
            FsError::Encrypted => f.write_str("file is encrypted"),
            FsError::NotUtf8 => f.write_str("not UTF-8"),
            FsError::Device(e) => write!(f, "device: {e}"),
            FsError::Unsupported(s) => write!(f, "unsupported filesystem: {}", one_line(s)),
            FsError::Corrupt(s) => write!(f, "corrupt filesystem: {}", one_line(s)),
            FsError::Other(s) => f.write_str(one_line(s)),
        }
    }
}

fn one_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl core::error::Error for FsError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A device node, FIFO or socket.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits and type, as in `st_mode`.
    pub mode: u16,
}

impl From<&Metadata> for Stat {
    fn from(m: &Metadata) -> Self {
        let t = m.file_type();
        let kind = if t.is_regular_file() {
            FileKind::File
        } else if t.is_dir() {
            FileKind::Dir
        } else if t.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        Stat { kind, size: m.len(), mode: m.mode() }
    }
}

/// What ext4-view sizes its allocations by, checked against the device
/// first (found by the `ext4` fuzz target: a superblock without checksum
/// claiming 2^37 blocks made ext4-view reserve 34 GiB of group
/// descriptors). Fields as ext4-view reads them: the block count's high
/// half is used whatever the 64bit feature says.
fn check_geometry(sb: &[u8], device_bytes: u64) -> Result<(), FsError> {
    let log_block_size = le32(sb, 0x18);
    if log_block_size > 6 {
        return Err(FsError::Corrupt(alloc::format!("block size 2^(10 + {log_block_size})")));
    }
    let block_size = 1024u32 << log_block_size;
    let blocks = u64::from(le32(sb, 0x150)) << 32 | u64::from(le32(sb, 0x4));
    let fs_bytes = u128::from(blocks) * u128::from(block_size);
    if fs_bytes > u128::from(device_bytes) {
        return Err(FsError::LargerThanDevice { fs_bytes, device_bytes });
    }
    let per_group = le32(sb, 0x20);
    if !(MIN_BLOCKS_PER_GROUP..=8 * block_size).contains(&per_group) {
        return Err(FsError::BlocksPerGroup(per_group));
    }
    Ok(())
}

/// An opened ext2/3/4 filesystem. Paths are absolute, inside the
/// filesystem (`/boot/vmlinuz`); symlinks are followed within it.
pub struct Ext4Fs {
    fs: Ext4,
    /// The reader ext4-view reads through, shared: file data is read
    /// through it directly.
    reader: Rc<RefCell<Reader>>,
    block_size: u64,
    stats: Rc<Cell<ReadStats>>,
    max_file: u64,
}

type Reader = CachedReader<Box<dyn BlockDevice>>;

/// ext4-view's end of the shared reader.
struct Shared(Rc<RefCell<Reader>>);

impl Ext4Read for Shared {
    fn read(&mut self, start_byte: u64, dst: &mut [u8]) -> Result<(), Box<dyn core::error::Error + Send + Sync + 'static>> {
        self.0.borrow_mut().read_at(start_byte, dst).map_err(|e| Box::new(e) as _)
    }
}

impl Ext4Fs {
    /// Open the filesystem on `dev` (a whole disk, or a
    /// [`Partition`](crate::dev::block::Partition)), with
    /// [`DEFAULT_WINDOW`]-byte read-ahead. The reader owns `dev`: to open
    /// several partitions of one disk, give each an `Rc<RefCell<_>>`
    /// handle.
    pub fn open<D: BlockDevice + 'static>(dev: D) -> Result<Self, FsError> {
        Self::open_with_window(dev, DEFAULT_WINDOW)
    }

    pub fn open_with_window<D: BlockDevice + 'static>(dev: D, window: usize) -> Result<Self, FsError> {
        let size = dev.size_bytes();
        let mut reader = CachedReader::new(Box::new(dev) as Box<dyn BlockDevice>, window)?;
        let mut sb = [0u8; 1024];
        match reader.read_at(SUPERBLOCK, &mut sb) {
            Ok(()) => {}
            Err(BlockError::OutOfRange { .. }) => return Err(FsError::NotExt),
            Err(e) => return Err(FsError::Device(e)),
        }
        if sb[MAGIC_OFFSET..MAGIC_OFFSET + 2] != EXT_MAGIC {
            return Err(FsError::NotExt);
        }
        check_geometry(&sb, size)?;
        // ext4-view refuses a block size past 64 KiB when it loads.
        let log = u32::from_le_bytes([sb[24], sb[25], sb[26], sb[27]]);
        let block_size = 1024u64.checked_shl(log).filter(|&b| b <= 1 << 16).ok_or(FsError::NotExt)?;
        let stats = reader.shared_stats();
        let reader = Rc::new(RefCell::new(reader));
        let fs = Ext4::load(Box::new(Shared(reader.clone())))?;
        Ok(Ext4Fs { fs, reader, block_size, stats, max_file: size })
    }

    /// The largest file [`read_file`](Self::read_file) allocates for; by
    /// default the device's size (a file's size is the inode's word, and a
    /// sparse or corrupt one can claim far more than the disk holds).
    pub fn set_max_file(&mut self, limit: u64) {
        self.max_file = limit;
    }

    /// `path` with every symlink resolved, as bytes; with `follow_last`
    /// false the last component is left as it is (`lstat`, `read_link`).
    ///
    /// ext4-view resolves symlinks itself, but reads a long symlink's
    /// target whole at the size its inode claims, so a forged inode could
    /// make it allocate gigabytes. Here each link's size is checked
    /// ([`MAX_LINK_LEN`]) before its target is read, and the path handed to
    /// ext4-view afterwards holds no symlink at all. POSIX order: a link
    /// is expanded before a `..` after it applies.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<u8>, FsError> {
        let kind = |p: &[u8]| -> Result<(FileKind, u64), FsError> {
            let m = self.fs.symlink_metadata(p)?;
            let t = m.file_type();
            let kind = if t.is_symlink() {
                FileKind::Symlink
            } else if t.is_dir() {
                FileKind::Dir
            } else {
                FileKind::File
            };
            Ok((kind, m.len()))
        };
        let link = |p: &[u8]| -> Result<Vec<u8>, FsError> { Ok(self.fs.read_link(p)?.as_ref().to_vec()) };
        resolve_path(path, follow_last, kind, link)
    }

    /// The whole file at `path`, symlinks followed.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let len = self.file_len(path)?;
        let mut data = vec![0u8; len];
        self.read_file_into(path, &mut data)?;
        Ok(data)
    }

    /// The size of the file at `path` (symlinks followed), refused above
    /// the read limit.
    pub fn file_len(&self, path: &str) -> Result<usize, FsError> {
        let path = self.resolve(path, true)?;
        let size = self.fs.open(path.as_slice())?.metadata().len();
        if size > self.max_file {
            return Err(FsError::TooLarge { size, limit: self.max_file });
        }
        usize::try_from(size).map_err(|_| FsError::TooLarge { size, limit: self.max_file })
    }

    /// Read the file at `path` into `dst`, which must be exactly as long as
    /// the file (see [`file_len`](Self::file_len)): for buffers outside the
    /// heap, such as a kernel read into free RAM.
    pub fn read_file_into(&self, path: &str, dst: &mut [u8]) -> Result<(), FsError> {
        let path = self.resolve(path, true)?;
        let file = self.fs.open(path.as_slice())?;
        let size = file.metadata().len();
        if size != dst.len() as u64 {
            return Err(FsError::Corrupt(format!("file is {size} bytes, not the {} it was", dst.len())));
        }
        // Where each block lies, as runs (first block, 0 for a hole; how
        // many), taken before any data is read: ext4-view reads the extent
        // tree through the same reader.
        let bs = self.block_size;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut blocks = file.blocks()?;
        for _ in 0..size.div_ceil(bs) {
            let b = blocks.next().ok_or_else(|| FsError::Corrupt("file ended before its size".to_string()))??;
            match runs.last_mut() {
                Some((first, n)) if (*first == 0 && b == 0) || (*first != 0 && first.checked_add(*n) == Some(b)) => *n += 1,
                _ => runs.push((b, 1)),
            }
        }
        drop(blocks);
        let mut reader = self.reader.borrow_mut();
        let mut at = 0usize;
        for (first, n) in runs {
            // Whole blocks but the file's last, which may be partial.
            let len = usize::try_from(n.saturating_mul(bs)).unwrap_or(usize::MAX).min(dst.len() - at);
            let out = &mut dst[at..at + len];
            if first == 0 {
                out.fill(0);
            } else {
                let byte = first.checked_mul(bs).ok_or_else(|| FsError::Corrupt(format!("block {first} lies past any disk")))?;
                reader.read_bulk(byte, out)?;
            }
            at += len;
        }
        Ok(())
    }

    /// The names in directory `path` (not `.` and `..`), sorted bytewise.
    /// Names that are not UTF-8 are left out: no boot path uses them.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, FsError> {
        let path = self.resolve(path, true)?;
        let mut names = Vec::new();
        for entry in self.fs.read_dir(path.as_slice())? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().as_str() {
                if name != "." && name != ".." {
                    names.push(name.to_string());
                }
            }
        }
        crate::sort::sort_by(&mut names, |a, b| a.cmp(b));
        Ok(names)
    }

    /// What `path` is, symlinks followed.
    pub fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let path = self.resolve(path, true)?;
        Ok(Stat::from(&self.fs.symlink_metadata(path.as_slice())?))
    }

    /// What `path` itself is (a symlink is not followed).
    pub fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        let path = self.resolve(path, false)?;
        Ok(Stat::from(&self.fs.symlink_metadata(path.as_slice())?))
    }

    /// Whether `path` exists (symlinks followed: a dangling one does not).
    pub fn exists(&self, path: &str) -> Result<bool, FsError> {
        match self.stat(path) {
            Ok(_) => Ok(true),
            Err(FsError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The target of symlink `path`, as stored.
    pub fn read_link(&self, path: &str) -> Result<String, FsError> {
        let path = self.resolve(path, false)?;
        let meta = self.fs.symlink_metadata(path.as_slice())?;
        if !meta.is_symlink() {
            return Err(FsError::Other("not a symlink".to_string()));
        }
        if meta.len() > MAX_LINK_LEN {
            return Err(FsError::LinkTooLong(meta.len()));
        }
        let target = self.fs.read_link(path.as_slice())?;
        target.to_str().map(|s| s.to_string()).map_err(|_| FsError::NotUtf8)
    }

    /// `path` with every symlink resolved.
    pub fn canonicalize(&self, path: &str) -> Result<String, FsError> {
        let path = self.resolve(path, true)?;
        // The path must exist (resolve checks every component but a
        // trailing `..`).
        self.fs.symlink_metadata(path.as_slice())?;
        String::from_utf8(path).map_err(|_| FsError::NotUtf8)
    }

    /// The volume label (lossy UTF-8).
    pub fn label(&self) -> String {
        self.fs.label().display().to_string()
    }

    /// The filesystem UUID, as `blkid` prints it.
    pub fn uuid(&self) -> String {
        self.fs.uuid().to_string()
    }

    pub fn read_stats(&self) -> ReadStats {
        self.stats.get()
    }
}

/// [`Files`] for a filesystem type with `read_file`, `list_dir` and
/// `exists` of its own: absent is `Ok(None)`.
macro_rules! files_by_path {
    ([$($g:tt)*] $t:ty) => {
        files_by_path!([$($g)*] $t, <$t>::exists);
    };
    ([$($g:tt)*] $t:ty, $exists:expr $(; $($more:tt)*)?) => {
        impl<$($g)*> Files for $t {
            type Error = FsError;
            $($($more)*)?

            fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
                absent_is_none(self.read_file(path))
            }

            fn list(&mut self, dir: &str) -> Result<Option<Vec<String>>, FsError> {
                absent_is_none(self.list_dir(dir))
            }

            fn exists(&mut self, path: &str) -> Result<bool, FsError> {
                $exists(self, path)
            }
        }
    };
}
pub(crate) use files_by_path;

files_by_path!([] Ext4Fs);

/// `path` with every symlink resolved, as bytes, for a filesystem that
/// answers `kind` (what a path is, and its size) and `link` (a symlink's
/// target) without following symlinks itself; with `follow_last` false
/// the last component is left as it is (`lstat`, `read_link`).
///
/// Each link's size is checked ([`MAX_LINK_LEN`]) before its target is
/// read, at most [`MAX_LINKS`] are followed, and the path returned holds
/// no symlink at all. POSIX order: a link is expanded before a `..` after
/// it applies.
pub(crate) fn resolve_path(
    path: &str,
    follow_last: bool,
    mut kind: impl FnMut(&[u8]) -> Result<(FileKind, u64), FsError>,
    mut link: impl FnMut(&[u8]) -> Result<Vec<u8>, FsError>,
) -> Result<Vec<u8>, FsError> {
    if !path.starts_with('/') {
        return Err(FsError::BadPath);
    }
    let mut done: Vec<Vec<u8>> = Vec::new();
    // Still to walk, last component first.
    let mut todo: Vec<Vec<u8>> = path.as_bytes().rsplit(|&b| b == b'/').map(|c| c.to_vec()).collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let last = todo.iter().all(|c| c.is_empty() || c == b".");
        done.push(c);
        let here = join(&done);
        let (k, len) = kind(here.as_slice())?;
        if k == FileKind::Symlink && (follow_last || !last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(FsError::SymlinkLoop);
            }
            if len > MAX_LINK_LEN {
                return Err(FsError::LinkTooLong(len));
            }
            let target = link(here.as_slice())?;
            done.pop();
            if target.starts_with(b"/") {
                done.clear();
            }
            todo.extend(target.rsplit(|&b| b == b'/').map(|c| c.to_vec()));
        } else if !last && k != FileKind::Dir {
            return Err(FsError::NotADirectory);
        }
    }
    Ok(join(&done))
}

/// `/a/b` from `[a, b]`; `/` from none.
fn join(components: &[Vec<u8>]) -> Vec<u8> {
    if components.is_empty() {
        return b"/".to_vec();
    }
    let mut p = Vec::new();
    for c in components {
        p.push(b'/');
        p.extend_from_slice(c);
    }
    p
}

pub(crate) fn absent_is_none<T>(r: Result<T, FsError>) -> Result<Option<T>, FsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(FsError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::block::{MemDisk, Partition};
    use crate::disk::part::{read_table, TableKind};
    use crate::disk::testimg::{debugfs, mkfs_ext4, random_bytes, Img, LINUX_FS};
    use core::cell::RefCell;
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::sync::OnceLock;

    const KERNEL_LEN: usize = 5 << 20;

    fn kernel() -> &'static [u8] {
        static K: OnceLock<Vec<u8>> = OnceLock::new();
        K.get_or_init(|| random_bytes(KERNEL_LEN, 0x6b65726e656c))
    }

    /// A /boot like Debian's: a kernel, a config, symlinks (relative,
    /// absolute, dangling, a loop), a FIFO-free tree mkfs can copy.
    fn fill(root: &Path) {
        let boot = root.join("boot");
        std::fs::create_dir_all(boot.join("grub")).unwrap();
        std::fs::write(boot.join("vmlinuz-6.1"), kernel()).unwrap();
        std::fs::write(boot.join("initrd.img-6.1"), b"initrd bytes").unwrap();
        std::fs::write(boot.join("grub/grub.cfg"), b"menuentry 'Debian' {}\n").unwrap();
        symlink("boot/vmlinuz-6.1", root.join("vmlinuz")).unwrap();
        symlink("/boot/initrd.img-6.1", root.join("initrd.img")).unwrap();
        symlink("boot/missing", root.join("dangling")).unwrap();
        symlink("loop-b", root.join("loop-a")).unwrap();
        symlink("loop-a", root.join("loop-b")).unwrap();
        std::fs::create_dir(root.join("empty")).unwrap();
    }

    /// mkfs.ext4 with Debian's defaults over `fill`, made once.
    fn image() -> &'static [u8] {
        static I: OnceLock<Vec<u8>> = OnceLock::new();
        I.get_or_init(|| mkfs_ext4(12 << 10, &[], fill))
    }

    fn open_whole(bytes: &[u8], ss: u32) -> Ext4Fs {
        Ext4Fs::open(MemDisk::new(bytes.to_vec(), ss).unwrap()).unwrap()
    }

    /// The checks every image passes, wherever it lies.
    fn check_tree(fs: &mut Ext4Fs) {
        assert_eq!(fs.label(), "hvroot");
        assert_eq!(fs.uuid(), "0a0b0c0d-0000-4000-8000-00000000beef");
        let got = fs.read_file("/boot/vmlinuz-6.1").unwrap();
        assert!(got == kernel(), "the 5 MiB file reads back byte for byte");
        assert_eq!(fs.read_file("/vmlinuz").unwrap().len(), KERNEL_LEN);
        assert_eq!(fs.read_file("/initrd.img").unwrap(), b"initrd bytes");
        assert_eq!(fs.canonicalize("/vmlinuz").unwrap(), "/boot/vmlinuz-6.1");
        assert_eq!(fs.read_link("/vmlinuz").unwrap(), "boot/vmlinuz-6.1");
        assert_eq!(fs.read_file("/loop-a"), Err(FsError::SymlinkLoop));
        assert_eq!(fs.read_file("/dangling"), Err(FsError::NotFound));
        assert_eq!(fs.read_file("/boot"), Err(FsError::IsADirectory));
        assert_eq!(fs.read_file("boot/grub/grub.cfg"), Err(FsError::BadPath));
        assert_eq!(fs.list_dir("/boot").unwrap(), ["grub", "initrd.img-6.1", "vmlinuz-6.1"]);
        assert!(fs.list_dir("/empty").unwrap().is_empty());
        assert_eq!(fs.list_dir("/vmlinuz"), Err(FsError::NotADirectory));
        assert_eq!(fs.stat("/vmlinuz").unwrap().kind, FileKind::File);
        assert_eq!(fs.stat("/vmlinuz").unwrap().size, KERNEL_LEN as u64);
        assert_eq!(fs.lstat("/vmlinuz").unwrap().kind, FileKind::Symlink);
        assert_eq!(fs.stat("/boot/grub").unwrap().kind, FileKind::Dir);
        assert!(fs.exists("/boot/grub/grub.cfg").unwrap());
        assert!(!fs.exists("/boot/nope").unwrap());
        assert!(!fs.exists("/dangling").unwrap());
        assert_eq!(fs.exists("/loop-b"), Err(FsError::SymlinkLoop));
        // Through the trait the boot-config code uses.
        let files: &mut dyn Files<Error = FsError> = fs;
        assert_eq!(files.read("/boot/grub/grub.cfg").unwrap().unwrap(), b"menuentry 'Debian' {}\n");
        assert_eq!(files.read("/boot/grub/missing.cfg"), Ok(None));
        assert_eq!(files.read("/nodir/grub.cfg"), Ok(None));
        assert_eq!(files.list("/nodir"), Ok(None));
        assert_eq!(files.list("/boot/grub").unwrap().unwrap(), ["grub.cfg"]);
        assert_eq!(files.read("/loop-a"), Err(FsError::SymlinkLoop));
    }

    #[test]
    fn whole_disk_ext4() {
        let disk = MemDisk::new(image().to_vec(), 512).unwrap();
        let t = read_table(&mut disk.clone()).unwrap();
        assert_eq!(t.kind, TableKind::Whole);
        let mut fs = Ext4Fs::open(t.partitions[0].open(disk).unwrap()).unwrap();
        check_tree(&mut fs);
    }

    #[test]
    fn ext4_in_gpt_partition_2_with_512_and_4096_byte_sectors() {
        for ss in [512usize, 4096] {
            let fs_sectors = (image().len() / ss) as u64;
            let start = (1 << 20) / ss as u64;
            let mut img = Img::new(ss, start + fs_sectors + (1 << 20) / ss as u64);
            img.gpt(&[(LINUX_FS, 40, start - 1, "boot"), (LINUX_FS, start, start + fs_sectors - 1, "root")]);
            img.put(start, image());
            let disk = Rc::new(RefCell::new(MemDisk::new(img.data, ss as u32).unwrap()));
            let t = read_table(&mut disk.clone()).unwrap();
            assert_eq!(t.kind, TableKind::Gpt);
            // Partition 1 holds no filesystem; partition 2 does.
            assert_eq!(Ext4Fs::open(t.get(1).unwrap().open(disk.clone()).unwrap()).err(), Some(FsError::NotExt));
            let mut fs = Ext4Fs::open(t.get(2).unwrap().open(disk.clone()).unwrap()).unwrap();
            check_tree(&mut fs);
        }
    }

    #[test]
    fn ext4_in_an_mbr_logical_partition() {
        let fs_sectors = (image().len() / 512) as u32;
        let ext_start = 2048u32;
        let mut img = Img::new(512, u64::from(ext_start + 4096 + fs_sectors + 64));
        img.mbr(0, &[(0x80, 0x83, 64, 1024), (0, 0x05, ext_start, 4096 + fs_sectors + 64)]);
        img.mbr(u64::from(ext_start), &[(0, 0x82, 64, 1000), (0, 0x05, 2048, fs_sectors + 64)]);
        img.mbr(u64::from(ext_start + 2048), &[(0, 0x83, 2048, fs_sectors)]);
        img.put(u64::from(ext_start + 4096), image());
        let mut disk = MemDisk::new(img.data, 512).unwrap();
        let t = read_table(&mut disk).unwrap();
        let p6 = t.get(6).unwrap().clone();
        assert_eq!(p6.start, u64::from(ext_start + 4096));
        let mut fs = Ext4Fs::open(p6.open(disk).unwrap()).unwrap();
        check_tree(&mut fs);
    }

    #[test]
    fn a_sparse_file_reads_whole_with_its_holes_as_zeros() {
        use std::os::unix::fs::FileExt;
        let data = random_bytes(100_000, 9);
        let img = mkfs_ext4(8 << 10, &[], |root| {
            let f = std::fs::File::create(root.join("sparse")).unwrap();
            f.set_len(3 << 20).unwrap();
            f.write_at(&data, 1 << 20).unwrap();
            f.write_at(b"end", (3 << 20) - 3).unwrap();
        });
        let mut want = vec![0u8; 3 << 20];
        want[1 << 20..(1 << 20) + data.len()].copy_from_slice(&data);
        want[(3 << 20) - 3..].copy_from_slice(b"end");
        for ss in [512, 4096] {
            let fs = open_whole(&img, ss);
            assert!(fs.read_file("/sparse").unwrap() == want, "sector size {ss}");
        }
    }

    #[test]
    fn ext2_with_1k_blocks() {
        let img = mkfs_ext4(4 << 10, &["-t", "ext2", "-b", "1024"], |root| {
            std::fs::create_dir(root.join("boot")).unwrap();
            std::fs::write(root.join("boot/vmlinuz"), random_bytes(300_000, 7)).unwrap();
            symlink("boot/vmlinuz", root.join("vmlinuz")).unwrap();
        });
        for ss in [512, 4096] {
            let fs = open_whole(&img, ss);
            assert_eq!(fs.read_file("/vmlinuz").unwrap(), random_bytes(300_000, 7));
        }
    }

    #[test]
    fn large_reads_reach_the_device_in_large_chunks() {
        let fs = open_whole(image(), 512);
        let before = fs.read_stats();
        assert_eq!(fs.read_file("/boot/vmlinuz-6.1").unwrap().len(), KERNEL_LEN);
        let st = fs.read_stats();
        let (reads, bytes) = (st.device_reads - before.device_reads, st.device_bytes - before.device_bytes);
        // The file's runs of blocks go to the device whole (mkfs -d
        // writes it in one or two), with a few small fills for the inode
        // and extent blocks: not ext4-view's 160 reads of 32 KiB, and
        // little more than the file's bytes.
        eprintln!("5 MiB file: {} requests, {reads} device reads, {bytes} bytes", st.requests - before.requests);
        assert!(reads <= 8, "{reads} device reads for 5 MiB ({st:?})");
        assert!(bytes <= KERNEL_LEN as u64 + 4 * MIN_FILL as u64, "{bytes} bytes read for 5 MiB");
    }

    #[test]
    fn fills_start_small_and_grow_along_a_stream_runs_go_straight_through() {
        let data = random_bytes(8 << 20, 5);
        let mut r = CachedReader::new(MemDisk::new(data.clone(), 512).unwrap(), 2 << 20).unwrap();
        let fills = |r: &CachedReader<MemDisk>, before: ReadStats| r.stats().device_bytes - before.device_bytes;
        // Somewhere new (a metadata block): one small fill.
        let mut buf = vec![0u8; 32 * 1024];
        let st = r.stats();
        r.read_at((6 << 20) + 700, &mut buf[..100]).unwrap();
        assert_eq!(buf[..100], data[(6 << 20) + 700..(6 << 20) + 800]);
        assert_eq!(fills(&r, st), MIN_FILL as u64);
        // Reads that go on where the last fill ended: 64 KiB, then 256
        // KiB, 1 MiB, then whole windows.
        let mut sizes = Vec::new();
        let mut pos = 0u64;
        while pos < (5 << 20) {
            let st = r.stats();
            r.read_at(pos, &mut buf).unwrap();
            assert_eq!(buf, data[pos as usize..pos as usize + buf.len()]);
            if fills(&r, st) > 0 {
                sizes.push(fills(&r, st) >> 10);
            }
            pos += buf.len() as u64;
        }
        assert_eq!(sizes, [64, 256, 1024, 2048, 2048], "KiB");
        // A run a caller wants whole: one device read straight into its
        // buffer, the partial sectors at its ends through the windows.
        let (from, len) = ((7u64 << 20) + 100, 300_000usize);
        let mut run = vec![0u8; len];
        let st = r.stats();
        r.read_bulk(from, &mut run).unwrap();
        assert_eq!(run, data[from as usize..from as usize + len]);
        let read = fills(&r, st);
        assert!(read >= len as u64 && read <= len as u64 + 2 * MIN_FILL as u64, "{read} bytes read for {len}");
        assert!(r.stats().device_reads - st.device_reads <= 3, "{:?}", r.stats());
        assert!(r.read_bulk((8 << 20) - 1000, &mut run).is_err(), "past the device's end");
        // A fill never reaches past the device's end.
        let st = r.stats();
        r.read_at((8 << 20) - 10, &mut buf[..10]).unwrap();
        assert_eq!(buf[..10], data[(8 << 20) - 10..]);
        assert!(fills(&r, st) <= MIN_FILL as u64);
    }

    #[test]
    fn cached_reader_windows_and_bounds() {
        let data = random_bytes(64 * 4096, 3);
        let mut r = CachedReader::new(MemDisk::new(data.clone(), 4096).unwrap(), 16 * 1024).unwrap();
        let mut buf = vec![0u8; 100];
        r.read_at(5000, &mut buf).unwrap();
        assert_eq!(buf, &data[5000..5100]);
        // Inside the same window: no device read.
        r.read_at(4096 * 3 + 7, &mut buf).unwrap();
        assert_eq!(buf, &data[4096 * 3 + 7..4096 * 3 + 107]);
        assert_eq!(r.stats().device_reads, 1);
        // Across a window's end.
        let mut buf = vec![0u8; 10_000];
        r.read_at(16 * 1024 - 5000, &mut buf).unwrap();
        assert_eq!(buf, &data[16 * 1024 - 5000..16 * 1024 + 5000]);
        // A long aligned read goes straight through; a long unaligned one
        // is windows then straight through.
        let mut big = vec![0u8; 100_000];
        r.read_at(40960, &mut big).unwrap();
        assert_eq!(big, &data[40960..140960]);
        r.read_at(40961, &mut big).unwrap();
        assert_eq!(big, &data[40961..140961]);
        // The last byte, and one past it.
        let mut one = [0u8; 1];
        r.read_at(data.len() as u64 - 1, &mut one).unwrap();
        assert_eq!(one[0], *data.last().unwrap());
        assert!(matches!(r.read_at(data.len() as u64, &mut one), Err(BlockError::OutOfRange { .. })));
        assert!(matches!(r.read_at(u64::MAX, &mut one), Err(BlockError::OutOfRange { .. })));
    }

    #[test]
    fn not_ext_and_corrupt_superblocks() {
        // Zeros, and a device too small to hold a superblock.
        assert_eq!(Ext4Fs::open(MemDisk::new(vec![0; 1 << 16], 512).unwrap()).err(), Some(FsError::NotExt));
        assert_eq!(Ext4Fs::open(MemDisk::new(vec![0; 1024], 512).unwrap()).err(), Some(FsError::NotExt));
        // The magic, but a superblock whose checksum no longer matches.
        let mut bad = image().to_vec();
        bad[1024 + 0x78] ^= 0xff; // s_volume_name
        let err = Ext4Fs::open(MemDisk::new(bad, 512).unwrap()).err().unwrap();
        assert!(matches!(err, FsError::Corrupt(_)), "{err:?}");
        assert!(!err.to_string().contains('\n'));
        // More blocks than the device holds; a forged blocks-per-group.
        let mut bad = image().to_vec();
        bad[1024 + 0x150] = 1; // s_blocks_count_hi
        assert_eq!(
            Ext4Fs::open(MemDisk::new(bad, 512).unwrap()).err(),
            Some(FsError::LargerThanDevice { fs_bytes: (1u128 << 32 | 12288) * 1024, device_bytes: 12 << 20 })
        );
        let mut bad = image().to_vec();
        bad[1024 + 0x20..1024 + 0x24].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(Ext4Fs::open(MemDisk::new(bad, 512).unwrap()).err(), Some(FsError::BlocksPerGroup(8)));
        // An absurd block size (s_log_block_size) with the checksum off.
        let img = mkfs_ext4(1024, &["-O", "^metadata_csum"], |_| {});
        let mut bad = img.clone();
        bad[1024 + 0x18] = 40;
        let err = Ext4Fs::open(MemDisk::new(bad, 512).unwrap()).err().unwrap();
        assert!(matches!(err, FsError::Corrupt(_)), "{err:?}");
        // A filesystem cut short (a partition entry smaller than its
        // filesystem) is refused as a whole, as Linux does.
        let cut = &image()[..image().len() / 2];
        assert_eq!(
            Ext4Fs::open(MemDisk::new(cut.to_vec(), 512).unwrap()).err(),
            Some(FsError::LargerThanDevice { fs_bytes: 12 << 20, device_bytes: 6 << 20 })
        );
    }

    /// A slow symlink (target over 59 bytes) whose inode claims 16 GiB:
    /// ext4-view would allocate that much to read the target; the size is
    /// checked first.
    #[test]
    fn forged_symlink_size_is_refused_before_reading() {
        let target = format!("/{}", "d/".repeat(40) + "file");
        let mut img = mkfs_ext4(1024, &[], |root| {
            std::fs::create_dir_all(root.join("d/".repeat(40))).unwrap();
            std::fs::write(root.join(&target[1..]), b"data").unwrap();
            symlink(&target, root.join("long")).unwrap();
        });
        let fs = open_whole(&img, 512);
        assert_eq!(fs.read_file("/long").unwrap(), b"data");
        assert_eq!(fs.read_link("/long").unwrap(), target);
        debugfs(&mut img, "sif /long size 0x400000000");
        let fs = open_whole(&img, 512);
        assert_eq!(fs.read_file("/long"), Err(FsError::LinkTooLong(1 << 34)));
        assert_eq!(fs.read_link("/long"), Err(FsError::LinkTooLong(1 << 34)));
        assert_eq!(fs.lstat("/long").unwrap().size, 1 << 34);
    }

    #[test]
    fn dot_dot_and_symlinks_resolve_like_posix() {
        let fs = open_whole(image(), 512);
        // `..` applies after the link is expanded: /vmlinuz/.. is not /.
        assert_eq!(fs.canonicalize("/boot/../vmlinuz").unwrap(), "/boot/vmlinuz-6.1");
        assert_eq!(fs.canonicalize("/initrd.img/../grub/./grub.cfg"), Err(FsError::NotADirectory));
        assert_eq!(fs.canonicalize("/../../boot//grub/").unwrap(), "/boot/grub");
        assert_eq!(fs.canonicalize("/").unwrap(), "/");
        assert_eq!(fs.list_dir("/boot/grub/..").unwrap().len(), 3);
    }

    #[test]
    fn read_limit_refuses_before_allocating() {
        let mut fs = open_whole(image(), 512);
        fs.set_max_file(1 << 20);
        assert_eq!(fs.read_file("/vmlinuz"), Err(FsError::TooLarge { size: KERNEL_LEN as u64, limit: 1 << 20 }));
        assert_eq!(fs.read_file("/initrd.img").unwrap(), b"initrd bytes");
    }

    #[test]
    fn partition_reads_stay_inside() {
        // An ext4 image in a partition followed by 0xff bytes: the reader
        // can never see them, whatever the filesystem says.
        let mut data = image().to_vec();
        let fs_len = data.len();
        data.extend(std::iter::repeat_n(0xff, 1 << 20));
        let disk = MemDisk::new(data, 512).unwrap();
        let part = Partition::new(disk, 0, (fs_len / 512) as u64).unwrap();
        let mut r = CachedReader::new(part, DEFAULT_WINDOW).unwrap();
        let mut buf = [0u8; 1];
        assert!(r.read_at(fs_len as u64, &mut buf).is_err());
    }
}
