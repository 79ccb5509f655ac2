/* Instrumented mutexes: acquisitions, contention, wait and hold time per lock. */
#include "kvmloop/klock.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int stats_on = 1;

/* Counters are written by the holder only and read by anyone without the
 * lock (a reader may hold it, or the lock it reports on may be the BQL). */
static inline void stat_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

int64_t klock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void klock_set_stats_enabled(bool on)
{
    __atomic_store_n(&stats_on, on ? 1 : 0, __ATOMIC_RELAXED);
}

bool klock_stats_enabled(void)
{
    return __atomic_load_n(&stats_on, __ATOMIC_RELAXED);
}

void klock_init(KLock *l, const char *name)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mutex, NULL);
    l->name = name;
}

void klock_destroy(KLock *l)
{
    pthread_mutex_destroy(&l->mutex);
}

void klock_lock(KLock *l)
{
    if (!klock_stats_enabled()) {
        pthread_mutex_lock(&l->mutex);
        l->acquired_ns = 0;
        return;
    }
    /* An uncontended acquisition costs one trylock and one clock read. */
    if (pthread_mutex_trylock(&l->mutex) == 0) {
        l->acquired_ns = klock_now_ns();
        stat_add(&l->stats.acquisitions, 1);
        return;
    }
    int64_t t0 = klock_now_ns();
    pthread_mutex_lock(&l->mutex);
    int64_t t1 = klock_now_ns();
    l->acquired_ns = t1;
    stat_add(&l->stats.acquisitions, 1);
    stat_add(&l->stats.contended, 1);
    stat_add(&l->stats.wait_ns, (uint64_t)(t1 - t0));
}

void klock_unlock(KLock *l)
{
    if (l->acquired_ns) {
        stat_add(&l->stats.hold_ns, (uint64_t)(klock_now_ns() - l->acquired_ns));
        l->acquired_ns = 0;
    }
    pthread_mutex_unlock(&l->mutex);
}

void klock_cond_wait(KLock *l, pthread_cond_t *cond)
{
    if (l->acquired_ns) {
        stat_add(&l->stats.hold_ns, (uint64_t)(klock_now_ns() - l->acquired_ns));
    }
    pthread_cond_wait(cond, &l->mutex);
    /* Waking up re-takes the mutex; count it as a (possibly contended) hold
     * start but not as a new acquisition. */
    l->acquired_ns = klock_stats_enabled() ? klock_now_ns() : 0;
}

KLockStats klock_stats(KLock *l)
{
    return (KLockStats){
        .acquisitions = __atomic_load_n(&l->stats.acquisitions, __ATOMIC_RELAXED),
        .contended = __atomic_load_n(&l->stats.contended, __ATOMIC_RELAXED),
        .wait_ns = __atomic_load_n(&l->stats.wait_ns, __ATOMIC_RELAXED),
        .hold_ns = __atomic_load_n(&l->stats.hold_ns, __ATOMIC_RELAXED),
    };
}

void klock_stats_reset(KLock *l)
{
    __atomic_store_n(&l->stats.acquisitions, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->stats.contended, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->stats.wait_ns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->stats.hold_ns, 0, __ATOMIC_RELAXED);
}
