/* pci-host: the pc machine's PCI bus 0 as a device, so that PCI devices find it by name. */
#include "kvmloop/pci.h"
#include "kvmloop/error.h"

#include "kvmloop/device.h"
#include "kvmloop/machine.h"

typedef struct PciHostDev {
    Device dev;
    Machine *machine;
    PciBus *bus;
} PciHostDev;

static void pci_host_msi(void *opaque, uint64_t addr, uint32_t data)
{
    machine_send_msi(opaque, addr, data);
}

static void pci_host_gsi(void *opaque, int gsi, int level)
{
    machine_set_gsi(opaque, gsi, level);
}

static bool pci_host_realize(Device *dev, Machine *m, GError **errp)
{
    PciHostDev *s = (PciHostDev *)dev;
    s->machine = m;
    s->bus = pci_bus_new(machine_pio(m), machine_mmio(m), pci_host_msi, pci_host_gsi, m, errp);
    return s->bus != NULL;
}

/* PCI devices are destroyed before the host: the machine tears devices
 * down in reverse order of creation. */
static void pci_host_unrealize(Device *dev)
{
    PciHostDev *s = (PciHostDev *)dev;
    pci_bus_free(s->bus);
    s->bus = NULL;
}

PciBus *machine_pci_bus(Machine *m)
{
    Device *d = machine_find_device(m, "pci-host");
    return d && d->cls == &pci_host_device_class ? ((PciHostDev *)d)->bus : NULL;
}

const DeviceClass pci_host_device_class = {
    .name = "pci-host",
    .desc = "PCI host bridge with type-1 configuration ports 0xCF8/0xCFC",
    .instance_size = sizeof(PciHostDev),
    .user_creatable = false,
    .realize = pci_host_realize,
    .unrealize = pci_host_unrealize,
};
