/*
 * doorbell: every vCPU rings the testdev's PIO and MMIO doorbells; the counts must come out exact.
 *
 * Each vCPU writes the value V ("data=V", default 1) N times ("n=N", default
 * 1000) to the PIO doorbell, then M more times ("miss=M", default 0) the
 * value V + 1, then the same to the MMIO doorbell. The doorbells count every
 * write, whichever path served it (an ioeventfd read by an event loop, or an
 * exit to the device), so the BSP waits until both counts read n * (N + M)
 * (the serving loop may lag behind the guest) and checks they go no further.
 *
 * With "irq=1" the BSP first arms the MMIO doorbell's interrupt for that
 * total, routes ISA IRQ L ("line=L", default 5) through the IOAPIC to
 * vector 0x31 on itself, and finishes the test in the interrupt handler,
 * which never returns (instruction emulators cannot run a protected-mode
 * iret). Needs kvmloop's testdev (there is none under QEMU).
 *
 * Output: "doorbell: <n> vCPUs x <N> rings + <M> misses\n", then
 * "doorbell: done\n" or, with irq=1, "doorbell: irq ok\n".
 * Exit (debug-exit value):
 *   0  both counts exact (and the interrupt came, with irq=1)
 *   1  smp_start_aps() failed
 *   2  some vCPU did not finish its writes in time
 *   3  the PIO count did not reach n * (N + M) in time
 *   4  the MMIO count did not reach n * (N + M) in time
 *   5  a count went past n * (N + M)
 *   6  irq=1, but no interrupt came in time
 *   7  a negative N or M, or a line outside 0-15
 */
#include "irq.h"

#define DOORBELL_PIO        (TESTDEV_PIO_BASE + 0x10)
#define DOORBELL_MMIO       (TESTDEV_MMIO_BASE + 0x1000)
#define REG_DOORBELL_COUNT  0x4
#define REG_DOORBELL_IRQ    0xc
#define DOORBELL_VECTOR     0x31
#define DOORBELL_TIMEOUT    (1ull << 36)
#define DOORBELL_POLL_DELAY (1ull << 20)

static volatile uint32_t doorbell_done;
static volatile uint32_t doorbell_irqs;
static uint32_t doorbell_n, doorbell_miss, doorbell_data, doorbell_total;
static uint32_t doorbell_pio0, doorbell_mmio0;

IRQ_ENTRY(doorbell_isr, doorbell_irq_handler);

static void doorbell_ring(uint32_t writes, uint32_t misses)
{
    uint32_t i;

    for (i = 0; i < writes; i++) {
        outl(DOORBELL_PIO, doorbell_data);
    }
    for (i = 0; i < misses; i++) {
        outl(DOORBELL_PIO, doorbell_data + 1);
    }
    for (i = 0; i < writes; i++) {
        mmio_write32(DOORBELL_MMIO, doorbell_data);
    }
    for (i = 0; i < misses; i++) {
        mmio_write32(DOORBELL_MMIO, doorbell_data + 1);
    }
    atomic_add32(&doorbell_done, 1);
}

static void doorbell_ap(int cpu)
{
    doorbell_ring(doorbell_n, doorbell_miss);
}

static uint32_t count_pio(void)
{
    return inl(TESTDEV_PIO_BASE + REG_DOORBELL_COUNT);
}

static uint32_t count_mmio(void)
{
    return mmio_read32(TESTDEV_MMIO_BASE + REG_DOORBELL_COUNT);
}

/* Polls @count() until it reaches @target or time runs out; sparse reads,
 * since each one is an exit. Returns the last value read. */
static uint32_t doorbell_wait(uint32_t (*count)(void), uint32_t target)
{
    uint64_t start = rdtsc();
    uint32_t v;

    while ((v = count()) < target && rdtsc() - start < DOORBELL_TIMEOUT) {
        tsc_delay(DOORBELL_POLL_DELAY);
    }
    return v;
}

/* Both counts must reach the total and stop there; returns an exit code. */
static int doorbell_check(void)
{
    uint32_t pio = doorbell_wait(count_pio, doorbell_pio0 + doorbell_total);
    uint32_t mmio = doorbell_wait(count_mmio, doorbell_mmio0 + doorbell_total);

    if (pio < doorbell_pio0 + doorbell_total) {
        serial_printf("doorbell: PIO count %u, want %u\n", pio, doorbell_pio0 + doorbell_total);
        return 3;
    }
    if (mmio < doorbell_mmio0 + doorbell_total) {
        serial_printf("doorbell: MMIO count %u, want %u\n", mmio, doorbell_mmio0 + doorbell_total);
        return 4;
    }
    /* Give a stray extra count the time to show up. */
    tsc_delay(DOORBELL_POLL_DELAY * 8);
    pio = count_pio();
    mmio = count_mmio();
    if (pio != doorbell_pio0 + doorbell_total || mmio != doorbell_mmio0 + doorbell_total) {
        serial_printf("doorbell: counts %u and %u, want %u\n", pio - doorbell_pio0,
                      mmio - doorbell_mmio0, doorbell_total);
        return 5;
    }
    return 0;
}

void doorbell_irq_handler(void)
{
    int r;

    doorbell_irqs = doorbell_irqs + 1;
    lapic_write(APIC_EOI, 0);
    r = doorbell_check();
    if (r == 0) {
        serial_puts("doorbell: irq ok\n");
    }
    debug_exit((uint32_t)r);
}

int main(const char *cmdline)
{
    long n = cmdline_get_int(cmdline, "n", 1000);
    long miss = cmdline_get_int(cmdline, "miss", 0);
    long line = cmdline_get_int(cmdline, "line", 5);
    bool irq = cmdline_get_int(cmdline, "irq", 0) != 0;
    uint32_t ncpus = (uint32_t)smp_cpu_count();

    if (n < 0 || miss < 0 || line < 0 || line > 15) {
        return 7;
    }
    doorbell_n = (uint32_t)n;
    doorbell_miss = (uint32_t)miss;
    doorbell_data = (uint32_t)cmdline_get_int(cmdline, "data", 1);
    doorbell_total = ncpus * (doorbell_n + doorbell_miss);
    serial_printf("doorbell: %u vCPUs x %u rings + %u misses\n", ncpus, doorbell_n, doorbell_miss);
    doorbell_pio0 = count_pio();
    doorbell_mmio0 = count_mmio();
    if (irq) {
        irq_route((unsigned)line, 0, DOORBELL_VECTOR, doorbell_isr); /* edge-triggered */
        mmio_write32(TESTDEV_MMIO_BASE + REG_DOORBELL_IRQ, doorbell_mmio0 + doorbell_total);
    }
    if (smp_start_aps(doorbell_ap) < 0) {
        return 1;
    }
    /* From here on the BSP prints nothing until the end, so the handler
     * never finds the serial lock taken. */
    if (irq) {
        __asm__ volatile("sti");
    }
    doorbell_ring(doorbell_n, doorbell_miss);
    if (!tsc_wait_ge32(&doorbell_done, ncpus, DOORBELL_TIMEOUT)) {
        return 2;
    }
    if (irq) {
        /* The handler ends the run; getting here means no interrupt came. */
        tsc_wait_ge32(&doorbell_irqs, 1, DOORBELL_TIMEOUT);
        __asm__ volatile("cli");
        serial_puts("doorbell: no interrupt\n");
        return 6;
    }
    int r = doorbell_check();
    if (r == 0) {
        serial_puts("doorbell: done\n");
    }
    return r;
}
