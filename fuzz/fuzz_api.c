/*
 * libFuzzer target: random sequences of API calls with random names, types
 * and argument counts, always within the API's ownership rules (a caller
 * bug such as a double release is not what is being tested). Every DOF
 * document the library builds is written to $USDT_FUZZ_DOF_DIR (up to
 * 2000 of them) for the test suite's DOF reader to check; here each is at
 * least checked for its magic and its own stated size.
 *
 * It aborts (a finding) on any crash or sanitizer report, and on an answer
 * the API must never give: a probe created with more than 32 arguments
 * (USDT_ARG_MAX), usdt_is_enabled other than 0 or 1, a reference count
 * that differs from the mirror kept here. At exit it says what it did
 * ("fuzz-target: ..."), so that t/96_fuzz.t judges a run by what it
 * checked, not by its speed.
 *
 *   make fuzz                      (FUZZ_SECONDS, default 120)
 */
#include "usdt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPROV 4
#define NPROBE 16

struct input {
        const uint8_t *data;
        size_t size;
};

static unsigned
next(struct input *in)
{
        if (in->size == 0)
                return 0;
        in->size--;
        return *in->data++;
}

/* Mostly valid names, sometimes hostile: empty, long, odd bytes. */
static char *
name_from(struct input *in, char *buf, size_t size)
{
        static const char alphabet[] =
                "abcdefghijklmnopqrstuvwxyz_-0123456789ABCXYZ.$:/ %\n\"\\\xff";
        unsigned kind = next(in), len, i;

        if (kind % 16 == 0)
                len = 40 + next(in) * 4;        /* long: up to 1060 */
        else
                len = next(in) % 24;
        if (len >= size)
                len = (unsigned)size - 1;
        for (i = 0; i < len; i++) {
                unsigned c = next(in);
                buf[i] = (kind % 4 == 0) ? alphabet[c % (sizeof(alphabet) - 1)]
                                         : alphabet[c % 38];
        }
        buf[len] = '\0';
        return buf;
}

static long dof_seen, dof_written;

/* What the run did, printed at exit. */
static long runs, created, refused_argc, enabled, fires;

static void
say_what_was_checked(void)
{
        fprintf(stderr, "fuzz-target: %ld inputs, %ld probes created, %ld with more than %d "
                "arguments refused, %ld providers enabled, %ld fires, %ld DOF documents checked, "
                "%ld written\n", runs, created, refused_argc, USDT_ARG_MAX, enabled, fires,
                dof_seen, dof_written);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        atexit(say_what_was_checked);
        return 0;
}

/* usdt_is_enabled answers exactly 0 or 1, whatever the semaphore counts. */
static void
check_is_enabled(usdt_probe_t *probe)
{
        int answer = usdt_is_enabled(probe);

        if (answer != 0 && answer != 1)
                abort();
}

static void
check_dof(usdt_provider_t *p)
{
        const char *dir = getenv("USDT_FUZZ_DOF_DIR");
        void *dof = NULL;
        size_t size = 0;
        uint64_t loadsz;

        if (usdt_provider_dof(p, &dof, &size) != 0)
                return;
        memcpy(&loadsz, (char *)dof + 40, sizeof(loadsz));
        if (size < 64 || memcmp(dof, "\177DOF", 4) != 0 || loadsz != size)
                abort();
        /* the first 1000, then every 100th: samples from the whole run */
        dof_seen++;
        if (dir != NULL && dof_written < 5000 && (dof_seen <= 1000 || dof_seen % 100 == 0)) {
                char path[4096];
                FILE *f;
                snprintf(path, sizeof(path), "%s/%d-%ld.dof", dir, (int)getpid(), dof_written++);
                f = fopen(path, "wb");
                if (f != NULL) {
                        fwrite(dof, 1, size, f);
                        fclose(f);
                }
        }
        free(dof);
}

/*
 * The references are mirrored here (refs[i] == pd[i]->refcnt): two at
 * birth, the caller's (dropped once by op 9) and the one kept for a
 * provider (dropped by usdt_provider_free if listed, else by the caller at
 * the end). A probedef whose count reaches 0 is freed and forgotten.
 */
static void
drop(usdt_probedef_t **pd, int *refs)
{
        usdt_probe_release(*pd);
        if (--*refs == 0)
                *pd = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct input in = { data, size };
        usdt_provider_t *prov[NPROV] = { 0 };
        usdt_probedef_t *pd[NPROBE] = { 0 };
        int refs[NPROBE] = { 0 }, caller[NPROBE] = { 0 }, listed[NPROBE];
        int ops = 0, i, j;
        char a[1200], b[1200];

        runs++;
        for (i = 0; i < NPROBE; i++)
                listed[i] = -1;
        while (in.size > 0 && ops++ < 64) {
                unsigned op = next(&in) % 11, pi = next(&in) % NPROV, di = next(&in) % NPROBE;
                usdt_provider_t *p = prov[pi];

                switch (op) {
                case 0:
                        if (p == NULL)
                                prov[pi] = usdt_create_provider(name_from(&in, a, sizeof(a)),
                                                                name_from(&in, b, sizeof(b)));
                        break;
                case 1:
                        if (pd[di] == NULL) {
                                const char *types[40];
                                char typebuf[40][16];
                                size_t argc = next(&in) % 40, k;
                                for (k = 0; k < argc; k++) {
                                        unsigned t = next(&in) % 5;
                                        types[k] = t == 0 ? NULL : t == 1 ? "char *" : t == 2 ? "int"
                                                 : name_from(&in, typebuf[k], sizeof(typebuf[k]));
                                }
                                pd[di] = usdt_create_probe(name_from(&in, a, sizeof(a)),
                                                           name_from(&in, b, sizeof(b)), argc, types);
                                if (pd[di] == NULL && argc > USDT_ARG_MAX)
                                        refused_argc++;
                                if (pd[di] != NULL) {
                                        /* more than 32 arguments is refused, never clamped */
                                        if (argc > USDT_ARG_MAX || pd[di]->argc != argc)
                                                abort();
                                        if (pd[di]->refcnt != 2 || pd[di]->probe != NULL)
                                                abort();
                                        created++;
                                        refs[di] = 2;
                                        caller[di] = 1;
                                        listed[di] = -1;
                                }
                        }
                        break;
                case 2:         /* a probedef goes into one provider, once */
                        if (p != NULL && pd[di] != NULL && listed[di] == -1 && refs[di] == 2 - !caller[di] &&
                            usdt_provider_add_probe(p, pd[di]) == 0)
                                listed[di] = (int)pi;
                        break;
                case 3:
                        if (p != NULL && pd[di] != NULL && listed[di] == (int)pi &&
                            usdt_provider_remove_probe(p, pd[di]) == 0)
                                listed[di] = -2;        /* removed: never added again */
                        break;
                case 4:
                        if (usdt_provider_enable(p) == 0)
                                enabled++;
                        break;
                case 5:
                        usdt_provider_disable(p);
                        break;
                case 6:
                        if (pd[di] != NULL) {
                                void *args[40];
                                size_t argc = next(&in) % 40, k;
                                for (k = 0; k < argc; k++)
                                        args[k] = (void *)(uintptr_t)(next(&in) * 0x10001u);
                                check_is_enabled(pd[di]->probe);
                                usdt_fire_probe(pd[di]->probe, argc, args);
                                fires++;
                        }
                        break;
                case 7:
                        if (p != NULL)
                                check_dof(p);
                        break;
                case 8:
                        if (p != NULL) {
                                usdt_provider_free(p);
                                prov[pi] = NULL;
                                for (j = 0; j < NPROBE; j++) {
                                        if (listed[j] == (int)pi) {
                                                listed[j] = -2;
                                                if (--refs[j] == 0)
                                                        pd[j] = NULL;
                                        }
                                }
                        }
                        break;
                case 9:
                        if (pd[di] != NULL && caller[di]) {
                                caller[di] = 0;
                                drop(&pd[di], &refs[di]);
                        }
                        break;
                default:
                        usdt_errstr(p);
                        usdt_provider_path(p);
                        break;
                }
                for (j = 0; j < NPROBE; j++) {
                        if (pd[j] == NULL)
                                continue;
                        if (pd[j]->refcnt != refs[j])
                                abort();
                        check_is_enabled(pd[j]->probe);
                }
        }
        for (i = 0; i < NPROV; i++) {
                usdt_provider_free(prov[i]);
                for (j = 0; j < NPROBE; j++) {
                        if (listed[j] == i) {
                                listed[j] = -2;
                                if (--refs[j] == 0)
                                        pd[j] = NULL;
                        }
                }
        }
        for (i = 0; i < NPROBE; i++)
                while (pd[i] != NULL)
                        drop(&pd[i], &refs[i]);
        return 0;
}
