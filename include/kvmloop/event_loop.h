/* Event loops: fd watches, timers, bottom halves and notifiers over GLib or libevent. */
#ifndef KVMLOOP_EVENT_LOOP_H
#define KVMLOOP_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct EventLoop EventLoop;
typedef struct EventWatch EventWatch;
typedef struct Timer Timer;
typedef struct BH BH;

typedef enum {
    EVENT_LOOP_GLIB,
    EVENT_LOOP_LIBEVENT,
} EventLoopBackend;

/* Clocks, in nanoseconds. The realtime clock is CLOCK_MONOTONIC. The virtual
 * clock follows it while the VM runs and stands still while it is stopped
 * (clock_virtual_set_enabled()). */
typedef enum {
    CLOCK_TYPE_REALTIME,
    CLOCK_TYPE_VIRTUAL,
} ClockType;

enum {
    EVENT_IN = 1 << 0,
    EVENT_OUT = 1 << 1,
    EVENT_ERR = 1 << 2, /* error or hang-up; reported, never requested */
};

typedef void (*event_fd_fn)(void *opaque, int fd, unsigned revents);
typedef void (*event_cb_fn)(void *opaque);

/* Hooks that bracket every callback a loop dispatches (the main loop uses
 * them to take the BQL around each callback and never around poll). @site is
 * a short static description of the callback ("timer", "fd", "bh") and its
 * name, for lock statistics. Called on the loop's own thread. */
typedef struct EventLoopHooks {
    void (*enter)(void *opaque, const char *site);
    void (*leave)(void *opaque, const char *site);
    void *opaque;
} EventLoopHooks;

/* Parse "glib" or "libevent"; false for anything else. */
bool event_loop_backend_parse(const char *name, EventLoopBackend *out);
const char *event_loop_backend_name(EventLoopBackend be);

/* Create a loop. @hooks may be NULL. Any thread; the loop then belongs to the
 * thread that runs it. Returns NULL and sets @errp on failure. */
EventLoop *event_loop_new(EventLoopBackend be, const EventLoopHooks *hooks, GError **errp);
/* Destroy a loop that is not running; frees its remaining watches, timers, BHs. */
void event_loop_free(EventLoop *loop);
EventLoopBackend event_loop_backend(EventLoop *loop);

/* Run callbacks until event_loop_quit(). Loop thread only. */
void event_loop_run(EventLoop *loop);
/* Run one iteration: wait (if @blocking) for something to happen, dispatch
 * what is ready. Returns true if any callback ran. Loop thread only. */
bool event_loop_iterate(EventLoop *loop, bool blocking);
/* Make event_loop_run() return after the current iteration. Any thread. */
void event_loop_quit(EventLoop *loop);
/* Wake the loop out of poll. Any thread, async-signal-safe. */
void event_loop_notify(EventLoop *loop);

/* Watch @fd for @events (EVENT_IN | EVENT_OUT). @name labels the site.
 * Loop thread only (or before the loop runs). */
EventWatch *event_loop_add_fd(EventLoop *loop, int fd, unsigned events, const char *name,
                              event_fd_fn fn, void *opaque);
void event_watch_set_events(EventWatch *w, unsigned events);
/* Stop watching and free @w; safe from inside its own callback. */
void event_watch_remove(EventWatch *w);

/* Timers. A timer fires once at its expiry on its clock; timer_mod() re-arms
 * it. Create, modify, delete and free from any thread; the callback runs on
 * the loop's thread. timer_free() must not race with the callback: call it on
 * the loop thread or after the loop has stopped. */
int64_t clock_get_ns(ClockType type);
void clock_virtual_set_enabled(bool enabled);
bool clock_virtual_enabled(void);
Timer *timer_new(EventLoop *loop, ClockType type, const char *name, event_cb_fn cb, void *opaque);
void timer_mod(Timer *t, int64_t expire_ns);
void timer_del(Timer *t);
bool timer_pending(Timer *t);
void timer_free(Timer *t);

/* Bottom halves: a callback scheduled from any thread (including signal-free
 * vCPU threads) to run once on the loop thread soon. Scheduling an already
 * scheduled BH is a no-op. bh_delete() on the loop thread only. */
BH *bh_new(EventLoop *loop, const char *name, event_cb_fn cb, void *opaque);
void bh_schedule(BH *bh);
void bh_cancel(BH *bh);
void bh_delete(BH *bh);

/* Event notifiers: an eventfd that one thread sets and a loop reads. */
typedef struct EventNotifier {
    int fd;
} EventNotifier;

int event_notifier_init(EventNotifier *e, bool active); /* 0 or -errno */
void event_notifier_cleanup(EventNotifier *e);
int event_notifier_set(EventNotifier *e);             /* any thread, signal-safe */
bool event_notifier_test_and_clear(EventNotifier *e); /* true if it was set */
int event_notifier_get_fd(const EventNotifier *e);

#endif
