/* Interrupt lines: how devices raise IRQs without knowing the interrupt controller. */
#ifndef KVMLOOP_IRQ_H
#define KVMLOOP_IRQ_H

#include <stdbool.h>

typedef void (*irq_set_fn)(void *opaque, int n, int level);

/* One interrupt line. A zeroed IrqLine is a line to nowhere. */
typedef struct IrqLine {
    irq_set_fn set;
    void *opaque;
    int n;
} IrqLine;

/* Drive @line to @level (0 or 1). Any thread; the sink must be thread-safe. */
static inline void irq_set(const IrqLine *line, int level)
{
    if (line->set) {
        line->set(line->opaque, line->n, level);
    }
}

#endif
