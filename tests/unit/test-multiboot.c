/* Unit tests for the multiboot loader: images built in memory, loaded into a fake GuestMem. */
#include "kvmloop/multiboot.h"

#include <elf.h>
#include <glib/gstdio.h>
#include <string.h>

#define MiB       (UINT64_C(1) << 20)
#define RAM_SIZE  (32 * MiB)
#define HIGH_GPA  (UINT64_C(1) << 32)
#define HIGH_SIZE (64 * 1024)

#define MB_MAGIC 0x1BADB002u
#define MB_AOUT  (1u << 16)
/* MEMORY | BOOTDEV | CMDLINE | MODS | MMAP | BOOT_LOADER_NAME, as QEMU sets them. */
#define MBI_EXPECTED_FLAGS 0x24fu
#define MMAP_AVAILABLE     1
#define MMAP_RESERVED      2

typedef struct Fixture {
    char *dir;
    GPtrArray *files;
    GuestMem gm;
} Fixture;

typedef struct TestSeg {
    uint32_t type, offset, vaddr, paddr, filesz, memsz, flags;
} TestSeg;

static void st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    f->dir = g_dir_make_tmp("kvmloop-multiboot-XXXXXX", &err);
    g_assert_no_error(err);
    f->files = g_ptr_array_new_with_free_func(g_free);
    memset(&f->gm, 0, sizeof(f->gm));
    f->gm.blocks[0] = (GuestMemBlock){.gpa = 0, .size = RAM_SIZE, .host = g_malloc0(RAM_SIZE)};
    f->gm.nblocks = 1;
    f->gm.ram_size = RAM_SIZE;
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    for (guint i = 0; i < f->files->len; i++) {
        g_unlink(g_ptr_array_index(f->files, i));
    }
    g_rmdir(f->dir);
    g_free(f->dir);
    g_ptr_array_free(f->files, TRUE);
    for (unsigned i = 0; i < f->gm.nblocks; i++) {
        g_free(f->gm.blocks[i].host);
    }
}

/* Write @len bytes to a new file @name in the fixture's directory; returns its path. */
static const char *fixture_write(Fixture *f, const char *name, const void *data, size_t len)
{
    GError *err = NULL;
    char *path = g_build_filename(f->dir, name, NULL);
    g_file_set_contents(path, data, (gssize)len, &err);
    g_assert_no_error(err);
    g_ptr_array_add(f->files, path);
    return path;
}

static uint8_t *gpa_host(Fixture *f, uint64_t gpa)
{
    g_assert_cmpuint(gpa, <, RAM_SIZE);
    return f->gm.blocks[0].host + gpa;
}

static uint32_t rd32(Fixture *f, uint64_t gpa)
{
    return ld32(gpa_host(f, gpa));
}

static const char *rdstr(Fixture *f, uint64_t gpa)
{
    return (const char *)gpa_host(f, gpa);
}

/* A pattern no two nearby bytes share, so misplaced copies show. */
static void fill_pattern(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + (i >> 8) + 1);
    }
}

/* A multiboot header at @off; @aout fields (header_addr, load_addr, load_end_addr,
 * bss_end_addr, entry_addr) are written when flag bit 16 is set. */
static void put_mb_header(uint8_t *buf, size_t off, uint32_t flags, const uint32_t *aout)
{
    st32(buf + off, MB_MAGIC);
    st32(buf + off + 4, flags);
    st32(buf + off + 8, -(MB_MAGIC + flags));
    if (flags & MB_AOUT) {
        for (int i = 0; i < 5; i++) {
            st32(buf + off + 12 + 4 * i, aout[i]);
        }
    }
}

/* An ELF32 i386 executable of @len bytes (pattern-filled) with @nseg program headers at 52. */
static uint8_t *build_elf32(size_t len, const TestSeg *segs, size_t nseg, uint32_t entry)
{
    uint8_t *img = g_malloc0(len);
    fill_pattern(img, len);
    memset(img, 0, sizeof(Elf32_Ehdr) + nseg * sizeof(Elf32_Phdr));
    memcpy(img, ELFMAG, SELFMAG);
    img[EI_CLASS] = ELFCLASS32;
    img[EI_DATA] = ELFDATA2LSB;
    img[EI_VERSION] = EV_CURRENT;
    st16(img + offsetof(Elf32_Ehdr, e_type), ET_EXEC);
    st16(img + offsetof(Elf32_Ehdr, e_machine), EM_386);
    st32(img + offsetof(Elf32_Ehdr, e_version), EV_CURRENT);
    st32(img + offsetof(Elf32_Ehdr, e_entry), entry);
    st32(img + offsetof(Elf32_Ehdr, e_phoff), sizeof(Elf32_Ehdr));
    st16(img + offsetof(Elf32_Ehdr, e_ehsize), sizeof(Elf32_Ehdr));
    st16(img + offsetof(Elf32_Ehdr, e_phentsize), sizeof(Elf32_Phdr));
    st16(img + offsetof(Elf32_Ehdr, e_phnum), (uint16_t)nseg);
    for (size_t i = 0; i < nseg; i++) {
        uint8_t *ph = img + sizeof(Elf32_Ehdr) + i * sizeof(Elf32_Phdr);
        st32(ph + offsetof(Elf32_Phdr, p_type), segs[i].type);
        st32(ph + offsetof(Elf32_Phdr, p_offset), segs[i].offset);
        st32(ph + offsetof(Elf32_Phdr, p_vaddr), segs[i].vaddr);
        st32(ph + offsetof(Elf32_Phdr, p_paddr), segs[i].paddr);
        st32(ph + offsetof(Elf32_Phdr, p_filesz), segs[i].filesz);
        st32(ph + offsetof(Elf32_Phdr, p_memsz), segs[i].memsz);
        st32(ph + offsetof(Elf32_Phdr, p_flags), segs[i].flags);
        st32(ph + offsetof(Elf32_Phdr, p_align), 0x1000);
    }
    return img;
}

/* The standard test kernel: text at 1 MiB from file offset 0x1000 (holding the multiboot
 * header), data at 0x102000 with 0x1000 bytes of bss, a PT_NOTE that must be ignored. */
#define KERNEL_LEN   0x2100
#define KERNEL_ENTRY 0x10000c
static const TestSeg kernel_segs[] = {
    {PT_LOAD, 0x1000, 0x100000, 0x100000, 0x200, 0x200, PF_R | PF_X},
    {PT_NOTE, 0x1100, 0, 0, 0x10, 0x10, PF_R},
    {PT_LOAD, 0x2000, 0x102000, 0x102000, 0x100, 0x1100, PF_R | PF_W},
};

static uint8_t *build_kernel(uint32_t mb_flags)
{
    uint8_t *img = build_elf32(KERNEL_LEN, kernel_segs, G_N_ELEMENTS(kernel_segs), KERNEL_ENTRY);
    put_mb_header(img, 0x1000, mb_flags, NULL);
    return img;
}

static const char *write_kernel(Fixture *f, uint32_t mb_flags)
{
    g_autofree uint8_t *img = build_kernel(mb_flags);
    return fixture_write(f, "kernel.elf", img, KERNEL_LEN);
}

/* Load and expect failure with @code and a message containing each of @parts. */
static void expect_load_error(Fixture *f, const char *kernel, const char *const *mods, size_t nmods,
                              gint code, const char *const *parts)
{
    GError *err = NULL;
    MultibootBoot boot;
    g_assert_false(multiboot_load(&f->gm, kernel, NULL, mods, nmods, &boot, &err));
    g_assert_error(err, G_FILE_ERROR, code);
    g_assert_null(strchr(err->message, '\n'));
    for (size_t i = 0; parts[i]; i++) {
        if (!strstr(err->message, parts[i])) {
            g_error("message '%s' lacks '%s'", err->message, parts[i]);
        }
    }
    g_error_free(err);
}

typedef struct ExpectMmap {
    uint64_t base, len;
    uint32_t type;
} ExpectMmap;

static void check_mmap(Fixture *f, uint32_t mbi, const ExpectMmap *want, size_t n)
{
    g_assert_cmphex(rd32(f, mbi + 44), ==, n * 24);
    uint32_t e = rd32(f, mbi + 48);
    for (size_t i = 0; i < n; i++, e += 24) {
        g_assert_cmpuint(rd32(f, e), ==, 20);
        g_assert_cmphex(ld64(gpa_host(f, e + 4)), ==, want[i].base);
        g_assert_cmphex(ld64(gpa_host(f, e + 12)), ==, want[i].len);
        g_assert_cmpuint(rd32(f, e + 20), ==, want[i].type);
    }
}

static void test_elf_two_segments(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *img = build_kernel(0x3);
    const char *kernel = fixture_write(f, "kernel.elf", img, KERNEL_LEN);
    memset(gpa_host(f, 0x102000), 0xaa, 0x2000); /* bss must come out zeroed */

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, "console=ttyS0 quiet", NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmphex(boot.entry, ==, KERNEL_ENTRY);

    g_assert_cmpmem(gpa_host(f, 0x100000), 0x200, img + 0x1000, 0x200);
    g_assert_cmpmem(gpa_host(f, 0x102000), 0x100, img + 0x2000, 0x100);
    for (uint32_t a = 0x102100; a < 0x103100; a++) {
        g_assert_cmpuint(*gpa_host(f, a), ==, 0);
    }
    g_assert_cmpuint(*gpa_host(f, 0x103100), ==, 0xaa); /* nothing past p_memsz */
    g_assert_cmpuint(*gpa_host(f, 0x100200), ==, 0);    /* nor past the text's p_memsz */

    uint32_t mbi = boot.mbi_addr;
    g_assert_cmphex(mbi, ==, 0x104000); /* page after the kernel's last byte */
    g_assert_cmphex(rd32(f, mbi + 0), ==, MBI_EXPECTED_FLAGS);
    g_assert_cmpuint(rd32(f, mbi + 4), ==, 639);
    g_assert_cmpuint(rd32(f, mbi + 8), ==, (RAM_SIZE - MiB) / 1024);
    g_assert_cmphex(rd32(f, mbi + 12), ==, 0x8000ffff);
    g_autofree char *cmdline = g_strdup_printf("%s console=ttyS0 quiet", kernel);
    g_assert_cmpstr(rdstr(f, rd32(f, mbi + 16)), ==, cmdline);
    g_assert_cmpuint(rd32(f, mbi + 20), ==, 0);
    g_assert_cmpstr(rdstr(f, rd32(f, mbi + 64)), ==, "kvmloop");
    for (uint32_t off = 28; off < 44; off += 4) {
        g_assert_cmpuint(rd32(f, mbi + off), ==, 0); /* no symbols */
    }
    const ExpectMmap want[] = {
        {0, 0x9fc00, MMAP_AVAILABLE},
        {0x9fc00, 0x400, MMAP_RESERVED},
        {0xf0000, 0x10000, MMAP_RESERVED},
        {0x100000, RAM_SIZE - MiB, MMAP_AVAILABLE},
    };
    check_mmap(f, mbi, want, G_N_ELEMENTS(want));

    /* Everything the mbi points at lies before load_end. */
    g_assert_cmpuint(rd32(f, mbi + 64) + sizeof("kvmloop"), <=, boot.load_end);
    g_assert_cmpuint(rd32(f, mbi + 16), <, boot.load_end);
    g_assert_cmpuint(rd32(f, mbi + 48) + 4 * 24, <=, boot.load_end);
    g_assert_cmpuint(boot.load_end, >, mbi + 88);
}

static void test_cmdline_null(Fixture *f, gconstpointer data)
{
    const char *kernel = write_kernel(f, 0x2);
    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, NULL, NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmphex(rd32(f, boot.mbi_addr), ==, MBI_EXPECTED_FLAGS);
    /* QEMU formats "%s %s" with an empty -append: the kernel path and a space. */
    g_autofree char *want = g_strdup_printf("%s ", kernel);
    g_assert_cmpstr(rdstr(f, rd32(f, boot.mbi_addr + 16)), ==, want);
}

static void test_modules(Fixture *f, gconstpointer data)
{
    const char *kernel = write_kernel(f, 0x1);
    uint8_t m1[5000];
    uint8_t m2[3] = {1, 2, 3};
    fill_pattern(m1, sizeof(m1));
    const char *p1 = fixture_write(f, "mod1.bin", m1, sizeof(m1));
    const char *p2 = fixture_write(f, "mod2.bin", m2, sizeof(m2));
    g_autofree char *s1 = g_strdup_printf("%s arg1 arg2=x", p1);
    const char *const mods[] = {s1, p2};

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, "", mods, 2, &boot, &err));
    g_assert_no_error(err);

    uint32_t mbi = boot.mbi_addr;
    g_assert_cmpuint(rd32(f, mbi + 20), ==, 2);
    uint32_t list = rd32(f, mbi + 24);
    g_assert_cmphex(rd32(f, list + 0), ==, 0x104000);
    g_assert_cmphex(rd32(f, list + 4), ==, 0x104000 + sizeof(m1));
    g_assert_cmpstr(rdstr(f, rd32(f, list + 8)), ==, s1);
    g_assert_cmpuint(rd32(f, list + 12), ==, 0);
    g_assert_cmphex(rd32(f, list + 16), ==, 0x106000);
    g_assert_cmphex(rd32(f, list + 20), ==, 0x106003);
    g_assert_cmpstr(rdstr(f, rd32(f, list + 24)), ==, p2);
    g_assert_cmpmem(gpa_host(f, 0x104000), sizeof(m1), m1, sizeof(m1));
    g_assert_cmpmem(gpa_host(f, 0x106000), sizeof(m2), m2, sizeof(m2));
    g_assert_cmphex(mbi, ==, 0x107000);
    g_autofree char *want = g_strdup_printf("%s ", kernel);
    g_assert_cmpstr(rdstr(f, rd32(f, mbi + 16)), ==, want);
    g_assert_cmpuint(rd32(f, list + 24), <, boot.load_end);
}

static void test_module_missing(Fixture *f, gconstpointer data)
{
    const char *kernel = write_kernel(f, 0x1);
    g_autofree char *path = g_build_filename(f->dir, "absent.bin", NULL);
    g_autofree char *mod = g_strdup_printf("%s some args", path);
    const char *const mods[] = {mod};
    g_autofree char *want = g_strdup_printf("module '%s': No such file or directory", path);
    const char *const parts[] = {want, NULL};
    expect_load_error(f, kernel, mods, 1, G_FILE_ERROR_NOENT, parts);
}

/* A flat image whose header's address fields say where it goes (a.out kludge). */
static void test_aout_kludge(Fixture *f, gconstpointer data)
{
    enum { LEN = 0x3000, HDR = 0x40, LOAD = 0x200000 };
    g_autofree uint8_t *img = g_malloc(LEN);
    fill_pattern(img, LEN);
    const uint32_t aout[] = {LOAD + HDR, LOAD, LOAD + 0x2800, LOAD + 0x5000, LOAD + 0x80};
    put_mb_header(img, HDR, MB_AOUT | 0x3, aout);
    const char *kernel = fixture_write(f, "kernel.aout", img, LEN);
    memset(gpa_host(f, LOAD + 0x2800), 0xaa, 0x3000);

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, "x", NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmphex(boot.entry, ==, LOAD + 0x80);
    g_assert_cmpmem(gpa_host(f, LOAD), 0x2800, img, 0x2800);
    for (uint32_t a = LOAD + 0x2800; a < LOAD + 0x5000; a++) {
        g_assert_cmpuint(*gpa_host(f, a), ==, 0);
    }
    g_assert_cmphex(boot.mbi_addr, ==, LOAD + 0x5000);
}

/* load_end_addr 0 means the rest of the file; the image starts before the header. */
static void test_aout_whole_file(Fixture *f, gconstpointer data)
{
    enum { LEN = 0x1234, HDR = 0x100, LOAD = 0x300000 };
    g_autofree uint8_t *img = g_malloc(LEN);
    fill_pattern(img, LEN);
    /* header_addr - load_addr = 0x40: the image starts 0x40 before the header, at 0xc0. */
    const uint32_t aout[] = {LOAD + 0x40, LOAD, 0, 0, LOAD};
    put_mb_header(img, HDR, MB_AOUT, aout);
    const char *kernel = fixture_write(f, "kernel.bin", img, LEN);

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, NULL, NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(gpa_host(f, LOAD), LEN - 0xc0, img + 0xc0, LEN - 0xc0);
    g_assert_cmphex(boot.mbi_addr, ==, LOAD + 0x2000);
}

/* Flag 16 on an ELF: QEMU uses the address fields and ignores the program headers. */
static void test_aout_wins_over_elf(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *img =
        build_elf32(KERNEL_LEN, kernel_segs, G_N_ELEMENTS(kernel_segs), KERNEL_ENTRY);
    const uint32_t aout[] = {0x401000, 0x400000, 0x400000 + KERNEL_LEN, 0, 0x400123};
    put_mb_header(img, 0x1000, MB_AOUT, aout);
    const char *kernel = fixture_write(f, "kernel.elf", img, KERNEL_LEN);

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, NULL, NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmphex(boot.entry, ==, 0x400123);
    g_assert_cmpmem(gpa_host(f, 0x400000), KERNEL_LEN, img, KERNEL_LEN);
    g_assert_cmpuint(*gpa_host(f, 0x100000), ==, 0); /* program headers ignored */
}

static void test_aout_bad_fields(Fixture *f, gconstpointer data)
{
    enum { LEN = 0x1000, HDR = 0x40 };
    g_autofree uint8_t *img = g_malloc0(LEN);
    const uint32_t below[] = {0x100000, 0x100100, 0, 0, 0x100000};
    put_mb_header(img, HDR, MB_AOUT, below);
    const char *kernel = fixture_write(f, "below.bin", img, LEN);
    const char *const p1[] = {kernel, "header_addr is below load_addr", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p1);

    const uint32_t past[] = {0x100040, 0x100000, 0x100000 + 0x2000, 0, 0x100000};
    put_mb_header(img, HDR, MB_AOUT, past);
    kernel = fixture_write(f, "short.bin", img, LEN);
    const char *const p2[] = {kernel, "is truncated", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p2);

    const uint32_t bss[] = {0x100040, 0x100000, 0x100800, 0x100400, 0x100000};
    put_mb_header(img, HDR, MB_AOUT, bss);
    kernel = fixture_write(f, "bss.bin", img, LEN);
    const char *const p3[] = {kernel, "bss_end_addr", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p3);
}

static void test_elf64(Fixture *f, gconstpointer data)
{
    uint8_t img[0x200] = {0};
    memcpy(img, ELFMAG, SELFMAG);
    img[EI_CLASS] = ELFCLASS64;
    img[EI_DATA] = ELFDATA2LSB;
    st16(img + offsetof(Elf64_Ehdr, e_type), ET_EXEC);
    st16(img + offsetof(Elf64_Ehdr, e_machine), EM_X86_64);
    put_mb_header(img, 0x100, 0x3, NULL);
    const char *kernel = fixture_write(f, "kernel64.elf", img, sizeof(img));
    g_autofree char *want =
        g_strdup_printf("kernel '%s' is a 64-bit ELF; multiboot needs a 32-bit kernel", kernel);
    const char *const parts[] = {want, NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);
}

static void test_no_header(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *img = build_elf32(KERNEL_LEN, kernel_segs, 1, KERNEL_ENTRY);
    const char *kernel = fixture_write(f, "plain.elf", img, KERNEL_LEN);
    g_autofree char *want =
        g_strdup_printf("kernel '%s' has no multiboot header in its first 8 KiB", kernel);
    const char *const parts[] = {want, NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);
    g_assert_false(multiboot_probe(img, KERNEL_LEN));
}

static void test_bad_checksum(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *img = build_kernel(0x3);
    st32(img + 0x1008, ld32(img + 0x1008) + 1);
    g_assert_false(multiboot_probe(img, KERNEL_LEN));
    const char *kernel = fixture_write(f, "badsum.elf", img, KERNEL_LEN);
    const char *const parts[] = {kernel, "has no multiboot header in its first 8 KiB", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);
}

static void test_probe(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *buf = g_malloc0(0x3000);
    g_assert_false(multiboot_probe(buf, 0x3000));
    put_mb_header(buf, 0x2, 0, NULL); /* not 4-byte aligned */
    g_assert_false(multiboot_probe(buf, 0x3000));
    memset(buf, 0, 0x3000);
    put_mb_header(buf, 8192 - 48, 0, NULL); /* past QEMU's search window */
    g_assert_false(multiboot_probe(buf, 0x3000));
    put_mb_header(buf, 8192 - 52, 0, NULL);
    g_assert_true(multiboot_probe(buf, 0x3000));
    g_assert_false(multiboot_probe(buf, 8192 - 44)); /* header cut by the buffer's end */
    g_assert_true(multiboot_probe(buf, 8192 - 40));
    memset(buf, 0, 0x3000);
    const uint32_t aout[5] = {0};
    put_mb_header(buf, 0, 0x1fff3, aout); /* any flags: the loader judges them */
    g_assert_true(multiboot_probe(buf, 12));
}

static void test_flags(Fixture *f, gconstpointer data)
{
    const char *kernel = write_kernel(f, 0x8 | 0x3);
    const char *const parts[] = {kernel, "unsupported", "0x8", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);

    /* Bit 2 (video mode): QEMU loads the kernel without video information. */
    g_autofree uint8_t *img = build_kernel(0x7);
    kernel = fixture_write(f, "video.elf", img, KERNEL_LEN);
    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, NULL, NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmphex(rd32(f, boot.mbi_addr), ==, MBI_EXPECTED_FLAGS);
}

static void test_truncated(Fixture *f, gconstpointer data)
{
    /* The data segment claims file bytes past the end. */
    g_autofree uint8_t *img = build_kernel(0x3);
    const char *kernel = fixture_write(f, "cut.elf", img, KERNEL_LEN - 0x10);
    const char *const p1[] = {kernel, "past the end of the file", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p1);

    /* Program headers past the end. */
    st32(img + offsetof(Elf32_Ehdr, e_phoff), KERNEL_LEN - 8);
    kernel = fixture_write(f, "phdrs.elf", img, KERNEL_LEN);
    const char *const p2[] = {kernel, "ELF program headers", "past the end of the file", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p2);

    /* An ELF header cut short, with the multiboot header right after the identification. */
    uint8_t tiny[40] = {0};
    memcpy(tiny, ELFMAG, SELFMAG);
    tiny[EI_CLASS] = ELFCLASS32;
    tiny[EI_DATA] = ELFDATA2LSB;
    put_mb_header(tiny, 16, 0x3, NULL);
    kernel = fixture_write(f, "tiny.elf", tiny, sizeof(tiny));
    const char *const p3[] = {kernel, "ELF header truncated", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p3);

    /* Not an ELF at all, and no address fields. */
    uint8_t flat[64] = {0};
    put_mb_header(flat, 0, 0x3, NULL);
    kernel = fixture_write(f, "flat.bin", flat, sizeof(flat));
    const char *const p4[] = {kernel, "is not an ELF file", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, p4);
}

static void test_segment_outside_ram(Fixture *f, gconstpointer data)
{
    TestSeg segs[2];
    memcpy(segs, kernel_segs, sizeof(segs[0]));
    segs[1] = (TestSeg){PT_LOAD, 0x2000, 0x4000000, 0x4000000, 0x100, 0x1000, PF_R | PF_W};
    g_autofree uint8_t *img = build_elf32(KERNEL_LEN, segs, 2, KERNEL_ENTRY);
    put_mb_header(img, 0x1000, 0x3, NULL);
    const char *kernel = fixture_write(f, "far.elf", img, KERNEL_LEN);
    g_autofree char *want = g_strdup_printf(
        "kernel '%s': ELF segment 0x4000000 - 0x4001000 is outside guest RAM", kernel);
    const char *const parts[] = {want, NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);
    g_assert_cmpuint(*gpa_host(f, 0x100000), ==, 0); /* nothing written on failure */
}

static void test_segment_in_bios_area(Fixture *f, gconstpointer data)
{
    const TestSeg seg = {PT_LOAD, 0x1000, 0xf0000, 0xf0000, 0x200, 0x200, PF_R | PF_X};
    g_autofree uint8_t *img = build_elf32(KERNEL_LEN, &seg, 1, 0xf0000);
    put_mb_header(img, 0x1000, 0x3, NULL);
    const char *kernel = fixture_write(f, "bios.elf", img, KERNEL_LEN);
    const char *const parts[] = {kernel, "ELF segment 0xf0000 - 0xf0200 overlaps", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);
}

/* A kernel at the very top of RAM leaves no room for the boot information. */
static void test_info_does_not_fit(Fixture *f, gconstpointer data)
{
    const uint32_t top = RAM_SIZE - 0x1000;
    const TestSeg seg = {PT_LOAD, 0x1000, top, top, 0x200, 0x1000, PF_R | PF_X};
    g_autofree uint8_t *img = build_elf32(KERNEL_LEN, &seg, 1, top);
    put_mb_header(img, 0x1000, 0x3, NULL);
    const char *kernel = fixture_write(f, "top.elf", img, KERNEL_LEN);
    const char *const parts[] = {kernel, "boot information 0x2000000", "outside guest RAM", NULL};
    expect_load_error(f, kernel, NULL, 0, G_FILE_ERROR_INVAL, parts);

    /* A module that runs off the end of RAM. */
    const TestSeg low = {PT_LOAD, 0x1000, top - 0x10000, top - 0x10000, 0x200, 0x200, PF_X};
    g_autofree uint8_t *img2 = build_elf32(KERNEL_LEN, &low, 1, top);
    put_mb_header(img2, 0x1000, 0x3, NULL);
    kernel = fixture_write(f, "low.elf", img2, KERNEL_LEN);
    g_autofree uint8_t *big = g_malloc0(0x20000);
    const char *mod = fixture_write(f, "big.bin", big, 0x20000);
    const char *const mods[] = {mod};
    g_autofree char *want = g_strdup_printf("module '%s' 0x1ff0000 - 0x2010000 is outside", mod);
    const char *const p2[] = {kernel, want, NULL};
    expect_load_error(f, kernel, mods, 1, G_FILE_ERROR_INVAL, p2);
}

static void test_missing_kernel(Fixture *f, gconstpointer data)
{
    g_autofree char *path = g_build_filename(f->dir, "nope", NULL);
    g_autofree char *want = g_strdup_printf("kernel '%s': No such file or directory", path);
    const char *const parts[] = {want, NULL};
    expect_load_error(f, path, NULL, 0, G_FILE_ERROR_NOENT, parts);

    const char *const dir[] = {f->dir, "Is a directory", NULL};
    expect_load_error(f, f->dir, NULL, 0, G_FILE_ERROR_ISDIR, dir);
}

/* Higher-half kernels: QEMU moves e_entry from p_vaddr to p_paddr in the executable segment. */
static void test_higher_half_entry(Fixture *f, gconstpointer data)
{
    const TestSeg segs[] = {
        {PT_LOAD, 0x1000, 0xc0100000, 0x100000, 0x200, 0x200, PF_R | PF_X},
    };
    g_autofree uint8_t *img = build_elf32(KERNEL_LEN, segs, 1, 0xc0100010);
    put_mb_header(img, 0x1000, 0x3, NULL);
    const char *kernel = fixture_write(f, "high.elf", img, KERNEL_LEN);

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, NULL, NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmphex(boot.entry, ==, 0x100010);
    g_assert_cmpmem(gpa_host(f, 0x100000), 0x200, img + 0x1000, 0x200);
    g_assert_cmphex(boot.mbi_addr, ==, 0x101000);
}

/* RAM above 4 GiB shows up as a further available range; mem_upper stays below the hole. */
static void test_high_block(Fixture *f, gconstpointer data)
{
    f->gm.blocks[1] =
        (GuestMemBlock){.gpa = HIGH_GPA, .size = HIGH_SIZE, .host = g_malloc0(HIGH_SIZE)};
    f->gm.nblocks = 2;
    f->gm.ram_size += HIGH_SIZE;
    const char *kernel = write_kernel(f, 0x3);

    GError *err = NULL;
    MultibootBoot boot;
    g_assert_true(multiboot_load(&f->gm, kernel, NULL, NULL, 0, &boot, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(rd32(f, boot.mbi_addr + 8), ==, (RAM_SIZE - MiB) / 1024);
    const ExpectMmap want[] = {
        {0, 0x9fc00, MMAP_AVAILABLE},          {0x9fc00, 0x400, MMAP_RESERVED},
        {0xf0000, 0x10000, MMAP_RESERVED},     {0x100000, RAM_SIZE - MiB, MMAP_AVAILABLE},
        {HIGH_GPA, HIGH_SIZE, MMAP_AVAILABLE},
    };
    check_mmap(f, boot.mbi_addr, want, G_N_ELEMENTS(want));
}

static void add(const char *name, void (*fn)(Fixture *, gconstpointer))
{
    g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add("/multiboot/elf/two-segments", test_elf_two_segments);
    add("/multiboot/elf/higher-half-entry", test_higher_half_entry);
    add("/multiboot/cmdline-null", test_cmdline_null);
    add("/multiboot/modules", test_modules);
    add("/multiboot/module-missing", test_module_missing);
    add("/multiboot/aout/kludge", test_aout_kludge);
    add("/multiboot/aout/whole-file", test_aout_whole_file);
    add("/multiboot/aout/wins-over-elf", test_aout_wins_over_elf);
    add("/multiboot/aout/bad-fields", test_aout_bad_fields);
    add("/multiboot/error/elf64", test_elf64);
    add("/multiboot/error/no-header", test_no_header);
    add("/multiboot/error/bad-checksum", test_bad_checksum);
    add("/multiboot/error/flags", test_flags);
    add("/multiboot/error/truncated", test_truncated);
    add("/multiboot/error/segment-outside-ram", test_segment_outside_ram);
    add("/multiboot/error/segment-in-bios-area", test_segment_in_bios_area);
    add("/multiboot/error/does-not-fit", test_info_does_not_fit);
    add("/multiboot/error/missing-kernel", test_missing_kernel);
    add("/multiboot/probe", test_probe);
    add("/multiboot/mmap/high-block", test_high_block);
    return g_test_run();
}
