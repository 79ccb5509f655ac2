/* The i8042 keyboard controller with a PS/2 keyboard and mouse that never type or move. */
#include "kvmloop/i8042.h"

#include <string.h>

#include "kvmloop/device.h"
#include "kvmloop/error.h"
#include "kvmloop/klock.h"
#include "kvmloop/machine.h"
#include "kvmloop/memory.h"

/* ---- Constants ---------------------------------------------------------- */

#define I8042_IOBASE    0x60
#define I8042_KBD_IRQ   1
#define I8042_AUX_IRQ   12
#define I8042_RAM_SIZE  32 /* internal RAM; byte 0 is the command byte */
#define I8042_QUEUE_LEN 16 /* bytes waiting behind the output buffer */

/* Power-on command byte: what a PC's firmware leaves for the OS. */
#define I8042_CTR_INIT (I8042_CTR_XLATE | I8042_CTR_AUXDIS | I8042_CTR_SYSFLAG | I8042_CTR_KBDINT)
/* Power-on output port: not in reset, A20 on, keyboard clock and data lines
 * high; bits 4 and 5 read back the two interrupt outputs. */
#define I8042_OUT_INIT     0xcf
#define I8042_OUT_KBD_IRQ  0x10
#define I8042_OUT_AUX_IRQ  0x20
#define I8042_OUT_IRQ_BITS (I8042_OUT_KBD_IRQ | I8042_OUT_AUX_IRQ)
/* Input port: bit 7 high means the keyboard is not inhibited. */
#define I8042_IN_PORT 0x80

/* Controller commands (IBM PC/AT technical reference, "Keyboard controller"). */
#define I8042_CMD_READ_RAM     0x20 /* 0x20-0x3f: read RAM byte (0x20: command byte) */
#define I8042_CMD_WRITE_RAM    0x60 /* 0x60-0x7f: write RAM byte (0x60: command byte) */
#define I8042_CMD_AUX_DISABLE  0xa7
#define I8042_CMD_AUX_ENABLE   0xa8
#define I8042_CMD_AUX_TEST     0xa9
#define I8042_CMD_SELF_TEST    0xaa
#define I8042_CMD_KBD_TEST     0xab
#define I8042_CMD_KBD_DISABLE  0xad
#define I8042_CMD_KBD_ENABLE   0xae
#define I8042_CMD_READ_INPUT   0xc0
#define I8042_CMD_READ_OUTPUT  0xd0
#define I8042_CMD_WRITE_OUTPUT 0xd1
#define I8042_CMD_KBD_LOOP     0xd2 /* next data byte comes back as keyboard data */
#define I8042_CMD_AUX_LOOP     0xd3 /* next data byte comes back as aux data */
#define I8042_CMD_AUX_SEND     0xd4 /* next data byte goes to the aux device */
#define I8042_CMD_PULSE        0xf0 /* 0xf0-0xff: pulse the output lines whose bit is clear */
#define I8042_SELF_TEST_OK     0x55
#define I8042_PORT_TEST_OK     0x00

/* Replies of PS/2 devices. */
#define PS2_ACK    0xfa
#define PS2_RESEND 0xfe
#define PS2_BAT_OK 0xaa

/* PS/2 keyboard commands (IBM "Keyboard and auxiliary device controller"). */
#define PS2_KBD_CMD_SET_LEDS   0xed
#define PS2_KBD_CMD_ECHO       0xee
#define PS2_KBD_CMD_SCAN_SET   0xf0
#define PS2_KBD_CMD_GET_ID     0xf2
#define PS2_KBD_CMD_TYPEMATIC  0xf3
#define PS2_KBD_CMD_ENABLE     0xf4
#define PS2_KBD_CMD_DISABLE    0xf5
#define PS2_KBD_CMD_DEFAULTS   0xf6
#define PS2_KBD_CMD_SET3_FIRST 0xf7 /* 0xf7-0xfd: scan code set 3 key types */
#define PS2_KBD_CMD_SET3_LAST  0xfd
#define PS2_KBD_CMD_RESEND     0xfe
#define PS2_KBD_CMD_RESET      0xff
#define PS2_KBD_FIRST_CMD      0xed /* bytes below are arguments or unknown */
#define PS2_KBD_ID0            0xab /* MF2 keyboard */
#define PS2_KBD_ID1            0x83
#define PS2_KBD_TYPEMATIC_INIT 0x2b /* 10.9 characters/s after 500 ms */
#define PS2_KBD_SCAN_SET_INIT  2

/* PS/2 mouse commands. */
#define PS2_MOUSE_CMD_SCALE11    0xe6
#define PS2_MOUSE_CMD_SCALE21    0xe7
#define PS2_MOUSE_CMD_RESOLUTION 0xe8
#define PS2_MOUSE_CMD_STATUS     0xe9
#define PS2_MOUSE_CMD_STREAM     0xea
#define PS2_MOUSE_CMD_READ_DATA  0xeb
#define PS2_MOUSE_CMD_RESET_WRAP 0xec
#define PS2_MOUSE_CMD_WRAP       0xee
#define PS2_MOUSE_CMD_REMOTE     0xf0
#define PS2_MOUSE_CMD_GET_ID     0xf2
#define PS2_MOUSE_CMD_RATE       0xf3
#define PS2_MOUSE_CMD_ENABLE     0xf4
#define PS2_MOUSE_CMD_DISABLE    0xf5
#define PS2_MOUSE_CMD_DEFAULTS   0xf6
#define PS2_MOUSE_CMD_RESEND     0xfe
#define PS2_MOUSE_CMD_RESET      0xff
#define PS2_MOUSE_FIRST_CMD      0xe6
#define PS2_MOUSE_ID             0x00 /* standard PS/2 mouse, no wheel */
#define PS2_MOUSE_RATE_INIT      100
#define PS2_MOUSE_RES_INIT       2    /* 4 counts/mm */
#define PS2_MOUSE_PACKET0        0x08 /* first packet byte: bit 3 always set */
#define PS2_MOUSE_STATUS_REMOTE  0x40
#define PS2_MOUSE_STATUS_ENABLED 0x20
#define PS2_MOUSE_STATUS_SCALE21 0x10

/* ---- State -------------------------------------------------------------- */

/* Flags of a queued byte. */
enum {
    I8042_BYTE_AUX = 1 << 0,    /* from the aux port: AUXDATA, IRQ 12 */
    I8042_BYTE_DEVICE = 1 << 1, /* sent by a device: held while its port is disabled */
};

typedef struct I8042Byte {
    uint8_t data;
    uint8_t flags;
} I8042Byte;

typedef struct Ps2Kbd {
    bool enabled;
    uint8_t pending; /* command waiting for its argument, 0 if none */
    uint8_t scan_set;
    uint8_t leds;
    uint8_t typematic;
    uint8_t last_sent; /* for resend */
} Ps2Kbd;

typedef struct Ps2Mouse {
    bool enabled;
    bool remote;
    bool wrap;
    bool scale21;
    uint8_t pending; /* command waiting for its argument, 0 if none */
    uint8_t rate;
    uint8_t resolution;
    uint8_t last_sent; /* for resend */
} Ps2Mouse;

/* Everything is guarded by the lock the caller holds (see i8042.h). */
struct I8042 {
    IrqLine kbd_irq;
    IrqLine aux_irq;
    int kbd_level; /* levels last driven */
    int aux_level;
    i8042_reset_fn reset_fn;
    void *reset_opaque;

    uint8_t ram[I8042_RAM_SIZE];
    uint8_t outport;
    uint8_t pending; /* controller command waiting for a data byte, 0 if none */
    bool last_was_cmd;

    /* The output buffer the guest reads, and the bytes queued behind it. */
    bool obf;
    uint8_t ob_data; /* stays readable after it is taken */
    uint8_t ob_flags;
    I8042Byte queue[I8042_QUEUE_LEN];
    unsigned queue_len;

    Ps2Kbd kbd;
    Ps2Mouse mouse;
};

static uint8_t i8042_ctr(const I8042 *s)
{
    return s->ram[0];
}

/* ---- Derived state: the output buffer and the IRQ levels ---------------- */

/* IRQ 1 is high while the output buffer holds a keyboard byte and the
 * command byte enables the keyboard interrupt; IRQ 12 likewise for aux. Each
 * line is driven only when its level changes. */
static void i8042_update_irq(I8042 *s)
{
    bool aux = (s->ob_flags & I8042_BYTE_AUX) != 0;
    int kbd_level = s->obf && !aux && (i8042_ctr(s) & I8042_CTR_KBDINT);
    int aux_level = s->obf && aux && (i8042_ctr(s) & I8042_CTR_AUXINT);

    if (kbd_level != s->kbd_level) {
        s->kbd_level = kbd_level;
        irq_set(&s->kbd_irq, kbd_level);
    }
    if (aux_level != s->aux_level) {
        s->aux_level = aux_level;
        irq_set(&s->aux_irq, aux_level);
    }
}

/* A device byte waits while the command byte disables its port (the
 * controller holds that device's clock line low); controller bytes never do. */
static bool i8042_deliverable(const I8042 *s, const I8042Byte *b)
{
    if (!(b->flags & I8042_BYTE_DEVICE)) {
        return true;
    }
    if (b->flags & I8042_BYTE_AUX) {
        return !(i8042_ctr(s) & I8042_CTR_AUXDIS);
    }
    return !(i8042_ctr(s) & I8042_CTR_KBDDIS);
}

/* Move the oldest deliverable byte into an empty output buffer. */
static void i8042_refill(I8042 *s)
{
    if (s->obf) {
        return;
    }
    for (unsigned i = 0; i < s->queue_len; i++) {
        if (i8042_deliverable(s, &s->queue[i])) {
            s->ob_data = s->queue[i].data;
            s->ob_flags = s->queue[i].flags;
            s->obf = true;
            s->queue_len--;
            memmove(&s->queue[i], &s->queue[i + 1], (s->queue_len - i) * sizeof(s->queue[0]));
            return;
        }
    }
}

/* Queue a byte for the guest. A full queue drops it: a guest that stops
 * reading loses output as it would on hardware, where a device cannot send. */
static void i8042_queue(I8042 *s, uint8_t data, uint8_t flags)
{
    if (s->queue_len == I8042_QUEUE_LEN) {
        g_debug("i8042: output queue full, 0x%02x dropped", data);
        return;
    }
    s->queue[s->queue_len++] = (I8042Byte){data, flags};
    i8042_refill(s);
}

/* ---- The PS/2 keyboard -------------------------------------------------- */

static void ps2_kbd_send(I8042 *s, uint8_t data)
{
    s->kbd.last_sent = data;
    i8042_queue(s, data, I8042_BYTE_DEVICE);
}

static void ps2_kbd_defaults(Ps2Kbd *k)
{
    k->scan_set = PS2_KBD_SCAN_SET_INIT;
    k->typematic = PS2_KBD_TYPEMATIC_INIT;
    k->leds = 0;
    k->pending = 0;
}

/* The argument of SET_LEDS, TYPEMATIC or SCAN_SET. */
static void ps2_kbd_argument(I8042 *s, uint8_t cmd, uint8_t arg)
{
    Ps2Kbd *k = &s->kbd;

    switch (cmd) {
    case PS2_KBD_CMD_SET_LEDS:
        k->leds = arg & 0x07;
        break;
    case PS2_KBD_CMD_TYPEMATIC:
        k->typematic = arg & 0x7f;
        break;
    case PS2_KBD_CMD_SCAN_SET:
        if (arg > 3) {
            ps2_kbd_send(s, PS2_RESEND);
            return;
        }
        ps2_kbd_send(s, PS2_ACK);
        if (arg == 0) {
            ps2_kbd_send(s, k->scan_set); /* untranslated, as Linux expects */
        } else {
            k->scan_set = arg;
        }
        return;
    }
    ps2_kbd_send(s, PS2_ACK);
}

/* A byte from the host to the keyboard. */
static void ps2_kbd_write(I8042 *s, uint8_t v)
{
    Ps2Kbd *k = &s->kbd;
    uint8_t cmd = k->pending;

    k->pending = 0;
    /* A command where an argument was due cancels the old command. */
    if (cmd != 0 && v < PS2_KBD_FIRST_CMD) {
        ps2_kbd_argument(s, cmd, v);
        return;
    }
    switch (v) {
    case PS2_KBD_CMD_SET_LEDS:
    case PS2_KBD_CMD_TYPEMATIC:
    case PS2_KBD_CMD_SCAN_SET:
        k->pending = v;
        ps2_kbd_send(s, PS2_ACK);
        break;
    case PS2_KBD_CMD_ECHO:
        ps2_kbd_send(s, PS2_KBD_CMD_ECHO);
        break;
    case PS2_KBD_CMD_GET_ID:
        ps2_kbd_send(s, PS2_ACK);
        ps2_kbd_send(s, PS2_KBD_ID0);
        ps2_kbd_send(s, PS2_KBD_ID1);
        break;
    case PS2_KBD_CMD_ENABLE:
        k->enabled = true;
        ps2_kbd_send(s, PS2_ACK);
        break;
    case PS2_KBD_CMD_DISABLE:
        ps2_kbd_defaults(k);
        k->enabled = false;
        ps2_kbd_send(s, PS2_ACK);
        break;
    case PS2_KBD_CMD_DEFAULTS:
        ps2_kbd_defaults(k);
        ps2_kbd_send(s, PS2_ACK);
        break;
    case PS2_KBD_CMD_RESEND:
        ps2_kbd_send(s, k->last_sent);
        break;
    case PS2_KBD_CMD_RESET:
        ps2_kbd_defaults(k);
        k->enabled = true;
        ps2_kbd_send(s, PS2_ACK);
        ps2_kbd_send(s, PS2_BAT_OK);
        break;
    default:
        if (v >= PS2_KBD_CMD_SET3_FIRST && v <= PS2_KBD_CMD_SET3_LAST) {
            ps2_kbd_send(s, PS2_ACK); /* key types: no keys, nothing to do */
        } else {
            ps2_kbd_send(s, PS2_RESEND);
        }
        break;
    }
}

/* ---- The PS/2 mouse ----------------------------------------------------- */

static void ps2_mouse_send(I8042 *s, uint8_t data)
{
    s->mouse.last_sent = data;
    i8042_queue(s, data, I8042_BYTE_AUX | I8042_BYTE_DEVICE);
}

static void ps2_mouse_defaults(Ps2Mouse *m)
{
    m->enabled = false;
    m->remote = false;
    m->scale21 = false;
    m->rate = PS2_MOUSE_RATE_INIT;
    m->resolution = PS2_MOUSE_RES_INIT;
    m->pending = 0;
}

static void ps2_mouse_reset(I8042 *s)
{
    ps2_mouse_defaults(&s->mouse);
    s->mouse.wrap = false;
    ps2_mouse_send(s, PS2_ACK);
    ps2_mouse_send(s, PS2_BAT_OK);
    ps2_mouse_send(s, PS2_MOUSE_ID);
}

static void ps2_mouse_status(I8042 *s)
{
    Ps2Mouse *m = &s->mouse;
    uint8_t b0 = (m->remote ? PS2_MOUSE_STATUS_REMOTE : 0) |
                 (m->enabled ? PS2_MOUSE_STATUS_ENABLED : 0) |
                 (m->scale21 ? PS2_MOUSE_STATUS_SCALE21 : 0);

    ps2_mouse_send(s, PS2_ACK);
    ps2_mouse_send(s, b0); /* no buttons pressed */
    ps2_mouse_send(s, m->resolution);
    ps2_mouse_send(s, m->rate);
}

/* Wrap mode echoes every byte but RESET_WRAP and RESET. */
static bool ps2_mouse_wrap(I8042 *s, uint8_t v)
{
    if (!s->mouse.wrap || v == PS2_MOUSE_CMD_RESET_WRAP || v == PS2_MOUSE_CMD_RESET) {
        return false;
    }
    ps2_mouse_send(s, v);
    return true;
}

/* A byte from the host to the mouse. */
static void ps2_mouse_write(I8042 *s, uint8_t v)
{
    Ps2Mouse *m = &s->mouse;
    uint8_t cmd = m->pending;

    if (ps2_mouse_wrap(s, v)) {
        return;
    }
    m->pending = 0;
    if (cmd != 0 && v < PS2_MOUSE_FIRST_CMD) {
        if (cmd == PS2_MOUSE_CMD_RATE) {
            m->rate = v;
        } else {
            m->resolution = v & 0x03;
        }
        ps2_mouse_send(s, PS2_ACK);
        return;
    }
    switch (v) {
    case PS2_MOUSE_CMD_SCALE11:
    case PS2_MOUSE_CMD_SCALE21:
        m->scale21 = v == PS2_MOUSE_CMD_SCALE21;
        ps2_mouse_send(s, PS2_ACK);
        break;
    case PS2_MOUSE_CMD_RESOLUTION:
    case PS2_MOUSE_CMD_RATE:
        m->pending = v;
        ps2_mouse_send(s, PS2_ACK);
        break;
    case PS2_MOUSE_CMD_STATUS:
        ps2_mouse_status(s);
        break;
    case PS2_MOUSE_CMD_STREAM:
    case PS2_MOUSE_CMD_REMOTE:
        m->remote = v == PS2_MOUSE_CMD_REMOTE;
        ps2_mouse_send(s, PS2_ACK);
        break;
    case PS2_MOUSE_CMD_READ_DATA:
        ps2_mouse_send(s, PS2_ACK);
        ps2_mouse_send(s, PS2_MOUSE_PACKET0); /* no movement, no buttons */
        ps2_mouse_send(s, 0);
        ps2_mouse_send(s, 0);
        break;
    case PS2_MOUSE_CMD_RESET_WRAP:
    case PS2_MOUSE_CMD_WRAP:
        m->wrap = v == PS2_MOUSE_CMD_WRAP;
        ps2_mouse_send(s, PS2_ACK);
        break;
    case PS2_MOUSE_CMD_GET_ID:
        ps2_mouse_send(s, PS2_ACK);
        ps2_mouse_send(s, PS2_MOUSE_ID);
        break;
    case PS2_MOUSE_CMD_ENABLE:
    case PS2_MOUSE_CMD_DISABLE:
        m->enabled = v == PS2_MOUSE_CMD_ENABLE;
        ps2_mouse_send(s, PS2_ACK);
        break;
    case PS2_MOUSE_CMD_DEFAULTS:
        ps2_mouse_defaults(m);
        ps2_mouse_send(s, PS2_ACK);
        break;
    case PS2_MOUSE_CMD_RESEND:
        ps2_mouse_send(s, m->last_sent);
        break;
    case PS2_MOUSE_CMD_RESET:
        ps2_mouse_reset(s);
        break;
    default:
        ps2_mouse_send(s, PS2_RESEND);
        break;
    }
}

/* ---- The controller ----------------------------------------------------- */

static void i8042_request_reset(I8042 *s)
{
    if (s->reset_fn != NULL) {
        s->reset_fn(s->reset_opaque);
    }
}

/* The output port as read back: bits 4 and 5 are the interrupt outputs. */
static uint8_t i8042_read_outport(const I8042 *s)
{
    return (uint8_t)((s->outport & ~I8042_OUT_IRQ_BITS) | (s->kbd_level ? I8042_OUT_KBD_IRQ : 0) |
                     (s->aux_level ? I8042_OUT_AUX_IRQ : 0));
}

static void i8042_write_outport(I8042 *s, uint8_t v)
{
    /* A20 is always enabled under KVM; the bit is only remembered. */
    s->outport = v;
    if (!(v & I8042_OUT_RESET)) {
        i8042_request_reset(s);
    }
}

/* Respond from the controller itself: always delivered, as keyboard data. */
static void i8042_reply(I8042 *s, uint8_t v)
{
    i8042_queue(s, v, 0);
}

static void i8042_command(I8042 *s, uint8_t cmd)
{
    s->pending = 0;
    if (cmd >= I8042_CMD_READ_RAM && cmd < I8042_CMD_READ_RAM + I8042_RAM_SIZE) {
        i8042_reply(s, s->ram[cmd - I8042_CMD_READ_RAM]);
        return;
    }
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + I8042_RAM_SIZE) {
        s->pending = cmd;
        return;
    }
    if (cmd >= I8042_CMD_PULSE) {
        /* Bit 0 of the low nibble selects the reset line; 0 pulses it. */
        if (!(cmd & I8042_OUT_RESET)) {
            i8042_request_reset(s);
        }
        return;
    }
    switch (cmd) {
    case I8042_CMD_AUX_DISABLE:
        s->ram[0] |= I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_ENABLE:
        s->ram[0] &= ~I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_TEST:
    case I8042_CMD_KBD_TEST:
        i8042_reply(s, I8042_PORT_TEST_OK);
        break;
    case I8042_CMD_SELF_TEST:
        s->ram[0] |= I8042_CTR_SYSFLAG; /* a passed self-test sets the system flag */
        i8042_reply(s, I8042_SELF_TEST_OK);
        break;
    case I8042_CMD_KBD_DISABLE:
        s->ram[0] |= I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_KBD_ENABLE:
        s->ram[0] &= ~I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_READ_INPUT:
        i8042_reply(s, I8042_IN_PORT);
        break;
    case I8042_CMD_READ_OUTPUT:
        i8042_reply(s, i8042_read_outport(s));
        break;
    case I8042_CMD_WRITE_OUTPUT:
    case I8042_CMD_KBD_LOOP:
    case I8042_CMD_AUX_LOOP:
    case I8042_CMD_AUX_SEND:
        s->pending = cmd;
        break;
    default:
        g_debug("i8042: controller command 0x%02x ignored", cmd);
        break;
    }
}

static void i8042_data(I8042 *s, uint8_t v)
{
    uint8_t cmd = s->pending;

    s->pending = 0;
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + I8042_RAM_SIZE) {
        s->ram[cmd - I8042_CMD_WRITE_RAM] = v;
        return;
    }
    switch (cmd) {
    case I8042_CMD_WRITE_OUTPUT:
        i8042_write_outport(s, v);
        break;
    case I8042_CMD_KBD_LOOP:
        i8042_queue(s, v, 0);
        break;
    case I8042_CMD_AUX_LOOP:
        i8042_queue(s, v, I8042_BYTE_AUX);
        break;
    case I8042_CMD_AUX_SEND:
        /* Sending to a device enables its interface, as on real controllers. */
        s->ram[0] &= ~I8042_CTR_AUXDIS;
        ps2_mouse_write(s, v);
        break;
    default:
        s->ram[0] &= ~I8042_CTR_KBDDIS;
        ps2_kbd_write(s, v);
        break;
    }
}

/* ---- Register access ---------------------------------------------------- */

static uint8_t i8042_read_status(const I8042 *s)
{
    uint8_t st = I8042_STR_KEYLOCK;

    if (s->obf) {
        st |= I8042_STR_OBF;
        if (s->ob_flags & I8042_BYTE_AUX) {
            st |= I8042_STR_AUXDATA;
        }
    }
    if (i8042_ctr(s) & I8042_CTR_SYSFLAG) {
        st |= I8042_STR_SYSFLAG;
    }
    if (s->last_was_cmd) {
        st |= I8042_STR_CMDDAT;
    }
    return st;
}

static uint8_t i8042_read_data(I8042 *s)
{
    uint8_t val = s->ob_data;

    if (s->obf) {
        /* Lower the line before the next byte raises it: edge-triggered
         * interrupt controllers need an edge per byte. */
        s->obf = false;
        i8042_update_irq(s);
        i8042_refill(s);
    }
    return val;
}

/* Read a port. See i8042.h. */
uint8_t i8042_read(I8042 *s, unsigned offset)
{
    uint8_t val;

    switch (offset) {
    case I8042_PORT_DATA:
        val = i8042_read_data(s);
        break;
    case I8042_PORT_COMMAND:
        return i8042_read_status(s);
    default:
        return 0xff;
    }
    i8042_update_irq(s);
    return val;
}

/* Write a port. See i8042.h. */
void i8042_write(I8042 *s, unsigned offset, uint8_t value)
{
    switch (offset) {
    case I8042_PORT_DATA:
        s->last_was_cmd = false;
        i8042_data(s, value);
        break;
    case I8042_PORT_COMMAND:
        s->last_was_cmd = true;
        i8042_command(s, value);
        break;
    default:
        return;
    }
    /* The command byte may have enabled a port or an interrupt. */
    i8042_refill(s);
    i8042_update_irq(s);
}

/* ---- Life cycle of the core --------------------------------------------- */

/* Power-on state. See i8042.h. */
void i8042_reset(I8042 *s)
{
    memset(s->ram, 0, sizeof(s->ram));
    s->ram[0] = I8042_CTR_INIT;
    s->outport = I8042_OUT_INIT;
    s->pending = 0;
    s->last_was_cmd = false;
    s->obf = false;
    s->ob_data = 0;
    s->ob_flags = 0;
    s->queue_len = 0;
    memset(&s->kbd, 0, sizeof(s->kbd));
    ps2_kbd_defaults(&s->kbd);
    s->kbd.enabled = true;
    memset(&s->mouse, 0, sizeof(s->mouse));
    ps2_mouse_defaults(&s->mouse);
    i8042_update_irq(s);
}

/* Create a core. See i8042.h. */
I8042 *i8042_new(IrqLine kbd_irq, IrqLine aux_irq, i8042_reset_fn reset, void *reset_opaque)
{
    I8042 *s = g_new0(I8042, 1);

    s->kbd_irq = kbd_irq;
    s->aux_irq = aux_irq;
    s->reset_fn = reset;
    s->reset_opaque = reset_opaque;
    i8042_reset(s);
    return s;
}

/* Free a core. See i8042.h. */
void i8042_free(I8042 *s)
{
    if (s == NULL) {
        return;
    }
    if (s->kbd_level) {
        irq_set(&s->kbd_irq, 0);
    }
    if (s->aux_level) {
        irq_set(&s->aux_irq, 0);
    }
    g_free(s);
}

/* ---- The "i8042" device ------------------------------------------------- */

typedef struct I8042Device {
    Device parent; /* first: the framework allocates instance_size and casts */
    I8042 *core;
    Machine *machine;
    MemoryRegion data;
    MemoryRegion command;
} I8042Device;

static uint64_t i8042_dev_read_data(void *opaque, uint64_t offset, unsigned size)
{
    I8042Device *d = opaque;

    return i8042_read(d->core, I8042_PORT_DATA);
}

static void i8042_dev_write_data(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    I8042Device *d = opaque;

    i8042_write(d->core, I8042_PORT_DATA, (uint8_t)value);
}

static uint64_t i8042_dev_read_command(void *opaque, uint64_t offset, unsigned size)
{
    I8042Device *d = opaque;

    return i8042_read(d->core, I8042_PORT_COMMAND);
}

static void i8042_dev_write_command(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    I8042Device *d = opaque;

    i8042_write(d->core, I8042_PORT_COMMAND, (uint8_t)value);
}

static const MemoryRegionOps i8042_dev_data_ops = {
    .read = i8042_dev_read_data,
    .write = i8042_dev_write_data,
    .min_access_size = 1,
    .max_access_size = 1,
};

static const MemoryRegionOps i8042_dev_command_ops = {
    .read = i8042_dev_read_command,
    .write = i8042_dev_write_command,
    .min_access_size = 1,
    .max_access_size = 1,
};

/* The reset line: machine_request_reset() takes any lock state. */
static void i8042_dev_reset_line(void *opaque)
{
    I8042Device *d = opaque;

    machine_request_reset(d->machine);
}

/* Realize: core and two one-byte ports (0x61 between them is the PC's port
 * B, not the controller's). Main thread, BQL held. */
static bool i8042_dev_realize(Device *dev, Machine *m, GError **errp)
{
    I8042Device *d = (I8042Device *)dev;

    if (dev->policy == LOCK_POLICY_NONE) {
        /* The core keeps no lock of its own (see i8042.h). */
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "i8042: lock=none is not supported (use bql or device)");
        return false;
    }
    d->machine = m;
    d->core = i8042_new(machine_isa_irq(m, I8042_KBD_IRQ), machine_isa_irq(m, I8042_AUX_IRQ),
                        i8042_dev_reset_line, d);
    if (!device_map_region(dev, machine_pio(m), &d->data, "data", 1, &i8042_dev_data_ops, d,
                           I8042_IOBASE + I8042_PORT_DATA, errp) ||
        !device_map_region(dev, machine_pio(m), &d->command, "command", 1, &i8042_dev_command_ops,
                           d, I8042_IOBASE + I8042_PORT_COMMAND, errp)) {
        /* device_destroy() unmaps what was mapped and calls unrealize. */
        return false;
    }
    return true;
}

static void i8042_dev_reset(Device *dev)
{
    I8042Device *d = (I8042Device *)dev;

    if (d->core != NULL) {
        klock_lock(&dev->lock);
        i8042_reset(d->core);
        klock_unlock(&dev->lock);
    }
}

/* The framework has unmapped the regions, so no vCPU can reach the core. */
static void i8042_dev_unrealize(Device *dev)
{
    I8042Device *d = (I8042Device *)dev;

    i8042_free(d->core);
    d->core = NULL;
}

static const char *const i8042_dev_props_list[] = {"lock", NULL};

const DeviceClass i8042_device_class = {
    .name = "i8042",
    .desc = "i8042 keyboard controller with a PS/2 keyboard and mouse (probe and reset line)",
    .props_help = "lock=bql|device",
    .props = i8042_dev_props_list,
    .instance_size = sizeof(I8042Device),
    .user_creatable = false,
    .realize = i8042_dev_realize,
    .reset = i8042_dev_reset,
    .unrealize = i8042_dev_unrealize,
};
