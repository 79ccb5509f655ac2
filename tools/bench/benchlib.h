/* What the benchmark drivers share: timing, running a VMM as a child, its markers, host facts. */
#ifndef KVMLOOP_BENCHLIB_H
#define KVMLOOP_BENCHLIB_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include <glib.h>
#include <json-glib/json-glib.h>

/* ---- time ---------------------------------------------------------------- */

double bench_now_ns(void);
/* The TSC's rate, against CLOCK_MONOTONIC over @ms milliseconds. A KVM
 * guest's TSC runs at this rate too. */
double bench_tsc_hz(int ms);
/* @clk's reading in ns, NAN when it cannot be read. */
double bench_clock_ns(clockid_t clk);
double bench_timeval_ns(const struct timeval *tv);
/* The median of @vals (sorted in place), NAN when @n is 0. */
double bench_median(double *vals, int n);
/* @samples holds structs of @fields doubles: store each field's median
 * over the samples where it is not NAN in @out (a struct of the same kind). */
void bench_medians(const GArray *samples, int fields, double *out);

/* ---- a VMM as a child process --------------------------------------------- */

/* Append a formatted string to an argv array (free function g_free). */
void bench_argv_add(GPtrArray *a, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* QEMU's command line up to the machine's own options: KVM, the host CPU, no
 * default devices, the serial port on stdout, no reboot, and vCPU threads
 * named "CPU N/KVM" (for pinning and per-thread CPU time). */
void bench_qemu_argv(GPtrArray *a, const char *qemu);

typedef struct BenchChild {
    pid_t pid;
    int out; /* read end of its stdout */
    clockid_t cpu_clock;
    bool have_clock;
} BenchChild;

/* Start @argv with stdin /dev/null, stdout a pipe (c->out) and stderr
 * @err_file. */
bool bench_child_spawn(BenchChild *c, char **argv, const char *err_file, GError **errp);

/* The moments a payload marks on its serial line: "<tag>: go" and "<tag>:
 * done in C cycles". Times are CLOCK_MONOTONIC and the child's process CPU
 * clock when the line arrived; vcpu_* and other_* the CPU time of its vCPU
 * threads and of the rest (bench_thread_cpu_ns()) at the same moments. */
typedef struct BenchMarks {
    bool thread_cpu; /* in: read vcpu_* and other_* (a /proc walk at each marker) */
    bool pinned;
    double t_go, t_done, cpu_go, cpu_done;
    double vcpu_go, vcpu_done, other_go, other_done;
    double cycles; /* the payload's count, NAN if it gave none */
} BenchMarks;

/* clang-format off */
#define BENCH_MARKS_INIT {false, false, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN}
/* clang-format on */

typedef enum {
    BENCH_PIN_NONE,  /* the scheduler places every thread */
    BENCH_PIN_VCPUS, /* vCPU thread i on host CPU i mod nproc; the others anywhere */
    BENCH_PIN_APART, /* the same, and the other threads on the CPUs no vCPU has (if any) */
} BenchPin;

/* Read the child's output to its end into @out, stamping the marker lines
 * of @tag as they arrive; pin its threads as @pin says (bench_pin_threads)
 * at the payload's first line, when every thread that matters exists
 * (threads made later inherit their maker's CPUs). False on a timeout (the
 * child is then killed). */
bool bench_child_read(BenchChild *c, const char *tag, BenchMarks *m, int timeout_s, GString *out,
                      BenchPin pin);
/* Pin the threads of @pid as @pin says. Returns how many vCPU threads were
 * pinned. */
int bench_pin_threads(pid_t pid, BenchPin pin);
/* The CPU time in ns of @pid's vCPU threads (named "vcpuN" or "CPU N/KVM")
 * and of its other threads, from /proc's schedstat. The kernel brings a
 * thread's figure up to date when it leaves a CPU and at each tick, so a
 * thread that is running lags by up to a tick: exact for threads that
 * sleep between events (an I/O thread), a tick off for a spinning vCPU. A
 * thread that exited is no longer counted. */
void bench_thread_cpu_ns(pid_t pid, double *vcpus, double *others);
/* The last line of @file, for an error message. */
char *bench_last_line(const char *file);
/* True if wait status @status is the end of a payload that exited 0 (both
 * VMMs make it status (0 << 1) | 1); else an error naming @what, the status
 * (and the payload's own exit value) and @err_file's last line. */
bool bench_check_exit(int status, const char *what, const char *err_file, GError **errp);

/* ---- JSON in and out --------------------------------------------------- */

JsonNode *bench_json_get(JsonNode *n, const char *member);
/* @member of object @n as a number, NAN when missing. */
double bench_json_num(JsonNode *n, const char *member);
/* Write "key": value, then ", " if @comma; NAN and infinities as null. */
void bench_json_str(FILE *f, const char *key, const char *v, bool comma);
void bench_json_num_out(FILE *f, const char *key, double v, bool comma);
/* @v with @decimals, or "-" for NAN. */
void bench_fmt(char *buf, size_t len, double v, int decimals);

/* ---- host and options ------------------------------------------------- */

typedef struct BenchHost {
    long nproc;
    char *cpu, *kernel, *kvm;
} BenchHost;

BenchHost bench_host_info(void);
/* Write ,\n  "host": {...} with @h and the load averages. */
void bench_json_host(FILE *f, const BenchHost *h, const char *load_start, const char *load_end);
void bench_host_clear(BenchHost *h);
/* The three load averages, as one string. */
char *bench_read_load(void);
/* Parse @s as a number from @min to @max for option @opt; one line on
 * stderr (prefixed with the program's name) if it is not. */
bool bench_parse_long(const char *opt, const char *s, long min, long max, long *out);
/* True if `@kvmloop --help` mentions @what. */
bool bench_kvmloop_help_has(const char *kvmloop, const char *what);

#endif
