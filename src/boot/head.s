/*
 * Stage 0 of the boot flow: where Xen (and QEMU's PVH path) enter.
 *
 * The XEN_ELFNOTE_PHYS32_ENTRY note names `pvh_head32`: flat 32-bit
 * protected mode, paging off, interrupts off, no stack, %ebx = physical
 * address of struct hvm_start_info.
 *
 * `hvmlite squash` (tool/src/squash.rs) stores an image's code and data as
 * one LZ4 block placed after this head, and fills in `squash_record`. The
 * head then unpacks that block to the image's own addresses, checking every
 * length and offset against both buffers, and goes on to stage 1
 * (`pvh_entry32`, entry.s) as if Xen had loaded the image unpacked. An image
 * that was not squashed (`squash_len` 0, as linked) goes on at once.
 *
 * LZ4 block format (lz4's doc/lz4_Block_format.md): sequences of
 *   token (literal length << 4 | match length - 4), more literal-length
 *   bytes while 255 when the nibble is 15, the literals, then a 16-bit
 *   little-endian offset back into the output and more match-length bytes
 *   the same way; the last sequence has literals only.
 *
 * Stage 1 gets %ebx unchanged and %edx:%eax = the time-stamp counter read
 * at this entry, so the hand-off line counts the unpacking too.
 */

/* %ecx: a 4-bit length; 15 means bytes follow, each added, up to and
 * including the first that is not 255. */
.macro lz4_length
    cmp     $15, %ecx
    jne     2f
1:  cmp     %ebp, %esi
    jae     .Lbad
    movzbl  (%esi), %eax
    inc     %esi
    add     %eax, %ecx
    jc      .Lbad
    cmp     $255, %eax
    je      1b
2:
.endm

    .section .head, "awx"
    .code32
    .globl pvh_head32
pvh_head32:
    cli
    cld
    rdtsc
    mov     %eax, head_tsc
    mov     %edx, head_tsc + 4
    mov     %ebx, head_start_info

    mov     squash_len, %ecx
    test    %ecx, %ecx
    jz      .Lunpacked
    /*
     * %esi/%ebp: input and its end; %edi/%ebx: output and its end. The
     * output is the image's own range, the input lies past it: a record
     * that says otherwise cannot make this code overwrite itself.
     */
    mov     squash_src, %esi
    cmp     $__image_end, %esi
    jb      .Lbad
    mov     %esi, %ebp
    add     %ecx, %ebp
    jc      .Lbad
    mov     $__image_start, %edi
    mov     %edi, %ebx
    add     squash_out_len, %ebx
    jc      .Lbad
    cmp     $__image_end, %ebx
    ja      .Lbad

.Lsequence:
    cmp     %ebp, %esi
    jae     .Lbad                       /* a sequence starts with its token */
    movzbl  (%esi), %edx
    inc     %esi
    mov     %edx, %ecx
    shr     $4, %ecx
    lz4_length
    /* The literals lie inside the input and fit in the output. */
    mov     %ebp, %eax
    sub     %esi, %eax
    cmp     %eax, %ecx
    ja      .Lbad
    mov     %ebx, %eax
    sub     %edi, %eax
    cmp     %eax, %ecx
    ja      .Lbad
    rep movsb
    cmp     %ebp, %esi
    je      .Lend                       /* the last sequence: literals only */

    mov     %edx, %ecx
    and     $15, %ecx
    /* The offset: two bytes of input, 1 ..= what is already unpacked. */
    mov     %ebp, %eax
    sub     %esi, %eax
    cmp     $2, %eax
    jb      .Lbad
    movzwl  (%esi), %edx
    add     $2, %esi
    test    %edx, %edx
    jz      .Lbad
    mov     %edi, %eax
    sub     $__image_start, %eax
    cmp     %eax, %edx
    ja      .Lbad
    lz4_length
    add     $4, %ecx
    jc      .Lbad
    mov     %ebx, %eax
    sub     %edi, %eax
    cmp     %eax, %ecx
    ja      .Lbad
    /* Byte by byte, forwards: a match may overlap what it produces. */
    mov     %esi, %eax
    mov     %edi, %esi
    sub     %edx, %esi
    rep movsb
    mov     %eax, %esi
    jmp     .Lsequence

.Lend:
    cmp     %ebx, %edi
    jne     .Lbad                       /* exactly the promised length */
.Lunpacked:
    mov     head_start_info, %ebx
    mov     head_tsc, %eax
    mov     head_tsc + 4, %edx
    jmp     pvh_entry32

.Lbad:
    mov     $msg_bad_squash, %esi
    jmp     fatal32

/*
 * The 32-bit stages' way out, before any console or hypercall exists:
 * the NUL-terminated line at %esi and `hvmlite: shutdown: crash` to port
 * 0xe9 (QEMU's debugcon, Xen's `(dN)` console), the crash status to QEMU's isa-debug-exit (ignored where
 * there is none), then a fault with no IDT: a triple fault, which Xen
 * takes as a crash and QEMU as a reset (-no-reboot: it exits).
 */
    .globl fatal32
fatal32:
    mov     $0xe9, %dx
1:  lodsb
    test    %al, %al
    jz      2f
    outb    %al, %dx
    jmp     1b
2:  cmp     $msg_shutdown_end, %esi
    mov     $msg_shutdown, %esi
    jne     1b                          /* then the shutdown line */
    mov     ${QEMU_EXIT_PORT}, %dx
    mov     ${QEMU_EXIT_CRASH}, %al
    outb    %al, %dx
    lidt    head_no_idt
    ud2

/* Filled in by `hvmlite squash`, found by its magic (SQUASH_MAGIC). */
    .balign 8
    .globl squash_record
squash_record:
    .ascii  "hvmlite-squash\0\0"
squash_src:     .long 0                 /* physical address of the LZ4 block */
squash_len:     .long 0                 /* its length; 0: not squashed */
squash_out:     .long __image_start     /* where it unpacks to: always here */
squash_out_len: .long 0                 /* how many bytes it unpacks to */

head_tsc:        .quad 0
head_start_info: .long 0
head_no_idt:     .word 0
                 .long 0
msg_bad_squash:
    .asciz "hvmlite: FATAL: the squashed image does not unpack: hvmlite.elf is damaged\n"
msg_shutdown:
    .asciz "hvmlite: shutdown: crash\n"
msg_shutdown_end:
