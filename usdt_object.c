/*
 * The life of published objects.
 *
 * An object goes through:
 *   created   stubs built and loaded (usdt_object_create, without the lock:
 *             it runs the dynamic loader); no handle points into it yet.
 *   published its provider is enabled; the handles point into it.
 *   kept      its provider is disabled; handles withdrawn; ready to be
 *             published again if the probe set is unchanged. At most
 *             USDT_KEPT_MAX objects are kept; past that the least recently
 *             disabled is retired. An object that DTrace was given is never
 *             kept (its stub addresses must not be named twice).
 *   retired   never published again. At once: its handles are pointed away,
 *             its file (file mode) is unlinked, and the fence runs
 *             (usdt_fire.c). If then no counted reader is inside, it goes
 *             to the unload list; otherwise to the graveyard, which every
 *             control call looks at again.
 *   unloaded  by whoever drops the lock next (usdt_unlock in usdt_lock.c):
 *             dlclose or munmap, and its descriptor closed if still ours.
 *
 * The invariant: an object's memory is unmapped only when every handle
 * that ever pointed into it has been pointed away, the fence has returned
 * since, and no handle of it shows a counted reader in flight. By
 * usdt_fire.c that means no thread can still read or run any of it. No
 * timer or grace period takes part.
 *
 * A retired object stays visible to tracers only while a counted reader
 * is inside it (a traced fire, between its count and its return): when the
 * control call that retired an object returns, a tracer that starts then
 * sees only the live and kept objects, each once.
 *
 * Everything here runs under the library lock, except usdt_object_create
 * and usdt_object_unload, which run without it.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const volatile uint16_t usdt_zero_semaphore = 0;

static struct usdt_object *usdt_objects;        /* published or kept */
static struct usdt_object *usdt_kept_oldest, *usdt_kept_newest;
static size_t usdt_kept_count;
static struct usdt_object *usdt_graveyard;      /* retired, readers inside */
static struct usdt_object *usdt_unload_list;    /* retired, quiet */

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
        __atomic_store_n(&h->pub.isenabled_addr, usdt_never_enabled,
                         __ATOMIC_SEQ_CST);
}

void
usdt_handle_put(struct usdt_handle *h)
{
        if (h != NULL && --h->refcnt == 0)
                free(h);
}

/* --- The probe set ------------------------------------------------------ */

/* Give back what usdt_probe_set_take (usdt_enable.c) made. */
void
usdt_probe_set_free(struct usdt_probe_set *set)
{
        size_t i;

        if (set->probes != NULL)
                for (i = 0; i < set->nprobes; i++)
                        usdt_handle_put(set->probes[i].handle);
        free(set->probes);
        free(set->key);
        free(set->provider);
        free(set->module);
        memset(set, 0, sizeof(*set));
}

/* --- Stub addresses DTrace has seen ------------------------------------- */

/*
 * Ranges of SDT objects that DTrace was given and whose addresses could not
 * be kept reserved after their unload (usdt_sdt_unload): a new object for
 * DTrace must not land on one. Normally empty. Own lock: read by
 * usdt_object_create, which runs without the library lock.
 */
struct dof_range { uintptr_t start, end; };
static pthread_mutex_t dof_ranges_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct dof_range *dof_ranges;
static size_t dof_ranges_count;

static void
dof_range_add(uintptr_t start, size_t bytes)
{
        struct dof_range *grown;

        pthread_mutex_lock(&dof_ranges_mutex);
        grown = realloc(dof_ranges, (dof_ranges_count + 1) * sizeof(*grown));
        if (grown != NULL) {
                dof_ranges = grown;
                dof_ranges[dof_ranges_count].start = start;
                dof_ranges[dof_ranges_count].end = start + bytes;
                dof_ranges_count++;
        }
        pthread_mutex_unlock(&dof_ranges_mutex);
}

static int
dof_range_used(const struct usdt_object *obj)
{
        uintptr_t start = (uintptr_t)obj->stubs;
        uintptr_t end = start + obj->set.nprobes * USDT_STUB_SIZE;
        int used = 0;
        size_t i;

        pthread_mutex_lock(&dof_ranges_mutex);
        for (i = 0; i < dof_ranges_count && !used; i++)
                used = start < dof_ranges[i].end && dof_ranges[i].start < end;
        pthread_mutex_unlock(&dof_ranges_mutex);
        return used;
}

/* --- Creating and unloading (without the lock) -------------------------- */

static void
object_storage_free(struct usdt_object *obj)
{
        if (usdt_sdt_unload(obj) != 0)
                dof_range_add(obj->load_base, obj->load_bytes);
        usdt_stubs_anon_destroy(obj);
        free(obj->dof_buffer);
        free(obj);
}

/*
 * A new object for the set, with stubs for the given backends (SDT: in an
 * ELF object, loaded; else anonymous pages). Takes the set (on success
 * and on failure). Runs without the library lock. Returns NULL with err
 * set on failure, having left nothing behind.
 */
struct usdt_object *
usdt_object_create(struct usdt_probe_set *set, int backends, struct usdt_err *err)
{
        struct usdt_object *obj, *held = NULL;
        int attempts;

        for (attempts = 0; attempts < 64; attempts++) {
                int rc;

                obj = calloc(1, sizeof(*obj));
                if (obj == NULL) {
                        usdt_err_set(err, "failed to allocate memory");
                        break;
                }
                obj->fd = -1;
                obj->set = *set;
                obj->backends = backends;
                rc = (backends & USDT_BACKEND_SDT) ? usdt_sdt_load(obj, err)
                                                   : usdt_stubs_anon_create(obj, err);
                if (rc != 0) {
                        free(obj);
                        obj = NULL;
                        break;
                }
                if (!(backends & USDT_BACKEND_DOF) || !dof_range_used(obj))
                        break;
                /* Landed where DTrace once had stubs: hold this one (so the
                 * next lands elsewhere) and try again. */
                obj->next = held;
                held = obj;
                obj = NULL;
        }
        if (obj == NULL && held != NULL && err->text[0] == '\0')
                usdt_err_set(err, "failed to allocate page-aligned memory");
        while (held != NULL) {
                struct usdt_object *next = held->next;
                memset(&held->set, 0, sizeof(held->set));
                object_storage_free(held);
                held = next;
        }
        if (obj == NULL) {
                usdt_probe_set_free(set);
                return NULL;
        }
        memset(set, 0, sizeof(*set));
        return obj;
}

/* Detach the objects to unload (under the lock). */
struct usdt_object *
usdt_object_take_unload(void)
{
        struct usdt_object *list = usdt_unload_list;

        usdt_unload_list = NULL;
        return list;
}

/* Unload what usdt_object_take_unload returned (without the lock). */
void
usdt_object_unload(struct usdt_object *list)
{
        while (list != NULL) {
                struct usdt_object *next = list->next;
                object_storage_free(list);
                list = next;
        }
}

/* --- Lists (under the lock) --------------------------------------------- */

void
usdt_object_link(struct usdt_object *obj, struct usdt_provider_impl *owner)
{
        obj->owner = owner;
        obj->prev = NULL;
        obj->next = usdt_objects;
        if (usdt_objects != NULL)
                usdt_objects->prev = obj;
        usdt_objects = obj;
}

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

void
usdt_object_unkeep(struct usdt_object *obj)
{
        if (!obj->kept)
                return;
        if (obj->kept_prev != NULL)
                obj->kept_prev->kept_next = obj->kept_next;
        else
                usdt_kept_oldest = obj->kept_next;
        if (obj->kept_next != NULL)
                obj->kept_next->kept_prev = obj->kept_prev;
        else
                usdt_kept_newest = obj->kept_prev;
        obj->kept_prev = obj->kept_next = NULL;
        obj->kept = 0;
        usdt_kept_count--;
}

/*
 * A disabled provider keeps its object for re-use, within the bound: the
 * least recently kept object beyond USDT_KEPT_MAX is retired, and its
 * provider will build a new one at its next enable.
 */
void
usdt_object_keep(struct usdt_object *obj)
{
        obj->kept = 1;
        obj->kept_next = NULL;
        obj->kept_prev = usdt_kept_newest;
        if (usdt_kept_newest != NULL)
                usdt_kept_newest->kept_next = obj;
        else
                usdt_kept_oldest = obj;
        usdt_kept_newest = obj;
        usdt_kept_count++;
        while (usdt_kept_count > USDT_KEPT_MAX) {
                struct usdt_object *oldest = usdt_kept_oldest;
                if (oldest->owner != NULL && oldest->owner->object == oldest)
                        oldest->owner->object = NULL;
                usdt_object_retire(oldest);
        }
}

/* --- Publishing --------------------------------------------------------- */

static int
handle_in_object(const struct usdt_handle *h, const struct usdt_object *obj)
{
        const unsigned char *addr = h->pub.probe_addr;

        return addr >= obj->stubs &&
               addr < obj->stubs + obj->set.nprobes * USDT_STUB_SIZE;
}

/* Point the set's handles into the object; fill each probedef->probe. */
void
usdt_object_publish(struct usdt_object *obj)
{
        size_t i;

        for (i = 0; i < obj->set.nprobes; i++) {
                struct usdt_handle *h = obj->set.probes[i].handle;
                unsigned char *stub = obj->stubs + i * USDT_STUB_SIZE;

                __atomic_store_n(&h->pub.isenabled_addr,
                                 (int (*)(void))(void *)stub, __ATOMIC_SEQ_CST);
                __atomic_store_n(&h->semaphore, obj->semaphores != NULL
                                 ? &obj->semaphores[i] : &usdt_zero_semaphore,
                                 __ATOMIC_SEQ_CST);
                __atomic_store_n(&h->call_isenabled,
                                 (obj->backends & USDT_BACKEND_DOF) != 0,
                                 __ATOMIC_SEQ_CST);
                __atomic_store_n(&h->pub.probe_addr, stub + USDT_STUB_ENTRY,
                                 __ATOMIC_SEQ_CST);
                if (h->owner != NULL)
                        h->owner->probe = &h->pub;
        }
}

/*
 * Withdraw an object's handles: they fire nothing and read 0 from now on,
 * and every probedef that showed one, listed or removed since, shows NULL.
 */
void
usdt_object_withdraw(struct usdt_object *obj)
{
        size_t i;

        for (i = 0; i < obj->set.nprobes; i++) {
                struct usdt_handle *h = obj->set.probes[i].handle;
                if (h == NULL || !handle_in_object(h, obj))
                        continue;
                usdt_handle_reset(h);
                if (h->owner != NULL)
                        h->owner->probe = NULL;
        }
}

/* --- Retiring and reclaiming -------------------------------------------- */

/* Whether a counted reader may be inside the object: see usdt_fire.c. */
static int
object_has_readers(const struct usdt_object *obj)
{
        size_t i;

        for (i = 0; i < obj->set.nprobes; i++) {
                const struct usdt_handle *h = obj->set.probes[i].handle;
                if (h != NULL && __atomic_load_n(&h->inflight, __ATOMIC_SEQ_CST) != 0)
                        return 1;
        }
        return 0;
}

/* A quiet object needs no handle any more: drop the references now (they
 * are counted under the lock) and queue it for unloading. */
static void
object_queue_unload(struct usdt_object *obj)
{
        usdt_probe_set_free(&obj->set);
        obj->next = usdt_unload_list;
        usdt_unload_list = obj;
}

/*
 * Retire an object: from now on no handle points into it, no tracer that
 * starts finds its file, and it is unloaded as soon as the invariant above
 * allows: at once (by the caller's usdt_unlock) unless a counted reader is
 * inside it. The caller has unloaded its DOF and cleared the owner's
 * pointer to it.
 */
void
usdt_object_retire(struct usdt_object *obj)
{
        usdt_object_withdraw(obj);
        usdt_object_unkeep(obj);
        object_unlink(obj);
        obj->owner = NULL;
        usdt_sdt_unpublish(obj);
        if (usdt_fire_fence() == 0 && !object_has_readers(obj)) {
                object_queue_unload(obj);
        } else {
                obj->next = usdt_graveyard;
                usdt_graveyard = obj;
        }
}

/* Queue for unloading every retired object no reader is inside any more. */
void
usdt_object_reap(void)
{
        struct usdt_object **link = &usdt_graveyard, *obj;

        if (usdt_graveyard == NULL || usdt_fire_fence() != 0)
                return;
        while ((obj = *link) != NULL) {
                if (!object_has_readers(obj)) {
                        *link = obj->next;
                        object_queue_unload(obj);
                } else {
                        link = &obj->next;
                }
        }
}

/*
 * In a forked child, under the lock taken before the fork: only the
 * forking thread exists, and it is in fork, so no reader is inside any
 * object. Counts left by readers of threads that did not come along are
 * cleared, or the child could never reclaim those objects.
 */
void
usdt_object_atfork_child(void)
{
        struct usdt_object *lists[2] = { usdt_objects, usdt_graveyard }, *obj;
        size_t l, i;

        usdt_fire_atfork_child();
        for (l = 0; l < 2; l++)
                for (obj = lists[l]; obj != NULL; obj = obj->next)
                        for (i = 0; i < obj->set.nprobes; i++)
                                if (obj->set.probes[i].handle != NULL)
                                        obj->set.probes[i].handle->inflight = 0;
}

/*
 * At exit, remove the files of file-mode objects this process made. The
 * mappings go with the process; memory files need nothing.
 */
__attribute__((destructor)) static void
usdt_exit_cleanup(void)
{
        struct usdt_object *lists[2] = { usdt_objects, usdt_graveyard }, *obj;
        size_t l;

        for (l = 0; l < 2; l++)
                for (obj = lists[l]; obj != NULL; obj = obj->next)
                        usdt_sdt_unpublish(obj);
}
