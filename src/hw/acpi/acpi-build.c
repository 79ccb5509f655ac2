/* The pc machine's ACPI tables: RSDP, RSDT, XSDT, FADT, FACS, MADT and DSDT in one blob. */
#include "kvmloop/acpi.h"
#include "kvmloop/error.h"

#include <string.h>

/* ---- Constants ------------------------------------------------------------ */

#define ACPI_OEM_ID           "KVMLP "
#define ACPI_OEM_TABLE_ID     "KVMLOOP "
#define ACPI_OEM_REVISION     1
#define ACPI_CREATOR_ID       "KVML"
#define ACPI_CREATOR_REVISION 1

/* Sizes of the fixed parts (ACPI 6.3, chapter 5.2). */
#define ACPI_RSDP_V1_LEN    20 /* what the first checksum covers */
#define ACPI_RSDP_LEN       36
#define ACPI_HEADER_LEN     36
#define ACPI_FACS_LEN       64
#define ACPI_FADT_LEN       276 /* revision 6 */
#define ACPI_MADT_FIXED_LEN 44

/* Table revisions of ACPI 6.3. */
#define ACPI_RSDP_REVISION 2
#define ACPI_RSDT_REVISION 1
#define ACPI_XSDT_REVISION 1
#define ACPI_FADT_REVISION 6
#define ACPI_FADT_MINOR    3
#define ACPI_MADT_REVISION 5
#define ACPI_DSDT_REVISION 2 /* 64-bit AML integers */
#define ACPI_FACS_VERSION  2

/* FADT Flags (5.2.9, table 5.34). */
#define ACPI_FADT_F_WBINVD        (1u << 0)
#define ACPI_FADT_F_PROC_C1       (1u << 2)
#define ACPI_FADT_F_PWR_BUTTON    (1u << 4) /* set: no fixed power button */
#define ACPI_FADT_F_SLP_BUTTON    (1u << 5) /* set: no fixed sleep button */
#define ACPI_FADT_F_TMR_VAL_EXT   (1u << 8)
#define ACPI_FADT_F_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags (5.2.9.3). */
#define ACPI_FADT_IAPC_LEGACY_DEVICES (1u << 0)
#define ACPI_FADT_IAPC_8042           (1u << 1)
/* C2 and C3 latencies above these mean "not supported". */
#define ACPI_FADT_NO_C2_LATENCY 101
#define ACPI_FADT_NO_C3_LATENCY 1001

/* Generic Address Structure (5.2.3.2). */
#define ACPI_GAS_LEN          12
#define ACPI_GAS_SPACE_IO     1
#define ACPI_GAS_ACCESS_BYTE  1
#define ACPI_GAS_ACCESS_WORD  2
#define ACPI_GAS_ACCESS_DWORD 3

/* MADT (5.2.12). */
#define ACPI_MADT_PCAT_COMPAT     (1u << 0)
#define ACPI_MADT_TYPE_LAPIC      0
#define ACPI_MADT_TYPE_IOAPIC     1
#define ACPI_MADT_TYPE_OVERRIDE   2
#define ACPI_MADT_TYPE_LAPIC_NMI  4
#define ACPI_MADT_TYPE_X2APIC     9
#define ACPI_MADT_TYPE_X2APIC_NMI 10
#define ACPI_MADT_LAPIC_LEN       8
#define ACPI_MADT_IOAPIC_LEN      12
#define ACPI_MADT_OVERRIDE_LEN    10
#define ACPI_MADT_LAPIC_NMI_LEN   6
#define ACPI_MADT_X2APIC_LEN      16
#define ACPI_MADT_X2APIC_NMI_LEN  12
#define ACPI_MADT_BUS_ISA         0
#define ACPI_MADT_ENABLED         (1u << 0)
#define ACPI_MADT_LEVEL_HIGH      0x000d /* polarity 01 active high, trigger 11 level */
#define ACPI_MADT_UID_ALL         0xff
#define ACPI_MADT_X2APIC_UID_ALL  0xffffffffu
/* The xAPIC entry holds 8-bit IDs, and 0xFF is the broadcast ID. */
#define ACPI_XAPIC_MAX_ID 254
#define ACPI_LINT1        1
#define ACPI_ISA_IRQ_PIT  0
#define ACPI_GSI_PIT      2

/* Where each table starts in the blob. */
typedef struct AcpiLayout {
    size_t rsdp, facs, dsdt, fadt, madt, rsdt, xsdt, total;
    size_t dsdt_len, madt_len, rsdt_len, xsdt_len;
} AcpiLayout;

/* ---- Byte helpers ----------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint8_t acpi_sum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        sum = (uint8_t)(sum + p[i]);
    }
    return sum;
}

void acpi_table_checksum(uint8_t *table, size_t len)
{
    table[9] = 0;
    table[9] = (uint8_t)(0x100 - acpi_sum(table, len));
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* The common System Description Table header (5.2.6); checksum comes last. */
static void acpi_header(uint8_t *t, const char *sig, size_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put_le(t + 4, len, 4);
    t[8] = rev;
    memcpy(t + 10, ACPI_OEM_ID, 6);
    memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
    put_le(t + 24, ACPI_OEM_REVISION, 4);
    memcpy(t + 28, ACPI_CREATOR_ID, 4);
    put_le(t + 32, ACPI_CREATOR_REVISION, 4);
}

/* A Generic Address Structure for @width_bits of I/O space at @port. */
static void acpi_gas_io(uint8_t *p, unsigned width_bits, uint8_t access, uint16_t port)
{
    p[0] = ACPI_GAS_SPACE_IO;
    p[1] = (uint8_t)width_bits;
    p[2] = 0;
    p[3] = access;
    put_le(p + 4, port, 8);
}

/* ---- Configuration ------------------------------------------------------ */

void acpi_config_init_pc(AcpiConfig *cfg, unsigned ncpus)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ncpus = ncpus;
    for (unsigned i = 0; i < ACPI_MAX_CPUS; i++) {
        cfg->apic_id[i] = i;
    }
    cfg->lapic_addr = 0xfee00000;
    cfg->ioapic_id = 0;
    cfg->ioapic_addr = 0xfec00000;
    cfg->ioapic_gsi_base = 0;
    cfg->pm_iobase = ACPI_PM_DEFAULT_IOBASE;
    cfg->sci_irq = ACPI_PM_DEFAULT_SCI;
    cfg->reset_port = ACPI_PM_DEFAULT_IOBASE + ACPI_RESET_OFFSET;
    cfg->reset_value = ACPI_PM_RESET_VALUE;
    cfg->s5_slp_typ = ACPI_PM_S5_SLP_TYP;
}

static bool acpi_config_check(const AcpiConfig *cfg, GError **errp)
{
    const char *why = NULL;

    if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "ACPI tables: %u CPUs; 1 to %d are possible", cfg->ncpus, ACPI_MAX_CPUS);
        return false;
    }
    for (unsigned i = 0; i < cfg->ncpus; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (cfg->apic_id[i] == cfg->apic_id[j]) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "ACPI tables: CPUs %u and %u have the same APIC ID %u", j, i,
                            cfg->apic_id[i]);
                return false;
            }
        }
    }
    if (cfg->sci_irq < 1 || cfg->sci_irq > 15 || cfg->sci_irq == ACPI_GSI_PIT) {
        why = "the SCI must be an ISA IRQ from 1 to 15 but 2";
    } else if (cfg->s5_slp_typ > 7) {
        why = "the S5 sleep type must fit in 3 bits";
    } else if (cfg->pm_iobase > 0x10000 - ACPI_PM_IOSIZE) {
        why = "the PM block does not fit in I/O space";
    }
    if (why) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "ACPI tables: %s", why);
        return false;
    }
    return true;
}

/* ---- Tables --------------------------------------------------------------- */

/* DSDT body: \_S5 for the OS's soft-off path (7.4.2), then \_SB. */
static bool acpi_build_dsdt_aml(const AcpiConfig *cfg, Aml *aml, GError **errp)
{
    aml_name(aml, "\\_S5");
    AmlBlock pkg = aml_package_begin(aml, 4);
    aml_integer(aml, cfg->s5_slp_typ); /* PM1a_CNT.SLP_TYP */
    aml_integer(aml, cfg->s5_slp_typ); /* PM1b_CNT.SLP_TYP (there is no PM1b) */
    aml_integer(aml, 0);               /* reserved */
    aml_integer(aml, 0);               /* reserved */
    aml_end(aml, pkg);

    AmlBlock sb = aml_scope_begin(aml, "\\_SB");
    if (cfg->sb_fill) {
        cfg->sb_fill(aml, cfg->sb_opaque);
    }
    if (aml_open_blocks(aml) != 1) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "ACPI tables: the \\_SB AML left %u blocks open", aml_open_blocks(aml) - 1);
        return false;
    }
    aml_end(aml, sb);
    if (aml_error(aml)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "ACPI tables: %s",
                    aml_error(aml));
        return false;
    }
    return true;
}

static bool acpi_has_x2apic(const AcpiConfig *cfg)
{
    for (unsigned i = 0; i < cfg->ncpus; i++) {
        if (cfg->apic_id[i] > ACPI_XAPIC_MAX_ID) {
            return true;
        }
    }
    return false;
}

static size_t acpi_madt_len(const AcpiConfig *cfg)
{
    size_t len = ACPI_MADT_FIXED_LEN + ACPI_MADT_IOAPIC_LEN + 2 * ACPI_MADT_OVERRIDE_LEN +
                 ACPI_MADT_LAPIC_NMI_LEN;
    for (unsigned i = 0; i < cfg->ncpus; i++) {
        len += cfg->apic_id[i] > ACPI_XAPIC_MAX_ID ? ACPI_MADT_X2APIC_LEN : ACPI_MADT_LAPIC_LEN;
    }
    if (acpi_has_x2apic(cfg)) {
        len += ACPI_MADT_X2APIC_NMI_LEN;
    }
    return len;
}

static void acpi_layout(const AcpiConfig *cfg, gpa_t base, size_t dsdt_len, AcpiLayout *l)
{
    l->dsdt_len = dsdt_len;
    l->madt_len = acpi_madt_len(cfg);
    l->rsdt_len = ACPI_HEADER_LEN + 2 * 4;
    l->xsdt_len = ACPI_HEADER_LEN + 2 * 8;

    l->rsdp = 0;
    /* The FACS must sit on a 64-byte boundary of guest physical memory. */
    l->facs = align_up(base + ACPI_RSDP_LEN, 64) - base;
    l->dsdt = l->facs + ACPI_FACS_LEN;
    l->fadt = align_up(l->dsdt + l->dsdt_len, 8);
    l->madt = align_up(l->fadt + ACPI_FADT_LEN, 8);
    l->rsdt = align_up(l->madt + l->madt_len, 8);
    l->xsdt = align_up(l->rsdt + l->rsdt_len, 8);
    l->total = l->xsdt + l->xsdt_len;
}

/* RSDP (5.2.5.3): the first checksum covers the ACPI 1.0 part, the extended
 * one the whole structure. */
static void acpi_write_rsdp(uint8_t *p, gpa_t base, const AcpiLayout *l)
{
    memcpy(p, "RSD PTR ", 8);
    memcpy(p + 9, ACPI_OEM_ID, 6);
    p[15] = ACPI_RSDP_REVISION;
    put_le(p + 16, base + l->rsdt, 4);
    put_le(p + 20, ACPI_RSDP_LEN, 4);
    put_le(p + 24, base + l->xsdt, 8);
    p[8] = (uint8_t)(0x100 - acpi_sum(p, ACPI_RSDP_V1_LEN));
    p[32] = (uint8_t)(0x100 - acpi_sum(p, ACPI_RSDP_LEN));
}

/* FACS (5.2.10): no waking vector, no global lock owner, no checksum. */
static void acpi_write_facs(uint8_t *p)
{
    memcpy(p, "FACS", 4);
    put_le(p + 4, ACPI_FACS_LEN, 4);
    p[32] = ACPI_FACS_VERSION;
}

static void acpi_write_dsdt(uint8_t *p, const Aml *aml)
{
    size_t len;
    const uint8_t *code = aml_data(aml, &len);

    acpi_header(p, "DSDT", ACPI_HEADER_LEN + len, ACPI_DSDT_REVISION);
    memcpy(p + ACPI_HEADER_LEN, code, len);
    acpi_table_checksum(p, ACPI_HEADER_LEN + len);
}

/* FADT (5.2.9, table 5.33): fixed hardware at the PM block, in both the
 * 32-bit and the generic-address form, with matching values so that an OS
 * may use either. SMI_CMD 0 says the hardware is always in ACPI mode. */
static void acpi_write_fadt(uint8_t *p, const AcpiConfig *cfg, gpa_t base, const AcpiLayout *l)
{
    uint16_t evt = cfg->pm_iobase + ACPI_PM1_EVT_OFFSET;
    uint16_t cnt = cfg->pm_iobase + ACPI_PM1_CNT_OFFSET;
    uint16_t tmr = cfg->pm_iobase + ACPI_PM_TMR_OFFSET;

    acpi_header(p, "FACP", ACPI_FADT_LEN, ACPI_FADT_REVISION);
    put_le(p + 36, base + l->facs, 4); /* FIRMWARE_CTRL */
    put_le(p + 40, base + l->dsdt, 4); /* DSDT */
    put_le(p + 46, cfg->sci_irq, 2);   /* SCI_INT */
    put_le(p + 56, evt, 4);            /* PM1a_EVT_BLK */
    put_le(p + 64, cnt, 4);            /* PM1a_CNT_BLK */
    put_le(p + 76, tmr, 4);            /* PM_TMR_BLK */
    p[88] = ACPI_PM1_EVT_LEN;
    p[89] = ACPI_PM1_CNT_LEN;
    p[91] = ACPI_PM_TMR_LEN;
    put_le(p + 96, ACPI_FADT_NO_C2_LATENCY, 2);
    put_le(p + 98, ACPI_FADT_NO_C3_LATENCY, 2);
    put_le(p + 109, ACPI_FADT_IAPC_LEGACY_DEVICES | ACPI_FADT_IAPC_8042, 2);
    put_le(p + 112,
           ACPI_FADT_F_WBINVD | ACPI_FADT_F_PROC_C1 | ACPI_FADT_F_SLP_BUTTON |
               ACPI_FADT_F_TMR_VAL_EXT | ACPI_FADT_F_RESET_REG_SUP,
           4);
    acpi_gas_io(p + 116, 8, ACPI_GAS_ACCESS_BYTE, cfg->reset_port); /* RESET_REG */
    p[128] = cfg->reset_value;
    p[131] = ACPI_FADT_MINOR;
    /* X_FIRMWARE_CTRL stays 0: with both set, Linux installs the FACS twice. */
    put_le(p + 140, base + l->dsdt, 8); /* X_DSDT */
    acpi_gas_io(p + 148, ACPI_PM1_EVT_LEN * 8, ACPI_GAS_ACCESS_WORD, evt);
    acpi_gas_io(p + 172, ACPI_PM1_CNT_LEN * 8, ACPI_GAS_ACCESS_WORD, cnt);
    acpi_gas_io(p + 208, ACPI_PM_TMR_LEN * 8, ACPI_GAS_ACCESS_DWORD, tmr);
    memcpy(p + 268, "KVMLOOP", 8); /* hypervisor vendor identity, NUL-padded */
    acpi_table_checksum(p, ACPI_FADT_LEN);
}

/* MADT (5.2.12): the CPUs, the I/O APIC, the PC's two ISA overrides (the
 * PIT's IRQ 0 on pin 2; the SCI level-triggered active-high, 5.2.12.5) and
 * LINT1 as NMI on every CPU. */
static void acpi_write_madt(uint8_t *t, const AcpiConfig *cfg, size_t len)
{
    uint8_t *p = t + ACPI_MADT_FIXED_LEN;

    acpi_header(t, "APIC", len, ACPI_MADT_REVISION);
    put_le(t + 36, cfg->lapic_addr, 4);
    put_le(t + 40, ACPI_MADT_PCAT_COMPAT, 4);

    for (unsigned i = 0; i < cfg->ncpus; i++) {
        if (cfg->apic_id[i] <= ACPI_XAPIC_MAX_ID) {
            p[0] = ACPI_MADT_TYPE_LAPIC;
            p[1] = ACPI_MADT_LAPIC_LEN;
            p[2] = (uint8_t)i; /* ACPI processor UID */
            p[3] = (uint8_t)cfg->apic_id[i];
            put_le(p + 4, ACPI_MADT_ENABLED, 4);
        } else {
            p[0] = ACPI_MADT_TYPE_X2APIC;
            p[1] = ACPI_MADT_X2APIC_LEN;
            put_le(p + 4, cfg->apic_id[i], 4);
            put_le(p + 8, ACPI_MADT_ENABLED, 4);
            put_le(p + 12, i, 4);
        }
        p += p[1];
    }

    p[0] = ACPI_MADT_TYPE_IOAPIC;
    p[1] = ACPI_MADT_IOAPIC_LEN;
    p[2] = cfg->ioapic_id;
    put_le(p + 4, cfg->ioapic_addr, 4);
    put_le(p + 8, cfg->ioapic_gsi_base, 4);
    p += ACPI_MADT_IOAPIC_LEN;

    p[0] = ACPI_MADT_TYPE_OVERRIDE;
    p[1] = ACPI_MADT_OVERRIDE_LEN;
    p[2] = ACPI_MADT_BUS_ISA;
    p[3] = ACPI_ISA_IRQ_PIT;
    put_le(p + 4, ACPI_GSI_PIT, 4);
    put_le(p + 8, 0, 2); /* conforms to the bus: edge, active high */
    p += ACPI_MADT_OVERRIDE_LEN;

    p[0] = ACPI_MADT_TYPE_OVERRIDE;
    p[1] = ACPI_MADT_OVERRIDE_LEN;
    p[2] = ACPI_MADT_BUS_ISA;
    p[3] = cfg->sci_irq;
    put_le(p + 4, cfg->sci_irq, 4);
    put_le(p + 8, ACPI_MADT_LEVEL_HIGH, 2);
    p += ACPI_MADT_OVERRIDE_LEN;

    p[0] = ACPI_MADT_TYPE_LAPIC_NMI;
    p[1] = ACPI_MADT_LAPIC_NMI_LEN;
    p[2] = ACPI_MADT_UID_ALL;
    put_le(p + 3, 0, 2); /* conforms: edge, active high */
    p[5] = ACPI_LINT1;
    p += ACPI_MADT_LAPIC_NMI_LEN;

    if (acpi_has_x2apic(cfg)) {
        p[0] = ACPI_MADT_TYPE_X2APIC_NMI;
        p[1] = ACPI_MADT_X2APIC_NMI_LEN;
        put_le(p + 2, 0, 2);
        put_le(p + 4, ACPI_MADT_X2APIC_UID_ALL, 4);
        p[8] = ACPI_LINT1;
        p += ACPI_MADT_X2APIC_NMI_LEN;
    }
    g_assert((size_t)(p - t) == len);
    acpi_table_checksum(t, len);
}

/* RSDT and XSDT (5.2.7, 5.2.8) list the same tables: FADT first, then MADT. */
static void acpi_write_sdt(uint8_t *p, const char *sig, unsigned entry_size, gpa_t base,
                           const AcpiLayout *l)
{
    size_t len = ACPI_HEADER_LEN + 2 * entry_size;

    acpi_header(p, sig, len, entry_size == 4 ? ACPI_RSDT_REVISION : ACPI_XSDT_REVISION);
    put_le(p + ACPI_HEADER_LEN, base + l->fadt, entry_size);
    put_le(p + ACPI_HEADER_LEN + entry_size, base + l->madt, entry_size);
    acpi_table_checksum(p, len);
}

GByteArray *acpi_build_tables(const AcpiConfig *cfg, gpa_t base, GError **errp)
{
    if (!acpi_config_check(cfg, errp)) {
        return NULL;
    }
    if (base % 16 != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "ACPI tables: base 0x%" G_GINT64_MODIFIER "x is not 16-byte aligned", base);
        return NULL;
    }
    g_autoptr(Aml) aml = aml_new();
    if (!acpi_build_dsdt_aml(cfg, aml, errp)) {
        return NULL;
    }
    size_t aml_len;
    aml_data(aml, &aml_len);

    AcpiLayout l;
    acpi_layout(cfg, base, ACPI_HEADER_LEN + aml_len, &l);
    /* The RSDT and the FADT's 32-bit fields must reach every table. */
    if (base > UINT32_MAX || l.total > (uint64_t)UINT32_MAX + 1 - base) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "ACPI tables: base 0x%" G_GINT64_MODIFIER "x puts them above 4 GiB", base);
        return NULL;
    }

    GByteArray *blob = g_byte_array_sized_new((guint)l.total);
    g_byte_array_set_size(blob, (guint)l.total);
    uint8_t *p = blob->data;
    memset(p, 0, l.total);
    acpi_write_rsdp(p + l.rsdp, base, &l);
    acpi_write_facs(p + l.facs);
    acpi_write_dsdt(p + l.dsdt, aml);
    acpi_write_fadt(p + l.fadt, cfg, base, &l);
    acpi_write_madt(p + l.madt, cfg, l.madt_len);
    acpi_write_sdt(p + l.rsdt, "RSDT", 4, base, &l);
    acpi_write_sdt(p + l.xsdt, "XSDT", 8, base, &l);
    return blob;
}
