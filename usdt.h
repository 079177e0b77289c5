/*
 * libusdt: create USDT probes at run time.
 *
 * A program describes a provider and its probes while it runs; enabling the
 * provider makes them real tracepoints that DTrace (through a DOF document
 * given to the kernel helper device) and the Linux tracers (bpftrace, bcc,
 * perf, gdb, SystemTap: through SystemTap SDT notes in a small ELF object
 * the process maps) can list, enable and read.
 *
 * Everything above the line "Additions" is the original libusdt API,
 * byte for byte in its structs: bindings read these fields directly.
 *
 * Thread-safety: the control functions (create, add, remove, enable,
 * disable, free, release, dof, path) are serialised inside the library and
 * may be called from any thread, on the same or on different providers.
 * usdt_is_enabled and usdt_fire_probe take no lock and may be called from
 * any number of threads at once, also while another thread disables or
 * frees the provider (see usdt_fire_probe).
 */
#ifndef USDT_H
#define USDT_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most arguments a probe can have. Linux tracers read at most 12 of them
 * (the SDT note names the first 12); the DOF document carries all 32. */
#define USDT_ARG_MAX 32

/* Index into the table of error templates; see usdt_error. */
typedef enum usdt_error {
        USDT_ERROR_MALLOC = 0,          /* failed to allocate memory */
        USDT_ERROR_VALLOC,              /* failed to allocate page-aligned memory */
        USDT_ERROR_NOPROBES,            /* no probes defined */
        USDT_ERROR_LOADDOF,             /* failed to load DOF: %s */
        USDT_ERROR_ALREADYENABLED,      /* provider is already enabled */
        USDT_ERROR_UNLOADDOF,           /* failed to unload DOF: %s */
        USDT_ERROR_DUP_PROBE,           /* probe named %s:%s:%s:%s already exists */
        USDT_ERROR_REMOVE_PROBE         /* failed to remove probe %s:%s:%s:%s */
} usdt_error_t;

/*
 * The run-time handle of an enabled probe (probedef->probe). Valid from
 * usdt_provider_enable to usdt_provider_disable; the library owns it.
 * isenabled_addr is a function that returns 1 while a tracer has the probe
 * enabled and 0 otherwise; probe_addr is the probe's code. Call
 * usdt_is_enabled and usdt_fire_probe rather than these directly.
 */
typedef struct usdt_probe {
        int (*isenabled_addr)(void);
        void *probe_addr;
} usdt_probe_t;

/*
 * usdt_is_enabled: 1 while at least one tracer has this probe enabled,
 * else 0 (never any other value). NULL gives 0. Costs two loads and a
 * branch when no tracer is attached (x86_64 with glibc 2.35+; elsewhere
 * two atomic operations more). Lock-free and wait-free; safe while another
 * thread disables or frees the provider.
 */
int usdt_is_enabled(usdt_probe_t *probe);

/*
 * usdt_fire_probe: fire the probe with argc arguments, each one machine
 * word: an integer cast to void *, or a char * for a string argument (the
 * tracer copies it during the call; the caller keeps ownership and may free
 * it right after). NULL probe: does nothing. argc above USDT_ARG_MAX is
 * cut to USDT_ARG_MAX; argv NULL fires with no arguments. Fewer arguments
 * than the probe declares: a tracer reading the others reads whatever is
 * in their registers or stack slots. A probe nobody traces costs what
 * usdt_is_enabled costs: the fire returns without entering the probe's
 * code, so guarding it is only worth it to skip computing arguments.
 * Lock-free; safe while another thread disables or frees the provider
 * (the probe's code is not unmapped while a fire may be inside it).
 */
void usdt_fire_probe(usdt_probe_t *probe, size_t argc, void **argv);

/* A probe definition: what usdt_create_probe makes. */
typedef struct usdt_probedef {
        const char *name;               /* probe name (owned copy) */
        const char *function;           /* function name (owned copy) */
        size_t argc;                    /* number of arguments */
        char *types[USDT_ARG_MAX];      /* argument types, [0, argc) set */
        struct usdt_probe *probe;       /* handle while enabled, else NULL */
        struct usdt_probedef *next;     /* next in the provider's list */
        int refcnt;                     /* references: caller + provider */
} usdt_probedef_t;

/*
 * usdt_create_probe: a new probe definition with copies of func, name and
 * the first argc type strings. A type starting with "char *" is a string;
 * anything else (including NULL entries, published to DTrace as "long") a
 * signed integer. types may be NULL when argc is 0. The definition starts with two references, the
 * caller's and the one reserved for the provider it is added to; both
 * usdt_probe_release and usdt_provider_free drop one, the second frees.
 * Returns NULL with errno EINVAL when func or name is NULL, argc exceeds
 * USDT_ARG_MAX or types is NULL with argc > 0; ENOMEM when out of memory;
 * usdt_errstr(NULL) then says which, on this thread. Names are checked
 * when the probe is added to a provider.
 */
usdt_probedef_t *usdt_create_probe(const char *func, const char *name,
                                   size_t argc, const char **types);

/* usdt_probe_release: drop the caller's reference (see above). NULL: no-op. */
void usdt_probe_release(usdt_probedef_t *probedef);

/* A provider: what usdt_create_provider makes. */
typedef struct usdt_provider {
        const char *name;               /* provider name (owned copy) */
        const char *module;             /* module name (owned copy) */
        usdt_probedef_t *probedefs;     /* probes, in the order added */
        char *error;                    /* last error text, or NULL */
        int enabled;                    /* 1 between enable and disable */
        void *file;                     /* library-private; NULL when disabled */
} usdt_provider_t;

/*
 * usdt_create_provider: a new, disabled provider with copies of name and
 * module. The provider name must be 1 to 53 characters of [A-Za-z0-9_-]
 * (53: DTrace appends the process id and keeps names under 64; a digit
 * may come first, as DTrace allows); the module 1 to 63 characters of
 * [A-Za-z0-9_.-], not starting with '.' or '-'. Returns NULL and sets errno (EINVAL for a bad name,
 * ENOMEM); usdt_errstr(NULL) then says why, on this thread.
 * Free it with usdt_provider_free (plain free() leaks what it holds).
 */
usdt_provider_t *usdt_create_provider(const char *name, const char *module);

/*
 * usdt_provider_add_probe: append probedef to the provider. Returns 0, or
 * -1 with usdt_errstr set: a probe with the same function and name exists,
 * or one whose name publishes alike ("a-b" and "a__b", one probe to a
 * Linux tracer) ("probe named P:M:F:N already exists"), probedef is NULL
 * ("usdt_provider_add_probe: probedef is NULL"), or a name or type is
 * refused ("probe P:M:F:N: probe name \"...\" is refused: ...") (probe names: 1 to 63 characters of [A-Za-z0-9_-],
 * a digit first too ("32probe"); function names: 0 to 127 characters of
 * [A-Za-z0-9_.$-]; types: under 128 bytes). A '-' in a probe or provider
 * name is published to Linux tracers as "__" (route-start is route__start
 * to bpftrace), the DTrace convention read backwards. Adding to an enabled
 * provider is allowed; the probe appears at the next disable and enable.
 */
int usdt_provider_add_probe(usdt_provider_t *provider, usdt_probedef_t *probedef);

/*
 * usdt_provider_remove_probe: unlink the probe with probedef's function and
 * name. Frees nothing; the provider's reference stays with the probedef
 * (release it twice to free it). An enabled provider keeps publishing it
 * until the next disable. Returns 0, or -1: "no probes defined",
 * "usdt_provider_remove_probe: probedef is NULL", "failed to remove probe
 * P:M:F:N" (names quoted: bytes outside printable ASCII as \xNN).
 */
int usdt_provider_remove_probe(usdt_provider_t *provider, usdt_probedef_t *probedef);

/*
 * usdt_provider_enable: publish every probe and fill each probedef->probe.
 * Backends: USDT_BACKEND=sdt|dof|auto (default auto: on Linux SDT notes,
 * plus DOF when /dev/dtrace/helper exists; elsewhere DOF). A missing tracer
 * is not an error. Already enabled: returns 0, sets "provider is already
 * enabled" and keeps the same handles. Returns -1 with usdt_errstr set on
 * failure, and then the provider is disabled, as it was, and nothing is
 * leaked: "no probes defined"; "failed to load DOF: DEVICE: CAUSE";
 * "USDT_BACKEND must be sdt, dof or auto"; "USDT_SDT_DIR=DIR: ..." (cannot
 * create it, not private, on a noexec mount, cannot write); "cannot make
 * the SDT memory file for provider P: CAUSE"; "cannot load the SDT object
 * PATH: CAUSE"; "failed to allocate memory".
 */
int usdt_provider_enable(usdt_provider_t *provider);

/*
 * usdt_provider_disable: withdraw the probes; every probedef->probe becomes
 * NULL, also for probes removed since the enable. A handle kept from
 * before fires nothing afterwards. The published object is kept, so
 * enabling the same probes again reuses it (a tracer that stayed attached
 * keeps counting); at most 16 disabled providers keep theirs (the least
 * recently disabled gives its up first), and with DTrace nothing is kept
 * (a new enable never re-uses a stub address). Returns 0 (also when not enabled),
 * or -1 with "failed to unload DOF: ..." and the provider still enabled.
 * (All the provider functions return -1 for a NULL provider.)
 */
int usdt_provider_disable(usdt_provider_t *provider);

/*
 * usdt_provider_free: disable if enabled, drop the provider's reference on
 * each listed probedef, free the provider and its error text; its object
 * is gone from what tracers see when this returns. NULL: no-op.
 */
void usdt_provider_free(usdt_provider_t *provider);

/*
 * usdt_error: set the provider's error text from the template for error and
 * the arguments it takes. The text belongs to the provider and stays valid
 * until its next error or its free.
 */
void usdt_error(usdt_provider_t *provider, usdt_error_t error, ...);

/*
 * usdt_errstr: the provider's last error text, or NULL if none; a later
 * success does not clear it. With NULL: why the last usdt_create_provider
 * or usdt_create_probe on this thread failed ("" after a success). The
 * text is replaced (and the old one freed) by the provider's next error:
 * do not read it while another thread may fail a call on that provider.
 */
char *usdt_errstr(usdt_provider_t *provider);

/* ---- Additions (not in the original libusdt) ---- */

/*
 * usdt_provider_dof: the DOF document for the provider's current probes,
 * exactly as the DOF backend would submit it, in a malloc'ed buffer the
 * caller frees. Works on every host, enabled or not (stubs are built if
 * needed and kept with the provider). Returns 0 with *dof and *size set,
 * or -1 with usdt_errstr set: "no probes defined", "usdt_provider_dof:
 * dof and size must not be NULL", "failed to allocate memory".
 */
int usdt_provider_dof(usdt_provider_t *provider, void **dof, size_t *size);

/*
 * usdt_provider_path: the path under which Linux tracers find the enabled
 * provider's SDT object (for "usdt:PATH:provider:probe"), owned by the
 * provider and valid until it is disabled; NULL when not enabled or not
 * published as SDT. In memory-file mode it is /proc/PID/fd/N; with
 * USDT_SDT_DIR set, a file in that directory.
 */
const char *usdt_provider_path(usdt_provider_t *provider);

/*
 * ---- The low-level API for language VMs (Linux SDT only) ----
 *
 * A JIT writes probe sites straight into the code it generates: the
 * arguments are already in registers, an untraced site costs an inline
 * test of a semaphore, and bpftrace, gdb, bcc and libbpf trace it like a
 * compiled-in probe. See usdt_jit(3). Each arena is thread-safe (its own
 * lock). Rules for generated code: a published site is immutable (free the
 * arena to retire code: one arena per code generation); at a 5-byte nop
 * site the kernel's optimised uprobe path executes a call, which writes 8
 * bytes below the stack pointer, so keep nothing live there (or use a
 * 1-byte nop site); tracers read the notes when they start, so sites
 * published later need a new tracer. At most 1024 probes (provider, name)
 * per arena.
 */
typedef struct usdt_jit usdt_jit_t;

/* An executable arena of at least code_bytes, backed by a memory file the
 * tracers can read, named after name (as a provider name). NULL on failure
 * (errno set; usdt_jit_errstr(NULL) says why). */
usdt_jit_t *usdt_jit_create(const char *name, size_t code_bytes);
/* The arena as code runs from it; *bytes gets its size. */
void *usdt_jit_code(usdt_jit_t *jit, size_t *bytes);
/* Copy bytes of machine code to dst, an address inside the arena. 0 or -1. */
int usdt_jit_write(usdt_jit_t *jit, void *dst, const void *src, size_t bytes);
/* The semaphore of probe provider:name, valid until usdt_jit_free; non-zero
 * while a tracer is attached. Generated code may test it inline. */
const volatile unsigned short *usdt_jit_semaphore(usdt_jit_t *jit, const char *provider, const char *name);
/* Declare a probe site at an address inside the arena, with where each
 * argument is at that instruction, in SDT operand syntax ("-8@%rdi 8@%rsi").
 * Takes effect at the next publish. 0 or -1. */
int usdt_jit_add_site(usdt_jit_t *jit, const char *provider, const char *name, const void *site, const char *args);
/* Make the declared sites visible to tracers that start afterwards. 0 or -1. */
int usdt_jit_publish(usdt_jit_t *jit);
/* Where tracers find the object (as usdt_provider_path). */
const char *usdt_jit_path(usdt_jit_t *jit);
/* Why the last call on this arena failed. With NULL: why the last
 * usdt_jit_create on this thread failed ("" after a success). */
const char *usdt_jit_errstr(usdt_jit_t *jit);
/* Unmap the arena and release everything. */
void usdt_jit_free(usdt_jit_t *jit);

#ifdef __cplusplus
}
#endif

#endif /* USDT_H */
