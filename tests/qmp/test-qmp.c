/* QMP on real KVM: a socket client drives an in-process VM through kvmloop's own monitor. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "kvmloop/bql.h"
#include "kvmloop/chardev.h"
#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/event_loop.h"
#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"
#include "kvmloop/qmp.h"
#include "kvmloop/testdev.h"
#include "kvm-test-run.h"
#include "qmp-client.h"

/* Replies and events must come within this; a hang fails the test. */
#define QMP_TIMEOUT_S 60

typedef struct QmpRun QmpRun;
struct QmpRun {
    char *dir;  /* temporary directory with the socket */
    char *sock; /* its path */
    void (*driver)(QmpRun *r);
    pthread_t thread;
    Machine *machine;
    Device *testdev;
    /* Results, after the run. */
    int status;
    uint64_t counter[2]; /* testdev PIO and MMIO */
    uint64_t overlaps;
    char *serial;
    void *data; /* per test */
};

static const char *guest_dir;

static char *payload(const char *name)
{
    return g_strdup_printf("%s/%s.elf", guest_dir, name);
}

static void *driver_thread(void *arg)
{
    QmpRun *r = arg;
    r->driver(r);
    return NULL;
}

static void on_started(Machine *m, EventLoop *loop, void *opaque)
{
    QmpRun *r = opaque;
    r->machine = m;
    r->testdev = machine_find_device(m, "testdev");
    g_assert_cmpint(pthread_create(&r->thread, NULL, driver_thread, r), ==, 0);
}

static void on_stopped(Machine *m, int status, void *opaque)
{
    QmpRun *r = opaque;
    /* The monitor is gone by now, so a driver waiting for its end is done. */
    bql_unlock();
    pthread_join(r->thread, NULL);
    bql_lock();
    if (r->testdev) {
        r->counter[0] = testdev_counter(r->testdev, false);
        r->counter[1] = testdev_counter(r->testdev, true);
        r->overlaps = testdev_overlaps(r->testdev);
    }
    size_t len;
    const uint8_t *buf = chardev_captured(machine_serial(m, 0), &len);
    r->serial = buf ? g_strndup((const char *)buf, len) : g_strdup("");
}

/* Run kvmloop on @args (NULL-terminated) with a capturing serial port, the
 * debug-exit port of the payloads and a QMP socket; @r->driver runs in a
 * thread once the vCPUs started. */
static void run_vm(QmpRun *r, const char *const *args)
{
    r->dir = g_dir_make_tmp("kvmloop-qmp-XXXXXX", NULL);
    g_assert_nonnull(r->dir);
    r->sock = g_build_filename(r->dir, "qmp.sock", NULL);
    g_autofree char *qmp = g_strdup_printf("unix:%s,server=on,wait=off", r->sock);
    VmHooks hooks = {.started = on_started, .stopped = on_stopped, .opaque = r};
    r->status = kvm_test_run((const char *[]){"-qmp", qmp, NULL}, args, &hooks);
    /* The monitor removes its socket file when it ends. */
    g_assert_false(g_file_test(r->sock, G_FILE_TEST_EXISTS));
}

static void run_clear(QmpRun *r)
{
    g_rmdir(r->dir);
    g_free(r->dir);
    g_free(r->sock);
    g_free(r->serial);
}

/* Connect, check the greeting, negotiate. Clients that just closed count
 * against QMP_MAX_CLIENTS until the monitor has seen them go: a refusal for
 * that reason is retried. */
static QmpTestClient *connect_ready(QmpRun *r)
{
    gint64 deadline = g_get_monotonic_time() + QMP_TIMEOUT_S * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(GError) err = NULL;
        QmpTestClient *c = qtc_connect(r->sock, QMP_TIMEOUT_S, &err);
        g_assert_no_error(err);
        g_autoptr(JsonNode) hello = qtc_read(c, NULL);
        g_assert_nonnull(hello);
        if (json_object_has_member(json_node_get_object(hello), "QMP")) {
            g_autoptr(JsonNode) ret = qtc_ok(c, "{\"execute\": \"qmp_capabilities\"}");
            return c;
        }
        g_assert_cmpstr(qtc_str(qtc_member(hello, "error"), "desc"), ==, "Too many QMP clients");
        qtc_free(c);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

static void assert_status(QmpTestClient *c, const char *status, gboolean running)
{
    g_autoptr(JsonNode) s = qtc_ok(c, "{\"execute\": \"query-status\"}");
    g_assert_cmpstr(qtc_str(s, "status"), ==, status);
    g_assert_cmpint(qtc_bool(s, "running"), ==, running);
    g_assert_false(qtc_bool(s, "singlestep"));
    g_assert_cmpuint(json_object_get_size(json_node_get_object(s)), ==, 3);
}

/* Send a request and check the error reply's class and desc (a prefix when
 * @desc ends in '*'). */
static void expect_error(QmpTestClient *c, const char *klass, const char *desc, const char *req)
{
    g_autofree char *got = qtc_err(c, klass, "%s", req);
    size_t n = strlen(desc);
    if (n > 0 && desc[n - 1] == '*') {
        if (strncmp(got, desc, n - 1) != 0) {
            g_error("%s: desc '%s' does not start with '%.*s'", req, got, (int)n - 1, desc);
        }
    } else {
        g_assert_cmpstr(got, ==, desc);
    }
}

/* A request and the error it must get (see expect_error()). */
typedef struct ErrorCase {
    const char *klass;
    const char *desc;
    const char *req;
} ErrorCase;

static void expect_errors(QmpTestClient *c, const ErrorCase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        expect_error(c, cases[i].klass, cases[i].desc, cases[i].req);
    }
}

/* ---- Greeting, negotiation, replies, errors, events ---------------------- */

static void check_greeting(JsonNode *g)
{
    g_assert_cmpuint(json_object_get_size(json_node_get_object(g)), ==, 1);
    JsonNode *qmp = qtc_member(g, "QMP");
    JsonNode *version = qtc_member(qmp, "version");
    JsonNode *qemu = qtc_member(version, "qemu");
    g_assert_cmpint(qtc_int(qemu, "major"), >=, 0);
    g_assert_cmpint(qtc_int(qemu, "minor"), >=, 0);
    g_assert_cmpint(qtc_int(qemu, "micro"), >=, 0);
    g_assert_cmpstr(qtc_str(version, "package"), ==, "kvmloop");
    JsonNode *caps = qtc_member(qmp, "capabilities");
    g_assert_true(JSON_NODE_HOLDS_ARRAY(caps));
    g_assert_cmpuint(json_array_get_length(json_node_get_array(caps)), ==, 0);
}

static void check_negotiation(QmpTestClient *a)
{
    g_autoptr(JsonNode) early = qtc_cmd(a, "{\"execute\": \"query-status\", \"id\": \"e1\"}");
    JsonNode *err = qtc_member(early, "error");
    g_assert_cmpstr(qtc_str(err, "class"), ==, "CommandNotFound");
    g_assert_cmpstr(qtc_str(err, "desc"), ==,
                    "Expecting capabilities negotiation with 'qmp_capabilities'");
    g_assert_cmpstr(qtc_str(early, "id"), ==, "e1");
    expect_error(a, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'",
                 "{\"execute\": \"no-such-command\"}");
    expect_error(a, "GenericError", "Capability 'oob' not available",
                 "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
    g_autoptr(JsonNode) ok = qtc_ok(a, "{\"execute\": \"qmp_capabilities\", \"arguments\": {}}");
    g_assert_cmpuint(json_object_get_size(json_node_get_object(ok)), ==, 0);
    expect_error(a, "CommandNotFound",
                 "Capabilities negotiation is already complete, command ignored",
                 "{\"execute\": \"qmp_capabilities\"}");
}

/* Any JSON value as id comes back as it was sent. */
static void check_ids(QmpTestClient *a)
{
    static const char *const ids[] = {
        "\"abc\"", "42", "-1.5", "true", "null", "[1, \"a\", {}]", "{\"k\": {\"n\": [[]]}}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_autoptr(JsonNode) r = qtc_cmd(a, "{\"execute\": \"query-kvm\", \"id\": %s}", ids[i]);
        g_autoptr(JsonNode) want = json_from_string(ids[i], NULL);
        g_assert_true(json_node_equal(qtc_member(r, "id"), want));
        (void)qtc_member(r, "return");
    }
    /* The id is echoed on errors too. */
    g_autoptr(JsonNode) e = qtc_cmd(a, "{\"execute\": \"nope\", \"id\": [7]}");
    (void)qtc_member(e, "error");
    g_assert_cmpint(json_array_get_int_element(json_node_get_array(qtc_member(e, "id")), 0), ==, 7);
}

static void check_queries(QmpTestClient *a)
{
    g_autoptr(JsonNode) v = qtc_ok(a, "{\"execute\": \"query-version\"}");
    g_assert_cmpstr(qtc_str(v, "package"), ==, "kvmloop");
    g_assert_cmpint(qtc_int(qtc_member(v, "qemu"), "minor"), >=, 0);

    static const char *const names[] = {
        "qmp_capabilities",
        "query-version",
        "query-commands",
        "query-status",
        "stop",
        "cont",
        "system_reset",
        "system_powerdown",
        "quit",
        "query-cpus-fast",
        "query-kvm",
        "query-iothreads",
        "x-query-lock-stats",
        "x-reset-lock-stats",
        "x-query-exit-stats",
        "x-set-lock-policy",
    };
    g_autoptr(JsonNode) cmds = qtc_ok(a, "{\"execute\": \"query-commands\"}");
    JsonArray *ca = json_node_get_array(cmds);
    g_assert_cmpuint(json_array_get_length(ca), ==, G_N_ELEMENTS(names));
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        bool found = false;
        for (guint j = 0; j < json_array_get_length(ca); j++) {
            found = found || !strcmp(qtc_str(json_array_get_element(ca, j), "name"), names[i]);
        }
        g_assert_true(found);
    }

    /* -smp 2,sockets=1,cores=1,threads=2: two threads of one core. */
    g_autoptr(JsonNode) cpus = qtc_ok(a, "{\"execute\": \"query-cpus-fast\"}");
    JsonArray *cpa = json_node_get_array(cpus);
    g_assert_cmpuint(json_array_get_length(cpa), ==, 2);
    for (guint i = 0; i < 2; i++) {
        JsonNode *cpu = json_array_get_element(cpa, i);
        g_assert_cmpint(qtc_int(cpu, "cpu-index"), ==, i);
        bql_lock();
        pid_t tid = cpu_thread_id(cpu_by_index((int)i));
        bql_unlock();
        g_assert_cmpint(tid, >, 0);
        g_assert_cmpint(qtc_int(cpu, "thread-id"), ==, tid);
        g_assert_cmpstr(qtc_str(cpu, "target"), ==, "x86_64");
        g_assert_true(g_str_has_prefix(qtc_str(cpu, "qom-path"), "/machine/"));
        JsonNode *props = qtc_member(cpu, "props");
        g_assert_cmpint(qtc_int(props, "socket-id"), ==, 0);
        g_assert_cmpint(qtc_int(props, "die-id"), ==, 0);
        g_assert_cmpint(qtc_int(props, "core-id"), ==, 0);
        g_assert_cmpint(qtc_int(props, "thread-id"), ==, i);
    }

    g_autoptr(JsonNode) kvm = qtc_ok(a, "{\"execute\": \"query-kvm\"}");
    g_assert_true(qtc_bool(kvm, "enabled"));
    g_assert_true(qtc_bool(kvm, "present"));

    g_autoptr(JsonNode) io = qtc_ok(a, "{\"execute\": \"query-iothreads\"}");
    JsonArray *ia = json_node_get_array(io);
    g_assert_cmpuint(json_array_get_length(ia), ==, 1);
    JsonNode *io0 = json_array_get_element(ia, 0);
    g_assert_cmpstr(qtc_str(io0, "id"), ==, "io0");
    g_assert_cmpint(qtc_int(io0, "thread-id"), ==, iothread_thread_id(iothread_find("io0")));
    g_assert_cmpint(qtc_int(io0, "thread-id"), >, 0);
    g_assert_cmpint(qtc_int(io0, "poll-max-ns"), ==, 0);

    g_autoptr(JsonNode) ex = qtc_ok(a, "{\"execute\": \"x-query-exit-stats\"}");
    JsonArray *ea = json_node_get_array(ex);
    g_assert_cmpuint(json_array_get_length(ea), ==, 2);
    for (guint i = 0; i < 2; i++) {
        JsonNode *e = json_array_get_element(ea, i);
        g_assert_cmpint(qtc_int(e, "cpu-index"), ==, i);
        g_assert_cmpint(qtc_int(e, "thread-id"), >, 0);
        JsonNode *exits = qtc_member(e, "exits");
        gint64 sum = 0;
        for (int k = 0; k < VCPU_EXIT__MAX; k++) {
            sum += qtc_int(exits, vcpu_exit_reason_names[k]);
        }
        g_assert_cmpint(qtc_int(e, "total"), ==, sum);
        g_assert_cmpint(qtc_int(e, "kicks-seen"), >=, 0);
    }
}

static JsonNode *find_named(JsonNode *doc, const char *array, const char *name)
{
    JsonArray *a = json_node_get_array(qtc_member(doc, array));
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!strcmp(qtc_str(e, "name"), name)) {
            return e;
        }
    }
    return NULL;
}

static void check_stats_commands(QmpTestClient *a)
{
    g_autoptr(JsonNode) reset = qtc_ok(a, "{\"execute\": \"x-reset-lock-stats\"}");
    g_autoptr(JsonNode) st = qtc_ok(a, "{\"execute\": \"x-query-lock-stats\"}");
    g_assert_cmpstr(qtc_str(st, "schema"), ==, "kvmloop-stats");
    g_assert_cmpint(qtc_int(st, "version"), ==, 1);
    /* -S: no vCPU has entered the guest yet. */
    g_assert_false(json_object_has_member(json_node_get_object(st), "first_guest_entry_ns"));
    JsonNode *bql = find_named(st, "locks", "BQL");
    g_assert_nonnull(bql);
    /* Counted from the reset: the query itself, a few timers at most. */
    g_assert_cmpint(qtc_int(bql, "acquisitions"), >=, 1);
    g_assert_cmpint(qtc_int(bql, "acquisitions"), <, 1000);
    g_assert_cmpint(qtc_int(bql, "hold_ns"), >=, 0);
    g_assert_cmpuint(json_array_get_length(json_node_get_array(qtc_member(st, "vcpus"))), ==, 2);
    JsonNode *serial = find_named(st, "regions", "serial0.serial");
    g_assert_nonnull(serial);
    g_assert_cmpstr(qtc_str(serial, "lock"), ==, "bql");
    g_assert_cmpstr(qtc_str(serial, "space"), ==, "io");
    g_assert_cmpint(qtc_int(serial, "base"), ==, 0x3f8);

#define SET_POLICY(args) "{\"execute\": \"x-set-lock-policy\", \"arguments\": {" args "}}"
    static const ErrorCase policy_errors[] = {
        {"GenericError", "Parameter 'device' is missing", SET_POLICY("\"policy\": \"bql\"")},
        {"GenericError", "Parameter 'device' expects a string",
         SET_POLICY("\"device\": 1, \"policy\": \"bql\"")},
        {"DeviceNotFound", "Device 'nope' not found",
         SET_POLICY("\"device\": \"nope\", \"policy\": \"bql\"")},
        {"GenericError", "Parameter 'policy' does not accept value 'fast'",
         SET_POLICY("\"device\": \"serial0\", \"policy\": \"fast\"")},
        {"GenericError", "Device 'serial0' cannot run with lock policy 'none'*",
         SET_POLICY("\"device\": \"serial0\", \"policy\": \"none\"")},
        {"GenericError", "Device 'acpi-pm' cannot run with lock policy 'device'*",
         SET_POLICY("\"device\": \"acpi-pm\", \"policy\": \"device\"")},
    };
#undef SET_POLICY
    expect_errors(a, policy_errors, G_N_ELEMENTS(policy_errors));
    g_autoptr(JsonNode) set = qtc_ok(a, "{\"execute\": \"x-set-lock-policy\", \"arguments\": "
                                        "{\"device\": \"serial0\", \"policy\": \"device\"}}");
    g_autoptr(JsonNode) st2 = qtc_ok(a, "{\"execute\": \"x-query-lock-stats\"}");
    g_assert_cmpstr(qtc_str(find_named(st2, "regions", "serial0.serial"), "lock"), ==, "device");
    g_autoptr(JsonNode) back = qtc_ok(a, "{\"execute\": \"x-set-lock-policy\", \"arguments\": "
                                         "{\"device\": \"serial0\", \"policy\": \"bql\"}}");
}

/* Every malformed request gets an error and the connection goes on. */
static void check_errors(QmpTestClient *a)
{
    static const ErrorCase cases[] = {
        {"GenericError", "JSON parse error, *", "{\"execute\": }"},
        {"GenericError", "JSON parse error, *", "{\"execute\" \"stop\"}"},
        {"GenericError", "JSON parse error, *", "nonsense"},
        {"GenericError", "QMP input must be a JSON object", "42"},
        {"GenericError", "QMP input must be a JSON object", "[1, 2]"},
        {"GenericError", "QMP input must be a JSON object", "\"query-status\""},
        {"GenericError", "QMP input must be a JSON object", "null"},
        {"GenericError", "JSON parse error, unexpected '}'", "}"},
        {"GenericError", "JSON parse error, number out of range",
         "{\"execute\": \"query-kvm\", \"id\": 1e999}"},
        {"GenericError", "JSON parse error, *",
         "{\"execute\": \"query-kvm\", \"id\": \"\xc3\x28\"}"},
        {"GenericError", "JSON parse error, control character in a string",
         "{\"execute\": \"query-st"},
        {"GenericError", "QMP input lacks member 'execute'", "{\"arguments\": {}}"},
        {"GenericError", "QMP input member 'execute' must be a string",
         "{\"execute\": [\"stop\"]}"},
        {"GenericError", "QMP input member 'arguments' must be an object",
         "{\"execute\": \"stop\", \"arguments\": [1]}"},
        {"GenericError", "QMP input member 'bogus' is unexpected",
         "{\"execute\": \"stop\", \"bogus\": 1}"},
        {"GenericError", "QMP input member 'exec-oob' is unexpected", "{\"exec-oob\": \"stop\"}"},
        {"CommandNotFound", "The command no-such-command has not been found",
         "{\"execute\": \"no-such-command\"}"},
        {"GenericError", "Invalid parameter 'now'",
         "{\"execute\": \"stop\", \"arguments\": {\"now\": true}}"},
        {"GenericError", "Parameter 'enable' expects an array of strings",
         "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": \"oob\"}}"},
        {"GenericError", "Parameter 'policy' expects a string",
         "{\"execute\": \"x-set-lock-policy\", \"arguments\": "
         "{\"device\": \"serial0\", \"policy\": [\"bql\"]}}"},
    };
    expect_errors(a, cases, G_N_ELEMENTS(cases));

    /* A NUL byte is refused; the request around it is dropped. */
    static const char nul[] = "{\"execute\": \"query-kvm\"\0}\n";
    g_assert_true(qtc_send_raw(a, nul, sizeof(nul) - 1));
    g_autoptr(JsonNode) r1 = qtc_read(a, NULL);
    g_assert_cmpstr(qtc_str(qtc_member(r1, "error"), "desc"), ==,
                    "JSON parse error, NUL byte in input");

    /* QEMU's framing: single quotes, several requests in one write, a
     * request in many writes, 0xFF to drop a half-sent request. */
    g_autoptr(JsonNode) q = qtc_cmd(a, "{'execute': 'query-kvm', 'id': 'it\\'s \"q\"'}");
    g_assert_cmpstr(qtc_str(q, "id"), ==, "it's \"q\"");
    const char two[] = "{\"execute\":\"query-kvm\",\"id\":1}{\"execute\":\"query-kvm\",\"id\":2}";
    g_assert_true(qtc_send_raw(a, two, strlen(two)));
    for (int i = 1; i <= 2; i++) {
        g_autoptr(JsonNode) r = qtc_read(a, NULL);
        g_assert_cmpint(qtc_int(r, "id"), ==, i);
    }
    const char slow[] = "  {\"execute\" :\t\"query-kvm\", \"id\": 3}  ";
    for (size_t i = 0; i < strlen(slow); i++) {
        g_assert_true(qtc_send_raw(a, &slow[i], 1));
    }
    g_autoptr(JsonNode) r3 = qtc_read(a, NULL);
    g_assert_cmpint(qtc_int(r3, "id"), ==, 3);
    const char dropped[] =
        "{\"execute\": \"stop\", \"id\": \xff{\"execute\":\"query-kvm\",\"id\":4}";
    g_assert_true(qtc_send_raw(a, dropped, strlen(dropped)));
    g_autoptr(JsonNode) r4 = qtc_read(a, NULL);
    g_assert_cmpint(qtc_int(r4, "id"), ==, 4);
    g_assert_cmpuint(qtc_queued_events(a), ==, 0); /* the stop never ran */
}

/* The virtual clock stands still exactly while the VM is not running. */
static void assert_virtual_clock(bool running)
{
    g_assert_cmpint(clock_virtual_enabled(), ==, running);
    int64_t t0 = clock_get_ns(CLOCK_TYPE_VIRTUAL);
    g_usleep(2000);
    int64_t t1 = clock_get_ns(CLOCK_TYPE_VIRTUAL);
    if (running) {
        g_assert_cmpint(t1, >, t0);
    } else {
        g_assert_cmpint(t1, ==, t0);
    }
}

static void check_run_state_events(QmpTestClient *a)
{
    /* -S: prelaunch; stop leaves it there, cont starts it. */
    assert_status(a, "prelaunch", false);
    assert_virtual_clock(false);
    g_autoptr(JsonNode) s0 = qtc_ok(a, "{\"execute\": \"stop\"}");
    g_assert_cmpuint(qtc_queued_events(a), ==, 0);
    assert_status(a, "prelaunch", false);
    g_autoptr(JsonNode) c0 = qtc_ok(a, "{\"execute\": \"cont\"}");
    /* As in QEMU, the event comes before the reply of the command. */
    g_assert_cmpuint(qtc_queued_events(a), ==, 1);
    g_autoptr(JsonNode) resume = qtc_event(a, "RESUME");
    qtc_assert_event(resume, "RESUME", NULL, false);
    assert_status(a, "running", true);
    assert_virtual_clock(true);
    g_autoptr(JsonNode) c1 = qtc_ok(a, "{\"execute\": \"cont\"}");
    g_assert_cmpuint(qtc_queued_events(a), ==, 0);

    g_autoptr(JsonNode) s1 = qtc_ok(a, "{\"execute\": \"stop\"}");
    g_autoptr(JsonNode) stop = qtc_event(a, "STOP");
    qtc_assert_event(stop, "STOP", NULL, false);
    assert_status(a, "paused", false);
    assert_virtual_clock(false);
    g_autoptr(JsonNode) s2 = qtc_ok(a, "{\"execute\": \"stop\"}");
    g_assert_cmpuint(qtc_queued_events(a), ==, 0);

    /* A reset keeps a paused VM paused. */
    g_autoptr(JsonNode) rs = qtc_ok(a, "{\"execute\": \"system_reset\"}");
    g_autoptr(JsonNode) reset = qtc_event(a, "RESET");
    qtc_assert_event(reset, "RESET", "host-qmp-system-reset", false);
    assert_status(a, "paused", false);
    bql_lock();
    g_assert_true(all_vcpus_paused());
    bql_unlock();
    g_autoptr(JsonNode) c2 = qtc_ok(a, "{\"execute\": \"cont\"}");
    g_autoptr(JsonNode) resume2 = qtc_event(a, "RESUME");
    g_assert_nonnull(resume2);
    assert_status(a, "running", true);

    /* While running: the reset comes after the reply, from the main loop. */
    g_autoptr(JsonNode) rs2 = qtc_ok(a, "{\"execute\": \"system_reset\"}");
    g_autoptr(JsonNode) reset2 = qtc_event(a, "RESET");
    qtc_assert_event(reset2, "RESET", "host-qmp-system-reset", false);
    assert_status(a, "running", true);
    g_autoptr(JsonNode) pd = qtc_ok(a, "{\"execute\": \"system_powerdown\"}");
    g_autoptr(JsonNode) powerdown = qtc_event(a, "POWERDOWN");
    qtc_assert_event(powerdown, "POWERDOWN", NULL, false);
    g_assert_cmpuint(qtc_queued_events(a), ==, 0);
}

static void protocol_driver(QmpRun *r)
{
    g_autoptr(GError) err = NULL;
    QmpTestClient *a = qtc_connect(r->sock, QMP_TIMEOUT_S, &err);
    g_assert_no_error(err);
    QmpTestClient *b = qtc_connect(r->sock, QMP_TIMEOUT_S, &err);
    g_assert_no_error(err);
    g_autoptr(JsonNode) ga = qtc_greeting(a);
    g_autoptr(JsonNode) gb = qtc_greeting(b);
    check_greeting(ga);

    check_negotiation(a);
    check_ids(a);
    check_queries(a);
    check_stats_commands(a);
    check_run_state_events(a);
    check_errors(a);

    /* b has not negotiated: it got none of those events. */
    g_autoptr(JsonNode) bcaps = qtc_cmd(b, "{\"execute\": \"qmp_capabilities\"}");
    (void)qtc_member(bcaps, "return");
    g_assert_cmpuint(qtc_queued_events(b), ==, 0);

    /* quit: the reply, then SHUTDOWN to every client, then the end. */
    g_autoptr(JsonNode) q = qtc_cmd(a, "{\"execute\": \"quit\", \"id\": \"bye\"}");
    (void)qtc_member(q, "return");
    g_assert_cmpstr(qtc_str(q, "id"), ==, "bye");
    g_autoptr(JsonNode) sa = qtc_event(a, "SHUTDOWN");
    qtc_assert_event(sa, "SHUTDOWN", "host-qmp-quit", false);
    g_autoptr(JsonNode) sb = qtc_event(b, "SHUTDOWN");
    qtc_assert_event(sb, "SHUTDOWN", "host-qmp-quit", false);
    g_assert_true(qtc_wait_eof(a));
    g_assert_true(qtc_wait_eof(b));
    qtc_free(a);
    qtc_free(b);
}

/* A driver against one VM, which it ends with quit (status 0). */
typedef struct DriverCase {
    void (*driver)(QmpRun *r);
    const char *kernel;
    const char *args[8]; /* after -kernel; the unused rest is NULL */
} DriverCase;

static void test_driver(gconstpointer data)
{
    const DriverCase *c = data;
    g_autofree char *k = payload(c->kernel);
    const char *args[2 + G_N_ELEMENTS(c->args)] = {"-kernel", k};
    memcpy(&args[2], c->args, sizeof(c->args));
    QmpRun r = {.driver = c->driver};
    run_vm(&r, args);
    g_assert_cmpint(r.status, ==, 0);
    run_clear(&r);
}

static const DriverCase protocol = {
    .driver = protocol_driver,
    .kernel = "spin",
    .args = {"-smp", "2,sockets=1,cores=1,threads=2", "-object", "iothread,id=io0", "-S"},
};

/* ---- Guest-initiated reset and power-off --------------------------------- */

typedef struct GuestEventCase {
    const char *kernel;
    const char *append;
    bool no_reboot;
    const char *first; /* the first event and its reason */
    const char *first_reason;
    bool first_guest;
    const char *shutdown_reason; /* then SHUTDOWN with this reason */
    bool shutdown_guest;
    int status;
    bool press_button; /* press the ACPI power button once the guest waits */
    bool host_reset;   /* ask for the reset with system_reset */
} GuestEventCase;

static void wait_serial(QmpRun *r, const char *text)
{
    gint64 deadline = g_get_monotonic_time() + QMP_TIMEOUT_S * G_USEC_PER_SEC;
    for (;;) {
        bql_lock();
        size_t len;
        const uint8_t *buf = chardev_captured(machine_serial(r->machine, 0), &len);
        bool found = buf && g_strstr_len((const char *)buf, (gssize)len, text) != NULL;
        bql_unlock();
        if (found) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

static void guest_event_driver(QmpRun *r)
{
    const GuestEventCase *c = r->data;
    QmpTestClient *a = connect_ready(r);
    assert_status(a, "prelaunch", false);
    g_autoptr(JsonNode) cont = qtc_ok(a, "{\"execute\": \"cont\"}");
    if (c->press_button) {
        wait_serial(r, "waiting for the power button");
        g_autoptr(JsonNode) pd = qtc_ok(a, "{\"execute\": \"system_powerdown\"}");
    }
    if (c->host_reset) {
        g_autoptr(JsonNode) rs = qtc_ok(a, "{\"execute\": \"system_reset\"}");
    }
    if (c->first) {
        g_autoptr(JsonNode) ev = qtc_event(a, c->first);
        qtc_assert_event(ev, c->first, c->first_reason, c->first_guest);
    }
    g_autoptr(JsonNode) sd = qtc_event(a, "SHUTDOWN");
    qtc_assert_event(sd, "SHUTDOWN", c->shutdown_reason, c->shutdown_guest);
    g_assert_cmpuint(qtc_drop_events(a, "RESET"), ==, 0);
    g_assert_true(qtc_wait_eof(a));
    qtc_free(a);
}

static void test_guest_events(gconstpointer data)
{
    const GuestEventCase *c = data;
    g_autofree char *k = payload(c->kernel);
    QmpRun r = {.driver = guest_event_driver, .data = (void *)c};
    const char *args[] = {"-kernel",
                          k,
                          "-smp",
                          "2",
                          "-S",
                          "-append",
                          c->append ? c->append : "",
                          c->no_reboot ? "-no-reboot" : NULL,
                          NULL};
    run_vm(&r, args);
    if (r.status != c->status) {
        g_error("status %d, expected %d; serial output:\n%s", r.status, c->status, r.serial);
    }
    run_clear(&r);
}

static const GuestEventCase guest_reset = {
    .kernel = "reset",
    .first = "RESET",
    .first_reason = "guest-reset",
    .first_guest = true,
    .shutdown_reason = "guest-shutdown", /* isa-debug-exit after the second boot */
    .shutdown_guest = true,
    .status = 1,
};
static const GuestEventCase guest_reset_no_reboot = {
    .kernel = "reset",
    .no_reboot = true,
    .shutdown_reason = "guest-reset",
    .shutdown_guest = true,
    .status = 0,
};
static const GuestEventCase host_reset_no_reboot = {
    .kernel = "spin",
    .no_reboot = true,
    .host_reset = true,
    .shutdown_reason = "host-qmp-system-reset",
    .shutdown_guest = false,
    .status = 0,
};
static const GuestEventCase guest_poweroff = {
    .kernel = "acpi-poweroff",
    .append = "button=1",
    .press_button = true,
    .first = "POWERDOWN",
    .shutdown_reason = "guest-shutdown",
    .shutdown_guest = true,
    .status = 0,
};

/* ---- 1000 stop/cont cycles under load ------------------------------------ */

#define STOP_CONT_CYCLES 1000
#define STOP_CONT_WRITES 20000 /* per vCPU and space, in each VM */

static uint64_t testdev_total(QmpRun *r)
{
    return testdev_counter(r->testdev, false) + testdev_counter(r->testdev, true);
}

static bool vm_ending(QmpRun *r)
{
    int status;
    return machine_exit_requested(r->machine, &status);
}

/* stop/cont cycles on a guest that hammers the test device from two vCPUs,
 * until the guest is done (it then checks its counts itself). Each cycle:
 * stop, and check that the vCPUs are out of the guest, that the counters no
 * longer move and that query-status says paused; cont, and check that
 * query-status says running and the counters move again. The guest may end
 * at any time it runs; a cycle it cut short does not count. Adds the cycles
 * done to *r->data. */
static void stop_cont_driver(QmpRun *r)
{
    int *cycles = r->data;
    QmpTestClient *a = connect_ready(r);
    g_autoptr(JsonNode) c0 = qtc_ok(a, "{\"execute\": \"cont\"}");
    g_assert_cmpuint(qtc_drop_events(a, "RESUME"), ==, 1);
    while (*cycles < STOP_CONT_CYCLES) {
        g_autoptr(JsonNode) s = qtc_try_cmd(a, "{\"execute\": \"stop\"}");
        if (!s || qtc_drop_events(a, "STOP") == 0) {
            g_assert_true(vm_ending(r)); /* only the end of the run skips STOP */
            break;
        }
        (void)qtc_member(s, "return");
        /* Paused now; but an exit the guest asked for just before the stop
         * may still end the run (its BH runs after the command). */
        uint64_t frozen = testdev_total(r);
        g_autoptr(JsonNode) ps = qtc_try_cmd(a, "{\"execute\": \"query-status\"}");
        const char *state = ps ? qtc_str(qtc_member(ps, "return"), "status") : "shutdown";
        if (strcmp(state, "paused") != 0) {
            g_assert_cmpstr(state, ==, "shutdown");
            g_assert_true(vm_ending(r));
            break;
        }
        g_assert_false(qtc_bool(qtc_member(ps, "return"), "running"));
        bql_lock();
        g_assert_true(all_vcpus_paused());
        bql_unlock();
        g_assert_cmpuint(testdev_total(r), ==, frozen);

        g_autoptr(JsonNode) c = qtc_try_cmd(a, "{\"execute\": \"cont\"}");
        if (!c || !json_object_has_member(json_node_get_object(c), "return")) {
            g_assert_true(vm_ending(r));
            break;
        }
        g_assert_cmpuint(qtc_drop_events(a, "RESUME"), ==, 1);
        g_autoptr(JsonNode) st = qtc_try_cmd(a, "{\"execute\": \"query-status\"}");
        if (!st || !strcmp(qtc_str(qtc_member(st, "return"), "status"), "shutdown")) {
            break;
        }
        g_assert_cmpstr(qtc_str(qtc_member(st, "return"), "status"), ==, "running");
        gint64 deadline = g_get_monotonic_time() + QMP_TIMEOUT_S * G_USEC_PER_SEC;
        while (testdev_total(r) == frozen && !vm_ending(r)) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(50);
        }
        if (testdev_total(r) == frozen) {
            break;
        }
        (*cycles)++;
    }
    g_autoptr(JsonNode) sd = qtc_event(a, "SHUTDOWN");
    qtc_assert_event(sd, "SHUTDOWN", "guest-shutdown", true);
    g_assert_true(qtc_wait_eof(a));
    qtc_free(a);
}

static void test_stop_cont(void)
{
    g_autofree char *k = payload("smp-counter");
    g_autofree char *append = g_strdup_printf("m=%d", STOP_CONT_WRITES);
    int cycles = 0, vms = 0;
    while (cycles < STOP_CONT_CYCLES) {
        QmpRun r = {.driver = stop_cont_driver, .data = &cycles};
        run_vm(&r, (const char *[]){"-kernel", k, "-smp", "2", "-device", "testdev", "-append",
                                    append, "-S", NULL});
        if (r.status != 1) {
            g_error("status %d, expected 1 (the guest's own count check); serial output:\n%s",
                    r.status, r.serial);
        }
        /* Not one write lost or counted twice. */
        g_assert_cmpuint(r.counter[0], ==, 2ull * STOP_CONT_WRITES);
        g_assert_cmpuint(r.counter[1], ==, 2ull * STOP_CONT_WRITES);
        g_assert_cmpuint(r.overlaps, ==, 0);
        g_assert_nonnull(strstr(r.serial, "smp-counter: done (testdev checked)"));
        run_clear(&r);
        vms++;
    }
    g_test_message("%d stop/cont cycles in %d VMs", cycles, vms);
}

/* ---- A contention study over QMP ----------------------------------------- */

#define STUDY_ACCESSES 4000 /* per phase, at least */
#define STUDY_SLACK(n) (4 * 2 + (n).accesses / 100)

typedef struct LockNumbers {
    gint64 accesses;     /* to the testdev regions */
    gint64 bql_accesses; /* of those, under the BQL */
    gint64 bql;          /* BQL acquisitions */
    gint64 dev;          /* testdev mutex acquisitions */
} LockNumbers;

static gint64 lock_acquisitions(JsonNode *st, const char *name)
{
    JsonNode *l = find_named(st, "locks", name);
    return l ? qtc_int(l, "acquisitions") : 0;
}

static LockNumbers read_numbers(QmpTestClient *a)
{
    g_autoptr(JsonNode) st = qtc_ok(a, "{\"execute\": \"x-query-lock-stats\"}");
    LockNumbers n = {.bql = lock_acquisitions(st, "BQL"), .dev = lock_acquisitions(st, "testdev")};
    const char *regions[] = {"testdev.pio", "testdev.mmio"};
    for (size_t i = 0; i < G_N_ELEMENTS(regions); i++) {
        JsonNode *reg = find_named(st, "regions", regions[i]);
        g_assert_nonnull(reg);
        n.accesses += qtc_int(reg, "accesses");
        n.bql_accesses += qtc_int(reg, "bql_accesses");
    }
    return n;
}

/* Switch the policy, count from zero, let the guest run, read. */
static LockNumbers study_phase(QmpTestClient *a, const char *policy)
{
    g_autoptr(JsonNode) set = qtc_ok(a,
                                     "{\"execute\": \"x-set-lock-policy\", \"arguments\": "
                                     "{\"device\": \"testdev\", \"policy\": \"%s\"}}",
                                     policy);
    g_autoptr(JsonNode) reset = qtc_ok(a, "{\"execute\": \"x-reset-lock-stats\"}");
    LockNumbers n;
    gint64 deadline = g_get_monotonic_time() + QMP_TIMEOUT_S * G_USEC_PER_SEC;
    do {
        g_usleep(20000);
        n = read_numbers(a);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
    } while (n.accesses < STUDY_ACCESSES);
    g_test_message("policy %s: %" G_GINT64_FORMAT " accesses, %" G_GINT64_FORMAT
                   " with the BQL, BQL taken %" G_GINT64_FORMAT ", testdev mutex %" G_GINT64_FORMAT,
                   policy, n.accesses, n.bql_accesses, n.bql, n.dev);
    return n;
}

static void study_driver(QmpRun *r)
{
    QmpTestClient *a = connect_ready(r);
    g_autoptr(JsonNode) c0 = qtc_ok(a, "{\"execute\": \"cont\"}");

    /* Each vCPU may finish an access under the lock it chose before the
     * switch, and the counters are read one after the other while the vCPUs
     * go on: hence some slack. */
    LockNumbers dev = study_phase(a, "device");
    g_assert_cmpint(dev.bql_accesses, <=, STUDY_SLACK(dev));
    g_assert_cmpint(dev.dev, >=, dev.accesses - STUDY_SLACK(dev));
    g_assert_cmpint(dev.bql, <, dev.accesses / 4);

    LockNumbers bql = study_phase(a, "bql");
    g_assert_cmpint(bql.bql_accesses, >=, bql.accesses - STUDY_SLACK(bql));
    g_assert_cmpint(bql.bql, >=, bql.bql_accesses);
    g_assert_cmpint(bql.dev, <=, STUDY_SLACK(bql));

    LockNumbers none = study_phase(a, "none");
    g_assert_cmpint(none.bql_accesses, <=, STUDY_SLACK(none));
    g_assert_cmpint(none.dev, <=, STUDY_SLACK(none));
    g_assert_cmpint(none.bql, <, none.accesses / 4);

    g_autoptr(JsonNode) q = qtc_ok(a, "{\"execute\": \"quit\"}");
    g_assert_true(qtc_wait_eof(a));
    qtc_free(a);
}

static const DriverCase contention = {
    .driver = study_driver,
    .kernel = "smp-counter",
    .args = {"-smp", "2", "-device", "testdev", "-append", "m=100000000", "-S"},
};

/* ---- Bad input and many clients ------------------------------------------ */

typedef struct Upload {
    QmpRun *run;
    size_t size;
} Upload;

/* A 10 MB request on its own connection: one error, then the connection
 * works again after the next newline. */
static void *big_upload(void *arg)
{
    Upload *u = arg;
    QmpTestClient *c = connect_ready(u->run);
    const char prefix[] = "{\"execute\": \"query-kvm\", \"id\": \"";
    g_autofree char *big = g_malloc(u->size);
    memcpy(big, prefix, strlen(prefix));
    memset(big + strlen(prefix), 'x', u->size - strlen(prefix));
    big[u->size - 1] = '\n';
    g_assert_true(qtc_send_raw(c, big, u->size));
    g_autoptr(JsonNode) e = qtc_read(c, NULL);
    g_assert_nonnull(e);
    JsonNode *err = qtc_member(e, "error");
    g_assert_cmpstr(qtc_str(err, "class"), ==, "GenericError");
    g_assert_true(g_str_has_prefix(qtc_str(err, "desc"), "JSON message exceeds the size limit"));
    g_autoptr(JsonNode) ok = qtc_ok(c, "{\"execute\": \"query-status\"}");
    qtc_free(c);
    return NULL;
}

static void bad_input_driver(QmpRun *r)
{
    QmpTestClient *b = connect_ready(r); /* the bystander */
    g_autoptr(JsonNode) c0 = qtc_ok(b, "{\"execute\": \"cont\"}");
    g_assert_cmpuint(qtc_drop_events(b, "RESUME"), ==, 1);

    /* Many clients at once, up to the limit (b is one); one more is turned
     * away. First, while no closed client can still count; one by one, so
     * that no connect overflows the listen backlog and is retried. */
    enum { NMANY = QMP_MAX_CLIENTS - 1 };
    QmpTestClient *many[NMANY];
    for (int i = 0; i < NMANY; i++) {
        many[i] = connect_ready(r);
    }
    {
        g_autoptr(GError) err = NULL;
        QmpTestClient *extra = qtc_connect(r->sock, QMP_TIMEOUT_S, &err);
        g_assert_no_error(err);
        g_autoptr(JsonNode) busy = qtc_read(extra, NULL);
        g_assert_cmpstr(qtc_str(qtc_member(busy, "error"), "desc"), ==, "Too many QMP clients");
        g_assert_true(qtc_wait_eof(extra));
        qtc_free(extra);
    }
    for (int i = 0; i < NMANY; i++) {
        g_autoptr(JsonNode) r1 = qtc_cmd(many[i], "{\"execute\": \"query-status\", \"id\": %d}", i);
        g_assert_cmpint(qtc_int(r1, "id"), ==, i);
    }
    for (int i = 0; i < NMANY; i++) {
        qtc_free(many[i]);
    }

    /* 10 MB while b keeps being served. */
    Upload up = {.run = r, .size = 10u << 20};
    pthread_t t;
    g_assert_cmpint(pthread_create(&t, NULL, big_upload, &up), ==, 0);
    for (int i = 0; i < 50; i++) {
        assert_status(b, "running", true);
    }
    pthread_join(t, NULL);

    /* Nesting deeper than the limit. */
    QmpTestClient *c = connect_ready(r);
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 5000; i++) {
        g_string_append_c(deep, '[');
    }
    g_string_append_c(deep, '\n');
    g_assert_true(qtc_send_raw(c, deep->str, deep->len));
    g_string_free(deep, true);
    g_autoptr(JsonNode) e = qtc_read(c, NULL);
    g_assert_cmpstr(qtc_str(qtc_member(e, "error"), "desc"), ==,
                    "JSON nesting depth limit exceeded");
    assert_status(c, "running", true);
    qtc_free(c);

    /* A half-written request, then the client is gone. */
    c = connect_ready(r);
    const char half[] = "{\"execute\": \"stop\", \"argum";
    g_assert_true(qtc_send_raw(c, half, strlen(half)));
    qtc_free(c);
    /* A client that leaves while its command runs, before the reply. */
    c = connect_ready(r);
    const char leave[] = "{\"execute\": \"x-query-lock-stats\"}\n{\"execute\": \"stop\"}\n";
    g_assert_true(qtc_send_raw(c, leave, strlen(leave)));
    qtc_free(c);
    g_autoptr(JsonNode) stop = qtc_event(b, "STOP");
    g_assert_nonnull(stop);
    g_autoptr(JsonNode) c1 = qtc_ok(b, "{\"execute\": \"cont\"}");
    g_assert_cmpuint(qtc_drop_events(b, "RESUME"), ==, 1);

    /* A client that never reads its replies is cut off; the others go on. */
    c = connect_ready(r);
    const char req[] = "{\"execute\": \"x-query-lock-stats\"}\n";
    int sent = 0;
    while (sent < 100000 && qtc_send_raw(c, req, strlen(req))) {
        sent++;
    }
    g_assert_cmpint(sent, <, 100000);
    qtc_free(c);

    /* The VM still runs, and the bystander never noticed. */
    uint64_t before = testdev_total(r);
    gint64 deadline = g_get_monotonic_time() + QMP_TIMEOUT_S * G_USEC_PER_SEC;
    while (testdev_total(r) == before) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    assert_status(b, "running", true);
    g_assert_cmpuint(qtc_queued_events(b), ==, 0);
    g_autoptr(JsonNode) q = qtc_ok(b, "{\"execute\": \"quit\"}");
    g_assert_true(qtc_wait_eof(b));
    qtc_free(b);
}

static const DriverCase bad_input = {
    .driver = bad_input_driver,
    .kernel = "smp-counter",
    .args = {"-smp", "2", "-device", "testdev", "-append", "m=100000000", "-S"},
};

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    guest_dir = kvm_test_init();
    g_test_add_data_func("/qmp/protocol", &protocol, test_driver);
    g_test_add_data_func("/qmp/guest-reset", &guest_reset, test_guest_events);
    g_test_add_data_func("/qmp/guest-reset-no-reboot", &guest_reset_no_reboot, test_guest_events);
    g_test_add_data_func("/qmp/host-reset-no-reboot", &host_reset_no_reboot, test_guest_events);
    g_test_add_data_func("/qmp/guest-poweroff", &guest_poweroff, test_guest_events);
    g_test_add_func("/qmp/stop-cont", test_stop_cont);
    g_test_add_data_func("/qmp/contention", &contention, test_driver);
    g_test_add_data_func("/qmp/bad-input", &bad_input, test_driver);
    return g_test_run();
}
