/*
 * Tracepoint stubs: the per-probe copy of the template in
 * usdt_tracepoints_<arch>.s, where arguments sit at the probe site (the
 * SDT location strings), and the anonymous stub memory used when DOF is
 * the only backend (DTrace's fasttrap traces any user address; Linux
 * uprobes need a file, so the SDT backend puts stubs in its ELF object).
 *
 * Stub memory is never writable and executable at once: pages are mapped
 * writable, filled, then switched to read+execute.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Where argument i is at the SDT site, as the note's "N@LOCATION" location
 * part. Integers are announced signed ("-8@"), strings unsigned ("8@"):
 * the caller adds the size prefix.
 */
#if defined(__x86_64__)
static const char *const sdt_arg_locations[USDT_SDT_ARG_MAX] = {
        "%rdi", "%rsi", "%rdx", "%rcx", "%r8", "%r9",
        "0(%rsp)", "8(%rsp)", "16(%rsp)", "24(%rsp)", "32(%rsp)", "40(%rsp)"
};
#elif defined(__i386__)
static const char *const sdt_arg_locations[USDT_SDT_ARG_MAX] = {
        "0(%esp)", "4(%esp)", "8(%esp)", "12(%esp)", "16(%esp)", "20(%esp)",
        "24(%esp)", "28(%esp)", "32(%esp)", "36(%esp)", "40(%esp)", "44(%esp)"
};
#endif

const char *
usdt_sdt_arg_location(size_t index)
{
        return index < USDT_SDT_ARG_MAX ? sdt_arg_locations[index] : NULL;
}

/*
 * Write one stub into dst (the bytes that will run at stub_addr), reading
 * its semaphore at semaphore_addr, or, when that is 0, at the stub's own
 * zero bytes. The two addresses must be within 2 GiB of each other.
 */
void
usdt_stub_write(unsigned char *dst, uintptr_t stub_addr, uintptr_t semaphore_addr)
{
        uintptr_t sem = semaphore_addr != 0 ? semaphore_addr
                                            : stub_addr + USDT_STUB_ZERO;
        int32_t displacement = (int32_t)(sem - (stub_addr + USDT_STUB_SEM_BASE));

        memcpy(dst, usdt_stub_template, USDT_STUB_SIZE);
        memcpy(dst + USDT_STUB_SEM_FIELD, &displacement, sizeof(displacement));
}

static size_t
page_round(size_t bytes)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE);

        return (bytes + page - 1) / page * page;
}

/*
 * Anonymous stubs for the set's probes. Returns 0, or -1 with err set
 * ("failed to allocate page-aligned memory").
 */
int
usdt_stubs_anon_create(struct usdt_object *obj, struct usdt_err *err)
{
        size_t bytes = page_round(obj->set.nprobes * USDT_STUB_SIZE);
        unsigned char *mem;
        size_t i;

        mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
                usdt_err_set(err, "failed to allocate page-aligned memory");
                return -1;
        }
        for (i = 0; i < obj->set.nprobes; i++) {
                unsigned char *stub = mem + i * USDT_STUB_SIZE;
                usdt_stub_write(stub, (uintptr_t)stub, 0);
        }
        if (mprotect(mem, bytes, PROT_READ | PROT_EXEC) != 0) {
                munmap(mem, bytes);
                usdt_err_set(err, "failed to allocate page-aligned memory");
                return -1;
        }
        obj->anon = mem;
        obj->anon_bytes = bytes;
        obj->stubs = mem;
        obj->semaphores = NULL;
        return 0;
}

/*
 * Give anonymous stubs back. Stubs a DOF registration ever named keep
 * their addresses reserved (an inaccessible mapping that holds no memory),
 * so no later stub of this process lands there: fasttrap on macOS and
 * illumos does not always clean up tracepoints re-created at an address
 * while a consumer has enablings (the original library's reason for never
 * freeing stubs). Stubs that were only previewed are unmapped.
 */
void
usdt_stubs_anon_destroy(struct usdt_object *obj)
{
        if (obj->anon == NULL)
                return;
        if (!obj->dof_ever_loaded ||
            mmap(obj->anon, obj->anon_bytes, PROT_NONE, MAP_PRIVATE |
                 MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
                munmap(obj->anon, obj->anon_bytes);
        obj->anon = NULL;
}
