//! CPU exceptions: every fault ends in one clear line and a crash shutdown,
//! never a triple fault (which QEMU with `-no-reboot` would report as a
//! clean exit, and Xen as an unexplained crash).
//!
//! A GDT with a TSS gives the handlers their own stack (IST 1), so a stack
//! overflow that runs into the guard page below the boot stack is still
//! reported. Selectors stay those of the boot GDT and the Linux boot
//! protocol: code 0x10, data 0x18.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::control::Cr2;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

use crate::arch::cpu;
use crate::platform;
use crate::platform::console;

/// Size of the exception stack (in entry.s, above its own guard page).
pub const FAULT_STACK_SIZE: usize = 16 * 1024;

/// The vector registered as Xen's event callback (`HVM_PARAM_CALLBACK_IRQ`).
/// Interrupts are off except while the task runtime idles in [`idle`]:
/// Xen raises this vector when a port becomes pending, which ends the
/// `hlt`. The stub only acknowledges the upcall (clears
/// `evtchn_upcall_pending`, else Xen raises the vector again at once);
/// the runtime then takes the pending ports itself.
///
/// Should the vector arrive between `sti` and `hlt` (the interrupt shadow
/// of `sti` forbids it, but the test host's nested SVM under QEMU's TCG
/// does deliver it there now and then), returning to the `hlt` would
/// sleep with the upcall acknowledged and the pending ports untaken:
/// Xen raises nothing more for them (their selector bit is still set),
/// and the domain sleeps forever with an event pending. So the stub
/// returns past the `hlt` when it interrupted that very instruction.
pub const XEN_CALLBACK_VECTOR: u8 = 0xf3;

static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<GlobalDescriptorTable> = spin::Once::new();
static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();

// One 16-byte stub per exception vector: push a zero where the CPU pushes
// no error code, push the vector, go to the common path, which calls
// `trap_handler(&frame)` on the IST stack.
core::arch::global_asm!(
    ".section .text.traps, \"ax\"",
    ".balign 16",
    ".globl trap_stubs",
    "trap_stubs:",
    ".set vec, 0",
    ".rept 32",
    ".balign 16",
    ".if (vec != 8) && (vec != 10) && (vec != 11) && (vec != 12) && (vec != 13) && (vec != 14) && (vec != 17) && (vec != 21) && (vec != 29) && (vec != 30)",
    "push 0",
    ".endif",
    "push vec",
    "jmp trap_common",
    ".set vec, vec + 1",
    ".endr",
    ".balign 16",
    ".globl xen_callback_stub",
    "xen_callback_stub:",
    "push rax",
    "mov rax, qword ptr [rip + {shared_info}]",
    "test rax, rax",
    "jz 2f",
    "mov byte ptr [rax], 0",
    "2:",
    // Interrupted at the idle `hlt` itself: return past it (one byte).
    "lea rax, [rip + hvmlite_idle_hlt]",
    "cmp qword ptr [rsp + 8], rax",
    "jne 3f",
    "inc qword ptr [rsp + 8]",
    "3:",
    "pop rax",
    "iretq",
    // `idle`: the only place interrupts are on.
    ".globl hvmlite_idle",
    "hvmlite_idle:",
    "sti",
    "hvmlite_idle_hlt:",
    "hlt",
    "cli",
    "ret",
    "trap_common:",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {handler}",
    "ud2",
    handler = sym trap_handler,
    shared_info = sym crate::xen::evtchn::SHARED_INFO,
);

/// `sti; hlt; cli`: sleep until an interrupt (on Xen, the event callback)
/// and return with interrupts off again. The `hlt` is never reached with
/// the callback already taken: see [`XEN_CALLBACK_VECTOR`].
pub fn idle() {
    // SAFETY: `hvmlite_idle` only toggles the interrupt flag around `hlt`
    // and returns; the callback stub preserves every register.
    unsafe { hvmlite_idle() }
}

extern "C" {
    fn hvmlite_idle();
    static trap_stubs: u8;
    static xen_callback_stub: u8;
    static fault_stack_top: u8;
}

/// What the stub and the CPU pushed, lowest address first.
#[repr(C)]
pub struct TrapFrame {
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Install the GDT, TSS and IDT (idempotent; every boot stage may call it).
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let top = core::ptr::addr_of!(fault_stack_top) as u64;
        tss.interrupt_stack_table[0] = VirtAddr::new(top);
        tss
    });
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        gdt.append(Descriptor::kernel_data_segment()); // 0x08, unused
        gdt.append(Descriptor::kernel_code_segment()); // 0x10
        gdt.append(Descriptor::kernel_data_segment()); // 0x18
        gdt.append(Descriptor::tss_segment(tss)); // 0x20
        gdt
    });
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        let base = core::ptr::addr_of!(trap_stubs) as u64;
        for v in 0..32u8 {
            if (9..=9).contains(&v) || v == 15 || (22..=27).contains(&v) || v == 31 {
                continue; // reserved vectors
            }
            // SAFETY: stub `v` is 16 bytes into the table per vector and
            // never returns; IST 1 (index 0) is the fault stack above.
            unsafe {
                let e = idt_entry(&mut idt, v);
                e.set_handler_addr(VirtAddr::new(base + 16 * v as u64)).set_stack_index(0);
            }
        }
        // SAFETY: the stub only returns; it uses no stack beyond the frame.
        unsafe {
            idt[XEN_CALLBACK_VECTOR].set_handler_addr(VirtAddr::new(core::ptr::addr_of!(xen_callback_stub) as u64));
        }
        idt
    });
    static LOADED: AtomicBool = AtomicBool::new(false);
    if LOADED.swap(true, Ordering::AcqRel) {
        return;
    }
    gdt.load();
    // SAFETY: selectors of the GDT just loaded: 0x10 is 64-bit code, 0x18
    // data, 0x20 the TSS.
    unsafe {
        use x86_64::structures::gdt::SegmentSelector;
        use x86_64::PrivilegeLevel::Ring0;
        CS::set_reg(SegmentSelector::new(2, Ring0));
        for set in [DS::set_reg, ES::set_reg, SS::set_reg] {
            set(SegmentSelector::new(3, Ring0));
        }
        load_tss(SegmentSelector::new(4, Ring0));
    }
    idt.load();
}

/// The IDT entry for vector `v`, whatever its handler type.
///
/// # Safety
/// The caller only sets a raw handler address on it.
unsafe fn idt_entry(idt: &mut InterruptDescriptorTable, v: u8) -> &mut x86_64::structures::idt::Entry<()> {
    // SAFETY: all exception entries have the same layout; only the phantom
    // handler type differs, and only `set_handler_addr` is used.
    unsafe { &mut *(idt as *mut InterruptDescriptorTable as *mut x86_64::structures::idt::Entry<()>).add(v as usize) }
}

fn name(v: u64) -> &'static str {
    match v {
        0 => "divide error",
        1 => "debug",
        2 => "NMI",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack-segment fault",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point error",
        17 => "alignment check",
        18 => "machine check",
        19 => "SIMD floating-point error",
        20 => "virtualization exception",
        21 => "control protection",
        _ => "exception",
    }
}

extern "C" fn trap_handler(f: &TrapFrame) -> ! {
    static IN_TRAP: AtomicBool = AtomicBool::new(false);
    if IN_TRAP.swap(true, Ordering::AcqRel) {
        // A fault while reporting a fault: say the least and stop.
        console::line(format_args!("FATAL: fault in the fault handler"));
        cpu::halt_forever();
    }
    let (v, err, rip) = (f.vector, f.error, f.rip);
    if v == 14 {
        let addr = Cr2::read_raw();
        let access = if err & 0x10 != 0 {
            "execute"
        } else if err & 2 != 0 {
            "write"
        } else {
            "read"
        };
        extern "C" {
            static boot_stack_guard: u8;
            static fault_stack_guard: u8;
        }
        for (guard, which) in
            [(core::ptr::addr_of!(boot_stack_guard), "stack"), (core::ptr::addr_of!(fault_stack_guard), "exception stack")]
        {
            let guard = guard as u64;
            if (guard..guard + 4096).contains(&addr) {
                platform::fatal(format_args!("{which} overflow: {access} at {addr:#x} in the {which} guard page, rip {rip:#x}"));
            }
        }
        if addr < 4096 {
            platform::fatal(format_args!("NULL pointer dereference: {access} at {addr:#x}, rip {rip:#x}"));
        }
        platform::fatal(format_args!("page fault: {access} at {addr:#x}, error {err:#x}, rip {rip:#x}"));
    }
    platform::fatal(format_args!("CPU exception {v} ({}), error {err:#x}, rip {rip:#x}, rsp {:#x}", name(v), f.rsp))
}
