/* The test device: PIO and MMIO counters with a configurable lock and service time. */
#ifndef KVMLOOP_TESTDEV_H
#define KVMLOOP_TESTDEV_H

#include <stdbool.h>
#include <stdint.h>
#include "kvmloop/types.h"

#define TESTDEV_DEFAULT_IOBASE   0x700
#define TESTDEV_DEFAULT_MMIO     0xfe000000ULL
#define TESTDEV_REGION_PIO_SIZE  0x10
#define TESTDEV_REGION_MMIO_SIZE 0x1000

/* Register offsets, the same in both regions. */
#define TESTDEV_REG_COUNTER 0x0 /* write: counter += 1; read: counter (low 32 bits at size 4) */
#define TESTDEV_REG_SCRATCH 0x8 /* read/write scratch */

/* Counter values, and how often two accessors were inside the device at once
 * while its policy promised mutual exclusion (must stay 0). Any thread. */
uint64_t testdev_counter(Device *dev, bool mmio);
uint64_t testdev_overlaps(Device *dev);

#endif
