/* PCI: a type-1 host bridge on bus 0, device config space, BARs in the PCI hole, and MSI-X. */
#ifndef KVMLOOP_PCI_H
#define KVMLOOP_PCI_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/memory.h"
#include "kvmloop/types.h"

typedef struct Aml Aml;

/*
 * Where BARs go. The pc machine's hole is [0xC0000000, 4 GiB); its top is
 * taken by platform devices (testdev MMIO at 0xFE000000, the IOAPIC at
 * 0xFEC00000, the LAPIC at 0xFEE00000, the BIOS shadow). BARs are placed in
 * the lower 1008 MiB of it, which the ACPI _CRS of \_SB.PCI0 announces as the
 * bridge's 32-bit memory window; I/O BARs go to 0xC000-0xFFFF.
 */
#define PCI_MMIO_WINDOW_BASE 0xC0000000ULL
#define PCI_MMIO_WINDOW_END  0xFF000000ULL /* exclusive */
#define PCI_MMIO_WINDOW_TOP  0xFBFFFFFFULL /* last byte given to BARs */
#define PCI_IO_WINDOW_BASE   0xC000
#define PCI_IO_WINDOW_TOP    0xFFFF
#define PCI_CONFIG_ADDRESS   0xCF8
#define PCI_CONFIG_DATA      0xCFC
#define PCI_SLOT_MAX         32
#define PCI_NUM_BARS         6
#define PCI_CONFIG_SIZE      256
/* INTx of slot S pin P (0 = INTA) is GSI PCI_INTX_GSI_BASE + ((S + P) & 3),
 * level-triggered; _PRT says so. */
#define PCI_INTX_GSI_BASE 16

typedef struct PciBus PciBus;
typedef struct PciDevice PciDevice;

/* How the bus delivers interrupts: an MSI write (@addr, @data) and the level
 * of a GSI. Called with the device lock of the sender held, from any thread,
 * so both must be thread-safe and must not take the BQL. */
typedef void (*pci_msi_fn)(void *opaque, uint64_t addr, uint32_t data);
typedef void (*pci_gsi_fn)(void *opaque, int gsi, int level);

/* Called after a config-space write has been applied (with the device lock
 * held), for devices that watch registers of their own capabilities. */
typedef void (*pci_config_written_fn)(PciDevice *d, unsigned offset, unsigned size);

/* Called after BAR @idx was mapped at @addr or unmapped (@addr 0), with the
 * device lock and the BQL held, e.g. to move ioeventfds along. */
typedef void (*pci_bar_moved_fn)(PciDevice *d, unsigned idx, gpa_t addr);

typedef struct PciBar {
    uint64_t size; /* power of two, 0 = absent */
    bool io;
    const MemoryRegionOps *ops;
    void *opaque;
    MemoryRegion *mr; /* mapped region, NULL while unmapped */
    gpa_t mapped_at;
} PciBar;

/* A function 0 on bus 0. Embedded in the device model's state; filled by
 * pci_device_init() and registered with pci_bus_add(). */
struct PciDevice {
    PciBus *bus;
    char *name;
    unsigned slot;
    KLock *lock; /* serialises config space, BAR state and MSI-X; BAR regions use it */
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];
    uint8_t next_cap; /* where the next capability goes */
    PciBar bar[PCI_NUM_BARS];
    pci_config_written_fn config_written;
    /* MSI-X, when pci_msix_init() was called. */
    unsigned msix_vectors;
    uint8_t msix_cap;
    uint8_t *msix_table;   /* 16 bytes per vector */
    uint64_t msix_pending; /* bit per vector, at most 64 vectors */
    int intx_level;        /* what the device drives */
    bool intx_asserted;    /* what the bus counts: level and not INTX_DISABLE */
    pci_bar_moved_fn bar_moved;
    uint64_t msix_sent; /* statistics: MSIs delivered */
};

/* ---- Bus ---------------------------------------------------------------- */

/* A bus with a host bridge at slot 0 whose 0xCF8/0xCFC ports are mapped in
 * @pio. @mmio and @pio receive the BARs. Returns NULL with a one-line error
 * if the ports are taken. Main thread, BQL held. */
PciBus *pci_bus_new(AddressSpace *pio, AddressSpace *mmio, pci_msi_fn msi, pci_gsi_fn gsi,
                    void *opaque, GError **errp);
/* Unmap everything; every device must have been removed. NULL is allowed. */
void pci_bus_free(PciBus *bus);
/* Place @d in the first free slot, give its BARs addresses in the windows
 * (as firmware would) and enable its decoding. Returns false with a one-line
 * error when the bus or a window is full. Main thread, BQL held. */
bool pci_bus_add(PciBus *bus, PciDevice *d, GError **errp);
/* Unmap and unplug @d. No vCPU may be dispatching to it any more. */
void pci_bus_remove(PciBus *bus, PciDevice *d);
/* The device in @slot, or NULL. BQL held. */
PciDevice *pci_bus_device(PciBus *bus, unsigned slot);
/* The config-space access of the 0xCF8/0xCFC mechanism, for tests and the
 * port handlers: @size bytes at @offset of (@slot, function 0). Absent
 * devices read all-ones. BQL held. */
uint32_t pci_bus_config_read(PciBus *bus, unsigned slot, unsigned offset, unsigned size);
void pci_bus_config_write(PciBus *bus, unsigned slot, unsigned offset, uint32_t value,
                          unsigned size);
/* The AML of \_SB.PCI0: _HID PNP0A03, _CRS (bus 0, the I/O and 32-bit memory
 * windows, the config ports) and _PRT (INTx as above), for the ACPI
 * builder's sb_fill hook. */
void pci_bus_acpi_fill(Aml *sb, void *opaque);

/* ---- Devices ------------------------------------------------------------ */

/* Fill the header of a type-0 function: IDs, class (24-bit class code),
 * interrupt pin INTA, and the registers a driver may write. @lock guards the
 * device's state. */
void pci_device_init(PciDevice *d, const char *name, KLock *lock, uint16_t vendor, uint16_t device,
                     uint8_t revision, uint32_t class_code, uint16_t subsys_vendor,
                     uint16_t subsys_id);
void pci_device_cleanup(PciDevice *d);
/* Declare BAR @idx of @size bytes (a power of two, at least 16) with region
 * ops called under @d->lock. Before pci_bus_add(). */
void pci_device_set_bar(PciDevice *d, unsigned idx, uint64_t size, bool io,
                        const MemoryRegionOps *ops, void *opaque);
/* Append a capability of @len bytes with ID @id; returns its offset (the
 * caller fills the bytes after the two-byte header), or 0 when full. */
uint8_t pci_device_add_cap(PciDevice *d, uint8_t id, uint8_t len);
/* Where BAR @idx is mapped now, or 0. Device lock held. */
gpa_t pci_device_bar_addr(PciDevice *d, unsigned idx);

/* MSI-X with @vectors (1..64) vectors, table at @table_off and PBA at
 * @pba_off in BAR @bar; the device's BAR ops forward accesses in those
 * ranges to pci_msix_table_read/write. Every vector starts masked. */
bool pci_msix_init(PciDevice *d, unsigned vectors, unsigned bar, uint32_t table_off,
                   uint32_t pba_off, GError **errp);
bool pci_msix_enabled(PciDevice *d);
/* Send vector @v (or mark it pending while masked). Returns false when MSI-X
 * is off or @v is out of range. Device lock held; any thread. */
bool pci_msix_notify(PciDevice *d, unsigned v);
/* Table (offset from the table's start) and PBA accesses, 4 bytes wide.
 * Device lock held. */
uint32_t pci_msix_table_read(PciDevice *d, uint64_t offset);
void pci_msix_table_write(PciDevice *d, uint64_t offset, uint32_t value);
uint32_t pci_msix_pba_read(PciDevice *d, uint64_t offset);
/* Drive INTA to @level. Device lock held; any thread. */
void pci_set_intx(PciDevice *d, int level);
/* Power-on state of the registers a driver writes (command, MSI-X control,
 * the table); BARs keep their addresses. Device lock held. */
void pci_device_reset(PciDevice *d);

/* ---- Machine glue ------------------------------------------------------- */

/* The pc machine delivers MSIs with KVM_SIGNAL_MSI and drives GSIs of the
 * in-kernel IOAPIC (src/hw/i386/pc-pci.c). Any thread, no lock needed;
 * failures are logged. */
void machine_send_msi(Machine *m, uint64_t addr, uint32_t data);
void machine_set_gsi(Machine *m, int gsi, int level);
/* The bus of the machine's "pci-host" device, or NULL. BQL held. */
PciBus *machine_pci_bus(Machine *m);
/* The "pci-host" device class (part of the machine, not for -device). */
struct DeviceClass;
extern const struct DeviceClass pci_host_device_class;

#endif
