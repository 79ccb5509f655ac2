/* The KVM accelerator: the only module that includes <linux/kvm.h> or issues KVM ioctls. */
#ifndef KVMLOOP_KVM_H
#define KVMLOOP_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <glib.h>
#include "kvmloop/types.h"
#include "kvmloop/x86_cpu.h"

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
/* KVM_SIGNAL_MSI: deliver the MSI write of @data at @addr (the 0xFEExxxxx
 * LAPIC window) to the in-kernel LAPICs. Any thread, no lock. Returns 0 or
 * -errno. */
int kvm_signal_msi(KvmState *s, uint64_t addr, uint32_t data);
/* The address spaces exits are dispatched to. */
void kvm_set_address_spaces(KvmState *s, AddressSpace *pio, AddressSpace *mmio);

/* Create vCPU @index with its kvm_run mapping, the APIC ID @topo gives it,
 * and the CPUID of @model with @topo's topology leaves. Saves the vCPU's
 * power-on state for kvm_vcpu_reset(). Main thread, start-up. */
KvmVcpu *kvm_vcpu_create(KvmState *s, int index, const CpuModel *model, const CpuTopology *topo,
                         GError **errp);
void kvm_vcpu_destroy(KvmVcpu *v);
/* Back to the power-on state: registers, LAPIC, MP state (the APs wait for
 * INIT/SIPI), pending events, and the paravirtual MSRs (kvmclock, PV EOI,
 * steal time, async PF) cleared. vCPU stopped. */
bool kvm_vcpu_reset(KvmVcpu *v, GError **errp);
/* 32-bit flat protected mode, paging off, EIP = @entry, EAX = @eax, EBX =
 * @ebx: the multiboot (EAX = 0x2BADB002, EBX = info) and PVH (EBX = start
 * info) entry states. */
bool kvm_vcpu_set_flat32_entry(KvmVcpu *v, uint32_t entry, uint32_t eax, uint32_t ebx,
                               GError **errp);
/* 64-bit long mode with the identity page tables at @cr3 and the GDT at
 * @gdt (code 0x10, data 0x18), RIP = @entry, RSI = @rsi: the Linux boot
 * protocol's 64-bit entry. */
bool kvm_vcpu_set_long_mode_entry(KvmVcpu *v, uint64_t entry, uint64_t rsi, uint64_t cr3,
                                  uint64_t gdt, GError **errp);
/* The in-kernel PIC, IOAPIC and PIT back to their power-on state. */
bool kvm_irqchip_reset(KvmState *s, GError **errp);

/* True when /dev/kvm works although the host CPU has neither VMX nor SVM
 * (PVM and similar): guest kernel code then runs in the host's instruction
 * emulator. @name gets a short description for messages. */
bool kvm_host_emulates_guest_kernel(KvmState *s, const char **name);

/* Emulation assists: on hosts that emulate guest kernel code, finish the
 * few instructions the host emulator gives up on (int3, fwait, clac, stac)
 * in kvmloop instead of stopping the VM. Off by default. */
typedef enum {
    KVM_ASSIST_INT3,
    KVM_ASSIST_FWAIT,
    KVM_ASSIST_CLAC_STAC,
    KVM_ASSIST__MAX,
} KvmAssist;
extern const char *const kvm_assist_names[KVM_ASSIST__MAX];
void kvm_set_emulation_assists(KvmState *s, bool on);
bool kvm_emulation_assists(KvmState *s);
/* How often vCPU @v used each assist. Any thread. */
void kvm_vcpu_assist_counts(const KvmVcpu *v, uint64_t out[KVM_ASSIST__MAX]);

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
/* CLOCK_MONOTONIC ns of the first KVM_RUN of any vCPU of the process, or 0. */
int64_t kvm_first_entry_ns(void);
uint32_t kvm_vcpu_apic_id(const KvmVcpu *v);

/* KVM_IOEVENTFD: a guest write of exactly @size bytes (1, 2, 4 or 8) at @addr,
 * in port space if @pio else in memory space, increments eventfd @fd inside
 * KVM and the vCPU goes on without an exit to userspace. With @datamatch only
 * a write of the value @data (which must fit in @size bytes) does; other
 * writes exit as usual. @assign false removes the identical binding. Returns
 * false with a one-line error naming the ioctl, the address and the errno
 * (EEXIST for a binding that exists, ENOENT for removing one that does not)
 * or the missing capability. Any thread. */
bool kvm_ioeventfd(KvmState *s, bool pio, gpa_t addr, unsigned size, bool datamatch, uint64_t data,
                   int fd, bool assign, GError **errp);
/* KVM_IRQFD: each write to eventfd @fd pulses GSI @gsi of the in-kernel
 * irqchip (raised, then lowered: edge semantics; level-triggered sources
 * would need KVM_IRQFD_FLAG_RESAMPLE, which kvmloop does not use). @assign
 * false removes the binding. Needs kvm_create_irqchip(). Returns false with
 * a one-line error as kvm_ioeventfd(). Any thread. */
bool kvm_irqfd(KvmState *s, int gsi, int fd, bool assign, GError **errp);

#endif
