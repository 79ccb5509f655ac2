/* RCU (liburcu, memb flavour) with the happens-before edges ThreadSanitizer cannot see. */
#ifndef KVMLOOP_RCU_H
#define KVMLOOP_RCU_H

#include <urcu/urcu-memb.h>

#if defined(__SANITIZE_THREAD__)
#define KVMLOOP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KVMLOOP_TSAN 1
#endif
#endif

#ifdef KVMLOOP_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char kvmloop_rcu_tsan_sync;
#endif

/* Every thread that reads RCU-protected data registers once. */
static inline void rcu_thread_online(void)
{
    urcu_memb_register_thread();
}

static inline void rcu_thread_offline(void)
{
    urcu_memb_unregister_thread();
}

static inline void rcu_read_enter(void)
{
    urcu_memb_read_lock();
}

static inline void rcu_read_leave(void)
{
#ifdef KVMLOOP_TSAN
    /* Pairs with the acquire in rcu_wait_readers(): everything this reader did
     * happens before the writer frees what it read. */
    __tsan_release(&kvmloop_rcu_tsan_sync);
#endif
    urcu_memb_read_unlock();
}

/* Wait until every read-side section that started before this call ended. */
static inline void rcu_wait_readers(void)
{
    urcu_memb_synchronize_rcu();
#ifdef KVMLOOP_TSAN
    __tsan_acquire(&kvmloop_rcu_tsan_sync);
#endif
}

/* Wait until every call_rcu callback queued so far has run. */
static inline void rcu_flush_callbacks(void)
{
    urcu_memb_barrier();
}

/* Publish and read an RCU-protected pointer. */
#define rcu_publish(pp, v) __atomic_store_n((pp), (v), __ATOMIC_RELEASE)
#define rcu_deref(pp)      __atomic_load_n((pp), __ATOMIC_ACQUIRE)

#endif
