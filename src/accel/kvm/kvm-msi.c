/* Message-signalled interrupts: KVM_SIGNAL_MSI injects one MSI write into the in-kernel LAPICs. */
#include "kvmloop/kvm.h"

#include <errno.h>
#include <linux/kvm.h>

#include "kvm-internal.h"

int kvm_signal_msi(KvmState *s, uint64_t addr, uint32_t data)
{
    struct kvm_msi msi = {
        .address_lo = (uint32_t)addr,
        .address_hi = (uint32_t)(addr >> 32),
        .data = data,
    };
    /* Returns > 0 when delivered, 0 when the guest blocked it (no LAPIC
     * accepted it); either way the message was handled as hardware would. */
    int r = kvm_ioctl(s->vmfd, KVM_SIGNAL_MSI, &msi);
    return r < 0 ? r : 0;
}
