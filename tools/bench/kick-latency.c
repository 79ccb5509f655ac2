/* kick-latency: from cpu_kick() to the vCPU thread acting on it, beside a bare signal on KVM_RUN.
 */

/*
 * Two measurements of the same thing in one run, each over K kicks of a vCPU
 * that spins in the guest (tests/guest/spin.c, one vCPU):
 *
 *   kvmloop  the VM runs in this process (vm_run_hooked()); a thread takes
 *            the BQL and calls cpu_kick(); the time runs from the call to
 *            the moment the vCPU thread sees the exit request, as the kick
 *            recorder of src/cpus/cpus.c reports them.
 *   floor    the payload on bare KVM (rawkvm.c): a thread in KVM_RUN whose
 *            SIGUSR2 handler only sets immediate_exit; the time runs from
 *            just before pthread_kill() to KVM_RUN returning EINTR.
 *
 * Between kicks the kicker sleeps a random 0.5-1.5 gaps so that the vCPU is
 * back in the guest and the kicks do not fall into step with anything. With
 * R rounds the two paths take turns R times, K kicks each, so that a change
 * in host load touches both alike; the figures are over all R x K kicks.
 *
 * Usage: kick-latency [-kicks K] [-rounds R] [-gap-us G] [-kernel spin.elf]
 *                     [-json FILE]
 * Prints a markdown table on stdout; exits 1 if a kick got no answer within
 * 5 s, or a path reported other than one sample per kick.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvmloop/bql.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "rawkvm.h"

#define ACK_TIMEOUT_NS (5 * 1000000000LL)

typedef struct Samples {
    int64_t *ns;
    int want;
    int count; /* atomic: samples recorded */
    int extra; /* atomic: answers beyond one per kick */
} Samples;

typedef struct KickRun {
    Samples s;
    int first, kicks; /* this round's samples: s.ns[first .. first + kicks) */
    int gap_us;
    bool failed;
    Machine *machine;
    pthread_t thread;
    GRand *rand;
} KickRun;

static void samples_add(Samples *s, int64_t ns)
{
    int i = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
    if (i >= s->want) {
        __atomic_add_fetch(&s->extra, 1, __ATOMIC_RELAXED);
        return;
    }
    s->ns[i] = ns;
    /* Pairs with the acquire in wait_answer(): the sample is visible first. */
    __atomic_store_n(&s->count, i + 1, __ATOMIC_RELEASE);
}

/* Wait until sample @i exists; false after ACK_TIMEOUT_NS. */
static bool wait_answer(Samples *s, int i)
{
    int64_t deadline = klock_now_ns() + ACK_TIMEOUT_NS;
    while (__atomic_load_n(&s->count, __ATOMIC_ACQUIRE) <= i) {
        if (klock_now_ns() > deadline) {
            return false;
        }
        sched_yield();
    }
    return true;
}

static void sleep_gap(KickRun *k)
{
    int64_t us = k->gap_us / 2 + g_rand_int_range(k->rand, 0, k->gap_us + 1);
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- kvmloop: cpu_kick() with the kick recorder ---------------------- */

static void on_kick_ack(CpuState *cpu, int64_t kick_ns, int64_t ack_ns, void *opaque)
{
    samples_add(opaque, ack_ns - kick_ns);
}

/* Wait for the payload's "spinning" line: from then on the vCPU only spins. */
static bool wait_spinning(Machine *m)
{
    int64_t deadline = klock_now_ns() + 30 * 1000000000LL;
    while (klock_now_ns() < deadline) {
        size_t len = 0;
        bql_lock();
        const uint8_t *buf = chardev_captured(machine_serial(m, 0), &len);
        bool up = buf && g_strstr_len((const char *)buf, (gssize)len, "spinning") != NULL;
        bql_unlock();
        if (up) {
            return true;
        }
        g_usleep(10000);
    }
    return false;
}

static void *kvmloop_kicker(void *arg)
{
    KickRun *k = arg;

    if (!wait_spinning(k->machine)) {
        fprintf(stderr, "kick-latency: the spin payload did not start\n");
        k->failed = true;
    }
    bql_lock();
    CpuState *cpu = cpu_by_index(0);
    bql_unlock();
    for (int i = k->first; i < k->first + k->kicks && !k->failed; i++) {
        sleep_gap(k);
        bql_lock();
        cpu_kick(cpu);
        bql_unlock();
        if (!wait_answer(&k->s, i)) {
            fprintf(stderr, "kick-latency: kvmloop: kick %d got no answer\n", i);
            k->failed = true;
        }
    }
    cpu_set_kick_recorder(NULL, NULL);
    machine_request_exit(k->machine, 0);
    return NULL;
}

static void kvmloop_started(Machine *m, EventLoop *loop, void *opaque)
{
    KickRun *k = opaque;
    k->machine = m;
    cpu_set_kick_recorder(on_kick_ack, &k->s);
    if (pthread_create(&k->thread, NULL, kvmloop_kicker, k) != 0) {
        fprintf(stderr, "kick-latency: cannot create the kicker thread\n");
        k->failed = true;
        machine_request_exit(m, 1);
    }
}

static void kvmloop_stopped(Machine *m, int status, void *opaque)
{
    KickRun *k = opaque;
    bql_unlock();
    pthread_join(k->thread, NULL);
    bql_lock();
}

static bool run_kvmloop(KickRun *k, const char *kernel)
{
    const char *args[] = {"kick-latency", "-smp", "1",       "-m",     "64",
                          "-kernel",      kernel, "-serial", "capture"};
    VmConfig cfg;
    g_autoptr(GError) err = NULL;

    if (!vm_config_parse(&cfg, G_N_ELEMENTS(args), (char **)args, &err)) {
        fprintf(stderr, "kick-latency: %s\n", err->message);
        vm_config_clear(&cfg);
        return false;
    }
    VmHooks hooks = {.started = kvmloop_started, .stopped = kvmloop_stopped, .opaque = k};
    int status = vm_run_hooked(&cfg, &hooks);
    vm_config_clear(&cfg);
    return status == 0 && !k->failed;
}

/* ---- floor: pthread_kill() on a bare KVM_RUN ------------------------- */

typedef struct FloorRun {
    KickRun *k;
    RawVm vm;
    RawVcpu vcpu;
    int64_t kill_ns; /* atomic: stamped just before pthread_kill() */
    int stop;        /* atomic */
    bool error;
} FloorRun;

static __thread struct kvm_run *floor_run_of_thread;

static void floor_sig(int sig)
{
    /* A signal that lands just before KVM_RUN must still stop it. */
    if (floor_run_of_thread) {
        floor_run_of_thread->immediate_exit = 1;
    }
}

static void *floor_vcpu_thread(void *arg)
{
    FloorRun *f = arg;
    uint32_t code;

    floor_run_of_thread = f->vcpu.run;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        int r = rawvm_vcpu_run(&f->vcpu);
        if (r == -EINTR) {
            int64_t now = rawvm_now_ns();
            f->vcpu.run->immediate_exit = 0;
            int64_t kill = __atomic_exchange_n(&f->kill_ns, 0, __ATOMIC_ACQUIRE);
            if (kill) {
                samples_add(&f->k->s, now - kill);
            }
            continue;
        }
        RawVmVerdict v = rawvm_handle_exit(&f->vcpu, r, &code);
        if (v == RAWVM_ERROR || v == RAWVM_DEBUG_EXIT) {
            fprintf(stderr, "kick-latency: floor: the spin payload stopped\n");
            f->error = true;
            break;
        }
    }
    floor_run_of_thread = NULL;
    return NULL;
}

static bool floor_setup(FloorRun *f, const char *kernel)
{
    g_autoptr(GError) err = NULL;
    uint32_t entry, mbi;

    if (!rawvm_create(&f->vm, NULL, 64 << 20, 1, &err)) {
        fprintf(stderr, "kick-latency: floor: %s\n", err->message);
        return false;
    }
    f->vm.quiet = true;
    if (!rawvm_load_multiboot(&f->vm, kernel, "", &entry, &mbi, &err) ||
        !rawvm_vcpu_create(&f->vm, 0, &f->vcpu, &err)) {
        fprintf(stderr, "kick-latency: floor: %s\n", err->message);
        rawvm_destroy(&f->vm);
        return false;
    }
    if (!rawvm_vcpu_set_multiboot_entry(&f->vcpu, entry, mbi, &err)) {
        fprintf(stderr, "kick-latency: floor: %s\n", err->message);
        rawvm_vcpu_destroy(&f->vcpu);
        rawvm_destroy(&f->vm);
        return false;
    }
    return true;
}

static void floor_kicks(FloorRun *f, pthread_t t)
{
    KickRun *k = f->k;
    int64_t deadline = rawvm_now_ns() + 30 * 1000000000LL;

    /* "spinning\n": the payload's only output, after which it only spins. */
    while (__atomic_load_n(&f->vm.uart_bytes, __ATOMIC_RELAXED) < 9) {
        if (rawvm_now_ns() > deadline || f->error) {
            fprintf(stderr, "kick-latency: floor: the spin payload did not start\n");
            k->failed = true;
            return;
        }
        g_usleep(10000);
    }
    for (int i = k->first; i < k->first + k->kicks && !k->failed; i++) {
        sleep_gap(k);
        __atomic_store_n(&f->kill_ns, rawvm_now_ns(), __ATOMIC_RELEASE);
        pthread_kill(t, SIGUSR2);
        if (!wait_answer(&k->s, i)) {
            fprintf(stderr, "kick-latency: floor: kick %d got no answer\n", i);
            k->failed = true;
        }
    }
}

static bool run_floor(KickRun *k, const char *kernel)
{
    FloorRun f = {.k = k};
    struct sigaction sa = {.sa_handler = floor_sig}, old;
    pthread_t t;
    bool ok = false;

    /* No SA_RESTART: KVM_RUN returns EINTR. kvmloop's SIG_IPI is the same
     * signal; its handler comes back at the end. */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, &old);
    if (!floor_setup(&f, kernel)) {
        goto restore;
    }
    if (pthread_create(&t, NULL, floor_vcpu_thread, &f) != 0) {
        fprintf(stderr, "kick-latency: floor: cannot create the vCPU thread\n");
        goto destroy;
    }
    floor_kicks(&f, t);
    __atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
    pthread_kill(t, SIGUSR2);
    pthread_join(t, NULL);
    ok = !k->failed && !f.error;
destroy:
    rawvm_vcpu_destroy(&f.vcpu);
    rawvm_destroy(&f.vm);
restore:
    sigaction(SIGUSR2, &old, NULL);
    return ok;
}

/* ---- statistics and output -------------------------------------------- */

typedef struct Summary {
    const char *path;
    int n;
    double median_us, p99_us, mean_us, min_us, max_us;
} Summary;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile @p (0-100) of the @n sorted values @v. */
static double percentile_us(const int64_t *v, int n, double p)
{
    int rank = (int)(p / 100.0 * n + 0.999999);
    rank = CLAMP(rank, 1, n);
    return (double)v[rank - 1] / 1000.0;
}

static Summary summarize(const char *path, Samples *s)
{
    Summary r = {.path = path, .n = s->count};
    double sum = 0;
    if (s->count == 0) {
        return r;
    }
    qsort(s->ns, (size_t)s->count, sizeof(int64_t), cmp_i64);
    for (int i = 0; i < s->count; i++) {
        sum += (double)s->ns[i];
    }
    r.median_us = percentile_us(s->ns, s->count, 50);
    r.p99_us = percentile_us(s->ns, s->count, 99);
    r.mean_us = sum / s->count / 1000.0;
    r.min_us = (double)s->ns[0] / 1000.0;
    r.max_us = (double)s->ns[s->count - 1] / 1000.0;
    return r;
}

static bool write_json(const char *file, const Summary *sum, int n, int kicks, int gap_us)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "kick-latency: cannot write %s: %s\n", file, g_strerror(errno));
        return false;
    }
    fprintf(f, "{\n  \"benchmark\": \"kick-latency\",\n  \"kicks\": %d,\n  \"gap_us\": %d,\n",
            kicks, gap_us);
    fprintf(f, "  \"results\": [\n");
    for (int i = 0; i < n; i++) {
        fprintf(f,
                "    {\"path\": \"%s\", \"samples\": %d, \"median_us\": %.3f, \"p99_us\": %.3f, "
                "\"mean_us\": %.3f, \"min_us\": %.3f, \"max_us\": %.3f}%s\n",
                sum[i].path, sum[i].n, sum[i].median_us, sum[i].p99_us, sum[i].mean_us,
                sum[i].min_us, sum[i].max_us, i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: kick-latency [-kicks K] [-rounds R] [-gap-us G] [-kernel spin.elf] "
                 "[-json FILE]\n");
}

static bool parse_int(const char *opt, const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "kick-latency: %s: '%s' is not a number from %d to %d\n", opt, s, min, max);
        return false;
    }
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    int kicks = 1000, rounds = 5, gap_us = 500;
    const char *json = NULL;
    g_autofree char *kernel = NULL;

    for (int i = 1; i < argc; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "kick-latency: %s needs an argument\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (!strcmp(argv[i], "-kicks")) {
            if (!parse_int(argv[i], val, 1, 10000000, &kicks)) {
                return 2;
            }
        } else if (!strcmp(argv[i], "-rounds")) {
            if (!parse_int(argv[i], val, 1, 1000, &rounds)) {
                return 2;
            }
        } else if (!strcmp(argv[i], "-gap-us")) {
            if (!parse_int(argv[i], val, 10, 1000000, &gap_us)) {
                return 2;
            }
        } else if (!strcmp(argv[i], "-kernel")) {
            g_free(kernel);
            kernel = g_strdup(val);
        } else if (!strcmp(argv[i], "-json")) {
            json = val;
        } else {
            fprintf(stderr, "kick-latency: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!kernel) {
        const char *dir = g_getenv("KVMLOOP_GUEST_DIR");
        kernel = g_build_filename(dir ? dir : ".", "spin.elf", NULL);
    }

    Summary sum[2];
    bool ok = true;
    const char *paths[2] = {"floor", "kvmloop"};
    KickRun k[2];
    for (int p = 0; p < 2; p++) {
        k[p] = (KickRun){.gap_us = gap_us, .kicks = kicks, .rand = g_rand_new_with_seed(1234 + p)};
        k[p].s.want = kicks * rounds;
        k[p].s.ns = g_new0(int64_t, k[p].s.want);
    }
    for (int round = 0; round < rounds && ok; round++) {
        for (int p = 0; p < 2 && ok; p++) {
            k[p].first = round * kicks;
            ok = p == 0 ? run_floor(&k[p], kernel) : run_kvmloop(&k[p], kernel);
        }
    }
    for (int p = 0; p < 2; p++) {
        if (k[p].s.count != k[p].s.want || k[p].s.extra) {
            fprintf(stderr, "kick-latency: %s: %d answers to %d kicks (%d extra)\n", paths[p],
                    k[p].s.count, k[p].s.want, k[p].s.extra);
            ok = false;
        }
        sum[p] = summarize(paths[p], &k[p].s);
        g_free(k[p].s.ns);
        g_rand_free(k[p].rand);
    }

    if (!ok) {
        return 1; /* a one-line reason is on stderr; no table of partial figures */
    }
    printf("| kick path | kicks | median us | p99 us | mean us | min us | max us |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int p = 0; p < 2; p++) {
        printf("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", sum[p].path, sum[p].n,
               sum[p].median_us, sum[p].p99_us, sum[p].mean_us, sum[p].min_us, sum[p].max_us);
    }
    return json && !write_json(json, sum, 2, kicks * rounds, gap_us) ? 1 : 0;
}
