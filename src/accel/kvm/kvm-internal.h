/* State shared by the KVM accelerator's files; nothing outside src/accel/kvm sees it. */
#ifndef KVMLOOP_KVM_INTERNAL_H
#define KVMLOOP_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <stdbool.h>
#include "kvmloop/error.h"
#include "kvmloop/kvm.h"

#define KVM_MAX_RAM_SLOTS 4

struct KvmState {
    int fd;
    int vmfd;
    int run_mmap_size;
    struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, fetched once */
    AddressSpace *pio;
    AddressSpace *mmio;
    struct {
        uint64_t gpa, size;
        uint8_t *host;
    } ram[KVM_MAX_RAM_SLOTS]; /* to read guest code for emulation failures */
    bool assists;
    bool have_irqchip_state;
    struct kvm_irqchip irqchip_init[3]; /* PIC master, PIC slave, IOAPIC at power-on */
    struct kvm_pit_state2 pit_init;
};

struct KvmVcpu {
    KvmState *kvm;
    int fd;
    int index;
    uint32_t apic_id;
    struct kvm_run *run;
    /* The power-on state, for reset. */
    struct kvm_regs init_regs;
    struct kvm_sregs init_sregs;
    struct kvm_fpu init_fpu;
    struct kvm_lapic_state init_lapic;
    struct kvm_mp_state init_mp_state;
    uint64_t assists[KVM_ASSIST__MAX]; /* atomic */
};

int kvm_ioctl(int fd, unsigned long req, void *arg);
/* Set "@what failed: strerror(-@err)" in @errp; returns false. */
bool kvm_set_ioctl_error(GError **errp, const char *what, int err);
bool kvm_x86_vcpu_init_cpuid(KvmVcpu *v, const CpuModel *model, const CpuTopology *topo,
                             GError **errp);
/* Save the vCPU's power-on state (after CPUID is set). */
bool kvm_x86_vcpu_save_init_state(KvmVcpu *v, GError **errp);
/* A KVM_EXIT_INTERNAL_ERROR: finish the instruction with an assist (true)
 * or report it with the instruction bytes and the likely cause (false). */
bool kvm_x86_handle_emulation_failure(KvmVcpu *v);

#endif
