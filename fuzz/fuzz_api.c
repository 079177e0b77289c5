/*
 * libFuzzer target: random sequences of API calls with random names, types
 * and argument counts, always within the API's ownership rules (a caller
 * bug such as a double release is not what is being tested). Every DOF
 * document the library builds is written to $USDT_FUZZ_DOF_DIR (up to
 * 2000 of them) for the test suite's DOF reader to check; here each is at
 * least checked for its magic and its own stated size.
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
                                if (pd[di] != NULL) {
                                        if (pd[di]->refcnt != 2 || pd[di]->probe != NULL)
                                                abort();
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
                        usdt_provider_enable(p);
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
                                if (usdt_is_enabled(pd[di]->probe) > 1)
                                        abort();
                                usdt_fire_probe(pd[di]->probe, argc, args);
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
                for (j = 0; j < NPROBE; j++)
                        if (pd[j] != NULL && pd[j]->refcnt != refs[j])
                                abort();
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
