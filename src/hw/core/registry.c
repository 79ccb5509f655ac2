/* The list of every device class kvmloop knows, in one place. */
#include "kvmloop/device.h"

#include <string.h>

extern const DeviceClass testdev_device_class;
extern const DeviceClass debug_exit_device_class;
extern const DeviceClass uart16550_device_class;
extern const DeviceClass fw_cfg_device_class;
extern const DeviceClass acpi_pm_device_class;
extern const DeviceClass mc146818rtc_device_class;
extern const DeviceClass i8042_device_class;
extern const DeviceClass pci_host_device_class;
extern const DeviceClass virtio_rng_device_class;
extern const DeviceClass virtio_blk_device_class;
extern const DeviceClass virtio_console_device_class;
extern const DeviceClass virtio_net_device_class;

static const DeviceClass *const device_classes[] = {
    &uart16550_device_class,
    &debug_exit_device_class,
    &testdev_device_class,
    &fw_cfg_device_class,
    &acpi_pm_device_class, /* part of the pc machine */
    &mc146818rtc_device_class,
    &i8042_device_class,
    &pci_host_device_class, /* part of the pc machine */
    &virtio_rng_device_class,
    &virtio_blk_device_class,
    &virtio_console_device_class,
    &virtio_net_device_class,
    NULL,
};

const DeviceClass *const *device_class_all(void)
{
    return device_classes;
}

const DeviceClass *device_class_find(const char *name)
{
    for (const DeviceClass *const *c = device_classes; *c; c++) {
        if (strcmp((*c)->name, name) == 0) {
            return *c;
        }
    }
    return NULL;
}
