/*
 * x86_64 tracepoint stub template and argument marshaller (System V ABI).
 *
 * usdt_stub_template is copied once per probe (USDT_STUB_SIZE = 48 bytes,
 * stubs 16-byte aligned); usdt_probe.c patches the 32-bit displacement at
 * offset 3 so the cmpw reads that probe's semaphore. Byte offsets below are
 * the ones usdt_internal.h names and the test suite checks.
 *
 * Is-enabled function (offset 0, called through isenabled_addr):
 *   0  66 83 3d d32 00   cmpw $0,sem(%rip)   SDT semaphore, counted by the kernel
 *   8  75 06             jne 16              a Linux tracer is attached: 1
 *  10  48 33 c0          xor %rax,%rax       the `dtrace -G` is-enabled pattern:
 *  13  90                nop                 DTrace's is-enabled site: fasttrap
 *  14  90                nop                 sets %rax to 1 and skips the nop
 *  15  c3                ret                 returns 0, or 1 under DTrace
 *  16  b8 01 00 00 00    mov $1,%eax
 *  21  c3                ret
 *  22  00 00             a zero semaphore, for stubs that have none
 *  24  cc x 8            padding (int3)
 *
 * Probe part (offset 32, probe_addr), entered by a jmp from usdt_probe_args
 * with the arguments in place and the return address in %r11:
 *  32  0f 1f 44 00 00    nopl 0(%rax,%rax)   the uprobe site of the SDT note.
 *                        A 5-byte nop: kernels with the optimised uprobe path
 *                        turn it into a call, which writes 8 bytes below
 *                        %rsp; nothing live is there. 16-byte aligned, so it
 *                        never crosses a page.
 *  37  90 90 90 90 90    DTrace's probe site (what `dtrace -G` puts in place
 *                        of a call): arguments 1-6 in %rdi..%r9, the 7th on
 *                        at 0(%rsp), 8(%rsp), ...
 *  42  41 ff e3          jmp *%r11           back to usdt_probe_args
 *  45  cc cc cc
 */
        .text

        .globl  usdt_stub_template
        .hidden usdt_stub_template
        .globl  usdt_stub_template_end
        .hidden usdt_stub_template_end
        .p2align 4
usdt_stub_template:
        cmpw    $0, 0(%rip)             /* displacement patched per stub */
        jne     1f
        .byte   0x48, 0x33, 0xc0        /* xor %rax,%rax (33 /r, as dtrace -G) */
        nop                             /* DTrace is-enabled site */
        nop
        ret
1:      movl    $1, %eax
        ret
        .byte   0x00, 0x00              /* the zero semaphore (offset 22) */
        .byte   0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc
        /* offset 32: probe_addr */
        .byte   0x0f, 0x1f, 0x44, 0x00, 0x00   /* SDT site: nopl 0(%rax,%rax) */
        .byte   0x90, 0x90, 0x90, 0x90, 0x90   /* DTrace probe site */
        jmp     *%r11
        .byte   0xcc, 0xcc, 0xcc
usdt_stub_template_end:

/*
 * usdt_tracepoint_noop: where a withdrawn handle's probe_addr points. Same
 * entry convention as a stub's probe part: return through %r11.
 */
        .globl  usdt_tracepoint_noop
        .hidden usdt_tracepoint_noop
        .type   usdt_tracepoint_noop, @function
        .p2align 4
usdt_tracepoint_noop:
        jmp     *%r11
        .size   usdt_tracepoint_noop, .-usdt_tracepoint_noop

/*
 * void usdt_probe_args(void *probe_addr, size_t argc, void **argv)
 *
 * Puts argv[0..argc) where a compiled-in probe's arguments would be at its
 * site (%rdi, %rsi, %rdx, %rcx, %r8, %r9, then 0(%rsp), 8(%rsp), ...),
 * jumps into the stub's probe part with the return address in %r11, and
 * returns. Uses only caller-saved registers; %rbx, %rbp, %r12-%r15 and the
 * stack are as they were on return. Reads no argv entry at or past argc.
 */
        .globl  usdt_probe_args
        .hidden usdt_probe_args
        .type   usdt_probe_args, @function
        .p2align 4
usdt_probe_args:
        push    %rbp
        mov     %rsp, %rbp
        mov     %rdi, %r10              /* the stub's probe part */
        mov     %rdx, %rax              /* argv */
        mov     %rsi, %r11              /* argc */
        cmp     $6, %r11
        jbe     2f
        lea     -6(%r11), %rcx          /* arguments that go on the stack */
        lea     1(%rcx), %rdx
        and     $-2, %rdx               /* round up to an even count ... */
        shl     $3, %rdx
        sub     %rdx, %rsp              /* ... so %rsp stays 16-byte aligned */
1:      dec     %rcx                    /* copy argv[6 + i] to i*8(%rsp) */
        mov     48(%rax,%rcx,8), %rdx
        mov     %rdx, (%rsp,%rcx,8)
        test    %rcx, %rcx
        jnz     1b
2:      cmp     $1, %r11                /* registers, as far as argc goes */
        jb      3f
        mov     0(%rax), %rdi
        cmp     $2, %r11
        jb      3f
        mov     8(%rax), %rsi
        cmp     $3, %r11
        jb      3f
        mov     16(%rax), %rdx
        cmp     $4, %r11
        jb      3f
        mov     24(%rax), %rcx
        cmp     $5, %r11
        jb      3f
        mov     32(%rax), %r8
        cmp     $6, %r11
        jb      3f
        mov     40(%rax), %r9
3:      lea     4f(%rip), %r11          /* the stub returns here */
        jmp     *%r10
4:      leave
        ret
        .size   usdt_probe_args, .-usdt_probe_args

        .section .note.GNU-stack,"",@progbits
