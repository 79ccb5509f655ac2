/* Address-space dispatch: overlaps, sizes, unassigned accesses, lock policies, RCU updates. */
#include <pthread.h>
#include <string.h>

#include <glib.h>

#include "kvmloop/bql.h"
#include "kvmloop/klock.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/memory.h"
#include "kvmloop/rcu.h"

typedef struct Reg {
    uint64_t last_offset;
    uint64_t last_value;
    unsigned last_size;
    int reads, writes;
    bool saw_bql;
} Reg;

static uint64_t reg_read(void *opaque, uint64_t offset, unsigned size)
{
    Reg *r = opaque;
    r->reads++;
    r->last_offset = offset;
    r->last_size = size;
    r->saw_bql = bql_locked();
    return 0x1122334455667788ULL >> (8 * (8 - size)) ^ offset;
}

static void reg_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    Reg *r = opaque;
    r->writes++;
    r->last_offset = offset;
    r->last_value = value;
    r->last_size = size;
    r->saw_bql = bql_locked();
}

static const MemoryRegionOps reg_ops = {
    .read = reg_read,
    .write = reg_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

static void test_overlap(void)
{
    rcu_thread_online();
    AddressSpace *as = address_space_new("io", 0x10000);
    MemoryRegion a, b, c, d;
    Reg ra = {0};
    g_autoptr(GError) err = NULL;

    memory_region_init(&a, "a", 0x10, &reg_ops, &ra, NULL);
    memory_region_init(&b, "b", 0x10, &reg_ops, &ra, NULL);
    memory_region_init(&c, "c", 0x10, &reg_ops, &ra, NULL);
    memory_region_init(&d, "d", 0x20, &reg_ops, &ra, NULL);
    g_assert_true(address_space_add(as, &a, 0x100, &err));
    g_assert_true(address_space_add(as, &b, 0x120, &err));
    /* Overlaps at either end and around are rejected and name the other region. */
    g_assert_false(address_space_add(as, &c, 0x10f, &err));
    g_assert_nonnull(strstr(err->message, "overlaps 'a'"));
    g_clear_error(&err);
    g_assert_false(address_space_add(as, &d, 0x0f8, &err));
    g_clear_error(&err);
    g_assert_false(address_space_add(as, &d, 0x110, &err));
    g_assert_nonnull(strstr(err->message, "overlaps 'b'"));
    g_clear_error(&err);
    g_assert_false(address_space_add(as, &c, 0xfff8, &err)); /* past the end */
    g_clear_error(&err);
    g_assert_true(address_space_add(as, &c, 0x110, &err)); /* exactly between */

    address_space_remove(as, &a);
    address_space_remove(as, &b);
    address_space_remove(as, &c);
    rcu_wait_readers();
    rcu_flush_callbacks();
    memory_region_destroy(&a);
    memory_region_destroy(&b);
    memory_region_destroy(&c);
    memory_region_destroy(&d);
    address_space_free(as);
    rcu_thread_offline();
}

static void test_dispatch(void)
{
    rcu_thread_online();
    AddressSpace *as = address_space_new("memory", 1ULL << 52);
    MemoryRegion mr;
    Reg r = {0};
    uint8_t buf[8];

    memory_region_init(&mr, "dev", 0x1000, &reg_ops, &r, NULL);
    g_assert_true(address_space_add(as, &mr, 0xfe000000, NULL));
    lockstat_reset(); /* region statistics count from here */

    uint32_t v = 0xdeadbeef;
    memcpy(buf, &v, 4);
    g_assert_cmpint(address_space_rw(as, 0xfe000010, buf, 4, true), ==, 0);
    g_assert_cmpuint(r.last_offset, ==, 0x10);
    g_assert_cmpuint(r.last_value, ==, 0xdeadbeef);
    g_assert_true(r.saw_bql); /* default policy */
    g_assert_false(bql_locked());

    /* An 8-byte access to a region that takes 4 is split, low half first. */
    uint64_t q = 0x0102030405060708ULL;
    memcpy(buf, &q, 8);
    r.writes = 0;
    g_assert_cmpint(address_space_rw(as, 0xfe000020, buf, 8, true), ==, 0);
    g_assert_cmpint(r.writes, ==, 2);
    g_assert_cmpuint(r.last_offset, ==, 0x24);
    g_assert_cmpuint(r.last_value, ==, 0x01020304);

    /* Unassigned reads are all-ones; writes are dropped and counted. */
    memset(buf, 0, sizeof(buf));
    g_assert_cmpint(address_space_rw(as, 0xd0000000, buf, 4, false), ==, -ENOENT);
    g_assert_cmpuint(buf[0] & buf[1] & buf[2] & buf[3], ==, 0xff);
    g_assert_cmpint(address_space_rw(as, 0xd0000000, buf, 2, true), ==, -ENOENT);
    /* An access straddling the region's end is unassigned too. */
    g_assert_cmpint(address_space_rw(as, 0xfe000ffe, buf, 4, false), ==, -ENOENT);
    AddressSpaceStats s = address_space_stats(as);
    g_assert_cmpuint(s.unassigned_reads, ==, 2);
    g_assert_cmpuint(s.unassigned_writes, ==, 1);

    /* Lock policies: none runs without the BQL; device needs a lock. */
    g_autoptr(GError) err = NULL;
    g_assert_false(memory_region_set_lock_policy(&mr, LOCK_POLICY_DEVICE, &err));
    g_assert_true(memory_region_set_lock_policy(&mr, LOCK_POLICY_NONE, NULL));
    g_assert_cmpint(address_space_rw(as, 0xfe000000, buf, 1, false), ==, 0);
    g_assert_false(r.saw_bql);
    MemoryRegionStats st = memory_region_stats(&mr);
    g_assert_cmpuint(st.accesses, ==, 3);
    g_assert_cmpuint(st.bql_accesses, ==, 2);

    address_space_remove(as, &mr);
    rcu_wait_readers();
    rcu_flush_callbacks();
    memory_region_destroy(&mr);
    address_space_free(as);
    rcu_thread_offline();
}

static void test_policy_parse(void)
{
    LockPolicy p;
    g_assert_true(lock_policy_parse("device", &p));
    g_assert_cmpint(p, ==, LOCK_POLICY_DEVICE);
    g_assert_false(lock_policy_parse("spin", &p));
    g_assert_cmpstr(lock_policy_name(LOCK_POLICY_NONE), ==, "none");
}

/* Readers dispatch continuously while a writer maps and unmaps a region. */
typedef struct RcuCtx {
    AddressSpace *as;
    int stop;
    int running; /* readers that have done a lookup */
    uint64_t hits, misses;
} RcuCtx;

static uint64_t fixed_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0x5a;
}

static void fixed_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
}

static const MemoryRegionOps fixed_ops = {.read = fixed_read, .write = fixed_write};

static void *rcu_reader(void *arg)
{
    RcuCtx *c = arg;
    uint64_t hits = 0, misses = 0;
    rcu_thread_online();
    bool counted = false;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        if (!counted && hits + misses > 0) {
            /* The writer starts only once every reader is reading. */
            __atomic_fetch_add(&c->running, 1, __ATOMIC_RELEASE);
            counted = true;
        }
        uint8_t b;
        int r = address_space_rw(c->as, 0x80, &b, 1, false);
        if (r == 0) {
            g_assert_cmpuint(b, ==, 0x5a);
            hits++;
        } else {
            g_assert_cmpuint(b, ==, 0xff);
            misses++;
        }
    }
    rcu_thread_offline();
    __atomic_fetch_add(&c->hits, hits, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->misses, misses, __ATOMIC_RELAXED);
    return NULL;
}

static void test_rcu_update(void)
{
    rcu_thread_online();
    RcuCtx c = {.as = address_space_new("io", 0x10000)};
    MemoryRegion regions[64];
    pthread_t readers[3];

    for (int i = 0; i < 3; i++) {
        pthread_create(&readers[i], NULL, rcu_reader, &c);
    }
    while (__atomic_load_n(&c.running, __ATOMIC_ACQUIRE) < 3) {
        g_usleep(100);
    }
    for (int i = 0; i < 2000; i++) {
        MemoryRegion *mr = &regions[i % 64];
        if (i >= 64) {
            memory_region_destroy(mr);
        }
        memory_region_init(mr, "flip", 0x100, &fixed_ops, NULL, NULL);
        mr->policy = LOCK_POLICY_NONE;
        g_assert_true(address_space_add(c.as, mr, 0, NULL));
        address_space_remove(c.as, mr);
        if (i % 64 == 63) {
            /* A region is reused only after every reader that saw it left. */
            rcu_wait_readers();
        }
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        pthread_join(readers[i], NULL);
    }
    g_assert_cmpuint(c.hits + c.misses, >, 0);
    rcu_wait_readers();
    rcu_flush_callbacks();
    for (int i = 0; i < 64; i++) {
        memory_region_destroy(&regions[i]);
    }
    address_space_free(c.as);
    rcu_thread_offline();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memory/overlap", test_overlap);
    g_test_add_func("/memory/dispatch", test_dispatch);
    g_test_add_func("/memory/policy-parse", test_policy_parse);
    g_test_add_func("/memory/rcu-update", test_rcu_update);
    return g_test_run();
}
