/* reset: boots, brings up every AP, then resets the machine; the second boot
 * (told apart by a mark kept in RAM, which a reset does not clear) does the
 * same and exits. Shows that a reset reloads the kernel, resets every vCPU
 * (the APs answer INIT/SIPI again) and keeps running.
 *
 * Command line: "acpi=1" resets through the ACPI reset register (0x01 to
 * port 0x60c), otherwise through the i8042 (0xFE to port 0x64).
 * Output per boot: "boot <n>: <ncpus> vCPUs up".
 * Exit (debug-exit value): 0 after the second boot's APs came up; 1 if the
 * APs did not check in; 3 if the reset did not happen.
 */
#include "guest.h"

/* Below the kernel (loaded at 1 MiB and up), above the loader's low data. */
#define BOOT_MARK_ADDR 0x80000
#define BOOT_MAGIC     0x7e5e7b00u

static volatile uint32_t aps_up;

static void ap_main(int cpu)
{
    (void)cpu;
    atomic_add32(&aps_up, 1);
}

int main(const char *cmdline)
{
    volatile uint32_t *mark = (volatile uint32_t *)BOOT_MARK_ADDR;
    uint32_t boot = (mark[0] == BOOT_MAGIC) ? mark[1] + 1 : 1;

    serial_init();
    /* A reset must have cleared the bss: the loader loaded the kernel again. */
    if (aps_up != 0) {
        serial_puts("reset: bss not cleared\n");
        return 4;
    }
    if (smp_start_aps(ap_main) < 0) {
        serial_printf("boot %u: APs did not check in\n", boot);
        return 1;
    }
    serial_printf("boot %u: %d vCPUs up\n", boot, smp_cpu_count());
    mark[0] = BOOT_MAGIC;
    mark[1] = boot;
    if (boot >= 2) {
        return 0;
    }
    aps_up = 7; /* must be 0 again after the reset */
    if (cmdline_get_int(cmdline, "acpi", 0)) {
        outb(0x60c, 0x01);
    } else {
        outb(0x64, 0xfe);
    }
    tsc_delay(1ull << 32);
    serial_puts("reset: still running after the reset request\n");
    return 3;
}
