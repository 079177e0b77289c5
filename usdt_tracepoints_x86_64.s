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

/*
 * The hot path: usdt_is_enabled and usdt_fire_probe, for a probe nobody
 * traces. Both read the probe's semaphore through its handle
 * (handle->semaphore, which points into the provider's SDT object, or at
 * a zero that is never unmapped) and return when it is 0: one load of the
 * handle, one of the semaphore, a branch.
 *
 * The two loads sit in a restartable sequence (rseq(2)): the range from
 * "start" to "post" is a critical section registered, per call, in this
 * thread's rseq area (glibc 2.35+ registers one for every thread; its
 * offset from the thread pointer is usdt_rseq_tls). If the thread is
 * preempted, migrated or signalled while inside, the kernel moves it to
 * "abort", which starts over and so reads handle->semaphore again. The
 * object lifecycle (usdt_object.c) first points every handle away from an
 * object, then calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ),
 * which restarts every thread still inside; after that no thread holds an
 * old semaphore pointer and the object can be unmapped at once. Nothing
 * here waits, counts or takes a lock.
 *
 * Everything else goes to the C slow paths in usdt_fire.c, which count
 * themselves in flight on the handle (handle->inflight): a traced probe,
 * a probe that DTrace must be asked about (handle->call_isenabled), a
 * thread without an rseq area, or a library running without rseq
 * (usdt_rseq_tls == 0). rdi, rsi and rdx are kept for them.
 *
 * Offsets used (usdt_internal.h asserts them): struct usdt_handle:
 * semaphore at 16, call_isenabled at 24; struct rseq: cpu_id at 4 (negative
 * when the thread is not registered), rseq_cs at 8.
 */
        .set    USDT_H_SEMAPHORE, 16
        .set    USDT_H_CALL_ISENABLED, 24
        .set    RSEQ_CPU_ID, 4
        .set    RSEQ_CS, 8
        .set    RSEQ_SIG, 0x53053053            /* glibc's signature on x86 */

/* struct rseq_cs {u32 version, flags; u64 start_ip, post_commit_offset, abort_ip} */
        .section .data.rel.ro,"aw",@progbits
        .p2align 5
usdt_is_enabled_cs:
        .long   0, 0
        .quad   .Lie_start, .Lie_post - .Lie_start, .Lie_abort
        .p2align 5
usdt_fire_probe_cs:
        .long   0, 0
        .quad   .Lfp_start, .Lfp_post - .Lfp_start, .Lfp_abort

        .text

/* int usdt_is_enabled(usdt_probe_t *probe) */
        .globl  usdt_is_enabled
        .type   usdt_is_enabled, @function
        .p2align 4
usdt_is_enabled:
        test    %rdi, %rdi
        jz      .Lie_zero                       /* NULL: 0 */
        mov     usdt_rseq_tls(%rip), %rax
        test    %rax, %rax
        jz      usdt_is_enabled_slow            /* no rseq in this process */
        cmpl    $0, %fs:RSEQ_CPU_ID(%rax)
        jl      usdt_is_enabled_slow            /* no rseq on this thread */
        lea     usdt_is_enabled_cs(%rip), %rcx
.Lie_again:
        mov     %rcx, %fs:RSEQ_CS(%rax)         /* the critical section begins */
.Lie_start:
        mov     USDT_H_SEMAPHORE(%rdi), %rdx    /* handle->semaphore */
        movzwl  (%rdx), %edx                    /* the semaphore */
.Lie_post:
        movq    $0, %fs:RSEQ_CS(%rax)           /* and ends: never leave a pointer
                                                   into a library that may be unloaded */
        test    %edx, %edx
        jnz     .Lie_one
        cmpl    $0, USDT_H_CALL_ISENABLED(%rdi)
        jne     usdt_is_enabled_slow            /* DTrace decides */
.Lie_zero:
        xor     %eax, %eax
        ret
.Lie_one:
        mov     $1, %eax
        ret
        .byte   0x0f, 0xb9, 0x3d                /* ud1 ...: the 4 bytes before */
        .long   RSEQ_SIG                        /* an abort handler are the signature */
.Lie_abort:
        jmp     .Lie_again
        .size   usdt_is_enabled, .-usdt_is_enabled

/* void usdt_fire_probe(usdt_probe_t *probe, size_t argc, void **argv) */
        .globl  usdt_fire_probe
        .type   usdt_fire_probe, @function
        .p2align 4
usdt_fire_probe:
        test    %rdi, %rdi
        jz      .Lfp_done                       /* NULL: nothing */
        mov     usdt_rseq_tls(%rip), %rax
        test    %rax, %rax
        jz      usdt_fire_probe_slow
        cmpl    $0, %fs:RSEQ_CPU_ID(%rax)
        jl      usdt_fire_probe_slow
        lea     usdt_fire_probe_cs(%rip), %rcx
.Lfp_again:
        mov     %rcx, %fs:RSEQ_CS(%rax)
.Lfp_start:
        mov     USDT_H_SEMAPHORE(%rdi), %r8
        movzwl  (%r8), %r8d
.Lfp_post:
        movq    $0, %fs:RSEQ_CS(%rax)
        test    %r8d, %r8d
        jnz     usdt_fire_probe_slow            /* traced: fire, counted */
        cmpl    $0, USDT_H_CALL_ISENABLED(%rdi)
        jne     usdt_fire_probe_slow            /* DTrace may trace it */
.Lfp_done:
        ret
        .byte   0x0f, 0xb9, 0x3d
        .long   RSEQ_SIG
.Lfp_abort:
        jmp     .Lfp_again
        .size   usdt_fire_probe, .-usdt_fire_probe

        .section .note.GNU-stack,"",@progbits
