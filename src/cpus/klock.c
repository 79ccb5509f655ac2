/* Instrumented mutexes: per-site acquisitions, contention, wait and hold time, and the holder. */
#include "kvmloop/klock.h"

#include <string.h>

int64_t klock_now_ns(void)
{
    return lockstat_now_ns();
}

void klock_init(KLock *l, const char *name)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mutex, NULL);
    l->name = name;
    l->id = lockstat_lock_intern(name);
    lockstat_reset_lock(l->id);
}

void klock_destroy(KLock *l)
{
    pthread_mutex_destroy(&l->mutex);
}

/* A number for the calling thread, never 0, so a waiter can tell its own
 * old holder record from another thread's. */
static uint32_t klock_thread_tag(void)
{
    static uint32_t next = 1;
    static __thread uint32_t tag;
    if (!tag) {
        tag = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
    }
    return tag;
}

static uint64_t klock_holder_word(LockSite site)
{
    return (uint64_t)klock_thread_tag() << 32 | (uint32_t)site;
}

/* Record the caller, which has just acquired @l, as its holder at @site.
 * Relaxed: a waiter only needs some recent holder's site, and the stores go
 * next to the mutex, which the caller just wrote. */
static void klock_set_holder(KLock *l, LockSite site)
{
    uint32_t gen = l->holder_gen + 1;
    __atomic_store_n(&l->holders[gen % KLOCK_HOLDERS], klock_holder_word(site), __ATOMIC_RELAXED);
    __atomic_store_n(&l->holder_gen, gen, __ATOMIC_RELAXED);
}

/* The caller has just acquired @l for @site: @cell counts the hold if
 * @weight is not 0 (lockstat_sample()), timed from @now. */
static inline void klock_hold_begin(KLock *l, LockStatCell *cell, LockSite site, unsigned weight,
                                    int64_t now)
{
    l->acquired_ns = now;
    l->hold_cell = weight ? cell : NULL;
    l->hold_weight = weight;
    klock_set_holder(l, site);
}

void klock_lock_site(KLock *l, LockSite site)
{
    if (!lockstat_enabled()) {
        pthread_mutex_lock(&l->mutex);
        l->hold_cell = NULL;
        return;
    }
    LockStatCell *cell = lockstat_cell(l->id, site);
    if (pthread_mutex_trylock(&l->mutex) == 0) {
        /* Uncontended: no wait to time, and the hold only if sampled. */
        unsigned weight = lockstat_sample();
        klock_hold_begin(l, cell, site, weight, weight ? lockstat_now_ns() : 0);
        lockstat_record_acquire(cell, false, 0, 0);
        return;
    }
    int64_t t0 = lockstat_now_ns();
    /* The holder seen when the wait begins is the one it is charged to. A
     * holder writes its record just after it acquires, so the record read
     * here may still be its predecessor's: watch it for a moment (a few
     * hundred nanoseconds, on the contended path only) and take a newer
     * one. */
    uint32_t gen = __atomic_load_n(&l->holder_gen, __ATOMIC_RELAXED);
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        uint32_t now = __atomic_load_n(&l->holder_gen, __ATOMIC_RELAXED);
        if (now != gen) {
            gen = now;
            break;
        }
    }
    uint64_t holder = __atomic_load_n(&l->holders[gen % KLOCK_HOLDERS], __ATOMIC_RELAXED);
    pthread_mutex_lock(&l->mutex);
    int64_t t1 = lockstat_now_ns();
    /* A record of this very thread is stale for sure: its successor was
     * preempted before writing its own, for longer than the watch. Now that
     * no one else writes the records, take the one that came next. */
    if (holder >> 32 == klock_thread_tag()) {
        uint32_t last = l->holder_gen;
        uint32_t next = last - gen >= 1 && last - gen < KLOCK_HOLDERS ? gen + 1 : last;
        holder = l->holders[next % KLOCK_HOLDERS];
    }
    /* The clock was read anyway: every hold after a wait is timed. */
    klock_hold_begin(l, cell, site, 1, t1);
    lockstat_record_acquire(cell, true, (uint64_t)(t1 - t0), (LockSite)(uint32_t)holder);
}

void klock_lock(KLock *l)
{
    klock_lock_site(l, lockstat_thread_site());
}

void klock_unlock(KLock *l)
{
    LockStatCell *cell = l->hold_cell;
    if (cell) {
        lockstat_record_hold(cell, (uint64_t)(lockstat_now_ns() - l->acquired_ns), l->hold_weight);
        l->hold_cell = NULL;
    }
    pthread_mutex_unlock(&l->mutex);
}

void klock_cond_wait(KLock *l, pthread_cond_t *cond)
{
    LockStatCell *cell = l->hold_cell;
    unsigned weight = l->hold_weight;
    LockSite site = (LockSite)(uint32_t)l->holders[l->holder_gen % KLOCK_HOLDERS];
    if (cell) {
        lockstat_record_hold(cell, (uint64_t)(lockstat_now_ns() - l->acquired_ns), weight);
    }
    l->hold_cell = NULL;
    pthread_cond_wait(cond, &l->mutex);
    /* Others held @l meanwhile: make this thread the holder again, timing
     * the rest of its hold as the first part was. */
    if (cell && lockstat_enabled()) {
        klock_hold_begin(l, cell, site, weight, lockstat_now_ns());
    } else {
        l->hold_cell = NULL;
        klock_set_holder(l, site);
    }
}

KLockStats klock_stats(KLock *l)
{
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    LockStatCounters c = lockstat_snapshot_lock_total(s, l->id);
    return (KLockStats){
        .acquisitions = c.acquisitions,
        .contended = c.contended,
        .wait_ns = c.wait_ns,
        .hold_ns = c.hold_ns,
    };
}

void klock_stats_reset(KLock *l)
{
    lockstat_reset_lock(l->id);
}
