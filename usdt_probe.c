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
#include <stdio.h>
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
 * Whether args is a list of SDT operands a tracer can read on this
 * architecture: up to USDT_SDT_ARG_MAX of "[-]SIZE@LOCATION" separated by
 * single spaces, SIZE 1, 2, 4 or 8, LOCATION a register ("%rdi"), an
 * immediate ("$-5") or a memory operand ("-8(%rbp)", "16(%rsp)").
 * Returns NULL, or the reason in reason.
 */
#if defined(__x86_64__) || defined(__i386__)
static const char *const sdt_registers[] = {
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "rip",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp",
        "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d",
        "ax", "bx", "cx", "dx", "si", "di", "bp", "sp",
        "al", "bl", "cl", "dl", "sil", "dil", "bpl", "spl",
};

/* A register name after '%' of length len; 1 if known. */
static int
sdt_register(const char *reg, size_t len)
{
        size_t i;

        for (i = 0; i < sizeof(sdt_registers) / sizeof(sdt_registers[0]); i++)
                if (strlen(sdt_registers[i]) == len &&
                    strncmp(sdt_registers[i], reg, len) == 0)
                        return 1;
        return 0;
}

static int
sdt_location_valid(const char *loc, size_t len)
{
        size_t i = 0;

        if (len >= 2 && loc[0] == '%')
                return sdt_register(loc + 1, len - 1);
        if (len >= 2 && loc[0] == '$') {
                i = 1 + (loc[1] == '-');
                if (i == len)
                        return 0;
                for (; i < len; i++)
                        if (loc[i] < '0' || loc[i] > '9')
                                return 0;
                return 1;
        }
        if (i < len && loc[i] == '-')
                i++;
        while (i < len && loc[i] >= '0' && loc[i] <= '9')
                i++;
        return i + 3 < len && loc[i] == '(' && loc[i + 1] == '%' &&
               loc[len - 1] == ')' && sdt_register(loc + i + 2, len - i - 3);
}
#endif

const char *
usdt_sdt_args_check(char *reason, size_t size, const char *args)
{
        const char *op = args;
        size_t n = 0;

        while (*op != '\0') {
                const char *end = strchr(op, ' '), *at = op;
                size_t len = end != NULL ? (size_t)(end - op) : strlen(op);

                if (++n > USDT_SDT_ARG_MAX) {
                        snprintf(reason, size, "more than %d operands in \"%.80s\"",
                                 USDT_SDT_ARG_MAX, args);
                        return reason;
                }
                if (*at == '-')
                        at++;
                if (at + 2 > op + len || strchr("1248", *at) == NULL || at[1] != '@' ||
                    !sdt_location_valid(at + 2, len - (size_t)(at + 2 - op))) {
                        snprintf(reason, size, "operand \"%.*s\" is not an SDT operand "
                                 "for this architecture (like -8@%%rdi, 8@-16(%%rbp), "
                                 "-4@$5)", (int)(len < 60 ? len : 60), op);
                        return reason;
                }
                op += len;
                if (*op == ' ') {
                        op++;
                        if (*op == '\0' || *op == ' ') {
                                snprintf(reason, size, "operands must be separated "
                                         "by single spaces: \"%.80s\"", args);
                                return reason;
                        }
                }
        }
        return NULL;
}

/*
 * How many bytes the instruction at a probe site takes, as far as a JIT
 * site needs it: the multi-byte nops (0f 1f /0, with or without a 66
 * prefix) by their length; anything else counts as one byte.
 */
size_t
usdt_site_insn_bytes(const unsigned char *site, size_t room)
{
        size_t prefix = (room > 0 && site[0] == 0x66) ? 1 : 0, len = 1;

        if (room >= prefix + 3 && site[prefix] == 0x0f && site[prefix + 1] == 0x1f) {
                unsigned char modrm = site[prefix + 2];
                unsigned mod = modrm >> 6, rm = modrm & 7;

                len = prefix + 3 + (rm == 4 && mod != 3) +
                      (mod == 1 ? 1 : mod == 2 || (mod == 0 && rm == 5) ? 4 : 0);
        }
        return len <= room ? len : room;
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
