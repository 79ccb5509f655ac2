/* Smoke test of the benchmarks: tiny runs of each give well-formed output. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "kvm-test.h"

static const char *build_dir;
static const char *guest_dir;

/* The tiny configuration: the floor and lock=bql on one vCPU, one delay.
 * Few kvmloop runs, since each costs a second or two under ThreadSanitizer.
 * Rows: PIO and MMIO of both modes, bql with the delay, and the user
 * section's floor and bql with statistics on, plus off and full where this
 * kvmloop can switch them. */
#define SMOKE_ROWS_MIN (2 * 2 + 1 + 2)
#define SMOKE_ROWS_MAX (SMOKE_ROWS_MIN + 2)

static char *run(char **argv, int *status)
{
    g_autoptr(GError) err = NULL;
    char *out = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, status, &err)) {
        g_error("cannot run %s: %s", argv[0], err->message);
    }
    return out;
}

static JsonNode *load_json(const char *file, JsonParser **parser)
{
    g_autoptr(GError) err = NULL;
    *parser = json_parser_new();
    if (!json_parser_load_from_file(*parser, file, &err)) {
        g_error("%s is not JSON: %s", file, err->message);
    }
    return json_parser_get_root(*parser);
}

/* Markdown table rows: lines that start with '|' and are neither a header
 * nor a separator. Each must have @cells cells. */
static int count_table_rows(const char *md, int cells, const char *header_word)
{
    g_auto(GStrv) lines = g_strsplit(md, "\n", -1);
    int rows = 0;
    for (char **l = lines; *l; l++) {
        if ((*l)[0] != '|' || g_str_has_prefix(*l, "|---") || strstr(*l, header_word)) {
            continue;
        }
        int pipes = 0;
        for (const char *p = *l; *p; p++) {
            pipes += *p == '|';
        }
        g_assert_cmpint(pipes, ==, cells + 1);
        rows++;
    }
    return rows;
}

static void test_exit_bench(void)
{
    g_autofree char *tmp = g_dir_make_tmp("bench-smoke-XXXXXX", NULL);
    g_autofree char *json = g_build_filename(tmp, "exits.json", NULL);
    g_autofree char *bin = g_build_filename(build_dir, "tools", "bench", "exit-bench", NULL);
    char *argv[] = {bin,      "-build",    (char *)build_dir,
                    "-n",     "200",       "-user-n",
                    "300",    "-repeat",   "1",
                    "-modes", "floor,bql", "-max-cpus",
                    "1",      "-delays",   "1000",
                    "-json",  json,        "-plot-dir",
                    tmp,      NULL};
    int status;
    g_autofree char *md = run(argv, &status);

    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(md, "## Exit benchmark"));
    g_assert_nonnull(strstr(md, "### Readings"));
    int table_rows = count_table_rows(md, 13, "wall ns/exit");
    g_assert_cmpint(table_rows, >=, SMOKE_ROWS_MIN);
    g_assert_cmpint(table_rows, <=, SMOKE_ROWS_MAX);

    g_autoptr(JsonParser) p = NULL;
    JsonNode *root = load_json(json, &p);
    JsonObject *o = json_node_get_object(root);
    g_assert_cmpstr(json_object_get_string_member(o, "benchmark"), ==, "exits");
    g_assert_true(json_object_has_member(json_object_get_object_member(o, "host"), "kvm"));
    JsonArray *rows = json_object_get_array_member(o, "rows");
    g_assert_cmpuint(json_array_get_length(rows), ==, (guint)table_rows);
    bool kvmloop_stats = false;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        /* kvmloop's own statistics: read from -stats-file when they were on. */
        if (!strcmp(json_object_get_string_member(r, "mode"), "bql") &&
            strcmp(json_object_get_string_member(r, "stats"), "off") != 0) {
            JsonNode *h = json_object_get_member(r, "handle_ns_per_exit");
            JsonNode *w = json_object_get_member(r, "bql_wait_percent");
            JsonNode *l = json_object_get_member(r, "lock_wait_percent");
            g_assert_true(JSON_NODE_HOLDS_VALUE(h) && JSON_NODE_HOLDS_VALUE(w) &&
                          JSON_NODE_HOLDS_VALUE(l));
            g_assert_cmpfloat(json_node_get_double(h), >, 0);
            g_assert_cmpfloat(json_node_get_double(w), >=, 0);
            kvmloop_stats = true;
        }
        g_assert_cmpint(json_object_get_int_member(r, "runs"), ==, 1);
        g_assert_cmpint(json_object_get_int_member(r, "failures"), ==, 0);
        g_assert_cmpfloat(json_object_get_double_member(r, "exits_per_s"), >, 0);
        g_assert_cmpfloat(json_object_get_double_member(r, "wall_ns_per_exit"), >, 0);
    }

    g_assert_true(kvmloop_stats);

    const char *dat[] = {"scaling.dat", "delay.dat"};
    for (unsigned i = 0; i < G_N_ELEMENTS(dat); i++) {
        g_autofree char *f = g_build_filename(tmp, dat[i], NULL);
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(f, &text, NULL, NULL));
        g_assert_true(g_str_has_prefix(text, i == 0 ? "vcpus floor" : "delay_us bql"));
        g_unlink(f);
    }
    g_unlink(json);
    g_rmdir(tmp);
}

static void test_kick_latency(void)
{
    g_autofree char *tmp = g_dir_make_tmp("bench-smoke-XXXXXX", NULL);
    g_autofree char *json = g_build_filename(tmp, "kick.json", NULL);
    g_autofree char *bin = g_build_filename(build_dir, "tools", "bench", "kick-latency", NULL);
    g_autofree char *spin = g_build_filename(guest_dir, "spin.elf", NULL);
    char *argv[] = {bin,   "-kicks",  "50", "-rounds", "2",  "-gap-us",
                    "200", "-kernel", spin, "-json",   json, NULL};
    int status;
    g_autofree char *md = run(argv, &status);

    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_cmpint(count_table_rows(md, 7, "median us"), ==, 2);

    g_autoptr(JsonParser) p = NULL;
    JsonObject *o = json_node_get_object(load_json(json, &p));
    JsonArray *res = json_object_get_array_member(o, "results");
    g_assert_cmpuint(json_array_get_length(res), ==, 2);
    for (guint i = 0; i < 2; i++) {
        JsonObject *r = json_array_get_object_element(res, i);
        g_assert_cmpstr(json_object_get_string_member(r, "path"), ==, i ? "kvmloop" : "floor");
        g_assert_cmpint(json_object_get_int_member(r, "samples"), ==, 100);
        double med = json_object_get_double_member(r, "median_us");
        g_assert_cmpfloat(med, >, 0);
        g_assert_cmpfloat(json_object_get_double_member(r, "p99_us"), >=, med);
        g_assert_cmpfloat(json_object_get_double_member(r, "min_us"), <=, med);
    }
    g_unlink(json);
    g_rmdir(tmp);
}

/* A tiny block benchmark: both of kvmloop's data planes on a small image.
 * Beyond the shape of the output, the statistics must show the iothread's
 * requests taking no BQL and the main loop's taking it. */
static void test_blk_bench(void)
{
    g_autofree char *tmp = g_dir_make_tmp("bench-smoke-XXXXXX", NULL);
    g_autofree char *json = g_build_filename(tmp, "blk.json", NULL);
    g_autofree char *bin = g_build_filename(build_dir, "tools", "bench", "blk-bench", NULL);
    char *argv[] = {
        bin,   "-build",     (char *)build_dir,     "-n",    "100",  "-repeat",    "1", "-qd",
        "1,4", "-workloads", "rand-read,seq-write", "-qemu", "none", "-image-mib", "4", "-json",
        json,  NULL};
    int status;
    g_autofree char *md = run(argv, &status);

    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(md, "## Block benchmark"));
    /* 2 workloads x 2 queue depths x 2 data planes. */
    g_assert_cmpint(count_table_rows(md, 10, "req/s"), ==, 8);

    g_autoptr(JsonParser) p = NULL;
    JsonObject *o = json_node_get_object(load_json(json, &p));
    g_assert_cmpstr(json_object_get_string_member(o, "benchmark"), ==, "blk");
    JsonArray *rows = json_object_get_array_member(o, "rows");
    g_assert_cmpuint(json_array_get_length(rows), ==, 8);
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        const char *vmm = json_object_get_string_member(r, "vmm");
        double bql = json_object_get_double_member(r, "bql_acquisitions_per_req");
        g_assert_cmpint(json_object_get_int_member(r, "runs"), ==, 1);
        g_assert_cmpint(json_object_get_int_member(r, "failures"), ==, 0);
        g_assert_cmpfloat(json_object_get_double_member(r, "req_per_s"), >, 0);
        g_assert_cmpfloat(json_object_get_double_member(r, "cpu_us_per_req"), >, 0);
        if (!strcmp(vmm, "kvmloop-iothread")) {
            g_assert_cmpfloat(bql, ==, 0);
        } else {
            g_assert_cmpstr(vmm, ==, "kvmloop");
            /* The notify and the completion, fewer when batched at QD 4. */
            g_assert_cmpfloat(bql, >=, json_object_get_int_member(r, "qd") == 1 ? 1.5 : 0.1);
        }
    }
    g_unlink(json);
    g_rmdir(tmp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    build_dir = g_getenv("KVMLOOP_BUILD_DIR");
    if (!build_dir) {
        g_printerr("test-bench: KVMLOOP_BUILD_DIR is not set\n");
        return 1;
    }
    guest_dir = kvm_test_init();
    g_test_add_func("/bench/exit-bench", test_exit_bench);
    g_test_add_func("/bench/kick-latency", test_kick_latency);
    g_test_add_func("/bench/blk-bench", test_blk_bench);
    return g_test_run();
}
