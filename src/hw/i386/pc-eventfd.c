/* The pc machine's ioeventfd and irqfd services, on the KVM accelerator. */
#include "kvmloop/eventfd.h"
#include "kvmloop/error.h"

#include "kvmloop/kvm.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"
#include "kvmloop/rcu.h"

#define PC_ISA_IRQS 16

/* Which KVM space @as is; false with an error for an address space that is
 * not one of @m's. */
static bool pc_eventfd_space(Machine *m, AddressSpace *as, bool *pio, GError **errp)
{
    if (as == machine_pio(m) || as == machine_mmio(m)) {
        *pio = as == machine_pio(m);
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "ioeventfd: address space '%s' is not the machine's", address_space_name(as));
    return false;
}

/* True if one region of @as holds all of [@addr, @addr + @size). */
static bool pc_eventfd_covered(AddressSpace *as, gpa_t addr, unsigned size)
{
    rcu_read_enter();
    MemoryRegion *mr = address_space_lookup_rcu(as, addr);
    bool ok = mr && addr + size <= mr->base + mr->size;
    rcu_read_leave();
    return ok;
}

bool machine_add_ioeventfd(Machine *m, AddressSpace *as, gpa_t addr, unsigned size, bool datamatch,
                           uint64_t data, EventNotifier *e, GError **errp)
{
    bool pio;

    if (!pc_eventfd_space(m, as, &pio, errp)) {
        return false;
    }
    /* A write KVM does not match must still find a device. */
    if (!pc_eventfd_covered(as, addr, size)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "ioeventfd at %s 0x%" G_GINT64_MODIFIER "x (%u bytes): no region holds it",
                    address_space_name(as), addr, size);
        return false;
    }
    return kvm_ioeventfd(machine_kvm(m), pio, addr, size, datamatch, data, event_notifier_get_fd(e),
                         true, errp);
}

void machine_del_ioeventfd(Machine *m, AddressSpace *as, gpa_t addr, unsigned size, bool datamatch,
                           uint64_t data, EventNotifier *e)
{
    g_autoptr(GError) err = NULL;
    bool pio;

    if (!pc_eventfd_space(m, as, &pio, &err) ||
        !kvm_ioeventfd(machine_kvm(m), pio, addr, size, datamatch, data, event_notifier_get_fd(e),
                       false, &err)) {
        g_warning("%s", err->message);
    }
}

bool machine_add_irqfd(Machine *m, int irq, EventNotifier *e, GError **errp)
{
    if (irq < 0 || irq >= PC_ISA_IRQS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "irqfd: ISA IRQ %d is not 0 to %d", irq, PC_ISA_IRQS - 1);
        return false;
    }
    /* On the pc machine ISA IRQ n is GSI n, routed by KVM's default table
     * to pin n of the IOAPIC (and of the PICs). */
    return kvm_irqfd(machine_kvm(m), irq, event_notifier_get_fd(e), true, errp);
}

void machine_del_irqfd(Machine *m, int irq, EventNotifier *e)
{
    g_autoptr(GError) err = NULL;

    if (!kvm_irqfd(machine_kvm(m), irq, event_notifier_get_fd(e), false, &err)) {
        g_warning("%s", err->message);
    }
}
