/* ioeventfd and irqfd: device doorbells and interrupts that bypass the vCPU's exit to userspace. */
#ifndef KVMLOOP_EVENTFD_H
#define KVMLOOP_EVENTFD_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "kvmloop/event_loop.h"
#include "kvmloop/types.h"

/* The machine implements these with the accelerator (KVM_IOEVENTFD and
 * KVM_IRQFD); devices never see how. The notifiers stay the caller's: it
 * watches them in an event loop of its choice (an iothread's, or the main
 * loop) and frees them after removing the bindings. */

/* Make a guest write of exactly @size bytes (1, 2, 4 or 8) at @addr in @as
 * (machine_pio() or machine_mmio()) set @e instead of exiting to userspace;
 * with @datamatch only a write of the value @data does. The notifier's
 * counter then grows by one per write, so reading it gives an exact total
 * however the writes coalesce. [@addr, @addr + @size) must lie inside a
 * region of @as: writes that do not match (other values or sizes) still
 * exit and reach that region's ops. Returns false with a one-line error
 * (no region there, a binding that exists, a missing capability). Main
 * thread, BQL held. */
bool machine_add_ioeventfd(Machine *m, AddressSpace *as, gpa_t addr, unsigned size, bool datamatch,
                           uint64_t data, EventNotifier *e, GError **errp);
/* Undo machine_add_ioeventfd() with the same arguments. A failure can only
 * be a caller's bug; it is logged. Main thread, BQL held. */
void machine_del_ioeventfd(Machine *m, AddressSpace *as, gpa_t addr, unsigned size, bool datamatch,
                           uint64_t data, EventNotifier *e);

/* Make every set of @e pulse ISA IRQ @irq (0-15, GSI @irq of the in-kernel
 * IOAPIC and PIC) from whichever thread sets it, without the BQL. A pulse is
 * an edge: right for edge-triggered sources, not for level-triggered ones.
 * Returns false with a one-line error. Main thread, BQL held. */
bool machine_add_irqfd(Machine *m, int irq, EventNotifier *e, GError **errp);
/* Undo machine_add_irqfd(). Failures are logged. Main thread, BQL held. */
void machine_del_irqfd(Machine *m, int irq, EventNotifier *e);

#endif
