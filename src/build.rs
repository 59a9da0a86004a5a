//! For an app's build script: link the app as a PVH image.
//!
//! ```ignore
//! // build.rs
//! fn main() {
//!     hvmlite::build::link();
//! }
//! ```
//!
//! with `hvmlite` in `[build-dependencies]` too. The library provides the
//! PVH entry and its ELF note; this provides the layout they need: the
//! image linked and loaded at 1 MiB physical, one segment per permission,
//! and no position-independent relocations (PVH starts the image with
//! paging off, at the addresses its program headers give).

extern crate std;

use std::path::PathBuf;
use std::println;

/// The linker script every hvmlite image is linked with.
pub const LINKER_SCRIPT: &str = include_str!("../linker.ld");

/// Write the linker script into `OUT_DIR` and tell Cargo to link the
/// package's binaries with it (only when building for
/// `x86_64-unknown-none`; host builds of the package link normally).
pub fn link() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let script = out.join("hvmlite.ld");
    std::fs::write(&script, LINKER_SCRIPT).expect("writing the linker script to OUT_DIR");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    // The target builds position-independent executables by default; the
    // image runs where it is linked.
    println!("cargo:rustc-link-arg-bins=--no-pie");
}
