/* Lock and access statistics: interned sites, per-thread counters, log2 histograms, snapshots. */
#ifndef KVMLOOP_LOCKSTAT_H
#define KVMLOOP_LOCKSTAT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/types.h"

/* Histograms of nanoseconds: bucket 0 holds [0, 2), bucket i holds
 * [2^i, 2^(i+1)), and the last bucket is open-ended (2^35 ns = 34.4 s and up). */
#define LOCKSTAT_BUCKETS   36
#define LOCKSTAT_MAX_SITES 1024
#define LOCKSTAT_MAX_LOCKS 256

/* Sites every process has. */
#define LOCKSITE_UNKNOWN  0 /* "unknown": a thread that named no default site */
#define LOCKSITE_OVERFLOW 1 /* "other": every name interned once the table is full */

/* How much is collected. */
typedef enum {
    LOCKSTAT_OFF,     /* locks only lock; nothing is recorded */
    LOCKSTAT_SAMPLED, /* everything counted; 1 in LOCKSTAT_SAMPLE_RATE holds and exits timed */
    LOCKSTAT_FULL,    /* every hold and every exit timed */
} LockStatMode;

/* With LOCKSTAT_SAMPLED, one uncontended hold in this many (chosen at
 * random), every hold that follows a wait, and one exit in this many have
 * their duration measured; each measured one is counted this many times
 * (its inverse probability), so totals and histograms are unbiased
 * estimates. Counts of acquisitions, contention, waits and exits are exact. */
#define LOCKSTAT_SAMPLE_RATE 8

/* What every instrumented path reads, in one cache line: internal. */
typedef struct LockStatGlobal {
    int on;          /* atomic: mode != LOCKSTAT_OFF */
    unsigned rate;   /* atomic: 1 (full) or LOCKSTAT_SAMPLE_RATE */
    int clock_ready; /* atomic: the clock fields are set (lockstat_clock_slow()) */
    bool tsc;        /* durations come from RDTSC, scaled */
    uint64_t tsc0;
    int64_t ns0;
    uint64_t mult; /* ns = ticks * mult >> 32 */
} __attribute__((aligned(64))) LockStatGlobal;
extern LockStatGlobal lockstat_global;
int64_t lockstat_clock_slow(void);

static inline bool lockstat_enabled(void)
{
    return __atomic_load_n(&lockstat_global.on, __ATOMIC_RELAXED);
}

/* Set the mode for every thread (default LOCKSTAT_SAMPLED). Any thread. */
void lockstat_set_mode(LockStatMode mode);
LockStatMode lockstat_mode(void);
/* lockstat_set_mode(@on ? LOCKSTAT_SAMPLED : LOCKSTAT_OFF). */
void lockstat_set_enabled(bool on);

/* The calling thread's sampling state: internal. */
extern __thread uint32_t lockstat_rng;
uint32_t lockstat_rng_seed(void);

/* Whether to time the next hold or exit: 0 for no, else the weight to count
 * it with (1 in full mode, LOCKSTAT_SAMPLE_RATE for the one in that many
 * chosen at random). Calling thread's state, no lock. */
static inline unsigned lockstat_sample(void)
{
    unsigned rate = __atomic_load_n(&lockstat_global.rate, __ATOMIC_RELAXED);
    if (rate <= 1) {
        return 1;
    }
    /* xorshift32: random enough that no periodic pattern in a guest's
     * exits can line up with the choice. */
    uint32_t x = lockstat_rng;
    if (__builtin_expect(x == 0, 0)) {
        x = lockstat_rng_seed();
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    lockstat_rng = x;
    return (x & (rate - 1)) == 0 ? rate : 0;
}

/* CLOCK_MONOTONIC in nanoseconds: the clock of every duration recorded here.
 * When the kernel keeps time with the TSC (clocksource "tsc"), read from the
 * TSC directly and scaled with a rate measured against CLOCK_MONOTONIC over
 * 2 ms at first use: about half the cost of clock_gettime(). Any thread. */
static inline int64_t lockstat_now_ns(void)
{
    /* Pairs with the release in lockstat_clock_slow(). */
    if (__builtin_expect(__atomic_load_n(&lockstat_global.clock_ready, __ATOMIC_ACQUIRE) &&
                             lockstat_global.tsc,
                         1)) {
        uint64_t ticks = __builtin_ia32_rdtsc() - lockstat_global.tsc0;
        return lockstat_global.ns0 +
               (int64_t)(((unsigned __int128)ticks * lockstat_global.mult) >> 32);
    }
    return lockstat_clock_slow();
}

/* The id of site @name ("exit io:serial0.serial", "loop:NAME", "main"), the
 * same for equal names for the life of the process. Takes a mutex: call it
 * once per site and keep the id. Past LOCKSTAT_MAX_SITES names every new name
 * maps to LOCKSITE_OVERFLOW (with one warning). Any thread. */
LockSite lockstat_site_intern(const char *name);
/* The name of @site ("?" for an id never handed out). Lock-free; any thread. */
const char *lockstat_site_name(LockSite site);

/* The id of the lock called @name: locks with equal names share their
 * statistics. Same rules as lockstat_site_intern(); past LOCKSTAT_MAX_LOCKS
 * names every new one maps to lock 0 (the first lock interned). */
unsigned lockstat_lock_intern(const char *name);
const char *lockstat_lock_name(unsigned lock);

/* The histogram bucket of @ns, and the smallest value bucket @b holds. */
unsigned lockstat_bucket(uint64_t ns);
uint64_t lockstat_bucket_floor(unsigned b);

/* The site klock_lock() and bql_lock() record on the calling thread (default
 * LOCKSITE_UNKNOWN). Calling thread only. */
void lockstat_thread_set_site(LockSite site);
LockSite lockstat_thread_site(void);
/* From now on the calling thread also adds every wait for a lock to
 * *@counter (NULL: stop), with relaxed atomic stores, so the owner of
 * @counter can read it from any thread. Calling thread only. */
void lockstat_thread_set_wait_counter(uint64_t *counter);

/* ---- Recording: for KLock and the memory dispatcher ---------------------
 * Each thread writes only its own counters (relaxed atomic stores to lines no
 * other thread writes); readers sum every thread's counters. The first call
 * on a thread registers its counters (one mutex); a thread's counters are
 * folded into a process-wide total when it exits, so nothing is lost. */

typedef struct LockStatCell LockStatCell;

/* The calling thread's counters for (@lock, @site). Valid on this thread
 * until it exits. */
LockStatCell *lockstat_cell(unsigned lock, LockSite site);
/* One acquisition through @cell after waiting @wait_ns (0 when the lock was
 * free). A contended one is also charged to @holder, the site that held the
 * lock when the wait began. Thread of lockstat_cell(). */
void lockstat_record_acquire(LockStatCell *cell, bool contended, uint64_t wait_ns, LockSite holder);
/* A timed hold, counted @weight times (lockstat_sample()). */
void lockstat_record_hold(LockStatCell *cell, uint64_t hold_ns, unsigned weight);
/* Region accesses are counted where that costs least: an access that takes
 * a lock is that lock's acquisition at the region's exit site. The others
 * (no lock, or the BQL already held by the caller, @with_bql) are counted
 * here, and so is an acquisition at @site given up because the region's
 * policy changed meanwhile (a retry; @bql if it was the BQL). Any thread
 * (its own counters). */
void lockstat_record_access(LockSite site, bool with_bql);
void lockstat_record_retry(LockSite site, bool bql);

/* ---- Reading ----------------------------------------------------------- */

typedef struct LockStatCounters {
    uint64_t acquisitions;
    uint64_t contended;                   /* acquisitions that found the lock taken */
    uint64_t wait_ns;                     /* total wait of the contended ones */
    uint64_t wait_hist[LOCKSTAT_BUCKETS]; /* every acquisition; uncontended ones in bucket 0 */
    uint64_t timed_holds;                 /* holds whose duration was measured */
    uint64_t hold_ns;                     /* total hold time: exact in full mode, else estimated */
    uint64_t hold_hist[LOCKSTAT_BUCKETS]; /* holds per bucket, the same way */
} LockStatCounters;

typedef struct LockStatLockEntry {
    unsigned lock;
    LockSite site;
    LockStatCounters c;
} LockStatLockEntry;

/* Waits of @site for @lock while @holder held it. */
typedef struct LockStatHolderEntry {
    unsigned lock;
    LockSite site;
    LockSite holder;
    uint64_t waits;
    uint64_t wait_ns;
} LockStatHolderEntry;

/* What lockstat_record_access() and lockstat_record_retry() counted. */
typedef struct LockStatAccessEntry {
    LockSite site;
    uint64_t unlocked;     /* accesses that took no lock themselves */
    uint64_t unlocked_bql; /* of which with the BQL held */
    uint64_t retries;
    uint64_t bql_retries;
} LockStatAccessEntry;

/* The accesses of a region. */
typedef struct LockStatAccesses {
    uint64_t accesses;
    uint64_t bql_accesses; /* made with the BQL held */
} LockStatAccesses;

/* Everything recorded since the last reset, summed over all threads. Entries
 * with all-zero counters are left out. */
typedef struct LockStatSnapshot {
    LockStatMode mode;   /* when it was taken */
    int64_t interval_ns; /* since the last reset (or the first use) */
    GArray *locks;       /* LockStatLockEntry, by lock id, then site id */
    GArray *holders;     /* LockStatHolderEntry, by lock, site, then wait_ns descending */
    GArray *accesses;    /* LockStatAccessEntry, by site id */
} LockStatSnapshot;

/* Take a snapshot. Takes the registry mutex (a leaf: it may be called while
 * holding any KLock, including the BQL); never blocks a recording thread.
 * Any thread. Free with lockstat_snapshot_free(). */
LockStatSnapshot *lockstat_snapshot(void);
void lockstat_snapshot_free(LockStatSnapshot *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LockStatSnapshot, lockstat_snapshot_free)

/* Look-ups in a snapshot; absent entries read as zero. */
LockStatCounters lockstat_snapshot_get(const LockStatSnapshot *s, unsigned lock, LockSite site);
/* The sum over every site of @lock. */
LockStatCounters lockstat_snapshot_lock_total(const LockStatSnapshot *s, unsigned lock);
/* Total wait of @site for @lock charged to @holder; *@waits (may be NULL) gets the count. */
uint64_t lockstat_snapshot_wait_by(const LockStatSnapshot *s, unsigned lock, LockSite site,
                                   LockSite holder, uint64_t *waits);
/* The accesses of the region of exit site @site: acquisitions of any lock
 * at @site, plus unlocked accesses, less retries. @bql is the BQL's lock id. */
LockStatAccesses lockstat_snapshot_access(const LockStatSnapshot *s, LockSite site, unsigned bql);

/* Start counting from zero: later snapshots show only what happens after
 * this call. Exact even while other threads record (it stores a baseline
 * rather than clearing their counters). Any thread. */
void lockstat_reset(void);
/* The same for the statistics of @lock alone. */
void lockstat_reset_lock(unsigned lock);

#endif
