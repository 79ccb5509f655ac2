/* Unit tests for iothreads: lifecycle, lookup, query, run_sync and exact eventfd counts. */
#include "kvmloop/iothread.h"
#include "kvmloop/error.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Failure guard only: every wait below normally ends within milliseconds. */
#define GUARD_US (10 * G_USEC_PER_SEC)

static pid_t self_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static IOThread *iothread_new_ok(const char *id, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    IOThread *t = iothread_new(id, GPOINTER_TO_INT(data), &err);

    g_assert_no_error(err);
    g_assert_nonnull(t);
    return t;
}

static void iothread_start_ok(IOThread *t)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(iothread_start(t, &err));
    g_assert_no_error(err);
}

static char *thread_name(pid_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/comm", (int)tid);
    char *name = NULL;

    g_assert_true(g_file_get_contents(path, &name, NULL, NULL));
    return g_strchomp(name);
}

static void test_lifecycle(gconstpointer data)
{
    IOThread *t = iothread_new_ok("io0", data);

    g_assert_true(iothread_find("io0") == t);
    g_assert_null(iothread_find("io1"));
    g_assert_cmpstr(iothread_id(t), ==, "io0");
    g_assert_cmpint(event_loop_backend(iothread_loop(t)), ==, GPOINTER_TO_INT(data));
    g_assert_false(iothread_running(t));
    g_assert_cmpint(iothread_thread_id(t), ==, 0);

    /* Twice: a stopped iothread starts again. */
    for (int round = 0; round < 2; round++) {
        iothread_start_ok(t);
        g_assert_true(iothread_running(t));
        pid_t tid = iothread_thread_id(t);
        g_assert_cmpint(tid, >, 0);
        g_assert_cmpint(tid, !=, self_tid());
        g_autofree char *name = thread_name(tid);
        g_assert_cmpstr(name, ==, "io-io0");

        g_autoptr(GPtrArray) q = iothread_query_all();
        g_assert_cmpuint(q->len, ==, 1);
        IOThreadInfo *info = q->pdata[0];
        g_assert_cmpstr(info->id, ==, "io0");
        g_assert_cmpint(info->thread_id, ==, tid);
        g_assert_cmpint(info->backend, ==, GPOINTER_TO_INT(data));

        iothread_stop(t);
        iothread_stop(t); /* idempotent */
        iothread_join(t);
        iothread_join(t);
        g_assert_false(iothread_running(t));
        g_assert_cmpint(iothread_thread_id(t), ==, 0);
        g_assert_true(iothread_find("io0") == t);
    }
    iothread_start_ok(t);
    iothread_free(t); /* stops and joins a running iothread */
    g_assert_null(iothread_find("io0"));
    g_autoptr(GPtrArray) q = iothread_query_all();
    g_assert_cmpuint(q->len, ==, 0);
}

static void test_bad_ids(void)
{
    static const char *const bad[] = {"", "0io", "-io", "io 0", "io,0", "io/0", "ïo"};

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_assert_null(iothread_new(bad[i], EVENT_LOOP_GLIB, &err));
        g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(err->message, "is invalid"));
    }
    IOThread *a = iothread_new_ok("a-1.b_2", GINT_TO_POINTER(EVENT_LOOP_GLIB));
    g_autoptr(GError) err = NULL;
    g_assert_null(iothread_new("a-1.b_2", EVENT_LOOP_LIBEVENT, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_EXISTS);
    g_assert_nonnull(strstr(err->message, "already in use"));
    IOThread *b = iothread_new_ok("b", GINT_TO_POINTER(EVENT_LOOP_LIBEVENT));
    g_autoptr(GPtrArray) q = iothread_query_all();
    g_assert_cmpuint(q->len, ==, 2);
    g_assert_cmpstr(((IOThreadInfo *)q->pdata[0])->id, ==, "a-1.b_2");
    g_assert_cmpstr(((IOThreadInfo *)q->pdata[1])->id, ==, "b");
    iothread_free(a);
    iothread_free(b);
    iothread_free(NULL);
}

typedef struct SyncProbe {
    IOThread *t;
    pid_t tid;
    int calls;
    pid_t inner_tid;
} SyncProbe;

static void probe_inner(void *opaque)
{
    SyncProbe *p = opaque;
    p->inner_tid = self_tid();
}

static void probe(void *opaque)
{
    SyncProbe *p = opaque;
    p->tid = self_tid();
    p->calls++;
    /* From the iothread itself it runs at once instead of deadlocking. */
    iothread_run_sync(p->t, probe_inner, p);
}

static void test_run_sync(gconstpointer data)
{
    IOThread *t = iothread_new_ok("io0", data);
    SyncProbe p = {.t = t};

    /* Not started: on the caller. */
    iothread_run_sync(t, probe, &p);
    g_assert_cmpint(p.tid, ==, self_tid());

    iothread_start_ok(t);
    for (int i = 0; i < 100; i++) {
        iothread_run_sync(t, probe, &p);
        g_assert_cmpint(p.tid, ==, iothread_thread_id(t));
        g_assert_cmpint(p.inner_tid, ==, iothread_thread_id(t));
    }
    g_assert_cmpint(p.calls, ==, 101);

    /* Asked to stop but not joined: it finishes first, then runs here. */
    iothread_stop(t);
    iothread_run_sync(t, probe, &p);
    g_assert_false(iothread_running(t));
    g_assert_cmpint(p.tid, ==, self_tid());
    iothread_free(t);
}

typedef struct Doorbell {
    IOThread *t;
    EventNotifier e;
    EventWatch *watch;
    uint64_t total;   /* atomic */
    uint64_t batches; /* atomic */
    pid_t server;     /* atomic */
} Doorbell;

static void doorbell_event(void *opaque, int fd, unsigned revents)
{
    Doorbell *d = opaque;
    uint64_t n;

    if (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
        __atomic_fetch_add(&d->total, n, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&d->batches, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&d->server, self_tid(), __ATOMIC_SEQ_CST);
    }
}

static void doorbell_watch(void *opaque)
{
    Doorbell *d = opaque;
    d->watch = event_loop_add_fd(iothread_loop(d->t), event_notifier_get_fd(&d->e), EVENT_IN,
                                 "doorbell", doorbell_event, d);
}

static void doorbell_unwatch(void *opaque)
{
    Doorbell *d = opaque;
    event_watch_remove(d->watch);
    d->watch = NULL;
}

#define RINGS_PER_WRITER 20000

static void *doorbell_writer(void *opaque)
{
    Doorbell *d = opaque;
    for (int i = 0; i < RINGS_PER_WRITER; i++) {
        g_assert_cmpint(event_notifier_set(&d->e), ==, 0);
    }
    return NULL;
}

static uint64_t load_u64(uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

typedef struct Blocker {
    int entered; /* atomic */
    int release; /* atomic */
} Blocker;

static void blocker_cb(void *opaque)
{
    Blocker *b = opaque;
    gint64 deadline = g_get_monotonic_time() + GUARD_US;

    __atomic_store_n(&b->entered, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&b->release, __ATOMIC_SEQ_CST)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        sched_yield();
    }
}

/* Two threads ring an eventfd that the iothread serves; the eventfd counter
 * coalesces signals, yet the total read is exact. Rings made just before a
 * stop are still counted. */
static void test_eventfd_exact(gconstpointer data)
{
    Doorbell d = {.t = iothread_new_ok("io0", data)};
    pthread_t writers[2];

    g_assert_cmpint(event_notifier_init(&d.e, false), ==, 0);
    iothread_start_ok(d.t);
    iothread_run_sync(d.t, doorbell_watch, &d);
    g_assert_nonnull(d.watch);
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(pthread_create(&writers[i], NULL, doorbell_writer, &d), ==, 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(writers[i], NULL);
    }
    gint64 deadline = g_get_monotonic_time() + GUARD_US;
    while (load_u64(&d.total) < 2 * RINGS_PER_WRITER && g_get_monotonic_time() < deadline) {
        g_usleep(1000);
    }
    g_assert_cmpuint(load_u64(&d.total), ==, 2 * RINGS_PER_WRITER);
    g_assert_cmpuint(load_u64(&d.batches), >=, 1);
    g_assert_cmpuint(load_u64(&d.batches), <=, 2 * RINGS_PER_WRITER);
    g_assert_cmpint(__atomic_load_n(&d.server, __ATOMIC_SEQ_CST), ==, iothread_thread_id(d.t));

    /* Ring while the iothread is busy in a BH, past its last poll, and ask it
     * to stop before it polls again: only the final drain sees these. */
    Blocker b = {0};
    BH *bh = bh_new(iothread_loop(d.t), "blocker", blocker_cb, &b);
    bh_schedule(bh);
    while (!__atomic_load_n(&b.entered, __ATOMIC_SEQ_CST)) {
        sched_yield();
    }
    for (int i = 0; i < 1000; i++) {
        event_notifier_set(&d.e);
    }
    iothread_stop(d.t);
    __atomic_store_n(&b.release, 1, __ATOMIC_SEQ_CST);
    iothread_join(d.t);
    g_assert_cmpuint(load_u64(&d.total), ==, 2 * RINGS_PER_WRITER + 1000);
    bh_delete(bh);

    iothread_run_sync(d.t, doorbell_unwatch, &d);
    event_notifier_cleanup(&d.e);
    iothread_free(d.t);
}

static void count_cb(void *opaque)
{
    int *n = opaque;
    __atomic_fetch_add(n, 1, __ATOMIC_SEQ_CST);
}

static void wait_count(int *n, int target)
{
    gint64 deadline = g_get_monotonic_time() + GUARD_US;
    while (__atomic_load_n(n, __ATOMIC_SEQ_CST) < target && g_get_monotonic_time() < deadline) {
        sched_yield();
    }
    g_assert_cmpint(__atomic_load_n(n, __ATOMIC_SEQ_CST), ==, target);
}

/* Timers and BHs made by another thread run on the iothread. */
static void test_timer_bh(gconstpointer data)
{
    IOThread *t = iothread_new_ok("io0", data);
    int bh_runs = 0, timer_runs = 0;

    iothread_start_ok(t);
    BH *bh = bh_new(iothread_loop(t), "test-bh", count_cb, &bh_runs);
    Timer *timer =
        timer_new(iothread_loop(t), CLOCK_TYPE_REALTIME, "test-timer", count_cb, &timer_runs);
    for (int i = 1; i <= 50; i++) {
        bh_schedule(bh);
        wait_count(&bh_runs, i);
    }
    timer_mod(timer, clock_get_ns(CLOCK_TYPE_REALTIME) + 1000000);
    wait_count(&timer_runs, 1);
    iothread_stop(t);
    iothread_join(t);
    bh_delete(bh);
    timer_free(timer);
    iothread_free(t);
}

/* Start and stop back to back, with work in flight, for the sanitizers. */
static void test_start_stop_churn(gconstpointer data)
{
    int runs = 0;

    for (int i = 0; i < 200; i++) {
        IOThread *t = iothread_new_ok("churn", data);
        iothread_start_ok(t);
        BH *bh = bh_new(iothread_loop(t), "churn", count_cb, &runs);
        bh_schedule(bh);
        if (i % 2) {
            iothread_stop(t);
        }
        iothread_free(t); /* the BH goes with the loop */
    }
}

int main(int argc, char **argv)
{
    static const EventLoopBackend backends[] = {EVENT_LOOP_GLIB, EVENT_LOOP_LIBEVENT};
    static const struct {
        const char *name;
        GTestDataFunc fn;
    } cases[] = {
        {"lifecycle", test_lifecycle},
        {"run-sync", test_run_sync},
        {"eventfd-exact", test_eventfd_exact},
        {"timer-bh", test_timer_bh},
        {"start-stop-churn", test_start_stop_churn},
    };

    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(backends); i++) {
        for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
            g_autofree char *path = g_strdup_printf(
                "/iothread/%s/%s", event_loop_backend_name(backends[i]), cases[c].name);
            g_test_add_data_func(path, GINT_TO_POINTER(backends[i]), cases[c].fn);
        }
    }
    g_test_add_func("/iothread/bad-ids", test_bad_ids);
    return g_test_run();
}
