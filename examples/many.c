/*
 * many: providers made and destroyed while the program runs. For each of
 * N rounds (default 100) it creates provider "many<i>", adds three probes,
 * enables it, fires each probe once, disables it, frees it and releases
 * the probes: the whole lifecycle, nothing kept. Exits 0 when every step
 * worked, else prints the library's error and exits 1.
 *
 *   cc -Wall -Wextra -I.. many.c ../libusdt.a -o many && ./many 1000
 */
#include "usdt.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPROBES 3

/* One round: the lifecycle of provider many<round>. Returns 0 or -1. */
static int
one_round(int round)
{
        static const char *const names[NPROBES] = { "start", "step", "done" };
        const char *types[] = { "int", "char *" };
        usdt_probedef_t *probes[NPROBES] = { NULL, NULL, NULL };
        usdt_provider_t *provider;
        char provider_name[32];
        int i, rc = -1;

        snprintf(provider_name, sizeof(provider_name), "many%d", round);
        provider = usdt_create_provider(provider_name, "example");
        if (provider == NULL) {
                fprintf(stderr, "many: %s\n", usdt_errstr(NULL));
                return -1;
        }
        for (i = 0; i < NPROBES; i++) {
                probes[i] = usdt_create_probe("one_round", names[i], 2, types);
                if (probes[i] == NULL) {
                        fprintf(stderr, "many: usdt_create_probe %s: %s\n",
                                names[i], strerror(errno));
                        goto out;
                }
                if (usdt_provider_add_probe(provider, probes[i]) != 0) {
                        /* Not added: drop the reference kept for the provider. */
                        usdt_probe_release(probes[i]);
                        goto fail;
                }
        }
        if (usdt_provider_enable(provider) != 0)
                goto fail;
        for (i = 0; i < NPROBES; i++) {
                void *args[2];

                args[0] = (void *)(intptr_t)round;
                args[1] = provider_name;
                usdt_fire_probe(probes[i]->probe, 2, args);
        }
        if (usdt_provider_disable(provider) != 0)
                goto fail;
        rc = 0;
        goto out;
fail:
        fprintf(stderr, "many: %s: %s\n", provider_name, usdt_errstr(provider));
out:
        /* Frees the provider's references, then ours: the probes go too. */
        usdt_provider_free(provider);
        for (i = 0; i < NPROBES; i++)
                usdt_probe_release(probes[i]);
        return rc;
}

int
main(int argc, char **argv)
{
        int rounds = argc > 1 ? atoi(argv[1]) : 100, i;

        for (i = 0; i < rounds; i++)
                if (one_round(i) != 0)
                        return 1;
        printf("many: %d providers created, enabled, fired and freed\n", rounds);
        return 0;
}
