//! Which executor the running task belongs to: set by [`crate::rt::run`]
//! for the PVH image's one executor, per thread in host tests.

use alloc::rc::Rc;

use crate::rt::executor::Shared;

#[cfg(not(test))]
mod slot {
    use super::*;
    use core::cell::RefCell;

    /// One vCPU, interrupts off while tasks run: nothing else touches it.
    struct Local(RefCell<Option<Rc<Shared>>>);
    // SAFETY: single-threaded (see above).
    unsafe impl Sync for Local {}
    static CURRENT: Local = Local(RefCell::new(None));

    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub fn set(s: Option<Rc<Shared>>) {
        *CURRENT.0.borrow_mut() = s;
    }
    pub fn get() -> Option<Rc<Shared>> {
        CURRENT.0.borrow().clone()
    }
}

#[cfg(test)]
#[allow(clippy::items_after_test_module)]
mod slot {
    use super::*;
    use core::cell::RefCell;
    std::thread_local! {
        static CURRENT: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
    }
    pub fn set(s: Option<Rc<Shared>>) {
        CURRENT.with(|c| *c.borrow_mut() = s);
    }
    pub fn get() -> Option<Rc<Shared>> {
        CURRENT.with(|c| c.borrow().clone())
    }
}

#[cfg_attr(not(any(test, target_os = "none")), allow(unused_imports))]
pub use slot::set;

/// The running executor's shared state. Outside [`crate::rt::run`] there
/// is none: using the runtime's futures there is a bug in the app.
pub fn shared() -> Rc<Shared> {
    slot::get().expect("hvmlite::rt used outside rt::run")
}
