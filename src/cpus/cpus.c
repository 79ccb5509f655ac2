/* vCPU threads: KVM_RUN outside the BQL, the kick protocol, pause/resume, run_on_cpu. */
#include "kvmloop/cpus.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvmloop/bql.h"
#include "kvmloop/klock.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/rcu.h"

/* What the vCPU thread counts; CpuStats is derived from it. */
typedef struct CpuCounters {
    uint64_t exits[VCPU_EXIT__MAX];
    uint64_t kicks_seen;
    uint64_t lock_wait_ns;
    uint64_t timed;        /* exits timed while statistics were on */
    uint64_t exec_ns;      /* time in cpu_exec() while statistics were on: closed spans */
    uint64_t handle_ns;    /* handling time of the timed exits less their lock waits, weighted */
    uint64_t exec_wait_ns; /* lock waits while handling exits (all of them, exact) */
} CpuCounters;

typedef struct WorkItem {
    run_on_cpu_fn fn;
    void *data;
    bool done;
} WorkItem;

struct CpuState {
    int index;
    KvmVcpu *vcpu;
    cpu_event_fn on_event;
    void *opaque;
    pthread_t thread;
    pid_t tid;        /* written by the thread before "created" */
    int exit_request; /* atomic; see cpu_kick() */
    int64_t kick_ns;  /* atomic: the pending kick's time while a recorder is set, else 0 */

    /* Protected by the BQL. */
    bool thread_started;
    bool created;
    bool stop;        /* pause requested */
    bool stopped;     /* paused, out of the guest */
    bool parked;      /* stopped by an exit the machine must handle */
    bool stop_thread; /* leave the thread */
    bool exited;
    pthread_cond_t halt_cond;
    GQueue work;

    /* Written only by the vCPU thread, read atomically by anyone. */
    CpuCounters stats;
    int64_t exec_since;   /* the open span of stats.exec_ns began then; 0: none */
    uint64_t *site_exits; /* [LOCKSTAT_MAX_SITES] */
    int times_live;       /* the thread runs: its CPU times are in /proc */
    uint64_t times_final[2];

    /* The values at the last cpu_stats_reset(), atomic: readers subtract them. */
    CpuCounters base;
    uint64_t *site_base; /* [LOCKSTAT_MAX_SITES] */
    uint64_t times_base[2];
};

#define CPU_COUNTER_WORDS (sizeof(CpuCounters) / sizeof(uint64_t))

static GPtrArray *cpu_list; /* BQL */
static pthread_cond_t pause_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t created_cond = PTHREAD_COND_INITIALIZER;
static __thread CpuState *current_cpu;

/* The kick latency recorder; fn is published after opaque. */
static struct {
    cpu_kick_ack_fn fn;
    void *opaque;
} kick_recorder;

static void sig_ipi_handler(int sig)
{
    /* The kicker already set immediate_exit; setting it again here covers a
     * signal sent by anyone else. Async-signal-safe. */
    kvm_vcpu_signal_kick();
}

static void cpus_install_sig_ipi(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sig_ipi_handler;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: KVM_RUN must return EINTR. */
    sigaction(SIG_IPI, &sa, NULL);
}

void cpus_init_signals(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cpus_install_sig_ipi);
}

/* Owner-only updates of counters others read: no locked instruction. */
static inline void stat_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void stat_inc(uint64_t *p)
{
    stat_add(p, 1);
}

CpuState *cpu_new(KvmVcpu *vcpu, cpu_event_fn on_event, void *opaque)
{
    g_assert(bql_locked());
    CpuState *cpu = g_new0(CpuState, 1);
    cpu->index = kvm_vcpu_index(vcpu);
    cpu->vcpu = vcpu;
    cpu->on_event = on_event;
    cpu->opaque = opaque;
    pthread_cond_init(&cpu->halt_cond, NULL);
    g_queue_init(&cpu->work);
    cpu->site_exits = g_new0(uint64_t, LOCKSTAT_MAX_SITES);
    cpu->site_base = g_new0(uint64_t, LOCKSTAT_MAX_SITES);
    if (!cpu_list) {
        cpu_list = g_ptr_array_new();
    }
    g_ptr_array_add(cpu_list, cpu);
    return cpu;
}

int cpu_index(const CpuState *cpu)
{
    return cpu->index;
}

pid_t cpu_thread_id(const CpuState *cpu)
{
    return __atomic_load_n(&cpu->tid, __ATOMIC_ACQUIRE);
}

KvmVcpu *cpu_kvm_vcpu(CpuState *cpu)
{
    return cpu->vcpu;
}

bool cpu_is_self(const CpuState *cpu)
{
    return current_cpu == cpu;
}

/* @n counters minus their baselines. */
static void stats_since_reset(uint64_t *out, const uint64_t *cur, const uint64_t *base, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t c = __atomic_load_n(&cur[i], __ATOMIC_RELAXED);
        uint64_t b = __atomic_load_n(&base[i], __ATOMIC_RELAXED);
        out[i] = c >= b ? c - b : 0;
    }
}

/* The part of the vCPU's time in cpu_exec() not yet added to exec_ns. */
static uint64_t cpu_exec_open_ns(const CpuState *cpu)
{
    int64_t since = __atomic_load_n(&cpu->exec_since, __ATOMIC_ACQUIRE);
    int64_t now = since ? lockstat_now_ns() : 0;
    return since && now > since ? (uint64_t)(now - since) : 0;
}

CpuStats cpu_stats(const CpuState *cpu)
{
    CpuCounters c;
    stats_since_reset((uint64_t *)&c, (const uint64_t *)&cpu->stats, (const uint64_t *)&cpu->base,
                      CPU_COUNTER_WORDS);
    /* Heavy-tailed durations are measured, not sampled: the time between
     * exits (microseconds to seconds) and the lock waits while handling
     * them. Only the rest of the handling, which varies far less, is
     * estimated from the timed exits. KVM_RUN is what the handling leaves
     * of the time in cpu_exec(). */
    uint64_t exec = c.exec_ns + cpu_exec_open_ns(cpu);
    uint64_t handle = c.handle_ns + c.exec_wait_ns;
    CpuStats s = {
        .kicks_seen = c.kicks_seen,
        .lock_wait_ns = c.lock_wait_ns,
        .timed_exits = c.timed,
        .run_ns = exec > handle ? exec - handle : 0,
        .handle_ns = handle,
    };
    memcpy(s.exits, c.exits, sizeof(s.exits));
    return s;
}

void cpu_exits_by_site(const CpuState *cpu, uint64_t *counts, unsigned n)
{
    stats_since_reset(counts, cpu->site_exits, cpu->site_base, MIN(n, LOCKSTAT_MAX_SITES));
    for (unsigned i = LOCKSTAT_MAX_SITES; i < n; i++) {
        counts[i] = 0;
    }
}

/* utime and stime of thread @tid, from /proc (clock ticks). */
static bool read_thread_times(pid_t tid, uint64_t times[2])
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/stat", (int)tid);
    g_autofree char *buf = NULL;
    if (tid <= 0 || !g_file_get_contents(path, &buf, NULL, NULL)) {
        return false;
    }
    /* The name in parentheses may hold anything; the fields follow the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return false;
    }
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t tick_ns = hz > 0 ? 1000000000ULL / (uint64_t)hz : 10000000ULL;
    times[0] = ut * tick_ns;
    times[1] = st * tick_ns;
    return true;
}

/* The thread's times since it started, live or final. */
static bool cpu_times_raw(const CpuState *cpu, uint64_t times[2])
{
    /* Pairs with the release in cpu_thread_fn(): once the thread is gone
     * from /proc, its final times are visible. */
    if (__atomic_load_n(&cpu->times_live, __ATOMIC_ACQUIRE) &&
        read_thread_times(cpu_thread_id(cpu), times)) {
        return true;
    }
    if (!cpu_thread_id(cpu)) {
        return false;
    }
    times[0] = __atomic_load_n(&cpu->times_final[0], __ATOMIC_RELAXED);
    times[1] = __atomic_load_n(&cpu->times_final[1], __ATOMIC_RELAXED);
    return true;
}

bool cpu_thread_times(const CpuState *cpu, uint64_t *user_ns, uint64_t *sys_ns)
{
    uint64_t t[2], since[2];
    if (!cpu_times_raw(cpu, t)) {
        return false;
    }
    stats_since_reset(since, t, cpu->times_base, 2);
    *user_ns = since[0];
    *sys_ns = since[1];
    return true;
}

void cpu_stats_reset(CpuState *cpu)
{
    uint64_t *cur = (uint64_t *)&cpu->stats, *base = (uint64_t *)&cpu->base;
    for (unsigned i = 0; i < CPU_COUNTER_WORDS; i++) {
        __atomic_store_n(&base[i], __atomic_load_n(&cur[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    }
    /* The open span so far belongs before the reset. */
    __atomic_store_n(&cpu->base.exec_ns, cpu->base.exec_ns + cpu_exec_open_ns(cpu),
                     __ATOMIC_RELAXED);
    for (unsigned i = 0; i < LOCKSTAT_MAX_SITES; i++) {
        __atomic_store_n(&cpu->site_base[i], __atomic_load_n(&cpu->site_exits[i], __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
    }
    uint64_t t[2];
    if (cpu_times_raw(cpu, t)) {
        __atomic_store_n(&cpu->times_base[0], t[0], __ATOMIC_RELAXED);
        __atomic_store_n(&cpu->times_base[1], t[1], __ATOMIC_RELAXED);
    }
}

CpuState *cpu_by_index(int index)
{
    if (!cpu_list || index < 0 || (guint)index >= cpu_list->len) {
        return NULL;
    }
    return cpu_list->pdata[index];
}

int cpus_count(void)
{
    return cpu_list ? (int)cpu_list->len : 0;
}

void cpu_set_kick_recorder(cpu_kick_ack_fn fn, void *opaque)
{
    __atomic_store_n(&kick_recorder.opaque, opaque, __ATOMIC_RELAXED);
    /* Pairs with the acquire loads in cpu_kick() and cpu_kick_acked(). */
    __atomic_store_n(&kick_recorder.fn, fn, __ATOMIC_RELEASE);
}

void cpu_kick(CpuState *cpu)
{
    g_assert(bql_locked());
    if (__atomic_load_n(&kick_recorder.fn, __ATOMIC_ACQUIRE)) {
        /* Only the first of kicks the vCPU has not seen yet: it ends them all. */
        int64_t none = 0;
        __atomic_compare_exchange_n(&cpu->kick_ns, &none, klock_now_ns(), false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
    }
    /* The protocol: exit_request first, then immediate_exit, then the signal.
     * A vCPU about to enter KVM_RUN sees immediate_exit; one inside it gets
     * EINTR from the signal; one already out sees exit_request after
     * clearing immediate_exit (the seq_cst pair in kvm_vcpu_exec()). */
    __atomic_store_n(&cpu->exit_request, 1, __ATOMIC_SEQ_CST);
    kvm_vcpu_request_exit(cpu->vcpu);
    /* A vCPU out of the guest may be asleep in cpu_wait_io_event(). */
    pthread_cond_broadcast(&cpu->halt_cond);
    if (cpu->thread_started && !cpu->exited && !cpu_is_self(cpu)) {
        pthread_kill(cpu->thread, SIG_IPI);
    }
}

/* The vCPU thread has seen an exit request: report the kick's latency. The
 * kicker stored kick_ns before its seq_cst store of exit_request, which the
 * caller has read, so the stamp is visible here. */
static void cpu_kick_acked(CpuState *cpu)
{
    cpu_kick_ack_fn fn = __atomic_load_n(&kick_recorder.fn, __ATOMIC_ACQUIRE);
    if (!fn) {
        return;
    }
    int64_t now = klock_now_ns();
    int64_t kicked = __atomic_exchange_n(&cpu->kick_ns, 0, __ATOMIC_RELAXED);
    if (kicked) {
        fn(cpu, kicked, now, __atomic_load_n(&kick_recorder.opaque, __ATOMIC_RELAXED));
    }
}

/* Count an exit made with statistics on by site, and its lock waits (@wait
 * ns); if it was timed, count the rest of its handling time @weight times
 * (lockstat_sample()). */
static void cpu_account_exit(CpuState *cpu, const VcpuExit *ex, unsigned weight, uint64_t wait)
{
    if (ex->site != LOCKSITE_UNKNOWN && ex->site < LOCKSTAT_MAX_SITES) {
        stat_inc(&cpu->site_exits[ex->site]);
    }
    if (wait) {
        stat_add(&cpu->stats.exec_wait_ns, wait);
    }
    if (ex->timed) {
        int64_t now = lockstat_now_ns();
        uint64_t d = now > ex->run_end_ns ? (uint64_t)(now - ex->run_end_ns) : 0;
        stat_inc(&cpu->stats.timed);
        stat_add(&cpu->stats.handle_ns, (d > wait ? d - wait : 0) * weight);
    }
}

/* Open (@on) or close the span of cpu_exec() time counted in exec_ns; a
 * clock read only when statistics are switched, not per exit. */
static void cpu_exec_span(CpuState *cpu, bool on)
{
    int64_t since = cpu->exec_since;
    if (on && !since) {
        __atomic_store_n(&cpu->exec_since, lockstat_now_ns(), __ATOMIC_RELEASE);
    } else if (!on && since) {
        /* Closed before added: a reader in between misses the span for a
         * moment rather than counting it twice. */
        __atomic_store_n(&cpu->exec_since, 0, __ATOMIC_RELEASE);
        int64_t now = lockstat_now_ns();
        stat_add(&cpu->stats.exec_ns, now > since ? (uint64_t)(now - since) : 0);
    }
}

/* Run the guest until an exit that needs the BQL-side loop. No lock held. */
static VcpuVerdict cpu_exec(CpuState *cpu)
{
    VcpuVerdict v;
    for (;;) {
        if (__atomic_load_n(&cpu->exit_request, __ATOMIC_SEQ_CST)) {
            __atomic_store_n(&cpu->exit_request, 0, __ATOMIC_SEQ_CST);
            stat_inc(&cpu->stats.kicks_seen);
            cpu_kick_acked(cpu);
            v = VCPU_INTERRUPTED;
            break;
        }
        bool stats = lockstat_enabled();
        unsigned weight = stats ? lockstat_sample() : 0;
        VcpuExit ex = {.site = LOCKSITE_UNKNOWN, .timed = weight != 0};
        cpu_exec_span(cpu, stats);
        /* This thread is the only writer of its wait counter. */
        uint64_t waited = __atomic_load_n(&cpu->stats.lock_wait_ns, __ATOMIC_RELAXED);
        v = kvm_vcpu_exec(cpu->vcpu, &ex);
        stat_inc(&cpu->stats.exits[ex.reason]);
        if (stats) {
            waited = __atomic_load_n(&cpu->stats.lock_wait_ns, __ATOMIC_RELAXED) - waited;
            cpu_account_exit(cpu, &ex, weight, waited);
        }
        if (v != VCPU_CONTINUE && v != VCPU_INTERRUPTED) {
            break;
        }
    }
    cpu_exec_span(cpu, false);
    return v;
}

static bool cpu_can_run(const CpuState *cpu)
{
    return !cpu->stop && !cpu->stopped && !cpu->parked && !cpu->stop_thread;
}

/* Between guest runs, BQL held: acknowledge a pause, run queued work, sleep
 * while there is nothing to do. */
static void cpu_wait_io_event(CpuState *cpu)
{
    for (;;) {
        if (cpu->stop) {
            cpu->stop = false;
            cpu->stopped = true;
            pthread_cond_broadcast(&pause_cond);
        }
        while (!g_queue_is_empty(&cpu->work)) {
            WorkItem *wi = g_queue_pop_head(&cpu->work);
            wi->fn(cpu, wi->data);
            wi->done = true;
            pthread_cond_broadcast(&work_cond);
        }
        if (cpu_can_run(cpu) || cpu->stop_thread) {
            return;
        }
        bql_cond_wait(&cpu->halt_cond);
    }
}

static void *cpu_thread_fn(void *arg)
{
    CpuState *cpu = arg;

    rcu_thread_online();
    current_cpu = cpu;
    kvm_vcpu_bind_thread(cpu->vcpu);
    g_autofree char *name = g_strdup_printf("vcpu%d", cpu->index);
    pthread_setname_np(pthread_self(), name);
    /* Exits record their own sites; "vcpu" is the BQL of the outer loop. */
    lockstat_thread_set_site(lockstat_site_intern("vcpu"));
    lockstat_thread_set_wait_counter(&cpu->stats.lock_wait_ns);

    bql_lock();
    __atomic_store_n(&cpu->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    __atomic_store_n(&cpu->times_live, 1, __ATOMIC_RELEASE);
    cpu->created = true;
    pthread_cond_broadcast(&created_cond);
    while (!cpu->stop_thread) {
        if (cpu_can_run(cpu)) {
            bql_unlock();
            VcpuVerdict v = cpu_exec(cpu);
            bql_lock();
            if (v == VCPU_POWEROFF || v == VCPU_RESET || v == VCPU_FATAL) {
                cpu->parked = true;
                if (cpu->on_event) {
                    cpu->on_event(cpu->opaque, cpu, v);
                }
            }
        }
        cpu_wait_io_event(cpu);
    }
    cpu->exited = true;
    /* Whoever waits for a pause or for work must not wait for us. */
    pthread_cond_broadcast(&pause_cond);
    pthread_cond_broadcast(&work_cond);
    bql_unlock();
    lockstat_thread_set_wait_counter(NULL);
    uint64_t t[2];
    if (read_thread_times(cpu->tid, t)) {
        __atomic_store_n(&cpu->times_final[0], t[0], __ATOMIC_RELAXED);
        __atomic_store_n(&cpu->times_final[1], t[1], __ATOMIC_RELAXED);
    }
    /* Pairs with the acquire in cpu_times_raw(). */
    __atomic_store_n(&cpu->times_live, 0, __ATOMIC_RELEASE);
    kvm_vcpu_bind_thread(NULL);
    rcu_thread_offline();
    return NULL;
}

bool cpu_start(CpuState *cpu, GError **errp)
{
    g_assert(bql_locked());
    cpus_init_signals();

    /* The thread inherits this mask: SIG_IPI must be deliverable to it. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIG_IPI);
    pthread_sigmask(SIG_UNBLOCK, &set, &old);
    int r = pthread_create(&cpu->thread, NULL, cpu_thread_fn, cpu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(r),
                    "cannot create the thread of vCPU %d: %s", cpu->index, g_strerror(r));
        return false;
    }
    cpu->thread_started = true;
    while (!cpu->created) {
        bql_cond_wait(&created_cond);
    }
    return true;
}

bool all_vcpus_paused(void)
{
    for (guint i = 0; cpu_list && i < cpu_list->len; i++) {
        CpuState *cpu = cpu_list->pdata[i];
        if (cpu->thread_started && !cpu->exited && !cpu->stopped) {
            return false;
        }
    }
    return true;
}

void pause_all_vcpus(void)
{
    g_assert(bql_locked());
    g_assert(!current_cpu);
    for (guint i = 0; cpu_list && i < cpu_list->len; i++) {
        CpuState *cpu = cpu_list->pdata[i];
        if (!cpu->stopped) {
            cpu->stop = true;
            cpu_kick(cpu);
        }
    }
    while (!all_vcpus_paused()) {
        bql_cond_wait(&pause_cond);
    }
}

void resume_all_vcpus(void)
{
    g_assert(bql_locked());
    for (guint i = 0; cpu_list && i < cpu_list->len; i++) {
        CpuState *cpu = cpu_list->pdata[i];
        cpu->stop = false;
        cpu->stopped = false;
        cpu->parked = false; /* the machine handled the exit that parked it */
        pthread_cond_broadcast(&cpu->halt_cond);
    }
}

void run_on_cpu(CpuState *cpu, run_on_cpu_fn fn, void *data)
{
    g_assert(bql_locked());
    if (cpu_is_self(cpu) || !cpu->thread_started || cpu->exited) {
        /* No thread to run it on (not started or gone): the BQL is all the
         * exclusion the work needs. */
        fn(cpu, data);
        return;
    }
    WorkItem wi = {.fn = fn, .data = data};
    g_queue_push_tail(&cpu->work, &wi);
    pthread_cond_broadcast(&cpu->halt_cond);
    cpu_kick(cpu);
    while (!wi.done && !cpu->exited) {
        bql_cond_wait(&work_cond);
    }
    if (!wi.done) {
        g_queue_remove(&cpu->work, &wi);
        fn(cpu, data);
    }
}

void cpus_destroy_all(void)
{
    g_assert(bql_locked());
    if (!cpu_list) {
        return;
    }
    for (guint i = 0; i < cpu_list->len; i++) {
        CpuState *cpu = cpu_list->pdata[i];
        cpu->stop_thread = true;
        pthread_cond_broadcast(&cpu->halt_cond);
        cpu_kick(cpu);
    }
    bql_unlock();
    for (guint i = 0; i < cpu_list->len; i++) {
        CpuState *cpu = cpu_list->pdata[i];
        if (cpu->thread_started) {
            pthread_join(cpu->thread, NULL);
        }
    }
    bql_lock();
    for (guint i = 0; i < cpu_list->len; i++) {
        CpuState *cpu = cpu_list->pdata[i];
        pthread_cond_destroy(&cpu->halt_cond);
        g_queue_clear(&cpu->work);
        g_free(cpu->site_exits);
        g_free(cpu->site_base);
        g_free(cpu);
    }
    g_ptr_array_free(cpu_list, true);
    cpu_list = NULL;
}
