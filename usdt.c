/*
 * The public API: providers, probe definitions and their reference counts,
 * error texts, enable and disable, and the choice of backend. Names are
 * checked in usdt_names.c; objects live in usdt_object.c; firing is
 * usdt_fire.c.
 *
 * Invariants kept here (all under the one library lock, usdt_lock):
 * - provider->enabled == 1 exactly when impl->object is published: every
 *   probedef of its probe set then has probe == &handle->pub, and the
 *   handle points into impl->object's stubs.
 * - A disabled provider may keep impl->object for re-use (usdt_object_keep
 *   bounds how many are kept); its handles then point at the no-op stub and
 *   a zero semaphore.
 * - impl->busy is 1 while an enable loads the provider's new object with
 *   the lock dropped; other enables, disables and frees of that provider
 *   wait for it (usdt_cond).
 * - The dynamic loader is never called with the lock held: enable drops it
 *   around usdt_object_create, and usdt_unlock unloads retired objects
 *   after dropping it. (glibc runs constructors under its loader lock, and
 *   a constructor may call this library: holding ours while calling the
 *   loader would deadlock.)
 * Firing and usdt_is_enabled take no lock; see usdt_fire.c.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static pthread_mutex_t usdt_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t usdt_cond = PTHREAD_COND_INITIALIZER;
static pthread_once_t usdt_once = PTHREAD_ONCE_INIT;
static __thread char usdt_create_error[256];
static char usdt_oom_text[] = "failed to allocate memory";

/* --- The lock ----------------------------------------------------------- */

static void usdt_atfork_prepare(void) { pthread_mutex_lock(&usdt_mutex); }
static void usdt_atfork_parent(void) { pthread_mutex_unlock(&usdt_mutex); }

/* Providers whose enable is loading an object with the lock dropped
 * (impl->busy), linked through busy_next. */
static struct usdt_provider_impl *usdt_busy;

static void
usdt_atfork_child(void)
{
        /* The threads loading those objects did not come along: nobody in
         * the child will clear their providers' busy flags but us. */
        while (usdt_busy != NULL) {
                struct usdt_provider_impl *impl = usdt_busy;
                usdt_busy = impl->busy_next;
                impl->busy = 0;
                impl->busy_next = NULL;
        }
        usdt_object_atfork_child();
        pthread_mutex_unlock(&usdt_mutex);
}

static void
usdt_init(void)
{
        /* A fork while another thread is inside the library must not leave
         * the child with the lock taken. */
        pthread_atfork(usdt_atfork_prepare, usdt_atfork_parent,
                       usdt_atfork_child);
}

void
usdt_lock(void)
{
        pthread_once(&usdt_once, usdt_init);
        pthread_mutex_lock(&usdt_mutex);
}

/* Drop the lock, then unload the objects retired meanwhile: dlclose must
 * not run under it. Every control call leaves through here, so a retired
 * object is gone when the call that retired it returns. */
void
usdt_unlock(void)
{
        struct usdt_object *unload;

        usdt_object_reap();
        unload = usdt_object_take_unload();
        pthread_mutex_unlock(&usdt_mutex);
        usdt_object_unload(unload);
}

/* Mark the provider as loading its object (or no longer), under the lock. */
static void
provider_set_busy(struct usdt_provider_impl *impl, int busy)
{
        struct usdt_provider_impl **link;

        impl->busy = busy;
        if (busy) {
                impl->busy_next = usdt_busy;
                usdt_busy = impl;
                return;
        }
        for (link = &usdt_busy; *link != NULL; link = &(*link)->busy_next) {
                if (*link == impl) {
                        *link = impl->busy_next;
                        break;
                }
        }
        impl->busy_next = NULL;
        pthread_cond_broadcast(&usdt_cond);
}

/* Wait, under the lock, until no enable is loading this provider's object. */
static void
provider_wait_idle(struct usdt_provider_impl *impl)
{
        while (impl->busy)
                pthread_cond_wait(&usdt_cond, &usdt_mutex);
}

/* --- Errors ------------------------------------------------------------- */

/*
 * errno: a call that succeeds leaves it as the caller had it (the
 * library's own probing, such as access() on the DTrace device, must not
 * show through). Each public function saves it on entry (ERRNO_SAVE) and
 * puts it back on success (ERRNO_KEEP).
 */
#define ERRNO_SAVE()    int saved_errno = errno
#define ERRNO_KEEP()    (errno = saved_errno)

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

/* --- Backends ----------------------------------------------------------- */

static int
backends_choose(usdt_provider_t *provider, int *backends)
{
        const char *env = getenv("USDT_BACKEND");

        if (env == NULL || env[0] == '\0' || strcmp(env, "auto") == 0) {
#if defined(__linux__) && defined(USDT_NO_DOF)
                *backends = USDT_BACKEND_SDT;   /* no DTrace sites in the stubs */
#elif defined(__linux__)
                *backends = USDT_BACKEND_SDT |
                            (usdt_dof_device_present() ? USDT_BACKEND_DOF : 0);
#else
                *backends = USDT_BACKEND_DOF;
#endif
                return 0;
        }
        if (strcmp(env, "dof") == 0) {
#ifdef USDT_NO_DOF
                usdt_set_error(provider, "USDT_BACKEND=dof is not supported on %s: "
                               "the DOF backend (DTrace) has stubs for x86 only; "
                               "use USDT_BACKEND=sdt or auto", USDT_NO_DOF);
                return -1;
#else
                *backends = USDT_BACKEND_DOF;
                return 0;
#endif
        }
#ifdef __linux__
        if (strcmp(env, "sdt") == 0) {
                *backends = USDT_BACKEND_SDT;
                return 0;
        }
        usdt_set_error(provider, "USDT_BACKEND must be sdt, dof or auto");
#else
        usdt_set_error(provider, "USDT_BACKEND must be dof or auto on this system");
#endif
        return -1;
}

/* --- The probe set ------------------------------------------------------ */

/*
 * Take the snapshot of the provider's probes that enable publishes: the
 * names, the types as DOF publishes them, which arguments are strings,
 * and a reference on each handle. One allocation for all the strings
 * (the key), one for the entries. Returns 0, or -1 when out of memory.
 */
int
usdt_probe_set_take(struct usdt_probe_set *set, const usdt_provider_t *provider)
{
        const usdt_probedef_t *pd;
        size_t bytes = 1, n = 0, i, k, used = 0;

        memset(set, 0, sizeof(*set));
        for (pd = provider->probedefs; pd != NULL; pd = pd->next, n++) {
                bytes += strlen(pd->function) + strlen(pd->name) + 3;
                for (k = 0; k < pd->argc; k++)
                        bytes += (pd->types[k] ? strlen(pd->types[k]) : 4) + 1;
        }
        set->provider = strdup(provider->name);
        set->module = strdup(provider->module);
        set->key = malloc(bytes);
        set->probes = calloc(n ? n : 1, sizeof(*set->probes));
        if (set->provider == NULL || set->module == NULL || set->key == NULL ||
            set->probes == NULL) {
                usdt_probe_set_free(set);
                return -1;
        }
        for (pd = provider->probedefs, i = 0; pd != NULL; pd = pd->next, i++) {
                struct usdt_set_probe *p = &set->probes[i];
                size_t f = strlen(pd->function) + 1, m = strlen(pd->name) + 1;

                p->function = set->key + used;
                memcpy(set->key + used, pd->function, f);
                p->name = set->key + used + f;
                memcpy(set->key + used + f, pd->name, m);
                used += f + m;
                set->key[used++] = (char)('A' + pd->argc);
                p->types = set->key + used;
                p->argc = (uint32_t)pd->argc;
                for (k = 0; k < pd->argc; k++) {
                        const char *type = pd->types[k] ? pd->types[k] : "long";
                        size_t t = strlen(type) + 1;
                        memcpy(set->key + used, type, t);
                        used += t;
                        if (usdt_type_is_string(pd->types[k]))
                                p->string_args |= 1u << k;
                }
                p->handle = USDT_HANDLE(pd);
                p->handle->refcnt++;
        }
        set->nprobes = n;
        set->key_bytes = used;
        return 0;
}

/* --- Enable and disable ------------------------------------------------- */

/* Whether obj (may be NULL) was built for exactly this probe set: then its
 * stubs, notes and DOF are this set's. (The provider's name is not in the
 * key: a provider's objects all carry its one name.) */
static int
object_has_set(const struct usdt_object *obj, const struct usdt_probe_set *set)
{
        return obj != NULL && obj->set.key_bytes == set->key_bytes &&
               memcmp(obj->set.key, set->key, set->key_bytes) == 0;
}

/* Whether the kept object can be published again for this set. DOF never
 * re-uses one: its stub addresses were named to DTrace already. */
static int
object_reusable(const struct usdt_object *obj, const struct usdt_probe_set *set,
                int backends)
{
        return object_has_set(obj, set) && obj->backends == backends &&
               !(backends & USDT_BACKEND_DOF);
}

/* Retire the provider's object (kept or failed), if it has one. */
static void
provider_drop_object(struct usdt_provider_impl *impl)
{
        if (impl->object != NULL) {
                usdt_object_retire(impl->object);
                impl->object = NULL;
        }
}

USDT_EXPORT int
usdt_provider_enable(usdt_provider_t *provider)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        struct usdt_probe_set set;
        struct usdt_object *obj;
        struct usdt_err err;
        int backends;
        ERRNO_SAVE();

        if (provider == NULL)
                return -1;
        usdt_lock();
        provider_wait_idle(impl);
        if (provider->enabled) {
                usdt_error(provider, USDT_ERROR_ALREADYENABLED);
                usdt_unlock();
                ERRNO_KEEP();
                return 0;
        }
        if (provider->probedefs == NULL) {
                usdt_error(provider, USDT_ERROR_NOPROBES);
                goto fail;
        }
        if (backends_choose(provider, &backends) != 0)
                goto fail;
        if (usdt_probe_set_take(&set, provider) != 0) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                goto fail;
        }
        usdt_fire_init();
        err.text[0] = '\0';
        obj = impl->object;
        if (object_reusable(obj, &set, backends)) {
                usdt_probe_set_free(&set);
                usdt_object_unkeep(obj);
        } else {
                /* A changed probe set: the kept object can never serve again. */
                provider_drop_object(impl);
                provider_set_busy(impl, 1);
                pthread_mutex_unlock(&usdt_mutex);
                obj = usdt_object_create(&set, backends, &err);
                pthread_mutex_lock(&usdt_mutex);
                provider_set_busy(impl, 0);
                if (obj == NULL) {
                        usdt_set_error(provider, "%s", err.text);
                        goto fail;
                }
                usdt_object_link(obj, impl);
                impl->object = obj;
        }
        if ((backends & USDT_BACKEND_DOF) && usdt_dof_load(obj, &err) != 0) {
                usdt_set_error(provider, "%s", err.text);
                provider_drop_object(impl);
                goto fail;
        }
        usdt_object_publish(obj);
        provider->enabled = 1;
        provider->file = obj;
        usdt_unlock();
        ERRNO_KEEP();
        return 0;
fail:
        usdt_unlock();
        return -1;
}

/* Disable: unload DOF, withdraw the handles, keep the object for re-use
 * (or retire it when DTrace had it). -1 if DTrace refused the unload. */
static int
provider_disable_locked(usdt_provider_t *provider)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        struct usdt_object *obj = impl->object;
        struct usdt_err err;

        if (!provider->enabled)
                return 0;
        if (obj->dof_loaded && usdt_dof_unload(obj, &err) != 0) {
                usdt_set_error(provider, "%s", err.text);
                return -1;
        }
        usdt_object_withdraw(obj);
        provider->enabled = 0;
        provider->file = NULL;
        if (obj->backends & USDT_BACKEND_DOF)
                provider_drop_object(impl);
        else
                usdt_object_keep(obj);
        return 0;
}

USDT_EXPORT int
usdt_provider_disable(usdt_provider_t *provider)
{
        int rc;
        ERRNO_SAVE();

        if (provider == NULL)
                return -1;
        usdt_lock();
        provider_wait_idle(USDT_IMPL(provider));
        rc = provider_disable_locked(provider);
        usdt_unlock();
        if (rc == 0)
                ERRNO_KEEP();
        return rc;
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
        provider_wait_idle(impl);
        if (provider->enabled && provider_disable_locked(provider) != 0) {
                /* The helper device refused the unload: withdraw anyway. */
                provider->enabled = 0;
                provider->file = NULL;
        }
        provider_drop_object(impl);
        if (impl->preview != NULL)
                usdt_object_retire(impl->preview);
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

/* --- Additions ---------------------------------------------------------- */

USDT_EXPORT int
usdt_provider_dof(usdt_provider_t *provider, void **dof, size_t *size)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        struct usdt_probe_set set;
        struct usdt_object *obj;
        struct usdt_err err;
        int rc = -1;
        ERRNO_SAVE();

        if (provider == NULL)
                return -1;
        usdt_lock();
        if (dof == NULL || size == NULL) {
                usdt_set_error(provider, "usdt_provider_dof: dof and size must not be NULL");
                goto out;
        }
        if (provider->probedefs == NULL) {
                usdt_error(provider, USDT_ERROR_NOPROBES);
                goto out;
        }
        if (usdt_probe_set_take(&set, provider) != 0) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                goto out;
        }
        obj = impl->object;
        if (!object_has_set(obj, &set)) {
                obj = impl->preview;
                if (obj != NULL && !object_has_set(obj, &set)) {
                        usdt_object_retire(obj);
                        impl->preview = obj = NULL;
                }
                if (obj == NULL) {
                        /* anonymous stubs: no loader, so under the lock */
                        obj = usdt_object_create(&set, USDT_BACKEND_DOF, &err);
                        if (obj == NULL) {
                                usdt_set_error(provider, "%s", err.text);
                                goto out;
                        }
                        usdt_object_link(obj, impl);
                        impl->preview = obj;
                }
        }
        usdt_probe_set_free(&set);
        rc = usdt_dof_build(obj, NULL, dof, size, &err);
        if (rc != 0)
                usdt_set_error(provider, "%s", err.text);
out:
        usdt_unlock();
        if (rc == 0)
                ERRNO_KEEP();
        return rc;
}

USDT_EXPORT const char *
usdt_provider_path(usdt_provider_t *provider)
{
        const struct usdt_object *obj;
        const char *path = NULL;
        ERRNO_SAVE();

        if (provider == NULL)
                return NULL;
        usdt_lock();
        obj = USDT_IMPL(provider)->object;
        if (provider->enabled && obj != NULL)
                path = obj->file != NULL ? obj->file : obj->path;
        usdt_unlock();
        ERRNO_KEEP();
        return path;
}
