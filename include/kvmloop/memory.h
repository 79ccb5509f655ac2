/* PIO and MMIO address spaces: regions with ops and lock policies, dispatched without a lock. */
#ifndef KVMLOOP_MEMORY_H
#define KVMLOOP_MEMORY_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/types.h"

/* Which lock an access to a region takes before calling its ops. */
typedef enum {
    LOCK_POLICY_BQL,    /* the big lock (default) */
    LOCK_POLICY_DEVICE, /* the owning device's own mutex */
    LOCK_POLICY_NONE,   /* none: the ops are thread-safe on their own */
} LockPolicy;

bool lock_policy_parse(const char *s, LockPolicy *out);
const char *lock_policy_name(LockPolicy p);

/* Region callbacks. @offset is relative to the region's base. @size is one of
 * the sizes in [min_access_size, max_access_size]; larger guest accesses are
 * split, smaller ones are rejected (reads return all-ones). Values are
 * little-endian, zero-extended. Called with the lock of the region's policy held. */
typedef struct MemoryRegionOps {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, uint64_t value, unsigned size);
    unsigned min_access_size; /* 0 means 1 */
    unsigned max_access_size; /* 0 means 4 */
} MemoryRegionOps;

struct MemoryRegion {
    char *name;
    gpa_t base;
    uint64_t size;
    const MemoryRegionOps *ops;
    void *opaque;
    KLock *lock;   /* for LOCK_POLICY_DEVICE; NULL means the policy cannot be DEVICE */
    int policy;    /* LockPolicy; read and written atomically, may change at run time */
    LockSite site; /* "exit io:NAME" or "exit mmio:NAME", set by address_space_add() */
};

/* Initialise @mr (base is set when it is added). Policy defaults to BQL. */
void memory_region_init(MemoryRegion *mr, const char *name, uint64_t size,
                        const MemoryRegionOps *ops, void *opaque, KLock *lock);
void memory_region_destroy(MemoryRegion *mr);
/* Change the lock policy while the VM runs. The switch is made holding the
 * old policy's lock, and an access re-checks the policy once it holds the
 * lock it chose, so no access made under the old lock overlaps one made
 * under the new lock. (Accesses already running with no lock may overlap
 * the first ones under the new policy: that device declared itself safe.)
 * Any thread; the caller may hold the BQL but no device lock. Returns false
 * and sets @errp for DEVICE without a lock or an invalid policy. */
bool memory_region_set_lock_policy(MemoryRegion *mr, LockPolicy p, GError **errp);
LockPolicy memory_region_lock_policy(const MemoryRegion *mr);

typedef struct MemoryRegionStats {
    uint64_t accesses;
    uint64_t bql_accesses; /* accesses made with the BQL held */
} MemoryRegionStats;

/* Accesses to @mr since the last lockstat_reset(), summed over every thread.
 * They are counted by site, so regions of equal names in one address space
 * share them. Any thread. */
MemoryRegionStats memory_region_stats(const MemoryRegion *mr);

typedef struct AddressSpaceStats {
    uint64_t unassigned_reads;
    uint64_t unassigned_writes;
    uint64_t bad_size; /* accesses of a size the region does not take */
} AddressSpaceStats;

/* An address space of @size bytes (0x10000 for PIO, 1ULL << 52 for MMIO).
 * As in QEMU, the port I/O space is the one named "io": its regions' exit
 * sites read "exit io:REGION", those of any other space "exit mmio:REGION". */
AddressSpace *address_space_new(const char *name, uint64_t size);
/* Free; every region must have been removed, no reader may be left. */
void address_space_free(AddressSpace *as);
/* Map @mr at @base. Fails (false, @errp) on an overlap or a range outside the
 * space. Any thread that holds the BQL (writers are serialised by it or by an
 * internal mutex); readers are never blocked. */
bool address_space_add(AddressSpace *as, MemoryRegion *mr, gpa_t base, GError **errp);
/* Unmap @mr. Never blocks: readers that started earlier may still be using
 * it, so its owner frees it only after rcu_wait_readers() (called with no
 * lock held) or once every vCPU thread has stopped. */
void address_space_remove(AddressSpace *as, MemoryRegion *mr);
/* The region containing @addr, or NULL. The caller must be inside an RCU
 * read-side critical section (rcu_read_enter()) and must not keep the pointer past it. */
MemoryRegion *address_space_lookup_rcu(AddressSpace *as, gpa_t addr);

/* Access @size bytes at @addr (little-endian @data). Looks up the region
 * without a lock, takes the region's policy lock, calls its ops. Returns 0, or
 * -ENOENT for an unassigned address (reads fill @data with 0xff, writes are
 * dropped and counted), -EINVAL for an unsupported size. Any thread; the
 * calling thread must be registered with RCU and must not hold a device lock. */
int address_space_rw(AddressSpace *as, gpa_t addr, uint8_t *data, unsigned size, bool is_write);
/* Same, reporting the region's name (or "unassigned") in @region_name and its
 * exit site in @site (both may be NULL), for statistics. */
int address_space_rw_named(AddressSpace *as, gpa_t addr, uint8_t *data, unsigned size,
                           bool is_write, const char **region_name, LockSite *site);
AddressSpaceStats address_space_stats(AddressSpace *as);
/* Zero @as's counters. Any thread. */
void address_space_stats_reset(AddressSpace *as);
const char *address_space_name(AddressSpace *as);
/* Call @fn for every region in address order (snapshot). BQL held. */
void address_space_foreach(AddressSpace *as, void (*fn)(MemoryRegion *mr, void *opaque),
                           void *opaque);

#endif
