//! The few privileged CPU operations hvmlite uses, each wrapped once.

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    // SAFETY: CPUID is always available in long mode and has no side effects.
    #[allow(unused_unsafe)]
    let r = unsafe { core::arch::x86_64::__cpuid(leaf) };
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// # Safety
/// Writing an MSR changes CPU or hypervisor state; the caller names one
/// whose effect it wants.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { Msr::new(msr).write(value) }
}

/// # Safety
/// The caller must know what the device at `port` does with the write.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// # Safety
/// The caller must know what the device at `port` does with the write.
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// # Safety
/// The caller must know the read has no harmful side effect.
pub unsafe fn inw(port: u16) -> u16 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u16>::new(port).read() }
}

/// # Safety
/// The caller must know the read has no harmful side effect.
pub unsafe fn inl(port: u16) -> u32 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u32>::new(port).read() }
}

/// Write `bytes` to `port` with one `rep outsb`: under a hypervisor that
/// is one exit for the whole string (Xen emulates the repeats together),
/// where `outb` costs one exit a byte.
///
/// # Safety
/// The caller must know what the device at `port` does with the writes.
pub unsafe fn outsb(port: u16, bytes: &[u8]) {
    // SAFETY: reads `bytes.len()` bytes from `bytes` (DF is clear, as the
    // ABI keeps it); the port's effect is the caller's to know.
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, preserves_flags, readonly)
        )
    }
}

/// # Safety
/// The caller must know the read has no harmful side effect.
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(port).read() }
}

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Is EFER.NXE on (set by the entry when the CPU has NX)?
pub fn nx_enabled() -> bool {
    use x86_64::registers::model_specific::{Efer, EferFlags};
    Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE)
}
