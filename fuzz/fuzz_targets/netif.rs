//! The network rings (`xen::netif`) under a hostile backend: the fuzzer
//! plays the backend, writing any response bytes and any producer index
//! on the TX and the RX ring, while the frontend posts RX buffers, sends
//! TX packets and takes responses as netfront does.
//!
//! Invariants: every access lies inside the ring page, index accesses only
//! in the header, entries only at slot boundaries; a response is taken
//! only when the producer index is at most the number posted ahead of
//! ours (else a fatal `RingIndexes`, consuming nothing); a TX id is retired
//! only when it was out, and an RX packet is handed up only for a posted
//! id with `offset + len` inside the page, a positive length and no
//! un-negotiated flags; a model of both pools agrees after every step;
//! `fill_checksum` and `checksum_ok` never panic on any frame, handle the
//! same frames, and a filled checksum verifies; nothing panics.
#![no_main]

use hvmlite::xen::netif::{self, FrontRing, NetifError, Pool, RxResponse, TxResponse, RX_ENTRY, TX_ENTRY};
use hvmlite::xen::ring::RingMem;
use hvmlite_fuzz::{Bytes, CheckedRing};
use libfuzzer_sys::fuzz_target;

const N: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let tx_m = CheckedRing::new(1, TX_ENTRY);
    let rx_m = CheckedRing::new(1, RX_ENTRY);
    let mut tx = FrontRing::init(&tx_m, "tx", TX_ENTRY);
    let mut rx = FrontRing::init(&rx_m, "rx", RX_ENTRY);
    let (mut tx_pool, mut rx_pool) = (Pool::<N>::default(), Pool::<N>::default());
    let (mut tx_model, mut rx_model) = ([false; N], [false; N]);
    let mut dead = false;
    while !b.is_empty() {
        let op = b.u8();
        let (m, entry, size) = if op & 0x80 == 0 { (&tx_m, TX_ENTRY, tx.size()) } else { (&rx_m, RX_ENTRY, rx.size()) };
        match op & 7 {
            // The frontend sends a packet.
            0 => {
                if let Some(id) = tx_pool.take() {
                    if tx.push(&tx_m, &netif::encode_tx_request(8, 0, 0, id, 60)) {
                        tx_model[id as usize] = true;
                    } else {
                        tx_pool.put_back(id);
                    }
                    tx.publish(&tx_m);
                }
            }
            // The frontend posts every free RX buffer.
            1 => {
                while let Some(id) = rx_pool.take() {
                    assert!(rx.push(&rx_m, &netif::encode_rx_request(id, 8)), "the pool is smaller than the ring");
                    rx_model[id as usize] = true;
                }
                rx.publish(&rx_m);
            }
            // The backend writes a response slot: any bytes.
            2 | 3 => {
                let slot = (b.u8() as usize) % size as usize;
                let bytes = b.take(entry);
                let at = 64 + slot * entry;
                m.bytes.borrow_mut()[at..at + bytes.len()].copy_from_slice(bytes);
            }
            // The backend moves a producer index: anywhere, or one ahead.
            4 => {
                let v = if b.u8() & 1 == 0 { b.u32() } else { m.load32(8).wrapping_add(1) };
                m.bytes.borrow_mut()[8..12].copy_from_slice(&v.to_le_bytes());
            }
            // The frontend takes a TX response.
            5 => {
                let before = tx.in_flight();
                let mut e = [0u8; TX_ENTRY];
                match tx.next_response(&tx_m, &mut e, b.u8() & 1 == 0) {
                    Ok(false) => assert_eq!(tx.in_flight(), before),
                    Ok(true) => {
                        assert_eq!(tx.in_flight(), before - 1, "one response retires one ring entry");
                        let r = netif::decode_tx_response(&e);
                        check_tx(&mut tx_pool, &mut tx_model, &r);
                    }
                    Err(e) => {
                        assert!(e.is_fatal() && matches!(e, NetifError::RingIndexes { ring: "tx", .. }));
                        assert_eq!(tx.in_flight(), before, "a refused index consumes nothing");
                        dead = true;
                    }
                }
            }
            // The frontend takes an RX response.
            6 => {
                let before = rx.in_flight();
                let mut e = [0u8; RX_ENTRY];
                match rx.next_response(&rx_m, &mut e, b.u8() & 1 == 0) {
                    Ok(false) => assert_eq!(rx.in_flight(), before),
                    Ok(true) => {
                        assert_eq!(rx.in_flight(), before - 1);
                        let r = netif::decode_rx_response(&e);
                        check_rx(&mut rx_pool, &mut rx_model, &r);
                    }
                    Err(e) => {
                        assert!(e.is_fatal() && matches!(e, NetifError::RingIndexes { ring: "rx", .. }));
                        assert_eq!(rx.in_flight(), before);
                        dead = true;
                    }
                }
            }
            // Any frame through the checksum filler.
            _ => {
                let n = b.u16() as usize % 1600;
                let mut f = b.take(n).to_vec();
                let len = f.len();
                let before = netif::checksum_ok(&f);
                let filled = netif::fill_checksum(&mut f);
                assert_eq!(f.len(), len);
                assert_eq!(filled, before.is_some(), "fill_checksum and checksum_ok agree on what they handle");
                if filled {
                    assert_eq!(netif::checksum_ok(&f), Some(true), "a filled checksum verifies");
                }
            }
        }
        assert!(tx.in_flight() <= tx.size() && rx.in_flight() <= rx.size());
        assert_eq!(tx_pool.out_count(), tx_model.iter().filter(|&&o| o).count(), "tx pool agrees with the model");
        assert_eq!(rx_pool.out_count(), rx_model.iter().filter(|&&o| o).count(), "rx pool agrees with the model");
    }
    let _ = dead;
});

fn check_tx(pool: &mut Pool<N>, model: &mut [bool; N], r: &TxResponse) {
    let was_out = (r.id as usize) < N && model[r.id as usize];
    match netif::complete_tx(pool, r) {
        Ok(id) => {
            assert!(was_out && id == r.id && r.status == netif::RSP_OKAY);
            model[id as usize] = false;
        }
        Err(NetifError::Status { id, status, .. }) => {
            assert!(was_out && id == r.id && status != netif::RSP_OKAY);
            model[id as usize] = false;
        }
        Err(NetifError::UnknownId { id, .. }) => assert!(!was_out && id == r.id, "an out id refused as unknown"),
        Err(e) => panic!("complete_tx gave {e:?}"),
    }
}

fn check_rx(pool: &mut Pool<N>, model: &mut [bool; N], r: &RxResponse) {
    let was_out = (r.id as usize) < N && model[r.id as usize];
    match netif::complete_rx(pool, r) {
        Ok(p) => {
            assert!(was_out && p.id == r.id);
            assert!(p.len > 0 && p.offset + p.len <= 4096, "a packet inside its page");
            assert_eq!(r.flags & (netif::NETRXF_MORE_DATA | netif::NETRXF_EXTRA_INFO), 0);
            model[p.id as usize] = false;
        }
        Err((Some(id), e)) => {
            assert!(was_out && id == r.id && !e.is_fatal(), "{e}");
            model[id as usize] = false;
        }
        Err((None, e)) => {
            assert!(!was_out, "a posted id refused as unknown: {e}");
            assert_eq!(e, NetifError::UnknownId { ring: "rx", id: r.id });
        }
    }
}
