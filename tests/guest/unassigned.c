/* unassigned: reads at an unassigned port and an unassigned MMIO address must return all-ones.
 *
 * Port 0x6F0 and physical address 0xD0000000 (above RAM, not RAM, no
 * device) are read with 1, 2 and 4-byte accesses.
 * Output: one line per failing read, "unassigned: <what> = <value>\n".
 * Exit (debug-exit value): 0 when every read gave all-ones, otherwise the code
 * of the first failing read:
 *   1  inb  0x6F0        4  8-bit  MMIO read at 0xD0000000
 *   2  inw  0x6F0        5  16-bit MMIO read at 0xD0000000
 *   3  inl  0x6F0        6  32-bit MMIO read at 0xD0000000
 */
#include "guest.h"

#define UNASSIGNED_PORT 0x6F0
#define UNASSIGNED_MMIO 0xD0000000

/* Notes a failing read, keeping the first failure's code in *@rc. */
static void unassigned_check(int *rc, int code, const char *what, uint32_t v, uint32_t ones)
{
    if (v == ones) {
        return;
    }
    serial_printf("unassigned: %s = 0x%x\n", what, v);
    if (*rc == 0) {
        *rc = code;
    }
}

int main(const char *cmdline)
{
    int rc = 0;

    unassigned_check(&rc, 1, "inb 0x6f0", inb(UNASSIGNED_PORT), 0xFF);
    unassigned_check(&rc, 2, "inw 0x6f0", inw(UNASSIGNED_PORT), 0xFFFF);
    unassigned_check(&rc, 3, "inl 0x6f0", inl(UNASSIGNED_PORT), 0xFFFFFFFF);
    unassigned_check(&rc, 4, "mmio8 0xd0000000", mmio_read8(UNASSIGNED_MMIO), 0xFF);
    unassigned_check(&rc, 5, "mmio16 0xd0000000", mmio_read16(UNASSIGNED_MMIO), 0xFFFF);
    unassigned_check(&rc, 6, "mmio32 0xd0000000", mmio_read32(UNASSIGNED_MMIO), 0xFFFFFFFF);
    return rc;
}
