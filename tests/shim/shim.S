/*
 * Test-only PVH shim (built by tests/qemu.rs, never shipped).
 *
 * QEMU boots this as the PVH kernel while `-device loader` places
 * hvmlite.elf in memory. The shim breaks start_info in the way MODE names,
 * then jumps to hvmlite's own PVH entry (HVMLITE_ENTRY, from its ELF header)
 * with %ebx as PVH defines it.
 */
#define BAD_MAGIC           1
#define BAD_VERSION         2
#define HUGE_MEMMAP         3
#define MODULE_OVER_IMAGE   4
#define NULL_START_INFO     5
#define MEMMAP_PAST_RAM     6
#define CMDLINE_OVERSIZED   7

    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 8, 18              /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad shim_entry

    .text
    .code32
    .globl shim_entry
shim_entry:
#if MODE == BAD_MAGIC
    movl    $0xdeadbeef, 0(%ebx)
#elif MODE == BAD_VERSION
    movl    $7, 4(%ebx)
#elif MODE == HUGE_MEMMAP
    movl    $0x10000000, 48(%ebx)
#elif MODE == MODULE_OVER_IMAGE
    mov     16(%ebx), %eax          /* modlist_paddr (low half) */
    movl    $HVMLITE_ENTRY, 0(%eax) /* module 0 now starts inside hvmlite */
    movl    $0, 4(%eax)
#elif MODE == NULL_START_INFO
    xor     %ebx, %ebx
#elif MODE == MEMMAP_PAST_RAM
    mov     40(%ebx), %eax          /* memmap_paddr (low half) */
    movl    $0xffffffff, 4(%eax)    /* entry 0: addr = 0xffffffff00000000 */
    movl    $0x10000000, 8(%eax)    /* ...and a size that wraps past 2^64 */
    movl    $0xffffffff, 12(%eax)
#elif MODE == CMDLINE_OVERSIZED
    mov     $0x3000000, %edi        /* 48 MiB: free RAM with -m 256 */
    mov     %edi, 24(%ebx)          /* cmdline_paddr = 8 KiB of 'x', then NUL */
    movl    $0, 28(%ebx)
    mov     $8192, %ecx
    mov     $'x', %al
    cld
    rep stosb
    movb    $0, (%edi)
#else
#error unknown MODE
#endif
    mov     $HVMLITE_ENTRY, %eax
    jmp     *%eax
