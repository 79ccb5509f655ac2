/* Unit tests for the AML emitter, the ACPI tables (field by field) and the PM block. */
#include "kvmloop/acpi.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "kvmloop/bql.h"
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/memory.h"
#include "kvmloop/rcu.h"

#define BIOS_AREA_BASE 0xe0000

/* ---- Little-endian readers ------------------------------------------------- */

static uint64_t le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint8_t sum8(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++) {
        s = (uint8_t)(s + p[i]);
    }
    return s;
}

/* ---- A tiny AML decoder ------------------------------------------------------ */

/* Decode a PkgLength at @p; returns the bytes it takes (1-4) and sets @len. */
static unsigned dec_pkg_length(const uint8_t *p, uint32_t *len)
{
    unsigned follow = p[0] >> 6;
    if (follow == 0) {
        *len = p[0] & 0x3f;
        return 1;
    }
    g_assert_cmpuint(p[0] & 0x30, ==, 0); /* bits 5:4 are reserved */
    uint32_t v = p[0] & 0x0f;
    for (unsigned i = 1; i <= follow; i++) {
        v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
    }
    *len = v;
    return follow + 1;
}

/* Decode a ComputationalData integer; returns its size. */
static unsigned dec_integer(const uint8_t *p, uint64_t *v)
{
    switch (p[0]) {
    case 0x00:
        *v = 0;
        return 1;
    case 0x01:
        *v = 1;
        return 1;
    case 0xff:
        *v = UINT64_MAX;
        return 1;
    case 0x0a:
        *v = le(p + 1, 1);
        return 2;
    case 0x0b:
        *v = le(p + 1, 2);
        return 3;
    case 0x0c:
        *v = le(p + 1, 4);
        return 5;
    case 0x0e:
        *v = le(p + 1, 8);
        return 9;
    }
    g_assert_not_reached();
}

/* Decode a NameString into "\\_SB_.PCI0" form; returns its size. */
static unsigned dec_name_string(const uint8_t *p, GString *out)
{
    unsigned i = 0, segs;

    while (p[i] == '\\' || p[i] == '^') {
        g_string_append_c(out, (char)p[i++]);
    }
    if (p[i] == 0x00) {
        return i + 1;
    } else if (p[i] == 0x2e) {
        segs = 2;
        i++;
    } else if (p[i] == 0x2f) {
        segs = p[i + 1];
        i += 2;
    } else {
        segs = 1;
    }
    for (unsigned s = 0; s < segs; s++, i += 4) {
        if (s) {
            g_string_append_c(out, '.');
        }
        g_string_append_len(out, (const char *)p + i, 4);
    }
    return i;
}

/* Walk a DSDT's top-level term list: collect \_S5's package elements and
 * remember where Scope (\_SB)'s body is. Only the objects the builder emits
 * at the top level are understood. */
typedef struct DsdtInfo {
    uint64_t s5[8];
    unsigned s5_count;
    bool have_s5;
    const uint8_t *sb_body;
    size_t sb_body_len;
} DsdtInfo;

static void dec_dsdt(const uint8_t *aml, size_t len, DsdtInfo *info)
{
    size_t i = 0;

    memset(info, 0, sizeof(*info));
    while (i < len) {
        g_autoptr(GString) name = g_string_new(NULL);
        uint32_t plen;
        if (aml[i] == 0x08) { /* NameOp */
            i++;
            i += dec_name_string(aml + i, name);
            g_assert_cmpstr(name->str, ==, "\\_S5_");
            g_assert_cmphex(aml[i], ==, 0x12); /* PackageOp */
            size_t start = i + 1;
            unsigned n = dec_pkg_length(aml + start, &plen);
            size_t end = start + plen;
            g_assert_cmpuint(end, <=, len);
            size_t j = start + n;
            info->s5_count = aml[j++];
            g_assert_cmpuint(info->s5_count, <=, G_N_ELEMENTS(info->s5));
            for (unsigned e = 0; e < info->s5_count; e++) {
                j += dec_integer(aml + j, &info->s5[e]);
            }
            g_assert_cmpuint(j, ==, end);
            info->have_s5 = true;
            i = end;
        } else if (aml[i] == 0x10) { /* ScopeOp */
            size_t start = i + 1;
            unsigned n = dec_pkg_length(aml + start, &plen);
            size_t end = start + plen;
            g_assert_cmpuint(end, <=, len);
            size_t j = start + n;
            j += dec_name_string(aml + j, name);
            g_assert_cmpstr(name->str, ==, "\\_SB_");
            info->sb_body = aml + j;
            info->sb_body_len = end - j;
            i = end;
        } else {
            g_error("unexpected AML opcode 0x%02x at %zu", aml[i], i);
        }
    }
    g_assert_cmpuint(i, ==, len);
}

/* ---- AML emitter ------------------------------------------------------------ */

static void assert_aml(Aml *a, const uint8_t *expect, size_t n)
{
    size_t len;
    const uint8_t *p = aml_data(a, &len);

    g_assert_null(aml_error(a));
    g_assert_cmpuint(aml_open_blocks(a), ==, 0);
    g_assert_cmpmem(p, len, expect, n);
}

static void test_pkg_length_encode(void)
{
    static const struct {
        uint32_t len;
        unsigned n;
        uint8_t bytes[4];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {63, 1, {0x3f}},
        {64, 2, {0x40, 0x04}},
        {0x5a, 2, {0x4a, 0x05}},
        {0xfff, 2, {0x4f, 0xff}},
        {0x1000, 3, {0x80, 0x00, 0x01}},
        {0x12345, 3, {0x85, 0x34, 0x12}},
        {0xfffff, 3, {0x8f, 0xff, 0xff}},
        {0x100000, 4, {0xc0, 0x00, 0x00, 0x01}},
        {0x1234567, 4, {0xc7, 0x56, 0x34, 0x12}},
        {0xfffffff, 4, {0xcf, 0xff, 0xff, 0xff}},
    };
    uint8_t out[4];

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        memset(out, 0xaa, sizeof(out));
        unsigned n = aml_pkg_length_encode(cases[i].len, out);
        g_assert_cmpuint(n, ==, cases[i].n);
        g_assert_cmpmem(out, n, cases[i].bytes, cases[i].n);
        uint32_t back;
        g_assert_cmpuint(dec_pkg_length(out, &back), ==, n);
        g_assert_cmpuint(back, ==, cases[i].len);
    }
    g_assert_cmpuint(aml_pkg_length_encode(0x10000000, out), ==, 0);
    g_assert_cmpuint(aml_pkg_length_encode(UINT32_MAX, out), ==, 0);

    /* Every length round-trips through the shortest encoding. */
    for (uint32_t len = 0; len < 0x10000000; len = len * 3 + 1) {
        uint32_t back;
        unsigned n = aml_pkg_length_encode(len, out);
        g_assert_cmpuint(n, >=, 1);
        g_assert_cmpuint(dec_pkg_length(out, &back), ==, n);
        g_assert_cmpuint(back, ==, len);
    }
}

/* aml_end() picks the PkgLength size that fits the body plus itself. A
 * Scope (\) body is RootChar, NullName and @extra raw bytes. */
static void check_block_size(size_t extra, unsigned want_n)
{
    g_autoptr(Aml) a = aml_new();
    g_autofree uint8_t *fill = g_malloc0(extra);
    AmlBlock b = aml_scope_begin(a, "\\");
    aml_append_bytes(a, fill, extra);
    aml_end(a, b);
    g_assert_null(aml_error(a));

    size_t len;
    const uint8_t *p = aml_data(a, &len);
    uint32_t plen;
    g_assert_cmphex(p[0], ==, 0x10);
    g_assert_cmpuint(dec_pkg_length(p + 1, &plen), ==, want_n);
    g_assert_cmpuint(plen, ==, len - 1);
    g_assert_cmpuint(len, ==, 1 + want_n + 2 + extra);
    g_assert_cmphex(p[1 + want_n], ==, 0x5c);
}

static void test_pkg_length_blocks(void)
{
    check_block_size(0, 1);
    check_block_size(60, 1);        /* 1 + 2 + 60 = 63 */
    check_block_size(61, 2);        /* 64 needs two bytes: 65 */
    check_block_size(0xfff - 4, 2); /* 2 + 2 + 4091 = 0xfff */
    check_block_size(0xfff - 3, 3);
    check_block_size(0xfffff - 5, 3);
    check_block_size(0xfffff - 4, 4);
}

static void test_aml_integers(void)
{
    static const struct {
        uint64_t v;
        uint8_t bytes[9];
        unsigned n;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {2, {0x0a, 0x02}, 2},
        {0xff, {0x0a, 0xff}, 2},
        {0x100, {0x0b, 0x00, 0x01}, 3},
        {0xffff, {0x0b, 0xff, 0xff}, 3},
        {0x10000, {0x0c, 0x00, 0x00, 0x01, 0x00}, 5},
        {0xffffffff, {0x0c, 0xff, 0xff, 0xff, 0xff}, 5},
        {0x100000000, {0x0e, 0, 0, 0, 0, 1, 0, 0, 0}, 9},
        {0xfffffffffffffffe, {0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9},
        {UINT64_MAX, {0xff}, 1},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(Aml) a = aml_new();
        aml_integer(a, cases[i].v);
        assert_aml(a, cases[i].bytes, cases[i].n);
        uint64_t back;
        g_assert_cmpuint(dec_integer(cases[i].bytes, &back), ==, cases[i].n);
        g_assert_cmphex(back, ==, cases[i].v);
    }
}

static void test_aml_names(void)
{
    static const struct {
        const char *path;
        const char *bytes;
        unsigned n;
    } good[] = {
        {"_S5", "_S5_", 4},
        {"A", "A___", 4},
        {"\\_S5", "\\_S5_", 5},
        {"\\", "\\\0", 2},
        {"^^FOO", "^^FOO_", 6},
        {"\\_SB.PCI0", "\\\x2e_SB_PCI0", 10},
        {"_SB.PCI0.ISA", "\x2f\x03_SB_PCI0ISA_", 14},
        {"^A.B9",
         "^\x2e"
         "A___B9__",
         10},
    };
    static const char *const bad[] = {
        "", "pci0", "1ABC", "ABCDE", "_SB.", "_SB..X", "\\_S-5", "A^B", "\\^A",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(Aml) a = aml_new();
        aml_name_string(a, good[i].path);
        assert_aml(a, (const uint8_t *)good[i].bytes, good[i].n);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(Aml) a = aml_new();
        aml_name_string(a, bad[i]);
        g_assert_nonnull(aml_error(a));
        g_assert_nonnull(strstr(aml_error(a), "AML name"));
    }
}

/* The bytes of this ASL, as `iasl -oa` (no optimisations) compiles it:
 *
 *   Name (\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
 *   Scope (\_SB) {
 *       Device (PCI0) {
 *           Name (_HID, EisaId ("PNP0A03"))
 *           Name (_UID, Zero)
 *           Name (STR0, "kvmloop")
 *           Name (_CRS, Buffer (0x02) { 0x79, 0x00 })
 *           Method (_STA, 0, NotSerialized) { Return (0x0F) }
 *           Method (\_SB.PCI0.FOO, 2, Serialized) { Return (0x12345678) }
 *       }
 *   }
 */
static const uint8_t iasl_reference[] = {
    0x08, 0x5c, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00, 0x10,
    0x4a, 0x05, 0x5c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x41, 0x05, 0x50, 0x43, 0x49, 0x30, 0x08,
    0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x0a, 0x03, 0x08, 0x5f, 0x55, 0x49, 0x44, 0x00, 0x08,
    0x53, 0x54, 0x52, 0x30, 0x0d, 0x6b, 0x76, 0x6d, 0x6c, 0x6f, 0x6f, 0x70, 0x00, 0x08, 0x5f, 0x43,
    0x52, 0x53, 0x11, 0x05, 0x0a, 0x02, 0x79, 0x00, 0x14, 0x09, 0x5f, 0x53, 0x54, 0x41, 0x00, 0xa4,
    0x0a, 0x0f, 0x14, 0x17, 0x5c, 0x2f, 0x03, 0x5f, 0x53, 0x42, 0x5f, 0x50, 0x43, 0x49, 0x30, 0x46,
    0x4f, 0x4f, 0x5f, 0x0a, 0xa4, 0x0c, 0x78, 0x56, 0x34, 0x12,
};

static void emit_pci0(Aml *a)
{
    static const uint8_t end_tag[] = {0x79, 0x00};

    AmlBlock dev = aml_device_begin(a, "PCI0");
    aml_name(a, "_HID");
    aml_eisaid(a, "PNP0A03");
    aml_name(a, "_UID");
    aml_integer(a, 0);
    aml_name(a, "STR0");
    aml_string(a, "kvmloop");
    aml_name(a, "_CRS");
    aml_buffer(a, end_tag, sizeof(end_tag));
    AmlBlock m = aml_method_begin(a, "_STA", 0, false);
    aml_return(a);
    aml_integer(a, 0x0f);
    aml_end(a, m);
    m = aml_method_begin(a, "\\_SB.PCI0.FOO", 2, true);
    aml_return(a);
    aml_integer(a, 0x12345678);
    aml_end(a, m);
    aml_end(a, dev);
}

static void test_aml_matches_iasl(void)
{
    g_autoptr(Aml) a = aml_new();

    aml_name(a, "\\_S5");
    AmlBlock pkg = aml_package_begin(a, 4);
    aml_integer(a, 5);
    aml_integer(a, 5);
    aml_integer(a, 0);
    aml_integer(a, 0);
    aml_end(a, pkg);
    AmlBlock sb = aml_scope_begin(a, "\\_SB");
    emit_pci0(a);
    aml_end(a, sb);
    assert_aml(a, iasl_reference, sizeof(iasl_reference));
}

static void test_aml_mistakes(void)
{
    g_autoptr(Aml) a = aml_new();
    AmlBlock outer = aml_scope_begin(a, "\\");
    AmlBlock inner = aml_device_begin(a, "DEV0");
    g_assert_cmpuint(aml_open_blocks(a), ==, 2);
    aml_end(a, outer);
    g_assert_nonnull(aml_error(a));
    g_assert_nonnull(strstr(aml_error(a), "out of order"));
    aml_end(a, inner);
    aml_end(a, outer);
    g_assert_cmpuint(aml_open_blocks(a), ==, 0);

    g_autoptr(Aml) b = aml_new();
    aml_end(b, 0);
    g_assert_nonnull(aml_error(b));

    g_autoptr(Aml) c = aml_new();
    aml_end(c, aml_package_begin(c, 256));
    g_assert_nonnull(aml_error(c));

    g_autoptr(Aml) d = aml_new();
    aml_end(d, aml_method_begin(d, "_FOO", 8, false));
    g_assert_nonnull(aml_error(d));

    g_autoptr(Aml) e = aml_new();
    aml_eisaid(e, "PNP0A0G");
    g_assert_nonnull(aml_error(e));

    g_autoptr(Aml) f = aml_new();
    aml_string(f, "caf\xc3\xa9");
    g_assert_nonnull(aml_error(f));

    /* The first mistake is the one reported. */
    g_autoptr(Aml) g = aml_new();
    aml_name_string(g, "bad1");
    aml_eisaid(g, "x");
    g_assert_nonnull(strstr(aml_error(g), "bad1"));
}

/* ---- Tables -------------------------------------------------------------------- */

typedef struct Tables {
    GByteArray *blob;
    gpa_t base;
    const uint8_t *rsdp, *rsdt, *xsdt, *fadt, *facs, *dsdt, *madt;
} Tables;

/* The table at guest address @addr inside the blob, checked: in range,
 * signature, length, checksum. */
static const uint8_t *table_at(const Tables *t, uint64_t addr, const char *sig)
{
    g_assert_cmpuint(addr, >=, t->base);
    g_assert_cmpuint(addr + 36, <=, t->base + t->blob->len);
    const uint8_t *p = t->blob->data + (addr - t->base);
    g_assert_cmpmem(p, 4, sig, 4);
    uint32_t len = (uint32_t)le(p + 4, 4);
    g_assert_cmpuint(len, >=, 36);
    g_assert_cmpuint(addr + len, <=, t->base + t->blob->len);
    g_assert_cmpuint(sum8(p, len), ==, 0);
    g_assert_cmpmem(p + 10, 6, "KVMLP ", 6);
    return p;
}

static void check_gas_io(const uint8_t *g, unsigned width, unsigned access, uint64_t port)
{
    g_assert_cmpuint(g[0], ==, 1); /* SystemIO */
    g_assert_cmpuint(g[1], ==, width);
    g_assert_cmpuint(g[2], ==, 0);
    g_assert_cmpuint(g[3], ==, access);
    g_assert_cmphex(le(g + 4, 8), ==, port);
}

/* Resolve and check every table from the RSDP at @base. */
static void tables_open(Tables *t, const AcpiConfig *cfg, gpa_t base)
{
    g_autoptr(GError) err = NULL;

    memset(t, 0, sizeof(*t));
    t->base = base;
    t->blob = acpi_build_tables(cfg, base, &err);
    g_assert_no_error(err);
    g_assert_nonnull(t->blob);
    g_assert_cmpuint(t->blob->len, <, 0x4000);

    /* RSDP: first, two checksums, both root tables. */
    const uint8_t *r = t->rsdp = t->blob->data;
    g_assert_cmpmem(r, 8, "RSD PTR ", 8);
    g_assert_cmpuint(sum8(r, 20), ==, 0);
    g_assert_cmpuint(sum8(r, 36), ==, 0);
    g_assert_cmpmem(r + 9, 6, "KVMLP ", 6);
    g_assert_cmpuint(r[15], ==, 2);
    g_assert_cmpuint(le(r + 20, 4), ==, 36);

    t->rsdt = table_at(t, le(r + 16, 4), "RSDT");
    t->xsdt = table_at(t, le(r + 24, 8), "XSDT");
    g_assert_cmpuint(le(t->rsdt + 4, 4), ==, 36 + 2 * 4);
    g_assert_cmpuint(le(t->xsdt + 4, 4), ==, 36 + 2 * 8);
    g_assert_cmpuint(t->rsdt[8], ==, 1);
    g_assert_cmpuint(t->xsdt[8], ==, 1);
    /* Both list FACP then APIC at the same addresses. */
    for (unsigned i = 0; i < 2; i++) {
        g_assert_cmphex(le(t->rsdt + 36 + 4 * i, 4), ==, le(t->xsdt + 36 + 8 * i, 8));
    }
    t->fadt = table_at(t, le(t->xsdt + 36, 8), "FACP");
    t->madt = table_at(t, le(t->xsdt + 44, 8), "APIC");

    /* FADT pointers: 32-bit and X_ forms agree. */
    uint64_t facs = le(t->fadt + 36, 4), dsdt = le(t->fadt + 140, 8);
    g_assert_cmphex(le(t->fadt + 132, 8), ==, 0); /* X_FIRMWARE_CTRL: FIRMWARE_CTRL is used */
    g_assert_cmphex(le(t->fadt + 36, 4), ==, facs);
    g_assert_cmphex(le(t->fadt + 40, 4), ==, dsdt);
    t->dsdt = table_at(t, dsdt, "DSDT");

    /* FACS: no checksum, 64 bytes, 64-byte aligned in guest memory. */
    g_assert_cmpuint(facs % 64, ==, 0);
    g_assert_cmpuint(facs, >=, base);
    g_assert_cmpuint(facs + 64, <=, base + t->blob->len);
    t->facs = t->blob->data + (facs - base);
    g_assert_cmpmem(t->facs, 4, "FACS", 4);
    g_assert_cmpuint(le(t->facs + 4, 4), ==, 64);
    g_assert_cmpuint(t->facs[32], ==, 2);
    g_assert_cmpuint(le(t->facs + 12, 4), ==, 0); /* no waking vector */
    g_assert_cmpuint(le(t->facs + 16, 4), ==, 0); /* global lock free */
}

static void tables_close(Tables *t)
{
    g_byte_array_unref(t->blob);
}

static void check_fadt(const Tables *t, const AcpiConfig *cfg)
{
    const uint8_t *f = t->fadt;
    uint16_t io = cfg->pm_iobase;

    g_assert_cmpuint(le(f + 4, 4), ==, 276);
    g_assert_cmpuint(f[8], ==, 6);   /* revision */
    g_assert_cmpuint(f[131], ==, 3); /* minor version: ACPI 6.3 */
    g_assert_cmpuint(f[44], ==, 0);  /* reserved */
    g_assert_cmpuint(le(f + 46, 2), ==, cfg->sci_irq);
    g_assert_cmpuint(le(f + 48, 4), ==, 0); /* SMI_CMD: always in ACPI mode */
    g_assert_cmpuint(f[52], ==, 0);
    g_assert_cmpuint(f[53], ==, 0);
    g_assert_cmphex(le(f + 56, 4), ==, io);     /* PM1a_EVT_BLK */
    g_assert_cmphex(le(f + 60, 4), ==, 0);      /* PM1b_EVT_BLK */
    g_assert_cmphex(le(f + 64, 4), ==, io + 4); /* PM1a_CNT_BLK */
    g_assert_cmphex(le(f + 68, 4), ==, 0);
    g_assert_cmphex(le(f + 72, 4), ==, 0);      /* PM2_CNT_BLK */
    g_assert_cmphex(le(f + 76, 4), ==, io + 8); /* PM_TMR_BLK */
    g_assert_cmphex(le(f + 80, 4), ==, 0);      /* no GPE0 */
    g_assert_cmphex(le(f + 84, 4), ==, 0);      /* no GPE1 */
    g_assert_cmpuint(f[88], ==, 4);             /* PM1_EVT_LEN */
    g_assert_cmpuint(f[89], ==, 2);             /* PM1_CNT_LEN */
    g_assert_cmpuint(f[90], ==, 0);
    g_assert_cmpuint(f[91], ==, 4); /* PM_TMR_LEN */
    g_assert_cmpuint(f[92], ==, 0); /* GPE0_BLK_LEN */
    g_assert_cmpuint(f[93], ==, 0);
    g_assert_cmpuint(le(f + 96, 2), >, 100);  /* no C2 */
    g_assert_cmpuint(le(f + 98, 2), >, 1000); /* no C3 */
    g_assert_cmphex(le(f + 109, 2), ==, 0x3); /* LEGACY_DEVICES | 8042 */

    uint32_t flags = (uint32_t)le(f + 112, 4);
    g_assert_true(flags & (1u << 0));   /* WBINVD */
    g_assert_false(flags & (1u << 4));  /* PWR_BUTTON clear: fixed power button */
    g_assert_true(flags & (1u << 5));   /* SLP_BUTTON: none */
    g_assert_true(flags & (1u << 8));   /* TMR_VAL_EXT */
    g_assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
    g_assert_false(flags & (1u << 20)); /* not HW_REDUCED_ACPI */
    g_assert_cmphex(flags & ~((1u << 0) | (1u << 2) | (1u << 5) | (1u << 8) | (1u << 10)), ==, 0);

    check_gas_io(f + 116, 8, 1, cfg->reset_port); /* RESET_REG */
    g_assert_cmphex(f[128], ==, cfg->reset_value);
    check_gas_io(f + 148, 32, 2, io);     /* X_PM1a_EVT_BLK */
    check_gas_io(f + 172, 16, 2, io + 4); /* X_PM1a_CNT_BLK */
    check_gas_io(f + 208, 32, 3, io + 8); /* X_PM_TMR_BLK */
    static const uint8_t zero[12];
    g_assert_cmpmem(f + 160, 12, zero, 12); /* X_PM1b_EVT_BLK */
    g_assert_cmpmem(f + 184, 12, zero, 12); /* X_PM1b_CNT_BLK */
    g_assert_cmpmem(f + 196, 12, zero, 12); /* X_PM2_CNT_BLK */
    g_assert_cmpmem(f + 220, 12, zero, 12); /* X_GPE0_BLK */
    g_assert_cmpmem(f + 232, 12, zero, 12); /* X_GPE1_BLK */
    g_assert_cmpmem(f + 244, 12, zero, 12); /* SLEEP_CONTROL_REG */
    g_assert_cmpmem(f + 256, 12, zero, 12); /* SLEEP_STATUS_REG */
}

static void check_madt(const Tables *t, const AcpiConfig *cfg)
{
    const uint8_t *m = t->madt;
    uint32_t len = (uint32_t)le(m + 4, 4);
    unsigned lapics = 0, x2apics = 0, ioapics = 0, overrides = 0, nmis = 0, x2nmis = 0;
    bool pit = false, sci = false;

    g_assert_cmpuint(m[8], ==, 5);
    g_assert_cmphex(le(m + 36, 4), ==, 0xfee00000);
    g_assert_cmphex(le(m + 40, 4), ==, 1); /* PCAT_COMPAT */
    for (uint32_t off = 44; off < len;) {
        const uint8_t *e = m + off;
        g_assert_cmpuint(e[1], >=, 2);
        g_assert_cmpuint(off + e[1], <=, len);
        switch (e[0]) {
        case 0: /* Processor Local APIC, in CPU order */
            g_assert_cmpuint(e[1], ==, 8);
            g_assert_cmpuint(lapics + x2apics, <, cfg->ncpus);
            g_assert_cmpuint(e[2], ==, lapics + x2apics);
            g_assert_cmpuint(e[3], ==, cfg->apic_id[lapics + x2apics]);
            g_assert_cmphex(le(e + 4, 4), ==, 1); /* enabled */
            lapics++;
            break;
        case 9: /* Processor Local x2APIC */
            g_assert_cmpuint(e[1], ==, 16);
            g_assert_cmpuint(le(e + 4, 4), ==, cfg->apic_id[lapics + x2apics]);
            g_assert_cmphex(le(e + 8, 4), ==, 1);
            g_assert_cmpuint(le(e + 12, 4), ==, lapics + x2apics);
            x2apics++;
            break;
        case 1:
            g_assert_cmpuint(e[1], ==, 12);
            g_assert_cmpuint(e[2], ==, 0);
            g_assert_cmphex(le(e + 4, 4), ==, 0xfec00000);
            g_assert_cmpuint(le(e + 8, 4), ==, 0);
            ioapics++;
            break;
        case 2:
            g_assert_cmpuint(e[1], ==, 10);
            g_assert_cmpuint(e[2], ==, 0); /* ISA */
            if (e[3] == 0) {
                g_assert_cmpuint(le(e + 4, 4), ==, 2);
                g_assert_cmphex(le(e + 8, 2), ==, 0);
                pit = true;
            } else {
                g_assert_cmpuint(e[3], ==, cfg->sci_irq);
                g_assert_cmpuint(le(e + 4, 4), ==, cfg->sci_irq);
                g_assert_cmphex(le(e + 8, 2), ==, 0xd); /* level, active high */
                sci = true;
            }
            overrides++;
            break;
        case 4:
            g_assert_cmpuint(e[1], ==, 6);
            g_assert_cmphex(e[2], ==, 0xff); /* all processors */
            g_assert_cmphex(le(e + 3, 2), ==, 0);
            g_assert_cmpuint(e[5], ==, 1); /* LINT1 */
            nmis++;
            break;
        case 10:
            g_assert_cmpuint(e[1], ==, 12);
            g_assert_cmphex(le(e + 4, 4), ==, 0xffffffff);
            g_assert_cmpuint(e[8], ==, 1);
            x2nmis++;
            break;
        default:
            g_error("unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    g_assert_cmpuint(lapics + x2apics, ==, cfg->ncpus);
    g_assert_cmpuint(ioapics, ==, 1);
    g_assert_cmpuint(overrides, ==, 2);
    g_assert_true(pit && sci);
    g_assert_cmpuint(nmis, ==, 1);
    g_assert_cmpuint(x2nmis, ==, x2apics ? 1 : 0);
}

static void check_dsdt(const Tables *t, const AcpiConfig *cfg, DsdtInfo *info)
{
    uint32_t len = (uint32_t)le(t->dsdt + 4, 4);

    g_assert_cmpuint(t->dsdt[8], ==, 2); /* 64-bit integers */
    dec_dsdt(t->dsdt + 36, len - 36, info);
    g_assert_true(info->have_s5);
    g_assert_cmpuint(info->s5_count, ==, 4);
    g_assert_cmpuint(info->s5[0], ==, cfg->s5_slp_typ);
    g_assert_cmpuint(info->s5[1], ==, cfg->s5_slp_typ);
    g_assert_cmpuint(info->s5[2], ==, 0);
    g_assert_cmpuint(info->s5[3], ==, 0);
    g_assert_nonnull(info->sb_body);
}

static void test_tables_cpus(gconstpointer data)
{
    unsigned ncpus = GPOINTER_TO_UINT(data);
    AcpiConfig cfg;
    Tables t;
    DsdtInfo info;

    acpi_config_init_pc(&cfg, ncpus);
    tables_open(&t, &cfg, BIOS_AREA_BASE);
    g_assert_cmpuint(t.blob->len, <=, 0x1000 + 8 * ncpus);
    check_fadt(&t, &cfg);
    check_madt(&t, &cfg);
    check_dsdt(&t, &cfg, &info);
    g_assert_cmpuint(info.sb_body_len, ==, 0); /* empty without sb_fill */
    /* The whole blob fits in the BIOS area Linux scans. */
    g_assert_cmpuint(BIOS_AREA_BASE + t.blob->len, <=, 0x100000);
    tables_close(&t);
}

/* Sparse and x2APIC IDs, a different SCI, PM block and S5 type. */
static void test_tables_custom(void)
{
    AcpiConfig cfg;
    Tables t;
    DsdtInfo info;

    acpi_config_init_pc(&cfg, 4);
    cfg.apic_id[0] = 0;
    cfg.apic_id[1] = 2;
    cfg.apic_id[2] = 254;
    cfg.apic_id[3] = 300;
    cfg.sci_irq = 10;
    cfg.pm_iobase = 0xb000;
    cfg.reset_port = 0xcf9;
    cfg.reset_value = 0x06;
    cfg.s5_slp_typ = 0;
    tables_open(&t, &cfg, BIOS_AREA_BASE);
    check_fadt(&t, &cfg);
    check_madt(&t, &cfg);
    check_dsdt(&t, &cfg, &info);
    tables_close(&t);
}

/* Pointers are absolute for any base, and the FACS is aligned in guest
 * memory, not in the blob. */
static void test_tables_base(void)
{
    static const gpa_t bases[] = {0, 0x10, 0x7fff0010, 0xfffe0000};
    AcpiConfig cfg;

    acpi_config_init_pc(&cfg, 2);
    for (size_t i = 0; i < G_N_ELEMENTS(bases); i++) {
        Tables t;
        tables_open(&t, &cfg, bases[i]);
        check_fadt(&t, &cfg);
        check_madt(&t, &cfg);
        tables_close(&t);
    }
}

static void expect_build_error(const AcpiConfig *cfg, gpa_t base, const char *what)
{
    g_autoptr(GError) err = NULL;
    GByteArray *blob = acpi_build_tables(cfg, base, &err);

    g_assert_null(blob);
    g_assert_nonnull(err);
    g_assert_null(strchr(err->message, '\n'));
    if (!strstr(err->message, what)) {
        g_error("error '%s' does not mention '%s'", err->message, what);
    }
}

static void fill_bad_name(Aml *sb, void *opaque)
{
    aml_name(sb, "bad");
    aml_integer(sb, 1);
}

static void fill_unclosed(Aml *sb, void *opaque)
{
    aml_device_begin(sb, "DEV0");
}

static void fill_pci0(Aml *sb, void *opaque)
{
    (*(int *)opaque)++;
    emit_pci0(sb);
}

static void test_tables_errors(void)
{
    AcpiConfig cfg;

    acpi_config_init_pc(&cfg, 0);
    expect_build_error(&cfg, BIOS_AREA_BASE, "0 CPUs");
    acpi_config_init_pc(&cfg, ACPI_MAX_CPUS + 1);
    expect_build_error(&cfg, BIOS_AREA_BASE, "256 CPUs");
    acpi_config_init_pc(&cfg, 4);
    cfg.apic_id[3] = 1;
    expect_build_error(&cfg, BIOS_AREA_BASE, "same APIC ID 1");
    static const uint8_t bad_sci[] = {0, 2, 16, 255};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_sci); i++) {
        acpi_config_init_pc(&cfg, 1);
        cfg.sci_irq = bad_sci[i];
        expect_build_error(&cfg, BIOS_AREA_BASE, "SCI");
    }
    acpi_config_init_pc(&cfg, 1);
    cfg.s5_slp_typ = 8;
    expect_build_error(&cfg, BIOS_AREA_BASE, "sleep type");
    acpi_config_init_pc(&cfg, 1);
    cfg.pm_iobase = 0xfff8;
    expect_build_error(&cfg, BIOS_AREA_BASE, "PM block");

    acpi_config_init_pc(&cfg, 1);
    expect_build_error(&cfg, BIOS_AREA_BASE + 8, "aligned");
    expect_build_error(&cfg, 0xffffff00, "4 GiB");
    expect_build_error(&cfg, 0x100000000, "4 GiB");
    cfg.sb_fill = fill_bad_name;
    expect_build_error(&cfg, BIOS_AREA_BASE, "invalid AML name \"bad\"");
    cfg.sb_fill = fill_unclosed;
    expect_build_error(&cfg, BIOS_AREA_BASE, "open");
}

/* sb_fill's AML lands inside Scope (\_SB), byte for byte. */
static void test_tables_sb_fill(void)
{
    AcpiConfig cfg;
    Tables t;
    DsdtInfo info;
    int calls = 0;

    acpi_config_init_pc(&cfg, 1);
    cfg.sb_fill = fill_pci0;
    cfg.sb_opaque = &calls;
    tables_open(&t, &cfg, BIOS_AREA_BASE);
    g_assert_cmpint(calls, ==, 1);
    check_dsdt(&t, &cfg, &info);
    /* The reference's scope body starts after ScopeOp, PkgLength (2) and \_SB_. */
    g_assert_cmpmem(info.sb_body, info.sb_body_len, iasl_reference + 15 + 3 + 5,
                    sizeof(iasl_reference) - 15 - 3 - 5);
    tables_close(&t);
}

/* With iasl installed (acpica-tools), each table must disassemble without
 * errors or warnings. Skipped otherwise: the build does not need it. */
static void test_tables_iasl(void)
{
    g_autofree char *iasl = g_find_program_in_path("iasl");
    if (!iasl) {
        g_test_skip("iasl is not installed");
        return;
    }
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-acpi-XXXXXX", &err);
    g_assert_no_error(err);

    AcpiConfig cfg;
    Tables t;
    acpi_config_init_pc(&cfg, 4);
    cfg.sb_fill = fill_pci0;
    int calls = 0;
    cfg.sb_opaque = &calls;
    tables_open(&t, &cfg, BIOS_AREA_BASE);
    const struct {
        const char *name;
        const uint8_t *p;
        const char *expect;
    } tabs[] = {
        {"facp", t.fadt, "Reset Register"},
        {"apic", t.madt, "[Local APIC NMI]"},
        {"dsdt", t.dsdt, "Name (\\_S5, Package (0x04)"},
        {"xsdt", t.xsdt, "ACPI Table Address   1"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(tabs); i++) {
        g_autofree char *bin = g_strdup_printf("%s/%s.dat", dir, tabs[i].name);
        g_autofree char *dsl = g_strdup_printf("%s/%s.dsl", dir, tabs[i].name);
        g_assert_true(
            g_file_set_contents(bin, (const char *)tabs[i].p, le(tabs[i].p + 4, 4), &err));
        const char *argv[] = {iasl, "-d", bin, NULL};
        g_autofree char *out = NULL, *errout = NULL;
        int status;
        g_assert_true(g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                   &errout, &status, &err));
        g_assert_no_error(err);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strstr(out, "Warning") ||
            strstr(out, "Error") || strstr(errout, "Warning") || strstr(errout, "Error")) {
            g_error("iasl -d %s:\n%s\n%s", tabs[i].name, out, errout);
        }
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(dsl, &text, NULL, &err));
        if (!strstr(text, tabs[i].expect) || strstr(text, "Invalid") || strstr(text, "Incorrect")) {
            g_error("%s.dsl lacks '%s' or complains:\n%s", tabs[i].name, tabs[i].expect, text);
        }
        g_unlink(dsl);
        g_unlink(bin);
    }
    tables_close(&t);
    g_rmdir(dir);
}

/* ---- The PM block, through the address space ----------------------------------- */

#define PM_BASE 0x600
#define PM_SCI  9

typedef struct PmFixture {
    AddressSpace *as;
    AcpiPmBlock *b;
    EventLoop *loop; /* NULL unless the test needs the timer interrupt */
    int sci;         /* the level last driven */
    unsigned sci_raises;
    unsigned poweroffs;
    unsigned resets;
} PmFixture;

static void pm_sci_set(void *opaque, int n, int level)
{
    PmFixture *f = opaque;

    g_assert_cmpint(n, ==, PM_SCI);
    g_assert_true(level == 0 || level == 1);
    g_assert_cmpint(level, !=, f->sci); /* only changes are driven */
    if (level) {
        f->sci_raises++;
    }
    f->sci = level;
}

static void pm_poweroff(void *opaque)
{
    ((PmFixture *)opaque)->poweroffs++;
}

static void pm_reset(void *opaque)
{
    ((PmFixture *)opaque)->resets++;
}

static AcpiPmBlock *pm_block_at(PmFixture *f, uint16_t iobase, GError **errp)
{
    AcpiPmBlockConfig cfg = {
        .name = "acpi-pm",
        .pio = f->as,
        .iobase = iobase,
        .sci = {.set = pm_sci_set, .opaque = f, .n = PM_SCI},
        .loop = f->loop,
        .s5_slp_typ = ACPI_PM_S5_SLP_TYP,
        .reset_value = ACPI_PM_RESET_VALUE,
        .poweroff = pm_poweroff,
        .reset = pm_reset,
        .opaque = f,
    };
    bql_lock();
    AcpiPmBlock *b = acpi_pm_block_new(&cfg, errp);
    bql_unlock();
    return b;
}

static void pm_setup(PmFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    memset(f, 0, sizeof(*f));
    rcu_thread_online();
    f->as = address_space_new("io", 0x10000);
    f->b = pm_block_at(f, PM_BASE, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->b);
}

static void pm_teardown(PmFixture *f, gconstpointer data)
{
    bql_lock();
    acpi_pm_block_free(f->b);
    bql_unlock();
    rcu_wait_readers();
    rcu_flush_callbacks();
    address_space_free(f->as);
    rcu_thread_offline();
}

static int pm_access(PmFixture *f, unsigned off, unsigned size, uint64_t *v, bool write)
{
    uint8_t buf[8];

    for (unsigned i = 0; i < size; i++) {
        buf[i] = (uint8_t)(*v >> (8 * i));
    }
    int r = address_space_rw(f->as, PM_BASE + off, buf, size, write);
    *v = le(buf, size);
    return r;
}

static uint64_t rd(PmFixture *f, unsigned off, unsigned size)
{
    uint64_t v = 0;
    g_assert_cmpint(pm_access(f, off, size, &v, false), ==, 0);
    return v;
}

static void wr(PmFixture *f, unsigned off, unsigned size, uint64_t v)
{
    g_assert_cmpint(pm_access(f, off, size, &v, true), ==, 0);
}

#define PM1_STS ACPI_PM1_EVT_OFFSET
#define PM1_EN  (ACPI_PM1_EVT_OFFSET + 2)
#define PM1_CNT ACPI_PM1_CNT_OFFSET
#define PM_TMR  ACPI_PM_TMR_OFFSET
#define PM_RST  ACPI_RESET_OFFSET

static void press_power_button(PmFixture *f)
{
    bql_lock();
    acpi_pm_block_power_button(f->b);
    bql_unlock();
}

static void set_timer(PmFixture *f, uint32_t v)
{
    bql_lock();
    acpi_pm_block_set_timer(f->b, v);
    bql_unlock();
}

static void test_pm_reset_state(PmFixture *f, gconstpointer data)
{
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);
    g_assert_cmphex(rd(f, PM1_EN, 2), ==, 0);
    g_assert_cmphex(rd(f, PM1_CNT, 2), ==, ACPI_PM1_CNT_SCI_EN);
    g_assert_cmphex(rd(f, PM_RST, 1), ==, 0);
    g_assert_cmpint(f->sci, ==, 0);

    /* Dirty everything, then reset. */
    wr(f, PM1_EN, 2, 0xffff);
    wr(f, PM1_CNT, 2, 3 << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_BM_RLD);
    press_power_button(f);
    g_assert_cmpint(f->sci, ==, 1);
    bql_lock();
    acpi_pm_block_reset(f->b);
    bql_unlock();
    g_assert_cmpint(f->sci, ==, 0);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);
    g_assert_cmphex(rd(f, PM1_EN, 2), ==, 0);
    g_assert_cmphex(rd(f, PM1_CNT, 2), ==, ACPI_PM1_CNT_SCI_EN);
    g_assert_cmpuint(f->poweroffs + f->resets, ==, 0);
}

static void test_pm_enable_bits(PmFixture *f, gconstpointer data)
{
    wr(f, PM1_EN, 2, 0xffff);
    g_assert_cmphex(rd(f, PM1_EN, 2), ==,
                    ACPI_PM1_EN_TMR | ACPI_PM1_EN_GBL | ACPI_PM1_EN_PWRBTN | ACPI_PM1_EN_SLPBTN |
                        ACPI_PM1_EN_RTC);
    /* Enabling with nothing pending raises nothing. */
    g_assert_cmpint(f->sci, ==, 0);
    wr(f, PM1_EN, 2, 0);
    g_assert_cmphex(rd(f, PM1_EN, 2), ==, 0);
    /* Status bits cannot be set by writing them. */
    wr(f, PM1_STS, 2, 0xffff);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);
}

static void test_pm_power_button(PmFixture *f, gconstpointer data)
{
    /* Disabled: the status is recorded, the SCI stays low. */
    press_power_button(f);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_PWRBTN);
    g_assert_cmpint(f->sci, ==, 0);
    /* Enabling a pending status raises the SCI. */
    wr(f, PM1_EN, 2, ACPI_PM1_EN_PWRBTN);
    g_assert_cmpint(f->sci, ==, 1);
    /* Writing 0 or other bits clears nothing; writing the bit clears it. */
    wr(f, PM1_STS, 2, 0);
    wr(f, PM1_STS, 2, (uint16_t)~ACPI_PM1_STS_PWRBTN);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_PWRBTN);
    g_assert_cmpint(f->sci, ==, 1);
    wr(f, PM1_STS, 2, ACPI_PM1_STS_PWRBTN);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);
    g_assert_cmpint(f->sci, ==, 0);
    /* Enabled: a press raises the SCI at once; disabling lowers it. */
    press_power_button(f);
    g_assert_cmpint(f->sci, ==, 1);
    g_assert_cmpuint(f->sci_raises, ==, 2);
    wr(f, PM1_EN, 2, 0);
    g_assert_cmpint(f->sci, ==, 0);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_PWRBTN);
}

/* A 32-bit access to the event block is split into PM1_STS and PM1_EN. */
static void test_pm_wide_access(PmFixture *f, gconstpointer data)
{
    press_power_button(f);
    wr(f, PM1_STS, 4, (uint64_t)ACPI_PM1_EN_PWRBTN << 16);
    g_assert_cmphex(rd(f, PM1_EN, 2), ==, ACPI_PM1_EN_PWRBTN);
    g_assert_cmpint(f->sci, ==, 1);
    g_assert_cmphex(rd(f, PM1_STS, 4), ==,
                    ACPI_PM1_STS_PWRBTN | (uint32_t)ACPI_PM1_EN_PWRBTN << 16);
    wr(f, PM1_STS, 4, ACPI_PM1_STS_PWRBTN | (uint32_t)ACPI_PM1_EN_PWRBTN << 16);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);
    g_assert_cmpint(f->sci, ==, 0);
}

/* Widths the blocks do not take are refused by the dispatcher and never
 * reach the registers. */
static void test_pm_access_sizes(PmFixture *f, gconstpointer data)
{
    uint64_t v;
    uint64_t bad = address_space_stats(f->as).bad_size;

    v = 0;
    g_assert_cmpint(pm_access(f, PM1_STS, 1, &v, false), ==, -EINVAL);
    g_assert_cmphex(v, ==, 0xff);
    v = 0;
    g_assert_cmpint(pm_access(f, PM_TMR, 2, &v, false), ==, -EINVAL);
    g_assert_cmphex(v, ==, 0xffff);
    /* SLP_EN | SLP_TYP=S5 in the high byte of PM1_CNT, written alone. */
    v = (ACPI_PM1_CNT_SLP_EN | ACPI_PM_S5_SLP_TYP << ACPI_PM1_CNT_SLP_TYP_SHIFT) >> 8;
    g_assert_cmpint(pm_access(f, PM1_CNT + 1, 1, &v, true), ==, -EINVAL);
    g_assert_cmpuint(address_space_stats(f->as).bad_size, ==, bad + 3);
    /* The reset register is one byte: wider accesses miss it. */
    v = ACPI_PM_RESET_VALUE;
    g_assert_cmpint(pm_access(f, PM_RST, 2, &v, true), ==, -ENOENT);
    g_assert_cmpint(pm_access(f, PM_RST, 4, &v, true), ==, -ENOENT);
    g_assert_cmpuint(f->poweroffs + f->resets, ==, 0);

    /* Unaligned halves of the event block: all-ones, ignored, reported once. */
    press_power_button(f);
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*acpi-pm: unaligned 2-byte access*");
    g_assert_cmphex(rd(f, PM1_STS + 1, 2), ==, 0xffff);
    g_test_assert_expected_messages();
    wr(f, PM1_STS + 1, 2, 0xffff);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_PWRBTN);
    g_assert_cmphex(rd(f, PM1_EN, 2), ==, 0);
}

static void test_pm_sleep(PmFixture *f, gconstpointer data)
{
    uint16_t s5 = ACPI_PM_S5_SLP_TYP << ACPI_PM1_CNT_SLP_TYP_SHIFT;
    uint16_t s3 = 3 << ACPI_PM1_CNT_SLP_TYP_SHIFT;

    /* SLP_TYP alone is only stored; SLP_EN and GBL_RLS read as 0. */
    wr(f, PM1_CNT, 2, s5 | ACPI_PM1_CNT_GBL_RLS);
    g_assert_cmphex(rd(f, PM1_CNT, 2), ==, ACPI_PM1_CNT_SCI_EN | s5);
    g_assert_cmpuint(f->poweroffs, ==, 0);

    /* Another sleep type: ignored with one warning, then silently. */
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*sleep type 3 is not supported*");
    wr(f, PM1_CNT, 2, s3 | ACPI_PM1_CNT_SLP_EN);
    g_test_assert_expected_messages();
    wr(f, PM1_CNT, 2, (1 << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN);
    g_assert_cmpuint(f->poweroffs, ==, 0);

    wr(f, PM1_CNT, 2, s5 | ACPI_PM1_CNT_SLP_EN);
    g_assert_cmpuint(f->poweroffs, ==, 1);
    g_assert_cmphex(rd(f, PM1_CNT, 2), ==, ACPI_PM1_CNT_SCI_EN | s5);
    /* Writing SCI_EN as 0 does not leave ACPI mode. */
    wr(f, PM1_CNT, 2, 0);
    g_assert_cmphex(rd(f, PM1_CNT, 2), ==, ACPI_PM1_CNT_SCI_EN);
    g_assert_cmpuint(f->resets, ==, 0);
}

static void test_pm_reset_register(PmFixture *f, gconstpointer data)
{
    wr(f, PM_RST, 1, 0);
    wr(f, PM_RST, 1, ACPI_PM_RESET_VALUE ^ 0xff);
    g_assert_cmpuint(f->resets, ==, 0);
    wr(f, PM_RST, 1, ACPI_PM_RESET_VALUE);
    g_assert_cmpuint(f->resets, ==, 1);
    g_assert_cmphex(rd(f, PM_RST, 1), ==, 0);
    g_assert_cmpuint(f->poweroffs, ==, 0);
}

/* 3.579545 MHz of the virtual clock: it stands still while the clock does. */
static void test_pm_timer_rate(PmFixture *f, gconstpointer data)
{
    uint32_t t0 = (uint32_t)rd(f, PM_TMR, 4);
    g_usleep(20000);
    uint32_t t1 = (uint32_t)rd(f, PM_TMR, 4);
    uint32_t delta = t1 - t0;
    g_assert_cmpuint(delta, >=, ACPI_PM_TIMER_HZ / 50 - 1);
    g_assert_cmpuint(delta, <, ACPI_PM_TIMER_HZ * 5); /* generous for slow sanitizer runs */

    /* The timer ignores writes. */
    wr(f, PM_TMR, 4, 0);
    g_assert_cmpuint((uint32_t)rd(f, PM_TMR, 4) - t1, <, ACPI_PM_TIMER_HZ * 5);
    g_assert_cmpuint((uint32_t)rd(f, PM_TMR, 4) - t1, >, 0);

    clock_virtual_set_enabled(false);
    uint32_t s0 = (uint32_t)rd(f, PM_TMR, 4);
    g_usleep(5000);
    g_assert_cmpuint((uint32_t)rd(f, PM_TMR, 4), ==, s0);
    clock_virtual_set_enabled(true);

    set_timer(f, 0x12345678);
    uint32_t t2 = (uint32_t)rd(f, PM_TMR, 4);
    g_assert_cmpuint(t2 - 0x12345678u, <, ACPI_PM_TIMER_HZ * 5);
}

/* Poll the counter until it passes @target (within 2^31 ticks). */
static void wait_timer_past(PmFixture *f, uint32_t target)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while ((int32_t)((uint32_t)rd(f, PM_TMR, 4) - target) < 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(100);
    }
}

/* TMR_STS is set when bit 31 of the counter changes, either way. */
static void test_pm_timer_carry(PmFixture *f, gconstpointer data)
{
    /* Loading the counter is not a carry. */
    set_timer(f, 0x80000000);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);

    set_timer(f, 0x7ffffff0);
    wait_timer_past(f, 0x80000000);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_TMR);
    g_assert_cmpint(f->sci, ==, 0); /* TMR_EN clear */
    wr(f, PM1_STS, 2, ACPI_PM1_STS_TMR);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);

    /* 1 -> 0 at the wrap, with TMR_EN: the SCI rises when the carry is seen. */
    wr(f, PM1_EN, 2, ACPI_PM1_EN_TMR);
    set_timer(f, 0xfffffff0);
    wait_timer_past(f, 0x00000000);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_TMR);
    g_assert_cmpint(f->sci, ==, 1);
    wr(f, PM1_STS, 2, ACPI_PM1_STS_TMR);
    g_assert_cmpint(f->sci, ==, 0);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, 0);
}

/* The event loop's callbacks run under the BQL, as on the machine's main loop. */
static void loop_enter(void *opaque, const char *site)
{
    bql_lock();
}

static void loop_leave(void *opaque, const char *site)
{
    bql_unlock();
}

static void pm_setup_loop(PmFixture *f, gconstpointer data)
{
    static const EventLoopHooks hooks = {.enter = loop_enter, .leave = loop_leave};
    g_autoptr(GError) err = NULL;
    EventLoop *loop = event_loop_new(GPOINTER_TO_INT(data), &hooks, &err);

    g_assert_no_error(err);
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    rcu_thread_online();
    f->as = address_space_new("io", 0x10000);
    f->b = pm_block_at(f, PM_BASE, &err);
    g_assert_no_error(err);
}

static void pm_teardown_loop(PmFixture *f, gconstpointer data)
{
    EventLoop *loop = f->loop;
    pm_teardown(f, data);
    event_loop_free(loop);
}

/* Run the loop until the SCI rises, without touching the registers. */
static void wait_sci(PmFixture *f)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!f->sci) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        event_loop_iterate(f->loop, false);
        g_usleep(500);
    }
}

/* With TMR_EN set, the SCI rises at the carry on its own (a timer on the
 * main loop), and again at the next one. */
static void test_pm_timer_interrupt(PmFixture *f, gconstpointer data)
{
    wr(f, PM1_EN, 2, ACPI_PM1_EN_TMR);
    set_timer(f, 0x7fff0000); /* about 18 ms before the carry */
    wait_sci(f);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_TMR);
    wr(f, PM1_STS, 2, ACPI_PM1_STS_TMR);
    g_assert_cmpint(f->sci, ==, 0);

    set_timer(f, 0xffff8000); /* the timer re-arms for the next carry */
    wait_sci(f);
    g_assert_cmpuint(f->sci_raises, ==, 2);
    wr(f, PM1_STS, 2, ACPI_PM1_STS_TMR);

    /* Disabled, a carry only sets the status. */
    wr(f, PM1_EN, 2, 0);
    set_timer(f, 0x7fffc000);
    gint64 end = g_get_monotonic_time() + 50000;
    while (g_get_monotonic_time() < end) {
        event_loop_iterate(f->loop, false);
        g_usleep(500);
    }
    g_assert_cmpint(f->sci, ==, 0);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_TMR);
}

static void test_pm_map_errors(PmFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    g_assert_null(pm_block_at(f, PM_BASE + 8, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "overlaps"));
    g_clear_error(&err);
    g_assert_null(pm_block_at(f, 0xfff8, &err));
    g_assert_nonnull(strstr(err->message, "iobase 0xfff8"));
    g_clear_error(&err);
    /* The first block is intact, and a second one fits elsewhere. */
    press_power_button(f);
    g_assert_cmphex(rd(f, PM1_STS, 2), ==, ACPI_PM1_STS_PWRBTN);
    AcpiPmBlock *other = pm_block_at(f, 0xfff0, &err);
    g_assert_no_error(err);
    bql_lock();
    acpi_pm_block_free(other);
    bql_unlock();
}

static void test_pm_device_class(void)
{
    const DeviceClass *c = device_class_find("acpi-pm");
    bool listed = false;

    g_assert_true(c == &acpi_pm_device_class);
    g_assert_false(c->user_creatable);
    g_assert_nonnull(c->realize);
    g_assert_nonnull(c->reset);
    g_assert_nonnull(c->unrealize);
    g_assert_cmpuint(c->instance_size, >, sizeof(Device));
    g_assert_cmpstr(c->props[0], ==, "iobase");
    g_assert_cmpstr(c->props[1], ==, "irq");
    g_assert_null(c->props[2]);
    for (const DeviceClass *const *p = device_class_all(); *p; p++) {
        listed |= *p == c;
    }
    g_assert_true(listed);

    /* The monitor may ask a machine that has no PM device. */
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*no acpi-pm device*");
    acpi_pm_power_button(NULL);
    g_test_assert_expected_messages();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/acpi/aml/pkg-length", test_pkg_length_encode);
    g_test_add_func("/acpi/aml/pkg-length-blocks", test_pkg_length_blocks);
    g_test_add_func("/acpi/aml/integers", test_aml_integers);
    g_test_add_func("/acpi/aml/names", test_aml_names);
    g_test_add_func("/acpi/aml/iasl-reference", test_aml_matches_iasl);
    g_test_add_func("/acpi/aml/mistakes", test_aml_mistakes);

    g_test_add_data_func("/acpi/tables/cpus-1", GUINT_TO_POINTER(1), test_tables_cpus);
    g_test_add_data_func("/acpi/tables/cpus-2", GUINT_TO_POINTER(2), test_tables_cpus);
    g_test_add_data_func("/acpi/tables/cpus-4", GUINT_TO_POINTER(4), test_tables_cpus);
    g_test_add_data_func("/acpi/tables/cpus-255", GUINT_TO_POINTER(255), test_tables_cpus);
    g_test_add_func("/acpi/tables/custom", test_tables_custom);
    g_test_add_func("/acpi/tables/base", test_tables_base);
    g_test_add_func("/acpi/tables/errors", test_tables_errors);
    g_test_add_func("/acpi/tables/sb-fill", test_tables_sb_fill);
    g_test_add_func("/acpi/tables/iasl", test_tables_iasl);

#define PM_TEST(path, fn) g_test_add("/acpi/pm/" path, PmFixture, NULL, pm_setup, fn, pm_teardown)
    PM_TEST("reset-state", test_pm_reset_state);
    PM_TEST("enable-bits", test_pm_enable_bits);
    PM_TEST("power-button", test_pm_power_button);
    PM_TEST("wide-access", test_pm_wide_access);
    PM_TEST("access-sizes", test_pm_access_sizes);
    PM_TEST("sleep", test_pm_sleep);
    PM_TEST("reset-register", test_pm_reset_register);
    PM_TEST("timer-rate", test_pm_timer_rate);
    PM_TEST("timer-carry", test_pm_timer_carry);
    PM_TEST("map-errors", test_pm_map_errors);
    g_test_add("/acpi/pm/timer-interrupt/glib", PmFixture, GINT_TO_POINTER(EVENT_LOOP_GLIB),
               pm_setup_loop, test_pm_timer_interrupt, pm_teardown_loop);
    g_test_add("/acpi/pm/timer-interrupt/libevent", PmFixture, GINT_TO_POINTER(EVENT_LOOP_LIBEVENT),
               pm_setup_loop, test_pm_timer_interrupt, pm_teardown_loop);
    g_test_add_func("/acpi/pm/device-class", test_pm_device_class);
    return g_test_run();
}
