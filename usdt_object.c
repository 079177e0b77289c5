/*
 * Handles, firing, and the life of published objects.
 *
 * A handle (what probedef->probe points at) is reference counted: its
 * probedef holds one reference, every object that publishes it one more.
 * An object goes through: created (stubs built, not yet reachable) ->
 * published (handles point into it) -> kept (provider disabled, handles
 * withdrawn, object ready for re-use) -> retired (can never be published
 * again: on the graveyard) -> freed, in usdt_object_reap, once no fire can
 * be inside it and no usdt_is_enabled can be reading its semaphores.
 * Everything here but the firing runs under the library lock.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a retired object stays mapped at least: a usdt_is_enabled that
 * read the handle's semaphore pointer just before the disable still
 * dereferences it. Fires are tracked exactly (handle->inflight). */
#define USDT_GRACE_NS           (20 * 1000 * 1000L)

static const volatile uint16_t usdt_zero_semaphore = 0;

/* Every object published or kept (not retired). */
static struct usdt_object *usdt_objects;

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

/* --- Objects ------------------------------------------------------------ */

/*
 * The probe set as one byte string: two objects with the same key have
 * the same stubs, notes and DOF, so a kept object can be published again.
 */
char *
usdt_probe_set_key(const usdt_provider_t *provider, size_t *key_bytes)
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
                size_t f = strlen(pd->function) + 1, n = strlen(pd->name) + 1;
                memcpy(key + used, pd->function, f);
                memcpy(key + used + f, pd->name, n);
                used += f + n;
                key[used++] = (char)('A' + pd->argc);
                for (i = 0; i < pd->argc; i++) {
                        size_t t = pd->types[i] ? strlen(pd->types[i]) : 0;
                        memcpy(key + used, pd->types[i] ? pd->types[i] : "", t);
                        key[used + t] = '\0';
                        used += t + 1;
                }
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

/* Take an object off the list of live objects, in O(1). */
static void
object_unlink(struct usdt_object *obj)
{
        if (obj->prev != NULL)
                obj->prev->next = obj->next;
        else if (usdt_objects == obj)
                usdt_objects = obj->next;
        if (obj->next != NULL)
                obj->next->prev = obj->prev;
        obj->next = obj->prev = NULL;
}

/*
 * A new object for the provider's current probes, stubs built for the
 * given backends (SDT: in an ELF object; else anonymous pages). Takes key.
 */
struct usdt_object *
usdt_object_create(usdt_provider_t *provider, char *key, size_t key_bytes,
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
        obj->prev = NULL;
        obj->next = usdt_objects;
        if (usdt_objects != NULL)
                usdt_objects->prev = obj;
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
void
usdt_object_withdraw(struct usdt_object *obj)
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

/* An object that failed before it was ever published: no fire can be
 * inside it, so it goes at once. */
void
usdt_object_discard(struct usdt_object *obj)
{
        object_unlink(obj);
        usdt_sdt_retire(obj);
        object_free(obj);
}

/* Retired objects wait here until no fire can be inside them. */
static struct usdt_object *usdt_graveyard;

void
usdt_object_retire(struct usdt_object *obj)
{
        usdt_object_withdraw(obj);
        object_unlink(obj);
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
void
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

void
usdt_object_attach_handles(struct usdt_object *obj, usdt_provider_t *provider)
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

void
usdt_object_publish_handles(struct usdt_object *obj, usdt_provider_t *provider)
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
