//! The PVH image `hvmlite.elf` (on `x86_64-unknown-none`): the 32-bit entry
//! and the panic handler; the boot flow itself is in the library.
//!
//! On the host this binary is the payload tool (`src/tool.rs`):
//! `hvmlite pack` and `hvmlite inspect`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod image {
    /// Size of the boot stack (below it: an unmapped guard page).
    const STACK_SIZE: usize = 64 * 1024;

    core::arch::global_asm!(
        include_str!("entry.s"),
        PHYS32_ENTRY = const xen_sys::XEN_ELFNOTE_PHYS32_ENTRY,
        BOOT_CS = const 0x10,
        BOOT_DS = const 0x18,
        STACK_SIZE = const STACK_SIZE,
        FAULT_STACK_SIZE = const hvmlite::traps::FAULT_STACK_SIZE,
        pvh_start64 = sym hvmlite::pvh::pvh_start64,
        options(att_syntax)
    );

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        // One line: the message, then where.
        match info.location() {
            Some(l) => hvmlite::platform::fatal(format_args!("panic: {} at {}:{}", info.message(), l.file(), l.line())),
            None => hvmlite::platform::fatal(format_args!("panic: {}", info.message())),
        }
    }
}

#[cfg(not(target_os = "none"))]
mod tool;

#[cfg(not(target_os = "none"))]
fn main() -> anyhow::Result<()> {
    tool::main()
}
