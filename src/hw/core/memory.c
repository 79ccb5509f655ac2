/* Address spaces: an RCU-published flat view of regions, dispatched with each region's lock policy.
 */
#include "kvmloop/memory.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "kvmloop/bql.h"
#include "kvmloop/klock.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/rcu.h"

#ifdef KVMLOOP_TSAN
char kvmloop_rcu_tsan_sync;
#endif

typedef struct FlatRange {
    gpa_t base;
    gpa_t last; /* inclusive, so a range may end at the top of the space */
    MemoryRegion *mr;
} FlatRange;

/* Immutable once published. */
typedef struct FlatView {
    struct rcu_head rcu;
    unsigned nr;
    FlatRange ranges[];
} FlatView;

struct AddressSpace {
    char *name;
    uint64_t size;
    FlatView *view;            /* RCU-published */
    pthread_mutex_t update;    /* serialises writers */
    const char *exit_kind;     /* "io" or "mmio", in exit site names */
    LockSite unassigned_site;  /* "exit io:unassigned" or "exit mmio:unassigned" */
    uint64_t unassigned_reads; /* atomic */
    uint64_t unassigned_writes;
    uint64_t bad_size;
};

static const char *const lock_policy_names[] = {
    [LOCK_POLICY_BQL] = "bql",
    [LOCK_POLICY_DEVICE] = "device",
    [LOCK_POLICY_NONE] = "none",
};

bool lock_policy_parse(const char *s, LockPolicy *out)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(lock_policy_names); i++) {
        if (strcmp(s, lock_policy_names[i]) == 0) {
            *out = (LockPolicy)i;
            return true;
        }
    }
    return false;
}

const char *lock_policy_name(LockPolicy p)
{
    return (unsigned)p < G_N_ELEMENTS(lock_policy_names) ? lock_policy_names[p] : "?";
}

void memory_region_init(MemoryRegion *mr, const char *name, uint64_t size,
                        const MemoryRegionOps *ops, void *opaque, KLock *lock)
{
    memset(mr, 0, sizeof(*mr));
    mr->name = g_strdup(name);
    mr->size = size;
    mr->ops = ops;
    mr->opaque = opaque;
    mr->lock = lock;
    mr->policy = LOCK_POLICY_BQL;
}

void memory_region_destroy(MemoryRegion *mr)
{
    g_free(mr->name);
    mr->name = NULL;
}

LockPolicy memory_region_lock_policy(const MemoryRegion *mr)
{
    return (LockPolicy)__atomic_load_n(&mr->policy, __ATOMIC_ACQUIRE);
}

/* Take the lock of policy @p of @mr for @site; false if @p needs none. With
 * the BQL already held by the caller nothing is taken. */
static bool region_lock(MemoryRegion *mr, LockPolicy p, LockSite site, bool *took_bql)
{
    *took_bql = false;
    switch (p) {
    case LOCK_POLICY_BQL:
        if (!bql_locked()) {
            bql_lock_site(site);
            *took_bql = true;
        }
        return true;
    case LOCK_POLICY_DEVICE:
        klock_lock_site(mr->lock, site);
        return true;
    case LOCK_POLICY_NONE:
        break;
    }
    return false;
}

static void region_unlock(MemoryRegion *mr, LockPolicy p, bool took_bql)
{
    if (p == LOCK_POLICY_DEVICE) {
        klock_unlock(mr->lock);
    } else if (took_bql) {
        bql_unlock();
    }
}

bool memory_region_set_lock_policy(MemoryRegion *mr, LockPolicy p, GError **errp)
{
    if ((unsigned)p >= G_N_ELEMENTS(lock_policy_names)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid lock policy %d",
                    (int)p);
        return false;
    }
    if (p == LOCK_POLICY_DEVICE && !mr->lock) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "region '%s' has no device lock",
                    mr->name);
        return false;
    }
    static LockSite switch_site;
    if (!__atomic_load_n(&switch_site, __ATOMIC_RELAXED)) {
        __atomic_store_n(&switch_site, lockstat_site_intern("memory:set-lock-policy"),
                         __ATOMIC_RELAXED);
    }
    /* Publish under the old policy's lock: an access that chose the old lock
     * either finished before, or finds the new policy once it holds that lock
     * and starts over (address_space_rw_named()). */
    for (;;) {
        LockPolicy old = memory_region_lock_policy(mr);
        bool took_bql;
        bool locked =
            region_lock(mr, old, __atomic_load_n(&switch_site, __ATOMIC_RELAXED), &took_bql);
        if (memory_region_lock_policy(mr) == old) {
            __atomic_store_n(&mr->policy, (int)p, __ATOMIC_RELEASE);
            if (locked) {
                region_unlock(mr, old, took_bql);
            }
            return true;
        }
        if (locked) {
            region_unlock(mr, old, took_bql);
        }
    }
}

MemoryRegionStats memory_region_stats(const MemoryRegion *mr)
{
    g_autoptr(LockStatSnapshot) s = lockstat_snapshot();
    LockStatAccesses a = lockstat_snapshot_access(s, mr->site, bql_klock()->id);
    return (MemoryRegionStats){.accesses = a.accesses, .bql_accesses = a.bql_accesses};
}

static FlatView *flat_view_new(unsigned nr)
{
    FlatView *v = g_malloc0(sizeof(*v) + nr * sizeof(FlatRange));
    v->nr = nr;
    return v;
}

static void flat_view_free_rcu(struct rcu_head *head)
{
#ifdef KVMLOOP_TSAN
    __tsan_acquire(&kvmloop_rcu_tsan_sync);
#endif
    g_free(caa_container_of(head, FlatView, rcu));
}

/* Swap in @next and free the old view after a grace period. Asynchronous, so
 * a writer that holds the BQL never waits for a reader that waits for the BQL. */
static void address_space_publish(AddressSpace *as, FlatView *next)
{
    FlatView *old = as->view;
    rcu_publish(&as->view, next);
    if (old) {
        urcu_memb_call_rcu(&old->rcu, flat_view_free_rcu);
    }
}

AddressSpace *address_space_new(const char *name, uint64_t size)
{
    AddressSpace *as = g_new0(AddressSpace, 1);
    as->name = g_strdup(name);
    as->size = size;
    pthread_mutex_init(&as->update, NULL);
    as->exit_kind = strcmp(name, "io") == 0 ? "io" : "mmio";
    g_autofree char *site = g_strdup_printf("exit %s:unassigned", as->exit_kind);
    as->unassigned_site = lockstat_site_intern(site);
    as->view = flat_view_new(0);
    return as;
}

void address_space_free(AddressSpace *as)
{
    if (!as) {
        return;
    }
    g_free(as->view);
    pthread_mutex_destroy(&as->update);
    g_free(as->name);
    g_free(as);
}

const char *address_space_name(AddressSpace *as)
{
    return as->name;
}

bool address_space_add(AddressSpace *as, MemoryRegion *mr, gpa_t base, GError **errp)
{
    if (mr->size == 0 || base >= as->size || mr->size > as->size - base) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "region '%s' [0x%" G_GINT64_MODIFIER "x, +0x%" G_GINT64_MODIFIER
                    "x) does not fit in address space '%s'",
                    mr->name, base, mr->size, as->name);
        return false;
    }
    gpa_t last = base + mr->size - 1;
    g_autofree char *site = g_strdup_printf("exit %s:%s", as->exit_kind, mr->name);
    LockSite site_id = lockstat_site_intern(site);

    pthread_mutex_lock(&as->update);
    FlatView *cur = as->view;
    unsigned pos = 0;
    while (pos < cur->nr && cur->ranges[pos].last < base) {
        pos++;
    }
    if (pos < cur->nr && cur->ranges[pos].base <= last) {
        const FlatRange *o = &cur->ranges[pos];
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "region '%s' at 0x%" G_GINT64_MODIFIER "x-0x%" G_GINT64_MODIFIER
                    "x overlaps '%s' at 0x%" G_GINT64_MODIFIER "x-0x%" G_GINT64_MODIFIER "x in %s",
                    mr->name, base, last, o->mr->name, o->base, o->last, as->name);
        pthread_mutex_unlock(&as->update);
        return false;
    }
    FlatView *next = flat_view_new(cur->nr + 1);
    memcpy(next->ranges, cur->ranges, pos * sizeof(FlatRange));
    next->ranges[pos] = (FlatRange){.base = base, .last = last, .mr = mr};
    memcpy(&next->ranges[pos + 1], &cur->ranges[pos], (cur->nr - pos) * sizeof(FlatRange));
    mr->base = base;
    mr->site = site_id;
    address_space_publish(as, next);
    pthread_mutex_unlock(&as->update);
    return true;
}

void address_space_remove(AddressSpace *as, MemoryRegion *mr)
{
    pthread_mutex_lock(&as->update);
    FlatView *cur = as->view;
    FlatView *next = flat_view_new(cur->nr);
    unsigned n = 0;
    for (unsigned i = 0; i < cur->nr; i++) {
        if (cur->ranges[i].mr != mr) {
            next->ranges[n++] = cur->ranges[i];
        }
    }
    next->nr = n;
    address_space_publish(as, next);
    pthread_mutex_unlock(&as->update);
}

MemoryRegion *address_space_lookup_rcu(AddressSpace *as, gpa_t addr)
{
    const FlatView *v = rcu_deref(&as->view);
    unsigned lo = 0, hi = v->nr;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const FlatRange *r = &v->ranges[mid];
        if (addr < r->base) {
            hi = mid;
        } else if (addr > r->last) {
            lo = mid + 1;
        } else {
            return r->mr;
        }
    }
    return NULL;
}

void address_space_foreach(AddressSpace *as, void (*fn)(MemoryRegion *mr, void *opaque),
                           void *opaque)
{
    rcu_read_enter();
    const FlatView *v = rcu_deref(&as->view);
    for (unsigned i = 0; i < v->nr; i++) {
        fn(v->ranges[i].mr, opaque);
    }
    rcu_read_leave();
}

AddressSpaceStats address_space_stats(AddressSpace *as)
{
    return (AddressSpaceStats){
        .unassigned_reads = __atomic_load_n(&as->unassigned_reads, __ATOMIC_RELAXED),
        .unassigned_writes = __atomic_load_n(&as->unassigned_writes, __ATOMIC_RELAXED),
        .bad_size = __atomic_load_n(&as->bad_size, __ATOMIC_RELAXED),
    };
}

void address_space_stats_reset(AddressSpace *as)
{
    __atomic_store_n(&as->unassigned_reads, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&as->unassigned_writes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&as->bad_size, 0, __ATOMIC_RELAXED);
}

static uint64_t load_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void store_le(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Call the region's ops, splitting an access wider than the region takes. */
static void region_access(MemoryRegion *mr, uint64_t offset, uint8_t *data, unsigned size,
                          bool is_write, unsigned max)
{
    for (unsigned done = 0; done < size; done += max) {
        if (is_write) {
            mr->ops->write(mr->opaque, offset + done, load_le(data + done, max), max);
        } else {
            store_le(data + done, mr->ops->read(mr->opaque, offset + done, max), max);
        }
    }
}

int address_space_rw_named(AddressSpace *as, gpa_t addr, uint8_t *data, unsigned size,
                           bool is_write, const char **region_name, LockSite *site)
{
    int ret = 0;

    rcu_read_enter();
    MemoryRegion *mr = address_space_lookup_rcu(as, addr);
    if (!mr || size == 0 || size > 8 || addr - mr->base + size > mr->size) {
        __atomic_fetch_add(is_write ? &as->unassigned_writes : &as->unassigned_reads, 1,
                           __ATOMIC_RELAXED);
        ret = -ENOENT;
        if (region_name) {
            *region_name = "unassigned";
        }
        if (site) {
            *site = as->unassigned_site;
        }
        goto fail;
    }
    if (region_name) {
        *region_name = mr->name;
    }
    if (site) {
        *site = mr->site;
    }
    unsigned min = mr->ops->min_access_size ? mr->ops->min_access_size : 1;
    unsigned max = mr->ops->max_access_size ? mr->ops->max_access_size : 4;
    if (size < min || (size & (size - 1)) != 0 || (size > max && size % max != 0)) {
        __atomic_fetch_add(&as->bad_size, 1, __ATOMIC_RELAXED);
        ret = -EINVAL;
        goto fail;
    }
    unsigned chunk = size < max ? size : max;

    /* Take the lock the policy names, then make sure the policy still names
     * it: memory_region_set_lock_policy() changes it under the old lock. */
    LockPolicy p;
    bool locked, took_bql;
    for (;;) {
        p = memory_region_lock_policy(mr);
        locked = region_lock(mr, p, mr->site, &took_bql);
        if (memory_region_lock_policy(mr) == p) {
            break;
        }
        if (locked) {
            region_unlock(mr, p, took_bql);
            if ((took_bql || p == LOCK_POLICY_DEVICE) && lockstat_enabled()) {
                lockstat_record_retry(mr->site, took_bql);
            }
        }
    }
    region_access(mr, addr - mr->base, data, size, is_write, chunk);
    if (locked) {
        region_unlock(mr, p, took_bql);
    }
    /* An access that took a lock was counted as its acquisition. */
    if (!took_bql && p != LOCK_POLICY_DEVICE && lockstat_enabled()) {
        lockstat_record_access(mr->site, p == LOCK_POLICY_BQL);
    }
    rcu_read_leave();
    return 0;

fail:
    rcu_read_leave();
    if (!is_write) {
        memset(data, 0xff, size);
    }
    return ret;
}

int address_space_rw(AddressSpace *as, gpa_t addr, uint8_t *data, unsigned size, bool is_write)
{
    return address_space_rw_named(as, addr, data, size, is_write, NULL, NULL);
}
