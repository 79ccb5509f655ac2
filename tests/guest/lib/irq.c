/* IDT set-up and IOAPIC routing for payloads that take an interrupt. */
#include "irq.h"

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t zero;
    uint8_t type_attr;
    uint16_t offset_hi;
} __attribute__((packed));

static struct idt_gate idt[256];

void ioapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
    mmio_write32(IOAPIC_BASE + IOAPIC_WINDOW, v);
}

void irq_route(unsigned pin, uint32_t flags, uint8_t vector, void (*entry)(void))
{
    uint32_t isr = (uint32_t)(uintptr_t)entry;
    idt[vector] = (struct idt_gate){
        .offset_lo = (uint16_t)isr,
        .selector = GUEST_SEL_CODE,
        .type_attr = 0x8e, /* present, DPL 0, 32-bit interrupt gate */
        .offset_hi = (uint16_t)(isr >> 16),
    };
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));

    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff);
    ioapic_write(IOAPIC_REDTBL0 + 2 * pin + 1, 0); /* destination: APIC ID 0 */
    ioapic_write(IOAPIC_REDTBL0 + 2 * pin, flags | vector);
}
