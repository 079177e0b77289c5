/*
 * For t/71_lifetime.t: a fork while another thread is inside
 * usdt_provider_enable, loading the provider's object with the library
 * lock dropped. The child (where that thread does not exist) must still be
 * able to free, disable and enable that provider: before the fix it waited
 * forever for an enable that would never finish there.
 *
 * Rounds: a thread enables a provider of 5000 probes (several ms with the
 * lock dropped) while the main thread forks as fast as it can; each child
 * frees the provider under alarm(10) and exits 0. Prints
 * "forkenable ok rounds N children M" or what went wrong.
 */
#include "usdt.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static usdt_provider_t *provider;
static volatile int enabling, done;

static void *
enabler(void *arg)
{
        (void)arg;
        enabling = 1;
        if (usdt_provider_enable(provider) != 0) {
                printf("forkenable bad enable: %s\n", usdt_errstr(provider));
                exit(1);
        }
        done = 1;
        return NULL;
}

int
main(void)
{
        int round, children = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        alarm(120);
        for (round = 0; round < 20; round++) {
                pthread_t thread;
                char name[32];
                int i;

                provider = usdt_create_provider("forkenable", "mod");
                for (i = 0; i < 5000; i++) {
                        usdt_probedef_t *pd;
                        snprintf(name, sizeof(name), "p%d", i);
                        pd = usdt_create_probe("fn", name, 0, NULL);
                        if (pd == NULL || usdt_provider_add_probe(provider, pd) != 0)
                                return 1;
                        usdt_probe_release(pd);
                }
                enabling = done = 0;
                pthread_create(&thread, NULL, enabler, NULL);
                while (!enabling)
                        ;
                while (!done) {
                        int status;
                        pid_t child = fork();

                        if (child == 0) {
                                alarm(10);      /* a deadlock ends here */
                                usdt_provider_free(provider);
                                _exit(0);
                        }
                        children++;
                        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
                            WEXITSTATUS(status) != 0) {
                                printf("forkenable bad: a child forked during enable "
                                       "did not free the provider (status %d)\n", status);
                                return 1;
                        }
                }
                pthread_join(thread, NULL);
                usdt_provider_free(provider);
        }
        printf("forkenable ok rounds 20 children %d\n", children);
        return 0;
}
