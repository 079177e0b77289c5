/*
 * For t/12_errno.t: every call that succeeds leaves errno as the caller
 * had it. Prints one line per call that changed it, then "errno ok N"
 * (N calls checked).
 */
#include "usdt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int checked, changed;

#define CHECK(what, call, ok)                                           \
        do {                                                            \
                errno = 4242;                                           \
                if (!(call ok))                                         \
                        printf("failed: %s\n", what);                   \
                else if (errno != 4242)                                 \
                        printf("%s changed errno to %d\n", what, errno), changed++; \
                checked++;                                              \
        } while (0)

int
main(void)
{
        const char *types[2] = { "int", "char *" };
        usdt_provider_t *p;
        usdt_probedef_t *a, *b;
        void *dof;
        size_t size;

        setvbuf(stdout, NULL, _IOLBF, 0);
        CHECK("usdt_create_provider", (p = usdt_create_provider("errnoprov", "mod")), != NULL);
        CHECK("usdt_create_probe", (a = usdt_create_probe("fn", "a", 2, types)), != NULL);
        CHECK("usdt_create_probe", (b = usdt_create_probe("fn", "b", 0, NULL)), != NULL);
        CHECK("usdt_provider_add_probe", usdt_provider_add_probe(p, a), == 0);
        CHECK("usdt_provider_add_probe", usdt_provider_add_probe(p, b), == 0);
        CHECK("usdt_provider_enable", usdt_provider_enable(p), == 0);
        CHECK("usdt_provider_enable (already enabled)", usdt_provider_enable(p), == 0);
        CHECK("usdt_provider_path", usdt_provider_path(p), != NULL);
        CHECK("usdt_provider_dof", usdt_provider_dof(p, &dof, &size), == 0);
        free(dof);
        CHECK("usdt_provider_disable", usdt_provider_disable(p), == 0);
        CHECK("usdt_provider_remove_probe", usdt_provider_remove_probe(p, b), == 0);
        CHECK("usdt_provider_enable (changed set)", usdt_provider_enable(p), == 0);
        errno = 4242;
        usdt_provider_free(p);
        if (errno != 4242)
                printf("usdt_provider_free changed errno to %d\n", errno), changed++;
        errno = 4242;
        usdt_probe_release(a);
        usdt_probe_release(b);
        usdt_probe_release(b);
        if (errno != 4242)
                printf("usdt_probe_release changed errno to %d\n", errno), changed++;
        checked += 2;
        printf("errno %s %d\n", changed ? "changed" : "ok", checked);
        return changed != 0;
}
