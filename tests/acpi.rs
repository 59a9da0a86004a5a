//! Leaving through ACPI. A plain `qemu-system-x86_64 -kernel app.elf` (and
//! any KVM host) has no isa-debug-exit: poweroff must then end QEMU by
//! itself through the FADT's PM1 control and the DSDT's `\_S5_`, on q35
//! (ICH9) and on pc (PIIX4), with QEMU's own exit status 0 and no
//! `halting`. The loader image leaves ACPI out (its size may not grow;
//! it hands off to a kernel, which has its own): off Xen without
//! isa-debug-exit it says so and halts. Builds nothing: it boots what `make` built (`HVMLITE_ELF`,
//! `HVMLITE_EXAMPLES`).

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

/// Far more than a boot and one second of hello-stubdom's clock take; a
/// run still going then did not power off (QEMU is killed).
const T: Duration = Duration::from_secs(60);

/// The QEMU PVH arguments every test uses, on `machine`, without the
/// isa-debug-exit device.
fn without_debug_exit(machine: &str, kernel: &Path, cmdline: &str) -> Vec<String> {
    let mut a = pvh_args(kernel, "512", cmdline, None);
    let dev = a.iter().position(|x| x.starts_with("isa-debug-exit")).expect("pvh_args adds isa-debug-exit");
    assert_eq!(a[dev - 1], "-device");
    a.drain(dev - 1..=dev);
    let m = a.iter().position(|x| x == "-M").expect("pvh_args names a machine");
    a[m + 1] = machine.to_string();
    a
}

fn assert_acpi_poweroff(machine: &str, kernel: &Path, cmdline: &str) {
    let run = qemu(&without_debug_exit(machine, kernel, cmdline), &[], T);
    let d = run.dump();
    assert!(!run.timed_out, "{machine}: QEMU still running after {T:?}: poweroff did not end it\n{d}");
    assert_eq!(run.status, Some(0), "{machine}: QEMU's status on an ACPI poweroff is 0\n{d}");
    assert!(run.has("hvmlite: shutdown: poweroff"), "{machine}: {d}");
    // Through S5, with QEMU's SLP_TYP (its \_S5_ is all Zero) on the
    // PM1a_CNT SeaBIOS placed (PMBASE 0x600 + 4).
    assert!(run.has("hvmlite: acpi: S5, SLP_TYP 0 to PM1a_CNT 0x604"), "{machine}: {d}");
    assert!(!run.has("halting"), "{machine}: {d}");
    assert!(!run.has("still running"), "{machine}: {d}");
    assert!(!run.has("FATAL"), "{machine}: {d}");
}

/// The loader carries no ACPI code (`platform::enable_acpi` is the
/// runtime's): asked to power off where isa-debug-exit is missing, it
/// says nothing answered and halts, without a word of ACPI.
#[test]
fn loader_without_acpi_says_it_halts() {
    let halting = "hvmlite: no shutdown device answered; halting";
    let run = qemu(&without_debug_exit("q35", &image(), "poweroff"), &[halting], T);
    let d = run.dump();
    assert!(run.has("hvmlite: shutdown: poweroff"), "{d}");
    assert!(run.has(halting), "{d}");
    assert!(!run.has("acpi:"), "{d}");
}

/// hello-stubdom off Xen times one second on the clock, then powers off.
#[test]
fn app_powers_off_through_acpi_on_q35() {
    assert_acpi_poweroff("q35", &example("hello-stubdom"), "");
}

#[test]
fn app_powers_off_through_acpi_on_pc() {
    assert_acpi_poweroff("pc", &example("hello-stubdom"), "");
}
