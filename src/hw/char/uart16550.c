/* A 16550A UART: register core with a 16-byte receive FIFO, and the "isa-serial" device. */
#include "kvmloop/uart16550.h"

#include <linux/serial_reg.h>

#include "kvmloop/chardev.h"
#include "kvmloop/device.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"

/* ---- Constants ---------------------------------------------------------- */

#define UART16550_REGS      8
#define UART16550_FIFO_SIZE 16

/* IIR bits 7:6 read 11 when FCR0 enabled the FIFOs (16550A datasheet, IIR);
 * <linux/serial_reg.h> has no name for them. */
#define UART16550_IIR_FIFO_ENABLED 0xc0
/* 16550A IER bits 7:4 are always zero. */
#define UART16550_IER_MASK (UART_IER_MSI | UART_IER_RLSI | UART_IER_THRI | UART_IER_RDI)
/* FCR bits that are remembered: enable, DMA mode and the receive trigger. */
#define UART16550_FCR_KEEP (UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT | UART_FCR_TRIGGER_MASK)
/* Line status errors that raise a receiver line status interrupt. Only OE can
 * happen here: the model has no parity, framing or break conditions. */
#define UART16550_LSR_ERRORS UART_LSR_BRK_ERROR_BITS
/* The modem inputs of a port with nothing attached but a willing peer. */
#define UART16550_MSR_LINES_IDLE (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)
/* Power-on divisor: 12, i.e. 9600 baud from the 1.8432 MHz PC clock. The
 * datasheet leaves it undefined; any value works since nothing is timed. */
#define UART16550_DIVISOR_RESET 12

/* ---- State -------------------------------------------------------------- */

/* Everything is guarded by the lock the caller holds (see uart16550.h). */
struct Uart16550 {
    Chardev *chr; /* NULL: transmitted bytes are dropped */
    IrqLine irq;
    int irq_level; /* level last driven on @irq */

    uint8_t ier;
    uint8_t lcr;
    uint8_t mcr;
    uint8_t fcr; /* UART16550_FCR_KEEP bits of the last effective FCR write */
    uint8_t msr; /* lines in 7:4, sticky deltas in 3:0 */
    uint8_t scr;
    uint8_t lsr_errors; /* sticky UART16550_LSR_ERRORS bits, cleared by reading LSR */
    uint16_t divisor;

    uint8_t rbr; /* last byte read out of the receiver */
    uint8_t rx_fifo[UART16550_FIFO_SIZE];
    unsigned rx_head; /* index of the oldest byte */
    unsigned rx_count;

    /* The THRE interrupt condition: set when THR becomes empty with ETBEI set,
     * cleared by a THR write or by an IIR read that reports it. Transmission
     * is immediate, so THR itself is always empty (LSR.THRE = LSR.TEMT = 1). */
    bool thre_pending;
    bool tx_error_logged;
};

static bool uart16550_fifo_enabled(const Uart16550 *s)
{
    return (s->fcr & UART_FCR_ENABLE_FIFO) != 0;
}

static unsigned uart16550_rx_capacity(const Uart16550 *s)
{
    return uart16550_fifo_enabled(s) ? UART16550_FIFO_SIZE : 1;
}

static unsigned uart16550_rx_trigger(const Uart16550 *s)
{
    switch (s->fcr & UART_FCR_TRIGGER_MASK) {
    case UART_FCR_TRIGGER_1:
        return 1;
    case UART_FCR_TRIGGER_4:
        return 4;
    case UART_FCR_TRIGGER_8:
        return 8;
    default:
        return 14;
    }
}

/* ---- Derived state: the interrupt identification and the IRQ level ------ */

/* The highest-priority enabled pending interrupt, as IIR bits 3:0
 * (UART_IIR_NO_INT if none). Priorities per the 16550A datasheet, table 4. */
static uint8_t uart16550_pending_id(const Uart16550 *s)
{
    if ((s->ier & UART_IER_RLSI) && (s->lsr_errors & UART16550_LSR_ERRORS)) {
        return UART_IIR_RLSI;
    }
    if ((s->ier & UART_IER_RDI) && s->rx_count > 0) {
        /* Below the trigger level hardware reports a character timeout once
         * four character times pass without input. Nothing here is timed, so
         * the timeout is reported at once; drivers treat both the same. */
        if (uart16550_fifo_enabled(s) && s->rx_count < uart16550_rx_trigger(s)) {
            return UART_IIR_RX_TIMEOUT;
        }
        return UART_IIR_RDI;
    }
    if ((s->ier & UART_IER_THRI) && s->thre_pending) {
        return UART_IIR_THRI;
    }
    if ((s->ier & UART_IER_MSI) && (s->msr & UART_MSR_ANY_DELTA)) {
        return UART_IIR_MSI;
    }
    return UART_IIR_NO_INT;
}

/*
 * Recompute the IRQ level from register state; called after every register
 * access and every received byte. The level is high while an enabled condition
 * is pending. The line is only driven when the level changes.
 *
 * MCR.OUT2 is not consulted. On a PC, OUT2 enables the tri-state driver
 * between the UART and the PIC, but Linux's 8250 driver sets OUT2 whenever it
 * wants interrupts on a PC port, so gating would change nothing for it, while
 * small guests that only program IER would never see an interrupt. QEMU does
 * not gate on OUT2 either.
 */
static void uart16550_update_irq(Uart16550 *s)
{
    int level = uart16550_pending_id(s) != UART_IIR_NO_INT;

    if (level != s->irq_level) {
        s->irq_level = level;
        irq_set(&s->irq, level);
    }
}

/* ---- Receiver ----------------------------------------------------------- */

/* uart16550_can_receive() may have grown: let the backend hand over bytes
 * it holds back. It only schedules the delivery, which comes later on the
 * main loop, so this is safe under the device lock and on a vCPU thread. */
static void uart16550_rx_room(Uart16550 *s)
{
    chardev_accept_input(s->chr);
}

static void uart16550_rx_clear(Uart16550 *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
    uart16550_rx_room(s);
}

/* A byte arrives from the line (or from the transmitter in loopback). */
static void uart16550_rx_push(Uart16550 *s, uint8_t byte)
{
    if (s->rx_count >= uart16550_rx_capacity(s)) {
        s->lsr_errors |= UART_LSR_OE;
        if (!uart16550_fifo_enabled(s)) {
            /* 16450 mode: the new character overwrites the one in RBR. In FIFO
             * mode it is lost in the shift register and the FIFO is kept. */
            s->rx_fifo[s->rx_head] = byte;
        }
        return;
    }
    s->rx_fifo[(s->rx_head + s->rx_count) % UART16550_FIFO_SIZE] = byte;
    s->rx_count++;
}

static uint8_t uart16550_rx_pop(Uart16550 *s)
{
    if (s->rx_count > 0) {
        s->rbr = s->rx_fifo[s->rx_head];
        s->rx_head = (s->rx_head + 1) % UART16550_FIFO_SIZE;
        s->rx_count--;
        uart16550_rx_room(s);
    }
    return s->rbr;
}

/* ---- Modem lines -------------------------------------------------------- */

/* The modem inputs (MSR 7:4) as the receiver sees them now. In loopback the
 * outputs are wired back inside the chip: RTS->CTS, DTR->DSR, OUT1->RI,
 * OUT2->DCD (datasheet, MCR bit 4). */
static uint8_t uart16550_modem_lines(const Uart16550 *s)
{
    uint8_t lines = 0;

    if (!(s->mcr & UART_MCR_LOOP)) {
        return UART16550_MSR_LINES_IDLE;
    }
    if (s->mcr & UART_MCR_RTS) {
        lines |= UART_MSR_CTS;
    }
    if (s->mcr & UART_MCR_DTR) {
        lines |= UART_MSR_DSR;
    }
    if (s->mcr & UART_MCR_OUT1) {
        lines |= UART_MSR_RI;
    }
    if (s->mcr & UART_MCR_OUT2) {
        lines |= UART_MSR_DCD;
    }
    return lines;
}

/* Latch new modem inputs into MSR, setting the delta bits for what changed. */
static void uart16550_update_msr(Uart16550 *s)
{
    uint8_t old = s->msr & 0xf0;
    uint8_t lines = uart16550_modem_lines(s);
    uint8_t changed = old ^ lines;
    uint8_t delta = s->msr & UART_MSR_ANY_DELTA;

    if (changed & UART_MSR_CTS) {
        delta |= UART_MSR_DCTS;
    }
    if (changed & UART_MSR_DSR) {
        delta |= UART_MSR_DDSR;
    }
    if (changed & UART_MSR_DCD) {
        delta |= UART_MSR_DDCD;
    }
    if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI)) {
        delta |= UART_MSR_TERI; /* trailing edge only */
    }
    s->msr = lines | delta;
}

/* ---- Transmitter -------------------------------------------------------- */

static void uart16550_transmit(Uart16550 *s, uint8_t byte)
{
    int ret;

    if (s->mcr & UART_MCR_LOOP) {
        /* The serial output is held marking; the byte goes to the receiver. */
        uart16550_rx_push(s, byte);
        return;
    }
    if (s->chr == NULL) {
        return;
    }
    /* Bits above the word length are sent too: guests that never program
     * LCR (reset: 5 bits) still expect their text to come out intact. */
    ret = chardev_write_all(s->chr, &byte, 1);
    if (ret < 0 && !s->tx_error_logged) {
        s->tx_error_logged = true;
        g_warning("serial %s: output dropped: %s (further errors not reported)",
                  s->chr->label ? s->chr->label : "?", g_strerror(-ret));
    }
}

/* ---- Register access ---------------------------------------------------- */

static uint8_t uart16550_read_iir(Uart16550 *s)
{
    uint8_t id = uart16550_pending_id(s);

    if (id == UART_IIR_THRI) {
        /* Reading IIR while it reports THRE acknowledges that interrupt. */
        s->thre_pending = false;
    }
    return id | (uart16550_fifo_enabled(s) ? UART16550_IIR_FIFO_ENABLED : 0);
}

static uint8_t uart16550_read_lsr(Uart16550 *s)
{
    uint8_t lsr = UART_LSR_THRE | UART_LSR_TEMT | s->lsr_errors;

    if (s->rx_count > 0) {
        lsr |= UART_LSR_DR;
    }
    s->lsr_errors = 0;
    return lsr;
}

static uint8_t uart16550_read_msr(Uart16550 *s)
{
    uint8_t msr = s->msr;

    s->msr &= (uint8_t)~UART_MSR_ANY_DELTA;
    return msr;
}

/* Read register @offset. See uart16550.h. */
uint64_t uart16550_read(Uart16550 *s, unsigned offset)
{
    bool dlab = (s->lcr & UART_LCR_DLAB) != 0;
    uint8_t val;

    switch (offset) {
    case UART_RX:
        val = dlab ? (uint8_t)s->divisor : uart16550_rx_pop(s);
        break;
    case UART_IER:
        val = dlab ? (uint8_t)(s->divisor >> 8) : s->ier;
        break;
    case UART_IIR:
        val = uart16550_read_iir(s);
        break;
    case UART_LCR:
        val = s->lcr;
        break;
    case UART_MCR:
        val = s->mcr;
        break;
    case UART_LSR:
        val = uart16550_read_lsr(s);
        break;
    case UART_MSR:
        val = uart16550_read_msr(s);
        break;
    case UART_SCR:
        val = s->scr;
        break;
    default:
        return 0xff;
    }
    uart16550_update_irq(s);
    return val;
}

static void uart16550_write_thr(Uart16550 *s, uint8_t value)
{
    s->thre_pending = false;
    uart16550_update_irq(s);
    uart16550_transmit(s, value);
    /* THR empties at once. Dropping the level above and raising it here gives
     * an edge-triggered PIC/IOAPIC a fresh edge for every byte written, so a
     * driver that refills THR from its handler is interrupted again. */
    if (s->ier & UART_IER_THRI) {
        s->thre_pending = true;
    }
}

static void uart16550_write_ier(Uart16550 *s, uint8_t value)
{
    uint8_t old = s->ier;

    s->ier = value & UART16550_IER_MASK;
    if ((s->ier & UART_IER_THRI) && !(old & UART_IER_THRI)) {
        /* Enabling ETBEI with THR empty raises THRE at once; Linux's 8250
         * driver starts transmission this way. */
        s->thre_pending = true;
    } else if (!(s->ier & UART_IER_THRI)) {
        s->thre_pending = false;
    }
}

static void uart16550_write_fcr(Uart16550 *s, uint8_t value)
{
    bool was_enabled = uart16550_fifo_enabled(s);

    if (!(value & UART_FCR_ENABLE_FIFO)) {
        /* FCR0 = 0 turns the FIFOs off; the other bits are not programmed
         * unless FCR0 is set in the same write. */
        s->fcr = 0;
        if (was_enabled) {
            uart16550_rx_clear(s);
        }
        return;
    }
    s->fcr = value & UART16550_FCR_KEEP;
    if (!was_enabled || (value & UART_FCR_CLEAR_RCVR)) {
        /* Changing FCR0 resets both FIFOs, as does the self-clearing RCVR bit.
         * The transmit FIFO is always empty here (UART_FCR_CLEAR_XMIT). */
        uart16550_rx_clear(s);
    }
}

static void uart16550_write_mcr(Uart16550 *s, uint8_t value)
{
    /* Bits 7:5 do not exist on the 16550A. */
    uint8_t old = s->mcr;

    s->mcr = value & (UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_OUT1 | UART_MCR_RTS | UART_MCR_DTR);
    uart16550_update_msr(s);
    if ((old & UART_MCR_LOOP) && !(s->mcr & UART_MCR_LOOP)) {
        uart16550_rx_room(s); /* the receiver is connected to the line again */
    }
}

/* Write @value to register @offset. See uart16550.h. */
void uart16550_write(Uart16550 *s, unsigned offset, uint8_t value)
{
    bool dlab = (s->lcr & UART_LCR_DLAB) != 0;

    switch (offset) {
    case UART_TX:
        if (dlab) {
            s->divisor = (uint16_t)((s->divisor & 0xff00) | value);
        } else {
            uart16550_write_thr(s, value);
        }
        break;
    case UART_IER:
        if (dlab) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | (value << 8));
        } else {
            uart16550_write_ier(s, value);
        }
        break;
    case UART_FCR:
        uart16550_write_fcr(s, value);
        break;
    case UART_LCR:
        s->lcr = value;
        break;
    case UART_MCR:
        uart16550_write_mcr(s, value);
        break;
    case UART_LSR:
    case UART_MSR:
        /* Factory test only on real parts; ignored, as most models do. */
        break;
    case UART_SCR:
        s->scr = value;
        break;
    default:
        return;
    }
    uart16550_update_irq(s);
}

/* ---- Backend callbacks -------------------------------------------------- */

/* Free room for input. See uart16550.h. */
size_t uart16550_can_receive(void *opaque)
{
    Uart16550 *s = opaque;

    if (s->mcr & UART_MCR_LOOP) {
        return 0;
    }
    return uart16550_rx_capacity(s) - s->rx_count;
}

/* Input from the line. See uart16550.h. */
void uart16550_receive(void *opaque, const uint8_t *buf, size_t len)
{
    Uart16550 *s = opaque;

    for (size_t i = 0; i < len; i++) {
        uart16550_rx_push(s, buf[i]);
        uart16550_update_irq(s);
    }
}

/* ---- Life cycle of the core --------------------------------------------- */

/* Power-on state. See uart16550.h. */
void uart16550_reset(Uart16550 *s)
{
    s->ier = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->fcr = 0;
    s->scr = 0;
    s->lsr_errors = 0;
    s->divisor = UART16550_DIVISOR_RESET;
    s->rbr = 0;
    uart16550_rx_clear(s);
    s->thre_pending = false;
    s->msr = UART16550_MSR_LINES_IDLE;
    s->irq_level = 0;
    irq_set(&s->irq, 0);
}

/* Create a core. See uart16550.h. */
Uart16550 *uart16550_new(Chardev *chr, IrqLine irq)
{
    Uart16550 *s = g_new0(Uart16550, 1);

    s->chr = chr;
    s->irq = irq;
    uart16550_reset(s);
    if (chr != NULL) {
        chardev_set_handlers(chr, uart16550_can_receive, uart16550_receive, s);
    }
    return s;
}

/* Free a core. See uart16550.h. */
void uart16550_free(Uart16550 *s)
{
    if (s == NULL) {
        return;
    }
    if (s->chr != NULL && s->chr->frontend == s) {
        chardev_set_handlers(s->chr, NULL, NULL, NULL);
    }
    if (s->irq_level) {
        irq_set(&s->irq, 0);
    }
    g_free(s);
}

/* ---- The "isa-serial" device -------------------------------------------- */

typedef struct UartDevice {
    Device parent; /* first: the framework allocates instance_size and casts */
    Uart16550 *core;
    Chardev *chr;
    MemoryRegion region;
} UartDevice;

static uint64_t uart_dev_read(void *opaque, uint64_t offset, unsigned size)
{
    UartDevice *d = opaque;

    return uart16550_read(d->core, (unsigned)offset);
}

static void uart_dev_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    UartDevice *d = opaque;

    uart16550_write(d->core, (unsigned)offset, (uint8_t)value);
}

static const MemoryRegionOps uart_dev_ops = {
    .read = uart_dev_read,
    .write = uart_dev_write,
    .min_access_size = 1,
    .max_access_size = 1,
};

/*
 * Input arrives on the main loop thread with the BQL held, but with lock=device
 * vCPUs reach the core under the device mutex only. Taking the device mutex as
 * well (BQL first, device mutex inside, the order address_space_rw() implies)
 * serialises input with register access under either policy, including while
 * the policy is being switched. Under the BQL policy the mutex is uncontended.
 */
static size_t uart_dev_can_receive(void *opaque)
{
    UartDevice *d = opaque;
    size_t room;

    klock_lock(&d->parent.lock);
    room = uart16550_can_receive(d->core);
    klock_unlock(&d->parent.lock);
    return room;
}

static void uart_dev_receive(void *opaque, const uint8_t *buf, size_t len)
{
    UartDevice *d = opaque;

    klock_lock(&d->parent.lock);
    uart16550_receive(d->core, buf, len);
    klock_unlock(&d->parent.lock);
}

static bool uart_dev_props(Device *dev, uint64_t *iobase, uint64_t *irq, uint64_t *index,
                           GError **errp)
{
    if (!device_prop_u64(dev, "iobase", 0x3f8, iobase, errp) ||
        !device_prop_u64(dev, "irq", 4, irq, errp) ||
        !device_prop_u64(dev, "index", 0, index, errp)) {
        return false;
    }
    if (*iobase > 0x10000 - UART16550_REGS) {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "isa-serial: iobase=0x%" G_GINT64_MODIFIER "x is outside the I/O space",
                    *iobase);
        return false;
    }
    if (*irq > 15) {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "isa-serial: irq=%" G_GUINT64_FORMAT " is not an ISA IRQ (0-15)", *irq);
        return false;
    }
    if (*index > G_MAXINT) {
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "isa-serial: index=%" G_GUINT64_FORMAT " is out of range", *index);
        return false;
    }
    return true;
}

/* Realize: core, IRQ, backend, the 8-byte PIO window. Main thread, BQL held. */
static bool uart_dev_realize(Device *dev, Machine *m, GError **errp)
{
    UartDevice *d = (UartDevice *)dev;
    uint64_t iobase, irq, index;

    if (!uart_dev_props(dev, &iobase, &irq, &index, errp)) {
        return false;
    }
    if (dev->policy == LOCK_POLICY_NONE) {
        /* The core keeps no lock of its own (see uart16550.h). */
        g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "isa-serial: lock=none is not supported (use bql or device)");
        return false;
    }
    d->chr = machine_serial(m, (int)index);
    d->core = uart16550_new(d->chr, machine_isa_irq(m, (int)irq));
    if (d->chr != NULL) {
        chardev_set_handlers(d->chr, uart_dev_can_receive, uart_dev_receive, d);
    }
    if (!device_map_region(dev, machine_pio(m), &d->region, "serial", UART16550_REGS, &uart_dev_ops,
                           d, iobase, errp)) {
        goto free_core;
    }
    return true;

free_core:
    if (d->chr != NULL) {
        chardev_set_handlers(d->chr, NULL, NULL, NULL);
    }
    uart16550_free(d->core);
    d->core = NULL;
    return false;
}

static void uart_dev_reset(Device *dev)
{
    UartDevice *d = (UartDevice *)dev;

    if (d->core != NULL) {
        uart16550_reset(d->core);
    }
}

/* The framework has unmapped the region, so no vCPU can reach the core. */
static void uart_dev_unrealize(Device *dev)
{
    UartDevice *d = (UartDevice *)dev;

    if (d->chr != NULL && d->chr->frontend == d) {
        chardev_set_handlers(d->chr, NULL, NULL, NULL);
    }
    uart16550_free(d->core);
    d->core = NULL;
}

static const char *const uart_dev_props_list[] = {"iobase", "irq", "index", "lock", NULL};

const DeviceClass uart16550_device_class = {
    .name = "isa-serial",
    .desc = "16550A UART on the ISA I/O bus",
    .props_help = "iobase=PORT,irq=N,index=N,lock=bql|device",
    .props = uart_dev_props_list,
    .instance_size = sizeof(UartDevice),
    .user_creatable = true,
    .realize = uart_dev_realize,
    .reset = uart_dev_reset,
    .unrealize = uart_dev_unrealize,
};
