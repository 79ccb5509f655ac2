/* The pc machine's PCI interrupt services: MSI through KVM_SIGNAL_MSI, INTx on IOAPIC GSIs. */
#include "kvmloop/pci.h"

#include "kvmloop/kvm.h"
#include "kvmloop/machine.h"

/* Only the LAPIC window takes MSI writes; anything else a guest programs in
 * an MSI-X table is dropped here, as a bus without a target would. */
#define PC_MSI_WINDOW_MASK 0xfff00000u
#define PC_MSI_WINDOW      0xfee00000u

void machine_send_msi(Machine *m, uint64_t addr, uint32_t data)
{
    if ((addr >> 32) != 0 || ((uint32_t)addr & PC_MSI_WINDOW_MASK) != PC_MSI_WINDOW) {
        g_warning_once("MSI to 0x%" G_GINT64_MODIFIER "x dropped: not the LAPIC window", addr);
        return;
    }
    int r = kvm_signal_msi(machine_kvm(m), addr, data);
    if (r < 0) {
        g_warning_once("KVM_SIGNAL_MSI failed: %s", g_strerror(-r));
    }
}

void machine_set_gsi(Machine *m, int gsi, int level)
{
    int r = kvm_set_irq(machine_kvm(m), gsi, level);
    if (r < 0) {
        g_warning_once("KVM_IRQ_LINE (GSI %d) failed: %s", gsi, g_strerror(-r));
    }
}
