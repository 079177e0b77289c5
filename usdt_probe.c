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
        /* the SDT part is called: the return address is at 0(%rsp) */
        "8(%rsp)", "16(%rsp)", "24(%rsp)", "32(%rsp)", "40(%rsp)", "48(%rsp)"
};
#elif defined(__i386__)
static const char *const sdt_arg_locations[USDT_SDT_ARG_MAX] = {
        "0(%esp)", "4(%esp)", "8(%esp)", "12(%esp)", "16(%esp)", "20(%esp)",
        "24(%esp)", "28(%esp)", "32(%esp)", "36(%esp)", "40(%esp)", "44(%esp)"
};
#elif defined(__aarch64__)
/* x0..x7, then the stack above the frame record at [sp] (written by
 * usdt_probe_args). Never "[sp]" alone: gdb reads only "[reg, offset]". */
static const char *const sdt_arg_locations[USDT_SDT_ARG_MAX] = {
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7",
        "[sp, 16]", "[sp, 24]", "[sp, 32]", "[sp, 40]"
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
 * immediate ("$-5") or a memory operand ("-8(%rbp)", "16(%rsp)"); on
 * aarch64 "x0", "-5", "[sp, 16]" (below). Returns NULL, or the reason in
 * reason.
 */
/* A signed decimal ("-12") of exactly len bytes; 1 if it is one. */
static int
sdt_decimal(const char *s, size_t len)
{
        size_t i = (len > 0 && s[0] == '-') ? 1 : 0;

        if (i == len)
                return 0;
        for (; i < len; i++)
                if (s[i] < '0' || s[i] > '9')
                        return 0;
        return 1;
}

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
        if (len >= 2 && loc[0] == '$')
                return sdt_decimal(loc + 1, len - 1);
        /* [-]DISP(%reg), DISP optional */
        while (i < len && loc[i] != '(')
                i++;
        return (i == 0 || sdt_decimal(loc, i)) && i + 3 < len && loc[i + 1] == '%' &&
               loc[len - 1] == ')' && sdt_register(loc + i + 2, len - i - 3);
}

#define SDT_OPERAND_EXAMPLES "-8@%rdi, 8@-16(%rbp), -4@$5"
#elif defined(__aarch64__)
/*
 * aarch64 operands, as libbpf, gdb and bcc all read them: a register
 * ("x0".."x30", "sp"), a constant ("-5"), or a memory operand with an
 * offset ("[sp, 16]", "[x29, -8]"). Not "w0" or "#5" (libbpf refuses
 * both), nor "[sp]" (gdb reads only "[reg, offset]").
 */

/* "sp", or "x" and 0..30 without a leading zero; 1 if reg (len bytes) is one. */
static int
sdt_register(const char *reg, size_t len)
{
        if (len == 2 && reg[0] == 's' && reg[1] == 'p')
                return 1;
        if (len < 2 || len > 3 || reg[0] != 'x' || !sdt_decimal(reg + 1, len - 1) ||
            reg[1] == '-' || (len == 3 && reg[1] == '0'))
                return 0;
        return len == 2 || (reg[1] - '0') * 10 + (reg[2] - '0') <= 30;
}

static int
sdt_location_valid(const char *loc, size_t len)
{
        const char *comma;
        size_t reg_len, at;

        if (len == 0 || loc[0] != '[')
                return sdt_register(loc, len) || sdt_decimal(loc, len);
        /* "[REG, OFFSET]" or "[REG,OFFSET]" */
        comma = memchr(loc, ',', len);
        if (comma == NULL || loc[len - 1] != ']')
                return 0;
        reg_len = (size_t)(comma - loc) - 1;
        at = reg_len + 2 + (reg_len + 2 < len && loc[reg_len + 2] == ' ');
        return sdt_register(loc + 1, reg_len) && at < len - 1 &&
               sdt_decimal(loc + at, len - 1 - at);
}

#define SDT_OPERAND_EXAMPLES "-8@x0, 8@[sp, 16], -4@5"
#endif

/* The length of the operand at op: up to the next space, except inside
 * brackets ("-8@[sp, 16]" is one operand). */
static size_t
sdt_operand_bytes(const char *op)
{
        size_t len = 0, depth = 0;

        for (; op[len] != '\0' && (op[len] != ' ' || depth > 0); len++) {
                if (op[len] == '[')
                        depth++;
                else if (op[len] == ']' && depth > 0)
                        depth--;
        }
        return len;
}

const char *
usdt_sdt_args_check(char *reason, size_t size, const char *args)
{
        const char *op = args;
        size_t n = 0;

        while (*op != '\0') {
                const char *at = op;
                size_t len = sdt_operand_bytes(op);

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
                                 "for this architecture (like %s)",
                                 (int)(len < 60 ? len : 60), op, SDT_OPERAND_EXAMPLES);
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
 * prefix) by their length; anything else counts as one byte. On aarch64
 * every instruction is 4 bytes.
 */
#if defined(__aarch64__)
size_t
usdt_site_insn_bytes(const unsigned char *site, size_t room)
{
        (void)site;
        return room < 4 ? room : 4;
}
#else
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
#endif

/*
 * Write one stub into dst (the bytes that will run at stub_addr), reading
 * its semaphore at semaphore_addr, or, when that is 0, at the stub's own
 * zero bytes. The two addresses must be within 2 GiB of each other.
 */
#if defined(__aarch64__)
/*
 * aarch64: the semaphore is read by "adrp x0, PAGE" (the distance in 4 KiB
 * pages from the adrp's own page, 21 bits split immlo:immhi) and
 * "ldrh w0, [x0, OFFSET]" (the offset in that page, in halfwords, 12 bits).
 * Both are relative to 4 KiB pages, so the stub and its semaphore may be
 * loaded anywhere as long as they move together by a multiple of 4 KiB, as
 * the SDT object does (it is mapped at a page boundary). A semaphore is
 * 2-byte aligned.
 */
void
usdt_stub_write(unsigned char *dst, uintptr_t stub_addr, uintptr_t semaphore_addr)
{
        uintptr_t sem = semaphore_addr != 0 ? semaphore_addr
                                            : stub_addr + USDT_STUB_ZERO;
        uint64_t pages = (uint64_t)(sem >> 12) -
                         (uint64_t)((stub_addr + USDT_STUB_SEM_ADRP) >> 12);
        uint32_t adrp, ldrh;

        memcpy(dst, usdt_stub_template, USDT_STUB_SIZE);
        memcpy(&adrp, dst + USDT_STUB_SEM_ADRP, sizeof(adrp));
        memcpy(&ldrh, dst + USDT_STUB_SEM_LDRH, sizeof(ldrh));
        adrp = (adrp & 0x9f00001fu) | (uint32_t)(pages & 3) << 29 |
               (uint32_t)((pages >> 2) & 0x7ffff) << 5;
        ldrh = (ldrh & 0xffc003ffu) | (uint32_t)((sem & 0xfff) >> 1) << 10;
        memcpy(dst + USDT_STUB_SEM_ADRP, &adrp, sizeof(adrp));
        memcpy(dst + USDT_STUB_SEM_LDRH, &ldrh, sizeof(ldrh));
}
#else
void
usdt_stub_write(unsigned char *dst, uintptr_t stub_addr, uintptr_t semaphore_addr)
{
        uintptr_t sem = semaphore_addr != 0 ? semaphore_addr
                                            : stub_addr + USDT_STUB_ZERO;
        int32_t displacement = (int32_t)(sem - (stub_addr + USDT_STUB_SEM_BASE));

        memcpy(dst, usdt_stub_template, USDT_STUB_SIZE);
        memcpy(dst + USDT_STUB_SEM_FIELD, &displacement, sizeof(displacement));
}
#endif

/*
 * The system's page size: what the SDT object's segments and a JIT arena
 * are aligned to (4 KiB on x86; 4, 16 or 64 KiB on aarch64). A power of
 * two, at least 4 KiB.
 */
size_t
usdt_page_bytes(void)
{
        long page = sysconf(_SC_PAGESIZE);

        if (page < 4096 || page > (1L << 20) || (page & (page - 1)) != 0)
                return 4096;
        return (size_t)page;
}

/* bytes rounded up to whole pages */
size_t
usdt_page_round(size_t bytes)
{
        size_t page = usdt_page_bytes();

        return (bytes + page - 1) / page * page;
}

/*
 * Anonymous stubs for the set's probes. Returns 0, or -1 with err set
 * ("failed to allocate page-aligned memory").
 */
int
usdt_stubs_anon_create(struct usdt_object *obj, struct usdt_err *err)
{
        size_t bytes = usdt_page_round(obj->set.nprobes * USDT_STUB_SIZE);
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
        /* new code: the instruction cache must see it (a no-op on x86) */
        __builtin___clear_cache((char *)mem, (char *)mem + obj->set.nprobes * USDT_STUB_SIZE);
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
