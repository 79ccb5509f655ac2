/* GLib event-loop backend: a private GMainContext and one custom GSource for fds, timers, BHs. */
#include "kvmloop/event_loop.h"

#include <poll.h>

#include "event_loop_int.h"

/* event_loop_events_from_poll() decodes GIOCondition as poll(2) bits. */
G_STATIC_ASSERT(G_IO_IN == POLLIN && G_IO_OUT == POLLOUT);
G_STATIC_ASSERT(G_IO_ERR == POLLERR && G_IO_HUP == POLLHUP && G_IO_NVAL == POLLNVAL);

struct EventLoopGlib {
    GMainContext *ctx; /* only the loop thread touches it: TSan cannot see GLib's GMutex */
    GSource *source;
    gpointer wake_tag;
};

typedef struct LoopSource {
    GSource source;
    EventLoop *loop;
} LoopSource;

static EventLoop *source_loop(GSource *source)
{
    return ((LoopSource *)source)->loop;
}

/* Poll timeouts are in milliseconds: round up, so that a timer is due when
 * poll returns rather than a spin of zero-timeout polls before it. */
static gint timeout_ns_to_ms(int64_t ns)
{
    int64_t ms;

    if (ns < 0) {
        return -1;
    }
    ms = ns / 1000000 + (ns % 1000000 != 0);
    return ms > G_MAXINT ? G_MAXINT : (gint)ms;
}

static gboolean loop_source_prepare(GSource *source, gint *timeout)
{
    int64_t ns = event_loop_timeout_ns(source_loop(source));

    *timeout = timeout_ns_to_ms(ns);
    return ns == 0;
}

static gboolean loop_source_check(GSource *source)
{
    EventLoop *loop = source_loop(source);

    if (g_source_query_unix_fd(source, loop->glib->wake_tag)) {
        return TRUE;
    }
    for (GList *l = loop->watches.head; l; l = l->next) {
        EventWatch *w = l->data;

        if (!w->removed && g_source_query_unix_fd(source, w->backend)) {
            return TRUE;
        }
    }
    return event_loop_timeout_ns(loop) == 0;
}

static gboolean loop_source_dispatch(GSource *source, GSourceFunc unused_cb, gpointer unused)
{
    EventLoop *loop = source_loop(source);

    if (g_source_query_unix_fd(source, loop->glib->wake_tag) & G_IO_IN) {
        event_loop_wakeup_consume(loop);
    }
    /* Watches removed by a callback stay linked (marked) until the iteration
     * ends, and new ones are appended with no revents yet, so this walk
     * survives whatever the callbacks do to the list. */
    for (GList *l = loop->watches.head; l; l = l->next) {
        EventWatch *w = l->data;
        GIOCondition revents;

        if (w->removed) {
            continue;
        }
        revents = g_source_query_unix_fd(source, w->backend);
        if (revents) {
            event_loop_dispatch_fd(w, event_loop_events_from_poll(revents));
        }
    }
    event_loop_dispatch_core(loop);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs loop_source_funcs = {
    .prepare = loop_source_prepare,
    .check = loop_source_check,
    .dispatch = loop_source_dispatch,
};

static GIOCondition events_to_condition(unsigned events)
{
    GIOCondition cond = 0;

    if (events & EVENT_IN) {
        cond |= G_IO_IN;
    }
    if (events & EVENT_OUT) {
        cond |= G_IO_OUT;
    }
    return cond;
}

static bool glib_init(EventLoop *loop, GError **errp)
{
    EventLoopGlib *glib = g_new0(EventLoopGlib, 1);

    glib->ctx = g_main_context_new();
    glib->source = g_source_new(&loop_source_funcs, sizeof(LoopSource));
    ((LoopSource *)glib->source)->loop = loop;
    g_source_set_name(glib->source, "kvmloop event loop");
    glib->wake_tag =
        g_source_add_unix_fd(glib->source, event_notifier_get_fd(&loop->wake), G_IO_IN);
    g_source_attach(glib->source, glib->ctx);
    loop->glib = glib;
    return true;
}

static void glib_cleanup(EventLoop *loop)
{
    EventLoopGlib *glib = loop->glib;

    g_source_destroy(glib->source);
    g_source_unref(glib->source);
    g_main_context_unref(glib->ctx);
    g_free(glib);
    loop->glib = NULL;
}

static void glib_iterate(EventLoop *loop, bool blocking)
{
    g_main_context_iteration(loop->glib->ctx, blocking);
}

static int glib_watch_add(EventWatch *w)
{
    w->backend = g_source_add_unix_fd(w->loop->glib->source, w->fd, events_to_condition(w->events));
    return 0;
}

static int glib_watch_update(EventWatch *w)
{
    g_source_modify_unix_fd(w->loop->glib->source, w->backend, events_to_condition(w->events));
    return 0;
}

static void glib_watch_remove(EventWatch *w)
{
    g_source_remove_unix_fd(w->loop->glib->source, w->backend);
    w->backend = NULL;
}

const EventLoopOps event_loop_glib_ops = {
    .init = glib_init,
    .cleanup = glib_cleanup,
    .iterate = glib_iterate,
    .watch_add = glib_watch_add,
    .watch_update = glib_watch_update,
    .watch_remove = glib_watch_remove,
};
