/* iothreads: a named thread per event loop, for device data planes that stay off the BQL. */
#include "kvmloop/iothread.h"
#include "kvmloop/error.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvmloop/lockstat.h"
#include "kvmloop/rcu.h"

struct IOThread {
    char *id;
    EventLoop *loop;
    pthread_t thread;
    pid_t tid; /* atomic: set by the thread while it runs, else 0 */

    /* Main thread only. */
    bool running;        /* from iothread_start() until iothread_join() */
    bool stop_requested; /* iothread_stop() since the start */

    /* Start-up handshake and iothread_run_sync() completions. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started; /* under @lock */
};

/* Every iothread by creation order; main thread only. */
static GPtrArray *iothread_registry;
static __thread IOThread *iothread_current;

/* QEMU's rule for object ids, so that ids carry over between the two. */
static bool iothread_id_valid(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

IOThread *iothread_find(const char *id)
{
    for (guint i = 0; iothread_registry && i < iothread_registry->len; i++) {
        IOThread *t = iothread_registry->pdata[i];
        if (strcmp(t->id, id) == 0) {
            return t;
        }
    }
    return NULL;
}

IOThread *iothread_new(const char *id, EventLoopBackend backend, GError **errp)
{
    if (!iothread_id_valid(id)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "iothread id '%s' is invalid (a letter, then letters, digits, '-', '.', '_')",
                    id);
        return NULL;
    }
    if (iothread_find(id)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "iothread id '%s' is already in use", id);
        return NULL;
    }
    /* No hooks: nothing an iothread runs takes the BQL on its behalf. */
    EventLoop *loop = event_loop_new(backend, NULL, errp);
    if (!loop) {
        return NULL;
    }
    IOThread *t = g_new0(IOThread, 1);
    t->id = g_strdup(id);
    t->loop = loop;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (!iothread_registry) {
        iothread_registry = g_ptr_array_new();
    }
    g_ptr_array_add(iothread_registry, t);
    return t;
}

static void *iothread_main(void *opaque)
{
    IOThread *t = opaque;

    rcu_thread_online();
    iothread_current = t;
    g_autofree char *name = g_strdup_printf("io-%.12s", t->id);
    pthread_setname_np(pthread_self(), name);
    /* Device locks the iothread's callbacks take are charged to it. */
    g_autofree char *site = g_strdup_printf("iothread:%s", t->id);
    lockstat_thread_set_site(lockstat_site_intern(site));

    pthread_mutex_lock(&t->lock);
    __atomic_store_n(&t->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    t->started = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);

    event_loop_run(t->loop);
    /* Whatever was ready before the stop (an eventfd a guest wrote just before
     * its vCPUs were paused) is served now, so totals stay exact. */
    event_loop_iterate(t->loop, false);

    __atomic_store_n(&t->tid, 0, __ATOMIC_RELEASE);
    iothread_current = NULL;
    rcu_thread_offline();
    return NULL;
}

bool iothread_start(IOThread *t, GError **errp)
{
    if (t->running) {
        return true;
    }
    /* Asynchronous signals (termination, SIG_IPI) are for the main loop and
     * the vCPUs; the thread inherits a mask that blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&t->thread, NULL, iothread_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(r),
                    "cannot create the thread of iothread '%s': %s", t->id, g_strerror(r));
        return false;
    }
    t->running = true;
    t->stop_requested = false;
    pthread_mutex_lock(&t->lock);
    while (!t->started) {
        pthread_cond_wait(&t->cond, &t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return true;
}

void iothread_stop(IOThread *t)
{
    if (!t->running || t->stop_requested) {
        return;
    }
    t->stop_requested = true;
    event_loop_quit(t->loop);
}

void iothread_join(IOThread *t)
{
    if (!t->running) {
        return;
    }
    iothread_stop(t);
    pthread_join(t->thread, NULL);
    t->running = false;
    t->stop_requested = false;
    pthread_mutex_lock(&t->lock);
    t->started = false;
    pthread_mutex_unlock(&t->lock);
}

void iothread_free(IOThread *t)
{
    if (!t) {
        return;
    }
    iothread_join(t);
    g_ptr_array_remove(iothread_registry, t);
    if (iothread_registry->len == 0) {
        g_ptr_array_free(iothread_registry, true);
        iothread_registry = NULL;
    }
    event_loop_free(t->loop);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    g_free(t->id);
    g_free(t);
}

const char *iothread_id(const IOThread *t)
{
    return t->id;
}

EventLoop *iothread_loop(IOThread *t)
{
    return t->loop;
}

pid_t iothread_thread_id(const IOThread *t)
{
    return __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
}

bool iothread_running(const IOThread *t)
{
    return t->running;
}

typedef struct IOThreadSyncCall {
    IOThread *t;
    event_cb_fn fn;
    void *opaque;
    BH *bh;
    bool done; /* under t->lock */
} IOThreadSyncCall;

static void iothread_sync_bh(void *opaque)
{
    IOThreadSyncCall *c = opaque;

    c->fn(c->opaque);
    bh_delete(c->bh);
    /* The caller's stack frame holds @c: touch it only under the lock, and
     * not after the broadcast lets the caller return. */
    pthread_mutex_lock(&c->t->lock);
    c->done = true;
    pthread_cond_broadcast(&c->t->cond);
    pthread_mutex_unlock(&c->t->lock);
}

void iothread_run_sync(IOThread *t, event_cb_fn fn, void *opaque)
{
    if (iothread_current == t) {
        fn(opaque);
        return;
    }
    /* A loop that was asked to stop may not run another BH: let it finish. */
    if (t->stop_requested) {
        iothread_join(t);
    }
    if (!t->running) {
        fn(opaque);
        return;
    }
    IOThreadSyncCall c = {.t = t, .fn = fn, .opaque = opaque};
    c.bh = bh_new(t->loop, "iothread-sync", iothread_sync_bh, &c);
    bh_schedule(c.bh);
    pthread_mutex_lock(&t->lock);
    while (!c.done) {
        pthread_cond_wait(&t->cond, &t->lock);
    }
    pthread_mutex_unlock(&t->lock);
}

static void iothread_info_free(gpointer p)
{
    IOThreadInfo *info = p;
    g_free(info->id);
    g_free(info);
}

GPtrArray *iothread_query_all(void)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(iothread_info_free);

    for (guint i = 0; iothread_registry && i < iothread_registry->len; i++) {
        IOThread *t = iothread_registry->pdata[i];
        IOThreadInfo *info = g_new0(IOThreadInfo, 1);
        info->id = g_strdup(t->id);
        info->thread_id = iothread_thread_id(t);
        info->backend = event_loop_backend(t->loop);
        g_ptr_array_add(out, info);
    }
    return out;
}
