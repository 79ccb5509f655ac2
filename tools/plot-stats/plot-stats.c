/* plot-stats: turn a kvmloop statistics document (-stats-file) into pictures with gnuplot.
 *
 *   plot-stats [--format png|svg] [--lock NAME] [--top N] STATS.json OUTDIR
 *
 * Writes OUTDIR/wait-histogram.FMT (the wait-time histogram of each site that took the lock,
 * the busiest N by total wait), OUTDIR/exit-time.FMT (per vCPU: time in KVM_RUN, in kvmloop's
 * exit handling, and waiting for locks, as shares of the vCPU's exit time) and
 * OUTDIR/vcpu-exits.FMT (per vCPU: exits by reason), with the gnuplot scripts and data files
 * beside them. */
#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 36

static int fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plot-stats: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

static gint64 member_int(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);
    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_int(n) : 0;
}

typedef struct Site {
    const char *name;
    gint64 wait_ns;
    gint64 hist[NBUCKETS];
} Site;

static gint compare_wait(gconstpointer a, gconstpointer b)
{
    const Site *x = a, *y = b;
    return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

/* gnuplot's string syntax: double quotes, with backslash and quote escaped. */
static char *gp_quote(const char *s)
{
    GString *g = g_string_new("\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            g_string_append_c(g, '\\');
        }
        g_string_append_c(g, *s);
    }
    g_string_append_c(g, '"');
    return g_string_free(g, FALSE);
}

static const char *terminal(const char *format)
{
    return strcmp(format, "svg") == 0 ? "svg size 900,540 dynamic" : "pngcairo size 900,540";
}

static bool run_gnuplot(const char *script_path, GError **errp)
{
    g_autofree char *quoted = g_shell_quote(script_path);
    g_autofree char *cmd = g_strdup_printf("gnuplot %s", quoted);
    int status;
    g_autofree char *err = NULL;
    if (!g_spawn_command_line_sync(cmd, NULL, &err, &status, errp)) {
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(errp, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "gnuplot %s failed: %s", script_path,
                    err ? g_strstrip(err) : "");
        return false;
    }
    return true;
}

static bool write_file(const char *path, const char *text, GError **errp)
{
    return g_file_set_contents(path, text, -1, errp);
}

static bool plot_wait_histogram(JsonObject *root, const char *lock, int top, const char *dir,
                                const char *format, GError **errp)
{
    JsonArray *locks = json_object_get_array_member(root, "locks");
    JsonObject *lk = NULL;
    for (guint i = 0; locks && i < json_array_get_length(locks); i++) {
        JsonObject *o = json_array_get_object_element(locks, i);
        if (g_strcmp0(json_object_get_string_member(o, "name"), lock) == 0) {
            lk = o;
        }
    }
    if (!lk) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "no lock '%s' in the statistics (see its \"locks\" array)", lock);
        return false;
    }
    JsonArray *sites = json_object_get_array_member(lk, "sites");
    g_autoptr(GArray) all = g_array_new(FALSE, TRUE, sizeof(Site));
    for (guint i = 0; sites && i < json_array_get_length(sites); i++) {
        JsonObject *o = json_array_get_object_element(sites, i);
        Site s = {.name = json_object_get_string_member(o, "site"),
                  .wait_ns = member_int(o, "wait_ns")};
        JsonArray *h = json_object_get_array_member(o, "wait_histogram");
        for (guint b = 0; h && b < json_array_get_length(h) && b < NBUCKETS; b++) {
            s.hist[b] = json_array_get_int_element(h, b);
        }
        g_array_append_val(all, s);
    }
    g_array_sort(all, compare_wait);
    /* Sites that never waited have nothing to show. */
    guint n = 0;
    while (n < all->len && n < (guint)top && g_array_index(all, Site, n).wait_ns > 0) {
        n++;
    }

    /* One row per bucket (lower bound in ns), one column per site. */
    GString *data = g_string_new("# bucket_floor_ns");
    for (guint i = 0; i < n; i++) {
        g_string_append_printf(data, "\t%s", g_array_index(all, Site, i).name);
    }
    g_string_append_c(data, '\n');
    for (int b = 1; b < NBUCKETS; b++) {
        g_string_append_printf(data, "%llu", 1ULL << b);
        for (guint i = 0; i < n; i++) {
            g_string_append_printf(data, "\t%" G_GINT64_FORMAT,
                                   g_array_index(all, Site, i).hist[b]);
        }
        g_string_append_c(data, '\n');
    }
    g_autofree char *data_path = g_build_filename(dir, "wait-histogram.tsv", NULL);
    g_autofree char *data_text = g_string_free(data, FALSE);
    if (!write_file(data_path, data_text, errp)) {
        return false;
    }
    g_autofree char *out = g_strdup_printf("wait-histogram.%s", format);
    g_autofree char *out_path = g_build_filename(dir, out, NULL);
    g_autofree char *q_out = gp_quote(out_path), *q_data = gp_quote(data_path);
    g_autofree char *q_lock = gp_quote(lock);
    GString *gp = g_string_new(NULL);
    g_string_append_printf(
        gp,
        "set terminal %s\nset output %s\n"
        "set title sprintf(\"Waits for %%s by acquiring site (contended "
        "acquisitions)\", %s)\n"
        "set termoption noenhanced\nset logscale x 10\nset format x \"%%.0s%%cs\"\n"
        "set xlabel \"wait time (bucket lower bound)\"\n"
        "set ylabel \"acquisitions\"\nset key outside right top\n"
        "set style data linespoints\nset grid\n",
        terminal(format), q_out, q_lock);
    if (n == 0) {
        g_string_append_printf(gp, "set label \"no site waited for this lock\" at graph 0.4,0.5\n"
                                   "plot [1:1e9] 0 notitle\n");
    } else {
        g_string_append(gp, "plot ");
        for (guint i = 0; i < n; i++) {
            g_autofree char *title = gp_quote(g_array_index(all, Site, i).name);
            /* Seconds on the axis: ns / 1e9. */
            g_string_append_printf(gp, "%s%s using ($1/1e9):%u title %s", i ? ", " : "", q_data,
                                   i + 2, title);
        }
        g_string_append_c(gp, '\n');
    }
    g_autofree char *gp_path = g_build_filename(dir, "wait-histogram.gp", NULL);
    g_autofree char *gp_text = g_string_free(gp, FALSE);
    return write_file(gp_path, gp_text, errp) && run_gnuplot(gp_path, errp);
}

static const char *const exit_reasons[] = {
    "io",           "mmio",           "intr",       "hlt",     "shutdown",
    "system-event", "internal-error", "fail-entry", "unknown", "other",
};

static bool plot_vcpus(JsonObject *root, const char *dir, const char *format, GError **errp)
{
    JsonArray *vcpus = json_object_get_array_member(root, "vcpus");
    guint n = vcpus ? json_array_get_length(vcpus) : 0;
    GString *time = g_string_new("# vcpu\tin_kvm_run\thandling\tlock_wait\n");
    GString *exits = g_string_new("# vcpu");
    for (guint r = 0; r < G_N_ELEMENTS(exit_reasons); r++) {
        g_string_append_printf(exits, "\t%s", exit_reasons[r]);
    }
    g_string_append_c(exits, '\n');
    for (guint i = 0; i < n; i++) {
        JsonObject *v = json_array_get_object_element(vcpus, i);
        double run = (double)member_int(v, "run_ns"), handle = (double)member_int(v, "handle_ns");
        double wait = (double)member_int(v, "lock_wait_ns");
        double total = run + handle;
        wait = MIN(wait, handle);
        /* Shares of the exit time (KVM_RUN + handling) in percent. */
        g_string_append_printf(time, "vcpu%" G_GINT64_FORMAT "\t%.3f\t%.3f\t%.3f\n",
                               member_int(v, "index"), total ? 100 * run / total : 0,
                               total ? 100 * (handle - wait) / total : 0,
                               total ? 100 * wait / total : 0);
        JsonObject *e = json_object_get_object_member(v, "exits");
        g_string_append_printf(exits, "vcpu%" G_GINT64_FORMAT, member_int(v, "index"));
        for (guint r = 0; r < G_N_ELEMENTS(exit_reasons); r++) {
            g_string_append_printf(exits, "\t%" G_GINT64_FORMAT,
                                   e ? member_int(e, exit_reasons[r]) : 0);
        }
        g_string_append_c(exits, '\n');
    }
    g_autofree char *time_path = g_build_filename(dir, "exit-time.tsv", NULL);
    g_autofree char *exits_path = g_build_filename(dir, "vcpu-exits.tsv", NULL);
    g_autofree char *time_text = g_string_free(time, FALSE);
    g_autofree char *exits_text = g_string_free(exits, FALSE);
    if (!write_file(time_path, time_text, errp) || !write_file(exits_path, exits_text, errp)) {
        return false;
    }
    g_autofree char *o1 = g_strdup_printf("exit-time.%s", format);
    g_autofree char *o2 = g_strdup_printf("vcpu-exits.%s", format);
    g_autofree char *p1 = g_build_filename(dir, o1, NULL), *p2 = g_build_filename(dir, o2, NULL);
    g_autofree char *q1 = gp_quote(p1), *q2 = gp_quote(p2);
    g_autofree char *qt = gp_quote(time_path), *qe = gp_quote(exits_path);
    g_autofree char *gp = g_strdup_printf(
        "set terminal %s\nset output %s\nset termoption noenhanced\n"
        "set title \"Where each vCPU's exit time goes (share of KVM_RUN + exit handling)\"\n"
        "set style data histograms\nset style histogram rowstacked\n"
        "set style fill solid 0.8 border -1\nset boxwidth 0.6\nset yrange [0:100]\n"
        "set ylabel \"%% of exit time\"\nset key outside right top\nset grid ytics\n"
        "plot %s using 2:xtic(1) title \"in KVM_RUN\", '' using 3 title \"kvmloop handling\", "
        "'' using 4 title \"waiting for locks\"\n"
        "set output %s\nset title \"Exits per vCPU by reason\"\nset yrange [0:*]\n"
        "set ylabel \"exits\"\n"
        "plot for [c=2:%u] %s using c:xtic(1) title columnhead(c)\n",
        terminal(format), q1, qt, q2, (unsigned)G_N_ELEMENTS(exit_reasons) + 1, qe);
    /* columnhead() needs the header without '#'. */
    g_autofree char *exits_plain = g_strdup(exits_text + 2);
    g_autofree char *gp_path = g_build_filename(dir, "vcpus.gp", NULL);
    return write_file(exits_path, exits_plain, errp) && write_file(gp_path, gp, errp) &&
           run_gnuplot(gp_path, errp);
}

int main(int argc, char **argv)
{
    const char *format = "png", *lock = "BQL";
    int top = 8;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (!strcmp(argv[i], "--lock") && i + 1 < argc) {
            lock = argv[++i];
        } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            top = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: plot-stats [--format png|svg] [--lock NAME] [--top N] STATS.json "
                   "OUTDIR\n");
            return 0;
        } else {
            return fail("unknown option '%s' (see --help)", argv[i]);
        }
    }
    if (argc - i != 2) {
        return fail("usage: plot-stats [--format png|svg] [--lock NAME] [--top N] STATS.json "
                    "OUTDIR");
    }
    if (strcmp(format, "png") != 0 && strcmp(format, "svg") != 0) {
        return fail("--format: '%s' is not png or svg", format);
    }
    if (top < 1) {
        return fail("--top: must be at least 1");
    }
    g_autofree char *gnuplot = g_find_program_in_path("gnuplot");
    if (!gnuplot) {
        return fail("gnuplot is not installed (Debian package gnuplot-nox)");
    }
    const char *in = argv[i], *dir = argv[i + 1];
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    if (!json_parser_load_from_file(parser, in, &err)) {
        return fail("%s: %s", in, err->message);
    }
    JsonNode *rootn = json_parser_get_root(parser);
    JsonObject *root = rootn && JSON_NODE_HOLDS_OBJECT(rootn) ? json_node_get_object(rootn) : NULL;
    if (!root || g_strcmp0(json_object_get_string_member_with_default(root, "schema", ""),
                           "kvmloop-stats") != 0) {
        return fail("%s: not a kvmloop statistics document", in);
    }
    if (json_object_get_int_member_with_default(root, "version", 0) != 1) {
        return fail("%s: statistics version %" G_GINT64_FORMAT " is not 1", in,
                    json_object_get_int_member_with_default(root, "version", 0));
    }
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        return fail("cannot create %s: %s", dir, g_strerror(errno));
    }
    if (!plot_wait_histogram(root, lock, top, dir, format, &err) ||
        !plot_vcpus(root, dir, format, &err)) {
        return fail("%s", err->message);
    }
    printf("plot-stats: %s/{wait-histogram,exit-time,vcpu-exits}.%s\n", dir, format);
    return 0;
}
