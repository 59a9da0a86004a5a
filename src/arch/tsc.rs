//! The TSC, and its frequency measured against the PIT (for a clock where
//! no hypervisor says how fast the TSC runs, e.g. QEMU/TCG).

use crate::arch::cpu;

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The PIT's input clock, in Hz.
const PIT_HZ: u64 = 1_193_182;
/// The gate: 50 ms of PIT ticks (fits the 16-bit counter).
const GATE_TICKS: u64 = PIT_HZ / 20;

/// TSC ticks a second, counted over 50 ms of PIT channel 2 (the speaker
/// timer, gated through port 0x61, one-shot mode 0; the classic
/// calibration). `None` if the PIT does not answer: the wait is bounded.
pub fn calibrate_hz() -> Option<u64> {
    // SAFETY: ports 0x61 (speaker gate), 0x43 (PIT mode) and 0x42 (channel
    // 2) of a PC: channel 2 only drives the speaker, which stays off.
    unsafe {
        let gate = cpu::inb(0x61);
        cpu::outb(0x61, (gate & !0x02) | 0x01);
        cpu::outb(0x43, 0xb0); // channel 2, lo/hi byte, mode 0, binary
        cpu::outb(0x42, (GATE_TICKS & 0xff) as u8);
        cpu::outb(0x42, (GATE_TICKS >> 8) as u8);
        let t0 = rdtsc();
        let mut polls = 0u64;
        // OUT2 (bit 5) rises when the count reaches 0.
        while cpu::inb(0x61) & 0x20 == 0 {
            polls += 1;
            if polls > 50_000_000 {
                cpu::outb(0x61, gate);
                return None;
            }
        }
        let t1 = rdtsc();
        cpu::outb(0x61, gate);
        let ticks = t1.wrapping_sub(t0);
        (ticks > 0).then(|| (ticks as u128 * PIT_HZ as u128 / GATE_TICKS as u128) as u64)
    }
}
