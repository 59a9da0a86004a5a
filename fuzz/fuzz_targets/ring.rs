//! `ring.rs` under a hostile peer: arbitrary index values, data scribbles
//! and index changes racing our loads, interleaved with produce, consume
//! and available.
//!
//! The page logs every access. Invariants: data is read and written only
//! inside the ring's data area, indexes only at the ring's two index words,
//! and each operation stores only its own index (produce: prod, consume:
//! cons). Without races, each result matches a model computed from the
//! indexes beforehand: `Corrupt` exactly when `prod - cons > size` (and
//! then the page is unchanged), else the bytes moved are exactly
//! `min(room, asked)` at the masked offsets, and nothing else changes.
#![no_main]

use std::cell::{Cell, RefCell};

use hvmlite::xen::abi::*;
use hvmlite::xen::ring::{Corrupt, Ring, RingMem};
use hvmlite_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Load(usize),
    Store(usize),
    Read(usize, usize),
    Write(usize, usize),
}

struct Page {
    bytes: RefCell<Vec<u8>>,
    log: RefCell<Vec<Access>>,
    /// The peer's move racing our loads: after this many more loads, store
    /// `value` at `off`.
    race: Cell<Option<(u32, usize, u32)>>,
}

impl Page {
    fn get32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.bytes.borrow()[off..off + 4].try_into().unwrap())
    }
    fn set32(&self, off: usize, v: u32) {
        self.bytes.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
}

impl RingMem for Page {
    fn load32(&self, off: usize) -> u32 {
        self.log.borrow_mut().push(Access::Load(off));
        let v = self.get32(off);
        if let Some((after, at, value)) = self.race.get() {
            if after == 0 {
                self.set32(at, value);
                self.race.set(None);
            } else {
                self.race.set(Some((after - 1, at, value)));
            }
        }
        v
    }
    fn store32(&self, off: usize, v: u32) {
        self.log.borrow_mut().push(Access::Store(off));
        self.set32(off, v)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        self.log.borrow_mut().push(Access::Read(off, buf.len()));
        buf.copy_from_slice(&self.bytes.borrow()[off..off + buf.len()]);
    }
    fn write(&self, off: usize, data: &[u8]) {
        self.log.borrow_mut().push(Access::Write(off, data.len()));
        self.bytes.borrow_mut()[off..off + data.len()].copy_from_slice(data);
    }
}

fn ring_for(b: &mut Bytes) -> Ring {
    match b.u8() % 5 {
        0 => Ring { data: XS_REQ, size: XS_RING_SIZE, cons: XS_REQ_CONS, prod: XS_REQ_PROD },
        1 => Ring { data: XS_RSP, size: XS_RING_SIZE, cons: XS_RSP_CONS, prod: XS_RSP_PROD },
        2 => Ring { data: CONS_IN, size: CONS_IN_SIZE, cons: CONS_IN_CONS, prod: CONS_IN_PROD },
        3 => Ring { data: CONS_OUT, size: CONS_OUT_SIZE, cons: CONS_OUT_CONS, prod: CONS_OUT_PROD },
        _ => {
            // A small ring anywhere in the page, its indexes after it.
            let size = 1u32 << (b.u8() % 9);
            let data = b.u16() as usize % (4096 - size as usize - 8);
            let end = data + size as usize;
            Ring { data, size, cons: end, prod: end + 4 }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let r = ring_for(&mut b);
    let page = Page { bytes: RefCell::new(vec![0; 4096]), log: RefCell::new(vec![]), race: Cell::new(None) };
    let mut serial = 0u8;
    let mut ops = 0;
    while !b.is_empty() && ops < 256 {
        ops += 1;
        let op = b.u8();
        let racing = page.race.get().is_some();
        let before = page.bytes.borrow().clone();
        let (cons0, prod0) = (page.get32(r.cons), page.get32(r.prod));
        let used = prod0.wrapping_sub(cons0);
        let corrupt = Corrupt { cons: cons0, prod: prod0, size: r.size };
        page.log.borrow_mut().clear();
        let mut own_index = None;
        match op % 8 {
            0 => page.set32(r.cons, b.u32()),
            1 => page.set32(r.prod, b.u32()),
            2 => {
                let at = r.data + b.u16() as usize % r.size as usize;
                let junk = b.take(16);
                let end = (at + junk.len()).min(r.data + r.size as usize);
                page.bytes.borrow_mut()[at..end].copy_from_slice(&junk[..end - at]);
            }
            3 => {
                // Race: after 0 or 1 more loads the peer moves an index.
                let which = if b.u8() & 1 == 0 { r.cons } else { r.prod };
                page.race.set(Some(((op >> 3) as u32 & 1, which, b.u32())));
            }
            4 | 5 => {
                own_index = Some(r.prod);
                let len = b.u16() as usize % 3000;
                let msg: Vec<u8> = (0..len)
                    .map(|_| {
                        serial = serial.wrapping_add(1);
                        serial
                    })
                    .collect();
                let got = r.produce(&page, &msg);
                if !racing {
                    if used > r.size {
                        assert_eq!(got, Err(corrupt));
                        assert!(*page.bytes.borrow() == before, "a refused produce changed the page");
                    } else {
                        let n = ((r.size - used) as usize).min(len);
                        assert_eq!(got, Ok(n));
                        let mut want = before.clone();
                        for (k, &c) in msg[..n].iter().enumerate() {
                            want[r.data + (prod0.wrapping_add(k as u32) & (r.size - 1)) as usize] = c;
                        }
                        want[r.prod..r.prod + 4].copy_from_slice(&prod0.wrapping_add(n as u32).to_le_bytes());
                        assert!(*page.bytes.borrow() == want, "produce wrote other than the model");
                    }
                }
            }
            6 => {
                own_index = Some(r.cons);
                let mut buf = vec![0u8; b.u16() as usize % 3000];
                let got = r.consume(&page, &mut buf);
                if !racing {
                    if used > r.size {
                        assert_eq!(got, Err(corrupt));
                        assert!(*page.bytes.borrow() == before, "a refused consume changed the page");
                    } else {
                        let n = (used as usize).min(buf.len());
                        assert_eq!(got, Ok(n));
                        for (k, &c) in buf[..n].iter().enumerate() {
                            assert_eq!(c, before[r.data + (cons0.wrapping_add(k as u32) & (r.size - 1)) as usize]);
                        }
                        let mut want = before.clone();
                        want[r.cons..r.cons + 4].copy_from_slice(&cons0.wrapping_add(n as u32).to_le_bytes());
                        assert!(*page.bytes.borrow() == want, "consume changed other than its index");
                    }
                }
            }
            _ => {
                let got = r.available(&page);
                if !racing {
                    assert_eq!(got, if used > r.size { Err(corrupt) } else { Ok(used) });
                    assert!(*page.bytes.borrow() == before);
                }
            }
        }
        // Whatever the peer did: every access stays in bounds.
        for a in page.log.borrow().iter() {
            match *a {
                Access::Load(o) => assert!(o == r.cons || o == r.prod, "{a:?} is not an index of {r:?}"),
                Access::Store(o) => assert_eq!(Some(o), own_index, "{a:?}: stored the peer's index of {r:?}"),
                Access::Read(o, n) | Access::Write(o, n) => {
                    assert!(o >= r.data && o + n <= r.data + r.size as usize, "{a:?} outside the data of {r:?}")
                }
            }
        }
    }
});
