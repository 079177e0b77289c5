/*
 * fakepage.so: an LD_PRELOAD shim that makes sysconf(_SC_PAGESIZE) answer
 * $FAKEPAGE_BYTES (used by t/34_page_size.t), so the objects the library
 * builds for a kernel with 16 KiB or 64 KiB pages (aarch64 on Asahi Linux,
 * on RHEL) can be checked on this 4 KiB one. The loader and libc keep the
 * real page size: an object laid out for larger pages loads on smaller
 * ones. Build: cc -shared -fPIC -o fakepage.so fakepage.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

long
sysconf(int name)
{
        static long (*real)(int);
        const char *fake = getenv("FAKEPAGE_BYTES");

        if (name == _SC_PAGESIZE && fake != NULL)
                return atol(fake);
        if (real == NULL)
                real = (long (*)(int))dlsym(RTLD_NEXT, "sysconf");
        return real(name);
}
