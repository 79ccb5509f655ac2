/* A blocking QMP client for tests, on GIO: requests, replies, and events kept aside. */
#include "qmp-client.h"

#include <string.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

struct QmpTestClient {
    GSocketConnection *conn;
    GDataInputStream *in;
    GOutputStream *out;
    GQueue events; /* JsonNode * */
};

QmpTestClient *qtc_connect(const char *path, int timeout_s, GError **errp)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    GSocketConnection *conn = NULL;

    for (;;) {
        g_autoptr(GError) err = NULL;
        conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, &err);
        if (conn) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return NULL;
        }
        g_usleep(10000);
    }
    g_socket_set_timeout(g_socket_connection_get_socket(conn), (guint)timeout_s);
    QmpTestClient *c = g_new0(QmpTestClient, 1);
    c->conn = conn;
    c->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
    g_data_input_stream_set_newline_type(c->in, G_DATA_STREAM_NEWLINE_TYPE_LF);
    c->out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    g_queue_init(&c->events);
    return c;
}

void qtc_free(QmpTestClient *c)
{
    if (!c) {
        return;
    }
    g_queue_clear_full(&c->events, (GDestroyNotify)json_node_unref);
    g_object_unref(c->in);
    g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
    g_object_unref(c->conn);
    g_free(c);
}

JsonNode *qtc_read(QmpTestClient *c, bool *eof)
{
    g_autoptr(GError) err = NULL;
    gsize len;
    g_autofree char *line = g_data_input_stream_read_line(c->in, &len, NULL, &err);
    if (eof) {
        *eof = !line && !err;
    }
    if (!line) {
        return NULL;
    }
    /* Every line ends in CRLF, as QEMU's. */
    g_assert_true(len > 0 && line[len - 1] == '\r');
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) perr = NULL;
    if (!json_parser_load_from_data(p, line, (gssize)len, &perr)) {
        g_error("server sent a line that is not JSON (%s): %s", perr->message, line);
    }
    JsonNode *root = json_parser_get_root(p);
    g_assert_nonnull(root);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
    return json_node_copy(root);
}

JsonNode *qtc_greeting(QmpTestClient *c)
{
    JsonNode *g = qtc_read(c, NULL);
    g_assert_nonnull(g);
    if (!json_object_has_member(json_node_get_object(g), "QMP")) {
        g_autofree char *s = json_to_string(g, false);
        g_error("expected the greeting, got %s", s);
    }
    return g;
}

bool qtc_send_raw(QmpTestClient *c, const void *data, size_t len)
{
    return g_output_stream_write_all(c->out, data, len, NULL, NULL, NULL);
}

static bool is_event(JsonNode *msg)
{
    return json_object_has_member(json_node_get_object(msg), "event");
}

static JsonNode *cmd_va_try(QmpTestClient *c, bool must, const char *fmt, va_list ap)
{
    g_autofree char *req = g_strdup_vprintf(fmt, ap);
    g_autofree char *line = g_strconcat(req, "\n", NULL);
    if (!qtc_send_raw(c, line, strlen(line)) && !must) {
        return NULL;
    }
    for (;;) {
        JsonNode *msg = qtc_read(c, NULL);
        if (!msg && !must) {
            return NULL;
        }
        if (!msg) {
            g_error("no reply to %s", req);
        }
        if (!is_event(msg)) {
            return msg;
        }
        g_queue_push_tail(&c->events, msg);
    }
}

static JsonNode *cmd_va(QmpTestClient *c, const char *fmt, va_list ap)
{
    return cmd_va_try(c, true, fmt, ap);
}

JsonNode *qtc_cmd(QmpTestClient *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonNode *r = cmd_va(c, fmt, ap);
    va_end(ap);
    return r;
}

JsonNode *qtc_try_cmd(QmpTestClient *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonNode *r = cmd_va_try(c, false, fmt, ap);
    va_end(ap);
    return r;
}

JsonNode *qtc_ok(QmpTestClient *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autoptr(JsonNode) r = cmd_va(c, fmt, ap);
    va_end(ap);
    JsonObject *o = json_node_get_object(r);
    if (!json_object_has_member(o, "return")) {
        g_autofree char *s = json_to_string(r, false);
        g_error("expected a return, got %s", s);
    }
    return json_node_copy(json_object_get_member(o, "return"));
}

char *qtc_err(QmpTestClient *c, const char *klass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autoptr(JsonNode) r = cmd_va(c, fmt, ap);
    va_end(ap);
    JsonObject *o = json_node_get_object(r);
    if (!json_object_has_member(o, "error")) {
        g_autofree char *s = json_to_string(r, false);
        g_error("expected an error, got %s", s);
    }
    JsonNode *e = json_object_get_member(o, "error");
    g_assert_cmpstr(qtc_str(e, "class"), ==, klass);
    g_assert_cmpuint(json_object_get_size(json_node_get_object(e)), ==, 2);
    return g_strdup(qtc_str(e, "desc"));
}

static bool event_named(JsonNode *ev, const char *name)
{
    return !strcmp(json_object_get_string_member(json_node_get_object(ev), "event"), name);
}

JsonNode *qtc_event(QmpTestClient *c, const char *name)
{
    for (GList *l = c->events.head; l; l = l->next) {
        if (event_named(l->data, name)) {
            JsonNode *ev = l->data;
            g_queue_delete_link(&c->events, l);
            return ev;
        }
    }
    for (;;) {
        JsonNode *msg = qtc_read(c, NULL);
        if (!msg) {
            return NULL;
        }
        g_assert_true(is_event(msg));
        if (event_named(msg, name)) {
            return msg;
        }
        g_queue_push_tail(&c->events, msg);
    }
}

guint qtc_queued_events(QmpTestClient *c)
{
    return c->events.length;
}

guint qtc_drop_events(QmpTestClient *c, const char *name)
{
    guint n = 0;
    for (GList *l = c->events.head, *next; l; l = next) {
        next = l->next;
        if (event_named(l->data, name)) {
            json_node_unref(l->data);
            g_queue_delete_link(&c->events, l);
            n++;
        }
    }
    return n;
}

bool qtc_wait_eof(QmpTestClient *c)
{
    for (;;) {
        bool eof;
        g_autoptr(JsonNode) msg = qtc_read(c, &eof);
        if (!msg) {
            return eof;
        }
    }
}

JsonNode *qtc_member(JsonNode *obj, const char *member)
{
    g_assert_true(JSON_NODE_HOLDS_OBJECT(obj));
    JsonNode *v = json_object_get_member(json_node_get_object(obj), member);
    if (!v) {
        g_autofree char *s = json_to_string(obj, false);
        g_error("no member '%s' in %s", member, s);
    }
    return v;
}

const char *qtc_str(JsonNode *obj, const char *member)
{
    JsonNode *v = qtc_member(obj, member);
    g_assert_true(JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING);
    return json_node_get_string(v);
}

gint64 qtc_int(JsonNode *obj, const char *member)
{
    JsonNode *v = qtc_member(obj, member);
    g_assert_true(JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_INT64);
    return json_node_get_int(v);
}

gboolean qtc_bool(JsonNode *obj, const char *member)
{
    JsonNode *v = qtc_member(obj, member);
    g_assert_true(JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_BOOLEAN);
    return json_node_get_boolean(v);
}

void qtc_assert_event(JsonNode *ev, const char *name, const char *reason, gboolean guest)
{
    g_assert_nonnull(ev);
    JsonNode *ts = qtc_member(ev, "timestamp");
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_assert_cmpint(qtc_int(ts, "seconds"), >, now - 600);
    g_assert_cmpint(qtc_int(ts, "seconds"), <=, now);
    g_assert_cmpint(qtc_int(ts, "microseconds"), >=, 0);
    g_assert_cmpint(qtc_int(ts, "microseconds"), <, 1000000);
    g_assert_cmpstr(qtc_str(ev, "event"), ==, name);
    JsonObject *o = json_node_get_object(ev);
    if (reason) {
        JsonNode *data = qtc_member(ev, "data");
        g_assert_cmpstr(qtc_str(data, "reason"), ==, reason);
        g_assert_cmpint(qtc_bool(data, "guest"), ==, guest);
        g_assert_cmpuint(json_object_get_size(o), ==, 3);
    } else {
        g_assert_cmpuint(json_object_get_size(o), ==, 2);
    }
}
