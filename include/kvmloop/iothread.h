/* iothreads: named threads that each run their own event loop, never under the BQL. */
#ifndef KVMLOOP_IOTHREAD_H
#define KVMLOOP_IOTHREAD_H

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>
#include "kvmloop/event_loop.h"

typedef struct IOThread IOThread;

/* One iothread as query-iothreads reports it. */
typedef struct IOThreadInfo {
    char *id;
    pid_t thread_id; /* the thread's Linux tid; 0 while it is not running */
    EventLoopBackend backend;
} IOThreadInfo;

/* Create iothread @id (letters, digits, '-', '.', '_', starting with a
 * letter; unique) with a new event loop on @backend, and register it for
 * iothread_find(). The thread does not run until iothread_start(). Returns
 * NULL with a one-line error. Main thread. */
IOThread *iothread_new(const char *id, EventLoopBackend backend, GError **errp);
/* Start the thread, which runs the loop until iothread_stop(); returns once
 * the thread runs and its tid is known. Also restarts a stopped iothread.
 * Returns false with a one-line error. Main thread. */
bool iothread_start(IOThread *t, GError **errp);
/* Ask the loop to stop. Before the thread exits it runs one more
 * non-blocking iteration, so that every fd that was ready when the stop was
 * asked for (a doorbell rung just before) is still served. No-op when not
 * running. Main thread. */
void iothread_stop(IOThread *t);
/* Wait until the thread has exited after iothread_stop(). No-op when not
 * running. Main thread; the BQL may be held, an iothread never takes it. */
void iothread_join(IOThread *t);
/* Stop and join if needed, unregister, and free the loop with whatever
 * watches, timers and BHs are left on it. NULL is a no-op. Main thread. */
void iothread_free(IOThread *t);

/* The registered iothread called @id, or NULL. Main thread. */
IOThread *iothread_find(const char *id);
const char *iothread_id(const IOThread *t);
/* The iothread's loop. Add fd watches to it from inside the iothread
 * (iothread_run_sync()) or while it is not running; timers and BHs from any
 * thread (see event_loop.h). */
EventLoop *iothread_loop(IOThread *t);
/* The thread's Linux tid, 0 while it is not running. Any thread. */
pid_t iothread_thread_id(const IOThread *t);
/* True from iothread_start() until iothread_join(). Main thread. */
bool iothread_running(const IOThread *t);

/* Run @fn(@opaque) in the iothread's context and return when it is done: on
 * the iothread (as a bottom half) while it runs, else at once on the calling
 * thread, where the loop is then the caller's alone. For set-up and
 * tear-down: adding and removing fd watches. Main thread; the BQL may be
 * held. */
void iothread_run_sync(IOThread *t, event_cb_fn fn, void *opaque);

/* Every registered iothread, in creation order: a GPtrArray of IOThreadInfo
 * that frees its elements; the caller unrefs it. For query-iothreads. Main
 * thread. */
GPtrArray *iothread_query_all(void);

#endif
