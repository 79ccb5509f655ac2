/* The QMP command table: QEMU's commands kvmloop has, and its own x- commands. */
#include <string.h>

#include "kvmloop/config.h"
#include "kvmloop/cpus.h"
#include "kvmloop/iothread.h"
#include "kvmloop/machine.h"
#include "qmp-internal.h"

static JsonNode *empty_return(void)
{
    return qmp_node_take_object(json_object_new());
}

JsonNode *qmp_version_info(void)
{
    JsonObject *v = json_object_new();
    json_object_set_int_member(v, "micro", KVMLOOP_VERSION_PATCH);
    json_object_set_int_member(v, "minor", KVMLOOP_VERSION_MINOR);
    json_object_set_int_member(v, "major", KVMLOOP_VERSION_MAJOR);
    JsonObject *o = json_object_new();
    json_object_set_object_member(o, "qemu", v);
    json_object_set_string_member(o, "package", "kvmloop");
    return qmp_node_take_object(o);
}

/* qmp_capabilities: leave negotiation mode. kvmloop offers no capability. */
static JsonNode *cmd_qmp_capabilities(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                      GError **errp)
{
    JsonNode *enable = json_object_get_member(args, "enable");
    if (enable && json_array_get_length(json_node_get_array(enable)) > 0) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Capability '%s' not available",
                    json_array_get_string_element(json_node_get_array(enable), 0));
        return NULL;
    }
    if (!qmp_client_negotiate(client)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        return NULL;
    }
    return empty_return();
}

static JsonNode *cmd_query_version(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp)
{
    return qmp_version_info();
}

static JsonNode *cmd_query_commands(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                    GError **errp)
{
    size_t n;
    const QmpCommand *cmds = qmp_commands(&n);
    JsonArray *a = json_array_new();
    for (size_t i = 0; i < n; i++) {
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "name", cmds[i].name);
        json_array_add_object_element(a, o);
    }
    return qmp_node_take_array(a);
}

/* QEMU 7.2's StatusInfo; singlestep is a TCG feature, always false here. */
static JsonNode *cmd_query_status(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                  GError **errp)
{
    QmpRunState s = qmp_monitor_run_state(mon);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "status", qmp_run_state_name(s));
    json_object_set_boolean_member(o, "singlestep", false);
    json_object_set_boolean_member(o, "running", s == QMP_RUN_STATE_RUNNING);
    return qmp_node_take_object(o);
}

static JsonNode *cmd_stop(QmpMonitor *mon, QmpClient *client, JsonObject *args, GError **errp)
{
    qmp_monitor_vm_stop(mon);
    return empty_return();
}

static JsonNode *cmd_cont(QmpMonitor *mon, QmpClient *client, JsonObject *args, GError **errp)
{
    return qmp_monitor_vm_start(mon, errp) ? empty_return() : NULL;
}

static JsonNode *cmd_system_reset(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                  GError **errp)
{
    machine_request_reset_cause(qmp_monitor_machine(mon), MACHINE_CAUSE_HOST_QMP_SYSTEM_RESET);
    return empty_return();
}

static JsonNode *cmd_system_powerdown(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                      GError **errp)
{
    if (!machine_find_device(qmp_monitor_machine(mon), "acpi-pm")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "The machine has no ACPI power button");
        return NULL;
    }
    qmp_monitor_request_powerdown(mon);
    return empty_return();
}

/* The reply goes out first; SHUTDOWN follows from the machine's exit, and
 * kvmloop ends with status 0. */
static JsonNode *cmd_quit(QmpMonitor *mon, QmpClient *client, JsonObject *args, GError **errp)
{
    machine_request_exit_cause(qmp_monitor_machine(mon), 0, MACHINE_CAUSE_HOST_QMP_QUIT);
    return empty_return();
}

/* QEMU's CpuInfoFast for x86: the topology ids come from -smp, in the order
 * the APIC IDs are built from them. */
static JsonNode *cmd_query_cpus_fast(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                     GError **errp)
{
    const CpuTopology *t = &qmp_monitor_config(mon)->topology;
    int n = machine_cpu_count(qmp_monitor_machine(mon));
    JsonArray *a = json_array_new();
    for (int i = 0; i < n; i++) {
        CpuState *cpu = cpu_by_index(i);
        JsonObject *props = json_object_new();
        json_object_set_int_member(props, "socket-id", i / (t->threads * t->cores));
        json_object_set_int_member(props, "die-id", 0);
        json_object_set_int_member(props, "core-id", (i / t->threads) % t->cores);
        json_object_set_int_member(props, "thread-id", i % t->threads);
        JsonObject *o = json_object_new();
        json_object_set_int_member(o, "cpu-index", i);
        g_autofree char *path = g_strdup_printf("/machine/cpu[%d]", i);
        json_object_set_string_member(o, "qom-path", path);
        json_object_set_int_member(o, "thread-id", cpu ? cpu_thread_id(cpu) : 0);
        json_object_set_object_member(o, "props", props);
        json_object_set_string_member(o, "target", "x86_64");
        json_array_add_object_element(a, o);
    }
    return qmp_node_take_array(a);
}

static JsonNode *cmd_query_kvm(QmpMonitor *mon, QmpClient *client, JsonObject *args, GError **errp)
{
    JsonObject *o = json_object_new();
    json_object_set_boolean_member(o, "enabled", true);
    json_object_set_boolean_member(o, "present", true);
    return qmp_node_take_object(o);
}

/* QEMU's IOThreadInfo. kvmloop's loops never busy-poll, so the polling
 * parameters are all 0 (polling off). */
static JsonNode *cmd_query_iothreads(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                     GError **errp)
{
    g_autoptr(GPtrArray) all = iothread_query_all();
    JsonArray *a = json_array_new();
    for (guint i = 0; i < all->len; i++) {
        const IOThreadInfo *info = all->pdata[i];
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "id", info->id);
        json_object_set_int_member(o, "thread-id", info->thread_id);
        json_object_set_int_member(o, "poll-max-ns", 0);
        json_object_set_int_member(o, "poll-grow", 0);
        json_object_set_int_member(o, "poll-shrink", 0);
        json_object_set_int_member(o, "aio-max-batch", 0);
        json_array_add_object_element(a, o);
    }
    return qmp_node_take_array(a);
}

static const QmpCommand commands[] = {
    {.name = "qmp_capabilities",
     .fn = cmd_qmp_capabilities,
     .args = {{"enable", QMP_ARG_STR_LIST, true}}},
    {.name = "query-version", .fn = cmd_query_version},
    {.name = "query-commands", .fn = cmd_query_commands},
    {.name = "query-status", .fn = cmd_query_status},
    {.name = "stop", .fn = cmd_stop},
    {.name = "cont", .fn = cmd_cont},
    {.name = "system_reset", .fn = cmd_system_reset},
    {.name = "system_powerdown", .fn = cmd_system_powerdown},
    {.name = "quit", .fn = cmd_quit},
    {.name = "query-cpus-fast", .fn = cmd_query_cpus_fast},
    {.name = "query-kvm", .fn = cmd_query_kvm},
    {.name = "query-iothreads", .fn = cmd_query_iothreads},
    {.name = "x-query-lock-stats", .fn = qmp_cmd_query_lock_stats},
    {.name = "x-reset-lock-stats", .fn = qmp_cmd_reset_lock_stats},
    {.name = "x-query-exit-stats", .fn = qmp_cmd_query_exit_stats},
    {.name = "x-set-lock-policy",
     .fn = qmp_cmd_set_lock_policy,
     .args = {{"device", QMP_ARG_STR, false}, {"policy", QMP_ARG_STR, false}}},
};

const QmpCommand *qmp_commands(size_t *n)
{
    *n = G_N_ELEMENTS(commands);
    return commands;
}

const QmpCommand *qmp_command_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}
