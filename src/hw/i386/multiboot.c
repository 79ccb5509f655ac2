/* Multiboot (v1) loader for -kernel: header, ELF32 or a.out kludge image, modules, boot info. */
#include "kvmloop/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Multiboot Specification 0.6.96, section 3.1: the OS image header. */
#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_SEARCH       8192
/* QEMU stops looking 48 bytes (a full header) before the end of the search window. */
#define MULTIBOOT_SEARCH_LAST  (MULTIBOOT_SEARCH - 48)
#define MULTIBOOT_HEADER_FLAGS 4
#define MULTIBOOT_HEADER_ADDR  12
#define MULTIBOOT_LOAD_ADDR    16
#define MULTIBOOT_LOAD_END     20
#define MULTIBOOT_BSS_END      24
#define MULTIBOOT_ENTRY_ADDR   28
#define MULTIBOOT_AOUT_HDR_LEN 32

#define MULTIBOOT_PAGE_ALIGN  (1u << 0)
#define MULTIBOOT_MEMORY_INFO (1u << 1)
#define MULTIBOOT_VIDEO_MODE  (1u << 2)
#define MULTIBOOT_AOUT_KLUDGE (1u << 16)
/* Bits 0-15 are requirements: a loader must refuse ones it does not know (spec 3.1.2). */
#define MULTIBOOT_REQUIRED_MASK 0xffffu
/* QEMU loads kernels asking for a video mode; it just gives them no VBE information. */
#define MULTIBOOT_KNOWN_FLAGS (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_VIDEO_MODE)

/* Section 3.3: the boot information (struct multiboot_info), as QEMU fills it. */
#define MULTIBOOT_INFO_MEMORY           (1u << 0)
#define MULTIBOOT_INFO_BOOTDEV          (1u << 1)
#define MULTIBOOT_INFO_CMDLINE          (1u << 2)
#define MULTIBOOT_INFO_MODS             (1u << 3)
#define MULTIBOOT_INFO_MEM_MAP          (1u << 6)
#define MULTIBOOT_INFO_BOOT_LOADER_NAME (1u << 9)

#define MBI_FLAGS            0
#define MBI_MEM_LOWER        4
#define MBI_MEM_UPPER        8
#define MBI_BOOT_DEVICE      12
#define MBI_CMDLINE          16
#define MBI_MODS_COUNT       20
#define MBI_MODS_ADDR        24
#define MBI_MMAP_LENGTH      44
#define MBI_MMAP_ADDR        48
#define MBI_BOOT_LOADER_NAME 64
#define MBI_SIZE             88 /* up to the VBE fields, as QEMU */

#define MB_MOD_START   0
#define MB_MOD_END     4
#define MB_MOD_STRING  8
#define MB_MOD_SIZE    16
#define MB_MMAP_SIZE   0 /* size of the rest of the entry; excludes itself */
#define MB_MMAP_BASE   4
#define MB_MMAP_LENGTH 12
#define MB_MMAP_TYPE   20
#define MB_MMAP_ENTRY  24

#define MULTIBOOT_MEMORY_AVAILABLE 1
#define MULTIBOOT_MEMORY_RESERVED  2

/* QEMU passes "first hard disk, whole disk" whatever -boot says. */
#define MULTIBOOT_BOOT_DEVICE 0x8000ffffu
#define MULTIBOOT_LOADER_NAME "kvmloop"

/* SeaBIOS keeps a 1 KiB EBDA at 0x9fc00 and its BIOS at 0xf0000; QEMU's multiboot option ROM
 * reports those via E820, and mem_lower is what INT 12h returns: 639 KiB. */
#define PC_EBDA_START    0x9fc00u
#define PC_EBDA_END      0xa0000u
#define PC_BIOS_START    0xf0000u
#define PC_HIGH_MEM      0x100000u
#define PC_MEM_LOWER_KIB (PC_EBDA_START / 1024)

#define MB_PAGE_SIZE 4096u
#define MB_4GIB      (UINT64_C(1) << 32)

/* At most a low and a high piece per RAM block, plus the two reserved BIOS ranges. */
#define MB_MMAP_MAX (2 * GUEST_MEM_MAX_BLOCKS + 2)

/* One range of guest RAM the loader fills: @filesz bytes from @src, then zeros to @memsz. */
typedef struct MbPiece {
    const char *what; /* "ELF segment", "module", ... for messages */
    const char *name; /* the module's path, or NULL */
    gpa_t gpa;
    const uint8_t *src;
    uint64_t filesz;
    uint64_t memsz;
} MbPiece;

typedef struct MbMmapEntry {
    uint64_t base;
    uint64_t len;
    uint32_t type;
} MbMmapEntry;

typedef struct MbModule {
    char *text; /* "PATH[ ARGS]", passed to the guest whole, as QEMU does */
    char *path;
    uint8_t *data;
    size_t len;
    gpa_t start;
} MbModule;

static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void st64(uint8_t *p, uint64_t v)
{
    st32(p, (uint32_t)v);
    st32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t align_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) & ~(align - 1);
}

/* Offset of the first valid multiboot header in @buf, or -1. Same window as QEMU. */
static long multiboot_find_header(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < MULTIBOOT_SEARCH_LAST && i + 12 <= len; i += 4) {
        uint32_t magic = ld32(buf + i);
        uint32_t flags = ld32(buf + i + 4);
        uint32_t checksum = ld32(buf + i + 8);
        if (magic == MULTIBOOT_HEADER_MAGIC && (uint32_t)(magic + flags + checksum) == 0) {
            return (long)i;
        }
    }
    return -1;
}

bool multiboot_probe(const uint8_t *buf, size_t len)
{
    return multiboot_find_header(buf, len) >= 0;
}

/* Read the whole of @path; messages start with "@what '@path'". */
static bool multiboot_read_file(const char *what, const char *path, uint8_t **data, size_t *len,
                                GError **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(err), "%s '%s': %s", what, path,
                    g_strerror(err));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(err), "%s '%s': fstat: %s", what,
                    path, g_strerror(err));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        int err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(err), "%s '%s': %s", what, path,
                    S_ISDIR(st.st_mode) ? g_strerror(err) : "not a regular file");
        goto close_fd;
    }
    if ((uint64_t)st.st_size >= MB_4GIB) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "%s '%s' is larger than 4 GiB", what,
                    path);
        goto close_fd;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = g_malloc(size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(err), "%s '%s': read: %s", what,
                        path, n < 0 ? g_strerror(err) : "file shrank while reading");
            g_free(buf);
            goto close_fd;
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = size;
    return true;

close_fd:
    close(fd);
    return false;
}

/* The ELF entry point as QEMU's ELF loader computes it: e_entry, moved from virtual to
 * physical when it falls inside an executable segment linked with p_vaddr != p_paddr
 * (higher-half kernels). */
static uint32_t multiboot_elf_entry(const uint8_t *img, uint32_t e_entry, uint32_t phoff,
                                    uint16_t phentsize, uint16_t phnum)
{
    uint32_t entry = e_entry;
    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (size_t)i * phentsize;
        uint32_t vaddr = ld32(ph + offsetof(Elf32_Phdr, p_vaddr));
        uint32_t paddr = ld32(ph + offsetof(Elf32_Phdr, p_paddr));
        uint32_t filesz = ld32(ph + offsetof(Elf32_Phdr, p_filesz));
        uint32_t flags = ld32(ph + offsetof(Elf32_Phdr, p_flags));
        if (ld32(ph + offsetof(Elf32_Phdr, p_type)) == PT_LOAD && vaddr != paddr &&
            e_entry >= vaddr && (uint64_t)e_entry < (uint64_t)vaddr + filesz && (flags & PF_X)) {
            entry = e_entry - vaddr + paddr;
        }
    }
    return entry;
}

/* Check the ELF header of @img; on success the program header table is inside the file. */
static bool multiboot_check_elf_header(const char *path, const uint8_t *img, size_t len,
                                       GError **errp)
{
    if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s' is not an ELF file and its multiboot header has no address "
                    "fields (flag bit 16)",
                    path);
        return false;
    }
    /* QEMU tells a 64-bit kernel by e_machine, which sits at the same offset in both classes. */
    bool x86_64 = len >= offsetof(Elf32_Ehdr, e_version) &&
                  ld16(img + offsetof(Elf32_Ehdr, e_machine)) == EM_X86_64;
    if (img[EI_CLASS] == ELFCLASS64 || x86_64) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s' is a 64-bit ELF; multiboot needs a 32-bit kernel", path);
        return false;
    }
    if (img[EI_CLASS] != ELFCLASS32 || img[EI_DATA] != ELFDATA2LSB) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s' is not a little-endian 32-bit ELF (class %u, data %u)", path,
                    img[EI_CLASS], img[EI_DATA]);
        return false;
    }
    if (len < sizeof(Elf32_Ehdr)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': ELF header truncated (file is %zu bytes)", path, len);
        return false;
    }
    uint16_t machine = ld16(img + offsetof(Elf32_Ehdr, e_machine));
    uint16_t type = ld16(img + offsetof(Elf32_Ehdr, e_type));
    if (machine != EM_386 || type != ET_EXEC) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s' is not an i386 ELF executable (e_machine %u, e_type %u)", path,
                    machine, type);
        return false;
    }
    uint32_t phoff = ld32(img + offsetof(Elf32_Ehdr, e_phoff));
    uint16_t phentsize = ld16(img + offsetof(Elf32_Ehdr, e_phentsize));
    uint16_t phnum = ld16(img + offsetof(Elf32_Ehdr, e_phnum));
    if (phnum > 0 && phentsize < sizeof(Elf32_Phdr)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': ELF program header entries are %u bytes, need %zu", path,
                    phentsize, sizeof(Elf32_Phdr));
        return false;
    }
    uint64_t ph_end = (uint64_t)phoff + (uint64_t)phnum * phentsize;
    if (ph_end > len) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': ELF program headers 0x%" PRIx32 " - 0x%" PRIx64
                    " run past the end of the file (%zu bytes)",
                    path, phoff, ph_end, len);
        return false;
    }
    return true;
}

/* Collect the PT_LOAD segments of the ELF32 kernel @img as pieces placed at p_paddr. */
static bool multiboot_parse_elf(const char *path, const uint8_t *img, size_t len, GArray *pieces,
                                uint32_t *entry, GError **errp)
{
    if (!multiboot_check_elf_header(path, img, len, errp)) {
        return false;
    }
    uint32_t phoff = ld32(img + offsetof(Elf32_Ehdr, e_phoff));
    uint16_t phentsize = ld16(img + offsetof(Elf32_Ehdr, e_phentsize));
    uint16_t phnum = ld16(img + offsetof(Elf32_Ehdr, e_phnum));

    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (size_t)i * phentsize;
        if (ld32(ph + offsetof(Elf32_Phdr, p_type)) != PT_LOAD) {
            continue;
        }
        uint32_t offset = ld32(ph + offsetof(Elf32_Phdr, p_offset));
        uint32_t paddr = ld32(ph + offsetof(Elf32_Phdr, p_paddr));
        uint32_t filesz = ld32(ph + offsetof(Elf32_Phdr, p_filesz));
        uint32_t memsz = ld32(ph + offsetof(Elf32_Phdr, p_memsz));
        if (filesz > memsz) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "kernel '%s': ELF segment at 0x%" PRIx32 " has p_filesz 0x%" PRIx32
                        " larger than p_memsz 0x%" PRIx32,
                        path, paddr, filesz, memsz);
            return false;
        }
        if ((uint64_t)offset + filesz > len) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "kernel '%s': ELF segment at 0x%" PRIx32 " reads file bytes 0x%" PRIx32
                        " - 0x%" PRIx64 ", past the end of the file (%zu bytes)",
                        path, paddr, offset, (uint64_t)offset + filesz, len);
            return false;
        }
        if (memsz == 0) {
            continue;
        }
        MbPiece p = {
            .what = "ELF segment",
            .gpa = paddr,
            .src = img + offset,
            .filesz = filesz,
            .memsz = memsz,
        };
        g_array_append_val(pieces, p);
    }
    if (pieces->len == 0) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': ELF has no loadable segments", path);
        return false;
    }
    *entry = multiboot_elf_entry(img, ld32(img + offsetof(Elf32_Ehdr, e_entry)), phoff, phentsize,
                                 phnum);
    return true;
}

/* The image described by the header's address fields (flag bit 16), with QEMU's checks:
 * the file from (header offset - (header_addr - load_addr)) is loaded at load_addr, up to
 * load_end_addr (0: the end of the file), then zeroed up to bss_end_addr (0: no bss). */
static bool multiboot_parse_aout(const char *path, const uint8_t *img, size_t len, size_t hdr,
                                 GArray *pieces, uint32_t *entry, GError **errp)
{
    const char *bad = NULL;
    if (hdr + MULTIBOOT_AOUT_HDR_LEN > len) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': multiboot header at offset 0x%zx is truncated", path, hdr);
        return false;
    }
    uint32_t header_addr = ld32(img + hdr + MULTIBOOT_HEADER_ADDR);
    uint32_t load_addr = ld32(img + hdr + MULTIBOOT_LOAD_ADDR);
    uint32_t load_end = ld32(img + hdr + MULTIBOOT_LOAD_END);
    uint32_t bss_end = ld32(img + hdr + MULTIBOOT_BSS_END);
    uint64_t text_offset = 0;
    uint64_t load_size = 0;

    if (header_addr < load_addr) {
        bad = "header_addr is below load_addr";
    } else if (header_addr - load_addr > hdr) {
        bad = "header_addr - load_addr is larger than the header's file offset";
    } else {
        text_offset = hdr - (header_addr - load_addr);
        if (load_end != 0 && load_end < load_addr) {
            bad = "load_end_addr is below load_addr";
        }
        load_size = load_end != 0 ? (uint64_t)load_end - load_addr : len - text_offset;
    }
    if (!bad && (uint64_t)load_addr + load_size > MB_4GIB) {
        bad = "the image does not fit below 4 GiB";
    }
    if (!bad && bss_end != 0 && bss_end < load_addr + load_size) {
        bad = "bss_end_addr is below the end of the loaded image";
    }
    if (bad) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': invalid multiboot address fields: %s", path, bad);
        return false;
    }
    if (text_offset + load_size > len) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s' is truncated: load_end_addr needs file bytes 0x%" PRIx64
                    " - 0x%" PRIx64 ", the file has %zu",
                    path, text_offset, text_offset + load_size, len);
        return false;
    }
    MbPiece p = {
        .what = "a.out kludge image",
        .gpa = load_addr,
        .src = img + text_offset,
        .filesz = load_size,
        .memsz = bss_end != 0 ? (uint64_t)bss_end - load_addr : load_size,
    };
    if (p.memsz != 0) {
        g_array_append_val(pieces, p);
    }
    *entry = ld32(img + hdr + MULTIBOOT_ENTRY_ADDR);
    return true;
}

/* The E820-style map QEMU's option ROM copies from SeaBIOS: RAM below the EBDA, the EBDA and
 * BIOS reserved, then RAM from 1 MiB up in each block. Returns the number of entries. */
static size_t multiboot_build_mmap(const GuestMem *gm, MbMmapEntry *e)
{
    size_t n = 0;
    for (unsigned i = 0; i < gm->nblocks; i++) {
        const GuestMemBlock *b = &gm->blocks[i];
        if (b->gpa < PC_EBDA_START && b->size > 0) {
            uint64_t end = MIN(b->gpa + b->size, PC_EBDA_START);
            e[n++] = (MbMmapEntry){b->gpa, end - b->gpa, MULTIBOOT_MEMORY_AVAILABLE};
        }
    }
    e[n++] = (MbMmapEntry){PC_EBDA_START, PC_EBDA_END - PC_EBDA_START, MULTIBOOT_MEMORY_RESERVED};
    e[n++] = (MbMmapEntry){PC_BIOS_START, PC_HIGH_MEM - PC_BIOS_START, MULTIBOOT_MEMORY_RESERVED};
    for (unsigned i = 0; i < gm->nblocks; i++) {
        const GuestMemBlock *b = &gm->blocks[i];
        uint64_t start = MAX(b->gpa, PC_HIGH_MEM);
        if (b->gpa + b->size > start) {
            e[n++] = (MbMmapEntry){start, b->gpa + b->size - start, MULTIBOOT_MEMORY_AVAILABLE};
        }
    }
    return n;
}

/* mem_upper as QEMU's option ROM derives it from the map: KiB of available RAM contiguous
 * from 1 MiB, below 4 GiB. */
static uint32_t multiboot_mem_upper(const MbMmapEntry *e, size_t n)
{
    uint64_t top = PC_HIGH_MEM;
    bool grew = true;
    while (grew) {
        grew = false;
        for (size_t i = 0; i < n; i++) {
            if (e[i].type == MULTIBOOT_MEMORY_AVAILABLE && e[i].base < MB_4GIB &&
                e[i].base <= top && top < e[i].base + e[i].len) {
                top = MIN(e[i].base + e[i].len, MB_4GIB);
                grew = true;
            }
        }
    }
    return (uint32_t)((top - PC_HIGH_MEM) >> 10);
}

/* Copy @s with its NUL to @buf + *@off; returns its guest address and advances *@off. */
static uint32_t multiboot_put_string(uint8_t *buf, size_t *off, uint32_t base, const char *s)
{
    size_t n = strlen(s) + 1;
    uint32_t gpa = base + (uint32_t)*off;
    memcpy(buf + *off, s, n);
    *off += n;
    return gpa;
}

/* Bytes of boot information for @nmods modules and @nmmap map entries with these strings. */
static size_t multiboot_info_size(const char *cmdline, const MbModule *mods, size_t nmods,
                                  size_t nmmap)
{
    size_t size = MBI_SIZE + nmods * MB_MOD_SIZE + nmmap * MB_MMAP_ENTRY;
    size += strlen(cmdline) + 1 + strlen(MULTIBOOT_LOADER_NAME) + 1;
    for (size_t i = 0; i < nmods; i++) {
        size += strlen(mods[i].text) + 1;
    }
    return size;
}

/* Fill @buf (zeroed, multiboot_info_size() bytes, to live at guest @base) with the mbi, then
 * the module list, the memory map and the strings. */
static void multiboot_build_info(uint8_t *buf, uint32_t base, const char *cmdline,
                                 const MbModule *mods, size_t nmods, const MbMmapEntry *mmap,
                                 size_t nmmap)
{
    size_t mods_off = MBI_SIZE;
    size_t mmap_off = mods_off + nmods * MB_MOD_SIZE;
    size_t off = mmap_off + nmmap * MB_MMAP_ENTRY;

    st32(buf + MBI_FLAGS, MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_BOOTDEV | MULTIBOOT_INFO_CMDLINE |
                              MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP |
                              MULTIBOOT_INFO_BOOT_LOADER_NAME);
    st32(buf + MBI_MEM_LOWER, PC_MEM_LOWER_KIB);
    st32(buf + MBI_MEM_UPPER, multiboot_mem_upper(mmap, nmmap));
    st32(buf + MBI_BOOT_DEVICE, MULTIBOOT_BOOT_DEVICE);
    st32(buf + MBI_CMDLINE, multiboot_put_string(buf, &off, base, cmdline));
    st32(buf + MBI_MODS_COUNT, (uint32_t)nmods);
    st32(buf + MBI_MODS_ADDR, base + (uint32_t)mods_off);
    st32(buf + MBI_MMAP_LENGTH, (uint32_t)(nmmap * MB_MMAP_ENTRY));
    st32(buf + MBI_MMAP_ADDR, base + (uint32_t)mmap_off);

    for (size_t i = 0; i < nmods; i++) {
        uint8_t *m = buf + mods_off + i * MB_MOD_SIZE;
        st32(m + MB_MOD_START, (uint32_t)mods[i].start);
        st32(m + MB_MOD_END, (uint32_t)(mods[i].start + mods[i].len));
        st32(m + MB_MOD_STRING, multiboot_put_string(buf, &off, base, mods[i].text));
    }
    for (size_t i = 0; i < nmmap; i++) {
        uint8_t *e = buf + mmap_off + i * MB_MMAP_ENTRY;
        st32(e + MB_MMAP_SIZE, MB_MMAP_ENTRY - 4);
        st64(e + MB_MMAP_BASE, mmap[i].base);
        st64(e + MB_MMAP_LENGTH, mmap[i].len);
        st32(e + MB_MMAP_TYPE, mmap[i].type);
    }
    st32(buf + MBI_BOOT_LOADER_NAME, multiboot_put_string(buf, &off, base, MULTIBOOT_LOADER_NAME));
}

/* Check that @p lies in one RAM block, below 4 GiB and clear of the EBDA/VGA/BIOS range. */
static bool multiboot_check_piece(const GuestMem *gm, const char *path, const MbPiece *p,
                                  GError **errp)
{
    uint64_t end = p->gpa + p->memsz;
    const char *why = NULL;
    if (end > MB_4GIB) {
        why = "is above 4 GiB";
    } else if (!guest_mem_ptr(gm, p->gpa, p->memsz)) {
        why = "is outside guest RAM";
    } else if (p->gpa < PC_HIGH_MEM && end > PC_EBDA_START) {
        why = "overlaps the BIOS/VGA area 0x9fc00 - 0x100000";
    }
    if (why) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': %s%s%s%s 0x%" PRIx64 " - 0x%" PRIx64 " %s", path, p->what,
                    p->name ? " '" : "", p->name ? p->name : "", p->name ? "'" : "", p->gpa, end,
                    why);
        return false;
    }
    return true;
}

static void multiboot_modules_free(MbModule *mods, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_free(mods[i].text);
        g_free(mods[i].path);
        g_free(mods[i].data);
    }
    g_free(mods);
}

/* Read each module file (the text before the first space of "PATH[ ARGS]"). */
static MbModule *multiboot_read_modules(const char *const *modules, size_t n, GError **errp)
{
    MbModule *mods = g_new0(MbModule, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        mods[i].text = g_strdup(modules[i]);
        mods[i].path = g_strndup(modules[i], strcspn(modules[i], " "));
        if (!multiboot_read_file("module", mods[i].path, &mods[i].data, &mods[i].len, errp)) {
            multiboot_modules_free(mods, n);
            return NULL;
        }
    }
    return mods;
}

/* Parse @img into kernel pieces and the entry point, per its multiboot header. */
static bool multiboot_parse(const char *path, const uint8_t *img, size_t len, GArray *pieces,
                            uint32_t *entry, GError **errp)
{
    long hdr = multiboot_find_header(img, len);
    if (hdr < 0) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s' has no multiboot header in its first 8 KiB", path);
        return false;
    }
    uint32_t flags = ld32(img + hdr + MULTIBOOT_HEADER_FLAGS);
    uint32_t unknown = flags & MULTIBOOT_REQUIRED_MASK & ~MULTIBOOT_KNOWN_FLAGS;
    if (unknown) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "kernel '%s': multiboot header requires unsupported features (flags 0x%" PRIx32
                    ", unknown 0x%" PRIx32 ")",
                    path, flags, unknown);
        return false;
    }
    if (flags & MULTIBOOT_VIDEO_MODE) {
        g_info("kernel '%s' asks for a video mode; ignored", path);
    }
    /* QEMU takes the address fields over the ELF headers whenever bit 16 is set. */
    if (flags & MULTIBOOT_AOUT_KLUDGE) {
        return multiboot_parse_aout(path, img, len, (size_t)hdr, pieces, entry, errp);
    }
    return multiboot_parse_elf(path, img, len, pieces, entry, errp);
}

/* Place the modules page-aligned after the kernel's last byte @kernel_end, appending them to
 * @pieces; returns the page-aligned address after the last one. */
static gpa_t multiboot_place_modules(MbModule *mods, size_t n, gpa_t kernel_end, GArray *pieces)
{
    gpa_t cursor = align_up(kernel_end, MB_PAGE_SIZE);
    for (size_t i = 0; i < n; i++) {
        mods[i].start = cursor;
        MbPiece p = {
            .what = "module",
            .name = mods[i].path,
            .gpa = cursor,
            .src = mods[i].data,
            .filesz = mods[i].len,
            .memsz = mods[i].len,
        };
        g_array_append_val(pieces, p);
        cursor = align_up(cursor + mods[i].len, MB_PAGE_SIZE);
    }
    return cursor;
}

bool multiboot_load(GuestMem *gm, const char *kernel_path, const char *cmdline,
                    const char *const *modules, size_t nmodules, MultibootBoot *out, GError **errp)
{
    g_autofree uint8_t *img = NULL;
    size_t len = 0;
    if (!multiboot_read_file("kernel", kernel_path, &img, &len, errp)) {
        return false;
    }
    g_autoptr(GArray) pieces = g_array_new(FALSE, FALSE, sizeof(MbPiece));
    uint32_t entry = 0;
    if (!multiboot_parse(kernel_path, img, len, pieces, &entry, errp)) {
        return false;
    }
    gpa_t kernel_end = 0;
    for (guint i = 0; i < pieces->len; i++) {
        const MbPiece *p = &g_array_index(pieces, MbPiece, i);
        kernel_end = MAX(kernel_end, p->gpa + p->memsz);
    }

    MbModule *mods = multiboot_read_modules(modules, nmodules, errp);
    if (!mods) {
        return false;
    }
    bool ok = false;
    gpa_t info_gpa = multiboot_place_modules(mods, nmodules, kernel_end, pieces);

    /* QEMU passes "KERNEL CMDLINE" even without -append, hence the trailing space then. */
    g_autofree char *full_cmdline = g_strdup_printf("%s %s", kernel_path, cmdline ? cmdline : "");
    MbMmapEntry mmap[MB_MMAP_MAX];
    size_t nmmap = multiboot_build_mmap(gm, mmap);
    size_t info_size = multiboot_info_size(full_cmdline, mods, nmodules, nmmap);
    g_autofree uint8_t *info = g_malloc0(info_size);
    MbPiece info_piece = {
        .what = "boot information",
        .gpa = info_gpa,
        .src = info,
        .filesz = info_size,
        .memsz = info_size,
    };
    g_array_append_val(pieces, info_piece);

    for (guint i = 0; i < pieces->len; i++) {
        if (!multiboot_check_piece(gm, kernel_path, &g_array_index(pieces, MbPiece, i), errp)) {
            goto free_modules;
        }
    }
    multiboot_build_info(info, (uint32_t)info_gpa, full_cmdline, mods, nmodules, mmap, nmmap);
    for (guint i = 0; i < pieces->len; i++) {
        const MbPiece *p = &g_array_index(pieces, MbPiece, i);
        uint8_t *dst = guest_mem_ptr(gm, p->gpa, p->memsz);
        memcpy(dst, p->src, p->filesz);
        memset(dst + p->filesz, 0, p->memsz - p->filesz);
    }
    out->entry = entry;
    out->mbi_addr = (uint32_t)info_gpa;
    out->load_end = info_gpa + info_size;
    ok = true;

free_modules:
    multiboot_modules_free(mods, nmodules);
    return ok;
}
