/* Device instances: -device spec parsing, typed properties, region mapping with lock policies. */
#include "kvmloop/device.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmloop/machine.h"

static bool class_accepts(const DeviceClass *cls, const char *prop)
{
    if (strcmp(prop, "id") == 0) {
        return true;
    }
    for (const char *const *p = cls->props; p && *p; p++) {
        if (strcmp(*p, prop) == 0) {
            return true;
        }
    }
    return false;
}

Device *device_create(Machine *m, const char *name, GHashTable *props, GError **errp)
{
    const DeviceClass *cls = device_class_find(name);
    if (!cls) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "unknown device '%s' (see --help for the list)", name);
        return NULL;
    }
    g_assert(cls->instance_size >= sizeof(Device));

    Device *dev = g_malloc0(cls->instance_size);
    dev->cls = cls;
    dev->props = props ? g_hash_table_ref(props)
                       : g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    dev->regions = g_ptr_array_new();
    dev->region_spaces = g_ptr_array_new();

    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, dev->props);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!class_accepts(cls, key)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "device '%s' has no property '%s' (it takes: %s)", name, (const char *)key,
                        cls->props_help ? cls->props_help : "none");
            goto fail;
        }
    }
    dev->id = g_strdup(device_prop_str(dev, "id", cls->name));
    /* Named after the instance, so that each device's lock has its own statistics. */
    klock_init(&dev->lock, dev->id);
    const char *lock = device_prop_str(dev, "lock", "bql");
    if (!lock_policy_parse(lock, &dev->policy)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "device '%s': invalid lock '%s' (expected bql, device or none)", name, lock);
        goto fail;
    }
    if (cls->realize && !cls->realize(dev, m, errp)) {
        goto fail;
    }
    return dev;

fail:
    device_destroy(dev);
    return NULL;
}

Device *device_create_from_spec(Machine *m, const char *spec, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    if (!parts[0] || !*parts[0]) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "empty -device spec");
        return NULL;
    }
    g_autoptr(GHashTable) props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (int i = 1; parts[i]; i++) {
        char *eq = strchr(parts[i], '=');
        if (!eq || eq == parts[i]) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "device '%s': expected key=value, got '%s'", parts[0], parts[i]);
            return NULL;
        }
        *eq = '\0';
        if (g_hash_table_contains(props, parts[i])) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "device '%s': property '%s' given twice", parts[0], parts[i]);
            return NULL;
        }
        g_hash_table_insert(props, g_strdup(parts[i]), g_strdup(eq + 1));
    }
    const DeviceClass *cls = device_class_find(parts[0]);
    if (cls && !cls->user_creatable) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "device '%s' is part of the machine and cannot be added with -device",
                    parts[0]);
        return NULL;
    }
    return device_create(m, parts[0], props, errp);
}

void device_destroy(Device *dev)
{
    if (!dev) {
        return;
    }
    for (guint i = 0; i < dev->regions->len; i++) {
        address_space_remove(dev->region_spaces->pdata[i], dev->regions->pdata[i]);
    }
    /* Callers destroy devices only once no vCPU can be dispatching to them. */
    for (guint i = 0; i < dev->regions->len; i++) {
        memory_region_destroy(dev->regions->pdata[i]);
    }
    if (dev->cls->unrealize) {
        dev->cls->unrealize(dev);
    }
    g_ptr_array_free(dev->regions, true);
    g_ptr_array_free(dev->region_spaces, true);
    g_hash_table_unref(dev->props);
    klock_destroy(&dev->lock);
    g_free(dev->id);
    g_free(dev);
}

void device_reset(Device *dev)
{
    if (dev->cls->reset) {
        dev->cls->reset(dev);
    }
}

const char *device_prop_str(Device *dev, const char *name, const char *def)
{
    const char *v = g_hash_table_lookup(dev->props, name);
    return v ? v : def;
}

bool device_prop_u64(Device *dev, const char *name, uint64_t def, uint64_t *out, GError **errp)
{
    const char *v = g_hash_table_lookup(dev->props, name);
    if (!v) {
        *out = def;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (errno || end == v || *end || v[0] == '-') {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "device '%s': property '%s' needs a number, got '%s'", dev->cls->name, name, v);
        return false;
    }
    *out = n;
    return true;
}

bool device_prop_bool(Device *dev, const char *name, bool def, bool *out, GError **errp)
{
    const char *v = g_hash_table_lookup(dev->props, name);
    if (!v) {
        *out = def;
    } else if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
        *out = false;
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "device '%s': property '%s' needs on or off, got '%s'", dev->cls->name, name,
                    v);
        return false;
    }
    return true;
}

bool device_map_region(Device *dev, AddressSpace *as, MemoryRegion *mr, const char *name,
                       uint64_t size, const MemoryRegionOps *ops, void *opaque, gpa_t base,
                       GError **errp)
{
    g_autofree char *full = g_strdup_printf("%s.%s", dev->id, name);
    memory_region_init(mr, full, size, ops, opaque, &dev->lock);
    if (!memory_region_set_lock_policy(mr, dev->policy, errp) ||
        !address_space_add(as, mr, base, errp)) {
        memory_region_destroy(mr);
        return false;
    }
    g_ptr_array_add(dev->regions, mr);
    g_ptr_array_add(dev->region_spaces, as);
    return true;
}

bool device_set_lock_policy(Device *dev, LockPolicy p, GError **errp)
{
    for (guint i = 0; i < dev->regions->len; i++) {
        if (!memory_region_set_lock_policy(dev->regions->pdata[i], p, errp)) {
            return false;
        }
    }
    dev->policy = p;
    return true;
}
