//! Block devices: the one trait every disk implements (the Xen blkfront
//! later, [`MemDisk`] in tests and fuzzing), and [`Partition`], which makes
//! a sub-range of a disk look like a disk of its own.
//!
//! Requests are whole sectors: a buffer's length must be a multiple of the
//! sector size, and a request reaching past the last sector is refused
//! before anything is read. Every implementation checks both with
//! [`check_request`], so a bad offset computed from disk contents (a
//! partition table, a superblock) ends as a typed error, never as a read
//! somewhere else. Sector sizes are powers of two from 512 to 4096 bytes
//! (512 and 4096 are the ones disks have; Xen's blkback reports either).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

/// The smallest and largest sector sizes this code handles.
pub const MIN_SECTOR_SIZE: u32 = 512;
pub const MAX_SECTOR_SIZE: u32 = 4096;

/// Whether `size` is a sector size the block layer handles: a power of two
/// from [`MIN_SECTOR_SIZE`] to [`MAX_SECTOR_SIZE`].
pub fn valid_sector_size(size: u32) -> bool {
    size.is_power_of_two() && (MIN_SECTOR_SIZE..=MAX_SECTOR_SIZE).contains(&size)
}

/// Why a block request failed. Each names the request or the device, so a
/// boot report can say what went wrong in one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The buffer is not a whole number of sectors.
    Unaligned { len: usize, sector_size: u32 },
    /// The request reaches past the device's last sector (or the
    /// partition's): `count` sectors from `sector` on a device of `sectors`.
    OutOfRange { sector: u64, count: u64, sectors: u64 },
    /// A sector size outside 512..=4096 or not a power of two.
    BadSectorSize(u32),
    /// The device is read-only.
    ReadOnly,
    /// The device does not do this operation (e.g. a backend without flush).
    Unsupported,
    /// A shared device handle was already borrowed: a request made from
    /// inside another request on the same device.
    Busy,
    /// The device itself reported a failure, with its own status code
    /// (blkfront: the ring response's status).
    Device(i32),
    /// The device stopped working (its driver found the other end broken
    /// or silent); the driver keeps why (e.g. `BlkFront::error`).
    Stopped,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlockError::Unaligned { len, sector_size } => {
                write!(f, "a {len}-byte request is not a whole number of {sector_size}-byte sectors")
            }
            BlockError::OutOfRange { sector, count, sectors } => {
                write!(f, "{count} sectors at sector {sector} reach past the end of a {sectors}-sector device")
            }
            BlockError::BadSectorSize(s) => write!(f, "sector size {s} is not a power of two in 512..=4096"),
            BlockError::ReadOnly => f.write_str("the device is read-only"),
            BlockError::Unsupported => f.write_str("the device does not support this operation"),
            BlockError::Busy => f.write_str("the device is busy with another request"),
            BlockError::Device(status) => write!(f, "the device reported an error (status {status})"),
            BlockError::Stopped => f.write_str("the device stopped"),
        }
    }
}

impl core::error::Error for BlockError {}

/// A disk: fixed-size sectors, numbered from 0.
///
/// `read` and `write` take whole sectors (`buf.len()` a multiple of
/// [`sector_size`](Self::sector_size)) and must refuse, with
/// [`check_request`]'s error, any request past [`sectors`](Self::sectors).
/// A request may be long: the device splits it into what its transport
/// carries per request, and callers wanting speed send long ones.
pub trait BlockDevice {
    /// Bytes per sector: 512 or 4096 (see [`valid_sector_size`]).
    fn sector_size(&self) -> u32;
    /// The number of sectors.
    fn sectors(&self) -> u64;
    /// Read `buf.len() / sector_size` sectors starting at `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Write `buf.len() / sector_size` sectors starting at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), BlockError>;

    /// The device's size in bytes (saturating: no real device comes close).
    fn size_bytes(&self) -> u64 {
        self.sectors().saturating_mul(u64::from(self.sector_size()))
    }
}

/// The checks every request passes before a device touches anything:
/// `len` is whole sectors and the sectors lie on a device of `sectors`
/// sectors of `sector_size` bytes. Returns the number of sectors.
pub fn check_request(sector_size: u32, sectors: u64, sector: u64, len: usize) -> Result<u64, BlockError> {
    if !valid_sector_size(sector_size) {
        return Err(BlockError::BadSectorSize(sector_size));
    }
    if !len.is_multiple_of(sector_size as usize) {
        return Err(BlockError::Unaligned { len, sector_size });
    }
    let count = (len / sector_size as usize) as u64;
    match sector.checked_add(count) {
        Some(end) if end <= sectors => Ok(count),
        _ => Err(BlockError::OutOfRange { sector, count, sectors }),
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn sectors(&self) -> u64 {
        (**self).sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        (**self).read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        (**self).write(sector, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        (**self).flush()
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for Box<D> {
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn sectors(&self) -> u64 {
        (**self).sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        (**self).read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        (**self).write(sector, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        (**self).flush()
    }
}

/// A shared handle: one disk, several owners. A filesystem reader owns its
/// device for as long as it lives (ext4-view keeps a `'static` reader), so
/// opening two partitions of one disk at once takes a handle each. A
/// request made while another one on the same disk is running (impossible
/// single-threaded, short of a device calling back into itself) is `Busy`,
/// not a panic.
impl<D: BlockDevice + ?Sized> BlockDevice for Rc<RefCell<D>> {
    fn sector_size(&self) -> u32 {
        self.try_borrow().map_or(0, |d| d.sector_size())
    }
    fn sectors(&self) -> u64 {
        self.try_borrow().map_or(0, |d| d.sectors())
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.try_borrow_mut().map_err(|_| BlockError::Busy)?.read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.try_borrow_mut().map_err(|_| BlockError::Busy)?.write(sector, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.try_borrow_mut().map_err(|_| BlockError::Busy)?.flush()
    }
}

/// A disk held in memory: tests and fuzzing, and a disk image handed over
/// whole (e.g. as a boot module).
#[derive(Clone, Debug)]
pub struct MemDisk {
    data: Vec<u8>,
    sector_size: u32,
    read_only: bool,
}

impl MemDisk {
    /// `data` as a disk of `sector_size`-byte sectors. Its length must be a
    /// whole number of sectors.
    pub fn new(data: Vec<u8>, sector_size: u32) -> Result<Self, BlockError> {
        if !valid_sector_size(sector_size) {
            return Err(BlockError::BadSectorSize(sector_size));
        }
        if !data.len().is_multiple_of(sector_size as usize) {
            return Err(BlockError::Unaligned { len: data.len(), sector_size });
        }
        Ok(MemDisk { data, sector_size, read_only: false })
    }

    /// `data` padded with zeros to a whole number of sectors (fuzz inputs
    /// have any length).
    pub fn padded(mut data: Vec<u8>, sector_size: u32) -> Result<Self, BlockError> {
        if !valid_sector_size(sector_size) {
            return Err(BlockError::BadSectorSize(sector_size));
        }
        let len = data.len().next_multiple_of(sector_size as usize);
        data.resize(len, 0);
        MemDisk::new(data, sector_size)
    }

    /// The same disk, refusing writes.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.data
    }

    fn byte_range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, BlockError> {
        check_request(self.sector_size, self.sectors(), sector, len)?;
        // In range of `data`, so the products fit in usize.
        let start = sector as usize * self.sector_size as usize;
        Ok(start..start + len)
    }
}

impl BlockDevice for MemDisk {
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn sectors(&self) -> u64 {
        (self.data.len() / self.sector_size as usize) as u64
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let r = self.byte_range(sector, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        let r = self.byte_range(sector, buf.len())?;
        self.data[r].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
}

/// Sectors `start..start + sectors` of `dev` as a device of their own:
/// sector 0 here is `start` there, and nothing outside the range can be
/// reached through it. `D` is the device itself, `&mut` one, or a shared
/// `Rc<RefCell<_>>` handle.
#[derive(Debug)]
pub struct Partition<D> {
    dev: D,
    start: u64,
    sectors: u64,
    // Kept from `new`: a shared handle cannot answer while it is borrowed.
    sector_size: u32,
}

impl<D: BlockDevice> Partition<D> {
    /// The range must lie on `dev`; `OutOfRange` names it if not.
    pub fn new(dev: D, start: u64, sectors: u64) -> Result<Self, BlockError> {
        let ss = dev.sector_size();
        if !valid_sector_size(ss) {
            return Err(BlockError::BadSectorSize(ss));
        }
        match start.checked_add(sectors) {
            Some(end) if end <= dev.sectors() => Ok(Partition { dev, start, sectors, sector_size: ss }),
            _ => Err(BlockError::OutOfRange { sector: start, count: sectors, sectors: dev.sectors() }),
        }
    }

    /// The first sector on the underlying device.
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }

    pub fn into_inner(self) -> D {
        self.dev
    }
}

impl<D: BlockDevice> BlockDevice for Partition<D> {
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.sector_size(), self.sectors, sector, buf.len())?;
        self.dev.read(self.start + sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(self.sector_size(), self.sectors, sector, buf.len())?;
        self.dev.write(self.start + sector, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.dev.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn disk(ss: u32, sectors: usize) -> MemDisk {
        let data = (0..ss as usize * sectors).map(|i| (i / ss as usize) as u8).collect();
        MemDisk::new(data, ss).unwrap()
    }

    #[test]
    fn sector_sizes() {
        for ok in [512, 1024, 2048, 4096] {
            assert!(valid_sector_size(ok));
        }
        for bad in [0, 256, 513, 8192] {
            assert!(!valid_sector_size(bad));
            assert_eq!(MemDisk::new(vec![], bad).unwrap_err(), BlockError::BadSectorSize(bad));
        }
        assert_eq!(MemDisk::new(vec![0; 1000], 512).unwrap_err(), BlockError::Unaligned { len: 1000, sector_size: 512 });
        assert_eq!(MemDisk::padded(vec![1; 1000], 512).unwrap().sectors(), 2);
    }

    #[test]
    fn memdisk_reads_writes_and_refuses_out_of_range() {
        for ss in [512u32, 4096] {
            let mut d = disk(ss, 8);
            assert_eq!(d.size_bytes(), 8 * ss as u64);
            let mut buf = vec![0u8; 2 * ss as usize];
            d.read(6, &mut buf).unwrap();
            assert_eq!(buf[0], 6);
            assert_eq!(buf[ss as usize], 7);
            assert_eq!(d.read(7, &mut buf), Err(BlockError::OutOfRange { sector: 7, count: 2, sectors: 8 }));
            assert_eq!(d.read(u64::MAX, &mut buf), Err(BlockError::OutOfRange { sector: u64::MAX, count: 2, sectors: 8 }));
            assert_eq!(d.read(0, &mut buf[..100]), Err(BlockError::Unaligned { len: 100, sector_size: ss }));
            d.read(8, &mut []).unwrap();
            d.write(1, &vec![0xee; ss as usize]).unwrap();
            d.read(1, &mut buf[..ss as usize]).unwrap();
            assert!(buf[..ss as usize].iter().all(|&b| b == 0xee));
            let mut ro = d.read_only();
            assert_eq!(ro.write(0, &buf[..ss as usize]), Err(BlockError::ReadOnly));
        }
    }

    #[test]
    fn partition_offsets_and_bounds() {
        for ss in [512u32, 4096] {
            let mut d = disk(ss, 16);
            assert_eq!(Partition::new(&mut d, 10, 7).unwrap_err(), BlockError::OutOfRange { sector: 10, count: 7, sectors: 16 });
            assert!(Partition::new(&mut d, u64::MAX, 2).is_err());
            let mut p = Partition::new(&mut d, 10, 6).unwrap();
            assert_eq!((p.sectors(), p.sector_size(), p.start()), (6, ss, 10));
            let mut buf = vec![0u8; ss as usize];
            p.read(0, &mut buf).unwrap();
            assert_eq!(buf[0], 10);
            p.read(5, &mut buf).unwrap();
            assert_eq!(buf[0], 15);
            assert_eq!(p.read(6, &mut buf), Err(BlockError::OutOfRange { sector: 6, count: 1, sectors: 6 }));
            // A partition of a partition stays inside both.
            let mut pp = Partition::new(&mut p, 2, 2).unwrap();
            pp.read(1, &mut buf).unwrap();
            assert_eq!(buf[0], 13);
            assert!(pp.read(2, &mut buf).is_err());
            pp.write(0, &vec![0xaa; ss as usize]).unwrap();
            assert_eq!(d.data()[12 * ss as usize], 0xaa);
        }
    }

    #[test]
    fn shared_handles_read_the_same_disk() {
        let shared = Rc::new(RefCell::new(disk(512, 4)));
        let mut a = Partition::new(shared.clone(), 0, 2).unwrap();
        let mut b = Partition::new(shared.clone(), 2, 2).unwrap();
        let mut buf = [0u8; 512];
        a.read(1, &mut buf).unwrap();
        assert_eq!(buf[0], 1);
        b.read(1, &mut buf).unwrap();
        assert_eq!(buf[0], 3);
        let _held = shared.borrow_mut();
        assert_eq!(a.read(0, &mut buf), Err(BlockError::Busy));
    }
}
