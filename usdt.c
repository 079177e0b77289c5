/*
 * The public API for providers and probe definitions: creating them, their
 * reference counts, adding and removing probes, freeing, and error texts.
 * Names are checked in usdt_names.c; enable, disable and the additions
 * usdt_provider_dof and usdt_provider_path are usdt_enable.c's; the lock
 * is usdt_lock.c's; firing is usdt_fire.c.
 *
 * Invariants kept here (all under the one library lock, usdt_lock):
 * - A probe definition is listed in at most one provider (listed), and the
 *   provider's index finds it by (function, published name): two names
 *   that publish alike are one probe to a tracer, so never both listed in
 *   one function.
 * - A probe definition's refcnt is the original library's: 2 from
 *   usdt_create_probe (the caller's and a provider's), dropped by
 *   usdt_probe_release and by usdt_provider_free; at 0 it is freed. Its
 *   handle (what probe points at) is counted apart: by the definition and
 *   by each probe set that publishes it, so a handle outlives a released
 *   definition for as long as an object points at it.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usdt_error_templates[] = {
        "failed to allocate memory",
        "failed to allocate page-aligned memory",
        "no probes defined",
        "failed to load DOF: %s",
        "provider is already enabled",
        "failed to unload DOF: %s",
        "probe named %s:%s:%s:%s already exists",
        "failed to remove probe %s:%s:%s:%s",
};

static __thread char usdt_create_error[256];
static char usdt_oom_text[] = "failed to allocate memory";

/* --- Errors ------------------------------------------------------------- */

static void
provider_set_text(usdt_provider_t *provider, char *text)
{
        if (provider->error != NULL && provider->error != usdt_oom_text)
                free(provider->error);
        provider->error = text != NULL ? text : usdt_oom_text;
}

static void
provider_vset(usdt_provider_t *provider, const char *fmt, va_list ap)
{
        char *text = NULL;

        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        provider_set_text(provider, text);
}

void
usdt_set_error(usdt_provider_t *provider, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        provider_vset(provider, fmt, ap);
        va_end(ap);
}

USDT_EXPORT void
usdt_error(usdt_provider_t *provider, usdt_error_t error, ...)
{
        va_list ap;

        if (provider == NULL || (unsigned)error >=
            sizeof(usdt_error_templates) / sizeof(usdt_error_templates[0]))
                return;
        va_start(ap, error);
        provider_vset(provider, usdt_error_templates[error], ap);
        va_end(ap);
}

USDT_EXPORT char *
usdt_errstr(usdt_provider_t *provider)
{
        if (provider == NULL)
                return usdt_create_error;
        return provider->error;
}

/* --- Probe definitions -------------------------------------------------- */

USDT_EXPORT usdt_probedef_t *
usdt_create_probe(const char *func, const char *name, size_t argc,
                  const char **types)
{
        struct usdt_probedef_impl *impl;
        usdt_probedef_t *pd;
        size_t i;
        ERRNO_SAVE();

        if (func == NULL || name == NULL || argc > USDT_ARG_MAX ||
            (types == NULL && argc > 0)) {
                snprintf(usdt_create_error, sizeof(usdt_create_error),
                         "usdt_create_probe: %s",
                         func == NULL ? "function name is NULL" :
                         name == NULL ? "probe name is NULL" :
                         argc > USDT_ARG_MAX ? "more than 32 arguments (USDT_ARG_MAX)" :
                         "types is NULL but argc is not 0");
                errno = EINVAL;
                return NULL;
        }
        impl = calloc(1, sizeof(*impl));
        if (impl == NULL)
                goto fail;
        pd = &impl->pub;
        impl->handle = calloc(1, sizeof(*impl->handle));
        pd->function = strdup(func);
        pd->name = strdup(name);
        if (impl->handle == NULL || pd->function == NULL || pd->name == NULL)
                goto fail;
        for (i = 0; i < argc; i++) {
                if (types[i] == NULL)
                        continue;       /* a NULL type is an integer */
                pd->types[i] = strdup(types[i]);
                if (pd->types[i] == NULL)
                        goto fail;
        }
        pd->argc = argc;
        pd->refcnt = 2;
        pd->probe = NULL;
        usdt_create_error[0] = '\0';
        impl->handle->refcnt = 1;
        impl->handle->owner = pd;
        usdt_handle_reset(impl->handle);
        ERRNO_KEEP();
        return pd;
fail:
        if (impl != NULL) {
                for (i = 0; i < argc; i++)
                        free(impl->pub.types[i]);
                free((char *)impl->pub.function);
                free((char *)impl->pub.name);
                free(impl->handle);
                free(impl);
        }
        snprintf(usdt_create_error, sizeof(usdt_create_error),
                 "usdt_create_probe: failed to allocate memory");
        errno = ENOMEM;
        return NULL;
}

static void
probedef_release_locked(usdt_probedef_t *pd)
{
        struct usdt_probedef_impl *impl = (struct usdt_probedef_impl *)pd;
        size_t i;

        if (pd->refcnt == 2) {
                pd->refcnt = 1;
                return;
        }
        if (pd->refcnt != 1)
                return;
        pd->refcnt = 0;
        impl->handle->owner = NULL;
        usdt_handle_put(impl->handle);
        for (i = 0; i < pd->argc; i++)
                free(pd->types[i]);
        free((char *)pd->function);
        free((char *)pd->name);
        free(impl);
}

USDT_EXPORT void
usdt_probe_release(usdt_probedef_t *probedef)
{
        ERRNO_SAVE();

        if (probedef == NULL)
                return;
        usdt_lock();
        probedef_release_locked(probedef);
        usdt_unlock();
        ERRNO_KEEP();
}

/* --- Providers ---------------------------------------------------------- */

USDT_EXPORT usdt_provider_t *
usdt_create_provider(const char *name, const char *module)
{
        struct usdt_provider_impl *impl;
        char reason[sizeof(usdt_create_error) - 32];
        ERRNO_SAVE();

        if (usdt_provider_check(reason, sizeof(reason), name, module) != NULL) {
                snprintf(usdt_create_error, sizeof(usdt_create_error),
                         "usdt_create_provider: %s", reason);
                errno = EINVAL;
                return NULL;
        }
        impl = calloc(1, sizeof(*impl));
        if (impl == NULL)
                goto fail;
        impl->pub.name = strdup(name);
        impl->pub.module = strdup(module);
        if (impl->pub.name == NULL || impl->pub.module == NULL)
                goto fail;
        impl->pub.probedefs = NULL;
        impl->pub.error = NULL;
        impl->pub.enabled = 0;
        impl->pub.file = NULL;
        usdt_create_error[0] = '\0';
        ERRNO_KEEP();
        return &impl->pub;
fail:
        if (impl != NULL) {
                free((char *)impl->pub.name);
                free((char *)impl->pub.module);
                free(impl);
        }
        snprintf(usdt_create_error, sizeof(usdt_create_error),
                 "usdt_create_provider: failed to allocate memory");
        errno = ENOMEM;
        return NULL;
}

/*
 * The provider's index of its probes by (function, name), so that adding
 * n probes costs O(n), not O(n^2): a chained hash table whose buckets
 * double when it holds twice as many probes. Kept in step with the list.
 */
static size_t
index_slot(const struct usdt_provider_impl *impl, const char *function,
           const char *name)
{
        uint32_t hash = 2166136261u;
        const unsigned char *p;

        for (p = (const unsigned char *)function; *p != '\0'; p++)
                hash = (hash ^ *p) * 16777619u;
        hash = (hash ^ 0xff) * 16777619u;
        /* the name as published: names that publish alike share a bucket */
        hash = usdt_name_publish_hash(hash, name);
        return hash & (impl->index_buckets - 1);
}

#define INDEX_NEXT(pd) (((struct usdt_probedef_impl *)(pd))->index_next)

/*
 * The link that points at the listed probe with this function and name:
 * exactly that name, or (alike != 0) any name a Linux tracer would see as
 * the same ("a-b" and "a__b" both publish as a__b).
 */
static usdt_probedef_t **
index_find(struct usdt_provider_impl *impl, const char *function, const char *name,
           int alike)
{
        usdt_probedef_t **link;

        if (impl->index_buckets == 0)
                return NULL;
        for (link = &impl->index[index_slot(impl, function, name)]; *link != NULL;
             link = &INDEX_NEXT(*link))
                if ((alike ? usdt_names_publish_alike((*link)->name, name)
                           : strcmp((*link)->name, name) == 0) &&
                    strcmp((*link)->function, function) == 0)
                        return link;
        return NULL;
}

/* Room for one more probe; -1 if the table could not grow. */
static int
index_reserve(struct usdt_provider_impl *impl)
{
        usdt_probedef_t **old = impl->index, *pd, *next;
        size_t old_buckets = impl->index_buckets, i;

        if (impl->count + 1 <= 2 * old_buckets)
                return 0;
        impl->index_buckets = old_buckets ? 2 * old_buckets : 16;
        impl->index = calloc(impl->index_buckets, sizeof(*impl->index));
        if (impl->index == NULL) {
                impl->index = old;
                impl->index_buckets = old_buckets;
                return -1;
        }
        for (i = 0; i < old_buckets; i++) {
                for (pd = old[i]; pd != NULL; pd = next) {
                        size_t slot = index_slot(impl, pd->function, pd->name);
                        next = INDEX_NEXT(pd);
                        INDEX_NEXT(pd) = impl->index[slot];
                        impl->index[slot] = pd;
                }
        }
        free(old);
        return 0;
}

USDT_EXPORT int
usdt_provider_add_probe(usdt_provider_t *provider, usdt_probedef_t *probedef)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        char reason[512], quoted[2][200];
        size_t slot;
        ERRNO_SAVE();

        if (provider == NULL)
                return -1;
        usdt_lock();
        if (probedef == NULL) {
                usdt_set_error(provider, "usdt_provider_add_probe: probedef is NULL");
                goto fail;
        }
        if (usdt_probedef_check(reason, sizeof(reason), probedef) != NULL) {
                usdt_set_error(provider, "probe %s:%s:%s:%s: %s",
                               provider->name, provider->module,
                               usdt_name_quote(quoted[0], sizeof(quoted[0]), probedef->function),
                               usdt_name_quote(quoted[1], sizeof(quoted[1]), probedef->name),
                               reason);
                goto fail;
        }
        if (index_find(impl, probedef->function, probedef->name, 1) != NULL) {
                usdt_error(provider, USDT_ERROR_DUP_PROBE, provider->name,
                           provider->module, probedef->function, probedef->name);
                goto fail;
        }
        if (((struct usdt_probedef_impl *)probedef)->listed) {
                usdt_set_error(provider, "probe %s:%s:%s:%s: it is already in another "
                               "provider (a probe definition belongs to one provider)",
                               provider->name, provider->module, probedef->function,
                               probedef->name);
                goto fail;
        }
        if (index_reserve(impl) != 0) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                goto fail;
        }
        slot = index_slot(impl, probedef->function, probedef->name);
        INDEX_NEXT(probedef) = impl->index[slot];
        impl->index[slot] = probedef;
        ((struct usdt_probedef_impl *)probedef)->listed = 1;
        impl->count++;

        probedef->next = NULL;
        if (provider->probedefs == NULL)
                provider->probedefs = probedef;
        else
                impl->tail->next = probedef;
        impl->tail = probedef;
        usdt_unlock();
        ERRNO_KEEP();
        return 0;
fail:
        usdt_unlock();
        return -1;
}

USDT_EXPORT int
usdt_provider_remove_probe(usdt_provider_t *provider, usdt_probedef_t *probedef)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        usdt_probedef_t **link, *pd, *prev = NULL;
        char quoted[2][200];
        ERRNO_SAVE();

        if (provider == NULL)
                return -1;
        usdt_lock();
        if (provider->probedefs == NULL) {
                usdt_error(provider, USDT_ERROR_NOPROBES);
                goto fail;
        }
        if (probedef == NULL) {
                usdt_set_error(provider, "usdt_provider_remove_probe: probedef is NULL");
                goto fail;
        }
        link = index_find(impl, probedef->function, probedef->name, 0);
        if (link == NULL) {
                usdt_error(provider, USDT_ERROR_REMOVE_PROBE, provider->name,
                           provider->module,
                           usdt_name_quote(quoted[0], sizeof(quoted[0]), probedef->function),
                           usdt_name_quote(quoted[1], sizeof(quoted[1]), probedef->name));
                goto fail;
        }
        pd = *link;                     /* the listed one, matched by names */
        *link = INDEX_NEXT(pd);
        INDEX_NEXT(pd) = NULL;
        ((struct usdt_probedef_impl *)pd)->listed = 0;
        impl->count--;
        for (prev = NULL, link = &provider->probedefs; *link != pd; link = &(*link)->next)
                prev = *link;
        *link = pd->next;
        if (impl->tail == pd)
                impl->tail = prev;
        pd->next = NULL;
        usdt_unlock();
        ERRNO_KEEP();
        return 0;
fail:
        usdt_unlock();
        return -1;
}

USDT_EXPORT void
usdt_provider_free(usdt_provider_t *provider)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        usdt_probedef_t *pd, *next;
        ERRNO_SAVE();

        if (provider == NULL)
                return;
        usdt_lock();
        usdt_provider_wait_idle(impl);
        usdt_provider_unpublish(impl);
        for (pd = provider->probedefs; pd != NULL; pd = next) {
                next = pd->next;
                pd->next = NULL;
                ((struct usdt_probedef_impl *)pd)->listed = 0;
                INDEX_NEXT(pd) = NULL;
                probedef_release_locked(pd);
        }
        free(impl->index);
        if (provider->error != usdt_oom_text)
                free(provider->error);
        free((char *)provider->name);
        free((char *)provider->module);
        free(impl);
        usdt_unlock();
        ERRNO_KEEP();
}
