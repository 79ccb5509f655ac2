/* Lock and access statistics: per-thread counters summed on read, baselines for reset. */
#include "kvmloop/lockstat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Counters live in entries of a thread's block, found by a 32-bit key:
 * kind (2 bits) | lock (8) | site (10) | holder site (10). */
enum {
    KIND_LOCK = 1,   /* (lock, site): LockStatCounters */
    KIND_HOLDER = 2, /* (lock, site, holder): waits, wait_ns */
    KIND_ACCESS = 3, /* (site): LockStatAccessEntry's counters */
};

/* A KIND_LOCK entry's values. Not LockStatCounters' layout: what every
 * acquisition touches comes first, within the entry's first cache lines.
 * An uncontended acquisition only counts itself; its bucket-0 wait is
 * added when a snapshot is taken (acquisitions - contended). */
enum {
    V_ACQ,
    V_CONTENDED,
    V_WAIT_NS,
    V_HOLD_NS,
    V_TIMED_HOLDS,
    V_HOLD_HIST,
    V_WAIT_HIST = V_HOLD_HIST + LOCKSTAT_BUCKETS, /* contended acquisitions only */
    LOCK_VALUES = V_WAIT_HIST + LOCKSTAT_BUCKETS,
};
#define HOLDER_VALUES 2
#define ACCESS_VALUES 4

G_STATIC_ASSERT(LOCKSTAT_MAX_SITES <= 1024 && LOCKSTAT_MAX_LOCKS <= 256);

/* One set of counters of one thread. A KIND_LOCK entry is what lockstat.h
 * calls a LockStatCell. */
typedef struct LockStatCell StatEntry;
struct LockStatCell {
    uint32_t key;
    uint32_t nvals;
    StatEntry *next; /* older entries of the same block */
    /* Written by the owner only, relaxed atomics. On a cache line of their
     * own: the hot path finds the entry through its thread's cache and never
     * reads the header. */
    uint64_t v[] __attribute__((aligned(64)));
};

/* One thread's counters. @head is the only field other threads read. */
typedef struct StatBlock {
    StatEntry *head;   /* newest entry; published with a release store */
    StatEntry **slots; /* owner's open-addressing index of the entries */
    unsigned bits;     /* log2 of the number of slots */
    unsigned used;
    GList link; /* in registry.blocks, under registry.lock */
} StatBlock;

static struct {
    pthread_mutex_t lock; /* a leaf: nothing else is taken while it is held */
    pthread_key_t key;    /* runs block_retire() at thread exit */
    GQueue blocks;        /* live StatBlocks */
    GHashTable *retired;  /* key -> uint64_t[]: sums of blocks of exited threads */
    GHashTable *base;     /* key -> uint64_t[]: totals at the last reset */
    int64_t reset_ns;

    char *sites[LOCKSTAT_MAX_SITES];
    unsigned nsites; /* atomic: names below it are published */
    GHashTable *site_ids;
    char *locks[LOCKSTAT_MAX_LOCKS];
    unsigned nlocks;
    GHashTable *lock_ids;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static __thread StatBlock *self;
/* A few recently used entries of @self, so that an exit usually finds its
 * counters without touching the block's index. */
#define TCACHE_SIZE 4
static __thread struct {
    uint32_t key[TCACHE_SIZE];
    StatEntry *entry[TCACHE_SIZE];
} tcache;
static __thread LockSite thread_site;
static __thread uint64_t *thread_wait_counter;

/* Owner-only update of a counter that others read: no locked instruction. */
static inline void stat_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* ---- Clock ------------------------------------------------------------------
 * Every exit reads the clock three or four times with statistics on, and a
 * clock_gettime() costs about twice a bare RDTSC, so when the kernel itself
 * keeps time with the TSC (clocksource "tsc": invariant and synchronised
 * across CPUs) durations are read from it directly. */

LockStatGlobal lockstat_global = {.on = 1, .rate = LOCKSTAT_SAMPLE_RATE};
static pthread_once_t clk_once = PTHREAD_ONCE_INIT;

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool kernel_uses_tsc(void)
{
    g_autofree char *cs = NULL;
    return g_file_get_contents("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                               &cs, NULL, NULL) &&
           g_str_has_prefix(cs, "tsc");
}

/* A (monotonic ns, TSC) pair read as close together as this CPU allows. */
static void clock_pair(int64_t *ns, uint64_t *tsc)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = __builtin_ia32_rdtsc();
        int64_t n = monotonic_ns();
        uint64_t b = __builtin_ia32_rdtsc();
        if (b - a < best) {
            best = b - a;
            *ns = n;
            *tsc = a + (b - a) / 2;
        }
    }
}

static void clock_calibrate(void)
{
    LockStatGlobal *c = &lockstat_global;
    if (kernel_uses_tsc()) {
        int64_t n0, n1;
        uint64_t t0, t1;
        clock_pair(&n0, &t0);
        /* 2 ms against the reads' jitter of well under a microsecond: the
         * rate is good to a few parts in 10^4, plenty for statistics. */
        do {
            clock_pair(&n1, &t1);
        } while (n1 - n0 < 2000000);
        if (t1 > t0) {
            c->mult = (uint64_t)((double)(n1 - n0) * 4294967296.0 / (double)(t1 - t0));
            c->tsc0 = t1;
            c->ns0 = n1;
            c->tsc = c->mult != 0;
        }
    }
    /* Pairs with the acquire in lockstat_now_ns(). */
    __atomic_store_n(&c->clock_ready, 1, __ATOMIC_RELEASE);
}

int64_t lockstat_clock_slow(void)
{
    pthread_once(&clk_once, clock_calibrate);
    if (lockstat_global.tsc) {
        return lockstat_now_ns();
    }
    return monotonic_ns();
}

__thread uint32_t lockstat_rng;

uint32_t lockstat_rng_seed(void)
{
    static uint32_t next = 1;
    /* Distinct non-zero seeds per thread, spread by the golden ratio. */
    uint32_t seed = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) * 0x9e3779b9u;
    return seed ? seed : 0x9e3779b9u;
}

void lockstat_set_mode(LockStatMode mode)
{
    __atomic_store_n(&lockstat_global.rate, mode == LOCKSTAT_FULL ? 1 : LOCKSTAT_SAMPLE_RATE,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&lockstat_global.on, mode != LOCKSTAT_OFF, __ATOMIC_RELAXED);
}

LockStatMode lockstat_mode(void)
{
    if (!lockstat_enabled()) {
        return LOCKSTAT_OFF;
    }
    return __atomic_load_n(&lockstat_global.rate, __ATOMIC_RELAXED) == 1 ? LOCKSTAT_FULL
                                                                         : LOCKSTAT_SAMPLED;
}

void lockstat_set_enabled(bool on)
{
    lockstat_set_mode(on ? LOCKSTAT_SAMPLED : LOCKSTAT_OFF);
}

unsigned lockstat_bucket(uint64_t ns)
{
    if (ns < 2) {
        return 0;
    }
    unsigned b = 63 - (unsigned)__builtin_clzll(ns);
    return b < LOCKSTAT_BUCKETS ? b : LOCKSTAT_BUCKETS - 1;
}

uint64_t lockstat_bucket_floor(unsigned b)
{
    return b == 0 ? 0 : 1ULL << MIN(b, LOCKSTAT_BUCKETS - 1);
}

static uint32_t key_make(unsigned kind, unsigned lock, LockSite site, LockSite holder)
{
    return (uint32_t)kind << 30 | (uint32_t)lock << 20 | site << 10 | holder;
}

static unsigned key_kind(uint32_t key)
{
    return key >> 30;
}

static unsigned key_lock(uint32_t key)
{
    return (key >> 20) & 0xff;
}

static LockSite key_site(uint32_t key)
{
    return (key >> 10) & 0x3ff;
}

static LockSite key_holder(uint32_t key)
{
    return key & 0x3ff;
}

static unsigned kind_values(unsigned kind)
{
    return kind == KIND_LOCK ? LOCK_VALUES : kind == KIND_HOLDER ? HOLDER_VALUES : ACCESS_VALUES;
}

/* ---- Names ---------------------------------------------------------------- */

static void block_retire(void *arg);

static unsigned intern_locked(char **names, unsigned *count, unsigned max, GHashTable *ids,
                              const char *name, unsigned overflow, const char *what)
{
    gpointer id;
    if (g_hash_table_lookup_extended(ids, name, NULL, &id)) {
        return GPOINTER_TO_UINT(id);
    }
    unsigned n = *count;
    if (n >= max) {
        static int warned;
        if (!warned++) {
            g_warning("more than %u %s names; '%s' and later ones are counted together", max, what,
                      name);
        }
        return overflow;
    }
    names[n] = g_strdup(name);
    g_hash_table_insert(ids, names[n], GUINT_TO_POINTER(n));
    /* Pairs with the acquire in lockstat_site_name(): the name is written
     * before its id becomes readable. */
    __atomic_store_n(count, n + 1, __ATOMIC_RELEASE);
    return n;
}

static void registry_init(void)
{
    pthread_key_create(&registry.key, block_retire);
    g_queue_init(&registry.blocks);
    registry.retired = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    registry.base = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    registry.site_ids = g_hash_table_new(g_str_hash, g_str_equal);
    registry.lock_ids = g_hash_table_new(g_str_hash, g_str_equal);
    registry.reset_ns = lockstat_now_ns();
    intern_locked(registry.sites, &registry.nsites, LOCKSTAT_MAX_SITES, registry.site_ids,
                  "unknown", LOCKSITE_OVERFLOW, "site");
    intern_locked(registry.sites, &registry.nsites, LOCKSTAT_MAX_SITES, registry.site_ids, "other",
                  LOCKSITE_OVERFLOW, "site");
}

static void registry_enter(void)
{
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry.lock);
}

LockSite lockstat_site_intern(const char *name)
{
    registry_enter();
    LockSite id = intern_locked(registry.sites, &registry.nsites, LOCKSTAT_MAX_SITES,
                                registry.site_ids, name, LOCKSITE_OVERFLOW, "lock site");
    pthread_mutex_unlock(&registry.lock);
    return id;
}

const char *lockstat_site_name(LockSite site)
{
    pthread_once(&registry_once, registry_init);
    if (site < __atomic_load_n(&registry.nsites, __ATOMIC_ACQUIRE)) {
        return registry.sites[site];
    }
    return "?";
}

unsigned lockstat_lock_intern(const char *name)
{
    registry_enter();
    unsigned id = intern_locked(registry.locks, &registry.nlocks, LOCKSTAT_MAX_LOCKS,
                                registry.lock_ids, name, 0, "lock");
    pthread_mutex_unlock(&registry.lock);
    return id;
}

const char *lockstat_lock_name(unsigned lock)
{
    pthread_once(&registry_once, registry_init);
    if (lock < __atomic_load_n(&registry.nlocks, __ATOMIC_ACQUIRE)) {
        return registry.locks[lock];
    }
    return "?";
}

/* ---- Per-thread blocks ------------------------------------------------------ */

void lockstat_thread_set_site(LockSite site)
{
    thread_site = site;
}

LockSite lockstat_thread_site(void)
{
    return thread_site;
}

void lockstat_thread_set_wait_counter(uint64_t *counter)
{
    thread_wait_counter = counter;
}

static StatBlock *block_register(void)
{
    StatBlock *b = g_new0(StatBlock, 1);
    b->bits = 6;
    b->slots = g_new0(StatEntry *, 1u << b->bits);
    b->link.data = b;
    registry_enter();
    g_queue_push_tail_link(&registry.blocks, &b->link);
    pthread_mutex_unlock(&registry.lock);
    pthread_setspecific(registry.key, b);
    self = b;
    return b;
}

static inline unsigned slot_of(uint32_t key, unsigned bits)
{
    return (key * 0x9e3779b1u) >> (32 - bits);
}

static void block_insert_slot(StatBlock *b, StatEntry *e)
{
    unsigned mask = (1u << b->bits) - 1;
    unsigned i = slot_of(e->key, b->bits);
    while (b->slots[i]) {
        i = (i + 1) & mask;
    }
    b->slots[i] = e;
}

static StatEntry *block_add_entry(StatBlock *b, uint32_t key)
{
    unsigned nvals = kind_values(key_kind(key));
    size_t size = sizeof(StatEntry) + nvals * sizeof(uint64_t);
    void *mem;
    /* Line-aligned: an acquisition's counters then span two cache lines. */
    if (posix_memalign(&mem, 64, size) != 0) {
        g_error("out of memory for lock statistics");
    }
    StatEntry *e = memset(mem, 0, size);
    e->key = key;
    e->nvals = nvals;
    e->next = b->head;
    /* Pairs with the acquire in aggregate_locked(): a reader that finds the entry
     * sees its key, size and link. */
    __atomic_store_n(&b->head, e, __ATOMIC_RELEASE);

    if (2 * (b->used + 1) > (1u << b->bits)) {
        g_free(b->slots);
        b->bits++;
        b->slots = g_new0(StatEntry *, 1u << b->bits);
        for (StatEntry *o = e->next; o; o = o->next) {
            block_insert_slot(b, o);
        }
    }
    block_insert_slot(b, e);
    b->used++;
    return e;
}

/* The calling thread's entry for @key, created on first use. */
static StatEntry *entry_lookup(uint32_t key)
{
    StatBlock *b = self;
    if (G_UNLIKELY(!b)) {
        b = block_register();
    }
    unsigned mask = (1u << b->bits) - 1;
    for (unsigned i = slot_of(key, b->bits);; i = (i + 1) & mask) {
        StatEntry *e = b->slots[i];
        if (G_LIKELY(e && e->key == key)) {
            return e;
        }
        if (!e) {
            return block_add_entry(b, key);
        }
    }
}

static inline StatEntry *entry_self(uint32_t key)
{
    unsigned i = key % TCACHE_SIZE;
    if (G_LIKELY(tcache.key[i] == key)) {
        return tcache.entry[i];
    }
    StatEntry *e = entry_lookup(key);
    tcache.key[i] = key;
    tcache.entry[i] = e;
    return e;
}

static void sum_into(GHashTable *acc, uint32_t key, const uint64_t *v, unsigned n, bool atomic)
{
    uint64_t *dst = g_hash_table_lookup(acc, GUINT_TO_POINTER(key));
    if (!dst) {
        dst = g_new0(uint64_t, n);
        g_hash_table_insert(acc, GUINT_TO_POINTER(key), dst);
    }
    for (unsigned i = 0; i < n; i++) {
        dst[i] += atomic ? __atomic_load_n(&v[i], __ATOMIC_RELAXED) : v[i];
    }
}

/* Thread exit: fold the block into the retired totals so that readers, which
 * sum under the same mutex, see neither a gap nor a double count. */
static void block_retire(void *arg)
{
    StatBlock *b = arg;
    pthread_mutex_lock(&registry.lock);
    for (StatEntry *e = b->head; e; e = e->next) {
        sum_into(registry.retired, e->key, e->v, e->nvals, true);
    }
    g_queue_unlink(&registry.blocks, &b->link);
    pthread_mutex_unlock(&registry.lock);
    for (StatEntry *e = b->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    g_free(b->slots);
    g_free(b);
    self = NULL;
    memset(&tcache, 0, sizeof(tcache));
}

/* ---- Recording ---------------------------------------------------------------- */

LockStatCell *lockstat_cell(unsigned lock, LockSite site)
{
    return entry_self(key_make(KIND_LOCK, lock, site, 0));
}

void lockstat_record_acquire(LockStatCell *cell, bool contended, uint64_t wait_ns, LockSite holder)
{
    uint64_t *v = cell->v;
    stat_add(&v[V_ACQ], 1);
    if (!contended) {
        return;
    }
    stat_add(&v[V_CONTENDED], 1);
    stat_add(&v[V_WAIT_NS], wait_ns);
    stat_add(&v[V_WAIT_HIST + lockstat_bucket(wait_ns)], 1);
    uint32_t k = cell->key;
    StatEntry *h = entry_self(key_make(KIND_HOLDER, key_lock(k), key_site(k), holder));
    stat_add(&h->v[0], 1);
    stat_add(&h->v[1], wait_ns);
    if (thread_wait_counter) {
        stat_add(thread_wait_counter, wait_ns);
    }
}

void lockstat_record_hold(LockStatCell *cell, uint64_t hold_ns, unsigned weight)
{
    uint64_t *v = cell->v;
    stat_add(&v[V_TIMED_HOLDS], 1);
    stat_add(&v[V_HOLD_NS], hold_ns * weight);
    stat_add(&v[V_HOLD_HIST + lockstat_bucket(hold_ns)], weight);
}

void lockstat_record_access(LockSite site, bool with_bql)
{
    StatEntry *e = entry_self(key_make(KIND_ACCESS, 0, site, 0));
    stat_add(&e->v[0], 1);
    if (with_bql) {
        stat_add(&e->v[1], 1);
    }
}

void lockstat_record_retry(LockSite site, bool bql)
{
    StatEntry *e = entry_self(key_make(KIND_ACCESS, 0, site, 0));
    stat_add(&e->v[2], 1);
    if (bql) {
        stat_add(&e->v[3], 1);
    }
}

/* ---- Reading -------------------------------------------------------------------- */

/* Totals since the process started: retired blocks plus live ones. */
static GHashTable *aggregate_locked(void)
{
    GHashTable *acc = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, registry.retired);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        sum_into(acc, GPOINTER_TO_UINT(k), v, kind_values(key_kind(GPOINTER_TO_UINT(k))), false);
    }
    for (GList *l = registry.blocks.head; l; l = l->next) {
        StatBlock *b = l->data;
        for (StatEntry *e = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE); e; e = e->next) {
            sum_into(acc, e->key, e->v, e->nvals, true);
        }
    }
    return acc;
}

static gint cmp_lock_entry(gconstpointer a, gconstpointer b)
{
    const LockStatLockEntry *x = a, *y = b;
    if (x->lock != y->lock) {
        return x->lock < y->lock ? -1 : 1;
    }
    return x->site < y->site ? -1 : x->site > y->site;
}

static gint cmp_holder_entry(gconstpointer a, gconstpointer b)
{
    const LockStatHolderEntry *x = a, *y = b;
    if (x->lock != y->lock) {
        return x->lock < y->lock ? -1 : 1;
    }
    if (x->site != y->site) {
        return x->site < y->site ? -1 : 1;
    }
    if (x->wait_ns != y->wait_ns) {
        return x->wait_ns > y->wait_ns ? -1 : 1;
    }
    return x->holder < y->holder ? -1 : x->holder > y->holder;
}

static gint cmp_access_entry(gconstpointer a, gconstpointer b)
{
    const LockStatAccessEntry *x = a, *y = b;
    return x->site < y->site ? -1 : x->site > y->site;
}

static void snapshot_add(LockStatSnapshot *s, uint32_t key, const uint64_t *v)
{
    switch (key_kind(key)) {
    case KIND_LOCK: {
        LockStatLockEntry e = {.lock = key_lock(key), .site = key_site(key)};
        e.c.acquisitions = v[V_ACQ];
        e.c.contended = v[V_CONTENDED];
        e.c.wait_ns = v[V_WAIT_NS];
        e.c.hold_ns = v[V_HOLD_NS];
        e.c.timed_holds = v[V_TIMED_HOLDS];
        memcpy(e.c.hold_hist, &v[V_HOLD_HIST], sizeof(e.c.hold_hist));
        memcpy(e.c.wait_hist, &v[V_WAIT_HIST], sizeof(e.c.wait_hist));
        e.c.wait_hist[0] += e.c.acquisitions - MIN(e.c.contended, e.c.acquisitions);
        if (e.c.acquisitions || e.c.hold_ns) {
            g_array_append_val(s->locks, e);
        }
        break;
    }
    case KIND_HOLDER: {
        LockStatHolderEntry e = {.lock = key_lock(key),
                                 .site = key_site(key),
                                 .holder = key_holder(key),
                                 .waits = v[0],
                                 .wait_ns = v[1]};
        if (e.waits) {
            g_array_append_val(s->holders, e);
        }
        break;
    }
    case KIND_ACCESS: {
        LockStatAccessEntry e = {.site = key_site(key),
                                 .unlocked = v[0],
                                 .unlocked_bql = v[1],
                                 .retries = v[2],
                                 .bql_retries = v[3]};
        if (e.unlocked || e.retries) {
            g_array_append_val(s->accesses, e);
        }
        break;
    }
    }
}

LockStatSnapshot *lockstat_snapshot(void)
{
    LockStatSnapshot *s = g_new0(LockStatSnapshot, 1);
    s->mode = lockstat_mode();
    s->locks = g_array_new(false, false, sizeof(LockStatLockEntry));
    s->holders = g_array_new(false, false, sizeof(LockStatHolderEntry));
    s->accesses = g_array_new(false, false, sizeof(LockStatAccessEntry));

    registry_enter();
    GHashTable *acc = aggregate_locked();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, acc);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        uint32_t key = GPOINTER_TO_UINT(k);
        uint64_t *vals = v;
        const uint64_t *base = g_hash_table_lookup(registry.base, k);
        for (unsigned i = 0; base && i < kind_values(key_kind(key)); i++) {
            vals[i] = vals[i] >= base[i] ? vals[i] - base[i] : 0;
        }
        snapshot_add(s, key, vals);
    }
    s->interval_ns = lockstat_now_ns() - registry.reset_ns;
    pthread_mutex_unlock(&registry.lock);
    g_hash_table_destroy(acc);

    g_array_sort(s->locks, cmp_lock_entry);
    g_array_sort(s->holders, cmp_holder_entry);
    g_array_sort(s->accesses, cmp_access_entry);
    return s;
}

void lockstat_snapshot_free(LockStatSnapshot *s)
{
    if (!s) {
        return;
    }
    g_array_free(s->locks, true);
    g_array_free(s->holders, true);
    g_array_free(s->accesses, true);
    g_free(s);
}

static void counters_add(LockStatCounters *dst, const LockStatCounters *src)
{
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *a = (const uint64_t *)src;
    for (unsigned i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++) {
        d[i] += a[i];
    }
}

LockStatCounters lockstat_snapshot_get(const LockStatSnapshot *s, unsigned lock, LockSite site)
{
    LockStatCounters c = {0};
    for (guint i = 0; i < s->locks->len; i++) {
        const LockStatLockEntry *e = &g_array_index(s->locks, LockStatLockEntry, i);
        if (e->lock == lock && e->site == site) {
            c = e->c;
            break;
        }
    }
    return c;
}

LockStatCounters lockstat_snapshot_lock_total(const LockStatSnapshot *s, unsigned lock)
{
    LockStatCounters c = {0};
    for (guint i = 0; i < s->locks->len; i++) {
        const LockStatLockEntry *e = &g_array_index(s->locks, LockStatLockEntry, i);
        if (e->lock == lock) {
            counters_add(&c, &e->c);
        }
    }
    return c;
}

uint64_t lockstat_snapshot_wait_by(const LockStatSnapshot *s, unsigned lock, LockSite site,
                                   LockSite holder, uint64_t *waits)
{
    for (guint i = 0; i < s->holders->len; i++) {
        const LockStatHolderEntry *e = &g_array_index(s->holders, LockStatHolderEntry, i);
        if (e->lock == lock && e->site == site && e->holder == holder) {
            if (waits) {
                *waits = e->waits;
            }
            return e->wait_ns;
        }
    }
    if (waits) {
        *waits = 0;
    }
    return 0;
}

LockStatAccesses lockstat_snapshot_access(const LockStatSnapshot *s, LockSite site, unsigned bql)
{
    uint64_t all = 0, with_bql = 0, retries = 0, bql_retries = 0;
    for (guint i = 0; i < s->locks->len; i++) {
        const LockStatLockEntry *e = &g_array_index(s->locks, LockStatLockEntry, i);
        if (e->site == site) {
            all += e->c.acquisitions;
            with_bql += e->lock == bql ? e->c.acquisitions : 0;
        }
    }
    for (guint i = 0; i < s->accesses->len; i++) {
        const LockStatAccessEntry *e = &g_array_index(s->accesses, LockStatAccessEntry, i);
        if (e->site == site) {
            all += e->unlocked;
            with_bql += e->unlocked_bql;
            retries = e->retries;
            bql_retries = e->bql_retries;
        }
    }
    /* A retry's acquisition may predate a reset: never go below zero. */
    return (LockStatAccesses){.accesses = all - MIN(retries, all),
                              .bql_accesses = with_bql - MIN(bql_retries, with_bql)};
}

/* Make the current totals of every key (@lock < 0) or of @lock's keys the
 * new zero. */
static void reset_keys(int lock)
{
    registry_enter();
    GHashTable *acc = aggregate_locked();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, acc);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        uint32_t key = GPOINTER_TO_UINT(k);
        if (lock < 0 || (key_kind(key) != KIND_ACCESS && key_lock(key) == (unsigned)lock)) {
            g_hash_table_iter_steal(&it);
            g_hash_table_replace(registry.base, k, v);
        }
    }
    if (lock < 0) {
        registry.reset_ns = lockstat_now_ns();
    }
    pthread_mutex_unlock(&registry.lock);
    g_hash_table_destroy(acc);
}

void lockstat_reset(void)
{
    reset_keys(-1);
}

void lockstat_reset_lock(unsigned lock)
{
    reset_keys((int)lock);
}
