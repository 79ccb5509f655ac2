/* hello: prints one line over the UART and exits with the code from "exit=N".
 *
 * Output: "hello from kvmloop\n".
 * With "fwait=M" it first runs fwait M times (an instruction an emulating
 * host's KVM leaves to kvmloop's emulation assists).
 * Exit (debug-exit value): N from the command line option exit=N, 0 without
 * it; this payload has no failure codes.
 */
#include "guest.h"

int main(const char *cmdline)
{
    for (long i = cmdline_get_int(cmdline, "fwait", 0); i > 0; i--) {
        __asm__ volatile("fwait");
    }
    serial_puts("hello from kvmloop\n");
    return (int)cmdline_get_int(cmdline, "exit", 0);
}
