/* The test-guest interrupt library: one IDT, IOAPIC routing to the boot CPU, handler entry stubs. */
#ifndef KVMLOOP_GUEST_IRQ_H
#define KVMLOOP_GUEST_IRQ_H

#include "guest.h"

#define IOAPIC_BASE    0xFEC00000u
#define IOAPIC_REGSEL  0x00
#define IOAPIC_WINDOW  0x10
#define IOAPIC_REDTBL0 0x10
#define IOAPIC_LEVEL   (1u << 15) /* redirection entry: level-triggered */
#define APIC_EOI       0x0B0

/*
 * Define @entry, an interrupt entry point that clears DF and calls @handler
 * (a non-static void function of no arguments) and never comes back: a
 * handler ends the test itself (debug_exit(), a power-off) instead of
 * returning, because instruction emulators (KVM's included, which runs all
 * guest kernel code on hosts without VMX/SVM) handle iret only in real mode.
 */
#define IRQ_ENTRY(entry, handler)                                                                  \
    void entry(void);                                                                              \
    void handler(void) __attribute__((noreturn));                                                  \
    __asm__(".text\n"                                                                              \
            ".globl " #entry "\n" #entry ":\n"                                                     \
            "  cld\n"                                                                              \
            "  call " #handler "\n")

/* Write IOAPIC register @reg. */
void ioapic_write(uint32_t reg, uint32_t v);

/* Enter @entry (from IRQ_ENTRY) on @vector through a 32-bit interrupt gate,
 * mask both 8259s so that only the IOAPIC path counts, enable the local APIC,
 * and route IOAPIC pin @pin to @vector with fixed delivery to APIC ID 0,
 * active high, edge-triggered or, with IOAPIC_LEVEL in @flags,
 * level-triggered; unmasked. Interrupts stay off until the caller's sti. */
void irq_route(unsigned pin, uint32_t flags, uint8_t vector, void (*entry)(void));

#endif
