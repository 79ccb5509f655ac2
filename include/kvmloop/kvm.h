/* The KVM accelerator: the only module that includes <linux/kvm.h> or issues KVM ioctls. */
#ifndef KVMLOOP_KVM_H
#define KVMLOOP_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <glib.h>
#include "kvmloop/types.h"

typedef struct KvmState KvmState;
typedef struct KvmVcpu KvmVcpu;

/* What kvm_vcpu_exec() saw, in kvmloop's own terms. The order is the order of
 * the statistics tables. */
typedef enum {
    VCPU_EXIT_IO,
    VCPU_EXIT_MMIO,
    VCPU_EXIT_INTR, /* KVM_RUN returned EINTR: a kick */
    VCPU_EXIT_HLT,
    VCPU_EXIT_SHUTDOWN, /* triple fault */
    VCPU_EXIT_SYSTEM_EVENT,
    VCPU_EXIT_INTERNAL_ERROR,
    VCPU_EXIT_FAIL_ENTRY,
    VCPU_EXIT_UNKNOWN,
    VCPU_EXIT_OTHER, /* any exit reason kvmloop does not handle */
    VCPU_EXIT__MAX,
} VcpuExitReason;

/* The verdict on one exit. */
typedef enum {
    VCPU_CONTINUE,    /* handled; enter the guest again */
    VCPU_INTERRUPTED, /* kicked: look at the request flags */
    VCPU_POWEROFF,    /* the guest asked for power off */
    VCPU_RESET,       /* the guest asked for a reset */
    VCPU_FATAL,       /* the VM cannot go on: reason and registers were printed */
} VcpuVerdict;

typedef struct VcpuExit {
    VcpuExitReason reason;
    const char *region; /* IO/MMIO: name of the region (for statistics) */
    LockSite site;      /* IO/MMIO: the region's exit site; else left as it was */
    bool timed;         /* in: the caller wants @run_end_ns */
    int64_t run_end_ns; /* if @timed: lockstat_now_ns() when KVM_RUN returned */
} VcpuExit;

extern const char *const vcpu_exit_reason_names[VCPU_EXIT__MAX];

/* Open @path (normally "/dev/kvm"), check the API version and every
 * capability kvmloop relies on, and create a VM. On failure returns NULL with
 * a one-line error naming the device, the errno or the missing capability.
 * Main thread, start-up. */
KvmState *kvm_init(const char *path, GError **errp);
void kvm_destroy(KvmState *s);

/* Give the guest [@gpa, @gpa + @size) backed by @host (page aligned). */
bool kvm_set_ram(KvmState *s, unsigned slot, gpa_t gpa, uint64_t size, void *host, GError **errp);
/* The in-kernel PIC/IOAPIC/LAPIC and the PIT. */
bool kvm_create_irqchip(KvmState *s, GError **errp);
/* Drive GSI @irq to @level. Any thread. Returns 0 or -errno. */
int kvm_set_irq(KvmState *s, int irq, int level);
/* The address spaces exits are dispatched to. */
void kvm_set_address_spaces(KvmState *s, AddressSpace *pio, AddressSpace *mmio);

/* Create vCPU @index of @nr_cpus, with its kvm_run mapping and a CPUID whose
 * APIC IDs and topology match @index and @nr_cpus. Main thread, start-up. */
KvmVcpu *kvm_vcpu_create(KvmState *s, int index, int nr_cpus, GError **errp);
void kvm_vcpu_destroy(KvmVcpu *v);
/* Registers for a multiboot entry: 32-bit flat protected mode, paging off,
 * EAX = 0x2BADB002, EBX = @mbi, EIP = @entry. */
bool kvm_vcpu_set_multiboot_entry(KvmVcpu *v, uint32_t entry, uint32_t mbi, GError **errp);

/* Bind the calling thread to @v so that kvm_vcpu_signal_kick() can reach it. */
void kvm_vcpu_bind_thread(KvmVcpu *v);
/* Make the vCPU leave KVM_RUN (or not enter it) with EINTR. From any thread:
 * sets immediate_exit in @v's kvm_run; the caller then signals the thread. */
void kvm_vcpu_request_exit(KvmVcpu *v);
/* From the kick signal handler, async-signal-safe: same, for the vCPU bound to
 * the interrupted thread (if any). */
void kvm_vcpu_signal_kick(void);

/* Enter the guest once and handle the exit: port I/O and MMIO are dispatched
 * to the address spaces with each region's lock policy. vCPU thread, no lock
 * held. @out says what happened. */
VcpuVerdict kvm_vcpu_exec(KvmVcpu *v, VcpuExit *out);

/* Print the general, segment and control registers. vCPU thread. */
void kvm_vcpu_dump_state(KvmVcpu *v, FILE *f);
int kvm_vcpu_index(const KvmVcpu *v);

#endif
