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

/* Why the machine stops or resets, as QEMU's ShutdownCause names it for the
 * SHUTDOWN and RESET events. machine_request_exit() and
 * machine_request_reset() are the guest's own requests (guest-shutdown,
 * guest-reset); the host's requests name their cause. */
typedef enum MachineCause {
    MACHINE_CAUSE_NONE,
    MACHINE_CAUSE_HOST_ERROR,            /* kvmloop could not go on (a failed reset) */
    MACHINE_CAUSE_HOST_QMP_QUIT,         /* QMP quit */
    MACHINE_CAUSE_HOST_QMP_SYSTEM_RESET, /* QMP system_reset */
    MACHINE_CAUSE_HOST_SIGNAL,           /* SIGTERM, SIGINT, SIGHUP */
    MACHINE_CAUSE_HOST_UI,               /* Ctrl-a x on the console */
    MACHINE_CAUSE_GUEST_SHUTDOWN,        /* ACPI S5, a KVM poweroff event, isa-debug-exit */
    MACHINE_CAUSE_GUEST_RESET,           /* i8042, ACPI reset register, a KVM reset event */
    MACHINE_CAUSE_GUEST_PANIC,           /* the guest failed: triple fault, emulation failure */
    MACHINE_CAUSE__MAX,
} MachineCause;

/* QEMU's spelling of @cause ("guest-shutdown", "host-qmp-quit", ...). */
const char *machine_cause_name(MachineCause cause);
/* True for the causes the guest initiated. */
bool machine_cause_is_guest(MachineCause cause);

/* machine_request_exit() with the cause of the request. The first request
 * wins, with its status and cause. Any thread, any lock state. */
void machine_request_exit_cause(Machine *m, int status, MachineCause cause);
/* machine_request_reset() with the cause of the request; with -no-reboot it
 * is an exit with status 0 and the same cause, as in QEMU. Requests made
 * before the reset ran are one reset, with the first cause. Any thread, any
 * lock state. */
void machine_request_reset_cause(Machine *m, MachineCause cause);

typedef enum MachineEventKind {
    MACHINE_EVENT_SHUTDOWN, /* an exit was requested; the vCPUs stop next */
    MACHINE_EVENT_RESET,    /* a reset completed; the vCPUs run again unless paused */
} MachineEventKind;

/* A listener learns of resets and of the exit, with their cause. Called on
 * the main loop with the BQL held; it may not call machine_destroy(). */
typedef void (*machine_event_fn)(void *opaque, MachineEventKind kind, MachineCause cause);

/* Add and remove a listener (@fn and @opaque identify it). BQL held. */
void machine_add_listener(Machine *m, machine_event_fn fn, void *opaque);
void machine_remove_listener(Machine *m, machine_event_fn fn, void *opaque);

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
typedef void (*machine_device_fn)(Device *d, void *opaque);
/* Call @fn for every device, in creation order. BQL held. */
void machine_foreach_device(Machine *m, machine_device_fn fn, void *opaque);
int machine_cpu_count(Machine *m);
/* Resets completed since start. BQL held. */
unsigned machine_reset_count(Machine *m);
/* How often vCPU @index needed each emulation assist (the instructions
 * kvmloop finishes for an emulating host's KVM), since the machine was built:
 * KVM_ASSIST__MAX counts in kvm_assist_names order into @out. Returns false,
 * leaving @out alone, when assists are off or there is no such vCPU. Any
 * thread. */
bool machine_emulation_assists(Machine *m, int index, uint64_t *out);
/* The machine's KVM VM, for the glue that implements device services
 * (ioeventfd, irqfd) with accelerator calls. Set before any device is
 * realized. Any thread. */
typedef struct KvmState KvmState;
KvmState *machine_kvm(Machine *m);
