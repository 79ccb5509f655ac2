/* smp-hello: every vCPU says hello, then the BSP reports that all of them did.
 *
 * Output: one "hello from vCPU <i> of <n>\n" per vCPU in any order, then
 * "all <n> vCPUs done\n" from the BSP.
 * Exit (debug-exit value):
 *   0  success
 *   1  smp_start_aps() failed: some AP did not check in
 *   2  some AP checked in but did not finish its line in time
 */
#include "guest.h"

#define SMP_HELLO_TIMEOUT (1ull << 34)

static volatile uint32_t smp_hello_done;
static int smp_hello_ncpus;

static void smp_hello_say(int cpu)
{
    serial_printf("hello from vCPU %d of %d\n", cpu, smp_hello_ncpus);
    atomic_add32(&smp_hello_done, 1);
}

int main(const char *cmdline)
{
    serial_init();
    smp_hello_ncpus = smp_cpu_count();
    if (smp_start_aps(smp_hello_say) < 0) {
        serial_puts("smp-hello: APs did not check in\n");
        return 1;
    }
    smp_hello_say(smp_cpu_id());
    if (!tsc_wait_ge32(&smp_hello_done, (uint32_t)smp_hello_ncpus, SMP_HELLO_TIMEOUT)) {
        serial_puts("smp-hello: APs did not finish\n");
        return 2;
    }
    serial_printf("all %d vCPUs done\n", smp_hello_ncpus);
    return 0;
}
