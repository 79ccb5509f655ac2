/* Guest payloads on real KVM through kvmloop's own machine, vCPU and dispatch code. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "kvmloop/bql.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/eventfd.h"
#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/testdev.h"

#define MAX_CPUS 8

typedef struct RunResult RunResult;
struct RunResult {
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
    /* Optional checks on the main thread once the vCPUs started, BQL held. */
    void (*on_start)(struct RunResult *r);
    /* Optional work while the VM runs: a thread started by the started hook. */
    void *(*driver)(void *arg);
    void *driver_arg;
    pthread_t driver_thread;
    Machine *machine;
};

static const char *guest_dir;

static char *payload(const char *name)
{
    return g_strdup_printf("%s/%s.elf", guest_dir, name);
}

static void on_started(Machine *m, EventLoop *loop, void *opaque)
{
    RunResult *r = opaque;
    r->machine = m;
    IOThread *io = iothread_find("io0");
    if (io) {
        r->iothread_tid = iothread_thread_id(io);
    }
    if (r->on_start) {
        r->on_start(r);
    }
    if (r->driver) {
        g_assert_cmpint(pthread_create(&r->driver_thread, NULL, r->driver, r), ==, 0);
    }
}

static void count_bell_accesses(MemoryRegion *mr, void *opaque)
{
    if (g_str_has_prefix(mr->name, "testdev.doorbell-")) {
        *(uint64_t *)opaque += __atomic_load_n(&mr->accesses, __ATOMIC_RELAXED);
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
}

/* Run kvmloop on @argv (NULL-terminated, without argv[0]) plus a capturing
 * serial port and the debug-exit port the payloads use. */
static void run_vm(RunResult *r, const char *const *args)
{
    GPtrArray *argv = g_ptr_array_new();
    g_ptr_array_add(argv, "kvmloop");
    g_ptr_array_add(argv, "-serial");
    g_ptr_array_add(argv, "capture");
    g_ptr_array_add(argv, "-device");
    g_ptr_array_add(argv, "isa-debug-exit,iobase=0xf4,iosize=0x4");
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    VmConfig cfg;
    g_autoptr(GError) err = NULL;
    if (!vm_config_parse(&cfg, (int)argv->len, (char **)argv->pdata, &err)) {
        g_error("bad test command line: %s", err->message);
    }
    VmHooks hooks = {.started = on_started, .stopped = on_stopped, .opaque = r};
    r->status = vm_run_hooked(&cfg, &hooks);
    vm_config_clear(&cfg);
    g_ptr_array_free(argv, true);
}

static void result_clear(RunResult *r)
{
    g_free(r->serial);
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
static void check_eventfd_errors(RunResult *r)
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

static void require_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return;
    }
    if (g_getenv("CI")) {
        fprintf(stderr, "FAIL: /dev/kvm is not usable (%s) and CI needs these tests\n",
                g_strerror(errno));
        exit(1);
    }
    fprintf(stderr, "SKIP: /dev/kvm is not usable: %s\n", g_strerror(errno));
    exit(77);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    require_kvm();
    guest_dir = g_getenv("KVMLOOP_GUEST_DIR");
    if (!guest_dir) {
        g_error("KVMLOOP_GUEST_DIR is not set");
    }
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

    for (size_t i = 0; i < G_N_ELEMENTS(doorbell_cases); i++) {
        g_test_add_data_func(doorbell_cases[i].path, &doorbell_cases[i].c, test_doorbell);
    }
    g_test_add_func("/kvm/eventfd-errors", test_eventfd_errors);
    return g_test_run();
}
