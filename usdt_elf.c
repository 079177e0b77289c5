/*
 * Linux: publish a provider as SystemTap SDT probes.
 *
 * Quick tour. Linux has no registry of user-space probes: bpftrace, bcc,
 * perf and gdb read /proc/PID/maps (gdb: the dynamic loader's list),
 * open every mapped ELF object, and read its .note.stapsdt notes. Each
 * note names a provider, a probe, the probe's address, the address of
 * .stapsdt.base (to undo prelinking) and of a 2-byte semaphore, and where
 * each argument sits at the probe site ("-8@%rdi"). A tracer turns the
 * addresses into file offsets through the PT_LOAD headers and asks the
 * kernel for a uprobe at (inode, offset), with the semaphore as the
 * uprobe's reference counter: the kernel adds 1 to it in every process
 * that maps the file while the uprobe exists. So usdt_is_enabled is a read
 * of the semaphore.
 *
 * Uprobes need a file, so at enable this file writes a small ELF shared
 * object holding the provider's stubs, one note per probe, the semaphores,
 * a build-id and symbols, and dlopen()s it:
 *
 *   PT_LOAD R    ELF and program headers, .note.gnu.build-id, .hash,
 *                .dynsym, .dynstr, .stapsdt.base
 *   PT_LOAD R X  .text: the stubs (usdt_probe.c), page-aligned
 *   PT_LOAD R W  .dynamic, .probes: the semaphores (file-backed, so the
 *                kernel's reference counter lands in this mapping)
 *   not loaded   .note.stapsdt, .shstrtab, section headers
 *
 * Virtual addresses equal file offsets. Nothing needs relocating: the
 * stubs reach their semaphores %rip-relative (i386: call/pop).
 *
 * Where the object lives:
 * - default: a memory file (memfd_create), kept open for the object's
 *   life and loaded as /proc/PID/fd/N (not /proc/self/...: gdb -p would
 *   open its own descriptor N). Nothing on disk, ever; survives /tmp
 *   mounted noexec. perf cannot use it (it needs a real path).
 * - USDT_SDT_DIR=DIR: a file DIR/usdt-PID-START-SEQ-PROVIDER.so, in a
 *   directory that must be ours and mode 0700. perf works too. Removed
 *   when the object can no longer be used, and at exit; what a killed
 *   process left is removed by the next enable in that directory.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
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

#if USDT_ELF_CLASS == 2
typedef Elf64_Ehdr Ehdr;
typedef Elf64_Phdr Phdr;
typedef Elf64_Shdr Shdr;
typedef Elf64_Sym Sym;
typedef Elf64_Dyn Dyn;
typedef Elf64_Addr Addr;
#define SYM_INFO(b, t) ELF64_ST_INFO(b, t)
#else
typedef Elf32_Ehdr Ehdr;
typedef Elf32_Phdr Phdr;
typedef Elf32_Shdr Shdr;
typedef Elf32_Sym Sym;
typedef Elf32_Dyn Dyn;
typedef Elf32_Addr Addr;
#define SYM_INFO(b, t) ELF32_ST_INFO(b, t)
#endif

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U        /* Linux 6.3: executable memfd, asked for explicitly */
#endif

#define PAGE            4096
#define NPHDR           6
#define BUILD_ID_BYTES  20

enum { SEC_NULL, SEC_BUILDID, SEC_HASH, SEC_DYNSYM, SEC_DYNSTR, SEC_BASE,
       SEC_TEXT, SEC_DYNAMIC, SEC_PROBES, SEC_NOTES, SEC_SHSTRTAB, NSEC };

static const char shstrtab[] =
        "\0.note.gnu.build-id\0.hash\0.dynsym\0.dynstr\0.stapsdt.base\0"
        ".text\0.dynamic\0.probes\0.note.stapsdt\0.shstrtab";

/* Where everything goes in the file (= its virtual address). */
struct layout {
        size_t nprobes, nsyms;
        size_t off[NSEC], size[NSEC];
        size_t r_end, x_end, rw_end, shdr_off, total;
};

static size_t
align_up(size_t value, size_t align)
{
        return (value + align - 1) / align * align;
}

/* Index of a section's name in shstrtab. */
static uint32_t
shname(const char *name)
{
        const char *p = shstrtab + 1;

        while (strcmp(p, name) != 0)
                p += strlen(p) + 1;
        return (uint32_t)(p - shstrtab);
}

/* Append name with every '-' as "__" (DTrace's route-start is route__start). */
static void
buf_add_sdt_name(struct usdt_buf *buf, const char *name)
{
        for (; *name != '\0'; name++)
                usdt_buf_append(buf, *name == '-' ? "__" : name, *name == '-' ? 2 : 1);
}

static void
build_strings(const usdt_provider_t *provider, struct usdt_buf *dynstr,
              uint32_t *soname)
{
        const usdt_probedef_t *pd;

        usdt_buf_append(dynstr, "", 1);
        *soname = (uint32_t)dynstr->size;
        usdt_buf_append(dynstr, "libusdt-", 8);
        usdt_buf_add_string(dynstr, provider->name);
        for (pd = provider->probedefs; pd != NULL; pd = pd->next) {
                /* provider_function_name, and its _semaphore */
                usdt_buf_append(dynstr, provider->name, strlen(provider->name));
                usdt_buf_append(dynstr, "_", 1);
                usdt_buf_append(dynstr, pd->function, strlen(pd->function));
                usdt_buf_append(dynstr, "_", 1);
                usdt_buf_add_string(dynstr, pd->name);
                buf_add_sdt_name(dynstr, provider->name);
                usdt_buf_append(dynstr, "_", 1);
                buf_add_sdt_name(dynstr, pd->name);
                usdt_buf_add_string(dynstr, "_semaphore");
        }
}

/*
 * The .note.stapsdt notes, one per probe, appended to notes. The three
 * addresses at the start of each descriptor are left zero: they depend on
 * the layout, which depends on the notes' size, so notes_set_addresses
 * fills them in once the layout is known.
 */
static void
build_notes(const usdt_provider_t *provider, struct usdt_buf *notes)
{
        static const char zeros[sizeof(Addr) * 3 + 4];
        const usdt_probedef_t *pd;
        size_t k;

        for (pd = provider->probedefs; pd != NULL; pd = pd->next) {
                uint32_t hdr[3] = { 8, 0, 3 };  /* namesz, descsz, NT_STAPSDT */
                size_t hdr_at = notes->size, desc_at;
                char width = (char)('0' + USDT_WORD_BYTES);
                uint32_t descsz;

                usdt_buf_append(notes, hdr, sizeof(hdr));
                usdt_buf_append(notes, "stapsdt", 8);
                desc_at = notes->size;
                usdt_buf_append(notes, zeros, sizeof(Addr) * 3);
                buf_add_sdt_name(notes, provider->name);
                usdt_buf_append(notes, "", 1);
                buf_add_sdt_name(notes, pd->name);
                usdt_buf_append(notes, "", 1);
                for (k = 0; k < pd->argc && k < USDT_SDT_ARG_MAX; k++) {
                        const char *where = usdt_sdt_arg_location(k);
                        if (k > 0)
                                usdt_buf_append(notes, " ", 1);
                        /* "-8@%rdi": a signed integer; "8@%rsi": a string pointer */
                        if (!usdt_type_is_string(pd->types[k]))
                                usdt_buf_append(notes, "-", 1);
                        usdt_buf_append(notes, &width, 1);
                        usdt_buf_append(notes, "@", 1);
                        usdt_buf_append(notes, where, strlen(where));
                }
                usdt_buf_append(notes, "", 1);
                descsz = (uint32_t)(notes->size - desc_at);
                usdt_buf_append(notes, zeros, align_up(descsz, 4) - descsz);
                if (!notes->failed)
                        memcpy(notes->data + hdr_at + 4, &descsz, sizeof(descsz));
        }
}

/* Fill in each note's probe, base and semaphore addresses. */
static void
notes_set_addresses(unsigned char *notes, size_t bytes, const struct layout *l)
{
        size_t at = 0, i = 0;

        while (at + 12 <= bytes) {
                uint32_t hdr[3];
                Addr addr[3];

                memcpy(hdr, notes + at, sizeof(hdr));
                addr[0] = (Addr)(l->off[SEC_TEXT] + i * USDT_STUB_SIZE + USDT_STUB_SDT_SITE);
                addr[1] = (Addr)l->off[SEC_BASE];
                addr[2] = (Addr)(l->off[SEC_PROBES] + i * 2);
                memcpy(notes + at + 12 + align_up(hdr[0], 4), addr, sizeof(addr));
                at += 12 + align_up(hdr[0], 4) + align_up(hdr[1], 4);
                i++;
        }
}

static void
layout_compute(struct layout *l, size_t nprobes, size_t dynstr_bytes,
               size_t notes_bytes)
{
        size_t at;

        memset(l, 0, sizeof(*l));
        l->nprobes = nprobes;
        l->nsyms = 1 + 2 * nprobes;
        at = sizeof(Ehdr) + NPHDR * sizeof(Phdr);
        l->off[SEC_BUILDID] = at = align_up(at, 4);
        l->size[SEC_BUILDID] = 16 + BUILD_ID_BYTES;
        l->off[SEC_HASH] = at = align_up(at + l->size[SEC_BUILDID], 8);
        l->size[SEC_HASH] = 4 * (2 + 1 + l->nsyms);
        l->off[SEC_DYNSYM] = at = align_up(at + l->size[SEC_HASH], 8);
        l->size[SEC_DYNSYM] = l->nsyms * sizeof(Sym);
        l->off[SEC_DYNSTR] = at = at + l->size[SEC_DYNSYM];
        l->size[SEC_DYNSTR] = dynstr_bytes;
        l->off[SEC_BASE] = at = at + dynstr_bytes;
        l->size[SEC_BASE] = 1;
        l->r_end = at + 1;
        l->off[SEC_TEXT] = at = align_up(l->r_end, PAGE);
        l->size[SEC_TEXT] = nprobes * USDT_STUB_SIZE;
        l->x_end = at + l->size[SEC_TEXT];
        l->off[SEC_DYNAMIC] = at = align_up(l->x_end, PAGE);
        l->size[SEC_DYNAMIC] = 7 * sizeof(Dyn);
        l->off[SEC_PROBES] = at = at + l->size[SEC_DYNAMIC];
        l->size[SEC_PROBES] = 2 * nprobes;
        l->rw_end = at + l->size[SEC_PROBES];
        l->off[SEC_NOTES] = at = align_up(l->rw_end, 4);
        l->size[SEC_NOTES] = notes_bytes;
        l->off[SEC_SHSTRTAB] = at = at + notes_bytes;
        l->size[SEC_SHSTRTAB] = sizeof(shstrtab);
        l->shdr_off = align_up(at + sizeof(shstrtab), 8);
        l->total = l->shdr_off + NSEC * sizeof(Shdr);
}

static void
put_phdr(Phdr *ph, uint32_t type, uint32_t flags, size_t off, size_t size,
         size_t align)
{
        ph->p_type = type;
        ph->p_flags = flags;
        ph->p_offset = off;
        ph->p_vaddr = ph->p_paddr = off;
        ph->p_filesz = ph->p_memsz = size;
        ph->p_align = align;
}

/*
 * The build-id: 20 bytes of a hash of the whole image (the id bytes still
 * zero), so identical objects get identical ids, as a linker's would.
 * Three 64-bit multiply-xor lanes over 8 bytes at a time, one pass.
 */
static void
build_id(const unsigned char *img, size_t bytes, unsigned char id[BUILD_ID_BYTES])
{
        uint64_t lane[3] = { 0xcbf29ce484222325ULL, 0x9e3779b97f4a7c15ULL,
                             0xc2b2ae3d27d4eb4fULL };
        unsigned char out[24];
        size_t at, k;

        for (at = 0; at < bytes; at += 8) {
                uint64_t word = 0;
                memcpy(&word, img + at, bytes - at < 8 ? bytes - at : 8);
                lane[0] = (lane[0] ^ word) * 0x100000001b3ULL;
                lane[1] = (lane[1] ^ (word >> 29 | word << 35)) * 0xff51afd7ed558ccdULL;
                lane[2] = (lane[2] + word) * 0xc4ceb9fe1a85ec53ULL;
        }
        for (k = 0; k < 3; k++) {
                uint64_t h = lane[k] ^ bytes;
                h ^= h >> 33;
                h *= 0xff51afd7ed558ccdULL;
                h ^= h >> 33;
                memcpy(out + 8 * k, &h, 8);
        }
        memcpy(id, out, BUILD_ID_BYTES);
}

static void
write_headers(unsigned char *img, const struct layout *l)
{
        Ehdr *eh = (Ehdr *)img;
        Phdr *ph = (Phdr *)(img + sizeof(Ehdr));
        Shdr *sh = (Shdr *)(img + l->shdr_off);
        static const struct { int sec; uint32_t type, flags, align, entsize; } secs[] = {
                { SEC_BUILDID, SHT_NOTE, SHF_ALLOC, 4, 0 },
                { SEC_HASH, SHT_HASH, SHF_ALLOC, 8, 4 },
                { SEC_DYNSYM, SHT_DYNSYM, SHF_ALLOC, 8, sizeof(Sym) },
                { SEC_DYNSTR, SHT_STRTAB, SHF_ALLOC, 1, 0 },
                { SEC_BASE, SHT_PROGBITS, SHF_ALLOC, 1, 0 },
                { SEC_TEXT, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 16, 0 },
                { SEC_DYNAMIC, SHT_DYNAMIC, SHF_ALLOC | SHF_WRITE, 8, sizeof(Dyn) },
                { SEC_PROBES, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 2, 0 },
                { SEC_NOTES, SHT_NOTE, 0, 4, 0 },
                { SEC_SHSTRTAB, SHT_STRTAB, 0, 1, 0 },
        };
        static const char *const names[NSEC] = { "", ".note.gnu.build-id",
                ".hash", ".dynsym", ".dynstr", ".stapsdt.base", ".text",
                ".dynamic", ".probes", ".note.stapsdt", ".shstrtab" };
        size_t i;

        memcpy(eh->e_ident, ELFMAG, SELFMAG);
        eh->e_ident[EI_CLASS] = USDT_ELF_CLASS;
        eh->e_ident[EI_DATA] = ELFDATA2LSB;
        eh->e_ident[EI_VERSION] = EV_CURRENT;
        eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
        eh->e_type = ET_DYN;
        eh->e_machine = USDT_ELF_MACHINE;
        eh->e_version = EV_CURRENT;
        eh->e_phoff = sizeof(Ehdr);
        eh->e_shoff = l->shdr_off;
        eh->e_ehsize = sizeof(Ehdr);
        eh->e_phentsize = sizeof(Phdr);
        eh->e_phnum = NPHDR;
        eh->e_shentsize = sizeof(Shdr);
        eh->e_shnum = NSEC;
        eh->e_shstrndx = SEC_SHSTRTAB;

        put_phdr(&ph[0], PT_LOAD, PF_R, 0, l->r_end, PAGE);
        put_phdr(&ph[1], PT_LOAD, PF_R | PF_X, l->off[SEC_TEXT], l->size[SEC_TEXT], PAGE);
        put_phdr(&ph[2], PT_LOAD, PF_R | PF_W, l->off[SEC_DYNAMIC],
                 l->rw_end - l->off[SEC_DYNAMIC], PAGE);
        put_phdr(&ph[3], PT_DYNAMIC, PF_R | PF_W, l->off[SEC_DYNAMIC],
                 l->size[SEC_DYNAMIC], 8);
        put_phdr(&ph[4], PT_NOTE, PF_R, l->off[SEC_BUILDID], l->size[SEC_BUILDID], 4);
        put_phdr(&ph[5], PT_GNU_STACK, PF_R | PF_W, 0, 0, 16);

        for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
                Shdr *s = &sh[secs[i].sec];
                s->sh_name = shname(names[secs[i].sec]);
                s->sh_type = secs[i].type;
                s->sh_flags = secs[i].flags;
                s->sh_addr = (secs[i].flags & SHF_ALLOC) ? l->off[secs[i].sec] : 0;
                s->sh_offset = l->off[secs[i].sec];
                s->sh_size = l->size[secs[i].sec];
                s->sh_addralign = secs[i].align;
                s->sh_entsize = secs[i].entsize;
        }
        sh[SEC_HASH].sh_link = SEC_DYNSYM;
        sh[SEC_DYNSYM].sh_link = SEC_DYNSTR;
        sh[SEC_DYNSYM].sh_info = 1;             /* first global symbol */
        sh[SEC_DYNAMIC].sh_link = SEC_DYNSTR;
}

/*
 * The whole image: returns a calloc'ed buffer of *bytes bytes, or NULL.
 */
static unsigned char *
image_build(const usdt_provider_t *provider, size_t nprobes, size_t *bytes,
            struct layout *l)
{
        struct usdt_buf dynstr = { 0 }, notes = { 0 };
        const usdt_probedef_t *pd;
        unsigned char *img = NULL;
        uint32_t soname, name_at, *hash;
        Sym *sym;
        Dyn *dyn;
        size_t i;

        build_strings(provider, &dynstr, &soname);
        build_notes(provider, &notes);
        if (dynstr.failed || notes.failed)
                goto out;
        layout_compute(l, nprobes, dynstr.size, notes.size);
        notes_set_addresses(notes.data, notes.size, l);
        img = calloc(1, l->total);
        if (img == NULL)
                goto out;
        write_headers(img, l);
        memcpy(img + l->off[SEC_DYNSTR], dynstr.data, dynstr.size);
        memcpy(img + l->off[SEC_NOTES], notes.data, notes.size);
        memcpy(img + l->off[SEC_SHSTRTAB], shstrtab, sizeof(shstrtab));

        /* symbols: null, then a function and a semaphore per probe */
        sym = (Sym *)(img + l->off[SEC_DYNSYM]);
        name_at = soname + (uint32_t)strlen((char *)img + l->off[SEC_DYNSTR] + soname) + 1;
        for (pd = provider->probedefs, i = 0; pd != NULL; pd = pd->next, i++) {
                Sym *fn = &sym[1 + 2 * i], *sem = &sym[2 + 2 * i];
                fn->st_name = name_at;
                name_at += (uint32_t)strlen((char *)img + l->off[SEC_DYNSTR] + name_at) + 1;
                fn->st_info = SYM_INFO(STB_GLOBAL, STT_FUNC);
                fn->st_shndx = SEC_TEXT;
                fn->st_value = (Addr)(l->off[SEC_TEXT] + i * USDT_STUB_SIZE);
                fn->st_size = USDT_STUB_SIZE;
                sem->st_name = name_at;
                name_at += (uint32_t)strlen((char *)img + l->off[SEC_DYNSTR] + name_at) + 1;
                sem->st_info = SYM_INFO(STB_GLOBAL, STT_OBJECT);
                sem->st_shndx = SEC_PROBES;
                sem->st_value = (Addr)(l->off[SEC_PROBES] + 2 * i);
                sem->st_size = 2;
                usdt_stub_write(img + l->off[SEC_TEXT] + i * USDT_STUB_SIZE,
                                l->off[SEC_TEXT] + i * USDT_STUB_SIZE,
                                l->off[SEC_PROBES] + 2 * i);
        }

        /* .hash: one bucket chaining every symbol; enough for dlsym */
        hash = (uint32_t *)(img + l->off[SEC_HASH]);
        hash[0] = 1;
        hash[1] = (uint32_t)l->nsyms;
        hash[2] = l->nsyms > 1 ? 1 : 0;
        for (i = 1; i < l->nsyms; i++)
                hash[3 + i] = i + 1 < l->nsyms ? (uint32_t)(i + 1) : 0;

        dyn = (Dyn *)(img + l->off[SEC_DYNAMIC]);
        dyn[0].d_tag = DT_HASH;   dyn[0].d_un.d_ptr = l->off[SEC_HASH];
        dyn[1].d_tag = DT_STRTAB; dyn[1].d_un.d_ptr = l->off[SEC_DYNSTR];
        dyn[2].d_tag = DT_SYMTAB; dyn[2].d_un.d_ptr = l->off[SEC_DYNSYM];
        dyn[3].d_tag = DT_STRSZ;  dyn[3].d_un.d_val = l->size[SEC_DYNSTR];
        dyn[4].d_tag = DT_SYMENT; dyn[4].d_un.d_val = sizeof(Sym);
        dyn[5].d_tag = DT_SONAME; dyn[5].d_un.d_val = soname;
        dyn[6].d_tag = DT_NULL;

        {
                uint32_t note_hdr[3] = { 4, BUILD_ID_BYTES, NT_GNU_BUILD_ID };
                memcpy(img + l->off[SEC_BUILDID], note_hdr, sizeof(note_hdr));
                memcpy(img + l->off[SEC_BUILDID] + 12, "GNU", 4);
                build_id(img, l->total, img + l->off[SEC_BUILDID] + 16);
        }
        *bytes = l->total;
out:
        usdt_buf_free(&dynstr);
        usdt_buf_free(&notes);
        return img;
}

/* --- Where the object lives --------------------------------------------- */

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
dir_open(usdt_provider_t *provider, const char *dir, char **real)
{
        struct stat st;
        struct statvfs vfs;
        int fd;

        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                usdt_set_error(provider, "USDT_SDT_DIR=%s: cannot create it: %s",
                               dir, strerror(errno));
                return -1;
        }
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                usdt_set_error(provider, "USDT_SDT_DIR=%s: %s", dir, strerror(errno));
                return -1;
        }
        if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
                usdt_set_error(provider, "USDT_SDT_DIR=%s: must be a directory owned by "
                               "this user with mode 0700 (others must not write there)", dir);
                close(fd);
                return -1;
        }
        if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {
                usdt_set_error(provider, "USDT_SDT_DIR=%s: its file system is mounted "
                               "noexec, so the probes cannot be mapped; unset "
                               "USDT_SDT_DIR to use a memory file", dir);
                close(fd);
                return -1;
        }
        *real = realpath(dir, NULL);
        if (*real == NULL) {
                usdt_set_error(provider, "USDT_SDT_DIR=%s: %s", dir, strerror(errno));
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
store_in_dir(struct usdt_object *obj, usdt_provider_t *provider,
             const char *dir, const unsigned char *img, size_t bytes)
{
        static unsigned long sequence;
        char name[128], *real = NULL;
        int dirfd, fd;

        dirfd = dir_open(provider, dir, &real);
        if (dirfd < 0)
                return -1;
        dir_reap(dirfd);
        snprintf(name, sizeof(name), "usdt-%d-%llu-%lu-%s.so", (int)getpid(),
                 process_start_time(getpid()), ++sequence, provider->name);
        fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, img, bytes) != 0 || fchmod(fd, 0400) != 0) {
                usdt_set_error(provider, "USDT_SDT_DIR=%s: cannot write %s: %s",
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
                usdt_error(provider, USDT_ERROR_MALLOC);
                return -1;
        }
        close(dirfd);
        obj->fd = fd;
        obj->creator = getpid();
        return 0;
}

/* Write the image into a sealed memory file; sets obj->fd, obj->path. */
static int
store_in_memfd(struct usdt_object *obj, usdt_provider_t *provider,
               const unsigned char *img, size_t bytes)
{
        char name[80];
        int fd;

        snprintf(name, sizeof(name), "libusdt:%s", provider->name);
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (fd < 0 && errno == EINVAL)  /* kernels before 6.3 */
                fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || write_all(fd, img, bytes) != 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                  F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
                usdt_set_error(provider, "cannot make the SDT memory file for "
                               "provider %s: %s", provider->name, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        obj->fd = fd;
        if (asprintf(&obj->path, "/proc/%d/fd/%d", (int)getpid(), fd) < 0) {
                obj->path = NULL;
                close(fd);
                obj->fd = -1;
                usdt_error(provider, USDT_ERROR_MALLOC);
                return -1;
        }
        return 0;
}

/*
 * Build, store and load the provider's SDT object. Sets obj->stubs and
 * obj->semaphores. Returns 0, or -1 with the error set and nothing left.
 */
int
usdt_sdt_publish(struct usdt_object *obj, usdt_provider_t *provider)
{
        const char *dir = getenv("USDT_SDT_DIR");
        struct link_map *map = NULL;
        struct layout l;
        unsigned char *img;
        size_t bytes = 0;
        int rc;

        img = image_build(provider, obj->nprobes, &bytes, &l);
        if (img == NULL) {
                usdt_error(provider, USDT_ERROR_MALLOC);
                return -1;
        }
        if (dir != NULL && dir[0] != '\0')
                rc = store_in_dir(obj, provider, dir, img, bytes);
        else
                rc = store_in_memfd(obj, provider, img, bytes);
        free(img);
        if (rc != 0)
                return -1;
        /* RTLD_LOCAL: its symbols never interpose on anyone's */
        obj->dl = dlopen(obj->path, RTLD_NOW | RTLD_LOCAL);
        if (obj->dl == NULL || dlinfo(obj->dl, RTLD_DI_LINKMAP, &map) != 0) {
                const char *why = dlerror();
                usdt_set_error(provider, "cannot load the SDT object %s: %s",
                               obj->path, why ? why : "unknown error");
                usdt_sdt_retire(obj);
                usdt_sdt_destroy(obj);
                return -1;
        }
        obj->stubs = (unsigned char *)map->l_addr + l.off[SEC_TEXT];
        obj->semaphores = (volatile uint16_t *)(map->l_addr + l.off[SEC_PROBES]);
        return 0;
}

/* The object will not be published again: remove its file now. */
void
usdt_sdt_retire(struct usdt_object *obj)
{
        if (obj->file != NULL && obj->creator == getpid())
                unlink(obj->file);
        free(obj->file);
        obj->file = NULL;
}

/* Unmap and close; only once no fire can be inside (usdt.c). */
void
usdt_sdt_destroy(struct usdt_object *obj)
{
        if (obj->dl != NULL)
                dlclose(obj->dl);
        obj->dl = NULL;
        if (obj->fd >= 0)
                close(obj->fd);
        obj->fd = -1;
        free(obj->path);
        obj->path = NULL;
        free(obj->file);
        obj->file = NULL;
}
