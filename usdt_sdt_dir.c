/*
 * Linux file mode: the SDT object as a file in a private directory (see
 * usdt_sdt_load.c for when: USDT_SDT_DIR, or no executable memory file).
 *
 * The directory is ours: created 0700, opened without following a link,
 * checked to be owned by us and not open to others. A file is written only
 * once a file there is known to map executable (tried on a file with no
 * name), is named DIR/usdt-PID-START-SEQ-PROVIDER.so, and is flock()ed
 * (shared) through the descriptor the process keeps, so that a reaper in
 * another pid namespace, to which our PID means another process, never
 * removes it. Each store first removes what killed processes left there
 * (their PID and start time no longer match, and their lock is gone).
 * Nothing here runs under the library lock.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static unsigned long sequence;  /* file names made; atomic: enables run unlocked */

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
 * usdt-PID-START-... whose process is gone (or is another process now),
 * unless some process still holds the file's lock (its maker, seen from
 * another pid namespace).
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
                int pid, file;
                unsigned long long start;

                if (sscanf(de->d_name, "usdt-%d-%llu-", &pid, &start) != 2 || pid <= 0)
                        continue;
                if ((kill(pid, 0) == 0 || errno == EPERM) &&
                    process_start_time(pid) == start)
                        continue;
                file = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (file >= 0 && flock(file, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
                        close(file);
                        continue;
                }
                unlinkat(dirfd, de->d_name, 0);
                if (file >= 0)
                        close(file);
        }
        closedir(dir);
}

/* "USDT_SDT_DIR=" before the directory in the messages about a chosen one */
static const char *
place_prefix(const struct usdt_sdt_place *pl)
{
        return pl->chosen ? "USDT_SDT_DIR=" : "";
}

/* Remove the directory if this attempt made it (and it is empty). */
void
usdt_sdt_place_unmake(struct usdt_sdt_place *pl)
{
        if (pl->made)
                rmdir(pl->dir);
        pl->made = 0;
}

/*
 * Open (creating it if needed) the private directory: a directory, not a
 * symbolic link, owned by us, mode 0700. Returns its descriptor, with
 * *real its absolute path (malloc'ed); or -1 with err set.
 */
static int
dir_open(struct usdt_err *err, struct usdt_sdt_place *pl, char **real)
{
        const char *pre = place_prefix(pl);
        struct stat st;
        int fd;

        pl->made = 0;
        if (mkdir(pl->dir, 0700) == 0)
                pl->made = 1;
        else if (errno != EEXIST) {
                usdt_err_set(err, "%s%s: cannot create it: %s", pre, pl->dir, strerror(errno));
                return -1;
        }
        fd = open(pl->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                usdt_err_set(err, "%s%s: %s", pre, pl->dir, strerror(errno));
                usdt_sdt_place_unmake(pl);
                return -1;
        }
        if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
                if (pl->chosen)
                        usdt_err_set(err, "USDT_SDT_DIR=%s: must be a directory owned by "
                                       "this user with mode 0700 (others must not write there)",
                                       pl->dir);
                else
                        usdt_err_set(err, "%s: not a directory of this user with mode 0700",
                                     pl->dir);
                close(fd);
                usdt_sdt_place_unmake(pl);
                return -1;
        }
        *real = realpath(pl->dir, NULL);
        if (*real == NULL) {
                usdt_err_set(err, "%s%s: %s", pre, pl->dir, strerror(errno));
                close(fd);
                usdt_sdt_place_unmake(pl);
                return -1;
        }
        return fd;
}

/*
 * Can a file in the directory be mapped executable? Tried on a file with
 * no name (O_TMPFILE), or, where the file system has none, one that loses
 * its name at once. Returns 0; an errno when the mapping is refused; or
 * minus an errno when no file could be made there.
 */
static int
dir_exec_check(int dirfd)
{
        size_t page = usdt_page_bytes();
        char name[128];
        void *map;
        int fd, rc = 0;

        fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) {
                snprintf(name, sizeof(name), "usdt-%d-%llu-%lu-try", (int)getpid(),
                         process_start_time(getpid()),
                         __atomic_add_fetch(&sequence, 1, __ATOMIC_RELAXED));
                fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                unlinkat(dirfd, name, 0);
        }
        if (ftruncate(fd, (off_t)page) != 0) {
                rc = -errno;
        } else {
                map = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
                if (map == MAP_FAILED)
                        rc = errno;
                else
                        munmap(map, page);
        }
        close(fd);
        return rc;
}

/*
 * Write the image into a file in the place's directory, once a file there
 * is known to map executable; sets obj->file (what tracers and
 * usdt_provider_path name), obj->fd and obj->path (what dlopen loads:
 * /proc/PID/fd/N of the very file we wrote, so nothing can swap another
 * object in under the name between the write and the load). Returns 0, or
 * -1 with err set and nothing of ours left there.
 */
int
usdt_sdt_store_in_dir(struct usdt_object *obj, struct usdt_err *err,
                      struct usdt_sdt_place *pl, const unsigned char *img, size_t bytes)
{
        const char *pre = place_prefix(pl);
        char name[160], provider[64], *real = NULL;
        struct stat st;
        int dirfd, fd, rc, attempt;

        dirfd = dir_open(err, pl, &real);
        if (dirfd < 0)
                return -1;
        rc = dir_exec_check(dirfd);
        if (rc != 0) {
                struct statvfs vfs;
                int noexec = fstatvfs(dirfd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC);

                if (rc < 0)
                        usdt_err_set(err, "%s%s: cannot create a file there: %s",
                                     pre, pl->dir, strerror(-rc));
                else if (noexec && pl->chosen)
                        usdt_err_set(err, "USDT_SDT_DIR=%s: its file system is mounted "
                                       "noexec, so the probes cannot be mapped; unset "
                                       "USDT_SDT_DIR to use a memory file", pl->dir);
                else if (noexec)
                        usdt_err_set(err, "%s: mounted noexec", pl->dir);
                else
                        usdt_err_set(err, "%s%s: a file there cannot be mapped "
                                     "executable: %s", pre, pl->dir, strerror(rc));
                close(dirfd);
                free(real);
                usdt_sdt_place_unmake(pl);
                return -1;
        }
        dir_reap(dirfd);
        /* Locked before anything else. A reaper in another pid namespace
         * that got the file first has unlinked it: then make another. */
        for (attempt = 0; attempt < 4; attempt++) {
                snprintf(name, sizeof(name), "usdt-%d-%llu-%lu-%s.so", (int)getpid(),
                         process_start_time(getpid()),
                         __atomic_add_fetch(&sequence, 1, __ATOMIC_RELAXED),
                         usdt_name_publish(provider, sizeof(provider), obj->set.provider));
                fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 || flock(fd, LOCK_SH) != 0 || fstat(fd, &st) != 0 ||
                    st.st_nlink > 0)
                        break;
                close(fd);
                fd = -1;
                errno = ENOENT;
        }
        if (fd < 0 || usdt_write_all_at(fd, img, bytes, 0) != 0 || fchmod(fd, 0400) != 0) {
                usdt_err_set(err, "%s%s: cannot write %s: %s",
                             pre, pl->dir, name, strerror(errno));
                if (fd >= 0) {
                        close(fd);
                        unlinkat(dirfd, name, 0);
                }
                close(dirfd);
                free(real);
                usdt_sdt_place_unmake(pl);
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
                usdt_sdt_place_unmake(pl);
                usdt_err_set(err, "failed to allocate memory");
                return -1;
        }
        close(dirfd);
        obj->fd = fd;
        obj->creator = getpid();
        return 0;
}

