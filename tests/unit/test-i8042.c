/* Unit tests for the i8042 core and its PS/2 keyboard and mouse, with fake IRQ sinks. */
#include "kvmloop/i8042.h"

#include <string.h>
#include <glib.h>

typedef struct FakeIrq {
    int n;
    int level;
    unsigned raises; /* 0 -> 1 transitions */
} FakeIrq;

static void fake_irq_set(void *opaque, int n, int level)
{
    FakeIrq *f = opaque;

    g_assert_cmpint(n, ==, f->n);
    g_assert_true(level == 0 || level == 1);
    if (level && !f->level) {
        f->raises++;
    }
    f->level = level;
}

typedef struct Fixture {
    FakeIrq kbd;
    FakeIrq aux;
    unsigned resets;
    I8042 *kbc;
} Fixture;

static void fake_reset(void *opaque)
{
    Fixture *f = opaque;

    f->resets++;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    memset(f, 0, sizeof(*f));
    f->kbd.n = 1;
    f->aux.n = 12;
    f->kbc = i8042_new((IrqLine){fake_irq_set, &f->kbd, 1}, (IrqLine){fake_irq_set, &f->aux, 12},
                       fake_reset, f);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    i8042_free(f->kbc);
}

/* Status bits that must never be seen. */
#define NEVER (I8042_STR_IBF | I8042_STR_TIMEOUT | I8042_STR_PARITY)

static uint8_t status(Fixture *f)
{
    uint8_t st = i8042_read(f->kbc, I8042_PORT_COMMAND);

    g_assert_cmphex(st & NEVER, ==, 0);
    g_assert_cmphex(st & I8042_STR_KEYLOCK, ==, I8042_STR_KEYLOCK);
    if (st & I8042_STR_AUXDATA) {
        g_assert_cmphex(st & I8042_STR_OBF, ==, I8042_STR_OBF);
    }
    return st;
}

static void cmd(Fixture *f, uint8_t c)
{
    i8042_write(f->kbc, I8042_PORT_COMMAND, c);
}

static void out(Fixture *f, uint8_t v)
{
    i8042_write(f->kbc, I8042_PORT_DATA, v);
}

static void cmd_arg(Fixture *f, uint8_t c, uint8_t v)
{
    cmd(f, c);
    out(f, v);
}

static uint8_t in(Fixture *f)
{
    return i8042_read(f->kbc, I8042_PORT_DATA);
}

/* The output buffer holds @byte from the keyboard side (@aux false) or the
 * aux side, and the other side's line is low. */
static void expect_one(Fixture *f, bool aux, uint8_t byte)
{
    uint8_t st = status(f);

    g_assert_cmphex(st & I8042_STR_OBF, ==, I8042_STR_OBF);
    g_assert_cmphex(st & I8042_STR_AUXDATA, ==, aux ? I8042_STR_AUXDATA : 0);
    g_assert_cmpint(aux ? f->kbd.level : f->aux.level, ==, 0);
    g_assert_cmphex(in(f), ==, byte);
}

/* The output buffer holds exactly @n bytes from the keyboard side (@aux
 * false) or the aux side, with the IRQ that belongs to them if enabled. */
static void expect_bytes(Fixture *f, bool aux, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        expect_one(f, aux, bytes[i]);
    }
    g_assert_cmphex(status(f) & I8042_STR_OBF, ==, 0);
    g_assert_cmpint(f->kbd.level, ==, 0);
    g_assert_cmpint(f->aux.level, ==, 0);
}

#define EXPECT_KBD(f, ...)                                                                         \
    expect_bytes(f, false, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))
#define EXPECT_AUX(f, ...)                                                                         \
    expect_bytes(f, true, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))
#define EXPECT_NOTHING(f) g_assert_cmphex(status(f) & I8042_STR_OBF, ==, 0)

static uint8_t read_ctr(Fixture *f)
{
    uint8_t ctr;

    cmd(f, 0x20);
    g_assert_cmphex(status(f) & (I8042_STR_OBF | I8042_STR_AUXDATA), ==, I8042_STR_OBF);
    ctr = in(f);
    EXPECT_NOTHING(f);
    return ctr;
}

/* Empty the output buffer as Linux's i8042_flush() does, at most @max bytes. */
static unsigned flush(Fixture *f, unsigned max)
{
    unsigned n = 0;

    while ((status(f) & I8042_STR_OBF) && n < max) {
        in(f);
        n++;
    }
    return n;
}

/* ---- Power-on state ------------------------------------------------------ */

static void test_power_on(Fixture *f, gconstpointer data)
{
    g_assert_cmphex(status(f), ==, I8042_STR_KEYLOCK | I8042_STR_SYSFLAG);
    g_assert_cmphex(read_ctr(f), ==,
                    I8042_CTR_XLATE | I8042_CTR_AUXDIS | I8042_CTR_SYSFLAG | I8042_CTR_KBDINT);
    g_assert_cmphex(i8042_read(f->kbc, 1), ==, 0xff);
    g_assert_cmphex(i8042_read(f->kbc, 5), ==, 0xff);
    i8042_write(f->kbc, 2, 0xfe);
    g_assert_cmpuint(f->resets, ==, 0);
}

/* ---- What Linux's i8042, atkbd and psmouse drivers do at boot ------------ */

static void test_linux_controller_probe(Fixture *f, gconstpointer data)
{
    uint8_t ctr;

    /* i8042_controller_check(), i8042_controller_selftest() */
    g_assert_cmphex(status(f), !=, 0xff);
    flush(f, 16);
    cmd(f, 0xaa);
    EXPECT_KBD(f, 0x55);

    /* i8042_controller_init(): a stable CTR, then keyboard off, written back */
    ctr = read_ctr(f);
    g_assert_cmphex(read_ctr(f), ==, ctr);
    ctr = (ctr | I8042_CTR_KBDDIS) & ~I8042_CTR_KBDINT;
    cmd_arg(f, 0x60, ctr);
    g_assert_cmphex(status(f) & I8042_STR_CMDDAT, ==, 0);
    g_assert_cmphex(read_ctr(f), ==, ctr);

    /* i8042_check_aux(): loopback, interface test, bit assignment test */
    cmd_arg(f, 0xd3, 0x5a);
    EXPECT_AUX(f, 0x5a);
    cmd(f, 0xa9);
    EXPECT_KBD(f, 0x00);
    cmd(f, 0xa7);
    g_assert_cmphex(read_ctr(f) & I8042_CTR_AUXDIS, ==, I8042_CTR_AUXDIS);
    cmd(f, 0xa8);
    g_assert_cmphex(read_ctr(f) & I8042_CTR_AUXDIS, ==, 0);

    /* ... and the AUX IRQ delivery test */
    ctr = (read_ctr(f) & ~I8042_CTR_AUXDIS) | I8042_CTR_AUXINT;
    cmd_arg(f, 0x60, ctr);
    cmd_arg(f, 0xd3, 0xa5);
    g_assert_cmpint(f->aux.level, ==, 1);
    g_assert_cmpint(f->kbd.level, ==, 0);
    g_assert_cmphex(status(f) & I8042_STR_AUXDATA, ==, I8042_STR_AUXDATA);
    g_assert_cmphex(in(f), ==, 0xa5);
    g_assert_cmpint(f->aux.level, ==, 0);
    g_assert_cmpuint(f->aux.raises, ==, 1);

    /* The keyboard port test, then both ports on with interrupts. */
    cmd(f, 0xab);
    EXPECT_KBD(f, 0x00);
    ctr &= ~(I8042_CTR_KBDDIS | I8042_CTR_AUXDIS);
    ctr |= I8042_CTR_KBDINT | I8042_CTR_AUXINT;
    cmd_arg(f, 0x60, ctr);
    g_assert_cmphex(read_ctr(f), ==, ctr);
    g_assert_cmpuint(f->resets, ==, 0);
}

static void enable_ports(Fixture *f)
{
    cmd_arg(f, 0x60, I8042_CTR_XLATE | I8042_CTR_SYSFLAG | I8042_CTR_KBDINT | I8042_CTR_AUXINT);
    f->kbd.raises = 0;
    f->aux.raises = 0;
}

static void test_linux_atkbd_probe(Fixture *f, gconstpointer data)
{
    enable_ports(f);
    out(f, 0xf2); /* GETID */
    EXPECT_KBD(f, 0xfa, 0xab, 0x83);
    g_assert_cmpuint(f->kbd.raises, ==, 3); /* an edge per byte */
    out(f, 0xf5);                           /* deactivate */
    EXPECT_KBD(f, 0xfa);
    out(f, 0xff); /* reset */
    EXPECT_KBD(f, 0xfa, 0xaa);
    out(f, 0xed); /* LEDs */
    EXPECT_KBD(f, 0xfa);
    out(f, 0x07);
    EXPECT_KBD(f, 0xfa);
    out(f, 0xf3); /* typematic */
    EXPECT_KBD(f, 0xfa);
    out(f, 0x00);
    EXPECT_KBD(f, 0xfa);
    out(f, 0xf0); /* scan code set: get */
    out(f, 0x00);
    EXPECT_KBD(f, 0xfa, 0xfa, 0x02);
    out(f, 0xf0); /* set 3, read back, set 2 */
    out(f, 0x03);
    out(f, 0xf0);
    out(f, 0x00);
    EXPECT_KBD(f, 0xfa, 0xfa, 0xfa, 0xfa, 0x03);
    out(f, 0xf0);
    out(f, 0x02);
    EXPECT_KBD(f, 0xfa, 0xfa);
    out(f, 0xf0); /* set 4 does not exist */
    out(f, 0x04);
    EXPECT_KBD(f, 0xfa, 0xfe);
    out(f, 0xf4); /* activate */
    EXPECT_KBD(f, 0xfa);
    out(f, 0xf6); /* defaults */
    EXPECT_KBD(f, 0xfa);
    out(f, 0xee); /* echo */
    EXPECT_KBD(f, 0xee);
    out(f, 0xfe); /* resend */
    EXPECT_KBD(f, 0xee);
    out(f, 0xf8); /* set 3 key types: accepted */
    EXPECT_KBD(f, 0xfa);
    out(f, 0xed); /* a command where an argument was due replaces the command */
    out(f, 0xf2);
    EXPECT_KBD(f, 0xfa, 0xfa, 0xab, 0x83);
    out(f, 0x42); /* unknown */
    EXPECT_KBD(f, 0xfe);
    g_assert_cmpint(f->aux.raises, ==, 0);
}

static void aux(Fixture *f, uint8_t v)
{
    cmd_arg(f, 0xd4, v);
}

static void test_linux_psmouse_probe(Fixture *f, gconstpointer data)
{
    enable_ports(f);
    aux(f, 0xf2); /* GETID: a plain PS/2 mouse */
    EXPECT_AUX(f, 0xfa, 0x00);
    g_assert_cmpuint(f->aux.raises, ==, 2);
    aux(f, 0xff); /* reset */
    EXPECT_AUX(f, 0xfa, 0xaa, 0x00);
    /* The IntelliMouse knock (rates 200, 100, 80) leaves the ID at 0. */
    aux(f, 0xf3);
    aux(f, 200);
    aux(f, 0xf3);
    aux(f, 100);
    aux(f, 0xf3);
    aux(f, 80);
    EXPECT_AUX(f, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
    aux(f, 0xf2);
    EXPECT_AUX(f, 0xfa, 0x00);
    /* Synaptics/ALPS-style probes: resolution, scaling, status request. */
    aux(f, 0xe8);
    aux(f, 0x03);
    aux(f, 0xe6);
    aux(f, 0xe6);
    aux(f, 0xe6);
    EXPECT_AUX(f, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
    aux(f, 0xe9);
    EXPECT_AUX(f, 0xfa, 0x00, 0x03, 80);
    aux(f, 0xe7);
    aux(f, 0xf4);
    aux(f, 0xf0);
    aux(f, 0xe9);
    EXPECT_AUX(f, 0xfa, 0xfa, 0xfa, 0xfa, 0x70, 0x03, 80);
    aux(f, 0xea);
    aux(f, 0xf5);
    aux(f, 0xe9);
    EXPECT_AUX(f, 0xfa, 0xfa, 0xfa, 0x10, 0x03, 80);
    aux(f, 0xf6); /* defaults: 100/s, 4 counts/mm, 1:1, off */
    aux(f, 0xe9);
    EXPECT_AUX(f, 0xfa, 0xfa, 0x00, 0x02, 100);
    aux(f, 0xeb); /* read data: never any movement */
    EXPECT_AUX(f, 0xfa, 0x08, 0x00, 0x00);
    aux(f, 0xe1); /* TrackPoint's secondary ID: not one */
    EXPECT_AUX(f, 0xfe);
    aux(f, 0xfe); /* resend */
    EXPECT_AUX(f, 0xfe);
    /* Wrap mode echoes until reset-wrap. */
    aux(f, 0xee);
    aux(f, 0x12);
    aux(f, 0xf2);
    aux(f, 0xec);
    aux(f, 0xf2);
    EXPECT_AUX(f, 0xfa, 0x12, 0xf2, 0xfa, 0xfa, 0x00);
    g_assert_cmpint(f->kbd.raises, ==, 0);
    g_assert_cmpuint(f->resets, ==, 0);
}

/* ---- Status register and IRQ lines ---------------------------------------- */

static void test_status_bits(Fixture *f, gconstpointer data)
{
    cmd(f, 0xa8);
    g_assert_cmphex(status(f) & I8042_STR_CMDDAT, ==, I8042_STR_CMDDAT);
    out(f, 0xf4);
    g_assert_cmphex(status(f) & I8042_STR_CMDDAT, ==, 0);
    g_assert_cmphex(status(f) & (I8042_STR_OBF | I8042_STR_AUXDATA), ==, I8042_STR_OBF);
    in(f);
    /* The system flag follows the command byte; a passed self-test sets it. */
    cmd_arg(f, 0x60, 0x00);
    g_assert_cmphex(status(f) & I8042_STR_SYSFLAG, ==, 0);
    cmd(f, 0xaa);
    g_assert_cmphex(status(f) & I8042_STR_SYSFLAG, ==, I8042_STR_SYSFLAG);
    EXPECT_KBD(f, 0x55);
    /* The buffer, once read, reads back its last byte with OBF clear. */
    g_assert_cmphex(in(f), ==, 0x55);
    g_assert_cmphex(status(f), ==, I8042_STR_KEYLOCK | I8042_STR_SYSFLAG | I8042_STR_CMDDAT);
}

static void test_irq_levels(Fixture *f, gconstpointer data)
{
    /* No keyboard interrupt enabled: the byte waits without IRQ 1. */
    cmd_arg(f, 0x60, 0x00);
    cmd_arg(f, 0xd2, 0x11);
    g_assert_cmpint(f->kbd.level, ==, 0);
    /* Enabling it with the buffer full raises the line. */
    cmd_arg(f, 0x60, I8042_CTR_KBDINT);
    g_assert_cmpint(f->kbd.level, ==, 1);
    g_assert_cmphex(in(f), ==, 0x11);
    g_assert_cmpint(f->kbd.level, ==, 0);

    /* An aux byte drives IRQ 12 only, and only with AUXINT. */
    cmd_arg(f, 0xd3, 0x22);
    g_assert_cmpint(f->kbd.level, ==, 0);
    g_assert_cmpint(f->aux.level, ==, 0);
    cmd_arg(f, 0x60, I8042_CTR_KBDINT | I8042_CTR_AUXINT);
    g_assert_cmpint(f->aux.level, ==, 1);
    /* Disabling the interrupt drops the line with the byte still there. */
    cmd_arg(f, 0x60, I8042_CTR_KBDINT);
    g_assert_cmpint(f->aux.level, ==, 0);
    g_assert_cmphex(status(f) & I8042_STR_AUXDATA, ==, I8042_STR_AUXDATA);
    cmd_arg(f, 0x60, I8042_CTR_KBDINT | I8042_CTR_AUXINT);
    g_assert_cmphex(in(f), ==, 0x22);
    g_assert_cmpint(f->aux.level, ==, 0);

    /* Mixed bytes in order, each with a fresh edge on its own line. */
    f->kbd.raises = 0;
    f->aux.raises = 0;
    cmd_arg(f, 0xd2, 0x01);
    cmd_arg(f, 0xd3, 0x02);
    cmd_arg(f, 0xd2, 0x03);
    cmd_arg(f, 0xd2, 0x04);
    expect_one(f, false, 0x01);
    expect_one(f, true, 0x02);
    expect_one(f, false, 0x03);
    expect_one(f, false, 0x04);
    EXPECT_NOTHING(f);
    g_assert_cmpuint(f->kbd.raises, ==, 3);
    g_assert_cmpuint(f->aux.raises, ==, 1);
}

static void test_disabled_port_holds(Fixture *f, gconstpointer data)
{
    cmd_arg(f, 0x60, I8042_CTR_KBDINT | I8042_CTR_SYSFLAG);
    out(f, 0xf2);
    cmd(f, 0xad); /* the ACK is already in the buffer; the ID waits */
    g_assert_cmphex(in(f), ==, 0xfa);
    EXPECT_NOTHING(f);
    /* The controller's own replies still come through. */
    g_assert_cmphex(read_ctr(f), ==, I8042_CTR_KBDINT | I8042_CTR_SYSFLAG | I8042_CTR_KBDDIS);
    cmd(f, 0xae);
    EXPECT_KBD(f, 0xab, 0x83);
    /* Writing to a device enables its port. */
    cmd(f, 0xad);
    out(f, 0xee);
    EXPECT_KBD(f, 0xee);
    g_assert_cmphex(read_ctr(f) & I8042_CTR_KBDDIS, ==, 0);
    cmd(f, 0xa7);
    aux(f, 0xf2);
    EXPECT_AUX(f, 0xfa, 0x00);
    g_assert_cmphex(read_ctr(f) & I8042_CTR_AUXDIS, ==, 0);
    /* A held aux byte does not hold up the keyboard behind it. */
    aux(f, 0xf2);
    cmd(f, 0xa7);
    g_assert_cmphex(in(f), ==, 0xfa);
    EXPECT_NOTHING(f);
    out(f, 0xee); /* re-enables the keyboard port only */
    EXPECT_KBD(f, 0xee);
    cmd(f, 0xa8);
    EXPECT_AUX(f, 0x00);
}

static void test_queue_overflow(Fixture *f, gconstpointer data)
{
    unsigned n;

    for (int i = 0; i < 20; i++) {
        out(f, 0xf2);
    }
    /* The buffer and a full queue: 17 bytes, in order, the rest dropped. */
    for (n = 0; status(f) & I8042_STR_OBF; n++) {
        static const uint8_t id[] = {0xfa, 0xab, 0x83};

        g_assert_cmpuint(n, <, 17);
        g_assert_cmphex(in(f), ==, id[n % 3]);
    }
    g_assert_cmpuint(n, ==, 17);
    cmd(f, 0xaa);
    EXPECT_KBD(f, 0x55);
}

static void test_internal_ram(Fixture *f, gconstpointer data)
{
    cmd_arg(f, 0x61, 0x5a);
    cmd_arg(f, 0x7f, 0xa5);
    cmd(f, 0x21);
    EXPECT_KBD(f, 0x5a);
    cmd(f, 0x3f);
    EXPECT_KBD(f, 0xa5);
    /* RAM byte 0 is the command byte. */
    cmd_arg(f, 0x60, 0x03);
    cmd(f, 0x20);
    EXPECT_KBD(f, 0x03);
}

static void test_ports(Fixture *f, gconstpointer data)
{
    cmd(f, 0xc0);
    EXPECT_KBD(f, 0x80);
    cmd(f, 0xd0);
    EXPECT_KBD(f, 0xcf);
    /* A20 is only remembered; bit 4 reads the keyboard IRQ output. */
    cmd_arg(f, 0xd1, 0xcd);
    cmd(f, 0xd0);
    EXPECT_KBD(f, 0xcd);
    cmd_arg(f, 0xd2, 0x77);
    g_assert_cmpint(f->kbd.level, ==, 1);
    cmd(f, 0xd0);
    EXPECT_KBD(f, 0x77, 0xdd);
    g_assert_cmpuint(f->resets, ==, 0);
}

/* ---- The reset line ------------------------------------------------------- */

static void test_reset_line(Fixture *f, gconstpointer data)
{
    cmd(f, 0xfe);
    g_assert_cmpuint(f->resets, ==, 1);
    cmd(f, 0xff); /* pulses nothing */
    cmd(f, 0xf1);
    cmd(f, 0xfd);
    g_assert_cmpuint(f->resets, ==, 1);
    cmd(f, 0xf0);
    cmd(f, 0xfc);
    g_assert_cmpuint(f->resets, ==, 3);
    /* Through the output port: bit 0 low holds the CPU in reset. */
    cmd_arg(f, 0xd1, 0xdf);
    g_assert_cmpuint(f->resets, ==, 3);
    cmd_arg(f, 0xd1, 0xde);
    g_assert_cmpuint(f->resets, ==, 4);
    /* A byte for the keyboard that happens to be 0xfe is not a command. */
    out(f, 0xfe);
    g_assert_cmpuint(f->resets, ==, 4);
}

static void test_reset_without_hook(Fixture *f, gconstpointer data)
{
    I8042 *kbc = i8042_new((IrqLine){0}, (IrqLine){0}, NULL, NULL);

    i8042_write(kbc, I8042_PORT_COMMAND, 0xfe);
    i8042_write(kbc, I8042_PORT_COMMAND, 0xd1);
    i8042_write(kbc, I8042_PORT_DATA, 0x00);
    i8042_write(kbc, I8042_PORT_DATA, 0xf2);
    g_assert_cmphex(i8042_read(kbc, I8042_PORT_DATA), ==, 0xfa);
    i8042_free(kbc);
}

static void test_unknown_commands(Fixture *f, gconstpointer data)
{
    static const uint8_t unknown[] = {0x00, 0x01, 0x1f, 0x40, 0x80, 0xa0, 0xa1, 0xa5,
                                      0xac, 0xaf, 0xc1, 0xc8, 0xdd, 0xe0, 0xef};
    uint8_t ctr = read_ctr(f);

    for (size_t i = 0; i < G_N_ELEMENTS(unknown); i++) {
        cmd(f, unknown[i]);
        EXPECT_NOTHING(f);
    }
    g_assert_cmphex(read_ctr(f), ==, ctr);
    g_assert_cmpuint(f->resets, ==, 0);
    /* A command cancels a controller command waiting for its data byte. */
    cmd(f, 0x60);
    cmd(f, 0xab);
    EXPECT_KBD(f, 0x00);
    g_assert_cmphex(read_ctr(f), ==, ctr);
}

static void test_reset(Fixture *f, gconstpointer data)
{
    enable_ports(f);
    aux(f, 0xee);
    out(f, 0xed);
    cmd_arg(f, 0xd3, 0x01);
    g_assert_cmpint(f->aux.level, ==, 1);
    cmd(f, 0x60);
    i8042_reset(f->kbc);
    g_assert_cmpint(f->kbd.level, ==, 0);
    g_assert_cmpint(f->aux.level, ==, 0);
    g_assert_cmphex(status(f), ==, I8042_STR_KEYLOCK | I8042_STR_SYSFLAG);
    g_assert_cmphex(read_ctr(f), ==,
                    I8042_CTR_XLATE | I8042_CTR_AUXDIS | I8042_CTR_SYSFLAG | I8042_CTR_KBDINT);
    /* Keyboard and mouse left their argument and wrap states. */
    out(f, 0xf2);
    EXPECT_KBD(f, 0xfa, 0xab, 0x83);
    aux(f, 0xf2);
    EXPECT_AUX(f, 0xfa, 0x00);
}

/* ---- Hostile guests ------------------------------------------------------- */

static void test_hostile(Fixture *f, gconstpointer data)
{
    GRand *rand = g_rand_new_with_seed(42);

    for (int i = 0; i < 200000; i++) {
        uint32_t r = g_rand_int(rand);
        uint8_t v = (uint8_t)(r >> 8);
        uint8_t st;

        switch (r % 4) {
        case 0:
            i8042_write(f->kbc, (r & 0x10) ? I8042_PORT_COMMAND : I8042_PORT_DATA, v);
            break;
        case 1:
            in(f);
            break;
        case 2:
            i8042_write(f->kbc, r & 7, v);
            i8042_read(f->kbc, (r >> 16) & 7);
            break;
        default:
            st = status(f);
            /* A line is high only for a byte of its own kind. */
            if (f->kbd.level) {
                g_assert_cmphex(st & (I8042_STR_OBF | I8042_STR_AUXDATA), ==, I8042_STR_OBF);
            }
            if (f->aux.level) {
                g_assert_cmphex(st & I8042_STR_AUXDATA, ==, I8042_STR_AUXDATA);
            }
            break;
        }
    }
    g_rand_free(rand);

    /* Not wedged: both ports on, the output drained, the self-test answers. */
    cmd(f, 0xae);
    cmd(f, 0xa8);
    g_assert_cmpuint(flush(f, 64), <=, 17);
    cmd(f, 0xaa);
    EXPECT_KBD(f, 0x55);
    aux(f, 0xff);
    EXPECT_AUX(f, 0xfa, 0xaa, 0x00);
    out(f, 0xff);
    EXPECT_KBD(f, 0xfa, 0xaa);
}

#define I8042_TEST(path, fn)                                                                       \
    g_test_add("/i8042/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    I8042_TEST("power-on", test_power_on);
    I8042_TEST("linux-controller-probe", test_linux_controller_probe);
    I8042_TEST("linux-atkbd-probe", test_linux_atkbd_probe);
    I8042_TEST("linux-psmouse-probe", test_linux_psmouse_probe);
    I8042_TEST("status-bits", test_status_bits);
    I8042_TEST("irq-levels", test_irq_levels);
    I8042_TEST("disabled-port-holds", test_disabled_port_holds);
    I8042_TEST("queue-overflow", test_queue_overflow);
    I8042_TEST("internal-ram", test_internal_ram);
    I8042_TEST("ports", test_ports);
    I8042_TEST("reset-line", test_reset_line);
    I8042_TEST("reset-without-hook", test_reset_without_hook);
    I8042_TEST("unknown-commands", test_unknown_commands);
    I8042_TEST("reset", test_reset);
    I8042_TEST("hostile", test_hostile);

    return g_test_run();
}
