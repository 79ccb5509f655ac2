/* blk-bench: virtio-blk requests per second and their cost, kvmloop's data planes beside QEMU's. */

/*
 * Every variant runs the same payload (tests/guest/bench-blk.c) on the same
 * image file: a virtio-blk driver that keeps QD requests in flight on one
 * queue and polls the used ring. Workloads: sequential and random reads and
 * writes (sequential in -seq-bs requests, default 64 KiB; random in 4 KiB
 * requests), each at every queue depth of -qd (default 1 and 32).
 *
 * Variants: kvmloop with the queue served by the main loop (under the BQL)
 * or by an iothread (no BQL), and QEMU with the same two, its drive opened
 * with the same cache mode and AIO engine. Runs are interleaved: each of R
 * repetitions runs every configuration once, and the report gives medians.
 *
 * Figures per run, between the payload's "bench-blk: go" and "done" lines:
 * the wall time (the payload's TSC cycles at the host's rate), the VMM's CPU
 * time (its process CPU clock) and the part of it outside its vCPU threads
 * (the I/O path: main loop or iothread, and AIO workers), and for kvmloop
 * the BQL acquisitions (its -stats-file, less those of a one-request run:
 * the guest's set-up), all per request.
 *
 * Output: markdown on stdout, -json FILE. Exit status 0 when every run
 * succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "benchlib.h"

typedef enum {
    VAR_KVMLOOP,
    VAR_KVMLOOP_IOTHREAD,
    VAR_QEMU,
    VAR_QEMU_IOTHREAD,
    VAR__MAX,
} Variant;

static const char *const variant_names[VAR__MAX] = {
    [VAR_KVMLOOP] = "kvmloop",
    [VAR_KVMLOOP_IOTHREAD] = "kvmloop-iothread",
    [VAR_QEMU] = "qemu",
    [VAR_QEMU_IOTHREAD] = "qemu-iothread",
};

static bool variant_is_qemu(Variant v)
{
    return v == VAR_QEMU || v == VAR_QEMU_IOTHREAD;
}

static bool variant_has_iothread(Variant v)
{
    return v == VAR_KVMLOOP_IOTHREAD || v == VAR_QEMU_IOTHREAD;
}

typedef enum {
    WL_SEQ_READ,
    WL_SEQ_WRITE,
    WL_RAND_READ,
    WL_RAND_WRITE,
    WL__MAX,
} Workload;

static const char *const workload_names[WL__MAX] = {"seq-read", "seq-write", "rand-read",
                                                    "rand-write"};

static bool workload_writes(Workload w)
{
    return w == WL_SEQ_WRITE || w == WL_RAND_WRITE;
}

static bool workload_random(Workload w)
{
    return w == WL_RAND_READ || w == WL_RAND_WRITE;
}

#define RAND_BS 4096

/* One run, as measured; NAN where a figure does not exist. */
typedef struct Sample {
    double wall_ns;  /* from "go" to "done" */
    double cpu_ns;   /* the VMM's CPU time over the same span */
    double io_ns;    /* the part of it outside vCPU threads */
    double bql_acqs; /* kvmloop: BQL acquisitions over the whole run */
} Sample;

#define SAMPLE_FIELDS 4

typedef struct Row {
    Variant var;
    Workload wl;
    long bs, qd, n;
    GArray *samples; /* Sample */
    int failures;
    Sample med;
    struct Row *base; /* kvmloop: the same variant with one request */
} Row;

typedef struct Bench {
    char *kvmloop, *qemu, *guest, *image;
    bool own_image;
    long n, seq_bs, image_mib;
    GArray *qds; /* long */
    bool variants[VAR__MAX];
    bool workloads[WL__MAX];
    const char *cache, *aio;
    int repeat, timeout_s;
    GPtrArray *rows;  /* Row *, in run order */
    GPtrArray *bases; /* Row *, n = 1 */
    char *tmpdir;
    char *load_start, *load_end;
    double tsc_hz;
    bool pin; /* the vCPU on CPU 0, the VMM's other threads on the others */
    bool verbose;
} Bench;

/* ---- command lines ------------------------------------------------------ */

static GPtrArray *build_argv(Bench *b, const Row *r, const char *stats_file)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    bool io = variant_has_iothread(r->var);

    if (variant_is_qemu(r->var)) {
        bench_qemu_argv(a, b->qemu);
        bench_argv_add(a, "-drive");
        bench_argv_add(a, "file=%s,if=none,id=d0,format=raw,cache=%s,aio=%s", b->image, b->cache,
                       b->aio);
        bench_argv_add(a, "-device");
        bench_argv_add(a, "virtio-blk-pci,drive=d0,disable-legacy=on%s", io ? ",iothread=io0" : "");
    } else {
        bench_argv_add(a, "%s", b->kvmloop);
        bench_argv_add(a, "-drive");
        bench_argv_add(a, "file=%s,if=virtio,format=raw,cache=%s,aio=%s%s", b->image, b->cache,
                       b->aio, io ? ",iothread=io0" : "");
        bench_argv_add(a, "-stats-file");
        bench_argv_add(a, "%s", stats_file);
    }
    if (io) {
        bench_argv_add(a, "-object");
        bench_argv_add(a, "iothread,id=io0");
    }
    bench_argv_add(a, "-device");
    bench_argv_add(a, "isa-debug-exit,iobase=0xf4,iosize=0x4");
    bench_argv_add(a, "-smp");
    bench_argv_add(a, "1");
    bench_argv_add(a, "-m");
    bench_argv_add(a, "64");
    bench_argv_add(a, "-kernel");
    bench_argv_add(a, "%s", b->guest);
    bench_argv_add(a, "-append");
    bench_argv_add(a, "n=%ld qd=%ld bs=%ld write=%d rand=%d", r->n, r->qd, r->bs,
                   workload_writes(r->wl), workload_random(r->wl));
    g_ptr_array_add(a, NULL);
    return a;
}

/* ---- one run ------------------------------------------------------------ */

/* The BQL's acquisitions at every site, from a -stats-file document
 * (docs/stats-schema.md, version 1); NAN when it cannot be read. */
static double read_bql_acquisitions(const char *file)
{
    g_autoptr(JsonParser) p = json_parser_new();
    if (!json_parser_load_from_file(p, file, NULL)) {
        return NAN;
    }
    JsonNode *root = json_parser_get_root(p);
    JsonNode *locks = bench_json_get(root, "locks");
    if (bench_json_num(root, "version") != 1 || !locks || !JSON_NODE_HOLDS_ARRAY(locks)) {
        return NAN;
    }
    JsonArray *la = json_node_get_array(locks);
    for (guint i = 0; i < json_array_get_length(la); i++) {
        JsonNode *l = json_array_get_element(la, i);
        JsonNode *name = bench_json_get(l, "name"), *sites = bench_json_get(l, "sites");
        if (!name || g_strcmp0(json_node_get_string(name), "BQL") || !sites ||
            !JSON_NODE_HOLDS_ARRAY(sites)) {
            continue;
        }
        double sum = 0;
        JsonArray *sa = json_node_get_array(sites);
        for (guint j = 0; j < json_array_get_length(sa); j++) {
            sum += bench_json_num(json_array_get_element(sa, j), "acquisitions");
        }
        return sum;
    }
    return NAN;
}

static bool run_one(Bench *b, const Row *r, Sample *s, GError **errp)
{
    g_autofree char *stats_file = g_build_filename(b->tmpdir, "stats.json", NULL);
    g_autofree char *err_file = g_build_filename(b->tmpdir, "stderr.txt", NULL);
    g_autoptr(GPtrArray) argv = build_argv(b, r, stats_file);
    g_autoptr(GString) out = g_string_new(NULL);
    BenchChild c = {0};
    BenchMarks m = BENCH_MARKS_INIT;
    int status;

    unlink(stats_file);
    if (b->verbose) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv->pdata);
        fprintf(stderr, "blk-bench: %s\n", cmd);
    }
    if (!bench_child_spawn(&c, (char **)argv->pdata, err_file, errp)) {
        return false;
    }
    m.thread_cpu = true;
    bool finished = bench_child_read(&c, "bench-blk", &m, b->timeout_s, out,
                                     b->pin ? BENCH_PIN_APART : BENCH_PIN_NONE);
    close(c.out);
    while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!finished) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s: no end within %d s",
                    (char *)argv->pdata[0], b->timeout_s);
        return false;
    }
    if (!bench_check_exit(status, argv->pdata[0], err_file, errp)) {
        return false;
    }
    if (isnan(m.t_go) || isnan(m.t_done)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: no go/done lines",
                    (char *)argv->pdata[0]);
        return false;
    }
    *s = (Sample){
        .wall_ns = isnan(m.cycles) ? m.t_done - m.t_go : m.cycles / b->tsc_hz * 1e9,
        .cpu_ns = m.cpu_done - m.cpu_go,
        .io_ns = m.other_done - m.other_go,
        .bql_acqs = variant_is_qemu(r->var) ? NAN : read_bql_acquisitions(stats_file),
    };
    return true;
}

/* ---- the plan ----------------------------------------------------------- */

static Row *row_new(Variant var, Workload wl, long bs, long qd, long n)
{
    Row *r = g_new0(Row, 1);
    *r = (Row){.var = var,
               .wl = wl,
               .bs = bs,
               .qd = qd,
               .n = n,
               .samples = g_array_new(false, true, sizeof(Sample))};
    return r;
}

static void row_free(gpointer p)
{
    Row *r = p;
    g_array_free(r->samples, true);
    g_free(r);
}

static Row *base_of(Bench *b, Variant var)
{
    for (guint i = 0; i < b->bases->len; i++) {
        Row *x = b->bases->pdata[i];
        if (x->var == var) {
            return x;
        }
    }
    Row *x = row_new(var, WL_RAND_READ, RAND_BS, 1, 1);
    g_ptr_array_add(b->bases, x);
    return x;
}

static void plan(Bench *b)
{
    for (int w = 0; w < WL__MAX; w++) {
        for (guint q = 0; q < b->qds->len && b->workloads[w]; q++) {
            for (int v = 0; v < VAR__MAX; v++) {
                if (!b->variants[v]) {
                    continue;
                }
                Row *r = row_new(v, w, workload_random(w) ? RAND_BS : b->seq_bs,
                                 g_array_index(b->qds, long, q), b->n);
                r->base = variant_is_qemu(v) ? NULL : base_of(b, v);
                g_ptr_array_add(b->rows, r);
            }
        }
    }
}

static void run_row(Bench *b, Row *r)
{
    Sample s;
    g_autoptr(GError) err = NULL;

    if (run_one(b, r, &s, &err)) {
        g_array_append_val(r->samples, s);
        return;
    }
    r->failures++;
    fprintf(stderr, "blk-bench: %s %s qd=%ld: %s\n", variant_names[r->var], workload_names[r->wl],
            r->qd, err->message);
}

static void row_medians(Row *r)
{
    bench_medians(r->samples, SAMPLE_FIELDS, (double *)&r->med);
}

/* ---- derived figures ---------------------------------------------------- */

typedef struct Figures {
    double req_per_s, mb_per_s, cpu_us, io_cpu_us, bql_per_req;
} Figures;

static Figures figures(const Row *r)
{
    const Sample *m = &r->med;
    Figures f = {NAN, NAN, NAN, NAN, NAN};
    if (r->samples->len == 0) {
        return f;
    }
    f.req_per_s = (double)r->n / m->wall_ns * 1e9;
    f.mb_per_s = f.req_per_s * (double)r->bs / 1e6;
    f.cpu_us = m->cpu_ns / (double)r->n / 1e3;
    f.io_cpu_us = m->io_ns / (double)r->n / 1e3;
    if (r->base && r->base->samples->len && r->n > r->base->n) {
        f.bql_per_req = (m->bql_acqs - r->base->med.bql_acqs) / (double)(r->n - r->base->n);
    }
    return f;
}

static Row *find_row(Bench *b, Variant v, Workload w, long qd)
{
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = b->rows->pdata[i];
        if (r->var == v && r->wl == w && r->qd == qd && r->samples->len) {
            return r;
        }
    }
    return NULL;
}

/* ---- output ------------------------------------------------------------- */

static void print_table(Bench *b)
{
    printf("| workload | bs | QD | VMM | runs | req/s | MB/s | CPU us/req | outside vCPUs us/req "
           "| BQL acq/req |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = b->rows->pdata[i];
        Figures f = figures(r);
        char c[5][32];
        bench_fmt(c[0], 32, f.req_per_s, 0);
        bench_fmt(c[1], 32, f.mb_per_s, 1);
        bench_fmt(c[2], 32, f.cpu_us, 2);
        bench_fmt(c[3], 32, f.io_cpu_us, 2);
        bench_fmt(c[4], 32, f.bql_per_req, 3);
        printf("| %s | %ld | %ld | %s | %u/%u | %s | %s | %s | %s | %s |\n", workload_names[r->wl],
               r->bs, r->qd, variant_names[r->var], r->samples->len, r->samples->len + r->failures,
               c[0], c[1], c[2], c[3], c[4]);
    }
}

/* kvmloop with an iothread against QEMU with one: the aim. */
static void print_readings(Bench *b)
{
    bool any = false;
    for (int w = 0; w < WL__MAX; w++) {
        for (guint q = 0; q < b->qds->len; q++) {
            long qd = g_array_index(b->qds, long, q);
            Row *k = find_row(b, VAR_KVMLOOP_IOTHREAD, w, qd);
            Row *e = find_row(b, VAR_QEMU_IOTHREAD, w, qd);
            if (!k || !e) {
                continue;
            }
            if (!any) {
                printf("\n### kvmloop against QEMU, both with an iothread\n\n");
                any = true;
            }
            Figures fk = figures(k), fq = figures(e);
            printf("- %s, QD %ld: %.0f req/s against %.0f (%+.0f %%); CPU per request %.1f us "
                   "against %.1f (%+.0f %%)\n",
                   workload_names[w], qd, fk.req_per_s, fq.req_per_s,
                   (fk.req_per_s - fq.req_per_s) * 100 / fq.req_per_s, fk.cpu_us, fq.cpu_us,
                   (fk.cpu_us - fq.cpu_us) * 100 / fq.cpu_us);
        }
    }
}

static bool write_json(Bench *b, const BenchHost *h, const char *cmdline, const char *file)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "blk-bench: cannot write %s: %s\n", file, g_strerror(errno));
        return false;
    }
    fprintf(f, "{\n  ");
    bench_json_str(f, "benchmark", "blk", true);
    bench_json_str(f, "command", cmdline, false);
    bench_json_host(f, h, b->load_start, b->load_end);
    fprintf(f, ",\n  \"params\": {");
    bench_json_num_out(f, "n", (double)b->n, true);
    bench_json_num_out(f, "repeat", b->repeat, true);
    bench_json_num_out(f, "image_mib", (double)b->image_mib, true);
    bench_json_str(f, "cache", b->cache, true);
    bench_json_str(f, "aio", b->aio, true);
    fprintf(f, "\"pinned\": %s", b->pin ? "true" : "false");
    fprintf(f, "},\n  \"rows\": [\n");
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = b->rows->pdata[i];
        Figures g = figures(r);
        fprintf(f, "    {");
        bench_json_str(f, "vmm", variant_names[r->var], true);
        bench_json_str(f, "workload", workload_names[r->wl], true);
        bench_json_num_out(f, "bs", (double)r->bs, true);
        bench_json_num_out(f, "qd", (double)r->qd, true);
        bench_json_num_out(f, "requests", (double)r->n, true);
        bench_json_num_out(f, "runs", r->samples->len, true);
        bench_json_num_out(f, "failures", r->failures, true);
        bench_json_num_out(f, "req_per_s", g.req_per_s, true);
        bench_json_num_out(f, "mb_per_s", g.mb_per_s, true);
        bench_json_num_out(f, "cpu_us_per_req", g.cpu_us, true);
        bench_json_num_out(f, "io_cpu_us_per_req", g.io_cpu_us, true);
        bench_json_num_out(f, "bql_acquisitions_per_req", g.bql_per_req, false);
        fprintf(f, "}%s\n", i + 1 < b->rows->len ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0;
}

/* ---- the image ---------------------------------------------------------- */

/* A raw image of @mib MiB, every block written (no holes: a write must not
 * allocate), at @path. */
static bool make_image(const char *path, long mib)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "blk-bench: cannot create %s: %s\n", path, g_strerror(errno));
        return false;
    }
    g_autofree char *buf = g_malloc(1 << 20);
    for (long i = 0; i < mib; i++) {
        memset(buf, (int)(i & 0xff), 1 << 20);
        if (write(fd, buf, 1 << 20) != 1 << 20) {
            fprintf(stderr, "blk-bench: cannot write %s: %s\n", path, g_strerror(errno));
            close(fd);
            return false;
        }
    }
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: blk-bench -build DIR [-qemu PATH|none] [-n N] [-repeat R] [-qd D,D,...]\n"
            "                 [-seq-bs B] [-variants V,V,...] [-workloads W,W,...]\n"
            "                 [-image FILE | -image-mib M] [-cache none|writeback]\n"
            "                 [-aio io_uring|threads] [-json FILE] [-timeout S] [-pin] [-v]\n"
            "  -build DIR   a kvmloop build: DIR/kvmloop and DIR/tests/guest/bench-blk.elf\n"
            "  -variants    any of kvmloop,kvmloop-iothread,qemu,qemu-iothread (default all)\n"
            "  -workloads   any of seq-read,seq-write,rand-read,rand-write (default all)\n"
            "  -image FILE  use FILE (it is written to!) instead of a temporary image\n"
            "  -pin         pin the vCPU thread to CPU 0 and every other thread of the VMM to\n"
            "               the other CPUs, once the payload has started\n");
}

static bool parse_names(const char *opt, const char *s, const char *const *names, int count,
                        bool *on)
{
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    memset(on, 0, sizeof(bool) * (size_t)count);
    for (char **p = parts; *p; p++) {
        int i;
        for (i = 0; i < count && strcmp(*p, names[i]); i++) {
        }
        if (i == count) {
            fprintf(stderr, "blk-bench: %s: unknown name '%s'\n", opt, *p);
            return false;
        }
        on[i] = true;
    }
    return true;
}

static bool parse_qds(Bench *b, const char *s)
{
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    g_array_set_size(b->qds, 0);
    for (char **p = parts; *p; p++) {
        long v;
        if (!bench_parse_long("-qd", *p, 1, 64, &v)) {
            return false;
        }
        g_array_append_val(b->qds, v);
    }
    return true;
}

static bool parse_args(Bench *b, int argc, char **argv, const char **json)
{
    const char *build = NULL, *qemu = NULL;
    long v;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-v")) {
            b->verbose = true;
            continue;
        }
        if (!strcmp(o, "-pin")) {
            b->pin = true;
            continue;
        }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!val) {
            fprintf(stderr, "blk-bench: %s needs an argument\n", o);
            usage(stderr);
            return false;
        }
        i++;
        if (!strcmp(o, "-build")) {
            build = val;
        } else if (!strcmp(o, "-qemu")) {
            qemu = val;
        } else if (!strcmp(o, "-n")) {
            if (!bench_parse_long(o, val, 2, 100000000, &b->n)) {
                return false;
            }
        } else if (!strcmp(o, "-repeat") || !strcmp(o, "-timeout")) {
            if (!bench_parse_long(o, val, 1, 100000, &v)) {
                return false;
            }
            *(!strcmp(o, "-repeat") ? &b->repeat : &b->timeout_s) = (int)v;
        } else if (!strcmp(o, "-qd")) {
            if (!parse_qds(b, val)) {
                return false;
            }
        } else if (!strcmp(o, "-seq-bs")) {
            if (!bench_parse_long(o, val, 512, 131072, &b->seq_bs)) {
                return false;
            }
            if (b->seq_bs % 512) {
                fprintf(stderr, "blk-bench: -seq-bs: %ld is not a multiple of 512\n", b->seq_bs);
                return false;
            }
        } else if (!strcmp(o, "-image-mib")) {
            if (!bench_parse_long(o, val, 1, 1 << 20, &b->image_mib)) {
                return false;
            }
        } else if (!strcmp(o, "-image")) {
            b->image = g_strdup(val);
        } else if (!strcmp(o, "-variants")) {
            if (!parse_names(o, val, variant_names, VAR__MAX, b->variants)) {
                return false;
            }
        } else if (!strcmp(o, "-workloads")) {
            if (!parse_names(o, val, workload_names, WL__MAX, b->workloads)) {
                return false;
            }
        } else if (!strcmp(o, "-cache")) {
            if (strcmp(val, "none") && strcmp(val, "writeback")) {
                fprintf(stderr, "blk-bench: -cache: '%s' is not none or writeback\n", val);
                return false;
            }
            b->cache = val;
        } else if (!strcmp(o, "-aio")) {
            if (strcmp(val, "io_uring") && strcmp(val, "threads")) {
                fprintf(stderr, "blk-bench: -aio: '%s' is not io_uring or threads\n", val);
                return false;
            }
            b->aio = val;
        } else if (!strcmp(o, "-json")) {
            *json = val;
        } else {
            fprintf(stderr, "blk-bench: unknown option %s\n", o);
            usage(stderr);
            return false;
        }
    }
    if (!build) {
        fprintf(stderr, "blk-bench: -build DIR is required\n");
        usage(stderr);
        return false;
    }
    b->kvmloop = g_build_filename(build, "kvmloop", NULL);
    b->guest = g_build_filename(build, "tests", "guest", "bench-blk.elf", NULL);
    const char *need[] = {b->kvmloop, b->guest};
    for (unsigned i = 0; i < G_N_ELEMENTS(need); i++) {
        if (!g_file_test(need[i], G_FILE_TEST_IS_REGULAR)) {
            fprintf(stderr, "blk-bench: %s is missing (build the tree first)\n", need[i]);
            return false;
        }
    }
    bool want_qemu = b->variants[VAR_QEMU] || b->variants[VAR_QEMU_IOTHREAD];
    if (qemu && !strcmp(qemu, "none")) {
        want_qemu = false;
    } else if (want_qemu) {
        b->qemu = qemu ? g_strdup(qemu) : g_find_program_in_path("qemu-system-x86_64");
        if (!b->qemu) {
            fprintf(stderr, "blk-bench: qemu-system-x86_64 not found: no QEMU rows\n");
            want_qemu = false;
        }
    }
    if (!want_qemu) {
        b->variants[VAR_QEMU] = b->variants[VAR_QEMU_IOTHREAD] = false;
    }
    return true;
}

int main(int argc, char **argv)
{
    Bench b = {.n = 10000,
               .seq_bs = 65536,
               .image_mib = 256,
               .qds = g_array_new(false, false, sizeof(long)),
               .cache = "none",
               .aio = "io_uring",
               .repeat = 3,
               .timeout_s = 300,
               .rows = g_ptr_array_new_with_free_func(row_free),
               .bases = g_ptr_array_new_with_free_func(row_free)};
    const char *json = NULL;

    g_set_prgname("blk-bench");
    for (int i = 0; i < VAR__MAX; i++) {
        b.variants[i] = true;
    }
    for (int i = 0; i < WL__MAX; i++) {
        b.workloads[i] = true;
    }
    long qds[] = {1, 32};
    g_array_append_vals(b.qds, qds, G_N_ELEMENTS(qds));
    if (!parse_args(&b, argc, argv, &json)) {
        return 2;
    }
    b.tmpdir = g_dir_make_tmp("blk-bench-XXXXXX", NULL);
    if (!b.tmpdir) {
        fprintf(stderr, "blk-bench: cannot make a temporary directory\n");
        return 2;
    }
    if (!b.image) {
        b.image = g_build_filename(b.tmpdir, "disk.img", NULL);
        b.own_image = true;
        if (!make_image(b.image, b.image_mib)) {
            return 2;
        }
    }
    b.tsc_hz = bench_tsc_hz(200);
    plan(&b);

    BenchHost h = bench_host_info();
    g_autofree char *cmdline = g_strjoinv(" ", argv);
    b.load_start = bench_read_load();
    int64_t t0 = g_get_monotonic_time();
    for (int rep = 0; rep < b.repeat; rep++) {
        g_autofree char *load = bench_read_load();
        fprintf(stderr, "blk-bench: repetition %d of %d (load %s)\n", rep + 1, b.repeat, load);
        for (guint i = 0; i < b.bases->len; i++) {
            run_row(&b, b.bases->pdata[i]);
        }
        for (guint i = 0; i < b.rows->len; i++) {
            run_row(&b, b.rows->pdata[i]);
        }
    }
    b.load_end = bench_read_load();
    int failures = 0;
    for (guint i = 0; i < b.bases->len; i++) {
        row_medians(b.bases->pdata[i]);
        failures += ((Row *)b.bases->pdata[i])->failures;
    }
    for (guint i = 0; i < b.rows->len; i++) {
        Row *r = b.rows->pdata[i];
        row_medians(r);
        failures += r->failures;
    }

    printf("## Block benchmark\n\n");
    printf("Command: `%s`\n\n", cmdline);
    g_autofree char *image =
        b.own_image ? g_strdup_printf("a %ld MiB raw file, written in full", b.image_mib)
                    : g_strdup_printf("%s", b.image);
    printf("Host: %ld CPUs, %s (TSC %.3f GHz), %s, %s. Load average before %s, after %s. "
           "Image: %s; cache=%s, aio=%s. %ld requests per run, %d runs per row (median), "
           "%.0f s. Threads %s.\n\n",
           h.nproc, h.cpu, b.tsc_hz / 1e9, h.kernel, h.kvm, b.load_start, b.load_end, image,
           b.cache, b.aio, b.n, b.repeat, (g_get_monotonic_time() - t0) / 1e6,
           b.pin ? "pinned: the vCPU on CPU 0, the VMM's other threads on the other CPUs"
                 : "placed by the scheduler");
    print_table(&b);
    print_readings(&b);

    bool ok = failures == 0;
    if (json && !write_json(&b, &h, cmdline, json)) {
        ok = false;
    }
    if (failures) {
        fprintf(stderr, "blk-bench: %d runs failed\n", failures);
    }
    const char *leftovers[] = {"stats.json", "stderr.txt", b.own_image ? "disk.img" : NULL};
    for (unsigned i = 0; i < G_N_ELEMENTS(leftovers) && leftovers[i]; i++) {
        g_autofree char *f = g_build_filename(b.tmpdir, leftovers[i], NULL);
        unlink(f);
    }
    rmdir(b.tmpdir);
    bench_host_clear(&h);
    g_free(b.tmpdir);
    g_free(b.kvmloop);
    g_free(b.qemu);
    g_free(b.guest);
    g_free(b.image);
    g_free(b.load_start);
    g_free(b.load_end);
    g_array_free(b.qds, true);
    g_ptr_array_free(b.rows, true);
    g_ptr_array_free(b.bases, true);
    return ok ? 0 : 1;
}
