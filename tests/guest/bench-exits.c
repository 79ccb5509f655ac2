/*
 * bench-exits: every vCPU writes one port or one MMIO address N times, all starting together.
 *
 * The exit benchmark (tools/bench/) runs this payload under the raw KVM
 * floor, under kvmloop and under QEMU, and measures from the host: the guest
 * keeps no clock. Arguments:
 *   n=N       writes per vCPU (default 10000)
 *   mmio=1    32-bit MMIO writes (mov) instead of 32-bit port writes (out)
 *   port=P    the port (default 0x700, the testdev counter)
 *   addr=A    the MMIO address (default 0xFE000000, the testdev counter)
 * Every write stores the value 1. The APs wait at a start line until the BSP
 * has seen all of them check in, so that with several vCPUs the writes of
 * all vCPUs overlap; the BSP writes too, then waits for the others.
 *
 * Output: "bench-exits: <n> vCPUs x <N> <pio|mmio> writes to 0x<where>\n";
 * "bench-exits: go\n" once every AP waits at the start line, just before
 * the BSP lets them go; "bench-exits: done in <C> cycles\n" once all have
 * finished, C being the TSC cycles from the start to the last vCPU's end
 * (the host converts them: a KVM guest's TSC runs at the host's rate). The
 * host may time the writes between those two lines instead.
 * Exit (debug-exit value):
 *   0  every vCPU made its N writes
 *   1  smp_start_aps() failed: some AP did not check in
 *   2  some vCPU did not finish in time
 *   3  a bad argument (negative N, port above 0xFFFF)
 */
#include "guest.h"

/* About seven minutes at 2.5 GHz: long enough for any sweep the benchmark
 * runs (the slowest writes take 20 us plus the exit). */
#define BENCH_TIMEOUT (1ull << 40)

static volatile uint32_t bench_go;
static volatile uint32_t bench_done;
static uint32_t bench_n;
static uint32_t bench_where;
static bool bench_mmio;

/* The loop is written out so that every host runs exactly the same three
 * instructions per write (a write, a decrement, a branch): where the host
 * emulates guest kernel code each of them costs an emulation step. */
static void bench_pio(uint32_t n, uint16_t port)
{
    if (n == 0) {
        return;
    }
    __asm__ volatile("1: outl %%eax, %%dx\n\t"
                     "decl %%ecx\n\t"
                     "jnz 1b"
                     : "+c"(n)
                     : "a"(1), "d"(port)
                     : "memory", "cc");
}

static void bench_mmio_write(uint32_t n, uint32_t addr)
{
    if (n == 0) {
        return;
    }
    __asm__ volatile("1: movl %%eax, (%%edx)\n\t"
                     "decl %%ecx\n\t"
                     "jnz 1b"
                     : "+c"(n)
                     : "a"(1), "d"(addr)
                     : "memory", "cc");
}

static void bench_run(void)
{
    while (atomic_read32(&bench_go) == 0) {
        cpu_pause();
    }
    if (bench_mmio) {
        bench_mmio_write(bench_n, bench_where);
    } else {
        bench_pio(bench_n, (uint16_t)bench_where);
    }
    /* Locked add: a full barrier after this vCPU's last write. */
    atomic_add32(&bench_done, 1);
}

static void bench_ap(int cpu)
{
    bench_run();
}

int main(const char *cmdline)
{
    long n = cmdline_get_int(cmdline, "n", 10000);
    long port = cmdline_get_int(cmdline, "port", TESTDEV_PIO_BASE);
    long addr = cmdline_get_int(cmdline, "addr", (long)TESTDEV_MMIO_BASE);
    uint32_t ncpus = (uint32_t)smp_cpu_count();

    bench_mmio = cmdline_get_int(cmdline, "mmio", 0) != 0;
    if (n < 0 || (!bench_mmio && (port < 0 || port > 0xFFFF))) {
        serial_puts("bench-exits: bad argument\n");
        return 3;
    }
    bench_n = (uint32_t)n;
    bench_where = bench_mmio ? (uint32_t)addr : (uint32_t)port;
    serial_printf("bench-exits: %u vCPUs x %u %s writes to 0x%x\n", ncpus, bench_n,
                  bench_mmio ? "mmio" : "pio", bench_where);
    if (smp_start_aps(bench_ap) < 0) {
        return 1;
    }
    serial_puts("bench-exits: go\n");
    uint64_t start = rdtsc();
    atomic_add32(&bench_go, 1);
    bench_run();
    if (!tsc_wait_ge32(&bench_done, ncpus, BENCH_TIMEOUT)) {
        return 2;
    }
    uint64_t cycles = rdtsc() - start;
    serial_printf("bench-exits: done in %llu cycles\n", (unsigned long long)cycles);
    return 0;
}
