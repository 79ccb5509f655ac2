/* smp-counter: every vCPU bumps the testdev PIO and MMIO counters M times ("m=N", default 1000).
 *
 * The host checks that both counters end at n * M. The guest checks too when
 * it finds a testdev: before starting the APs, the BSP makes its first write
 * to each counter a probe (read, write, read: a counter goes up by one). QEMU
 * has no testdev; there the MMIO reads give 0 and port 0x700 is the PIIX4
 * SMBus status register that SeaBIOS puts there, neither of which counts, so
 * the checks are skipped and the writes go nowhere that matters.
 * Output: "smp-counter: <n> vCPUs x <M>\n" at the start, then
 * "smp-counter: done (testdev checked)\n" or "... (testdev absent)\n".
 * Exit (debug-exit value):
 *   0  success
 *   1  smp_start_aps() failed: some AP did not check in
 *   2  some vCPU did not finish its writes in time
 *   3  testdev found, but its PIO counter did not end at n * M
 *   4  testdev found, but its MMIO counter did not end at n * M
 *   5  m=N is negative
 */
#include "guest.h"

#define SMP_COUNTER_TIMEOUT (1ull << 36)

static volatile uint32_t smp_counter_done;
static uint32_t smp_counter_m;

static void smp_counter_write(uint32_t writes)
{
    uint32_t i;

    for (i = 0; i < writes; i++) {
        outl(TESTDEV_PIO_BASE, 1);
    }
    for (i = 0; i < writes; i++) {
        mmio_write32(TESTDEV_MMIO_BASE, 1);
    }
    /* Locked add: a full barrier, so the BSP that sees the count sees it
     * after this CPU's device writes have completed. */
    atomic_add32(&smp_counter_done, 1);
}

static void smp_counter_ap(int cpu)
{
    smp_counter_write(smp_counter_m);
}

/* A counter is present if one write moves its read-back value by exactly
 * one; *@start receives the value before that write. */
static bool smp_counter_probe_pio(uint32_t *start)
{
    *start = inl(TESTDEV_PIO_BASE);
    outl(TESTDEV_PIO_BASE, 1);
    return *start != 0xFFFFFFFF && inl(TESTDEV_PIO_BASE) == *start + 1;
}

static bool smp_counter_probe_mmio(uint32_t *start)
{
    *start = mmio_read32(TESTDEV_MMIO_BASE);
    mmio_write32(TESTDEV_MMIO_BASE, 1);
    return *start != 0xFFFFFFFF && mmio_read32(TESTDEV_MMIO_BASE) == *start + 1;
}

int main(const char *cmdline)
{
    long m = cmdline_get_int(cmdline, "m", 1000);
    uint32_t n = (uint32_t)smp_cpu_count();
    bool has_pio = false, has_mmio = false;
    uint32_t pio0 = 0, mmio0 = 0, v;

    if (m < 0) {
        return 5;
    }
    smp_counter_m = (uint32_t)m;
    serial_printf("smp-counter: %u vCPUs x %u\n", n, smp_counter_m);
    if (smp_counter_m > 0) {
        /* These are the BSP's first writes, one to each counter. */
        has_pio = smp_counter_probe_pio(&pio0);
        has_mmio = smp_counter_probe_mmio(&mmio0);
    }
    if (smp_start_aps(smp_counter_ap) < 0) {
        return 1;
    }
    smp_counter_write(smp_counter_m > 0 ? smp_counter_m - 1 : 0);
    if (!tsc_wait_ge32(&smp_counter_done, n, SMP_COUNTER_TIMEOUT)) {
        return 2;
    }
    v = inl(TESTDEV_PIO_BASE);
    if (has_pio && v != pio0 + n * smp_counter_m) {
        serial_printf("smp-counter: PIO counter %u, want %u\n", v, pio0 + n * smp_counter_m);
        return 3;
    }
    v = mmio_read32(TESTDEV_MMIO_BASE);
    if (has_mmio && v != mmio0 + n * smp_counter_m) {
        serial_printf("smp-counter: MMIO counter %u, want %u\n", v, mmio0 + n * smp_counter_m);
        return 4;
    }
    serial_printf("smp-counter: done (testdev %s)\n", has_pio || has_mmio ? "checked" : "absent");
    return 0;
}
