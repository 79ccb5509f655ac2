/* Instrumented locks: counts, contention and the BQL ownership flag. */
#include <pthread.h>

#include <glib.h>

#include "kvmloop/bql.h"
#include "kvmloop/klock.h"

static KLock lock;
static uint64_t shared;

static void *hammer(void *arg)
{
    for (int i = 0; i < 20000; i++) {
        klock_lock(&lock);
        shared++;
        klock_unlock(&lock);
    }
    return NULL;
}

static void test_counts(void)
{
    pthread_t t[4];
    klock_init(&lock, "test");
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, hammer, NULL);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    KLockStats s = klock_stats(&lock);
    g_assert_cmpuint(shared, ==, 80000);
    g_assert_cmpuint(s.acquisitions, ==, 80000);
    g_assert_cmpuint(s.contended, <=, s.acquisitions);
    g_assert_cmpuint(s.hold_ns, >, 0);
    klock_stats_reset(&lock);
    g_assert_cmpuint(klock_stats(&lock).acquisitions, ==, 0);
    klock_destroy(&lock);
}

static void *hold_then_release(void *arg)
{
    klock_lock(&lock);
    g_usleep(20000);
    klock_unlock(&lock);
    return NULL;
}

static void test_contended_wait(void)
{
    klock_init(&lock, "test");
    klock_lock(&lock);
    pthread_t t;
    pthread_create(&t, NULL, hold_then_release, NULL);
    g_usleep(50000); /* the other thread now waits for us */
    klock_unlock(&lock);
    pthread_join(t, NULL);
    KLockStats s = klock_stats(&lock);
    g_assert_cmpuint(s.acquisitions, ==, 2);
    g_assert_cmpuint(s.contended, ==, 1);
    g_assert_cmpuint(s.wait_ns, >, 0);
    g_assert_cmpuint(s.hold_ns, >=, 20000000);
    klock_destroy(&lock);
}

static void test_disabled(void)
{
    klock_init(&lock, "test");
    lockstat_set_enabled(false);
    klock_lock(&lock);
    klock_unlock(&lock);
    lockstat_set_enabled(true);
    g_assert_cmpuint(klock_stats(&lock).acquisitions, ==, 0);
    klock_destroy(&lock);
}

static void test_bql_flag(void)
{
    g_assert_false(bql_locked());
    bql_lock();
    g_assert_true(bql_locked());
    bql_unlock();
    g_assert_false(bql_locked());
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/klock/counts", test_counts);
    g_test_add_func("/klock/contended-wait", test_contended_wait);
    g_test_add_func("/klock/disabled", test_disabled);
    g_test_add_func("/bql/flag", test_bql_flag);
    return g_test_run();
}
