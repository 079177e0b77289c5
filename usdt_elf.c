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
 * Uprobes need a file, so this file writes the image of a small ELF shared
 * object (usdt_sdt_load.c stores and loads it). For a provider it holds
 * the stubs, one note per probe, the semaphores, a build-id and symbols;
 * for a JIT arena (usdt_jit.c) the arena, room for semaphores, and no note
 * yet:
 *
 *   PT_LOAD R    ELF and program headers, .note.gnu.build-id, .hash,
 *                .dynsym, .dynstr, .stapsdt.base
 *   PT_LOAD R X  .text: the stubs (usdt_probe.c) or the arena, page-aligned,
 *                file size = memory size (uprobes need file pages)
 *   PT_LOAD R W  .dynamic, .probes: the semaphores (file-backed, so the
 *                kernel's reference counter lands in this mapping)
 *   not loaded   .shstrtab, section headers, then .note.stapsdt as the
 *                file's last bytes, so that notes can be appended later
 *                (usdt_jit.c) by writing them at the end and then the
 *                section's new size; nothing loaded depends on their size
 *
 * Each PT_LOAD starts on a page of its own, at the system's page size (4,
 * 16 or 64 KiB on aarch64): the kernel maps segments from page boundaries,
 * and two sharing a page would map over each other.
 *
 * Virtual addresses equal file offsets. Nothing needs relocating: the
 * stubs reach their semaphores %rip-relative (i386: call/pop).
 *
 * The image is built from a probe set (usdt_object.c), never from the
 * provider, and touches no global state: it may run without the lock.
 */
#define _GNU_SOURCE
#include "usdt_internal.h"

#include <elf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define NPHDR           9       /* unused ones are PT_NULL */
#define BUILD_ID_BYTES  20

enum { SEC_NULL, SEC_PROPERTY, SEC_BUILDID, SEC_HASH, SEC_DYNSYM, SEC_DYNSTR,
       SEC_BASE, SEC_EH_FRAME_HDR, SEC_EH_FRAME, SEC_TEXT, SEC_DYNAMIC,
       SEC_PROBES, SEC_SHSTRTAB, SEC_NOTES, NSEC };

static const char shstrtab[] =
        "\0.note.gnu.property\0.note.gnu.build-id\0.hash\0.dynsym\0.dynstr\0"
        ".stapsdt.base\0.eh_frame_hdr\0.eh_frame\0.text\0.dynamic\0.probes\0"
        ".shstrtab\0.note.stapsdt";

/*
 * Unwind information for the stubs: one FDE covers the whole text, because
 * every byte a tracer stops at is in a called leaf function: x86_64: CFA =
 * %rsp + 8, the return address at CFA - 8; aarch64: CFA = sp, the return
 * address in x30. (x86_64's DTrace part, entered by a jump inside
 * usdt_probe_args's frame, is the exception; DTrace walks frame pointers,
 * which that frame keeps.) And the GNU property the objects carry: x86_64
 * IBT and SHSTK (the stubs have endbr64 and return with ret), aarch64 BTI
 * and PAC (bti c at both entries). A JIT arena holds the JIT's code, which
 * need not begin with a landing pad: it is marked SHSTK (x86_64) or PAC
 * (aarch64) only, never IBT or BTI. (Marked BTI, glibc maps the arena with
 * PROT_BTI, and a call into code without "bti c" is SIGILL.)
 */
#if defined(__x86_64__)
#define USDT_CFI 1
#define CFI_SP_REG      7       /* DWARF %rsp */
#define CFI_RA_REG      16      /* DWARF return address column */
#define CFI_CFA_OFFSET  8
#define CFI_RA_RULE     (0x80 | CFI_RA_REG), 1  /* DW_CFA_offset: at CFA - 8 */
#define PROPERTY_TYPE   0xc0000002u             /* GNU_PROPERTY_X86_FEATURE_1_AND */
#define PROPERTY_BITS   3u                      /* IBT | SHSTK */
#define PROPERTY_ARENA  2u                      /* SHSTK */
#elif defined(__aarch64__)
#define USDT_CFI 1
#define CFI_SP_REG      31      /* DWARF sp */
#define CFI_RA_REG      30      /* x30, the link register */
#define CFI_CFA_OFFSET  0
#define CFI_RA_RULE     0x08, CFI_RA_REG        /* DW_CFA_same_value: still in x30 */
#define PROPERTY_TYPE   0xc0000000u             /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
#define PROPERTY_BITS   3u                      /* BTI | PAC */
#define PROPERTY_ARENA  2u                      /* PAC */
#endif
#define CFI_DATA_ALIGN  0x78    /* sleb128 -8 */
#define EH_CIE_BYTES    24
#define EH_FDE_BYTES    24
#define EH_HDR_BYTES    20
#define PROPERTY_BYTES  32

/* Where everything goes in the file (= its virtual address). */
struct layout {
        size_t nsyms;
        size_t off[NSEC], size[NSEC];
        size_t r_end, x_end, rw_end, shdr_off, total;
        size_t page;                    /* LOAD segments' alignment */
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

/* Append name's published form (usdt_name_publish_char). */
static void
buf_add_sdt_name(struct usdt_buf *buf, const char *name)
{
        char form[4];

        for (; *name != '\0'; name++)
                usdt_buf_append(buf, form, usdt_name_publish_char((unsigned char)*name, form));
}

static void
build_strings(const char *name, const struct usdt_probe_set *set,
              struct usdt_buf *dynstr, uint32_t *soname)
{
        size_t i, reserve = 0;

        for (i = 0; set != NULL && i < set->nprobes; i++)   /* at most */
                reserve += 16 + 4 * (strlen(set->provider) + strlen(set->probes[i].name)) +
                           2 * strlen(set->probes[i].function);
        usdt_buf_reserve(dynstr, reserve + 64 + 2 * strlen(name));
        usdt_buf_append(dynstr, "", 1);
        *soname = (uint32_t)dynstr->size;
        usdt_buf_append(dynstr, "libusdt-", 8);
        buf_add_sdt_name(dynstr, name);
        usdt_buf_append(dynstr, "", 1);
        for (i = 0; set != NULL && i < set->nprobes; i++) {
                const struct usdt_set_probe *p = &set->probes[i];
                /* provider_function_name, and its _semaphore */
                buf_add_sdt_name(dynstr, set->provider);
                usdt_buf_append(dynstr, "_", 1);
                buf_add_sdt_name(dynstr, p->function);
                usdt_buf_append(dynstr, "_", 1);
                buf_add_sdt_name(dynstr, p->name);
                usdt_buf_append(dynstr, "", 1);
                buf_add_sdt_name(dynstr, set->provider);
                usdt_buf_append(dynstr, "_", 1);
                buf_add_sdt_name(dynstr, p->name);
                usdt_buf_add_string(dynstr, "_semaphore");
        }
}

/*
 * Append one .note.stapsdt note: the probe's site, the .stapsdt.base and
 * semaphore addresses (as in the object: relative to its load address),
 * provider and probe names as Linux tracers read them, and the argument
 * operands (args, "" for none).
 */
void
usdt_elf_note(struct usdt_buf *notes, const char *provider, const char *name,
              const char *args, uintptr_t site, uintptr_t base, uintptr_t semaphore)
{
        static const char zeros[4];
        uint32_t hdr[3] = { 8, 0, 3 };  /* namesz, descsz, NT_STAPSDT */
        Addr addr[3] = { (Addr)site, (Addr)base, (Addr)semaphore };
        size_t hdr_at = notes->size, desc_at;
        uint32_t descsz;

        usdt_buf_append(notes, hdr, sizeof(hdr));
        usdt_buf_append(notes, "stapsdt", 8);
        desc_at = notes->size;
        usdt_buf_append(notes, addr, sizeof(addr));
        buf_add_sdt_name(notes, provider);
        usdt_buf_append(notes, "", 1);
        buf_add_sdt_name(notes, name);
        usdt_buf_append(notes, "", 1);
        usdt_buf_append(notes, args, strlen(args) + 1);
        descsz = (uint32_t)(notes->size - desc_at);
        usdt_buf_append(notes, zeros, align_up(descsz, 4) - descsz);
        if (!notes->failed)
                memcpy(notes->data + hdr_at + 4, &descsz, sizeof(descsz));
}

/* A provider's notes: one per probe, at its stub's SDT site. */
static void
build_notes(const struct usdt_probe_set *set, const struct layout *l,
            struct usdt_buf *notes)
{
        /* each argument's operand, signed integer ("-8@%rdi") or string
         * pointer ("8@%rsi"), made once; a note's list is copied from them */
        char ops[USDT_SDT_ARG_MAX][2][24], args[USDT_SDT_ARG_MAX * 24];
        size_t op_bytes[USDT_SDT_ARG_MAX][2], i, k, reserve = 0;

        for (k = 0; k < USDT_SDT_ARG_MAX; k++) {
                op_bytes[k][0] = (size_t)snprintf(ops[k][0], sizeof(ops[k][0]), "-%d@%s",
                                                  USDT_WORD_BYTES, usdt_sdt_arg_location(k));
                op_bytes[k][1] = (size_t)snprintf(ops[k][1], sizeof(ops[k][1]), "%d@%s",
                                                  USDT_WORD_BYTES, usdt_sdt_arg_location(k));
        }
        for (i = 0; i < set->nprobes; i++)      /* at most: names doubled, 12 operands */
                reserve += 64 + 2 * (strlen(set->probes[i].name) + strlen(set->provider)) +
                           (set->probes[i].argc ? 12 * 24 : 0);
        usdt_buf_reserve(notes, reserve);
        for (i = 0; i < set->nprobes; i++) {
                const struct usdt_set_probe *p = &set->probes[i];
                size_t used = 0;

                for (k = 0; k < p->argc && k < USDT_SDT_ARG_MAX; k++) {
                        int is_string = (p->string_args >> k) & 1;
                        if (k > 0)
                                args[used++] = ' ';
                        memcpy(args + used, ops[k][is_string], op_bytes[k][is_string]);
                        used += op_bytes[k][is_string];
                }
                args[used] = '\0';
                usdt_elf_note(notes, set->provider, p->name, args,
                              l->off[SEC_TEXT] + i * USDT_STUB_SIZE + USDT_STUB_SDT_SITE,
                              l->off[SEC_BASE], l->off[SEC_PROBES] + i * 2);
        }
}

/* Where everything goes; the notes come last, so nothing depends on them. */
static void
layout_compute(struct layout *l, size_t nsyms, size_t dynstr_bytes,
               size_t text_bytes, size_t nsemaphores, int stubs)
{
        size_t at;

        memset(l, 0, sizeof(*l));
        l->page = usdt_page_bytes();
        l->nsyms = nsyms;
        at = sizeof(Ehdr) + NPHDR * sizeof(Phdr);
        l->off[SEC_PROPERTY] = at = align_up(at, 8);
#ifdef PROPERTY_TYPE
        l->size[SEC_PROPERTY] = PROPERTY_BYTES;
#endif
        at += l->size[SEC_PROPERTY];
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
        at += 1;
        l->off[SEC_EH_FRAME_HDR] = at = align_up(at, 4);
        l->off[SEC_EH_FRAME] = align_up(at + EH_HDR_BYTES, 8);
#ifdef USDT_CFI
        if (stubs) {
                l->size[SEC_EH_FRAME_HDR] = EH_HDR_BYTES;
                l->size[SEC_EH_FRAME] = EH_CIE_BYTES + EH_FDE_BYTES + 4;
                at = l->off[SEC_EH_FRAME] + l->size[SEC_EH_FRAME];
        }
#else
        (void)stubs;
#endif
        l->r_end = at;
        /* each LOAD segment on pages of its own: a kernel maps them from
         * page boundaries, and its pages may be 16 or 64 KiB (aarch64) */
        l->off[SEC_TEXT] = at = align_up(l->r_end, l->page);
        l->size[SEC_TEXT] = text_bytes;
        l->x_end = at + l->size[SEC_TEXT];
        l->off[SEC_DYNAMIC] = at = align_up(l->x_end, l->page);
        l->size[SEC_DYNAMIC] = 7 * sizeof(Dyn);
        l->off[SEC_PROBES] = at = at + l->size[SEC_DYNAMIC];
        l->size[SEC_PROBES] = 2 * nsemaphores;
        l->rw_end = at + l->size[SEC_PROBES];
        l->off[SEC_SHSTRTAB] = at = l->rw_end;
        l->size[SEC_SHSTRTAB] = sizeof(shstrtab);
        l->shdr_off = align_up(at + sizeof(shstrtab), 8);
        l->off[SEC_NOTES] = l->shdr_off + NSEC * sizeof(Shdr);
        l->total = l->off[SEC_NOTES];   /* + the notes */
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
 * zero), so identical objects get identical ids, as a linker's would; a
 * JIT arena, whose content changes after it is loaded, adds a salt of its
 * own so that no two arenas share one.
 * Three 64-bit multiply-xor lanes over 8 bytes at a time, one pass.
 */
static void
build_id(const unsigned char *img, size_t bytes, uint64_t salt,
         unsigned char id[BUILD_ID_BYTES])
{
        uint64_t lane[3] = { 0xcbf29ce484222325ULL ^ salt, 0x9e3779b97f4a7c15ULL,
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
                { SEC_PROPERTY, SHT_NOTE, SHF_ALLOC, 8, 0 },
                { SEC_BUILDID, SHT_NOTE, SHF_ALLOC, 4, 0 },
                { SEC_HASH, SHT_HASH, SHF_ALLOC, 8, 4 },
                { SEC_DYNSYM, SHT_DYNSYM, SHF_ALLOC, 8, sizeof(Sym) },
                { SEC_DYNSTR, SHT_STRTAB, SHF_ALLOC, 1, 0 },
                { SEC_BASE, SHT_PROGBITS, SHF_ALLOC, 1, 0 },
                { SEC_EH_FRAME_HDR, SHT_PROGBITS, SHF_ALLOC, 4, 0 },
                { SEC_EH_FRAME, SHT_PROGBITS, SHF_ALLOC, 8, 0 },
                { SEC_TEXT, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 16, 0 },
                { SEC_DYNAMIC, SHT_DYNAMIC, SHF_ALLOC | SHF_WRITE, 8, sizeof(Dyn) },
                { SEC_PROBES, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 2, 0 },
                { SEC_SHSTRTAB, SHT_STRTAB, 0, 1, 0 },
                { SEC_NOTES, SHT_NOTE, 0, 4, 0 },
        };
        static const char *const names[NSEC] = { "", ".note.gnu.property",
                ".note.gnu.build-id", ".hash", ".dynsym", ".dynstr",
                ".stapsdt.base", ".eh_frame_hdr", ".eh_frame", ".text",
                ".dynamic", ".probes", ".shstrtab", ".note.stapsdt" };
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

        put_phdr(&ph[0], PT_LOAD, PF_R, 0, l->r_end, l->page);
        put_phdr(&ph[1], PT_LOAD, PF_R | PF_X, l->off[SEC_TEXT], l->size[SEC_TEXT], l->page);
        put_phdr(&ph[2], PT_LOAD, PF_R | PF_W, l->off[SEC_DYNAMIC],
                 l->rw_end - l->off[SEC_DYNAMIC], l->page);
        put_phdr(&ph[3], PT_DYNAMIC, PF_R | PF_W, l->off[SEC_DYNAMIC],
                 l->size[SEC_DYNAMIC], 8);
        put_phdr(&ph[4], PT_NOTE, PF_R, l->off[SEC_BUILDID], l->size[SEC_BUILDID], 4);
        put_phdr(&ph[5], PT_GNU_STACK, PF_R | PF_W, 0, 0, 16);
        if (l->size[SEC_PROPERTY] > 0) {
                put_phdr(&ph[6], PT_NOTE, PF_R, l->off[SEC_PROPERTY],
                         l->size[SEC_PROPERTY], 8);
                put_phdr(&ph[7], PT_GNU_PROPERTY, PF_R, l->off[SEC_PROPERTY],
                         l->size[SEC_PROPERTY], 8);
        }
        if (l->size[SEC_EH_FRAME_HDR] > 0)
                put_phdr(&ph[8], PT_GNU_EH_FRAME, PF_R, l->off[SEC_EH_FRAME_HDR],
                         l->size[SEC_EH_FRAME_HDR], 4);

        for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
                Shdr *s = &sh[secs[i].sec];
                if (l->size[secs[i].sec] == 0 && secs[i].sec != SEC_NOTES &&
                    secs[i].sec != SEC_PROBES)
                        continue;       /* not in this object: a null entry */
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
 * The GNU property note (x86_64: IBT and SHSTK, as the stubs are fit for
 * both; a JIT arena without IBT or BTI, see above) and the unwind tables:
 * .eh_frame with one CIE and one FDE covering the text, and .eh_frame_hdr,
 * its binary-search table, which PT_GNU_EH_FRAME points at (where
 * unwinders look first).
 */
static void
write_property_and_unwind(unsigned char *img, const struct layout *l, int arena)
{
        (void)img;              /* i386 has neither */
        (void)arena;
        if (l->size[SEC_PROPERTY] > 0) {
#ifdef PROPERTY_TYPE
                uint32_t note[8] = { 4, 16, 5 /* NT_GNU_PROPERTY_TYPE_0 */, 0,
                                     PROPERTY_TYPE, 4,
                                     arena ? PROPERTY_ARENA : PROPERTY_BITS, 0 };
                memcpy(&note[3], "GNU", 4);
                memcpy(img + l->off[SEC_PROPERTY], note, sizeof(note));
#endif
        }
#ifdef USDT_CFI
        if (l->size[SEC_EH_FRAME] > 0) {
                unsigned char *cie = img + l->off[SEC_EH_FRAME];
                unsigned char *fde = cie + EH_CIE_BYTES;
                unsigned char *hdr = img + l->off[SEC_EH_FRAME_HDR];
                static const unsigned char cie_body[EH_CIE_BYTES - 4] = {
                        0, 0, 0, 0,             /* CIE id */
                        1,                      /* version */
                        'z', 'R', 0,            /* augmentation: FDE encoding given */
                        1,                      /* code alignment */
                        CFI_DATA_ALIGN,         /* data alignment */
                        CFI_RA_REG,             /* return address column */
                        1,                      /* augmentation data: 1 byte */
                        0x1b,                   /* FDEs: pc-relative signed 4-byte */
                        0x0c, CFI_SP_REG, CFI_CFA_OFFSET,   /* DW_CFA_def_cfa */
                        CFI_RA_RULE,            /* where the return address is */
                        0, 0                    /* nops, to the CIE's size */
                };
                uint32_t cie_len = EH_CIE_BYTES - 4, fde_len = EH_FDE_BYTES - 4;
                uint32_t cie_ptr = (uint32_t)(fde + 4 - cie);
                int32_t pc_begin = (int32_t)((int64_t)l->off[SEC_TEXT] -
                                             (int64_t)(l->off[SEC_EH_FRAME] + EH_CIE_BYTES + 8));
                uint32_t pc_range = (uint32_t)l->size[SEC_TEXT];
                int32_t words[4];

                memcpy(cie, &cie_len, 4);
                memcpy(cie + 4, cie_body, sizeof(cie_body));
                memcpy(fde, &fde_len, 4);
                memcpy(fde + 4, &cie_ptr, 4);
                memcpy(fde + 8, &pc_begin, 4);
                memcpy(fde + 12, &pc_range, 4);
                /* fde + 16: augmentation length 0, then nops; after the FDE
                 * the 4-byte zero terminator (the image is zeroed) */

                hdr[0] = 1;             /* version */
                hdr[1] = 0x1b;          /* eh_frame_ptr: pc-relative sdata4 */
                hdr[2] = 0x03;          /* fde_count: udata4 */
                hdr[3] = 0x3b;          /* table: relative to the header, sdata4 */
                words[0] = (int32_t)(l->off[SEC_EH_FRAME] - (l->off[SEC_EH_FRAME_HDR] + 4));
                words[1] = 1;
                words[2] = (int32_t)(l->off[SEC_TEXT] - l->off[SEC_EH_FRAME_HDR]);
                words[3] = (int32_t)(l->off[SEC_EH_FRAME] + EH_CIE_BYTES -
                                     l->off[SEC_EH_FRAME_HDR]);
                memcpy(hdr + 4, words, sizeof(words));
        }
#endif
}

/*
 * The whole image described by spec, in info->bytes bytes of zeroed memory
 * that place(ctx, bytes) gives (NULL place: a calloc'ed buffer, which the
 * caller frees), so that it can be written straight into a memory file.
 * Returns the image, or NULL when out of memory (or place gave none); info
 * says where its parts are (= their addresses relative to where it is
 * loaded).
 */
unsigned char *
usdt_elf_build(const struct usdt_elf_spec *spec, struct usdt_elf_info *info,
               void *(*place)(void *ctx, size_t bytes), void *ctx)
{
        const struct usdt_probe_set *set = spec->set;
        struct usdt_buf dynstr = { 0 }, notes = { 0 };
        struct layout layout, *l = &layout;
        size_t nprobes = set != NULL ? set->nprobes : 0, i;
        unsigned char *img = NULL;
        uint32_t soname, name_at, *hash;
        Sym *sym;
        Dyn *dyn;

        build_strings(spec->name, set, &dynstr, &soname);
        if (set != NULL)
                layout_compute(l, 1 + 2 * nprobes, dynstr.size,
                               nprobes * USDT_STUB_SIZE, nprobes, 1);
        else
                layout_compute(l, 1, dynstr.size, spec->arena_bytes,
                               spec->nsemaphores, 0);
        if (set != NULL)
                build_notes(set, l, &notes);
        if (dynstr.failed || notes.failed)
                goto out;
        l->size[SEC_NOTES] = notes.size;
        l->total = l->off[SEC_NOTES] + notes.size;
        img = place != NULL ? place(ctx, l->total) : calloc(1, l->total);
        if (img == NULL)
                goto out;
        write_headers(img, l);
        write_property_and_unwind(img, l, set == NULL);
        memcpy(img + l->off[SEC_DYNSTR], dynstr.data, dynstr.size);
        if (notes.size > 0)
                memcpy(img + l->off[SEC_NOTES], notes.data, notes.size);
        memcpy(img + l->off[SEC_SHSTRTAB], shstrtab, sizeof(shstrtab));
        if (set == NULL)        /* an empty arena traps if run */
                memset(img + l->off[SEC_TEXT], USDT_TRAP_BYTE, l->size[SEC_TEXT]);

        /* symbols: null, then a function and a semaphore per probe */
        sym = (Sym *)(img + l->off[SEC_DYNSYM]);
        name_at = soname + (uint32_t)strlen((char *)img + l->off[SEC_DYNSTR] + soname) + 1;
        for (i = 0; i < nprobes; i++) {
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
                build_id(img, l->total, spec->id_salt,
                         img + l->off[SEC_BUILDID] + 16);
        }
        info->bytes = l->total;
        info->text_offset = l->off[SEC_TEXT];
        info->text_bytes = l->size[SEC_TEXT];
        info->semaphores_offset = l->off[SEC_PROBES];
        info->base_offset = l->off[SEC_BASE];
        info->notes_offset = l->off[SEC_NOTES];
        info->notes_size_at = l->shdr_off + SEC_NOTES * sizeof(Shdr) +
                              offsetof(Shdr, sh_size);
        info->load_bytes = align_up(l->rw_end, l->page);
out:
        usdt_buf_free(&dynstr);
        usdt_buf_free(&notes);
        return img;
}

/* A provider's object (usdt_sdt_load.c); place as for usdt_elf_build. */
unsigned char *
usdt_elf_image(const struct usdt_probe_set *set, void *(*place)(void *ctx, size_t bytes),
               void *ctx, struct usdt_elf_info *info)
{
        struct usdt_elf_spec spec = { set, set->provider, 0, 0, 0 };

        return usdt_elf_build(&spec, info, place, ctx);
}

