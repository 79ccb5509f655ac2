/* Unit tests for the event loop: fds, timers, clocks, BHs, quit, hooks and notifiers. */
#include "kvmloop/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

/* Failure guard only: every wait below normally ends within milliseconds. */
#define GUARD_NS (5 * 1000000000LL)
#define MS       1000000LL

static EventLoop *loop_new_for(gconstpointer data, const EventLoopHooks *hooks)
{
    g_autoptr(GError) err = NULL;
    EventLoop *loop = event_loop_new(GPOINTER_TO_INT(data), hooks, &err);

    g_assert_no_error(err);
    g_assert_nonnull(loop);
    g_assert_cmpint(event_loop_backend(loop), ==, GPOINTER_TO_INT(data));
    return loop;
}

static int load_int(int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void store_int(int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static void guard_cb(void *opaque)
{
    store_int(opaque, 1);
}

/* Iterate (blocking) until *@counter reaches @target; fail if that takes
 * longer than the guard. */
static void run_until(EventLoop *loop, int *counter, int target)
{
    int guard = 0;
    Timer *t = timer_new(loop, CLOCK_TYPE_REALTIME, "guard", guard_cb, &guard);

    timer_mod(t, clock_get_ns(CLOCK_TYPE_REALTIME) + GUARD_NS);
    while (load_int(counter) < target && !load_int(&guard)) {
        event_loop_iterate(loop, true);
    }
    timer_free(t);
    g_assert_cmpint(guard, ==, 0);
    g_assert_cmpint(load_int(counter), >=, target);
}

static void make_pipe(int fds[2])
{
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
}

/* Best effort: wait until thread @tid sleeps (in poll, we hope), so that a
 * cross-thread request really has to wake it. Never fails: if the state
 * cannot be seen, the request just arrives earlier. */
static void wait_until_sleeping(pid_t tid)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    for (int i = 0; i < 20000; i++) {
        g_autofree char *stat = NULL;
        const char *p;

        if (!g_file_get_contents(path, &stat, NULL, NULL)) {
            return;
        }
        p = strrchr(stat, ')');
        if (p && p[1] == ' ' && p[2] == 'S') {
            return;
        }
        g_usleep(100);
    }
}

/* ---- Backend names --------------------------------------------------------- */

static void test_backend_names(void)
{
    EventLoopBackend be = EVENT_LOOP_GLIB;

    g_assert_true(event_loop_backend_parse("libevent", &be));
    g_assert_cmpint(be, ==, EVENT_LOOP_LIBEVENT);
    g_assert_true(event_loop_backend_parse("glib", &be));
    g_assert_cmpint(be, ==, EVENT_LOOP_GLIB);
    g_assert_false(event_loop_backend_parse("epoll", &be));
    g_assert_false(event_loop_backend_parse("", &be));
    g_assert_cmpstr(event_loop_backend_name(EVENT_LOOP_GLIB), ==, "glib");
    g_assert_cmpstr(event_loop_backend_name(EVENT_LOOP_LIBEVENT), ==, "libevent");
}

/* ---- Fd watches ------------------------------------------------------------- */

typedef struct FdState {
    int calls;
    unsigned revents;
    int fd;
    bool drain;
    EventWatch *remove_in_cb[2];
} FdState;

static void fd_cb(void *opaque, int fd, unsigned revents)
{
    FdState *s = opaque;
    char buf[64];

    s->calls++;
    s->revents = revents;
    s->fd = fd;
    if (s->drain) {
        while (read(fd, buf, sizeof(buf)) > 0) {
        }
    }
    for (int i = 0; i < 2; i++) {
        if (s->remove_in_cb[i]) {
            event_watch_remove(s->remove_in_cb[i]);
            s->remove_in_cb[i] = NULL;
        }
    }
}

static void test_fd_readiness(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    FdState in = {.drain = true}, out = {0};
    EventWatch *win, *wout;
    int fds[2];

    make_pipe(fds);
    win = event_loop_add_fd(loop, fds[0], EVENT_IN, "pipe-in", fd_cb, &in);
    g_assert_nonnull(win);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(in.calls, ==, 0);

    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(in.calls, ==, 1);
    g_assert_cmpuint(in.revents, ==, EVENT_IN);
    g_assert_cmpint(in.fd, ==, fds[0]);

    /* Paused, a readable fd is not reported; resumed, it is. */
    event_watch_set_events(win, 0);
    g_assert_cmpint(write(fds[1], "y", 1), ==, 1);
    g_assert_false(event_loop_iterate(loop, false));
    event_watch_set_events(win, EVENT_IN);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(in.calls, ==, 2);

    /* An empty pipe is writable. */
    wout = event_loop_add_fd(loop, fds[1], EVENT_OUT, "pipe-out", fd_cb, &out);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(out.calls, ==, 1);
    g_assert_cmpuint(out.revents, ==, EVENT_OUT);
    event_watch_remove(wout);

    /* Hang-up is reported as EVENT_ERR; the watch removes itself. */
    in.remove_in_cb[0] = win;
    close(fds[1]);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(in.calls, ==, 3);
    g_assert_cmpuint(in.revents & EVENT_ERR, ==, EVENT_ERR);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(in.calls, ==, 3);

    close(fds[0]);
    event_loop_free(loop);
}

static void test_fd_remove_in_callback(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    FdState s = {0};
    EventWatch *w[2];
    int p[2][2];

    /* Two ready watches: whichever runs first removes both, so the other one,
     * already found ready in the same iteration, must not run. */
    for (int i = 0; i < 2; i++) {
        make_pipe(p[i]);
        g_assert_cmpint(write(p[i][1], "x", 1), ==, 1);
        w[i] = event_loop_add_fd(loop, p[i][0], EVENT_IN, "pipe", fd_cb, &s);
    }
    s.remove_in_cb[0] = w[0];
    s.remove_in_cb[1] = w[1];
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(s.calls, ==, 1);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(s.calls, ==, 1);

    /* A watch added and left in place is freed by event_loop_free(). */
    g_assert_nonnull(event_loop_add_fd(loop, p[0][0], EVENT_IN, "leftover", fd_cb, &s));
    event_loop_free(loop);
    for (int i = 0; i < 2; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
}

/* ---- Timers --------------------------------------------------------------------- */

typedef struct TimerLog {
    int order[8];
    int fired;
    Timer *self;
    Timer *victim;
    int rearms_left;
    bool free_self;
} TimerLog;

typedef struct TimerSlot {
    TimerLog *log;
    int id;
} TimerSlot;

static void timer_log_cb(void *opaque)
{
    TimerSlot *slot = opaque;
    TimerLog *log = slot->log;

    g_assert_cmpint(log->fired, <, (int)G_N_ELEMENTS(log->order));
    log->order[log->fired] = slot->id;
    store_int(&log->fired, log->fired + 1);
}

static void test_timer_order(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    TimerLog log = {0};
    TimerSlot slots[5];
    Timer *t[5];
    int64_t now = clock_get_ns(CLOCK_TYPE_REALTIME);
    static const int64_t offsets[5] = {3 * MS, 1 * MS, 2 * MS, 2 * MS, 0};

    TimerSlot never_slot = {.log = &log, .id = 99};
    Timer *never = timer_new(loop, CLOCK_TYPE_REALTIME, "never", timer_log_cb, &never_slot);

    /* The far end of the clock must not confuse the deadline arithmetic. */
    timer_mod(never, INT64_MAX);
    for (int i = 0; i < 5; i++) {
        slots[i] = (TimerSlot){.log = &log, .id = i};
        t[i] = timer_new(loop, CLOCK_TYPE_REALTIME, "order", timer_log_cb, &slots[i]);
        g_assert_false(timer_pending(t[i]));
        timer_mod(t[i], now + offsets[i]);
        g_assert_true(timer_pending(t[i]));
    }
    run_until(loop, &log.fired, 5);
    /* By expiry; equal expiries in arming order. */
    g_assert_cmpint(log.order[0], ==, 4);
    g_assert_cmpint(log.order[1], ==, 1);
    g_assert_cmpint(log.order[2], ==, 2);
    g_assert_cmpint(log.order[3], ==, 3);
    g_assert_cmpint(log.order[4], ==, 0);
    for (int i = 0; i < 5; i++) {
        g_assert_false(timer_pending(t[i]));
        timer_free(t[i]);
    }
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(log.fired, ==, 5);
    g_assert_true(timer_pending(never));
    timer_free(never);
    event_loop_free(loop);
}

static void rearm_cb(void *opaque)
{
    TimerLog *log = opaque;

    log->fired++;
    if (log->victim) {
        timer_del(log->victim);
        g_assert_false(timer_pending(log->victim));
    }
    if (log->rearms_left > 0) {
        log->rearms_left--;
        /* Already expired: it must still wait for the next iteration. */
        timer_mod(log->self, 0);
        g_assert_true(timer_pending(log->self));
    }
    if (log->free_self) {
        timer_free(log->self);
    }
}

static void test_timer_rearm_delete(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    TimerLog a = {.rearms_left = 4}, b = {0}, c = {.free_self = true};
    Timer *leftover;

    /* A timer re-arming itself in the past runs once per iteration. */
    a.self = timer_new(loop, CLOCK_TYPE_REALTIME, "rearm", rearm_cb, &a);
    timer_mod(a.self, 0);
    for (int i = 1; i <= 5; i++) {
        g_assert_true(event_loop_iterate(loop, false));
        g_assert_cmpint(a.fired, ==, i);
    }
    g_assert_false(timer_pending(a.self));
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(a.fired, ==, 5);

    /* A deletes B, due at the same time but armed after it. */
    b.self = timer_new(loop, CLOCK_TYPE_REALTIME, "victim", rearm_cb, &b);
    a.victim = b.self;
    timer_mod(a.self, 1);
    timer_mod(b.self, 1);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(a.fired, ==, 6);
    g_assert_cmpint(b.fired, ==, 0);

    /* Deleted before it is due. */
    timer_mod(b.self, 0);
    timer_del(b.self);
    g_assert_false(timer_pending(b.self));
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(b.fired, ==, 0);

    /* A timer freeing itself from its callback. */
    c.self = timer_new(loop, CLOCK_TYPE_REALTIME, "free-self", rearm_cb, &c);
    timer_mod(c.self, 0);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(c.fired, ==, 1);

    /* An armed timer left behind is freed by event_loop_free(). */
    leftover = timer_new(loop, CLOCK_TYPE_VIRTUAL, "leftover", rearm_cb, &b);
    timer_mod(leftover, INT64_MAX);
    timer_free(a.self);
    timer_free(b.self);
    event_loop_free(loop);
}

typedef struct CrossThread {
    EventLoop *loop;
    pid_t loop_tid;
    Timer *timer;
    BH *bh;
    int *sample;
    void *opaque;
} CrossThread;

static void *timer_mod_thread(void *opaque)
{
    CrossThread *ct = opaque;

    wait_until_sleeping(ct->loop_tid);
    timer_mod(ct->timer, clock_get_ns(CLOCK_TYPE_REALTIME));
    return NULL;
}

static void count_cb(void *opaque)
{
    int *count = opaque;

    store_int(count, load_int(count) + 1);
}

static void test_timer_cross_thread(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    int fired = 0;
    Timer *t = timer_new(loop, CLOCK_TYPE_REALTIME, "far", count_cb, &fired);
    CrossThread ct = {.loop = loop, .loop_tid = gettid(), .timer = t};
    pthread_t thread;

    /* The loop sleeps towards a deadline a minute away; another thread moves
     * the timer to now, which must wake the loop. */
    timer_mod(t, clock_get_ns(CLOCK_TYPE_REALTIME) + 60000 * MS);
    g_assert_cmpint(pthread_create(&thread, NULL, timer_mod_thread, &ct), ==, 0);
    run_until(loop, &fired, 1);
    pthread_join(thread, NULL);
    g_assert_cmpint(fired, ==, 1);
    timer_free(t);
    event_loop_free(loop);
}

/* ---- Virtual clock ------------------------------------------------------------- */

static void test_clock_virtual(void)
{
    int64_t v1, v2, v3, r0, r1;

    g_assert_true(clock_virtual_enabled());
    clock_virtual_set_enabled(false);
    g_assert_false(clock_virtual_enabled());
    v1 = clock_get_ns(CLOCK_TYPE_VIRTUAL);
    r0 = clock_get_ns(CLOCK_TYPE_REALTIME);
    while (clock_get_ns(CLOCK_TYPE_REALTIME) < r0 + MS) {
        g_usleep(100);
    }
    v2 = clock_get_ns(CLOCK_TYPE_VIRTUAL);
    g_assert_cmpint(v2, ==, v1);

    /* Resuming continues from the frozen value, without a jump. */
    r0 = clock_get_ns(CLOCK_TYPE_REALTIME);
    clock_virtual_set_enabled(true);
    v3 = clock_get_ns(CLOCK_TYPE_VIRTUAL);
    r1 = clock_get_ns(CLOCK_TYPE_REALTIME);
    g_assert_true(clock_virtual_enabled());
    g_assert_cmpint(v3, >=, v1);
    g_assert_cmpint(v3 - v1, <=, r1 - r0);
    while (clock_get_ns(CLOCK_TYPE_VIRTUAL) == v3) {
        g_usleep(1);
    }
    g_assert_cmpint(clock_get_ns(CLOCK_TYPE_VIRTUAL), >, v3);
}

static void *clock_enable_thread(void *opaque)
{
    CrossThread *ct = opaque;

    wait_until_sleeping(ct->loop_tid);
    clock_virtual_set_enabled(true);
    return NULL;
}

static void test_timer_virtual(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    int vfired = 0, rfired = 0;
    Timer *vt = timer_new(loop, CLOCK_TYPE_VIRTUAL, "virtual", count_cb, &vfired);
    Timer *rt = timer_new(loop, CLOCK_TYPE_REALTIME, "real", count_cb, &rfired);
    CrossThread ct = {.loop = loop, .loop_tid = gettid()};
    pthread_t thread;

    /* Stopped, the virtual clock never reaches even an already-due timer,
     * while realtime timers keep firing. */
    clock_virtual_set_enabled(false);
    timer_mod(vt, clock_get_ns(CLOCK_TYPE_VIRTUAL));
    timer_mod(rt, clock_get_ns(CLOCK_TYPE_REALTIME) + 5 * MS);
    run_until(loop, &rfired, 1);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(vfired, ==, 0);
    g_assert_true(timer_pending(vt));

    /* Restarted from another thread while the loop sleeps with no deadline:
     * the loop must wake up and fire the timer. */
    g_assert_cmpint(pthread_create(&thread, NULL, clock_enable_thread, &ct), ==, 0);
    run_until(loop, &vfired, 1);
    pthread_join(thread, NULL);
    g_assert_true(clock_virtual_enabled());
    g_assert_cmpint(vfired, ==, 1);

    /* Running, a virtual timer behaves like a realtime one. */
    timer_mod(vt, clock_get_ns(CLOCK_TYPE_VIRTUAL) + 2 * MS);
    run_until(loop, &vfired, 2);

    timer_free(vt);
    timer_free(rt);
    event_loop_free(loop);
}

/* ---- Bottom halves ------------------------------------------------------------- */

#define BH_THREADS    4
#define BH_PER_THREAD 10000

typedef struct BHStress {
    EventLoop *loop;
    BH *bh;
    int requests; /* raised before each bh_schedule(), drained by the BH */
    int served;   /* loop thread only */
    int runs;     /* loop thread only */
    int finished; /* scheduling threads done */
} BHStress;

static void stress_bh_cb(void *opaque)
{
    BHStress *s = opaque;

    s->served += __atomic_exchange_n(&s->requests, 0, __ATOMIC_SEQ_CST);
    s->runs++;
}

static void *stress_thread(void *opaque)
{
    BHStress *s = opaque;

    for (int i = 0; i < BH_PER_THREAD; i++) {
        __atomic_fetch_add(&s->requests, 1, __ATOMIC_SEQ_CST);
        bh_schedule(s->bh);
    }
    __atomic_fetch_add(&s->finished, 1, __ATOMIC_SEQ_CST);
    event_loop_notify(s->loop);
    return NULL;
}

static void test_bh_threads(gconstpointer data)
{
    BHStress s = {.loop = loop_new_for(data, NULL)};
    pthread_t threads[BH_THREADS];

    s.bh = bh_new(s.loop, "stress", stress_bh_cb, &s);
    for (int i = 0; i < BH_THREADS; i++) {
        g_assert_cmpint(pthread_create(&threads[i], NULL, stress_thread, &s), ==, 0);
    }
    run_until(s.loop, &s.finished, BH_THREADS);
    for (int i = 0; i < BH_THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    /* Every request left is covered by a pending run. */
    event_loop_iterate(s.loop, false);
    g_assert_cmpint(load_int(&s.requests), ==, 0);
    g_assert_cmpint(s.served, ==, BH_THREADS * BH_PER_THREAD);
    g_assert_cmpint(s.runs, >=, 1);
    g_assert_cmpint(s.runs, <=, BH_THREADS * BH_PER_THREAD);
    g_assert_false(event_loop_iterate(s.loop, false));
    bh_delete(s.bh);
    event_loop_free(s.loop);
}

typedef struct BHState {
    BH *bh;
    int runs;
    bool reschedule;
    bool delete_self;
} BHState;

static void bh_state_cb(void *opaque)
{
    BHState *s = opaque;

    s->runs++;
    /* A BH that reschedules itself must not run again in the same iteration. */
    g_assert_cmpint(s->runs, <=, 10);
    if (s->reschedule) {
        bh_schedule(s->bh);
    }
    if (s->delete_self) {
        bh_delete(s->bh);
    }
}

static void test_bh_semantics(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    BHState a = {0}, d = {.delete_self = true};
    FdState fd = {.drain = true};
    EventWatch *w;
    int fds[2];

    /* Coalesced: two schedules, one run. A blocking iteration does not wait. */
    a.bh = bh_new(loop, "a", bh_state_cb, &a);
    bh_schedule(a.bh);
    bh_schedule(a.bh);
    g_assert_true(event_loop_iterate(loop, true));
    g_assert_cmpint(a.runs, ==, 1);
    g_assert_false(event_loop_iterate(loop, false));

    /* Cancelled before it runs. */
    bh_schedule(a.bh);
    bh_cancel(a.bh);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(a.runs, ==, 1);

    /* Rescheduling itself: once per iteration, and fds still get polled. */
    make_pipe(fds);
    w = event_loop_add_fd(loop, fds[0], EVENT_IN, "pipe", fd_cb, &fd);
    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    a.reschedule = true;
    bh_schedule(a.bh);
    for (int i = 1; i <= 3; i++) {
        g_assert_true(event_loop_iterate(loop, true));
        g_assert_cmpint(a.runs, ==, 1 + i);
    }
    g_assert_cmpint(fd.calls, ==, 1);
    bh_cancel(a.bh);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(a.runs, ==, 4);
    event_watch_remove(w);

    /* Deleting itself from its callback. */
    d.bh = bh_new(loop, "d", bh_state_cb, &d);
    bh_schedule(d.bh);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(d.runs, ==, 1);

    /* A scheduled BH left behind is freed by event_loop_free(). */
    a.reschedule = false;
    bh_schedule(a.bh);
    bh_schedule(bh_new(loop, "leftover", bh_state_cb, &d));
    event_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Quit and notify ------------------------------------------------------------ */

static void *quit_thread(void *opaque)
{
    CrossThread *ct = opaque;

    wait_until_sleeping(ct->loop_tid);
    event_loop_quit(ct->loop);
    return NULL;
}

static void *notify_thread(void *opaque)
{
    CrossThread *ct = opaque;

    wait_until_sleeping(ct->loop_tid);
    event_loop_notify(ct->loop);
    return NULL;
}

static void guard_quit_cb(void *opaque)
{
    CrossThread *ct = opaque;

    store_int(ct->sample, 1);
    event_loop_quit(ct->loop);
}

static void quit_bh_cb(void *opaque)
{
    event_loop_quit(opaque);
}

static void test_quit(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    int guard = 0;
    CrossThread ct = {.loop = loop, .loop_tid = gettid(), .sample = &guard};
    Timer *t = timer_new(loop, CLOCK_TYPE_REALTIME, "guard", guard_quit_cb, &ct);
    BH *bh = bh_new(loop, "quit", quit_bh_cb, loop);
    pthread_t thread;

    /* From another thread while the loop sleeps. */
    timer_mod(t, clock_get_ns(CLOCK_TYPE_REALTIME) + GUARD_NS);
    g_assert_cmpint(pthread_create(&thread, NULL, quit_thread, &ct), ==, 0);
    event_loop_run(loop);
    pthread_join(thread, NULL);
    g_assert_cmpint(guard, ==, 0);

    /* From a callback. */
    bh_schedule(bh);
    event_loop_run(loop);
    g_assert_cmpint(guard, ==, 0);

    /* A bare notify wakes a blocking iteration that then runs nothing. */
    g_assert_cmpint(pthread_create(&thread, NULL, notify_thread, &ct), ==, 0);
    g_assert_false(event_loop_iterate(loop, true));
    pthread_join(thread, NULL);
    g_assert_cmpint(guard, ==, 0);

    timer_free(t);
    bh_delete(bh);
    event_loop_free(loop);
}

/* ---- Hooks ----------------------------------------------------------------------- */

typedef struct HookState {
    int in_hook; /* atomic: sampled by another thread while the loop sleeps */
    int enters;
    int leaves;
    const char *site;
    int callbacks;
} HookState;

static void hook_enter(void *opaque, const char *site)
{
    HookState *h = opaque;

    g_assert_cmpint(load_int(&h->in_hook), ==, 0);
    store_int(&h->in_hook, 1);
    h->enters++;
    h->site = site;
}

static void hook_leave(void *opaque, const char *site)
{
    HookState *h = opaque;

    g_assert_cmpint(load_int(&h->in_hook), ==, 1);
    g_assert_cmpstr(site, ==, h->site);
    store_int(&h->in_hook, 0);
    h->leaves++;
}

typedef struct HookedCb {
    HookState *h;
    const char *expect_site;
    int *done;
} HookedCb;

static void hooked_check(HookedCb *c)
{
    g_assert_cmpint(load_int(&c->h->in_hook), ==, 1);
    g_assert_cmpstr(c->h->site, ==, c->expect_site);
    c->h->callbacks++;
    if (c->done) {
        store_int(c->done, 1);
    }
}

static void hooked_cb(void *opaque)
{
    hooked_check(opaque);
}

static void hooked_fd_cb(void *opaque, int fd, unsigned revents)
{
    char buf[8];

    g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 1);
    hooked_check(opaque);
}

static void *sample_thread(void *opaque)
{
    CrossThread *ct = opaque;
    HookState *h = ct->opaque;

    /* 1 if the hooks were released during the sleep, 2 if still held. */
    wait_until_sleeping(ct->loop_tid);
    store_int(ct->sample, load_int(&h->in_hook) + 1);
    bh_schedule(ct->bh);
    return NULL;
}

static void test_hooks(gconstpointer data)
{
    HookState h = {0};
    EventLoopHooks hooks = {.enter = hook_enter, .leave = hook_leave, .opaque = &h};
    EventLoop *loop = loop_new_for(data, &hooks);
    int done = 0, sampled = 0;
    HookedCb fdc = {&h, "hook-fd", NULL}, tc = {&h, "hook-timer", NULL};
    HookedCb bc = {&h, "hook-bh", &done};
    Timer *t = timer_new(loop, CLOCK_TYPE_REALTIME, "hook-timer", hooked_cb, &tc);
    BH *bh = bh_new(loop, "hook-bh", hooked_cb, &bc);
    CrossThread ct = {
        .loop = loop, .loop_tid = gettid(), .bh = bh, .sample = &sampled, .opaque = &h};
    EventWatch *w;
    pthread_t thread;
    int fds[2];

    make_pipe(fds);
    w = event_loop_add_fd(loop, fds[0], EVENT_IN, "hook-fd", hooked_fd_cb, &fdc);
    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    timer_mod(t, 0);
    bh_schedule(bh);
    g_assert_true(event_loop_iterate(loop, false));
    g_assert_cmpint(h.callbacks, ==, 3);
    g_assert_cmpint(done, ==, 1);

    /* Nothing is due: the loop sleeps, and must do so outside the hooks. */
    store_int(&done, 0);
    g_assert_cmpint(pthread_create(&thread, NULL, sample_thread, &ct), ==, 0);
    run_until(loop, &done, 1);
    pthread_join(thread, NULL);
    g_assert_cmpint(sampled, ==, 1);

    g_assert_cmpint(h.callbacks, ==, 4);
    g_assert_cmpint(h.enters, ==, 4);
    g_assert_cmpint(h.leaves, ==, 4);
    g_assert_cmpint(h.in_hook, ==, 0);

    event_watch_remove(w);
    timer_free(t);
    bh_delete(bh);
    event_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Notifiers ------------------------------------------------------------------- */

static void notifier_fd_cb(void *opaque, int fd, unsigned revents)
{
    EventNotifier *e = opaque;

    g_assert_cmpint(fd, ==, event_notifier_get_fd(e));
    g_assert_true(revents & EVENT_IN);
    g_assert_true(event_notifier_test_and_clear(e));
}

typedef struct NotifierCtx {
    EventNotifier e;
    int seen;
} NotifierCtx;

static void notifier_ctx_cb(void *opaque, int fd, unsigned revents)
{
    NotifierCtx *n = opaque;

    notifier_fd_cb(&n->e, fd, revents);
    store_int(&n->seen, n->seen + 1);
}

static void *notifier_thread(void *opaque)
{
    NotifierCtx *n = opaque;

    g_assert_cmpint(event_notifier_set(&n->e), ==, 0);
    return NULL;
}

static void test_notifier(gconstpointer data)
{
    EventLoop *loop = loop_new_for(data, NULL);
    NotifierCtx n = {0};
    EventNotifier active;
    EventWatch *w;
    pthread_t thread;

    g_assert_cmpint(event_notifier_init(&n.e, false), ==, 0);
    g_assert_cmpint(event_notifier_get_fd(&n.e), >=, 0);
    g_assert_false(event_notifier_test_and_clear(&n.e));
    g_assert_cmpint(event_notifier_set(&n.e), ==, 0);
    g_assert_cmpint(event_notifier_set(&n.e), ==, 0);
    g_assert_true(event_notifier_test_and_clear(&n.e));
    g_assert_false(event_notifier_test_and_clear(&n.e));

    g_assert_cmpint(event_notifier_init(&active, true), ==, 0);
    g_assert_true(event_notifier_test_and_clear(&active));
    g_assert_false(event_notifier_test_and_clear(&active));
    event_notifier_cleanup(&active);
    g_assert_cmpint(active.fd, ==, -1);
    event_notifier_cleanup(&active);

    /* Set by another thread, read by the loop. */
    w = event_loop_add_fd(loop, event_notifier_get_fd(&n.e), EVENT_IN, "notifier", notifier_ctx_cb,
                          &n);
    g_assert_cmpint(pthread_create(&thread, NULL, notifier_thread, &n), ==, 0);
    run_until(loop, &n.seen, 1);
    pthread_join(thread, NULL);
    g_assert_false(event_loop_iterate(loop, false));
    g_assert_cmpint(n.seen, ==, 1);

    event_watch_remove(w);
    event_notifier_cleanup(&n.e);
    event_loop_free(loop);
}

/* ---- Registration ----------------------------------------------------------------- */

static void add_both(const char *name, GTestDataFunc fn)
{
    static const EventLoopBackend backends[] = {EVENT_LOOP_GLIB, EVENT_LOOP_LIBEVENT};

    for (size_t i = 0; i < G_N_ELEMENTS(backends); i++) {
        g_autofree char *path =
            g_strdup_printf("/event-loop/%s/%s", event_loop_backend_name(backends[i]), name);

        g_test_add_data_func(path, GINT_TO_POINTER(backends[i]), fn);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/event-loop/backend-names", test_backend_names);
    g_test_add_func("/event-loop/clock-virtual", test_clock_virtual);
    add_both("fd-readiness", test_fd_readiness);
    add_both("fd-remove-in-callback", test_fd_remove_in_callback);
    add_both("timer-order", test_timer_order);
    add_both("timer-rearm-delete", test_timer_rearm_delete);
    add_both("timer-cross-thread", test_timer_cross_thread);
    add_both("timer-virtual", test_timer_virtual);
    add_both("bh-threads", test_bh_threads);
    add_both("bh-semantics", test_bh_semantics);
    add_both("quit", test_quit);
    add_both("hooks", test_hooks);
    add_both("notifier", test_notifier);
    return g_test_run();
}
