/*
 * A child forked while another thread fires keeps no object of the
 * parent's once it frees them (t/71_lifetime.t).
 *
 * Thread A fires an enabled probe in a loop; the main thread forks
 * CHILDREN children while A fires. In a child only the forking thread
 * exists, so a fire that A had in flight at the fork never finishes
 * there. Each child frees the provider, releases the probedef, makes a
 * few more control calls (a throwaway provider created, enabled and
 * freed), and then looks in /proc/self/maps for the provider's object:
 * the memory file "libusdt:PROVIDER", shown as
 * "/memfd:libusdt:PROVIDER (deleted)". It exits 0 if that is gone, 1 if
 * it is still mapped.
 *
 * usage: lifetime_fork PROVIDER CHILDREN [wait]
 * With "wait" it reads a line ("go") from stdin before forking: the test
 * attaches bpftrace to the probe PROVIDER:tick first, so A's fires are
 * traced ones. Prints "fork ok children N kept 0", or how many children
 * kept the object ("kept K") or failed otherwise ("failed F").
 * alarm(60) watchdog in the parent, alarm(10) in each child.
 */
#define _GNU_SOURCE
#include "usdt.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static usdt_probe_t *handle;
static int stop;
static unsigned long fires;

static void
on_alarm(int sig)
{
        (void)sig;
        if (write(1, "fork timeout\n", 13) < 0)
                _exit(125);
        _exit(124);
}

static void *
firer(void *arg)
{
        void *args[2] = { (void *)(intptr_t)7, "in flight" };

        (void)arg;
        while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
                usdt_fire_probe(handle, 2, args);
                __atomic_add_fetch(&fires, 1, __ATOMIC_RELAXED);
        }
        return NULL;
}

/* Whether /proc/self/maps still shows the object named "libusdt:name". */
static int
still_mapped(const char *name)
{
        char line[4096], want[128];
        FILE *maps = fopen("/proc/self/maps", "r");
        int found = 0;

        if (maps == NULL)
                return -1;
        snprintf(want, sizeof(want), "/memfd:libusdt:%s (deleted)\n", name);
        while (fgets(line, sizeof(line), maps) != NULL) {
                size_t n = strlen(line), w = strlen(want);
                if (n >= w && strcmp(line + n - w, want) == 0 &&
                    (n == w || line[n - w - 1] == ' '))
                        found = 1;
        }
        fclose(maps);
        return found;
}

/* The child: free everything of the parent's, then look. */
static void
child(usdt_provider_t *p, usdt_probedef_t *pd, const char *name)
{
        const char *types[1] = { "int" };
        char other[64];
        int i, mapped;

        alarm(10);
        usdt_provider_free(p);
        usdt_probe_release(pd);
        snprintf(other, sizeof(other), "%s_tmp", name);
        for (i = 0; i < 3; i++) {
                usdt_provider_t *q = usdt_create_provider(other, "lifetime");
                usdt_probedef_t *qd = usdt_create_probe("fn", "tmp", 1, types);
                if (q == NULL || qd == NULL || usdt_provider_add_probe(q, qd) != 0 ||
                    usdt_provider_enable(q) != 0)
                        _exit(3);
                usdt_probe_release(qd);
                usdt_provider_free(q);
        }
        mapped = still_mapped(name);
        _exit(mapped == 0 ? 0 : mapped == 1 ? 1 : 2);
}

int
main(int argc, char **argv)
{
        const char *types[2] = { "int", "char *" };
        usdt_provider_t *p;
        usdt_probedef_t *pd;
        pthread_t thread;
        int children, kept = 0, failed = 0, i;
        char line[64];

        if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "wait") != 0)) {
                fprintf(stderr, "usage: %s PROVIDER CHILDREN [wait]\n", argv[0]);
                return 2;
        }
        children = atoi(argv[2]);
        setvbuf(stdout, NULL, _IONBF, 0);
        signal(SIGALRM, on_alarm);
        alarm(60);
        p = usdt_create_provider(argv[1], "lifetime");
        pd = usdt_create_probe("fn", "tick", 2, types);
        if (p == NULL || pd == NULL || usdt_provider_add_probe(p, pd) != 0 ||
            usdt_provider_enable(p) != 0) {
                printf("fork enable failed: %s\n", p ? usdt_errstr(p) : usdt_errstr(NULL));
                return 1;
        }
        handle = pd->probe;
        if (still_mapped(argv[1]) != 1) {
                printf("fork the object /memfd:libusdt:%s is not in /proc/self/maps\n", argv[1]);
                return 1;
        }
        if (argc == 4 && fgets(line, sizeof(line), stdin) == NULL) {
                printf("fork no go line\n");
                return 1;
        }
        if (pthread_create(&thread, NULL, firer, NULL) != 0) {
                printf("fork pthread_create failed\n");
                return 1;
        }
        for (i = 0; i < children; i++) {
                unsigned long before = __atomic_load_n(&fires, __ATOMIC_RELAXED);
                pid_t pid;
                int status;

                /* A is firing: it fired since the last fork */
                while (__atomic_load_n(&fires, __ATOMIC_RELAXED) < before + 1000)
                        ;
                pid = fork();
                if (pid < 0) {
                        printf("fork failed\n");
                        return 1;
                }
                if (pid == 0)
                        child(p, pd, argv[1]);
                if (waitpid(pid, &status, 0) != pid)
                        failed++;
                else if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
                        kept++;
                else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed++;
        }
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        pthread_join(thread, NULL);
        usdt_probe_release(pd);
        usdt_provider_free(p);
        printf("fork %s children %d kept %d", kept == 0 && failed == 0 ? "ok" : "bad",
               children, kept);
        if (failed != 0)
                printf(" failed %d", failed);
        printf("\n");
        /* when driven over stdin, stay until the test closes it */
        if (argc == 4)
                while (fgets(line, sizeof(line), stdin) != NULL)
                        ;
        return kept == 0 && failed == 0 ? 0 : 1;
}
