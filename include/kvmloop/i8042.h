/* The i8042 keyboard controller with a PS/2 keyboard and mouse: a register core and the device. */
#ifndef KVMLOOP_I8042_H
#define KVMLOOP_I8042_H

#include <stdint.h>
#include "kvmloop/irq.h"

struct DeviceClass;

/* Port offsets from 0x60: data, and status (read) / command (write). */
#define I8042_PORT_DATA    0
#define I8042_PORT_COMMAND 4

/* Status register (the names Linux's i8042 driver uses). */
#define I8042_STR_OBF     0x01 /* output buffer full */
#define I8042_STR_IBF     0x02 /* input buffer full: never set, input is taken at once */
#define I8042_STR_SYSFLAG 0x04 /* the command byte's system flag */
#define I8042_STR_CMDDAT  0x08 /* A2: the last write went to the command port */
#define I8042_STR_KEYLOCK 0x10 /* set: the keyboard is not locked */
#define I8042_STR_AUXDATA 0x20 /* the output buffer holds a byte from the aux port */
#define I8042_STR_TIMEOUT 0x40 /* never set */
#define I8042_STR_PARITY  0x80 /* never set */

/* Command byte (controller RAM byte 0). */
#define I8042_CTR_KBDINT     0x01
#define I8042_CTR_AUXINT     0x02
#define I8042_CTR_SYSFLAG    0x04
#define I8042_CTR_IGNKEYLOCK 0x08
#define I8042_CTR_KBDDIS     0x10
#define I8042_CTR_AUXDIS     0x20
#define I8042_CTR_XLATE      0x40

/* Output port: bit 0 low holds the CPU in reset, bit 1 gates A20. */
#define I8042_OUT_RESET 0x01
#define I8042_OUT_A20   0x02

/* Asks the machine for a reset (the controller's reset line). */
typedef void (*i8042_reset_fn)(void *opaque);

/* The register core. It knows nothing of regions or locks: every function
 * below must be called with the lock that serialises the ports held (the BQL
 * by default, the device's mutex with lock=device). The reset hook is called
 * with that lock held. */
typedef struct I8042 I8042;

/* Create a controller in its power-on state (command byte 0x65: keyboard
 * interrupt, system flag, aux port disabled, translation) with a keyboard
 * and a mouse attached. Keyboard bytes drive @kbd_irq, aux bytes @aux_irq.
 * @reset (may be NULL) is called when the guest pulses the reset line.
 * Never fails. */
I8042 *i8042_new(IrqLine kbd_irq, IrqLine aux_irq, i8042_reset_fn reset, void *reset_opaque);
/* Lower both IRQs and free. NULL is allowed. */
void i8042_free(I8042 *s);
/* Controller, keyboard and mouse back to their power-on state; output
 * emptied, IRQs lowered. */
void i8042_reset(I8042 *s);

/* Guest access at @offset (I8042_PORT_DATA or I8042_PORT_COMMAND), one byte
 * wide. Reading data takes the output buffer (and lowers its IRQ; the next
 * queued byte, if any, raises it again); with the buffer empty it returns the
 * last byte again. Other offsets read 0xff and ignore writes. */
uint8_t i8042_read(I8042 *s, unsigned offset);
void i8042_write(I8042 *s, unsigned offset, uint8_t value);

/* "i8042": no properties but lock (bql|device). Ports 0x60 and 0x64, ISA
 * IRQ 1 (keyboard) and 12 (aux). Listed in the device registry. */
extern const struct DeviceClass i8042_device_class;

#endif
