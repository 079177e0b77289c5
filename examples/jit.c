/*
 * jit: a toy JIT (x86_64) that puts a USDT probe site straight into the
 * code it generates, with the low-level API of usdt_jit(3). At run time it
 * emits one function,
 *
 *      long tick(long n, long square)
 *
 * whose code tests the semaphore of probe jitdemo:tick inline and, only
 * while a tracer is attached, passes through the probe site, where n and
 * square are still in %rdi and %rsi. It returns 1 when it passed the site,
 * 0 when it skipped it. The program calls tick(i, i * i) for i = 1..N
 * (default 8), once a second, says what each call did, and at the end how
 * many calls passed the site: exactly the fires a tracer saw. Run it, then
 * trace it from another terminal with the bpftrace command it prints.
 *
 *   cc -Wall -Wextra -I.. jit.c ../libusdt.a -o jit && ./jit 10
 */
#include "usdt.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)

/*
 * The function, as the JIT emits it. The probe site is a 5-byte nop: the
 * kernel can trace it without a trap (it becomes a call into the uprobe
 * trampoline while traced). That call writes 8 bytes below %rsp, so the
 * generated code keeps nothing there; a leaf function like this one that
 * uses no stack is fine.
 */
static const unsigned char tick_template[] = {
        0x31, 0xc0,                     /* 0: xor %eax,%eax     return 0 ... */
        0x66, 0x83, 0x3d,               /* 2: cmpw $0,SEM(%rip) the semaphore */
        0x00, 0x00, 0x00, 0x00,         /* 5:   disp32, patched below */
        0x00,                           /* 9:   imm8 0 */
        0x74, 0x07,                     /* 10: je 19            untraced: skip */
        0x0f, 0x1f, 0x44, 0x00, 0x00,   /* 12: nopl 0(%rax,%rax,1): THE SITE */
        0xff, 0xc0,                     /* 17: inc %eax         ... 1 if traced */
        0xc3,                           /* 19: ret */
};
#define TICK_SEM_DISP   5               /* where the disp32 goes */
#define TICK_SEM_END    10              /* %rip when the cmpw runs: its end */
#define TICK_SITE       12              /* the probe site */

/* Where tick's arguments are at the site: both signed 8-byte integers,
 * in the registers the System V ABI passed them in. */
#define TICK_ARGS       "-8@%rdi -8@%rsi"

typedef long (*tick_fn)(long n, long square);

/*
 * Emit tick at the start of the arena and publish its probe site. Returns
 * the function, or NULL after printing why. The order matters: write the
 * code, then declare the site, then publish (a published site's
 * instruction may never change).
 */
static tick_fn
emit_tick(usdt_jit_t *jit)
{
        unsigned char code[sizeof(tick_template)];
        unsigned char *fn = usdt_jit_code(jit, NULL);
        const volatile unsigned short *semaphore;
        int32_t displacement;

        semaphore = usdt_jit_semaphore(jit, "jitdemo", "tick");
        if (semaphore == NULL) {
                fprintf(stderr, "jit: %s\n", usdt_jit_errstr(jit));
                return NULL;
        }
        /* The semaphore lives in the same object as the arena, always
         * within reach of a 32-bit %rip-relative displacement. */
        memcpy(code, tick_template, sizeof(code));
        displacement = (int32_t)((intptr_t)semaphore - (intptr_t)(fn + TICK_SEM_END));
        memcpy(code + TICK_SEM_DISP, &displacement, sizeof(displacement));

        if (usdt_jit_write(jit, fn, code, sizeof(code)) != 0 ||
            usdt_jit_add_site(jit, "jitdemo", "tick", fn + TICK_SITE, TICK_ARGS) != 0 ||
            usdt_jit_publish(jit) != 0) {
                fprintf(stderr, "jit: %s\n", usdt_jit_errstr(jit));
                return NULL;
        }
        /* From an address in the arena to a function pointer: the usual
         * cast through void * that JITs make. */
        return (tick_fn)(void *)fn;
}

int
main(int argc, char **argv)
{
        int calls = argc > 1 ? atoi(argv[1]) : 8, passed = 0, i;
        usdt_jit_t *jit = usdt_jit_create("jitdemo", 4096);
        tick_fn tick;

        if (jit == NULL) {
                fprintf(stderr, "jit: usdt_jit_create: %s\n", strerror(errno));
                return 1;
        }
        tick = emit_tick(jit);
        if (tick == NULL) {
                usdt_jit_free(jit);
                return 1;
        }
        printf("jit: pid %d emitted tick at %p (object %s) and calls it %d time%s, "
               "once a second; trace it with\n"
               "  sudo bpftrace -p %d -e 'usdt::jitdemo:tick { printf(\"%%d %%d\\n\", arg0, arg1); }'\n",
               (int)getpid(), (void *)tick, usdt_jit_path(jit), calls, calls == 1 ? "" : "s",
               (int)getpid());
        fflush(stdout);

        for (i = 1; i <= calls; i++) {
                long traced = tick(i, (long)i * i);

                passed += (int)traced;
                printf("jit: tick(%d, %ld) %s\n", i, (long)i * i,
                       traced ? "passed the probe site (traced)" : "skipped the probe site");
                fflush(stdout);
                sleep(1);
        }
        printf("jit: %d calls, %d passed the probe site\n", calls, passed);

        /* Nothing may run tick from here on: its code is unmapped. */
        usdt_jit_free(jit);
        return 0;
}

#else /* not x86_64 */

int
main(void)
{
        printf("jit: this toy JIT emits x86_64 code; nothing to do here\n");
        return 0;
}

#endif
