/*
 * The library's one lock, and what goes with it: the fork handlers that
 * keep a child usable, and the providers whose enable is loading an object
 * with the lock dropped.
 *
 * Invariants kept here:
 * - Every control call (usdt.c, usdt_enable.c) runs under usdt_lock and
 *   leaves through usdt_unlock, which unloads the objects retired meanwhile
 *   only after dropping the lock.
 * - The dynamic loader is never called with the lock held: enable loads a
 *   new object through usdt_object_create_unlocked, and usdt_unlock unloads
 *   after dropping it. (glibc runs constructors under its loader lock, and
 *   a constructor may call this library: holding ours while calling the
 *   loader would deadlock.)
 * - impl->busy is 1 exactly while its provider is on the usdt_busy list,
 *   loading its object with the lock dropped; other enables, disables and
 *   frees of that provider wait for it (usdt_provider_wait_idle).
 * - A fork child gets the lock free and no provider busy: the threads that
 *   held them did not come along.
 * Firing and usdt_is_enabled take no lock; see usdt_fire.c.
 */
#include "usdt_internal.h"

#include <pthread.h>

static pthread_mutex_t usdt_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t usdt_cond = PTHREAD_COND_INITIALIZER;
static pthread_once_t usdt_once = PTHREAD_ONCE_INIT;

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
void
usdt_provider_wait_idle(struct usdt_provider_impl *impl)
{
        while (impl->busy)
                pthread_cond_wait(&usdt_cond, &usdt_mutex);
}

/*
 * Build and load the provider's new object with the lock dropped (called
 * and returning with it held): the dynamic loader may run a constructor
 * that calls this library. The provider is busy meanwhile, so no other
 * call changes it; they wait in usdt_provider_wait_idle.
 */
struct usdt_object *
usdt_object_create_unlocked(struct usdt_provider_impl *impl,
                            struct usdt_probe_set *set, int backends,
                            struct usdt_err *err)
{
        struct usdt_object *obj;

        provider_set_busy(impl, 1);
        pthread_mutex_unlock(&usdt_mutex);
        obj = usdt_object_create(set, backends, err);
        pthread_mutex_lock(&usdt_mutex);
        provider_set_busy(impl, 0);
        return obj;
}
