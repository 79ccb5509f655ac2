/* Polled output on the 16550 UART at 0x3F8, and a tiny printf over it. */
#include "guest.h"

/* 16550 registers and bits, named as in <linux/serial_reg.h>. */
#define UART_TX              0
#define UART_DLL             0
#define UART_IER             1
#define UART_DLM             1
#define UART_FCR             2
#define UART_LCR             3
#define UART_MCR             4
#define UART_LSR             5
#define UART_FCR_ENABLE_FIFO 0x01
#define UART_FCR_CLEAR_RCVR  0x02
#define UART_FCR_CLEAR_XMIT  0x04
#define UART_LCR_DLAB        0x80
#define UART_LCR_WLEN8       0x03
#define UART_MCR_DTR         0x01
#define UART_MCR_RTS         0x02
#define UART_LSR_THRE        0x20

/* Serialises whole serial_puts()/serial_printf() calls between CPUs. */
static spinlock_t serial_lock;

void serial_init(void)
{
    outb(GUEST_UART_BASE + UART_IER, 0);
    outb(GUEST_UART_BASE + UART_LCR, UART_LCR_DLAB);
    outb(GUEST_UART_BASE + UART_DLL, 1); /* 115200 baud */
    outb(GUEST_UART_BASE + UART_DLM, 0);
    outb(GUEST_UART_BASE + UART_LCR, UART_LCR_WLEN8);
    outb(GUEST_UART_BASE + UART_FCR,
         UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    outb(GUEST_UART_BASE + UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
}

void serial_putc(char c)
{
    /* A missing UART reads all-ones, THRE included, so this cannot hang. */
    while (!(inb(GUEST_UART_BASE + UART_LSR) & UART_LSR_THRE)) {
        cpu_pause();
    }
    outb(GUEST_UART_BASE + UART_TX, (uint8_t)c);
}

static void serial_puts_locked(const char *s)
{
    for (; *s != '\0'; s++) {
        serial_putc(*s);
    }
}

void serial_puts(const char *s)
{
    spin_lock(&serial_lock);
    serial_puts_locked(s);
    spin_unlock(&serial_lock);
}

/* Divides *@n by @base (2..16) in place and returns the remainder. The 64-bit
 * division is done as two divl so that no libgcc helper is needed. */
static uint32_t serial_divmod(uint64_t *n, uint32_t base)
{
    uint32_t hi = (uint32_t)(*n >> 32);
    uint32_t lo = (uint32_t)*n;
    uint32_t qhi = hi / base;
    uint32_t rem = hi % base;

    /* rem < base, so the quotient of rem:lo fits in 32 bits (no #DE). */
    __asm__("divl %4" : "=a"(lo), "=d"(rem) : "0"(lo), "1"(rem), "rm"(base) : "cc");
    *n = ((uint64_t)qhi << 32) | lo;
    return rem;
}

static void serial_put_number_locked(uint64_t v, uint32_t base, bool neg, int width, char pad)
{
    char buf[24];
    int n = 0;

    do {
        buf[n++] = "0123456789abcdef"[serial_divmod(&v, base)];
    } while (v != 0);
    if (neg) {
        width--;
        if (pad == '0') {
            serial_putc('-');
        } else {
            buf[n++] = '-';
            width++;
        }
    }
    for (; width > n; width--) {
        serial_putc(pad);
    }
    while (n > 0) {
        serial_putc(buf[--n]);
    }
}

/* Fetches the next integer argument, widened to 64 bits, given the number of
 * 'l' modifiers; *@neg says whether a signed one was negative. */
static uint64_t serial_arg(va_list *ap, int longs, bool is_signed, bool *neg)
{
    int64_t s;

    *neg = false;
    if (!is_signed) {
        if (longs >= 2) {
            return va_arg(*ap, unsigned long long);
        }
        return longs == 1 ? va_arg(*ap, unsigned long) : va_arg(*ap, unsigned int);
    }
    if (longs >= 2) {
        s = va_arg(*ap, long long);
    } else {
        s = longs == 1 ? va_arg(*ap, long) : va_arg(*ap, int);
    }
    *neg = s < 0;
    return *neg ? -(uint64_t)s : (uint64_t)s;
}

static void serial_vprintf_locked(const char *fmt, va_list *ap)
{
    const char *s;
    uint64_t v;
    bool neg;
    int width, longs;
    char pad;

    while (*fmt != '\0') {
        if (*fmt != '%') {
            serial_putc(*fmt++);
            continue;
        }
        fmt++;
        pad = ' ';
        width = 0;
        longs = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++) {
            width = width * 10 + (*fmt - '0');
        }
        for (; *fmt == 'l'; fmt++) {
            longs++;
        }
        switch (*fmt) {
        case 'd':
        case 'u':
        case 'x':
            v = serial_arg(ap, longs, *fmt == 'd', &neg);
            serial_put_number_locked(v, *fmt == 'x' ? 16 : 10, neg, width, pad);
            break;
        case 'c':
            serial_putc((char)va_arg(*ap, int));
            break;
        case 's':
            s = va_arg(*ap, const char *);
            serial_puts_locked(s != NULL ? s : "(null)");
            break;
        case '%':
            serial_putc('%');
            break;
        case '\0':
            serial_putc('%');
            return;
        default:
            serial_putc('%');
            serial_putc(*fmt);
            break;
        }
        fmt++;
    }
}

void serial_vprintf(const char *fmt, va_list ap)
{
    va_list aq;

    /* A copy, so that the helpers can take it by pointer (va_list may be an
     * array type, which does not pass by address). */
    va_copy(aq, ap);
    spin_lock(&serial_lock);
    serial_vprintf_locked(fmt, &aq);
    spin_unlock(&serial_lock);
    va_end(aq);
}

void serial_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    serial_vprintf(fmt, ap);
    va_end(ap);
}
