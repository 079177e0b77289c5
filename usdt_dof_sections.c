/*
 * The sections of a provider's DOF document, built in the order the format
 * defines them: string table, probes, argument mapping, probe offsets,
 * is-enabled offsets, provider. usdt_dof_file.c lays them out.
 *
 * Where the tracepoints are, per platform. The kernel instruments
 * base + offset for each PROFFS and PRENOFFS entry:
 *   illumos, FreeBSD, Linux: base = dofpr_addr = the stub; the offsets are
 *     the stub's DTrace sites (USDT_STUB_DOF_SITE, USDT_STUB_DOF_ENABLED).
 *   macOS: base = the DOF document's load address; xnu then subtracts 1
 *     from probe offsets and adds 2 to is-enabled offsets, so we add 1 and
 *     subtract 2 to land on the same instructions. (Not run here.)
 */
#include "usdt_internal.h"

#include <string.h>

static void
site_offsets(const unsigned char *stub, uintptr_t load_addr,
             uint32_t *probe_off, uint32_t *enabled_off)
{
#if defined(__APPLE__)
        *probe_off = (uint32_t)((uintptr_t)stub + USDT_STUB_DOF_SITE - load_addr + 1);
        *enabled_off = (uint32_t)((uintptr_t)stub + USDT_STUB_DOF_ENABLED - load_addr - 2);
#else
        (void)stub;
        (void)load_addr;
        *probe_off = USDT_STUB_DOF_SITE;
        *enabled_off = USDT_STUB_DOF_ENABLED;
#endif
}

int
usdt_dof_sections_build(struct usdt_dof_sections *s,
                        const struct usdt_object *obj, uintptr_t load_addr)
{
        const struct usdt_probe_set *set = &obj->set;
        struct usdt_dof_provider prov;
        uint32_t ordinal, argidx = 0, name_index;
        size_t i, k;

        memset(s, 0, sizeof(*s));
        usdt_buf_append(&s->sec[USDT_DOF_STRTAB], "", 1);
        name_index = usdt_buf_add_string(&s->sec[USDT_DOF_STRTAB], set->provider);

        for (ordinal = 0; ordinal < set->nprobes; ordinal++) {
                const struct usdt_set_probe *p = &set->probes[ordinal];
                const unsigned char *stub = obj->stubs + ordinal * USDT_STUB_SIZE;
                const char *type = p->types;
                struct usdt_dof_probe rec;
                uint32_t probe_off, enabled_off;

                memset(&rec, 0, sizeof(rec));
                rec.addr = (uint64_t)(uintptr_t)stub;
                for (k = 0; k < p->argc; k++, type += strlen(type) + 1) {
                        uint32_t idx = usdt_buf_add_string(&s->sec[USDT_DOF_STRTAB], type);
                        if (k == 0)
                                rec.nargv = rec.xargv = idx;
                }
                rec.func = usdt_buf_add_string(&s->sec[USDT_DOF_STRTAB], p->function);
                rec.name = usdt_buf_add_string(&s->sec[USDT_DOF_STRTAB], p->name);
                rec.argidx = argidx;
                rec.offidx = ordinal;
                rec.nargc = rec.xargc = (uint8_t)p->argc;
                rec.noffs = 1;
                rec.enoffidx = ordinal;
                rec.nenoffs = 1;
                usdt_buf_append(&s->sec[USDT_DOF_PROBES], &rec, sizeof(rec));

                /* translated argument k is native argument k */
                for (k = 0; k < p->argc; k++) {
                        uint8_t map = (uint8_t)k;
                        usdt_buf_append(&s->sec[USDT_DOF_PRARGS], &map, 1);
                }
                argidx += p->argc;

                site_offsets(stub, load_addr, &probe_off, &enabled_off);
                usdt_buf_append(&s->sec[USDT_DOF_PROFFS], &probe_off, 4);
                usdt_buf_append(&s->sec[USDT_DOF_PRENOFFS], &enabled_off, 4);
        }
        /* the kernel wants a mapping section even when no probe has arguments */
        if (argidx == 0)
                usdt_buf_append(&s->sec[USDT_DOF_PRARGS], "", 1);

        memset(&prov, 0, sizeof(prov));
        prov.strtab = USDT_DOF_STRTAB;
        prov.probes = USDT_DOF_PROBES;
        prov.prargs = USDT_DOF_PRARGS;
        prov.proffs = USDT_DOF_PROFFS;
        prov.prenoffs = USDT_DOF_PRENOFFS;      /* never 0: 0 means "none" */
        prov.name = name_index;
        prov.provattr = prov.modattr = prov.funcattr = USDT_DOF_ATTR;
        prov.nameattr = prov.argsattr = USDT_DOF_ATTR;
        usdt_buf_append(&s->sec[USDT_DOF_PROVIDER], &prov, sizeof(prov));

        for (i = 0; i < USDT_DOF_NSECS; i++) {
                if (s->sec[i].failed) {
                        usdt_dof_sections_free(s);
                        return -1;
                }
        }
        return 0;
}

void
usdt_dof_sections_free(struct usdt_dof_sections *s)
{
        size_t i;

        for (i = 0; i < USDT_DOF_NSECS; i++)
                usdt_buf_free(&s->sec[i]);
}
