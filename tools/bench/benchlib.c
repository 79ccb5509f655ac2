/* What the benchmark drivers share: timing, running a VMM as a child, its markers, host facts. */
#include "benchlib.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

extern char **environ;

/* ---- time ---------------------------------------------------------------- */

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double bench_tsc_hz(int ms)
{
    double t0 = bench_now_ns();
    uint64_t c0 = __rdtsc();
    g_usleep((gulong)ms * 1000);
    uint64_t c1 = __rdtsc();
    double t1 = bench_now_ns();
    return (double)(c1 - c0) / (t1 - t0) * 1e9;
}

double bench_clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) < 0) {
        return NAN;
    }
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double bench_timeval_ns(const struct timeval *tv)
{
    return (double)tv->tv_sec * 1e9 + (double)tv->tv_usec * 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *vals, int n)
{
    if (n <= 0) {
        return NAN;
    }
    qsort(vals, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? vals[n / 2] : (vals[n / 2 - 1] + vals[n / 2]) / 2;
}

void bench_medians(const GArray *samples, int fields, double *out)
{
    double *vals = g_new(double, samples->len + 1);
    const double *all = (const double *)(const void *)samples->data;
    for (int f = 0; f < fields; f++) {
        int k = 0;
        for (guint i = 0; i < samples->len; i++) {
            double v = all[i * (guint)fields + (guint)f];
            if (!isnan(v)) {
                vals[k++] = v;
            }
        }
        out[f] = bench_median(vals, k);
    }
    g_free(vals);
}

/* ---- a VMM as a child process --------------------------------------------- */

void bench_argv_add(GPtrArray *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(a, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

void bench_qemu_argv(GPtrArray *a, const char *qemu)
{
    const char *const args[] = {"-accel",      "kvm",        "-cpu",  "host",
                                "-nodefaults", "-display",   "none",  "-serial",
                                "stdio",       "-no-reboot", "-name", "bench,debug-threads=on"};
    bench_argv_add(a, "%s", qemu);
    for (unsigned i = 0; i < G_N_ELEMENTS(args); i++) {
        bench_argv_add(a, "%s", args[i]);
    }
}

bool bench_child_spawn(BenchChild *c, char **argv, const char *err_file, GError **errp)
{
    int p[2];
    posix_spawn_file_actions_t fa;

    if (pipe2(p, O_CLOEXEC) < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno), "pipe: %s",
                    g_strerror(errno));
        return false;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, err_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int r = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (r != 0) {
        close(p[0]);
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(r), "cannot run %s: %s", argv[0],
                    g_strerror(r));
        return false;
    }
    c->out = p[0];
    c->have_clock = clock_getcpuclockid(c->pid, &c->cpu_clock) == 0;
    return true;
}

/* The vCPU index of a thread named @comm: "vcpuN" (kvmloop, kvm-floor) or
 * "CPU N/KVM" (QEMU); -1 for other threads. */
static int vcpu_of_thread(const char *comm)
{
    int n;
    if (sscanf(comm, "vcpu%d", &n) == 1 || sscanf(comm, "CPU %d/KVM", &n) == 1) {
        return n;
    }
    return -1;
}

/* Call @fn for each thread of @pid with its thread id and vCPU index (-1:
 * not a vCPU thread). */
static void for_each_thread(pid_t pid,
                            void (*fn)(const char *dir, const char *tid, int idx, void *opaque),
                            void *opaque)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *tid;

    if (!d) {
        return;
    }
    while ((tid = g_dir_read_name(d))) {
        g_autofree char *path = g_strdup_printf("%s/%s/comm", dir, tid);
        g_autofree char *comm = NULL;
        if (g_file_get_contents(path, &comm, NULL, NULL)) {
            fn(dir, tid, vcpu_of_thread(comm), opaque);
        }
    }
    g_dir_close(d);
}

typedef struct PinPlan {
    BenchPin pin;
    long ncpus;
    cpu_set_t others; /* CPUs no vCPU has */
    bool have_others;
    int pinned;
} PinPlan;

static void pin_one(const char *dir, const char *tid, int idx, void *opaque)
{
    PinPlan *p = opaque;
    cpu_set_t set;
    if (idx < 0) {
        if (p->pin == BENCH_PIN_APART && p->have_others) {
            sched_setaffinity((pid_t)atoi(tid), sizeof(p->others), &p->others);
        }
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(idx % p->ncpus, &set);
    p->pinned += sched_setaffinity((pid_t)atoi(tid), sizeof(set), &set) == 0;
}

static void count_vcpu(const char *dir, const char *tid, int idx, void *opaque)
{
    *(int *)opaque = MAX(*(int *)opaque, idx + 1);
}

int bench_pin_threads(pid_t pid, BenchPin pin)
{
    PinPlan p = {.pin = pin, .ncpus = MAX(sysconf(_SC_NPROCESSORS_ONLN), 1)};
    int vcpus = 0;
    if (pin == BENCH_PIN_NONE) {
        return 0;
    }
    for_each_thread(pid, count_vcpu, &vcpus);
    CPU_ZERO(&p.others);
    for (long c = vcpus; c < p.ncpus && c < CPU_SETSIZE; c++) {
        CPU_SET(c, &p.others);
        p.have_others = true;
    }
    for_each_thread(pid, pin_one, &p);
    return p.pinned;
}

static void add_schedstat(const char *dir, const char *tid, int idx, void *opaque)
{
    g_autofree char *path = g_strdup_printf("%s/%s/schedstat", dir, tid);
    g_autofree char *text = NULL;
    double *sums = opaque;
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        sums[idx >= 0 ? 0 : 1] += g_ascii_strtod(text, NULL); /* first field: ns on a CPU */
    }
}

void bench_thread_cpu_ns(pid_t pid, double *vcpus, double *others)
{
    double sums[2] = {0, 0};
    for_each_thread(pid, add_schedstat, sums);
    *vcpus = sums[0];
    *others = sums[1];
}

bool bench_child_read(BenchChild *c, const char *tag, BenchMarks *m, int timeout_s, GString *out,
                      BenchPin pin)
{
    double deadline = bench_now_ns() + timeout_s * 1e9;
    g_autofree char *go = g_strdup_printf("%s: go", tag);
    g_autofree char *done = g_strdup_printf("%s: done", tag);
    size_t scanned = 0;
    char buf[4096];

    for (;;) {
        struct pollfd pfd = {.fd = c->out, .events = POLLIN};
        double left = deadline - bench_now_ns();
        if (left <= 0 || poll(&pfd, 1, (int)(left / 1e6) + 1) == 0) {
            kill(c->pid, SIGKILL);
            return false;
        }
        ssize_t len = read(c->out, buf, sizeof(buf));
        double t = bench_now_ns();
        double cpu = c->have_clock ? bench_clock_ns(c->cpu_clock) : NAN;
        if (len < 0 && errno == EINTR) {
            continue;
        }
        if (len <= 0) {
            return true;
        }
        g_string_append_len(out, buf, len);
        /* Whole lines only; a marker split over two reads counts when its
         * newline arrives. */
        char *nl;
        while ((nl = memchr(out->str + scanned, '\n', out->len - scanned))) {
            size_t end = (size_t)(nl - out->str);
            const char *line = out->str + scanned;
            gssize line_len = (gssize)(end - scanned);
            if (pin != BENCH_PIN_NONE && !m->pinned) {
                m->pinned = true;
                bench_pin_threads(c->pid, pin);
            }
            if (g_strstr_len(line, line_len, go)) {
                m->t_go = t;
                m->cpu_go = cpu;
                if (m->thread_cpu) {
                    bench_thread_cpu_ns(c->pid, &m->vcpu_go, &m->other_go);
                }
            } else if (g_strstr_len(line, line_len, done)) {
                const char *num = g_strstr_len(line, line_len, " done in ");
                char *stop;
                m->t_done = t;
                m->cpu_done = cpu;
                if (m->thread_cpu) {
                    bench_thread_cpu_ns(c->pid, &m->vcpu_done, &m->other_done);
                }
                if (num) {
                    unsigned long long cycles = strtoull(num + strlen(" done in "), &stop, 10);
                    if (stop > num + strlen(" done in ") && g_str_has_prefix(stop, " cycles")) {
                        m->cycles = (double)cycles;
                    }
                }
            }
            scanned = end + 1;
        }
    }
}

char *bench_last_line(const char *file)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(file, &text, NULL, NULL)) {
        return g_strdup("");
    }
    g_strchomp(text);
    char *nl = strrchr(text, '\n');
    return g_strdup(nl ? nl + 1 : text);
}

bool bench_check_exit(int status, const char *what, const char *err_file, GError **errp)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        return true;
    }
    g_autofree char *why = bench_last_line(err_file);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
    g_autofree char *payload = WIFEXITED(status) && code > 1 && code % 2
                                   ? g_strdup_printf(" (payload exit %d)", code >> 1)
                                   : g_strdup("");
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s %d%s%s%s", what,
                WIFEXITED(status) ? "exit status" : "signal", code, payload, *why ? ": " : "", why);
    return false;
}

/* ---- JSON in and out --------------------------------------------------- */

JsonNode *bench_json_get(JsonNode *n, const char *member)
{
    if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
        return NULL;
    }
    return json_object_get_member(json_node_get_object(n), member);
}

double bench_json_num(JsonNode *n, const char *member)
{
    JsonNode *v = bench_json_get(n, member);
    return v && JSON_NODE_HOLDS_VALUE(v) ? json_node_get_double(v) : NAN;
}

void bench_json_str(FILE *f, const char *key, const char *v, bool comma)
{
    g_autofree char *e = g_strescape(v ? v : "", NULL);
    fprintf(f, "\"%s\": \"%s\"%s", key, e, comma ? ", " : "");
}

void bench_json_num_out(FILE *f, const char *key, double v, bool comma)
{
    if (isnan(v) || isinf(v)) {
        fprintf(f, "\"%s\": null%s", key, comma ? ", " : "");
    } else {
        fprintf(f, "\"%s\": %.3f%s", key, v, comma ? ", " : "");
    }
}

void bench_fmt(char *buf, size_t len, double v, int decimals)
{
    if (isnan(v) || isinf(v)) {
        g_strlcpy(buf, "-", len);
    } else {
        g_snprintf(buf, len, "%.*f", decimals, v);
    }
}

/* ---- host and options ------------------------------------------------- */

char *bench_read_load(void)
{
    g_autofree char *s = NULL;
    if (!g_file_get_contents("/proc/loadavg", &s, NULL, NULL)) {
        return g_strdup("?");
    }
    g_auto(GStrv) w = g_strsplit(s, " ", 4);
    return g_strdup_printf("%s %s %s", w[0], w[1] ? w[1] : "", w[1] && w[2] ? w[2] : "");
}

BenchHost bench_host_info(void)
{
    BenchHost h = {.nproc = sysconf(_SC_NPROCESSORS_ONLN)};
    g_autofree char *info = NULL;
    struct utsname u;
    bool vmx = false, svm = false;

    h.cpu = g_strdup("?");
    if (g_file_get_contents("/proc/cpuinfo", &info, NULL, NULL)) {
        g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
        for (char **l = lines; *l; l++) {
            if (g_str_has_prefix(*l, "model name") && strchr(*l, ':') && !strcmp(h.cpu, "?")) {
                g_free(h.cpu);
                h.cpu = g_strstrip(g_strdup(strchr(*l, ':') + 1));
            }
            if (g_str_has_prefix(*l, "flags")) {
                vmx = vmx || strstr(*l, " vmx") != NULL;
                svm = svm || strstr(*l, " svm") != NULL;
            }
        }
    }
    h.kernel = uname(&u) == 0 ? g_strdup_printf("%s %s", u.sysname, u.release) : g_strdup("?");
    if (vmx || svm) {
        h.kvm = g_strdup(vmx ? "kvm_intel (VMX)" : "kvm_amd (SVM)");
    } else if (g_file_test("/sys/module/kvm_pvm", G_FILE_TEST_IS_DIR)) {
        h.kvm = g_strdup("kvm_pvm (no VMX/SVM)");
    } else {
        h.kvm = g_strdup("no VMX/SVM");
    }
    return h;
}

void bench_json_host(FILE *f, const BenchHost *h, const char *load_start, const char *load_end)
{
    fprintf(f, ",\n  \"host\": {");
    bench_json_num_out(f, "nproc", (double)h->nproc, true);
    bench_json_str(f, "cpu", h->cpu, true);
    bench_json_str(f, "kernel", h->kernel, true);
    bench_json_str(f, "kvm", h->kvm, true);
    bench_json_str(f, "load_start", load_start, true);
    bench_json_str(f, "load_end", load_end, false);
    fprintf(f, "}");
}

void bench_host_clear(BenchHost *h)
{
    g_clear_pointer(&h->cpu, g_free);
    g_clear_pointer(&h->kernel, g_free);
    g_clear_pointer(&h->kvm, g_free);
}

bool bench_parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "%s: %s: '%s' is not a number from %ld to %ld\n", g_get_prgname(), opt, s,
                min, max);
        return false;
    }
    *out = v;
    return true;
}

bool bench_kvmloop_help_has(const char *kvmloop, const char *what)
{
    g_autofree char *out = NULL;
    char *argv[] = {(char *)kvmloop, "--help", NULL};
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, NULL,
                      NULL)) {
        return false;
    }
    return out && strstr(out, what);
}
