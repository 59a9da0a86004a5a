//! The library's own build script: rebuild when the entry or the linker
//! script changes (apps link with `hvmlite::build::link()`).
fn main() {
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=src/boot/head.s");
    println!("cargo:rerun-if-changed=src/boot/entry.s");
    println!("cargo:rerun-if-changed=src/payload/handoff.s");
}
