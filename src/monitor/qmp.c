/* QMP protocol: endpoints, framing, connections, dispatch, events and the run state. */
#include "kvmloop/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kvmloop/acpi.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/machine.h"
#include "qmp-internal.h"

/* How much one read takes from a client before the loop serves others. */
#define QMP_READ_CHUNK (64u << 10)
/* How long qmp_monitor_free() waits in all for clients to take their output. */
#define QMP_FLUSH_TIMEOUT_MS 1000

GQuark qmp_error_quark(void)
{
    return g_quark_from_static_string("qmp-error-quark");
}

JsonNode *qmp_node_take_object(JsonObject *o)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, o);
    return n;
}

JsonNode *qmp_node_take_array(JsonArray *a)
{
    JsonNode *n = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(n, a);
    return n;
}

const char *qmp_error_class_name(QmpErrorClass c)
{
    switch (c) {
    case QMP_ERROR_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case QMP_ERROR_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    default:
        return "GenericError";
    }
}

const char *qmp_run_state_name(QmpRunState s)
{
    switch (s) {
    case QMP_RUN_STATE_PRELAUNCH:
        return "prelaunch";
    case QMP_RUN_STATE_PAUSED:
        return "paused";
    case QMP_RUN_STATE_SHUTDOWN:
        return "shutdown";
    default:
        return "running";
    }
}

/* ---- Endpoints ----------------------------------------------------------- */

static bool parse_on_off(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = false;
    } else {
        return false;
    }
    return true;
}

QmpEndpoint *qmp_endpoint_parse(const char *spec, GError **errp)
{
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__);                   \
        return NULL;                                                                               \
    } while (0)

    if (!strcmp(spec, "stdio")) {
        QmpEndpoint *ep = g_new0(QmpEndpoint, 1);
        ep->kind = QMP_ENDPOINT_STDIO;
        return ep;
    }
    if (!g_str_has_prefix(spec, "unix:")) {
        FAIL("-qmp %s: unsupported backend (kvmloop serves unix:PATH,server=on[,wait=off] "
             "and stdio)",
             spec);
    }
    g_auto(GStrv) parts = g_strsplit(spec + 5, ",", -1);
    const char *path = parts[0];
    if (!path || !*path) {
        FAIL("-qmp %s: the socket path is empty", spec);
    }
    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        FAIL("-qmp %s: the socket path is longer than %zu bytes", spec,
             sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
    }
    int server = -1, wait = -1;
    for (int i = 1; parts[i]; i++) {
        char *opt = parts[i];
        char *eq = strchr(opt, '=');
        const char *val = "on";
        if (eq) {
            *eq = '\0';
            val = eq + 1;
        }
        bool on;
        if (!strcmp(opt, "nowait") && !eq) {
            wait = 0;
            continue;
        }
        if (strcmp(opt, "server") != 0 && strcmp(opt, "wait") != 0) {
            FAIL("-qmp %s: unknown option '%s' (it takes server=on, wait=on|off)", spec, opt);
        }
        if (!parse_on_off(val, &on)) {
            FAIL("-qmp %s: %s needs on or off, got '%s'", spec, opt, val);
        }
        *(!strcmp(opt, "server") ? &server : &wait) = on;
    }
    if (server != 1) {
        FAIL("-qmp %s: kvmloop only listens for clients: add server=on", spec);
    }
    QmpEndpoint *ep = g_new0(QmpEndpoint, 1);
    ep->kind = QMP_ENDPOINT_UNIX;
    ep->path = g_strdup(path);
    /* As in QEMU, a server waits for its first client unless told not to. */
    ep->wait = wait != 0;
    return ep;
#undef FAIL
}

void qmp_endpoint_free(QmpEndpoint *ep)
{
    if (ep) {
        g_free(ep->path);
        g_free(ep);
    }
}

/* ---- Framing ------------------------------------------------------------- */

struct QmpStreamParser {
    GString *msg;       /* the text collected so far */
    size_t max_message; /* its limit */
    int depth;          /* open brackets and braces */
    char quote;         /* inside a string: its quote character, else 0 */
    bool escape;        /* inside a string, after a backslash */
    bool skip;          /* dropping input up to the next newline */
    qmp_message_fn fn;
    void *opaque;
};

QmpStreamParser *qmp_stream_parser_new(size_t max_message, qmp_message_fn fn, void *opaque)
{
    QmpStreamParser *p = g_new0(QmpStreamParser, 1);
    p->msg = g_string_new(NULL);
    p->max_message = max_message;
    p->fn = fn;
    p->opaque = opaque;
    return p;
}

void qmp_stream_parser_free(QmpStreamParser *p)
{
    if (p) {
        g_string_free(p->msg, true);
        g_free(p);
    }
}

static void parser_reset(QmpStreamParser *p)
{
    g_string_truncate(p->msg, 0);
    p->depth = 0;
    p->quote = 0;
    p->escape = false;
}

static void parser_emit(QmpStreamParser *p)
{
    p->fn(p->opaque, p->msg->str, p->msg->len, NULL);
    parser_reset(p);
}

/* Report @error, forget the text, and with @skip drop the rest of the line
 * (unless the byte that failed ended it). */
static void parser_fail(QmpStreamParser *p, const char *error, bool skip, uint8_t c)
{
    p->fn(p->opaque, NULL, 0, error);
    parser_reset(p);
    p->skip = skip && c != '\n';
}

/* One byte inside a string; single-quoted strings come out double-quoted. */
static void parser_string_byte(QmpStreamParser *p, uint8_t c)
{
    if (c < 0x20) {
        /* JSON strings have no raw control characters: as in QEMU, a string
         * left open at the end of a line is an error, not a trap for
         * everything typed after it. */
        parser_fail(p, "JSON parse error, control character in a string", true, c);
        return;
    }
    if (p->escape) {
        p->escape = false;
        if (c == '\'' && p->quote == '\'') {
            g_string_append_c(p->msg, '\'');
        } else {
            g_string_append_c(p->msg, '\\');
            g_string_append_c(p->msg, (char)c);
        }
    } else if (c == '\\') {
        p->escape = true;
    } else if (c == (uint8_t)p->quote) {
        g_string_append_c(p->msg, '"');
        p->quote = 0;
        if (p->depth == 0) {
            parser_emit(p);
        }
    } else if (c == '"') {
        g_string_append(p->msg, "\\\"");
    } else {
        g_string_append_c(p->msg, (char)c);
    }
}

static void parser_byte(QmpStreamParser *p, uint8_t c)
{
    if (p->quote) {
        parser_string_byte(p, c);
        return;
    }
    bool bare = p->depth == 0 && p->msg->len > 0; /* a top-level scalar is pending */
    switch (c) {
    case '"':
    case '\'':
        if (bare) {
            parser_emit(p);
        }
        p->quote = (char)c;
        g_string_append_c(p->msg, '"');
        break;
    case '{':
    case '[':
        if (bare) {
            parser_emit(p);
        }
        if (++p->depth > QMP_MAX_NESTING) {
            parser_fail(p, "JSON nesting depth limit exceeded", true, c);
            return;
        }
        g_string_append_c(p->msg, (char)c);
        break;
    case '}':
    case ']':
        if (bare) {
            parser_emit(p);
        }
        if (p->depth == 0) {
            parser_fail(p,
                        c == '}' ? "JSON parse error, unexpected '}'"
                                 : "JSON parse error, unexpected ']'",
                        false, c);
            return;
        }
        g_string_append_c(p->msg, (char)c);
        if (--p->depth == 0) {
            parser_emit(p);
        }
        break;
    default:
        if (p->depth == 0 && g_ascii_isspace(c)) {
            if (bare) {
                parser_emit(p);
            }
            return;
        }
        g_string_append_c(p->msg, (char)c);
        break;
    }
}

void qmp_stream_parser_feed(QmpStreamParser *p, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (p->skip) {
            p->skip = c != '\n';
            continue;
        }
        if (c == 0xff) {
            parser_reset(p);
            continue;
        }
        parser_byte(p, c);
        if (p->msg->len > p->max_message) {
            g_autofree char *e = g_strdup_printf(
                "JSON message exceeds the size limit of %zu bytes; input dropped up to the "
                "next newline",
                p->max_message);
            parser_fail(p, e, true, c);
        }
    }
}

/* ---- JSON output --------------------------------------------------------- */

static void json_append_leaf(GString *out, JsonNode *node)
{
    if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_DOUBLE &&
        !isfinite(json_node_get_double(node))) {
        g_string_append(out, "null");
        return;
    }
    g_autofree char *s = json_to_string(node, false);
    g_string_append(out, s);
}

void qmp_json_append(GString *out, JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_node_get_object(node);
        GList *members = json_object_get_members(o);
        g_string_append_c(out, '{');
        for (GList *l = members; l; l = l->next) {
            g_autoptr(JsonNode) key = json_node_init_string(json_node_alloc(), l->data);
            json_append_leaf(out, key);
            g_string_append(out, ": ");
            qmp_json_append(out, json_object_get_member(o, l->data));
            if (l->next) {
                g_string_append(out, ", ");
            }
        }
        g_string_append_c(out, '}');
        g_list_free(members);
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);
        guint n = json_array_get_length(a);
        g_string_append_c(out, '[');
        for (guint i = 0; i < n; i++) {
            qmp_json_append(out, json_array_get_element(a, i));
            if (i + 1 < n) {
                g_string_append(out, ", ");
            }
        }
        g_string_append_c(out, ']');
    } else {
        json_append_leaf(out, node);
    }
}

/* ---- Monitor state ------------------------------------------------------- */

typedef struct QmpServer {
    QmpMonitor *mon;
    const QmpEndpoint *ep;
    int fd;
    EventWatch *watch;
    dev_t dev; /* the socket file we made, removed at the end if still ours */
    ino_t ino;
    bool had_client;
    unsigned clients;
} QmpServer;

struct QmpClient {
    QmpMonitor *mon;
    QmpServer *server; /* NULL for stdio */
    char *name;        /* "unix:PATH" or "stdio", for messages */
    int in_fd;
    int out_fd;
    bool is_socket; /* in_fd == out_fd, a connection that we close */
    EventWatch *in_watch;
    EventWatch *out_watch;
    QmpStreamParser *parser;
    GByteArray *out; /* output not written yet, from out_pos */
    size_t out_pos;
    bool negotiated; /* past qmp_capabilities */
    bool input_done; /* EOF: close once the output is written */
    bool out_broken; /* the reader went away: output is dropped, input still served */
    bool dead;       /* closed; freed by the reap BH */
};

struct QmpMonitor {
    Machine *machine;
    const VmConfig *cfg;
    EventLoop *loop;
    GPtrArray *servers; /* QmpServer */
    GPtrArray *clients; /* QmpClient */
    BH *reap_bh;
    BH *powerdown_bh;
    QmpRunState state;
    bool has_stdio;
    int stdout_flags; /* to restore: stdout is made non-blocking */
    uint8_t *rbuf;    /* QMP_READ_CHUNK bytes */
};

Machine *qmp_monitor_machine(QmpMonitor *mon)
{
    return mon->machine;
}

const VmConfig *qmp_monitor_config(QmpMonitor *mon)
{
    return mon->cfg;
}

QmpRunState qmp_monitor_run_state(QmpMonitor *mon)
{
    return mon->state;
}

bool qmp_client_negotiate(QmpClient *client)
{
    if (client->negotiated) {
        return false;
    }
    client->negotiated = true;
    return true;
}

/* ---- Client output ------------------------------------------------------- */

static void client_writable(void *opaque, int fd, unsigned revents);

/* Close @c: no more input or output; the reap BH frees it (never while one
 * of its callbacks runs). */
static void client_kill(QmpClient *c)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    if (c->in_watch) {
        event_watch_remove(c->in_watch);
        c->in_watch = NULL;
    }
    if (c->out_watch) {
        event_watch_remove(c->out_watch);
        c->out_watch = NULL;
    }
    bh_schedule(c->mon->reap_bh);
}

static size_t client_pending(const QmpClient *c)
{
    return c->out->len - c->out_pos;
}

/* write() to a descriptor that may be a pipe or a socket we did not open
 * (stdout): a reader that went away must give EPIPE, not SIGPIPE, which would
 * kill kvmloop. The signal is blocked around the write and a SIGPIPE it
 * raised is taken back. */
static ssize_t write_no_sigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
}

/* Nothing more will be written for now: drop the buffer and the watch for
 * room, and end a client whose input has ended too. */
static void client_output_idle(QmpClient *c)
{
    g_byte_array_set_size(c->out, 0);
    c->out_pos = 0;
    if (c->out_watch) {
        event_watch_remove(c->out_watch);
        c->out_watch = NULL;
    }
    if (c->input_done) {
        client_kill(c);
    }
}

/* The client no longer reads. What it sent before it went is still served
 * (a quit piped in and the pipe closed at once must still quit); only
 * replies and events are dropped. */
static void client_output_broken(QmpClient *c)
{
    c->out_broken = true;
    client_output_idle(c);
}

/* Write what the client can take now; watch for room for the rest. */
static void client_flush(QmpClient *c)
{
    while (!c->dead && !c->out_broken && client_pending(c) > 0) {
        const uint8_t *p = c->out->data + c->out_pos;
        size_t len = client_pending(c);
        ssize_t n = c->is_socket ? send(c->out_fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
                                 : write_no_sigpipe(c->out_fd, p, len);
        if (n > 0) {
            c->out_pos += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            client_output_broken(c);
            return;
        }
    }
    if (c->dead || c->out_broken) {
        return;
    }
    if (client_pending(c) == 0) {
        client_output_idle(c);
    } else {
        if (c->out_pos > c->out->len / 2) {
            g_byte_array_remove_range(c->out, 0, (guint)c->out_pos);
            c->out_pos = 0;
        }
        if (!c->out_watch) {
            c->out_watch = event_loop_add_fd(c->mon->loop, c->out_fd, EVENT_OUT, "qmp-client-out",
                                             client_writable, c);
        }
    }
}

static void client_writable(void *opaque, int fd, unsigned revents)
{
    client_flush(opaque);
}

/* Queue @msg (not consumed) as one line and write what can be written. */
static void client_send(QmpClient *c, JsonNode *msg)
{
    if (c->dead || c->out_broken) {
        return;
    }
    g_autoptr(GString) line = g_string_new(NULL);
    qmp_json_append(line, msg);
    g_string_append(line, "\r\n");
    g_byte_array_append(c->out, (const guint8 *)line->str, (guint)line->len);
    if (client_pending(c) > QMP_MAX_OUTPUT) {
        fprintf(stderr, "kvmloop: QMP client on %s left more than %u bytes unread: disconnected\n",
                c->name, QMP_MAX_OUTPUT);
        client_kill(c);
        return;
    }
    client_flush(c);
}

/* ---- Requests ------------------------------------------------------------ */

static JsonNode *error_reply(const GError *err, JsonNode *id)
{
    JsonObject *e = json_object_new();
    json_object_set_string_member(
        e, "class", qmp_error_class_name(err->domain == QMP_ERROR ? err->code : QMP_ERROR_GENERIC));
    json_object_set_string_member(e, "desc", err->message);
    JsonObject *o = json_object_new();
    json_object_set_object_member(o, "error", e);
    if (id) {
        json_object_set_member(o, "id", json_node_copy(id));
    }
    return qmp_node_take_object(o);
}

static bool has_non_finite(JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_node_get_object(node);
        g_autoptr(GList) values = json_object_get_values(o);
        for (GList *l = values; l; l = l->next) {
            if (has_non_finite(l->data)) {
                return true;
            }
        }
        return false;
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            if (has_non_finite(json_array_get_element(a, i))) {
                return true;
            }
        }
        return false;
    }
    return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_DOUBLE &&
           !isfinite(json_node_get_double(node));
}

static bool arg_has_type(JsonNode *node, QmpArgType type)
{
    switch (type) {
    case QMP_ARG_STR:
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
    case QMP_ARG_BOOL:
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_BOOLEAN;
    case QMP_ARG_INT:
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_INT64;
    case QMP_ARG_STR_LIST:
        if (!JSON_NODE_HOLDS_ARRAY(node)) {
            return false;
        }
        for (guint i = 0; i < json_array_get_length(json_node_get_array(node)); i++) {
            if (!arg_has_type(json_array_get_element(json_node_get_array(node), i), QMP_ARG_STR)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

static const char *const arg_type_names[] = {
    [QMP_ARG_STR] = "a string",
    [QMP_ARG_BOOL] = "a boolean",
    [QMP_ARG_INT] = "an integer",
    [QMP_ARG_STR_LIST] = "an array of strings",
};

/* Check @args against what @cmd declares: no unknown members, none missing,
 * every one of its type. */
static bool check_args(const QmpCommand *cmd, JsonObject *args, GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(args);
    for (GList *l = members; l; l = l->next) {
        bool known = false;
        for (int i = 0; i < QMP_MAX_ARGS && cmd->args[i].name; i++) {
            known = known || !strcmp(cmd->args[i].name, l->data);
        }
        if (!known) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Invalid parameter '%s'",
                        (const char *)l->data);
            return false;
        }
    }
    for (int i = 0; i < QMP_MAX_ARGS && cmd->args[i].name; i++) {
        const QmpArg *a = &cmd->args[i];
        JsonNode *v = json_object_get_member(args, a->name);
        if (!v && !a->optional) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Parameter '%s' is missing", a->name);
            return false;
        }
        if (v && !arg_has_type(v, a->type)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Parameter '%s' expects %s", a->name,
                        arg_type_names[a->type]);
            return false;
        }
    }
    return true;
}

/* Check the request's members as QEMU does; returns the command name. */
static const char *check_request(JsonObject *req, JsonObject **args, GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(req);
    for (GList *l = members; l; l = l->next) {
        const char *m = l->data;
        if (strcmp(m, "execute") != 0 && strcmp(m, "arguments") != 0 && strcmp(m, "id") != 0) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input member '%s' is unexpected",
                        m);
            return NULL;
        }
    }
    JsonNode *exec = json_object_get_member(req, "execute");
    if (!exec) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input lacks member 'execute'");
        return NULL;
    }
    if (!arg_has_type(exec, QMP_ARG_STR)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input member 'execute' must be a string");
        return NULL;
    }
    JsonNode *a = json_object_get_member(req, "arguments");
    if (a && !JSON_NODE_HOLDS_OBJECT(a)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input member 'arguments' must be an object");
        return NULL;
    }
    *args = a ? json_node_get_object(a) : NULL;
    return json_node_get_string(exec);
}

/* Run the command of @req for @c and return the reply. */
static JsonNode *dispatch(QmpClient *c, JsonNode *req)
{
    g_autoptr(GError) err = NULL;
    if (!JSON_NODE_HOLDS_OBJECT(req)) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input must be a JSON object");
        return error_reply(err, NULL);
    }
    JsonObject *obj = json_node_get_object(req);
    JsonNode *id = json_object_get_member(obj, "id");
    JsonObject *args = NULL;
    const char *name = check_request(obj, &args, &err);
    if (!name) {
        return error_reply(err, id);
    }
    const QmpCommand *cmd = qmp_command_find(name);
    if (!c->negotiated && (!cmd || strcmp(cmd->name, "qmp_capabilities") != 0)) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Expecting capabilities negotiation with 'qmp_capabilities'");
        return error_reply(err, id);
    }
    if (!cmd) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "The command %s has not been found", name);
        return error_reply(err, id);
    }
    g_autoptr(JsonObject) empty = json_object_new();
    if (!args) {
        args = empty;
    }
    JsonNode *ret = check_args(cmd, args, &err) ? cmd->fn(c->mon, c, args, &err) : NULL;
    if (!ret) {
        g_assert(err);
        return error_reply(err, id);
    }
    JsonObject *o = json_object_new();
    json_object_set_member(o, "return", ret);
    if (id) {
        json_object_set_member(o, "id", json_node_copy(id));
    }
    return qmp_node_take_object(o);
}

/* A text from the stream parser, or its error. */
static void client_message(void *opaque, const char *json, size_t len, const char *error)
{
    QmpClient *c = opaque;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) reply = NULL;

    if (c->dead) {
        return;
    }
    if (error) {
        g_set_error_literal(&err, QMP_ERROR, QMP_ERROR_GENERIC, error);
        reply = error_reply(err, NULL);
    } else if (memchr(json, '\0', len)) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, NUL byte in input");
        reply = error_reply(err, NULL);
    } else {
        g_autoptr(JsonParser) parser = json_parser_new_immutable();
        g_autoptr(GError) perr = NULL;
        if (!json_parser_load_from_data(parser, json, (gssize)len, &perr)) {
            /* Drop json-glib's "<data>:" prefix: the client knows its input. */
            const char *msg =
                g_str_has_prefix(perr->message, "<data>:") ? perr->message + 7 : perr->message;
            g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, %s", msg);
            reply = error_reply(err, NULL);
        } else if (!json_parser_get_root(parser) || has_non_finite(json_parser_get_root(parser))) {
            g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                        "JSON parse error, number out of range");
            reply = error_reply(err, NULL);
        } else {
            reply = dispatch(c, json_parser_get_root(parser));
        }
    }
    client_send(c, reply);
}

/* ---- Client input -------------------------------------------------------- */

static void client_input_done(QmpClient *c)
{
    c->input_done = true;
    if (c->in_watch) {
        event_watch_remove(c->in_watch);
        c->in_watch = NULL;
    }
    if (client_pending(c) == 0 || c->out_broken) {
        client_kill(c);
    }
}

static void client_readable(void *opaque, int fd, unsigned revents)
{
    QmpClient *c = opaque;
    ssize_t n = read(fd, c->mon->rbuf, QMP_READ_CHUNK);
    if (n > 0) {
        qmp_stream_parser_feed(c->parser, c->mon->rbuf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        client_input_done(c);
    }
}

static JsonNode *greeting(void)
{
    JsonObject *qmp = json_object_new();
    json_object_set_member(qmp, "version", qmp_version_info());
    json_object_set_array_member(qmp, "capabilities", json_array_new());
    JsonObject *o = json_object_new();
    json_object_set_object_member(o, "QMP", qmp);
    return qmp_node_take_object(o);
}

static QmpClient *client_new(QmpMonitor *mon, QmpServer *server, int in_fd, int out_fd,
                             bool is_socket, const char *name)
{
    QmpClient *c = g_new0(QmpClient, 1);
    c->mon = mon;
    c->server = server;
    c->name = g_strdup(name);
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    c->is_socket = is_socket;
    c->out = g_byte_array_new();
    c->parser = qmp_stream_parser_new(QMP_MAX_MESSAGE, client_message, c);
    c->in_watch = event_loop_add_fd(mon->loop, in_fd, EVENT_IN, "qmp-client", client_readable, c);
    if (server) {
        server->clients++;
    }
    g_ptr_array_add(mon->clients, c);
    g_autoptr(JsonNode) hello = greeting();
    client_send(c, hello);
    return c;
}

static void client_free(QmpClient *c)
{
    client_kill(c);
    if (c->is_socket) {
        close(c->in_fd);
    }
    if (c->server) {
        c->server->clients--;
    }
    qmp_stream_parser_free(c->parser);
    g_byte_array_free(c->out, true);
    g_free(c->name);
    g_free(c);
}

/* Free the clients that were closed. */
static void reap_bh(void *opaque)
{
    QmpMonitor *mon = opaque;
    for (guint i = mon->clients->len; i > 0; i--) {
        QmpClient *c = mon->clients->pdata[i - 1];
        if (c->dead) {
            g_ptr_array_remove_index(mon->clients, i - 1);
            client_free(c);
        }
    }
}

/* ---- Servers ------------------------------------------------------------- */

static void server_accept(void *opaque, int fd, unsigned revents)
{
    QmpServer *s = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0) {
        return;
    }
    if (s->clients >= QMP_MAX_CLIENTS) {
        static const char busy[] =
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Too many QMP clients\"}}\r\n";
        if (send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* It is going away anyway. */
        }
        close(cfd);
        return;
    }
    s->had_client = true;
    g_autofree char *name = g_strdup_printf("unix:%s", s->ep->path);
    client_new(s->mon, s, cfd, cfd, true, name);
}

/* A socket file at @path that no one listens on is left from an earlier run:
 * remove it. Anything else stays, and bind() then fails on it. */
static bool remove_stale_socket(const char *path, const struct sockaddr_un *sa, GError **errp)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        return true;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return true;
    }
    int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    close(fd);
    if (r == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                    "-qmp unix:%s: another process is listening on this socket", path);
        return false;
    }
    unlink(path);
    return true;
}

static bool server_listen(QmpMonitor *mon, const QmpEndpoint *ep, GError **errp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    g_strlcpy(sa.sun_path, ep->path, sizeof(sa.sun_path));
    if (!remove_stale_socket(ep->path, &sa, errp)) {
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        int e = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "-qmp unix:%s: cannot listen: %s",
                    ep->path, g_strerror(e));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    QmpServer *s = g_new0(QmpServer, 1);
    s->mon = mon;
    s->ep = ep;
    s->fd = fd;
    struct stat st;
    if (stat(ep->path, &st) == 0) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    s->watch = event_loop_add_fd(mon->loop, fd, EVENT_IN, "qmp-accept", server_accept, s);
    g_ptr_array_add(mon->servers, s);
    return true;
}

static void server_free(QmpServer *s)
{
    event_watch_remove(s->watch);
    close(s->fd);
    struct stat st;
    if (stat(s->ep->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino) {
        unlink(s->ep->path);
    }
    g_free(s);
}

/* ---- Events and the run state -------------------------------------------- */

void qmp_monitor_send_event(QmpMonitor *mon, const char *name, JsonNode *data)
{
    gint64 now = g_get_real_time();
    JsonObject *ts = json_object_new();
    json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);
    JsonObject *o = json_object_new();
    json_object_set_object_member(o, "timestamp", ts);
    json_object_set_string_member(o, "event", name);
    if (data) {
        json_object_set_member(o, "data", data);
    }
    g_autoptr(JsonNode) ev = qmp_node_take_object(o);
    for (guint i = 0; i < mon->clients->len; i++) {
        QmpClient *c = mon->clients->pdata[i];
        if (c->negotiated) {
            client_send(c, ev);
        }
    }
}

void qmp_monitor_vm_stop(QmpMonitor *mon)
{
    if (mon->state != QMP_RUN_STATE_RUNNING) {
        return;
    }
    pause_all_vcpus();
    clock_virtual_set_enabled(false);
    mon->state = QMP_RUN_STATE_PAUSED;
    qmp_monitor_send_event(mon, "STOP", NULL);
}

bool qmp_monitor_vm_start(QmpMonitor *mon, GError **errp)
{
    if (mon->state == QMP_RUN_STATE_SHUTDOWN) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "The VM is shutting down");
        return false;
    }
    if (mon->state == QMP_RUN_STATE_RUNNING) {
        return true;
    }
    clock_virtual_set_enabled(true);
    resume_all_vcpus();
    mon->state = QMP_RUN_STATE_RUNNING;
    qmp_monitor_send_event(mon, "RESUME", NULL);
    return true;
}

static void powerdown_bh(void *opaque)
{
    QmpMonitor *mon = opaque;
    Device *pm = machine_find_device(mon->machine, "acpi-pm");
    if (pm) {
        acpi_pm_power_button(pm);
        qmp_monitor_send_event(mon, "POWERDOWN", NULL);
    }
}

void qmp_monitor_request_powerdown(QmpMonitor *mon)
{
    bh_schedule(mon->powerdown_bh);
}

/* SHUTDOWN and RESET, with QEMU's guest flag and reason. */
static void machine_event(void *opaque, MachineEventKind kind, MachineCause cause)
{
    QmpMonitor *mon = opaque;
    JsonObject *data = json_object_new();
    json_object_set_boolean_member(data, "guest", machine_cause_is_guest(cause));
    json_object_set_string_member(data, "reason", machine_cause_name(cause));
    if (kind == MACHINE_EVENT_SHUTDOWN) {
        mon->state = QMP_RUN_STATE_SHUTDOWN;
    }
    qmp_monitor_send_event(mon, kind == MACHINE_EVENT_SHUTDOWN ? "SHUTDOWN" : "RESET",
                           qmp_node_take_object(data));
}

/* ---- The monitor --------------------------------------------------------- */

QmpMonitor *qmp_monitor_new(const VmConfig *cfg, EventLoop *loop, GError **errp)
{
    QmpMonitor *mon = g_new0(QmpMonitor, 1);
    mon->cfg = cfg;
    mon->loop = loop;
    mon->servers = g_ptr_array_new();
    mon->clients = g_ptr_array_new();
    mon->reap_bh = bh_new(mon->loop, "qmp-reap", reap_bh, mon);
    mon->powerdown_bh = bh_new(mon->loop, "qmp-powerdown", powerdown_bh, mon);
    mon->rbuf = g_malloc(QMP_READ_CHUNK);
    mon->state = cfg->start_paused ? QMP_RUN_STATE_PRELAUNCH : QMP_RUN_STATE_RUNNING;
    mon->stdout_flags = -1;
    for (guint i = 0; cfg->qmp && i < cfg->qmp->len; i++) {
        const QmpEndpoint *ep = cfg->qmp->pdata[i];
        if (ep->kind == QMP_ENDPOINT_UNIX && !server_listen(mon, ep, errp)) {
            qmp_monitor_free(mon);
            return NULL;
        }
    }
    return mon;
}

void qmp_monitor_attach(QmpMonitor *mon, Machine *m)
{
    mon->machine = m;
    machine_add_listener(m, machine_event, mon);
    for (guint i = 0; mon->cfg->qmp && i < mon->cfg->qmp->len; i++) {
        const QmpEndpoint *ep = mon->cfg->qmp->pdata[i];
        if (ep->kind == QMP_ENDPOINT_STDIO && !mon->has_stdio) {
            /* Replies must not block the main loop on a slow reader. */
            mon->has_stdio = true;
            mon->stdout_flags = fcntl(STDOUT_FILENO, F_GETFL);
            if (mon->stdout_flags >= 0) {
                fcntl(STDOUT_FILENO, F_SETFL, mon->stdout_flags | O_NONBLOCK);
            }
            client_new(mon, NULL, STDIN_FILENO, STDOUT_FILENO, false, "stdio");
        }
    }
    for (guint i = 0; i < mon->servers->len; i++) {
        QmpServer *s = mon->servers->pdata[i];
        if (s->ep->wait) {
            fprintf(stderr, "kvmloop: waiting for a QMP client on unix:%s\n", s->ep->path);
        }
    }
}

bool qmp_monitor_waiting(QmpMonitor *mon)
{
    for (guint i = 0; i < mon->servers->len; i++) {
        QmpServer *s = mon->servers->pdata[i];
        if (s->ep->wait && !s->had_client) {
            return true;
        }
    }
    return false;
}

/* Give every client until the deadline to take its output. */
static void flush_all(QmpMonitor *mon)
{
    gint64 deadline = g_get_monotonic_time() + QMP_FLUSH_TIMEOUT_MS * 1000;
    for (guint i = 0; i < mon->clients->len; i++) {
        QmpClient *c = mon->clients->pdata[i];
        client_flush(c);
        while (!c->dead && !c->out_broken && client_pending(c) > 0) {
            gint64 left = deadline - g_get_monotonic_time();
            struct pollfd pfd = {.fd = c->out_fd, .events = POLLOUT};
            if (left <= 0 || poll(&pfd, 1, (int)(left / 1000) + 1) <= 0) {
                break;
            }
            client_flush(c);
        }
    }
}

void qmp_monitor_free(QmpMonitor *mon)
{
    if (!mon) {
        return;
    }
    if (mon->machine) {
        machine_remove_listener(mon->machine, machine_event, mon);
    }
    flush_all(mon);
    for (guint i = 0; i < mon->clients->len; i++) {
        client_free(mon->clients->pdata[i]);
    }
    g_ptr_array_free(mon->clients, true);
    for (guint i = 0; i < mon->servers->len; i++) {
        server_free(mon->servers->pdata[i]);
    }
    g_ptr_array_free(mon->servers, true);
    if (mon->has_stdio && mon->stdout_flags >= 0) {
        fcntl(STDOUT_FILENO, F_SETFL, mon->stdout_flags);
    }
    bh_delete(mon->reap_bh);
    bh_delete(mon->powerdown_bh);
    g_free(mon->rbuf);
    g_free(mon);
}
