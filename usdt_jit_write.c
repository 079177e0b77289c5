/*
 * The JIT's write path: usdt_jit_write, which puts code into an arena
 * (usdt_jit.c) through its write view, keeps published sites immutable,
 * and keeps the private copies that tracers and debuggers leave in step.
 *
 * Writing code while a tracer or debugger is attached: a uprobe or a gdb
 * breakpoint replaces the page of the R-X view that holds it by a private
 * copy, which no longer shows the page cache. So usdt_jit_write writes the
 * page cache first, then looks at /proc/self/pagemap for each page of the
 * R-X view it touched, and where the page is a private copy writes the
 * same bytes through /proc/self/mem (which writes into that copy, as a
 * debugger would; the kernel drops the copy again when the breakpoint goes
 * and it equals the file). A tracer attaching during the write copies the
 * page either after the page-cache write (then the copy is right) or before
 * the pagemap check (then the check sees the copy and fixes it), so no
 * order of the two loses a write.
 *
 * Published sites are immutable: a write that would change the instruction
 * at a published site is refused (a tracer started later would plant its
 * breakpoint from the stale note inside new code). Code is retired by
 * freeing the whole arena: one arena per code generation.
 *
 * After writing, the instruction cache is brought in step for the R-X
 * addresses (__builtin___clear_cache: nothing on x86, dc cvau, ic ivau and
 * isb on aarch64).
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/*
 * Write bytes [from, to) of the arena, as the page cache has them, into the
 * private copy of the R-X view, leaving out the instructions of published
 * sites: there a tracer's breakpoint may stand, and the kernel takes it out
 * again only if it finds it there (the site's bytes cannot have changed:
 * usdt_jit_write refuses that).
 */
static int
write_private(usdt_jit_t *jit, int mem, size_t from, size_t to)
{
        size_t at = from, i;

        while (at < to) {
                size_t end = to, skip_to = at;

                for (i = 0; i < jit->nsites; i++) {
                        const struct jit_site *s = &jit->sites[i];
                        if (!s->published || s->offset + s->insn_bytes <= at ||
                            s->offset >= end)
                                continue;
                        if (s->offset <= at) {
                                if (s->offset + s->insn_bytes > skip_to)
                                        skip_to = s->offset + s->insn_bytes;
                        } else {
                                end = s->offset;
                        }
                }
                if (skip_to > at) {             /* a site starts here: step over */
                        at = skip_to < to ? skip_to : to;
                        continue;
                }
                if (usdt_write_all_at(mem, jit->write_view + at, end - at,
                                 (off_t)((uintptr_t)jit->code + at)) != 0)
                        return -1;
                at = end;
        }
        return 0;
}

/*
 * Make the R-X view show bytes [offset, offset + bytes) of the page cache
 * on every page where a tracer or debugger holds a private copy (see the
 * top of this file). Returns 0, or -1 with the error set.
 */
static int
sync_private_copies(usdt_jit_t *jit, size_t offset, size_t bytes)
{
        size_t page_bytes = usdt_page_bytes();  /* pagemap has one entry a page */
        size_t first = offset / page_bytes, last = (offset + bytes - 1) / page_bytes, page;
        int pagemap = -1, mem = -1, rc = 0;

        for (page = first; page <= last && rc == 0; page++) {
                uintptr_t vaddr = (uintptr_t)jit->code + page * page_bytes;
                size_t from = page == first ? offset : page * page_bytes;
                size_t to = page == last ? offset + bytes : (page + 1) * page_bytes;
                uint64_t entry = 0;
                int present, swapped, file;

                if (pagemap < 0)
                        pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
                if (pagemap < 0 ||
                    pread(pagemap, &entry, 8, (off_t)(vaddr / page_bytes * 8)) != 8) {
                        usdt_jit_error(jit, "usdt_jit_write: /proc/self/pagemap: %s",
                                  strerror(errno));
                        rc = -1;
                        break;
                }
                /* bit 63: present; 62: swapped (only private copies are);
                 * 61: a file page. Otherwise the page shows the page cache. */
                present = (int)(entry >> 63 & 1);
                swapped = (int)(entry >> 62 & 1);
                file = (int)(entry >> 61 & 1);
                if (!swapped && (!present || file))
                        continue;
                if (mem < 0)
                        mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
                if (mem < 0 || write_private(jit, mem, from, to) != 0) {
                        usdt_jit_error(jit, "usdt_jit_write: cannot update the copy of "
                                  "page %p a tracer holds: /proc/self/mem: %s",
                                  (void *)vaddr, strerror(errno));
                        rc = -1;
                }
        }
        if (pagemap >= 0)
                close(pagemap);
        if (mem >= 0)
                close(mem);
        return rc;
}

USDT_EXPORT int
usdt_jit_write(usdt_jit_t *jit, void *dst, const void *src, size_t bytes)
{
        long offset;
        size_t i;
        int rc = -1, caller_errno = errno;

        if (jit == NULL)
                return -1;
        pthread_mutex_lock(&jit->lock);
        if (usdt_jit_check_process(jit, "usdt_jit_write") != 0)
                goto out;
        if (src == NULL && bytes > 0) {
                usdt_jit_error(jit, "usdt_jit_write: src is NULL");
                goto out;
        }
        offset = usdt_jit_offset(jit, "usdt_jit_write", dst, bytes);
        if (offset < 0)
                goto out;
        if (bytes == 0) {
                rc = 0;
                goto out;
        }
        for (i = 0; i < jit->nsites; i++) {
                const struct jit_site *s = &jit->sites[i];
                size_t lo, hi;

                if (!s->published || s->offset + s->insn_bytes <= (size_t)offset ||
                    s->offset >= (size_t)offset + bytes)
                        continue;
                lo = s->offset > (size_t)offset ? s->offset : (size_t)offset;
                hi = s->offset + s->insn_bytes < (size_t)offset + bytes
                     ? s->offset + s->insn_bytes : (size_t)offset + bytes;
                if (memcmp((const unsigned char *)src + (lo - (size_t)offset),
                           s->insn + (lo - s->offset), hi - lo) != 0) {
                        usdt_jit_error(jit, "usdt_jit_write: it would change the instruction "
                                  "at published site %s:%s (arena offset %zu); published "
                                  "sites are immutable: free the arena to retire code",
                                  jit->probes[s->probe].provider,
                                  jit->probes[s->probe].name, s->offset);
                        goto out;
                }
        }
        memcpy(jit->write_view + offset, src, bytes);
        if (sync_private_copies(jit, (size_t)offset, bytes) != 0)
                goto out;
        __builtin___clear_cache((char *)jit->code + offset,
                                (char *)jit->code + offset + bytes);
        rc = 0;
out:
        pthread_mutex_unlock(&jit->lock);
        if (rc == 0)
                errno = caller_errno;
        return rc;
}
