/* PCI bus 0: type-1 config mechanism, BAR placement and mapping, MSI-X, INTx and the ACPI host
 * bridge. */
#include "kvmloop/pci.h"
#include "kvmloop/error.h"

#include <linux/pci_regs.h>
#include <pthread.h>
#include <string.h>

#include "kvmloop/acpi.h"
#include "kvmloop/klock.h"
#include "kvmloop/rcu.h"

#define PCI_HOST_VENDOR  0x1b36 /* the generic host bridge ID Linux knows from QEMU */
#define PCI_HOST_DEVICE  0x0008
#define PCI_CLASS_BRIDGE 0x060000
#define PCI_CFG_ENABLE   0x80000000u
#define PCI_INTX_GSIS    4
#define PCI_MSIX_MAX     64

struct PciBus {
    AddressSpace *pio;
    AddressSpace *mmio;
    pci_msi_fn msi;
    pci_gsi_fn gsi;
    void *opaque;
    MemoryRegion addr_mr;
    MemoryRegion data_mr;
    bool addr_mapped, data_mapped;
    uint32_t config_address; /* BQL */
    PciDevice *slots[PCI_SLOT_MAX];
    PciDevice host;
    KLock host_lock;
    gpa_t mmio_next;
    uint32_t io_next;
    pthread_mutex_t intx_lock; /* leaf lock: the GSI levels shared by slots */
    unsigned intx_asserted[PCI_INTX_GSIS];
};

/* A BAR's region lives until RCU readers that may still dispatch to it are
 * gone: a vCPU that looked it up in the old view may be waiting for the
 * device lock while the BAR moves. */
typedef struct PciBarRegion {
    MemoryRegion mr;
    struct rcu_head rcu;
} PciBarRegion;

static uint16_t cfg_get16(const PciDevice *d, unsigned off)
{
    return (uint16_t)(d->config[off] | (d->config[off + 1] << 8));
}

static uint32_t cfg_get32(const PciDevice *d, unsigned off)
{
    return cfg_get16(d, off) | ((uint32_t)cfg_get16(d, off + 2) << 16);
}

static void cfg_set16(PciDevice *d, unsigned off, uint16_t v)
{
    d->config[off] = (uint8_t)v;
    d->config[off + 1] = (uint8_t)(v >> 8);
}

static void cfg_set32(PciDevice *d, unsigned off, uint32_t v)
{
    cfg_set16(d, off, (uint16_t)v);
    cfg_set16(d, off + 2, (uint16_t)(v >> 16));
}

/* ---- BAR mapping -------------------------------------------------------- */

static void pci_bar_region_free_rcu(struct rcu_head *head)
{
#ifdef KVMLOOP_TSAN
    __tsan_acquire(&kvmloop_rcu_tsan_sync);
#endif
    PciBarRegion *r = caa_container_of(head, PciBarRegion, rcu);
    memory_region_destroy(&r->mr);
    g_free(r);
}

static void pci_bar_unmap(PciDevice *d, PciBar *b, bool now)
{
    if (!b->mr) {
        return;
    }
    if (d->bar_moved) {
        d->bar_moved(d, (unsigned)(b - d->bar), 0);
    }
    address_space_remove(b->io ? d->bus->pio : d->bus->mmio, b->mr);
    PciBarRegion *r = (PciBarRegion *)b->mr;
    if (now) {
        pci_bar_region_free_rcu(&r->rcu);
    } else {
        urcu_memb_call_rcu(&r->rcu, pci_bar_region_free_rcu);
    }
    b->mr = NULL;
    b->mapped_at = 0;
}

/* Where BAR @i should be mapped now, or 0: decoding on and an address that
 * fits its space. */
static gpa_t pci_bar_target(PciDevice *d, unsigned i)
{
    PciBar *b = &d->bar[i];
    uint16_t cmd = cfg_get16(d, PCI_COMMAND);
    uint32_t v = cfg_get32(d, PCI_BASE_ADDRESS_0 + 4 * i);

    if (!(cmd & (b->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY))) {
        return 0;
    }
    gpa_t addr = v & (b->io ? PCI_BASE_ADDRESS_IO_MASK : PCI_BASE_ADDRESS_MEM_MASK);
    uint64_t limit = b->io ? 0x10000 : 0x100000000ULL;
    if (addr == 0 || addr + b->size > limit) {
        return 0;
    }
    return addr;
}

/* Make the regions follow the command register and the BARs. A guest that
 * points a BAR at something already mapped gets it unmapped, not a crash.
 * Device lock held (and the BQL: the address spaces' writers). */
static void pci_update_mappings(PciDevice *d)
{
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        PciBar *b = &d->bar[i];
        if (!b->size) {
            continue;
        }
        gpa_t want = pci_bar_target(d, i);
        if (b->mr && b->mapped_at == want) {
            continue;
        }
        pci_bar_unmap(d, b, false);
        if (!want) {
            continue;
        }
        PciBarRegion *r = g_new0(PciBarRegion, 1);
        g_autofree char *name = g_strdup_printf("%s.bar%u", d->name, i);
        memory_region_init(&r->mr, name, b->size, b->ops, b->opaque, d->lock);
        memory_region_set_lock_policy(&r->mr, LOCK_POLICY_DEVICE, NULL);
        g_autoptr(GError) err = NULL;
        if (!address_space_add(b->io ? d->bus->pio : d->bus->mmio, &r->mr, want, &err)) {
            g_warning("%s: BAR %u left unmapped: %s", d->name, i, err->message);
            memory_region_destroy(&r->mr);
            g_free(r);
            continue;
        }
        b->mr = &r->mr;
        b->mapped_at = want;
        if (d->bar_moved) {
            d->bar_moved(d, i, want);
        }
    }
}

gpa_t pci_device_bar_addr(PciDevice *d, unsigned idx)
{
    return idx < PCI_NUM_BARS ? d->bar[idx].mapped_at : 0;
}

/* ---- MSI-X -------------------------------------------------------------- */

static uint16_t pci_msix_control(PciDevice *d)
{
    return cfg_get16(d, d->msix_cap + PCI_MSIX_FLAGS);
}

bool pci_msix_enabled(PciDevice *d)
{
    return d->msix_vectors && (pci_msix_control(d) & PCI_MSIX_FLAGS_ENABLE);
}

static uint32_t msix_entry32(PciDevice *d, unsigned v, unsigned off)
{
    const uint8_t *e = d->msix_table + v * PCI_MSIX_ENTRY_SIZE + off;
    return e[0] | (e[1] << 8) | (e[2] << 16) | ((uint32_t)e[3] << 24);
}

static bool pci_msix_masked(PciDevice *d, unsigned v)
{
    return (pci_msix_control(d) & PCI_MSIX_FLAGS_MASKALL) ||
           (msix_entry32(d, v, PCI_MSIX_ENTRY_VECTOR_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static void pci_msix_send(PciDevice *d, unsigned v)
{
    uint64_t addr = msix_entry32(d, v, PCI_MSIX_ENTRY_LOWER_ADDR) |
                    ((uint64_t)msix_entry32(d, v, PCI_MSIX_ENTRY_UPPER_ADDR) << 32);
    uint32_t data = msix_entry32(d, v, PCI_MSIX_ENTRY_DATA);
    __atomic_fetch_add(&d->msix_sent, 1, __ATOMIC_RELAXED);
    if (d->bus && d->bus->msi) {
        d->bus->msi(d->bus->opaque, addr, data);
    }
}

bool pci_msix_notify(PciDevice *d, unsigned v)
{
    if (!pci_msix_enabled(d) || v >= d->msix_vectors) {
        return false;
    }
    if (pci_msix_masked(d, v)) {
        d->msix_pending |= 1ULL << v;
    } else {
        pci_msix_send(d, v);
    }
    return true;
}

/* PCI 3.0 6.8.2.9: a pending message is sent once its vector is unmasked. */
static void pci_msix_deliver_pending(PciDevice *d)
{
    if (!pci_msix_enabled(d)) {
        return;
    }
    for (unsigned v = 0; v < d->msix_vectors; v++) {
        if ((d->msix_pending & (1ULL << v)) && !pci_msix_masked(d, v)) {
            d->msix_pending &= ~(1ULL << v);
            pci_msix_send(d, v);
        }
    }
}

uint32_t pci_msix_table_read(PciDevice *d, uint64_t offset)
{
    if (offset % 4 || offset >= (uint64_t)d->msix_vectors * PCI_MSIX_ENTRY_SIZE) {
        return 0;
    }
    return msix_entry32(d, (unsigned)(offset / PCI_MSIX_ENTRY_SIZE),
                        (unsigned)(offset % PCI_MSIX_ENTRY_SIZE));
}

void pci_msix_table_write(PciDevice *d, uint64_t offset, uint32_t value)
{
    if (offset % 4 || offset >= (uint64_t)d->msix_vectors * PCI_MSIX_ENTRY_SIZE) {
        return;
    }
    if (offset % PCI_MSIX_ENTRY_SIZE == PCI_MSIX_ENTRY_VECTOR_CTRL) {
        value &= PCI_MSIX_ENTRY_CTRL_MASKBIT; /* the rest is reserved */
    }
    uint8_t *e = d->msix_table + offset;
    for (unsigned i = 0; i < 4; i++) {
        e[i] = (uint8_t)(value >> (8 * i));
    }
    pci_msix_deliver_pending(d);
}

uint32_t pci_msix_pba_read(PciDevice *d, uint64_t offset)
{
    if (offset == 0) {
        return (uint32_t)d->msix_pending;
    }
    return offset == 4 ? (uint32_t)(d->msix_pending >> 32) : 0;
}

bool pci_msix_init(PciDevice *d, unsigned vectors, unsigned bar, uint32_t table_off,
                   uint32_t pba_off, GError **errp)
{
    if (vectors == 0 || vectors > PCI_MSIX_MAX || bar >= PCI_NUM_BARS || table_off % 8 ||
        pba_off % 8) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: bad MSI-X layout (%u vectors)", d->name, vectors);
        return false;
    }
    uint8_t cap = pci_device_add_cap(d, PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
    if (!cap) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: no room for MSI-X", d->name);
        return false;
    }
    d->msix_cap = cap;
    d->msix_vectors = vectors;
    cfg_set16(d, cap + PCI_MSIX_FLAGS, (uint16_t)(vectors - 1));
    cfg_set32(d, cap + PCI_MSIX_TABLE, table_off | bar);
    cfg_set32(d, cap + PCI_MSIX_PBA, pba_off | bar);
    d->wmask[cap + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
    d->msix_table = g_malloc0((size_t)vectors * PCI_MSIX_ENTRY_SIZE);
    for (unsigned v = 0; v < vectors; v++) {
        d->msix_table[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL] =
            PCI_MSIX_ENTRY_CTRL_MASKBIT;
    }
    return true;
}

/* ---- INTx --------------------------------------------------------------- */

static int pci_intx_gsi(const PciDevice *d)
{
    return PCI_INTX_GSI_BASE + (int)(d->slot & (PCI_INTX_GSIS - 1));
}

/* Slots that share a GSI wire-OR their lines: the GSI is high while any of
 * them asserts. Device lock held. */
static void pci_intx_update(PciDevice *d)
{
    bool disabled = cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
    bool want = d->intx_level && !disabled;

    if (d->intx_level) {
        d->config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    } else {
        d->config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    }
    if (want == d->intx_asserted || !d->bus) {
        d->intx_asserted = want && d->bus;
        return;
    }
    d->intx_asserted = want;
    PciBus *bus = d->bus;
    unsigned idx = d->slot & (PCI_INTX_GSIS - 1);
    pthread_mutex_lock(&bus->intx_lock);
    if (want) {
        bus->intx_asserted[idx]++;
    } else {
        bus->intx_asserted[idx]--;
    }
    if (bus->gsi) {
        bus->gsi(bus->opaque, pci_intx_gsi(d), bus->intx_asserted[idx] > 0);
    }
    pthread_mutex_unlock(&bus->intx_lock);
}

void pci_set_intx(PciDevice *d, int level)
{
    d->intx_level = level;
    pci_intx_update(d);
}

/* ---- Config space ------------------------------------------------------- */

void pci_device_init(PciDevice *d, const char *name, KLock *lock, uint16_t vendor, uint16_t device,
                     uint8_t revision, uint32_t class_code, uint16_t subsys_vendor,
                     uint16_t subsys_id)
{
    memset(d, 0, sizeof(*d));
    d->name = g_strdup(name);
    d->lock = lock;
    cfg_set16(d, PCI_VENDOR_ID, vendor);
    cfg_set16(d, PCI_DEVICE_ID, device);
    cfg_set32(d, PCI_CLASS_REVISION, (class_code << 8) | revision);
    cfg_set16(d, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
    cfg_set16(d, PCI_SUBSYSTEM_ID, subsys_id);
    d->config[PCI_INTERRUPT_PIN] = 1; /* INTA */
    d->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    d->wmask[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >> 8;
    d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    d->wmask[PCI_LATENCY_TIMER] = 0xff;
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    d->next_cap = 0x40;
}

void pci_device_cleanup(PciDevice *d)
{
    g_free(d->name);
    d->name = NULL;
    g_free(d->msix_table);
    d->msix_table = NULL;
}

void pci_device_set_bar(PciDevice *d, unsigned idx, uint64_t size, bool io,
                        const MemoryRegionOps *ops, void *opaque)
{
    g_assert(idx < PCI_NUM_BARS && size >= 16 && (size & (size - 1)) == 0 && size <= 1ULL << 31);
    d->bar[idx] = (PciBar){.size = size, .io = io, .ops = ops, .opaque = opaque};
    uint32_t mask = ~(uint32_t)(size - 1);
    uint32_t flags = io ? PCI_BASE_ADDRESS_SPACE_IO : 0;
    cfg_set32(d, PCI_BASE_ADDRESS_0 + 4 * idx, flags);
    for (unsigned i = 0; i < 4; i++) {
        d->wmask[PCI_BASE_ADDRESS_0 + 4 * idx + i] = (uint8_t)((mask & ~0xfu) >> (8 * i));
    }
}

uint8_t pci_device_add_cap(PciDevice *d, uint8_t id, uint8_t len)
{
    unsigned off = d->next_cap;
    if (len < 2 || off + len > PCI_CONFIG_SIZE) {
        return 0;
    }
    /* Keep the list in the order of creation: append after the last one. */
    uint8_t *link = &d->config[PCI_CAPABILITY_LIST];
    while (*link) {
        link = &d->config[*link + PCI_CAP_LIST_NEXT];
    }
    *link = (uint8_t)off;
    d->config[off + PCI_CAP_LIST_ID] = id;
    d->config[off + PCI_CAP_LIST_NEXT] = 0;
    d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    d->next_cap = (uint8_t)MIN(PCI_CONFIG_SIZE - 4, (off + len + 3) & ~3u);
    if (off + len > PCI_CONFIG_SIZE - 4) {
        d->next_cap = 0xfc;
    }
    return (uint8_t)off;
}

void pci_device_reset(PciDevice *d)
{
    uint16_t cmd = cfg_get16(d, PCI_COMMAND);
    if (d->msix_vectors) {
        cfg_set16(d, d->msix_cap + PCI_MSIX_FLAGS, (uint16_t)(d->msix_vectors - 1));
        for (unsigned v = 0; v < d->msix_vectors; v++) {
            uint8_t *e = d->msix_table + v * PCI_MSIX_ENTRY_SIZE;
            memset(e, 0, PCI_MSIX_ENTRY_SIZE);
            e[PCI_MSIX_ENTRY_VECTOR_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
        }
        d->msix_pending = 0;
    }
    /* Firmware left decoding on; a reset of the function does not undo the
     * firmware's work, only the driver's. */
    cfg_set16(d, PCI_COMMAND, cmd & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
    pci_set_intx(d, 0);
}

static uint32_t pci_device_config_read(PciDevice *d, unsigned offset, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint32_t)d->config[offset + i] << (8 * i);
    }
    return v;
}

static bool ranges_overlap(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
    return a < b + blen && b < a + alen;
}

static void pci_device_config_write(PciDevice *d, unsigned offset, uint32_t value, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        uint8_t m = d->wmask[offset + i];
        d->config[offset + i] = (uint8_t)((d->config[offset + i] & ~m) | ((value >> (8 * i)) & m));
    }
    if (ranges_overlap(offset, size, PCI_COMMAND, 2) ||
        ranges_overlap(offset, size, PCI_BASE_ADDRESS_0, 4 * PCI_NUM_BARS)) {
        pci_update_mappings(d);
        pci_intx_update(d);
    }
    if (d->msix_vectors && ranges_overlap(offset, size, d->msix_cap + PCI_MSIX_FLAGS, 2)) {
        pci_msix_deliver_pending(d);
    }
    if (d->config_written) {
        d->config_written(d, offset, size);
    }
}

uint32_t pci_bus_config_read(PciBus *bus, unsigned slot, unsigned offset, unsigned size)
{
    PciDevice *d = slot < PCI_SLOT_MAX ? bus->slots[slot] : NULL;
    if (!d || offset + size > PCI_CONFIG_SIZE || (size != 1 && size != 2 && size != 4)) {
        return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    }
    klock_lock(d->lock);
    uint32_t v = pci_device_config_read(d, offset, size);
    klock_unlock(d->lock);
    return v;
}

void pci_bus_config_write(PciBus *bus, unsigned slot, unsigned offset, uint32_t value,
                          unsigned size)
{
    PciDevice *d = slot < PCI_SLOT_MAX ? bus->slots[slot] : NULL;
    if (!d || offset + size > PCI_CONFIG_SIZE || (size != 1 && size != 2 && size != 4)) {
        return;
    }
    klock_lock(d->lock);
    pci_device_config_write(d, offset, value, size);
    klock_unlock(d->lock);
}

/* ---- The 0xCF8/0xCFC ports ---------------------------------------------- */

static uint64_t pci_addr_read(void *opaque, uint64_t offset, unsigned size)
{
    PciBus *bus = opaque;
    return (bus->config_address >> (8 * offset)) &
           (size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
}

/* Only a 32-bit write sets the address (PCI 3.0 3.2.2.3.2); byte writes to
 * 0xCF8-0xCFB go to other chipset registers, which kvmloop does not have. */
static void pci_addr_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    PciBus *bus = opaque;
    if (offset == 0 && size == 4) {
        bus->config_address = (uint32_t)value & ~3u;
    }
}

/* The function the address register selects, or -1: enabled, bus 0,
 * function 0. */
static int pci_selected_slot(PciBus *bus, unsigned *reg)
{
    uint32_t a = bus->config_address;
    if (!(a & PCI_CFG_ENABLE) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 7) != 0) {
        return -1;
    }
    *reg = a & 0xfc;
    return (int)((a >> 11) & 0x1f);
}

static uint64_t pci_data_read(void *opaque, uint64_t offset, unsigned size)
{
    PciBus *bus = opaque;
    unsigned reg;
    int slot = pci_selected_slot(bus, &reg);
    if (slot < 0 || offset + size > 4) {
        return ~0ULL;
    }
    return pci_bus_config_read(bus, (unsigned)slot, reg + (unsigned)offset, size);
}

static void pci_data_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    PciBus *bus = opaque;
    unsigned reg;
    int slot = pci_selected_slot(bus, &reg);
    if (slot >= 0 && offset + size <= 4) {
        pci_bus_config_write(bus, (unsigned)slot, reg + (unsigned)offset, (uint32_t)value, size);
    }
}

static const MemoryRegionOps pci_addr_ops = {
    .read = pci_addr_read,
    .write = pci_addr_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

static const MemoryRegionOps pci_data_ops = {
    .read = pci_data_read,
    .write = pci_data_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

/* ---- Bus ---------------------------------------------------------------- */

PciBus *pci_bus_new(AddressSpace *pio, AddressSpace *mmio, pci_msi_fn msi, pci_gsi_fn gsi,
                    void *opaque, GError **errp)
{
    PciBus *bus = g_new0(PciBus, 1);
    bus->pio = pio;
    bus->mmio = mmio;
    bus->msi = msi;
    bus->gsi = gsi;
    bus->opaque = opaque;
    bus->mmio_next = PCI_MMIO_WINDOW_BASE;
    bus->io_next = PCI_IO_WINDOW_BASE;
    pthread_mutex_init(&bus->intx_lock, NULL);
    klock_init(&bus->host_lock, "pci-host");

    memory_region_init(&bus->addr_mr, "pci-host.config-address", 4, &pci_addr_ops, bus, NULL);
    memory_region_init(&bus->data_mr, "pci-host.config-data", 4, &pci_data_ops, bus, NULL);
    if (!address_space_add(pio, &bus->addr_mr, PCI_CONFIG_ADDRESS, errp)) {
        goto fail;
    }
    bus->addr_mapped = true;
    if (!address_space_add(pio, &bus->data_mr, PCI_CONFIG_DATA, errp)) {
        goto fail;
    }
    bus->data_mapped = true;
    pci_device_init(&bus->host, "pci-host", &bus->host_lock, PCI_HOST_VENDOR, PCI_HOST_DEVICE, 0,
                    PCI_CLASS_BRIDGE, PCI_HOST_VENDOR, 0x1100);
    bus->host.config[PCI_INTERRUPT_PIN] = 0;
    if (!pci_bus_add(bus, &bus->host, errp)) {
        goto fail;
    }
    return bus;

fail:
    pci_bus_free(bus);
    return NULL;
}

void pci_bus_free(PciBus *bus)
{
    if (!bus) {
        return;
    }
    if (bus->slots[0] == &bus->host) {
        pci_bus_remove(bus, &bus->host);
    }
    pci_device_cleanup(&bus->host);
    for (unsigned i = 0; i < PCI_SLOT_MAX; i++) {
        g_assert(!bus->slots[i]);
    }
    if (bus->addr_mapped) {
        address_space_remove(bus->pio, &bus->addr_mr);
    }
    if (bus->data_mapped) {
        address_space_remove(bus->pio, &bus->data_mr);
    }
    /* The ports' regions are embedded: wait for readers that may still be
     * in them (none, once the vCPUs are gone) before freeing the bus. */
    memory_region_destroy(&bus->addr_mr);
    memory_region_destroy(&bus->data_mr);
    klock_destroy(&bus->host_lock);
    pthread_mutex_destroy(&bus->intx_lock);
    g_free(bus);
}

static bool pci_bus_place_bars(PciBus *bus, PciDevice *d, GError **errp)
{
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        PciBar *b = &d->bar[i];
        if (!b->size) {
            continue;
        }
        uint64_t base, top;
        if (b->io) {
            base = (bus->io_next + b->size - 1) & ~(b->size - 1);
            top = PCI_IO_WINDOW_TOP + 1ULL;
        } else {
            base = (bus->mmio_next + b->size - 1) & ~(b->size - 1);
            top = PCI_MMIO_WINDOW_TOP + 1ULL;
        }
        if (base + b->size > top) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                        "%s: no room for BAR %u (%" G_GUINT64_FORMAT " bytes) in the PCI %s window",
                        d->name, i, b->size, b->io ? "I/O" : "memory");
            return false;
        }
        if (b->io) {
            bus->io_next = (uint32_t)(base + b->size);
        } else {
            bus->mmio_next = base + b->size;
        }
        uint32_t flags = cfg_get32(d, PCI_BASE_ADDRESS_0 + 4 * i) & 0xf;
        cfg_set32(d, PCI_BASE_ADDRESS_0 + 4 * i, (uint32_t)base | flags);
    }
    return true;
}

bool pci_bus_add(PciBus *bus, PciDevice *d, GError **errp)
{
    unsigned slot = 0;
    while (slot < PCI_SLOT_MAX && bus->slots[slot]) {
        slot++;
    }
    if (slot == PCI_SLOT_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: PCI bus 0 is full (%d slots)",
                    d->name, PCI_SLOT_MAX);
        return false;
    }
    if (!pci_bus_place_bars(bus, d, errp)) {
        return false;
    }
    d->bus = bus;
    d->slot = slot;
    klock_lock(d->lock);
    cfg_set16(d, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    pci_update_mappings(d);
    klock_unlock(d->lock);
    bus->slots[slot] = d;
    return true;
}

void pci_bus_remove(PciBus *bus, PciDevice *d)
{
    if (!d->bus) {
        return;
    }
    klock_lock(d->lock);
    pci_set_intx(d, 0);
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        pci_bar_unmap(d, &d->bar[i], true);
    }
    klock_unlock(d->lock);
    bus->slots[d->slot] = NULL;
    d->bus = NULL;
}

PciDevice *pci_bus_device(PciBus *bus, unsigned slot)
{
    return slot < PCI_SLOT_MAX ? bus->slots[slot] : NULL;
}

/* ---- ACPI --------------------------------------------------------------- */

/* ACPI 6.3 6.4.3.5: Word/DWord Address Space descriptors, producer, fixed
 * minimum and maximum. */
static void acpi_word_space(GByteArray *b, uint8_t type, uint16_t min, uint16_t max)
{
    uint16_t len = (uint16_t)(max - min + 1);
    uint8_t d[16] = {0x88,
                     13,
                     0,
                     type,
                     0x0c,
                     type == 1 ? 0x03 : 0,
                     0,
                     0,
                     (uint8_t)min,
                     (uint8_t)(min >> 8),
                     (uint8_t)max,
                     (uint8_t)(max >> 8),
                     0,
                     0,
                     (uint8_t)len,
                     (uint8_t)(len >> 8)};
    g_byte_array_append(b, d, sizeof(d));
}

static void acpi_dword_memory(GByteArray *b, uint32_t min, uint32_t max)
{
    uint32_t len = max - min + 1;
    uint32_t v[5] = {0, min, max, 0, len};
    uint8_t head[6] = {0x87, 23, 0, 0 /* memory */, 0x0c, 0x01 /* read-write, non-cacheable */};
    g_byte_array_append(b, head, sizeof(head));
    for (unsigned i = 0; i < 5; i++) {
        uint8_t le[4] = {(uint8_t)v[i], (uint8_t)(v[i] >> 8), (uint8_t)(v[i] >> 16),
                         (uint8_t)(v[i] >> 24)};
        g_byte_array_append(b, le, 4);
    }
}

void pci_bus_acpi_fill(Aml *sb, void *opaque)
{
    (void)opaque;
    AmlBlock dev = aml_device_begin(sb, "PCI0");
    aml_name(sb, "_HID");
    aml_eisaid(sb, "PNP0A03");
    aml_name(sb, "_UID");
    aml_integer(sb, 0);
    aml_name(sb, "_BBN");
    aml_integer(sb, 0);

    g_autoptr(GByteArray) crs = g_byte_array_new();
    acpi_word_space(crs, 2, 0, 0); /* bus 0 only */
    /* The config ports, consumed by the bridge itself (6.4.2.5). */
    const uint8_t cfg_io[8] = {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08};
    g_byte_array_append(crs, cfg_io, sizeof(cfg_io));
    acpi_word_space(crs, 1, 0x0000, PCI_CONFIG_ADDRESS - 1);
    acpi_word_space(crs, 1, PCI_CONFIG_ADDRESS + 8, PCI_IO_WINDOW_TOP);
    acpi_dword_memory(crs, (uint32_t)PCI_MMIO_WINDOW_BASE, (uint32_t)PCI_MMIO_WINDOW_TOP);
    const uint8_t end[2] = {0x79, 0};
    g_byte_array_append(crs, end, sizeof(end));
    aml_name(sb, "_CRS");
    aml_buffer(sb, crs->data, crs->len);

    /* _PRT (6.2.13): one entry per slot and pin, GSIs directly (source 0). */
    aml_name(sb, "_PRT");
    AmlBlock prt = aml_package_begin(sb, (PCI_SLOT_MAX - 1) * 4);
    for (unsigned slot = 1; slot < PCI_SLOT_MAX; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            AmlBlock e = aml_package_begin(sb, 4);
            aml_integer(sb, ((uint64_t)slot << 16) | 0xffff);
            aml_integer(sb, pin);
            aml_integer(sb, 0);
            aml_integer(sb, PCI_INTX_GSI_BASE + ((slot + pin) & (PCI_INTX_GSIS - 1)));
            aml_end(sb, e);
        }
    }
    aml_end(sb, prt);
    aml_end(sb, dev);
}
