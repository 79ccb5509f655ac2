/* exit-bench: exits per second and their cost on the raw floor, kvmloop's lock policies and QEMU.
 */

/*
 * One invocation runs every variant on the same payload (tests/guest/
 * bench-exits.c) and the same host, interleaved: for each of R repetitions
 * it runs every configuration once, so that a change in host load touches
 * them all alike, and reports the median of the R runs.
 *
 * Each run is a child process (kvm-floor, kvmloop or QEMU) whose serial
 * output comes through a pipe. The payload prints "bench-exits: go" just
 * before its vCPUs start writing and "bench-exits: done in C cycles" once
 * all are through. The wall time is C converted with the host's TSC rate
 * (calibrated here against CLOCK_MONOTONIC), so a late wake-up of this
 * reader does not count; the child's CPU time (its process CPU clock, exact)
 * is read when the two lines arrive. User and system time come from
 * the child's rusage less that of the same configuration with no writes
 * (the start-up), and are as exact as the kernel's tick sampling. kvmloop
 * runs also write -stats-file: BQL waits of the exit sites and kvmloop's
 * own time from KVM_RUN's return to the next entry.
 *
 * Sections:
 *   main   every mode, PIO and MMIO, 1..N vCPUs, no service delay
 *   delay  lock=bql|device|none with testdev delay-ns swept, PIO, 1..N vCPUs
 *   user   1 and N vCPUs, long runs: floor, lock=bql with statistics on and
 *          off, QEMU; for user CPU per exit and the cost of statistics
 *
 * Output: markdown on stdout, -json FILE, and -plot-dir DIR with the data
 * files of tools/bench/exits.gp. Exit status 0 when every run succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "benchlib.h"

extern char **environ;

typedef enum {
    MODE_FLOOR,
    MODE_BQL,
    MODE_DEVICE,
    MODE_NONE,
    MODE_IOEVENTFD,
    MODE_QEMU,
    MODE__MAX,
} Mode;

static const char *const mode_names[MODE__MAX] = {
    [MODE_FLOOR] = "floor",         [MODE_BQL] = "bql",
    [MODE_DEVICE] = "device",       [MODE_NONE] = "none",
    [MODE_IOEVENTFD] = "ioeventfd", [MODE_QEMU] = "qemu",
};

typedef enum {
    SEC_MAIN,
    SEC_DELAY,
    SEC_USER,
    SEC__MAX,
} Section;

static const char *const section_names[SEC__MAX] = {"main", "delay", "user"};

/* kvmloop's -stats-collect: off, on (sampled timing) or full (every hold
 * and exit timed). Other VMMs run as STATS_ON rows. */
typedef enum {
    STATS_OFF,
    STATS_ON,
    STATS_FULL,
    STATS__MAX,
} StatsMode;

static const char *const stats_names[STATS__MAX] = {"off", "on", "full"};

/* One run, as measured. NAN where a figure does not exist. */
typedef struct Sample {
    double wall_ns; /* from "go" to "done" */
    double cpu_ns;  /* the child's CPU time over the same span */
    double user_ns; /* rusage of the whole run */
    double sys_ns;
    double bql_wait_ns;  /* kvmloop: BQL wait of the exit sites */
    double handle_ns;    /* kvmloop: KVM_RUN return to next entry, all vCPUs */
    double stat_exits;   /* kvmloop: exits counted by its statistics */
    double lock_wait_ns; /* kvmloop: the vCPU threads' waits for any lock */
} Sample;

#define SAMPLE_FIELDS 8

typedef struct Row {
    Section sec;
    Mode mode;
    bool mmio;
    int vcpus;
    int delay_ns;
    StatsMode stats;
    long n;          /* writes per vCPU */
    GArray *samples; /* Sample */
    int failures;
    Sample med;       /* medians of the samples */
    struct Row *base; /* the same with n = 0: start-up costs */
} Row;

typedef struct Bench {
    char *kvmloop, *floor, *qemu, *guest;
    long n, user_n;
    int max_cpus, repeat, timeout_s;
    GArray *delays; /* int */
    bool kvmloop_stats_file;
    bool kvmloop_stats_full; /* -stats-collect full exists */
    GPtrArray *rows;         /* Row *, in run order */
    GPtrArray *bases;        /* Row *, n = 0 */
    char *tmpdir;
    char *load_start, *load_end;
    double tsc_hz;
    bool pin; /* pin vCPU threads to CPUs */
    bool verbose;
} Bench;

/* ---- command lines ------------------------------------------------------ */

/* The payload's arguments: where each mode's writes go. QEMU gets port 0x80
 * (its ioport80 device, served in userspace under its BQL) and an address
 * in its PCI hole that nothing claims (unassigned memory, also userspace);
 * ioeventfd gets the testdev doorbells, which KVM completes in the kernel. */
static char *payload_args(Mode mode, bool mmio, long n)
{
    if (mode == MODE_QEMU) {
        return mmio ? g_strdup_printf("n=%ld mmio=1 addr=0xfe000000", n)
                    : g_strdup_printf("n=%ld port=0x80", n);
    }
    if (mode == MODE_IOEVENTFD) {
        return mmio ? g_strdup_printf("n=%ld mmio=1 addr=0xfe001000", n)
                    : g_strdup_printf("n=%ld port=0x710", n);
    }
    return mmio ? g_strdup_printf("n=%ld mmio=1", n) : g_strdup_printf("n=%ld", n);
}

static GPtrArray *build_argv(Bench *b, const Row *r, long n, const char *stats_file)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *args = payload_args(r->mode, r->mmio, n);

    switch (r->mode) {
    case MODE_FLOOR:
        bench_argv_add(a, "%s", b->floor);
        break;
    case MODE_QEMU:
        bench_qemu_argv(a, b->qemu);
        bench_argv_add(a, "-device");
        bench_argv_add(a, "isa-debug-exit,iobase=0xf4,iosize=0x4");
        break;
    default:
        bench_argv_add(a, "%s", b->kvmloop);
        bench_argv_add(a, "-device");
        bench_argv_add(a, "isa-debug-exit,iobase=0xf4,iosize=0x4");
        bench_argv_add(a, "-device");
        if (r->mode == MODE_IOEVENTFD) {
            bench_argv_add(a, "testdev,ioeventfd=on,iothread=io0");
            bench_argv_add(a, "-object");
            bench_argv_add(a, "iothread,id=io0");
        } else {
            bench_argv_add(a, "testdev,lock=%s,delay-ns=%d", mode_names[r->mode], r->delay_ns);
        }
        if (b->kvmloop_stats_file) {
            bench_argv_add(a, "-stats-file");
            bench_argv_add(a, "%s", stats_file);
            bench_argv_add(a, "-stats-collect");
            bench_argv_add(a, "%s", stats_names[r->stats]);
        }
        break;
    }
    bench_argv_add(a, "-smp");
    bench_argv_add(a, "%d", r->vcpus);
    bench_argv_add(a, "-m");
    bench_argv_add(a, "64");
    bench_argv_add(a, "-kernel");
    bench_argv_add(a, "%s", b->guest);
    bench_argv_add(a, "-append");
    bench_argv_add(a, "%s", args);
    g_ptr_array_add(a, NULL);
    return a;
}

/* ---- one run ------------------------------------------------------------ */

/* BQL waits of the exit sites, and the vCPUs' handling time and exits,
 * from a -stats-file document (docs/stats-schema.md, version 1). */
static bool read_stats(const char *file, Sample *s)
{
    g_autoptr(JsonParser) p = json_parser_new();
    if (!json_parser_load_from_file(p, file, NULL)) {
        return false;
    }
    JsonNode *root = json_parser_get_root(p);
    if (bench_json_num(root, "version") != 1) {
        return false;
    }
    JsonNode *locks = bench_json_get(root, "locks"), *vcpus = bench_json_get(root, "vcpus");
    if (!locks || !vcpus || !JSON_NODE_HOLDS_ARRAY(locks) || !JSON_NODE_HOLDS_ARRAY(vcpus)) {
        return false;
    }
    s->bql_wait_ns = 0;
    JsonArray *la = json_node_get_array(locks);
    for (guint i = 0; i < json_array_get_length(la); i++) {
        JsonNode *l = json_array_get_element(la, i);
        JsonNode *name = bench_json_get(l, "name"), *sites = bench_json_get(l, "sites");
        if (!name || g_strcmp0(json_node_get_string(name), "BQL") || !sites ||
            !JSON_NODE_HOLDS_ARRAY(sites)) {
            continue;
        }
        JsonArray *sa = json_node_get_array(sites);
        for (guint j = 0; j < json_array_get_length(sa); j++) {
            JsonNode *site = json_array_get_element(sa, j);
            JsonNode *sn = bench_json_get(site, "site");
            if (sn && g_str_has_prefix(json_node_get_string(sn), "exit ")) {
                s->bql_wait_ns += bench_json_num(site, "wait_ns");
            }
        }
    }
    s->handle_ns = s->stat_exits = s->lock_wait_ns = 0;
    JsonArray *va = json_node_get_array(vcpus);
    for (guint i = 0; i < json_array_get_length(va); i++) {
        JsonNode *v = json_array_get_element(va, i);
        s->handle_ns += bench_json_num(v, "handle_ns");
        s->stat_exits += bench_json_num(v, "exits_total");
        s->lock_wait_ns += bench_json_num(v, "lock_wait_ns");
    }
    return true;
}

/* The floor says how many writes it counted; they must be all of them. */
static bool floor_counted(const char *err_file, long want, GError **errp)
{
    g_autofree char *text = NULL;
    unsigned long long got = 0;
    if (g_file_get_contents(err_file, &text, NULL, NULL)) {
        const char *p = strstr(text, "kvm-floor: counted ");
        if (p) {
            got = strtoull(p + strlen("kvm-floor: counted "), NULL, 10);
        }
    }
    if (got != (unsigned long long)want) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "the floor counted %llu exits, want %ld",
                    got, want);
        return false;
    }
    return true;
}

static bool run_one(Bench *b, const Row *r, long n, Sample *s, GError **errp)
{
    g_autofree char *stats_file = g_build_filename(b->tmpdir, "stats.json", NULL);
    g_autofree char *err_file = g_build_filename(b->tmpdir, "stderr.txt", NULL);
    g_autoptr(GPtrArray) argv = build_argv(b, r, n, stats_file);
    g_autoptr(GString) out = g_string_new(NULL);
    BenchChild c = {0};
    BenchMarks m = BENCH_MARKS_INIT;
    struct rusage ru;
    int status;

    unlink(stats_file);
    if (b->verbose) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv->pdata);
        fprintf(stderr, "exit-bench: %s\n", cmd);
    }
    if (!bench_child_spawn(&c, (char **)argv->pdata, err_file, errp)) {
        return false;
    }
    bool finished = bench_child_read(&c, "bench-exits", &m, b->timeout_s, out,
                                     b->pin ? BENCH_PIN_VCPUS : BENCH_PIN_NONE);
    close(c.out);
    while (wait4(c.pid, &status, 0, &ru) < 0 && errno == EINTR) {
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
    if (r->mode == MODE_FLOOR && !floor_counted(err_file, n * r->vcpus, errp)) {
        return false;
    }
    *s = (Sample){
        .wall_ns = isnan(m.cycles) ? m.t_done - m.t_go : m.cycles / b->tsc_hz * 1e9,
        .cpu_ns = m.cpu_done - m.cpu_go,
        .user_ns = bench_timeval_ns(&ru.ru_utime),
        .sys_ns = bench_timeval_ns(&ru.ru_stime),
        .bql_wait_ns = NAN,
        .handle_ns = NAN,
        .stat_exits = NAN,
        .lock_wait_ns = NAN,
    };
    if (r->mode != MODE_FLOOR && r->mode != MODE_QEMU && b->kvmloop_stats_file &&
        r->stats != STATS_OFF) {
        read_stats(stats_file, s);
    }
    return true;
}

/* ---- the plan ----------------------------------------------------------- */

static Row *row_new(Section sec, Mode mode, bool mmio, int vcpus, int delay_ns, StatsMode stats,
                    long n)
{
    Row *r = g_new0(Row, 1);
    *r = (Row){.sec = sec,
               .mode = mode,
               .mmio = mmio,
               .vcpus = vcpus,
               .delay_ns = delay_ns,
               .stats = stats,
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

/* The n = 0 run of @r's VMM, vCPU count and statistics setting. */
static Row *base_of(Bench *b, const Row *r)
{
    for (guint i = 0; i < b->bases->len; i++) {
        Row *x = b->bases->pdata[i];
        if (x->mode == r->mode && x->vcpus == r->vcpus && x->stats == r->stats) {
            return x;
        }
    }
    Row *x = row_new(r->sec, r->mode, false, r->vcpus, 0, r->stats, 0);
    g_ptr_array_add(b->bases, x);
    return x;
}

static void plan_add(Bench *b, Row *r)
{
    r->base = base_of(b, r);
    g_ptr_array_add(b->rows, r);
}

static void plan(Bench *b, const bool *modes)
{
    for (int mmio = 0; mmio < 2; mmio++) {
        for (int m = 0; m < MODE__MAX; m++) {
            for (int v = 1; v <= b->max_cpus && modes[m]; v++) {
                plan_add(b, row_new(SEC_MAIN, m, mmio, v, 0, STATS_ON, b->n));
            }
        }
    }
    for (guint d = 0; d < b->delays->len; d++) {
        int delay = g_array_index(b->delays, int, d);
        /* Fewer writes for longer delays: each run takes about as long. */
        long n = MAX(1, (long)((double)b->n * 5000.0 / (5000.0 + delay)));
        for (int m = MODE_BQL; m <= MODE_NONE; m++) {
            for (int v = 1; v <= b->max_cpus && modes[m]; v++) {
                plan_add(b, row_new(SEC_DELAY, m, false, v, delay, STATS_ON, n));
            }
        }
    }
    if (b->user_n <= 0) {
        return;
    }
    /* One vCPU: user CPU beside QEMU's and the floor's; statistics on and
     * off next to each other, also with all vCPUs (contended). */
    if (modes[MODE_FLOOR]) {
        plan_add(b, row_new(SEC_USER, MODE_FLOOR, false, 1, 0, STATS_ON, b->user_n));
    }
    for (int v = 1; v <= b->max_cpus && modes[MODE_BQL]; v += MAX(1, b->max_cpus - 1)) {
        plan_add(b, row_new(SEC_USER, MODE_BQL, false, v, 0, STATS_ON, b->user_n));
        /* Without -stats-collect (older kvmloop) "off" would be "on" again. */
        if (b->kvmloop_stats_file) {
            plan_add(b, row_new(SEC_USER, MODE_BQL, false, v, 0, STATS_OFF, b->user_n));
        }
        if (b->kvmloop_stats_full) {
            plan_add(b, row_new(SEC_USER, MODE_BQL, false, v, 0, STATS_FULL, b->user_n));
        }
    }
    if (modes[MODE_QEMU]) {
        plan_add(b, row_new(SEC_USER, MODE_QEMU, false, 1, 0, STATS_ON, b->user_n));
    }
}

static const char *row_label(const Row *r, char *buf, size_t len)
{
    g_snprintf(buf, len, "%s %s %s vCPUs=%d delay=%d stats=%s n=%ld", section_names[r->sec],
               mode_names[r->mode], r->mmio ? "mmio" : "pio", r->vcpus, r->delay_ns,
               stats_names[r->stats], r->n);
    return buf;
}

static void run_row(Bench *b, Row *r)
{
    Sample s;
    g_autoptr(GError) err = NULL;
    char label[160];

    if (run_one(b, r, r->n, &s, &err)) {
        g_array_append_val(r->samples, s);
        return;
    }
    r->failures++;
    fprintf(stderr, "exit-bench: %s: %s\n", row_label(r, label, sizeof(label)), err->message);
}

/* Each field's median over the samples that have it. */
static void row_medians(Row *r)
{
    bench_medians(r->samples, SAMPLE_FIELDS, (double *)&r->med);
}

/* ---- derived figures ---------------------------------------------------- */

typedef struct Figures {
    double exits, exits_per_s, wall_ns, cpu_ns, user_ns, sys_ns, handle_ns, bql_wait_pct;
    double lock_wait_pct;
} Figures;

static Figures figures(const Row *r)
{
    Figures f;
    const Sample *m = &r->med, *z = r->base ? &r->base->med : NULL;
    f.exits = (double)r->n * r->vcpus;
    f.exits_per_s = f.exits / m->wall_ns * 1e9;
    /* Per vCPU: the round trip one vCPU sees. */
    f.wall_ns = m->wall_ns * r->vcpus / f.exits;
    f.cpu_ns = m->cpu_ns / f.exits;
    f.user_ns = z ? (m->user_ns - z->user_ns) / f.exits : NAN;
    f.sys_ns = z ? (m->sys_ns - z->sys_ns) / f.exits : NAN;
    f.handle_ns = m->handle_ns / m->stat_exits;
    f.bql_wait_pct = m->bql_wait_ns / (m->wall_ns * r->vcpus) * 100;
    f.lock_wait_pct = m->lock_wait_ns / (m->wall_ns * r->vcpus) * 100;
    return f;
}

static Row *find_row(Bench *b, Section sec, Mode mode, bool mmio, int vcpus, int delay,
                     StatsMode stats)
{
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = b->rows->pdata[i];
        if (r->sec == sec && r->mode == mode && r->mmio == mmio && r->vcpus == vcpus &&
            r->delay_ns == delay && r->stats == stats && r->samples->len > 0) {
            return r;
        }
    }
    return NULL;
}

/* ---- output ------------------------------------------------------------- */

static void print_row(const Row *r)
{
    Figures f = figures(r);
    char c[7][32];
    bench_fmt(c[0], 32, f.exits_per_s, 0);
    bench_fmt(c[1], 32, f.wall_ns, 0);
    bench_fmt(c[2], 32, f.cpu_ns, 0);
    bench_fmt(c[3], 32, f.user_ns, 0);
    bench_fmt(c[4], 32, f.handle_ns, 0);
    bench_fmt(c[5], 32, f.bql_wait_pct, 1);
    bench_fmt(c[6], 32, f.lock_wait_pct, 1);
    printf("| %s | %s | %d | %g | %s | %u/%u | %s | %s | %s | %s | %s | %s | %s |\n",
           mode_names[r->mode], r->mmio ? "mmio" : "pio", r->vcpus, r->delay_ns / 1000.0,
           stats_names[r->stats], r->samples->len, r->samples->len + r->failures, c[0], c[1], c[2],
           c[3], c[4], c[5], c[6]);
}

static void print_section(Bench *b, Section sec, const char *title)
{
    bool any = false;
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = b->rows->pdata[i];
        if (r->sec != sec) {
            continue;
        }
        if (!any) {
            printf("\n### %s\n\n", title);
            printf("| mode | io | vCPUs | delay us | stats | runs | exits/s | wall ns/exit | "
                   "CPU ns/exit | user ns/exit | kvmloop ns/exit | BQL wait %% | lock wait %% |\n");
            printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
            any = true;
        }
        print_row(r);
    }
}

/* The user CPU readings of @c vCPUs: tick-sampled user time, the exact CPU
 * time above the floor's, and kvmloop's own account of its handling. */
static void print_user(Bench *b, int c)
{
    Row *fl = find_row(b, SEC_USER, MODE_FLOOR, false, c, 0, STATS_ON);
    Row *on = find_row(b, SEC_USER, MODE_BQL, false, c, 0, STATS_ON);
    Row *off = find_row(b, SEC_USER, MODE_BQL, false, c, 0, STATS_OFF);
    Row *full = find_row(b, SEC_USER, MODE_BQL, false, c, 0, STATS_FULL);
    Row *q = find_row(b, SEC_USER, MODE_QEMU, false, c, 0, STATS_ON);
    char u[4][32], a[2][32], h[32];

    Row *with[2] = {on, full};
    for (int i = 0; i < 2 && off; i++) {
        if (!with[i]) {
            continue;
        }
        Figures x = figures(with[i]), z = figures(off);
        printf("- statistics %s vs off, lock=bql, %d vCPU(s): wall %+.0f ns/exit (%+.1f %% of the "
               "round trip), CPU %+.0f ns/exit (%+.1f %%)\n",
               stats_names[with[i]->stats], c, x.wall_ns - z.wall_ns,
               (x.wall_ns - z.wall_ns) * 100 / z.wall_ns, x.cpu_ns - z.cpu_ns,
               (x.cpu_ns - z.cpu_ns) * 100 / z.cpu_ns);
    }
    if (!on) {
        return;
    }
    bench_fmt(u[0], 32, figures(on).user_ns, 0);
    bench_fmt(u[1], 32, off ? figures(off).user_ns : NAN, 0);
    bench_fmt(u[2], 32, q ? figures(q).user_ns : NAN, 0);
    bench_fmt(u[3], 32, fl ? figures(fl).user_ns : NAN, 0);
    bench_fmt(a[0], 32, fl ? figures(on).cpu_ns - figures(fl).cpu_ns : NAN, 0);
    bench_fmt(a[1], 32, fl && q ? figures(q).cpu_ns - figures(fl).cpu_ns : NAN, 0);
    bench_fmt(h, 32, figures(full ? full : on).handle_ns, 0);
    printf("- user CPU per PIO exit, %d vCPU(s): kvmloop lock=bql %s ns (statistics off: %s), "
           "QEMU %s ns, floor %s ns. CPU above the floor's: kvmloop %s ns, QEMU %s ns. "
           "kvmloop's own account of an exit (KVM_RUN return to next entry, statistics %s): %s "
           "ns\n",
           c, u[0], u[1], u[2], u[3], a[0], a[1], full ? "full" : "on", h);
}

static void print_derived(Bench *b)
{
    int v = b->max_cpus;
    Row *fl = find_row(b, SEC_MAIN, MODE_FLOOR, false, v, 0, STATS_ON);
    Row *no = find_row(b, SEC_MAIN, MODE_NONE, false, v, 0, STATS_ON);

    printf("\n### Readings\n\n");
    if (fl && no) {
        Figures a = figures(no), f = figures(fl);
        printf("- lock=none, %d vCPUs, PIO: %.0f exits/s, the floor %.0f: %+.1f %%. Per CPU "
               "second (load on the host costs wall time, not CPU time): %.0f exits against "
               "%.0f, %+.1f %%\n",
               v, a.exits_per_s, f.exits_per_s,
               (a.exits_per_s - f.exits_per_s) * 100 / f.exits_per_s, 1e9 / a.cpu_ns,
               1e9 / f.cpu_ns, (f.cpu_ns - a.cpu_ns) * 100 / a.cpu_ns);
    }
    print_user(b, 1);
    if (v > 1) {
        print_user(b, v);
    }
    for (guint d = 0; d < b->delays->len && v > 1; d++) {
        int delay = g_array_index(b->delays, int, d);
        Row *bq = find_row(b, SEC_DELAY, MODE_BQL, false, v, delay, STATS_ON);
        Row *nn = find_row(b, SEC_DELAY, MODE_NONE, false, v, delay, STATS_ON);
        if (!bq || !nn) {
            continue;
        }
        Figures fb = figures(bq), fn = figures(nn);
        double lost = fb.wall_ns - fn.wall_ns;
        double wait = bq->med.bql_wait_ns / (double)(bq->n * v);
        char w[32], pct[32], hb[32], hn[32], hpct[32];
        bench_fmt(w, 32, wait, 0);
        bench_fmt(pct, 32, lost > 0 ? wait * 100 / lost : NAN, 0);
        bench_fmt(hb, 32, fb.handle_ns, 0);
        bench_fmt(hn, 32, fn.handle_ns, 0);
        bench_fmt(hpct, 32,
                  fb.handle_ns > fn.handle_ns ? wait * 100 / (fb.handle_ns - fn.handle_ns) : NAN,
                  0);
        printf("- delay %g us, %d vCPUs: lock=bql loses %.0f ns per exit against lock=none; the "
               "statistics show %s ns of BQL wait per exit (%s %% of the loss). kvmloop's handling "
               "per exit: %s ns with the BQL, %s ns without (the wait is %s %% of the "
               "difference; above 100 %% where lock=none loses time to preemption instead)\n",
               delay / 1000.0, v, lost, w, pct, hb, hn, hpct);
    }
}

static bool write_json(Bench *b, const BenchHost *h, const char *cmdline, const char *file)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "exit-bench: cannot write %s: %s\n", file, g_strerror(errno));
        return false;
    }
    fprintf(f, "{\n  ");
    bench_json_str(f, "benchmark", "exits", true);
    bench_json_str(f, "command", cmdline, false);
    bench_json_host(f, h, b->load_start, b->load_end);
    fprintf(f, ",\n  \"params\": {");
    bench_json_num_out(f, "n", (double)b->n, true);
    bench_json_num_out(f, "user_n", (double)b->user_n, true);
    bench_json_num_out(f, "repeat", b->repeat, true);
    bench_json_num_out(f, "max_cpus", b->max_cpus, true);
    fprintf(f, "\"pinned\": %s", b->pin ? "true" : "false");
    fprintf(f, "},\n  \"rows\": [\n");
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = b->rows->pdata[i];
        Figures g = figures(r);
        fprintf(f, "    {");
        bench_json_str(f, "section", section_names[r->sec], true);
        bench_json_str(f, "mode", mode_names[r->mode], true);
        bench_json_str(f, "io", r->mmio ? "mmio" : "pio", true);
        bench_json_num_out(f, "vcpus", r->vcpus, true);
        bench_json_num_out(f, "delay_ns", r->delay_ns, true);
        bench_json_str(f, "stats", stats_names[r->stats], true);
        bench_json_num_out(f, "writes_per_vcpu", (double)r->n, true);
        bench_json_num_out(f, "runs", r->samples->len, true);
        bench_json_num_out(f, "failures", r->failures, true);
        bench_json_num_out(f, "exits", g.exits, true);
        bench_json_num_out(f, "exits_per_s", r->samples->len ? g.exits_per_s : NAN, true);
        bench_json_num_out(f, "wall_ns_per_exit", r->samples->len ? g.wall_ns : NAN, true);
        bench_json_num_out(f, "cpu_ns_per_exit", r->samples->len ? g.cpu_ns : NAN, true);
        bench_json_num_out(f, "user_ns_per_exit", r->samples->len ? g.user_ns : NAN, true);
        bench_json_num_out(f, "sys_ns_per_exit", r->samples->len ? g.sys_ns : NAN, true);
        bench_json_num_out(f, "handle_ns_per_exit", r->samples->len ? g.handle_ns : NAN, true);
        bench_json_num_out(f, "bql_wait_percent", r->samples->len ? g.bql_wait_pct : NAN, true);
        bench_json_num_out(f, "lock_wait_percent", r->samples->len ? g.lock_wait_pct : NAN, false);
        fprintf(f, "}%s\n", i + 1 < b->rows->len ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0;
}

/* Data for exits.gp: exits/s by vCPU count per mode (PIO, then MMIO), and
 * by delay per lock at the largest vCPU count with its BQL wait share. */
static bool write_plot_data(Bench *b, const char *dir)
{
    g_autofree char *sc = g_build_filename(dir, "scaling.dat", NULL);
    g_autofree char *dl = g_build_filename(dir, "delay.dat", NULL);
    FILE *f = fopen(sc, "w");
    if (!f) {
        fprintf(stderr, "exit-bench: cannot write %s: %s\n", sc, g_strerror(errno));
        return false;
    }
    for (int mmio = 0; mmio < 2; mmio++) {
        fprintf(f, "%svcpus", mmio ? "\n\n" : "");
        for (int m = 0; m < MODE__MAX; m++) {
            fprintf(f, " %s", mode_names[m]);
        }
        fprintf(f, "\n");
        for (int v = 1; v <= b->max_cpus; v++) {
            fprintf(f, "%d", v);
            for (int m = 0; m < MODE__MAX; m++) {
                Row *r = find_row(b, SEC_MAIN, m, mmio, v, 0, STATS_ON);
                fprintf(f, " %.0f", r ? figures(r).exits_per_s : NAN);
            }
            fprintf(f, "\n");
        }
    }
    fclose(f);
    f = fopen(dl, "w");
    if (!f) {
        fprintf(stderr, "exit-bench: cannot write %s: %s\n", dl, g_strerror(errno));
        return false;
    }
    fprintf(f, "delay_us bql device none bql_wait_percent\n");
    for (int d = -1; d < (int)b->delays->len; d++) {
        int delay = d < 0 ? 0 : g_array_index(b->delays, int, d);
        Section sec = d < 0 ? SEC_MAIN : SEC_DELAY;
        Row *bq = find_row(b, sec, MODE_BQL, false, b->max_cpus, delay, STATS_ON);
        fprintf(f, "%g", delay / 1000.0);
        for (int m = MODE_BQL; m <= MODE_NONE; m++) {
            Row *r = find_row(b, sec, m, false, b->max_cpus, delay, STATS_ON);
            fprintf(f, " %.0f", r ? figures(r).exits_per_s : NAN);
        }
        fprintf(f, " %.1f\n", bq ? figures(bq).bql_wait_pct : NAN);
    }
    fclose(f);
    return true;
}

/* ---- host and options --------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: exit-bench -build DIR [-qemu PATH|none] [-n N] [-user-n N] [-repeat R]\n"
                 "                  [-max-cpus N] [-delays NS,NS,...|none] [-modes M,M,...]\n"
                 "                  [-json FILE] [-plot-dir DIR] [-timeout S] [-pin] [-v]\n"
                 "  -build DIR   a kvmloop build: DIR/kvmloop, DIR/tools/bench/kvm-floor and\n"
                 "               DIR/tests/guest/bench-exits.elf\n"
                 "  -modes       any of floor,bql,device,none,ioeventfd,qemu (default all)\n"
                 "  -pin         pin vCPU thread i of every VMM to host CPU i mod nproc\n");
}

static bool parse_delays(Bench *b, const char *s)
{
    if (!strcmp(s, "none")) {
        return true;
    }
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    for (char **p = parts; *p; p++) {
        long v;
        if (!bench_parse_long("-delays", *p, 0, 1000000000, &v)) {
            return false;
        }
        int d = (int)v;
        g_array_append_val(b->delays, d);
    }
    return true;
}

static bool parse_modes(const char *s, bool *modes)
{
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    memset(modes, 0, sizeof(bool) * MODE__MAX);
    for (char **p = parts; *p; p++) {
        int m;
        for (m = 0; m < MODE__MAX && strcmp(*p, mode_names[m]); m++) {
        }
        if (m == MODE__MAX) {
            fprintf(stderr, "exit-bench: -modes: unknown mode '%s'\n", *p);
            return false;
        }
        modes[m] = true;
    }
    return true;
}

static bool parse_args(Bench *b, int argc, char **argv, bool *modes, const char **json,
                       const char **plot_dir)
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
            fprintf(stderr, "exit-bench: %s needs an argument\n", o);
            usage(stderr);
            return false;
        }
        i++;
        if (!strcmp(o, "-build")) {
            build = val;
        } else if (!strcmp(o, "-qemu")) {
            qemu = val;
        } else if (!strcmp(o, "-n") || !strcmp(o, "-user-n")) {
            if (!bench_parse_long(o, val, !strcmp(o, "-n"), 100000000, &v)) {
                return false;
            }
            *(!strcmp(o, "-n") ? &b->n : &b->user_n) = v;
        } else if (!strcmp(o, "-repeat") || !strcmp(o, "-max-cpus") || !strcmp(o, "-timeout")) {
            if (!bench_parse_long(o, val, 1, !strcmp(o, "-max-cpus") ? 16 : 100000, &v)) {
                return false;
            }
            *(!strcmp(o, "-repeat")     ? &b->repeat
              : !strcmp(o, "-max-cpus") ? &b->max_cpus
                                        : &b->timeout_s) = (int)v;
        } else if (!strcmp(o, "-delays")) {
            if (!parse_delays(b, val)) {
                return false;
            }
        } else if (!strcmp(o, "-modes")) {
            if (!parse_modes(val, modes)) {
                return false;
            }
        } else if (!strcmp(o, "-json")) {
            *json = val;
        } else if (!strcmp(o, "-plot-dir")) {
            *plot_dir = val;
        } else {
            fprintf(stderr, "exit-bench: unknown option %s\n", o);
            usage(stderr);
            return false;
        }
    }
    if (!build) {
        fprintf(stderr, "exit-bench: -build DIR is required\n");
        usage(stderr);
        return false;
    }
    b->kvmloop = g_build_filename(build, "kvmloop", NULL);
    b->floor = g_build_filename(build, "tools", "bench", "kvm-floor", NULL);
    b->guest = g_build_filename(build, "tests", "guest", "bench-exits.elf", NULL);
    const char *need[] = {b->kvmloop, b->floor, b->guest};
    for (unsigned i = 0; i < G_N_ELEMENTS(need); i++) {
        if (!g_file_test(need[i], G_FILE_TEST_IS_REGULAR)) {
            fprintf(stderr, "exit-bench: %s is missing (build the tree first)\n", need[i]);
            return false;
        }
    }
    if (qemu && !strcmp(qemu, "none")) {
        modes[MODE_QEMU] = false;
    } else {
        b->qemu = qemu ? g_strdup(qemu) : g_find_program_in_path("qemu-system-x86_64");
        if (!b->qemu && modes[MODE_QEMU]) {
            fprintf(stderr, "exit-bench: qemu-system-x86_64 not found: no QEMU rows\n");
        }
        modes[MODE_QEMU] = modes[MODE_QEMU] && b->qemu;
    }
    return true;
}

int main(int argc, char **argv)
{
    Bench b = {.n = 40000,
               .user_n = 300000,
               .max_cpus = (int)CLAMP(sysconf(_SC_NPROCESSORS_ONLN), 1, 16),
               .repeat = 5,
               .timeout_s = 300,
               .delays = g_array_new(false, false, sizeof(int)),
               .rows = g_ptr_array_new_with_free_func(row_free),
               .bases = g_ptr_array_new_with_free_func(row_free)};
    bool modes[MODE__MAX];
    const char *json = NULL, *plot_dir = NULL;
    bool delays_given = false;

    g_set_prgname("exit-bench");

    for (int m = 0; m < MODE__MAX; m++) {
        modes[m] = true;
    }
    for (int i = 1; i < argc; i++) {
        delays_given = delays_given || !strcmp(argv[i], "-delays");
    }
    if (!parse_args(&b, argc, argv, modes, &json, &plot_dir)) {
        return 2;
    }
    if (!delays_given) {
        int d[] = {1000, 5000, 20000};
        g_array_append_vals(b.delays, d, G_N_ELEMENTS(d));
    }
    b.kvmloop_stats_file = bench_kvmloop_help_has(b.kvmloop, "-stats-file");
    b.kvmloop_stats_full = bench_kvmloop_help_has(b.kvmloop, "on|full|off");
    b.tsc_hz = bench_tsc_hz(200);
    b.tmpdir = g_dir_make_tmp("exit-bench-XXXXXX", NULL);
    if (!b.tmpdir) {
        fprintf(stderr, "exit-bench: cannot make a temporary directory\n");
        return 2;
    }
    plan(&b, modes);

    BenchHost h = bench_host_info();
    g_autofree char *cmdline = g_strjoinv(" ", argv);
    b.load_start = bench_read_load();
    int64_t t0 = g_get_monotonic_time();
    for (int rep = 0; rep < b.repeat; rep++) {
        g_autofree char *load = bench_read_load();
        fprintf(stderr, "exit-bench: repetition %d of %d (load %s)\n", rep + 1, b.repeat, load);
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
    }
    for (guint i = 0; i < b.rows->len; i++) {
        Row *r = b.rows->pdata[i];
        row_medians(r);
        failures += r->failures;
    }

    printf("## Exit benchmark\n\n");
    printf("Command: `%s`\n\n", cmdline);
    printf("Host: %ld CPUs, %s (TSC %.3f GHz), %s, %s. Load average before %s, after %s. %d "
           "runs per row (median), %.0f s. vCPU threads %s.\n",
           h.nproc, h.cpu, b.tsc_hz / 1e9, h.kernel, h.kvm, b.load_start, b.load_end, b.repeat,
           (g_get_monotonic_time() - t0) / 1e6,
           b.pin ? "pinned, vCPU i to CPU i mod nproc" : "placed by the scheduler");
    print_section(&b, SEC_MAIN, "Every mode, no service delay");
    print_section(&b, SEC_DELAY, "testdev delay-ns sweep (PIO)");
    print_section(&b, SEC_USER, "User CPU and the cost of statistics (long runs, PIO)");
    print_derived(&b);

    bool ok = failures == 0;
    if (json && !write_json(&b, &h, cmdline, json)) {
        ok = false;
    }
    if (plot_dir && !write_plot_data(&b, plot_dir)) {
        ok = false;
    }
    if (failures) {
        fprintf(stderr, "exit-bench: %d runs failed\n", failures);
    }
    g_autofree char *stats_file = g_build_filename(b.tmpdir, "stats.json", NULL);
    g_autofree char *err_file = g_build_filename(b.tmpdir, "stderr.txt", NULL);
    unlink(stats_file);
    unlink(err_file);
    rmdir(b.tmpdir);
    g_free(b.tmpdir);
    g_free(b.kvmloop);
    g_free(b.floor);
    g_free(b.qemu);
    g_free(b.guest);
    g_free(b.load_start);
    g_free(b.load_end);
    bench_host_clear(&h);
    g_array_free(b.delays, true);
    g_ptr_array_free(b.rows, true);
    g_ptr_array_free(b.bases, true);
    return ok ? 0 : 1;
}
