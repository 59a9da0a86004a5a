/*
 * Test-only PVH shim (built by tests/qemu.rs, never shipped).
 *
 * QEMU boots this as the PVH kernel while `-device loader` places
 * hvmlite.elf in memory. The shim breaks start_info in the way MODE names,
 * then jumps to hvmlite's own PVH entry (HVMLITE_ENTRY, from its ELF header;
 * HVMLITE_START is where its lowest segment lies)
 * with %ebx as PVH defines it.
 */
#define BAD_MAGIC           1
#define BAD_VERSION         2
#define HUGE_MEMMAP         3
#define MODULE_OVER_IMAGE   4
#define NULL_START_INFO     5
#define MEMMAP_PAST_RAM     6
#define CMDLINE_OVERSIZED   7
#define MEMMAP_MESSY        8
#define CMDLINE_PAST_RAM    9
#define MODLIST_PAST_RAM    10
#define MODULE_PAST_RAM     11
#define MEMMAP_ABOVE_4G     12
#define CMDLINE_RUNS_OFF    13
#define START_INFO_IN_HOLE  14

/*
 * Offsets in struct hvm_start_info (public/arch-x86/hvm/start_info.h) and
 * where things are with `-m 256`: RAM ends at 256 MiB, the shim is loaded
 * at 32 MiB, and 48 MiB is free.
 */
#define SI_NR_MODULES       12
#define SI_MODLIST          16
#define SI_CMDLINE          24
#define SI_MEMMAP           40
#define SI_MEMMAP_ENTRIES   48
#define RAM_END             0x10000000

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
    movl    $0x10000000, SI_MEMMAP_ENTRIES(%ebx)
#elif MODE == MODULE_OVER_IMAGE
    mov     SI_MODLIST(%ebx), %eax  /* modlist_paddr (low half) */
    movl    $HVMLITE_START, 0(%eax) /* module 0 now starts inside hvmlite */
    movl    $0, 4(%eax)
#elif MODE == NULL_START_INFO
    xor     %ebx, %ebx
#elif MODE == MEMMAP_PAST_RAM
    mov     SI_MEMMAP(%ebx), %eax   /* memmap_paddr (low half) */
    movl    $0xffffffff, 4(%eax)    /* entry 0: addr = 0xffffffff00000000 */
    movl    $0x10000000, 8(%eax)    /* ...and a size that wraps past 2^64 */
    movl    $0xffffffff, 12(%eax)
#elif MODE == CMDLINE_OVERSIZED
    mov     $0x3000000, %edi        /* 48 MiB: free RAM with -m 256 */
    mov     %edi, SI_CMDLINE(%ebx)  /* cmdline_paddr = 8 KiB of 'x', then NUL */
    movl    $0, SI_CMDLINE+4(%ebx)
    mov     $8192, %ecx
    mov     $'x', %al
    cld
    rep stosb
    movb    $0, (%edi)
#elif MODE == MEMMAP_MESSY
    /* A memmap with overlaps, nesting and zero-length entries (below);
     * hvmlite must boot on its sanitised form. */
    movl    $messy_map, SI_MEMMAP(%ebx)
    movl    $0, SI_MEMMAP+4(%ebx)
    movl    $12, SI_MEMMAP_ENTRIES(%ebx)
#elif MODE == CMDLINE_PAST_RAM
    movl    $0x20000000, SI_CMDLINE(%ebx)   /* 512 MiB: past the end of RAM */
    movl    $0, SI_CMDLINE+4(%ebx)
#elif MODE == MODLIST_PAST_RAM
    movl    $1, SI_NR_MODULES(%ebx)
    movl    $0x40000000, SI_MODLIST(%ebx)   /* 1 GiB: past the end of RAM */
    movl    $0, SI_MODLIST+4(%ebx)
#elif MODE == MODULE_PAST_RAM
    mov     SI_MODLIST(%ebx), %eax          /* module 0 (4 KiB) now straddles the end of RAM */
    movl    $RAM_END - 0x800, 0(%eax)
    movl    $0, 4(%eax)
#elif MODE == MEMMAP_ABOVE_4G
    movl    $0x10, SI_MEMMAP+4(%ebx)        /* memmap at 64 GiB + its old offset */
#elif MODE == CMDLINE_RUNS_OFF
    /* The last 16 bytes of RAM hold 'x' and no NUL: the string runs off
     * the end of RAM into the hole above it. */
    mov     $RAM_END - 16, %edi
    mov     %edi, SI_CMDLINE(%ebx)
    movl    $0, SI_CMDLINE+4(%ebx)
    mov     $16, %ecx
    mov     $'x', %al
    cld
    rep stosb
#elif MODE == START_INFO_IN_HOLE
    mov     $0xc0000000, %ebx               /* the PCI hole: no RAM, no device */
#else
#error unknown MODE
#endif
    mov     $HVMLITE_ENTRY, %eax
    jmp     *%eax

    .data
    .balign 8
/* {u64 addr, u64 size, u32 type, u32 reserved}: 1 RAM, 2 reserved, 3 ACPI,
 * 4 NVS. Sanitised, it is the 10 entries tests/qemu.rs expects. */
messy_map:
    .quad 0x0,        0x9fc00;    .long 1, 0   /* low RAM */
    .quad 0x9f000,    0x1000;     .long 2, 0   /* reserved over its last page */
    .quad 0xf0000,    0x10000;    .long 2, 0
    .quad 0x100000,   0xfee0000;  .long 1, 0   /* RAM 1 MiB - 0xffe0000 */
    .quad 0x200000,   0x100000;   .long 1, 0   /* RAM nested in RAM */
    .quad 0x500000,   0;          .long 3, 0   /* zero-length ACPI */
    .quad 0x7000000,  0x2000;     .long 4, 0   /* NVS in RAM ... */
    .quad 0x7001000,  0x2000;     .long 2, 0   /* ... half under a reservation */
    .quad 0xffe0000,  0x20000;    .long 2, 0
    .quad 0x20000000, 0;          .long 1, 0   /* zero-length RAM past the end */
    .quad 0xb0000000, 0x10000000; .long 2, 0
    .quad 0xfffc0000, 0x40000;    .long 2, 0
