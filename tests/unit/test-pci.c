/* Unit tests of the PCI bus: the 0xCF8/0xCFC mechanism, BAR sizing and mapping, MSI-X, INTx, ACPI.
 */
#include "kvmloop/pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <string.h>

#include "kvmloop/acpi.h"
#include "kvmloop/bql.h"
#include "kvmloop/klock.h"
#include "kvmloop/memory.h"
#include "kvmloop/rcu.h"

#define MSI_LOG 16

typedef struct Sink {
    unsigned nmsi;
    uint64_t addr[MSI_LOG];
    uint32_t data[MSI_LOG];
    int gsi_level[32];
    unsigned gsi_calls;
} Sink;

typedef struct FakeDev {
    PciDevice pci;
    KLock lock;
    uint64_t last_write;
    unsigned moved; /* bar_moved calls */
} FakeDev;

typedef struct Fixture {
    AddressSpace *pio, *mmio;
    PciBus *bus;
    Sink sink;
    FakeDev dev[2];
} Fixture;

static void sink_msi(void *opaque, uint64_t addr, uint32_t data)
{
    Sink *s = opaque;
    if (s->nmsi < MSI_LOG) {
        s->addr[s->nmsi] = addr;
        s->data[s->nmsi] = data;
    }
    s->nmsi++;
}

static void sink_gsi(void *opaque, int gsi, int level)
{
    Sink *s = opaque;
    g_assert_cmpint(gsi, >=, 0);
    g_assert_cmpint(gsi, <, 32);
    s->gsi_level[gsi] = level;
    s->gsi_calls++;
}

/* BAR 0: 4 KiB of memory, the MSI-X table at 0x800 and PBA at 0xc00; the
 * rest reads its own offset. */
static uint64_t fake_mem_read(void *opaque, uint64_t offset, unsigned size)
{
    FakeDev *d = opaque;
    if (offset >= 0x800 && offset < 0xc00) {
        return pci_msix_table_read(&d->pci, offset - 0x800);
    }
    if (offset >= 0xc00) {
        return pci_msix_pba_read(&d->pci, offset - 0xc00);
    }
    return 0x5a000000 | offset;
}

static void fake_mem_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    FakeDev *d = opaque;
    if (offset >= 0x800 && offset < 0xc00) {
        pci_msix_table_write(&d->pci, offset - 0x800, (uint32_t)value);
        return;
    }
    d->last_write = value;
}

static const MemoryRegionOps fake_mem_ops = {
    .read = fake_mem_read,
    .write = fake_mem_write,
    .min_access_size = 4,
    .max_access_size = 4,
};

static void fake_moved(PciDevice *pd, unsigned idx, gpa_t addr)
{
    FakeDev *d = (FakeDev *)pd;
    d->moved++;
}

static void fake_init(FakeDev *d, const char *name)
{
    klock_init(&d->lock, name);
    pci_device_init(&d->pci, name, &d->lock, 0x1af4, 0x1044, 1, 0xff0000, 0x1af4, 0x44);
    pci_device_set_bar(&d->pci, 0, 0x1000, false, &fake_mem_ops, d);
    pci_device_set_bar(&d->pci, 1, 0x20, true, &fake_mem_ops, d);
    g_assert_true(pci_msix_init(&d->pci, 4, 0, 0x800, 0xc00, NULL));
    d->pci.bar_moved = fake_moved;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    rcu_thread_online();
    bql_lock();
    memset(f, 0, sizeof(*f));
    f->pio = address_space_new("io", 0x10000);
    f->mmio = address_space_new("memory", 1ULL << 52);
    g_autoptr(GError) err = NULL;
    f->bus = pci_bus_new(f->pio, f->mmio, sink_msi, sink_gsi, &f->sink, &err);
    g_assert_no_error(err);
    fake_init(&f->dev[0], "fake0");
    fake_init(&f->dev[1], "fake1");
    g_assert_true(pci_bus_add(f->bus, &f->dev[0].pci, &err));
    g_assert_true(pci_bus_add(f->bus, &f->dev[1].pci, &err));
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    for (int i = 1; i >= 0; i--) {
        pci_bus_remove(f->bus, &f->dev[i].pci);
        pci_device_cleanup(&f->dev[i].pci);
        klock_destroy(&f->dev[i].lock);
    }
    pci_bus_free(f->bus);
    rcu_flush_callbacks();
    address_space_free(f->pio);
    address_space_free(f->mmio);
    bql_unlock();
    rcu_thread_offline();
}

static uint32_t io_read(Fixture *f, uint16_t port, unsigned size)
{
    uint8_t b[4] = {0};
    address_space_rw(f->pio, port, b, size, false);
    return b[0] | (b[1] << 8) | (b[2] << 16) | ((uint32_t)b[3] << 24);
}

static void io_write(Fixture *f, uint16_t port, uint32_t v, unsigned size)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    address_space_rw(f->pio, port, b, size, true);
}

static uint32_t cfg_read(Fixture *f, unsigned slot, unsigned reg, unsigned size)
{
    io_write(f, PCI_CONFIG_ADDRESS, 0x80000000u | (slot << 11) | (reg & 0xfc), 4);
    return io_read(f, (uint16_t)(PCI_CONFIG_DATA + (reg & 3)), size);
}

static void cfg_write(Fixture *f, unsigned slot, unsigned reg, uint32_t v, unsigned size)
{
    io_write(f, PCI_CONFIG_ADDRESS, 0x80000000u | (slot << 11) | (reg & 0xfc), 4);
    io_write(f, (uint16_t)(PCI_CONFIG_DATA + (reg & 3)), v, size);
}

static int mem_rw(Fixture *f, gpa_t addr, uint32_t *v, bool write)
{
    uint8_t b[4];
    if (write) {
        memcpy(b, v, 4);
    }
    int r = address_space_rw(f->mmio, addr, b, 4, write);
    if (!write) {
        memcpy(v, b, 4);
    }
    return r;
}

/* What Linux's pci_check_type1() and pci_sanity_check() do. */
static void test_config_mechanism(Fixture *f, gconstpointer data)
{
    io_write(f, PCI_CONFIG_ADDRESS + 3, 0x01, 1);
    io_write(f, PCI_CONFIG_ADDRESS, 0x80000000u, 4);
    g_assert_cmphex(io_read(f, PCI_CONFIG_ADDRESS, 4), ==, 0x80000000u);
    /* A byte write to 0xCFB is another register's, not the address. */
    io_write(f, PCI_CONFIG_ADDRESS + 3, 0x00, 1);
    g_assert_cmphex(io_read(f, PCI_CONFIG_ADDRESS, 4), ==, 0x80000000u);
    /* The host bridge at 00.0. */
    g_assert_cmphex(cfg_read(f, 0, PCI_VENDOR_ID, 4), ==, 0x00081b36);
    g_assert_cmphex(cfg_read(f, 0, PCI_CLASS_DEVICE, 2), ==, 0x0600);
    g_assert_cmphex(cfg_read(f, 1, PCI_VENDOR_ID, 2), ==, 0x1af4);
    g_assert_cmphex(cfg_read(f, 1, PCI_DEVICE_ID + 1, 1), ==, 0x10);
    g_assert_cmphex(cfg_read(f, 1, PCI_INTERRUPT_PIN, 1), ==, 1);
    /* Absent slots, functions, buses, and the enable bit off: all-ones. */
    g_assert_cmphex(cfg_read(f, 7, PCI_VENDOR_ID, 4), ==, 0xffffffffu);
    io_write(f, PCI_CONFIG_ADDRESS, 0x80000000u | (1 << 11) | (1 << 8), 4);
    g_assert_cmphex(io_read(f, PCI_CONFIG_DATA, 2), ==, 0xffff);
    io_write(f, PCI_CONFIG_ADDRESS, 0x80010000u | (1 << 11), 4);
    g_assert_cmphex(io_read(f, PCI_CONFIG_DATA, 4), ==, 0xffffffffu);
    io_write(f, PCI_CONFIG_ADDRESS, 1 << 11, 4);
    g_assert_cmphex(io_read(f, PCI_CONFIG_DATA, 4), ==, 0xffffffffu);
    /* Read-only registers stay. */
    cfg_write(f, 1, PCI_VENDOR_ID, 0x12345678, 4);
    g_assert_cmphex(cfg_read(f, 1, PCI_VENDOR_ID, 2), ==, 0x1af4);
    cfg_write(f, 1, PCI_INTERRUPT_LINE, 0x0b, 1);
    g_assert_cmphex(cfg_read(f, 1, PCI_INTERRUPT_LINE, 1), ==, 0x0b);
    /* The capability list leads to MSI-X. */
    g_assert_cmphex(cfg_read(f, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, !=, 0);
    unsigned cap = cfg_read(f, 1, PCI_CAPABILITY_LIST, 1);
    g_assert_cmphex(cfg_read(f, 1, cap, 1), ==, PCI_CAP_ID_MSIX);
    g_assert_cmphex(cfg_read(f, 1, cap + PCI_MSIX_FLAGS, 2), ==, 3);
    g_assert_cmphex(cfg_read(f, 1, cap + PCI_MSIX_TABLE, 4), ==, 0x800);
}

static void test_bars(Fixture *f, gconstpointer data)
{
    uint32_t bar0 = cfg_read(f, 1, PCI_BASE_ADDRESS_0, 4);
    uint32_t bar1 = cfg_read(f, 1, PCI_BASE_ADDRESS_1, 4);
    uint32_t other = cfg_read(f, 2, PCI_BASE_ADDRESS_0, 4);
    uint32_t v;

    g_assert_cmphex(bar0, >=, PCI_MMIO_WINDOW_BASE);
    g_assert_cmphex(bar0 % 0x1000, ==, 0);
    g_assert_cmphex(bar1 & 1, ==, 1);
    g_assert_cmphex(bar1 & ~3u, >=, PCI_IO_WINDOW_BASE);
    g_assert_cmphex(other, !=, bar0);
    g_assert_cmphex(cfg_read(f, 1, PCI_COMMAND, 2) & 3, ==, 3);
    g_assert_cmpint(mem_rw(f, bar0 + 0x10, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 0x5a000010);
    g_assert_cmphex(io_read(f, (uint16_t)((bar1 & ~3u) + 4), 4), ==, 0x5a000004);

    /* Sizing with decoding off, as Linux does. */
    unsigned moved = f->dev[0].moved;
    cfg_write(f, 1, PCI_COMMAND, 0, 2);
    g_assert_cmpint(mem_rw(f, bar0, &v, false), ==, -ENOENT);
    cfg_write(f, 1, PCI_BASE_ADDRESS_0, 0xffffffffu, 4);
    g_assert_cmphex(cfg_read(f, 1, PCI_BASE_ADDRESS_0, 4), ==, 0xfffff000u);
    cfg_write(f, 1, PCI_BASE_ADDRESS_1, 0xffffffffu, 4);
    g_assert_cmphex(cfg_read(f, 1, PCI_BASE_ADDRESS_1, 4), ==, 0xffffffe1u);
    cfg_write(f, 1, PCI_BASE_ADDRESS_0, bar0, 4);
    cfg_write(f, 1, PCI_BASE_ADDRESS_1, bar1, 4);
    cfg_write(f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
    g_assert_cmpint(mem_rw(f, bar0, &v, false), ==, 0);
    g_assert_cmpuint(f->dev[0].moved, ==, moved + 4); /* two unmaps, two maps */

    /* Moved: the old address is unassigned, the new one answers. */
    cfg_write(f, 1, PCI_BASE_ADDRESS_0, 0xd0000000u, 4);
    g_assert_cmphex(pci_device_bar_addr(&f->dev[0].pci, 0), ==, 0xd0000000u);
    g_assert_cmpint(mem_rw(f, bar0, &v, false), ==, -ENOENT);
    g_assert_cmpint(mem_rw(f, 0xd0000020, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 0x5a000020);

    /* Onto another device's BAR: refused, left unmapped, nothing breaks. */
    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*BAR 0 left unmapped*");
    cfg_write(f, 1, PCI_BASE_ADDRESS_0, other, 4);
    g_test_assert_expected_messages();
    g_assert_cmphex(pci_device_bar_addr(&f->dev[0].pci, 0), ==, 0);
    g_assert_cmpint(mem_rw(f, other, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 0x5a000000);
    /* Past 4 GiB once the size is added: unmapped. */
    cfg_write(f, 1, PCI_BASE_ADDRESS_0, 0xfffff000u, 4);
    g_assert_cmphex(pci_device_bar_addr(&f->dev[0].pci, 0), ==, 0xfffff000u);
    cfg_write(f, 1, PCI_BASE_ADDRESS_0, bar0, 4);
    g_assert_cmphex(pci_device_bar_addr(&f->dev[0].pci, 0), ==, bar0);
}

static void msix_write(Fixture *f, gpa_t bar, unsigned v, unsigned off, uint32_t val)
{
    g_assert_cmpint(mem_rw(f, bar + 0x800 + v * 16 + off, &val, true), ==, 0);
}

static void test_msix(Fixture *f, gconstpointer data)
{
    PciDevice *d = &f->dev[0].pci;
    gpa_t bar = pci_device_bar_addr(d, 0);
    unsigned cap = cfg_read(f, 1, PCI_CAPABILITY_LIST, 1);
    uint32_t v;

    klock_lock(d->lock);
    g_assert_false(pci_msix_notify(d, 0)); /* MSI-X off */
    klock_unlock(d->lock);
    msix_write(f, bar, 2, PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00000);
    msix_write(f, bar, 2, PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    msix_write(f, bar, 2, PCI_MSIX_ENTRY_DATA, 0x41);
    g_assert_cmpint(mem_rw(f, bar + 0x800 + 2 * 16 + 12, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 1); /* masked from reset */
    cfg_write(f, 1, cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);

    klock_lock(d->lock);
    g_assert_true(pci_msix_notify(d, 2));
    g_assert_false(pci_msix_notify(d, 4)); /* out of range */
    klock_unlock(d->lock);
    g_assert_cmpuint(f->sink.nmsi, ==, 0);
    g_assert_cmpint(mem_rw(f, bar + 0xc00, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 1u << 2);

    msix_write(f, bar, 2, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    g_assert_cmpuint(f->sink.nmsi, ==, 1);
    g_assert_cmphex(f->sink.addr[0], ==, 0xfee00000);
    g_assert_cmphex(f->sink.data[0], ==, 0x41);
    g_assert_cmpint(mem_rw(f, bar + 0xc00, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 0);

    /* The function mask holds messages back until it is cleared. */
    cfg_write(f, 1, cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
    klock_lock(d->lock);
    g_assert_true(pci_msix_notify(d, 2));
    klock_unlock(d->lock);
    g_assert_cmpuint(f->sink.nmsi, ==, 1);
    cfg_write(f, 1, cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    g_assert_cmpuint(f->sink.nmsi, ==, 2);

    /* Unaligned and out-of-table accesses are ignored. */
    msix_write(f, bar, 0, 2, 0xffffffff);
    g_assert_cmpint(mem_rw(f, bar + 0x800, &v, false), ==, 0);
    g_assert_cmphex(v, ==, 0);
    klock_lock(d->lock);
    pci_msix_table_write(d, 4 * 16, 0x1234);
    g_assert_cmphex(pci_msix_table_read(d, 4 * 16), ==, 0);
    pci_device_reset(d);
    g_assert_false(pci_msix_enabled(d));
    g_assert_cmphex(pci_msix_table_read(d, 2 * 16 + 12), ==, 1);
    klock_unlock(d->lock);
}

static void test_intx(Fixture *f, gconstpointer data)
{
    /* Slots 1 and 5 share GSI 17. */
    FakeDev extra[3];
    for (int i = 0; i < 3; i++) {
        g_autofree char *name = g_strdup_printf("extra%d", i);
        fake_init(&extra[i], name);
        g_assert_true(pci_bus_add(f->bus, &extra[i].pci, NULL));
    }
    PciDevice *a = &f->dev[0].pci, *b = &extra[2].pci;
    g_assert_cmpuint(a->slot, ==, 1);
    g_assert_cmpuint(b->slot, ==, 5);

    klock_lock(a->lock);
    pci_set_intx(a, 1);
    klock_unlock(a->lock);
    g_assert_cmpint(f->sink.gsi_level[17], ==, 1);
    g_assert_cmphex(cfg_read(f, 1, PCI_STATUS, 1) & PCI_STATUS_INTERRUPT, !=, 0);
    klock_lock(b->lock);
    pci_set_intx(b, 1);
    klock_unlock(b->lock);
    klock_lock(a->lock);
    pci_set_intx(a, 0);
    klock_unlock(a->lock);
    g_assert_cmpint(f->sink.gsi_level[17], ==, 1); /* b still asserts */
    /* INTX_DISABLE drops b's contribution, though its status stays. */
    cfg_write(f, 5, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_INTX_DISABLE, 2);
    g_assert_cmpint(f->sink.gsi_level[17], ==, 0);
    g_assert_cmphex(cfg_read(f, 5, PCI_STATUS, 1) & PCI_STATUS_INTERRUPT, !=, 0);
    cfg_write(f, 5, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
    g_assert_cmpint(f->sink.gsi_level[17], ==, 1);
    klock_lock(b->lock);
    pci_set_intx(b, 0);
    klock_unlock(b->lock);
    g_assert_cmpint(f->sink.gsi_level[17], ==, 0);

    for (int i = 2; i >= 0; i--) {
        pci_bus_remove(f->bus, &extra[i].pci);
        pci_device_cleanup(&extra[i].pci);
        klock_destroy(&extra[i].lock);
    }
}

static void test_bus_full(Fixture *f, gconstpointer data)
{
    FakeDev *many = g_new0(FakeDev, PCI_SLOT_MAX);
    unsigned added = 0;
    g_autoptr(GError) err = NULL;
    for (unsigned i = 0; i < PCI_SLOT_MAX; i++) {
        fake_init(&many[i], "many");
        if (!pci_bus_add(f->bus, &many[i].pci, &err)) {
            break;
        }
        added++;
    }
    g_assert_cmpuint(added, ==, PCI_SLOT_MAX - 3);
    g_assert_nonnull(strstr(err->message, "full"));
    for (unsigned i = 0; i <= added; i++) {
        pci_bus_remove(f->bus, &many[i].pci);
        pci_device_cleanup(&many[i].pci);
        klock_destroy(&many[i].lock);
    }
    g_free(many);
}

static void test_acpi(void)
{
    AcpiConfig cfg;
    acpi_config_init_pc(&cfg, 1);
    cfg.sb_fill = pci_bus_acpi_fill;
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) blob = acpi_build_tables(&cfg, 0xe0000, &err);
    g_assert_no_error(err);
    /* Device (PCI0) with _HID EISAID("PNP0A03") = 0x030ad041. */
    const uint8_t hid[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
    const uint8_t mem[] = {0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0,    0,    0,
                           0,    0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xfb};
    const uint8_t prt_slot1[] = {0x0c, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x11};
    g_assert_nonnull(memmem(blob->data, blob->len, "PCI0", 4));
    g_assert_nonnull(memmem(blob->data, blob->len, hid, sizeof(hid)));
    g_assert_nonnull(memmem(blob->data, blob->len, mem, sizeof(mem)));
    g_assert_nonnull(memmem(blob->data, blob->len, "_PRT", 4));
    g_assert_nonnull(memmem(blob->data, blob->len, prt_slot1, sizeof(prt_slot1)));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/pci/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("config-mechanism", test_config_mechanism);
    ADD("bars", test_bars);
    ADD("msix", test_msix);
    ADD("intx", test_intx);
    ADD("bus-full", test_bus_full);
#undef ADD
    g_test_add_func("/pci/acpi", test_acpi);
    return g_test_run();
}
