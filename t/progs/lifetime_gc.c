/*
 * Providers a garbage-collected binding leaves behind (t/71_lifetime.t).
 *
 * A binding whose collector has not run yet creates a provider, adds a
 * probe, enables and disables it, and never frees the provider nor
 * releases the probedef. Under a limit of 256 descriptors, CYCLES such
 * cycles (each provider a new name, "gcN") must all succeed: what the
 * library holds for disabled providers is bounded. Measured: the time of
 * the first 1000 cycles and of the last 1000, and the number of lines of
 * /proc/self/maps after cycle 1000 and at the end.
 *
 * The time of 1000 cycles is taken as 20 times that of the fastest of
 * their twenty 50-cycle slices: other processes on the machine stretch
 * some slices, while a cost that grows with the number of providers
 * stretches every slice of the last 1000. The plain totals are printed
 * too.
 *
 * usage: lifetime_gc CYCLES
 * prints "gc ok cycles N first1000_ms A last1000_ms B total_ms C D maps E F"
 * (A, B: from the fastest slices; C, D: the plain totals), or
 * "gc failed at cycle N: ERROR"; alarm(120) watchdog.
 */
#define _GNU_SOURCE
#include "usdt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 1000
#define SLICE 50

static volatile int cycle_no;

static void
on_alarm(int sig)
{
        char msg[64];
        int n;

        (void)sig;
        n = snprintf(msg, sizeof(msg), "gc timeout at cycle %d\n", cycle_no);
        if (write(1, msg, (size_t)n) < 0)
                _exit(125);
        _exit(124);
}

static double
now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
maps_lines(void)
{
        FILE *maps = fopen("/proc/self/maps", "r");
        int c, lines = 0;

        if (maps == NULL)
                return -1;
        while ((c = getc(maps)) != EOF)
                if (c == '\n')
                        lines++;
        fclose(maps);
        return lines;
}

int
main(int argc, char **argv)
{
        const char *types[2] = { "int", "char *" };
        struct rlimit rl;
        double t0 = 0, slice_t0 = 0, slice_best = 0, total[2] = { 0, 0 }, best[2] = { 0, 0 };
        int cycles, i, maps_first = 0, maps_end;

        if (argc != 2 || (cycles = atoi(argv[1])) < 2 * WINDOW || cycles % SLICE != 0) {
                fprintf(stderr, "usage: %s CYCLES (at least %d, a multiple of %d)\n",
                        argv[0], 2 * WINDOW, SLICE);
                return 2;
        }
        setvbuf(stdout, NULL, _IONBF, 0);
        signal(SIGALRM, on_alarm);
        alarm(120);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return 1;
        rl.rlim_cur = 256;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
                printf("gc setrlimit failed\n");
                return 1;
        }
        for (i = 0; i < cycles; i++) {
                usdt_provider_t *p;
                usdt_probedef_t *pd;
                char name[32];

                int in_window = i < WINDOW ? 0 : i >= cycles - WINDOW ? 1 : -1;

                cycle_no = i;
                if (i == 0 || i == cycles - WINDOW) {
                        t0 = now_ms();
                        slice_best = 1e300;
                }
                if (in_window >= 0 && i % SLICE == 0)
                        slice_t0 = now_ms();
                snprintf(name, sizeof(name), "gc%d", i);
                p = usdt_create_provider(name, "lifetime");
                pd = usdt_create_probe("fn", "collected", 2, types);
                if (p == NULL || pd == NULL) {
                        printf("gc failed at cycle %d: %s\n", i, usdt_errstr(NULL));
                        return 1;
                }
                if (usdt_provider_add_probe(p, pd) != 0 || usdt_provider_enable(p) != 0 ||
                    usdt_provider_disable(p) != 0) {
                        printf("gc failed at cycle %d: %s\n", i, usdt_errstr(p));
                        return 1;
                }
                /* p and pd are dropped here, as by a binding whose
                 * collector has not run */
                if (in_window >= 0 && i % SLICE == SLICE - 1) {
                        double slice_ms = now_ms() - slice_t0;
                        if (slice_ms < slice_best)
                                slice_best = slice_ms;
                }
                if (i == WINDOW - 1 || i == cycles - 1) {
                        total[in_window] = now_ms() - t0;
                        best[in_window] = slice_best * (WINDOW / SLICE);
                }
                if (i == WINDOW - 1)
                        maps_first = maps_lines();
        }
        maps_end = maps_lines();
        printf("gc ok cycles %d first%d_ms %.1f last%d_ms %.1f total_ms %.1f %.1f maps %d %d\n",
               cycles, WINDOW, best[0], WINDOW, best[1], total[0], total[1],
               maps_first, maps_end);
        return 0;
}
