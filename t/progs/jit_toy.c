/*
 * A toy JIT for t/77_jit.t (x86_64) and t/81_aarch64.t (aarch64, under
 * qemu): emits, at run time, functions f(long a, long b) that test their
 * probe's semaphore inline and pass through a probe site only while it is
 * nonzero, with the site's arguments where the ABI left them. On x86_64
 *
 *      f:  cmpw $0, SEM(%rip)      the probe's semaphore
 *          je 1f
 *          nopl 0(%rax,%rax)       the probe site (nop5), "-8@%rdi -8@%rsi"
 *      1:  ret
 *
 * and on aarch64, where f returns 1 if it passed the site, 0 if not:
 *
 *      f:  ldr x16, 3f             the semaphore's address, a literal
 *          ldrh w16, [x16]
 *          cbz w16, 2f
 *          nop                     the probe site, "-8@x0 -8@x1"
 *          mov x0, #1
 *          ret
 *      2:  mov x0, #0
 *          ret
 *      3:  .quad SEM
 *
 * into a libusdt JIT arena. Scripted line by line on stdin, one answer line
 * per command:
 *   emit NAME OFFSET   emit a function for probe jittoy:NAME at arena+OFFSET
 *                      and publish it                    -> "emitted ADDR"
 *   call NAME N        call it N times with (i, 2*i)     -> "called N"
 *                      (aarch64: "called N passed M", M the calls that
 *                      went through the site)
 *   sem NAME           the probe's semaphore             -> "sem V"
 *   try ARGS           usdt_jit_add_site with these operands at a fresh
 *                      offset                            -> "ok" / "error TEXT"
 *   tryat OFFSET ARGS  the same at arena+OFFSET          -> "ok" / "error TEXT"
 *   rewrite NAME       write a ret over NAME's site      -> "ok" / "error TEXT"
 *   site NAME          declare NAME's site again         -> "ok" / "error TEXT"
 *   same NAME          write NAME's code again, unchanged, site included
 *                                                        -> "ok" / "error TEXT"
 *   outside            write outside the arena           -> "ok" / "error TEXT"
 *   private NAME       whether the page of NAME's code in the R-X view is a
 *                      private copy (a tracer's or debugger's) -> "private 0|1"
 *   fork NAME          a child runs NAME, fails to write, frees the arena,
 *                      exits; -> "fork ok" / "fork bad WHY"
 *   badcreate          usdt_jit_create with an empty name, then 0 bytes
 *                      -> "errno E1 E2 | TEXT1 | TEXT2"
 *   path, pid, free (-> "freed mapped N": arena mappings left), quit
 */
#include "usdt.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FUNCS 16

#if defined(__aarch64__)
/* Every instruction is 4 bytes, little-endian. */
#define INSN(w) (w) & 0xff, (w) >> 8 & 0xff, (w) >> 16 & 0xff, (unsigned)(w) >> 24
#define SITE_OFFSET     12              /* the nop */
#define SITE_ARGS       "-8@x0 -8@x1"
#define ONE_ARG         "-8@x0"
#define SEM_LITERAL     32              /* the semaphore's address, 8-byte aligned */
#define INSN_STEP       4               /* where instructions may start */
static const unsigned char code_template[40] = {
        INSN(0x58000110u),              /* 0: ldr x16, 32 (the literal) */
        INSN(0x79400210u),              /* 4: ldrh w16, [x16] */
        INSN(0x34000090u),              /* 8: cbz w16, 24 */
        INSN(0xd503201fu),              /* 12: nop: the site */
        INSN(0xd2800020u),              /* 16: mov x0, #1 */
        INSN(0xd65f03c0u),              /* 20: ret */
        INSN(0xd2800000u),              /* 24: mov x0, #0 */
        INSN(0xd65f03c0u),              /* 28: ret */
        0, 0, 0, 0, 0, 0, 0, 0,         /* 32: .quad SEM */
};
static const unsigned char site_insn[4] = { INSN(0xd503201fu) };   /* nop */
static const unsigned char ret_insn[4] = { INSN(0xd65f03c0u) };    /* ret */
static const unsigned char nop_insn[4] = { INSN(0xd503201fu) };
#else
#define SITE_OFFSET     10              /* the nop5 */
#define SITE_ARGS       "-8@%rdi -8@%rsi"
#define ONE_ARG         "-8@%rdi"
#define INSN_STEP       1
static const unsigned char code_template[16] = {
        0x66, 0x83, 0x3d, 0, 0, 0, 0, 0x00,     /* cmpw $0,SEM(%rip) */
        0x74, 0x05,                             /* je +5 */
        0x0f, 0x1f, 0x44, 0x00, 0x00,           /* nopl: the site */
        0xc3,                                   /* ret */
};
static const unsigned char site_insn[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
static const unsigned char ret_insn[1] = { 0xc3 };
static const unsigned char nop_insn[1] = { 0x90 };
#endif

typedef long (*toy_fn)(long, long);

static usdt_jit_t *jit;
static struct { char name[64]; unsigned char *code; } funcs[MAX_FUNCS];
static int nfuncs;

static unsigned char *
func_find(const char *name)
{
        int i;

        for (i = 0; i < nfuncs; i++)
                if (strcmp(funcs[i].name, name) == 0)
                        return funcs[i].code;
        return NULL;
}

/* The template, made to read the semaphore sem when it runs at fn. */
static void
code_for(unsigned char *code, const unsigned char *fn, const volatile unsigned short *sem)
{
#if defined(__aarch64__)
        uint64_t address = (uint64_t)(uintptr_t)sem;     /* no reach limit */

        (void)fn;
        memcpy(code, code_template, sizeof(code_template));
        memcpy(code + SEM_LITERAL, &address, 8);
#else
        /* the displacement counts from the end of the cmpw (offset 8) */
        int32_t disp = (int32_t)((intptr_t)sem - (intptr_t)(fn + 8));

        memcpy(code, code_template, sizeof(code_template));
        memcpy(code + 3, &disp, 4);
#endif
}

static void
emit(const char *name, size_t offset)
{
        unsigned char *arena = usdt_jit_code(jit, NULL), *fn = arena + offset;
        const volatile unsigned short *sem = usdt_jit_semaphore(jit, "jittoy", name);
        unsigned char code[sizeof(code_template)];

        if (sem == NULL || nfuncs == MAX_FUNCS) {
                printf("error %s\n", usdt_jit_errstr(jit));
                return;
        }
        code_for(code, fn, sem);
        if (usdt_jit_write(jit, fn, code, sizeof(code)) != 0 ||
            usdt_jit_add_site(jit, "jittoy", name, fn + SITE_OFFSET, SITE_ARGS) != 0 ||
            usdt_jit_publish(jit) != 0) {
                printf("error %s\n", usdt_jit_errstr(jit));
                return;
        }
        snprintf(funcs[nfuncs].name, sizeof(funcs[nfuncs].name), "%s", name);
        funcs[nfuncs++].code = fn;
        printf("emitted %p\n", (void *)fn);
}

/* 1 if the page holding addr is present and not the file's page. */
static int
page_is_private(const void *addr)
{
        uint64_t entry = 0;
        int fd = open("/proc/self/pagemap", O_RDONLY);
        long page = sysconf(_SC_PAGESIZE);

        if (fd < 0)
                return -1;
        if (pread(fd, &entry, 8, (off_t)((uintptr_t)addr / page * 8)) != 8)
                entry = 0;
        close(fd);
        return (entry >> 63 & 1) && !(entry >> 61 & 1);
}

static int
arena_mappings(void)
{
        char line[512];
        FILE *maps = fopen("/proc/self/maps", "r");
        int n = 0;

        if (maps == NULL)
                return -1;
        while (fgets(line, sizeof(line), maps) != NULL)
                if (strstr(line, "libusdt-jit:jittoy") != NULL)
                        n++;
        fclose(maps);
        return n;
}

int
main(void)
{
        char line[256], name[64], arg[128];
        long n, i;
        int at = 0;
        size_t next_try = 2048;

        setvbuf(stdout, NULL, _IOLBF, 0);
        jit = usdt_jit_create("jittoy", 8192);
        if (jit == NULL) {
                perror("usdt_jit_create");
                return 1;
        }
        while (fgets(line, sizeof(line), stdin) != NULL) {
                if (sscanf(line, "emit %63s %ld", name, &n) == 2) {
                        emit(name, (size_t)n);
                } else if (sscanf(line, "call %63s %ld", name, &n) == 2) {
                        toy_fn fn = (toy_fn)(void *)func_find(name);
                        long passed = 0;
                        if (fn == NULL) {
                                printf("error no function %s\n", name);
                                continue;
                        }
                        for (i = 0; i < n; i++)
                                passed += fn(i, 2 * i);
#if defined(__aarch64__)
                        printf("called %ld passed %ld\n", n, passed);
#else
                        (void)passed;   /* the x86_64 code returns no value */
                        printf("called %ld\n", n);
#endif
                } else if (sscanf(line, "sem %63s", name) == 1) {
                        const volatile unsigned short *sem =
                                usdt_jit_semaphore(jit, "jittoy", name);
                        printf("sem %d\n", sem != NULL ? *sem : -1);
                } else if (strncmp(line, "try ", 4) == 0) {
                        unsigned char *arena = usdt_jit_code(jit, NULL);
                        line[strcspn(line, "\n")] = '\0';
                        if (usdt_jit_add_site(jit, "jittoy", "tried", arena + next_try,
                                              line + 4) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                        next_try += INSN_STEP;
                } else if (sscanf(line, "tryat %ld %n", &n, &at) == 1 && at > 0) {
                        unsigned char *arena = usdt_jit_code(jit, NULL);
                        line[strcspn(line, "\n")] = '\0';
                        if (usdt_jit_add_site(jit, "jittoy", "tried", arena + n,
                                              line + at) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "rewrite %63s", name) == 1) {
                        unsigned char *fn = func_find(name);
                        if (fn != NULL && usdt_jit_write(jit, fn + SITE_OFFSET, ret_insn,
                                                         sizeof(ret_insn)) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "same %63s", name) == 1) {
                        unsigned char *fn = func_find(name), copy[sizeof(code_template)];
                        if (fn != NULL) {
                                memcpy(copy, fn, sizeof(copy));
                                /* the site's nop, not a tracer's breakpoint */
                                memcpy(copy + SITE_OFFSET, site_insn, sizeof(site_insn));
                        }
                        if (fn != NULL && usdt_jit_write(jit, fn, copy, sizeof(copy)) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "site %63s", name) == 1) {
                        unsigned char *fn = func_find(name);
                        if (fn != NULL && usdt_jit_add_site(jit, "jittoy", name,
                                                            fn + SITE_OFFSET, ONE_ARG) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (strncmp(line, "badcreate", 9) == 0) {
                        char first[400];
                        int e1, e2;
                        if (usdt_jit_create("", 4096) != NULL)
                                return 9;
                        e1 = errno;
                        snprintf(first, sizeof(first), "%s", usdt_jit_errstr(NULL));
                        if (usdt_jit_create("fine", 0) != NULL)
                                return 9;
                        e2 = errno;
                        printf("errno %d %d | %s | %s\n", e1, e2, first, usdt_jit_errstr(NULL));
                } else if (sscanf(line, "fork %63s", name) == 1) {
                        unsigned char *fn = func_find(name);
                        int status = 0;
                        pid_t child;

                        if (fn == NULL) {
                                printf("fork bad no function %s\n", name);
                                continue;
                        }
                        fflush(stdout);
                        child = fork();
                        if (child == 0) {
                                const char *err;
                                ((toy_fn)(void *)fn)(1, 2);
                                if (usdt_jit_write(jit, fn + 64 * 30, nop_insn,
                                                   sizeof(nop_insn)) == 0)
                                        _exit(2);
                                err = usdt_jit_errstr(jit);
                                if (strstr(err, "a forked child can run its code but not "
                                                "change it") == NULL)
                                        _exit(3);
                                usdt_jit_free(jit);
                                _exit(arena_mappings() == 0 ? 0 : 4);
                        }
                        waitpid(child, &status, 0);
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                                printf("fork ok\n");
                        else
                                printf("fork bad status %d\n", status);
                } else if (sscanf(line, "private %63s", name) == 1) {
                        unsigned char *fn = func_find(name);
                        printf("private %d\n", fn != NULL ? page_is_private(fn) : -1);
                } else if (strncmp(line, "outside", 7) == 0) {
                        size_t bytes;
                        unsigned char *arena = usdt_jit_code(jit, &bytes);
                        if (usdt_jit_write(jit, arena + bytes, nop_insn, sizeof(nop_insn)) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "path%127s", arg) <= 0 && strncmp(line, "path", 4) == 0) {
                        printf("path %s\n", usdt_jit_path(jit));
                } else if (strncmp(line, "pid", 3) == 0) {
                        printf("pid %d\n", (int)getpid());
                } else if (strncmp(line, "free", 4) == 0) {
                        usdt_jit_free(jit);
                        jit = NULL;
                        printf("freed mapped %d\n", arena_mappings());
                } else if (strncmp(line, "quit", 4) == 0) {
                        break;
                } else {
                        printf("error unknown command\n");
                }
        }
        usdt_jit_free(jit);
        return 0;
}
