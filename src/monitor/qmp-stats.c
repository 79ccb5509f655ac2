/* kvmloop's experimental QMP commands: lock and exit statistics, lock policies. */
#include <string.h>

#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/stats.h"
#include "qmp-internal.h"

/* x-query-lock-stats answers with the statistics document of -stats-file
 * (docs/stats-schema.md): the same object, made by the same code. */
JsonNode *qmp_cmd_query_lock_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp)
{
    return stats_to_json(qmp_monitor_machine(mon));
}

JsonNode *qmp_cmd_reset_lock_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp)
{
    stats_reset(qmp_monitor_machine(mon));
    return qmp_node_take_object(json_object_new());
}

static JsonObject *cpu_exits(const CpuStats *s, gint64 *total)
{
    JsonObject *exits = json_object_new();
    *total = 0;
    for (int r = 0; r < VCPU_EXIT__MAX; r++) {
        json_object_set_int_member(exits, vcpu_exit_reason_names[r], (gint64)s->exits[r]);
        *total += (gint64)s->exits[r];
    }
    return exits;
}

JsonNode *qmp_cmd_query_exit_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp)
{
    Machine *m = qmp_monitor_machine(mon);
    JsonArray *a = json_array_new();
    for (int i = 0; i < machine_cpu_count(m); i++) {
        CpuState *cpu = cpu_by_index(i);
        CpuStats s = cpu_stats(cpu);
        gint64 total;
        JsonObject *v = json_object_new();
        json_object_set_int_member(v, "cpu-index", i);
        json_object_set_int_member(v, "thread-id", cpu_thread_id(cpu));
        json_object_set_object_member(v, "exits", cpu_exits(&s, &total));
        json_object_set_int_member(v, "total", total);
        json_object_set_int_member(v, "kicks-seen", (gint64)s.kicks_seen);
        json_array_add_object_element(a, v);
    }
    return qmp_node_take_array(a);
}

/* Whether @cls may run under @policy. A class lists the policies its model is
 * safe under in its --help line ("lock=bql|device"); one that lists none
 * shares state with BQL callbacks and keeps the BQL. Realize enforces the
 * same rule for -device lock=. */
static bool class_takes_policy(const DeviceClass *cls, const char *policy, char **list)
{
    const char *h = cls->props_help ? strstr(cls->props_help, "lock=") : NULL;
    *list = h ? g_strndup(h + 5, strcspn(h + 5, ",")) : g_strdup("bql");
    g_auto(GStrv) v = g_strsplit(*list, "|", -1);
    return g_strv_contains((const char *const *)v, policy);
}

JsonNode *qmp_cmd_set_lock_policy(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                  GError **errp)
{
    const char *id = json_object_get_string_member(args, "device");
    const char *name = json_object_get_string_member(args, "policy");
    LockPolicy policy;
    Device *dev = machine_find_device(qmp_monitor_machine(mon), id);
    if (!dev) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "Device '%s' not found", id);
        return NULL;
    }
    if (!lock_policy_parse(name, &policy)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'policy' does not accept value '%s'", name);
        return NULL;
    }
    g_autofree char *takes = NULL;
    if (!class_takes_policy(dev->cls, name, &takes)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Device '%s' cannot run with lock policy '%s' (it takes %s)", id, name, takes);
        return NULL;
    }
    g_autoptr(GError) err = NULL;
    if (!device_set_lock_policy(dev, policy, &err)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "%s", err->message);
        return NULL;
    }
    return qmp_node_take_object(json_object_new());
}
