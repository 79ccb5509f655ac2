/* Private interface between the event-loop core (event_loop.c) and its two backends. */
#ifndef KVMLOOP_EVENT_LOOP_INT_H
#define KVMLOOP_EVENT_LOOP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/event_loop.h"

/* What a backend provides. Every hook runs on the loop's thread (or, for init
 * and cleanup, on whichever thread creates or frees the loop). */
typedef struct EventLoopOps {
    /* Set up @loop->glib or @loop->lev; the wake-up notifier already exists.
     * False with @errp set on failure, with nothing left to clean up. */
    bool (*init)(EventLoop *loop, GError **errp);
    /* Undo init(); every watch has already gone through watch_remove(). */
    void (*cleanup)(EventLoop *loop);
    /* One iteration: wait at most event_loop_timeout_ns() (not at all unless
     * @blocking), call event_loop_wakeup_consume() if the wake-up fd is
     * readable, event_loop_dispatch_fd() for each ready watch, then
     * event_loop_dispatch_core() exactly once. */
    void (*iterate)(EventLoop *loop, bool blocking);
    /* Start polling @w->fd for @w->events; 0 or -errno. */
    int (*watch_add)(EventWatch *w);
    /* @w->events changed; re-register. 0 or -errno. */
    int (*watch_update)(EventWatch *w);
    /* Stop polling @w->fd. The core frees @w (later, if a dispatch is running). */
    void (*watch_remove)(EventWatch *w);
} EventLoopOps;

extern const EventLoopOps event_loop_glib_ops;
extern const EventLoopOps event_loop_libevent_ops;

struct EventWatch {
    EventLoop *loop;
    int fd;
    unsigned events; /* EVENT_IN | EVENT_OUT */
    const char *site;
    event_fd_fn fn;
    void *opaque;
    bool removed;  /* removed while the loop was dispatching; freed at the end */
    GList link;    /* in loop->watches; loop thread only */
    void *backend; /* GLib: tag from g_source_add_unix_fd(); libevent: struct event * */
};

struct Timer {
    EventLoop *loop;
    ClockType type;
    const char *site;
    event_cb_fn cb;
    void *opaque;
    /* The following fields are protected by loop->lock. */
    bool pending; /* linked into loop->timers[type] */
    int64_t expire;
    uint64_t arm_gen; /* loop->timer_gen when last armed */
    GList link;       /* in loop->timers[type], sorted by expire */
    GList all_link;   /* in loop->all_timers */
};

struct BH {
    EventLoop *loop;
    const char *site;
    event_cb_fn cb;
    void *opaque;
    /* 1 from bh_schedule() until the dispatcher claims the run; only touched
     * with read-modify-write atomics so that a coalesced bh_schedule()
     * synchronizes with the run that will serve it. */
    int scheduled;
    /* The following fields are protected by loop->lock. */
    bool queued;        /* linked into loop->bh_queue */
    uint64_t queue_gen; /* loop->bh_gen when queued */
    GList queue_link;   /* in loop->bh_queue */
    GList all_link;     /* in loop->all_bhs */
};

typedef struct EventLoopGlib EventLoopGlib;
typedef struct EventLoopLibevent EventLoopLibevent;

struct EventLoop {
    EventLoopBackend backend;
    const EventLoopOps *ops;
    bool has_hooks;
    EventLoopHooks hooks;

    /* Wake-up channel: cross-thread callers change state, then
     * event_loop_notify() writes @wake unless @notified says a write is
     * already on its way; the loop drains @wake, clears @notified, then looks
     * at the state again (event_loop_wakeup_consume()). */
    EventNotifier wake;
    int notified; /* atomic */
    int quit;     /* atomic */

    /* Loop thread only. */
    bool dispatching; /* inside event_loop_iterate(): watch frees are deferred */
    bool ran;         /* a callback ran in this iteration */
    bool has_removed; /* some watch in @watches is marked removed */
    GQueue watches;   /* EventWatch.link */

    pthread_mutex_t lock; /* timers and BH queue; never held across a callback */
    GQueue timers[2];     /* per ClockType, pending timers sorted by expiry */
    GQueue all_timers;
    uint64_t timer_gen;
    GQueue bh_queue; /* scheduled BHs, oldest first */
    GQueue all_bhs;
    uint64_t bh_gen;

    GList registry_link; /* in the process-wide list of loops, for clock changes */

    EventLoopGlib *glib;
    EventLoopLibevent *lev;
};

/* Nanoseconds until the loop must next dispatch: 0 if something is ready
 * (scheduled BH, expired timer), -1 if nothing is due. Loop thread. */
int64_t event_loop_timeout_ns(EventLoop *loop);
/* Drain the wake-up eventfd after poll found it readable. Loop thread. */
void event_loop_wakeup_consume(EventLoop *loop);
/* Run @w's callback, bracketed by the hooks, if @revents is relevant to it
 * and it was not removed earlier in this iteration. Loop thread. */
void event_loop_dispatch_fd(EventWatch *w, unsigned revents);
/* Run expired timers and scheduled BHs. Loop thread, once per iteration. */
void event_loop_dispatch_core(EventLoop *loop);
/* Translate poll(2) revents (also GIOCondition on Linux) into EVENT_* bits. */
unsigned event_loop_events_from_poll(unsigned revents);

#endif
