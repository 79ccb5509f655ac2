/* kvmloop's experimental QMP commands: lock and exit statistics, lock policies. */
#include <string.h>

#include "kvmloop/bql.h"
#include "kvmloop/cpus.h"
#include "kvmloop/device.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "qmp-internal.h"

/*
 * The statistics document follows the layout of docs/stats-schema.md (schema
 * "kvmloop-stats", version 1) with what the instrumented locks record today:
 * per-lock totals, per-vCPU exits and per-region accesses; the per-site
 * breakdown, histograms and timings of that schema are left out.
 */

static void add_lock(JsonArray *locks, const char *name, KLockStats s)
{
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "name", name);
    json_object_set_int_member(o, "acquisitions", (gint64)s.acquisitions);
    json_object_set_int_member(o, "contended", (gint64)s.contended);
    json_object_set_int_member(o, "wait_ns", (gint64)s.wait_ns);
    json_object_set_int_member(o, "hold_ns", (gint64)s.hold_ns);
    json_array_add_object_element(locks, o);
}

static void add_device_lock(Device *dev, void *opaque)
{
    KLockStats s = klock_stats(&dev->lock);
    if (s.acquisitions > 0) {
        add_lock(opaque, dev->id, s);
    }
}

typedef struct RegionWalk {
    JsonArray *regions;
    const char *space;
} RegionWalk;

static void add_region(MemoryRegion *mr, void *opaque)
{
    RegionWalk *w = opaque;
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "name", mr->name);
    json_object_set_string_member(o, "space", w->space);
    json_object_set_int_member(o, "base", (gint64)mr->base);
    json_object_set_int_member(o, "size", (gint64)mr->size);
    json_object_set_string_member(o, "lock", lock_policy_name(memory_region_lock_policy(mr)));
    json_object_set_int_member(o, "accesses",
                               (gint64)__atomic_load_n(&mr->accesses, __ATOMIC_RELAXED));
    json_object_set_int_member(o, "bql_accesses",
                               (gint64)__atomic_load_n(&mr->bql_accesses, __ATOMIC_RELAXED));
    json_array_add_object_element(w->regions, o);
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

static JsonObject *address_space_json(AddressSpace *as, const char *name)
{
    AddressSpaceStats s = address_space_stats(as);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "name", name);
    json_object_set_int_member(o, "unassigned_reads", (gint64)s.unassigned_reads);
    json_object_set_int_member(o, "unassigned_writes", (gint64)s.unassigned_writes);
    json_object_set_int_member(o, "bad_size", (gint64)s.bad_size);
    return o;
}

JsonNode *qmp_cmd_query_lock_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp)
{
    Machine *m = qmp_monitor_machine(mon);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "schema", "kvmloop-stats");
    json_object_set_int_member(o, "version", 1);
    json_object_set_int_member(o, "time_unix_ns", g_get_real_time() * 1000);
    json_object_set_boolean_member(o, "collection", klock_stats_enabled());

    JsonArray *locks = json_array_new();
    add_lock(locks, "BQL", klock_stats(bql_klock()));
    machine_foreach_device(m, add_device_lock, locks);
    json_object_set_array_member(o, "locks", locks);

    JsonArray *vcpus = json_array_new();
    for (int i = 0; i < machine_cpu_count(m); i++) {
        CpuState *cpu = cpu_by_index(i);
        CpuStats s = cpu_stats(cpu);
        gint64 total;
        JsonObject *v = json_object_new();
        json_object_set_int_member(v, "index", i);
        json_object_set_int_member(v, "thread_id", cpu_thread_id(cpu));
        json_object_set_object_member(v, "exits", cpu_exits(&s, &total));
        json_object_set_int_member(v, "exits_total", total);
        json_object_set_int_member(v, "kicks_seen", (gint64)s.kicks_seen);
        json_array_add_object_element(vcpus, v);
    }
    json_object_set_array_member(o, "vcpus", vcpus);

    RegionWalk w = {.regions = json_array_new(), .space = "io"};
    address_space_foreach(machine_pio(m), add_region, &w);
    w.space = "memory";
    address_space_foreach(machine_mmio(m), add_region, &w);
    json_object_set_array_member(o, "regions", w.regions);

    JsonArray *spaces = json_array_new();
    json_array_add_object_element(spaces, address_space_json(machine_pio(m), "io"));
    json_array_add_object_element(spaces, address_space_json(machine_mmio(m), "memory"));
    json_object_set_array_member(o, "address_spaces", spaces);
    return qmp_node_take_object(o);
}

/* The holder of a lock is the only writer of its counters, so each lock is
 * reset while held: the BQL is (commands run under it), a device lock is
 * taken for the reset (the BQL before a device lock is the allowed order). */
static void reset_device_lock(Device *dev, void *opaque)
{
    klock_lock(&dev->lock);
    klock_stats_reset(&dev->lock);
    klock_unlock(&dev->lock);
}

static void reset_region(MemoryRegion *mr, void *opaque)
{
    __atomic_store_n(&mr->accesses, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mr->bql_accesses, 0, __ATOMIC_RELAXED);
}

JsonNode *qmp_cmd_reset_lock_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp)
{
    Machine *m = qmp_monitor_machine(mon);
    klock_stats_reset(bql_klock());
    machine_foreach_device(m, reset_device_lock, NULL);
    address_space_foreach(machine_pio(m), reset_region, NULL);
    address_space_foreach(machine_mmio(m), reset_region, NULL);
    return qmp_node_take_object(json_object_new());
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
