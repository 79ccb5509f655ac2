/* The ACPI PM block: PM1a event and control registers, PM timer, reset register; "acpi-pm". */
#include "kvmloop/acpi.h"
#include "kvmloop/error.h"

#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"

/* ---- Constants ------------------------------------------------------------ */

/* Status bits this model can set; the others read as zero. */
#define ACPI_PM1_STS_MODELLED (ACPI_PM1_STS_TMR | ACPI_PM1_STS_PWRBTN)
/* Enable bits that keep what is written (ACPICA reads an enable back to check
 * that it stuck); only TMR_EN and PWRBTN_EN have a status that can fire. */
#define ACPI_PM1_EN_WRITABLE                                                                       \
    (ACPI_PM1_EN_TMR | ACPI_PM1_EN_GBL | ACPI_PM1_EN_PWRBTN | ACPI_PM1_EN_SLPBTN | ACPI_PM1_EN_RTC)
/* PM1_CNT bits that keep what is written. SLP_EN and GBL_RLS are write-only
 * triggers and read as zero; SCI_EN always reads as one (no legacy mode). */
#define ACPI_PM1_CNT_WRITABLE (ACPI_PM1_CNT_BM_RLD | ACPI_PM1_CNT_SLP_TYP_MASK)
/* With TMR_VAL_EXT the timer is 32 bits wide and TMR_STS is set whenever
 * bit 31 changes (4.8.3.3). */
#define ACPI_PM_TMR_CARRY_SHIFT 31
#define NS_PER_SEC              1000000000ULL

/* The four regions: one per register block, so that the dispatcher enforces
 * each block's access width (4.8.3: word-wide PM1 registers, a 32-bit timer,
 * a byte-wide reset register). */
enum {
    ACPI_PM_REGION_EVT,
    ACPI_PM_REGION_CNT,
    ACPI_PM_REGION_TMR,
    ACPI_PM_REGION_RST,
    ACPI_PM_REGIONS,
};

/* ---- State ---------------------------------------------------------------- */

/* Guarded by the BQL (see acpi.h). */
struct AcpiPmBlock {
    AcpiPmBlockConfig cfg; /* cfg.name points at name */
    char *name;
    MemoryRegion regions[ACPI_PM_REGIONS];
    unsigned mapped; /* regions[0..mapped) are in cfg.pio */
    Timer *timer;    /* fires at the next timer carry while TMR_EN is set */

    uint16_t sts;
    uint16_t en;
    uint16_t cnt;
    int sci_level;

    /* The counter is the virtual clock in 3.579545 MHz ticks plus tmr_offset,
     * kept in 64 bits so that carries are counted; tmr_epoch is its value
     * >> 31 when TMR_STS was last brought up to date. */
    uint64_t tmr_offset;
    uint64_t tmr_epoch;

    bool warned_sleep;
    bool warned_unaligned;
};

/* ---- The timer ------------------------------------------------------------ */

static uint64_t acpi_pm_ticks(int64_t ns)
{
    if (ns < 0) {
        ns = 0;
    }
    return (uint64_t)((unsigned __int128)ns * ACPI_PM_TIMER_HZ / NS_PER_SEC);
}

static uint64_t acpi_pm_count(const AcpiPmBlock *b, int64_t now)
{
    return acpi_pm_ticks(now) + b->tmr_offset;
}

/* Flag a carry of bit 31 since the last look. */
static void acpi_pm_update_tmr_sts(AcpiPmBlock *b, int64_t now)
{
    uint64_t epoch = acpi_pm_count(b, now) >> ACPI_PM_TMR_CARRY_SHIFT;

    if (epoch != b->tmr_epoch) {
        b->tmr_epoch = epoch;
        b->sts |= ACPI_PM1_STS_TMR;
    }
}

/* While TMR_EN is set the SCI must rise at the carry even if nobody reads
 * the registers, so a timer waits for it. */
static void acpi_pm_arm_timer(AcpiPmBlock *b, int64_t now)
{
    if (!b->timer) {
        return;
    }
    if (!(b->en & ACPI_PM1_EN_TMR)) {
        timer_del(b->timer);
        return;
    }
    uint64_t count = acpi_pm_count(b, now);
    uint64_t next = ((count >> ACPI_PM_TMR_CARRY_SHIFT) + 1) << ACPI_PM_TMR_CARRY_SHIFT;
    uint64_t ticks = next - count; /* 1 .. 2^31 */
    uint64_t ns = (ticks * NS_PER_SEC + ACPI_PM_TIMER_HZ - 1) / ACPI_PM_TIMER_HZ;
    timer_mod(b->timer, now + (int64_t)ns);
}

/* ---- Derived state: the SCI ------------------------------------------------- */

/* The SCI is a level: high while any enabled status bit is set (4.8.2.1). */
static void acpi_pm_update_sci(AcpiPmBlock *b)
{
    int level = (b->sts & b->en & ACPI_PM1_STS_MODELLED) != 0;

    if (level != b->sci_level) {
        b->sci_level = level;
        irq_set(&b->cfg.sci, level);
    }
}

/* ---- Register access ---------------------------------------------------------- */

static bool acpi_pm_aligned(AcpiPmBlock *b, uint64_t offset, unsigned size)
{
    if (offset % size == 0) {
        return true;
    }
    if (!b->warned_unaligned) {
        b->warned_unaligned = true;
        g_warning("%s: unaligned %u-byte access ignored (further ones not reported)", b->name,
                  size);
    }
    return false;
}

static uint64_t acpi_pm_evt_read(void *opaque, uint64_t offset, unsigned size)
{
    AcpiPmBlock *b = opaque;

    if (!acpi_pm_aligned(b, offset, size)) {
        return UINT64_MAX;
    }
    if (offset == 0) {
        acpi_pm_update_tmr_sts(b, clock_get_ns(CLOCK_TYPE_VIRTUAL));
        acpi_pm_update_sci(b);
        return b->sts;
    }
    return b->en;
}

static void acpi_pm_evt_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    AcpiPmBlock *b = opaque;
    int64_t now = clock_get_ns(CLOCK_TYPE_VIRTUAL);

    if (!acpi_pm_aligned(b, offset, size)) {
        return;
    }
    /* Bring TMR_STS up to date first, so that a carry that already happened
     * is cleared by this write rather than reported after it. */
    acpi_pm_update_tmr_sts(b, now);
    if (offset == 0) {
        b->sts &= (uint16_t)~value; /* write 1 to clear */
    } else {
        b->en = (uint16_t)(value & ACPI_PM1_EN_WRITABLE);
        acpi_pm_arm_timer(b, now);
    }
    acpi_pm_update_sci(b);
}

static uint64_t acpi_pm_cnt_read(void *opaque, uint64_t offset, unsigned size)
{
    AcpiPmBlock *b = opaque;
    return ACPI_PM1_CNT_SCI_EN | b->cnt;
}

static void acpi_pm_cnt_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    AcpiPmBlock *b = opaque;
    unsigned typ = (value & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;

    b->cnt = (uint16_t)(value & ACPI_PM1_CNT_WRITABLE);
    if (!(value & ACPI_PM1_CNT_SLP_EN)) {
        return;
    }
    if (typ == b->cfg.s5_slp_typ) {
        b->cfg.poweroff(b->cfg.opaque);
    } else if (!b->warned_sleep) {
        b->warned_sleep = true;
        g_warning("%s: sleep type %u is not supported, only S5 (type %u); ignored (further "
                  "requests not reported)",
                  b->name, typ, b->cfg.s5_slp_typ);
    }
}

static uint64_t acpi_pm_tmr_read(void *opaque, uint64_t offset, unsigned size)
{
    AcpiPmBlock *b = opaque;
    return (uint32_t)acpi_pm_count(b, clock_get_ns(CLOCK_TYPE_VIRTUAL));
}

static void acpi_pm_tmr_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    /* The timer is read-only. */
}

static uint64_t acpi_pm_rst_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void acpi_pm_rst_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    AcpiPmBlock *b = opaque;

    if (value == b->cfg.reset_value) {
        b->cfg.reset(b->cfg.opaque);
    }
}

static const MemoryRegionOps acpi_pm_evt_ops = {
    .read = acpi_pm_evt_read,
    .write = acpi_pm_evt_write,
    .min_access_size = 2,
    .max_access_size = 2,
};

static const MemoryRegionOps acpi_pm_cnt_ops = {
    .read = acpi_pm_cnt_read,
    .write = acpi_pm_cnt_write,
    .min_access_size = 2,
    .max_access_size = 2,
};

static const MemoryRegionOps acpi_pm_tmr_ops = {
    .read = acpi_pm_tmr_read,
    .write = acpi_pm_tmr_write,
    .min_access_size = 4,
    .max_access_size = 4,
};

static const MemoryRegionOps acpi_pm_rst_ops = {
    .read = acpi_pm_rst_read,
    .write = acpi_pm_rst_write,
    .min_access_size = 1,
    .max_access_size = 1,
};

static const struct {
    const char *name;
    uint16_t offset;
    uint16_t size;
    const MemoryRegionOps *ops;
} acpi_pm_layout[ACPI_PM_REGIONS] = {
    [ACPI_PM_REGION_EVT] = {"pm1a-evt", ACPI_PM1_EVT_OFFSET, ACPI_PM1_EVT_LEN, &acpi_pm_evt_ops},
    [ACPI_PM_REGION_CNT] = {"pm1a-cnt", ACPI_PM1_CNT_OFFSET, ACPI_PM1_CNT_LEN, &acpi_pm_cnt_ops},
    [ACPI_PM_REGION_TMR] = {"pm-tmr", ACPI_PM_TMR_OFFSET, ACPI_PM_TMR_LEN, &acpi_pm_tmr_ops},
    [ACPI_PM_REGION_RST] = {"reset", ACPI_RESET_OFFSET, 1, &acpi_pm_rst_ops},
};

/* ---- Backend callbacks ---------------------------------------------------------- */

/* Main loop, BQL held: the timer carry is due. */
static void acpi_pm_timer_cb(void *opaque)
{
    AcpiPmBlock *b = opaque;
    int64_t now = clock_get_ns(CLOCK_TYPE_VIRTUAL);

    acpi_pm_update_tmr_sts(b, now);
    acpi_pm_update_sci(b);
    acpi_pm_arm_timer(b, now);
}

/* ---- Life cycle --------------------------------------------------------------- */

AcpiPmBlock *acpi_pm_block_new(const AcpiPmBlockConfig *cfg, GError **errp)
{
    if (cfg->iobase > 0x10000 - ACPI_PM_IOSIZE) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: iobase 0x%x leaves no room for the %d-port block", cfg->name, cfg->iobase,
                    ACPI_PM_IOSIZE);
        return NULL;
    }
    AcpiPmBlock *b = g_new0(AcpiPmBlock, 1);
    b->cfg = *cfg;
    b->name = g_strdup(cfg->name);
    b->cfg.name = b->name;
    if (cfg->loop) {
        g_autofree char *tname = g_strdup_printf("%s.pm-tmr", b->name);
        b->timer = timer_new(cfg->loop, CLOCK_TYPE_VIRTUAL, tname, acpi_pm_timer_cb, b);
    }
    /* The counter starts at zero, in epoch zero. */
    b->tmr_offset = -acpi_pm_ticks(clock_get_ns(CLOCK_TYPE_VIRTUAL));

    for (unsigned i = 0; i < ACPI_PM_REGIONS; i++) {
        g_autofree char *rname = g_strdup_printf("%s.%s", b->name, acpi_pm_layout[i].name);
        memory_region_init(&b->regions[i], rname, acpi_pm_layout[i].size, acpi_pm_layout[i].ops, b,
                           NULL);
        if (!address_space_add(cfg->pio, &b->regions[i], cfg->iobase + acpi_pm_layout[i].offset,
                               errp)) {
            memory_region_destroy(&b->regions[i]);
            acpi_pm_block_free(b);
            return NULL;
        }
        b->mapped++;
    }
    return b;
}

void acpi_pm_block_free(AcpiPmBlock *b)
{
    if (!b) {
        return;
    }
    for (unsigned i = 0; i < b->mapped; i++) {
        address_space_remove(b->cfg.pio, &b->regions[i]);
    }
    /* The caller guarantees that no vCPU is dispatching here any more. */
    for (unsigned i = 0; i < b->mapped; i++) {
        memory_region_destroy(&b->regions[i]);
    }
    if (b->timer) {
        timer_free(b->timer);
    }
    if (b->sci_level) {
        irq_set(&b->cfg.sci, 0);
    }
    g_free(b->name);
    g_free(b);
}

void acpi_pm_block_reset(AcpiPmBlock *b)
{
    b->sts = 0;
    b->en = 0;
    b->cnt = 0;
    /* A carry before the reset is not reported after it. */
    b->tmr_epoch = acpi_pm_count(b, clock_get_ns(CLOCK_TYPE_VIRTUAL)) >> ACPI_PM_TMR_CARRY_SHIFT;
    if (b->timer) {
        timer_del(b->timer);
    }
    acpi_pm_update_sci(b);
}

void acpi_pm_block_power_button(AcpiPmBlock *b)
{
    b->sts |= ACPI_PM1_STS_PWRBTN;
    acpi_pm_update_sci(b);
}

void acpi_pm_block_set_timer(AcpiPmBlock *b, uint32_t value)
{
    int64_t now = clock_get_ns(CLOCK_TYPE_VIRTUAL);

    /* Flag a carry that happened before the jump, then start afresh. */
    acpi_pm_update_tmr_sts(b, now);
    b->tmr_offset = (uint64_t)value - acpi_pm_ticks(now);
    b->tmr_epoch = acpi_pm_count(b, now) >> ACPI_PM_TMR_CARRY_SHIFT;
    acpi_pm_arm_timer(b, now);
    acpi_pm_update_sci(b);
}

/* ---- The "acpi-pm" device --------------------------------------------------------- */

typedef struct AcpiPm {
    Device dev;
    Machine *machine;
    AcpiPmBlock *block;
} AcpiPm;

static void acpi_pm_poweroff(void *opaque)
{
    AcpiPm *s = opaque;
    machine_request_exit(s->machine, 0);
}

static void acpi_pm_reset_request(void *opaque)
{
    AcpiPm *s = opaque;
    machine_request_reset(s->machine);
}

static bool acpi_pm_realize(Device *dev, Machine *m, GError **errp)
{
    AcpiPm *s = (AcpiPm *)dev;
    uint64_t iobase, irq;

    s->machine = m;
    if (!device_prop_u64(dev, "iobase", ACPI_PM_DEFAULT_IOBASE, &iobase, errp) ||
        !device_prop_u64(dev, "irq", ACPI_PM_DEFAULT_SCI, &irq, errp)) {
        return false;
    }
    if (iobase > 0x10000 - ACPI_PM_IOSIZE) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "acpi-pm: iobase must be at most 0x%x", 0x10000 - ACPI_PM_IOSIZE);
        return false;
    }
    if (irq < 1 || irq > 15) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "acpi-pm: irq must be an ISA IRQ from 1 to 15");
        return false;
    }
    AcpiPmBlockConfig cfg = {
        .name = dev->id,
        .pio = machine_pio(m),
        .iobase = (uint16_t)iobase,
        .sci = machine_isa_irq(m, (int)irq),
        .loop = machine_main_loop(m),
        .s5_slp_typ = ACPI_PM_S5_SLP_TYP,
        .reset_value = ACPI_PM_RESET_VALUE,
        .poweroff = acpi_pm_poweroff,
        .reset = acpi_pm_reset_request,
        .opaque = s,
    };
    s->block = acpi_pm_block_new(&cfg, errp);
    return s->block != NULL;
}

static void acpi_pm_reset(Device *dev)
{
    AcpiPm *s = (AcpiPm *)dev;
    acpi_pm_block_reset(s->block);
}

static void acpi_pm_unrealize(Device *dev)
{
    AcpiPm *s = (AcpiPm *)dev;
    acpi_pm_block_free(s->block);
    s->block = NULL;
}

void acpi_pm_power_button(Device *pm)
{
    if (!pm) {
        g_warning("the machine has no acpi-pm device; no power button pressed");
        return;
    }
    if (pm->cls != &acpi_pm_device_class) {
        g_warning("%s is not an acpi-pm device; no power button pressed", pm->id);
        return;
    }
    acpi_pm_block_power_button(((AcpiPm *)pm)->block);
}

static const char *const acpi_pm_props[] = {"iobase", "irq", NULL};

const DeviceClass acpi_pm_device_class = {
    .name = "acpi-pm",
    .desc = "ACPI PM1a event/control registers, PM timer, reset register; S5 powers off",
    .props_help = "iobase=0x600,irq=9",
    .props = acpi_pm_props,
    .instance_size = sizeof(AcpiPm),
    .user_creatable = false,
    .realize = acpi_pm_realize,
    .reset = acpi_pm_reset,
    .unrealize = acpi_pm_unrealize,
};
