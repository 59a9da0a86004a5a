//! An HTTP request head as a small server reads it (`rt::http::parse_head`,
//! through httparse): the bytes a client sent, whole or cut anywhere.
//!
//! Invariants: never panics; a complete head's method and path are taken
//! from the input (no longer than it); `Partial` only while there is room
//! for more; once a head is complete, more bytes after it do not change it.
#![no_main]

use hvmlite::rt::http::{parse_head, Head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else { return };
    let cut = (cut as usize).min(body.len());
    for (bytes, full) in [(body, true), (body, false), (&body[..cut], false)] {
        match parse_head(bytes, full) {
            Head::Done(r) => {
                assert!(r.method.len() + r.path.len() < bytes.len());
                let s = String::from_utf8_lossy(bytes);
                assert!(s.contains(&r.method) && s.contains(&r.path));
                let mut more = bytes.to_vec();
                more.extend_from_slice(b"junk after the head");
                assert_eq!(parse_head(&more, full), Head::Done(r));
            }
            Head::Partial => assert!(!full),
            Head::Bad => {}
        }
    }
});
