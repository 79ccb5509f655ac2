/* testdev: PIO and MMIO counters, and doorbells that can bypass the exit to userspace. */
#include "kvmloop/testdev.h"
#include "kvmloop/error.h"

#include <unistd.h>

#include "kvmloop/bql.h"
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/eventfd.h"
#include "kvmloop/iothread.h"
#include "kvmloop/irq.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"

#define TESTDEV_ISA_IRQS 16

typedef struct TestDev TestDev;

/* The doorbell of one space, with its own region and, with ioeventfd=on,
 * its eventfd. */
typedef struct TestDevBell {
    TestDev *s;
    MemoryRegion mr;
    AddressSpace *as;
    gpa_t addr;
    EventNotifier notifier;
    bool has_notifier;
    bool assigned; /* bound with machine_add_ioeventfd() */
    EventWatch *watch;
    /* All atomic: vCPUs and the serving loop update them concurrently. */
    uint64_t via_eventfd;
    uint64_t via_exit;
    uint64_t batches;
    uint64_t batches_bql;
    uint64_t irqs;
    uint64_t irq_at; /* armed threshold of TESTDEV_REG_DOORBELL_IRQ, 0 when not armed */
} TestDevBell;

struct TestDev {
    Device dev;
    MemoryRegion pio;
    MemoryRegion mmio;
    uint64_t delay_ns;
    /* All atomic: with lock=none several vCPUs are in here at once. */
    uint64_t counter[2];
    uint64_t scratch;
    int inside;
    uint64_t overlaps;

    /* Doorbells, set at realize. */
    Machine *machine;
    bool ioeventfd;
    bool datamatch;
    uint64_t data;
    IOThread *iothread; /* serves the eventfds; NULL: the main loop */
    int irq;
    IrqLine irq_line;           /* ioeventfd=off: KVM_IRQ_LINE from the vCPU */
    EventNotifier irq_notifier; /* ioeventfd=on: irqfd from the serving loop */
    bool has_irq_notifier;
    bool irqfd_assigned;
    TestDevBell bell[2]; /* 0 = PIO, 1 = MMIO */
};

typedef struct TestDevPort {
    TestDev *s;
    int idx; /* 0 = PIO, 1 = MMIO */
} TestDevPort;

static uint64_t testdev_bell_total(TestDevBell *b)
{
    return __atomic_load_n(&b->via_eventfd, __ATOMIC_SEQ_CST) +
           __atomic_load_n(&b->via_exit, __ATOMIC_SEQ_CST);
}

/* The doorbell interrupt is an edge: a pulse through the irqfd (no BQL, from
 * whichever thread counted the ring) or, without ioeventfd, on the IRQ line. */
static void testdev_pulse_irq(TestDev *s)
{
    if (s->irqfd_assigned) {
        event_notifier_set(&s->irq_notifier);
    } else {
        irq_set(&s->irq_line, 1);
        irq_set(&s->irq_line, 0);
    }
}

/* Fire the armed interrupt if @b has rung often enough. Called after every
 * ring and every arming. The counters and @irq_at are sequentially
 * consistent, so of a ring and an arming that race, at least one sees the
 * other; the compare-and-swap lets exactly one of them fire. */
static void testdev_bell_update_irq(TestDevBell *b)
{
    uint64_t at = __atomic_load_n(&b->irq_at, __ATOMIC_SEQ_CST);

    if (at == 0 || testdev_bell_total(b) < at) {
        return;
    }
    if (__atomic_compare_exchange_n(&b->irq_at, &at, 0, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
        __atomic_fetch_add(&b->irqs, 1, __ATOMIC_RELAXED);
        testdev_pulse_irq(b->s);
    }
}

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
    TestDevBell *b = &s->bell[idx];
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
    case TESTDEV_REG_DOORBELL_COUNT:
        ret = write ? 0 : testdev_bell_total(b);
        break;
    case TESTDEV_REG_DOORBELL_IRQ:
        if (write) {
            __atomic_store_n(&b->irq_at, *value, __ATOMIC_SEQ_CST);
            testdev_bell_update_irq(b);
        } else {
            ret = __atomic_load_n(&b->irq_at, __ATOMIC_SEQ_CST);
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

/* A doorbell write that exited to userspace: no ioeventfd, or one whose
 * value the ioeventfd does not match. */
static void testdev_bell_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    TestDevBell *b = opaque;

    testdev_enter(b->s, &b->mr);
    testdev_serve(b->s);
    __atomic_fetch_add(&b->via_exit, 1, __ATOMIC_SEQ_CST);
    testdev_bell_update_irq(b);
    testdev_leave(b->s);
}

static uint64_t testdev_bell_read(void *opaque, uint64_t offset, unsigned size)
{
    return testdev_bell_total(opaque);
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

static const MemoryRegionOps testdev_bell_ops = {
    .read = testdev_bell_read,
    .write = testdev_bell_write,
    .min_access_size = TESTDEV_DOORBELL_SIZE,
    .max_access_size = TESTDEV_DOORBELL_SIZE,
};

/* The eventfd of a doorbell became readable: on the iothread without any
 * lock, or on the main loop under the BQL. One read returns every ring since
 * the previous read (the eventfd is not EFD_SEMAPHORE), so however KVM's
 * signals coalesced, the total stays exact. */
static void testdev_bell_event(void *opaque, int fd, unsigned revents)
{
    TestDevBell *b = opaque;
    uint64_t n;

    if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n) || n == 0) {
        return; /* EAGAIN: another read got there first */
    }
    __atomic_fetch_add(&b->via_eventfd, n, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&b->batches, 1, __ATOMIC_RELAXED);
    if (bql_locked()) {
        __atomic_fetch_add(&b->batches_bql, 1, __ATOMIC_RELAXED);
    }
    testdev_bell_update_irq(b);
}

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

TestDevDoorbellStats testdev_doorbell_stats(Device *dev, bool mmio)
{
    TestDevBell *b = &((TestDev *)dev)->bell[mmio ? 1 : 0];
    return (TestDevDoorbellStats){
        .eventfd = __atomic_load_n(&b->via_eventfd, __ATOMIC_SEQ_CST),
        .exits = __atomic_load_n(&b->via_exit, __ATOMIC_SEQ_CST),
        .batches = __atomic_load_n(&b->batches, __ATOMIC_RELAXED),
        .batches_bql = __atomic_load_n(&b->batches_bql, __ATOMIC_RELAXED),
        .irqs = __atomic_load_n(&b->irqs, __ATOMIC_RELAXED),
    };
}

/* Run in the serving loop's context (iothread_run_sync() or the main thread):
 * fd watches belong to the loop's thread. */
static void testdev_watch_bells(void *opaque)
{
    TestDev *s = opaque;
    EventLoop *loop = s->iothread ? iothread_loop(s->iothread) : machine_main_loop(s->machine);

    for (int i = 0; i < 2; i++) {
        TestDevBell *b = &s->bell[i];
        b->watch = event_loop_add_fd(loop, event_notifier_get_fd(&b->notifier), EVENT_IN,
                                     i ? "testdev-doorbell-mmio" : "testdev-doorbell-pio",
                                     testdev_bell_event, b);
    }
}

static void testdev_unwatch_bells(void *opaque)
{
    TestDev *s = opaque;

    for (int i = 0; i < 2; i++) {
        event_watch_remove(s->bell[i].watch);
        s->bell[i].watch = NULL;
    }
}

static bool testdev_notifier_init(EventNotifier *e, bool *has, GError **errp)
{
    int r = event_notifier_init(e, false);
    if (r < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "testdev: eventfd failed: %s",
                    g_strerror(-r));
        return false;
    }
    *has = true;
    return true;
}

/* Bind both doorbells to eventfds served by the chosen loop, and the
 * interrupt to an irqfd. What is done is undone by testdev_unrealize(). */
static bool testdev_realize_ioeventfd(TestDev *s, GError **errp)
{
    Machine *m = s->machine;

    if (!testdev_notifier_init(&s->irq_notifier, &s->has_irq_notifier, errp)) {
        return false;
    }
    if (!machine_add_irqfd(m, s->irq, &s->irq_notifier, errp)) {
        g_prefix_error(errp, "testdev: ");
        return false;
    }
    s->irqfd_assigned = true;
    for (int i = 0; i < 2; i++) {
        TestDevBell *b = &s->bell[i];
        if (!testdev_notifier_init(&b->notifier, &b->has_notifier, errp)) {
            return false;
        }
        if (!machine_add_ioeventfd(m, b->as, b->addr, TESTDEV_DOORBELL_SIZE, s->datamatch, s->data,
                                   &b->notifier, errp)) {
            g_prefix_error(errp, "testdev: ");
            return false;
        }
        b->assigned = true;
    }
    if (s->iothread) {
        iothread_run_sync(s->iothread, testdev_watch_bells, s);
    } else {
        testdev_watch_bells(s);
    }
    if (!s->bell[0].watch || !s->bell[1].watch) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "testdev: cannot watch the doorbell eventfds");
        return false;
    }
    return true;
}

/* ioeventfd, iothread, irq and doorbell-data. */
static bool testdev_realize_props(TestDev *s, GError **errp)
{
    Device *dev = &s->dev;
    const char *iothread = device_prop_str(dev, "iothread", NULL);
    const char *data = device_prop_str(dev, "doorbell-data", NULL);
    uint64_t irq;

    if (!device_prop_bool(dev, "ioeventfd", false, &s->ioeventfd, errp) ||
        !device_prop_u64(dev, "irq", TESTDEV_DEFAULT_IRQ, &irq, errp) ||
        !device_prop_u64(dev, "doorbell-data", 0, &s->data, errp)) {
        return false;
    }
    if (irq >= TESTDEV_ISA_IRQS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "testdev: irq must be an ISA IRQ from 0 to %d", TESTDEV_ISA_IRQS - 1);
        return false;
    }
    s->irq = (int)irq;
    s->datamatch = data != NULL;
    if ((iothread || data) && !s->ioeventfd) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "testdev: %s needs ioeventfd=on",
                    iothread ? "iothread" : "doorbell-data");
        return false;
    }
    if (s->data > UINT32_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "testdev: doorbell-data must fit in the doorbell's 32 bits");
        return false;
    }
    if (iothread) {
        s->iothread = iothread_find(iothread);
        if (!s->iothread) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                        "testdev: there is no iothread '%s' (add -object iothread,id=%s)", iothread,
                        iothread);
            return false;
        }
    }
    return true;
}

static bool testdev_realize(Device *dev, Machine *m, GError **errp)
{
    TestDev *s = (TestDev *)dev;
    uint64_t iobase, mmio;

    s->machine = m;
    if (!device_prop_u64(dev, "iobase", TESTDEV_DEFAULT_IOBASE, &iobase, errp) ||
        !device_prop_u64(dev, "mmio", TESTDEV_DEFAULT_MMIO, &mmio, errp) ||
        !device_prop_u64(dev, "delay-ns", 0, &s->delay_ns, errp) ||
        !testdev_realize_props(s, errp)) {
        return false;
    }
    if (s->delay_ns > 1000000000ULL) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "testdev: delay-ns must be at most 1 s");
        return false;
    }
    s->bell[0] =
        (TestDevBell){.s = s, .as = machine_pio(m), .addr = iobase + TESTDEV_DOORBELL_PIO_OFFSET};
    s->bell[1] =
        (TestDevBell){.s = s, .as = machine_mmio(m), .addr = mmio + TESTDEV_DOORBELL_MMIO_OFFSET};
    if (!device_map_region(dev, machine_pio(m), &s->pio, "pio", TESTDEV_REGION_PIO_SIZE,
                           &testdev_pio_ops, s, iobase, errp) ||
        !device_map_region(dev, machine_mmio(m), &s->mmio, "mmio", TESTDEV_REGION_MMIO_SIZE,
                           &testdev_mmio_ops, s, mmio, errp)) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        TestDevBell *b = &s->bell[i];
        if (!device_map_region(dev, b->as, &b->mr, i ? "doorbell-mmio" : "doorbell-pio",
                               TESTDEV_DOORBELL_SIZE, &testdev_bell_ops, b, b->addr, errp)) {
            return false;
        }
    }
    if (!s->ioeventfd) {
        s->irq_line = machine_isa_irq(m, s->irq);
        return true;
    }
    return testdev_realize_ioeventfd(s, errp);
}

static void testdev_reset(Device *dev)
{
    TestDev *s = (TestDev *)dev;
    __atomic_store_n(&s->scratch, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&s->bell[i].irq_at, 0, __ATOMIC_SEQ_CST);
    }
}

/* Also after a realize that failed half-way (or never ran): undo exactly what
 * the flags say was done. KVM stops signalling the doorbells first, then the
 * serving loop stops watching them (waiting for a callback in flight), and
 * only then does the irqfd that callback may pulse go; the eventfds close
 * last. */
static void testdev_unrealize(Device *dev)
{
    TestDev *s = (TestDev *)dev;

    for (int i = 0; i < 2; i++) {
        TestDevBell *b = &s->bell[i];
        if (b->assigned) {
            machine_del_ioeventfd(s->machine, b->as, b->addr, TESTDEV_DOORBELL_SIZE, s->datamatch,
                                  s->data, &b->notifier);
            b->assigned = false;
        }
    }
    if (s->bell[0].watch || s->bell[1].watch) {
        if (s->iothread) {
            iothread_run_sync(s->iothread, testdev_unwatch_bells, s);
        } else {
            testdev_unwatch_bells(s);
        }
    }
    if (s->irqfd_assigned) {
        machine_del_irqfd(s->machine, s->irq, &s->irq_notifier);
        s->irqfd_assigned = false;
    }
    for (int i = 0; i < 2; i++) {
        if (s->bell[i].has_notifier) {
            event_notifier_cleanup(&s->bell[i].notifier);
        }
    }
    if (s->has_irq_notifier) {
        event_notifier_cleanup(&s->irq_notifier);
    }
}

static const char *const testdev_props[] = {
    "iobase", "mmio", "lock", "delay-ns", "ioeventfd", "iothread", "irq", "doorbell-data", NULL};

const DeviceClass testdev_device_class = {
    .name = "testdev",
    .desc = "PIO and MMIO counters and doorbells, for stress tests and lock benchmarks",
    .props_help = "iobase=0x700,mmio=0xfe000000,lock=bql|device|none,delay-ns=N,"
                  "ioeventfd=on|off,iothread=NAME,irq=5,doorbell-data=V",
    .props = testdev_props,
    .instance_size = sizeof(TestDev),
    .user_creatable = true,
    .realize = testdev_realize,
    .reset = testdev_reset,
    .unrealize = testdev_unrealize,
};
