/* testdev: counters behind PIO and MMIO registers, for stress tests and lock-contention benchmarks.
 */
#include "kvmloop/testdev.h"
#include "kvmloop/error.h"

#include "kvmloop/device.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"

typedef struct TestDev {
    Device dev;
    MemoryRegion pio;
    MemoryRegion mmio;
    uint64_t delay_ns;
    /* All atomic: with lock=none several vCPUs are in here at once. */
    uint64_t counter[2];
    uint64_t scratch;
    int inside;
    uint64_t overlaps;
} TestDev;

typedef struct TestDevPort {
    TestDev *s;
    int idx; /* 0 = PIO, 1 = MMIO */
} TestDevPort;

/* Model expensive emulation work: spin for the configured service time. */
static void testdev_serve(TestDev *s)
{
    if (s->delay_ns) {
        int64_t end = klock_now_ns() + (int64_t)s->delay_ns;
        while (klock_now_ns() < end) {
            __builtin_ia32_pause();
        }
    }
}

static void testdev_enter(TestDev *s, MemoryRegion *mr)
{
    int n = __atomic_add_fetch(&s->inside, 1, __ATOMIC_ACQ_REL);
    if (n > 1 && memory_region_lock_policy(mr) != LOCK_POLICY_NONE) {
        __atomic_fetch_add(&s->overlaps, 1, __ATOMIC_RELAXED);
    }
}

static void testdev_leave(TestDev *s)
{
    __atomic_sub_fetch(&s->inside, 1, __ATOMIC_ACQ_REL);
}

static uint64_t testdev_access(TestDev *s, int idx, uint64_t offset, uint64_t *value, bool write)
{
    MemoryRegion *mr = idx ? &s->mmio : &s->pio;
    uint64_t ret = 0;

    testdev_enter(s, mr);
    testdev_serve(s);
    switch (offset) {
    case TESTDEV_REG_COUNTER:
        if (write) {
            __atomic_fetch_add(&s->counter[idx], 1, __ATOMIC_RELAXED);
        } else {
            ret = __atomic_load_n(&s->counter[idx], __ATOMIC_RELAXED);
        }
        break;
    case TESTDEV_REG_SCRATCH:
        if (write) {
            __atomic_store_n(&s->scratch, *value, __ATOMIC_RELAXED);
        } else {
            ret = __atomic_load_n(&s->scratch, __ATOMIC_RELAXED);
        }
        break;
    default:
        ret = ~0ULL;
        break;
    }
    testdev_leave(s);
    return ret;
}

static uint64_t testdev_pio_read(void *opaque, uint64_t offset, unsigned size)
{
    return testdev_access(opaque, 0, offset, NULL, false);
}

static void testdev_pio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    testdev_access(opaque, 0, offset, &value, true);
}

static uint64_t testdev_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    return testdev_access(opaque, 1, offset, NULL, false);
}

static void testdev_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    testdev_access(opaque, 1, offset, &value, true);
}

static const MemoryRegionOps testdev_pio_ops = {
    .read = testdev_pio_read,
    .write = testdev_pio_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

static const MemoryRegionOps testdev_mmio_ops = {
    .read = testdev_mmio_read,
    .write = testdev_mmio_write,
    .min_access_size = 1,
    .max_access_size = 8,
};

uint64_t testdev_counter(Device *dev, bool mmio)
{
    TestDev *s = (TestDev *)dev;
    return __atomic_load_n(&s->counter[mmio ? 1 : 0], __ATOMIC_RELAXED);
}

uint64_t testdev_overlaps(Device *dev)
{
    TestDev *s = (TestDev *)dev;
    return __atomic_load_n(&s->overlaps, __ATOMIC_RELAXED);
}

static bool testdev_realize(Device *dev, Machine *m, GError **errp)
{
    TestDev *s = (TestDev *)dev;
    uint64_t iobase, mmio;

    if (!device_prop_u64(dev, "iobase", TESTDEV_DEFAULT_IOBASE, &iobase, errp) ||
        !device_prop_u64(dev, "mmio", TESTDEV_DEFAULT_MMIO, &mmio, errp) ||
        !device_prop_u64(dev, "delay-ns", 0, &s->delay_ns, errp)) {
        return false;
    }
    if (s->delay_ns > 1000000000ULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "testdev: delay-ns must be at most 1 s");
        return false;
    }
    return device_map_region(dev, machine_pio(m), &s->pio, "pio", TESTDEV_REGION_PIO_SIZE,
                             &testdev_pio_ops, s, iobase, errp) &&
           device_map_region(dev, machine_mmio(m), &s->mmio, "mmio", TESTDEV_REGION_MMIO_SIZE,
                             &testdev_mmio_ops, s, mmio, errp);
}

static void testdev_reset(Device *dev)
{
    TestDev *s = (TestDev *)dev;
    __atomic_store_n(&s->scratch, 0, __ATOMIC_RELAXED);
}

static const char *const testdev_props[] = {"iobase", "mmio", "lock", "delay-ns", NULL};

const DeviceClass testdev_device_class = {
    .name = "testdev",
    .desc = "counters at PIO and MMIO offset 0, for stress tests and lock benchmarks",
    .props_help = "iobase=0x700,mmio=0xfe000000,lock=bql|device|none,delay-ns=N",
    .props = testdev_props,
    .instance_size = sizeof(TestDev),
    .user_creatable = true,
    .realize = testdev_realize,
    .reset = testdev_reset,
};
