/* The 16550A UART: a register-level core and the "isa-serial" device built on it. */
#ifndef KVMLOOP_UART16550_H
#define KVMLOOP_UART16550_H

#include <stddef.h>
#include <stdint.h>
#include "kvmloop/irq.h"
#include "kvmloop/types.h"

struct DeviceClass;

/* The register core. It knows nothing of regions or locks: every function
 * below must be called with the lock that serialises the port held (the BQL
 * by default; the device's mutex with lock=device). It takes no lock itself. */
typedef struct Uart16550 Uart16550;

/* Create a UART in its reset state that transmits to @chr (NULL: output is
 * discarded) and drives @irq. If @chr is not NULL the core attaches itself as
 * its frontend (uart16550_can_receive/uart16550_receive). Never fails. */
Uart16550 *uart16550_new(Chardev *chr, IrqLine irq);
/* Detach from the chardev, lower the IRQ and free. NULL is allowed. */
void uart16550_free(Uart16550 *s);
/* Back to power-on values (IER=0, IIR=0x01, LCR=0, MCR=0, LSR=0x60,
 * FIFOs off and empty); lowers the IRQ. */
void uart16550_reset(Uart16550 *s);

/* Guest register access at @offset (0-7) from the port base, one byte wide.
 * Reads have side effects (RBR pops, IIR acknowledges THRE, LSR and MSR clear
 * their sticky bits). An offset past 7 reads 0xff and ignores writes. */
uint64_t uart16550_read(Uart16550 *s, unsigned offset);
void uart16550_write(Uart16550 *s, unsigned offset, uint8_t value);

/* Frontend callbacks for chardev_set_handlers(); @opaque is the Uart16550.
 * can_receive returns the free room in the receive FIFO (1 or 16 deep), and 0
 * in loopback mode, where the receiver is cut off from the outside line.
 * receive takes bytes as if they had arrived on the line, raising the
 * data-ready interrupt if IER enables it; bytes past the free room are lost
 * and flag an overrun, as on hardware. The chardev never sends more than
 * can_receive allows, so console input does not overrun: it waits, and every
 * change that makes room (a read of RBR, a receive-FIFO reset, leaving
 * loopback) calls chardev_accept_input() to let it flow again.
 *
 * Input is delivered on the main loop thread with the BQL held; the register
 * accesses it races with run under the BQL by default. With lock=device the
 * "isa-serial" device also takes its own mutex around both (see uart16550.c),
 * so the core still sees one caller at a time. */
size_t uart16550_can_receive(void *opaque);
void uart16550_receive(void *opaque, const uint8_t *buf, size_t len);

/* "isa-serial": props iobase (default 0x3f8), irq (4), index (0: which -serial
 * backend), lock (bql|device; none is refused). Listed in the device registry. */
extern const struct DeviceClass uart16550_device_class;

#endif
