/* The Linux boot protocol and PVH loaders, the e820 map and the x86 CPU description, field by
 * field. */
#include <elf.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "kvmloop/linux_boot.h"
#include "kvmloop/x86_cpu.h"

#define MiB (1ULL << 20)

typedef struct Ram {
    GuestMem gm;
    uint8_t *buf;
} Ram;

/* @size bytes of RAM laid out as the pc machine does (above 3 GiB goes high;
 * the tests use small sizes, so one block). */
static void ram_init(Ram *r, uint64_t size)
{
    r->buf = g_malloc0(size);
    r->gm = (GuestMem){.nblocks = 1, .ram_size = size};
    r->gm.blocks[0] = (GuestMemBlock){.gpa = 0, .size = size, .host = r->buf};
}

static void ram_free(Ram *r)
{
    g_free(r->buf);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)v);
    wr16(p + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static char *write_temp(const char *name, const void *data, size_t len)
{
    g_autofree char *dir = g_dir_make_tmp("kvmloop-boot-XXXXXX", NULL);
    g_assert_nonnull(dir);
    char *path = g_build_filename(dir, name, NULL);
    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    return path;
}

static void remove_temp(char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
}

/* A bzImage with 1 setup sector + @pm_len bytes of protected-mode code. */
static uint8_t *fake_bzimage(size_t pm_len, uint16_t version, size_t *len)
{
    size_t setup = 2 * 512;
    uint8_t *b = g_malloc0(setup + pm_len);
    b[0x1f1] = 1; /* setup_sects */
    wr32(b + 0x1f4, (uint32_t)(pm_len / 16));
    wr16(b + 0x1fe, 0xaa55);
    b[0x200] = 0xeb;
    b[0x201] = 0x6a; /* header ends at 0x26c */
    memcpy(b + 0x202, "HdrS", 4);
    wr16(b + 0x206, version);
    b[0x211] = 0x01;                      /* LOADED_HIGH */
    wr32(b + 0x22c, 0x7fffffff);          /* initrd_addr_max */
    wr32(b + 0x230, 0x200000);            /* kernel_alignment */
    b[0x234] = 1;                         /* relocatable */
    wr16(b + 0x236, 0x3);                 /* XLF_KERNEL_64 | above 4G */
    wr32(b + 0x238, 2047);                /* cmdline_size */
    wr64(b + 0x258, 0x1000000);           /* pref_address */
    wr32(b + 0x260, (uint32_t)(4 * MiB)); /* init_size */
    for (size_t i = 0; i < pm_len; i++) {
        b[setup + i] = (uint8_t)(i * 7);
    }
    *len = setup + pm_len;
    return b;
}

static void test_e820_small(void)
{
    Ram r;
    ram_init(&r, 64 * MiB);
    E820Entry e[E820_MAX_ENTRIES];
    size_t n = pc_e820_map(&r.gm, e, G_N_ELEMENTS(e));
    g_assert_cmpuint(n, ==, 3);
    g_assert_cmphex(e[0].addr, ==, 0);
    g_assert_cmphex(e[0].size, ==, 0x9fc00);
    g_assert_cmpuint(e[0].type, ==, E820_RAM);
    g_assert_cmphex(e[1].addr, ==, 0x9fc00);
    g_assert_cmphex(e[1].addr + e[1].size, ==, 0x100000);
    g_assert_cmpuint(e[1].type, ==, E820_RESERVED);
    g_assert_cmphex(e[2].addr, ==, 0x100000);
    g_assert_cmphex(e[2].addr + e[2].size, ==, 64 * MiB);
    g_assert_cmpuint(e[2].type, ==, E820_RAM);
    ram_free(&r);
}

static void test_e820_high(void)
{
    /* 4 GiB of RAM: 3 GiB below the PCI hole, 1 GiB from 4 GiB up. */
    GuestMem gm = {.nblocks = 2, .ram_size = 4096 * MiB};
    gm.blocks[0] = (GuestMemBlock){.gpa = 0, .size = 3072 * MiB};
    gm.blocks[1] = (GuestMemBlock){.gpa = 4096 * MiB, .size = 1024 * MiB};
    E820Entry e[E820_MAX_ENTRIES];
    size_t n = pc_e820_map(&gm, e, G_N_ELEMENTS(e));
    g_assert_cmpuint(n, ==, 4);
    g_assert_cmphex(e[2].addr + e[2].size, ==, 3072 * MiB);
    g_assert_cmphex(e[3].addr, ==, 4096 * MiB);
    g_assert_cmphex(e[3].size, ==, 1024 * MiB);
    g_assert_cmpuint(e[3].type, ==, E820_RAM);
}

static void test_bzimage_zero_page(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_bzimage(64 * 1024, 0x020f, &len);
    char *kpath = write_temp("bzImage", img, len);
    uint8_t initrd[10000];
    memset(initrd, 0x5a, sizeof(initrd));
    char *ipath = write_temp("initrd", initrd, sizeof(initrd));
    Ram r;
    ram_init(&r, 64 * MiB);

    LinuxBootArgs a = {
        .kernel = kpath, .initrd = ipath, .cmdline = "console=ttyS0 quiet", .rsdp_addr = 0xe0000};
    LinuxBoot b;
    g_autoptr(GError) err = NULL;
    g_assert_true(linux_load_bzimage(&r.gm, &a, &b, &err));
    g_assert_no_error(err);

    g_assert_cmpint(b.protocol, ==, BOOT_PROTOCOL_BZIMAGE);
    g_assert_cmphex(b.kernel_addr, ==, 0x1000000);
    g_assert_cmphex(b.entry, ==, 0x1000200);
    g_assert_cmphex(b.boot_info, ==, BOOT_ZERO_PAGE_ADDR);
    /* The protected-mode code, byte for byte, at the load address. */
    g_assert_cmpmem(r.buf + 0x1000000, 64 * 1024, img + 1024, 64 * 1024);

    const uint8_t *bp = r.buf + BOOT_ZERO_PAGE_ADDR;
    g_assert_cmpmem(bp + 0x202, 4, "HdrS", 4);
    g_assert_cmpuint(bp[0x210], ==, 0xff);        /* type_of_loader */
    g_assert_cmpuint(bp[0x211] & 0x81, ==, 0x01); /* loaded high, no heap */
    g_assert_cmphex(rd32(bp + 0x228), ==, BOOT_CMDLINE_ADDR);
    g_assert_cmpstr((const char *)r.buf + BOOT_CMDLINE_ADDR, ==, "console=ttyS0 quiet");
    /* The initrd: page aligned, at the top of RAM, after the kernel's init_size. */
    uint32_t ird = rd32(bp + 0x218);
    g_assert_cmphex(ird, ==, b.initrd_addr);
    g_assert_cmpuint(rd32(bp + 0x21c), ==, sizeof(initrd));
    g_assert_cmphex(ird & 0xfff, ==, 0);
    g_assert_cmphex(ird + sizeof(initrd), <=, 64 * MiB);
    g_assert_cmphex(ird, >=, 64 * MiB - 4 * 4096);
    g_assert_cmpmem(r.buf + ird, sizeof(initrd), initrd, sizeof(initrd));
    g_assert_cmphex(rd64(bp + 0x070), ==, 0xe0000); /* acpi_rsdp_addr */
    /* e820 in the zero page equals pc_e820_map(). */
    E820Entry e[E820_MAX_ENTRIES];
    size_t n = pc_e820_map(&r.gm, e, G_N_ELEMENTS(e));
    g_assert_cmpuint(bp[0x1e8], ==, n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *z = bp + 0x2d0 + 20 * i;
        g_assert_cmphex(rd64(z), ==, e[i].addr);
        g_assert_cmphex(rd64(z + 8), ==, e[i].size);
        g_assert_cmpuint(rd32(z + 16), ==, e[i].type);
    }
    /* Identity page tables and the boot GDT. */
    g_assert_cmphex(rd64(r.buf + BOOT_PML4_ADDR), ==, (BOOT_PML4_ADDR + 0x1000) | 3);
    const uint8_t *pd = r.buf + BOOT_PML4_ADDR + 0x2000;
    g_assert_cmphex(rd64(pd + 8 * 5), ==, (5ULL << 21) | 0x83);
    g_assert_cmphex(rd64(pd + 8 * 2047), ==, (2047ULL << 21) | 0x83);
    g_assert_cmphex(rd64(r.buf + BOOT_GDT_ADDR + 0x10), ==, 0x00af9b000000ffffULL);

    ram_free(&r);
    remove_temp(kpath);
    remove_temp(ipath);
}

static void expect_bzimage_error(const uint8_t *img, size_t len, uint64_t ram, const char *cmdline,
                                 const char *needle)
{
    char *kpath = write_temp("bzImage", img, len);
    Ram r;
    ram_init(&r, ram);
    LinuxBootArgs a = {.kernel = kpath, .cmdline = cmdline};
    LinuxBoot b;
    g_autoptr(GError) err = NULL;
    g_assert_false(linux_load_bzimage(&r.gm, &a, &b, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("'%s' does not contain '%s'", err->message, needle);
    }
    g_assert_null(strchr(err->message, '\n'));
    ram_free(&r);
    remove_temp(kpath);
}

static void test_bzimage_errors(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_bzimage(4096, 0x020f, &len);

    expect_bzimage_error(img, len - 100, 64 * MiB, NULL, "truncated");
    expect_bzimage_error(img, len, 8 * MiB, NULL, "give more memory with -m");

    g_autofree char *longcmd = g_strnfill(3000, 'x');
    expect_bzimage_error(img, len, 64 * MiB, longcmd, "at most 2047");

    g_autofree uint8_t *old = fake_bzimage(4096, 0x020a, &len);
    expect_bzimage_error(old, len, 64 * MiB, NULL, "too old");

    g_autofree uint8_t *b32 = g_memdup2(img, len);
    wr16(b32 + 0x236, 0);
    expect_bzimage_error(b32, len, 64 * MiB, NULL, "no 64-bit entry");

    g_autofree uint8_t *low = g_memdup2(img, len);
    low[0x211] = 0;
    expect_bzimage_error(low, len, 64 * MiB, NULL, "not loadable high");

    g_autofree uint8_t *align = g_memdup2(img, len);
    wr32(align + 0x230, 0x30000);
    expect_bzimage_error(align, len, 64 * MiB, NULL, "power of two");

    g_autofree uint8_t *nomagic = g_memdup2(img, len);
    nomagic[0x202] = 'X';
    expect_bzimage_error(nomagic, len, 64 * MiB, NULL, "not a bzImage");
}

static void test_bzimage_initrd_too_big(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_bzimage(4096, 0x020f, &len);
    char *kpath = write_temp("bzImage", img, len);
    g_autofree uint8_t *big = g_malloc0(20 * MiB);
    char *ipath = write_temp("initrd", big, 20 * MiB);
    Ram r;
    ram_init(&r, 32 * MiB);
    LinuxBootArgs a = {.kernel = kpath, .initrd = ipath};
    LinuxBoot b;
    g_autoptr(GError) err = NULL;
    g_assert_false(linux_load_bzimage(&r.gm, &a, &b, &err));
    g_assert_nonnull(strstr(err->message, "does not fit"));
    ram_free(&r);
    remove_temp(kpath);
    remove_temp(ipath);
}

/* A 64-bit ELF with one PT_LOAD at 16 MiB and a PT_NOTE with the PVH entry
 * (if @with_note). */
static uint8_t *fake_vmlinux(bool with_note, size_t *len)
{
    const size_t code_off = 0x1000, code_len = 0x2000, note_off = 0x800;
    uint8_t *b = g_malloc0(code_off + code_len);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = 0xffffffff81000000ULL;
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 2;
    Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
    ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                         .p_offset = code_off,
                         .p_vaddr = 0xffffffff81000000ULL,
                         .p_paddr = 0x1000000,
                         .p_filesz = code_len,
                         .p_memsz = code_len + 0x3000};
    /* A note before the PVH one, to check the walk. */
    uint8_t *n = b + note_off;
    wr32(n, 4);
    wr32(n + 4, 8);
    wr32(n + 8, 5); /* XEN_ELFNOTE_XEN_VERSION */
    memcpy(n + 12, "Xen", 4);
    memcpy(n + 16, "xen-3.0", 8);
    n += 24;
    wr32(n, 4);
    wr32(n + 4, 4);
    wr32(n + 8, with_note ? 18 : 17);
    memcpy(n + 12, "Xen", 4);
    wr32(n + 16, 0x1000400);
    ph[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = note_off, .p_filesz = 44};
    for (size_t i = 0; i < code_len; i++) {
        b[code_off + i] = (uint8_t)(i ^ 0xa5);
    }
    *len = code_off + code_len;
    return b;
}

static void test_pvh_start_info(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_vmlinux(true, &len);
    char *kpath = write_temp("vmlinux", img, len);
    uint8_t initrd[5000];
    memset(initrd, 0x3c, sizeof(initrd));
    char *ipath = write_temp("initrd", initrd, sizeof(initrd));
    Ram r;
    ram_init(&r, 64 * MiB);

    BootProtocol p;
    g_autoptr(GError) err = NULL;
    g_assert_true(kernel_probe(kpath, &p, &err));
    g_assert_cmpint(p, ==, BOOT_PROTOCOL_PVH);

    LinuxBootArgs a = {
        .kernel = kpath, .initrd = ipath, .cmdline = "root=/dev/ram0", .rsdp_addr = 0xe0000};
    LinuxBoot b;
    g_assert_true(linux_load_pvh(&r.gm, &a, &b, &err));
    g_assert_cmphex(b.entry, ==, 0x1000400);
    g_assert_cmphex(b.boot_info, ==, BOOT_START_INFO_ADDR);
    g_assert_cmpmem(r.buf + 0x1000000, 0x2000, img + 0x1000, 0x2000);
    /* The bss part of the segment is zeroed. */
    for (size_t i = 0; i < 0x3000; i++) {
        g_assert_cmpuint(r.buf[0x1002000 + i], ==, 0);
    }

    const uint8_t *si = r.buf + BOOT_START_INFO_ADDR;
    g_assert_cmphex(rd32(si), ==, 0x336ec578);
    g_assert_cmpuint(rd32(si + 4), ==, 1);
    g_assert_cmpuint(rd32(si + 12), ==, 1); /* nr_modules */
    g_assert_cmphex(rd64(si + 24), ==, BOOT_CMDLINE_ADDR);
    g_assert_cmpstr((const char *)r.buf + rd64(si + 24), ==, "root=/dev/ram0");
    g_assert_cmphex(rd64(si + 32), ==, 0xe0000);
    const uint8_t *mod = r.buf + rd64(si + 16);
    g_assert_cmphex(rd64(mod), ==, b.initrd_addr);
    g_assert_cmpuint(rd64(mod + 8), ==, sizeof(initrd));
    g_assert_cmpmem(r.buf + b.initrd_addr, sizeof(initrd), initrd, sizeof(initrd));
    E820Entry e[E820_MAX_ENTRIES];
    size_t n = pc_e820_map(&r.gm, e, G_N_ELEMENTS(e));
    g_assert_cmpuint(rd32(si + 48), ==, n);
    const uint8_t *mm = r.buf + rd64(si + 40);
    for (size_t i = 0; i < n; i++) {
        g_assert_cmphex(rd64(mm + 24 * i), ==, e[i].addr);
        g_assert_cmphex(rd64(mm + 24 * i + 8), ==, e[i].size);
        g_assert_cmpuint(rd32(mm + 24 * i + 16), ==, e[i].type);
    }
    ram_free(&r);
    remove_temp(kpath);
    remove_temp(ipath);
}

static void test_probe_errors(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_vmlinux(false, &len);
    char *kpath = write_temp("vmlinux", img, len);
    BootProtocol p;
    g_autoptr(GError) err = NULL;
    g_assert_false(kernel_probe(kpath, &p, &err));
    g_assert_nonnull(strstr(err->message, "an ELF without a PVH entry note"));
    remove_temp(kpath);

    g_clear_error(&err);
    char *junk = write_temp("junk", "hello, world", 12);
    g_assert_false(kernel_probe(junk, &p, &err));
    g_assert_nonnull(strstr(err->message, "not a kernel"));
    remove_temp(junk);

    g_clear_error(&err);
    g_assert_false(kernel_probe("/nonexistent/kernel", &p, &err));
    g_assert_nonnull(strstr(err->message, "No such file"));

    /* A truncated ELF: the segment runs past the end of the file. */
    g_clear_error(&err);
    g_autofree uint8_t *full = fake_vmlinux(true, &len);
    char *cut = write_temp("vmlinux", full, len - 0x800);
    Ram r;
    ram_init(&r, 64 * MiB);
    LinuxBootArgs a = {.kernel = cut};
    LinuxBoot b;
    g_assert_false(linux_load_pvh(&r.gm, &a, &b, &err));
    g_assert_nonnull(strstr(err->message, "outside the file"));
    ram_free(&r);
    remove_temp(cut);

    /* RAM too small for the segment at 16 MiB. */
    g_clear_error(&err);
    char *k2 = write_temp("vmlinux", full, len);
    ram_init(&r, 8 * MiB);
    a.kernel = k2;
    g_assert_false(linux_load_pvh(&r.gm, &a, &b, &err));
    g_assert_nonnull(strstr(err->message, "give more memory with -m"));
    ram_free(&r);
    remove_temp(k2);
}

static void test_topology_parse(void)
{
    static const struct {
        const char *spec;
        int cpus, sockets, cores, threads;
    } good[] = {
        {"4", 4, 4, 1, 1},
        {"cpus=2", 2, 2, 1, 1},
        {"4,cores=2", 4, 2, 2, 1},
        {"8,sockets=2,cores=2,threads=2", 8, 2, 2, 2},
        {"sockets=1,cores=3", 3, 1, 3, 1},
        {"6,threads=2", 6, 3, 1, 2},
        {"2,maxcpus=2", 2, 2, 1, 1},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        CpuTopology t;
        g_autoptr(GError) err = NULL;
        g_assert_true(cpu_topology_parse(good[i].spec, 255, &t, &err));
        g_assert_cmpint(t.cpus, ==, good[i].cpus);
        g_assert_cmpint(t.sockets, ==, good[i].sockets);
        g_assert_cmpint(t.cores, ==, good[i].cores);
        g_assert_cmpint(t.threads, ==, good[i].threads);
    }
    static const char *const bad[] = {
        "0", "x", "256", "4,sockets=3", "4,maxcpus=8", "4,nodes=2", "4,cores=0", "4,dies=2", "4,3"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        CpuTopology t;
        g_autoptr(GError) err = NULL;
        g_assert_false(cpu_topology_parse(bad[i], 255, &t, &err));
        g_assert_true(g_str_has_prefix(err->message, "-smp: "));
    }
}

static void test_apic_ids(void)
{
    CpuTopology t = {.cpus = 12, .sockets = 2, .cores = 3, .threads = 2};
    /* 1 thread bit, 2 core bits: socket at bit 3. */
    static const uint32_t want[12] = {0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13};
    for (int i = 0; i < 12; i++) {
        g_assert_cmpuint(cpu_topology_apic_id(&t, i), ==, want[i]);
    }
}

static CpuidEntry *host_like_table(size_t *n)
{
    static const CpuidEntry t[] = {
        {.function = 0, .eax = 0x1f},
        {.function = 1, .eax = 0x806f8, .ebx = 0x00010800, .ecx = 0xfffa3223, .edx = 0x1f8bfbff},
        {.function = 4, .index = 0, .eax = 0x121, .flags = 1},
        {.function = 4, .index = 3, .eax = 0x163, .flags = 1},
        {.function = 7,
         .index = 0,
         .eax = 1,
         .ebx = 0xf1bf07ab,
         .ecx = 0x1b417fde,
         .edx = 0xa4010410},
        {.function = 0xb, .index = 0, .flags = 1},
        {.function = 0xb, .index = 1, .flags = 1},
        {.function = 0xb, .index = 2, .flags = 1},
        {.function = 0xd, .index = 1, .eax = 0xf, .flags = 1},
        {.function = 0x40000001, .eax = 0x01007afb},
        {.function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800},
        {.function = 0x80000008, .eax = 0x3030, .ecx = 0},
    };
    *n = G_N_ELEMENTS(t);
    return g_memdup2(t, sizeof(t));
}

static void test_topology_leaves(void)
{
    size_t n;
    g_autofree CpuidEntry *e = host_like_table(&n);
    CpuTopology t = {.cpus = 12, .sockets = 2, .cores = 3, .threads = 2};
    CpuModel host = {0};
    g_autoptr(GError) err = NULL;
    g_assert_true(cpu_model_apply(&host, &t, 7, e, n, &err));
    uint32_t id = cpu_topology_apic_id(&t, 7); /* socket 1, core 0, thread 1: 9 */
    g_assert_cmpuint(id, ==, 9);
    CpuidEntry *l1 = cpuid_find(e, n, 1, 0);
    g_assert_cmpuint(l1->ebx >> 24, ==, id);
    g_assert_cmpuint((l1->ebx >> 16) & 0xff, ==, 6);
    g_assert_true(l1->edx & (1u << 28));
    CpuidEntry *smt = cpuid_find(e, n, 0xb, 0), *core = cpuid_find(e, n, 0xb, 1);
    g_assert_cmpuint(smt->eax, ==, 1);
    g_assert_cmpuint(smt->ebx, ==, 2);
    g_assert_cmphex(smt->ecx, ==, 0x100);
    g_assert_cmpuint(smt->edx, ==, id);
    g_assert_cmpuint(core->eax, ==, 3);
    g_assert_cmpuint(core->ebx, ==, 6);
    g_assert_cmphex(core->ecx, ==, 0x201);
    CpuidEntry *l2 = cpuid_find(e, n, 0xb, 2);
    g_assert_cmphex(l2->ecx, ==, 2);
    g_assert_cmpuint(l2->ebx, ==, 0);
    /* Leaf 4: cores per package - 1 (rounded to the APIC ID field) and the
     * threads sharing each cache. */
    CpuidEntry *l1d = cpuid_find(e, n, 4, 0), *l3 = cpuid_find(e, n, 4, 3);
    g_assert_cmpuint(l1d->eax >> 26, ==, 3);
    g_assert_cmpuint((l1d->eax >> 14) & 0xfff, ==, 1);
    g_assert_cmpuint((l3->eax >> 14) & 0xfff, ==, 7);
    g_assert_cmpuint(cpuid_find(e, n, 0x80000008, 0)->ecx & 0xff, ==, 5);

    /* One CPU: no HTT. */
    g_autofree CpuidEntry *e1 = host_like_table(&n);
    CpuTopology one = {.cpus = 1, .sockets = 1, .cores = 1, .threads = 1};
    g_assert_true(cpu_model_apply(&host, &one, 0, e1, n, &err));
    g_assert_false(cpuid_find(e1, n, 1, 0)->edx & (1u << 28));
}

static void test_cpu_models(void)
{
    size_t n;
    CpuTopology one = {.cpus = 1, .sockets = 1, .cores = 1, .threads = 1};
    CpuModel m;
    g_autoptr(GError) err = NULL;

    /* host with edits */
    g_autofree CpuidEntry *e = host_like_table(&n);
    g_assert_true(cpu_model_parse("host,-smap,avx2=off,+sse4.2,kvm-pv-eoi=off", &m, &err));
    g_assert_true(cpu_model_apply(&m, &one, 0, e, n, &err));
    g_assert_false(cpuid_find(e, n, 7, 0)->ebx & (1u << 20));
    g_assert_false(cpuid_find(e, n, 7, 0)->ebx & (1u << 5));
    g_assert_true(cpuid_find(e, n, 7, 0)->ebx & (1u << 7)); /* smep untouched */
    g_assert_true(cpuid_find(e, n, 1, 0)->ecx & (1u << 20));
    g_assert_false(cpuid_find(e, n, 0x40000001, 0)->eax & (1u << 6));

    /* base: qemu64's features only, leaf 7 empty, xsave gone; +avx2 back */
    g_autofree CpuidEntry *b = host_like_table(&n);
    g_assert_true(cpu_model_parse("base,+avx2", &m, &err));
    g_assert_true(m.base);
    g_assert_true(cpu_model_apply(&m, &one, 0, b, n, &err));
    CpuidEntry *l1 = cpuid_find(b, n, 1, 0);
    g_assert_cmphex(l1->edx & ~(1u << 28), ==, 0x078bfbfd);
    g_assert_cmphex(l1->ecx, ==, (1u << 0) | (1u << 13) | (1u << 21) | (1u << 31));
    g_assert_cmphex(cpuid_find(b, n, 7, 0)->ebx, ==, 1u << 5);
    g_assert_cmphex(cpuid_find(b, n, 7, 0)->ecx, ==, 0);
    g_assert_cmphex(cpuid_find(b, n, 0xd, 1)->eax, ==, 0);
    g_assert_cmphex(cpuid_find(b, n, 0x80000001, 0)->edx, ==, (1u << 11) | (1u << 20) | (1u << 29));
    g_assert_cmphex(cpuid_find(b, n, 0x40000001, 0)->eax, ==, 0x01007afb); /* KVM leaf kept */

    /* A feature KVM does not offer cannot be added. */
    g_autofree CpuidEntry *c = host_like_table(&n);
    cpuid_find(c, n, 7, 0)->ebx &= ~(1u << 16);
    g_assert_true(cpu_model_parse("host,+avx512f", &m, &err));
    g_assert_false(cpu_model_apply(&m, &one, 0, c, n, &err));
    g_assert_nonnull(strstr(err->message, "avx512f"));

    static const char *const bad[] = {"pentium", "host,+nosuch", "host,smap", "host,smap=maybe"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&err);
        g_assert_false(cpu_model_parse(bad[i], &m, &err));
        g_assert_true(g_str_has_prefix(err->message, "-cpu: "));
    }
    /* QEMU's underscore spelling. */
    g_assert_nonnull(cpu_feature_find("sse4_2"));
    g_assert_nonnull(cpu_feature_find("lahf_lm"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/e820/small", test_e820_small);
    g_test_add_func("/e820/high", test_e820_high);
    g_test_add_func("/bzimage/zero-page", test_bzimage_zero_page);
    g_test_add_func("/bzimage/errors", test_bzimage_errors);
    g_test_add_func("/bzimage/initrd-too-big", test_bzimage_initrd_too_big);
    g_test_add_func("/pvh/start-info", test_pvh_start_info);
    g_test_add_func("/probe/errors", test_probe_errors);
    g_test_add_func("/cpu/topology-parse", test_topology_parse);
    g_test_add_func("/cpu/apic-ids", test_apic_ids);
    g_test_add_func("/cpu/topology-leaves", test_topology_leaves);
    g_test_add_func("/cpu/models", test_cpu_models);
    return g_test_run();
}
