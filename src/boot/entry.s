/*
 * Stage 1 of the boot flow: the 32-bit PVH entry.
 *
 * Xen (and QEMU's PVH path) enter at the XEN_ELFNOTE_PHYS32_ENTRY note's
 * address, stage 0 (head.s), which unpacks a squashed image and jumps here,
 * still in flat 32-bit protected mode, paging off, interrupts off, no stack,
 * with %ebx = physical address of struct hvm_start_info
 * (xen/include/public/arch-x86/hvm/start_info.h) and %edx:%eax = the
 * time-stamp counter read at the entry.
 *
 * This file only does what Rust cannot: keep %ebx, clear .bss, take a stack,
 * build the early page tables (identity map of the first 4 GiB in 2 MiB pages),
 * turn on PAE + long mode (+ NX when the CPU has it) + paging and call
 * `pvh_start64(start_info_paddr)` in 64-bit mode. Everything else is Rust.
 */

    /* ---- The ELF note Xen and QEMU look for ---------------------------- */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz: a 64-bit entry address (QEMU reads 8 bytes) */
    .long {PHYS32_ENTRY}    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_head32
    .balign 4

    /* ---- 32-bit entry ------------------------------------------------- */
    .section .text.entry32, "ax"
    .code32
    .globl pvh_entry32
pvh_entry32:
    /* The time-stamp counter at entry, for the hand-off line. */
    mov     %eax, entry_tsc
    mov     %edx, entry_tsc + 4
    /* Keep the start_info pointer in %esi: nothing below touches it. */
    mov     %ebx, %esi

    /*
     * Clear .bss (stack, page tables, Rust statics); start_info is safe.
     * Both ends are page-aligned (linker.ld): four bytes a store, a
     * quarter of the iterations `rep stosb` would take (for the loader's
     * 576 KiB, about 440,000 fewer instructions counted under -icount).
     */
    mov     $__bss_start, %edi
    mov     $__bss_end, %ecx
    sub     %edi, %ecx
    shr     $2, %ecx
    xor     %eax, %eax
    rep stosl

    mov     $boot_stack_top, %esp

    /* Long mode is required; NX is used when present. */
    mov     $0x80000000, %eax
    cpuid
    cmp     $0x80000001, %eax
    jb      no_long_mode
    mov     $0x80000001, %eax
    cpuid
    bt      $29, %edx
    jnc     no_long_mode
    mov     %edx, %ebp

    /* early_pd[i] = i * 2 MiB | PS | RW | P, for i in 0..2048 (4 GiB) */
    mov     $early_pd, %edi
    mov     $0x83, %eax
    mov     $2048, %ecx
1:  mov     %eax, (%edi)
    add     $0x200000, %eax
    add     $8, %edi
    loop    1b

    /* early_pdpt[i] = &early_pd[i * 512] | RW | P, for i in 0..4 */
    mov     $early_pdpt, %edi
    mov     $(early_pd + 3), %eax
    mov     $4, %ecx
2:  mov     %eax, (%edi)
    add     $4096, %eax
    add     $8, %edi
    loop    2b
    movl    $(early_pdpt + 3), early_pml4

    mov     %cr4, %eax
    or      $0x20, %eax                 /* CR4.PAE */
    mov     %eax, %cr4
    mov     $early_pml4, %eax
    mov     %eax, %cr3

    mov     $0xc0000080, %ecx           /* EFER */
    rdmsr
    or      $0x100, %eax                /* EFER.LME */
    bt      $20, %ebp                   /* CPUID.80000001h:EDX.NX */
    jnc     3f
    or      $0x800, %eax                /* EFER.NXE */
3:  wrmsr

    lgdt    boot_gdt_ptr
    mov     %cr0, %eax
    or      $0x80010001, %eax           /* PG | WP | PE */
    mov     %eax, %cr0
    ljmp    ${BOOT_CS}, $pvh_entry64

no_long_mode:
    mov     $msg_no_long_mode, %esi
    jmp     fatal32

    /* ---- 64-bit ------------------------------------------------------- */
    .code64
pvh_entry64:
    mov     ${BOOT_DS}, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    xor     %eax, %eax
    mov     %eax, %fs
    mov     %eax, %gs
    mov     %esi, %edi                  /* arg 1: start_info paddr (zero-extended) */
    xor     %ebp, %ebp
    call    {pvh_start64}
    ud2

    /* ---- Data ---------------------------------------------------------- */
    .section .rodata.boot, "a"
    .balign 16
    /*
     * Selectors follow the Linux 64-bit boot protocol: __BOOT_CS = 0x10,
     * __BOOT_DS = 0x18. Accessed bits are preset so the CPU never writes here.
     */
    .globl boot_gdt
boot_gdt:
    .quad 0                             /* 0x00 null */
    .quad 0                             /* 0x08 unused */
    .quad 0x00af9b000000ffff            /* 0x10 64-bit code */
    .quad 0x00cf93000000ffff            /* 0x18 data */
boot_gdt_end:
    .globl boot_gdt_ptr
boot_gdt_ptr:
    .word   boot_gdt_end - boot_gdt - 1
    .quad   boot_gdt

msg_no_long_mode:
    .asciz "hvmlite: FATAL: this CPU has no long mode\n"

    .section .data.boot, "aw"
    .balign 8
    .globl entry_tsc
entry_tsc:      .quad 0

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .globl early_pml4
early_pml4:     .skip 4096
early_pdpt:     .skip 4096
early_pd:       .skip 4 * 4096
    /* Left unmapped by the runtime page tables: a stack overflow faults. */
    .globl boot_stack_guard
boot_stack_guard: .skip 4096
    .globl boot_stack_bottom
boot_stack_bottom:
    .skip {STACK_SIZE}
    .globl boot_stack_top
boot_stack_top:
    /* The CPU-exception stack (TSS IST 1, see traps.rs), with its own guard. */
    .balign 4096
    .globl fault_stack_guard
fault_stack_guard: .skip 4096
    .globl fault_stack_bottom
fault_stack_bottom:
    .skip {FAULT_STACK_SIZE}
    .globl fault_stack_top
fault_stack_top:
