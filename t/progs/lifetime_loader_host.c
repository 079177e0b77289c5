/*
 * The dynamic loader and the library's lock (t/71_lifetime.t).
 *
 * Thread 1 loads and unloads a plugin (lifetime_loader_plugin.c) LOADS
 * times: dlopen runs the plugin's constructor, dlclose its destructor,
 * each with the loader's lock held, and each calls into libusdt. Thread 2
 * at the same time creates, enables, disables and frees a provider of its
 * own CYCLES times. The library must never wait for the loader's lock
 * while it holds its own. Host and plugin both link the shared
 * libusdt.so.1, so they share one library and one lock.
 *
 * usage: lifetime_loader_host PLUGIN LOADS CYCLES
 * prints "loader ok", or what failed; a deadlock becomes "deadlock" and
 * exit code 124 (alarm(60)).
 */
#define _GNU_SOURCE
#include "usdt.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *plugin;
static int loads, cycles;

static void
on_alarm(int sig)
{
        (void)sig;
        if (write(1, "deadlock\n", 9) < 0)
                _exit(125);
        _exit(124);
}

static void *
loader(void *arg)
{
        int i;

        (void)arg;
        for (i = 0; i < loads; i++) {
                void *h = dlopen(plugin, RTLD_NOW);
                if (h == NULL)
                        return (void *)"dlopen failed";
                if (dlclose(h) != 0)
                        return (void *)"dlclose failed";
        }
        return NULL;
}

static void *
controller(void *arg)
{
        const char *types[1] = { "int" };
        int i;

        (void)arg;
        for (i = 0; i < cycles; i++) {
                usdt_provider_t *p = usdt_create_provider("lt_host", "host");
                usdt_probedef_t *pd = usdt_create_probe("fn", "cycle", 1, types);
                if (p == NULL || pd == NULL || usdt_provider_add_probe(p, pd) != 0 ||
                    usdt_provider_enable(p) != 0 || usdt_provider_disable(p) != 0)
                        return (void *)"a host provider failed";
                usdt_probe_release(pd);
                usdt_provider_free(p);
        }
        return NULL;
}

int
main(int argc, char **argv)
{
        pthread_t t1, t2;
        void *r1, *r2;

        if (argc != 4) {
                fprintf(stderr, "usage: %s PLUGIN LOADS CYCLES\n", argv[0]);
                return 2;
        }
        plugin = argv[1];
        loads = atoi(argv[2]);
        cycles = atoi(argv[3]);
        setvbuf(stdout, NULL, _IONBF, 0);
        signal(SIGALRM, on_alarm);
        alarm(60);
        if (pthread_create(&t1, NULL, loader, NULL) != 0 ||
            pthread_create(&t2, NULL, controller, NULL) != 0) {
                printf("loader pthread_create failed\n");
                return 1;
        }
        pthread_join(t1, &r1);
        pthread_join(t2, &r2);
        if (r1 != NULL || r2 != NULL) {
                printf("loader %s\n", r1 != NULL ? (char *)r1 : (char *)r2);
                return 1;
        }
        printf("loader ok\n");
        return 0;
}
