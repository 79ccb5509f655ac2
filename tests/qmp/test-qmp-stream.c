/* QMP without a VM: the stream parser's framing, the JSON writer, -qmp parsing. */
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "kvmloop/qmp.h"

/* What the parser reported: "T:<text>" per text, "E:<error>" per error. */
typedef struct Seen {
    GPtrArray *items;
} Seen;

static void on_message(void *opaque, const char *json, size_t len, const char *error)
{
    Seen *s = opaque;
    if (error) {
        g_assert_null(json);
        g_ptr_array_add(s->items, g_strconcat("E:", error, NULL));
    } else {
        g_assert_cmpint(json[len], ==, '\0');
        /* A NUL inside shows as "\0", so that the text's length is checked. */
        GString *t = g_string_new("T:");
        for (size_t i = 0; i < len; i++) {
            if (json[i]) {
                g_string_append_c(t, json[i]);
            } else {
                g_string_append(t, "\\0");
            }
        }
        g_ptr_array_add(s->items, g_string_free(t, false));
    }
}

/* Feed @input in pieces of @step bytes (0: all at once) and compare what came
 * out with @want (NULL-terminated). */
static void check_feed(const char *input, size_t len, size_t step, size_t max,
                       const char *const *want)
{
    Seen s = {.items = g_ptr_array_new_with_free_func(g_free)};
    QmpStreamParser *p = qmp_stream_parser_new(max, on_message, &s);
    if (step == 0) {
        step = len ? len : 1;
    }
    for (size_t off = 0; off < len; off += step) {
        qmp_stream_parser_feed(p, (const uint8_t *)input + off, MIN(step, len - off));
    }
    qmp_stream_parser_free(p);
    guint n = g_strv_length((char **)want);
    for (guint i = 0; i < MAX(n, s.items->len); i++) {
        const char *got = i < s.items->len ? s.items->pdata[i] : "(nothing)";
        const char *exp = i < n ? want[i] : "(nothing)";
        if (g_strcmp0(got, exp) != 0) {
            g_error("input '%s' step %zu, item %u: got '%s', want '%s'", input, step, i, got, exp);
        }
    }
    g_ptr_array_free(s.items, true);
}

/* The same in one piece, in single bytes and in pieces of 3. */
static void check(const char *input, const char *const *want)
{
    size_t len = strlen(input);
    check_feed(input, len, 0, 1u << 16, want);
    check_feed(input, len, 1, 1u << 16, want);
    check_feed(input, len, 3, 1u << 16, want);
}

#define WANT(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_framing(void)
{
    check("{\"execute\": \"stop\"}\n", WANT("T:{\"execute\": \"stop\"}"));
    /* No separator needed, and whitespace of any kind is fine. */
    check("{\"a\":1}{\"b\":2}\r\n\t {\"c\":3}", WANT("T:{\"a\":1}", "T:{\"b\":2}", "T:{\"c\":3}"));
    /* Across lines: an object ends where its braces balance. */
    check("{\"a\":\n [1,\n {\"b\": []}]\n}", WANT("T:{\"a\":\n [1,\n {\"b\": []}]\n}"));
    /* Brackets inside strings do not count; escapes are kept. */
    check("{\"s\": \"}{][\\\"\\\\\"}", WANT("T:{\"s\": \"}{][\\\"\\\\\"}"));
    /* Top-level scalars end at whitespace, a string at its quote. */
    check("42 true\n\"x y\"[1]", WANT("T:42", "T:true", "T:\"x y\"", "T:[1]"));
    check("7{\"a\":1}", WANT("T:7", "T:{\"a\":1}"));
    /* A half-sent text waits for the rest. */
    check("{\"a\": [1, 2", WANT(NULL));
}

static void test_single_quotes(void)
{
    check("{'execute': 'stop'}", WANT("T:{\"execute\": \"stop\"}"));
    check("{'s': 'it\\'s \"q\"'}", WANT("T:{\"s\": \"it's \\\"q\\\"\"}"));
    check("{'s': 'a\\nb'}", WANT("T:{\"s\": \"a\\nb\"}"));
}

static void test_errors(void)
{
    check("}{\"a\":1}", WANT("E:JSON parse error, unexpected '}'", "T:{\"a\":1}"));
    check("]\n", WANT("E:JSON parse error, unexpected ']'"));
    /* A string open at the end of a line is an error at the newline, and
     * the next line is read afresh. */
    check("{\"execute\": \"sto\n{\"a\":1}",
          WANT("E:JSON parse error, control character in a string", "T:{\"a\":1}"));
    /* Another control character: the rest of its line is dropped. */
    check("{\"s\": \"a\tb\"} {\"dropped\":1}\n{\"a\":1}",
          WANT("E:JSON parse error, control character in a string", "T:{\"a\":1}"));
    /* 0xFF drops what was collected, silently. */
    check("{\"execute\": \xff{\"a\":1}", WANT("T:{\"a\":1}"));
}

static void test_nesting_limit(void)
{
    GString *in = g_string_new(NULL);
    for (int i = 0; i < QMP_MAX_NESTING; i++) {
        g_string_append_c(in, '[');
    }
    for (int i = 0; i < QMP_MAX_NESTING; i++) {
        g_string_append_c(in, ']');
    }
    g_autofree char *ok = g_strconcat("T:", in->str, NULL);
    check(in->str, WANT(ok));
    /* One more level is an error; the rest of the line goes. */
    g_string_prepend_c(in, '[');
    g_string_append(in, "] {\"gone\":1}\n{\"a\":1}");
    check(in->str, WANT("E:JSON nesting depth limit exceeded", "T:{\"a\":1}"));
    g_string_free(in, true);
}

static void test_size_limit(void)
{
    static const char *const err =
        "E:JSON message exceeds the size limit of 16 bytes; input dropped up to the next newline";
    /* 16 bytes fit. */
    const char *fits = "{\"a\":\"12345678\"}";
    check_feed(fits, strlen(fits), 0, 16, WANT("T:{\"a\":\"12345678\"}"));
    check_feed(fits, strlen(fits), 1, 16, WANT("T:{\"a\":\"12345678\"}"));
    /* 17 do not: one error, and parsing resumes after the newline. */
    const char *big = "{\"a\":\"1234567890\"} {\"b\":1}\n{\"c\":2}";
    check_feed(big, strlen(big), 0, 16, WANT(err, "T:{\"c\":2}"));
    check_feed(big, strlen(big), 1, 16, WANT(err, "T:{\"c\":2}"));
    /* A long scalar is no exception. */
    const char *digits = "123456789012345678901234567890\n1";
    check_feed(digits, strlen(digits), 2, 16, WANT(err));
    /* A large message made of many lines resumes after its first newline. */
    const char *lines = "{\"a\": \"xxxxxxxxxxxxxxxxxxxx\",\n \"b\": 1}\n{\"c\":2}";
    check_feed(
        lines, strlen(lines), 0, 16,
        WANT(err, "T:\"b\"", "T::", "T:1", "E:JSON parse error, unexpected '}'", "T:{\"c\":2}"));
}

/* A NUL byte goes through to the text (the monitor refuses it). */
static void test_nul(void)
{
    static const char in[] = "{\"a\":\0}";
    check_feed(in, sizeof(in) - 1, 0, 1024, WANT("T:{\"a\":\\0}"));
}

static char *written(const char *json)
{
    g_autoptr(JsonNode) node = json_from_string(json, NULL);
    g_assert_nonnull(node);
    GString *out = g_string_new(NULL);
    qmp_json_append(out, node);
    return g_string_free(out, false);
}

static void test_writer(void)
{
    g_autofree char *a = written("{\"return\":{},\"id\":[1,\"x\",null,true,2.5]}");
    g_assert_cmpstr(a, ==, "{\"return\": {}, \"id\": [1, \"x\", null, true, 2.5]}");
    g_autofree char *b = written("{\"a\\\"b\":\"tab\\tquote\\\"nl\\n\",\"e\":[]}");
    g_assert_cmpstr(b, ==, "{\"a\\\"b\": \"tab\\tquote\\\"nl\\n\", \"e\": []}");
    g_autofree char *c = written("[{\"z\":1,\"a\":2}]");
    g_assert_cmpstr(c, ==, "[{\"z\": 1, \"a\": 2}]"); /* member order is kept */
    /* JSON has no infinity: a non-finite number is written as null. */
    g_autoptr(JsonNode) inf = json_node_init_double(json_node_alloc(), 1.0 / 0.0);
    g_autoptr(GString) out = g_string_new(NULL);
    qmp_json_append(out, inf);
    g_assert_cmpstr(out->str, ==, "null");
}

static void check_endpoint(const char *spec, QmpEndpointKind kind, const char *path, bool wait)
{
    g_autoptr(GError) err = NULL;
    QmpEndpoint *ep = qmp_endpoint_parse(spec, &err);
    g_assert_no_error(err);
    g_assert_nonnull(ep);
    g_assert_cmpint(ep->kind, ==, kind);
    g_assert_cmpstr(ep->path, ==, path);
    g_assert_cmpint(ep->wait, ==, wait);
    qmp_endpoint_free(ep);
}

static void check_endpoint_error(const char *spec, const char *message)
{
    g_autoptr(GError) err = NULL;
    QmpEndpoint *ep = qmp_endpoint_parse(spec, &err);
    g_assert_null(ep);
    g_assert_nonnull(err);
    if (!strstr(err->message, message)) {
        g_error("-qmp %s: '%s' does not contain '%s'", spec, err->message, message);
    }
    g_assert_null(strchr(err->message, '\n'));
}

static void test_endpoints(void)
{
    check_endpoint("stdio", QMP_ENDPOINT_STDIO, NULL, false);
    check_endpoint("unix:/tmp/q.sock,server=on,wait=off", QMP_ENDPOINT_UNIX, "/tmp/q.sock", false);
    check_endpoint("unix:q.sock,server,nowait", QMP_ENDPOINT_UNIX, "q.sock", false);
    check_endpoint("unix:/q,wait=no,server=yes", QMP_ENDPOINT_UNIX, "/q", false);
    /* A server waits for its first client unless told otherwise, as in QEMU. */
    check_endpoint("unix:/q,server=on", QMP_ENDPOINT_UNIX, "/q", true);
    check_endpoint("unix:/q,server=on,wait=on", QMP_ENDPOINT_UNIX, "/q", true);

    check_endpoint_error("tcp:localhost:4444,server=on", "unsupported backend");
    check_endpoint_error("unix:", "the socket path is empty");
    check_endpoint_error("unix:,server=on", "the socket path is empty");
    check_endpoint_error("unix:/q", "add server=on");
    check_endpoint_error("unix:/q,server=off", "add server=on");
    check_endpoint_error("unix:/q,server=on,wait=maybe", "wait needs on or off, got 'maybe'");
    check_endpoint_error("unix:/q,server=on,speed=fast", "unknown option 'speed'");
    g_autofree char *longpath = g_strnfill(200, 'p');
    g_autofree char *spec = g_strdup_printf("unix:/%s,server=on", longpath);
    check_endpoint_error(spec, "longer than 107 bytes");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-stream/framing", test_framing);
    g_test_add_func("/qmp-stream/single-quotes", test_single_quotes);
    g_test_add_func("/qmp-stream/errors", test_errors);
    g_test_add_func("/qmp-stream/nesting-limit", test_nesting_limit);
    g_test_add_func("/qmp-stream/size-limit", test_size_limit);
    g_test_add_func("/qmp-stream/nul", test_nul);
    g_test_add_func("/qmp-stream/writer", test_writer);
    g_test_add_func("/qmp-stream/endpoints", test_endpoints);
    return g_test_run();
}
