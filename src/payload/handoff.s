/*
 * Stage 4, the last instructions hvmlite runs: hand the CPU to a Linux
 * kernel through the 64-bit boot protocol (Documentation/arch/x86/boot.rst,
 * "64-bit Boot Protocol"):
 *
 *   - long mode, interrupts off;
 *   - page tables that identity-map the kernel's init_size from its load
 *     address, the zero page and the command line (here: all of RAM and the
 *     first 4 GiB, writable and executable);
 *   - a GDT where __BOOT_CS (0x10) is flat 64-bit code and __BOOT_DS (0x18)
 *     flat data, loaded in %cs and %ds/%es/%ss: entry.s's boot GDT is
 *     exactly that;
 *   - %rsi = the zero page (struct boot_params);
 *   - jump to the load address + 0x200 (bzImage) or the ELF entry (vmlinux).
 *
 * hvmlite_handoff(entry %rdi, boot_params %rsi, cr3 %rdx): never returns.
 */
    .section .text.handoff, "ax"
    .code64
    .globl hvmlite_handoff
hvmlite_handoff:
    cli
    mov     %rdx, %cr3
    lgdt    boot_gdt_ptr(%rip)
    mov     ${BOOT_DS}, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    pushq   ${BOOT_CS}
    leaq    1f(%rip), %rax
    pushq   %rax
    lretq
1:
    mov     %rdi, %rax
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %edi, %edi
    xor     %ebp, %ebp
    jmp     *%rax
