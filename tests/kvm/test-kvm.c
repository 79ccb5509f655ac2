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
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/testdev.h"

#define MAX_CPUS 8

typedef struct RunResult {
    int status;
    char *serial;
    uint64_t counter[2];
    uint64_t overlaps;
    CpuStats cpu[MAX_CPUS];
    int ncpus;
    AddressSpaceStats io, mem;
    /* Optional work while the VM runs: a thread started by the started hook. */
    void *(*driver)(void *arg);
    void *driver_arg;
    pthread_t driver_thread;
    Machine *machine;
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
    if (r->driver) {
        g_assert_cmpint(pthread_create(&r->driver_thread, NULL, r->driver, r), ==, 0);
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
    }
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
    return g_test_run();
}
