//! The block ring (`xen::blkif`) under a hostile backend: the fuzzer plays
//! the backend, writing any response bytes and any producer index, while
//! the frontend sends requests and takes responses as blkfront does.
//!
//! Invariants: every access lies inside the ring's pages; requests are
//! written only into entry slots; a response is taken only when the
//! producer index is at most the number in flight ahead of ours (else
//! `RingIndexes`); `Outstanding::complete` retires exactly the id a valid
//! response names, only when it was outstanding with that operation, and
//! a model of the outstanding set agrees after every step; nothing panics.
#![no_main]

use hvmlite::xen::blkif::{self, BlkifError, FrontRing, Outstanding, Response, ENTRY_SIZE, OP_READ, OP_WRITE};
use hvmlite_fuzz::{Bytes, CheckedRing};
use libfuzzer_sys::fuzz_target;

const PAGES: usize = 2;
const SLOTS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let m = CheckedRing::new(PAGES, ENTRY_SIZE);
    let size = blkif::ring_entries(PAGES);
    let mut ring = FrontRing::init(&m, size);
    let mut out = Outstanding::<SLOTS>::default();
    let mut model: [Option<u8>; SLOTS] = [None; SLOTS];
    let mut taken = 0u32;
    while !b.is_empty() {
        match b.u8() % 4 {
            // The frontend sends a request with a free id.
            0 => {
                if let Some(id) = out.free() {
                    let op = if b.u8() & 1 == 0 { OP_READ } else { OP_WRITE };
                    if ring.push(&m, &blkif::encode_request(op, 0, id as u64, 0, &[])) {
                        out.start(id, op);
                        model[id] = Some(op);
                    }
                    ring.publish(&m);
                }
            }
            // The backend writes a response slot: any bytes.
            1 => {
                let slot = (b.u8() as usize) % size as usize;
                let bytes = b.take(16);
                let at = 64 + slot * ENTRY_SIZE;
                m.bytes.borrow_mut()[at..at + bytes.len()].copy_from_slice(bytes);
            }
            // The backend moves its producer index: anywhere.
            2 => {
                let v = u32::from_le_bytes(b.take(4).try_into().unwrap_or([0; 4]));
                m.bytes.borrow_mut()[8..12].copy_from_slice(&v.to_le_bytes());
            }
            // The frontend takes a response.
            _ => {
                let before = ring.in_flight();
                match ring.next_response(&m) {
                    Ok(None) => {}
                    Ok(Some(r)) => {
                        taken += 1;
                        assert_eq!(ring.in_flight(), before - 1, "one response retires one ring entry");
                        check_complete(&mut out, &mut model, &r);
                    }
                    Err(BlkifError::RingIndexes { .. }) => {
                        assert_eq!(ring.in_flight(), before, "a refused index consumes nothing");
                    }
                    Err(e) => panic!("next_response gave {e:?}"),
                }
            }
        }
        assert!(ring.in_flight() <= size);
        let busy = model.iter().filter(|o| o.is_some()).count();
        assert_eq!(out.busy(), busy, "outstanding set agrees with the model");
    }
    let _ = taken;
});

fn check_complete(out: &mut Outstanding<SLOTS>, model: &mut [Option<u8>; SLOTS], r: &Response) {
    let sent = usize::try_from(r.id).ok().filter(|&i| i < SLOTS).and_then(|i| model[i]);
    match out.complete(r) {
        Ok(id) => {
            assert_eq!(id as u64, r.id);
            assert_eq!(sent, Some(r.op), "completed only an outstanding id with its operation");
            assert_eq!(r.status, 0);
            model[id] = None;
        }
        Err(BlkifError::UnknownId(id)) => {
            assert_eq!(id, r.id);
            assert!(sent.is_none(), "a known id refused as unknown");
        }
        Err(BlkifError::WrongOperation { id, sent: s, got }) => {
            assert_eq!((Some(s), got), (sent, r.op));
            assert_ne!(s, got);
            let _ = id;
        }
        Err(BlkifError::Status { id, .. }) => {
            assert_eq!(sent, Some(r.op));
            assert_ne!(r.status, 0);
            model[id as usize] = None;
        }
        Err(e) => panic!("complete gave {e:?}"),
    }
}
