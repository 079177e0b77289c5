/*
 * The public API: providers, probe definitions and their reference counts,
 * error texts, name checks, enable and disable, and the choice of backend.
 *
 * Invariants kept here (all under the one library lock, usdt_lock):
 * - provider->enabled == 1 exactly when impl->object is published: every
 *   probedef in the list then has probe == &handle->pub, and the handle
 *   points into impl->object's stubs.
 * - A disabled provider may keep impl->object for re-use; its handles
 *   then point at the no-op stub and a zero semaphore.
 * - An object leaves its provider only through object_retire, and its
 *   memory goes back to the system only in usdt_object_reap, once no fire
 *   can be inside it.
 * Firing and usdt_is_enabled take no lock; see usdt_fire_probe.
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

#define USDT_PROVIDER_NAME_MAX  53      /* DTrace: name + pid < 64 */
#define USDT_MODULE_NAME_MAX    63      /* DTRACE_MODNAMELEN - 1 */
#define USDT_FUNCTION_NAME_MAX  127     /* DTRACE_FUNCNAMELEN - 1 */
#define USDT_PROBE_NAME_MAX     63      /* DTRACE_NAMELEN - 1 */
#define USDT_TYPE_MAX           127     /* DTRACE_ARGTYPELEN - 1 */

/* How long a retired object stays mapped at least: a usdt_is_enabled that
 * read the handle's semaphore pointer just before the disable still
 * dereferences it. Fires are tracked exactly (handle->inflight). */
#define USDT_GRACE_NS           (20 * 1000 * 1000L)

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
static pthread_once_t usdt_once = PTHREAD_ONCE_INIT;
static __thread char usdt_create_error[256];
static const volatile uint16_t usdt_zero_semaphore = 0;
static char usdt_oom_text[] = "failed to allocate memory";

/* Every object published or kept (not retired). */
static struct usdt_object *usdt_objects;

static void usdt_object_reap(void);

/* --- The lock ----------------------------------------------------------- */

static void usdt_atfork_prepare(void) { pthread_mutex_lock(&usdt_mutex); }
static void usdt_atfork_release(void) { pthread_mutex_unlock(&usdt_mutex); }

static void
usdt_init(void)
{
        /* A fork while another thread is inside the library must not leave
         * the child with the lock taken. */
        pthread_atfork(usdt_atfork_prepare, usdt_atfork_release,
                       usdt_atfork_release);
}

void
usdt_lock(void)
{
        pthread_once(&usdt_once, usdt_init);
        pthread_mutex_lock(&usdt_mutex);
}

void
usdt_unlock(void)
{
        pthread_mutex_unlock(&usdt_mutex);
}

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

/* --- Names -------------------------------------------------------------- */

/*
 * Render a name for an error message: at most 40 characters, anything
 * outside printable ASCII (and the quote and backslash) as \xNN, so a
 * hostile name can neither flood nor forge the message.
 */
static const char *
name_quote(char *buf, size_t bufsize, const char *name)
{
        size_t out = 0, i;

        for (i = 0; name[i] != '\0' && out + 8 < bufsize; i++) {
                unsigned char c = (unsigned char)name[i];
                if (i == 40) {
                        memcpy(buf + out, "...", 3);
                        out += 3;
                        break;
                }
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                        out += (size_t)snprintf(buf + out, bufsize - out,
                                                "\\x%02x", c);
                else
                        buf[out++] = (char)c;
        }
        buf[out] = '\0';
        return buf;
}

/*
 * Check one name. Returns NULL when it is acceptable, else writes why into
 * reason (naming the limit) and returns reason.
 */
static const char *
name_check(char *reason, size_t reason_size, const char *what,
           const char *name, size_t max_bytes, int identifier,
           const char *allowed_punct, int allow_empty)
{
        char quoted[200];
        size_t len, i;

        if (name == NULL) {
                snprintf(reason, reason_size, "%s is NULL", what);
                return reason;
        }
        len = strnlen(name, max_bytes + 1);
        if (len == 0 && !allow_empty) {
                snprintf(reason, reason_size, "%s is empty", what);
                return reason;
        }
        if (len > max_bytes) {
                snprintf(reason, reason_size,
                         "%s \"%s\" is too long: the limit is %zu bytes",
                         what, name_quote(quoted, sizeof(quoted), name),
                         max_bytes);
                return reason;
        }
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)name[i];
                int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         c == '_' || (c >= '0' && c <= '9' && !(identifier && i == 0)) ||
                         (c != '\0' && strchr(allowed_punct, c) != NULL &&
                          !(identifier && i == 0));
                if (!ok) {
                        snprintf(reason, reason_size,
                                 "%s \"%s\" is refused: use letters, digits, '_' and \"%s\"%s",
                                 what, name_quote(quoted, sizeof(quoted), name),
                                 allowed_punct,
                                 identifier ? ", starting with a letter or '_'" : "");
                        return reason;
                }
        }
        return NULL;
}

int
usdt_type_is_string(const char *type)
{
        return type != NULL && strncmp(type, "char *", 6) == 0;
}

/* --- Handles ------------------------------------------------------------ */

static int
usdt_never_enabled(void)
{
        return 0;
}

/* Point a handle at nothing: a fire through it does nothing, it reads 0. */
void
usdt_handle_reset(struct usdt_handle *h)
{
        __atomic_store_n(&h->pub.probe_addr, (void *)usdt_tracepoint_noop,
                         __ATOMIC_SEQ_CST);
        __atomic_store_n(&h->call_isenabled, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&h->semaphore, &usdt_zero_semaphore, __ATOMIC_SEQ_CST);
        h->pub.isenabled_addr = usdt_never_enabled;
}

void
usdt_handle_put(struct usdt_handle *h)
{
        if (h != NULL && --h->refcnt == 0)
                free(h);
}

/* --- Firing (no lock) --------------------------------------------------- */

/*
 * A fire announces itself in handle->inflight before it reads where to
 * jump, and withdraws after it returned. Retiring an object first points
 * every handle away from it, then waits (usdt_object_reap) until each of
 * its handles shows no fire in flight: any fire that read the old address
 * is then done. Both sides use sequentially consistent atomics, so either
 * the fire sees the new address or the reaper sees the fire.
 */
USDT_EXPORT void
usdt_fire_probe(usdt_probe_t *probe, size_t argc, void **argv)
{
        struct usdt_handle *h = (struct usdt_handle *)probe;
        void *site;

        if (h == NULL)
                return;
        if (argv == NULL)
                argc = 0;
        if (argc > USDT_ARG_MAX)
                argc = USDT_ARG_MAX;
        __atomic_add_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
        site = __atomic_load_n(&h->pub.probe_addr, __ATOMIC_SEQ_CST);
        usdt_probe_args(site, argc, argv);
        __atomic_sub_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
}

static int
dof_is_enabled(struct usdt_handle *h)
{
        int (*fn)(void);
        int enabled = 0;

        __atomic_add_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&h->call_isenabled, __ATOMIC_SEQ_CST)) {
                fn = __atomic_load_n(&h->pub.isenabled_addr, __ATOMIC_SEQ_CST);
                enabled = fn() != 0;
        }
        __atomic_sub_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
        return enabled;
}

USDT_EXPORT int
usdt_is_enabled(usdt_probe_t *probe)
{
        struct usdt_handle *h = (struct usdt_handle *)probe;
        const volatile uint16_t *semaphore;

        if (h == NULL)
                return 0;
        semaphore = __atomic_load_n(&h->semaphore, __ATOMIC_ACQUIRE);
        if (*semaphore != 0)
                return 1;
        if (__atomic_load_n(&h->call_isenabled, __ATOMIC_RELAXED))
                return dof_is_enabled(h);
        return 0;
}

/* --- Probe definitions -------------------------------------------------- */

USDT_EXPORT usdt_probedef_t *
usdt_create_probe(const char *func, const char *name, size_t argc,
                  const char **types)
{
        struct usdt_probedef_impl *impl;
        usdt_probedef_t *pd;
        size_t i;

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
        if (probedef == NULL)
                return;
        usdt_lock();
        probedef_release_locked(probedef);
        usdt_object_reap();
        usdt_unlock();
}

/* --- Providers ---------------------------------------------------------- */

USDT_EXPORT usdt_provider_t *
usdt_create_provider(const char *name, const char *module)
{
        struct usdt_provider_impl *impl;
        char reason[sizeof(usdt_create_error) - 32];

        if (name_check(reason, sizeof(reason), "provider name", name,
                       USDT_PROVIDER_NAME_MAX, 1, "-", 0) != NULL ||
            name_check(reason, sizeof(reason), "module name", module,
                       USDT_MODULE_NAME_MAX, 0, "-.", 0) != NULL ||
            ((module[0] == '.' || module[0] == '-') &&
             snprintf(reason, sizeof(reason), "module name \"%.40s\" is refused: "
                      "it must not start with '.' or '-'", module) > 0)) {
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

size_t
usdt_provider_count(const usdt_provider_t *provider)
{
        const usdt_probedef_t *pd;
        size_t n = 0;

        for (pd = provider->probedefs; pd != NULL; pd = pd->next)
                n++;
        return n;
}

/* The reasons add_probe refuses a probedef, or NULL. */
static const char *
probedef_check(char *reason, size_t size, const usdt_probedef_t *pd)
{
        char what[32];
        size_t i;

        if (name_check(reason, size, "function name", pd->function,
                       USDT_FUNCTION_NAME_MAX, 0, "-.$", 1) != NULL ||
            name_check(reason, size, "probe name", pd->name,
                       USDT_PROBE_NAME_MAX, 1, "-", 0) != NULL)
                return reason;
        for (i = 0; i < pd->argc; i++) {
                if (pd->types[i] != NULL &&
                    strnlen(pd->types[i], USDT_TYPE_MAX + 1) > USDT_TYPE_MAX) {
                        snprintf(what, sizeof(what), "argument %zu", i);
                        snprintf(reason, size,
                                 "%s type is too long: the limit is %d bytes",
                                 what, USDT_TYPE_MAX);
                        return reason;
                }
        }
        return NULL;
}

USDT_EXPORT int
usdt_provider_add_probe(usdt_provider_t *provider, usdt_probedef_t *probedef)
{
        char reason[512], quoted[2][200];
        usdt_probedef_t *pd;

        if (provider == NULL)
                return -1;
        usdt_lock();
        if (probedef == NULL) {
                usdt_set_error(provider, "usdt_provider_add_probe: probedef is NULL");
                goto fail;
        }
        if (probedef_check(reason, sizeof(reason), probedef) != NULL) {
                usdt_set_error(provider, "probe %s:%s:%s:%s: %s",
                               provider->name, provider->module,
                               name_quote(quoted[0], sizeof(quoted[0]), probedef->function),
                               name_quote(quoted[1], sizeof(quoted[1]), probedef->name),
                               reason);
                goto fail;
        }
        for (pd = provider->probedefs; pd != NULL; pd = pd->next) {
                if (pd == probedef || (strcmp(pd->name, probedef->name) == 0 &&
                    strcmp(pd->function, probedef->function) == 0)) {
                        usdt_error(provider, USDT_ERROR_DUP_PROBE,
                                   provider->name, provider->module,
                                   probedef->function, probedef->name);
                        goto fail;
                }
        }
        probedef->next = NULL;
        if (provider->probedefs == NULL) {
                provider->probedefs = probedef;
        } else {
                for (pd = provider->probedefs; pd->next != NULL; pd = pd->next)
                        ;
                pd->next = probedef;
        }
        usdt_unlock();
        return 0;
fail:
        usdt_unlock();
        return -1;
}

USDT_EXPORT int
usdt_provider_remove_probe(usdt_provider_t *provider, usdt_probedef_t *probedef)
{
        usdt_probedef_t *pd, *prev = NULL;
        char quoted[2][200];

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
        for (pd = provider->probedefs; pd != NULL; prev = pd, pd = pd->next) {
                if (strcmp(pd->name, probedef->name) == 0 &&
                    strcmp(pd->function, probedef->function) == 0) {
                        if (prev == NULL)
                                provider->probedefs = pd->next;
                        else
                                prev->next = pd->next;
                        pd->next = NULL;
                        usdt_unlock();
                        return 0;
                }
        }
        usdt_error(provider, USDT_ERROR_REMOVE_PROBE, provider->name,
                   provider->module,
                   name_quote(quoted[0], sizeof(quoted[0]), probedef->function),
                   name_quote(quoted[1], sizeof(quoted[1]), probedef->name));
fail:
        usdt_unlock();
        return -1;
}

/* --- Objects ------------------------------------------------------------ */

/*
 * The probe set as one byte string: two objects with the same key have
 * the same stubs, notes and DOF, so a kept object can be published again.
 */
static char *
probe_set_key(const usdt_provider_t *provider, size_t *key_bytes)
{
        const usdt_probedef_t *pd;
        size_t bytes = 1, i, used = 0;
        char *key;

        for (pd = provider->probedefs; pd != NULL; pd = pd->next) {
                bytes += strlen(pd->function) + strlen(pd->name) + 4;
                for (i = 0; i < pd->argc; i++)
                        bytes += (pd->types[i] ? strlen(pd->types[i]) : 0) + 1;
        }
        key = malloc(bytes);
        if (key == NULL)
                return NULL;
        for (pd = provider->probedefs; pd != NULL; pd = pd->next) {
                used += (size_t)sprintf(key + used, "%s%c%s%c%c", pd->function,
                                        0, pd->name, 0, (char)('A' + pd->argc));
                for (i = 0; i < pd->argc; i++)
                        used += (size_t)sprintf(key + used, "%s%c",
                                                pd->types[i] ? pd->types[i] : "", 0);
        }
        *key_bytes = used;
        return key;
}

/* Give an object's memory, mappings and references back. */
static void
object_free(struct usdt_object *obj)
{
        size_t i;

        usdt_sdt_destroy(obj);
        usdt_object_anon_destroy(obj);
        for (i = 0; i < obj->nprobes; i++)
                usdt_handle_put(obj->handles[i]);
        free(obj->dof_buffer);
        free(obj->handles);
        free(obj->key);
        free(obj);
}

static void
object_unlink(struct usdt_object **list, struct usdt_object *obj)
{
        struct usdt_object **link;

        for (link = list; *link != NULL; link = &(*link)->next) {
                if (*link == obj) {
                        *link = obj->next;
                        obj->next = NULL;
                        return;
                }
        }
}

/*
 * A new object for the provider's current probes, stubs built for the
 * given backends (SDT: in an ELF object; else anonymous pages). Takes key.
 */
static struct usdt_object *
object_create(usdt_provider_t *provider, char *key, size_t key_bytes,
              int backends)
{
        struct usdt_object *obj = calloc(1, sizeof(*obj));
        int rc;

        if (obj == NULL) {
                free(key);
                usdt_error(provider, USDT_ERROR_MALLOC);
                return NULL;
        }
        obj->fd = -1;
        obj->key = key;
        obj->key_bytes = key_bytes;
        obj->backends = backends;
        obj->nprobes = usdt_provider_count(provider);
        obj->handles = calloc(obj->nprobes, sizeof(*obj->handles));
        if (obj->handles == NULL) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                free(key);
                free(obj);
                return NULL;
        }
        if (backends & USDT_BACKEND_SDT)
                rc = usdt_sdt_publish(obj, provider);
        else
                rc = usdt_object_anon_create(obj, provider);
        if (rc != 0) {
                free(obj->handles);
                free(key);
                free(obj);
                return NULL;
        }
        obj->next = usdt_objects;
        usdt_objects = obj;
        return obj;
}

static int
handle_in_object(const struct usdt_handle *h, const struct usdt_object *obj)
{
        const unsigned char *addr = h->pub.probe_addr;

        return addr >= obj->stubs &&
               addr < obj->stubs + obj->nprobes * USDT_STUB_SIZE;
}

/*
 * Withdraw an object's handles: they fire nothing and read 0 from now on,
 * and every probedef that showed one, listed or removed since, shows NULL.
 */
static void
object_withdraw(struct usdt_object *obj)
{
        size_t i;

        for (i = 0; i < obj->nprobes; i++) {
                struct usdt_handle *h = obj->handles[i];
                if (h == NULL || !handle_in_object(h, obj))
                        continue;
                usdt_handle_reset(h);
                if (h->owner != NULL)
                        h->owner->probe = NULL;
        }
}

/* Retired objects wait here until no fire can be inside them. */
static struct usdt_object *usdt_graveyard;

static void
object_retire(struct usdt_object *obj)
{
        object_withdraw(obj);
        object_unlink(&usdt_objects, obj);
        usdt_sdt_retire(obj);
        clock_gettime(CLOCK_MONOTONIC, &obj->retired_at);
        obj->next = usdt_graveyard;
        usdt_graveyard = obj;
}

/*
 * Whether a retired object can go: no fire may be inside it, and no
 * usdt_is_enabled may still hold a pointer to one of its semaphores. A
 * reader can only hold one through a handle whose probedef is alive:
 * handles whose probedefs are freed have no readers, so the grace period
 * applies only while some probedef of the object still exists.
 */
static int
object_quiet(const struct usdt_object *obj, const struct timespec *now)
{
        long elapsed_ns = (now->tv_sec - obj->retired_at.tv_sec) * 1000000000L +
                          (now->tv_nsec - obj->retired_at.tv_nsec);
        int shared = 0;
        size_t i;

        for (i = 0; i < obj->nprobes; i++) {
                const struct usdt_handle *h = obj->handles[i];
                if (h == NULL)
                        continue;
                if (__atomic_load_n(&h->inflight, __ATOMIC_SEQ_CST) != 0)
                        return 0;
                if (h->owner != NULL)
                        shared = 1;
        }
        return !shared || elapsed_ns >= USDT_GRACE_NS;
}

/* Destroy the retired objects no fire can be inside any more. */
static void
usdt_object_reap(void)
{
        struct usdt_object **link = &usdt_graveyard, *obj;
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        while ((obj = *link) != NULL) {
                if (object_quiet(obj, &now)) {
                        *link = obj->next;
                        object_free(obj);
                } else {
                        link = &obj->next;
                }
        }
}

/* --- Backends ----------------------------------------------------------- */

static int
backends_choose(usdt_provider_t *provider, int *backends)
{
        const char *env = getenv("USDT_BACKEND");

        if (env == NULL || env[0] == '\0' || strcmp(env, "auto") == 0) {
#ifdef __linux__
                *backends = USDT_BACKEND_SDT |
                            (usdt_dof_device_present() ? USDT_BACKEND_DOF : 0);
#else
                *backends = USDT_BACKEND_DOF;
#endif
                return 0;
        }
        if (strcmp(env, "dof") == 0) {
                *backends = USDT_BACKEND_DOF;
                return 0;
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

/* --- Enable and disable ------------------------------------------------- */

static void
object_attach_handles(struct usdt_object *obj, usdt_provider_t *provider)
{
        usdt_probedef_t *pd;
        size_t i = 0;

        for (pd = provider->probedefs; pd != NULL; pd = pd->next, i++) {
                struct usdt_handle *h = USDT_HANDLE(pd);
                if (obj->handles[i] != h) {
                        usdt_handle_put(obj->handles[i]);
                        obj->handles[i] = h;
                        h->refcnt++;
                }
        }
}

static void
object_publish_handles(struct usdt_object *obj, usdt_provider_t *provider)
{
        usdt_probedef_t *pd;
        size_t i = 0;

        for (pd = provider->probedefs; pd != NULL; pd = pd->next, i++) {
                struct usdt_handle *h = obj->handles[i];
                unsigned char *stub = obj->stubs + i * USDT_STUB_SIZE;

                h->pub.isenabled_addr = (int (*)(void))(void *)stub;
                __atomic_store_n(&h->semaphore, obj->semaphores != NULL
                                 ? &obj->semaphores[i] : &usdt_zero_semaphore,
                                 __ATOMIC_SEQ_CST);
                __atomic_store_n(&h->call_isenabled,
                                 (obj->backends & USDT_BACKEND_DOF) != 0,
                                 __ATOMIC_SEQ_CST);
                __atomic_store_n(&h->pub.probe_addr, stub + USDT_STUB_ENTRY,
                                 __ATOMIC_SEQ_CST);
                pd->probe = &h->pub;
        }
}

USDT_EXPORT int
usdt_provider_enable(usdt_provider_t *provider)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        struct usdt_object *obj;
        size_t key_bytes = 0;
        int backends, created = 0;
        char *key;

        if (provider == NULL)
                return -1;
        usdt_lock();
        usdt_object_reap();
        if (provider->enabled) {
                usdt_error(provider, USDT_ERROR_ALREADYENABLED);
                usdt_unlock();
                return 0;
        }
        if (provider->probedefs == NULL) {
                usdt_error(provider, USDT_ERROR_NOPROBES);
                goto fail;
        }
        if (backends_choose(provider, &backends) != 0)
                goto fail;
        key = probe_set_key(provider, &key_bytes);
        if (key == NULL) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                goto fail;
        }
        obj = impl->object;
        if (obj != NULL && (obj->backends != backends ||
            obj->key_bytes != key_bytes ||
            memcmp(obj->key, key, key_bytes) != 0)) {
                /* A changed probe set: the kept object can never serve again. */
                object_retire(obj);
                impl->object = obj = NULL;
        }
        if (obj == NULL) {
                obj = object_create(provider, key, key_bytes, backends);
                if (obj == NULL)
                        goto fail;
                created = 1;
        } else {
                free(key);
        }
        object_attach_handles(obj, provider);
        if ((backends & USDT_BACKEND_DOF) && usdt_dof_load(obj, provider) != 0) {
                if (created) {
                        /* never published: no fire can be inside it */
                        object_unlink(&usdt_objects, obj);
                        usdt_sdt_retire(obj);
                        object_free(obj);
                        obj = NULL;
                }
                impl->object = obj;
                goto fail;
        }
        object_publish_handles(obj, provider);
        impl->object = obj;
        provider->enabled = 1;
        provider->file = obj;
        usdt_unlock();
        return 0;
fail:
        usdt_unlock();
        return -1;
}

static int
provider_disable_locked(usdt_provider_t *provider)
{
        struct usdt_object *obj = USDT_IMPL(provider)->object;

        if (!provider->enabled)
                return 0;
        if (obj->dof_loaded && usdt_dof_unload(obj, provider) != 0)
                return -1;
        object_withdraw(obj);
        provider->enabled = 0;
        provider->file = NULL;
        return 0;
}

USDT_EXPORT int
usdt_provider_disable(usdt_provider_t *provider)
{
        int rc;

        if (provider == NULL)
                return -1;
        usdt_lock();
        usdt_object_reap();
        rc = provider_disable_locked(provider);
        usdt_unlock();
        return rc;
}

USDT_EXPORT void
usdt_provider_free(usdt_provider_t *provider)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        usdt_probedef_t *pd, *next;

        if (provider == NULL)
                return;
        usdt_lock();
        if (provider->enabled && provider_disable_locked(provider) != 0) {
                /* The helper device refused the unload: withdraw anyway. */
                object_withdraw(impl->object);
                provider->enabled = 0;
        }
        if (impl->object != NULL)
                object_retire(impl->object);
        if (impl->preview != NULL)
                object_retire(impl->preview);
        for (pd = provider->probedefs; pd != NULL; pd = next) {
                next = pd->next;
                pd->next = NULL;
                probedef_release_locked(pd);
        }
        provider_set_text(provider, NULL);
        if (provider->error == usdt_oom_text)
                provider->error = NULL;
        free((char *)provider->name);
        free((char *)provider->module);
        free(impl);
        usdt_object_reap();
        usdt_unlock();
}

/* --- Additions ---------------------------------------------------------- */

USDT_EXPORT int
usdt_provider_dof(usdt_provider_t *provider, void **dof, size_t *size)
{
        struct usdt_provider_impl *impl = USDT_IMPL(provider);
        struct usdt_object *obj;
        size_t key_bytes = 0;
        char *key;
        int rc = -1;

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
        key = probe_set_key(provider, &key_bytes);
        if (key == NULL) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                goto out;
        }
        obj = impl->object;
        if (obj == NULL || obj->key_bytes != key_bytes ||
            memcmp(obj->key, key, key_bytes) != 0) {
                obj = impl->preview;
                if (obj != NULL && (obj->key_bytes != key_bytes ||
                    memcmp(obj->key, key, key_bytes) != 0)) {
                        object_retire(obj);
                        impl->preview = obj = NULL;
                }
                if (obj == NULL) {
                        obj = object_create(provider, key, key_bytes,
                                            USDT_BACKEND_DOF);
                        key = NULL;
                        if (obj == NULL)
                                goto out;
                        impl->preview = obj;
                }
        }
        free(key);
        rc = usdt_dof_build(provider, obj, NULL, dof, size);
out:
        usdt_unlock();
        return rc;
}

USDT_EXPORT const char *
usdt_provider_path(usdt_provider_t *provider)
{
        const struct usdt_object *obj;
        const char *path = NULL;

        if (provider == NULL)
                return NULL;
        usdt_lock();
        obj = USDT_IMPL(provider)->object;
        if (provider->enabled && obj != NULL)
                path = obj->file != NULL ? obj->file : obj->path;
        usdt_unlock();
        return path;
}

/*
 * At exit, remove the files of file-mode objects this process made. The
 * mappings go with the process; memory files need nothing.
 */
__attribute__((destructor)) static void
usdt_exit_cleanup(void)
{
        struct usdt_object *obj;
        pid_t self = getpid();

        for (obj = usdt_objects; obj != NULL; obj = obj->next)
                if (obj->file != NULL && obj->creator == self)
                        unlink(obj->file);
}
