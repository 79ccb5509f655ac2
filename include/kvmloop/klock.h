/* Instrumented mutexes: the BQL and every device lock count their waits and holds. */
#ifndef KVMLOOP_KLOCK_H
#define KVMLOOP_KLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct KLockStats {
    uint64_t acquisitions;
    uint64_t contended; /* acquisitions that had to wait */
    uint64_t wait_ns;   /* total time spent waiting to acquire */
    uint64_t hold_ns;   /* total time held */
} KLockStats;

/* A mutex whose statistics are updated by the holder, so they cost no extra
 * shared cache line. Not recursive. */
typedef struct KLock {
    pthread_mutex_t mutex;
    const char *name;
    KLockStats stats;    /* written atomically by the holder only */
    int64_t acquired_ns; /* when the current holder got it */
} KLock;

void klock_init(KLock *l, const char *name);
void klock_destroy(KLock *l);
void klock_lock(KLock *l);
void klock_unlock(KLock *l);
/* Wait on @cond, releasing @l; the time asleep counts as neither wait nor hold. */
void klock_cond_wait(KLock *l, pthread_cond_t *cond);
/* A copy of the counters; lock-free, so callable while holding @l. Any thread. */
KLockStats klock_stats(KLock *l);
void klock_stats_reset(KLock *l);

/* Switch statistics off and on process-wide (default on). Any thread. */
void klock_set_stats_enabled(bool on);
bool klock_stats_enabled(void);

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
int64_t klock_now_ns(void);

#endif
