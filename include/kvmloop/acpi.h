/* ACPI: an AML byte-code emitter, the pc machine's firmware tables, and its PM register block. */
#ifndef KVMLOOP_ACPI_H
#define KVMLOOP_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/irq.h"
#include "kvmloop/types.h"

struct DeviceClass;

/* ---- The PM I/O block: one layout shared by the tables and the device ---- */

#define ACPI_PM_DEFAULT_IOBASE 0x600
#define ACPI_PM_DEFAULT_SCI    9
#define ACPI_PM_IOSIZE         0x10

/* Offsets from the block's base and lengths (the FADT's *_LEN fields). */
#define ACPI_PM1_EVT_OFFSET 0x0 /* PM1a_EVT_BLK: PM1_STS at +0, PM1_EN at +2 */
#define ACPI_PM1_EVT_LEN    4
#define ACPI_PM1_CNT_OFFSET 0x4 /* PM1a_CNT_BLK */
#define ACPI_PM1_CNT_LEN    2
#define ACPI_PM_TMR_OFFSET  0x8 /* PM_TMR_BLK, 32-bit counter */
#define ACPI_PM_TMR_LEN     4
#define ACPI_RESET_OFFSET   0xc /* the FADT's RESET_REG, one byte */

/* PM1_STS and PM1_EN bits (ACPI 6.3, 4.8.3.1). */
#define ACPI_PM1_STS_TMR    (1u << 0)
#define ACPI_PM1_STS_BM     (1u << 4)
#define ACPI_PM1_STS_GBL    (1u << 5)
#define ACPI_PM1_STS_PWRBTN (1u << 8)
#define ACPI_PM1_STS_SLPBTN (1u << 9)
#define ACPI_PM1_STS_RTC    (1u << 10)
#define ACPI_PM1_STS_WAK    (1u << 15)
#define ACPI_PM1_EN_TMR     (1u << 0)
#define ACPI_PM1_EN_GBL     (1u << 5)
#define ACPI_PM1_EN_PWRBTN  (1u << 8)
#define ACPI_PM1_EN_SLPBTN  (1u << 9)
#define ACPI_PM1_EN_RTC     (1u << 10)
/* PM1_CNT bits (ACPI 6.3, 4.8.3.2.1). */
#define ACPI_PM1_CNT_SCI_EN        (1u << 0)
#define ACPI_PM1_CNT_BM_RLD        (1u << 1)
#define ACPI_PM1_CNT_GBL_RLS       (1u << 2)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK  (7u << ACPI_PM1_CNT_SLP_TYP_SHIFT)
#define ACPI_PM1_CNT_SLP_EN        (1u << 13)

/* The SLP_TYP value of S5 (soft off) that \_S5 announces and the device obeys. */
#define ACPI_PM_S5_SLP_TYP 5
/* The value that, written to RESET_REG, resets the machine. */
#define ACPI_PM_RESET_VALUE 0x01
/* The PM timer's frequency (ACPI 6.3, 4.8.3.3). */
#define ACPI_PM_TIMER_HZ 3579545

/* ---- AML byte-code emitter (ACPI 6.3, chapter 20) ------------------------ */

/*
 * An Aml is a growing string of AML bytes. Objects are appended in order;
 * those with a PkgLength (Scope, Device, Method, Package) are opened with an
 * aml_*_begin() that returns a mark and closed with aml_end(mark), which
 * inserts the PkgLength in its shortest form once the body's size is known.
 * Blocks nest and must be closed innermost first.
 *
 * Mistakes (an invalid name, blocks closed out of order, more than 255
 * package elements) do not abort: the first one is remembered, later calls
 * still append, and aml_error() reports it; callers check it once at the end.
 *
 * Integers are 64-bit, as in a definition block of revision 2 or later.
 * An Aml is not thread-safe; it is a plain builder.
 */
typedef struct Aml Aml;
typedef size_t AmlBlock;

Aml *aml_new(void);
void aml_free(Aml *a); /* NULL is allowed */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Aml, aml_free)

/* The bytes so far; valid until the next append. */
const uint8_t *aml_data(const Aml *a, size_t *len);
/* The first mistake as a one-line message, or NULL. */
const char *aml_error(const Aml *a);
/* Blocks opened and not closed yet. */
unsigned aml_open_blocks(const Aml *a);

/* Encode a PkgLength of @len (the count of bytes from the PkgLength's own
 * first byte to the end of the object) into @out. Returns 1-4, the bytes
 * used, or 0 if @len does not fit in 28 bits. */
unsigned aml_pkg_length_encode(uint32_t len, uint8_t out[4]);

/* Raw bytes, for what the helpers below do not cover. */
void aml_append_bytes(Aml *a, const void *data, size_t len);
/* An integer in its shortest form: ZeroOp, OneOp, OnesOp (all 64 bits set),
 * or Byte/Word/DWord/QWord prefix and value. */
void aml_integer(Aml *a, uint64_t v);
/* A string constant (ASCII 0x01-0x7f; anything else is a mistake). */
void aml_string(Aml *a, const char *s);
/* A NameString: an optional "\" or "^" prefixes, then dot-separated NameSegs
 * of 1-4 characters [A-Z_][A-Z0-9_]* padded with '_' ("\\_SB.PCI0", "_S5",
 * "^^FOO"). "\\" alone is the root. */
void aml_name_string(Aml *a, const char *path);
/* A compressed EISA ID ("PNP0A03": three letters, four hex digits) as a DWord
 * integer, the form _HID and _CID take. */
void aml_eisaid(Aml *a, const char *id);
/* Buffer (@len) { @data }: a fixed byte list, e.g. a resource template. */
void aml_buffer(Aml *a, const void *data, size_t len);
/* Name (@name, ...): the caller appends the value object next. */
void aml_name(Aml *a, const char *name);
/* Return (...): the caller appends the value next. */
void aml_return(Aml *a);

/* Scope (@path) { ... } */
AmlBlock aml_scope_begin(Aml *a, const char *path);
/* Device (@path) { ... } */
AmlBlock aml_device_begin(Aml *a, const char *path);
/* Method (@path, @nargs (0-7), Serialized or NotSerialized) { ... } */
AmlBlock aml_method_begin(Aml *a, const char *path, unsigned nargs, bool serialized);
/* Package (@nelements (0-255)) { ... }: append exactly @nelements objects. */
AmlBlock aml_package_begin(Aml *a, unsigned nelements);
/* Close the block opened by the begin call that returned @b. */
void aml_end(Aml *a, AmlBlock b);

/* ---- Tables -------------------------------------------------------------- */

#define ACPI_MAX_CPUS 255

/* Appends to the body of the DSDT's Scope (\_SB), e.g. a PCI host bridge. */
typedef void (*acpi_aml_fn)(Aml *sb, void *opaque);

/* What the tables describe. acpi_config_init_pc() gives the pc machine's values. */
typedef struct AcpiConfig {
    unsigned ncpus;                  /* 1..ACPI_MAX_CPUS */
    uint32_t apic_id[ACPI_MAX_CPUS]; /* CPU i: ACPI processor UID i, this APIC ID */
    uint32_t lapic_addr;             /* 0xFEE00000 */
    uint8_t ioapic_id;               /* 0 */
    uint32_t ioapic_addr;            /* 0xFEC00000 */
    uint32_t ioapic_gsi_base;        /* 0 */
    uint16_t pm_iobase;              /* the acpi-pm device's iobase */
    uint8_t sci_irq;                 /* ISA IRQ 1-15 but 2, level-triggered active-high */
    uint16_t reset_port;             /* RESET_REG: pm_iobase + ACPI_RESET_OFFSET */
    uint8_t reset_value;             /* RESET_VALUE */
    uint8_t s5_slp_typ;              /* 0-7, in \_S5 */
    acpi_aml_fn sb_fill;             /* may be NULL: \_SB stays empty */
    void *sb_opaque;
} AcpiConfig;

/* Fill @cfg for the pc machine with @ncpus CPUs whose APIC IDs are their
 * indexes: the addresses above, the PM block at ACPI_PM_DEFAULT_IOBASE with
 * its reset register, SCI on IRQ 9, S5 type ACPI_PM_S5_SLP_TYP. Any thread. */
void acpi_config_init_pc(AcpiConfig *cfg, unsigned ncpus);

/*
 * Build the tables for placement at guest physical @base: RSDP at offset 0,
 * then FACS (64-byte aligned), DSDT, FADT, MADT, RSDT and XSDT, every pointer
 * an absolute address computed from @base and every checksum filled in. The
 * RSDP's address is @base; placed in 0xE0000-0xFFFFF it is where Linux and
 * other OSes scan for "RSD PTR ". CPUs whose APIC ID is 255 or more get x2APIC
 * entries. The blob is about 0.6 KiB plus 8 bytes per CPU.
 *
 * Returns the blob (free with g_byte_array_unref()), or NULL with a one-line
 * error for a bad @cfg (CPU count, duplicate APIC ID, SCI IRQ, sleep type,
 * AML from sb_fill) or a @base that is not 16-byte aligned or puts the blob
 * above 4 GiB. Any thread; pure apart from calling sb_fill.
 */
GByteArray *acpi_build_tables(const AcpiConfig *cfg, gpa_t base, GError **errp);

/* Fill a table's checksum byte (offset 9 of the header) so that its @len
 * bytes sum to zero. */
void acpi_table_checksum(uint8_t *table, size_t len);

/* ---- The PM register block (ACPI 6.3, 4.8: fixed hardware) --------------- */

/*
 * PM1a event and control registers, the PM timer and the reset register at
 * the offsets above, mapped as four regions in an address space. It is the
 * register model behind the "acpi-pm" device, usable without a machine.
 *
 * Every function below, and the regions' accesses, run under the BQL: the
 * regions keep the default BQL policy, since the status bits are shared with
 * acpi_pm_block_power_button() and the timer callback.
 */
typedef struct AcpiPmBlock AcpiPmBlock;

typedef void (*acpi_pm_event_fn)(void *opaque);

typedef struct AcpiPmBlockConfig {
    const char *name;          /* prefix of the region names ("acpi-pm") */
    AddressSpace *pio;         /* where to map the block */
    uint16_t iobase;           /* at most 0x10000 - ACPI_PM_IOSIZE */
    IrqLine sci;               /* driven to the SCI level on every change */
    EventLoop *loop;           /* raises the timer SCI (TMR_EN) on time; NULL: only on access */
    uint8_t s5_slp_typ;        /* SLP_TYP that means soft off */
    uint8_t reset_value;       /* RESET_REG value that means reset */
    acpi_pm_event_fn poweroff; /* SLP_EN with the S5 type */
    acpi_pm_event_fn reset;    /* the reset value written to RESET_REG */
    void *opaque;              /* for poweroff and reset */
} AcpiPmBlockConfig;

/* Create the block in its reset state and map its regions. Returns NULL with
 * a one-line error if @cfg->iobase does not fit or a region overlaps another. */
AcpiPmBlock *acpi_pm_block_new(const AcpiPmBlockConfig *cfg, GError **errp);
/* Unmap and free. No vCPU may be dispatching to the block any more (see
 * address_space_remove()). NULL is allowed. */
void acpi_pm_block_free(AcpiPmBlock *b);
/* Power-on state: status, enable and sleep-type bits clear, SCI low. The
 * timer keeps counting. */
void acpi_pm_block_reset(AcpiPmBlock *b);
/* The power button was pressed: set PWRBTN_STS; the SCI rises if PWRBTN_EN. */
void acpi_pm_block_power_button(AcpiPmBlock *b);
/* Load the PM timer with @value (state restore and tests); it counts on from
 * there without flagging a carry for the jump. */
void acpi_pm_block_set_timer(AcpiPmBlock *b, uint32_t value);

/* ---- The "acpi-pm" device ------------------------------------------------ */

/* The pc machine's PM block on the main loop: props iobase (default 0x600)
 * and irq (9, the SCI). S5 powers the machine off with
 * machine_request_exit(m, 0); RESET_VALUE at RESET_REG calls
 * machine_request_reset(m). Part of the machine, not for -device. */
extern const struct DeviceClass acpi_pm_device_class;

/* Press the power button of @pm, an acpi-pm device (NULL or another device
 * is ignored with a warning): PWRBTN_STS is set and, once the guest has set
 * PWRBTN_EN, the SCI rises. Any thread with the BQL held. */
void acpi_pm_power_button(Device *pm);

#endif
