//go:build arm64

/*
 * aarch64 tracepoint stub template and argument marshaller (AAPCS64, Linux).
 *
 * usdt_stub_template is copied once per probe (USDT_STUB_SIZE = 48 bytes,
 * stubs 16-byte aligned); usdt_probe.c patches the immediates of the adrp
 * at offset 4 and the ldrh at offset 8 so the pair reads that probe's
 * semaphore. Byte offsets below are the ones usdt_internal.h names and the
 * test suite checks. Every instruction is 4 bytes, little-endian.
 *
 * Every target of an indirect call starts with a BTI landing pad (bti c,
 * written "hint #34" so that any assembler takes it; a nop where BTI is
 * absent), the marshaller signs its return address (paciasp/autiasp, "hint
 * #25"/"hint #29"), every call returns with ret, and the file is marked BTI
 * and PAC (.note.gnu.property, at the end). The linker keeps the marks only
 * when every object of a program has them, so a program is BTI-enforced
 * exactly when its compiler marked the rest of it.
 *
 * Is-enabled function (offset 0, called through isenabled_addr):
 *   0  bti c
 *   4  adrp x0, SEM          the semaphore's 4 KiB page (patched)
 *   8  ldrh w0, [x0, SEM]    the SDT semaphore, counted by the kernel (patched)
 *  12  cmp  w0, #0
 *  16  cset w0, ne           1 while a Linux tracer is attached, else 0
 *  20  ret
 *  24  00 00                 a zero semaphore, for stubs that have none
 *  26  00 00
 *  28  udf #0                (00 00 00 00: traps if run)
 *
 * SDT part (offset 32, probe_addr), called by usdt_probe_args (blr) with
 * the arguments in place and sp at a frame record: a leaf function of its
 * own (CFA = sp, return address in x30), so a tracer stopped at the site
 * walks into the caller's frames through x29 or x30:
 *  32  bti c
 *  36  nop                   the uprobe site of the SDT note: arguments 1-8
 *                            in x0..x7, the 9th on at [sp, 16], [sp, 24], ...
 *                            (the frame record {x29, x30} is at [sp]). A
 *                            4-byte nop: the instruction a uprobe replaces
 *                            with its breakpoint (brk), and emulates or
 *                            steps out of line.
 *  40  ret
 *  44  udf #0
 *
 * No DTrace sites: the DOF backend is x86 only (usdt_enable.c refuses
 * USDT_BACKEND=dof here).
 */
        .text

        .globl  usdt_stub_template
        .hidden usdt_stub_template
        .globl  usdt_stub_template_end
        .hidden usdt_stub_template_end
        .p2align 4
usdt_stub_template:
        hint    #34                     /* bti c */
        .inst   0x90000000              /* adrp x0, 0: page distance patched */
        .inst   0x79400000              /* ldrh w0, [x0]: page offset patched */
        cmp     w0, #0
        cset    w0, ne
        ret
        .hword  0                       /* the zero semaphore (offset 24) */
        .hword  0
        udf     #0
        /* offset 32: probe_addr */
        hint    #34                     /* bti c: usdt_probe_args calls here */
        nop                             /* offset 36: the SDT site */
        ret
        udf     #0
usdt_stub_template_end:

/*
 * usdt_tracepoint_noop: where a withdrawn handle's probe_addr points. Same
 * entry convention as a stub's SDT part: called, returns.
 */
        .globl  usdt_tracepoint_noop
        .hidden usdt_tracepoint_noop
        .type   usdt_tracepoint_noop, %function
        .p2align 4
usdt_tracepoint_noop:
        .cfi_startproc
        hint    #34                     /* bti c */
        ret
        .cfi_endproc
        .size   usdt_tracepoint_noop, .-usdt_tracepoint_noop

/*
 * void usdt_probe_args(void *probe_addr, size_t argc, void **argv, int dtrace)
 *
 * Puts argv[0..argc) where a compiled-in probe's arguments would be at its
 * site (x0..x7, then the stack), calls the stub's SDT part and returns.
 * dtrace is ignored: there is no DTrace part here (it is never non-zero,
 * since DOF is refused).
 * The stack at the site, from sp up:
 *
 *   [sp]       the site's frame record: the top record's address, and
 *              the return address into this function (label 4), so a
 *              frame-pointer walk from the site sees usdt_probe_args and
 *              then its callers
 *   [sp, 16]   argv[8], argv[9], ... (rounded up to 16 bytes)
 *   top record this function's usual frame record: the caller's x29 and
 *              the (signed) return address
 *
 * and x29 = sp, so at the site x29 points at a frame record exactly as in a
 * frame-pointer function. Uses only caller-saved registers (x0-x17);
 * x19-x28, x29, x30, sp and d8-d15 are as they were on return. Reads no
 * argv entry at or past argc. The unwind rules (CFI) hold at every
 * instruction: CFA = x29 + 16 while x29 is the top record, [x29] + 16 while
 * it is the site's record.
 */
        .globl  usdt_probe_args
        .hidden usdt_probe_args
        .type   usdt_probe_args, %function
        .p2align 4
usdt_probe_args:
        .cfi_startproc
        hint    #34                     /* bti c: a veneer or PLT may branch here */
        hint    #25                     /* paciasp: sign x30 (with sp) */
        .cfi_negate_ra_state
        stp     x29, x30, [sp, #-16]!   /* the top frame record */
        .cfi_def_cfa_offset 16
        .cfi_offset x29, -16
        .cfi_offset x30, -8
        mov     x29, sp
        .cfi_def_cfa_register x29
        mov     x16, x0                 /* the stub's SDT part */
        mov     x15, x1                 /* argc */
        mov     x17, x2                 /* argv */
        subs    x9, x15, #8             /* arguments that go on the stack */
        csel    x9, xzr, x9, ls         /* none when argc <= 8 */
        add     x10, x9, #1
        and     x10, x10, #-2           /* round up to an even count ... */
        sub     sp, sp, x10, lsl #3     /* ... so sp stays 16-byte aligned */
        sub     sp, sp, #16             /* room for the site's frame record */
        cbz     x9, 2f
        add     x11, x17, #64           /* &argv[8] */
        add     x13, sp, #16            /* where it goes */
1:      sub     x9, x9, #1              /* copy argv[8 + i] to [sp, 16 + 8i] */
        ldr     x12, [x11, x9, lsl #3]
        str     x12, [x13, x9, lsl #3]
        cbnz    x9, 1b
2:      adr     x9, 4f                  /* the site's frame record: this frame */
        stp     x29, x9, [sp]
        mov     x29, sp
        /* CFA = [x29] + 16 (DW_CFA_def_cfa_expression: DW_OP_breg29 0,
         * DW_OP_deref, DW_OP_plus_uconst 16) */
        .cfi_escape 0x0f, 0x05, 0x8d, 0x00, 0x06, 0x23, 0x10
        cbz     x15, 3f                 /* registers, as far as argc goes */
        ldr     x0, [x17, #0]
        cmp     x15, #2
        b.lo    3f
        ldr     x1, [x17, #8]
        cmp     x15, #3
        b.lo    3f
        ldr     x2, [x17, #16]
        cmp     x15, #4
        b.lo    3f
        ldr     x3, [x17, #24]
        cmp     x15, #5
        b.lo    3f
        ldr     x4, [x17, #32]
        cmp     x15, #6
        b.lo    3f
        ldr     x5, [x17, #40]
        cmp     x15, #7
        b.lo    3f
        ldr     x6, [x17, #48]
        cmp     x15, #8
        b.lo    3f
        ldr     x7, [x17, #56]
3:      blr     x16                     /* into the stub */
4:      ldr     x29, [x29]              /* back here; the top frame record again */
        .cfi_def_cfa x29, 16
        mov     sp, x29
        .cfi_def_cfa_register sp
        ldp     x29, x30, [sp], #16
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30
        hint    #29                     /* autiasp: check x30 */
        .cfi_negate_ra_state
        ret
        .cfi_endproc
        .size   usdt_probe_args, .-usdt_probe_args

/*
 * GNU property note: this file keeps BTI (landing pads at every indirect
 * call target) and PAC (signed return addresses).
 */
        .section .note.gnu.property, "a", %note
        .p2align 3
        .long   4                       /* n_namesz */
        .long   16                      /* n_descsz */
        .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
        .long   4                       /* pr_datasz */
        .long   3                       /* BTI | PAC */
        .long   0                       /* pad to 8 */

        .section .note.GNU-stack, "", %progbits
