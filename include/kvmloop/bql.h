/* The big QEMU-style lock: machine state, devices that did not opt out, main loop callbacks. */
#ifndef KVMLOOP_BQL_H
#define KVMLOOP_BQL_H

#include <pthread.h>
#include <stdbool.h>
#include "kvmloop/klock.h"

/* Take and release the BQL. Never called while holding a device lock, never
 * held across KVM_RUN, poll or file I/O. bql_lock() records the calling
 * thread's default site (lockstat_thread_set_site()), bql_lock_site() @site. */
void bql_lock(void);
void bql_lock_site(LockSite site);
void bql_unlock(void);
/* True if the calling thread holds the BQL. */
bool bql_locked(void);
/* Wait on @cond with the BQL (held by the caller) released while asleep. */
void bql_cond_wait(pthread_cond_t *cond);
KLock *bql_klock(void);

#endif
