//go:build amd64
// For build systems that assemble every .s file they find (Go's, with
// cgo): this file is for x86_64 only. GNU as reads these lines as comments.

/*
 * x86_64 tracepoint stub template and argument marshaller (System V ABI).
 *
 * usdt_stub_template is copied once per probe (USDT_STUB_SIZE = 48 bytes,
 * stubs 16-byte aligned); usdt_probe.c patches the 32-bit displacement at
 * offset 9 so the cmpw reads that probe's semaphore. Byte offsets below are
 * the ones usdt_internal.h names and the test suite checks.
 *
 * Every target of an indirect call or jump starts with endbr64 (CET IBT),
 * every call returns with ret (CET shadow stacks), and the file is marked
 * IBT and SHSTK (.note.gnu.property, at the end).
 *
 * Is-enabled function (offset 0, called through isenabled_addr):
 *   0  f3 0f 1e fa       endbr64
 *   4  31 c0             xor %eax,%eax
 *   6  66 83 3d d32 00   cmpw $0,sem(%rip)   SDT semaphore, counted by the kernel
 *  14  0f 95 c0          setne %al           1 while a Linux tracer is attached
 *  17  90                nop                 DTrace's is-enabled site: fasttrap
 *                                            sets %rax to 1 and skips the nop
 *  18  c3                ret
 *  19  00 00             a zero semaphore, for stubs that have none
 *
 * DTrace part (offset 21), entered by a jmp from usdt_probe_args with the
 * arguments in place, as at a compiled call site whose call `dtrace -G`
 * replaced by nops (arguments 1-6 in %rdi..%r9, the 7th on at 0(%rsp),
 * 8(%rsp), ...), and the return address in %r11:
 *  21  f3 0f 1e fa       endbr64
 *  25  90 90 90 90 90    DTrace's probe site
 *  30  41 ff e3          jmp *%r11           back to usdt_probe_args
 *
 * SDT part (offset 33, probe_addr), called by usdt_probe_args: a function
 * of its own, so one unwind rule (CFA = %rsp + 8, the return address at
 * 0(%rsp)) holds for every byte of a stub that a tracer stops at, and
 * debuggers and profilers walk from the site into the caller's frames:
 *  33  f3 0f 1e fa       endbr64
 *  37  0f 1f 44 00 00    nopl 0(%rax,%rax)   the uprobe site of the SDT note:
 *                        arguments 1-6 in %rdi..%r9, the 7th on at 8(%rsp),
 *                        16(%rsp), ... A 5-byte nop: kernels with the
 *                        optimised uprobe path turn it into a call, which
 *                        writes 8 bytes below %rsp; nothing live is there.
 *                        Inside bytes 32..47, so never across a page.
 *  42  c3                ret
 *  43  cc x 5
 */
        .text

        .globl  usdt_stub_template
        .hidden usdt_stub_template
        .globl  usdt_stub_template_end
        .hidden usdt_stub_template_end
        .p2align 4
usdt_stub_template:
        endbr64
        xor     %eax, %eax
        cmpw    $0, 0(%rip)             /* displacement patched per stub */
        setne   %al
        nop                             /* DTrace is-enabled site */
        ret
        .byte   0x00, 0x00              /* the zero semaphore (offset 19) */
        /* offset 21: the DTrace part */
        endbr64
        .byte   0x90, 0x90, 0x90, 0x90, 0x90   /* DTrace probe site */
        jmp     *%r11
        /* offset 33: the SDT part, probe_addr */
        endbr64
        .byte   0x0f, 0x1f, 0x44, 0x00, 0x00   /* SDT site: nopl 0(%rax,%rax) */
        ret
        .byte   0xcc, 0xcc, 0xcc, 0xcc, 0xcc
usdt_stub_template_end:

/*
 * Where a withdrawn handle's probe_addr points: usdt_tracepoint_noop does
 * what a stub's SDT part does (returns), and 12 bytes before it (as the
 * DTrace part sits 12 bytes before the SDT part) what its DTrace part
 * does (jumps back through %r11), so a fire that read a handle half-way
 * through its withdrawal runs harmlessly either way.
 */
        .p2align 4
usdt_tracepoint_noop_dtrace:
        endbr64
        jmp     *%r11
        .byte   0xcc, 0xcc, 0xcc, 0xcc, 0xcc
        .globl  usdt_tracepoint_noop
        .hidden usdt_tracepoint_noop
        .type   usdt_tracepoint_noop, @function
usdt_tracepoint_noop:
        endbr64
        ret
        .size   usdt_tracepoint_noop, .-usdt_tracepoint_noop

/*
 * void usdt_probe_args(void *probe_addr, size_t argc, void **argv, int dtrace)
 *
 * Puts argv[0..argc) where a compiled-in probe's arguments would be at its
 * site (%rdi, %rsi, %rdx, %rcx, %r8, %r9, then on the stack), calls the
 * stub's SDT part, then, when dtrace is non-zero, jumps into its DTrace
 * part with the return address in %r11, and returns. Keeps a frame-pointer
 * frame (and CFI for it), so tracers unwind through it. Uses only
 * caller-saved registers; %rbx, %rbp, %r12-%r15 and the stack are as they
 * were on return. Reads no argv entry at or past argc.
 */
        .globl  usdt_probe_args
        .hidden usdt_probe_args
        .type   usdt_probe_args, @function
        .p2align 4
usdt_probe_args:
        .cfi_startproc
        endbr64
        push    %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset %rbp, -16
        mov     %rsp, %rbp
        .cfi_def_cfa_register %rbp
        push    %rcx                    /* dtrace, at -8(%rbp) */
        push    %rdi                    /* the SDT part, at -16(%rbp) */
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
3:      mov     -16(%rbp), %r10
        call    *%r10                   /* the SDT part: arguments 7+ at 8(%rsp) */
        cmpl    $0, -8(%rbp)
        je      4f
        lea     4f(%rip), %r11          /* the DTrace part returns here */
        sub     $12, %r10               /* USDT_STUB_ENTRY - USDT_STUB_DTRACE_ENTRY */
        jmp     *%r10                   /* arguments 7+ at 0(%rsp), registers kept */
4:      endbr64
        leave
        .cfi_def_cfa %rsp, 8
        ret
        .cfi_endproc
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
        .cfi_startproc
        endbr64
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
        .cfi_endproc
        .size   usdt_is_enabled, .-usdt_is_enabled

/* void usdt_fire_probe(usdt_probe_t *probe, size_t argc, void **argv) */
        .globl  usdt_fire_probe
        .type   usdt_fire_probe, @function
        .p2align 4
usdt_fire_probe:
        .cfi_startproc
        endbr64
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
        .cfi_endproc
        .size   usdt_fire_probe, .-usdt_fire_probe

/*
 * CET: every function here is fit for indirect branch tracking and shadow
 * stacks, so the object says so, and a program built with -fcf-protection
 * keeps both when it links the library.
 */
        .section .note.gnu.property,"a"
        .p2align 3
        .long   4                       /* name size */
        .long   16                      /* descriptor size */
        .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000002              /* GNU_PROPERTY_X86_FEATURE_1_AND */
        .long   4
        .long   3                       /* IBT | SHSTK */
        .long   0

        .section .note.GNU-stack,"",@progbits
