/*
 * Linux: where a provider's SDT object (usdt_elf.c writes its image)
 * lives, and loading it into the process.
 *
 * - default: a memory file (memfd_create), kept open for the object's
 *   life and loaded as /proc/PID/fd/N (not /proc/self/...: gdb -p would
 *   open its own descriptor N). Nothing on disk, ever; survives /tmp
 *   mounted noexec. perf cannot use it (it needs a real path).
 * - USDT_SDT_DIR=DIR: a file DIR/usdt-PID-START-SEQ-PROVIDER.so, in a
 *   directory that must be ours and mode 0700. perf works too. Removed
 *   when the object is retired, and at exit; what a killed process left is
 *   removed by the next enable in that directory.
 *
 * The object is loaded with dlopen, so gdb (which reads the loader's list)
 * finds it as well as the tracers that read /proc/PID/maps. Nothing here
 * runs under the library lock: the loader takes its own lock and runs
 * constructors under it, and a constructor may call this library.
 *
 * Descriptors: the object's descriptor stays open while the object is
 * loaded (its number is in the name glibc knows the object by, so no other
 * object may get that name meanwhile). A process may close it behind our
 * back (a daemon closing every descriptor) and reuse the number for its own
 * file, so before closing, usdt_sdt_unload checks that the descriptor is
 * still the file we opened (device and inode) and otherwise leaves it be.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U        /* Linux 6.3: executable memfd, asked for explicitly */
#endif

static int
write_all(int fd, const unsigned char *data, size_t bytes)
{
        while (bytes > 0) {
                ssize_t n = write(fd, data, bytes);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                data += n;
                bytes -= (size_t)n;
        }
        return 0;
}

/* The start time of a process (clock ticks since boot), or 0. */
static unsigned long long
process_start_time(pid_t pid)
{
        char path[64], buf[1024], *p;
        unsigned long long start = 0;
        ssize_t n;
        int fd, field;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        p = strrchr(buf, ')');          /* the command name may hold anything */
        for (field = 2; p != NULL && field < 22; field++)
                p = strchr(p + 1, ' ');
        if (p != NULL)
                start = strtoull(p + 1, NULL, 10);
        return start;
}

/*
 * Remove what killed processes left in the directory: files named
 * usdt-PID-START-... whose process is gone (or is another process now).
 */
static void
dir_reap(int dirfd)
{
        DIR *dir;
        struct dirent *de;
        int fd = dup(dirfd);

        if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        while ((de = readdir(dir)) != NULL) {
                int pid;
                unsigned long long start;

                if (sscanf(de->d_name, "usdt-%d-%llu-", &pid, &start) != 2 || pid <= 0)
                        continue;
                if ((kill(pid, 0) == 0 || errno == EPERM) &&
                    process_start_time(pid) == start)
                        continue;
                unlinkat(dirfd, de->d_name, 0);
        }
        closedir(dir);
}

/* Open (creating it if needed) the private directory; -1 with error set. */
static int
dir_open(struct usdt_err *err, const char *dir, char **real)
{
        struct stat st;
        struct statvfs vfs;
        int fd;

        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                usdt_err_set(err, "USDT_SDT_DIR=%s: cannot create it: %s",
                               dir, strerror(errno));
                return -1;
        }
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                usdt_err_set(err, "USDT_SDT_DIR=%s: %s", dir, strerror(errno));
                return -1;
        }
        if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
                usdt_err_set(err, "USDT_SDT_DIR=%s: must be a directory owned by "
                               "this user with mode 0700 (others must not write there)", dir);
                close(fd);
                return -1;
        }
        if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {
                usdt_err_set(err, "USDT_SDT_DIR=%s: its file system is mounted "
                               "noexec, so the probes cannot be mapped; unset "
                               "USDT_SDT_DIR to use a memory file", dir);
                close(fd);
                return -1;
        }
        *real = realpath(dir, NULL);
        if (*real == NULL) {
                usdt_err_set(err, "USDT_SDT_DIR=%s: %s", dir, strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/*
 * Write the image into a file in USDT_SDT_DIR; sets obj->file (what
 * tracers and usdt_provider_path name), obj->fd and obj->path (what
 * dlopen loads: /proc/PID/fd/N of the very file we wrote, so nothing can
 * swap another object in under the name between the write and the load).
 */
static int
store_in_dir(struct usdt_object *obj, struct usdt_err *err,
             const char *dir, const unsigned char *img, size_t bytes)
{
        static unsigned long sequence;  /* atomic: enables run unlocked */
        char name[128], *real = NULL;
        int dirfd, fd;

        dirfd = dir_open(err, dir, &real);
        if (dirfd < 0)
                return -1;
        dir_reap(dirfd);
        snprintf(name, sizeof(name), "usdt-%d-%llu-%lu-%s.so", (int)getpid(),
                 process_start_time(getpid()),
                 __atomic_add_fetch(&sequence, 1, __ATOMIC_RELAXED), obj->set.provider);
        fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, img, bytes) != 0 || fchmod(fd, 0400) != 0) {
                usdt_err_set(err, "USDT_SDT_DIR=%s: cannot write %s: %s",
                               dir, name, strerror(errno));
                if (fd >= 0) {
                        close(fd);
                        unlinkat(dirfd, name, 0);
                }
                close(dirfd);
                free(real);
                return -1;
        }
        if (asprintf(&obj->file, "%s/%s", real, name) < 0)
                obj->file = NULL;
        if (asprintf(&obj->path, "/proc/%d/fd/%d", (int)getpid(), fd) < 0)
                obj->path = NULL;
        free(real);
        if (obj->file == NULL || obj->path == NULL) {
                unlinkat(dirfd, name, 0);
                close(dirfd);
                close(fd);
                free(obj->file);
                free(obj->path);
                obj->file = obj->path = NULL;
                usdt_err_set(err, "failed to allocate memory");
                return -1;
        }
        close(dirfd);
        obj->fd = fd;
        obj->creator = getpid();
        return 0;
}

/* Write the image into a sealed memory file; sets obj->fd, obj->path. */
static int
store_in_memfd(struct usdt_object *obj, struct usdt_err *err,
               const unsigned char *img, size_t bytes)
{
        char name[80];
        int fd;

        snprintf(name, sizeof(name), "libusdt:%s", obj->set.provider);
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (fd < 0 && errno == EINVAL)  /* kernels before 6.3 */
                fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || write_all(fd, img, bytes) != 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                  F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
                usdt_err_set(err, "cannot make the SDT memory file for "
                               "provider %s: %s", obj->set.provider, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        obj->fd = fd;
        if (asprintf(&obj->path, "/proc/%d/fd/%d", (int)getpid(), fd) < 0) {
                obj->path = NULL;
                close(fd);
                obj->fd = -1;
                usdt_err_set(err, "failed to allocate memory");
                return -1;
        }
        return 0;
}

/* Remember which file the descriptor is, to know it again before closing. */
static void
fd_remember(struct usdt_object *obj)
{
        struct stat st;

        if (fstat(obj->fd, &st) == 0) {
                obj->fd_dev = st.st_dev;
                obj->fd_ino = st.st_ino;
        }
}

/* Close the object's descriptor if it is still the file we opened. */
static void
fd_close_if_ours(struct usdt_object *obj)
{
        struct stat st;

        if (obj->fd >= 0 && fstat(obj->fd, &st) == 0 &&
            st.st_dev == obj->fd_dev && st.st_ino == obj->fd_ino)
                close(obj->fd);
        obj->fd = -1;
}

/*
 * Build, store and load the set's SDT object; without the lock. Sets
 * obj->stubs and obj->semaphores. Returns 0, or -1 with err set and
 * nothing left behind.
 */
int
usdt_sdt_load(struct usdt_object *obj, struct usdt_err *err)
{
        const char *dir = getenv("USDT_SDT_DIR");
        struct link_map *map = NULL;
        size_t bytes = 0, text_offset = 0, semaphores_offset = 0;
        unsigned char *img;
        int rc;

        img = usdt_elf_image(&obj->set, &bytes, &text_offset, &semaphores_offset);
        if (img == NULL) {
                usdt_err_set(err, "failed to allocate memory");
                return -1;
        }
        if (dir != NULL && dir[0] != '\0')
                rc = store_in_dir(obj, err, dir, img, bytes);
        else
                rc = store_in_memfd(obj, err, img, bytes);
        free(img);
        if (rc != 0)
                return -1;
        fd_remember(obj);
        /* RTLD_LOCAL: its symbols never interpose on anyone's */
        obj->dl = dlopen(obj->path, RTLD_NOW | RTLD_LOCAL);
        if (obj->dl == NULL || dlinfo(obj->dl, RTLD_DI_LINKMAP, &map) != 0) {
                const char *why = dlerror();
                usdt_err_set(err, "cannot load the SDT object %s: %s",
                             obj->path, why ? why : "unknown error");
                usdt_sdt_unpublish(obj);
                usdt_sdt_unload(obj);
                return -1;
        }
        obj->load_base = (uintptr_t)map->l_addr;
        obj->load_bytes = (semaphores_offset + 2 * obj->set.nprobes + 4095) / 4096 * 4096;
        obj->stubs = (unsigned char *)map->l_addr + text_offset;
        obj->semaphores = (volatile uint16_t *)(map->l_addr + semaphores_offset);
        return 0;
}

/* The object will not be published again: remove its file now, so no
 * tracer started from now on finds it by name. */
void
usdt_sdt_unpublish(struct usdt_object *obj)
{
        if (obj->file != NULL && obj->creator == getpid())
                unlink(obj->file);
        free(obj->file);
        obj->file = NULL;
}

/*
 * Unmap and close; only once no reader can be inside, and without the
 * lock (dlclose takes the loader's lock). Returns -1 when the object's
 * stubs were named to DTrace and their addresses could not be kept
 * reserved after the unmap (usdt_object.c then remembers the range).
 */
int
usdt_sdt_unload(struct usdt_object *obj)
{
        int rc = 0;

        if (obj->dl != NULL) {
                dlclose(obj->dl);
                /* As anonymous stubs (usdt_probe.c): never again a stub
                 * address DTrace knew. Another thread may map something
                 * there first; then the caller remembers the range. */
                if (obj->dof_ever_loaded && obj->load_bytes > 0) {
                        void *at = mmap((void *)obj->load_base, obj->load_bytes,
                                        PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
                                        MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
                        if (at != (void *)obj->load_base) {
                                /* kernels before 4.17 take the flag as a hint */
                                if (at != MAP_FAILED)
                                        munmap(at, obj->load_bytes);
                                rc = -1;
                        }
                }
        }
        obj->dl = NULL;
        fd_close_if_ours(obj);
        free(obj->path);
        obj->path = NULL;
        free(obj->file);
        obj->file = NULL;
        return rc;
}
