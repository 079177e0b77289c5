/*
 * libusdt benchmark (issue 5): libusdt's probes side by side with
 * compiled-in SystemTap SDT probes (<sys/sdt.h>), in one run.
 *
 *   1. disabled probe cost, per call, no tracer attached
 *   2. enabled probe cost with bpftrace attached and counting
 *      (both also for a probe site inside JIT-generated code, usdt_jit(3),
 *      against the same compiled-in probe called the same way)
 *   3. enable and disable+free time for 1..10 000 probes, and for
 *      1 000 providers of one probe each
 *   4. memory and descriptors per enabled probe / provider
 *   5. bpftrace attach and detach time to all probes of a provider
 *
 * Usage: bench_usdt [RESULTS.md]   (prints the tables; also writes them to
 * RESULTS.md when given). Environment: BENCH_ATTACH_PROBES (figure 5's
 * largest provider, default 1000), BENCH_FIGURES (e.g. "13": only those
 * figures; default all). Figures 2 and 5 need root and bpftrace; without
 * them their rows say why they were skipped.
 *
 * Internal modes (the memory figures run in fresh processes so that no
 * earlier allocation is reused): bench_usdt --child-memory N,
 * bench_usdt --child-providers N.
 *
 * Every bpftrace is started here (fork/exec, output in a temporary file)
 * and stopped by its pid: SIGINT, wait, SIGKILL after a timeout. It also
 * gets PR_SET_PDEATHSIG, so it cannot outlive this process.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usdt.h"

/* The compiled-in baseline: SDT probes with semaphores, as `dtrace -h`
 * would generate them. Two probes, so that bpftrace counts each row. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ volatile unsigned short bench_base_semaphore
        __attribute__((section(".probes"), used));
__extension__ volatile unsigned short bench_guarded_semaphore
        __attribute__((section(".probes"), used));
__extension__ volatile unsigned short bench_nop5_semaphore
        __attribute__((section(".probes"), used));
#define BENCH_GUARDED_ENABLED() __builtin_expect(bench_guarded_semaphore != 0, 0)

#define CLOBBER() __asm__ __volatile__("" ::: "memory")
#define NOINLINE __attribute__((noinline))

/*
 * The compiled-in probe shaped like a JIT's function, for the JIT rows of
 * figures 1 and 2: a function of its own, called through a pointer, that
 * tests its semaphore and returns 1 when it passed its probe site, 0 when
 * it skipped it. Its site is a 5-byte nop (0f 1f 44 00 00), as the JIT
 * site is, so that traced both can take the kernel's optimised path;
 * <sys/sdt.h> emits a 1-byte nop, so _SDT_NOP is replaced for this one
 * probe (the macro is expanded where the probe is used) and the global
 * label bench_nop5_site marks the site for figure 2's notes. noclone: a
 * copy would define the label twice (the assembler would say so). gcc
 * leaves both operands in %rdi and %rsi; clang may spill them below %rsp,
 * where the optimised path's call writes, which only the figures' counts
 * (not arguments) can afford.
 */
#if defined(__clang__)
#define NOCLONE
#else
#define NOCLONE __attribute__((noclone))
#endif
#if defined(__x86_64__)
#undef _SDT_NOP
#define _SDT_NOP .globl bench_nop5_site; .hidden bench_nop5_site; bench_nop5_site: \
                 .byte 0x0f; .byte 0x1f; .byte 0x44; .byte 0x00; .byte 0x00
extern const unsigned char bench_nop5_site[];
#endif

static NOINLINE NOCLONE int
sdt_nop5_call(uint64_t i, char *s)
{
        if (__builtin_expect(bench_nop5_semaphore != 0, 0)) {
                DTRACE_PROBE2(bench, nop5, i, s);
                return 1;
        }
        return 0;
}

#undef _SDT_NOP
#define _SDT_NOP nop

/* ---- Figure parameters --------------------------------------------------- */

#define DIS_CALLS       20000000ULL     /* figure 1: calls per repetition */
#define DIS_REPS        11
#define EN_FIRES        100000ULL       /* figure 2: fires per repetition */
#define EN_REPS         10
#define EN_WARMUP       1000ULL
#define EN_REPS_MAX_S   60.0            /* figure 2: stop repeating after this */
#define ENABLE_REPS     11              /* figure 3 */
#define ENABLE_BUDGET_S 20.0            /* per size; at least 3 repetitions */
#define PROVIDERS       1000
#define PROVIDER_REPS   3
#define MEM_PROBES      10000           /* figure 4 */
#define MEM_REPS        5
#define ATTACH_DEFAULT  1000            /* figure 5: largest provider */
#ifndef RUN_BUDGET_S
#define RUN_BUDGET_S    280.0           /* figure 5 skips a size predicted to overrun */
#endif

/* ---- Small utilities ------------------------------------------------------- */

static char bench_str[] = "bench";
static cpu_set_t orig_affinity;
static int pinned_cpu = -1;
static FILE *md;
static uint64_t run_start;
static const char *bpftrace_path;
static char skip_reason[256];

static uint64_t
now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

        nanosleep(&ts, NULL);
}

/* Print to stdout and to the results file. */
static void __attribute__((format(printf, 1, 2)))
out(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        if (md != NULL) {
                va_start(ap, fmt);
                vfprintf(md, fmt, ap);
                va_end(ap);
        }
        fflush(stdout);
}

/* Progress, to stderr only. */
static void __attribute__((format(printf, 1, 2)))
progress(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fprintf(stderr, "bench: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
}

struct stat3 {
        double med, min, max;
        int n;
};

static int
cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static struct stat3
stats(const double *v, int n)
{
        struct stat3 s = { 0, 0, 0, n };
        double *c;

        if (n <= 0)
                return s;
        c = malloc(sizeof(*c) * (size_t)n);
        if (c == NULL)
                abort();
        memcpy(c, v, sizeof(*c) * (size_t)n);
        qsort(c, (size_t)n, sizeof(*c), cmp_double);
        s.min = c[0];
        s.max = c[n - 1];
        s.med = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
        free(c);
        return s;
}

static void
table_head(const char *title)
{
        out("\n### %s\n\n", title);
        out("| figure | median | min | max | ratio to baseline | iterations |\n");
        out("|---|---:|---:|---:|---:|---|\n");
}

static void
table_row(const char *figure, struct stat3 s, int prec, const char *ratio,
          const char *iterations)
{
        out("| %s | %.*f | %.*f | %.*f | %s | %s |\n", figure, prec, s.med,
            prec, s.min, prec, s.max, ratio, iterations);
}

static void
table_skip(const char *figure, const char *why)
{
        out("| %s | skipped | | | | %s |\n", figure, why);
}

/* "3.10x b" etc.; base <= 0 gives "—". */
static const char *
ratio_str(char *buf, size_t len, double v, double base, const char *label)
{
        if (base <= 0)
                snprintf(buf, len, "—");
        else
                snprintf(buf, len, "%.2fx%s%s", v / base, label[0] ? " " : "", label);
        return buf;
}

/* No "-0.00" for a difference that is zero within the noise. */
static double
nz(double x)
{
        return x > -0.005 && x < 0.005 ? 0.0 : x;
}

static const char *
verdict(int met)
{
        return met ? "**met**" : "**not met**";
}

/* ---- /proc readers ------------------------------------------------------- */

/* Resident bytes, and of them the file- or shmem-backed ones (statm). */
static long
rss_bytes(long *shared_out)
{
        long size = 0, resident = 0, shared = 0;
        FILE *f = fopen("/proc/self/statm", "r");

        if (f == NULL)
                return -1;
        if (fscanf(f, "%ld %ld %ld", &size, &resident, &shared) != 3)
                resident = shared = -1;
        fclose(f);
        if (shared_out != NULL)
                *shared_out = shared < 0 ? -1 : shared * sysconf(_SC_PAGESIZE);
        return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static long
mapped_bytes(void)
{
        char line[512];
        unsigned long lo, hi;
        long sum = 0;
        FILE *f = fopen("/proc/self/maps", "r");

        if (f == NULL)
                return -1;
        while (fgets(line, sizeof(line), f) != NULL) {
                if (sscanf(line, "%lx-%lx", &lo, &hi) == 2)
                        sum += (long)(hi - lo);
                /* skip the rest of an over-long line */
                while (strchr(line, '\n') == NULL &&
                       fgets(line, sizeof(line), f) != NULL)
                        ;
        }
        fclose(f);
        return sum;
}

static int
fd_count(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        if (d == NULL)
                return -1;
        while ((e = readdir(d)) != NULL)
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;   /* the directory's own descriptor */
}

static int
trampoline_mapped(void)
{
        char line[512];
        int found = 0;
        FILE *f = fopen("/proc/self/maps", "r");

        if (f == NULL)
                return 0;
        while (!found && fgets(line, sizeof(line), f) != NULL)
                found = strstr(line, "[uprobes-trampoline]") != NULL;
        fclose(f);
        return found;
}

/* First line of a file, stripped, or of a command's output. */
static void
first_line(FILE *f, char *buf, size_t len)
{
        buf[0] = '\0';
        if (f != NULL && fgets(buf, (int)len, f) != NULL)
                buf[strcspn(buf, "\n")] = '\0';
}

static void
loadavg(char *buf, size_t len)
{
        FILE *f = fopen("/proc/loadavg", "r");
        char line[128];
        double a, b, c;

        snprintf(buf, len, "unknown");
        first_line(f, line, sizeof(line));
        if (f != NULL)
                fclose(f);
        if (sscanf(line, "%lf %lf %lf", &a, &b, &c) == 3)
                snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
}

static void
cpu_model(char *buf, size_t len)
{
        char line[512];
        FILE *f = fopen("/proc/cpuinfo", "r");

        snprintf(buf, len, "unknown");
        if (f == NULL)
                return;
        while (fgets(line, sizeof(line), f) != NULL) {
                char *colon = strchr(line, ':');
                if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
                        colon++;
                        while (*colon == ' ' || *colon == '\t')
                                colon++;
                        colon[strcspn(colon, "\n")] = '\0';
                        snprintf(buf, len, "%s", colon);
                        break;
                }
        }
        fclose(f);
}

/* ---- Pinning ------------------------------------------------------------- */

static void
pin_to_one_cpu(void)
{
        cpu_set_t one;
        int cpu;

        if (sched_getaffinity(0, sizeof(orig_affinity), &orig_affinity) != 0) {
                CPU_ZERO(&orig_affinity);
                return;
        }
        /* the highest allowed CPU: CPU 0 usually takes more interrupts */
        for (cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--) {
                if (!CPU_ISSET(cpu, &orig_affinity))
                        continue;
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                if (sched_setaffinity(0, sizeof(one), &one) == 0)
                        pinned_cpu = cpu;
                return;
        }
}

/* ---- bpftrace, started and stopped by pid -------------------------------- */

static volatile pid_t tracer_pid = -1;
static char tracer_file[64];
static int tracer_fd = -1;

static void
tracer_cleanup(void)
{
        if (tracer_pid > 0) {
                kill(tracer_pid, SIGKILL);
                waitpid(tracer_pid, NULL, 0);
                tracer_pid = -1;
        }
        if (tracer_file[0] != '\0') {
                unlink(tracer_file);
                tracer_file[0] = '\0';
        }
        if (tracer_fd >= 0) {
                close(tracer_fd);
                tracer_fd = -1;
        }
}

static void
on_signal(int sig)
{
        /* kill, waitpid and unlink are async-signal-safe */
        if (tracer_pid > 0) {
                kill(tracer_pid, SIGKILL);
                waitpid(tracer_pid, NULL, 0);
        }
        if (tracer_file[0] != '\0')
                unlink(tracer_file);
        _exit(128 + sig);
}

static const char *
find_in_path(const char *name)
{
        static char buf[PATH_MAX];
        const char *path = getenv("PATH");
        const char *p;

        if (path == NULL || *path == '\0')
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (p = path; *p != '\0';) {
                size_t len = strcspn(p, ":");
                if (len > 0 && len < sizeof(buf) - strlen(name) - 2) {
                        memcpy(buf, p, len);
                        snprintf(buf + len, sizeof(buf) - len, "/%s", name);
                        if (access(buf, X_OK) == 0)
                                return buf;
                }
                p += len;
                if (*p == ':')
                        p++;
        }
        return NULL;
}

/*
 * Start `bpftrace -B none -p OURPID -e PROG` with its output in a fresh
 * temporary file. max_probes > 0 raises BPFTRACE_MAX_PROBES and
 * BPFTRACE_MAX_BPF_PROGS. Returns 0, or -1 with skip_reason set.
 */
static int
tracer_start(const char *prog, int max_probes)
{
        char pidstr[32], maxstr[32];
        pid_t me = getpid(), pid;

        snprintf(tracer_file, sizeof(tracer_file), "/tmp/usdt-bench-bpftrace-XXXXXX");
        tracer_fd = mkstemp(tracer_file);
        if (tracer_fd < 0) {
                snprintf(skip_reason, sizeof(skip_reason), "mkstemp: %s", strerror(errno));
                tracer_file[0] = '\0';
                return -1;
        }
        snprintf(pidstr, sizeof(pidstr), "%d", (int)me);
        snprintf(maxstr, sizeof(maxstr), "%d", max_probes + 16);
        fflush(stdout);
        fflush(stderr);
        if (md != NULL)
                fflush(md);
        pid = fork();
        if (pid < 0) {
                snprintf(skip_reason, sizeof(skip_reason), "fork: %s", strerror(errno));
                tracer_cleanup();
                return -1;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != me)
                        _exit(127);
                if (CPU_COUNT(&orig_affinity) > 0)
                        sched_setaffinity(0, sizeof(orig_affinity), &orig_affinity);
                if (null >= 0)
                        dup2(null, 0);
                dup2(tracer_fd, 1);
                dup2(tracer_fd, 2);
                if (max_probes > 0) {
                        setenv("BPFTRACE_MAX_PROBES", maxstr, 1);
                        setenv("BPFTRACE_MAX_BPF_PROGS", maxstr, 1);
                }
                execl(bpftrace_path, "bpftrace", "-B", "none", "-p", pidstr,
                      "-e", prog, (char *)NULL);
                _exit(127);
        }
        tracer_pid = pid;
        return 0;
}

/* bpftrace's output so far, NUL-terminated, malloc'ed. */
static char *
tracer_output(void)
{
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        ssize_t got;

        if (buf == NULL)
                abort();
        for (;;) {
                if (len + 1 >= cap) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        if (buf == NULL)
                                abort();
                }
                got = pread(tracer_fd, buf + len, cap - len - 1, (off_t)len);
                if (got <= 0)
                        break;
                len += (size_t)got;
        }
        buf[len] = '\0';
        return buf;
}

/* 1 if bpftrace has exited (reaped; *status set), 0 if still running. */
static int
tracer_exited(int *status)
{
        pid_t r;

        if (tracer_pid <= 0)
                return 1;
        r = waitpid(tracer_pid, status, WNOHANG);
        if (r == tracer_pid || (r < 0 && errno == ECHILD)) {
                tracer_pid = -1;
                return 1;
        }
        return 0;
}

/* The last few lines of bpftrace's output, on one line, for a skip reason. */
static void
tracer_tail(char *buf, size_t len)
{
        char *o = tracer_output();
        char *start = o + strlen(o);
        int lines = 0;

        while (start > o && lines < 3) {
                start--;
                if (*start == '\n' && start[1] != '\0')
                        lines++;
        }
        while (*start == '\n')
                start++;
        snprintf(buf, len, "%s", start);
        for (char *c = buf; *c; c++)
                if (*c == '\n' || *c == '|')
                        *c = ' ';
        free(o);
}

/*
 * SIGINT, then wait up to timeout_s for bpftrace to exit; SIGKILL after.
 * Returns the ns from SIGINT to exit (or -1 if it had to be killed). If
 * probes is given, *all_off_ns is when the last of them read disabled.
 */
static double
tracer_stop(double timeout_s, usdt_probe_t **probes, size_t nprobes,
            double *all_off_ns)
{
        uint64_t t0 = now_ns(), t;
        int status, off_seen = probes == NULL;
        double exit_ns = -1;

        if (all_off_ns != NULL)
                *all_off_ns = -1;
        if (tracer_pid <= 0)
                return -1;
        kill(tracer_pid, SIGINT);
        for (;;) {
                t = now_ns();
                if (!off_seen) {
                        size_t on = 0, i;
                        for (i = 0; i < nprobes; i++)
                                on += (size_t)usdt_is_enabled(probes[i]);
                        if (on == 0) {
                                off_seen = 1;
                                if (all_off_ns != NULL)
                                        *all_off_ns = (double)(t - t0);
                        }
                }
                if (tracer_exited(&status)) {
                        exit_ns = (double)(now_ns() - t0);
                        break;
                }
                if ((double)(t - t0) > timeout_s * 1e9) {
                        char path[64], wchan[64] = "", tail[200];
                        FILE *f;
                        snprintf(path, sizeof(path), "/proc/%d/wchan", (int)tracer_pid);
                        f = fopen(path, "r");
                        first_line(f, wchan, sizeof(wchan));
                        if (f != NULL)
                                fclose(f);
                        tracer_tail(tail, sizeof(tail));
                        progress("bpftrace (pid %d) did not exit within %.0f s of SIGINT "
                                 "(waiting in %s; last output: %s): SIGKILL",
                                 (int)tracer_pid, timeout_s, wchan, tail);
                        kill(tracer_pid, SIGKILL);
                        waitpid(tracer_pid, NULL, 0);
                        tracer_pid = -1;
                        break;
                }
                sleep_ms(1);
        }
        return exit_ns;
}

/* The value of "@name: N" in bpftrace's output; -1 if absent. */
static long long
map_count(const char *output, const char *name)
{
        char key[64];
        const char *p = output;
        size_t klen;

        snprintf(key, sizeof(key), "@%s: ", name);
        klen = strlen(key);
        while ((p = strstr(p, key)) != NULL) {
                if (p == output || p[-1] == '\n')
                        return strtoll(p + klen, NULL, 10);
                p += klen;
        }
        return -1;
}

/* ---- The measured loops ------------------------------------------------- */
/*
 * Every loop runs the same counter and ends each iteration with a compiler
 * barrier that clobbers memory, so nothing is hoisted out of it (the
 * semaphore is volatile; libusdt's calls are external). Each returns how
 * many times a probe fired (or how often is-enabled said 1).
 */
typedef uint64_t (*loop_fn)(uint64_t n, usdt_probe_t *p, char *s);

static NOINLINE uint64_t
loop_empty(uint64_t n, usdt_probe_t *p, char *s)
{
        (void)p;
        for (uint64_t i = 0; i < n; i++)
                __asm__ __volatile__("" :: "r"(i), "r"(s) : "memory");
        return 0;
}

static NOINLINE uint64_t
loop_sdt(uint64_t n, usdt_probe_t *p, char *s)
{
        (void)p;
        for (uint64_t i = 0; i < n; i++) {
                DTRACE_PROBE2(bench, base, i, s);
                CLOBBER();
        }
        return n;
}

static NOINLINE uint64_t
loop_sdt_guarded(uint64_t n, usdt_probe_t *p, char *s)
{
        uint64_t fired = 0;

        (void)p;
        for (uint64_t i = 0; i < n; i++) {
                if (BENCH_GUARDED_ENABLED()) {
                        DTRACE_PROBE2(bench, guarded, i, s);
                        fired++;
                }
                CLOBBER();
        }
        return fired;
}

static NOINLINE uint64_t
loop_is_enabled(uint64_t n, usdt_probe_t *p, char *s)
{
        uint64_t on = 0;

        (void)s;
        for (uint64_t i = 0; i < n; i++) {
                on += (uint64_t)usdt_is_enabled(p);
                CLOBBER();
        }
        return on;
}

static NOINLINE uint64_t
loop_guarded(uint64_t n, usdt_probe_t *p, char *s)
{
        void *args[2];
        uint64_t fired = 0;

        for (uint64_t i = 0; i < n; i++) {
                if (usdt_is_enabled(p)) {
                        args[0] = (void *)(uintptr_t)i;
                        args[1] = s;
                        usdt_fire_probe(p, 2, args);
                        fired++;
                }
                CLOBBER();
        }
        return fired;
}

static NOINLINE uint64_t
loop_unguarded(uint64_t n, usdt_probe_t *p, char *s)
{
        void *args[2];

        for (uint64_t i = 0; i < n; i++) {
                args[0] = (void *)(uintptr_t)i;
                args[1] = s;
                usdt_fire_probe(p, 2, args);
                CLOBBER();
        }
        return n;
}

/*
 * The JIT rows: the same loop calls either the compiled-in sdt_nop5_call
 * or the function emitted into a usdt_jit arena, each through a volatile
 * function pointer, so both pay the same load and indirect call.
 */
typedef int (*site_fn)(uint64_t i, char *s);
static site_fn volatile sdt_site_fn = sdt_nop5_call;
static site_fn volatile jit_site_fn;            /* NULL: no JIT (setup_jit) */

static NOINLINE uint64_t
loop_call_sdt(uint64_t n, usdt_probe_t *p, char *s)
{
        uint64_t fired = 0;

        (void)p;
        for (uint64_t i = 0; i < n; i++) {
                fired += (uint64_t)sdt_site_fn(i, s);
                CLOBBER();
        }
        return fired;
}

static NOINLINE uint64_t
loop_call_jit(uint64_t n, usdt_probe_t *p, char *s)
{
        uint64_t fired = 0;

        (void)p;
        for (uint64_t i = 0; i < n; i++) {
                fired += (uint64_t)jit_site_fn(i, s);
                CLOBBER();
        }
        return fired;
}

static NOINLINE uint64_t
loop_getppid(uint64_t n, usdt_probe_t *p, char *s)
{
        (void)p;
        (void)s;
        for (uint64_t i = 0; i < n; i++) {
                syscall(SYS_getppid);
                CLOBBER();
        }
        return 0;
}

/* ---- The probes under test --------------------------------------------- */

static usdt_provider_t *rt_provider;
static usdt_probe_t *rt_guarded, *rt_unguarded;

static usdt_probedef_t *
add_probe(usdt_provider_t *prov, const char *func, const char *name, size_t argc)
{
        static const char *types[] = { "int", "char *" };
        usdt_probedef_t *pd = usdt_create_probe(func, name, argc, types);

        if (pd == NULL)
                return NULL;
        if (usdt_provider_add_probe(prov, pd) != 0) {
                usdt_probe_release(pd);
                usdt_probe_release(pd);
                return NULL;
        }
        usdt_probe_release(pd);         /* the provider keeps its reference */
        return pd;
}

static int
setup_rt_provider(void)
{
        usdt_probedef_t *g, *u;

        rt_provider = usdt_create_provider("benchrt", "bench");
        if (rt_provider == NULL) {
                progress("usdt_create_provider: %s", usdt_errstr(NULL));
                return -1;
        }
        g = add_probe(rt_provider, "loop", "guarded", 2);
        u = add_probe(rt_provider, "loop", "unguarded", 2);
        if (g == NULL || u == NULL || usdt_provider_enable(rt_provider) != 0) {
                progress("benchrt provider: %s", usdt_errstr(rt_provider) ?
                         usdt_errstr(rt_provider) : "cannot create probes");
                return -1;
        }
        rt_guarded = g->probe;
        rt_unguarded = u->probe;
        return 0;
}

/* ---- The JIT site under test -------------------------------------------- */

static usdt_jit_t *bench_jit;
static const volatile unsigned short *jit_semaphore;
static const unsigned char *jit_site;
static char jit_skip[256];

/*
 * Emit into a usdt_jit arena what a JIT would for probe benchjit:site, as
 * examples/jit.c does: int f(uint64_t i, char *s), 1 when it passed the
 * site, 0 when the semaphore said untraced. On failure the JIT rows are
 * skipped, with jit_skip saying why.
 */
static void
setup_jit(void)
{
#if defined(__x86_64__)
        static const unsigned char template[] = {
                0x31, 0xc0,                     /* xor %eax,%eax */
                0x66, 0x83, 0x3d, 0, 0, 0, 0,   /* cmpw $0,SEM(%rip) */
                0x00,
                0x74, 0x07,                     /* je ret */
                0x0f, 0x1f, 0x44, 0x00, 0x00,   /* the site, a 5-byte nop */
                0xff, 0xc0,                     /* inc %eax */
                0xc3,                           /* ret */
        };
        unsigned char code[sizeof(template)], *fn;
        int32_t displacement;

        bench_jit = usdt_jit_create("benchjit", 4096);
        if (bench_jit == NULL) {
                snprintf(jit_skip, sizeof(jit_skip), "usdt_jit_create: %s", strerror(errno));
                return;
        }
        fn = usdt_jit_code(bench_jit, NULL);
        jit_semaphore = usdt_jit_semaphore(bench_jit, "benchjit", "site");
        if (jit_semaphore == NULL)
                goto failed;
        memcpy(code, template, sizeof(code));
        /* %rip-relative, from the end of the cmpw */
        displacement = (int32_t)((intptr_t)jit_semaphore - (intptr_t)(fn + 10));
        memcpy(code + 5, &displacement, sizeof(displacement));
        if (usdt_jit_write(bench_jit, fn, code, sizeof(code)) != 0 ||
            usdt_jit_add_site(bench_jit, "benchjit", "site", fn + 12, "8@%rdi 8@%rsi") != 0 ||
            usdt_jit_publish(bench_jit) != 0)
                goto failed;
        jit_site = fn + 12;
        jit_site_fn = (site_fn)(void *)fn;
        return;
failed:
        snprintf(jit_skip, sizeof(jit_skip), "%s", usdt_jit_errstr(bench_jit));
        usdt_jit_free(bench_jit);
        bench_jit = NULL;
        jit_semaphore = NULL;
#else
        snprintf(jit_skip, sizeof(jit_skip), "the JIT rows emit x86_64 code");
#endif
}

/* A row that needs the JIT when setup_jit failed. */
static int
row_unavailable(loop_fn fn)
{
        return fn == loop_call_jit && jit_site_fn == NULL;
}

struct row {
        const char *name;
        loop_fn fn;
        usdt_probe_t **probe;
        int baseline;           /* 0: none, 'a' or 'b': which one, 'A'/'B': is it */
};

static usdt_probe_t *no_probe;

static const struct row dis_rows[] = {
        { "loop overhead: empty asm loop", loop_empty, &no_probe, 0 },
        { "compiled-in `DTRACE_PROBE2(bench, base, i, s)` (a)", loop_sdt, &no_probe, 'A' },
        { "compiled-in `if (BENCH_GUARDED_ENABLED()) DTRACE_PROBE2(...)` (b)",
          loop_sdt_guarded, &no_probe, 'B' },
        { "libusdt `usdt_is_enabled(p)`", loop_is_enabled, &rt_guarded, 'b' },
        { "libusdt `if (usdt_is_enabled(p)) usdt_fire_probe(p, 2, args)`",
          loop_guarded, &rt_guarded, 'b' },
        { "libusdt `usdt_fire_probe(p, 2, args)` unguarded", loop_unguarded,
          &rt_unguarded, 'a' },
        { "compiled-in semaphore-guarded `DTRACE_PROBE2` in a noinline function "
          "called through a pointer (c)", loop_call_sdt, &no_probe, 'C' },
        { "JIT site with its inline semaphore test: the same function emitted into "
          "a `usdt_jit` arena, called the same way", loop_call_jit, &no_probe, 'c' },
};
#define NDIS (sizeof(dis_rows) / sizeof(dis_rows[0]))

static double
time_loop(const struct row *r, uint64_t n, uint64_t *fired)
{
        uint64_t t0, t1, f;

        if (row_unavailable(r->fn))
                return 0;
        t0 = now_ns();
        f = r->fn(n, *r->probe, bench_str);
        t1 = now_ns();
        if (fired != NULL)
                *fired += f;
        return (double)(t1 - t0) / (double)n;
}

static double
baseline_of(const struct row *rows, size_t nrows, const struct stat3 *st, int which)
{
        size_t i;

        for (i = 0; i < nrows; i++)
                if (rows[i].baseline == which)
                        return st[i].med;
        return -1;
}

static void
print_rows(const struct row *rows, size_t nrows, const struct stat3 *st,
           int prec, const char *iters, const char *const *notes)
{
        char ratio[64], label[4];
        size_t i;

        for (i = 0; i < nrows; i++) {
                int b = rows[i].baseline;
                char name[512];
                if (row_unavailable(rows[i].fn)) {
                        table_skip(rows[i].name, jit_skip);
                        continue;
                }
                if (b >= 'A' && b <= 'C') {
                        snprintf(ratio, sizeof(ratio), "1.00 (baseline %c)", b - 'A' + 'a');
                } else if (b >= 'a' && b <= 'c') {
                        snprintf(label, sizeof(label), "%c", b);
                        ratio_str(ratio, sizeof(ratio), st[i].med,
                                  baseline_of(rows, nrows, st, b - 'a' + 'A'), label);
                } else {
                        snprintf(ratio, sizeof(ratio), "—");
                }
                snprintf(name, sizeof(name), "%s%s%s", rows[i].name,
                         notes && notes[i] ? "; " : "", notes && notes[i] ? notes[i] : "");
                table_row(name, st[i], prec, ratio, iters);
        }
}

/* ---- Figure 1: disabled probes ------------------------------------------- */

static struct stat3 dis_st[NDIS];

static void
figure_disabled(void)
{
        static double v[NDIS][DIS_REPS];
        char iters[64];
        size_t r;
        int rep;
        uint64_t fired = 0;

        progress("figure 1: disabled probes, %d x %llu calls per row",
                 DIS_REPS, (unsigned long long)DIS_CALLS);
        table_head("1. Disabled probe, no tracer attached (ns per call, including the loop)");
        if (usdt_is_enabled(rt_guarded) || usdt_is_enabled(rt_unguarded) ||
            bench_base_semaphore || bench_guarded_semaphore || bench_nop5_semaphore ||
            (jit_semaphore != NULL && *jit_semaphore))
                out("\nWARNING: a tracer is attached to the bench probes; figure 1 is not \"disabled\".\n\n");

        for (r = 0; r < NDIS; r++)              /* warm-up, not recorded */
                time_loop(&dis_rows[r], DIS_CALLS / 10, &fired);
        for (rep = 0; rep < DIS_REPS; rep++)    /* rows interleaved */
                for (r = 0; r < NDIS; r++)
                        v[r][rep] = time_loop(&dis_rows[r], DIS_CALLS, &fired);
        for (r = 0; r < NDIS; r++)
                dis_st[r] = stats(v[r], DIS_REPS);

        snprintf(iters, sizeof(iters), "%d x %lluM calls", DIS_REPS,
                 (unsigned long long)(DIS_CALLS / 1000000));
        print_rows(dis_rows, NDIS, dis_st, 2, iters, NULL);
        out("\nBaselines: (a) compiled-in `DTRACE_PROBE2` (a 1-byte nop), "
            "(b) compiled-in semaphore-guarded probe, (c) the same in a function of its "
            "own (a 5-byte nop site) called through a pointer, as generated code is. "
            "Each figure includes the loop; subtract the empty-loop row for the probe "
            "alone.\n");
        {
                double loop = dis_st[0].med, sdtg = dis_st[2].med;
                double isen = dis_st[3].med, guarded = dis_st[4].med;
                double unguarded = dis_st[5].med;
                out("\n| target | measured | verdict |\n|---|---|---|\n");
                out("| disabled guarded fire within 5x of the compiled-in semaphore check | "
                    "%.2f ns vs %.2f ns = %.2fx (net of the loop: %.2f vs %.2f ns) | %s |\n",
                    guarded, sdtg, guarded / sdtg, nz(guarded - loop), nz(sdtg - loop),
                    verdict(guarded <= 5 * sdtg));
                out("| disabled unguarded fire within 1.5x of the guarded form | "
                    "%.2f ns vs %.2f ns = %.2fx | %s |\n",
                    unguarded, guarded, unguarded / guarded,
                    verdict(unguarded <= 1.5 * guarded));
                out("| `usdt_is_enabled` under 2 ns | %.2f ns per loop iteration, "
                    "%.2f ns net of the empty loop | ", isen, nz(isen - loop));
                if ((isen < 2.0) == (isen - loop < 2.0))
                        out("%s |\n", verdict(isen < 2.0));
                else
                        out("%s net of the loop; %s per loop iteration |\n",
                            verdict(isen - loop < 2.0), verdict(isen < 2.0));
                if (jit_site_fn != NULL) {
                        double sdtc = dis_st[6].med, jit = dis_st[7].med;
                        out("| untraced JIT site within 1.2x of the compiled-in "
                            "semaphore-guarded probe | %.2f ns vs %.2f ns called the same "
                            "way (c) = %.2fx (best runs: %.2f vs %.2f ns = %.2fx); vs "
                            "%.2f ns inline (b): %.2fx | %s |\n",
                            jit, sdtc, jit / sdtc, dis_st[7].min, dis_st[6].min,
                            dis_st[7].min / dis_st[6].min, sdtg, jit / sdtg,
                            verdict(jit <= 1.2 * sdtc));
                } else {
                        out("| untraced JIT site within 1.2x of the compiled-in "
                            "semaphore-guarded probe | skipped: %s | — |\n", jit_skip);
                }
        }
}

/* ---- Figure 2: enabled probes, bpftrace counting ------------------------- */

static const struct row en_rows[] = {
        { "loop overhead: empty asm loop", loop_empty, &no_probe, 0 },
        { "compiled-in `DTRACE_PROBE2(bench, base, i, s)` (a)", loop_sdt, &no_probe, 'A' },
        { "compiled-in semaphore-guarded `DTRACE_PROBE2` (`bench:guarded`)",
          loop_sdt_guarded, &no_probe, 'a' },
        { "libusdt `usdt_is_enabled(p)` (returns 1)", loop_is_enabled, &rt_guarded, 0 },
        { "libusdt `if (usdt_is_enabled(p)) usdt_fire_probe(p, 2, args)`",
          loop_guarded, &rt_guarded, 'a' },
        { "libusdt `usdt_fire_probe(p, 2, args)` unguarded", loop_unguarded,
          &rt_unguarded, 'a' },
        { "yardstick: one `getppid()` system call, no probe", loop_getppid, &no_probe, 0 },
        { "compiled-in semaphore-guarded `DTRACE_PROBE2` with a 5-byte nop site "
          "(`bench:nop5`), in a noinline function called through a pointer (c)",
          loop_call_sdt, &no_probe, 'C' },
        { "JIT site (`benchjit:site`), its function emitted into a `usdt_jit` arena, "
          "called the same way", loop_call_jit, &no_probe, 'c' },
};
#define NEN (sizeof(en_rows) / sizeof(en_rows[0]))

static const char *
site_state_at(const unsigned char *site, char *buf, size_t len)
{
        if (site == NULL)
                snprintf(buf, len, "no site");
        else if (site[0] == 0xe8)
                snprintf(buf, len, "optimised: site rewritten to `call` (e8), "
                         "`[uprobes-trampoline]` %s", trampoline_mapped() ? "mapped" : "NOT mapped");
        else if (site[0] == 0xcc)
                snprintf(buf, len, "int3 (site starts cc): not optimised");
        else
                snprintf(buf, len, "site unmodified (%02x %02x): not traced?", site[0], site[1]);
        return buf;
}

/* probe_addr is the stub's SDT part: its site follows an endbr64 (x86_64). */
static const char *
site_state(usdt_probe_t *p, char *buf, size_t len)
{
        const unsigned char *site = p != NULL ? (const unsigned char *)p->probe_addr : NULL;
        static const unsigned char endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };

        if (site != NULL && memcmp(site, endbr64, 4) == 0)
                site += 4;
        return site_state_at(site, buf, len);
}

static int
fig2_ready(void)
{
        char *o = tracer_output();
        int ready = strstr(o, "ready\n") != NULL;

        free(o);
        return ready && bench_base_semaphore && bench_guarded_semaphore &&
               bench_nop5_semaphore && (jit_semaphore == NULL || *jit_semaphore) &&
               usdt_is_enabled(rt_guarded) && usdt_is_enabled(rt_unguarded);
}

static void
figure_enabled(int can_trace)
{
        static const char prog[] =
                "BEGIN { printf(\"ready\\n\"); }\n"
                "usdt::bench:base { @sdt = count(); }\n"
                "usdt::bench:guarded { @sdtg = count(); }\n"
                "usdt::benchrt:guarded { @rtg = count(); }\n"
                "usdt::benchrt:unguarded { @rtu = count(); }\n"
                "usdt::bench:nop5 { @sdt5 = count(); }\n";
        static const char prog_jit[] = "usdt::benchjit:site { @jit = count(); }\n";
        char prog_all[sizeof(prog) + sizeof(prog_jit)];
        static double v[NEN][EN_REPS];
        static char notes_buf[NEN][256];
        const char *notes[NEN] = { 0 };
        struct stat3 st[NEN];
        uint64_t fired[NEN] = { 0 };
        uint64_t t0;
        char iters[96], why[200];
        size_t r;
        int rep, reps = 0, status;
        double stop_ns;
        char *o;
        long long got[6];
        const char *maps[6] = { "sdt", "sdtg", "rtg", "rtu", "sdt5", "jit" };
        const char *probe_names[6] = { "bench:base", "bench:guarded", "benchrt:guarded",
                                       "benchrt:unguarded", "bench:nop5", "benchjit:site" };
        size_t map_row[6] = { 1, 2, 4, 5, 7, 8 };
        size_t nmaps = jit_site_fn != NULL ? 6 : 5;

        table_head("2. Enabled probe, `bpftrace -p PID` attached and counting (ns per fire)");
        if (!can_trace) {
                for (r = 0; r < NEN; r++)
                        table_skip(en_rows[r].name, skip_reason);
                out("\nEnabled rows skipped: %s.\n", skip_reason);
                return;
        }
        /* without the JIT, no benchjit probe exists: bpftrace would refuse */
        snprintf(prog_all, sizeof(prog_all), "%s%s", prog, jit_site_fn != NULL ? prog_jit : "");
        progress("figure 2: starting bpftrace on %zu probes", nmaps);
        t0 = now_ns();
        if (tracer_start(prog_all, 0) != 0)
                goto skipped;
        while (!fig2_ready()) {
                if (tracer_exited(&status)) {
                        tracer_tail(why, sizeof(why));
                        snprintf(skip_reason, sizeof(skip_reason),
                                 "bpftrace exited before attaching (%s)", why);
                        tracer_cleanup();
                        goto skipped;
                }
                if (now_ns() - t0 > 60ULL * 1000000000ULL) {
                        tracer_tail(why, sizeof(why));
                        snprintf(skip_reason, sizeof(skip_reason),
                                 "bpftrace not attached after 60 s (%s)", why);
                        tracer_cleanup();
                        goto skipped;
                }
                sleep_ms(1);
        }
        progress("figure 2: bpftrace attached after %.2f s; %d x %llu fires per row",
                 (double)(now_ns() - t0) / 1e9, EN_REPS, (unsigned long long)EN_FIRES);

        /* Warm-up round, compiled-in rows first: the trampoline check after
         * them tells whether the 1-byte nop sites took the optimised path. */
        for (r = 0; r < NEN; r++) {
                time_loop(&en_rows[r], EN_WARMUP, &fired[r]);
                if (r == 2)
                        snprintf(notes_buf[1], sizeof(notes_buf[1]),
                                 "kernel path: int3 (1-byte nop; `[uprobes-trampoline]` %s after "
                                 "the compiled-in rows)", trampoline_mapped() ?
                                 "already mapped" : "not mapped");
        }
        notes[1] = notes_buf[1];
        notes[2] = "kernel path: int3 (1-byte nop)";
        notes[4] = site_state(rt_guarded, notes_buf[4], sizeof(notes_buf[4]));
        notes[5] = site_state(rt_unguarded, notes_buf[5], sizeof(notes_buf[5]));
#if defined(__x86_64__)
        notes[7] = site_state_at(bench_nop5_site, notes_buf[7], sizeof(notes_buf[7]));
#endif
        if (jit_site != NULL)
                notes[8] = site_state_at(jit_site, notes_buf[8], sizeof(notes_buf[8]));

        t0 = now_ns();
        for (rep = 0; rep < EN_REPS; rep++) {
                for (r = 0; r < NEN; r++)
                        v[r][rep] = time_loop(&en_rows[r], EN_FIRES, &fired[r]);
                reps++;
                if ((double)(now_ns() - t0) > EN_REPS_MAX_S * 1e9)
                        break;
        }
        for (r = 0; r < NEN; r++)
                st[r] = stats(v[r], reps);

        stop_ns = tracer_stop(60, NULL, 0, NULL);
        o = tracer_output();
        for (r = 0; r < nmaps; r++)
                got[r] = map_count(o, maps[r]);
        free(o);
        tracer_cleanup();

        snprintf(iters, sizeof(iters), "%d x %lluk calls (+%llu warm-up)", reps,
                 (unsigned long long)(EN_FIRES / 1000), (unsigned long long)EN_WARMUP);
        print_rows(en_rows, NEN, st, 0, iters, notes);
        if (stop_ns >= 0)
                snprintf(why, sizeof(why), "it exited %.1f s after it", stop_ns / 1e9);
        else
                snprintf(why, sizeof(why), "it did not exit within 60 s and was killed");
        out("\nBaselines: (a) compiled-in `DTRACE_PROBE2`, traced; (c) the same, "
            "semaphore-guarded, with a 5-byte nop site, in a function called through a "
            "pointer as the JIT's is. bpftrace's counts after SIGINT (%s):\n\n", why);
        out("| probe | fired | bpftrace counted | equal |\n|---|---:|---:|---|\n");
        for (r = 0; r < nmaps; r++)
                out("| %s | %llu | %lld | %s |\n", probe_names[r],
                    (unsigned long long)fired[map_row[r]], got[r],
                    got[r] == (long long)fired[map_row[r]] ? "yes" : "**NO**");
        out("\nThe optimised path: `[uprobes-trampoline]` %s mapped in this process "
            "after the enabled rows.\n", trampoline_mapped() ? "is" : "is not");
        {
                double base = st[1].med, g = st[4].med, u = st[5].med;
                out("\n| target | measured | verdict |\n|---|---|---|\n");
                out("| enabled fire no slower than a compiled-in SDT probe | guarded %.0f ns, "
                    "unguarded %.0f ns vs %.0f ns (%.2fx, %.2fx) | %s |\n", g, u, base,
                    g / base, u / base, verdict(g <= base && u <= base));
        }
        if (jit_site_fn != NULL)
                out("\nTraced JIT site: %.0f ns per fire vs %.0f ns for the compiled-in "
                    "5-byte nop site called the same way (%.2fx), %.0f ns for the inline "
                    "1-byte nop site (a) (%.2fx).\n", st[8].med, st[7].med,
                    st[8].med / st[7].med, st[1].med, st[8].med / st[1].med);
        return;

skipped:
        for (r = 0; r < NEN; r++)
                table_skip(en_rows[r].name, "see below");
        out("\nEnabled rows skipped: %s.\n", skip_reason);
}

/* ---- Figure 3: enable and disable time ----------------------------------- */

static const char *
api_error(usdt_provider_t *prov)
{
        const char *e = prov != NULL ? usdt_errstr(prov) : usdt_errstr(NULL);

        return e != NULL && *e ? e : "unknown error";
}

/* One provider of n probes: create+add, enable, disable, free, in ns. */
static int
enable_cycle(size_t n, double t[4], char *err, size_t errlen)
{
        usdt_provider_t *prov;
        char name[32];
        uint64_t t0, t1, t2, t3, t4;
        size_t i;

        t0 = now_ns();
        prov = usdt_create_provider("benchen", "bench");
        if (prov == NULL) {
                snprintf(err, errlen, "create provider: %s", api_error(NULL));
                return -1;
        }
        for (i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "p%zu", i);
                if (add_probe(prov, "f", name, 2) == NULL) {
                        snprintf(err, errlen, "add probe %zu: %s", i, api_error(prov));
                        usdt_provider_free(prov);
                        return -1;
                }
        }
        t1 = now_ns();
        if (usdt_provider_enable(prov) != 0) {
                snprintf(err, errlen, "enable: %s", api_error(prov));
                usdt_provider_free(prov);
                return -1;
        }
        t2 = now_ns();
        usdt_provider_disable(prov);
        t3 = now_ns();
        usdt_provider_free(prov);
        t4 = now_ns();
        t[0] = (double)(t1 - t0);
        t[1] = (double)(t2 - t1);
        t[2] = (double)(t3 - t2);
        t[3] = (double)(t4 - t3);
        return 0;
}

/* m providers of one probe each: create+add+enable all, then disable+free all. */
static int
providers_cycle(size_t m, double t[2], int *fds_per, char *err, size_t errlen)
{
        usdt_provider_t **provs = calloc(m, sizeof(*provs));
        char name[32];
        uint64_t t0, t1, t2;
        size_t i, made = 0;
        int fd0 = fd_count(), rc = -1;

        if (provs == NULL)
                abort();
        t0 = now_ns();
        for (i = 0; i < m; i++, made++) {
                snprintf(name, sizeof(name), "benchp%zu", i);
                provs[i] = usdt_create_provider(name, "bench");
                if (provs[i] == NULL) {
                        snprintf(err, errlen, "create provider %zu: %s", i, api_error(NULL));
                        goto done;
                }
                if (add_probe(provs[i], "f", "p", 2) == NULL ||
                    usdt_provider_enable(provs[i]) != 0) {
                        snprintf(err, errlen, "provider %zu: %s", i, api_error(provs[i]));
                        usdt_provider_free(provs[i]);
                        goto done;
                }
        }
        t1 = now_ns();
        if (fds_per != NULL)
                *fds_per = fd_count() - fd0;
        for (i = 0; i < m; i++) {
                usdt_provider_disable(provs[i]);
                usdt_provider_free(provs[i]);
        }
        made = 0;
        t2 = now_ns();
        t[0] = (double)(t1 - t0);
        t[1] = (double)(t2 - t1);
        rc = 0;
done:
        for (i = 0; i < made; i++)
                usdt_provider_free(provs[i]);
        free(provs);
        return rc;
}

static double per_probe_100 = -1, per_probe_10000 = -1, enable_10000 = -1,
              enable_only_10000 = -1, en_pp_100 = -1, en_pp_10000 = -1;

static void
figure_enable(void)
{
        static const size_t sizes[] = { 1, 10, 100, 1000, 10000 };
        enum { NS = sizeof(sizes) / sizeof(sizes[0]), NK = 4 };
        /* kinds: create+add, enable, create+add+enable, disable+free */
        static const char *const kind[NK] = {
                "create+add", "`usdt_provider_enable`", "create+add+enable", "disable+free"
        };
        static double tot[NS][NK][ENABLE_REPS];
        double pp[ENABLE_REPS], t[4], tp[2];
        struct stat3 s_tot[NS][NK], s_pp[NS][NK];
        int reps[NS] = { 0 };
        char err[300] = "", label[160], iters[64], ratio[64];
        size_t k, i100 = NS;
        int rep, kk, ok = 1;

        progress("figure 3: enable time for 1..10000 probes and %d providers", PROVIDERS);
        table_head("3. Enable and disable time (µs; per-probe rows in ns)");
        for (k = 0; k < NS && ok; k++) {
                uint64_t start = now_ns();
                for (rep = 0; rep < ENABLE_REPS; rep++) {
                        if (enable_cycle(sizes[k], t, err, sizeof(err)) != 0) {
                                ok = 0;
                                break;
                        }
                        tot[k][0][rep] = t[0];
                        tot[k][1][rep] = t[1];
                        tot[k][2][rep] = t[0] + t[1];
                        tot[k][3][rep] = t[2] + t[3];
                        reps[k]++;
                        if (rep >= 2 && (double)(now_ns() - start) > ENABLE_BUDGET_S * 1e9)
                                break;
                }
                for (kk = 0; kk < NK && reps[k] > 0; kk++) {
                        for (rep = 0; rep < reps[k]; rep++) {
                                pp[rep] = tot[k][kk][rep] / (double)sizes[k];
                                tot[k][kk][rep] /= 1e3;
                        }
                        s_tot[k][kk] = stats(tot[k][kk], reps[k]);
                        s_pp[k][kk] = stats(pp, reps[k]);
                }
                if (sizes[k] == 100 && reps[k] > 0)
                        i100 = k;
        }
        for (k = 0; k < NS && reps[k] > 0; k++) {
                const char *pl = sizes[k] == 1 ? "" : "s";
                snprintf(iters, sizeof(iters), "%d runs", reps[k]);
                for (kk = 0; kk < NK; kk++) {
                        snprintf(label, sizeof(label), "%zu probe%s: %s", sizes[k], pl, kind[kk]);
                        table_row(label, s_tot[k][kk], 1, "—", iters);
                }
                for (kk = 0; kk < NK; kk++) {
                        snprintf(label, sizeof(label), "%zu probe%s: %s, per probe (ns)",
                                 sizes[k], pl, kind[kk]);
                        table_row(label, s_pp[k][kk], 0,
                                  ratio_str(ratio, sizeof(ratio), s_pp[k][kk].med,
                                            i100 < NS ? s_pp[i100][kk].med : -1,
                                            "per probe at 100"), iters);
                }
                if (sizes[k] == 10000) {
                        per_probe_10000 = s_pp[k][2].med;
                        en_pp_10000 = s_pp[k][1].med;
                        enable_10000 = s_tot[k][2].med / 1e3;
                        enable_only_10000 = s_tot[k][1].med / 1e3;
                }
        }
        if (i100 < NS) {
                per_probe_100 = s_pp[i100][2].med;
                en_pp_100 = s_pp[i100][1].med;
        }
        if (!ok)
                out("| error | | | | | %s |\n", err);

        /* 1 000 providers of one probe each */
        {
                double all[PROVIDER_REPS], per[PROVIDER_REPS], dall[PROVIDER_REPS],
                       dper[PROVIDER_REPS];
                double one = reps[0] > 0 ? s_tot[0][2].med : -1;
                int n = 0;
                uint64_t start = now_ns();
                for (rep = 0; rep < PROVIDER_REPS; rep++) {
                        if (providers_cycle(PROVIDERS, tp, NULL, err, sizeof(err)) != 0) {
                                out("| %d providers | error | | | | %s |\n", PROVIDERS, err);
                                break;
                        }
                        all[n] = tp[0] / 1e3;
                        per[n] = tp[0] / 1e3 / PROVIDERS;
                        dall[n] = tp[1] / 1e3;
                        dper[n] = tp[1] / 1e3 / PROVIDERS;
                        n++;
                        if ((double)(now_ns() - start) > 2 * ENABLE_BUDGET_S * 1e9)
                                break;
                }
                if (n > 0) {
                        snprintf(iters, sizeof(iters), "%d runs", n);
                        snprintf(label, sizeof(label),
                                 "%d providers x 1 probe: create+add+enable, all", PROVIDERS);
                        table_row(label, stats(all, n), 0, "—", iters);
                        snprintf(label, sizeof(label),
                                 "%d providers x 1 probe: per provider", PROVIDERS);
                        table_row(label, stats(per, n), 1, ratio_str(ratio, sizeof(ratio),
                                  stats(per, n).med, one, "one 1-probe provider alone"), iters);
                        snprintf(label, sizeof(label),
                                 "%d providers x 1 probe: disable+free, all", PROVIDERS);
                        table_row(label, stats(dall, n), 0, "—", iters);
                        snprintf(label, sizeof(label),
                                 "%d providers x 1 probe: disable+free per provider", PROVIDERS);
                        table_row(label, stats(dper, n), 1, "—", iters);
                }
        }
        out("\nRatios of the per-probe rows are to the same row at 100 probes "
            "(1.00 everywhere = linear). Each run creates the provider, adds two-argument "
            "probes `p0`, `p1`, ..., enables, disables and frees it (the SDT backend, "
            "memory-file mode).\n");
        out("\n| target | measured | verdict |\n|---|---|---|\n");
        if (enable_10000 >= 0) {
                out("| enable of 10 000 probes under 10 ms | create+add+enable %.2f ms; "
                    "`usdt_provider_enable` alone %.2f ms | %s; %s |\n", enable_10000,
                    enable_only_10000, verdict(enable_10000 < 10.0),
                    enable_only_10000 < 10.0 ? "met by enable alone" :
                    "not met by enable alone either");
                out("| per-probe enable cost flat from 100 to 10 000 (taken as: within 1.5x) | "
                    "create+add+enable %.0f ns at 100, %.0f ns at 10 000 (%.2fx); "
                    "enable alone %.0f ns, %.0f ns (%.2fx) | %s; enable alone %s |\n",
                    per_probe_100, per_probe_10000, per_probe_10000 / per_probe_100,
                    en_pp_100, en_pp_10000, en_pp_10000 / en_pp_100,
                    verdict(per_probe_10000 <= 1.5 * per_probe_100),
                    en_pp_10000 <= 1.5 * en_pp_100 ? "met" : "not met");
        } else {
                out("| enable of 10 000 probes under 10 ms | not measured | — |\n");
        }
}

/* ---- Figure 4: memory (in fresh child processes) ------------------------- */

/*
 * Bytes of strings in an SDT object: its .dynstr, and in .note.stapsdt the
 * provider, probe and argument strings of each note (the descriptor minus
 * its three addresses). -1 if it cannot be read as a 64-bit ELF.
 */
static long
object_string_bytes(const char *path)
{
        FILE *f = fopen(path, "rb");
        unsigned char *img = NULL;
        long len, strings = -1;
        Elf64_Ehdr *eh;
        Elf64_Shdr *sh;
        const char *shstr;
        int i;

        if (f == NULL)
                return -1;
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < (long)sizeof(*eh) ||
            fseek(f, 0, SEEK_SET) != 0 || (img = malloc((size_t)len)) == NULL ||
            fread(img, 1, (size_t)len, f) != (size_t)len)
                goto out;
        eh = (Elf64_Ehdr *)img;
        if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
            eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(*sh) > (uint64_t)len ||
            eh->e_shstrndx >= eh->e_shnum)
                goto out;
        sh = (Elf64_Shdr *)(img + eh->e_shoff);
        if (sh[eh->e_shstrndx].sh_offset >= (uint64_t)len)
                goto out;
        shstr = (const char *)img + sh[eh->e_shstrndx].sh_offset;
        strings = 0;
        for (i = 0; i < eh->e_shnum; i++) {
                const char *name = shstr + sh[i].sh_name;
                uint64_t off = sh[i].sh_offset, end = off + sh[i].sh_size;
                if (end > (uint64_t)len)
                        continue;
                if (sh[i].sh_type == SHT_STRTAB && strcmp(name, ".dynstr") == 0)
                        strings += (long)sh[i].sh_size;
                if (sh[i].sh_type == SHT_NOTE && strcmp(name, ".note.stapsdt") == 0) {
                        while (off + sizeof(Elf64_Nhdr) <= end) {
                                Elf64_Nhdr *nh = (Elf64_Nhdr *)(img + off);
                                uint64_t desc = (nh->n_descsz > 24 ? nh->n_descsz - 24 : 0);
                                strings += (long)desc;
                                off += sizeof(*nh) + ((nh->n_namesz + 3) & ~3u) +
                                       ((nh->n_descsz + 3) & ~3u);
                        }
                }
        }
out:
        free(img);
        fclose(f);
        return strings;
}

/* Child: one provider of n probes; prints the /proc figures before, after
 * create+add and after enable, and the SDT object's size and strings. */
static int
child_memory(size_t n)
{
        long rss[3], shr[3], maps[3], obj = -1, objstr = -1;
        int fds[3];
        usdt_provider_t *prov;
        char name[32];
        struct stat sb;
        const char *path;
        size_t i, names = 0;

        rss[0] = rss_bytes(&shr[0]); maps[0] = mapped_bytes(); fds[0] = fd_count();
        prov = usdt_create_provider("benchmem", "bench");
        if (prov == NULL)
                return 1;
        for (i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "p%05zu", i);
                if (add_probe(prov, "f", name, 2) == NULL)
                        return 1;
                names += strlen(name) + 1 + strlen("f") + 1 + strlen("int") + 1 +
                         strlen("char *") + 1;
        }
        rss[1] = rss_bytes(&shr[1]); maps[1] = mapped_bytes(); fds[1] = fd_count();
        if (usdt_provider_enable(prov) != 0) {
                fprintf(stderr, "enable: %s\n", api_error(prov));
                return 1;
        }
        rss[2] = rss_bytes(&shr[2]); maps[2] = mapped_bytes(); fds[2] = fd_count();
        path = usdt_provider_path(prov);
        if (path != NULL && stat(path, &sb) == 0) {
                obj = (long)sb.st_size;
                objstr = object_string_bytes(path);
        }
        printf("%ld %ld %ld %ld %ld %ld %ld %ld %ld %d %d %d %ld %ld %zu\n",
               rss[0], rss[1], rss[2], shr[0], shr[1], shr[2], maps[0], maps[1], maps[2],
               fds[0], fds[1], fds[2], obj, objstr, names);
        return 0;
}

/* Child: m providers of one probe each, enabled. */
static int
child_providers(size_t m)
{
        long rss0 = rss_bytes(NULL), maps0 = mapped_bytes();
        int fd0 = fd_count();
        char name[32];
        size_t i;

        for (i = 0; i < m; i++) {
                usdt_provider_t *prov;
                snprintf(name, sizeof(name), "benchp%zu", i);
                prov = usdt_create_provider(name, "bench");
                if (prov == NULL || add_probe(prov, "f", "p", 2) == NULL ||
                    usdt_provider_enable(prov) != 0) {
                        fprintf(stderr, "provider %zu: %s\n", i, api_error(prov));
                        return 1;
                }
        }
        printf("%ld %ld %ld %ld %d %d\n", rss0, rss_bytes(NULL), maps0, mapped_bytes(),
               fd0, fd_count());
        return 0;
}

/* Run ourselves with args; the first line of its stdout into buf. */
static int
run_child(const char *mode, size_t n, char *buf, size_t len)
{
        int p[2], status;
        pid_t pid;
        char num[32];
        FILE *f;

        if (pipe(p) != 0)
                return -1;
        snprintf(num, sizeof(num), "%zu", n);
        fflush(stdout);
        fflush(stderr);
        if (md != NULL)
                fflush(md);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                close(p[0]);
                dup2(p[1], 1);
                execl("/proc/self/exe", "bench_usdt", mode, num, (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        f = fdopen(p[0], "r");
        first_line(f, buf, len);
        if (f != NULL)
                fclose(f);
        waitpid(pid, &status, 0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 && buf[0] ? 0 : -1;
}

static void
figure_memory(void)
{
        enum { NV = 10 };
        /* per probe: anon defs, anon enable, shared enable, resident total,
         * mapped enable, object, object strings, fds, names */
        double v[NV][MEM_REPS];
        struct stat3 st[NV];
        double prss[MEM_REPS], pmap[MEM_REPS], pfd[MEM_REPS];
        char buf[512], iters[64];
        int n = 0, np = 0, rep, k;

        progress("figure 4: memory at %d probes, descriptors for %d providers",
                 MEM_PROBES, PROVIDERS);
        table_head("4. Memory and descriptors (bytes per probe, descriptors per provider)");
        for (rep = 0; rep < MEM_REPS; rep++) {
                long r[3], sh[3], m[3], ob, os;
                int f[3];
                size_t names;
                const double N = MEM_PROBES;
                if (run_child("--child-memory", MEM_PROBES, buf, sizeof(buf)) != 0 ||
                    sscanf(buf, "%ld %ld %ld %ld %ld %ld %ld %ld %ld %d %d %d %ld %ld %zu",
                           &r[0], &r[1], &r[2], &sh[0], &sh[1], &sh[2], &m[0], &m[1], &m[2],
                           &f[0], &f[1], &f[2], &ob, &os, &names) != 15)
                        continue;
                v[0][n] = (double)((r[1] - sh[1]) - (r[0] - sh[0])) / N;
                v[1][n] = (double)((r[2] - sh[2]) - (r[1] - sh[1])) / N;
                v[2][n] = (double)(sh[2] - sh[1]) / N;
                v[3][n] = (double)(r[2] - r[0]) / N;
                v[4][n] = (double)(m[2] - m[1]) / N;
                v[5][n] = (double)ob / N;
                v[6][n] = (double)os / N;
                v[7][n] = f[2] - f[1];
                v[8][n] = (double)names / N;
                v[9][n] = v[0][n] + v[1][n] + v[5][n];
                n++;
        }
        for (rep = 0; rep < MEM_REPS; rep++) {
                long r0, r1, m0, m1;
                int f0, f1;
                if (run_child("--child-providers", PROVIDERS, buf, sizeof(buf)) != 0 ||
                    sscanf(buf, "%ld %ld %ld %ld %d %d", &r0, &r1, &m0, &m1, &f0, &f1) != 6)
                        continue;
                prss[np] = (double)(r1 - r0) / PROVIDERS;
                pmap[np] = (double)(m1 - m0) / PROVIDERS;
                pfd[np] = (double)(f1 - f0) / PROVIDERS;
                np++;
        }
        if (n == 0) {
                out("| memory | error | | | | the child process failed |\n");
                return;
        }
        for (k = 0; k < NV; k++)
                st[k] = stats(v[k], n);
        snprintf(iters, sizeof(iters), "%d fresh processes", n);
        table_row("anonymous RSS per probe, create+add (definitions, 10 000 probes)",
                  st[0], 1, "—", iters);
        table_row("anonymous RSS per probe, `usdt_provider_enable`", st[1], 1, "—", iters);
        table_row("file/shmem RSS per probe, `usdt_provider_enable` (object pages touched)",
                  st[2], 1, "—", iters);
        table_row("RSS per probe, all (statm resident, before create to after enable)",
                  st[3], 1, "—", iters);
        table_row("mapped bytes per probe, `usdt_provider_enable` (sum of /proc/self/maps)",
                  st[4], 1, "—", iters);
        table_row("SDT object (memfd) bytes per probe", st[5], 1, "—", iters);
        table_row("  of which strings (.dynstr, note provider/name/arguments)", st[6], 1,
                  "—", iters);
        table_row("name, function and type strings of a definition, per probe", st[8], 1,
                  "—", iters);
        table_row("descriptors opened by enabling the 10 000-probe provider", st[7], 0,
                  "—", iters);
        if (np > 0) {
                snprintf(iters, sizeof(iters), "%d fresh processes", np);
                table_row("1 000 providers x 1 probe: RSS per provider", stats(prss, np), 0,
                          "—", iters);
                table_row("1 000 providers x 1 probe: mapped bytes per provider",
                          stats(pmap, np), 0, "—", iters);
                table_row("1 000 providers x 1 probe: descriptors per provider",
                          stats(pfd, np), 2, "—", iters);
        }
        out("\nEach set of figures comes from a fresh process (nothing freed earlier is "
            "reused): /proc/self/statm (resident, and its file/shmem-backed part), the sum "
            "of /proc/self/maps ranges and the /proc/self/fd entries, before and after. "
            "The memfd holding the SDT object is kernel memory whether or not its pages "
            "are touched, so the memory figures below count the object's size and "
            "anonymous RSS, not the file-backed RSS (the same pages).\n");
        {
                double enabled = st[1].med + st[5].med - st[6].med;
                double total = st[0].med + st[1].med + st[5].med - st[6].med - st[8].med;
                out("\n| target | measured | verdict |\n|---|---|---|\n");
                out("| under 256 bytes of memory per enabled probe beyond its names: "
                    "what enabling adds | %.0f B anonymous + %.0f B object - %.0f B of object "
                    "strings = %.0f B | %s |\n", st[1].med, st[5].med, st[6].med, enabled,
                    verdict(enabled < 256));
                out("| the same, counting the probe's definition too "
                    "(`usdt_create_probe` + add) | %.0f B definition + %.0f B enabled - "
                    "%.0f B of definition strings = %.0f B | %s |\n", st[0].med,
                    st[1].med + st[5].med - st[6].med, st[8].med, total,
                    verdict(total < 256));
        }
}

/* ---- Figure 5: bpftrace attach and detach time --------------------------- */

struct attach_result {
        size_t n;
        double attach_ms, ready_ms, detach_ms, off_ms, stop_timeout_s;
        long long counted;
        char err[300];
};

static int
attach_once(size_t n, struct attach_result *res)
{
        usdt_provider_t *prov;
        usdt_probedef_t **pds;
        usdt_probe_t **probes;
        char name[32], why[200];
        const char *prog = "BEGIN { printf(\"ready\\n\"); }\n"
                           "usdt::benchattach:* { @ = count(); }\n";
        uint64_t t0, t;
        size_t i, on;
        int status, rc = -1, ready_seen = 0;
        void *args[1] = { 0 };

        memset(res, 0, sizeof(*res));
        res->n = n;
        res->attach_ms = res->ready_ms = res->detach_ms = res->off_ms = -1;
        res->counted = -1;
        pds = calloc(n, sizeof(*pds));
        probes = calloc(n, sizeof(*probes));
        if (pds == NULL || probes == NULL)
                abort();
        prov = usdt_create_provider("benchattach", "bench");
        if (prov == NULL) {
                snprintf(res->err, sizeof(res->err), "%s", api_error(NULL));
                goto out_free;
        }
        for (i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "p%zu", i);
                if ((pds[i] = add_probe(prov, "f", name, 1)) == NULL) {
                        snprintf(res->err, sizeof(res->err), "%s", api_error(prov));
                        goto out_prov;
                }
        }
        if (usdt_provider_enable(prov) != 0) {
                snprintf(res->err, sizeof(res->err), "%s", api_error(prov));
                goto out_prov;
        }
        for (i = 0; i < n; i++)
                probes[i] = pds[i]->probe;

        t0 = now_ns();
        if (tracer_start(prog, (int)n) != 0) {
                snprintf(res->err, sizeof(res->err), "%s", skip_reason);
                goto out_prov;
        }
        for (;;) {
                t = now_ns();
                for (on = 0, i = 0; i < n; i++)
                        on += (size_t)usdt_is_enabled(probes[i]);
                if (!ready_seen) {
                        char *o = tracer_output();
                        if (strstr(o, "ready\n") != NULL) {
                                ready_seen = 1;
                                res->ready_ms = (double)(now_ns() - t0) / 1e6;
                        }
                        free(o);
                }
                if (on == n && res->attach_ms < 0)
                        res->attach_ms = (double)(t - t0) / 1e6;
                if (on == n && ready_seen)
                        break;
                if (tracer_exited(&status)) {
                        tracer_tail(why, sizeof(why));
                        snprintf(res->err, sizeof(res->err), "bpftrace exited: %s", why);
                        tracer_cleanup();
                        goto out_prov;
                }
                if ((double)(t - t0) > (60.0 + 0.1 * (double)n) * 1e9) {
                        snprintf(res->err, sizeof(res->err), "not attached in time (%zu of %zu)",
                                 on, n);
                        tracer_stop(30, NULL, 0, NULL);
                        tracer_cleanup();
                        goto out_prov;
                }
                sleep_ms(1);
        }
        for (i = 0; i < n; i++)
                usdt_fire_probe(probes[i], 1, args);
        res->stop_timeout_s = 30.0 + 0.3 * (double)n;
        res->detach_ms = tracer_stop(res->stop_timeout_s, probes, n, &res->off_ms);
        if (res->detach_ms >= 0)
                res->detach_ms /= 1e6;
        if (res->off_ms >= 0)
                res->off_ms /= 1e6;
        {
                char *o = tracer_output();
                res->counted = map_count(o, "");
                free(o);
        }
        tracer_cleanup();
        rc = 0;
out_prov:
        usdt_provider_free(prov);
out_free:
        free(pds);
        free(probes);
        return rc;
}

/* bpftrace 0.17 on libstapsdt's objects, reference section 6 (ms; -1: none). */
static double
ref_attach(size_t n)
{
        return n == 1 ? 146 : n == 10 ? 134 : n == 100 ? 378 : n == 1000 ? 16987 : -1;
}

static double
ref_detach(size_t n)
{
        return n == 1 ? 223 : n == 10 ? 1180 : n == 100 ? 10655 : n == 1000 ? 106454 : -1;
}

static void
attach_row(size_t n, const char *what, double ms, double ref, const char *missing)
{
        char label[256], ratio[96];
        struct stat3 s = { ms, ms, ms, 1 };

        snprintf(label, sizeof(label), "%zu probe%s: %s", n, n == 1 ? "" : "s", what);
        if (ms < 0) {
                table_skip(label, missing);
                return;
        }
        if (ref > 0)
                snprintf(ratio, sizeof(ratio), "%.2fx ref. (%.0f ms)", ms / ref, ref);
        else
                snprintf(ratio, sizeof(ratio), "—");
        table_row(label, s, 0, ratio, "1 run");
}

static void
figure_attach(int can_trace)
{
        static const size_t all_sizes[] = { 1, 10, 100, 1000, 10000 };
        const char *env = getenv("BENCH_ATTACH_PROBES");
        long max = env != NULL && *env ? strtol(env, NULL, 10) : ATTACH_DEFAULT;
        char label[160], ratio[96];
        size_t k, prev_n = 0, skipped = 0;
        double prev_s = -1;
        uint64_t t_size;

        table_head("5. bpftrace attach and detach, all probes of one provider "
                   "(`usdt::benchattach:*`, ms)");
        if (!can_trace) {
                table_skip("attach / detach", skip_reason);
                out("\nSkipped: %s.\n", skip_reason);
                return;
        }
        for (k = 0; k < sizeof(all_sizes) / sizeof(all_sizes[0]); k++) {
                struct attach_result res;
                size_t n = all_sizes[k];
                double elapsed = (double)(now_ns() - run_start) / 1e9;
                if ((long)n > max)
                        break;
                /* bpftrace's cost grows at least linearly: from the last size,
                 * with a margin, predict this one and keep to the budget */
                if (prev_s > 0 && elapsed + 1.5 * prev_s * (double)n / (double)prev_n >
                    RUN_BUDGET_S) {
                        snprintf(label, sizeof(label), "%zu probes", n);
                        snprintf(ratio, sizeof(ratio), "predicted %.0f s, past the %.0f s budget "
                                 "(%.0f s used)", 1.5 * prev_s * (double)n / (double)prev_n,
                                 (double)RUN_BUDGET_S, elapsed);
                        table_skip(label, ratio);
                        skipped = n;
                        break;
                }
                progress("figure 5: bpftrace on a %zu-probe provider", n);
                t_size = now_ns();
                if (attach_once(n, &res) != 0) {
                        snprintf(label, sizeof(label), "%zu probes", n);
                        table_skip(label, res.err);
                        continue;
                }
                attach_row(n, "bpftrace started → the last probe's `usdt_is_enabled` is 1",
                           res.attach_ms, -1, "not seen");
                attach_row(n, "bpftrace started → its BEGIN ran", res.ready_ms, ref_attach(n),
                           "not seen");
                snprintf(label, sizeof(label), "SIGINT → bpftrace exited (it counted %lld of "
                         "%zu fires)", res.counted, n);
                snprintf(ratio, sizeof(ratio), "did not exit within %.0f s: SIGKILLed",
                         res.stop_timeout_s);
                attach_row(n, label, res.detach_ms, ref_detach(n), ratio);
                attach_row(n, "SIGINT → every `usdt_is_enabled` is 0", res.off_ms, -1,
                           "not before bpftrace ended");
                prev_n = n;
                prev_s = (double)(now_ns() - t_size) / 1e9;
        }
        if (skipped)
                out("\nThe %zu-probe provider was skipped to keep the run under %.0f s; "
                    "BENCH_ATTACH_PROBES sets the largest size (default %d).", skipped,
                    (double)RUN_BUDGET_S, ATTACH_DEFAULT);
        else
                out("\nLargest provider: %ld probes (BENCH_ATTACH_PROBES, default %d; a size "
                    "predicted to overrun the %.0f s budget is skipped).", max,
                    ATTACH_DEFAULT, (double)RUN_BUDGET_S);
        out(" One run per size. \"ref.\": bpftrace 0.17 on libstapsdt's objects on this "
            "machine type (reference/linux-usdt.md section 6: start to BEGIN, SIGINT to "
            "exit; not measured in this run).\n");
}

/* ---- main ------------------------------------------------------------------ */

/* BENCH_FIGURES (e.g. "15"): run only those figures; default all. */
static int
want(char figure)
{
        const char *env = getenv("BENCH_FIGURES");

        return env == NULL || *env == '\0' || strchr(env, figure) != NULL;
}

static int
tracing_possible(void)
{
        if (geteuid() != 0) {
                snprintf(skip_reason, sizeof(skip_reason),
                         "not running as root (bpftrace needs root)");
                return 0;
        }
        bpftrace_path = find_in_path("bpftrace");
        if (bpftrace_path == NULL) {
                snprintf(skip_reason, sizeof(skip_reason), "bpftrace is not in PATH");
                return 0;
        }
        return 1;
}

static void
raise_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int
main(int argc, char **argv)
{
        char model[256], date[64], bt_version[128] = "", git[128] = "", tmp_md[PATH_MAX];
        char pin[64], load_start[64];
        struct utsname un;
        time_t now = time(NULL);
        uint64_t start = now_ns();
        int can_trace;

        run_start = start;
        FILE *p;

        raise_fd_limit();
        if (argc == 3 && strcmp(argv[1], "--child-memory") == 0)
                return child_memory((size_t)strtoul(argv[2], NULL, 10));
        if (argc == 3 && strcmp(argv[1], "--child-providers") == 0)
                return child_providers((size_t)strtoul(argv[2], NULL, 10));
        if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
                fprintf(stderr, "usage: %s [RESULTS.md]\n", argv[0]);
                return 2;
        }

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        atexit(tracer_cleanup);

        if (argc == 2) {
                snprintf(tmp_md, sizeof(tmp_md), "%s.tmp", argv[1]);
                md = fopen(tmp_md, "w");
                if (md == NULL) {
                        perror(tmp_md);
                        return 1;
                }
        }
        pin_to_one_cpu();
        can_trace = tracing_possible();
        if (can_trace) {
                char cmd[PATH_MAX + 32];
                snprintf(cmd, sizeof(cmd), "'%s' --version 2>&1", bpftrace_path);
                p = popen(cmd, "r");
                first_line(p, bt_version, sizeof(bt_version));
                if (p != NULL)
                        pclose(p);
        }
        p = popen("git -C .. describe --always --dirty 2>/dev/null", "r");
        first_line(p, git, sizeof(git));
        if (p != NULL)
                pclose(p);
        uname(&un);
        cpu_model(model, sizeof(model));
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", localtime(&now));

        out("# libusdt benchmark results\n\n");
        out("- date: %s\n", date);
        out("- kernel: %s (%s)\n", un.release, un.machine);
        if (pinned_cpu >= 0)
                snprintf(pin, sizeof(pin), "pinned to CPU %d", pinned_cpu);
        else
                snprintf(pin, sizeof(pin), "not pinned (sched_setaffinity failed)");
        out("- CPU: %s, %ld online CPUs; %s\n", model, sysconf(_SC_NPROCESSORS_ONLN), pin);
        out("- compiler: gcc %s; baseline: <sys/sdt.h> with semaphores\n", __VERSION__);
        out("- tracer: %s\n", can_trace ? bt_version : skip_reason);
        loadavg(load_start, sizeof(load_start));
        out("- load average at start: %s\n", load_start);
        if (git[0])
                out("- libusdt: %s\n", git);
        out("\nAll times are per loop iteration unless a row says otherwise; "
            "median, min and max are over the repetitions in the last column.\n");

        if (setup_rt_provider() != 0) {
                out("\nCannot create the libusdt provider under test; stopping.\n");
                return 1;
        }
        setup_jit();
        if (jit_site_fn == NULL)
                progress("the JIT rows are skipped: %s", jit_skip);
        if (want('1'))
                figure_disabled();
        if (want('2'))
                figure_enabled(can_trace);
        if (want('3'))
                figure_enable();
        if (want('4'))
                figure_memory();
        if (want('5'))
                figure_attach(can_trace);
        usdt_provider_free(rt_provider);
        usdt_jit_free(bench_jit);

        loadavg(load_start, sizeof(load_start));
        out("\nWhole run: %.0f s. Load average at the end: %s.\n",
            (double)(now_ns() - start) / 1e9, load_start);
        if (md != NULL) {
                if (fclose(md) != 0 || rename(tmp_md, argv[1]) != 0) {
                        perror(argv[1]);
                        return 1;
                }
                md = NULL;
                progress("wrote %s", argv[1]);
        }
        return 0;
}
