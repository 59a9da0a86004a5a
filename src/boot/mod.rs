//! The boot flow, one file a stage:
//! 0. `head.s` — where Xen enters: a squashed image (`hvmlite squash`)
//!    unpacks itself;
//! 1. `entry.s` — the 32-bit start: stack, early page tables, long mode;
//! 2. [`pvh`] — `struct hvm_start_info` ([`start_info`]) → the zero page
//!    ([`zero_page`]), with the hypervisor record ([`hvinfo`]);
//! 3. [`startup`] — `startup_64(boot_params)`: the common 64-bit entry that
//!    knows only the zero page: exceptions ([`traps`]), heap, page tables,
//!    console;
//! 4. [`app`] — the app's `main`, with a [`Boot`].
//!
//! [`image`] says where the image itself lies.

pub mod hvinfo;
pub mod image;
pub mod start_info;
pub mod zero_page;

#[cfg(target_os = "none")]
pub mod app;
#[cfg(target_os = "none")]
pub mod pvh;
#[cfg(target_os = "none")]
pub mod startup;
#[cfg(target_os = "none")]
pub mod traps;

#[cfg(target_os = "none")]
pub use app::Boot;

/// Size of the boot stack (below it: an unmapped guard page).
#[cfg(target_os = "none")]
const STACK_SIZE: usize = 64 * 1024;

// Where Xen enters, and what unpacks a squashed image.
#[cfg(target_os = "none")]
core::arch::global_asm!(
    include_str!("head.s"),
    QEMU_EXIT_PORT = const crate::platform::QEMU_EXIT_PORT,
    QEMU_EXIT_CRASH = const crate::platform::QEMU_EXIT_CRASH,
    options(att_syntax)
);

// The 32-bit start, the ELF note that names the entry, and the boot and
// exception stacks.
#[cfg(target_os = "none")]
core::arch::global_asm!(
    include_str!("entry.s"),
    PHYS32_ENTRY = const xen_sys::XEN_ELFNOTE_PHYS32_ENTRY,
    BOOT_CS = const 0x10,
    BOOT_DS = const 0x18,
    STACK_SIZE = const STACK_SIZE,
    FAULT_STACK_SIZE = const traps::FAULT_STACK_SIZE,
    pvh_start64 = sym pvh::pvh_start64,
    options(att_syntax)
);
