/* The test device: PIO and MMIO counters with a configurable lock and service time, and doorbells.
 */
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
/* Read: how often the doorbell of the same space (PIO or MMIO) rang. */
#define TESTDEV_REG_DOORBELL_COUNT 0x4
/* Write N: raise one interrupt once that doorbell has rung N times (at once
 * if it already has); 0 disarms. Read: the armed N, 0 once it fired. */
#define TESTDEV_REG_DOORBELL_IRQ 0xc

/* Each space has a doorbell: a 4-byte write-only register in a region of its
 * own, so that statistics count its exits apart; a 4-byte write rings it
 * (other sizes are rejected). With ioeventfd=on, KVM turns the write into an
 * eventfd signal that an event loop counts, with no exit to userspace; a
 * write it does not match (with doorbell-data=V, any value but V) still exits
 * and rings the doorbell there. */
#define TESTDEV_DOORBELL_PIO_OFFSET  0x10   /* from iobase */
#define TESTDEV_DOORBELL_MMIO_OFFSET 0x1000 /* from mmio */
#define TESTDEV_DOORBELL_SIZE        4
#define TESTDEV_DEFAULT_IRQ          5 /* ISA IRQ of the doorbell interrupt */

/* Counter values, and how often two accessors were inside the device at once
 * while its policy promised mutual exclusion (must stay 0). Any thread. */
uint64_t testdev_counter(Device *dev, bool mmio);
uint64_t testdev_overlaps(Device *dev);

typedef struct TestDevDoorbellStats {
    uint64_t eventfd;     /* rings served through the ioeventfd: no exit to userspace */
    uint64_t exits;       /* rings that reached the device through a vCPU exit */
    uint64_t batches;     /* eventfd reads that found rings; each may carry many */
    uint64_t batches_bql; /* those read with the BQL held (served by the main loop) */
    uint64_t irqs;        /* interrupts raised */
} TestDevDoorbellStats;

/* The counters of the PIO (@mmio false) or MMIO doorbell. Any thread. */
TestDevDoorbellStats testdev_doorbell_stats(Device *dev, bool mmio);

#endif
