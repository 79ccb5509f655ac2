/* The Linux x86 boot protocol (bzImage, 64-bit entry) and PVH direct boot of an ELF vmlinux. */
#include "kvmloop/linux_boot.h"
#include "kvmloop/error.h"
#include "kvmloop/multiboot.h"

#include <elf.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>

/* Setup header offsets (Documentation/arch/x86/boot.rst), also the offsets
 * inside boot_params, the zero page. */
#define HDR_SETUP_SECTS     0x1f1
#define HDR_SYSSIZE         0x1f4
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGN    0x230
#define HDR_RELOCATABLE     0x234
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260
#define HDR_END_MIN         0x264

/* boot_params fields outside the setup header. */
#define BP_ACPI_RSDP_ADDR    0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_E820_TABLE        0x2d0
#define BP_E820_MAX          128
#define BP_SIZE              0x1000

#define LOADFLAG_LOADED_HIGH  0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64         0x01

/* PVH (xen/include/public/arch-x86/hvm/start_info.h) */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC          0x336ec578u
#define HVM_START_INFO_SIZE      56
#define HVM_MODLIST_ENTRY_SIZE   32
#define HVM_MEMMAP_ENTRY_SIZE    24

static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static void st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void st32(uint8_t *p, uint32_t v)
{
    st16(p, (uint16_t)v);
    st16(p + 2, (uint16_t)(v >> 16));
}

static void st64(uint8_t *p, uint64_t v)
{
    st32(p, (uint32_t)v);
    st32(p + 4, (uint32_t)(v >> 32));
}

const char *boot_protocol_name(BootProtocol p)
{
    switch (p) {
    case BOOT_PROTOCOL_MULTIBOOT:
        return "multiboot";
    case BOOT_PROTOCOL_BZIMAGE:
        return "bzImage";
    case BOOT_PROTOCOL_PVH:
        return "pvh";
    }
    return "?";
}

static GMappedFile *map_file(const char *what, const char *path, GError **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "%s '%s': %s", what, path,
                    g_strerror(e));
        return NULL;
    }
    GError *err = NULL;
    GMappedFile *f = g_mapped_file_new_from_fd(fd, FALSE, &err);
    close(fd);
    if (!f) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s '%s': %s", what, path,
                    err->message);
        g_error_free(err);
    }
    return f;
}

static bool is_bzimage(const uint8_t *b, size_t len)
{
    return len >= HDR_MAGIC + 4 && ld16(b + HDR_BOOT_FLAG) == 0xaa55 &&
           memcmp(b + HDR_MAGIC, "HdrS", 4) == 0;
}

static bool is_elf(const uint8_t *b, size_t len)
{
    return len >= EI_NIDENT && memcmp(b, ELFMAG, SELFMAG) == 0;
}

/* An ELF file, 32- or 64-bit, read through bounds-checked accessors. */
typedef struct ElfView {
    const uint8_t *b;
    size_t len;
    bool is64;
    uint64_t phoff;
    unsigned phnum, phentsize;
} ElfView;

typedef struct ElfPhdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
} ElfPhdr;

static bool elf_view(const uint8_t *b, size_t len, ElfView *v)
{
    if (!is_elf(b, len) || b[EI_DATA] != ELFDATA2LSB) {
        return false;
    }
    v->b = b;
    v->len = len;
    v->is64 = b[EI_CLASS] == ELFCLASS64;
    if (v->is64) {
        if (len < sizeof(Elf64_Ehdr)) {
            return false;
        }
        v->phoff = ld64(b + offsetof(Elf64_Ehdr, e_phoff));
        v->phentsize = ld16(b + offsetof(Elf64_Ehdr, e_phentsize));
        v->phnum = ld16(b + offsetof(Elf64_Ehdr, e_phnum));
        if (v->phentsize < sizeof(Elf64_Phdr)) {
            return false;
        }
    } else {
        if (b[EI_CLASS] != ELFCLASS32 || len < sizeof(Elf32_Ehdr)) {
            return false;
        }
        v->phoff = ld32(b + offsetof(Elf32_Ehdr, e_phoff));
        v->phentsize = ld16(b + offsetof(Elf32_Ehdr, e_phentsize));
        v->phnum = ld16(b + offsetof(Elf32_Ehdr, e_phnum));
        if (v->phentsize < sizeof(Elf32_Phdr)) {
            return false;
        }
    }
    return v->phoff <= len && (uint64_t)v->phnum * v->phentsize <= len - v->phoff;
}

static void elf_phdr(const ElfView *v, unsigned i, ElfPhdr *p)
{
    const uint8_t *h = v->b + v->phoff + (uint64_t)i * v->phentsize;
    if (v->is64) {
        p->type = ld32(h + offsetof(Elf64_Phdr, p_type));
        p->offset = ld64(h + offsetof(Elf64_Phdr, p_offset));
        p->paddr = ld64(h + offsetof(Elf64_Phdr, p_paddr));
        p->filesz = ld64(h + offsetof(Elf64_Phdr, p_filesz));
        p->memsz = ld64(h + offsetof(Elf64_Phdr, p_memsz));
    } else {
        p->type = ld32(h + offsetof(Elf32_Phdr, p_type));
        p->offset = ld32(h + offsetof(Elf32_Phdr, p_offset));
        p->paddr = ld32(h + offsetof(Elf32_Phdr, p_paddr));
        p->filesz = ld32(h + offsetof(Elf32_Phdr, p_filesz));
        p->memsz = ld32(h + offsetof(Elf32_Phdr, p_memsz));
    }
}

/* True if a loadable or note segment runs past the end of the file. */
static bool elf_truncated(const ElfView *v)
{
    for (unsigned i = 0; i < v->phnum; i++) {
        ElfPhdr ph;
        elf_phdr(v, i, &ph);
        if ((ph.type == PT_LOAD || ph.type == PT_NOTE) &&
            (ph.offset > v->len || ph.filesz > v->len - ph.offset)) {
            return true;
        }
    }
    return false;
}

/* The PVH entry point from the PT_NOTE segments, or false. */
static bool elf_find_pvh_entry(const ElfView *v, uint64_t *entry)
{
    for (unsigned i = 0; i < v->phnum; i++) {
        ElfPhdr ph;
        elf_phdr(v, i, &ph);
        if (ph.type != PT_NOTE || ph.offset > v->len || ph.filesz > v->len - ph.offset) {
            continue;
        }
        const uint8_t *n = v->b + ph.offset, *end = n + ph.filesz;
        while (end - n >= 12) {
            uint32_t namesz = ld32(n), descsz = ld32(n + 4), type = ld32(n + 8);
            uint64_t name_pad = (namesz + 3ULL) & ~3ULL, desc_pad = (descsz + 3ULL) & ~3ULL;
            if (name_pad + desc_pad > (uint64_t)(end - n - 12)) {
                break;
            }
            const uint8_t *name = n + 12, *desc = name + name_pad;
            if (namesz == 4 && memcmp(name, "Xen", 4) == 0 && type == XEN_ELFNOTE_PHYS32_ENTRY &&
                (descsz == 4 || descsz == 8)) {
                *entry = descsz == 4 ? ld32(desc) : ld64(desc);
                return true;
            }
            n = desc + desc_pad;
        }
    }
    return false;
}

bool kernel_probe(const char *path, BootProtocol *out, GError **errp)
{
    g_autoptr(GMappedFile) f = map_file("kernel", path, errp);
    if (!f) {
        return false;
    }
    const uint8_t *b = (const uint8_t *)g_mapped_file_get_contents(f);
    size_t len = g_mapped_file_get_length(f);
    ElfView v;
    uint64_t entry;

    if (is_bzimage(b, len)) {
        *out = BOOT_PROTOCOL_BZIMAGE;
    } else if (elf_view(b, len, &v) && elf_truncated(&v)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "kernel '%s': truncated ELF (its segments run past the end of the file)", path);
        return false;
    } else if (elf_view(b, len, &v) && elf_find_pvh_entry(&v, &entry)) {
        *out = BOOT_PROTOCOL_PVH;
    } else if (multiboot_probe(b, len)) {
        *out = BOOT_PROTOCOL_MULTIBOOT;
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "kernel '%s': not a kernel kvmloop can boot (no bzImage setup header, %s, "
                    "no multiboot header)",
                    path, is_elf(b, len) ? "an ELF without a PVH entry note" : "not an ELF");
        return false;
    }
    return true;
}

size_t pc_e820_map(const GuestMem *gm, E820Entry *out, size_t max)
{
    size_t n = 0;
#define ADD(a, s, t)                                                                               \
    do {                                                                                           \
        if (n < max && (s) > 0) {                                                                  \
            out[n++] = (E820Entry){.addr = (a), .size = (s), .type = (t)};                         \
        }                                                                                          \
    } while (0)
    for (unsigned i = 0; i < gm->nblocks; i++) {
        const GuestMemBlock *b = &gm->blocks[i];
        if (b->gpa == 0) {
            /* Conventional memory; the EBDA, the VGA hole and the BIOS area
             * (with the ACPI tables) reserved as one range; extended memory. */
            ADD(0, MIN(b->size, BOOT_EBDA_ADDR), E820_RAM);
            if (b->size > BOOT_EBDA_ADDR) {
                ADD(BOOT_EBDA_ADDR, 0x100000 - BOOT_EBDA_ADDR, E820_RESERVED);
            }
            if (b->size > 0x100000) {
                ADD(0x100000, b->size - 0x100000, E820_RAM);
            }
        } else {
            ADD(b->gpa, b->size, E820_RAM);
        }
    }
#undef ADD
    return n;
}

/* The end of the RAM block that starts at 0 (RAM below the PCI hole). */
static uint64_t low_ram_end(const GuestMem *gm)
{
    for (unsigned i = 0; i < gm->nblocks; i++) {
        if (gm->blocks[i].gpa == 0) {
            return gm->blocks[i].size;
        }
    }
    return 0;
}

static bool copy_to_guest(GuestMem *gm, uint64_t gpa, const void *src, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(gm, gpa, len);
    if (!p) {
        return false;
    }
    memcpy(p, src, len);
    return true;
}

static bool put_cmdline(GuestMem *gm, const LinuxBootArgs *a, uint64_t max_len, GError **errp)
{
    const char *cmdline = a->cmdline ? a->cmdline : "";
    size_t len = strlen(cmdline);
    if (len > max_len || len >= BOOT_CMDLINE_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-append: the command line has %zu bytes; kernel '%s' takes at most %" PRIu64,
                    len, a->kernel, (uint64_t)MIN(max_len, BOOT_CMDLINE_MAX - 1));
        return false;
    }
    if (!copy_to_guest(gm, BOOT_CMDLINE_ADDR, cmdline, len + 1)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "no RAM for the command line");
        return false;
    }
    return true;
}

/* Read the initrd and put it at the highest page-aligned address that ends
 * at or below @limit and starts at or above @floor. */
static bool put_initrd(GuestMem *gm, const LinuxBootArgs *a, uint64_t floor, uint64_t limit,
                       LinuxBoot *out, GError **errp)
{
    out->initrd_addr = out->initrd_size = 0;
    if (!a->initrd) {
        return true;
    }
    g_autoptr(GMappedFile) f = map_file("initrd", a->initrd, errp);
    if (!f) {
        return false;
    }
    uint64_t size = g_mapped_file_get_length(f);
    uint64_t addr = size <= limit ? (limit - size) & ~0xfffULL : 0;
    if (size == 0 || size > limit || addr < floor) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    size == 0 ? "initrd '%s' is empty"
                              : "initrd '%s' (%" PRIu64 " MiB) does not fit in guest RAM below "
                                "%" PRIu64 " MiB after the kernel; give more memory with -m",
                    a->initrd, size >> 20, limit >> 20);
        return false;
    }
    if (!copy_to_guest(gm, addr, g_mapped_file_get_contents(f), size)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "initrd '%s' does not fit in RAM",
                    a->initrd);
        return false;
    }
    out->initrd_addr = addr;
    out->initrd_size = size;
    return true;
}

void linux_boot_write_page_tables(GuestMem *gm)
{
    uint8_t *pml4 = guest_mem_ptr(gm, BOOT_PML4_ADDR, 0x6000);
    uint8_t *gdt = guest_mem_ptr(gm, BOOT_GDT_ADDR, 0x20);
    g_assert(pml4 && gdt);
    memset(pml4, 0, 0x6000);
    uint8_t *pdpt = pml4 + 0x1000, *pd = pml4 + 0x2000;
    /* Present | writable for the tables; 2 MiB pages (PS) for the 4 GiB. */
    st64(pml4, (BOOT_PML4_ADDR + 0x1000) | 0x3);
    for (unsigned i = 0; i < 4; i++) {
        st64(pdpt + 8 * i, (BOOT_PML4_ADDR + 0x2000 + 0x1000 * i) | 0x3);
    }
    for (unsigned i = 0; i < 4 * 512; i++) {
        st64(pd + 8 * i, ((uint64_t)i << 21) | 0x83);
    }
    /* Null, null, then the boot protocol's __BOOT_CS (0x10) and __BOOT_DS (0x18). */
    st64(gdt, 0);
    st64(gdt + 8, 0);
    st64(gdt + 0x10, 0x00af9b000000ffffULL); /* 64-bit code, present, DPL 0 */
    st64(gdt + 0x18, 0x00cf93000000ffffULL); /* flat data */
}

bool linux_load_bzimage(GuestMem *gm, const LinuxBootArgs *a, LinuxBoot *out, GError **errp)
{
    g_autoptr(GMappedFile) f = map_file("kernel", a->kernel, errp);
    if (!f) {
        return false;
    }
    const uint8_t *b = (const uint8_t *)g_mapped_file_get_contents(f);
    size_t len = g_mapped_file_get_length(f);
#define BAD(...)                                                                                   \
    do {                                                                                           \
        g_autofree char *why_ = g_strdup_printf(__VA_ARGS__);                                      \
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "kernel '%s': %s", a->kernel,       \
                    why_);                                                                         \
        return false;                                                                              \
    } while (0)

    if (!is_bzimage(b, len) || len < HDR_END_MIN) {
        BAD("not a bzImage (no boot flag or HdrS setup header)");
    }
    uint16_t version = ld16(b + HDR_VERSION);
    if (version < 0x020c) {
        BAD("boot protocol %u.%02u is too old; kvmloop needs 2.12 (Linux 3.8) or later",
            version >> 8, version & 0xff);
    }
    if (!(b[HDR_LOADFLAGS] & LOADFLAG_LOADED_HIGH)) {
        BAD("not loadable high (a zImage?)");
    }
    if (!(ld16(b + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        BAD("no 64-bit entry point (a 32-bit kernel?)");
    }
    unsigned setup_sects = b[HDR_SETUP_SECTS] ? b[HDR_SETUP_SECTS] : 4;
    uint64_t setup_size = (setup_sects + 1ULL) * 512;
    uint64_t syssize = (uint64_t)ld32(b + HDR_SYSSIZE) * 16;
    if (len < setup_size || len - setup_size < syssize || syssize == 0) {
        BAD("truncated: %zu bytes, the setup header promises %" PRIu64, len, setup_size + syssize);
    }
    uint32_t align = ld32(b + HDR_KERNEL_ALIGN);
    if (align == 0 || (align & (align - 1)) || align > (1u << 30)) {
        BAD("kernel_alignment 0x%x is not a power of two", align);
    }
    uint64_t init_size = ld32(b + HDR_INIT_SIZE);
    uint64_t load = ld64(b + HDR_PREF_ADDRESS);
    if (load < 0x100000 || (load & (align - 1))) {
        load = MAX((uint64_t)0x1000000, align);
    }
    uint64_t kernel_len = len - setup_size;
    uint64_t need = MAX(init_size, kernel_len);
    uint64_t low_end = low_ram_end(gm);
    if (load + need > low_end) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "kernel '%s' needs %" PRIu64 " MiB of RAM from %" PRIu64
                    " MiB up to unpack; give more memory with -m",
                    a->kernel, need >> 20, load >> 20);
        return false;
    }
#undef BAD
    if (!copy_to_guest(gm, load, b + setup_size, kernel_len)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "kernel '%s' does not fit in RAM",
                    a->kernel);
        return false;
    }

    /* The zero page: the setup header as the file has it, then the fields
     * the boot loader fills in. */
    uint8_t *bp = guest_mem_ptr(gm, BOOT_ZERO_PAGE_ADDR, BP_SIZE);
    g_assert(bp);
    memset(bp, 0, BP_SIZE);
    size_t hdr_end = MIN((size_t)HDR_JUMP + 2 + b[HDR_JUMP + 1], (size_t)BP_SIZE);
    hdr_end = MIN(hdr_end, len);
    memcpy(bp + HDR_SETUP_SECTS, b + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
    bp[HDR_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
    bp[HDR_LOADFLAGS] =
        (uint8_t)((bp[HDR_LOADFLAGS] | LOADFLAG_LOADED_HIGH) & ~LOADFLAG_CAN_USE_HEAP);

    uint32_t cmdline_size = ld32(b + HDR_CMDLINE_SIZE);
    if (!put_cmdline(gm, a, cmdline_size ? cmdline_size : 255, errp)) {
        return false;
    }
    st32(bp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
    st32(bp + BP_EXT_CMD_LINE_PTR, 0);

    uint64_t initrd_max = ld32(b + HDR_INITRD_ADDR_MAX);
    if (initrd_max == 0) {
        initrd_max = 0x37ffffff;
    }
    uint64_t kernel_end = load + need;
    if (!put_initrd(gm, a, kernel_end, MIN(initrd_max + 1, low_end), out, errp)) {
        return false;
    }
    st32(bp + HDR_RAMDISK_IMAGE, (uint32_t)out->initrd_addr);
    st32(bp + HDR_RAMDISK_SIZE, (uint32_t)out->initrd_size);
    st32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(out->initrd_addr >> 32));
    st32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(out->initrd_size >> 32));
    if (version >= 0x020e) {
        st64(bp + BP_ACPI_RSDP_ADDR, a->rsdp_addr);
    }

    E820Entry map[E820_MAX_ENTRIES];
    size_t n = pc_e820_map(gm, map, G_N_ELEMENTS(map));
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = bp + BP_E820_TABLE + 20 * i;
        st64(e, map[i].addr);
        st64(e + 8, map[i].size);
        st32(e + 16, map[i].type);
    }
    linux_boot_write_page_tables(gm);

    out->protocol = BOOT_PROTOCOL_BZIMAGE;
    out->entry = load + 0x200; /* startup_64 */
    out->boot_info = BOOT_ZERO_PAGE_ADDR;
    out->kernel_addr = load;
    out->kernel_end = kernel_end;
    return true;
}

bool linux_load_pvh(GuestMem *gm, const LinuxBootArgs *a, LinuxBoot *out, GError **errp)
{
    g_autoptr(GMappedFile) f = map_file("kernel", a->kernel, errp);
    if (!f) {
        return false;
    }
    const uint8_t *b = (const uint8_t *)g_mapped_file_get_contents(f);
    size_t len = g_mapped_file_get_length(f);
    ElfView v;
    uint64_t entry;

    if (!elf_view(b, len, &v)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "kernel '%s': not a little-endian ELF or its program headers are cut off",
                    a->kernel);
        return false;
    }
    if (!elf_find_pvh_entry(&v, &entry)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "kernel '%s': an ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
                    a->kernel);
        return false;
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < v.phnum; i++) {
        ElfPhdr ph;
        elf_phdr(&v, i, &ph);
        if (ph.type != PT_LOAD || ph.memsz == 0) {
            continue;
        }
        if (ph.filesz > ph.memsz || ph.offset > len || ph.filesz > len - ph.offset) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "kernel '%s': segment %u lies outside the file (truncated?)", a->kernel, i);
            return false;
        }
        uint8_t *dst = guest_mem_ptr(gm, ph.paddr, ph.memsz);
        if (!dst || ph.paddr < 0x100000) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                        "kernel '%s': segment %u at 0x%" PRIx64 "-0x%" PRIx64
                        " is not in guest RAM; give more memory with -m",
                        a->kernel, i, ph.paddr, ph.paddr + ph.memsz);
            return false;
        }
        memcpy(dst, b + ph.offset, ph.filesz);
        memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
        lo = MIN(lo, ph.paddr);
        hi = MAX(hi, ph.paddr + ph.memsz);
    }
    if (hi == 0 || entry < lo || entry >= hi) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "kernel '%s': the PVH entry 0x%" PRIx64 " is outside the loaded segments",
                    a->kernel, entry);
        return false;
    }
    if (!put_cmdline(gm, a, BOOT_CMDLINE_MAX - 1, errp)) {
        return false;
    }
    /* Linux keeps the initrd below 4 GiB unless told otherwise. */
    if (!put_initrd(gm, a, (hi + 0xfff) & ~0xfffULL, MIN(low_ram_end(gm), 0x100000000ULL), out,
                    errp)) {
        return false;
    }

    /* hvm_start_info, then the module list, then the memory map. */
    E820Entry map[E820_MAX_ENTRIES];
    size_t n = pc_e820_map(gm, map, G_N_ELEMENTS(map));
    uint64_t modlist = BOOT_START_INFO_ADDR + HVM_START_INFO_SIZE;
    uint64_t memmap = modlist + HVM_MODLIST_ENTRY_SIZE;
    uint8_t *si = guest_mem_ptr(gm, BOOT_START_INFO_ADDR, 0x1000);
    g_assert(si && memmap + n * HVM_MEMMAP_ENTRY_SIZE <= BOOT_START_INFO_ADDR + 0x1000);
    memset(si, 0, 0x1000);
    st32(si + 0, HVM_START_MAGIC);
    st32(si + 4, 1); /* version: has the memory map */
    st32(si + 8, 0);
    st32(si + 12, out->initrd_size ? 1 : 0);
    st64(si + 16, out->initrd_size ? modlist : 0);
    st64(si + 24, BOOT_CMDLINE_ADDR);
    st64(si + 32, a->rsdp_addr);
    st64(si + 40, memmap);
    st32(si + 48, (uint32_t)n);
    uint8_t *mod = si + HVM_START_INFO_SIZE;
    st64(mod, out->initrd_addr);
    st64(mod + 8, out->initrd_size);
    uint8_t *mm = si + (memmap - BOOT_START_INFO_ADDR);
    for (size_t i = 0; i < n; i++) {
        st64(mm + HVM_MEMMAP_ENTRY_SIZE * i, map[i].addr);
        st64(mm + HVM_MEMMAP_ENTRY_SIZE * i + 8, map[i].size);
        st32(mm + HVM_MEMMAP_ENTRY_SIZE * i + 16, map[i].type);
    }

    out->protocol = BOOT_PROTOCOL_PVH;
    out->entry = entry;
    out->boot_info = BOOT_START_INFO_ADDR;
    out->kernel_addr = lo;
    out->kernel_end = hi;
    return true;
}
