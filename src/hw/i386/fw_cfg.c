/* QEMU's firmware configuration device (I/O 0x510/0x511): how test kernels learn the machine's
 * shape. */
#include <string.h>

#include "kvmloop/device.h"
#include "kvmloop/machine.h"

#define FW_CFG_IOBASE    0x510
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID        0x01
#define FW_CFG_RAM_SIZE  0x03
#define FW_CFG_NB_CPUS   0x05
#define FW_CFG_MAX_CPUS  0x0f
#define FW_CFG_FILE_DIR  0x19
#define FW_CFG_MAX_ITEM  0x20

typedef struct FwCfgItem {
    uint8_t *data;
    uint32_t len;
} FwCfgItem;

typedef struct FwCfg {
    Device dev;
    MemoryRegion io;
    FwCfgItem items[FW_CFG_MAX_ITEM];
    uint16_t selector;
    uint32_t offset;
} FwCfg;

static void fw_cfg_set(FwCfg *s, uint16_t key, const void *data, uint32_t len)
{
    g_free(s->items[key].data);
    s->items[key].data = g_memdup2(data, len);
    s->items[key].len = len;
}

static void fw_cfg_set_le(FwCfg *s, uint16_t key, uint64_t v, unsigned len)
{
    uint8_t buf[8];
    for (unsigned i = 0; i < len; i++) {
        buf[i] = (uint8_t)(v >> (8 * i));
    }
    fw_cfg_set(s, key, buf, len);
}

static uint64_t fw_cfg_read(void *opaque, uint64_t offset, unsigned size)
{
    FwCfg *s = opaque;
    if (offset != 1) {
        return 0; /* the selector port reads as 0 */
    }
    uint64_t v = 0;
    /* Multi-byte reads of the data port return consecutive bytes, as in QEMU. */
    for (unsigned i = 0; i < size; i++) {
        const FwCfgItem *it = s->selector < FW_CFG_MAX_ITEM ? &s->items[s->selector] : NULL;
        uint8_t b = 0;
        if (it && s->offset < it->len) {
            b = it->data[s->offset++];
        }
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

static void fw_cfg_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    FwCfg *s = opaque;
    if (offset == 0) {
        /* Selecting an item rewinds it. Bit 14 (write) and bit 15 (arch
         * specific) select nothing here. */
        s->selector = (uint16_t)(value & 0x3fff);
        s->offset = 0;
    }
}

static const MemoryRegionOps fw_cfg_ops = {
    .read = fw_cfg_read,
    .write = fw_cfg_write,
    .min_access_size = 1,
    .max_access_size = 2,
};

static bool fw_cfg_realize(Device *dev, Machine *m, GError **errp)
{
    FwCfg *s = (FwCfg *)dev;
    uint64_t cpus, ram;

    if (!device_prop_u64(dev, "cpus", 1, &cpus, errp) ||
        !device_prop_u64(dev, "ram", 0, &ram, errp)) {
        return false;
    }
    fw_cfg_set(s, FW_CFG_SIGNATURE, "QEMU", 4);
    fw_cfg_set_le(s, FW_CFG_ID, 1, 4); /* traditional interface, no DMA */
    fw_cfg_set_le(s, FW_CFG_RAM_SIZE, ram, 8);
    fw_cfg_set_le(s, FW_CFG_NB_CPUS, cpus, 2);
    fw_cfg_set_le(s, FW_CFG_MAX_CPUS, cpus, 2);
    fw_cfg_set_le(s, FW_CFG_FILE_DIR, 0, 4); /* no files yet; count is big-endian 0 */
    return device_map_region(dev, machine_pio(m), &s->io, "io", 2, &fw_cfg_ops, s, FW_CFG_IOBASE,
                             errp);
}

static void fw_cfg_reset(Device *dev)
{
    FwCfg *s = (FwCfg *)dev;
    s->selector = 0;
    s->offset = 0;
}

static void fw_cfg_unrealize(Device *dev)
{
    FwCfg *s = (FwCfg *)dev;
    for (unsigned i = 0; i < FW_CFG_MAX_ITEM; i++) {
        g_free(s->items[i].data);
    }
}

static const char *const fw_cfg_props[] = {"cpus", "ram", "lock", NULL};

const DeviceClass fw_cfg_device_class = {
    .name = "fw_cfg",
    .desc = "QEMU firmware configuration interface at 0x510",
    .props = fw_cfg_props,
    .instance_size = sizeof(FwCfg),
    .user_creatable = false,
    .realize = fw_cfg_realize,
    .reset = fw_cfg_reset,
    .unrealize = fw_cfg_unrealize,
};
