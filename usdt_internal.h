/*
 * What the library's .c files share. Nothing here is public.
 *
 * The objects, and who owns what:
 *
 *   usdt_provider_t  (public head of struct usdt_provider_impl)
 *     the probe list (public), the error text, and the private state: the
 *     object currently published or kept for re-use, and a DOF preview.
 *   usdt_probedef_t  (public head of struct usdt_probedef_impl)
 *     names and types, and a pointer to its handle.
 *   struct usdt_handle (what probedef->probe points at while enabled)
 *     reference counted: the probedef holds one reference, every object
 *     that publishes the probe holds one. So a handle outlives a disable
 *     (a stale handle fires nothing) and an object can always look at the
 *     handles of readers that may still be inside it.
 *   struct usdt_probe_set (one snapshot of a provider's probes)
 *     taken once at enable, under the lock; everything below the API layer
 *     (the ELF writer, the DOF builder, the re-use key) reads it, never the
 *     provider, so the loader can run without the lock.
 *   struct usdt_object (one published set of stubs)
 *     the stub memory (an SDT ELF object, or anonymous pages for DOF only),
 *     the DOF registration, the semaphores. Owned by its provider while
 *     published or kept; then retired, and destroyed once no reader can be
 *     inside it (usdt_object.c).
 *
 * Calls go one way: usdt.c and usdt_enable.c (API; usdt_lock.c, the lock)
 * -> usdt_object.c (lifecycle) -> the backends (usdt_elf.c,
 * usdt_sdt_load.c, usdt_sdt_dir.c, usdt_dof*.c) -> usdt_probe.c and
 * usdt_dof.c (stubs, buffers). A backend returns -1 and writes its message
 * into the buffer it was given (struct usdt_err); only the API files set a
 * provider's error. usdt_fire.c (the hot path) calls nothing.
 */
#ifndef USDT_INTERNAL_H
#define USDT_INTERNAL_H

#include "usdt.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The public API keeps default visibility; everything else is hidden
 * (-fvisibility=hidden), so nothing internal clashes with a binding's. */
#define USDT_EXPORT __attribute__((visibility("default")))

/* --- Architecture: the stub template (usdt_tracepoints_<arch>.s) --------
 *
 * Every probe gets USDT_STUB_SIZE bytes copied from the template, with one
 * 32-bit field patched: the displacement of its semaphore. Offsets inside
 * one stub (see the .s file for the instructions):
 *   0                     is-enabled function: 1 if the semaphore is non-zero,
 *                         else 0, or 1 when DTrace's is-enabled site fires
 *   USDT_STUB_DOF_ENABLED the DTrace is-enabled site (a nop)
 *   USDT_STUB_ENTRY       probe_addr: what usdt_probe_args enters (calls)
 *   USDT_STUB_SDT_SITE    the uprobe site: a 5-byte nop, never across a page
 *   USDT_STUB_DOF_SITE    the DTrace probe site: a nop sled
 *   USDT_STUB_ZERO        two zero bytes: the semaphore of a stub that has none
 * aarch64 differs in two ways: the semaphore's address is patched into an
 * adrp/ldrh pair (USDT_STUB_SEM_ADRP, USDT_STUB_SEM_LDRH), and the uprobe
 * site is a 4-byte nop; there are no DTrace sites.
 */
#define USDT_STUB_SIZE 48

#if defined(__x86_64__)
#define USDT_STUB_DOF_ENABLED   17
#define USDT_STUB_ENTRY         33
#define USDT_STUB_SDT_SITE      37
#define USDT_STUB_DOF_SITE      25
#define USDT_STUB_ZERO          19
#define USDT_STUB_SEM_FIELD     9    /* where the 32-bit displacement goes */
#define USDT_STUB_SEM_BASE      14   /* the displacement counts from here */
#define USDT_ELF_CLASS          2    /* ELFCLASS64 */
#define USDT_ELF_MACHINE        62   /* EM_X86_64 */
#define USDT_WORD_BYTES         8
#define USDT_RSEQ_FASTPATH      1    /* the .s file has rseq fast readers */
#define USDT_TRAP_BYTE          0xcc /* int3 */
#elif defined(__i386__)
#define USDT_STUB_DOF_ENABLED   18
#define USDT_STUB_ENTRY         32
#define USDT_STUB_SDT_SITE      33
#define USDT_STUB_DOF_SITE      38
#define USDT_STUB_ZERO          28
#define USDT_STUB_SEM_FIELD     9
#define USDT_STUB_SEM_BASE      5
#define USDT_ELF_CLASS          1    /* ELFCLASS32 */
#define USDT_ELF_MACHINE        3    /* EM_386 */
#define USDT_WORD_BYTES         4
#define USDT_TRAP_BYTE          0xcc
#elif defined(__aarch64__) && !defined(__AARCH64EB__)
/* No DTrace sites: DOF is refused here (usdt_enable.c), these two only keep a
 * usdt_provider_dof document well-formed (they name the SDT nop). */
#define USDT_STUB_DOF_ENABLED   0
#define USDT_STUB_DOF_SITE      36
#define USDT_STUB_ENTRY         32   /* bti c: entered by blr */
#define USDT_STUB_SDT_SITE      36   /* nop: 4 bytes, like every instruction */
#define USDT_STUB_ZERO          24
#define USDT_STUB_SEM_ADRP      4    /* adrp x0, the semaphore's 4 KiB page */
#define USDT_STUB_SEM_LDRH      8    /* ldrh w0, [x0, its offset in the page] */
#define USDT_ELF_CLASS          2    /* ELFCLASS64 */
#define USDT_ELF_MACHINE        183  /* EM_AARCH64 */
#define USDT_WORD_BYTES         8
#define USDT_TRAP_BYTE          0x00 /* 00000000 is udf #0: every word traps */
#define USDT_INSN_ALIGN         4    /* where an instruction may start */
#define USDT_NO_DOF             "aarch64"  /* USDT_BACKEND=dof is refused */
#else
#error "libusdt: this architecture has no stub template yet (x86_64, i386, aarch64)"
#endif

#ifndef USDT_INSN_ALIGN
#define USDT_INSN_ALIGN         1
#endif

/* The SDT argument location strings, per architecture (usdt_probe.c). */
#define USDT_SDT_ARG_MAX 12
const char *usdt_sdt_arg_location(size_t index);

/* From the .s file. */
extern const unsigned char usdt_stub_template[];
extern const unsigned char usdt_stub_template_end[];
extern void usdt_tracepoint_noop(void);
/* Put argv where a compiled-in probe's arguments are, enter the stub at
 * probe_addr, and its DTrace site too when dtrace is non-zero. */
void usdt_probe_args(void *probe_addr, size_t argc, void **argv, int dtrace);

/* --- Errors from below the API layer ----------------------------------- */

/* A lower layer that fails writes why here; the API layer copies it into the
 * provider's error. */
struct usdt_err {
        char text[640];
};
void usdt_err_set(struct usdt_err *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));          /* usdt_dof.c */

/* --- Handles and probe definitions ------------------------------------- */

struct usdt_handle {
        usdt_probe_t pub;               /* must be first: probedef->probe */
        const volatile uint16_t *semaphore;  /* the SDT semaphore, or a zero */
        int call_isenabled;             /* 1: DOF stub must be asked too */
        int inflight;                   /* counted readers inside now (atomic) */
        int refcnt;                     /* probedef + objects (under the lock) */
        usdt_probedef_t *owner;         /* its probedef, NULL once freed */
};

struct usdt_probedef_impl {
        usdt_probedef_t pub;            /* must be first */
        struct usdt_handle *handle;     /* allocated with the probedef */
        usdt_probedef_t *index_next;    /* in its provider's name index */
        int listed;                     /* in a provider's list */
};

#define USDT_HANDLE(pd) (((struct usdt_probedef_impl *)(pd))->handle)

void usdt_handle_reset(struct usdt_handle *h);      /* usdt_object.c */
void usdt_handle_put(struct usdt_handle *h);
int usdt_type_is_string(const char *type);          /* usdt_names.c */

/* --- The hot path (usdt_fire.c, usdt_tracepoints_<arch>.s) -------------- */

extern long usdt_rseq_tls;
void usdt_fire_init(void);
int usdt_fire_fence(void);
void usdt_fire_atfork_child(void);
int usdt_is_enabled_slow(usdt_probe_t *probe);
void usdt_fire_probe_slow(usdt_probe_t *probe, size_t argc, void **argv);

/* --- The probe set: one snapshot of a provider's probes ------------------ */

struct usdt_set_probe {
        const char *function;           /* these point into the set's key */
        const char *name;
        const char *types;              /* argc strings, one after another,
                                           as DOF publishes them ("long" for
                                           a NULL type) */
        uint32_t argc;
        uint32_t string_args;           /* bit k: argument k is a string */
        struct usdt_handle *handle;     /* one reference */
};

struct usdt_probe_set {
        char *provider;                 /* names of the provider */
        char *module;
        size_t nprobes;
        struct usdt_set_probe *probes;
        char *key;                      /* the probe set as bytes: equal keys, */
        size_t key_bytes;               /* equal stubs, notes and DOF */
};

int usdt_probe_set_take(struct usdt_probe_set *set, const usdt_provider_t *provider);
void usdt_probe_set_free(struct usdt_probe_set *set);  /* usdt_object.c */

/* --- Published objects -------------------------------------------------- */

enum usdt_backend {
        USDT_BACKEND_SDT = 1,
        USDT_BACKEND_DOF = 2
};

struct usdt_object {
        struct usdt_probe_set set;      /* what it publishes */
        unsigned char *stubs;           /* stub i at stubs + i * USDT_STUB_SIZE */
        volatile uint16_t *semaphores;  /* SDT only, else NULL */
        int backends;                   /* what it was built for */
        struct usdt_provider_impl *owner;  /* whose object it is; NULL once retired */

        /* storage: anonymous pages (DOF only) or an SDT object */
        void *anon;
        size_t anon_bytes;
        void *dl;                       /* dlopen handle of the SDT object */
        uintptr_t load_base;            /* where it is mapped, */
        size_t load_bytes;              /* page-rounded */
        int fd;                         /* its memory file or file, or -1 */
        dev_t fd_dev;                   /* what fd was when we opened it: */
        ino_t fd_ino;                   /* closed only while it still is */
        char *path;                     /* what dlopen loaded */
        char *file;                     /* file mode: the file to unlink */
        pid_t creator;                  /* only the creator unlinks it */

        /* DOF registration */
        int dof_loaded;
        int dof_ever_loaded;            /* its stub addresses are never re-used */
        int dof_gen;
        void *dof_buffer;               /* kept while loaded (macOS reads it) */

        /* live objects (prev, next); the graveyard and the list of objects
         * to unload after the lock is dropped (next only) */
        struct usdt_object *prev;
        struct usdt_object *next;
        /* kept objects: disabled providers', least recently disabled first */
        struct usdt_object *kept_prev;
        struct usdt_object *kept_next;
        int kept;
};

struct usdt_provider_impl {
        usdt_provider_t pub;            /* must be first */
        struct usdt_object *object;     /* published, or kept for re-use */
        struct usdt_object *preview;    /* stubs for usdt_provider_dof */
        usdt_probedef_t *tail;          /* last of pub.probedefs */
        usdt_probedef_t **index;        /* (function, name) -> probedef */
        size_t index_buckets;           /* a power of 2, or 0 */
        size_t count;                   /* probes listed */
        int busy;                       /* an enable is loading its object */
        struct usdt_provider_impl *busy_next;  /* usdt_lock.c's list of those */
};

#define USDT_IMPL(p) ((struct usdt_provider_impl *)(p))

/* usdt_lock.c: the library's one lock */
void usdt_lock(void);
void usdt_unlock(void);
void usdt_provider_wait_idle(struct usdt_provider_impl *impl);
struct usdt_object *usdt_object_create_unlocked(struct usdt_provider_impl *impl,
                                                struct usdt_probe_set *set,
                                                int backends, struct usdt_err *err);

/* usdt.c */
void usdt_set_error(usdt_provider_t *provider, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* usdt_enable.c (and usdt_probe_set_take above) */
void usdt_provider_unpublish(struct usdt_provider_impl *impl);

/*
 * errno: a public call that succeeds leaves it as the caller had it (the
 * library's own probing, such as access() on the DTrace device, must not
 * show through). Each public function saves it on entry (ERRNO_SAVE) and
 * puts it back on success (ERRNO_KEEP).
 */
#define ERRNO_SAVE()    int saved_errno = errno
#define ERRNO_KEEP()    (errno = saved_errno)

/* usdt_names.c: what names are accepted; each returns NULL or the reason */
const char *usdt_provider_check(char *reason, size_t size, const char *name,
                                const char *module);
const char *usdt_probedef_check(char *reason, size_t size,
                                const usdt_probedef_t *pd);
const char *usdt_probe_name_check(char *reason, size_t size, const char *name);
const char *usdt_name_quote(char *buf, size_t size, const char *name);
size_t usdt_name_publish_char(unsigned char c, char out[4]);
char *usdt_name_publish(char *out, size_t size, const char *name);
int usdt_names_publish_alike(const char *a, const char *b);
uint32_t usdt_name_publish_hash(uint32_t hash, const char *name);

/*
 * usdt_object.c: the life of objects. All under the lock, except
 * usdt_object_create, which runs the loader and so must run without it,
 * and usdt_object_unload_pending, which runs after the lock is dropped.
 */
#define USDT_KEPT_MAX 16        /* disabled providers' objects kept for re-use */
struct usdt_object *usdt_object_create(struct usdt_probe_set *set, int backends,
                                       struct usdt_err *err);
void usdt_object_link(struct usdt_object *obj, struct usdt_provider_impl *owner);
void usdt_object_publish(struct usdt_object *obj);
void usdt_object_withdraw(struct usdt_object *obj);
void usdt_object_keep(struct usdt_object *obj);
void usdt_object_unkeep(struct usdt_object *obj);
void usdt_object_retire(struct usdt_object *obj);
void usdt_object_reap(void);
void usdt_object_atfork_child(void);
struct usdt_object *usdt_object_take_unload(void);
void usdt_object_unload(struct usdt_object *list);

/* usdt_probe.c: the stub bytes, and stubs in anonymous memory; what this
 * architecture's SDT operands and probe-site instructions look like */
const char *usdt_sdt_args_check(char *reason, size_t size, const char *args);
size_t usdt_site_insn_bytes(const unsigned char *site, size_t room);
void usdt_stub_write(unsigned char *dst, uintptr_t stub_addr,
                     uintptr_t semaphore_addr);
int usdt_stubs_anon_create(struct usdt_object *obj, struct usdt_err *err);
void usdt_stubs_anon_destroy(struct usdt_object *obj);
size_t usdt_page_bytes(void);
size_t usdt_page_round(size_t bytes);

/* usdt_elf.c: the SDT object's image. NULL when out of memory. */
struct usdt_buf;
struct usdt_elf_spec {
        const struct usdt_probe_set *set;  /* a provider's stubs, symbols and
                                              notes; NULL for a JIT arena: */
        const char *name;               /* soname libusdt-NAME */
        size_t arena_bytes;             /* JIT: the text (a page multiple) */
        size_t nsemaphores;             /* JIT: room for this many */
        uint64_t id_salt;               /* mixed into the build-id */
};
struct usdt_elf_info {
        size_t bytes;                   /* the whole image */
        size_t text_offset, text_bytes; /* offsets = addresses from the base */
        size_t semaphores_offset;
        size_t base_offset;             /* .stapsdt.base */
        size_t notes_offset;            /* the notes: the file's last bytes */
        size_t notes_size_at;           /* where the notes' sh_size is */
        size_t load_bytes;              /* what the loader maps, page-rounded */
};
unsigned char *usdt_elf_build(const struct usdt_elf_spec *spec,
                              struct usdt_elf_info *info,
                              void *(*place)(void *ctx, size_t bytes), void *ctx);
unsigned char *usdt_elf_image(const struct usdt_probe_set *set,
                              void *(*place)(void *ctx, size_t bytes), void *ctx,
                              struct usdt_elf_info *info);
void usdt_elf_note(struct usdt_buf *notes, const char *provider, const char *name,
                   const char *args, uintptr_t site, uintptr_t base,
                   uintptr_t semaphore);

/* usdt_sdt_dir.c: file mode, a file in a private directory */
struct usdt_sdt_place {
        const char *dir;        /* the private directory itself */
        int chosen;             /* 1: USDT_SDT_DIR ("USDT_SDT_DIR=DIR: ...") */
        int made;               /* we created it in this attempt */
};
int usdt_sdt_store_in_dir(struct usdt_object *obj, struct usdt_err *err,
                          struct usdt_sdt_place *pl, const unsigned char *img,
                          size_t bytes);
void usdt_sdt_place_unmake(struct usdt_sdt_place *pl);

/* usdt_sdt_load.c: where the image lives, and loading it */
int usdt_sdt_load(struct usdt_object *obj, struct usdt_err *err);
void usdt_sdt_unpublish(struct usdt_object *obj);
int usdt_sdt_unload(struct usdt_object *obj);
void usdt_fd_close_if_same(int fd, dev_t dev, ino_t ino);
int usdt_memfd_exec(const char *name, unsigned int flags);
int usdt_write_all_at(int fd, const void *data, size_t bytes, off_t at);

/* --- JIT arenas (usdt_jit.c; the write path in usdt_jit_write.c) ------ */

#define USDT_JIT_PROBES_MAX     1024            /* semaphores per arena */
#define USDT_JIT_CODE_MAX       ((size_t)1 << 30)

struct jit_probe {
        char *provider;
        char *name;
};

struct jit_site {
        size_t probe;                   /* index in probes */
        size_t offset;                  /* in the arena */
        char *args;
        int published;
        size_t insn_bytes;              /* the site's instruction, kept */
        unsigned char insn[16];         /* once published */
};

struct usdt_jit {
        pthread_mutex_t lock;
        char *name;
        pid_t creator;
        int fd;
        dev_t fd_dev;
        ino_t fd_ino;
        char *path;
        void *dl;
        unsigned char *code;            /* the R-X view */
        unsigned char *write_view;      /* the same file pages, RW, shared */
        size_t code_bytes;              /* the arena, a page multiple */
        volatile uint16_t *semaphores;
        struct usdt_elf_info info;
        size_t notes_bytes;             /* published so far */
        struct jit_probe *probes;
        size_t nprobes;
        struct jit_site *sites;
        size_t nsites, sites_capacity;
        char error[512];
};

void usdt_jit_error(usdt_jit_t *jit, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
long usdt_jit_offset(usdt_jit_t *jit, const char *what, const void *addr, size_t bytes);
int usdt_jit_check_process(usdt_jit_t *jit, const char *what);

/* usdt_dof.c: growable byte buffers and the DOF string table */
struct usdt_buf {
        unsigned char *data;
        size_t size;
        size_t capacity;
        int failed;                     /* an allocation failed: data is short */
};
void usdt_buf_reserve(struct usdt_buf *buf, size_t bytes);
void usdt_buf_append(struct usdt_buf *buf, const void *data, size_t bytes);
uint32_t usdt_buf_add_string(struct usdt_buf *strtab, const char *string);
void usdt_buf_free(struct usdt_buf *buf);

/*
 * The DOF format (illumos sys/dtrace.h, written from its documentation):
 * the records libusdt writes, in the host's byte order and sizes.
 */
#define USDT_DOF_MAG            "\177DOF"
#define USDT_DOF_VERSION        2       /* is-enabled offsets need 2 */
#define USDT_DOF_VERSION_APPLE  3       /* xnu accepts only 3 */
#define USDT_DOF_SECT_STRTAB    8
#define USDT_DOF_SECT_PROVIDER  15
#define USDT_DOF_SECT_PROBES    16
#define USDT_DOF_SECT_PRARGS    17
#define USDT_DOF_SECT_PROFFS    18
#define USDT_DOF_SECT_PRENOFFS  26
#define USDT_DOF_SECF_LOAD      1
/* name stability Stable (6), data stability Stable (6), class Common (5):
 * args[] stays usable beyond arg9. The original wrote class 6, which is
 * out of range (the largest class is Common). */
#define USDT_DOF_ATTR           0x06060500u

struct usdt_dof_hdr {
        uint8_t ident[16];              /* magic, model, encoding, versions */
        uint32_t flags;
        uint32_t hdrsize;
        uint32_t secsize;
        uint32_t secnum;
        uint64_t secoff;
        uint64_t loadsz;
        uint64_t filesz;
        uint64_t pad;
};

struct usdt_dof_sec {
        uint32_t type;
        uint32_t align;
        uint32_t flags;
        uint32_t entsize;
        uint64_t offset;
        uint64_t size;
};

struct usdt_dof_probe {
        uint64_t addr;                  /* the stub */
        uint32_t func;                  /* string table indexes */
        uint32_t name;
        uint32_t nargv;
        uint32_t xargv;
        uint32_t argidx;                /* first PRARGS byte */
        uint32_t offidx;                /* first PROFFS entry */
        uint8_t nargc;
        uint8_t xargc;
        uint16_t noffs;
        uint32_t enoffidx;              /* first PRENOFFS entry */
        uint16_t nenoffs;
        uint16_t pad1;
        uint32_t pad2;
};

struct usdt_dof_provider {
        uint32_t strtab;                /* section indexes */
        uint32_t probes;
        uint32_t prargs;
        uint32_t proffs;
        uint32_t name;                  /* string table index */
        uint32_t provattr;
        uint32_t modattr;
        uint32_t funcattr;
        uint32_t nameattr;
        uint32_t argsattr;
        uint32_t prenoffs;
};

/* usdt_dof_sections.c: the six sections of a provider's DOF document */
enum { USDT_DOF_STRTAB, USDT_DOF_PROBES, USDT_DOF_PRARGS, USDT_DOF_PROFFS,
       USDT_DOF_PRENOFFS, USDT_DOF_PROVIDER, USDT_DOF_NSECS };
struct usdt_dof_sections {
        struct usdt_buf sec[USDT_DOF_NSECS];
};
int usdt_dof_sections_build(struct usdt_dof_sections *s,
                            const struct usdt_object *obj,
                            uintptr_t load_addr);
void usdt_dof_sections_free(struct usdt_dof_sections *s);

/* usdt_dof_file.c: the document and the helper device */
int usdt_dof_build(const struct usdt_object *obj, const void *load_addr,
                   void **dof, size_t *size, struct usdt_err *err);
int usdt_dof_load(struct usdt_object *obj, struct usdt_err *err);
int usdt_dof_unload(struct usdt_object *obj, struct usdt_err *err);
int usdt_dof_device_present(void);

#endif /* USDT_INTERNAL_H */
