/* QMP, the QEMU Machine Protocol: a JSON monitor on unix sockets and stdio, served by the main
 * loop. */
#ifndef KVMLOOP_QMP_H
#define KVMLOOP_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/types.h"

typedef struct _JsonNode JsonNode;
typedef struct VmConfig VmConfig;

/* Limits on what a client sends. A request larger than QMP_MAX_MESSAGE bytes
 * or nested deeper than QMP_MAX_NESTING gets a GenericError, and the input up
 * to the next newline is dropped. A client that lets more than
 * QMP_MAX_OUTPUT bytes of replies and events pile up unread is disconnected.
 * Each endpoint serves up to QMP_MAX_CLIENTS clients at once. */
#define QMP_MAX_MESSAGE (1u << 20)
#define QMP_MAX_NESTING 1024
#define QMP_MAX_OUTPUT  (16u << 20)
#define QMP_MAX_CLIENTS 64

/* ---- Endpoints (-qmp) ---------------------------------------------------- */

typedef enum QmpEndpointKind {
    QMP_ENDPOINT_UNIX,  /* a listening unix socket */
    QMP_ENDPOINT_STDIO, /* requests on stdin, replies on stdout */
} QmpEndpointKind;

typedef struct QmpEndpoint {
    QmpEndpointKind kind;
    char *path; /* QMP_ENDPOINT_UNIX: the socket file */
    bool wait;  /* wait=on (QEMU's default): the vCPUs start once a client connected */
} QmpEndpoint;

/* Parse a -qmp argument with QEMU's spelling: "unix:PATH,server=on[,wait=off]"
 * (also "server", "nowait", "wait=on") or "stdio". Returns NULL with a
 * one-line error naming the problem. Any thread. */
QmpEndpoint *qmp_endpoint_parse(const char *spec, GError **errp);
void qmp_endpoint_free(QmpEndpoint *ep); /* NULL is allowed */

/* ---- Framing ------------------------------------------------------------- */

/*
 * The stream parser cuts a byte stream into JSON texts the way QEMU's does:
 * objects and arrays end where their brackets balance, whatever whitespace
 * (or none) separates them, so one read may hold several requests and one
 * request may span many reads. A scalar at the top level ends at whitespace.
 * Single-quoted strings, a QEMU extension, are rewritten with double quotes.
 * A 0xFF byte, never valid in UTF-8, drops whatever was collected, as in
 * QEMU. Errors (too large, too deep, a control character such as a newline
 * inside a string, a closing bracket with nothing open) are reported through
 * the callback; after the first three the input up to the next newline is
 * dropped, so the stream recovers at the next line.
 */
typedef struct QmpStreamParser QmpStreamParser;

/* One complete text (@json, @len bytes, NUL-terminated; @error NULL) or an
 * error message (@json NULL). The callback must not free the parser. */
typedef void (*qmp_message_fn)(void *opaque, const char *json, size_t len, const char *error);

QmpStreamParser *qmp_stream_parser_new(size_t max_message, qmp_message_fn fn, void *opaque);
void qmp_stream_parser_free(QmpStreamParser *p); /* NULL is allowed */
/* Feed @len bytes; calls the callback for each text or error completed. */
void qmp_stream_parser_feed(QmpStreamParser *p, const uint8_t *buf, size_t len);

/* Append @node to @out as one line of JSON with QEMU's spacing
 * ({"return": {}, "id": 1}), without the line end. Non-finite numbers, which
 * JSON cannot express, are written as null. */
void qmp_json_append(GString *out, JsonNode *node);

/* ---- The monitor --------------------------------------------------------- */

typedef enum QmpRunState {
    QMP_RUN_STATE_RUNNING,
    QMP_RUN_STATE_PRELAUNCH, /* -S: not started yet */
    QMP_RUN_STATE_PAUSED,    /* stopped by the stop command */
    QMP_RUN_STATE_SHUTDOWN,  /* an exit was requested; kvmloop is ending */
} QmpRunState;

/* QEMU's name of @s: "running", "prelaunch", "paused", "shutdown". */
const char *qmp_run_state_name(QmpRunState s);

typedef struct QmpMonitor QmpMonitor;

/* Listen on the unix sockets of every -qmp endpoint of @cfg (which must
 * outlive the monitor) for main loop @loop. A stale socket file at a path is
 * replaced; any other file there, or a live server, is an error. Before the
 * machine is built, so that a bad endpoint costs no VM. With -S the run
 * state starts as prelaunch (the caller pauses the vCPUs). Returns NULL with
 * a one-line error. Main thread, BQL held. */
QmpMonitor *qmp_monitor_new(const VmConfig *cfg, EventLoop *loop, GError **errp);
/* Serve machine @m: listen for its resets and exit, greet a stdio client.
 * Once, before the main loop serves clients. Main thread, BQL held, before
 * the vCPUs start. */
void qmp_monitor_attach(QmpMonitor *mon, Machine *m);
/* True while an endpoint with wait=on has not had a client yet; the caller
 * runs the main loop until it is false before it starts the vCPUs. Main
 * thread. */
bool qmp_monitor_waiting(QmpMonitor *mon);
/* Send what is still queued for the clients (waiting up to a second in all
 * for slow readers), then close every connection and socket and remove the
 * socket files. NULL is allowed. Main thread, BQL held, main loop not
 * running. */
void qmp_monitor_free(QmpMonitor *mon);

QmpRunState qmp_monitor_run_state(QmpMonitor *mon);
/* Send event @name with @data (an object that is consumed, or NULL) and the
 * current time to every client past the capabilities negotiation. Main
 * loop, BQL held. */
void qmp_monitor_send_event(QmpMonitor *mon, const char *name, JsonNode *data);

#endif
