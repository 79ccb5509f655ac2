/* State shared by the KVM accelerator's files; nothing outside src/accel/kvm sees it. */
#ifndef KVMLOOP_KVM_INTERNAL_H
#define KVMLOOP_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <stdbool.h>
#include "kvmloop/error.h"
#include "kvmloop/kvm.h"

struct KvmState {
    int fd;
    int vmfd;
    int run_mmap_size;
    struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, fetched once */
    AddressSpace *pio;
    AddressSpace *mmio;
};

struct KvmVcpu {
    KvmState *kvm;
    int fd;
    int index;
    struct kvm_run *run;
};

int kvm_ioctl(int fd, unsigned long req, void *arg);
/* Set "@what failed: strerror(-@err)" in @errp; returns false. */
bool kvm_set_ioctl_error(GError **errp, const char *what, int err);
bool kvm_x86_vcpu_init_cpuid(KvmVcpu *v, int nr_cpus, GError **errp);

#endif
