/*
 * Publishing a provider: the choice of backend, the snapshot of its probes
 * that a backend publishes, enable and disable, and the additions
 * usdt_provider_dof and usdt_provider_path. The provider and probe
 * definitions themselves are usdt.c's; objects live in usdt_object.c.
 *
 * Invariants kept here (under the library lock, usdt_lock.c):
 * - provider->enabled == 1 exactly when impl->object is published: every
 *   probedef of its probe set then has probe == &handle->pub, and the
 *   handle points into impl->object's stubs.
 * - A disabled provider may keep impl->object for re-use (usdt_object_keep
 *   bounds how many are kept); its handles then point at the no-op stub and
 *   a zero semaphore.
 * - A new object is built and loaded with the lock dropped
 *   (usdt_object_create_unlocked), the provider busy meanwhile.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
        usdt_provider_wait_idle(impl);
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
                obj = usdt_object_create_unlocked(impl, &set, backends, &err);
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
        usdt_provider_wait_idle(USDT_IMPL(provider));
        rc = provider_disable_locked(provider);
        usdt_unlock();
        if (rc == 0)
                ERRNO_KEEP();
        return rc;
}

/*
 * Before a provider is freed, under the lock: disable it (its handles are
 * withdrawn even if DTrace refused the unload) and retire its objects.
 */
void
usdt_provider_unpublish(struct usdt_provider_impl *impl)
{
        usdt_provider_t *provider = &impl->pub;

        if (provider->enabled && provider_disable_locked(provider) != 0) {
                /* The helper device refused the unload: withdraw anyway. */
                provider->enabled = 0;
                provider->file = NULL;
        }
        provider_drop_object(impl);
        if (impl->preview != NULL) {
                usdt_object_retire(impl->preview);
                impl->preview = NULL;
        }
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
