/*
 * Stage 4, the last instructions hvmlite runs. Two hand-offs: the Linux
 * 64-bit boot protocol (hvmlite_handoff) and the kernel's own PVH entry
 * (hvmlite_handoff_pvh, below).
 *
 * The first: hand the CPU to a Linux
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

/*
 * The second hand-off: enter a kernel at its own PVH entry
 * (XEN_ELFNOTE_PHYS32_ENTRY) in the state Xen leaves a PVH guest in
 * (xen/docs/misc/pvh.pandoc, public/arch-x86/hvm/start_info.h):
 *
 *   - 32-bit protected mode, paging off, interrupts off;
 *   - %cs a flat 32-bit code segment, %ds %es %ss flat 32-bit data;
 *   - %ebx = the physical address of struct hvm_start_info;
 *   - other registers undefined (cleared here).
 *
 * Leaving long mode (Intel SDM vol. 3, 9.8.5.4): from 64-bit code, far
 * return into a 32-bit code segment (compatibility mode); there, with the
 * code identity-mapped, clear CR0.PG (long mode becomes inactive), then
 * EFER.LME. This code and its GDT are in hvmlite's image at 1 MiB, below
 * 4 GiB, identity-mapped by the hand-off tables (`cr3`).
 *
 * hvmlite_handoff_pvh(entry %rdi, start_info %rsi, cr3 %rdx): never returns.
 */
    .section .text.handoff, "ax"
    .code64
    .globl hvmlite_handoff_pvh
hvmlite_handoff_pvh:
    cli
    mov     %rdx, %cr3
    lgdt    pvh_gdt_ptr(%rip)
    lidt    pvh_idt_ptr(%rip)           /* no IDT: a fault now is a triple fault */
    mov     %esi, %ebx                  /* start_info (below 4 GiB: checked in Rust) */
    mov     %edi, %ebp                  /* the entry (below 4 GiB: checked in Rust) */
    pushq   ${PVH_CS32}
    leaq    1f(%rip), %rax
    pushq   %rax
    lretq
    .code32
1:  /* Compatibility mode: 32-bit code, long mode still active. */
    mov     ${PVH_DS}, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    mov     %cr0, %eax
    and     $0x7fffffff, %eax           /* CR0.PG off: long mode inactive */
    mov     %eax, %cr0
    mov     $0xc0000080, %ecx           /* EFER: LME and NXE off */
    rdmsr
    and     $~0x900, %eax
    wrmsr
    xor     %eax, %eax
    mov     %eax, %cr4                  /* PAE, PGE, ... off: as a fresh vCPU */
    mov     %eax, %cr3
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %esi, %esi
    xor     %edi, %edi
    xor     %esp, %esp
    mov     %ebp, %eax
    xor     %ebp, %ebp
    jmp     *%eax

    .section .rodata.handoff, "a"
    .balign 16
    /* Accessed bits preset, so the CPU never writes here. */
pvh_gdt:
    .quad 0                             /* 0x00 null */
    .quad 0x00cf9b000000ffff            /* 0x08 flat 32-bit code */
    .quad 0x00af9b000000ffff            /* 0x10 flat 64-bit code (unused) */
    .quad 0x00cf93000000ffff            /* 0x18 flat data */
pvh_gdt_end:
pvh_gdt_ptr:
    .word   pvh_gdt_end - pvh_gdt - 1
    .quad   pvh_gdt
pvh_idt_ptr:
    .word   0
    .quad   0
