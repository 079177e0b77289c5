/*
 * hello: one provider, one probe, fired once a second with an integer and
 * a string. Run it, then trace it from another terminal with the bpftrace
 * command it prints.
 *
 *   cc -I.. hello.c ../libusdt.a -o hello && ./hello 10
 */
#include "usdt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
        int seconds = argc > 1 ? atoi(argv[1]) : 10, i;
        const char *types[] = { "int", "char *" };
        usdt_provider_t *provider = usdt_create_provider("hello", "example");
        usdt_probedef_t *tick = usdt_create_probe("main", "tick", 2, types);

        if (provider == NULL || tick == NULL) {
                fprintf(stderr, "hello: %s\n", usdt_errstr(NULL));
                return 1;
        }
        if (usdt_provider_add_probe(provider, tick) != 0 ||
            usdt_provider_enable(provider) != 0) {
                fprintf(stderr, "hello: %s\n", usdt_errstr(provider));
                return 1;
        }
        printf("hello: pid %d fires hello:tick once a second for %d seconds; trace it with\n"
               "  sudo bpftrace -p %d -e 'usdt::hello:tick { printf(\"%%d %%s\\n\", arg0, str(arg1)); }'\n",
               (int)getpid(), seconds, (int)getpid());
        fflush(stdout);
        for (i = 1; i <= seconds; i++) {
                if (usdt_is_enabled(tick->probe)) {
                        char message[32];
                        void *args[2];

                        snprintf(message, sizeof(message), "tick number %d", i);
                        args[0] = (void *)(intptr_t)i;
                        args[1] = message;
                        usdt_fire_probe(tick->probe, 2, args);
                }
                sleep(1);
        }
        usdt_probe_release(tick);
        usdt_provider_free(provider);
        return 0;
}
