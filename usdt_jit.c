/*
 * The low-level API for language VMs (Linux SDT only): an executable arena
 * that a JIT writes its code into, with probe sites declared at addresses
 * inside it, traced by bpftrace, gdb, bcc and libbpf like compiled-in ones.
 *
 * The arena is the text of an SDT object (usdt_elf.c) in a memory file:
 *   - the R-X view is the object as dlopen maps it (MAP_PRIVATE of the
 *     file), so tracers find it in /proc/PID/maps and gdb in the loader's
 *     list, and uprobes attach to (file, offset);
 *   - the write view is a second mapping of the arena's file range,
 *     MAP_SHARED read-write and never executable: code written there lands
 *     in the page cache, which the R-X view shows;
 *   - the semaphores are in the object's writable segment, one per probe
 *     (provider, name), at most USDT_JIT_PROBES_MAX;
 *   - the notes are the file's last bytes: publishing appends the new notes
 *     and then writes the note section's new size, so a tracer that starts
 *     afterwards reads every published site, and one that reads
 *     meanwhile sees the old, complete set.
 *
 * Writing code, and why it is correct while a tracer or debugger is
 * attached: usdt_jit_write.c.
 *
 * A fork child keeps the R-X view (it shares the page cache, so it sees
 * the parent's later writes) but not the write view (MADV_DONTFORK), and
 * every call but usdt_jit_code and usdt_jit_semaphore fails there.
 *
 * Each arena has its own lock; arenas take no library lock, and never
 * call the loader with their lock held by anyone else waiting on the
 * library.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Why the last usdt_jit_create on this thread failed: usdt_jit_errstr(NULL). */
static __thread char jit_create_error[320];

void
usdt_jit_error(usdt_jit_t *jit, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(jit->error, sizeof(jit->error), fmt, ap);
        va_end(ap);
}

static void
jit_release(usdt_jit_t *jit)
{
        size_t i;

        /* a fork child never had the write view: its address may be
         * someone else's mapping there */
        if (jit->write_view != NULL && jit->creator == getpid())
                munmap(jit->write_view, jit->code_bytes);
        if (jit->dl != NULL)
                dlclose(jit->dl);
        usdt_fd_close_if_same(jit->fd, jit->fd_dev, jit->fd_ino);
        for (i = 0; i < jit->nprobes; i++) {
                free(jit->probes[i].provider);
                free(jit->probes[i].name);
        }
        for (i = 0; i < jit->nsites; i++)
                free(jit->sites[i].args);
        free(jit->probes);
        free(jit->sites);
        free(jit->path);
        free(jit->name);
        pthread_mutex_destroy(&jit->lock);
        free(jit);
}

USDT_EXPORT usdt_jit_t *
usdt_jit_create(const char *name, size_t code_bytes)
{
        char reason[256], memfd_name[80];
        struct usdt_elf_spec spec;
        struct link_map *map = NULL;
        unsigned char *img;
        struct timespec now;
        struct stat st;
        usdt_jit_t *jit;
        int saved, caller_errno = errno;

        if (usdt_provider_check(reason, sizeof(reason), name, "jit") != NULL) {
                snprintf(jit_create_error, sizeof(jit_create_error),
                         "usdt_jit_create: %s", reason);
                errno = EINVAL;
                return NULL;
        }
        if (code_bytes == 0 || code_bytes > USDT_JIT_CODE_MAX) {
                snprintf(jit_create_error, sizeof(jit_create_error),
                         "usdt_jit_create: code_bytes must be 1 to %zu, not %zu",
                         USDT_JIT_CODE_MAX, code_bytes);
                errno = EINVAL;
                return NULL;
        }
        jit = calloc(1, sizeof(*jit));
        if (jit == NULL) {
                snprintf(jit_create_error, sizeof(jit_create_error),
                         "usdt_jit_create: failed to allocate memory");
                return NULL;
        }
        pthread_mutex_init(&jit->lock, NULL);
        jit->fd = -1;
        jit->creator = getpid();
        jit->code_bytes = usdt_page_round(code_bytes);
        jit->name = strdup(name);
        jit->probes = calloc(USDT_JIT_PROBES_MAX, sizeof(*jit->probes));
        if (jit->name == NULL || jit->probes == NULL)
                goto fail;

        clock_gettime(CLOCK_REALTIME, &now);
        spec.set = NULL;
        spec.name = name;
        spec.arena_bytes = jit->code_bytes;
        spec.nsemaphores = USDT_JIT_PROBES_MAX;
        spec.id_salt = (uint64_t)(uintptr_t)jit ^ ((uint64_t)getpid() << 32) ^
                       (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20);
        img = usdt_elf_build(&spec, &jit->info, NULL, NULL);
        if (img == NULL)
                goto fail;
        memcpy(memfd_name, "libusdt-jit:", 12);         /* as for providers */
        usdt_name_publish(memfd_name + 12, sizeof(memfd_name) - 12, name);
        jit->fd = usdt_memfd_exec(memfd_name, 0);
        if (jit->fd < 0 || usdt_write_all_at(jit->fd, img, jit->info.bytes, 0) != 0 ||
            fstat(jit->fd, &st) != 0) {
                saved = errno;
                free(img);
                errno = saved;
                goto fail;
        }
        free(img);
        jit->fd_dev = st.st_dev;
        jit->fd_ino = st.st_ino;
        if (asprintf(&jit->path, "/proc/%d/fd/%d", (int)getpid(), jit->fd) < 0) {
                jit->path = NULL;
                goto fail;
        }
        jit->dl = dlopen(jit->path, RTLD_NOW | RTLD_LOCAL);
        if (jit->dl == NULL || dlinfo(jit->dl, RTLD_DI_LINKMAP, &map) != 0) {
                errno = ENOEXEC;
                goto fail;
        }
        jit->code = (unsigned char *)map->l_addr + jit->info.text_offset;
        jit->semaphores = (volatile uint16_t *)(map->l_addr + jit->info.semaphores_offset);
        jit->write_view = mmap(NULL, jit->code_bytes, PROT_READ | PROT_WRITE,
                               MAP_SHARED, jit->fd, (off_t)jit->info.text_offset);
        if (jit->write_view == MAP_FAILED) {
                jit->write_view = NULL;
                goto fail;
        }
        /* a child must not write the parent's code */
        madvise(jit->write_view, jit->code_bytes, MADV_DONTFORK);
        jit_create_error[0] = '\0';
        errno = caller_errno;           /* success leaves errno alone */
        return jit;
fail:
        saved = errno ? errno : ENOMEM;
        snprintf(jit_create_error, sizeof(jit_create_error),
                 "usdt_jit_create: cannot make the arena %s: %s%s", name,
                 strerror(saved), saved == EACCES ? " (executable memory files are "
                 "forbidden here: vm.memfd_noexec=2)" : "");
        jit_release(jit);
        errno = saved;
        return NULL;
}

USDT_EXPORT void *
usdt_jit_code(usdt_jit_t *jit, size_t *bytes)
{
        if (jit == NULL)
                return NULL;
        if (bytes != NULL)
                *bytes = jit->code_bytes;
        return jit->code;
}

USDT_EXPORT const char *
usdt_jit_path(usdt_jit_t *jit)
{
        return jit != NULL ? jit->path : NULL;
}

USDT_EXPORT const char *
usdt_jit_errstr(usdt_jit_t *jit)
{
        return jit != NULL ? jit->error : jit_create_error;
}

/* The arena offset of [addr, addr + bytes), or -1 with the error set. */
long
usdt_jit_offset(usdt_jit_t *jit, const char *what, const void *addr, size_t bytes)
{
        uintptr_t a = (uintptr_t)addr, start = (uintptr_t)jit->code;

        if (a < start || a - start > jit->code_bytes ||
            bytes > jit->code_bytes - (a - start)) {
                usdt_jit_error(jit, "%s: %p..+%zu is not inside the arena %s (%p, %zu bytes)",
                          what, addr, bytes, jit->name, (void *)jit->code,
                          jit->code_bytes);
                return -1;
        }
        return (long)(a - start);
}

/* 0 in the process that made the arena, else -1 with the error set. */
int
usdt_jit_check_process(usdt_jit_t *jit, const char *what)
{
        if (jit->creator == getpid())
                return 0;
        usdt_jit_error(jit, "%s: arena %s belongs to process %d; a forked child can "
                  "run its code but not change it", what, jit->name, (int)jit->creator);
        return -1;
}

/* The probe (provider, name), added if new; -1 with the error set. */
static long
jit_probe(usdt_jit_t *jit, const char *what, const char *provider, const char *name)
{
        char reason[256];
        size_t i;

        if (usdt_provider_check(reason, sizeof(reason), provider, "jit") != NULL ||
            usdt_probe_name_check(reason, sizeof(reason), name) != NULL) {
                usdt_jit_error(jit, "%s: %s", what, reason);
                return -1;
        }
        /* names that publish alike are one probe to a tracer: one semaphore */
        for (i = 0; i < jit->nprobes; i++)
                if (usdt_names_publish_alike(jit->probes[i].provider, provider) &&
                    usdt_names_publish_alike(jit->probes[i].name, name))
                        return (long)i;
        if (jit->nprobes == USDT_JIT_PROBES_MAX) {
                usdt_jit_error(jit, "%s: arena %s has its %d probes already", what,
                          jit->name, USDT_JIT_PROBES_MAX);
                return -1;
        }
        jit->probes[i].provider = strdup(provider);
        jit->probes[i].name = strdup(name);
        if (jit->probes[i].provider == NULL || jit->probes[i].name == NULL) {
                free(jit->probes[i].provider);
                free(jit->probes[i].name);
                jit->probes[i].provider = jit->probes[i].name = NULL;
                usdt_jit_error(jit, "%s: failed to allocate memory", what);
                return -1;
        }
        jit->nprobes++;
        return (long)i;
}

USDT_EXPORT const volatile unsigned short *
usdt_jit_semaphore(usdt_jit_t *jit, const char *provider, const char *name)
{
        const volatile unsigned short *semaphore = NULL;
        long probe;

        if (jit == NULL)
                return NULL;
        pthread_mutex_lock(&jit->lock);
        probe = jit_probe(jit, "usdt_jit_semaphore", provider, name);
        if (probe >= 0)
                semaphore = &jit->semaphores[probe];
        pthread_mutex_unlock(&jit->lock);
        return semaphore;
}

USDT_EXPORT int
usdt_jit_add_site(usdt_jit_t *jit, const char *provider, const char *name,
                  const void *site, const char *args)
{
        char reason[256];
        struct jit_site *s;
        long probe, offset;
        size_t i;
        int rc = -1;

        if (jit == NULL)
                return -1;
        pthread_mutex_lock(&jit->lock);
        if (usdt_jit_check_process(jit, "usdt_jit_add_site") != 0)
                goto out;
        offset = usdt_jit_offset(jit, "usdt_jit_add_site", site, 1);
        if (offset < 0)
                goto out;
        if (offset % USDT_INSN_ALIGN != 0) {
                usdt_jit_error(jit, "usdt_jit_add_site: %p is not on an instruction boundary "
                          "(instructions start every %d bytes here)", site, USDT_INSN_ALIGN);
                goto out;
        }
        if (args == NULL)
                args = "";
        if (usdt_sdt_args_check(reason, sizeof(reason), args) != NULL) {
                usdt_jit_error(jit, "usdt_jit_add_site: %s", reason);
                goto out;
        }
        for (i = 0; i < jit->nsites; i++) {
                if (jit->sites[i].offset == (size_t)offset) {
                        usdt_jit_error(jit, "usdt_jit_add_site: a site is declared at %p "
                                  "already (%s:%s)", site,
                                  jit->probes[jit->sites[i].probe].provider,
                                  jit->probes[jit->sites[i].probe].name);
                        goto out;
                }
        }
        probe = jit_probe(jit, "usdt_jit_add_site", provider, name);
        if (probe < 0)
                goto out;
        if (jit->nsites == jit->sites_capacity) {
                size_t capacity = jit->sites_capacity ? 2 * jit->sites_capacity : 16;
                struct jit_site *grown = realloc(jit->sites, capacity * sizeof(*grown));
                if (grown == NULL) {
                        usdt_jit_error(jit, "usdt_jit_add_site: failed to allocate memory");
                        goto out;
                }
                jit->sites = grown;
                jit->sites_capacity = capacity;
        }
        s = &jit->sites[jit->nsites];
        memset(s, 0, sizeof(*s));
        s->args = strdup(args);
        if (s->args == NULL) {
                usdt_jit_error(jit, "usdt_jit_add_site: failed to allocate memory");
                goto out;
        }
        s->probe = (size_t)probe;
        s->offset = (size_t)offset;
        jit->nsites++;
        rc = 0;
out:
        pthread_mutex_unlock(&jit->lock);
        return rc;
}

USDT_EXPORT int
usdt_jit_publish(usdt_jit_t *jit)
{
        struct usdt_buf notes = { 0 };
        uint64_t size;
        size_t i;
        int rc = -1, caller_errno = errno;

        if (jit == NULL)
                return -1;
        pthread_mutex_lock(&jit->lock);
        if (usdt_jit_check_process(jit, "usdt_jit_publish") != 0)
                goto out;
        for (i = 0; i < jit->nsites; i++) {
                const struct jit_site *s = &jit->sites[i];
                if (s->published)
                        continue;
                usdt_elf_note(&notes, jit->probes[s->probe].provider,
                              jit->probes[s->probe].name, s->args,
                              jit->info.text_offset + s->offset, jit->info.base_offset,
                              jit->info.semaphores_offset + 2 * s->probe);
        }
        if (notes.failed) {
                usdt_jit_error(jit, "usdt_jit_publish: failed to allocate memory");
                goto out;
        }
        /* the notes first, then the size that makes tracers read them */
        size = jit->notes_bytes + notes.size;
        if (notes.size > 0 &&
            (usdt_write_all_at(jit->fd, notes.data, notes.size,
                          (off_t)(jit->info.notes_offset + jit->notes_bytes)) != 0 ||
             usdt_write_all_at(jit->fd, &size, USDT_WORD_BYTES,
                          (off_t)jit->info.notes_size_at) != 0)) {
                usdt_jit_error(jit, "usdt_jit_publish: cannot write the notes of arena %s: %s",
                          jit->name, strerror(errno));
                goto out;
        }
        jit->notes_bytes = (size_t)size;
        for (i = 0; i < jit->nsites; i++) {
                struct jit_site *s = &jit->sites[i];
                if (s->published)
                        continue;
                s->published = 1;
                s->insn_bytes = usdt_site_insn_bytes(jit->write_view + s->offset,
                                                     jit->code_bytes - s->offset);
                memcpy(s->insn, jit->write_view + s->offset, s->insn_bytes);
        }
        rc = 0;
out:
        usdt_buf_free(&notes);
        pthread_mutex_unlock(&jit->lock);
        if (rc == 0)
                errno = caller_errno;
        return rc;
}

USDT_EXPORT void
usdt_jit_free(usdt_jit_t *jit)
{
        if (jit == NULL)
                return;
        jit_release(jit);
}
