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

/* The caller has just acquired @l for @site: @cell counts the hold if
 * @weight is not 0 (lockstat_sample()), timed from @now. */
static inline void klock_hold_begin(KLock *l, LockStatCell *cell, LockSite site, unsigned weight,
                                    int64_t now)
{
    l->acquired_ns = now;
    l->hold_cell = weight ? cell : NULL;
    l->hold_weight = weight;
    /* Relaxed: a waiter only needs some recent holder's site, and the store
     * goes to the line the mutex itself just wrote. */
    __atomic_store_n(&l->holder_site, site, __ATOMIC_RELAXED);
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
     * holder stores its site just after it acquires, so the site read here
     * may still be its predecessor's: watch it for a moment (a few hundred
     * nanoseconds, on the contended path only) and take a newer one. */
    LockSite holder = __atomic_load_n(&l->holder_site, __ATOMIC_RELAXED);
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        LockSite now = __atomic_load_n(&l->holder_site, __ATOMIC_RELAXED);
        if (now != holder) {
            holder = now;
            break;
        }
    }
    pthread_mutex_lock(&l->mutex);
    int64_t t1 = lockstat_now_ns();
    /* The clock was read anyway: every hold after a wait is timed. */
    klock_hold_begin(l, cell, site, 1, t1);
    lockstat_record_acquire(cell, true, (uint64_t)(t1 - t0), holder);
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
    LockSite site = __atomic_load_n(&l->holder_site, __ATOMIC_RELAXED);
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
        __atomic_store_n(&l->holder_site, site, __ATOMIC_RELAXED);
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
