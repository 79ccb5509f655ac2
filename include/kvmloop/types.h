/* Basic types shared by every kvmloop module. */
#ifndef KVMLOOP_TYPES_H
#define KVMLOOP_TYPES_H

#include <stdint.h>

/* A guest physical address. Host pointers stay pointers. */
typedef uint64_t gpa_t;

/* What took a lock or made an access, as a small interned id (lockstat.h). */
typedef uint32_t LockSite;

typedef struct Machine Machine;
typedef struct Device Device;
typedef struct AddressSpace AddressSpace;
typedef struct MemoryRegion MemoryRegion;
typedef struct Chardev Chardev;
typedef struct KLock KLock;
typedef struct EventLoop EventLoop;

#endif
