/*
 * Failure injection for the test suite (t/87_alloc_failure.t): the library
 * objects of build/failalloc/ call these instead of the libc functions
 * (objcopy --redefine-sym). Once armed with usdt_test_failat(N), the Nth
 * call among all of them fails the way the real one can (NULL, -1 or
 * MAP_FAILED with errno ENOMEM); every other call goes through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long fail_at = -1, calls;

void usdt_test_failat(long n) { fail_at = n; calls = 0; }
long usdt_test_calls(void) { return calls; }

static int
should_fail(void)
{
        if (fail_at < 0)
                return 0;
        return ++calls == fail_at;
}

#define FAIL_OR(retval) do { if (should_fail()) { errno = ENOMEM; return retval; } } while (0)

void *fail_malloc(size_t n) { FAIL_OR(NULL); return malloc(n); }
void *fail_calloc(size_t n, size_t m) { FAIL_OR(NULL); return calloc(n, m); }
void *fail_realloc(void *p, size_t n) { FAIL_OR(NULL); return realloc(p, n); }
char *fail_strdup(const char *s) { FAIL_OR(NULL); return strdup(s); }
int fail_posix_memalign(void **p, size_t a, size_t n) { if (should_fail()) return ENOMEM; return posix_memalign(p, a, n); }
int fail_vasprintf(char **p, const char *f, va_list ap) { FAIL_OR(-1); return vasprintf(p, f, ap); }
int fail_asprintf(char **p, const char *f, ...)
{
        va_list ap;
        int n;

        FAIL_OR(-1);
        va_start(ap, f);
        n = vasprintf(p, f, ap);
        va_end(ap);
        return n;
}
void *fail_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off) { FAIL_OR(MAP_FAILED); return mmap(a, n, prot, flags, fd, off); }
int fail_mprotect(void *a, size_t n, int prot) { FAIL_OR(-1); return mprotect(a, n, prot); }
int fail_memfd_create(const char *name, unsigned flags) { FAIL_OR(-1); return memfd_create(name, flags); }
ssize_t fail_write(int fd, const void *b, size_t n) { FAIL_OR(-1); return write(fd, b, n); }
void *fail_dlopen(const char *path, int flags) { if (should_fail()) return NULL; return dlopen(path, flags); }
char *fail_realpath(const char *p, char *r) { FAIL_OR(NULL); return realpath(p, r); }
