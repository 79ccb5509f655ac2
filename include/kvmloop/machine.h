/* The machine: guest RAM, address spaces, IRQs and devices, as devices see it. */
#ifndef KVMLOOP_MACHINE_H
#define KVMLOOP_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/guest_mem.h"
#include "kvmloop/irq.h"
#include "kvmloop/types.h"

AddressSpace *machine_pio(Machine *m);
AddressSpace *machine_mmio(Machine *m);
const GuestMem *machine_guest_mem(Machine *m);
/* ISA IRQ @n (0-15) of the in-kernel interrupt controllers (PIC and IOAPIC). */
IrqLine machine_isa_irq(Machine *m, int n);
/* The backend of serial port @idx (from -serial), or NULL. */
Chardev *machine_serial(Machine *m, int idx);
/* Ask the machine to stop and kvmloop to exit with @status (debug-exit).
 * Any thread, any lock state. */
void machine_request_exit(Machine *m, int status);

#endif
