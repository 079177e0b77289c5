/*
 * A reader stalled inside usdt_is_enabled or usdt_fire_probe while the
 * provider is freed and its object reclaimed (t/71_lifetime.t).
 *
 * The reader thread holds a probedef that its creator never releases, so
 * the probedef outlives its provider and the handle the reader copied
 * while the probe was enabled (h = pd->probe) stays valid memory: after
 * the free it must read 0 and fire nothing. Each round the main thread
 * enables a new provider, lets the reader pick up its handle, stalls the
 * reader with a signal whose handler busy-waits STALL_MS at a random
 * moment, frees the provider while the reader is stalled, sleeps 25 ms
 * (longer than a 20 ms grace period, which is what the library once
 * relied on) and makes another control call, where a library reclaims
 * retired objects. The reader then resumes between whatever two loads it
 * was stalled, before anything new is mapped: a stale pointer it holds
 * must still point at memory it may read.
 *
 * usage: lifetime_stall enabled|fire ROUNDS PROVIDER
 * prints "stall ok rounds N", or what went wrong; alarm(60) watchdog.
 */
#define _GNU_SOURCE
#include "usdt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STALL_MS 40

static int fire_mode;                           /* 0: usdt_is_enabled */
static usdt_probedef_t *current;                /* the reader's probedef */
static int stop;
static unsigned long picked;                    /* rounds whose handle the reader took */
static unsigned long bad_value;                 /* usdt_is_enabled returned not 0 */
static volatile int stalled;                    /* 1: in the handler, 2: done */
static volatile int round_no;

static long
now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* The stall: busy-wait in the reader, between two of its loads. */
static void
on_usr1(int sig)
{
        long until = now_ns() + STALL_MS * 1000000L;

        (void)sig;
        __atomic_store_n(&stalled, 1, __ATOMIC_SEQ_CST);
        while (now_ns() < until)
                ;
        __atomic_store_n(&stalled, 2, __ATOMIC_SEQ_CST);
}

static void
on_alarm(int sig)
{
        char msg[80];
        int n;

        (void)sig;
        n = snprintf(msg, sizeof(msg), "stall timeout in round %d\n", round_no);
        if (write(1, msg, (size_t)n) < 0)
                _exit(125);
        _exit(124);
}

static void *
reader(void *arg)
{
        usdt_probedef_t *mine = NULL;
        usdt_probe_t *h = NULL;
        void *args[2] = { (void *)(intptr_t)2, "stalled" };
        int i;

        (void)arg;
        while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
                usdt_probedef_t *pd = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
                if (pd != mine) {
                        /* taken while enabled: main publishes pd only then */
                        mine = pd;
                        h = pd->probe;
                        __atomic_add_fetch(&picked, 1, __ATOMIC_SEQ_CST);
                }
                if (h == NULL)
                        continue;
                if (fire_mode) {
                        for (i = 0; i < 1024; i++)
                                usdt_fire_probe(h, 2, args);
                } else {
                        for (i = 0; i < 1024; i++)
                                if (usdt_is_enabled(h) != 0)
                                        __atomic_add_fetch(&bad_value, 1, __ATOMIC_RELAXED);
                }
        }
        return NULL;
}

/* A provider with one probe, enabled; NULL after printing why not. */
static usdt_provider_t *
enabled_provider(const char *name, usdt_probedef_t **pdp)
{
        const char *types[2] = { "int", "char *" };
        usdt_provider_t *p = usdt_create_provider(name, "lifetime");
        usdt_probedef_t *pd = usdt_create_probe("fn", "stall", 2, types);

        if (p == NULL || pd == NULL) {
                printf("stall create failed: %s\n", usdt_errstr(NULL));
                return NULL;
        }
        if (usdt_provider_add_probe(p, pd) != 0 || usdt_provider_enable(p) != 0) {
                printf("stall enable failed: %s\n", usdt_errstr(p));
                return NULL;
        }
        *pdp = pd;
        return p;
}

/* Spin until cond() or 5 seconds passed; 0 on timeout. */
static int
wait_until(int (*cond)(void))
{
        long deadline = now_ns() + 5000000000L;

        while (!cond())
                if (now_ns() > deadline)
                        return 0;
        return 1;
}

static unsigned long want_picked;
static int reader_took_it(void) { return __atomic_load_n(&picked, __ATOMIC_SEQ_CST) >= want_picked; }
static int reader_stalled(void) { return __atomic_load_n(&stalled, __ATOMIC_SEQ_CST) >= 1; }
static int reader_resumed(void) { return __atomic_load_n(&stalled, __ATOMIC_SEQ_CST) == 2; }

int
main(int argc, char **argv)
{
        struct sigaction sa;
        struct timespec pause_25ms = { 0, 25 * 1000000L };
        pthread_t thread;
        char other[64];
        int rounds, r;

        if (argc != 4 || (strcmp(argv[1], "enabled") != 0 && strcmp(argv[1], "fire") != 0)) {
                fprintf(stderr, "usage: %s enabled|fire ROUNDS PROVIDER\n", argv[0]);
                return 2;
        }
        fire_mode = strcmp(argv[1], "fire") == 0;
        rounds = atoi(argv[2]);
        setvbuf(stdout, NULL, _IONBF, 0);
        signal(SIGALRM, on_alarm);
        alarm(60);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        srand((unsigned)getpid());
        snprintf(other, sizeof(other), "%s_other", argv[3]);

        if (pthread_create(&thread, NULL, reader, NULL) != 0) {
                printf("stall pthread_create failed\n");
                return 1;
        }
        for (r = 0; r < rounds; r++) {
                usdt_probedef_t *pd, *pd2;
                usdt_provider_t *p, *p2;
                long until;

                round_no = r;
                p = enabled_provider(argv[3], &pd);
                if (p == NULL)
                        return 1;
                /* the reader copies pd->probe now, while it is enabled */
                want_picked = (unsigned long)r + 1;
                __atomic_store_n(&current, pd, __ATOMIC_RELEASE);
                if (!wait_until(reader_took_it)) {
                        printf("stall reader did not take the handle in round %d\n", r);
                        return 1;
                }
                /* let it use the handle for a random 0..500 us, then stall it */
                until = now_ns() + rand() % 500000;
                while (now_ns() < until)
                        ;
                __atomic_store_n(&stalled, 0, __ATOMIC_SEQ_CST);
                pthread_kill(thread, SIGUSR1);
                if (!wait_until(reader_stalled)) {
                        printf("stall signal not delivered in round %d\n", r);
                        return 1;
                }
                usdt_provider_free(p);          /* pd lives on: the reader holds it */
                nanosleep(&pause_25ms, NULL);
                p2 = enabled_provider(other, &pd2);     /* another control call */
                if (p2 == NULL)
                        return 1;
                usdt_probe_release(pd2);
                usdt_provider_free(p2);
                /* nothing new is mapped until the reader has gone on: it
                 * must not find a later object where the old one was */
                if (!wait_until(reader_resumed)) {
                        printf("stall reader did not resume in round %d\n", r);
                        return 1;
                }
        }
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        pthread_join(thread, NULL);
        if (bad_value != 0) {
                printf("stall usdt_is_enabled returned non-zero %lu times\n", bad_value);
                return 1;
        }
        printf("stall ok rounds %d\n", rounds);
        return 0;
}
