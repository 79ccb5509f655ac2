/* spin: all vCPUs spin forever in a register-only loop, for the host to pause, resume and stop.
 *
 * Output: "spinning\n" once, from the BSP, after every AP has checked in.
 * After that no vCPU causes an exit.
 * Exit (debug-exit value): none on success (the host stops the VM);
 *   1  smp_start_aps() failed: some AP did not check in
 */
#include "guest.h"

static void __attribute__((noreturn)) spin_forever(int cpu)
{
    uint32_t x = (uint32_t)cpu;

    /* No memory access, no I/O, no exit: only the host can stop this. */
    __asm__ volatile("1: addl $1, %0\n\t"
                     "jmp 1b"
                     : "+r"(x));
    __builtin_unreachable();
}

int main(const char *cmdline)
{
    if (smp_start_aps(spin_forever) < 0) {
        serial_puts("spin: APs did not check in\n");
        return 1;
    }
    serial_puts("spinning\n");
    spin_forever(0);
}
