/*
 * The library never closes a descriptor that is no longer its own
 * (t/71_lifetime.t).
 *
 * An enabled provider keeps its object's memory file open. A program may
 * close that descriptor behind the library's back, and the number then
 * goes to the next file the program opens; freeing the provider must
 * leave that file open.
 *
 *   parent  the program closes the memory file's descriptor (found with
 *           readlink on /proc/self/fd/N: "/memfd:libusdt:PROVIDER"), opens
 *           a log that takes the same number, frees the provider.
 *   child   a forked child "daemonises": closes every descriptor >= 3,
 *           opens a log (it takes the old number), frees the provider.
 *
 * Then a few more control calls (a throwaway provider enabled and freed),
 * and the log must still be open, still the same file (st_dev, st_ino)
 * and writable: what was written reads back from its path.
 *
 * usage: lifetime_fd parent|child PROVIDER LOGPATH
 * prints "fd ok" or what went wrong; alarm(30) watchdog.
 */
#define _GNU_SOURCE
#include "usdt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
on_alarm(int sig)
{
        (void)sig;
        if (write(1, "fd timeout\n", 11) < 0)
                _exit(125);
        _exit(124);
}

/* The descriptor of the memory file "libusdt:name", or -1. */
static int
memfd_of(const char *name)
{
        char want[128], link[256], path[300];
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *e;
        int fd = -1;

        if (dir == NULL)
                return -1;
        snprintf(want, sizeof(want), "/memfd:libusdt:%s (deleted)", name);
        while ((e = readdir(dir)) != NULL) {
                ssize_t n;
                snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
                n = readlink(path, link, sizeof(link) - 1);
                if (n < 0)
                        continue;
                link[n] = '\0';
                if (strcmp(link, want) == 0)
                        fd = atoi(e->d_name);
        }
        closedir(dir);
        return fd;
}

/* Open the log at exactly descriptor number fd; -1 on failure. */
static int
open_log_at(const char *path, int fd)
{
        int log = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);

        if (log < 0 || log == fd)
                return log;
        if (dup2(log, fd) != fd)
                return -1;
        close(log);
        return fd;
}

static int
throwaway_cycle(const char *name)
{
        const char *types[1] = { "int" };
        usdt_provider_t *q = usdt_create_provider(name, "lifetime");
        usdt_probedef_t *qd = usdt_create_probe("fn", "tmp", 1, types);

        if (q == NULL || qd == NULL || usdt_provider_add_probe(q, qd) != 0 ||
            usdt_provider_enable(q) != 0)
                return -1;
        usdt_probe_release(qd);
        usdt_provider_free(q);
        return 0;
}

/*
 * Free the provider behind whose back its descriptor became the log, make
 * more control calls, check the log. Returns NULL or what went wrong.
 */
static const char *
free_and_check(usdt_provider_t *p, usdt_probedef_t *pd, const char *name,
               const char *logpath, int log)
{
        static char why[256];
        struct stat before, after, bypath;
        char other[64], text[64];
        int i, fd;
        ssize_t n;

        if (fstat(log, &before) != 0)
                return "cannot fstat the log";
        usdt_probe_release(pd);
        usdt_provider_free(p);
        snprintf(other, sizeof(other), "%s_tmp", name);
        for (i = 0; i < 3; i++)
                if (throwaway_cycle(other) != 0)
                        return "a later provider failed to enable";
        if (fcntl(log, F_GETFD) < 0) {
                snprintf(why, sizeof(why), "the log's descriptor %d was closed", log);
                return why;
        }
        if (fstat(log, &after) != 0 || after.st_dev != before.st_dev ||
            after.st_ino != before.st_ino) {
                snprintf(why, sizeof(why), "descriptor %d is no longer the log", log);
                return why;
        }
        if (write(log, "logged\n", 7) != 7) {
                snprintf(why, sizeof(why), "cannot write the log: %s", strerror(errno));
                return why;
        }
        fd = open(logpath, O_RDONLY);
        if (fd < 0 || fstat(fd, &bypath) != 0 || bypath.st_ino != before.st_ino)
                return "the log's path is another file";
        n = read(fd, text, sizeof(text));
        close(fd);
        if (n != 7 || memcmp(text, "logged\n", 7) != 0)
                return "the log does not hold what was written";
        return NULL;
}

int
main(int argc, char **argv)
{
        const char *types[1] = { "int" };
        const char *why;
        usdt_provider_t *p;
        usdt_probedef_t *pd;
        int memfd, log, status;
        pid_t pid;

        if (argc != 4 || (strcmp(argv[1], "parent") != 0 && strcmp(argv[1], "child") != 0)) {
                fprintf(stderr, "usage: %s parent|child PROVIDER LOGPATH\n", argv[0]);
                return 2;
        }
        setvbuf(stdout, NULL, _IONBF, 0);
        signal(SIGALRM, on_alarm);
        alarm(30);
        p = usdt_create_provider(argv[2], "lifetime");
        pd = usdt_create_probe("fn", "logged", 1, types);
        if (p == NULL || pd == NULL || usdt_provider_add_probe(p, pd) != 0 ||
            usdt_provider_enable(p) != 0) {
                printf("fd enable failed: %s\n", p ? usdt_errstr(p) : usdt_errstr(NULL));
                return 1;
        }
        memfd = memfd_of(argv[2]);
        if (memfd < 0) {
                printf("fd no descriptor reads /memfd:libusdt:%s\n", argv[2]);
                return 1;
        }
        if (strcmp(argv[1], "parent") == 0) {
                close(memfd);                   /* behind the library's back */
                log = open_log_at(argv[3], memfd);
                if (log != memfd) {
                        printf("fd cannot open the log as descriptor %d\n", memfd);
                        return 1;
                }
                why = free_and_check(p, pd, argv[2], argv[3], log);
                printf("%s%s\n", why ? "fd parent: " : "fd ok", why ? why : "");
                return why ? 1 : 0;
        }
        pid = fork();
        if (pid < 0) {
                printf("fd fork failed\n");
                return 1;
        }
        if (pid == 0) {
                struct rlimit rl;
                int fd;

                /* daemonise: every descriptor >= 3 closed, then a log */
                if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                        _exit(3);
                for (fd = 3; fd < (int)rl.rlim_cur && fd < 65536; fd++)
                        close(fd);
                log = open_log_at(argv[3], memfd);
                if (log != memfd)
                        _exit(3);
                why = free_and_check(p, pd, argv[2], argv[3], log);
                if (why != NULL)
                        printf("fd child: %s\n", why);
                _exit(why ? 1 : 0);
        }
        if (waitpid(pid, &status, 0) != pid) {
                printf("fd waitpid failed\n");
                return 1;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                printf("fd ok\n");
                return 0;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
                return 1;               /* the child said why */
        if (WIFSIGNALED(status))
                printf("fd child killed by signal %d\n", WTERMSIG(status));
        else
                printf("fd child exited %d\n", WEXITSTATUS(status));
        return 1;
}
