/*
 * fakehelper.so: an LD_PRELOAD shim standing in for the DTrace helper
 * device /dev/dtrace/helper on a host without a DTrace kernel (used by
 * t/73_ghosts.t). Build: cc -shared -fPIC -o fakehelper.so fakehelper.c -ldl
 *
 * It intercepts access, open, open64, openat, openat64, ioctl and close
 * for that one path (everything else goes to libc):
 *   access(helper)        0: the device exists (so USDT_BACKEND=auto uses DOF)
 *   open*(helper)         a descriptor on /dev/null, remembered as "the helper"
 *   ioctl HELPER_ADD      (Linux: _IOW(0xd8, 3, struct dof_helper)) copies the
 *                         DOF document at dofhp_dof, filesz bytes (its header
 *                         says), into $FAKEHELPER_DIR/NNN.dof, appends
 *                         "add GEN NNN.dof MODULE" to $FAKEHELPER_DIR/log and
 *                         returns the generation GEN (1, 2, ...)
 *   ioctl HELPER_REMOVE   (_IOW(0xd8, 2, int), the generation passed by value)
 *                         appends "remove GEN" to the log; 0, or -1 EINVAL
 *                         with "remove GEN unknown" for a generation that is
 *                         not registered (the kernel refuses those too)
 *   close                 forgets the descriptor
 * Any other ioctl on the helper fails with ENOTTY and is logged as "ioctl
 * REQUEST unknown".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define HELPER_PATH     "/dev/dtrace/helper"
#define MAX_FDS         1024
#define MAX_GENS        4096

struct dof_helper {
        char dofhp_mod[64];
        uint64_t dofhp_addr;
        uint64_t dofhp_dof;
};

#define FAKE_HELPER_ADD         _IOW(0xd8, 3, struct dof_helper)
#define FAKE_HELPER_REMOVE      _IOW(0xd8, 2, int)
#define DOF_FILESZ_AT           48      /* struct usdt_dof_hdr: ident[16], 4 x u32, secoff, loadsz, filesz */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char helper_fd[MAX_FDS];
static unsigned char live_gen[MAX_GENS];
static int next_gen = 1;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_access)(const char *, int);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);

static void
resolve(void)
{
        if (real_close != NULL)
                return;
        real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
        real_open64 = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
        real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
        real_openat64 = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat64");
        real_access = (int (*)(const char *, int))dlsym(RTLD_NEXT, "access");
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

static int
is_helper(const char *path)
{
        return path != NULL && strcmp(path, HELPER_PATH) == 0;
}

static int
open_helper(int flags)
{
        int fd = real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));

        if (fd >= 0 && fd < MAX_FDS) {
                pthread_mutex_lock(&lock);
                helper_fd[fd] = 1;
                pthread_mutex_unlock(&lock);
        }
        return fd;
}

/* Append one line to $FAKEHELPER_DIR/log. */
static void
log_line(const char *fmt, ...)
{
        const char *dir = getenv("FAKEHELPER_DIR");
        char path[4096], line[512];
        va_list ap;
        int fd, n;

        if (dir == NULL)
                return;
        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        snprintf(path, sizeof(path), "%s/log", dir);
        fd = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        if (n > 0 && (size_t)n < sizeof(line))
                (void)!write(fd, line, (size_t)n);      /* a short write: the test finds the line missing */
        real_close(fd);
}

static int
helper_add(const struct dof_helper *h)
{
        const char *dir = getenv("FAKEHELPER_DIR");
        const unsigned char *dof = (const unsigned char *)(uintptr_t)h->dofhp_dof;
        char name[32], path[4096];
        uint64_t filesz;
        int fd, gen;

        if (dof == NULL || memcmp(dof, "\177DOF", 4) != 0) {
                errno = EINVAL;
                return -1;
        }
        memcpy(&filesz, dof + DOF_FILESZ_AT, sizeof(filesz));
        gen = next_gen++;
        if (gen >= MAX_GENS) {
                errno = ENOSPC;
                return -1;
        }
        snprintf(name, sizeof(name), "%03d.dof", gen);
        snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", name);
        fd = real_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, dof, (size_t)filesz) != (ssize_t)filesz) {
                if (fd >= 0)
                        real_close(fd);
                errno = EIO;
                return -1;
        }
        real_close(fd);
        live_gen[gen] = 1;
        log_line("add %d %s %.64s\n", gen, name, h->dofhp_mod);
        return gen;
}

static int
helper_remove(int gen)
{
        if (gen <= 0 || gen >= MAX_GENS || !live_gen[gen]) {
                log_line("remove %d unknown\n", gen);
                errno = EINVAL;
                return -1;
        }
        live_gen[gen] = 0;
        log_line("remove %d\n", gen);
        return 0;
}

int
access(const char *path, int mode)
{
        resolve();
        if (is_helper(path))
                return 0;
        return real_access(path, mode);
}

#define OPEN_MODE(flags, mode) do {                                     \
                va_list ap;                                             \
                va_start(ap, flags);                                    \
                mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, int) : 0; \
                va_end(ap);                                             \
        } while (0)

int
open(const char *path, int flags, ...)
{
        int mode;

        resolve();
        OPEN_MODE(flags, mode);
        if (is_helper(path))
                return open_helper(flags);
        return real_open(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
        int mode;

        resolve();
        OPEN_MODE(flags, mode);
        if (is_helper(path))
                return open_helper(flags);
        return real_open64(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
        int mode;

        resolve();
        OPEN_MODE(flags, mode);
        if (is_helper(path))
                return open_helper(flags);
        return real_openat(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
        int mode;

        resolve();
        OPEN_MODE(flags, mode);
        if (is_helper(path))
                return open_helper(flags);
        return real_openat64(dirfd, path, flags, mode);
}

int
ioctl(int fd, unsigned long request, ...)
{
        va_list ap;
        void *arg;
        int ours, rc;

        resolve();
        va_start(ap, request);
        arg = va_arg(ap, void *);
        va_end(ap);
        pthread_mutex_lock(&lock);
        ours = fd >= 0 && fd < MAX_FDS && helper_fd[fd];
        if (!ours) {
                pthread_mutex_unlock(&lock);
                return real_ioctl(fd, request, arg);
        }
        if (request == FAKE_HELPER_ADD) {
                rc = helper_add((const struct dof_helper *)arg);
        } else if (request == FAKE_HELPER_REMOVE) {
                /* the generation itself, passed by value */
                rc = helper_remove((int)(intptr_t)arg);
        } else {
                log_line("ioctl %#lx unknown\n", request);
                errno = ENOTTY;
                rc = -1;
        }
        pthread_mutex_unlock(&lock);
        return rc;
}

int
close(int fd)
{
        resolve();
        if (fd >= 0 && fd < MAX_FDS) {
                pthread_mutex_lock(&lock);
                helper_fd[fd] = 0;
                pthread_mutex_unlock(&lock);
        }
        return real_close(fd);
}
