//go:build 386
// For build systems that assemble every .s file they find (Go's, with
// cgo): this file is for i386 only. GNU as reads these lines as comments.

/*
 * i386 tracepoint stub template and argument marshaller (cdecl).
 *
 * Copied once per probe (USDT_STUB_SIZE = 48 bytes, 16-byte aligned);
 * usdt_probe.c patches the 32-bit displacement at offset 9 (counted from
 * offset 5, the address the call/pop pair puts in %ecx) so the cmpw reads
 * that probe's semaphore. i386 has no %eip-relative addressing.
 *
 * Is-enabled function (offset 0):
 *   0  e8 00 00 00 00    call 5
 *   5  59                pop %ecx            %ecx = stub + 5
 *   6  66 83 b9 d32 00   cmpw $0,d32(%ecx)   SDT semaphore
 *  14  75 06             jne 22
 *  16  33 c0             xor %eax,%eax       the `dtrace -G` is-enabled pattern
 *  18  90                nop                 DTrace's is-enabled site
 *  19  90 90             nop; nop
 *  21  c3                ret
 *  22  b8 01 00 00 00    mov $1,%eax
 *  27  c3                ret
 *  28  00 00             the zero semaphore
 *  30  cc cc
 *
 * Probe part (offset 32), entered by a call from usdt_probe_args with the
 * arguments at 4(%esp), 8(%esp), ...:
 *  32  59                pop %ecx            return address; arguments now at
 *                                            0(%esp), 4(%esp), ... as at a
 *                                            compiled-in probe site
 *  33  0f 1f 44 00 00    nopl                the uprobe site of the SDT note
 *  38  90 90 90 90 90    DTrace's probe site
 *  43  ff e1             jmp *%ecx
 *  45  cc cc cc
 */
        .text

        .globl  usdt_stub_template
        .hidden usdt_stub_template
        .globl  usdt_stub_template_end
        .hidden usdt_stub_template_end
        .p2align 4
usdt_stub_template:
        .byte   0xe8, 0x00, 0x00, 0x00, 0x00   /* call 5 */
        pop     %ecx
        .byte   0x66, 0x83, 0xb9, 0x00, 0x00, 0x00, 0x00, 0x00  /* cmpw $0,d32(%ecx) */
        .byte   0x75, 0x06              /* jne 22 */
        .byte   0x33, 0xc0              /* xor %eax,%eax */
        nop                             /* DTrace is-enabled site */
        nop
        nop
        ret
        movl    $1, %eax
        ret
        .byte   0x00, 0x00, 0xcc, 0xcc
        /* offset 32: probe_addr */
        pop     %ecx
        .byte   0x0f, 0x1f, 0x44, 0x00, 0x00   /* SDT site */
        .byte   0x90, 0x90, 0x90, 0x90, 0x90   /* DTrace probe site */
        jmp     *%ecx
        .byte   0xcc, 0xcc, 0xcc
usdt_stub_template_end:

/* usdt_tracepoint_noop: a withdrawn handle's probe_addr; entered by call. */
        .globl  usdt_tracepoint_noop
        .hidden usdt_tracepoint_noop
        .type   usdt_tracepoint_noop, @function
        .p2align 4
usdt_tracepoint_noop:
        ret
        .size   usdt_tracepoint_noop, .-usdt_tracepoint_noop

/*
 * void usdt_probe_args(void *probe_addr, size_t argc, void **argv)
 *
 * Copies argv[0..argc) to 0(%esp), 4(%esp), ... (16-byte aligned) and calls
 * the stub's probe part; the stub pops the return address, so at its sites
 * the arguments sit exactly where a compiled-in probe's would. Preserves
 * %ebx, %esi, %edi, %ebp and the stack.
 */
        .globl  usdt_probe_args
        .hidden usdt_probe_args
        .type   usdt_probe_args, @function
        .p2align 4
usdt_probe_args:
        push    %ebp
        mov     %esp, %ebp
        mov     12(%ebp), %ecx          /* argc */
        mov     16(%ebp), %eax          /* argv */
        lea     0(,%ecx,4), %edx
        sub     %edx, %esp
        and     $-16, %esp
1:      test    %ecx, %ecx              /* copy argv[i] to i*4(%esp) */
        jz      2f
        dec     %ecx
        mov     (%eax,%ecx,4), %edx
        mov     %edx, (%esp,%ecx,4)
        jmp     1b
2:      call    *8(%ebp)
        leave
        ret
        .size   usdt_probe_args, .-usdt_probe_args

        .section .note.GNU-stack,"",@progbits
