//! Byte rings shared with another domain (the xenstore and PV console
//! rings): one side produces, the other consumes, each owning one index.
//!
//! The peer is not trusted. Every operation reads each index once, checks
//! that `prod - cons` is at most the ring size (else the ring is corrupt and
//! the operation fails), and masks every offset into the ring, so a hostile
//! or buggy peer can never make us read or write outside the ring.

use core::sync::atomic::{fence, Ordering};

/// Access to a shared page. Implementations use volatile accesses.
pub trait RingMem {
    fn load32(&self, off: usize) -> u32;
    fn store32(&self, off: usize, v: u32);
    fn read(&self, off: usize, buf: &mut [u8]);
    fn write(&self, off: usize, data: &[u8]);
}

/// Where one direction of a ring lives in its page.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    /// Offset of the data area.
    pub data: usize,
    /// Size of the data area (a power of two).
    pub size: u32,
    pub cons: usize,
    pub prod: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt {
    pub cons: u32,
    pub prod: u32,
    pub size: u32,
}

impl core::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ring indexes cons {:#x} prod {:#x} are {} apart (ring size {})",
            self.cons,
            self.prod,
            self.prod.wrapping_sub(self.cons),
            self.size
        )
    }
}

impl Ring {
    fn indexes(&self, m: &impl RingMem) -> Result<(u32, u32), Corrupt> {
        let cons = m.load32(self.cons);
        let prod = m.load32(self.prod);
        // Read the indexes before the data they cover.
        fence(Ordering::Acquire);
        if prod.wrapping_sub(cons) > self.size {
            return Err(Corrupt { cons, prod, size: self.size });
        }
        Ok((cons, prod))
    }

    /// Bytes waiting to be consumed.
    pub fn available(&self, m: &impl RingMem) -> Result<u32, Corrupt> {
        let (c, p) = self.indexes(m)?;
        Ok(p.wrapping_sub(c))
    }

    /// Consumer: take up to `buf.len()` bytes; returns how many.
    pub fn consume(&self, m: &impl RingMem, buf: &mut [u8]) -> Result<usize, Corrupt> {
        let (cons, prod) = self.indexes(m)?;
        let n = (prod.wrapping_sub(cons) as usize).min(buf.len());
        self.copy(cons, n, |off, range| m.read(off, &mut buf[range]));
        // Finish reading the data before handing the space back.
        fence(Ordering::SeqCst);
        m.store32(self.cons, cons.wrapping_add(n as u32));
        Ok(n)
    }

    /// Producer: put as much of `data` as fits; returns how many bytes.
    pub fn produce(&self, m: &impl RingMem, data: &[u8]) -> Result<usize, Corrupt> {
        let (cons, prod) = self.indexes(m)?;
        let space = self.size - prod.wrapping_sub(cons);
        let n = (space as usize).min(data.len());
        self.copy(prod, n, |off, range| m.write(off, &data[range]));
        // Publish the data before the index that covers it.
        fence(Ordering::Release);
        m.store32(self.prod, prod.wrapping_add(n as u32));
        Ok(n)
    }

    /// Split `n` bytes from index `at` into at most two in-ring pieces.
    fn copy(&self, at: u32, n: usize, mut f: impl FnMut(usize, core::ops::Range<usize>)) {
        let idx = (at & (self.size - 1)) as usize;
        let first = n.min(self.size as usize - idx);
        if first > 0 {
            f(self.data + idx, 0..first);
        }
        if n > first {
            f(self.data, first..n);
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A shared page in host memory that records every access's bounds.
    pub struct Page {
        pub bytes: RefCell<Vec<u8>>,
    }
    impl Default for Page {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Page {
        pub fn new() -> Self {
            Page { bytes: RefCell::new(vec![0; 4096]) }
        }
    }
    impl RingMem for Page {
        fn load32(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.bytes.borrow()[off..off + 4].try_into().unwrap())
        }
        fn store32(&self, off: usize, v: u32) {
            self.bytes.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.bytes.borrow()[off..off + buf.len()]);
        }
        fn write(&self, off: usize, data: &[u8]) {
            self.bytes.borrow_mut()[off..off + data.len()].copy_from_slice(data);
        }
    }

    const R: Ring = Ring { data: 0, size: 16, cons: 100, prod: 104 };

    #[test]
    fn round_trip_with_wraparound() {
        let p = Page::new();
        p.store32(R.cons, u32::MAX - 5);
        p.store32(R.prod, u32::MAX - 5);
        let mut got = vec![];
        for chunk in [&b"hello world"[..], b"0123456789abcdef", b"xyz"] {
            let mut off = 0;
            while off < chunk.len() {
                off += R.produce(&p, &chunk[off..]).unwrap();
                let mut b = [0u8; 7];
                let n = R.consume(&p, &mut b).unwrap();
                got.extend_from_slice(&b[..n]);
            }
        }
        let mut b = [0u8; 64];
        let n = R.consume(&p, &mut b).unwrap();
        got.extend_from_slice(&b[..n]);
        assert_eq!(got, b"hello world0123456789abcdefxyz");
    }

    #[test]
    fn full_ring_takes_nothing_more() {
        let p = Page::new();
        assert_eq!(R.produce(&p, &[1; 40]).unwrap(), 16);
        assert_eq!(R.produce(&p, &[1; 40]).unwrap(), 0);
        assert_eq!(R.available(&p).unwrap(), 16);
    }

    #[test]
    fn hostile_indexes_are_refused_and_nothing_outside_is_touched() {
        for (cons, prod) in [(0, 17), (5, 4), (0, u32::MAX), (0x8000_0000, 0)] {
            let p = Page::new();
            p.bytes.borrow_mut()[16..100].fill(0xee);
            p.store32(R.cons, cons);
            p.store32(R.prod, prod);
            let mut b = [0u8; 64];
            assert_eq!(R.consume(&p, &mut b), Err(Corrupt { cons, prod, size: 16 }));
            assert_eq!(R.produce(&p, &[9; 64]), Err(Corrupt { cons, prod, size: 16 }));
            assert!(p.bytes.borrow()[16..100].iter().all(|&x| x == 0xee));
            assert_eq!((p.load32(R.cons), p.load32(R.prod)), (cons, prod), "indexes untouched");
        }
    }
}
