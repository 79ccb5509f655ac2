/* The big lock (BQL): one instrumented mutex and a per-thread "do I hold it" flag. */
#include "kvmloop/bql.h"

#include <glib.h>

static KLock bql;
static pthread_once_t bql_once = PTHREAD_ONCE_INIT;
static __thread bool bql_held;

static void bql_init_once(void)
{
    klock_init(&bql, "BQL");
}

KLock *bql_klock(void)
{
    pthread_once(&bql_once, bql_init_once);
    return &bql;
}

void bql_lock_site(LockSite site)
{
    g_assert(!bql_held);
    klock_lock_site(bql_klock(), site);
    bql_held = true;
}

void bql_lock(void)
{
    bql_lock_site(lockstat_thread_site());
}

void bql_unlock(void)
{
    g_assert(bql_held);
    bql_held = false;
    klock_unlock(&bql);
}

bool bql_locked(void)
{
    return bql_held;
}

void bql_cond_wait(pthread_cond_t *cond)
{
    g_assert(bql_held);
    klock_cond_wait(&bql, cond);
}
