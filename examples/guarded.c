/*
 * guarded: pay for a probe's arguments only while someone traces it. The
 * loop runs for N seconds (default 5), 100 iterations a second; each
 * iteration asks usdt_is_enabled and, only when it says 1, formats a
 * JSON-ish string with snprintf and fires guarded:request with it. Run it,
 * then trace it from another terminal with the bpftrace command it prints;
 * the last line says how many times the argument was built.
 *
 *   cc -Wall -Wextra -I.. guarded.c ../libusdt.a -o guarded && ./guarded 30
 */
#define _POSIX_C_SOURCE 200809L        /* clock_gettime, nanosleep */
#include "usdt.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds since start, on the monotonic clock. */
static long
elapsed_ms(const struct timespec *start)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - start->tv_sec) * 1000L +
               (now.tv_nsec - start->tv_nsec) / 1000000L;
}

int
main(int argc, char **argv)
{
        int seconds = argc > 1 ? atoi(argv[1]) : 5;
        const char *types[] = { "int", "char *" };
        const struct timespec pause = { 0, 10 * 1000 * 1000 };  /* 10 ms */
        struct timespec start;
        long iterations = 0, built = 0, now_ms;
        usdt_provider_t *provider = usdt_create_provider("guarded", "example");
        usdt_probedef_t *request = usdt_create_probe("main", "request", 2, types);

        if (provider == NULL) {
                fprintf(stderr, "guarded: %s\n", usdt_errstr(NULL));
                return 1;
        }
        if (request == NULL) {
                fprintf(stderr, "guarded: usdt_create_probe: %s\n", strerror(errno));
                return 1;
        }
        if (usdt_provider_add_probe(provider, request) != 0 ||
            usdt_provider_enable(provider) != 0) {
                fprintf(stderr, "guarded: %s\n", usdt_errstr(provider));
                return 1;
        }
        printf("guarded: pid %d fires guarded:request 100 times a second for %d second%s; trace it with\n"
               "  sudo bpftrace -p %d -e 'usdt::guarded:request { printf(\"%%d %%s\\n\", arg0, str(arg1)); }'\n",
               (int)getpid(), seconds, seconds == 1 ? "" : "s", (int)getpid());
        fflush(stdout);

        clock_gettime(CLOCK_MONOTONIC, &start);
        while ((now_ms = elapsed_ms(&start)) < seconds * 1000L) {
                iterations++;
                /* The guard: untraced, the snprintf below never runs. */
                if (usdt_is_enabled(request->probe)) {
                        char json[128];
                        void *args[2];

                        snprintf(json, sizeof(json),
                                 "{\"iteration\":%ld,\"elapsed_ms\":%ld,\"pid\":%d}",
                                 iterations, now_ms, (int)getpid());
                        args[0] = (void *)(intptr_t)iterations;
                        args[1] = json;
                        usdt_fire_probe(request->probe, 2, args);
                        built++;
                }
                nanosleep(&pause, NULL);
        }
        printf("guarded: %ld iterations, argument built and fired %ld times\n",
               iterations, built);

        usdt_provider_free(provider);
        usdt_probe_release(request);
        return 0;
}
