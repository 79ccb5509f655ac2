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
#include "lib/irq.h"

#define UART_IRQ       4
#define UART_VECTOR    0x30
#define UART_IER       1
#define UART_IIR       2
#define UART_IIR_THRI  0x02
#define UART_IER_THRI  0x02
#define IRQ_TIMEOUT    (1ULL << 34)

static volatile uint32_t irq_count;
static volatile uint32_t irq_iir;

IRQ_ENTRY(uart_irq_isr, uart_irq_handler);

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

int main(const char *cmdline)
{
    (void)cmdline;
    serial_init();
    serial_puts("uart-irq: waiting for THRE on IRQ 4\n");

    irq_route(UART_IRQ, 0, UART_VECTOR, uart_irq_isr); /* edge-triggered */

    __asm__ volatile("sti");
    outb(GUEST_UART_BASE + UART_IER, UART_IER_THRI);
    /* The handler ends the run; getting here means no interrupt came. */
    tsc_wait_ge32(&irq_count, 1, IRQ_TIMEOUT);
    __asm__ volatile("cli");
    serial_puts("uart-irq: no interrupt\n");
    return 1;
}
