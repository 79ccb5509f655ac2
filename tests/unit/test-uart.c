/* Unit tests for the 16550A core and the character backends, with a fake IRQ sink. */
#include "kvmloop/uart16550.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/serial_reg.h>

#include "kvmloop/chardev.h"
#include "kvmloop/event_loop.h"

/* Records what the UART drives on its line. */
typedef struct FakeIrq {
    int level;
    unsigned raises; /* 0 -> 1 transitions */
    unsigned calls;
} FakeIrq;

static void fake_irq_set(void *opaque, int n, int level)
{
    FakeIrq *f = opaque;

    g_assert_cmpint(n, ==, 4);
    g_assert_true(level == 0 || level == 1);
    if (level && !f->level) {
        f->raises++;
    }
    f->level = level;
    f->calls++;
}

typedef struct Fixture {
    FakeIrq irq;
    Chardev *chr;
    Uart16550 *uart;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    IrqLine line = {.set = fake_irq_set, .opaque = &f->irq, .n = 4};

    memset(&f->irq, 0, sizeof(f->irq));
    f->chr = chardev_new("capture", "test", &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->chr);
    f->uart = uart16550_new(f->chr, line);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    uart16550_free(f->uart);
    chardev_free(f->chr);
}

static uint8_t rd(Fixture *f, unsigned off)
{
    uint64_t v = uart16550_read(f->uart, off);

    g_assert_cmpuint(v, <=, 0xff);
    return (uint8_t)v;
}

static void wr(Fixture *f, unsigned off, uint8_t v)
{
    uart16550_write(f->uart, off, v);
}

static void assert_captured(Fixture *f, const char *expect)
{
    size_t len;
    const uint8_t *buf = chardev_captured(f->chr, &len);

    g_assert_cmpmem(buf, len, expect, strlen(expect));
}

/* ---- Reset and plain registers ------------------------------------------ */

static void test_reset_values(Fixture *f, gconstpointer data)
{
    g_assert_cmpuint(rd(f, UART_IER), ==, 0x00);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0x01);
    g_assert_cmpuint(rd(f, UART_LCR), ==, 0x00);
    g_assert_cmpuint(rd(f, UART_MCR), ==, 0x00);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
    g_assert_cmpuint(rd(f, UART_MSR), ==, UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
    g_assert_cmpuint(rd(f, UART_SCR), ==, 0x00);
    g_assert_cmpint(f->irq.level, ==, 0);

    /* Dirty everything, then reset. */
    wr(f, UART_IER, 0x0f);
    wr(f, UART_FCR, UART_FCR_ENABLE_FIFO);
    wr(f, UART_LCR, 0x1b);
    wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
    wr(f, UART_SCR, 0x5a);
    wr(f, UART_TX, 'x');
    g_assert_cmpint(f->irq.level, ==, 1);
    uart16550_reset(f->uart);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmpuint(rd(f, UART_IER), ==, 0x00);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0x01);
    g_assert_cmpuint(rd(f, UART_LCR), ==, 0x00);
    g_assert_cmpuint(rd(f, UART_MCR), ==, 0x00);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
    g_assert_cmpuint(rd(f, UART_SCR), ==, 0x00);
    g_assert_cmpuint(rd(f, 8), ==, 0xff);
}

static void test_scratch(Fixture *f, gconstpointer data)
{
    for (unsigned v = 0; v < 256; v += 17) {
        wr(f, UART_SCR, (uint8_t)v);
        g_assert_cmpuint(rd(f, UART_SCR), ==, v);
    }
}

static void test_ier_mask(Fixture *f, gconstpointer data)
{
    wr(f, UART_IER, 0xff);
    g_assert_cmpuint(rd(f, UART_IER), ==, 0x0f);
    wr(f, UART_IER, 0xf0);
    g_assert_cmpuint(rd(f, UART_IER), ==, 0x00);
    g_assert_cmpint(f->irq.level, ==, 0);
}

static void test_divisor_latch(Fixture *f, gconstpointer data)
{
    wr(f, UART_IER, UART_IER_RDI);
    wr(f, UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    g_assert_cmpuint(rd(f, UART_LCR), ==, UART_LCR_DLAB | UART_LCR_WLEN8);
    g_assert_cmpuint(rd(f, UART_DLL), ==, 12); /* power-on 9600 baud */
    g_assert_cmpuint(rd(f, UART_DLM), ==, 0);
    wr(f, UART_DLL, 0x01);
    wr(f, UART_DLM, 0x02);
    g_assert_cmpuint(rd(f, UART_DLL), ==, 0x01);
    g_assert_cmpuint(rd(f, UART_DLM), ==, 0x02);
    /* Divisor writes neither transmit nor touch IER. */
    assert_captured(f, "");
    wr(f, UART_LCR, UART_LCR_WLEN8);
    g_assert_cmpuint(rd(f, UART_IER), ==, UART_IER_RDI);
    wr(f, UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    g_assert_cmpuint(rd(f, UART_DLL), ==, 0x01);
    g_assert_cmpuint(rd(f, UART_DLM), ==, 0x02);
    /* With DLAB set, IIR/FCR, LSR and SCR still answer. */
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0x01);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
}

/* ---- Transmit and THRE -------------------------------------------------- */

static void test_transmit(Fixture *f, gconstpointer data)
{
    const char *msg = "hello, world\n";

    wr(f, UART_LCR, UART_LCR_WLEN8);
    for (const char *p = msg; *p; p++) {
        wr(f, UART_TX, (uint8_t)*p);
        g_assert_cmpuint(rd(f, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), ==,
                         UART_LSR_THRE | UART_LSR_TEMT);
    }
    assert_captured(f, msg);
    /* Nothing was enabled: no interrupt. */
    g_assert_cmpuint(f->irq.raises, ==, 0);
}

static void test_thre_interrupt(Fixture *f, gconstpointer data)
{
    /* Enabling ETBEI with THR empty raises THRE at once. */
    wr(f, UART_IER, UART_IER_THRI);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(f->irq.raises, ==, 1);
    /* Reading IIR reports it and acknowledges it. */
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_THRI);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_NO_INT);

    /* Writing THR: THR empties at once, so THRE is pending again, and the
     * line went low and high (a fresh edge). */
    wr(f, UART_TX, 'a');
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(f->irq.raises, ==, 2);
    wr(f, UART_TX, 'b');
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(f->irq.raises, ==, 3);
    assert_captured(f, "ab");

    /* Disabling ETBEI lowers the line and drops the condition. */
    wr(f, UART_IER, 0);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_NO_INT);
    /* Re-enabling raises it again (Linux's 8250 start_tx relies on this). */
    wr(f, UART_IER, UART_IER_THRI);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(f->irq.raises, ==, 4);
    /* Rewriting IER with ETBEI still set is not a new enable. */
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_THRI);
    wr(f, UART_IER, UART_IER_THRI | UART_IER_RDI);
    g_assert_cmpint(f->irq.level, ==, 0);
}

static void test_no_backend(Fixture *f, gconstpointer data)
{
    FakeIrq irq = {0};
    IrqLine line = {.set = fake_irq_set, .opaque = &irq, .n = 4};
    Uart16550 *s = uart16550_new(NULL, line);

    uart16550_write(s, UART_IER, UART_IER_THRI);
    uart16550_write(s, UART_TX, 'z');
    g_assert_cmpuint(uart16550_read(s, UART_LSR), ==, 0x60);
    g_assert_cmpint(irq.level, ==, 1);
    uart16550_free(s);
    g_assert_cmpint(irq.level, ==, 0);
}

/* ---- Receive ------------------------------------------------------------ */

static void test_receive_16450(Fixture *f, gconstpointer data)
{
    const uint8_t in[] = {'x', 'y', 'z'};

    wr(f, UART_IER, UART_IER_RDI);
    /* Without FIFOs the receiver holds one byte. */
    g_assert_cmpuint(uart16550_can_receive(f->uart), ==, 1);
    g_assert_cmpuint(chardev_deliver(f->chr, in, sizeof(in)), ==, 1);
    g_assert_cmpuint(uart16550_can_receive(f->uart), ==, 0);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_RDI);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR);
    g_assert_cmpuint(rd(f, UART_RX), ==, 'x');
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_NO_INT);

    /* Overrun: the second byte replaces the first and OE is set. */
    uart16550_receive(f->uart, in + 1, 2);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR | UART_LSR_OE);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR); /* OE read-clears */
    g_assert_cmpuint(rd(f, UART_RX), ==, 'z');
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
}

static void test_receive_no_frontend_ier(Fixture *f, gconstpointer data)
{
    const uint8_t in = 'q';

    /* Data ready without RDI enabled: DR set, no interrupt. */
    g_assert_cmpuint(chardev_deliver(f->chr, &in, 1), ==, 1);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR);
    g_assert_cmpint(f->irq.level, ==, 0);
    /* Enabling RDI afterwards raises the line. */
    wr(f, UART_IER, UART_IER_RDI);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(rd(f, UART_RX), ==, 'q');
    g_assert_cmpint(f->irq.level, ==, 0);
}

static void test_fifo(Fixture *f, gconstpointer data)
{
    uint8_t in[20];

    for (unsigned i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)('A' + i);
    }
    wr(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0xc1);
    wr(f, UART_IER, UART_IER_RDI | UART_IER_RLSI);

    /* The backend can hand over 16 bytes; the rest wait. */
    g_assert_cmpuint(uart16550_can_receive(f->uart), ==, 16);
    g_assert_cmpuint(chardev_deliver(f->chr, in, 3), ==, 3);
    /* Below the trigger level: character timeout indication. */
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0xc0 | UART_IIR_RX_TIMEOUT);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(chardev_deliver(f->chr, in + 3, sizeof(in) - 3), ==, 13);
    g_assert_cmpuint(uart16550_can_receive(f->uart), ==, 0);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0xc0 | UART_IIR_RDI);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR);

    /* One more byte than fits: lost, overrun flagged, RLS outranks RDA. */
    uart16550_receive(f->uart, in + 16, 1);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0xc0 | UART_IIR_RLSI);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR | UART_LSR_OE);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0xc0 | UART_IIR_RDI);

    for (unsigned i = 0; i < 16; i++) {
        g_assert_cmpuint(rd(f, UART_LSR) & UART_LSR_DR, ==, UART_LSR_DR);
        g_assert_cmpuint(rd(f, UART_RX), ==, 'A' + i);
    }
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmpuint(rd(f, UART_IIR), ==, 0xc1);

    /* FCR receiver clear empties the FIFO. */
    g_assert_cmpuint(chardev_deliver(f->chr, in, 5), ==, 5);
    g_assert_cmpint(f->irq.level, ==, 1);
    wr(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
    g_assert_cmpint(f->irq.level, ==, 0);

    /* Turning the FIFOs off empties them and drops the IIR FIFO bits. */
    g_assert_cmpuint(chardev_deliver(f->chr, in, 2), ==, 2);
    wr(f, UART_FCR, 0);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_NO_INT);
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
    g_assert_cmpuint(uart16550_can_receive(f->uart), ==, 1);
}

static void test_fifo_wraps(Fixture *f, gconstpointer data)
{
    wr(f, UART_FCR, UART_FCR_ENABLE_FIFO);
    for (unsigned round = 0; round < 40; round++) {
        uint8_t in[5];

        for (unsigned i = 0; i < sizeof(in); i++) {
            in[i] = (uint8_t)(round * 5 + i);
        }
        g_assert_cmpuint(chardev_deliver(f->chr, in, sizeof(in)), ==, sizeof(in));
        for (unsigned i = 0; i < sizeof(in); i++) {
            g_assert_cmpuint(rd(f, UART_RX), ==, in[i]);
        }
    }
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
}

/* ---- Receive from a live backend ----------------------------------------- */

/* A UART fed by a "stdio" chardev whose stdin is a pipe, on a real loop. */
typedef struct LiveUart {
    FakeIrq irq;
    EventLoop *loop;
    Chardev *chr;
    Uart16550 *uart;
    int saved_stdin;
    int in; /* write end of stdin */
} LiveUart;

static void live_begin(LiveUart *u, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    IrqLine line = {.set = fake_irq_set, .opaque = &u->irq, .n = 4};
    int p[2];

    memset(u, 0, sizeof(*u));
    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    u->saved_stdin = dup(STDIN_FILENO);
    g_assert_cmpint(dup2(p[0], STDIN_FILENO), ==, STDIN_FILENO);
    close(p[0]);
    u->in = p[1];
    u->loop = event_loop_new(GPOINTER_TO_INT(data), NULL, &err);
    g_assert_no_error(err);
    u->chr = chardev_new("stdio", "serial0", &err);
    g_assert_no_error(err);
    u->uart = uart16550_new(u->chr, line);
    g_assert_true(chardev_start_input(u->chr, u->loop, &err));
    g_assert_no_error(err);
}

static void live_end(LiveUart *u)
{
    uart16550_free(u->uart);
    chardev_free(u->chr);
    event_loop_free(u->loop);
    close(u->in);
    if (u->saved_stdin >= 0) {
        dup2(u->saved_stdin, STDIN_FILENO);
        close(u->saved_stdin);
    } else {
        close(STDIN_FILENO);
    }
}

/* Run the loop until LSR reports data (a guest polling LSR); the IRQ must
 * agree with IER. Fails after a few seconds. */
static void live_wait_data(LiveUart *u)
{
    int64_t deadline = clock_get_ns(CLOCK_TYPE_REALTIME) + 5 * 1000000000LL;
    uint8_t lsr;

    while (!((lsr = (uint8_t)uart16550_read(u->uart, UART_LSR)) & UART_LSR_DR)) {
        g_assert_cmpint(clock_get_ns(CLOCK_TYPE_REALTIME), <, deadline);
        event_loop_iterate(u->loop, false);
    }
    g_assert_cmphex(lsr & UART_LSR_OE, ==, 0);
    if (uart16550_read(u->uart, UART_IER) & UART_IER_RDI) {
        g_assert_cmpint(u->irq.level, ==, 1);
    }
}

/* More input than the receiver holds: each RBR read lets the next byte in,
 * the data-ready interrupt follows every byte, and nothing overruns. */
static void test_live_receive(gconstpointer data, uint8_t fcr)
{
    static const char text[] = "the quick brown fox jumps over the lazy dog, 0123456789";
    size_t len = strlen(text);
    LiveUart u;

    live_begin(&u, data);
    uart16550_write(u.uart, UART_FCR, fcr);
    uart16550_write(u.uart, UART_IER, UART_IER_RDI | UART_IER_RLSI);
    g_assert_cmpint(write(u.in, text, len), ==, (ssize_t)len);
    for (size_t i = 0; i < len; i++) {
        live_wait_data(&u);
        g_assert_cmpuint(uart16550_read(u.uart, UART_RX), ==, (uint8_t)text[i]);
    }
    for (int i = 0; i < 5; i++) {
        event_loop_iterate(u.loop, false);
    }
    g_assert_cmphex(uart16550_read(u.uart, UART_LSR), ==, 0x60);
    g_assert_cmpint(u.irq.level, ==, 0);
    live_end(&u);
}

static void test_live_receive_16450(gconstpointer data)
{
    test_live_receive(data, 0);
}

static void test_live_receive_fifo(gconstpointer data)
{
    test_live_receive(data, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
}

/* In loopback the receiver is cut off from the line: input waits in the
 * backend and flows once loopback ends. */
static void test_live_loopback_holds(gconstpointer data)
{
    LiveUart u;

    live_begin(&u, data);
    uart16550_write(u.uart, UART_MCR, UART_MCR_LOOP);
    g_assert_cmpint(write(u.in, "z", 1), ==, 1);
    for (int i = 0; i < 10; i++) {
        event_loop_iterate(u.loop, false);
    }
    g_assert_cmphex(uart16550_read(u.uart, UART_LSR) & UART_LSR_DR, ==, 0);
    uart16550_write(u.uart, UART_MCR, 0);
    live_wait_data(&u);
    g_assert_cmpuint(uart16550_read(u.uart, UART_RX), ==, 'z');
    live_end(&u);
}

/* ---- Loopback and modem status ------------------------------------------ */

static void test_loopback(Fixture *f, gconstpointer data)
{
    const uint8_t in = '!';

    wr(f, UART_FCR, UART_FCR_ENABLE_FIFO);
    wr(f, UART_IER, UART_IER_RDI);
    wr(f, UART_MCR, UART_MCR_LOOP);
    /* The receiver is cut off from the line. */
    g_assert_cmpuint(chardev_deliver(f->chr, &in, 1), ==, 0);

    wr(f, UART_TX, 0x55);
    wr(f, UART_TX, 0xaa);
    assert_captured(f, ""); /* the output is held marking */
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(rd(f, UART_RX), ==, 0x55);
    g_assert_cmpuint(rd(f, UART_RX), ==, 0xaa);
    g_assert_cmpint(f->irq.level, ==, 0);

    /* 17 bytes into a 16-byte FIFO overrun it. */
    for (unsigned i = 0; i < 17; i++) {
        wr(f, UART_TX, (uint8_t)i);
    }
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60 | UART_LSR_DR | UART_LSR_OE);
    for (unsigned i = 0; i < 16; i++) {
        g_assert_cmpuint(rd(f, UART_RX), ==, i);
    }
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);

    /* Leaving loopback sends to the backend again. */
    wr(f, UART_MCR, 0);
    wr(f, UART_TX, 'k');
    assert_captured(f, "k");
    g_assert_cmpuint(rd(f, UART_LSR), ==, 0x60);
}

static void test_loopback_msr(Fixture *f, gconstpointer data)
{
    /* Outside loopback: a willing peer, no deltas. */
    g_assert_cmpuint(rd(f, UART_MSR), ==, 0xb0);

    /* Linux's 8250 probe: LOOP|OUT2|RTS must read back DCD|CTS. Entering
     * loopback changes DSR too, hence the deltas on the first read. */
    wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
    g_assert_cmpuint(rd(f, UART_MSR) & 0xf0, ==, UART_MSR_DCD | UART_MSR_CTS);
    g_assert_cmpuint(rd(f, UART_MSR), ==, UART_MSR_DCD | UART_MSR_CTS); /* deltas cleared */

    wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
    g_assert_cmpuint(rd(f, UART_MSR), ==,
                     UART_MSR_DSR | UART_MSR_RI | UART_MSR_DDCD | UART_MSR_DDSR | UART_MSR_DCTS);

    /* RI falling sets TERI; modem status interrupt when enabled. */
    wr(f, UART_IER, UART_IER_MSI);
    g_assert_cmpint(f->irq.level, ==, 0);
    wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR);
    g_assert_cmpint(f->irq.level, ==, 1);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_MSI);
    g_assert_cmpuint(rd(f, UART_MSR), ==, UART_MSR_DSR | UART_MSR_TERI);
    g_assert_cmpint(f->irq.level, ==, 0);
    g_assert_cmpuint(rd(f, UART_IIR), ==, UART_IIR_NO_INT);

    /* The MCR reads back what was written (bits 7:5 do not exist). */
    wr(f, UART_MCR, 0xff);
    g_assert_cmpuint(rd(f, UART_MCR), ==, 0x1f);
}

/* ---- Character backends ------------------------------------------------- */

static void test_chardev_file(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-uart-XXXXXX", &err);
    g_autofree char *path = NULL;
    g_autofree char *spec = NULL;
    g_autofree char *contents = NULL;
    size_t len = 0;
    Chardev *chr;
    int flags;

    g_assert_no_error(err);
    path = g_build_filename(dir, "out.txt", NULL);
    g_assert_true(g_file_set_contents(path, "old contents, to be truncated", -1, NULL));
    spec = g_strdup_printf("file:%s", path);

    chr = chardev_new(spec, "serial0", &err);
    g_assert_no_error(err);
    g_assert_nonnull(chr);
    g_assert_cmpstr(chr->label, ==, "serial0");
    flags = fcntl(chr->out_fd, F_GETFD);
    g_assert_cmpint(flags & FD_CLOEXEC, ==, FD_CLOEXEC);
    g_assert_cmpint(chardev_write_all(chr, (const uint8_t *)"abc", 3), ==, 0);
    g_assert_cmpint(chardev_write_all(chr, (const uint8_t *)"\n", 1), ==, 0);
    g_assert_null(chardev_captured(chr, &len));
    g_assert_cmpuint(len, ==, 0);
    chardev_free(chr);

    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    g_assert_cmpmem(contents, len, "abc\n", 4);
    g_assert_cmpint(g_unlink(path), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void test_chardev_file_error(void)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new("file:/nonexistent-dir-kvmloop/x", NULL, &err);

    g_assert_null(chr);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "/nonexistent-dir-kvmloop/x"));
    g_clear_error(&err);

    chr = chardev_new("file:", NULL, &err);
    g_assert_null(chr);
    g_assert_nonnull(err);
}

static void test_chardev_bad_spec(void)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new("x", NULL, &err);

    g_assert_null(chr);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==,
                    "unknown -serial backend 'x' (expected stdio, file:PATH, null, none)");
}

static void test_chardev_none_null_stdio(void)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new("none", NULL, &err);

    g_assert_null(chr);
    g_assert_no_error(err);

    chr = chardev_new("null", NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(chr);
    g_assert_cmpstr(chr->label, ==, "null");
    g_assert_cmpint(chardev_write_all(chr, (const uint8_t *)"gone", 4), ==, 0);
    chardev_free(chr);

    chr = chardev_new("stdio", "con", &err);
    g_assert_no_error(err);
    g_assert_nonnull(chr);
    g_assert_cmpint(chr->out_fd, ==, STDOUT_FILENO);
    g_assert_false(chr->owns_out_fd);
    chardev_free(chr);
    /* fd 1 is still open. */
    g_assert_cmpint(fcntl(STDOUT_FILENO, F_GETFD), >=, 0);
    chardev_free(NULL);
}

static void test_chardev_capture_grows(void)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new("capture", NULL, &err);
    g_autoptr(GString) expect = g_string_new(NULL);
    const uint8_t *buf;
    size_t len;

    g_assert_no_error(err);
    for (unsigned i = 0; i < 1000; i++) {
        uint8_t b = (uint8_t)(i * 7);

        g_string_append_c(expect, (char)b);
        g_assert_cmpint(chardev_write_all(chr, &b, 1), ==, 0);
    }
    buf = chardev_captured(chr, &len);
    g_assert_cmpmem(buf, len, expect->str, expect->len);
    chardev_free(chr);
}

/* A pipe with a non-blocking write end: chardev_write_all waits briefly on
 * EAGAIN and then gives up rather than blocking its caller. */
static void test_chardev_eagain(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *big = g_malloc0(1 << 20);
    Chardev *chr = chardev_new("stdio", NULL, &err);
    int fds[2];

    g_assert_no_error(err);
    g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
    g_assert_cmpint(fcntl(fds[1], F_SETFL, O_NONBLOCK), ==, 0);
    /* Point the (non-owning) stdio backend at the pipe instead of fd 1. */
    chr->out_fd = fds[1];
    g_assert_cmpint(chardev_write_all(chr, big, 1 << 20), ==, -EAGAIN);
    chardev_free(chr);
    close(fds[0]);
    close(fds[1]);
}

/* chardev_deliver with no frontend takes nothing. */
static void test_chardev_deliver_unattached(void)
{
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new("capture", NULL, &err);
    const uint8_t in[2] = {1, 2};

    g_assert_no_error(err);
    g_assert_cmpuint(chardev_deliver(chr, in, 2), ==, 0);
    g_assert_cmpuint(chardev_deliver(NULL, in, 2), ==, 0);
    chardev_free(chr);
}

#define UART_TEST(path, fn)                                                                        \
    g_test_add("/uart/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    UART_TEST("reset-values", test_reset_values);
    UART_TEST("scratch", test_scratch);
    UART_TEST("ier-mask", test_ier_mask);
    UART_TEST("divisor-latch", test_divisor_latch);
    UART_TEST("transmit", test_transmit);
    UART_TEST("thre-interrupt", test_thre_interrupt);
    UART_TEST("no-backend", test_no_backend);
    UART_TEST("receive-16450", test_receive_16450);
    UART_TEST("receive-enable-later", test_receive_no_frontend_ier);
    UART_TEST("fifo", test_fifo);
    UART_TEST("fifo-wraps", test_fifo_wraps);
    UART_TEST("loopback", test_loopback);
    UART_TEST("loopback-msr", test_loopback_msr);

    for (int be = EVENT_LOOP_GLIB; be <= EVENT_LOOP_LIBEVENT; be++) {
        static const struct {
            const char *name;
            GTestDataFunc fn;
        } live[] = {
            {"receive-16450", test_live_receive_16450},
            {"receive-fifo", test_live_receive_fifo},
            {"loopback-holds-input", test_live_loopback_holds},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(live); i++) {
            g_autofree char *path =
                g_strdup_printf("/uart/live/%s/%s", event_loop_backend_name(be), live[i].name);

            g_test_add_data_func(path, GINT_TO_POINTER(be), live[i].fn);
        }
    }

    g_test_add_func("/chardev/file", test_chardev_file);
    g_test_add_func("/chardev/file-error", test_chardev_file_error);
    g_test_add_func("/chardev/bad-spec", test_chardev_bad_spec);
    g_test_add_func("/chardev/none-null-stdio", test_chardev_none_null_stdio);
    g_test_add_func("/chardev/capture-grows", test_chardev_capture_grows);
    g_test_add_func("/chardev/eagain", test_chardev_eagain);
    g_test_add_func("/chardev/deliver-unattached", test_chardev_deliver_unattached);

    return g_test_run();
}
