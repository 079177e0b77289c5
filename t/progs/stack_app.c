/*
 * For t/55_stacks.t: a program built with frame pointers and -g whose
 * main calls app_loop, which calls app_handler, which fires probe stk:hit
 * (unguarded, as bindings do). Scripted on stdin, one answer per line:
 *   pid / path / sem (usdt_is_enabled) / fire (-> "fired") / quit
 */
#include "usdt.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static usdt_probedef_t *hit;

__attribute__((noinline)) static void
app_handler(long n)
{
        void *args[1] = { (void *)(intptr_t)n };

        usdt_fire_probe(hit->probe, 1, args);
        __asm__ volatile("" ::: "memory");      /* not a tail call */
}

__attribute__((noinline)) static int
app_loop(usdt_provider_t *provider)
{
        char line[64];
        long n = 0;

        while (fgets(line, sizeof(line), stdin) != NULL) {
                if (strncmp(line, "fire", 4) == 0) {
                        app_handler(++n);
                        printf("fired\n");
                } else if (strncmp(line, "sem", 3) == 0) {
                        printf("sem %d\n", usdt_is_enabled(hit->probe));
                } else if (strncmp(line, "pid", 3) == 0) {
                        printf("pid %d\n", (int)getpid());
                } else if (strncmp(line, "path", 4) == 0) {
                        printf("path %s\n", usdt_provider_path(provider));
                } else if (strncmp(line, "quit", 4) == 0) {
                        break;
                }
        }
        return 0;
}

int
main(void)
{
        const char *types[1] = { "int" };
        usdt_provider_t *provider = usdt_create_provider("stk", "app");
        int rc;

        setvbuf(stdout, NULL, _IOLBF, 0);
        hit = usdt_create_probe("handler", "hit", 1, types);
        if (provider == NULL || hit == NULL || usdt_provider_add_probe(provider, hit) != 0 ||
            usdt_provider_enable(provider) != 0) {
                fprintf(stderr, "stack_app: %s\n", provider ? usdt_errstr(provider) : "create");
                return 1;
        }
        rc = app_loop(provider);
        usdt_provider_free(provider);
        usdt_probe_release(hit);
        return rc;
}
