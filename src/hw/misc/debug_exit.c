/* isa-debug-exit: a test guest ends the run by writing its status to a port, as in QEMU. */
#include "kvmloop/device.h"
#include "kvmloop/error.h"
#include "kvmloop/machine.h"

typedef struct DebugExit {
    Device dev;
    MemoryRegion io;
    Machine *machine;
} DebugExit;

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

/* QEMU's convention: value V ends the process with status (V << 1) | 1, so a
 * guest can never fake a clean 0. */
static void debug_exit_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    DebugExit *s = opaque;
    machine_request_exit(s->machine, (int)(((value << 1) | 1) & 0xff));
}

static const MemoryRegionOps debug_exit_ops = {
    .read = debug_exit_read,
    .write = debug_exit_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

static bool debug_exit_realize(Device *dev, Machine *m, GError **errp)
{
    DebugExit *s = (DebugExit *)dev;
    uint64_t iobase, iosize;

    s->machine = m;
    if (!device_prop_u64(dev, "iobase", 0x501, &iobase, errp) ||
        !device_prop_u64(dev, "iosize", 2, &iosize, errp)) {
        return false;
    }
    if (iosize < 1 || iosize > 4) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "isa-debug-exit: iosize must be 1 to 4");
        return false;
    }
    return device_map_region(dev, machine_pio(m), &s->io, "port", iosize, &debug_exit_ops, s,
                             iobase, errp);
}

static const char *const debug_exit_props[] = {"iobase", "iosize", "lock", NULL};

const DeviceClass debug_exit_device_class = {
    .name = "isa-debug-exit",
    .desc = "a write of V ends kvmloop with status (V << 1) | 1",
    .props_help = "iobase=0x501,iosize=2",
    .props = debug_exit_props,
    .instance_size = sizeof(DebugExit),
    .user_creatable = true,
    .realize = debug_exit_realize,
};
