/* Guest payloads on real KVM through kvmloop's own machine, vCPU and dispatch code. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "kvmloop/bql.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/eventfd.h"
#include "kvmloop/iothread.h"
#include "kvmloop/kvm.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/stats.h"
#include "kvmloop/testdev.h"

#include "kvm-test-run.h"

#define MAX_CPUS 8

typedef struct RunResult {
    int status;
    char *serial;
    uint64_t counter[2];
    uint64_t overlaps;
    CpuStats cpu[MAX_CPUS];
    int ncpus;
    AddressSpaceStats io, mem;
    TestDevDoorbellStats bell[2]; /* PIO, MMIO */
    uint64_t bell_accesses[2];    /* exits that reached the doorbell regions */
    pid_t iothread_tid;           /* of "io0" once the vCPUs started, if it exists */
    bool iothread_stopped;        /* "io0" was stopped before the devices went */
    /* Optional work while the VM runs: a thread started by the started hook. */
    void *(*driver)(void *arg);
    void *driver_arg;
    pthread_t driver_thread;
    Machine *machine;
    /* Optional: more set-up in the started hook, more checks in the stopped one. */
    void (*on_start)(struct RunResult *r, EventLoop *loop);
    void (*on_stop)(struct RunResult *r, Machine *m);
    void *test;
    pthread_t main_thread;
    LockStatSnapshot *lockstats; /* taken when the VM stopped */
} RunResult;

static const char *guest_dir;

static char *payload(const char *name)
{
    return g_strdup_printf("%s/%s.elf", guest_dir, name);
}

static void on_started(Machine *m, EventLoop *loop, void *opaque)
{
    RunResult *r = opaque;
    r->machine = m;
    r->main_thread = pthread_self();
    IOThread *io = iothread_find("io0");
    if (io) {
        r->iothread_tid = iothread_thread_id(io);
    }
    if (r->on_start) {
        r->on_start(r, loop);
    }
    if (r->driver) {
        g_assert_cmpint(pthread_create(&r->driver_thread, NULL, r->driver, r), ==, 0);
    }
}

static void count_bell_accesses(MemoryRegion *mr, void *opaque)
{
    if (g_str_has_prefix(mr->name, "testdev.doorbell-")) {
        *(uint64_t *)opaque += memory_region_stats(mr).accesses;
    }
}

static void on_stopped(Machine *m, int status, void *opaque)
{
    RunResult *r = opaque;
    if (r->driver) {
        bql_unlock();
        pthread_join(r->driver_thread, NULL);
        bql_lock();
    }
    Chardev *chr = machine_serial(m, 0);
    if (chr) {
        size_t len;
        const uint8_t *buf = chardev_captured(chr, &len);
        r->serial = g_strndup((const char *)buf, len);
    }
    Device *td = machine_find_device(m, "testdev");
    if (td) {
        r->counter[0] = testdev_counter(td, false);
        r->counter[1] = testdev_counter(td, true);
        r->overlaps = testdev_overlaps(td);
        r->bell[0] = testdev_doorbell_stats(td, false);
        r->bell[1] = testdev_doorbell_stats(td, true);
        address_space_foreach(machine_pio(m), count_bell_accesses, &r->bell_accesses[0]);
        address_space_foreach(machine_mmio(m), count_bell_accesses, &r->bell_accesses[1]);
    }
    IOThread *io = iothread_find("io0");
    r->iothread_stopped = io && !iothread_running(io) && iothread_thread_id(io) == 0;
    r->ncpus = MIN(machine_cpu_count(m), MAX_CPUS);
    for (int i = 0; i < r->ncpus; i++) {
        r->cpu[i] = cpu_stats(cpu_by_index(i));
    }
    r->io = address_space_stats(machine_pio(m));
    r->mem = address_space_stats(machine_mmio(m));
    r->lockstats = lockstat_snapshot();
    if (r->on_stop) {
        r->on_stop(r, m);
    }
}

/* Run kvmloop on @argv (NULL-terminated, without argv[0]) plus a capturing
 * serial port and the debug-exit port the payloads use. */
static void run_vm(RunResult *r, const char *const *args)
{
    VmHooks hooks = {.started = on_started, .stopped = on_stopped, .opaque = r};
    r->status = kvm_test_run(args, NULL, &hooks);
}

static void result_clear(RunResult *r)
{
    g_free(r->serial);
    lockstat_snapshot_free(r->lockstats);
}

static uint64_t total_exits(const RunResult *r, VcpuExitReason reason)
{
    uint64_t n = 0;
    for (int i = 0; i < r->ncpus; i++) {
        n += r->cpu[i].exits[reason];
    }
    return n;
}

static void test_hello(void)
{
    g_autofree char *k = payload("hello");
    RunResult r = {0};
    run_vm(&r, (const char *[]){"-kernel", k, "-append", "exit=5", NULL});
    g_assert_cmpint(r.status, ==, (5 << 1) | 1);
    g_assert_nonnull(strstr(r.serial, "hello from kvmloop"));
    g_assert_cmpuint(total_exits(&r, VCPU_EXIT_IO), >, 0);
    result_clear(&r);
}

static void test_smp_hello(void)
{
    g_autofree char *k = payload("smp-hello");
    RunResult r = {0};
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", "4", NULL});
    g_assert_cmpint(r.status, ==, 1);
    for (int i = 0; i < 4; i++) {
        g_autofree char *line = g_strdup_printf("hello from vCPU %d of 4", i);
        g_assert_nonnull(strstr(r.serial, line));
    }
    g_assert_nonnull(strstr(r.serial, "all 4 vCPUs done"));
    result_clear(&r);
}

/* The UART's interrupt goes through KVM_IRQ_LINE and the in-kernel IOAPIC. */
static void test_uart_irq(void)
{
    g_autofree char *k = payload("uart-irq");
    RunResult r = {0};
    run_vm(&r, (const char *[]){"-kernel", k, NULL});
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.serial, "uart-irq: ok"));
    result_clear(&r);
}

static void test_unassigned(void)
{
    g_autofree char *k = payload("unassigned");
    RunResult r = {0};
    run_vm(&r, (const char *[]){"-kernel", k, NULL});
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(r.io.unassigned_reads, >=, 3);
    g_assert_cmpuint(r.mem.unassigned_reads, >=, 3);
    result_clear(&r);
}

static void test_triple_fault(void)
{
    g_autofree char *k = payload("triple-fault");
    RunResult r = {0};
    run_vm(&r, (const char *[]){"-kernel", k, NULL});
    g_assert_cmpint(r.status, ==, 2);
    g_assert_cmpuint(total_exits(&r, VCPU_EXIT_SHUTDOWN), ==, 1);
    result_clear(&r);
}

static void test_bad_kernel(void)
{
    RunResult r = {0};
    run_vm(&r, (const char *[]){"-kernel", "/nonexistent/kernel.elf", NULL});
    g_assert_cmpint(r.status, ==, 1);
    g_assert_null(r.machine);
    result_clear(&r);
}

typedef struct CounterCase {
    const char *lock;
    const char *delay;
    int m;
} CounterCase;

static void test_smp_counter(gconstpointer data)
{
    const CounterCase *c = data;
    g_autofree char *k = payload("smp-counter");
    g_autofree char *dev = g_strdup_printf("testdev,lock=%s,delay-ns=%s", c->lock, c->delay);
    g_autofree char *append = g_strdup_printf("m=%d", c->m);
    for (int n = 1; n <= 4; n *= 2) {
        g_autofree char *smp = g_strdup_printf("%d", n);
        RunResult r = {0};
        run_vm(&r, (const char *[]){"-kernel", k, "-smp", smp, "-device", dev, "-append", append,
                                    NULL});
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpuint(r.counter[0], ==, (uint64_t)n * c->m);
        g_assert_cmpuint(r.counter[1], ==, (uint64_t)n * c->m);
        if (strcmp(c->lock, "none") != 0) {
            g_assert_cmpuint(r.overlaps, ==, 0);
        }
        result_clear(&r);
    }
}

static CpuState *wait_cpu(RunResult *r, int idx)
{
    bql_lock();
    CpuState *cpu = cpu_by_index(idx);
    bql_unlock();
    return cpu;
}

/* Every kick must bring the vCPU out of KVM_RUN; a lost one times out. */
static void *kick_driver(void *arg)
{
    RunResult *r = arg;
    for (int c = 0; c < 2; c++) {
        CpuState *cpu = wait_cpu(r, c);
        for (int i = 0; i < 1000; i++) {
            uint64_t before = cpu_stats(cpu).kicks_seen;
            bql_lock();
            cpu_kick(cpu);
            bql_unlock();
            gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
            while (cpu_stats(cpu).kicks_seen == before) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                sched_yield();
            }
        }
    }
    machine_request_exit(r->machine, 100);
    return NULL;
}

static void test_kick(void)
{
    g_autofree char *k = payload("spin");
    RunResult r = {.driver = kick_driver};
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", "2", NULL});
    g_assert_cmpint(r.status, ==, 100);
    g_assert_cmpuint(r.cpu[0].kicks_seen, >=, 1000);
    g_assert_cmpuint(r.cpu[1].kicks_seen, >=, 1000);
    result_clear(&r);
}

static void count_on_cpu(CpuState *cpu, void *data)
{
    g_assert_true(cpu_is_self(cpu));
    g_assert_true(bql_locked());
    (*(int *)data)++;
}

static void *run_on_cpu_driver(void *arg)
{
    RunResult *r = arg;
    int count = 0;
    for (int i = 0; i < 1000; i++) {
        bql_lock();
        run_on_cpu(cpu_by_index(i % 4), count_on_cpu, &count);
        bql_unlock();
    }
    g_assert_cmpint(count, ==, 1000);
    machine_request_exit(r->machine, 100);
    return NULL;
}

static void test_run_on_cpu(void)
{
    g_autofree char *k = payload("spin");
    RunResult r = {.driver = run_on_cpu_driver};
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", "4", NULL});
    g_assert_cmpint(r.status, ==, 100);
    result_clear(&r);
}

static void *pause_driver(void *arg)
{
    RunResult *r = arg;
    for (int i = 0; i < 10000; i++) {
        bql_lock();
        pause_all_vcpus();
        g_assert_true(all_vcpus_paused());
        resume_all_vcpus();
        bql_unlock();
    }
    machine_request_exit(r->machine, 100);
    return NULL;
}

static void test_pause_resume(void)
{
    g_autofree char *k = payload("spin");
    RunResult r = {.driver = pause_driver};
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", "4", NULL});
    g_assert_cmpint(r.status, ==, 100);
    result_clear(&r);
}

/* A guest that stops before the other vCPUs have even entered KVM_RUN. */
static void test_shutdown_race(void)
{
    g_autofree char *k = payload("shutdown-now");
    int runs = g_test_slow() ? 2000 : 500;
    for (int i = 0; i < runs; i++) {
        RunResult r = {0};
        run_vm(&r, (const char *[]){"-kernel", k, "-smp", "4", NULL});
        g_assert_cmpint(r.status, ==, 1);
        result_clear(&r);
    }
}

/* ---- Lock statistics ------------------------------------------------------------ */

#define HOLD_NS (20 * 1000 * 1000)

/* True once thread @tid sleeps in futex(2), i.e. blocks on a mutex. */
static bool thread_in_futex(pid_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/syscall", (int)tid);
    g_autofree char *text = NULL;
    if (tid <= 0 || !g_file_get_contents(path, &text, NULL, NULL)) {
        return false;
    }
    return strtol(text, NULL, 10) == SYS_futex;
}

static LockSite site_id(const char *name)
{
    return lockstat_site_intern(name);
}

static unsigned bql_id(void)
{
    return bql_klock()->id;
}

/* Exits of every vCPU to exit site @site. */
static uint64_t exits_at(Machine *m, LockSite site)
{
    g_autofree uint64_t *counts = g_new(uint64_t, LOCKSTAT_MAX_SITES);
    uint64_t n = 0;
    for (int i = 0; i < machine_cpu_count(m); i++) {
        cpu_exits_by_site(cpu_by_index(i), counts, LOCKSTAT_MAX_SITES);
        n += counts[site];
    }
    return n;
}

typedef struct HoldTest {
    Timer *timer;
    int64_t held_ns;  /* how long the timer held the BQL after the vCPU blocked */
    uint64_t wait_ns; /* vCPU 0's lock wait, read when the VM stopped */
    uint64_t pio_exits;
} HoldTest;

/* A main-loop timer (so the BQL is held) that waits until vCPU 0 is blocked
 * on the BQL, then holds it HOLD_NS longer and ends the run. */
static void hold_timer_cb(void *opaque)
{
    RunResult *r = opaque;
    HoldTest *h = r->test;
    g_assert_true(bql_locked());
    if (testdev_counter(machine_find_device(r->machine, "testdev"), false) < 100) {
        /* The guest has not started hammering the test device yet. */
        timer_mod(h->timer, clock_get_ns(CLOCK_TYPE_REALTIME) + 10 * 1000 * 1000);
        return;
    }
    pid_t tid = cpu_thread_id(cpu_by_index(0));
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!thread_in_futex(tid)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(100);
    }
    int64_t t0 = clock_get_ns(CLOCK_TYPE_REALTIME);
    g_usleep(HOLD_NS / 1000);
    h->held_ns = clock_get_ns(CLOCK_TYPE_REALTIME) - t0;
    machine_request_exit(r->machine, 100);
}

static void hold_start(RunResult *r, EventLoop *loop)
{
    HoldTest *h = r->test;
    h->timer = timer_new(loop, CLOCK_TYPE_REALTIME, "hold-bql", hold_timer_cb, r);
    timer_mod(h->timer, clock_get_ns(CLOCK_TYPE_REALTIME) + 10 * 1000 * 1000);
}

static void hold_stop(RunResult *r, Machine *m)
{
    HoldTest *h = r->test;
    h->wait_ns = cpu_stats(cpu_by_index(0)).lock_wait_ns;
    h->pio_exits = exits_at(m, site_id("exit io:testdev.pio"));
}

/* The wait a timer causes is recorded at the exit site, at least as long as
 * the hold, and charged to the timer; with every hold timed ("full"), the
 * timer's hold is recorded too. */
static void test_stats_holder(gconstpointer data)
{
    const char *mode = data;
    bool full = strcmp(mode, "full") == 0;
    g_autofree char *k = payload("smp-counter");
    HoldTest h = {0};
    RunResult r = {.on_start = hold_start, .on_stop = hold_stop, .test = &h};
    run_vm(&r, (const char *[]){"-kernel", k, "-device", "testdev,lock=bql", "-append",
                                "m=100000000", "-stats-collect", mode, NULL});
    g_assert_cmpint(r.status, ==, 100);
    g_assert_cmpint(h.held_ns, >=, HOLD_NS);

    LockSite exit_site = site_id("exit io:testdev.pio"), timer = site_id("loop:hold-bql");
    LockStatCounters c = lockstat_snapshot_get(r.lockstats, bql_id(), exit_site);
    g_assert_cmpuint(c.contended, >=, 1);
    g_assert_cmpuint(c.wait_ns, >=, (uint64_t)h.held_ns);
    uint64_t waits;
    uint64_t by_timer = lockstat_snapshot_wait_by(r.lockstats, bql_id(), exit_site, timer, &waits);
    g_assert_cmpuint(by_timer, >=, (uint64_t)h.held_ns);
    g_assert_cmpuint(waits, >=, 1);
    /* One wait of at least the hold sits in a bucket at or above the hold's. */
    uint64_t long_waits = 0;
    for (unsigned b = lockstat_bucket(HOLD_NS); b < LOCKSTAT_BUCKETS; b++) {
        long_waits += c.wait_hist[b];
    }
    g_assert_cmpuint(long_waits, >=, 1);
    LockStatCounters t = lockstat_snapshot_get(r.lockstats, bql_id(), timer);
    g_assert_cmpuint(t.acquisitions, >=, 1);
    if (full) {
        g_assert_cmpuint(t.timed_holds, ==, t.acquisitions);
        g_assert_cmpuint(t.hold_ns, >=, (uint64_t)h.held_ns);
        g_assert_cmpuint(c.timed_holds, ==, c.acquisitions);
    } else {
        g_assert_cmpuint(c.timed_holds, <, c.acquisitions);
    }
    /* vCPU 0's own account, and its exits by site. */
    g_assert_cmpuint(h.wait_ns, >=, (uint64_t)h.held_ns);
    /* Two probe reads, then one exit per counter write. */
    g_assert_cmpuint(h.pio_exits, ==, r.counter[0] + 2);
    uint64_t exits = 0;
    for (int i = 0; i < VCPU_EXIT__MAX; i++) {
        exits += r.cpu[0].exits[i];
    }
    g_assert_cmpuint(r.cpu[0].timed_exits, >, 0);
    if (full) {
        g_assert_cmpuint(r.cpu[0].timed_exits, ==, exits);
        /* The wait was part of the handling of its exit. */
        g_assert_cmpuint(r.cpu[0].handle_ns, >=, (uint64_t)h.held_ns);
    } else {
        g_assert_cmpuint(r.cpu[0].timed_exits, <, exits);
    }
    g_assert_cmpuint(r.cpu[0].run_ns, >, 0);
    g_assert_cmpuint(r.cpu[0].handle_ns, >, 0);
    result_clear(&r);
}

typedef struct SiteCounts {
    uint64_t pio_exits, mmio_exits;
    MemoryRegionStats pio, mmio;
    unsigned dev_lock;
} SiteCounts;

static void site_counts_stop(RunResult *r, Machine *m)
{
    SiteCounts *sc = r->test;
    sc->pio_exits = exits_at(m, site_id("exit io:testdev.pio"));
    sc->mmio_exits = exits_at(m, site_id("exit mmio:testdev.mmio"));
    sc->pio = memory_region_stats(machine_find_device(m, "testdev")->regions->pdata[0]);
    sc->mmio = memory_region_stats(machine_find_device(m, "testdev")->regions->pdata[1]);
    sc->dev_lock = machine_find_device(m, "testdev")->lock.id;
}

/* Exits to a region under each policy: lock=bql takes the BQL once per
 * access, lock=device and lock=none never touch it. */
static void test_stats_policy(gconstpointer data)
{
    const char *lock = data;
    g_autofree char *k = payload("smp-counter");
    g_autofree char *dev = g_strdup_printf("testdev,lock=%s", lock);
    const uint64_t n = 2, m = 2000;
    SiteCounts sc = {0};
    RunResult r = {.on_stop = site_counts_stop, .test = &sc};
    run_vm(&r,
           (const char *[]){"-kernel", k, "-smp", "2", "-device", dev, "-append", "m=2000", NULL});
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(r.counter[0], ==, n * m);
    /* n * m counter writes, a probe read before and after the BSP's first
     * write, and a final read: per region. */
    const uint64_t accesses = n * m + 3;
    g_assert_cmpuint(sc.pio.accesses, ==, accesses);
    g_assert_cmpuint(sc.mmio.accesses, ==, accesses);
    g_assert_cmpuint(sc.pio_exits, ==, accesses);
    g_assert_cmpuint(sc.mmio_exits, ==, accesses);

    LockSite pio = site_id("exit io:testdev.pio"), mmio = site_id("exit mmio:testdev.mmio");
    LockStatCounters bp = lockstat_snapshot_get(r.lockstats, bql_id(), pio);
    LockStatCounters bm = lockstat_snapshot_get(r.lockstats, bql_id(), mmio);
    LockStatCounters dp = lockstat_snapshot_get(r.lockstats, sc.dev_lock, pio);
    LockStatCounters dm = lockstat_snapshot_get(r.lockstats, sc.dev_lock, mmio);
    if (strcmp(lock, "bql") == 0) {
        g_assert_cmpuint(bp.acquisitions, ==, accesses);
        g_assert_cmpuint(bm.acquisitions, ==, accesses);
        g_assert_cmpuint(sc.pio.bql_accesses, ==, accesses);
        g_assert_cmpuint(dp.acquisitions + dm.acquisitions, ==, 0);
    } else {
        g_assert_cmpuint(bp.acquisitions, ==, 0);
        g_assert_cmpuint(bm.acquisitions, ==, 0);
        g_assert_cmpuint(bp.hold_ns + bm.hold_ns, ==, 0);
        g_assert_cmpuint(sc.pio.bql_accesses + sc.mmio.bql_accesses, ==, 0);
        uint64_t dev_acq = strcmp(lock, "device") == 0 ? accesses : 0;
        g_assert_cmpuint(dp.acquisitions, ==, dev_acq);
        g_assert_cmpuint(dm.acquisitions, ==, dev_acq);
    }
    result_clear(&r);
}

typedef struct SwitchTest {
    const LockPolicy *cycle; /* policies to switch through, LOCK_POLICY_BQL-first */
    int ncycle;
    uint64_t counter_after; /* PIO counter when the last switch returned */
    SiteCounts sc;
} SwitchTest;

static uint64_t testdev_writes(Device *td)
{
    return testdev_counter(td, false) + testdev_counter(td, true);
}

/* 1000 policy switches while both vCPUs hammer the test device, each one
 * after the guest made a few more accesses, so that every policy sees some;
 * half made with the BQL held (as the monitor will), half without. */
static void *switch_driver(void *arg)
{
    RunResult *r = arg;
    SwitchTest *st = r->test;
    bql_lock();
    Device *td = machine_find_device(r->machine, "testdev");
    bql_unlock();
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
    uint64_t seen = 0;
    for (int i = 1; i <= 1000; i++) {
        while (testdev_writes(td) < seen + 20) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(20);
        }
        seen = testdev_writes(td);
        LockPolicy p = st->cycle[i % st->ncycle];
        if (i % 2) {
            bql_lock();
        }
        g_assert_true(device_set_lock_policy(td, p, NULL));
        if (i % 2) {
            bql_unlock();
        }
    }
    st->counter_after = testdev_writes(td);
    return NULL;
}

static void switch_stop(RunResult *r, Machine *m)
{
    SwitchTest *st = r->test;
    r->test = &st->sc;
    site_counts_stop(r, m);
    r->test = st;
}

static void test_stats_policy_switch(gconstpointer data)
{
    static const LockPolicy all[] = {LOCK_POLICY_BQL, LOCK_POLICY_DEVICE, LOCK_POLICY_NONE};
    static const LockPolicy two[] = {LOCK_POLICY_BQL, LOCK_POLICY_DEVICE};
    bool with_none = GPOINTER_TO_INT(data);
    SwitchTest st = {.cycle = with_none ? all : two, .ncycle = with_none ? 3 : 2};
    g_autofree char *k = payload("smp-counter");
    const uint64_t n = 2, m = 20000;
    RunResult r = {.driver = switch_driver, .on_stop = switch_stop, .test = &st};
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", "2", "-device", "testdev,lock=bql", "-append",
                                "m=20000", NULL});
    /* The guest checked the counters itself, and so do we. */
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(r.counter[0], ==, n * m);
    g_assert_cmpuint(r.counter[1], ==, n * m);
    /* The switches happened while the vCPUs were writing. */
    g_assert_cmpuint(st.counter_after, <, 2 * n * m);
    if (!with_none) {
        /* bql <-> device: never two accessors inside the device at once. */
        g_assert_cmpuint(r.overlaps, ==, 0);
    }
    g_assert_cmpuint(st.sc.pio.accesses, ==, n * m + 3);
    g_assert_cmpuint(st.sc.mmio.accesses, ==, n * m + 3);
    g_assert_cmpuint(st.sc.pio_exits, ==, n * m + 3);
    g_assert_cmpuint(st.sc.mmio_exits, ==, n * m + 3);
    g_assert_cmpuint(st.sc.pio.bql_accesses + st.sc.mmio.bql_accesses, >, 0);
    g_assert_cmpuint(st.sc.pio.bql_accesses + st.sc.mmio.bql_accesses, <,
                     st.sc.pio.accesses + st.sc.mmio.accesses);
    /* Every access made under the BQL took it (a race with a switch may take
     * it once more and start over). */
    LockSite pio = site_id("exit io:testdev.pio"), mmio = site_id("exit mmio:testdev.mmio");
    LockStatCounters bp = lockstat_snapshot_get(r.lockstats, bql_id(), pio);
    LockStatCounters bm = lockstat_snapshot_get(r.lockstats, bql_id(), mmio);
    g_assert_cmpuint(bp.acquisitions, >=, st.sc.pio.bql_accesses);
    g_assert_cmpuint(bm.acquisitions, >=, st.sc.mmio.bql_accesses);
    LockStatCounters sw =
        lockstat_snapshot_lock_total(r.lockstats, st.sc.dev_lock); /* device lock used too */
    g_assert_cmpuint(sw.acquisitions, >, 0);
    result_clear(&r);
}

/* The JSON document of -stats-file, as json-glib reads it. */
static JsonObject *load_json(JsonParser *parser, const char *path)
{
    g_autoptr(GError) err = NULL;
    if (!json_parser_load_from_file(parser, path, &err)) {
        g_error("%s: %s", path, err->message);
    }
    JsonNode *root = json_parser_get_root(parser);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
    return json_node_get_object(root);
}

static JsonObject *find_named(JsonArray *a, const char *member, const char *value)
{
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        if (g_strcmp0(json_object_get_string_member(o, member), value) == 0) {
            return o;
        }
    }
    return NULL;
}

static void check_histogram(JsonObject *o, const char *name, gint64 count)
{
    JsonArray *h = json_object_get_array_member(o, name);
    g_assert_cmpuint(json_array_get_length(h), ==, LOCKSTAT_BUCKETS);
    gint64 sum = 0;
    for (guint i = 0; i < LOCKSTAT_BUCKETS; i++) {
        sum += json_array_get_int_element(h, i);
    }
    g_assert_cmpint(sum, ==, count);
}

static void test_stats_json(void)
{
    g_autofree char *k = payload("smp-counter");
    g_autofree char *dir = g_dir_make_tmp("kvmloop-stats-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "stats.json", NULL);
    SiteCounts sc = {0};
    RunResult r = {.on_stop = site_counts_stop, .test = &sc};
    run_vm(&r,
           (const char *[]){"-kernel", k, "-smp", "2", "-device", "testdev,lock=device", "-append",
                            "m=500", "-stats-file", path, "-stats-collect", "full", NULL});
    g_assert_cmpint(r.status, ==, 1);

    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *doc = load_json(parser, path);
    g_assert_cmpstr(json_object_get_string_member(doc, "schema"), ==, "kvmloop-stats");
    g_assert_cmpint(json_object_get_int_member(doc, "version"), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(doc, "collection"), ==, "full");
    g_assert_cmpint(json_object_get_int_member(doc, "sample_rate"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(doc, "interval_ns"), >, 0);
    g_assert_cmpint(json_object_get_int_member(doc, "time_unix_ns"), >, 0);
    JsonArray *floors = json_object_get_array_member(doc, "histogram_floors_ns");
    g_assert_cmpuint(json_array_get_length(floors), ==, LOCKSTAT_BUCKETS);
    g_assert_cmpint(json_array_get_int_element(floors, 10), ==, 1024);

    /* Locks: the BQL and the test device's own, by site, with histograms. */
    JsonArray *locks = json_object_get_array_member(doc, "locks");
    JsonObject *bql = find_named(locks, "name", "BQL");
    g_assert_nonnull(bql);
    JsonObject *dev = find_named(locks, "name", "testdev");
    g_assert_nonnull(dev);
    gint64 acq = 0;
    JsonArray *sites = json_object_get_array_member(dev, "sites");
    JsonObject *pio = find_named(sites, "site", "exit io:testdev.pio");
    g_assert_nonnull(pio);
    g_assert_cmpint(json_object_get_int_member(pio, "acquisitions"), ==, 2 * 500 + 3);
    for (guint i = 0; i < json_array_get_length(sites); i++) {
        JsonObject *site = json_array_get_object_element(sites, i);
        gint64 a = json_object_get_int_member(site, "acquisitions");
        acq += a;
        check_histogram(site, "wait_histogram", a);
        check_histogram(site, "hold_histogram", a);
        g_assert_cmpint(json_object_get_int_member(site, "timed_holds"), ==, a);
        g_assert_cmpint(json_object_get_int_member(site, "contended"), <=, a);
        g_assert_cmpint(json_object_get_int_member(site, "wait_ns"), >=, 0);
        g_assert_cmpint(json_object_get_int_member(site, "hold_ns"), >, 0);
        g_assert_true(json_object_has_member(site, "waited_for"));
    }
    g_assert_cmpint(json_object_get_int_member(dev, "acquisitions"), ==, acq);
    g_assert_null(
        find_named(json_object_get_array_member(bql, "sites"), "site", "exit io:testdev.pio"));

    /* vCPUs: the same numbers the process saw. */
    JsonArray *vcpus = json_object_get_array_member(doc, "vcpus");
    g_assert_cmpuint(json_array_get_length(vcpus), ==, 2);
    for (int i = 0; i < 2; i++) {
        JsonObject *v = json_array_get_object_element(vcpus, i);
        g_assert_cmpint(json_object_get_int_member(v, "index"), ==, i);
        g_assert_cmpint(json_object_get_int_member(v, "thread_id"), >, 0);
        JsonObject *ex = json_object_get_object_member(v, "exits");
        g_assert_cmpint(json_object_get_int_member(ex, "io"), ==, r.cpu[i].exits[VCPU_EXIT_IO]);
        g_assert_cmpint(json_object_get_int_member(ex, "mmio"), ==, r.cpu[i].exits[VCPU_EXIT_MMIO]);
        g_assert_cmpint(json_object_get_int_member(v, "exits_total"), >, 0);
        g_assert_cmpint(json_object_get_int_member(v, "timed_exits"), >, 0);
        g_assert_cmpint(json_object_get_int_member(v, "run_ns"), >, 0);
        g_assert_cmpint(json_object_get_int_member(v, "handle_ns"), >, 0);
        g_assert_true(json_object_has_member(v, "lock_wait_ns"));
        g_assert_true(json_object_has_member(v, "kicks_seen"));
        g_assert_true(json_object_has_member(v, "user_cpu_ns"));
        g_assert_true(json_object_has_member(v, "sys_cpu_ns"));
        JsonObject *ps = find_named(json_object_get_array_member(v, "exits_by_site"), "site",
                                    "exit io:testdev.pio");
        g_assert_nonnull(ps);
        g_assert_cmpstr(json_object_get_string_member(ps, "reason"), ==, "io");
        g_assert_cmpstr(json_object_get_string_member(ps, "region"), ==, "testdev.pio");
        g_assert_cmpint(json_object_get_int_member(ps, "exits"), >=, 500);
    }

    /* Regions and address spaces. */
    JsonArray *regions = json_object_get_array_member(doc, "regions");
    JsonObject *tp = find_named(regions, "name", "testdev.pio");
    g_assert_nonnull(tp);
    g_assert_cmpstr(json_object_get_string_member(tp, "space"), ==, "io");
    g_assert_cmpstr(json_object_get_string_member(tp, "lock"), ==, "device");
    g_assert_cmpstr(json_object_get_string_member(tp, "site"), ==, "exit io:testdev.pio");
    g_assert_cmpint(json_object_get_int_member(tp, "base"), ==, 0x700);
    g_assert_cmpint(json_object_get_int_member(tp, "size"), ==, 0x10);
    g_assert_cmpint(json_object_get_int_member(tp, "accesses"), ==, (gint64)sc.pio.accesses);
    g_assert_cmpint(json_object_get_int_member(tp, "bql_accesses"), ==, 0);
    JsonObject *serial = find_named(regions, "name", "serial0.serial");
    g_assert_nonnull(serial);
    g_assert_cmpint(json_object_get_int_member(serial, "bql_accesses"), ==,
                    json_object_get_int_member(serial, "accesses"));
    JsonArray *spaces = json_object_get_array_member(doc, "address_spaces");
    g_assert_nonnull(find_named(spaces, "name", "io"));
    JsonObject *mem = find_named(spaces, "name", "memory");
    g_assert_nonnull(mem);
    g_assert_true(json_object_has_member(mem, "unassigned_reads"));
    g_assert_true(json_object_has_member(mem, "unassigned_writes"));
    g_assert_true(json_object_has_member(mem, "bad_size"));

    g_unlink(path);
    g_rmdir(dir);
    result_clear(&r);
}

#define HOST_FWAITS 3

/* The -stats table as the VM ends. */
static void print_stats_stop(RunResult *r, Machine *m)
{
    char **table = r->test;
    size_t len;
    FILE *f = open_memstream(table, &len);
    g_assert_nonnull(f);
    stats_print(m, f);
    fclose(f);
}

/* The emulation assists and the first guest entry reach the document as they
 * reach the -stats table; with assists off the document has no counts. */
static void test_stats_host(void)
{
    g_autofree char *k = payload("hello");
    g_autofree char *dir = g_dir_make_tmp("kvmloop-stats-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "stats.json", NULL);
    g_autofree char *append = g_strdup_printf("fwait=%d", HOST_FWAITS);
    /* A host with VMX/SVM runs fwait itself and never asks for an assist. */
    gint64 fwaits = kvm_host_emulates_guest_kernel(NULL, NULL) ? HOST_FWAITS : 0;
    g_autofree char *table = NULL;
    RunResult r = {.on_stop = print_stats_stop, .test = &table};
    run_vm(&r, (const char *[]){"-kernel", k, "-append", append, "-accel",
                                "kvm,emulation-assists=on", "-stats-file", path, NULL});
    g_assert_cmpint(r.status, ==, 1);

    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *doc = load_json(parser, path);
    g_assert_cmpint(json_object_get_int_member(doc, "version"), ==, 1);
    g_assert_cmpint(kvm_first_entry_ns(), >, 0);
    gint64 entry = kvm_first_entry_ns() - kvmloop_start_ns();
    g_assert_cmpint(json_object_get_int_member(doc, "first_guest_entry_ns"), ==, entry);
    g_autofree char *boot =
        g_strdup_printf("boot: first guest entry %.1f ms after kvmloop started\n", entry / 1e6);
    g_assert_nonnull(strstr(table, boot));

    JsonObject *v = json_array_get_object_element(json_object_get_array_member(doc, "vcpus"), 0);
    JsonObject *assists = json_object_get_object_member(v, "emulation_assists");
    g_assert_nonnull(assists);
    g_assert_cmpuint(json_object_get_size(assists), ==, KVM_ASSIST__MAX);
    for (int a = 0; a < KVM_ASSIST__MAX; a++) {
        g_assert_cmpint(json_object_get_int_member(assists, kvm_assist_names[a]), ==,
                        a == KVM_ASSIST_FWAIT ? fwaits : 0);
    }
    g_autofree char *row =
        g_strdup_printf("  %-6d %10d %10" G_GINT64_FORMAT " %10d\n", 0, 0, fwaits, 0);
    g_assert_nonnull(strstr(table, "emulation assists:\n"));
    g_assert_nonnull(strstr(table, row));
    result_clear(&r);
    g_clear_pointer(&table, free);

    /* Assists off: no counts in either (the guest runs no fwait now). */
    RunResult off = {.on_stop = print_stats_stop, .test = &table};
    run_vm(&off, (const char *[]){"-kernel", k, "-accel", "kvm,emulation-assists=off",
                                  "-stats-file", path, NULL});
    g_assert_cmpint(off.status, ==, 1);
    doc = load_json(parser, path);
    v = json_array_get_object_element(json_object_get_array_member(doc, "vcpus"), 0);
    g_assert_false(json_object_has_member(v, "emulation_assists"));
    g_assert_true(json_object_has_member(doc, "first_guest_entry_ns"));
    g_assert_null(strstr(table, "emulation assists"));
    g_clear_pointer(&table, free);

    g_unlink(path);
    g_rmdir(dir);
    result_clear(&off);
}

typedef struct SignalTest {
    const char *path;
    gint64 io_exits; /* vCPU 0's in the snapshot the signal wrote */
} SignalTest;

/* SIGUSR1 to the main loop's thread writes a snapshot while the VM runs. */
static void *sigusr1_driver(void *arg)
{
    RunResult *r = arg;
    SignalTest *st = r->test;
    CpuState *cpu = wait_cpu(r, 0);
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    while (cpu_stats(cpu).exits[VCPU_EXIT_IO] == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    pthread_kill(r->main_thread, SIGUSR1);
    for (;;) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_autoptr(JsonParser) parser = json_parser_new();
        if (json_parser_load_from_file(parser, st->path, NULL)) {
            JsonObject *doc = json_node_get_object(json_parser_get_root(parser));
            JsonObject *v0 =
                json_array_get_object_element(json_object_get_array_member(doc, "vcpus"), 0);
            JsonObject *ex = json_object_get_object_member(v0, "exits");
            st->io_exits = json_object_get_int_member(ex, "io");
            if (st->io_exits > 0) {
                break;
            }
        }
        g_usleep(1000);
    }
    machine_request_exit(r->machine, 100);
    return NULL;
}

static void test_stats_sigusr1(void)
{
    g_autofree char *k = payload("spin");
    g_autofree char *dir = g_dir_make_tmp("kvmloop-stats-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "stats.json", NULL);
    SignalTest st = {.path = path};
    RunResult r = {.driver = sigusr1_driver, .test = &st};
    run_vm(&r, (const char *[]){"-kernel", k, "-smp", "2", "-stats-file", path, NULL});
    g_assert_cmpint(r.status, ==, 100);
    g_assert_cmpint(st.io_exits, >, 0);
    g_unlink(path);
    g_rmdir(dir);
    result_clear(&r);
}

/* Doorbells: the same guest on each serving path, 2 vCPUs. */
typedef struct DoorbellCase {
    const char *device;
    const char *object; /* -object, or NULL */
    const char *append;
    uint64_t rings; /* per doorbell, through the ioeventfd */
    uint64_t exits; /* per doorbell, through vCPU exits */
    bool iothread;  /* served by iothread io0, without the BQL */
    bool irq;       /* the guest waits for the doorbell interrupt */
} DoorbellCase;

static void test_doorbell(gconstpointer data)
{
    const DoorbellCase *c = data;
    g_autofree char *k = payload("doorbell");
    const char *args[] = {"-kernel", k,         "-smp",    "2",       "-device", c->device,
                          "-append", c->append, "-object", c->object, NULL};
    if (!c->object) {
        args[8] = NULL;
    }
    RunResult r = {0};
    run_vm(&r, args);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.serial, c->irq ? "doorbell: irq ok" : "doorbell: done"));
    for (int i = 0; i < 2; i++) {
        g_assert_cmpuint(r.bell[i].eventfd, ==, c->rings);
        g_assert_cmpuint(r.bell[i].exits, ==, c->exits);
        /* Matched writes never reach the region: it sees only the others. */
        g_assert_cmpuint(r.bell_accesses[i], ==, c->exits);
        if (c->rings) {
            g_assert_cmpuint(r.bell[i].batches, >=, 1);
            g_assert_cmpuint(r.bell[i].batches, <=, c->rings);
            g_assert_cmpuint(r.bell[i].batches_bql, ==, c->iothread ? 0 : r.bell[i].batches);
        } else {
            g_assert_cmpuint(r.bell[i].batches, ==, 0);
        }
    }
    g_assert_cmpuint(r.bell[0].irqs, ==, 0);
    g_assert_cmpuint(r.bell[1].irqs, ==, c->irq ? 1 : 0);
    /* The vCPUs' exits to userspace: the unmatched doorbell writes, plus the
     * serial output, fw_cfg and the count polls (a few hundred at most). */
    uint64_t exits = total_exits(&r, VCPU_EXIT_IO) + total_exits(&r, VCPU_EXIT_MMIO);
    g_assert_cmpuint(exits, >=, 2 * c->exits);
    g_assert_cmpuint(exits, <, 2 * c->exits + 500);
    if (c->iothread) {
        g_assert_cmpint(r.iothread_tid, >, 0);
        g_assert_true(r.iothread_stopped);
    }
    result_clear(&r);
}

#define IOTHREAD_DEV "testdev,ioeventfd=on,iothread=io0"

static const struct {
    const char *path;
    DoorbellCase c;
} doorbell_cases[] = {
    {"/kvm/doorbell/exit", {.device = "testdev", .append = "n=500", .exits = 1000}},
    {"/kvm/doorbell/main-loop",
     {.device = "testdev,ioeventfd=on", .append = "n=500", .rings = 1000}},
    {"/kvm/doorbell/iothread-glib",
     {.device = IOTHREAD_DEV,
      .object = "iothread,id=io0,loop=glib",
      .append = "n=500",
      .rings = 1000,
      .iothread = true}},
    {"/kvm/doorbell/iothread-libevent",
     {.device = IOTHREAD_DEV,
      .object = "iothread,id=io0,loop=libevent",
      .append = "n=500",
      .rings = 1000,
      .iothread = true}},
    {"/kvm/doorbell/datamatch",
     {.device = IOTHREAD_DEV ",doorbell-data=7",
      .object = "iothread,id=io0",
      .append = "n=400 miss=100 data=7",
      .rings = 800,
      .exits = 200,
      .iothread = true}},
    {"/kvm/irqfd/irq-line",
     {.device = "testdev", .append = "n=500 irq=1", .exits = 1000, .irq = true}},
    {"/kvm/irqfd/main-loop",
     {.device = "testdev,ioeventfd=on", .append = "n=500 irq=1", .rings = 1000, .irq = true}},
    {"/kvm/irqfd/iothread-glib",
     {.device = IOTHREAD_DEV,
      .object = "iothread,id=io0,loop=glib",
      .append = "n=500 irq=1",
      .rings = 1000,
      .iothread = true,
      .irq = true}},
    {"/kvm/irqfd/iothread-libevent",
     {.device = IOTHREAD_DEV ",irq=9",
      .object = "iothread,id=io0,loop=libevent",
      .append = "n=500 irq=1 line=9",
      .rings = 1000,
      .iothread = true,
      .irq = true}},
};

/* Bad bindings are refused with a one-line reason; good ones come and go. */
static void check_eventfd_errors(RunResult *r, EventLoop *loop)
{
    static const struct {
        bool pio;
        gpa_t addr;
        unsigned size;
        bool datamatch;
        uint64_t data;
        const char *msg;
    } bad[] = {
        {true, 0x710, 4, false, 0, "File exists"}, /* testdev's own doorbell */
        {false, 0xfe001000, 4, false, 0, "File exists"},
        {true, 0x708, 3, false, 0, "size 3 is not 1, 2, 4 or 8"},
        {true, 0x708, 1, true, 0x100, "does not fit in a 1-byte write"},
        {true, 0x6f0, 4, false, 0, "no region holds it"},
        {true, 0x70e, 4, false, 0, "no region holds it"}, /* past the end of testdev.pio */
        {false, 0xd0000000, 8, false, 0, "no region holds it"},
    };
    Machine *m = r->machine;
    EventNotifier e;

    g_assert_cmpint(event_notifier_init(&e, false), ==, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        AddressSpace *as = bad[i].pio ? machine_pio(m) : machine_mmio(m);
        g_assert_false(machine_add_ioeventfd(m, as, bad[i].addr, bad[i].size, bad[i].datamatch,
                                             bad[i].data, &e, &err));
        g_assert_nonnull(err);
        g_assert_null(strchr(err->message, '\n'));
        if (!strstr(err->message, bad[i].msg)) {
            g_error("case %zu: '%s' does not say '%s'", i, err->message, bad[i].msg);
        }
    }
    g_autoptr(GError) err = NULL;
    g_assert_true(machine_add_ioeventfd(m, machine_pio(m), 0x708, 4, true, 5, &e, &err));
    /* Another value at the same place is another binding. */
    g_assert_true(machine_add_ioeventfd(m, machine_pio(m), 0x708, 4, true, 6, &e, &err));
    g_assert_false(machine_add_ioeventfd(m, machine_pio(m), 0x708, 4, true, 6, &e, &err));
    g_assert_nonnull(strstr(err->message, "File exists"));
    g_clear_error(&err);
    machine_del_ioeventfd(m, machine_pio(m), 0x708, 4, true, 5, &e);
    machine_del_ioeventfd(m, machine_pio(m), 0x708, 4, true, 6, &e);
    g_assert_true(machine_add_ioeventfd(m, machine_pio(m), 0x708, 4, true, 5, &e, &err));
    machine_del_ioeventfd(m, machine_pio(m), 0x708, 4, true, 5, &e);

    g_assert_false(machine_add_irqfd(m, 16, &e, &err));
    g_assert_nonnull(strstr(err->message, "ISA IRQ 16 is not 0 to 15"));
    g_clear_error(&err);
    g_assert_false(machine_add_irqfd(m, -1, &e, &err));
    g_clear_error(&err);
    g_assert_true(machine_add_irqfd(m, 10, &e, &err));
    machine_del_irqfd(m, 10, &e);
    g_assert_no_error(err);
    event_notifier_cleanup(&e);
    machine_request_exit(m, 100);
}

static void test_eventfd_errors(void)
{
    g_autofree char *k = payload("spin");
    RunResult r = {.on_start = check_eventfd_errors};
    run_vm(&r, (const char *[]){"-kernel", k, "-device", "testdev,ioeventfd=on", NULL});
    g_assert_cmpint(r.status, ==, 100);
    result_clear(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    guest_dir = kvm_test_init();
    static const CounterCase bql = {"bql", "0", 1000}, dev = {"device", "0", 1000},
                             none = {"none", "0", 1000}, bql_delay = {"bql", "20000", 200};

    g_test_add_func("/kvm/hello", test_hello);
    g_test_add_func("/kvm/smp-hello", test_smp_hello);
    g_test_add_func("/kvm/unassigned", test_unassigned);
    g_test_add_func("/kvm/uart-irq", test_uart_irq);
    g_test_add_func("/kvm/triple-fault", test_triple_fault);
    g_test_add_func("/kvm/bad-kernel", test_bad_kernel);
    g_test_add_data_func("/kvm/smp-counter/bql", &bql, test_smp_counter);
    g_test_add_data_func("/kvm/smp-counter/device", &dev, test_smp_counter);
    g_test_add_data_func("/kvm/smp-counter/none", &none, test_smp_counter);
    g_test_add_data_func("/kvm/smp-counter/bql-delay", &bql_delay, test_smp_counter);
    g_test_add_func("/kvm/kick", test_kick);
    g_test_add_func("/kvm/run-on-cpu", test_run_on_cpu);
    g_test_add_func("/kvm/pause-resume", test_pause_resume);
    g_test_add_func("/kvm/shutdown-race", test_shutdown_race);
    g_test_add_data_func("/kvm/stats/holder/on", "on", test_stats_holder);
    g_test_add_data_func("/kvm/stats/holder/full", "full", test_stats_holder);
    g_test_add_data_func("/kvm/stats/policy/bql", "bql", test_stats_policy);
    g_test_add_data_func("/kvm/stats/policy/device", "device", test_stats_policy);
    g_test_add_data_func("/kvm/stats/policy/none", "none", test_stats_policy);
    g_test_add_data_func("/kvm/stats/policy-switch/bql-device", GINT_TO_POINTER(0),
                         test_stats_policy_switch);
    g_test_add_data_func("/kvm/stats/policy-switch/all", GINT_TO_POINTER(1),
                         test_stats_policy_switch);
    g_test_add_func("/kvm/stats/json", test_stats_json);
    g_test_add_func("/kvm/stats/sigusr1", test_stats_sigusr1);
    g_test_add_func("/kvm/stats/host", test_stats_host);

    for (size_t i = 0; i < G_N_ELEMENTS(doorbell_cases); i++) {
        g_test_add_data_func(doorbell_cases[i].path, &doorbell_cases[i].c, test_doorbell);
    }
    g_test_add_func("/kvm/eventfd-errors", test_eventfd_errors);
    return g_test_run();
}
