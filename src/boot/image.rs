//! The image itself: where the ELF loader put hvmlite's sections, and the
//! record through which a self-contained image (`hvmlite pack --elf`) says
//! where its embedded payload lies. Everything here must survive the boot,
//! so `startup_64` reserves it before it hands out any memory.

#[cfg(target_os = "none")]
use crate::arch::memory::{Range, PAGE_SIZE};
#[cfg(target_os = "none")]
use crate::arch::paging::{Perm, Region};

/// Marks the record in hvmlite's image that says where an embedded bundle
/// lies ([`Embedded`]: this magic, then `u64 paddr`, `u64 size` of
/// the bundle, `u64 kernel_paddr`, `u64 kernel_size` of a preloaded kernel).
pub const EMBED_MAGIC: [u8; 16] = *b"hvmlite-payload\0";
/// Size of that record.
pub const EMBED_RECORD_SIZE: usize = 48;

/// Marks stage 0's record (`squash_record` in head.s) that `hvmlite
/// squash` fills in: this magic, then `u32 src`, `u32 len` (the LZ4 block,
/// 0 when the image is not squashed), `u32 out`, `u32 out_len` (where it
/// unpacks to, and how many bytes).
pub const SQUASH_MAGIC: [u8; 16] = *b"hvmlite-squash\0\0";
/// Size of that record.
pub const SQUASH_RECORD_SIZE: usize = 32;

#[cfg(target_os = "none")]
/// Where hvmlite itself lies (code, data, bss with stack and tables).
pub fn image_range() -> Range {
    extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    // Linker-script symbols: only their addresses are taken.
    Range::new(core::ptr::addr_of!(__image_start) as u64, core::ptr::addr_of!(__image_end) as u64)
}

/// Where a payload embedded in the image lies. `hvmlite pack --elf` finds
/// this record by its magic in the ELF file and fills it in; it stays 0 in
/// a plain `hvmlite.elf`. `paddr`/`size`: the bundle. `kernel_paddr`/
/// `kernel_size`: a kernel whose segments the ELF loader already put in
/// place (bundle kernel format 3), else 0.
#[repr(C)]
pub struct Embedded {
    pub magic: [u8; 16],
    pub paddr: u64,
    pub size: u64,
    pub kernel_paddr: u64,
    pub kernel_size: u64,
}

#[cfg(target_os = "none")]
#[used]
#[link_section = ".data.hvmlite_payload"]
static EMBEDDED: Embedded = Embedded { magic: EMBED_MAGIC, paddr: 0, size: 0, kernel_paddr: 0, kernel_size: 0 };
const _: () = assert!(core::mem::size_of::<Embedded>() == EMBED_RECORD_SIZE);

#[cfg(target_os = "none")]
fn embedded_field(f: *const u64) -> u64 {
    // SAFETY: `f` points into our own static; volatile because the pack
    // tool changes it in the file after the compiler has seen it.
    unsafe { core::ptr::read_volatile(f) }
}

#[cfg(target_os = "none")]
/// The embedded bundle's range, if the image carries one.
pub fn embedded_range() -> Option<Range> {
    let (paddr, size) = (embedded_field(core::ptr::addr_of!(EMBEDDED.paddr)), embedded_field(core::ptr::addr_of!(EMBEDDED.size)));
    (size != 0).then(|| Range::sized(paddr, size)).flatten()
}

#[cfg(target_os = "none")]
/// Where the ELF loader put an embedded, preloaded kernel, if it did.
pub fn preloaded_kernel_range() -> Option<Range> {
    let (paddr, size) =
        (embedded_field(core::ptr::addr_of!(EMBEDDED.kernel_paddr)), embedded_field(core::ptr::addr_of!(EMBEDDED.kernel_size)));
    (size != 0).then(|| Range::sized(paddr, size)).flatten()
}

#[cfg(target_os = "none")]
/// hvmlite's own sections, as the runtime page tables map them.
pub fn image_layout() -> [Region; 5] {
    extern "C" {
        static __image_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static boot_stack_guard: u8;
        static fault_stack_guard: u8;
    }
    // Linker-script and entry.s symbols: only their addresses are taken.
    let (start, text_end, rodata_end, guard, fault_guard) = (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__text_end) as u64,
        core::ptr::addr_of!(__rodata_end) as u64,
        core::ptr::addr_of!(boot_stack_guard) as u64,
        core::ptr::addr_of!(fault_stack_guard) as u64,
    );
    [
        Region { range: Range::new(0, PAGE_SIZE), perm: Perm::None },
        Region { range: Range::new(start, text_end), perm: Perm::ReadExec },
        Region { range: Range::new(text_end, rodata_end), perm: Perm::Read },
        Region { range: Range::new(guard, guard + PAGE_SIZE), perm: Perm::None },
        Region { range: Range::new(fault_guard, fault_guard + PAGE_SIZE), perm: Perm::None },
    ]
}
