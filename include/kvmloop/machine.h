/* The machine: guest RAM, address spaces, IRQs and devices, as devices see it. */
#ifndef KVMLOOP_MACHINE_H
#define KVMLOOP_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <glib.h>
#include "kvmloop/guest_mem.h"
#include "kvmloop/irq.h"
#include "kvmloop/types.h"

AddressSpace *machine_pio(Machine *m);
AddressSpace *machine_mmio(Machine *m);
const GuestMem *machine_guest_mem(Machine *m);
/* ISA IRQ @n (0-15) of the in-kernel interrupt controllers (PIC and IOAPIC). */
IrqLine machine_isa_irq(Machine *m, int n);
/* The backend of serial port @idx (from -serial), or NULL. */
Chardev *machine_serial(Machine *m, int idx);
/* Ask the machine to stop and kvmloop to exit with @status (debug-exit).
 * Any thread, any lock state. */
void machine_request_exit(Machine *m, int status);
/* Ask the machine to reset (or, with -no-reboot, to stop with status 0), as a
 * reset line or register would. Any thread, any lock state. */
void machine_request_reset(Machine *m);
/* The main loop, for device timers and fd handlers (callbacks run with the
 * BQL held). */
EventLoop *machine_main_loop(Machine *m);

#endif

/* Building and running (src/hw/i386/pc.c); used by src/system. */
typedef struct VmConfig VmConfig;
typedef struct CpuState CpuState;

/* Build the pc machine described by @cfg: KVM VM, RAM, irqchip, devices, the
 * kernel, vCPUs (not started). @loop is the main loop. Main thread, BQL held.
 * Returns NULL with a one-line error. */
Machine *machine_new(const VmConfig *cfg, EventLoop *loop, GError **errp);
/* Start every vCPU thread. Main thread, BQL held. */
bool machine_start(Machine *m, GError **errp);
/* Stop and join the vCPUs, free everything. Main thread, BQL held. */
void machine_destroy(Machine *m);
/* True once an exit was requested; @status then holds the exit status. */
bool machine_exit_requested(Machine *m, int *status);
/* A device by id (or class name when no id was given), or NULL. BQL held. */
Device *machine_find_device(Machine *m, const char *id);
int machine_cpu_count(Machine *m);
/* Resets completed since start. BQL held. */
unsigned machine_reset_count(Machine *m);
/* The -stats lines only the machine knows (emulation assists, boot time).
 * Main thread, after the vCPUs stopped. */
void machine_print_host_stats(Machine *m, FILE *f);
/* The machine's KVM VM, for the glue that implements device services
 * (ioeventfd, irqfd) with accelerator calls. Set before any device is
 * realized. Any thread. */
typedef struct KvmState KvmState;
KvmState *machine_kvm(Machine *m);
