/*
 * uart-irq: the UART's THRE interrupt reaches the CPU through the in-kernel IOAPIC.
 *
 * Programs IOAPIC pin 4 (ISA IRQ 4, COM1) to vector 0x30 on the boot CPU, masks
 * the 8259s, enables the local APIC and the UART's transmitter-empty interrupt,
 * and waits for the interrupt handler to run.
 *
 * The handler never returns with iret: instruction emulators (KVM's included,
 * which runs all guest kernel code on hosts without VMX/SVM) handle iret only in
 * real mode. It finishes the test from the interrupt context instead.
 *
 * Exit codes (debug-exit value V):
 *   0  the interrupt arrived and IIR said THRE
 *   1  no interrupt within the timeout
 *   2  IIR did not report THRE in the handler
 */
#include "lib/guest.h"

#define IOAPIC_BASE    0xFEC00000u
#define IOAPIC_REGSEL  0x00
#define IOAPIC_WINDOW  0x10
#define IOAPIC_REDTBL0 0x10
#define UART_IRQ       4
#define UART_VECTOR    0x30
#define APIC_EOI       0x0B0
#define UART_IER       1
#define UART_IIR       2
#define UART_IIR_THRI  0x02
#define UART_IER_THRI  0x02
#define IRQ_TIMEOUT    (1ULL << 34)

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t zero;
    uint8_t type_attr;
    uint16_t offset_hi;
} __attribute__((packed));

static struct idt_gate idt[UART_VECTOR + 1];
static volatile uint32_t irq_count;
static volatile uint32_t irq_iir;

void uart_irq_isr(void);
void uart_irq_handler(void) __attribute__((noreturn));

/* The entry stub: the interrupt gate left IF clear; go to C for good. */
__asm__(".text\n"
        ".globl uart_irq_isr\n"
        "uart_irq_isr:\n"
        "  cld\n"
        "  call uart_irq_handler\n");

void uart_irq_handler(void)
{
    irq_iir = inb(GUEST_UART_BASE + UART_IIR);
    outb(GUEST_UART_BASE + UART_IER, 0);
    irq_count = irq_count + 1;
    lapic_write(APIC_EOI, 0);
    if ((irq_iir & 0x0f) != UART_IIR_THRI) {
        serial_printf("uart-irq: IIR was 0x%x\n", irq_iir);
        debug_exit(2);
    }
    serial_puts("uart-irq: ok\n");
    debug_exit(0);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
    mmio_write32(IOAPIC_BASE + IOAPIC_WINDOW, v);
}

static void idt_install(void)
{
    uint32_t isr = (uint32_t)(uintptr_t)uart_irq_isr;
    idt[UART_VECTOR] = (struct idt_gate){
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
}

int main(const char *cmdline)
{
    (void)cmdline;
    serial_init();
    serial_puts("uart-irq: waiting for THRE on IRQ 4\n");

    idt_install();
    outb(0x21, 0xff); /* mask both 8259s: only the IOAPIC path counts */
    outb(0xa1, 0xff);
    lapic_write(APIC_SPIV, APIC_SPIV_APIC_ENABLED | 0xff);
    /* Edge-triggered, active high, fixed delivery to APIC ID 0, unmasked. */
    ioapic_write(IOAPIC_REDTBL0 + 2 * UART_IRQ + 1, 0);
    ioapic_write(IOAPIC_REDTBL0 + 2 * UART_IRQ, UART_VECTOR);

    __asm__ volatile("sti");
    outb(GUEST_UART_BASE + UART_IER, UART_IER_THRI);
    /* The handler ends the run; getting here means no interrupt came. */
    tsc_wait_ge32(&irq_count, 1, IRQ_TIMEOUT);
    __asm__ volatile("cli");
    serial_puts("uart-irq: no interrupt\n");
    return 1;
}
