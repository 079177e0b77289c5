/*
 * A toy JIT for t/77_jit.t (x86_64): emits, at run time, functions
 *
 *      f(long a, long b):  cmpw $0, SEM(%rip)      the probe's semaphore
 *                          je 1f
 *                          nopl 0(%rax,%rax)       the probe site (nop5)
 *                      1:  ret
 *
 * into a libusdt JIT arena, with the site's arguments where the ABI left
 * them ("-8@%rdi -8@%rsi"). Scripted line by line on stdin, one answer line
 * per command:
 *   emit NAME OFFSET   emit a function for probe jittoy:NAME at arena+OFFSET
 *                      and publish it                    -> "emitted ADDR"
 *   call NAME N        call it N times with (i, 2*i)     -> "called N"
 *   sem NAME           the probe's semaphore             -> "sem V"
 *   try ARGS           usdt_jit_add_site with these operands at a fresh
 *                      offset                            -> "ok" / "error TEXT"
 *   rewrite NAME       write a ret over NAME's site      -> "ok" / "error TEXT"
 *   site NAME          declare NAME's site again         -> "ok" / "error TEXT"
 *   same NAME          write NAME's code again, unchanged, site included
 *                                                        -> "ok" / "error TEXT"
 *   outside            write outside the arena           -> "ok" / "error TEXT"
 *   private NAME       whether the page of NAME's code in the R-X view is a
 *                      private copy (a tracer's or debugger's) -> "private 0|1"
 *   fork NAME          a child runs NAME, fails to write, frees the arena,
 *                      exits; -> "fork ok" / "fork bad WHY"
 *   badcreate          usdt_jit_create with a bad name, then 0 bytes
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

static void
emit(const char *name, size_t offset)
{
        unsigned char *arena = usdt_jit_code(jit, NULL), *fn = arena + offset;
        const volatile unsigned short *sem = usdt_jit_semaphore(jit, "jittoy", name);
        unsigned char code[16] = {
                0x66, 0x83, 0x3d, 0, 0, 0, 0, 0x00,     /* cmpw $0,SEM(%rip) */
                0x74, 0x05,                             /* je +5 */
                0x0f, 0x1f, 0x44, 0x00, 0x00,           /* nopl: the site */
                0xc3,                                   /* ret */
        };
        int32_t disp;

        if (sem == NULL || nfuncs == MAX_FUNCS) {
                printf("error %s\n", usdt_jit_errstr(jit));
                return;
        }
        /* the displacement counts from the end of the cmpw (offset 8) */
        disp = (int32_t)((intptr_t)sem - (intptr_t)(fn + 8));
        memcpy(code + 3, &disp, 4);
        if (usdt_jit_write(jit, fn, code, sizeof(code)) != 0 ||
            usdt_jit_add_site(jit, "jittoy", name, fn + 10, "-8@%rdi -8@%rsi") != 0 ||
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
                        void (*fn)(long, long) = (void (*)(long, long))(void *)func_find(name);
                        if (fn == NULL) {
                                printf("error no function %s\n", name);
                                continue;
                        }
                        for (i = 0; i < n; i++)
                                fn(i, 2 * i);
                        printf("called %ld\n", n);
                } else if (sscanf(line, "sem %63s", name) == 1) {
                        const volatile unsigned short *sem =
                                usdt_jit_semaphore(jit, "jittoy", name);
                        printf("sem %d\n", sem != NULL ? *sem : -1);
                } else if (strncmp(line, "try ", 4) == 0) {
                        unsigned char *arena = usdt_jit_code(jit, NULL);
                        line[strcspn(line, "\n")] = '\0';
                        if (usdt_jit_add_site(jit, "jittoy", "tried", arena + next_try++,
                                              line + 4) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "rewrite %63s", name) == 1) {
                        unsigned char *fn = func_find(name), ret = 0xc3;
                        if (fn != NULL && usdt_jit_write(jit, fn + 10, &ret, 1) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "same %63s", name) == 1) {
                        unsigned char *fn = func_find(name), copy[16];
                        if (fn != NULL) {
                                memcpy(copy, fn, sizeof(copy));
                                copy[10] = 0x0f;        /* the nop5, not a tracer's byte */
                                copy[11] = 0x1f;
                                copy[12] = 0x44;
                                copy[13] = 0x00;
                                copy[14] = 0x00;
                        }
                        if (fn != NULL && usdt_jit_write(jit, fn, copy, sizeof(copy)) == 0)
                                printf("ok\n");
                        else
                                printf("error %s\n", usdt_jit_errstr(jit));
                } else if (sscanf(line, "site %63s", name) == 1) {
                        unsigned char *fn = func_find(name);
                        if (fn != NULL && usdt_jit_add_site(jit, "jittoy", name, fn + 10,
                                                            "-8@%rdi") == 0)
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
                        unsigned char *fn = func_find(name), nop = 0x90;
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
                                ((void (*)(long, long))(void *)fn)(1, 2);
                                if (usdt_jit_write(jit, fn + 64 * 30, &nop, 1) == 0)
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
                        unsigned char *arena = usdt_jit_code(jit, &bytes), nop = 0x90;
                        if (usdt_jit_write(jit, arena + bytes, &nop, 1) == 0)
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
