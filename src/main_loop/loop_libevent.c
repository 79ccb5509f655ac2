/* libevent event-loop backend: one event_base per loop, used only by the loop's thread. */
#include "kvmloop/event_loop.h"

#include <errno.h>
#include <poll.h>
#include <event2/event.h>

#include "event_loop_int.h"
#include "kvmloop/error.h"

struct EventLoopLibevent {
    struct event_base *base;
    struct event *wake_ev;
    struct event *timeout_ev; /* ends the wait at the core's next deadline */
};

static void lev_wake_cb(evutil_socket_t fd, short what, void *opaque)
{
    event_loop_wakeup_consume(opaque);
}

static void lev_timeout_cb(evutil_socket_t fd, short what, void *opaque)
{
    /* Nothing to do: waking up is the point, the core runs the timers. */
}

static void lev_watch_cb(evutil_socket_t fd, short what, void *opaque)
{
    EventWatch *w = opaque;
    struct pollfd pfd = {.fd = fd, .events = 0};
    int n;

    /* libevent's epoll backend turns an error or hang-up into plain
     * EV_READ/EV_WRITE, so ask poll(2) for the real revents; this also makes
     * them identical to what the GLib backend reports. */
    if (w->events & EVENT_IN) {
        pfd.events |= POLLIN;
    }
    if (w->events & EVENT_OUT) {
        pfd.events |= POLLOUT;
    }
    do {
        n = poll(&pfd, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        event_loop_dispatch_fd(w, event_loop_events_from_poll(pfd.revents));
    }
}

static short events_to_libevent(unsigned events)
{
    short what = EV_PERSIST;

    if (events & EVENT_IN) {
        what |= EV_READ;
    }
    if (events & EVENT_OUT) {
        what |= EV_WRITE;
    }
    return what;
}

static bool lev_init(EventLoop *loop, GError **errp)
{
    EventLoopLibevent *lev = g_new0(EventLoopLibevent, 1);
    struct event_config *cfg = event_config_new();

    if (cfg) {
        /* Only the loop's thread touches the base: cross-thread requests go
         * through the core's own lock and eventfd, so libevent needs no locks. */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        lev->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (!lev->base) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "event_base_new failed");
        goto free_lev;
    }
    lev->wake_ev = event_new(lev->base, event_notifier_get_fd(&loop->wake), EV_READ | EV_PERSIST,
                             lev_wake_cb, loop);
    lev->timeout_ev = evtimer_new(lev->base, lev_timeout_cb, NULL);
    if (!lev->wake_ev || !lev->timeout_ev || event_add(lev->wake_ev, NULL) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "setting up libevent wake-up events failed");
        goto free_events;
    }
    loop->lev = lev;
    return true;

free_events:
    if (lev->timeout_ev) {
        event_free(lev->timeout_ev);
    }
    if (lev->wake_ev) {
        event_free(lev->wake_ev);
    }
    event_base_free(lev->base);
free_lev:
    g_free(lev);
    return false;
}

static void lev_cleanup(EventLoop *loop)
{
    EventLoopLibevent *lev = loop->lev;

    event_free(lev->timeout_ev);
    event_free(lev->wake_ev);
    event_base_free(lev->base);
    g_free(lev);
    loop->lev = NULL;
}

static void lev_iterate(EventLoop *loop, bool blocking)
{
    EventLoopLibevent *lev = loop->lev;
    /* EVLOOP_ONCE even when not blocking: EVLOOP_NONBLOCK alone keeps going
     * while callbacks find new work, and a level-triggered fd nobody drains
     * would never let it return. */
    int flags = EVLOOP_ONCE;
    int64_t ns = blocking ? event_loop_timeout_ns(loop) : 0;

    if (ns == 0) {
        flags |= EVLOOP_NONBLOCK;
    } else if (ns > 0) {
        int64_t us = ns / 1000 + (ns % 1000 != 0);
        struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};

        event_add(lev->timeout_ev, &tv);
    }
    if (event_base_loop(lev->base, flags) < 0) {
        g_warning("event_base_loop failed");
    }
    event_del(lev->timeout_ev);
    event_loop_dispatch_core(loop);
}

static int lev_watch_arm(EventWatch *w)
{
    if (event_assign(w->backend, w->loop->lev->base, w->fd, events_to_libevent(w->events),
                     lev_watch_cb, w) < 0) {
        return -EINVAL;
    }
    if (w->events && event_add(w->backend, NULL) < 0) {
        /* libevent does not say why; epoll refusing the fd is the usual case. */
        return -EPERM;
    }
    return 0;
}

static int lev_watch_add(EventWatch *w)
{
    int ret;

    w->backend = g_malloc0(event_get_struct_event_size());
    ret = lev_watch_arm(w);
    if (ret < 0) {
        g_free(w->backend);
        w->backend = NULL;
    }
    return ret;
}

static int lev_watch_update(EventWatch *w)
{
    /* event_assign() may only touch an event that is not pending. */
    event_del(w->backend);
    return lev_watch_arm(w);
}

static void lev_watch_remove(EventWatch *w)
{
    event_del(w->backend);
    /* Safe even inside this event's own callback: libevent does not touch an
     * event after its callback returns. */
    g_free(w->backend);
    w->backend = NULL;
}

const EventLoopOps event_loop_libevent_ops = {
    .init = lev_init,
    .cleanup = lev_cleanup,
    .iterate = lev_iterate,
    .watch_add = lev_watch_add,
    .watch_update = lev_watch_update,
    .watch_remove = lev_watch_remove,
};
