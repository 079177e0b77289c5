/*
 * The DOF document, laid out: header, section headers, section data in
 * format order, each section aligned to its own alignment. And its load
 * into (and unload from) the kernel through the DTrace helper device, per
 * host: illumos, FreeBSD 10 and 11+, macOS, Linux (Oracle's DTrace).
 * Only the Linux path runs here (there is no DTrace kernel on the CI
 * host); the others follow each system's headers as documented in
 * ../shared/reference/libusdt-spec.md section 3.8.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Section type, alignment, entry size, in section index order. */
static const struct {
        uint32_t type, align, entsize;
} dof_layout[USDT_DOF_NSECS] = {
        { USDT_DOF_SECT_STRTAB,   1, 0 },
        { USDT_DOF_SECT_PROBES,   8, sizeof(struct usdt_dof_probe) },
        { USDT_DOF_SECT_PRARGS,   1, 1 },
        { USDT_DOF_SECT_PROFFS,   4, 4 },
        { USDT_DOF_SECT_PRENOFFS, 4, 4 },
        { USDT_DOF_SECT_PROVIDER, 4, 0 },
};

/* Where each system's helper device is, and the largest DOF it takes. */
#if defined(__APPLE__)
#define DOF_DEVICE      "/dev/dtracehelper"
#define DOF_MAXSIZE     (384UL * 1024)
#elif defined(__FreeBSD__)
#define DOF_DEVICE      "/dev/dtrace/helper"
#define DOF_MAXSIZE     (8UL * 1024 * 1024)
#elif defined(__sun)
#define DOF_DEVICE      "/dev/dtrace/helper"
#define DOF_MAXSIZE     (256UL * 1024)
#else
#define DOF_DEVICE      "/dev/dtrace/helper"
#define DOF_MAXSIZE     (256UL * 1024 * 1024)
#endif

static size_t
align_up(size_t value, size_t align)
{
        return (value + align - 1) / align * align;
}

/* Total document size for these sections, and each section's offset. */
static size_t
dof_offsets(const struct usdt_dof_sections *s, uint64_t offsets[USDT_DOF_NSECS])
{
        size_t at = sizeof(struct usdt_dof_hdr) +
                    USDT_DOF_NSECS * sizeof(struct usdt_dof_sec);
        size_t i;

        for (i = 0; i < USDT_DOF_NSECS; i++) {
                at = align_up(at, dof_layout[i].align);
                offsets[i] = at;
                at += s->sec[i].size;
        }
        return at;
}

static void
dof_write(unsigned char *out, const struct usdt_dof_sections *s,
          const uint64_t offsets[USDT_DOF_NSECS], size_t total)
{
        struct usdt_dof_hdr hdr;
        size_t i;
        uint16_t probe = 1;

        memset(out, 0, total);
        memset(&hdr, 0, sizeof(hdr));
        memcpy(hdr.ident, USDT_DOF_MAG, 4);
        hdr.ident[4] = sizeof(void *) == 8 ? 2 : 1;             /* LP64 : ILP32 */
        hdr.ident[5] = *(unsigned char *)&probe == 1 ? 1 : 2;   /* LSB : MSB */
#if defined(__APPLE__)
        hdr.ident[6] = USDT_DOF_VERSION_APPLE;
#else
        hdr.ident[6] = USDT_DOF_VERSION;
#endif
        hdr.ident[7] = 2;                       /* DIF version */
        hdr.ident[8] = 8;                       /* DIF integer registers */
        hdr.ident[9] = 8;                       /* DIF tuple registers */
        hdr.hdrsize = sizeof(struct usdt_dof_hdr);
        hdr.secsize = sizeof(struct usdt_dof_sec);
        hdr.secnum = USDT_DOF_NSECS;
        hdr.secoff = sizeof(struct usdt_dof_hdr);
        hdr.loadsz = hdr.filesz = total;
        memcpy(out, &hdr, sizeof(hdr));

        for (i = 0; i < USDT_DOF_NSECS; i++) {
                struct usdt_dof_sec sec;

                sec.type = dof_layout[i].type;
                sec.align = dof_layout[i].align;
                sec.flags = USDT_DOF_SECF_LOAD;
                sec.entsize = dof_layout[i].entsize;
                sec.offset = offsets[i];
                sec.size = s->sec[i].size;
                memcpy(out + hdr.secoff + i * sizeof(sec), &sec, sizeof(sec));
                memcpy(out + offsets[i], s->sec[i].data, s->sec[i].size);
        }
}

/*
 * Build the document for obj's stubs into a new buffer. load_addr is
 * where it will sit when loaded (macOS offsets are relative to it); NULL
 * means the returned buffer itself. Returns 0, or -1 with the error set.
 */
int
usdt_dof_build(const struct usdt_object *obj, const void *load_addr,
               void **dof, size_t *size, struct usdt_err *err)
{
        struct usdt_dof_sections s;
        uint64_t offsets[USDT_DOF_NSECS];
        unsigned char *out = NULL;
        size_t total;

        if (usdt_dof_sections_build(&s, obj, 0) != 0)
                goto nomem;
        total = dof_offsets(&s, offsets);
        if (posix_memalign((void **)&out, 8, total) != 0) {
                usdt_dof_sections_free(&s);
                goto nomem;
        }
#if defined(__APPLE__)
        /* the offsets depend on where the document is */
        usdt_dof_sections_free(&s);
        if (usdt_dof_sections_build(&s, obj,
                                    (uintptr_t)(load_addr ? load_addr : out)) != 0) {
                free(out);
                goto nomem;
        }
#else
        (void)load_addr;
#endif
        dof_write(out, &s, offsets, total);
        usdt_dof_sections_free(&s);
        *dof = out;
        *size = total;
        return 0;
nomem:
        usdt_err_set(err, "failed to allocate memory");
        return -1;
}

int
usdt_dof_device_present(void)
{
        return access(DOF_DEVICE, F_OK) == 0;
}

/* --- The helper device, per system -------------------------------------- */

struct dof_helper {
        char dofhp_mod[64];             /* DTRACE_MODNAMELEN */
        uint64_t dofhp_addr;
        uint64_t dofhp_dof;
#if defined(__FreeBSD__) && __FreeBSD__ >= 11
        pid_t dofhp_pid;
        int dofhp_gen;
#endif
};

#if defined(__APPLE__)
struct dof_ioctl_data {
        uint64_t dofiod_count;
        struct dof_helper dofiod_helpers[1];
};
#define HELPER_ADD      _IOW('h', 4, uint64_t)
#define HELPER_REMOVE   _IO('h', 2)
#elif defined(__FreeBSD__)
#define HELPER_ADD      _IOWR('z', 3, struct dof_helper)
#define HELPER_REMOVE   _IOW('z', 2, int)
#elif defined(__sun)
#define HELPER_ADD      (('d' << 24) | ('t' << 16) | ('h' << 8) | 3)
#define HELPER_REMOVE   (('d' << 24) | ('t' << 16) | ('h' << 8) | 2)
#else   /* Linux: Oracle's DTrace (kernel module, or dtprobed over CUSE) */
#define HELPER_ADD      _IOW(0xd8, 3, struct dof_helper)
#define HELPER_REMOVE   _IOW(0xd8, 2, int)
#endif

/* Hand the document to the kernel; returns the generation, or -1. */
static int
helper_add(int fd, struct dof_helper *helper)
{
#if defined(__APPLE__)
        struct dof_ioctl_data data;
        uint64_t data_addr = (uint64_t)(uintptr_t)&data;

        data.dofiod_count = 1;
        data.dofiod_helpers[0] = *helper;
        if (ioctl(fd, HELPER_ADD, &data_addr) == -1)
                return -1;
        return (int)data.dofiod_helpers[0].dofhp_dof;
#elif defined(__FreeBSD__) && __FreeBSD__ >= 11
        helper->dofhp_pid = getpid();
        if (ioctl(fd, HELPER_ADD, helper) == -1)
                return -1;
        return helper->dofhp_gen;
#else
        return ioctl(fd, HELPER_ADD, helper);
#endif
}

static int
helper_remove(int fd, int gen)
{
#if defined(__FreeBSD__)
        return ioctl(fd, HELPER_REMOVE, &gen);
#else
        return ioctl(fd, HELPER_REMOVE, gen);
#endif
}

int
usdt_dof_load(struct usdt_object *obj, struct usdt_err *err)
{
        struct dof_helper helper;
        char cause[256];
        void *dof;
        size_t size;
        int fd, gen;

        if (usdt_dof_build(obj, NULL, &dof, &size, err) != 0)
                return -1;
        if (size >= DOF_MAXSIZE) {
                snprintf(cause, sizeof(cause),
                         "document of %zu bytes, the kernel takes under %lu: %s",
                         size, (unsigned long)DOF_MAXSIZE, strerror(E2BIG));
                goto fail;
        }
        fd = open(DOF_DEVICE, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                snprintf(cause, sizeof(cause), "%s: %s", DOF_DEVICE, strerror(errno));
                goto fail;
        }
        memset(&helper, 0, sizeof(helper));
        strncpy(helper.dofhp_mod, obj->set.module, sizeof(helper.dofhp_mod) - 1);
        helper.dofhp_addr = helper.dofhp_dof = (uint64_t)(uintptr_t)dof;
        obj->dof_ever_loaded = 1;       /* the kernel has seen these addresses */
        gen = helper_add(fd, &helper);
        if (gen < 0) {
                snprintf(cause, sizeof(cause), "%s: %s", DOF_DEVICE, strerror(errno));
                close(fd);
                goto fail;
        }
        close(fd);
        free(obj->dof_buffer);
        obj->dof_buffer = dof;          /* macOS may read it lazily: keep it */
        obj->dof_gen = gen;
        obj->dof_loaded = 1;
        return 0;
fail:
        free(dof);
        usdt_err_set(err, "failed to load DOF: %s", cause);
        return -1;
}

int
usdt_dof_unload(struct usdt_object *obj, struct usdt_err *err)
{
        char cause[256];
        int fd;

        fd = open(DOF_DEVICE, O_RDWR | O_CLOEXEC);
        if (fd < 0 || helper_remove(fd, obj->dof_gen) == -1) {
                snprintf(cause, sizeof(cause), "%s: %s", DOF_DEVICE, strerror(errno));
                if (fd >= 0)
                        close(fd);
                usdt_err_set(err, "failed to unload DOF: %s", cause);
                return -1;
        }
        close(fd);
        free(obj->dof_buffer);
        obj->dof_buffer = NULL;
        obj->dof_loaded = 0;
        return 0;
}
