/*
 * acpi-poweroff: finds the ACPI tables the way an OS does and powers off through S5.
 *
 * Scans 0xE0000-0xFFFFF on 16-byte boundaries for the RSDP (retrying for a
 * few seconds, so a host may publish the tables after the start), follows the
 * XSDT (or the RSDT) to the FADT and the MADT, checks every checksum, reads
 * the S5 sleep type from \_S5 in the DSDT, checks that SCI_EN is set
 * (enabling ACPI mode through SMI_CMD if the firmware has one) and that the
 * PM timer counts, then writes SLP_TYP | SLP_EN to PM1a_CNT. Prints what it
 * finds, one "acpi-poweroff: ..." line per table.
 *
 * With "button=1" it first waits for the power button instead: it enables
 * PWRBTN_EN, routes the SCI (IOAPIC pin SCI_INT, level-triggered, active
 * high, as the MADT says) to a vector, and powers off from the interrupt
 * handler once PM1_STS shows PWRBTN_STS. The handler never returns (see
 * uart-irq.c for why).
 *
 * Success: the machine powers off (host status 0). Exit codes (debug-exit V):
 *   1  no RSDP found
 *   2  root table (XSDT/RSDT) missing or bad
 *   3  no FADT, or a bad one
 *   4  DSDT bad, or no \_S5 package in it
 *   5  SCI_EN stays clear (not in ACPI mode, and SMI_CMD cannot enable it)
 *   6  the PM timer does not count
 *   7  no MADT, a bad one, or its CPU count differs from the machine's
 *   8  still running after the S5 write
 *   9  button=1: no SCI within the timeout
 *  10  button=1: the SCI came without PWRBTN_STS
 */
#include "irq.h"

#define BIOS_AREA_START 0xE0000u
#define BIOS_AREA_END   0x100000u
#define SCAN_TIMEOUT    (1ULL << 33) /* TSC cycles: a few seconds */
#define IRQ_TIMEOUT     (1ULL << 35)
#define HEADER_LEN      36

/* FADT offsets (ACPI 6.3, table 5.33). */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT          40
#define FADT_SCI_INT       46
#define FADT_SMI_CMD       48
#define FADT_ACPI_ENABLE   52
#define FADT_PM1A_EVT_BLK  56
#define FADT_PM1A_CNT_BLK  64
#define FADT_PM_TMR_BLK    76
#define FADT_X_DSDT        140
#define FADT_V1_LEN        116 /* ACPI 1.0: no X_ fields */

#define PM1_STS_PWRBTN (1u << 8)
#define PM1_EN_PWRBTN  (1u << 8)
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_EN (1u << 13)
#define SLP_TYP_SHIFT  10

#define SCI_VECTOR         0x31

/* ---- Memory, read byte by byte (tables are not aligned, and a host may be
 * writing them while the scan runs) ---- */

static uint8_t rd8(uint32_t a)
{
    return *(const volatile uint8_t *)(uintptr_t)a;
}

static uint32_t rd_le(uint32_t a, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint32_t)rd8(a + i) << (8 * i);
    }
    return v;
}

static bool sig_is(uint32_t a, const char *sig, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (rd8(a + i) != (uint8_t)sig[i]) {
            return false;
        }
    }
    return true;
}

static uint8_t sum(uint32_t a, uint32_t len)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < len; i++) {
        s = (uint8_t)(s + rd8(a + i));
    }
    return s;
}

/* A System Description Table at @a with signature @sig, a sane length and
 * a zero checksum. */
static bool table_ok(uint32_t a, const char *sig)
{
    if (a == 0 || !sig_is(a, sig, 4)) {
        return false;
    }
    uint32_t len = rd_le(a + 4, 4);
    return len >= HEADER_LEN && len < 0x10000 && sum(a, len) == 0;
}

/* ---- Finding the tables ---- */

static uint32_t find_rsdp_once(void)
{
    for (uint32_t a = BIOS_AREA_START; a < BIOS_AREA_END; a += 16) {
        if (rd8(a) != 'R' || !sig_is(a, "RSD PTR ", 8) || sum(a, 20) != 0) {
            continue;
        }
        uint32_t len = rd_le(a + 20, 4);
        if (rd8(a + 15) >= 2 && (len < 36 || len > 64 || sum(a, len) != 0)) {
            continue;
        }
        return a;
    }
    return 0;
}

static uint32_t find_rsdp(void)
{
    uint64_t end = rdtsc() + SCAN_TIMEOUT;
    do {
        uint32_t a = find_rsdp_once();
        if (a) {
            return a;
        }
        barrier();
    } while (rdtsc() < end);
    return 0;
}

/* The root table's entry @sig, or 0. XSDT entries above 4 GiB are skipped:
 * this guest runs without paging. */
static uint32_t find_table(uint32_t root, bool xsdt, const char *sig)
{
    unsigned entry = xsdt ? 8 : 4;
    uint32_t n = (rd_le(root + 4, 4) - HEADER_LEN) / entry;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t at = root + HEADER_LEN + i * entry;
        if (xsdt && rd_le(at + 4, 4) != 0) {
            continue;
        }
        uint32_t t = rd_le(at, 4);
        if (t && sig_is(t, sig, 4)) {
            return t;
        }
    }
    return 0;
}

/* SLP_TYP for PM1a from Name (\_S5, Package () { typ, ... }), or -1. */
static int s5_slp_typ(uint32_t dsdt)
{
    uint32_t end = dsdt + rd_le(dsdt + 4, 4);
    for (uint32_t a = dsdt + HEADER_LEN; a + 8 < end; a++) {
        if (!sig_is(a, "_S5_", 4) || rd8(a + 4) != 0x12) {
            continue;
        }
        uint32_t p = a + 5;
        p += 1 + (rd8(p) >> 6); /* PkgLength */
        p += 1;                 /* NumElements */
        switch (rd8(p)) {
        case 0x00:
            return 0;
        case 0x01:
            return 1;
        case 0x0A:
            return rd8(p + 1) & 7;
        default:
            return -1;
        }
    }
    return -1;
}

/* The number of enabled Processor Local APIC and x2APIC entries. */
static unsigned madt_cpus(uint32_t madt)
{
    uint32_t end = madt + rd_le(madt + 4, 4);
    unsigned n = 0;
    for (uint32_t a = madt + 44; a + 2 <= end;) {
        uint8_t type = rd8(a), len = rd8(a + 1);
        if (len < 2) {
            break;
        }
        if ((type == 0 && (rd_le(a + 4, 4) & 1)) || (type == 9 && (rd_le(a + 8, 4) & 1))) {
            n++;
        }
        a += len;
    }
    return n;
}

/* ---- Power off ---- */

static uint16_t pm1a_cnt;
static uint16_t pm1a_evt;
static int slp_typ;

static void __attribute__((noreturn)) power_off(void)
{
    serial_printf("acpi-poweroff: powering off (SLP_TYP %d)\n", slp_typ);
    outw(pm1a_cnt, (uint16_t)((slp_typ << SLP_TYP_SHIFT) | PM1_CNT_SLP_EN));
    tsc_delay(SCAN_TIMEOUT);
    serial_puts("acpi-poweroff: still running\n");
    debug_exit(8);
}

/* ---- The power button, through the SCI ---- */

static volatile uint32_t sci_count;

IRQ_ENTRY(acpi_sci_isr, acpi_sci_handler);

void acpi_sci_handler(void)
{
    uint16_t sts = inw(pm1a_evt);
    sci_count = sci_count + 1;
    if (!(sts & PM1_STS_PWRBTN)) {
        serial_printf("acpi-poweroff: SCI with PM1_STS 0x%x\n", sts);
        debug_exit(10);
    }
    outw(pm1a_evt, PM1_STS_PWRBTN); /* write 1 to clear: the SCI drops */
    lapic_write(APIC_EOI, 0);
    serial_puts("acpi-poweroff: power button pressed\n");
    power_off();
}

static int wait_power_button(unsigned sci)
{
    irq_route(sci, IOAPIC_LEVEL, SCI_VECTOR, acpi_sci_isr);

    /* As an OS does: clear stale status, then enable the event. */
    outw(pm1a_evt, 0xffff);
    outw(pm1a_evt + 2, PM1_EN_PWRBTN);
    serial_printf("acpi-poweroff: waiting for the power button on SCI %u\n", sci);
    __asm__ volatile("sti");
    tsc_wait_ge32(&sci_count, 1, IRQ_TIMEOUT);
    __asm__ volatile("cli");
    serial_puts("acpi-poweroff: no SCI\n");
    return 9;
}

int main(const char *cmdline)
{
    serial_init();

    uint32_t rsdp = find_rsdp();
    if (!rsdp) {
        serial_puts("acpi-poweroff: no RSDP in 0xE0000-0xFFFFF\n");
        return 1;
    }
    uint8_t rev = rd8(rsdp + 15);
    bool xsdt = rev >= 2 && rd_le(rsdp + 24, 4) != 0 && rd_le(rsdp + 28, 4) == 0;
    uint32_t root = xsdt ? rd_le(rsdp + 24, 4) : rd_le(rsdp + 16, 4);
    serial_printf("acpi-poweroff: RSDP at 0x%x, revision %u, %s at 0x%x\n", rsdp, rev,
                  xsdt ? "XSDT" : "RSDT", root);
    if (!table_ok(root, xsdt ? "XSDT" : "RSDT")) {
        serial_puts("acpi-poweroff: bad root table\n");
        return 2;
    }

    uint32_t fadt = find_table(root, xsdt, "FACP");
    uint32_t fadt_len = table_ok(fadt, "FACP") ? rd_le(fadt + 4, 4) : 0;
    if (fadt_len < FADT_V1_LEN) {
        serial_puts("acpi-poweroff: no valid FADT\n");
        return 3;
    }
    pm1a_evt = (uint16_t)rd_le(fadt + FADT_PM1A_EVT_BLK, 4);
    pm1a_cnt = (uint16_t)rd_le(fadt + FADT_PM1A_CNT_BLK, 4);
    uint16_t pm_tmr = (uint16_t)rd_le(fadt + FADT_PM_TMR_BLK, 4);
    unsigned sci = rd_le(fadt + FADT_SCI_INT, 2);
    serial_printf("acpi-poweroff: FACP at 0x%x: PM1a_EVT 0x%x PM1a_CNT 0x%x PM_TMR 0x%x SCI %u\n",
                  fadt, pm1a_evt, pm1a_cnt, pm_tmr, sci);

    uint32_t dsdt = fadt_len >= FADT_X_DSDT + 8 ? rd_le(fadt + FADT_X_DSDT, 4) : 0;
    if (!dsdt) {
        dsdt = rd_le(fadt + FADT_DSDT, 4);
    }
    slp_typ = table_ok(dsdt, "DSDT") ? s5_slp_typ(dsdt) : -1;
    if (slp_typ < 0) {
        serial_puts("acpi-poweroff: no \\_S5 in the DSDT\n");
        return 4;
    }
    serial_printf("acpi-poweroff: DSDT at 0x%x: \\_S5 SLP_TYP %d\n", dsdt, slp_typ);

    /* Firmware that starts in legacy mode (QEMU's SeaBIOS) switches to ACPI
     * mode when ACPI_ENABLE is written to SMI_CMD (ACPI 6.3, 4.8.2.1.1). */
    uint16_t smi_cmd = (uint16_t)rd_le(fadt + FADT_SMI_CMD, 4);
    if (!(inw(pm1a_cnt) & PM1_CNT_SCI_EN) && smi_cmd) {
        serial_printf("acpi-poweroff: enabling ACPI mode through SMI_CMD 0x%x\n", smi_cmd);
        outb(smi_cmd, rd8(fadt + FADT_ACPI_ENABLE));
        tsc_delay(1 << 24);
    }
    if (!(inw(pm1a_cnt) & PM1_CNT_SCI_EN)) {
        serial_puts("acpi-poweroff: not in ACPI mode\n");
        return 5;
    }
    uint32_t t0 = inl(pm_tmr);
    tsc_delay(1 << 20);
    uint32_t t1 = inl(pm_tmr);
    serial_printf("acpi-poweroff: PM timer 0x%x -> 0x%x\n", t0, t1);
    if (t1 == t0) {
        return 6;
    }

    uint32_t madt = find_table(root, xsdt, "APIC");
    unsigned cpus = table_ok(madt, "APIC") ? madt_cpus(madt) : 0;
    serial_printf("acpi-poweroff: MADT at 0x%x: %u CPUs\n", madt, cpus);
    if (cpus != (unsigned)smp_cpu_count()) {
        return 7;
    }

    if (cmdline_get_int(cmdline, "button", 0)) {
        return wait_power_button(sci);
    }
    power_off();
}
