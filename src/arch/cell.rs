//! Statics for a single CPU that boots with interrupts off.

use core::cell::UnsafeCell;

/// A static only the single boot CPU touches, once, in order.
pub struct BootCell<T>(UnsafeCell<T>);
// SAFETY: hvmlite boots on one CPU with interrupts off; each cell is taken
// by exactly one stage.
unsafe impl<T> Sync for BootCell<T> {}
impl<T> BootCell<T> {
    pub const fn new(v: T) -> Self {
        BootCell(UnsafeCell::new(v))
    }
    /// # Safety
    /// No other reference to the contents may be live.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: forwarded to the caller.
        unsafe { &mut *self.0.get() }
    }
}

#[repr(C, align(4096))]
pub struct Page<T>(pub T);
