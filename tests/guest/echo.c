/*
 * echo: reads lines from the UART and sends each one back; the line "quit" ends the run.
 *
 * Output: "echo: ready\n", then "got: <line>\n" for every non-empty line
 * received. A line ends at '\n' or '\r' (a terminal in raw mode sends '\r' for
 * Enter); one longer than ECHO_LINE_MAX bytes is echoed in pieces.
 * Exit (debug-exit value): 0 after echoing the line "quit"; 2 if LSR ever
 * reports an overrun (the host sent a byte the receiver had no room for).
 *
 * The UART is left as reset made it: no FIFO, a one-byte receiver. Enabling
 * or clearing the FIFO would discard input the host sent before the payload
 * started, and with one byte of room every byte after the first depends on
 * the host holding input back until RBR is read. LSR is polled; each poll is
 * a VM exit, so the vCPU is busy while it waits.
 */
#include "guest.h"

#define UART_RX        0
#define UART_LSR       5
#define UART_LSR_DR    0x01
#define UART_LSR_OE    0x02
#define ECHO_LINE_MAX  120
#define ECHO_OVERRUN   2

static char echo_getc(void)
{
    uint8_t lsr;

    do {
        lsr = inb(GUEST_UART_BASE + UART_LSR);
        if (lsr & UART_LSR_OE) {
            serial_puts("echo: receiver overrun\n");
            debug_exit(ECHO_OVERRUN);
        }
    } while (!(lsr & UART_LSR_DR));
    return (char)inb(GUEST_UART_BASE + UART_RX);
}

static bool echo_is_quit(const char *line, int len)
{
    return len == 4 && line[0] == 'q' && line[1] == 'u' && line[2] == 'i' && line[3] == 't';
}

int main(const char *cmdline)
{
    char line[ECHO_LINE_MAX + 1];
    int len = 0;

    (void)cmdline;
    serial_puts("echo: ready\n");
    for (;;) {
        char c = echo_getc();
        bool end = c == '\n' || c == '\r';

        if (!end) {
            line[len++] = c;
        }
        if ((end && len > 0) || len == ECHO_LINE_MAX) {
            line[len] = '\0';
            serial_printf("got: %s\n", line);
            if (echo_is_quit(line, len)) {
                return 0;
            }
            len = 0;
        }
    }
}
