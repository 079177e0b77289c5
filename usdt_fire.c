/*
 * The hot path: usdt_is_enabled and usdt_fire_probe, and the fence that
 * tells the object lifecycle when no reader can still hold a pointer into
 * a retired object.
 *
 * Two kinds of reader, both exact:
 * - Fast (x86_64 with rseq; usdt_tracepoints_<arch>.s): the two loads of
 *   an untraced probe (handle->semaphore, then the semaphore) sit in a
 *   restartable sequence. usdt_fire_fence() makes membarrier restart any
 *   thread inside one, so after it no fast reader holds an old pointer.
 * - Counted (here, in C): everything else (a traced fire, a DTrace
 *   is-enabled question, no rseq) counts itself in handle->inflight before
 *   it reads where to go and uncounts after it came back. Both sides use
 *   sequentially consistent atomics: either the reader sees the handle's
 *   new targets, or the lifecycle sees the reader in flight.
 * So an object is unmapped only when, after its handles were pointed
 * away, the fence returned and none of its handles shows a reader in
 * flight (usdt_object.c). No time passes into it.
 *
 * usdt_rseq_tls is set once, before the first handle is ever pointed into
 * an object, and only goes back to 0 in a forked child (one thread, no
 * reader) whose fence cannot be made to work.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_membarrier
#if defined(__x86_64__)
#define SYS_membarrier 324
#elif defined(__i386__)
#define SYS_membarrier 375
#elif defined(__aarch64__)
#define SYS_membarrier 283
#endif
#endif
#define MEMBARRIER_QUERY                        0
#define MEMBARRIER_PRIVATE_EXPEDITED_RSEQ       (1 << 7)
#define MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_RSEQ (1 << 8)

/* glibc 2.35+: where this thread's rseq area is, and whether there is one.
 * Weak: absent on older glibc and on musl, which then use counted readers. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* The rseq area's offset from the thread pointer, or 0: no fast readers.
 * (glibc never puts it at 0: the thread control block starts there.) */
long usdt_rseq_tls;

#ifdef USDT_RSEQ_FASTPATH
_Static_assert(offsetof(struct usdt_handle, semaphore) == 16,
               "usdt_tracepoints_x86_64.s reads handle->semaphore at 16");
_Static_assert(offsetof(struct usdt_handle, call_isenabled) == 24,
               "usdt_tracepoints_x86_64.s reads handle->call_isenabled at 24");
#endif

static long
membarrier(int cmd)
{
#ifdef SYS_membarrier
        return syscall(SYS_membarrier, cmd, 0, 0);
#else
        (void)cmd;
        errno = ENOSYS;
        return -1;
#endif
}

/*
 * Decide once whether readers may take the fast path: there must be an
 * rseq area (and the environment must not have disabled it:
 * GLIBC_TUNABLES=glibc.pthread.rseq=0 makes __rseq_size 0) and a
 * membarrier that restarts rseq sections (Linux 5.10+). Under the lock,
 * before any handle points into an object.
 */
void
usdt_fire_init(void)
{
        static int decided;

        if (decided)
                return;
        decided = 1;
#ifdef USDT_RSEQ_FASTPATH
        long cmds;

        if (&__rseq_size == NULL || &__rseq_offset == NULL || __rseq_size < 16 ||
            __rseq_offset == 0)
                return;
        cmds = membarrier(MEMBARRIER_QUERY);
        if (cmds < 0 || !(cmds & MEMBARRIER_PRIVATE_EXPEDITED_RSEQ) ||
            membarrier(MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_RSEQ) != 0)
                return;
        usdt_rseq_tls = (long)__rseq_offset;
#endif
}

/*
 * Returns 0 once no fast reader can hold a pointer read before this call;
 * -1 if that cannot be proved (then the caller must keep the memory).
 */
int
usdt_fire_fence(void)
{
        if (usdt_rseq_tls == 0)
                return 0;               /* every reader is counted */
        if (membarrier(MEMBARRIER_PRIVATE_EXPEDITED_RSEQ) == 0)
                return 0;
        /* A process that lost its registration (should not happen: it is
         * kept across fork) registers again. */
        if (errno == EPERM &&
            membarrier(MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0 &&
            membarrier(MEMBARRIER_PRIVATE_EXPEDITED_RSEQ) == 0)
                return 0;
        return -1;
}

/*
 * In a forked child (one thread, inside the fork call, so no reader):
 * make sure the fence works there, or fall back to counted readers.
 */
void
usdt_fire_atfork_child(void)
{
        if (usdt_rseq_tls != 0 && usdt_fire_fence() != 0)
                usdt_rseq_tls = 0;
}

/* --- Counted readers ---------------------------------------------------- */

static void
reader_enter(struct usdt_handle *h)
{
        __atomic_add_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
}

static void
reader_leave(struct usdt_handle *h)
{
        __atomic_sub_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
}

/* Whether a counted reader sees the probe traced: the semaphore, else the
 * DTrace is-enabled site when DOF is published. */
static int
traced(struct usdt_handle *h)
{
        const volatile uint16_t *semaphore;
        int (*ask)(void);

        semaphore = __atomic_load_n(&h->semaphore, __ATOMIC_SEQ_CST);
        if (*semaphore != 0)
                return 1;
        if (!__atomic_load_n(&h->call_isenabled, __ATOMIC_SEQ_CST))
                return 0;
        ask = __atomic_load_n(&h->pub.isenabled_addr, __ATOMIC_SEQ_CST);
        return ask() != 0;
}

int
usdt_is_enabled_slow(usdt_probe_t *probe)
{
        struct usdt_handle *h = (struct usdt_handle *)probe;
        int enabled;

        if (h == NULL)
                return 0;
        reader_enter(h);
        enabled = traced(h);
        reader_leave(h);
        return enabled;
}

void
usdt_fire_probe_slow(usdt_probe_t *probe, size_t argc, void **argv)
{
        struct usdt_handle *h = (struct usdt_handle *)probe;
        int dtrace;

        if (h == NULL)
                return;
        if (argv == NULL)
                argc = 0;
        if (argc > USDT_ARG_MAX)
                argc = USDT_ARG_MAX;
        reader_enter(h);
        /* Untraced with counted readers: as cheap as we can, nothing more.
         * DTrace traces the probe site itself, so a DOF stub is entered. */
        dtrace = __atomic_load_n(&h->call_isenabled, __ATOMIC_SEQ_CST);
        if (dtrace || *__atomic_load_n(&h->semaphore, __ATOMIC_SEQ_CST) != 0)
                usdt_probe_args(__atomic_load_n(&h->pub.probe_addr, __ATOMIC_SEQ_CST),
                                argc, argv, dtrace);
        reader_leave(h);
}

#ifndef USDT_RSEQ_FASTPATH
/* No fast path on this architecture: every reader is counted. */
USDT_EXPORT int
usdt_is_enabled(usdt_probe_t *probe)
{
        return usdt_is_enabled_slow(probe);
}

USDT_EXPORT void
usdt_fire_probe(usdt_probe_t *probe, size_t argc, void **argv)
{
        usdt_fire_probe_slow(probe, argc, argv);
}
#endif
