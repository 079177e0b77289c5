/*
 * The C driver the test suite runs: reads one command a line from stdin,
 * calls the library, prints one answer a line. The Perl tests (t/NN.t,
 * through t/lib/USDTTest.pm) script it and start tracers against its pid.
 *
 * Tokens are separated by spaces; inside a token %XX is the byte XX and
 * *N:C is the byte C repeated N times (for long and hostile names).
 *
 *   provider VAR NAME MODULE        ok | error ERRNO TEXT
 *   probe VAR FUNC NAME TYPE...     types: int, str ("char *"), null, or literal
 *   probe_argc VAR FUNC NAME ARGC   types NULL with that argc
 *   probe_typed VAR FUNC NAME ARGC  ARGC types "int" (an array of 1024: past
 *                                   that a library must refuse unread)
 *   add|remove P D, enable|disable P      ok | error TEXT
 *   free P, release D, errstr P, path P, dof P FILE, forget D
 *   fields D, pfields P             the public struct fields
 *   freeraw P                       free() the provider, as some bindings do
 *   handle D, keep D K              the handle (K: kept for later, stale use)
 *   isenabled D|K, fire D|K ARG...  args: i:NUM s:TEXT null bad
 *   fireloop D|K N ARG..., guarded D|K N ARG...   fire N times
 *   wait D 0|1 MS                   until usdt_is_enabled(D) is that
 *   mem ADDR LEN                    hex bytes of our memory
 *   counts, rss                     open descriptors and mapping lines; RSS KiB
 *   wxmap                           map a page writable and executable (for
 *                                   the test that looks for such pages)
 *   cycle P N                       enable and disable P N times
 *   churn N                         create, enable, release, free N providers
 *   marshal N                       the argument marshaller, N arguments
 *   mtfire D T N                    T threads fire D N times each, guarded
 *   race toggle|churn SECONDS T [GO]  T threads fire while this one disables/frees;
 *                                   with GO: says "race started" once the probe
 *                                   first exists, races until the file GO exists
 *                                   (a tracer is attached), then SECONDS more
 *   mtcontrol T N                   T threads run the control API N times
 *   child_fire D N GO, waitchild PID  a child fires D N times once traced and GO exists
 *   child_free P                    a child frees P and exits
 *   exec_fds                        the descriptors an exec'ed program sees
 *   nullcalls                       every public function given NULLs
 *   foreign P                       dlopen and dlclose P's object from outside
 *   failat N, failcalls             fail the Nth library allocation (failalloc build)
 *   arch, pid, sleep MS, echo TEXT, quit
 */
#define _GNU_SOURCE
#include "usdt.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_VARS 16384
#define MAX_TOKENS (USDT_ARG_MAX + 16)

struct var {
        char name[32];
        usdt_provider_t *provider;
        usdt_probedef_t *probedef;
        usdt_probe_t *kept;
};

static struct var vars[MAX_VARS];

static struct var *
var_get(const char *name, int create)
{
        int i;

        for (i = 0; i < MAX_VARS; i++)
                if (vars[i].name[0] != '\0' && strcmp(vars[i].name, name) == 0)
                        return &vars[i];
        if (!create)
                return NULL;
        for (i = 0; i < MAX_VARS; i++) {
                if (vars[i].name[0] == '\0') {
                        snprintf(vars[i].name, sizeof(vars[i].name), "%s", name);
                        return &vars[i];
                }
        }
        return NULL;
}

static usdt_provider_t *
provider_of(const char *name)
{
        struct var *v = var_get(name, 0);
        return v ? v->provider : NULL;
}

static usdt_probedef_t *
probedef_of(const char *name)
{
        struct var *v = var_get(name, 0);
        return v ? v->probedef : NULL;
}

/* A probe handle: a kept one (K) or the probedef's current one (D). */
static usdt_probe_t *
handle_of(const char *name)
{
        struct var *v = var_get(name, 0);

        if (v == NULL)
                return NULL;
        if (v->probedef != NULL)
                return v->probedef->probe;
        return v->kept;
}

/* Decode %XX and *N:C in place (may grow: *N:C allocates). */
static char *
decode(const char *token)
{
        size_t cap = strlen(token) + 1, used = 0;
        char *out = malloc(cap);
        const char *p = token;

        if (out == NULL)
                abort();
        while (*p != '\0') {
                if (p[0] == '%' && p[1] && p[2]) {
                        char hex[3] = { p[1], p[2], 0 };
                        out[used++] = (char)strtol(hex, NULL, 16);
                        p += 3;
                } else if (p[0] == '*' && strchr(p, ':') != NULL) {
                        size_t n = strtoul(p + 1, NULL, 10);
                        const char *colon = strchr(p, ':');
                        char c = colon[1];
                        out = realloc(out, cap += n);
                        if (out == NULL)
                                abort();
                        memset(out + used, c, n);
                        used += n;
                        p = colon + (c ? 2 : 1);
                } else {
                        out[used++] = *p++;
                }
        }
        out[used] = '\0';
        return out;
}

static void
args_parse(char **tok, int ntok, void **argv, char **strings, size_t *argc)
{
        int i;

        *argc = 0;
        for (i = 0; i < ntok && i < USDT_ARG_MAX; i++) {
                strings[i] = NULL;
                if (strncmp(tok[i], "i:", 2) == 0)
                        argv[i] = (void *)(intptr_t)strtoll(tok[i] + 2, NULL, 0);
                else if (strncmp(tok[i], "s:", 2) == 0)
                        argv[i] = strings[i] = decode(tok[i] + 2);
                else if (strcmp(tok[i], "bad") == 0)
                        argv[i] = (void *)(uintptr_t)0x10;     /* unmapped */
                else
                        argv[i] = NULL;
                (*argc)++;
        }
}

static int
count_dir(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;
        int n = 0;

        if (d == NULL)
                return -1;
        while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;   /* the directory's own descriptor */
}

static int
count_lines(const char *path)
{
        FILE *f = fopen(path, "r");
        int n = 0, c;

        if (f == NULL)
                return -1;
        while ((c = fgetc(f)) != EOF)
                if (c == '\n')
                        n++;
        fclose(f);
        return n;
}

static void
sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* --- The marshaller, checked from C ---------------------------------------
 *
 * capture_site stands where a stub's probe part would: it records the
 * registers and stack words a tracer would read, then returns the way a
 * stub does. usdt_probe_args is internal (hidden) but links statically.
 */
void usdt_probe_args(void *probe_addr, size_t argc, void **argv, int dtrace);
uintptr_t captured[USDT_ARG_MAX], captured_dtrace[USDT_ARG_MAX];
void capture_site(void);
uintptr_t call_preserving(void *target, size_t argc, void **argv, int dtrace);

#if defined(__x86_64__)
/* capture_site is called as a stub's SDT part (arguments 7+ at 8(%rsp),
 * returns with ret); 12 bytes before it, as in a stub, the DTrace part
 * (arguments 7+ at 0(%rsp), returns through %r11) records into
 * captured_dtrace. */
__asm__(
        ".text\n"
        ".p2align 4\n"
        "capture_dtrace:\n"
        "  .byte 0xe9\n  .long capture_dtrace_body - . - 4\n"  /* jmp, 5 bytes */
        "  .fill 7, 1, 0xcc\n"
        ".globl capture_site\n"
        "capture_site:\n"
        "  lea captured(%rip), %rax\n"
        "  mov %rdi, 0(%rax)\n  mov %rsi, 8(%rax)\n  mov %rdx, 16(%rax)\n"
        "  mov %rcx, 24(%rax)\n  mov %r8, 32(%rax)\n  mov %r9, 40(%rax)\n"
        "  xor %ecx, %ecx\n"
        "1: mov 8(%rsp,%rcx,8), %rdx\n"
        "  mov %rdx, 48(%rax,%rcx,8)\n"
        "  inc %rcx\n  cmp $26, %rcx\n  jb 1b\n"
        "  mov 24(%rax), %rcx\n  mov 16(%rax), %rdx\n"   /* as it found them */
        "  ret\n"
        "capture_dtrace_body:\n"
        "  lea captured_dtrace(%rip), %rax\n"
        "  mov %rdi, 0(%rax)\n  mov %rsi, 8(%rax)\n  mov %rdx, 16(%rax)\n"
        "  mov %rcx, 24(%rax)\n  mov %r8, 32(%rax)\n  mov %r9, 40(%rax)\n"
        "  xor %ecx, %ecx\n"
        "1: mov (%rsp,%rcx,8), %rdx\n"
        "  mov %rdx, 48(%rax,%rcx,8)\n"
        "  inc %rcx\n  cmp $26, %rcx\n  jb 1b\n"
        "  jmp *%r11\n"
        /* call usdt_probe_args with known callee-saved registers; return
         * 0 if all of them and %rsp came back unchanged, else 1 */
        ".globl call_preserving\n"
        "call_preserving:\n"
        "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
        "  sub $8, %rsp\n"
        "  mov $0x1111111111111111, %rbx\n  mov $0x2222222222222222, %rbp\n"
        "  mov $0x3333333333333333, %r12\n  mov $0x4444444444444444, %r13\n"
        "  mov $0x5555555555555555, %r14\n  mov $0x6666666666666666, %r15\n"
        "  mov %rsp, (%rsp)\n"
        "  call usdt_probe_args\n"
        "  xor %eax, %eax\n"
        "  cmp %rsp, (%rsp)\n  setne %al\n"
        "  mov $0x1111111111111111, %rcx\n  cmp %rcx, %rbx\n  jne 9f\n"
        "  mov $0x2222222222222222, %rcx\n  cmp %rcx, %rbp\n  jne 9f\n"
        "  mov $0x3333333333333333, %rcx\n  cmp %rcx, %r12\n  jne 9f\n"
        "  mov $0x4444444444444444, %rcx\n  cmp %rcx, %r13\n  jne 9f\n"
        "  mov $0x5555555555555555, %rcx\n  cmp %rcx, %r14\n  jne 9f\n"
        "  mov $0x6666666666666666, %rcx\n  cmp %rcx, %r15\n  jne 9f\n"
        "  jmp 8f\n"
        "9: mov $1, %eax\n"
        "8: add $8, %rsp\n"
        "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
        "  ret\n");
#elif defined(__i386__)
__asm__(
        ".text\n"
        ".globl capture_site\n"
        "capture_site:\n"
        "  pop %ecx\n"                  /* as a stub: the return address out */
        "  push %ebx\n"
        "  call 0f\n"
        "0: pop %ebx\n"
        "  add $_GLOBAL_OFFSET_TABLE_+(.-0b), %ebx\n"
        "  lea captured@GOTOFF(%ebx), %eax\n"
        "  pop %ebx\n"
        "  push %esi\n  xor %edx, %edx\n"
        "1: mov 4(%esp,%edx,4), %esi\n"
        "  mov %esi, (%eax,%edx,4)\n"
        "  inc %edx\n  cmp $32, %edx\n  jb 1b\n"
        "  pop %esi\n"
        "  jmp *%ecx\n"
        ".globl call_preserving\n"
        "call_preserving:\n"
        "  push %ebp\n  mov %esp, %ebp\n  push %ebx\n  push %esi\n  push %edi\n"
        "  sub $12, %esp\n"
        "  mov 16(%ebp), %eax\n  mov %eax, 8(%esp)\n"
        "  mov 12(%ebp), %eax\n  mov %eax, 4(%esp)\n"
        "  mov 8(%ebp), %eax\n  mov %eax, (%esp)\n"
        "  mov $0x11111111, %ebx\n  mov $0x22222222, %esi\n  mov $0x33333333, %edi\n"
        "  call usdt_probe_args\n"
        "  xor %eax, %eax\n"
        "  lea -24(%ebp), %ecx\n  cmp %ecx, %esp\n  jne 9f\n"
        "  cmp $0x11111111, %ebx\n  jne 9f\n"
        "  cmp $0x22222222, %esi\n  jne 9f\n"
        "  cmp $0x33333333, %edi\n  jne 9f\n"
        "  jmp 8f\n"
        "9: mov $1, %eax\n"
        "8: lea -12(%ebp), %esp\n"
        "  pop %edi\n  pop %esi\n  pop %ebx\n  pop %ebp\n"
        "  ret\n");
#elif defined(__aarch64__)
/* capture_site is called (blr) as a stub's SDT part: arguments 9+ at
 * [sp, 16], [sp, 24], ...; it also checks the frame record the marshaller
 * promises at the site (x29 = sp, 16-byte aligned, [sp, 8] = x30) and sets
 * site_frame_bad when it is not there. */
uintptr_t site_frame_bad;
__asm__(
        ".text\n"
        ".p2align 4\n"
        ".globl capture_site\n"
        ".type capture_site, %function\n"
        "capture_site:\n"
        "  hint #34\n"                                  /* bti c */
        "  adrp x9, captured\n  add x9, x9, :lo12:captured\n"
        "  stp x0, x1, [x9, #0]\n  stp x2, x3, [x9, #16]\n"
        "  stp x4, x5, [x9, #32]\n  stp x6, x7, [x9, #48]\n"
        "  add x11, sp, #16\n  add x13, x9, #64\n  mov x10, #0\n"
        "1: ldr x12, [x11, x10, lsl #3]\n"
        "  str x12, [x13, x10, lsl #3]\n"
        "  add x10, x10, #1\n  cmp x10, #24\n  b.lo 1b\n"
        "  mov x12, sp\n  mov x15, #1\n"
        "  cmp x29, x12\n  b.ne 2f\n"
        "  tst x12, #15\n  b.ne 2f\n"
        "  ldr x14, [sp, #8]\n  cmp x14, x30\n  b.ne 2f\n"
        "  mov x15, #0\n"
        "2: adrp x9, site_frame_bad\n  str x15, [x9, :lo12:site_frame_bad]\n"
        "  ret\n"
        /* call usdt_probe_args with known callee-saved registers (x19-x28,
         * d8, d15); return 0 if all of them, x29 and sp came back
         * unchanged, else 1 */
        ".globl call_preserving\n"
        ".type call_preserving, %function\n"
        "call_preserving:\n"
        "  hint #34\n"
        "  stp x29, x30, [sp, #-128]!\n  mov x29, sp\n"
        "  stp x19, x20, [sp, #16]\n  stp x21, x22, [sp, #32]\n"
        "  stp x23, x24, [sp, #48]\n  stp x25, x26, [sp, #64]\n"
        "  stp x27, x28, [sp, #80]\n  stp d8, d15, [sp, #104]\n"
        "  mov x9, sp\n  str x9, [sp, #96]\n"
        "  mov x19, #0x1919\n  movk x19, #0x1919, lsl #48\n"
        "  mov x20, #0x2020\n  movk x20, #0x2020, lsl #48\n"
        "  mov x21, #0x2121\n  movk x21, #0x2121, lsl #48\n"
        "  mov x22, #0x2222\n  movk x22, #0x2222, lsl #48\n"
        "  mov x23, #0x2323\n  movk x23, #0x2323, lsl #48\n"
        "  mov x24, #0x2424\n  movk x24, #0x2424, lsl #48\n"
        "  mov x25, #0x2525\n  movk x25, #0x2525, lsl #48\n"
        "  mov x26, #0x2626\n  movk x26, #0x2626, lsl #48\n"
        "  mov x27, #0x2727\n  movk x27, #0x2727, lsl #48\n"
        "  mov x28, #0x2828\n  movk x28, #0x2828, lsl #48\n"
        "  fmov d8, x19\n  fmov d15, x28\n"
        "  bl usdt_probe_args\n"
        "  mov x0, #1\n"
        "  ldr x9, [sp, #96]\n  mov x10, sp\n  cmp x9, x10\n  b.ne 9f\n"
        "  cmp x29, x10\n  b.ne 9f\n"
        "  mov x9, #0x1919\n  movk x9, #0x1919, lsl #48\n  cmp x19, x9\n  b.ne 9f\n"
        "  mov x9, #0x2020\n  movk x9, #0x2020, lsl #48\n  cmp x20, x9\n  b.ne 9f\n"
        "  mov x9, #0x2121\n  movk x9, #0x2121, lsl #48\n  cmp x21, x9\n  b.ne 9f\n"
        "  mov x9, #0x2222\n  movk x9, #0x2222, lsl #48\n  cmp x22, x9\n  b.ne 9f\n"
        "  mov x9, #0x2323\n  movk x9, #0x2323, lsl #48\n  cmp x23, x9\n  b.ne 9f\n"
        "  mov x9, #0x2424\n  movk x9, #0x2424, lsl #48\n  cmp x24, x9\n  b.ne 9f\n"
        "  mov x9, #0x2525\n  movk x9, #0x2525, lsl #48\n  cmp x25, x9\n  b.ne 9f\n"
        "  mov x9, #0x2626\n  movk x9, #0x2626, lsl #48\n  cmp x26, x9\n  b.ne 9f\n"
        "  mov x9, #0x2727\n  movk x9, #0x2727, lsl #48\n  cmp x27, x9\n  b.ne 9f\n"
        "  mov x9, #0x2828\n  movk x9, #0x2828, lsl #48\n  cmp x28, x9\n  b.ne 9f\n"
        "  fmov x9, d8\n  cmp x9, x19\n  b.ne 9f\n"
        "  fmov x9, d15\n  cmp x9, x28\n  b.ne 9f\n"
        "  mov x0, #0\n"
        "9: ldp x19, x20, [sp, #16]\n  ldp x21, x22, [sp, #32]\n"
        "  ldp x23, x24, [sp, #48]\n  ldp x25, x26, [sp, #64]\n"
        "  ldp x27, x28, [sp, #80]\n  ldp d8, d15, [sp, #104]\n"
        "  ldp x29, x30, [sp], #128\n"
        "  ret\n");
#endif

static void
marshal(size_t argc)
{
        void *argv[USDT_ARG_MAX];
        size_t i;
        uintptr_t changed;

        for (i = 0; i < USDT_ARG_MAX; i++) {
                argv[i] = (void *)(uintptr_t)(0x1000 + i * 0x11);
                captured[i] = captured_dtrace[i] = 0;
        }
#if defined(__x86_64__)
        /* both sites: the DTrace one must see the same arguments */
        changed = call_preserving((void *)capture_site, argc, argv, 1);
        if (memcmp(captured, captured_dtrace, argc * sizeof(captured[0])) != 0)
                changed = 1;
#elif defined(__aarch64__)
        changed = call_preserving((void *)capture_site, argc, argv, 0) | site_frame_bad;
#else
        changed = call_preserving((void *)capture_site, argc, argv, 0);
#endif
        printf("marshal %zu preserved %s args", argc, changed ? "no" : "yes");
        for (i = 0; i < argc; i++)
                printf(" %" PRIxPTR, captured[i]);
        printf("\n");
}

/* --- Threads and processes ------------------------------------------------ */

struct fire_job {
        usdt_probe_t *probe;
        long count;
        long fired;
};

static void *
fire_thread(void *arg)
{
        struct fire_job *job = arg;
        void *args[2] = { (void *)(intptr_t)7, (void *)"thread" };
        long k;

        for (k = 0; k < job->count; k++) {
                if (usdt_is_enabled(job->probe) == 1) {
                        usdt_fire_probe(job->probe, 2, args);
                        job->fired++;
                }
        }
        return NULL;
}

/* T threads each fire the probe N times, guarded; prints the fires. */
static void
mtfire(usdt_probe_t *probe, int threads, long count)
{
        pthread_t tid[64];
        struct fire_job jobs[64];
        long fired = 0;
        int i;

        for (i = 0; i < threads && i < 64; i++) {
                jobs[i].probe = probe;
                jobs[i].count = count;
                jobs[i].fired = 0;
                pthread_create(&tid[i], NULL, fire_thread, &jobs[i]);
        }
        for (i = 0; i < threads && i < 64; i++) {
                pthread_join(tid[i], NULL);
                fired += jobs[i].fired;
        }
        printf("fired %ld\n", fired);
}

/*
 * The races: firing threads use whatever handle the control thread last
 * published, while it disables and enables (mode "toggle": the same
 * object comes back) or frees and makes whole new providers (mode
 * "churn"). Every probedef stays alive until the end, as a binding that
 * kept its handles would; no fire may crash.
 */
static usdt_probe_t *race_handle;
static int race_stop;

static void *
race_fire_thread(void *arg)
{
        void *args[2] = { (void *)(intptr_t)1, (void *)"race" };
        long *fires = arg;

        while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
                usdt_probe_t *h = __atomic_load_n(&race_handle, __ATOMIC_ACQUIRE);
                if (usdt_is_enabled(h))
                        (*fires)++;
                usdt_fire_probe(h, 2, args);
        }
        return NULL;
}

static double
seconds_since(const struct timespec *start)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

static void
race(const char *mode, double seconds, int threads, const char *go)
{
        const char *types[2] = { "int", "char *" };
        usdt_probedef_t **kept = NULL;
        usdt_provider_t *prov = NULL;
        pthread_t tid[16];
        long fires[16] = { 0 }, rounds = 0, nkept = 0, total = 0;
        struct timespec start;
        int i, churn = strcmp(mode, "churn") == 0, failed = 0, started = 0;

        race_stop = 0;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (i = 0; i < threads && i < 16; i++)
                pthread_create(&tid[i], NULL, race_fire_thread, &fires[i]);
        do {
                if (prov == NULL) {
                        usdt_probedef_t *d = usdt_create_probe("fn", "racing", 2, types);
                        prov = usdt_create_provider("race", "mod");
                        kept = realloc(kept, (size_t)(nkept + 1) * sizeof(*kept));
                        kept[nkept++] = d;
                        if (prov == NULL || d == NULL || usdt_provider_add_probe(prov, d) != 0)
                                failed = 1;
                }
                if (usdt_provider_enable(prov) != 0)
                        failed = 1;
                __atomic_store_n(&race_handle, kept[nkept - 1]->probe, __ATOMIC_RELEASE);
                if (go != NULL && !started) {
                        /* the probe exists: a tracer can attach now */
                        printf("race started\n");
                        started = 1;
                }
                sleep_ms(1);
                if (churn) {
                        usdt_provider_free(prov);
                        prov = NULL;
                } else if (usdt_provider_disable(prov) != 0) {
                        failed = 1;
                }
                rounds++;
                if (go != NULL && access(go, F_OK) == 0) {
                        /* the tracer is attached: SECONDS from now */
                        clock_gettime(CLOCK_MONOTONIC, &start);
                        go = NULL;
                } else if (go != NULL && seconds_since(&start) > 60) {
                        failed = 1;     /* GO never came */
                }
        } while (!failed && (go != NULL || seconds_since(&start) < seconds));
        __atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
        for (i = 0; i < threads && i < 16; i++) {
                pthread_join(tid[i], NULL);
                total += fires[i];
        }
        usdt_provider_free(prov);
        race_handle = NULL;
        for (i = 0; i < nkept; i++)
                usdt_probe_release(kept[i]);
        free(kept);
        printf("race %s rounds %s enabled-fires %ld\n", failed ? "failed" : "ok",
               rounds > 10 ? "many" : "few", total);
}

/* Threads that each create, enable, fire, disable and free their own
 * providers while all toggle one shared provider. */
static usdt_provider_t *shared_provider;

static void *
control_thread(void *arg)
{
        long n = *(long *)arg, k, errors = 0;
        const char *types[1] = { "int" };

        for (k = 0; k < n; k++) {
                usdt_provider_t *p = usdt_create_provider("mine", "mod");
                usdt_probedef_t *d = usdt_create_probe("fn", "p", 1, types);
                void *args[1] = { (void *)(intptr_t)k };
                if (p == NULL || d == NULL || usdt_provider_add_probe(p, d) != 0 ||
                    usdt_provider_enable(p) != 0)
                        errors++;
                else
                        usdt_fire_probe(d->probe, 1, args);
                usdt_provider_disable(p);
                usdt_probe_release(d);
                usdt_provider_free(p);
                if (usdt_provider_enable(shared_provider) != 0 ||
                    usdt_provider_disable(shared_provider) != 0)
                        errors++;
        }
        *(long *)arg = errors;
        return NULL;
}

static void
mtcontrol(int threads, long n)
{
        pthread_t tid[16];
        long args[16], errors = 0;
        usdt_probedef_t *d = usdt_create_probe("fn", "shared", 0, NULL);
        int i;

        shared_provider = usdt_create_provider("shared", "mod");
        usdt_provider_add_probe(shared_provider, d);
        for (i = 0; i < threads && i < 16; i++) {
                args[i] = n;
                pthread_create(&tid[i], NULL, control_thread, &args[i]);
        }
        for (i = 0; i < threads && i < 16; i++) {
                pthread_join(tid[i], NULL);
                errors += args[i];
        }
        usdt_probe_release(d);
        usdt_provider_free(shared_provider);
        printf("errors %ld\n", errors);
}

/* Failure injection, present only in the build/failalloc driver. */
extern void usdt_test_failat(long n) __attribute__((weak));
extern long usdt_test_calls(void) __attribute__((weak));

/* --- The command loop ----------------------------------------------------- */

static void
say_error(usdt_provider_t *p)
{
        const char *e = usdt_errstr(p);
        printf("error %s\n", e ? e : "(null)");
}

static void
command(char **tok, int ntok)
{
        const char *cmd = tok[0];
        usdt_provider_t *p;
        usdt_probedef_t *d;
        usdt_probe_t *h;
        struct var *v;

        if (ntok > 1 && strcmp(cmd, "echo") != 0 && var_get(tok[1], 1) == NULL) {
                printf("error too many variables\n");
        } else if (strcmp(cmd, "provider") == 0 && ntok == 4) {
                char *name = decode(tok[2]), *module = decode(tok[3]);
                usdt_provider_t *np = usdt_create_provider(
                        strcmp(tok[2], "NULL") ? name : NULL,
                        strcmp(tok[3], "NULL") ? module : NULL);
                if (np == NULL) {
                        printf("error %s %s\n", errno == EINVAL ? "EINVAL" : "ENOMEM",
                               usdt_errstr(NULL));
                } else {
                        var_get(tok[1], 1)->provider = np;
                        printf("ok\n");
                }
                free(name);
                free(module);
        } else if (strcmp(cmd, "probe_typed") == 0 && ntok == 5) {
                static const char *ints[1024];
                char *func = decode(tok[2]), *name = decode(tok[3]);
                size_t i;

                for (i = 0; i < 1024; i++)
                        ints[i] = "int";
                d = usdt_create_probe(func, name, strtoull(tok[4], NULL, 0), ints);
                if (d == NULL) {
                        printf("error %s\n", errno == EINVAL ? "EINVAL" : "ENOMEM");
                } else {
                        var_get(tok[1], 1)->probedef = d;
                        printf("ok\n");
                }
                free(func);
                free(name);
        } else if ((strcmp(cmd, "probe") == 0 && ntok >= 4) ||
                   (strcmp(cmd, "probe_argc") == 0 && ntok == 5)) {
                const char *types[MAX_TOKENS];
                char *func = decode(tok[2]), *name = decode(tok[3]);
                size_t argc = 0;
                int i, raw = strcmp(cmd, "probe_argc") == 0;

                for (i = 4; !raw && i < ntok; i++) {
                        if (strcmp(tok[i], "int") == 0)
                                types[argc++] = "int";
                        else if (strcmp(tok[i], "str") == 0)
                                types[argc++] = "char *";
                        else if (strcmp(tok[i], "null") == 0)
                                types[argc++] = NULL;
                        else
                                types[argc++] = decode(tok[i]);
                }
                if (raw)
                        argc = strtoull(tok[4], NULL, 0);
                d = usdt_create_probe(strcmp(tok[2], "NULL") ? func : NULL,
                                      strcmp(tok[3], "NULL") ? name : NULL,
                                      argc, raw ? NULL : types);
                if (d == NULL) {
                        printf("error %s\n", errno == EINVAL ? "EINVAL" : "ENOMEM");
                } else {
                        v = var_get(tok[1], 1);
                        v->probedef = d;
                        printf("ok\n");
                }
                /* the library copied them: free ours at once */
                for (i = 4; !raw && i < ntok; i++)
                        if (strcmp(tok[i], "int") && strcmp(tok[i], "str") &&
                            strcmp(tok[i], "null"))
                                free((char *)types[i - 4]);
                free(func);
                free(name);
        } else if (strcmp(cmd, "add") == 0 && ntok == 3) {
                p = provider_of(tok[1]);
                if (usdt_provider_add_probe(p, strcmp(tok[2], "NULL") ? probedef_of(tok[2]) : NULL) == 0)
                        printf("ok\n");
                else
                        say_error(p);
        } else if (strcmp(cmd, "remove") == 0 && ntok == 3) {
                p = provider_of(tok[1]);
                if (usdt_provider_remove_probe(p, probedef_of(tok[2])) == 0)
                        printf("ok\n");
                else
                        say_error(p);
        } else if (strcmp(cmd, "enable") == 0 && ntok == 2) {
                p = provider_of(tok[1]);
                if (usdt_provider_enable(p) == 0)
                        printf("ok\n");
                else
                        say_error(p);
        } else if (strcmp(cmd, "disable") == 0 && ntok == 2) {
                p = provider_of(tok[1]);
                if (usdt_provider_disable(p) == 0)
                        printf("ok\n");
                else
                        say_error(p);
        } else if (strcmp(cmd, "free") == 0 && ntok == 2) {
                v = var_get(tok[1], 0);
                usdt_provider_free(v ? v->provider : NULL);
                if (v)
                        v->provider = NULL;
                printf("ok\n");
        } else if (strcmp(cmd, "release") == 0 && ntok == 2) {
                v = var_get(tok[1], 0);
                usdt_probe_release(v ? v->probedef : NULL);
                printf("ok\n");
        } else if (strcmp(cmd, "forget") == 0 && ntok == 2) {
                v = var_get(tok[1], 0);     /* after the last release */
                if (v)
                        v->probedef = NULL;
                printf("ok\n");
        } else if (strcmp(cmd, "errstr") == 0 && ntok == 2) {
                const char *e = usdt_errstr(strcmp(tok[1], "NULL") ? provider_of(tok[1]) : NULL);
                printf("errstr %s\n", e ? e : "(null)");
        } else if (strcmp(cmd, "pfields") == 0 && ntok == 2) {
                usdt_probedef_t *q;
                int n = 0;
                p = provider_of(tok[1]);
                for (q = p->probedefs; q != NULL; q = q->next)
                        n++;
                printf("name %s module %s probes %d enabled %d error %s file %s\n",
                       p->name, p->module, n, p->enabled,
                       p->error ? "set" : "null", p->file ? "set" : "null");
        } else if (strcmp(cmd, "fields") == 0 && ntok == 2) {
                size_t i;
                d = probedef_of(tok[1]);
                printf("function %s name %s argc %zu refcnt %d probe %s next %s types",
                       d->function, d->name, d->argc, d->refcnt,
                       d->probe ? "set" : "null", d->next ? "set" : "null");
                for (i = 0; i < d->argc; i++)
                        printf(" [%s]", d->types[i] ? d->types[i] : "NULL");
                printf("\n");
        } else if (strcmp(cmd, "freeraw") == 0 && ntok == 2) {
                v = var_get(tok[1], 0);     /* what some bindings do */
                free(v->provider);
                v->provider = NULL;
                printf("ok\n");
        } else if (strcmp(cmd, "path") == 0 && ntok == 2) {
                const char *path = usdt_provider_path(provider_of(tok[1]));
                printf("path %s\n", path ? path : "(null)");
        } else if (strcmp(cmd, "dof") == 0 && ntok == 3) {
                void *dof = NULL;
                size_t size = 0;
                p = provider_of(tok[1]);
                if (usdt_provider_dof(p, &dof, &size) == 0) {
                        FILE *f = fopen(tok[2], "wb");
                        int written = f != NULL && fwrite(dof, 1, size, f) == size;
                        /* closed (flushed) before the answer: the test reads it next */
                        if (f != NULL && fclose(f) != 0)
                                written = 0;
                        if (written)
                                printf("ok %zu\n", size);
                        else
                                printf("error cannot write %s\n", tok[2]);
                        free(dof);
                } else {
                        say_error(p);
                }
        } else if (strcmp(cmd, "handle") == 0 && ntok == 2) {
                h = handle_of(tok[1]);
                if (h == NULL)
                        printf("handle null\n");
                else
                        printf("handle %p %p\n", (void *)h->isenabled_addr, h->probe_addr);
        } else if (strcmp(cmd, "keep") == 0 && ntok == 3) {
                h = handle_of(tok[1]);
                var_get(tok[2], 1)->kept = h;
                printf("ok\n");
        } else if (strcmp(cmd, "isenabled") == 0 && ntok == 2) {
                printf("%d\n", usdt_is_enabled(strcmp(tok[1], "NULL") ? handle_of(tok[1]) : NULL));
        } else if (strcmp(cmd, "call_isenabled") == 0 && ntok == 2) {
                h = handle_of(tok[1]);
                printf("%d\n", h ? h->isenabled_addr() : -1);
        } else if ((strcmp(cmd, "fire") == 0 && ntok >= 2) ||
                   ((strcmp(cmd, "fireloop") == 0 || strcmp(cmd, "guarded") == 0) && ntok >= 3)) {
                void *argv[USDT_ARG_MAX];
                char *strings[USDT_ARG_MAX];
                size_t argc, i;
                long n = 1, fired = 0, k;
                int first = 2, guarded = strcmp(cmd, "guarded") == 0;

                if (strcmp(cmd, "fire") != 0) {
                        n = strtol(tok[2], NULL, 0);
                        first = 3;
                }
                args_parse(tok + first, ntok - first, argv, strings, &argc);
                h = strcmp(tok[1], "NULL") ? handle_of(tok[1]) : NULL;
                for (k = 0; k < n; k++) {
                        if (guarded && !usdt_is_enabled(h))
                                continue;
                        usdt_fire_probe(h, argc, argv);
                        fired++;
                }
                for (i = 0; i < argc; i++)
                        free(strings[i]);       /* caller-owned: freed right after */
                printf("fired %ld\n", fired);
        } else if (strcmp(cmd, "wait") == 0 && ntok == 4) {
                int want = atoi(tok[2]), got = -1;
                long ms = atol(tok[3]), waited;
                for (waited = 0; waited <= ms; waited += 10) {
                        got = usdt_is_enabled(handle_of(tok[1]));
                        if (got == want)
                                break;
                        sleep_ms(10);
                }
                printf("%d\n", got);
        } else if (strcmp(cmd, "mem") == 0 && ntok == 3) {
                const unsigned char *addr = (const unsigned char *)(uintptr_t)strtoull(tok[1], NULL, 0);
                long len = atol(tok[2]), i;
                printf("mem");
                for (i = 0; i < len; i++)
                        printf(" %02x", addr[i]);
                printf("\n");
        } else if (strcmp(cmd, "wxmap") == 0) {
                void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (page == MAP_FAILED)
                        printf("error mmap %s\n", strerror(errno));
                else
                        printf("wxmap %p\n", page);
        } else if (strcmp(cmd, "counts") == 0) {
                printf("fds %d maps %d\n", count_dir("/proc/self/fd"),
                       count_lines("/proc/self/maps"));
        } else if (strcmp(cmd, "rss") == 0) {
                long pages = 0, resident = 0;
                FILE *f = fopen("/proc/self/statm", "r");
                if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2)
                        resident = -1;
                if (f)
                        fclose(f);
                printf("rss %ld\n", resident * (sysconf(_SC_PAGESIZE) / 1024));
        } else if (strcmp(cmd, "cycle") == 0 && ntok == 3) {
                long n = atol(tok[2]), k;
                p = provider_of(tok[1]);
                for (k = 0; k < n; k++)
                        if (usdt_provider_enable(p) != 0 || usdt_provider_disable(p) != 0)
                                break;
                if (k == n)
                        printf("ok\n");
                else
                        say_error(p);
        } else if (strcmp(cmd, "churn") == 0 && ntok == 2) {
                /* what a binding that makes providers on the fly does */
                long n = atol(tok[1]), k;
                const char *types[2] = { "int", "char *" };
                for (k = 0; k < n; k++) {
                        usdt_provider_t *np = usdt_create_provider("churn", "mod");
                        usdt_probedef_t *nd = usdt_create_probe("fn", "p", 2, types);
                        if (np == NULL || nd == NULL || usdt_provider_add_probe(np, nd) != 0 ||
                            usdt_provider_enable(np) != 0)
                                break;
                        usdt_probe_release(nd);
                        usdt_provider_free(np);
                }
                printf(k == n ? "ok\n" : "error at %ld\n", k);
        } else if (strcmp(cmd, "marshal") == 0 && ntok == 2) {
                marshal(strtoul(tok[1], NULL, 0));
        } else if (strcmp(cmd, "mtfire") == 0 && ntok == 4) {
                mtfire(handle_of(tok[1]), atoi(tok[2]), atol(tok[3]));
        } else if (strcmp(cmd, "race") == 0 && (ntok == 4 || ntok == 5)) {
                race(tok[1], atof(tok[2]), atoi(tok[3]), ntok == 5 ? tok[4] : NULL);
        } else if (strcmp(cmd, "mtcontrol") == 0 && ntok == 3) {
                mtcontrol(atoi(tok[1]), atol(tok[2]));
        } else if (strcmp(cmd, "child_fire") == 0 && ntok == 4) {
                /* a child that waits to be traced and for the file GO to
                 * exist (the tracer is ready), fires N times, exits */
                pid_t pid = fork();
                if (pid == 0) {
                        long k, n = atol(tok[2]), waited;
                        void *args[1] = { (void *)(intptr_t)99 };
                        h = handle_of(tok[1]);
                        for (waited = 0; waited < 30000 &&
                             (!usdt_is_enabled(h) || access(tok[3], F_OK) != 0); waited += 10)
                                sleep_ms(10);
                        for (k = 0; k < n; k++)
                                usdt_fire_probe(h, 1, args);
                        sleep_ms(200);
                        _exit(usdt_is_enabled(h) ? 0 : 3);
                }
                printf("child %d\n", (int)pid);
        } else if (strcmp(cmd, "child_free") == 0 && ntok == 2) {
                /* a child that frees the provider (and exits as a binding would) */
                pid_t pid = fork();
                int status = -1;
                if (pid == 0) {
                        usdt_provider_free(provider_of(tok[1]));
                        exit(0);
                }
                waitpid(pid, &status, 0);
                printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        } else if (strcmp(cmd, "waitchild") == 0 && ntok == 2) {
                int status = -1;
                waitpid((pid_t)atoi(tok[1]), &status, 0);
                printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        } else if (strcmp(cmd, "exec_fds") == 0) {
                /* which descriptors a program we exec finds open */
                fflush(stdout);
                if (system("ls /proc/self/fd | tr '\\n' ' ' | sed 's/^/fds /; s/ $//'; echo") != 0)
                        printf("error system\n");
        } else if (strcmp(cmd, "foreign") == 0 && ntok == 2) {
                /* someone else dlopens our object by its path, then closes it */
                const char *path = usdt_provider_path(provider_of(tok[1]));
                void *other = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
                if (other == NULL)
                        printf("error %s\n", path ? dlerror() : "no path");
                else
                        printf(dlclose(other) == 0 ? "ok\n" : "error dlclose\n");
        } else if (strcmp(cmd, "nullcalls") == 0) {
                /* every public function with NULL for each pointer */
                usdt_provider_t *np = usdt_create_provider("nulls", "mod");
                usdt_probedef_t *nd = usdt_create_probe("f", "p", 0, NULL);
                void *dof = NULL;
                size_t size = 0;
                printf("add %d %d remove %d %d enable %d disable %d dof %d %d %d path %s "
                       "isenabled %d create %s %s %s %s\n",
                       usdt_provider_add_probe(NULL, nd), usdt_provider_add_probe(np, NULL),
                       usdt_provider_remove_probe(NULL, nd),
                       usdt_provider_remove_probe(np, NULL),
                       usdt_provider_enable(NULL), usdt_provider_disable(NULL),
                       usdt_provider_dof(NULL, &dof, &size), usdt_provider_dof(np, NULL, &size),
                       usdt_provider_dof(np, &dof, NULL),
                       usdt_provider_path(NULL) ? "set" : "null",
                       usdt_is_enabled(NULL),
                       usdt_create_provider(NULL, "m") ? "set" : "null",
                       usdt_create_provider("p", NULL) ? "set" : "null",
                       usdt_create_probe(NULL, "n", 0, NULL) ? "set" : "null",
                       usdt_create_probe("f", NULL, 0, NULL) ? "set" : "null");
                usdt_fire_probe(NULL, 3, NULL);
                usdt_probe_release(NULL);
                usdt_provider_free(NULL);
                usdt_error(NULL, USDT_ERROR_MALLOC);
                usdt_error(np, USDT_ERROR_NOPROBES);
                usdt_error(np, (usdt_error_t)99);       /* no such template: ignored */
                printf("errstr %s\n", usdt_errstr(np));
                usdt_probe_release(nd);
                usdt_probe_release(nd);
                usdt_provider_free(np);
        } else if (strcmp(cmd, "failat") == 0 && ntok == 2) {
                if (usdt_test_failat == NULL) {
                        printf("error no failure injection in this build\n");
                } else {
                        usdt_test_failat(atol(tok[1]));
                        printf("ok\n");
                }
        } else if (strcmp(cmd, "failcalls") == 0) {
                printf("calls %ld\n", usdt_test_calls ? usdt_test_calls() : -1L);
        } else if (strcmp(cmd, "arch") == 0) {
#if defined(__x86_64__)
                printf("arch x86_64\n");
#elif defined(__i386__)
                printf("arch i386\n");
#elif defined(__aarch64__)
                printf("arch aarch64\n");
#endif
        } else if (strcmp(cmd, "pid") == 0) {
                printf("pid %d\n", (int)getpid());
        } else if (strcmp(cmd, "sleep") == 0 && ntok == 2) {
                sleep_ms(atol(tok[1]));
                printf("ok\n");
        } else if (strcmp(cmd, "echo") == 0) {
                printf("%s\n", ntok > 1 ? tok[1] : "");
        } else if (strcmp(cmd, "quit") == 0) {
                exit(0);
        } else if (strcmp(cmd, "setenv") == 0 && ntok == 3) {
                /* what the library reads at the next enable (USDT_SDT_DIR) */
                if (setenv(tok[1], tok[2], 1) == 0)
                        printf("ok\n");
                else
                        printf("error %s\n", strerror(errno));
        } else if (strcmp(cmd, "unsetenv") == 0 && ntok == 2) {
                if (unsetenv(tok[1]) == 0)
                        printf("ok\n");
                else
                        printf("error %s\n", strerror(errno));
        } else {
                printf("unknown command %s\n", cmd);
        }
}

int
main(void)
{
        char *line = NULL;
        size_t cap = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        while (getline(&line, &cap, stdin) > 0) {
                char *tok[MAX_TOKENS], *save = NULL, *t;
                int ntok = 0;

                for (t = strtok_r(line, " \t\r\n", &save); t && ntok < MAX_TOKENS;
                     t = strtok_r(NULL, " \t\r\n", &save))
                        tok[ntok++] = t;
                if (ntok > 0)
                        command(tok, ntok);
        }
        free(line);
        return 0;
}
