/* Device models: classes listed in one registry, instances created from -device specs. */
#ifndef KVMLOOP_DEVICE_H
#define KVMLOOP_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/klock.h"
#include "kvmloop/memory.h"
#include "kvmloop/types.h"

typedef struct DeviceClass {
    const char *name;         /* as on the command line: "testdev" */
    const char *desc;         /* one line for --help */
    const char *props_help;   /* "iobase=PORT,lock=bql|device|none" for --help */
    const char *const *props; /* accepted property names, NULL-terminated */
    size_t instance_size;     /* >= sizeof(Device); Device is the first member */
    bool user_creatable;      /* may appear in -device */
    /* Create regions and IRQs. Main thread, BQL held. */
    bool (*realize)(Device *dev, Machine *m, GError **errp);
    void (*reset)(Device *dev);
    void (*unrealize)(Device *dev);
} DeviceClass;

struct Device {
    const DeviceClass *cls;
    char *id;
    GHashTable *props;        /* name -> value, strings */
    KLock lock;               /* the device's own mutex, for LOCK_POLICY_DEVICE */
    LockPolicy policy;        /* from the "lock" property, default BQL */
    GPtrArray *regions;       /* MemoryRegion * registered by device_map_region() */
    GPtrArray *region_spaces; /* AddressSpace * each region lives in */
};

/* The registry (src/hw/core/registry.c). */
const DeviceClass *device_class_find(const char *name);
const DeviceClass *const *device_class_all(void); /* NULL-terminated */

/* Create and realize a device from "NAME[,key=value...]". Unknown names and
 * properties are errors. Main thread, BQL held. */
Device *device_create_from_spec(Machine *m, const char *spec, GError **errp);
/* Create and realize a device of class @name with @props (may be NULL). */
Device *device_create(Machine *m, const char *name, GHashTable *props, GError **errp);
void device_destroy(Device *dev);
void device_reset(Device *dev);

/* Property accessors. Numbers take C syntax (0x.., decimal) and size
 * suffixes k/M/G only where noted. Return false and set @errp if malformed. */
bool device_prop_u64(Device *dev, const char *name, uint64_t def, uint64_t *out, GError **errp);
const char *device_prop_str(Device *dev, const char *name, const char *def);
bool device_prop_bool(Device *dev, const char *name, bool def, bool *out, GError **errp);

/* Initialise @mr for @dev and map it at @base in @as, with the device's lock
 * policy and lock. */
bool device_map_region(Device *dev, AddressSpace *as, MemoryRegion *mr, const char *name,
                       uint64_t size, const MemoryRegionOps *ops, void *opaque, gpa_t base,
                       GError **errp);
/* Change the lock policy of all of @dev's regions at run time. */
bool device_set_lock_policy(Device *dev, LockPolicy p, GError **errp);

#endif
