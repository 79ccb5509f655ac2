/* Lock statistics: buckets, sites, per-thread sums, holder attribution, the switch, reset. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>

#include "kvmloop/bql.h"
#include "kvmloop/klock.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/memory.h"
#include "kvmloop/rcu.h"

#define HOLD_NS (20 * 1000 * 1000)

/* True once thread @tid sleeps in futex(2), i.e. blocks on a mutex. */
static bool thread_in_futex(pid_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/syscall", (int)tid);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return false;
    }
    return strtol(text, NULL, 10) == SYS_futex;
}

/* Wait (up to 10 s) until @tid blocks on a lock. */
static void wait_until_blocked(const int *tid)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!__atomic_load_n(tid, __ATOMIC_ACQUIRE) ||
           !thread_in_futex(__atomic_load_n(tid, __ATOMIC_ACQUIRE))) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(100);
    }
}

static uint64_t hist_sum(const uint64_t *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < LOCKSTAT_BUCKETS; i++) {
        n += h[i];
    }
    return n;
}

static void test_buckets(void)
{
    g_assert_cmpuint(lockstat_bucket(0), ==, 0);
    g_assert_cmpuint(lockstat_bucket(1), ==, 0);
    g_assert_cmpuint(lockstat_bucket(2), ==, 1);
    g_assert_cmpuint(lockstat_bucket(3), ==, 1);
    g_assert_cmpuint(lockstat_bucket(4), ==, 2);
    g_assert_cmpuint(lockstat_bucket(1023), ==, 9);
    g_assert_cmpuint(lockstat_bucket(1024), ==, 10);
    g_assert_cmpuint(lockstat_bucket((1ULL << 35) - 1), ==, 34);
    g_assert_cmpuint(lockstat_bucket(1ULL << 35), ==, LOCKSTAT_BUCKETS - 1);
    g_assert_cmpuint(lockstat_bucket(UINT64_MAX), ==, LOCKSTAT_BUCKETS - 1);
    /* Every bucket's floor falls into that bucket, one less into the previous. */
    for (unsigned b = 1; b < LOCKSTAT_BUCKETS; b++) {
        g_assert_cmpuint(lockstat_bucket(lockstat_bucket_floor(b)), ==, b);
        g_assert_cmpuint(lockstat_bucket(lockstat_bucket_floor(b) - 1), ==, b - 1);
    }
    g_assert_cmpuint(lockstat_bucket_floor(0), ==, 0);
}

/* Weights: 1 in full mode; in sampled mode 0 or LOCKSTAT_SAMPLE_RATE, about
 * one time in LOCKSTAT_SAMPLE_RATE, and not in a short cycle. */
static void test_sample_weights(void)
{
    lockstat_set_mode(LOCKSTAT_FULL);
    g_assert_cmpuint(lockstat_sample(), ==, 1);
    lockstat_set_mode(LOCKSTAT_SAMPLED);
    unsigned hits = 0, run = 0, longest = 0;
    for (unsigned i = 0; i < 80000; i++) {
        unsigned w = lockstat_sample();
        g_assert_true(w == 0 || w == LOCKSTAT_SAMPLE_RATE);
        hits += w != 0;
        run = w ? 0 : run + 1;
        longest = MAX(longest, run);
    }
    g_assert_cmpuint(hits, >, 9000);
    g_assert_cmpuint(hits, <, 11000);
    g_assert_cmpuint(longest, >, 2 * LOCKSTAT_SAMPLE_RATE);
    lockstat_set_mode(LOCKSTAT_FULL);
}

static void test_intern(void)
{
    g_assert_cmpstr(lockstat_site_name(LOCKSITE_UNKNOWN), ==, "unknown");
    g_assert_cmpstr(lockstat_site_name(LOCKSITE_OVERFLOW), ==, "other");
    LockSite a = lockstat_site_intern("exit io:intern-a");
    LockSite b = lockstat_site_intern("exit io:intern-b");
    g_assert_cmpuint(a, !=, b);
    g_assert_cmpuint(a, >, LOCKSITE_OVERFLOW);
    g_assert_cmpuint(lockstat_site_intern("exit io:intern-a"), ==, a);
    g_assert_cmpstr(lockstat_site_name(a), ==, "exit io:intern-a");
    g_assert_cmpstr(lockstat_site_name(LOCKSTAT_MAX_SITES - 1), ==, "?");
    g_assert_cmpstr(lockstat_site_name(G_MAXUINT32), ==, "?");

    unsigned l = lockstat_lock_intern("intern-lock");
    g_assert_cmpuint(lockstat_lock_intern("intern-lock"), ==, l);
    g_assert_cmpstr(lockstat_lock_name(l), ==, "intern-lock");
    g_assert_cmpstr(lockstat_lock_name(LOCKSTAT_MAX_LOCKS), ==, "?");
}

/* A full table maps new names to "other" with one warning, and keeps working. */
static void test_intern_overflow(void)
{
    if (g_test_subprocess()) {
        g_log_set_always_fatal(G_LOG_FATAL_MASK);
        LockSite last = LOCKSITE_UNKNOWN;
        for (unsigned i = 0; i < LOCKSTAT_MAX_SITES + 10; i++) {
            g_autofree char *name = g_strdup_printf("site-%u", i);
            last = lockstat_site_intern(name);
        }
        g_assert_cmpuint(last, ==, LOCKSITE_OVERFLOW);
        g_assert_cmpuint(lockstat_site_intern("site-5"), !=, LOCKSITE_OVERFLOW);
        KLock l;
        klock_init(&l, "overflow");
        klock_lock_site(&l, last);
        klock_unlock(&l);
        g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
        g_assert_cmpuint(lockstat_snapshot_get(s, l.id, LOCKSITE_OVERFLOW).acquisitions, ==, 1);
        klock_destroy(&l);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*more than 1024 lock site names*");
}

/* ---- Per-thread counters ---------------------------------------------------- */

#define THREADS 4
#define ROUNDS  20000

typedef struct Worker {
    KLock *lock;
    LockSite site;
    LockSite access_site;
    pthread_barrier_t *done; /* all workers finished counting */
    pthread_barrier_t *go;   /* the main thread has checked: exit */
} Worker;

static void *worker_fn(void *arg)
{
    Worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        klock_lock_site(w->lock, w->site);
        klock_unlock(w->lock);
        lockstat_record_access(w->access_site, i % 2 == 0);
    }
    pthread_barrier_wait(w->done);
    pthread_barrier_wait(w->go);
    return NULL;
}

static void check_worker_totals(unsigned lock, const Worker *w)
{
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    for (int i = 0; i < THREADS; i++) {
        LockStatCounters c = lockstat_snapshot_get(s, lock, w[i].site);
        g_assert_cmpuint(c.acquisitions, ==, ROUNDS);
        g_assert_cmpuint(hist_sum(c.wait_hist), ==, ROUNDS);
        g_assert_cmpuint(hist_sum(c.hold_hist), ==, ROUNDS);
        g_assert_cmpuint(c.timed_holds, ==, ROUNDS);
        g_assert_cmpuint(c.contended, <=, ROUNDS);
        LockStatAccesses a = lockstat_snapshot_access(s, w[i].access_site, lock);
        g_assert_cmpuint(a.accesses, ==, ROUNDS);
        g_assert_cmpuint(a.bql_accesses, ==, ROUNDS / 2);
        /* Acquisitions at a site count as accesses too, of the BQL if it is @lock. */
        a = lockstat_snapshot_access(s, w[i].site, lock);
        g_assert_cmpuint(a.accesses, ==, ROUNDS);
        g_assert_cmpuint(a.bql_accesses, ==, ROUNDS);
    }
    LockStatCounters t = lockstat_snapshot_lock_total(s, lock);
    g_assert_cmpuint(t.acquisitions, ==, THREADS * ROUNDS);
    /* Waits charged to holders add up to the contended waits. */
    uint64_t waits = 0, wait_ns = 0;
    for (guint i = 0; i < s->holders->len; i++) {
        const LockStatHolderEntry *h = &g_array_index(s->holders, LockStatHolderEntry, i);
        if (h->lock == lock) {
            waits += h->waits;
            wait_ns += h->wait_ns;
        }
    }
    g_assert_cmpuint(waits, ==, t.contended);
    g_assert_cmpuint(wait_ns, ==, t.wait_ns);
}

/* Sums over live threads and, after they exit, over their folded blocks are exact. */
static void test_threads(void)
{
    KLock l;
    pthread_t t[THREADS];
    Worker w[THREADS];
    pthread_barrier_t done, go;

    klock_init(&l, "threads");
    pthread_barrier_init(&done, NULL, THREADS + 1);
    pthread_barrier_init(&go, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        g_autofree char *name = g_strdup_printf("worker%d", i);
        g_autofree char *access = g_strdup_printf("worker%d-access", i);
        w[i] = (Worker){.lock = &l,
                        .site = lockstat_site_intern(name),
                        .access_site = lockstat_site_intern(access),
                        .done = &done,
                        .go = &go};
        g_assert_cmpint(pthread_create(&t[i], NULL, worker_fn, &w[i]), ==, 0);
    }
    pthread_barrier_wait(&done);
    check_worker_totals(l.id, w);
    pthread_barrier_wait(&go);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    check_worker_totals(l.id, w);
    KLockStats ks = klock_stats(&l);
    g_assert_cmpuint(ks.acquisitions, ==, THREADS * ROUNDS);
    pthread_barrier_destroy(&done);
    pthread_barrier_destroy(&go);
    klock_destroy(&l);
}

/* ---- Holder attribution ------------------------------------------------------ */

typedef struct Holder {
    KLock *lock;
    LockSite site;
    int waiter_tid; /* atomic */
    int holding;    /* atomic */
    uint64_t waiter_wait_ns;
} Holder;

static void *holder_fn(void *arg)
{
    Holder *h = arg;
    klock_lock_site(h->lock, h->site);
    __atomic_store_n(&h->holding, 1, __ATOMIC_RELEASE);
    /* Hold for HOLD_NS from the moment the waiter is known to wait. */
    wait_until_blocked(&h->waiter_tid);
    g_usleep(HOLD_NS / 1000);
    klock_unlock(h->lock);
    return NULL;
}

static void test_holder(void)
{
    KLock l;
    pthread_t t;
    klock_init(&l, "holder");
    LockSite holder_site = lockstat_site_intern("test:holder");
    LockSite waiter_site = lockstat_site_intern("test:waiter");
    Holder h = {.lock = &l, .site = holder_site};

    lockstat_thread_set_wait_counter(&h.waiter_wait_ns);
    g_assert_cmpint(pthread_create(&t, NULL, holder_fn, &h), ==, 0);
    while (!__atomic_load_n(&h.holding, __ATOMIC_ACQUIRE)) {
        g_usleep(100);
    }
    __atomic_store_n(&h.waiter_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
    klock_lock_site(&l, waiter_site);
    klock_unlock(&l);
    pthread_join(t, NULL);
    lockstat_thread_set_wait_counter(NULL);

    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    LockStatCounters w = lockstat_snapshot_get(s, l.id, waiter_site);
    g_assert_cmpuint(w.acquisitions, ==, 1);
    g_assert_cmpuint(w.contended, ==, 1);
    g_assert_cmpuint(w.wait_ns, >=, HOLD_NS);
    g_assert_cmpuint(w.wait_hist[lockstat_bucket(w.wait_ns)], ==, 1);
    uint64_t waits;
    g_assert_cmpuint(lockstat_snapshot_wait_by(s, l.id, waiter_site, holder_site, &waits), ==,
                     w.wait_ns);
    g_assert_cmpuint(waits, ==, 1);
    g_assert_cmpuint(lockstat_snapshot_wait_by(s, l.id, waiter_site, waiter_site, NULL), ==, 0);
    LockStatCounters hc = lockstat_snapshot_get(s, l.id, holder_site);
    g_assert_cmpuint(hc.acquisitions, ==, 1);
    g_assert_cmpuint(hc.contended, ==, 0);
    g_assert_cmpuint(hc.hold_ns, >=, HOLD_NS);
    /* The waiting thread's own counter saw the same wait. */
    g_assert_cmpuint(h.waiter_wait_ns, ==, w.wait_ns);
    klock_destroy(&l);
}

/* A holder that is preempted between taking the mutex and writing its
 * record leaves the previous record in place. When that record is the
 * waiter's own (it held the lock last), the wait goes to the holder whose
 * record is there when the wait ends, never to the waiter itself. */
typedef struct LateHolder {
    KLock *lock;
    uint64_t record; /* what the holder writes, late */
    int waiter_tid;  /* atomic */
    int holding;     /* atomic */
} LateHolder;

static void *late_holder_fn(void *arg)
{
    LateHolder *h = arg;
    pthread_mutex_lock(&h->lock->mutex);
    __atomic_store_n(&h->holding, 1, __ATOMIC_RELEASE);
    wait_until_blocked(&h->waiter_tid);
    uint32_t gen = h->lock->holder_gen + 1;
    __atomic_store_n(&h->lock->holders[gen % KLOCK_HOLDERS], h->record, __ATOMIC_RELAXED);
    __atomic_store_n(&h->lock->holder_gen, gen, __ATOMIC_RELAXED);
    g_usleep(HOLD_NS / 1000);
    pthread_mutex_unlock(&h->lock->mutex);
    return NULL;
}

static void test_holder_late_record(void)
{
    KLock l;
    pthread_t t;
    klock_init(&l, "late-holder");
    LockSite late_site = lockstat_site_intern("test:late-holder");
    LockSite waiter_site = lockstat_site_intern("test:late-waiter");
    /* The record of a thread tag no real thread has. */
    LateHolder h = {.lock = &l, .record = (uint64_t)UINT32_MAX << 32 | late_site};

    klock_lock_site(&l, waiter_site); /* the waiter's own record is the last one */
    klock_unlock(&l);
    g_assert_cmpint(pthread_create(&t, NULL, late_holder_fn, &h), ==, 0);
    while (!__atomic_load_n(&h.holding, __ATOMIC_ACQUIRE)) {
        g_usleep(100);
    }
    __atomic_store_n(&h.waiter_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
    klock_lock_site(&l, waiter_site);
    klock_unlock(&l);
    pthread_join(t, NULL);

    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    LockStatCounters w = lockstat_snapshot_get(s, l.id, waiter_site);
    g_assert_cmpuint(w.contended, ==, 1);
    g_assert_cmpuint(w.wait_ns, >=, HOLD_NS);
    g_assert_cmpuint(lockstat_snapshot_wait_by(s, l.id, waiter_site, late_site, NULL), ==,
                     w.wait_ns);
    g_assert_cmpuint(lockstat_snapshot_wait_by(s, l.id, waiter_site, waiter_site, NULL), ==, 0);
    klock_destroy(&l);
}

/* A condition wait hands the lock to others and back without losing the
 * holder's site or counting a new acquisition. */
typedef struct CondCtx {
    KLock *lock;
    pthread_cond_t cond;
    LockSite site;
    int ready;
} CondCtx;

static void *cond_signaller(void *arg)
{
    CondCtx *c = arg;
    klock_lock_site(c->lock, c->site);
    c->ready = 1;
    pthread_cond_signal(&c->cond);
    klock_unlock(c->lock);
    return NULL;
}

static void test_cond_wait(void)
{
    KLock l;
    klock_init(&l, "cond");
    LockSite me = lockstat_site_intern("test:cond-waiter");
    CondCtx c = {.lock = &l, .site = lockstat_site_intern("test:cond-signaller")};
    pthread_cond_init(&c.cond, NULL);
    pthread_t t;

    klock_lock_site(&l, me);
    g_assert_cmpint(pthread_create(&t, NULL, cond_signaller, &c), ==, 0);
    while (!c.ready) {
        klock_cond_wait(&l, &c.cond);
    }
    g_assert_cmpuint((uint32_t)l.holders[l.holder_gen % KLOCK_HOLDERS], ==, me);
    klock_unlock(&l);
    pthread_join(t, NULL);

    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    g_assert_cmpuint(lockstat_snapshot_get(s, l.id, me).acquisitions, ==, 1);
    g_assert_cmpuint(lockstat_snapshot_get(s, l.id, c.site).acquisitions, ==, 1);
    pthread_cond_destroy(&c.cond);
    klock_destroy(&l);
}

/* ---- The switch and reset ------------------------------------------------------- */

static void test_disabled(void)
{
    KLock l;
    klock_init(&l, "disabled");
    LockSite site = lockstat_site_intern("test:disabled");
    lockstat_set_enabled(false);
    g_assert_false(lockstat_enabled());
    g_assert_cmpint(lockstat_mode(), ==, LOCKSTAT_OFF);
    for (int i = 0; i < 100; i++) {
        klock_lock_site(&l, site);
        klock_unlock(&l);
    }
    /* Switched on while held: this hold is not measured, the next one is. */
    klock_lock_site(&l, site);
    lockstat_set_mode(LOCKSTAT_FULL);
    klock_unlock(&l);
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    LockStatCounters c = lockstat_snapshot_get(s, l.id, site);
    g_assert_cmpuint(c.acquisitions, ==, 0);
    g_assert_cmpuint(c.hold_ns, ==, 0);
    g_assert_cmpuint(c.timed_holds, ==, 0);
    g_assert_cmpuint(hist_sum(c.hold_hist), ==, 0);
    g_assert_cmpuint(klock_stats(&l).acquisitions, ==, 0);

    klock_lock_site(&l, site);
    klock_unlock(&l);
    g_assert_cmpuint(klock_stats(&l).acquisitions, ==, 1);
    klock_destroy(&l);
}

/* Sampled: acquisitions exact, one uncontended hold in LOCKSTAT_SAMPLE_RATE
 * timed and counted that many times; full: every hold timed. */
static void test_sampled(void)
{
    const unsigned n = 80000;
    KLock l;
    klock_init(&l, "sampled");
    LockSite site = lockstat_site_intern("test:sampled");
    lockstat_set_mode(LOCKSTAT_SAMPLED);
    g_assert_cmpint(lockstat_mode(), ==, LOCKSTAT_SAMPLED);
    for (unsigned i = 0; i < n; i++) {
        klock_lock_site(&l, site);
        klock_unlock(&l);
    }
    lockstat_set_mode(LOCKSTAT_FULL);
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    g_assert_cmpint(s->mode, ==, LOCKSTAT_FULL);
    LockStatCounters c = lockstat_snapshot_get(s, l.id, site);
    g_assert_cmpuint(c.acquisitions, ==, n);
    g_assert_cmpuint(hist_sum(c.wait_hist), ==, n);
    /* About n / 8 timed (the chance of leaving this band is below 10^-12). */
    g_assert_cmpuint(c.timed_holds, >, n / LOCKSTAT_SAMPLE_RATE * 9 / 10);
    g_assert_cmpuint(c.timed_holds, <, n / LOCKSTAT_SAMPLE_RATE * 11 / 10);
    g_assert_cmpuint(hist_sum(c.hold_hist), ==, c.timed_holds * LOCKSTAT_SAMPLE_RATE);
    g_assert_cmpuint(c.hold_ns, >, 0);

    klock_stats_reset(&l);
    for (unsigned i = 0; i < 1000; i++) {
        klock_lock_site(&l, site);
        klock_unlock(&l);
    }
    g_autoptr(LockStatSnapshot) f = lockstat_snapshot();
    c = lockstat_snapshot_get(f, l.id, site);
    g_assert_cmpuint(c.timed_holds, ==, 1000);
    g_assert_cmpuint(hist_sum(c.hold_hist), ==, 1000);
    klock_destroy(&l);
}

/* The disabled switch also leaves the memory dispatcher's counters alone. */
static uint64_t nop_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void nop_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
}

static const MemoryRegionOps nop_ops = {.read = nop_read, .write = nop_write};

static void test_disabled_dispatch(void)
{
    rcu_thread_online();
    AddressSpace *as = address_space_new("io", 0x10000);
    MemoryRegion mr;
    uint8_t buf[4] = {0};
    memory_region_init(&mr, "disabled-dispatch", 4, &nop_ops, NULL, NULL);
    g_assert_true(address_space_add(as, &mr, 0x100, NULL));
    g_assert_cmpstr(lockstat_site_name(mr.site), ==, "exit io:disabled-dispatch");
    lockstat_set_enabled(false);
    g_assert_cmpint(address_space_rw(as, 0x100, buf, 1, true), ==, 0);
    lockstat_set_enabled(true);
    g_assert_cmpuint(memory_region_stats(&mr).accesses, ==, 0);
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    g_assert_cmpuint(lockstat_snapshot_get(s, bql_klock()->id, mr.site).acquisitions, ==, 0);
    g_assert_cmpint(address_space_rw(as, 0x100, buf, 1, true), ==, 0);
    MemoryRegionStats st = memory_region_stats(&mr);
    g_assert_cmpuint(st.accesses, ==, 1);
    g_assert_cmpuint(st.bql_accesses, ==, 1);
    address_space_remove(as, &mr);
    rcu_wait_readers();
    rcu_flush_callbacks();
    memory_region_destroy(&mr);
    address_space_free(as);
    rcu_thread_offline();
}

static void *count_then_exit(void *arg)
{
    Worker *w = arg;
    for (int i = 0; i < 10; i++) {
        klock_lock_site(w->lock, w->site);
        klock_unlock(w->lock);
    }
    return NULL;
}

static void test_reset(void)
{
    KLock l;
    pthread_t t;
    klock_init(&l, "reset");
    LockSite site = lockstat_site_intern("test:reset");
    Worker w = {.lock = &l, .site = site};

    /* Counts of an exited thread and of this one, then a reset. */
    g_assert_cmpint(pthread_create(&t, NULL, count_then_exit, &w), ==, 0);
    pthread_join(t, NULL);
    count_then_exit(&w);
    lockstat_record_access(site, true);
    g_assert_cmpuint(klock_stats(&l).acquisitions, ==, 20);
    lockstat_reset();
    {
        g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
        g_assert_cmpuint(lockstat_snapshot_get(s, l.id, site).acquisitions, ==, 0);
        g_assert_cmpuint(lockstat_snapshot_access(s, site, l.id).accesses, ==, 0);
        g_assert_cmpuint(s->locks->len, ==, 0);
        g_assert_cmpuint(s->holders->len, ==, 0);
        g_assert_cmpuint(s->accesses->len, ==, 0);
    }
    /* Only what came after counts, from live and exited threads alike. */
    g_assert_cmpint(pthread_create(&t, NULL, count_then_exit, &w), ==, 0);
    pthread_join(t, NULL);
    klock_lock_site(&l, site);
    klock_unlock(&l);
    g_assert_cmpuint(klock_stats(&l).acquisitions, ==, 11);
    /* A per-lock reset leaves the other locks alone. */
    KLock other;
    klock_init(&other, "reset-other");
    klock_lock_site(&other, site);
    klock_unlock(&other);
    klock_stats_reset(&l);
    g_assert_cmpuint(klock_stats(&l).acquisitions, ==, 0);
    g_assert_cmpuint(klock_stats(&other).acquisitions, ==, 1);
    klock_destroy(&other);
    klock_destroy(&l);
}

/* ---- Cost (only with -m perf) ------------------------------------------------------ */

static double lock_path_ns(KLock *l, LockSite site, int n)
{
    int64_t t0 = lockstat_now_ns();
    for (int i = 0; i < n; i++) {
        klock_lock_site(l, site);
        klock_unlock(l);
    }
    return (double)(lockstat_now_ns() - t0) / n;
}

static void test_perf(void)
{
    KLock l;
    klock_init(&l, "perf");
    LockSite site = lockstat_site_intern("test:perf");
    const int n = 2000000;
    for (int round = 0; round < 3; round++) {
        lockstat_set_enabled(false);
        double off = lock_path_ns(&l, site, n);
        lockstat_set_enabled(true);
        double on = lock_path_ns(&l, site, n);
        g_test_message("lock+unlock: statistics off %.1f ns, on %.1f ns (+%.1f ns)", off, on,
                       on - off);
    }
    int64_t t0 = lockstat_now_ns();
    for (int i = 0; i < n; i++) {
        (void)lockstat_now_ns();
    }
    g_test_message("lockstat_now_ns(): %.1f ns", (double)(lockstat_now_ns() - t0) / n);
    klock_destroy(&l);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* Every hold timed, so that totals are exact; test_sampled() checks the
     * default. */
    lockstat_set_mode(LOCKSTAT_FULL);
    g_test_add_func("/lockstat/buckets", test_buckets);
    g_test_add_func("/lockstat/sample-weights", test_sample_weights);
    g_test_add_func("/lockstat/intern", test_intern);
    g_test_add_func("/lockstat/intern-overflow", test_intern_overflow);
    g_test_add_func("/lockstat/threads", test_threads);
    g_test_add_func("/lockstat/holder", test_holder);
    g_test_add_func("/lockstat/holder-late-record", test_holder_late_record);
    g_test_add_func("/lockstat/cond-wait", test_cond_wait);
    g_test_add_func("/lockstat/disabled", test_disabled);
    g_test_add_func("/lockstat/sampled", test_sampled);
    g_test_add_func("/lockstat/disabled-dispatch", test_disabled_dispatch);
    g_test_add_func("/lockstat/reset", test_reset);
    if (g_test_perf()) {
        g_test_add_func("/lockstat/perf", test_perf);
    }
    return g_test_run();
}
