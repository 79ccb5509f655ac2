/* A blocking QMP client for tests, on GIO: requests, replies, and events kept aside. */
#ifndef KVMLOOP_TESTS_QMP_CLIENT_H
#define KVMLOOP_TESTS_QMP_CLIENT_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct QmpTestClient QmpTestClient;

/* Connect to the unix socket at @path, retrying while it does not exist or
 * refuses, for up to @timeout_s seconds. Reads time out after @timeout_s
 * too. Returns NULL with @errp set. Any thread. */
QmpTestClient *qtc_connect(const char *path, int timeout_s, GError **errp);
/* Close and free. NULL is allowed. */
void qtc_free(QmpTestClient *c);

/* The next line from the server as JSON (a new reference), or NULL on EOF,
 * error or timeout (*@eof tells EOF apart; may be NULL). Events are not set
 * aside here. */
JsonNode *qtc_read(QmpTestClient *c, bool *eof);
/* Read the greeting; asserts it is one. */
JsonNode *qtc_greeting(QmpTestClient *c);
/* Send raw bytes. False if the connection broke. */
bool qtc_send_raw(QmpTestClient *c, const void *data, size_t len);
/* Send one request line built from printf-style @fmt and return the next
 * reply (an object with "return" or "error"), keeping events read on the way
 * in a queue. Asserts that a reply came. */
JsonNode *qtc_cmd(QmpTestClient *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* qtc_cmd() that returns NULL if the server ends the connection (or it
 * breaks) before it replies. */
JsonNode *qtc_try_cmd(QmpTestClient *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* qtc_cmd() that asserts success and returns the "return" member (a new
 * reference). */
JsonNode *qtc_ok(QmpTestClient *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* qtc_cmd() that asserts an error of @klass and returns its desc (newly
 * allocated). */
char *qtc_err(QmpTestClient *c, const char *klass, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* The next event called @name: from the queue or read from the socket (other
 * events read on the way stay queued). NULL on EOF or timeout. */
JsonNode *qtc_event(QmpTestClient *c, const char *name);
/* Events set aside and not taken yet. */
guint qtc_queued_events(QmpTestClient *c);
/* Take (and drop) every queued event named @name; returns how many. */
guint qtc_drop_events(QmpTestClient *c, const char *name);
/* Read until the server closes the connection; true if it did in time.
 * Everything read is dropped. */
bool qtc_wait_eof(QmpTestClient *c);

/* Helpers on JSON values. */
const char *qtc_str(JsonNode *obj, const char *member);  /* asserts a string */
gint64 qtc_int(JsonNode *obj, const char *member);       /* asserts an integer */
gboolean qtc_bool(JsonNode *obj, const char *member);    /* asserts a boolean */
JsonNode *qtc_member(JsonNode *obj, const char *member); /* asserts it exists */
/* Assert the shape of an event: timestamp with seconds and microseconds,
 * the name, and data with guest and reason when @reason is not NULL. */
void qtc_assert_event(JsonNode *ev, const char *name, const char *reason, gboolean guest);

#endif
