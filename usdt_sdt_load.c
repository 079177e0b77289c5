/*
 * Linux: where a provider's SDT object (usdt_elf.c writes its image)
 * lives, and loading it into the process.
 *
 * Where it lives:
 * - USDT_SDT_DIR=DIR: file mode in DIR, and nowhere else. DIR must be ours
 *   and mode 0700 (it is created so). When it cannot work (not private,
 *   noexec, cannot write), enable fails and says why: the user chose it.
 * - otherwise a memory file (memfd_create with MFD_EXEC), kept open for
 *   the object's life and loaded as /proc/PID/fd/N (not /proc/self/...:
 *   gdb -p would open its own descriptor N). Nothing on disk, ever;
 *   survives /tmp mounted noexec. perf cannot use it (it needs a real path).
 * - where a memory file cannot be executable (vm.memfd_noexec=2 refuses
 *   MFD_EXEC with EACCES; a security module may refuse PROT_EXEC), file
 *   mode in the first of $XDG_RUNTIME_DIR, $TMPDIR, /tmp, /var/tmp,
 *   /dev/shm that works (unset ones skipped, one directory tried once), in
 *   a directory of ours there: BASE/libusdt-EUID, mode 0700. Whether a
 *   place works is found by trying it, never from mount flags: a file with
 *   no name (O_TMPFILE) is mapped PROT_EXEC there, and only then is the
 *   object written and loaded. A place that fails keeps nothing of ours:
 *   no file, no descriptor, no mapping, and no directory we made for it.
 *   When none works, enable fails with a message that names each place
 *   tried and why it failed, and the fix (USDT_SDT_DIR on a file system
 *   that allows execution).
 *
 * File mode (usdt_sdt_dir.c): the object is a file DIR/usdt-PID-START-SEQ-PROVIDER.so, so
 * perf works too; usdt_provider_path names it (obj->file). It is removed
 * when the object is retired, and at exit (usdt_sdt_unpublish, only in the
 * process that made it); what a killed process left is removed by the next
 * enable in that directory. The directory itself stays, empty. A live
 * object's file is flock()ed (shared) through its descriptor, so a process
 * in another pid namespace, to which our PID means some other process,
 * never removes it.
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

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U        /* Linux 6.3: executable memfd, asked for explicitly */
#endif

/* Where the image's parts are, for the load. */
/* Why a memory file cannot be executable, into err, for the message that
 * lists the places tried. */
static void
memfd_refused(struct usdt_err *err, const char *call, int error)
{
        char setting = 0;
        int fd = open("/proc/sys/vm/memfd_noexec", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                if (read(fd, &setting, 1) != 1)
                        setting = 0;
                close(fd);
        }
        usdt_err_set(err, "executable memory files are refused (%s: %s%s)", call,
                     strerror(error), setting == '2' ? ", vm.memfd_noexec=2" : "");
}

/*
 * A close-on-exec memory file that may be mapped executable, with extra
 * flags (MFD_ALLOW_SEALING): MFD_EXEC asked for explicitly (Linux 6.3+,
 * where vm.memfd_noexec decides), or plain on older kernels, which refuse
 * the flag with EINVAL. For provider objects and JIT arenas.
 */
int
usdt_memfd_exec(const char *name, unsigned int flags)
{
        int fd = memfd_create(name, MFD_CLOEXEC | MFD_EXEC | flags);

        if (fd < 0 && errno == EINVAL)
                fd = memfd_create(name, MFD_CLOEXEC | flags);
        return fd;
}

/* Where usdt_elf_build writes the image: the memory file itself, mapped
 * shared, so that the image is written once, in place, with its pages
 * allocated in one go (MAP_POPULATE) rather than faulted in one by one. */
struct memfd_place {
        int fd;
        void *map;
        size_t bytes;
        int error;
};

static void *
memfd_place(void *ctx, size_t bytes)
{
        struct memfd_place *mp = ctx;
        void *map;

        if (ftruncate(mp->fd, (off_t)bytes) != 0) {
                mp->error = errno;
                return NULL;
        }
        map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   mp->fd, 0);
        if (map == MAP_FAILED) {
                mp->error = errno;
                return NULL;
        }
        /* A child forked meanwhile must not inherit a writable view: it
         * would keep the write seal off (EBUSY) for as long as it lives. */
        madvise(map, bytes, MADV_DONTFORK);
        mp->map = map;
        mp->bytes = bytes;
        return map;
}

/*
 * Build the image into a sealed memory file; sets obj->fd, obj->path and
 * the layout. Returns 0; 1 when memory files cannot be executable here
 * (err says why: file mode elsewhere may work); or -1 with err set.
 */
static int
store_in_memfd(struct usdt_object *obj, struct usdt_err *err,
               struct usdt_elf_info *lay)
{
        struct memfd_place mp = { -1, NULL, 0, 0 };
        size_t page = usdt_page_bytes();
        char name[80];
        void *map;
        int fd, sealed;

        /* the published form: a newline would break /proc/PID/maps */
        memcpy(name, "libusdt:", 8);
        usdt_name_publish(name + 8, sizeof(name) - 8, obj->set.provider);
        fd = usdt_memfd_exec(name, MFD_ALLOW_SEALING);
        if (fd < 0 && (errno == EACCES || errno == EPERM)) {
                memfd_refused(err, "memfd_create", errno);
                return 1;
        }
        mp.fd = fd;
        if (fd >= 0 && usdt_elf_image(&obj->set, memfd_place, &mp, lay) == NULL) {
                if (mp.map != NULL)
                        munmap(mp.map, mp.bytes);
                if (mp.error != 0)
                        usdt_err_set(err, "cannot make the SDT memory file for "
                                     "provider %s: %s", obj->set.provider,
                                     strerror(mp.error));
                else
                        usdt_err_set(err, "failed to allocate memory");
                close(fd);
                return -1;
        }
        if (mp.map != NULL)
                munmap(mp.map, mp.bytes);       /* no writable mapping may stay */
        /* Sealed against any change. EBUSY: a child forked in the instant
         * between the mmap and its MADV_DONTFORK still has the writable
         * view; the object is then sealed against shrinking and growing
         * only (nobody but this process and that child can write it). */
        sealed = fd >= 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                                  F_SEAL_WRITE | F_SEAL_SEAL) == 0;
        if (fd >= 0 && !sealed && errno == EBUSY)
                sealed = fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0;
        if (!sealed) {
                usdt_err_set(err, "cannot make the SDT memory file for "
                               "provider %s: %s", obj->set.provider, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        /* Tried here, so that a refusal is told from a loader failure */
        map = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
                int error = errno;

                close(fd);
                if (error == EACCES || error == EPERM) {
                        memfd_refused(err, "mmap PROT_EXEC", error);
                        return 1;
                }
                usdt_err_set(err, "cannot make the SDT memory file for "
                               "provider %s: %s", obj->set.provider, strerror(error));
                return -1;
        }
        munmap(map, page);
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

/* Write all of data at file offset at: 0, or -1 with errno set. For
 * provider objects (file mode) and JIT arenas. */
int
usdt_write_all_at(int fd, const void *data, size_t bytes, off_t at)
{
        const unsigned char *p = data;

        while (bytes > 0) {
                ssize_t n = pwrite(fd, p, bytes, at);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0)
                                errno = EIO;
                        return -1;
                }
                p += n;
                at += n;
                bytes -= (size_t)n;
        }
        return 0;
}

/*
 * Close fd if it is still the file (device, inode) we opened: a process may
 * have closed it behind our back and reused the number for its own file.
 * For the JIT arenas too.
 */
void
usdt_fd_close_if_same(int fd, dev_t dev, ino_t ino)
{
        struct stat st;

        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
                close(fd);
}

/*
 * Load the stored object (obj->path) and find its stubs and semaphores.
 * Returns 0, or -1 with err set and the store undone (file removed,
 * descriptor closed).
 */
static int
sdt_dlopen(struct usdt_object *obj, struct usdt_err *err, const struct usdt_elf_info *lay)
{
        struct link_map *map = NULL;

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
        obj->load_bytes = lay->load_bytes;
        obj->stubs = (unsigned char *)map->l_addr + lay->text_offset;
        obj->semaphores = (volatile uint16_t *)(map->l_addr + lay->semaphores_offset);
        return 0;
}

/*
 * Memory files cannot be executable (err says why): file mode in the first
 * candidate directory that works. Returns 0 with the object loaded, or -1
 * with err naming every place tried, why each failed, and the fix.
 */
static int
load_from_fallback_dir(struct usdt_object *obj, struct usdt_err *err,
                       const unsigned char *img, size_t bytes,
                       const struct usdt_elf_info *lay)
{
        static const char fix[] = "; to fix it, set USDT_SDT_DIR to a directory "
                                  "on a file system that allows execution";
        const char *bases[] = { getenv("XDG_RUNTIME_DIR"), getenv("TMPDIR"),
                                "/tmp", "/var/tmp", "/dev/shm" };
        struct stat seen[sizeof(bases) / sizeof(bases[0])];
        char memfd_why[sizeof(err->text)], tried[2 * sizeof(err->text)], dir[PATH_MAX];
        char head[2 * sizeof(err->text)];
        size_t nseen = 0, i, j, len = 0;
        int room;

        snprintf(memfd_why, sizeof(memfd_why), "%s", err->text);
        tried[0] = '\0';
        for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
                struct usdt_sdt_place pl = { dir, 0, 0 };
                struct usdt_err why;
                struct stat st;
                size_t base_len;
                int n;

                if (bases[i] == NULL || bases[i][0] == '\0')
                        continue;
                if (stat(bases[i], &st) == 0) {        /* each directory once */
                        for (j = 0; j < nseen; j++)
                                if (seen[j].st_dev == st.st_dev && seen[j].st_ino == st.st_ino)
                                        break;
                        if (j < nseen)
                                continue;
                        seen[nseen++] = st;
                }
                base_len = strlen(bases[i]);
                while (base_len > 1 && bases[i][base_len - 1] == '/')
                        base_len--;
                n = snprintf(dir, sizeof(dir), "%.*s/libusdt-%u", (int)base_len,
                             base_len == 1 && bases[i][0] == '/' ? "" : bases[i],
                             (unsigned)geteuid());
                if (n < 0 || (size_t)n >= sizeof(dir)) {
                        usdt_err_set(&why, "%.40s...: path too long", bases[i]);
                } else if (usdt_sdt_store_in_dir(obj, &why, &pl, img, bytes) == 0) {
                        struct usdt_err load_why;

                        if (sdt_dlopen(obj, &load_why, lay) == 0)
                                return 0;
                        usdt_sdt_place_unmake(&pl);
                        usdt_err_set(&why, "%s: %s", dir, load_why.text);
                }
                n = snprintf(tried + len, sizeof(tried) - len, "%s%s",
                             len > 0 ? "; " : "", why.text);
                if (n > 0)
                        len += (size_t)n < sizeof(tried) - len ? (size_t)n : sizeof(tried) - len - 1;
        }
        /* The fix is never cut off: a list too long loses its end. */
        snprintf(head, sizeof(head), "cannot publish provider %s: %s, and no "
                 "directory could hold its SDT object: ", obj->set.provider, memfd_why);
        room = (int)sizeof(err->text) - 1 - (int)strlen(head) - (int)strlen(fix);
        if (room < 4)
                room = 4;
        usdt_err_set(err, "%s%.*s%s%s", head, (int)len > room ? room - 3 : (int)len,
                     tried, (int)len > room ? "..." : "", fix);
        return -1;
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
        struct usdt_elf_info lay;
        unsigned char *img = NULL;
        int rc;

        if (dir == NULL || dir[0] == '\0') {
                rc = store_in_memfd(obj, err, &lay);
                if (rc == 0)
                        return sdt_dlopen(obj, err, &lay) == 0 ? 0 : -1;
                if (rc < 0)
                        return -1;
        }
        /* file mode: USDT_SDT_DIR, or no executable memory file here */
        img = usdt_elf_image(&obj->set, NULL, NULL, &lay);
        if (img == NULL) {
                usdt_err_set(err, "failed to allocate memory");
                return -1;
        }
        if (dir != NULL && dir[0] != '\0') {
                struct usdt_sdt_place pl = { dir, 1, 0 };

                rc = usdt_sdt_store_in_dir(obj, err, &pl, img, lay.bytes);
                if (rc == 0)
                        rc = sdt_dlopen(obj, err, &lay);
        } else {
                rc = load_from_fallback_dir(obj, err, img, lay.bytes, &lay);
        }
        free(img);
        return rc == 0 ? 0 : -1;
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
        usdt_fd_close_if_same(obj->fd, obj->fd_dev, obj->fd_ino);
        obj->fd = -1;
        free(obj->path);
        obj->path = NULL;
        free(obj->file);
        obj->file = NULL;
        return rc;
}
