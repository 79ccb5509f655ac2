/* KVM_IOEVENTFD and KVM_IRQFD: guest writes and interrupts that bypass the vCPU's exit to
 * userspace. */
#include "kvmloop/kvm.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <linux/kvm.h>

#include "kvm-internal.h"

/* Capabilities are checked at each binding: bindings are made at set-up,
 * a few per device, so one more ioctl costs nothing worth caching. */
static bool kvm_eventfd_check_cap(KvmState *s, int cap, const char *cap_name, const char *ioctl,
                                  GError **errp)
{
    if (kvm_ioctl(s->vmfd, KVM_CHECK_EXTENSION, (void *)(long)cap) > 0) {
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s: the host's KVM lacks %s", ioctl,
                cap_name);
    return false;
}

bool kvm_ioeventfd(KvmState *s, bool pio, gpa_t addr, unsigned size, bool datamatch, uint64_t data,
                   int fd, bool assign, GError **errp)
{
    const char *space = pio ? "io" : "memory";

    if (size != 1 && size != 2 && size != 4 && size != 8) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "KVM_IOEVENTFD (%s 0x%" G_GINT64_MODIFIER "x): size %u is not 1, 2, 4 or 8",
                    space, addr, size);
        return false;
    }
    /* KVM compares the written bytes, zero-extended, with the whole 64-bit
     * value: a wider value would silently never match. */
    if (datamatch && size < 8 && data >> (size * 8)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "KVM_IOEVENTFD (%s 0x%" G_GINT64_MODIFIER "x): value 0x%" G_GINT64_MODIFIER
                    "x does not fit in a %u-byte write",
                    space, addr, data, size);
        return false;
    }
    if (!kvm_eventfd_check_cap(s, KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "KVM_IOEVENTFD", errp)) {
        return false;
    }
    struct kvm_ioeventfd io = {
        .datamatch = datamatch ? data : 0,
        .addr = addr,
        .len = size,
        .fd = fd,
        .flags = (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
                 (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    int r = kvm_ioctl(s->vmfd, KVM_IOEVENTFD, &io);
    if (r < 0) {
        g_autofree char *what =
            g_strdup_printf("KVM_IOEVENTFD (%s %s 0x%" G_GINT64_MODIFIER "x, %u bytes)",
                            assign ? "assign" : "deassign", space, addr, size);
        return kvm_set_ioctl_error(errp, what, r);
    }
    return true;
}

bool kvm_irqfd(KvmState *s, int gsi, int fd, bool assign, GError **errp)
{
    if (gsi < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "KVM_IRQFD: GSI %d is negative",
                    gsi);
        return false;
    }
    if (!kvm_eventfd_check_cap(s, KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "KVM_IRQFD", errp)) {
        return false;
    }
    struct kvm_irqfd irqfd = {
        .fd = (uint32_t)fd,
        .gsi = (uint32_t)gsi,
        .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };
    int r = kvm_ioctl(s->vmfd, KVM_IRQFD, &irqfd);
    if (r < 0) {
        g_autofree char *what =
            g_strdup_printf("KVM_IRQFD (%s GSI %d)", assign ? "assign" : "deassign", gsi);
        return kvm_set_ioctl_error(errp, what, r);
    }
    return true;
}
