/* Event-loop core shared by both backends: clocks, timers, bottom halves, wake-up, notifiers. */
#include "kvmloop/event_loop.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "event_loop_int.h"
#include "kvmloop/error.h"

/* The loop whose iteration is running on this thread, if any. Lets callbacks
 * that change the loop's state skip the eventfd write: the loop looks at its
 * state again before it next polls. */
static __thread EventLoop *loop_current;

/* Process-wide virtual clock. Kept under a mutex rather than a seqlock: it is
 * read a few times per iteration, and TSan understands a mutex. Lock order:
 * a loop's lock, then this one. */
static struct {
    pthread_mutex_t lock;
    bool enabled;
    int64_t offset; /* virtual minus realtime while enabled */
    int64_t frozen; /* the virtual time while disabled */
} vclock = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .enabled = true,
};

/* Every live loop, so that toggling the virtual clock can wake them all to
 * recompute their deadlines. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static GQueue registry = G_QUEUE_INIT;

/* ---- Clocks ---------------------------------------------------------- */

static int64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Read the virtual clock into @now; returns whether it is running. */
static bool vclock_read(int64_t *now)
{
    bool enabled;

    pthread_mutex_lock(&vclock.lock);
    enabled = vclock.enabled;
    *now = enabled ? realtime_ns() + vclock.offset : vclock.frozen;
    pthread_mutex_unlock(&vclock.lock);
    return enabled;
}

/* Read @type's clock into @now; false if timers on it must not run now. */
static bool clock_read(ClockType type, int64_t *now)
{
    if (type == CLOCK_TYPE_VIRTUAL) {
        return vclock_read(now);
    }
    *now = realtime_ns();
    return true;
}

/* Nanoseconds on @type's clock. Any thread. */
int64_t clock_get_ns(ClockType type)
{
    int64_t now;

    clock_read(type, &now);
    return now;
}

/* Start or stop the virtual clock, then wake every loop so that it recomputes
 * its deadline: virtual timers neither fire while stopped nor wait for a stale
 * deadline after a restart. Any thread. */
void clock_virtual_set_enabled(bool enabled)
{
    bool changed;

    pthread_mutex_lock(&vclock.lock);
    changed = vclock.enabled != enabled;
    if (changed && !enabled) {
        vclock.frozen = realtime_ns() + vclock.offset;
    } else if (changed) {
        /* Resume from where it stopped, without a jump. */
        vclock.offset = vclock.frozen - realtime_ns();
    }
    vclock.enabled = enabled;
    pthread_mutex_unlock(&vclock.lock);

    if (!changed) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    for (GList *l = registry.head; l; l = l->next) {
        event_loop_notify(l->data);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* True while the virtual clock runs. Any thread. */
bool clock_virtual_enabled(void)
{
    bool enabled;

    pthread_mutex_lock(&vclock.lock);
    enabled = vclock.enabled;
    pthread_mutex_unlock(&vclock.lock);
    return enabled;
}

/* ---- Backends and loop lifetime --------------------------------------- */

/* Parse "glib" or "libevent" into @out; false (and @out untouched) otherwise. */
bool event_loop_backend_parse(const char *name, EventLoopBackend *out)
{
    if (g_strcmp0(name, "glib") == 0) {
        *out = EVENT_LOOP_GLIB;
        return true;
    }
    if (g_strcmp0(name, "libevent") == 0) {
        *out = EVENT_LOOP_LIBEVENT;
        return true;
    }
    return false;
}

/* The name event_loop_backend_parse() accepts for @be. */
const char *event_loop_backend_name(EventLoopBackend be)
{
    switch (be) {
    case EVENT_LOOP_GLIB:
        return "glib";
    case EVENT_LOOP_LIBEVENT:
        return "libevent";
    }
    return "unknown";
}

static const EventLoopOps *backend_ops(EventLoopBackend be)
{
    switch (be) {
    case EVENT_LOOP_GLIB:
        return &event_loop_glib_ops;
    case EVENT_LOOP_LIBEVENT:
        return &event_loop_libevent_ops;
    }
    return NULL;
}

/* Create a loop on backend @be; @hooks (copied) may be NULL. Any thread.
 * Returns NULL with @errp set on failure. */
EventLoop *event_loop_new(EventLoopBackend be, const EventLoopHooks *hooks, GError **errp)
{
    const EventLoopOps *ops = backend_ops(be);
    EventLoop *loop;
    int ret;

    if (!ops) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown event loop backend %d",
                    (int)be);
        return NULL;
    }
    loop = g_new0(EventLoop, 1);
    loop->backend = be;
    loop->ops = ops;
    if (hooks) {
        loop->has_hooks = true;
        loop->hooks = *hooks;
    }
    ret = event_notifier_init(&loop->wake, false);
    if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret),
                    "eventfd for the event loop failed: %s", g_strerror(-ret));
        goto free_loop;
    }
    pthread_mutex_init(&loop->lock, NULL);
    g_queue_init(&loop->watches);
    g_queue_init(&loop->timers[CLOCK_TYPE_REALTIME]);
    g_queue_init(&loop->timers[CLOCK_TYPE_VIRTUAL]);
    g_queue_init(&loop->all_timers);
    g_queue_init(&loop->bh_queue);
    g_queue_init(&loop->all_bhs);
    if (!ops->init(loop, errp)) {
        goto cleanup_wake;
    }

    loop->registry_link.data = loop;
    pthread_mutex_lock(&registry_lock);
    g_queue_push_tail_link(&registry, &loop->registry_link);
    pthread_mutex_unlock(&registry_lock);
    return loop;

cleanup_wake:
    pthread_mutex_destroy(&loop->lock);
    event_notifier_cleanup(&loop->wake);
free_loop:
    g_free(loop);
    return NULL;
}

/* Destroy a loop that is not running, with whatever watches, timers and BHs
 * are still attached to it. No other thread may still use the loop or its
 * objects. */
void event_loop_free(EventLoop *loop)
{
    GList *l;

    if (!loop) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    g_queue_unlink(&registry, &loop->registry_link);
    pthread_mutex_unlock(&registry_lock);

    while ((l = g_queue_pop_head_link(&loop->watches))) {
        EventWatch *w = l->data;

        if (!w->removed) {
            loop->ops->watch_remove(w);
        }
        g_free(w);
    }
    while ((l = g_queue_pop_head_link(&loop->all_timers))) {
        g_free(l->data);
    }
    while ((l = g_queue_pop_head_link(&loop->all_bhs))) {
        g_free(l->data);
    }
    loop->ops->cleanup(loop);
    pthread_mutex_destroy(&loop->lock);
    event_notifier_cleanup(&loop->wake);
    g_free(loop);
}

/* The backend @loop was created with. */
EventLoopBackend event_loop_backend(EventLoop *loop)
{
    return loop->backend;
}

/* ---- Wake-up ------------------------------------------------------------ */

/* Wake @loop out of poll. Any thread, async-signal-safe: an atomic exchange
 * and at most one write(2). */
void event_loop_notify(EventLoop *loop)
{
    /* Pairs with the store in event_loop_wakeup_consume(): the caller's state
     * change is ordered before this exchange, so either we see 0 and write,
     * or the loop's clear comes after and its next look at the state sees it. */
    if (__atomic_exchange_n(&loop->notified, 1, __ATOMIC_SEQ_CST) == 0) {
        event_notifier_set(&loop->wake);
    }
}

/* Wake @loop unless the caller is its own thread inside an iteration. */
static void loop_kick(EventLoop *loop)
{
    if (loop_current != loop) {
        event_loop_notify(loop);
    }
}

void event_loop_wakeup_consume(EventLoop *loop)
{
    event_notifier_test_and_clear(&loop->wake);
    /* Drain first, then clear: a notifier that still sees 1 finds its change
     * picked up by the dispatch that follows this store; one that sees 0
     * writes again. Pairs with the exchange in event_loop_notify(). */
    __atomic_store_n(&loop->notified, 0, __ATOMIC_SEQ_CST);
}

/* Make event_loop_run() return once the current iteration ends. A quit that
 * arrives while the loop is not running makes the next event_loop_run()
 * return at once. Any thread. */
void event_loop_quit(EventLoop *loop)
{
    __atomic_store_n(&loop->quit, 1, __ATOMIC_SEQ_CST);
    loop_kick(loop);
}

/* ---- Iteration ---------------------------------------------------------- */

/* Bracket each callback: the hooks (BQL, lock statistics) and the record
 * that this iteration ran something. */
static void callback_enter(EventLoop *loop, const char *site)
{
    if (loop->has_hooks && loop->hooks.enter) {
        loop->hooks.enter(loop->hooks.opaque, site);
    }
}

static void callback_leave(EventLoop *loop, const char *site)
{
    if (loop->has_hooks && loop->hooks.leave) {
        loop->hooks.leave(loop->hooks.opaque, site);
    }
    loop->ran = true;
}

/* Free the watches removed while the iteration was dispatching. */
static void loop_sweep_watches(EventLoop *loop)
{
    GList *l = loop->watches.head;

    while (l) {
        GList *next = l->next;
        EventWatch *w = l->data;

        if (w->removed) {
            g_queue_unlink(&loop->watches, l);
            g_free(w);
        }
        l = next;
    }
    loop->has_removed = false;
}

/* Run one iteration; true if any callback ran. Loop thread only, and not
 * from inside one of this loop's callbacks. */
bool event_loop_iterate(EventLoop *loop, bool blocking)
{
    EventLoop *prev = loop_current;

    loop_current = loop;
    loop->ran = false;
    loop->dispatching = true;
    loop->ops->iterate(loop, blocking);
    loop->dispatching = false;
    if (loop->has_removed) {
        loop_sweep_watches(loop);
    }
    loop_current = prev;
    return loop->ran;
}

/* Iterate until event_loop_quit(). Loop thread only. */
void event_loop_run(EventLoop *loop)
{
    while (!__atomic_load_n(&loop->quit, __ATOMIC_SEQ_CST)) {
        event_loop_iterate(loop, true);
    }
    __atomic_store_n(&loop->quit, 0, __ATOMIC_SEQ_CST);
}

int64_t event_loop_timeout_ns(EventLoop *loop)
{
    int64_t timeout = -1;

    pthread_mutex_lock(&loop->lock);
    if (!g_queue_is_empty(&loop->bh_queue)) {
        timeout = 0;
    }
    for (int type = 0; type < 2 && timeout != 0; type++) {
        GList *head = g_queue_peek_head_link(&loop->timers[type]);
        Timer *t = head ? head->data : NULL;
        int64_t now, delta;

        if (!t || !clock_read(type, &now)) {
            continue;
        }
        /* Compare before subtracting: @expire may be anywhere in int64_t. */
        delta = t->expire > now ? t->expire - now : 0;
        if (timeout < 0 || delta < timeout) {
            timeout = delta;
        }
    }
    pthread_mutex_unlock(&loop->lock);
    return timeout;
}

unsigned event_loop_events_from_poll(unsigned revents)
{
    unsigned events = 0;

    if (revents & POLLIN) {
        events |= EVENT_IN;
    }
    if (revents & POLLOUT) {
        events |= EVENT_OUT;
    }
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
        events |= EVENT_ERR;
    }
    return events;
}

void event_loop_dispatch_fd(EventWatch *w, unsigned revents)
{
    revents &= w->events | EVENT_ERR;
    if (w->removed || w->events == 0 || revents == 0) {
        return;
    }
    /* @w may be removed by its callback; the loop defers the free, so @w
     * stays valid here until the iteration ends. */
    callback_enter(w->loop, w->site);
    w->fn(w->opaque, w->fd, revents);
    callback_leave(w->loop, w->site);
}

/* Pick the first timer of @type that expired by @now and was armed before
 * this dispatch began (so a callback that re-arms its timer in the past does
 * not run forever), and unlink it. Called with loop->lock held. */
static Timer *timers_pop_expired_locked(EventLoop *loop, ClockType type, int64_t now, uint64_t gen)
{
    for (GList *l = loop->timers[type].head; l; l = l->next) {
        Timer *t = l->data;

        if (t->expire > now) {
            break;
        }
        if (t->arm_gen != gen) {
            g_queue_unlink(&loop->timers[type], l);
            t->pending = false;
            return t;
        }
    }
    return NULL;
}

static void loop_run_timers(EventLoop *loop, ClockType type)
{
    int64_t now;
    uint64_t gen;
    Timer *t;

    if (!clock_read(type, &now)) {
        return;
    }
    pthread_mutex_lock(&loop->lock);
    gen = ++loop->timer_gen;
    while ((t = timers_pop_expired_locked(loop, type, now, gen))) {
        const char *site = t->site;
        event_cb_fn cb = t->cb;
        void *opaque = t->opaque;

        /* The callback may re-arm, delete or free @t: do not touch it after. */
        pthread_mutex_unlock(&loop->lock);
        callback_enter(loop, site);
        cb(opaque);
        callback_leave(loop, site);
        pthread_mutex_lock(&loop->lock);
    }
    pthread_mutex_unlock(&loop->lock);
}

/* Run the BHs queued before this call; ones queued meanwhile (including a BH
 * rescheduling itself) wait for the next iteration, so fds are polled between
 * two runs of a BH. */
static void loop_run_bhs(EventLoop *loop)
{
    uint64_t gen;
    GList *l;

    pthread_mutex_lock(&loop->lock);
    gen = ++loop->bh_gen;
    while ((l = g_queue_peek_head_link(&loop->bh_queue)) && ((BH *)l->data)->queue_gen != gen) {
        BH *bh = l->data;
        const char *site = bh->site;
        event_cb_fn cb = bh->cb;
        void *opaque = bh->opaque;

        g_queue_unlink(&loop->bh_queue, l);
        bh->queued = false;
        pthread_mutex_unlock(&loop->lock);

        /* Pairs with the fetch-or in bh_schedule(): whoever set the flag,
         * including schedulers that found it set, happens before the run. A
         * zero means bh_cancel() withdrew the request. */
        if (__atomic_exchange_n(&bh->scheduled, 0, __ATOMIC_SEQ_CST)) {
            /* The callback may delete @bh: do not touch it after. */
            callback_enter(loop, site);
            cb(opaque);
            callback_leave(loop, site);
        }
        pthread_mutex_lock(&loop->lock);
    }
    pthread_mutex_unlock(&loop->lock);
}

void event_loop_dispatch_core(EventLoop *loop)
{
    loop_run_timers(loop, CLOCK_TYPE_REALTIME);
    loop_run_timers(loop, CLOCK_TYPE_VIRTUAL);
    loop_run_bhs(loop);
}

/* ---- Fd watches ----------------------------------------------------------- */

/* Watch @fd for @events; @name (not copied: a literal or a string that
 * outlives the watch) is the hooks' site. Loop thread, or before the loop
 * runs. Returns NULL if the backend refuses @fd (epoll rejects regular
 * files), with a warning naming the fd. */
EventWatch *event_loop_add_fd(EventLoop *loop, int fd, unsigned events, const char *name,
                              event_fd_fn fn, void *opaque)
{
    EventWatch *w = g_new0(EventWatch, 1);
    int ret;

    w->loop = loop;
    w->fd = fd;
    w->events = events & (EVENT_IN | EVENT_OUT);
    w->site = name ? name : "fd";
    w->fn = fn;
    w->opaque = opaque;
    ret = loop->ops->watch_add(w);
    if (ret < 0) {
        g_warning("watching fd %d (%s) with %s failed: %s", fd, w->site,
                  event_loop_backend_name(loop->backend), g_strerror(-ret));
        g_free(w);
        return NULL;
    }
    w->link.data = w;
    g_queue_push_tail_link(&loop->watches, &w->link);
    return w;
}

/* Change what @w waits for (EVENT_IN | EVENT_OUT; 0 pauses it). Loop thread. */
void event_watch_set_events(EventWatch *w, unsigned events)
{
    int ret;

    events &= EVENT_IN | EVENT_OUT;
    if (w->removed || w->events == events) {
        return;
    }
    w->events = events;
    ret = w->loop->ops->watch_update(w);
    if (ret < 0) {
        g_warning("changing the events of fd %d (%s) failed: %s", w->fd, w->site, g_strerror(-ret));
    }
}

/* Stop watching and free @w. Loop thread; safe from any callback of the loop,
 * including @w's own: a watch removed during an iteration is not dispatched
 * again and is freed when the iteration ends. */
void event_watch_remove(EventWatch *w)
{
    EventLoop *loop;

    if (!w || w->removed) {
        return;
    }
    loop = w->loop;
    loop->ops->watch_remove(w);
    if (loop->dispatching) {
        w->removed = true;
        loop->has_removed = true;
        return;
    }
    g_queue_unlink(&loop->watches, &w->link);
    g_free(w);
}

/* ---- Timers ----------------------------------------------------------------- */

/* Create an unarmed timer on @loop for @type's clock. @name (not copied) is the
 * hooks' site. Any thread. */
Timer *timer_new(EventLoop *loop, ClockType type, const char *name, event_cb_fn cb, void *opaque)
{
    Timer *t = g_new0(Timer, 1);

    t->loop = loop;
    t->type = type == CLOCK_TYPE_VIRTUAL ? CLOCK_TYPE_VIRTUAL : CLOCK_TYPE_REALTIME;
    t->site = name ? name : "timer";
    t->cb = cb;
    t->opaque = opaque;
    t->link.data = t;
    t->all_link.data = t;
    pthread_mutex_lock(&loop->lock);
    g_queue_push_tail_link(&loop->all_timers, &t->all_link);
    pthread_mutex_unlock(&loop->lock);
    return t;
}

static void timer_unlink_locked(Timer *t)
{
    if (t->pending) {
        g_queue_unlink(&t->loop->timers[t->type], &t->link);
        t->pending = false;
    }
}

/* Arm @t to fire once @t's clock reaches @expire_ns, replacing any earlier
 * expiry. Any thread; wakes the loop if @t is now its earliest timer. */
void timer_mod(Timer *t, int64_t expire_ns)
{
    EventLoop *loop = t->loop;
    GQueue *q = &loop->timers[t->type];
    GList *l;
    bool first;

    pthread_mutex_lock(&loop->lock);
    timer_unlink_locked(t);
    t->expire = expire_ns;
    t->arm_gen = loop->timer_gen;
    t->pending = true;
    /* Insert after timers with the same expiry, so they fire in arming order. */
    l = q->tail;
    while (l && ((Timer *)l->data)->expire > expire_ns) {
        l = l->prev;
    }
    if (l) {
        g_queue_insert_after_link(q, l, &t->link);
    } else {
        g_queue_push_head_link(q, &t->link);
    }
    first = q->head == &t->link;
    pthread_mutex_unlock(&loop->lock);

    if (first) {
        loop_kick(loop);
    }
}

/* Disarm @t; a no-op if it is not pending. Any thread. A callback already
 * running on the loop thread is not interrupted. */
void timer_del(Timer *t)
{
    pthread_mutex_lock(&t->loop->lock);
    timer_unlink_locked(t);
    pthread_mutex_unlock(&t->loop->lock);
}

/* True if @t is armed and has not fired yet. Any thread. */
bool timer_pending(Timer *t)
{
    bool pending;

    pthread_mutex_lock(&t->loop->lock);
    pending = t->pending;
    pthread_mutex_unlock(&t->loop->lock);
    return pending;
}

/* Disarm and free @t. The loop thread (also from @t's own callback), or any
 * thread once the loop has stopped. */
void timer_free(Timer *t)
{
    if (!t) {
        return;
    }
    pthread_mutex_lock(&t->loop->lock);
    timer_unlink_locked(t);
    g_queue_unlink(&t->loop->all_timers, &t->all_link);
    pthread_mutex_unlock(&t->loop->lock);
    g_free(t);
}

/* ---- Bottom halves ------------------------------------------------------------ */

/* Create an unscheduled BH on @loop; @name (not copied) is the hooks' site.
 * Any thread. */
BH *bh_new(EventLoop *loop, const char *name, event_cb_fn cb, void *opaque)
{
    BH *bh = g_new0(BH, 1);

    bh->loop = loop;
    bh->site = name ? name : "bh";
    bh->cb = cb;
    bh->opaque = opaque;
    bh->queue_link.data = bh;
    bh->all_link.data = bh;
    pthread_mutex_lock(&loop->lock);
    g_queue_push_tail_link(&loop->all_bhs, &bh->all_link);
    pthread_mutex_unlock(&loop->lock);
    return bh;
}

/* Run @bh once, soon, on its loop's thread; a no-op while a run is already
 * pending. Any thread; lock-free when already scheduled. Everything the
 * caller did before is visible to the callback. */
void bh_schedule(BH *bh)
{
    EventLoop *loop = bh->loop;

    /* Pairs with the exchange in loop_run_bhs(): a caller that finds the flag
     * set is served by the run that clears it. */
    if (__atomic_fetch_or(&bh->scheduled, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    pthread_mutex_lock(&loop->lock);
    if (!bh->queued) {
        bh->queued = true;
        bh->queue_gen = loop->bh_gen;
        g_queue_push_tail_link(&loop->bh_queue, &bh->queue_link);
    }
    pthread_mutex_unlock(&loop->lock);
    loop_kick(loop);
}

/* Withdraw a pending run of @bh. Any thread; a run already started is not
 * interrupted, and a bh_schedule() racing with this may win or lose. */
void bh_cancel(BH *bh)
{
    EventLoop *loop = bh->loop;

    pthread_mutex_lock(&loop->lock);
    if (bh->queued) {
        g_queue_unlink(&loop->bh_queue, &bh->queue_link);
        bh->queued = false;
    }
    __atomic_exchange_n(&bh->scheduled, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&loop->lock);
}

/* Cancel and free @bh. Loop thread only (also from @bh's own callback); no
 * other thread may schedule @bh any more. */
void bh_delete(BH *bh)
{
    EventLoop *loop;

    if (!bh) {
        return;
    }
    loop = bh->loop;
    pthread_mutex_lock(&loop->lock);
    if (bh->queued) {
        g_queue_unlink(&loop->bh_queue, &bh->queue_link);
    }
    g_queue_unlink(&loop->all_bhs, &bh->all_link);
    pthread_mutex_unlock(&loop->lock);
    g_free(bh);
}

/* ---- Event notifiers ---------------------------------------------------------- */

/* Create @e's eventfd, already set if @active. 0 or -errno. Any thread. */
int event_notifier_init(EventNotifier *e, bool active)
{
    int fd = eventfd(active ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0) {
        e->fd = -1;
        return -errno;
    }
    e->fd = fd;
    return 0;
}

/* Close @e's eventfd; safe on a notifier that failed to initialize. */
void event_notifier_cleanup(EventNotifier *e)
{
    if (e->fd >= 0) {
        close(e->fd);
        e->fd = -1;
    }
}

/* Set @e. Any thread, async-signal-safe (preserves errno). 0 or -errno. */
int event_notifier_set(EventNotifier *e)
{
    static const uint64_t one = 1;
    int saved_errno = errno;
    int ret = 0;
    ssize_t n;

    do {
        n = write(e->fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is saturated, so the notifier is set anyway. */
    if (n < 0 && errno != EAGAIN) {
        ret = -errno;
    }
    errno = saved_errno;
    return ret;
}

/* Clear @e; true if it was set. Any thread, usually the one polling it. */
bool event_notifier_test_and_clear(EventNotifier *e)
{
    uint64_t value;
    ssize_t n;

    do {
        n = read(e->fd, &value, sizeof(value));
    } while (n < 0 && errno == EINTR);
    return n == sizeof(value) && value != 0;
}

/* The eventfd to poll for readability. */
int event_notifier_get_fd(const EventNotifier *e)
{
    return e->fd;
}
