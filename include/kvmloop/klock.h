/* Instrumented mutexes: the BQL and every device lock record who took them, waits and holds. */
#ifndef KVMLOOP_KLOCK_H
#define KVMLOOP_KLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "kvmloop/lockstat.h"

/* A lock's totals over every site (lockstat.h has them per site). */
typedef struct KLockStats {
    uint64_t acquisitions;
    uint64_t contended; /* acquisitions that had to wait */
    uint64_t wait_ns;   /* total time spent waiting to acquire */
    uint64_t hold_ns;   /* total time held (estimated unless LOCKSTAT_FULL) */
} KLockStats;

/* A mutex that records, per acquiring site, acquisitions, contention and
 * wait and hold histograms into the acquiring thread's own counters
 * (lockstat.h), and remembers the holder's site so that a waiter can say
 * whom it waited for. Not recursive. */
#define KLOCK_HOLDERS 4

typedef struct KLock {
    /* Everything an acquisition touches shares the mutex's cache line. */
    pthread_mutex_t mutex;
    /* The holder's bookkeeping, protected by @mutex. */
    int64_t acquired_ns;
    LockStatCell *hold_cell; /* NULL: this hold is not timed */
    /* For waiters, atomic: the last KLOCK_HOLDERS holders' records (thread
     * tag << 32 | site), the newest at holders[holder_gen % KLOCK_HOLDERS]. */
    uint32_t holder_gen;
    uint64_t holders[KLOCK_HOLDERS];
    unsigned hold_weight; /* lockstat_sample() of a timed hold */
    unsigned id;          /* lockstat lock id of @name */
    const char *name;
} KLock;

/* Initialise @l. Locks with the same @name (not copied) share statistics,
 * which start again from zero here. Any thread. */
void klock_init(KLock *l, const char *name);
void klock_destroy(KLock *l);
/* Take @l on behalf of @site. With statistics off this is
 * pthread_mutex_lock() and a store; sampled (the default), an uncontended
 * acquisition whose hold is not chosen for timing adds a trylock and a
 * counter, no clock read. Any thread. */
void klock_lock_site(KLock *l, LockSite site);
/* Take @l on behalf of the calling thread's default site
 * (lockstat_thread_set_site()). */
void klock_lock(KLock *l);
void klock_unlock(KLock *l);
/* Wait on @cond, releasing @l; the time asleep counts as neither wait nor
 * hold, and waking up is not a new acquisition. */
void klock_cond_wait(KLock *l, pthread_cond_t *cond);
/* @l's totals since the last reset. Takes the statistics registry's leaf
 * mutex, so callable while holding @l. Any thread. */
KLockStats klock_stats(KLock *l);
/* Zero @l's statistics (and those of every lock with its name). Any thread. */
void klock_stats_reset(KLock *l);

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
int64_t klock_now_ns(void);

#endif
